//! The u64 matrix product. No maintained crate multiplies wrapping u64 matrices (BLAS works on
//! floats), so the kernel is written here, in the GotoBLAS shape: both operands are packed into
//! cache-sized panels, a register-blocked micro-kernel computes an `MR x NR` tile of the output
//! at a time, and rayon spreads the output tiles over the cores. On CPUs with AVX-512 DQ the
//! micro-kernel uses `vpmullq` (8 wrapping 64-bit products per instruction), chosen at run
//! time so that one binary runs everywhere; elsewhere a portable micro-kernel that LLVM
//! vectorises takes its place.

mod clmul;
mod packed;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use clmul::{clmul, clmul_dot, clmul_dot_and, clmul_portable};
pub use packed::Kernel;
use packed::LeftLayout;

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

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

    #[test]
    fn portable_kernel_is_always_supported() {
        assert!(Kernel::Portable.is_supported());
        assert!(Kernel::best().is_supported());
    }
}
