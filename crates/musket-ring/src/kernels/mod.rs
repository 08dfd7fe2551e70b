//! The u64 matrix product. No maintained crate multiplies wrapping u64 matrices (BLAS works on
//! floats), so the kernel is written here, in the GotoBLAS shape: both operands are packed into
//! cache-sized panels, a register-blocked micro-kernel computes an `MR x NR` tile of the output
//! at a time, and rayon spreads the output tiles over the cores (unless the calling thread
//! asked for its products on itself alone: [`serial_kernels`]). On CPUs with AVX-512 DQ the
//! micro-kernel uses `vpmullq` (8 wrapping 64-bit products per instruction), with AVX2 a
//! `vpmuludq` and half a `vpmulld` per four, chosen at run time so that one binary runs
//! everywhere; elsewhere a portable micro-kernel that LLVM vectorises takes its place.

mod binpoly;
mod bitweighted;
mod clmul;
mod karatsuba;
mod lookups;
mod packed;
mod subset;
mod transpose;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_clmul;
#[cfg(target_arch = "x86_64")]
mod x86_lookups;
mod xpow;

pub use binpoly::{add_times_binary_poly, add_times_binary_poly_with, BINARY_POLY_CHUNK};
pub use bitweighted::{select_rows_by_bits, BitWeightedSum, BitWeightedSums};
pub use clmul::{
    clmul, clmul_dot, clmul_dot_and, clmul_dot_and_extended, clmul_portable, gf64_fold_into, gf64_reduce,
    gf64_times_x_lanes,
};
pub use karatsuba::{PolyProductSum, PolyProductSums, POLY_COEFFS, PRODUCT_COEFFS};
pub use lookups::{lane_bytes, lane_bytes_portable, xor_member_lookups, xor_nibble_lookups, MemberTables};
use packed::LeftLayout;
pub use packed::{
    local_party_kernels, parallel_allowed, proof_parallel_allowed, serial_kernels, Kernel, KernelSpread,
};
pub use subset::{add_rows_by_bits, add_rows_by_bits_with};
pub use transpose::{add_coefficient_rows, coefficient_rows, coefficient_rows_of_differences};
pub use xpow::{row_times_x_pow, rows_times_x_pows, rows_times_x_pows_with};

/// A hint that `data[at]` will be read soon: its cache line is fetched ahead (x86-64's
/// `prefetcht0`; nothing elsewhere, or when `at` is past the end). For access patterns with
/// more streams than the hardware prefetchers follow.
#[inline(always)]
pub fn prefetch(data: &[u64], at: usize) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(data, at);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}

/// Reference matrix product `[m, k] x [k, n]`, three plain loops, for tests.
pub fn matmul_naive(a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    let mut c = vec![0u64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0u64;
            for p in 0..k {
                acc = acc.wrapping_add(a[i * k + p].wrapping_mul(b[p * n + j]));
            }
            c[i * n + j] = acc;
        }
    }
    c
}

/// Wrapping matrix product `[m, k] x [k, n] -> [m, n]`, row-major, with the fastest kernel
/// this CPU supports.
pub fn matmul(a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    matmul_with(Kernel::best(), a, b, m, k, n)
}

/// Wrapping matrix product with a chosen micro-kernel (benchmarks and tests compare them).
///
/// # Panics
/// If `kernel` is not supported by this CPU (see [`Kernel::is_supported`]) or the slices do not
/// have `m * k` and `k * n` elements.
pub fn matmul_with(kernel: Kernel, a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    assert_eq!(a.len(), m * k, "matmul: a has the wrong length");
    assert_eq!(b.len(), k * n, "matmul: b has the wrong length");
    assert!(kernel.is_supported(), "matmul: the {kernel:?} kernel is not supported by this CPU");
    let mut c = vec![0u64; m * n];
    if m > 0 && n > 0 && k > 0 {
        packed::gemm(kernel, a, LeftLayout::RowMajor, b, &mut c, m, k, n);
    }
    c
}

/// Wrapping `a_t^T b` for `a_t: [k, m]` and `b: [k, n]`, row-major, with the fastest kernel:
/// the left operand transposed for free (packing reads it in runs), where a caller holds rows
/// of `a_t` (Galois-ring elements, say) and would otherwise transpose them first.
///
/// # Panics
/// If the slices do not have `k * m` and `k * n` elements.
pub fn matmul_tn(a_t: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    assert_eq!(a_t.len(), k * m, "matmul_tn: a_t has the wrong length");
    assert_eq!(b.len(), k * n, "matmul_tn: b has the wrong length");
    let mut c = vec![0u64; m * n];
    if m > 0 && n > 0 && k > 0 {
        packed::gemm(Kernel::best(), a_t, LeftLayout::Transposed, b, &mut c, m, k, n);
    }
    c
}

/// The shape [`matmul_tn_strided_add`] works in: `m` a multiple of the first, `n` of the second.
pub const TILE: (usize, usize) = (packed::MR, packed::NR);

/// `out += a^T b` (wrapping) for strided operands, neither packed: `a` is `k` rows of `m`
/// words, row `p` at `a[p * lda..]`; `b` is `k` rows of `n` words at `b[p * ldb..]`; `out` is
/// `m` rows of `n` words at `out[r * ldo..]`. `m` and `n` must be multiples of [`TILE`]. For
/// many small products on operands already in cache (the packed proof's per-group products,
/// `musket_core::dzkp_packed`), where the general product's packing would cost as much as
/// the multiplications; AVX2's outer products added in place or AVX-512's tile where the CPU
/// has them, else the portable body.
///
/// # Panics
/// If `m` or `n` is not a multiple of the tile or a slice is too short for its rows.
#[allow(clippy::too_many_arguments)] // three strided operands and the three sizes
pub fn matmul_tn_strided_add(
    a: &[u64],
    lda: usize,
    b: &[u64],
    ldb: usize,
    out: &mut [u64],
    ldo: usize,
    (m, k, n): (usize, usize, usize),
) {
    strided_add_with(Kernel::best(), a, lda, b, ldb, out, ldo, (m, k, n));
}

/// Whether a slice of `len` words holds `rows` rows of `width` words, row `r` at `r * ld`
/// (`(rows - 1) * ld + width` words; checked, so that huge strides cannot wrap the bound
/// that the vector kernels' pointer arithmetic relies on). No rows always fit.
pub(super) fn holds_rows(len: usize, rows: usize, ld: usize, width: usize) -> bool {
    rows == 0 || (rows - 1).checked_mul(ld).and_then(|w| w.checked_add(width)).is_some_and(|need| len >= need)
}

/// [`matmul_tn_strided_add`] with a chosen micro-kernel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn strided_add_with(
    kernel: Kernel,
    a: &[u64],
    lda: usize,
    b: &[u64],
    ldb: usize,
    out: &mut [u64],
    ldo: usize,
    (m, k, n): (usize, usize, usize),
) {
    assert!(
        kernel.is_supported(),
        "matmul_tn_strided_add: the {kernel:?} kernel is not supported by this CPU"
    );
    let (mr, nr) = TILE;
    assert!(
        m.is_multiple_of(mr) && n.is_multiple_of(nr),
        "matmul_tn_strided_add: {m} x {n} is not whole tiles"
    );
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        holds_rows(a.len(), k, lda, m) && holds_rows(b.len(), k, ldb, n) && holds_rows(out.len(), m, ldo, n),
        "matmul_tn_strided_add: an operand is too short"
    );
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx2 {
        // Straight into `out`, with no tile to clear and add back.
        return x86::add_tn_strided_avx2(a, lda, b, ldb, out, ldo, (m, k, n));
    }
    let mut tile = [0u64; packed::MR * packed::NR];
    for r0 in (0..m).step_by(mr) {
        for c0 in (0..n).step_by(nr) {
            match kernel {
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => x86::tile_strided_avx512(k, &a[r0..], lda, &b[c0..], ldb, &mut tile),
                _ => packed::tile_body(k, &a[r0..], lda, &b[c0..], ldb, &mut tile),
            }
            for r in 0..mr {
                let dst = &mut out[(r0 + r) * ldo + c0..][..nr];
                for (d, t) in dst.iter_mut().zip(&tile[r * nr..]) {
                    *d = d.wrapping_add(*t);
                }
            }
        }
    }
}

/// Width of the rows [`tn_hadamard64`] works on (a Galois-ring element's coefficients).
const ROW: usize = 64;
/// Rows of `x * y` formed at a time: 32 KiB, kept in cache while every output tile reads it.
const HADAMARD_ROWS: usize = 64;

/// `out[u][v] = sum_p a[p][u] * x[p][v] * y[p][v]` (wrapping) for `[k, 64]` row-major `a`, `x`,
/// `y`: the product `a^T (x * y)` with the elementwise product formed a few rows at a time and
/// no operand packed (their rows are the panels already), returned as 64 x 64 words: the
/// schoolbook form of [`PolyProductSum::add_hadamard_products`], which the proofs use since
/// the ninth session (2.1x faster); kept as its benchmark's baseline (`cargo bench -p
/// musket-ring -- poly_product_sums`).
///
/// # Panics
/// If the three slices differ in length or are not whole rows.
pub fn tn_hadamard64(a: &[u64], x: &[u64], y: &[u64]) -> Vec<u64> {
    tn_hadamard64_with(Kernel::best(), a, x, y)
}

/// [`tn_hadamard64`] with a chosen micro-kernel (tests compare them; through
/// [`matmul_tn_strided_add`]'s kernels).
///
/// # Panics
/// As [`tn_hadamard64`], or if `kernel` is not supported by this CPU.
pub fn tn_hadamard64_with(kernel: Kernel, a: &[u64], x: &[u64], y: &[u64]) -> Vec<u64> {
    assert!(kernel.is_supported(), "tn_hadamard64: the {kernel:?} kernel is not supported by this CPU");
    assert!(
        a.len() == x.len() && x.len() == y.len() && a.len().is_multiple_of(ROW),
        "tn_hadamard64: operand lengths"
    );
    let k = a.len() / ROW;
    let mut out = vec![0u64; ROW * ROW];
    let mut h = vec![0u64; HADAMARD_ROWS * ROW];
    for p0 in (0..k).step_by(HADAMARD_ROWS) {
        let rows = HADAMARD_ROWS.min(k - p0);
        let span = p0 * ROW..(p0 + rows) * ROW;
        for ((o, u), v) in h.iter_mut().zip(&x[span.clone()]).zip(&y[span.clone()]) {
            *o = u.wrapping_mul(*v);
        }
        // Constant strides once inlined: the portable tile body (the portable route) keeps its
        // vector form.
        strided_add_with(kernel, &a[span], ROW, &h, ROW, &mut out, ROW, (ROW, rows, ROW));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn the_strided_product_adds_a_transposed_product() {
        let mut rng = rand::thread_rng();
        for (m, k, n) in [(8usize, 1usize, 16usize), (16, 5, 32), (64, 64, 128), (8, 150, 16), (8, 0, 16)] {
            // Operands embedded with padding in wider rows.
            let (lda, ldb, ldo) = (m + 3, n + 5, n + 7);
            let a: Vec<u64> = (0..k * lda).map(|_| rng.gen()).collect();
            let b: Vec<u64> = (0..k * ldb).map(|_| rng.gen()).collect();
            let start: Vec<u64> = (0..m * ldo).map(|_| rng.gen()).collect();
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut out = start.clone();
                strided_add_with(kernel, &a, lda, &b, ldb, &mut out, ldo, (m, k, n));
                for r in 0..m {
                    for c in 0..ldo {
                        let want = if c < n {
                            (0..k).fold(start[r * ldo + c], |acc, p| {
                                acc.wrapping_add(a[p * lda + r].wrapping_mul(b[p * ldb + c]))
                            })
                        } else {
                            start[r * ldo + c]
                        };
                        assert_eq!(out[r * ldo + c], want, "{m} x {k} x {n} at ({r}, {c}), {kernel:?}");
                    }
                }
            }
        }
    }

    /// A stride whose bound wraps around `usize` (7 x this is 1 modulo 2^64) is refused, not
    /// taken for a 17-word output (the AVX2 route writes through pointers).
    #[test]
    #[should_panic(expected = "too short")]
    fn a_stride_that_wraps_the_bound_is_refused() {
        let mut out = [0u64; 17];
        matmul_tn_strided_add(&[0; 8], 0, &[0; 16], 0, &mut out, 0x6db6_db6d_b6db_6db7, (8, 1, 16));
    }

    #[test]
    fn tn_hadamard64_is_the_product_with_the_elementwise_product() {
        let mut rng = rand::thread_rng();
        for k in [0usize, 1, 3, 64, 65, 200] {
            let [a, x, y] = [0, 1, 2].map(|_| (0..k * 64).map(|_| rng.gen()).collect::<Vec<u64>>());
            let h: Vec<u64> = x.iter().zip(&y).map(|(p, q)| p.wrapping_mul(*q)).collect();
            let mut a_rows = vec![0u64; 64 * k];
            for p in 0..k {
                for u in 0..64 {
                    a_rows[u * k + p] = a[p * 64 + u];
                }
            }
            let want = matmul_naive(&a_rows, &h, 64, k, 64);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                assert_eq!(tn_hadamard64_with(kernel, &a, &x, &y), want, "k = {k}, {kernel:?}");
            }
        }
    }

    #[test]
    fn the_transposed_left_operand_gives_the_same_product() {
        let mut rng = rand::thread_rng();
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (64, 300, 64), (9, 513, 33), (130, 70, 47), (0, 3, 2)] {
            let a: Vec<u64> = (0..m * k).map(|_| rng.gen()).collect();
            let b: Vec<u64> = (0..k * n).map(|_| rng.gen()).collect();
            let mut a_t = vec![0u64; k * m];
            for i in 0..m {
                for p in 0..k {
                    a_t[p * m + i] = a[i * k + p];
                }
            }
            assert_eq!(matmul_tn(&a_t, &b, m, k, n), matmul_naive(&a, &b, m, k, n), "{m}x{k}x{n}");
        }
    }

    #[test]
    fn every_kernel_matches_naive_on_odd_shapes() {
        let mut rng = rand::thread_rng();
        let shapes = [
            (1, 1, 1),
            (3, 5, 7),
            (17, 300, 9),
            (64, 64, 64),
            (2, 600, 700),
            (0, 3, 2),
            (4, 0, 2),
            (9, 513, 33),
            (130, 70, 47),
            (257, 3, 129),
        ];
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            for &(m, k, n) in &shapes {
                let a: Vec<u64> = (0..m * k).map(|_| rng.gen()).collect();
                let b: Vec<u64> = (0..k * n).map(|_| rng.gen()).collect();
                assert_eq!(
                    matmul_with(kernel, &a, &b, m, k, n),
                    matmul_naive(&a, &b, m, k, n),
                    "{kernel:?} {m}x{k}x{n}"
                );
            }
        }
    }

    /// A product large enough to spread over the pool gives the same result on one thread, and
    /// the switch is undone afterwards, also after a panic.
    #[test]
    fn serial_products_equal_parallel_ones() {
        let mut rng = rand::thread_rng();
        let (m, k, n) = (300, 400, 70);
        let a: Vec<u64> = (0..m * k).map(|_| rng.gen()).collect();
        let b: Vec<u64> = (0..k * n).map(|_| rng.gen()).collect();
        let expected = matmul_naive(&a, &b, m, k, n);
        assert!(packed::parallel_allowed());
        let serial = serial_kernels(|| {
            assert!(!packed::parallel_allowed());
            serial_kernels(|| assert!(!packed::parallel_allowed()));
            assert!(!packed::parallel_allowed(), "a nested call keeps the outer setting");
            matmul(&a, &b, m, k, n)
        });
        assert_eq!(serial, expected);
        assert_eq!(matmul(&a, &b, m, k, n), expected);
        assert!(packed::parallel_allowed());
        let unwound = std::panic::catch_unwind(|| serial_kernels(|| panic!("inside")));
        assert!(unwound.is_err());
        assert!(packed::parallel_allowed());
    }

    #[test]
    fn local_parties_split_products_only_with_two_cores_each() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // More parties than cores: products serial, proofs over the pool; one party per two
        // cores: both split.
        assert!(!local_party_kernels(cores, packed::parallel_allowed));
        assert!(local_party_kernels(cores, packed::proof_parallel_allowed));
        assert!(local_party_kernels((cores / 2).max(1), packed::parallel_allowed) == (cores >= 2));
        assert!(local_party_kernels((cores / 2).max(1), packed::proof_parallel_allowed));
        // Serial inside a local party is serial throughout; a local party inside a serial call
        // stays serial (a nested call never widens).
        local_party_kernels(cores, || {
            serial_kernels(|| assert!(!packed::parallel_allowed() && !packed::proof_parallel_allowed()));
            assert!(packed::proof_parallel_allowed(), "the outer setting is back");
        });
        serial_kernels(|| local_party_kernels(cores, || assert!(!packed::proof_parallel_allowed())));
        assert!(
            packed::parallel_allowed() && packed::proof_parallel_allowed(),
            "the setting does not outlive the call"
        );
        // Carried into a thread the party starts, which would otherwise spread everything.
        let (carried, fresh) = local_party_kernels(cores, || {
            let spread = KernelSpread::of_this_thread();
            std::thread::spawn(move || {
                let fresh = packed::parallel_allowed();
                (spread.run(|| (packed::parallel_allowed(), packed::proof_parallel_allowed())), fresh)
            })
            .join()
            .unwrap()
        });
        assert_eq!((carried, fresh), ((false, true), true));
    }

    #[test]
    fn portable_kernel_is_always_supported() {
        assert!(Kernel::Portable.is_supported());
        assert!(Kernel::best().is_supported());
    }
}
