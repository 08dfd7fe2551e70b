#![allow(missing_docs)] // criterion macros generate undocumented items
//! Kernel benchmarks: the u64 matmul with each micro-kernel this CPU runs, against the naive
//! triple loop, and the ceiling: `vpmullq` + `vpaddq` on registers alone, on every core, timed
//! for as many multiply-adds as a 1024^3 product (no loads, no stores, no packing).
// The binary's allocator, so that the figures match `musket bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use musket_ring::{
    add_rows_by_bits_with, matmul_naive, matmul_tn, matmul_with, tn_hadamard64_with, BitWeightedSum, Kernel,
    PolyProductSum,
};
use rand::Rng;
use rayon::prelude::*;

fn bench_matmul(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let mut group = c.benchmark_group("u64_matmul");
    group.sample_size(10);
    for &n in &[256usize, 512, 1024] {
        let a: Vec<u64> = (0..n * n).map(|_| rng.gen()).collect();
        let b: Vec<u64> = (0..n * n).map(|_| rng.gen()).collect();
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            group.bench_function(format!("{kernel:?}_{n}"), |bch| {
                bch.iter(|| matmul_with(kernel, &a, &b, n, n, n))
            });
        }
        if n == 256 {
            group.bench_function(format!("naive_{n}"), |bch| bch.iter(|| matmul_naive(&a, &b, n, n, n)));
        }
    }
    #[cfg(target_arch = "x86_64")]
    if Kernel::Avx512.is_supported() {
        group.bench_function("ceiling_vpmullq_1024", |bch| bch.iter(|| ceiling::run(1 << 30)));
    }
    group.finish();
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod ceiling {
    use super::*;
    use std::arch::x86_64::*;

    /// 16 independent accumulator chains hide `vpmullq`'s latency; the result is returned so
    /// the work is not optimised away.
    #[target_feature(enable = "avx512f,avx512dq")]
    fn chains(steps: usize, seed: u64) -> u64 {
        let mut acc = [_mm512_set1_epi64(seed as i64); 16];
        let b = _mm512_set1_epi64(0x1e37_79b9_7f4a_7c15);
        for _ in 0..steps {
            for v in acc.iter_mut() {
                *v = _mm512_add_epi64(*v, _mm512_mullo_epi64(*v, b));
            }
        }
        let mut sum = _mm512_setzero_si512();
        for v in acc {
            sum = _mm512_add_epi64(sum, v);
        }
        _mm512_reduce_add_epi64(sum) as u64
    }

    /// `macs` multiply-adds spread over rayon's threads.
    pub(super) fn run(macs: usize) -> u64 {
        let threads = rayon::current_num_threads();
        let steps = macs / (16 * 8 * threads);
        // SAFETY: only called after `Kernel::Avx512.is_supported()` detected AVX-512 F and DQ.
        (0..threads).into_par_iter().map(|t| unsafe { chains(steps, t as u64) }).sum()
    }
}

/// Sums of products of Galois-ring elements' coefficient polynomials, as the proofs form them
/// (one factor a packed product of two ring blocks): the schoolbook tile kernel
/// (`tn_hadamard64`, a 64 x 64 matrix of coefficient products) against Karatsuba
/// (`PolyProductSum`), on 2^14 pairs.
fn bench_poly_sums(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let mut group = c.benchmark_group("poly_product_sums");
    group.sample_size(10);
    let rows = 1 << 14;
    let [a, x, y] = [0, 1, 2].map(|_| (0..rows * 64).map(|_| rng.gen()).collect::<Vec<u64>>());
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        group.bench_function(format!("schoolbook_{kernel:?}"), |bch| {
            bch.iter(|| tn_hadamard64_with(kernel, &a, &x, &y))
        });
        group.bench_function(format!("karatsuba_{kernel:?}"), |bch| {
            bch.iter(|| {
                let mut sum = PolyProductSum::with_kernel(kernel);
                sum.add_hadamard_products(&a, &x, &y);
                sum.coefficients()
            })
        });
        // The same sums with 0/1 left factors (the packed proofs' block weights), by their bits.
        let bits: Vec<u64> = (0..rows).map(|_| rng.gen()).collect();
        group.bench_function(format!("bit_weighted_{kernel:?}"), |bch| {
            bch.iter(|| {
                let mut sum = BitWeightedSum::with_kernel(kernel);
                sum.add_hadamard_rows(&bits, &x, &y);
                sum.coefficients()
            })
        });
    }
    group.finish();
}

/// The fold of a matrix's columns by weights with 0/1 coefficients (a Freivalds statement's
/// `rho^T X`), at the shape of a late ResNet-18 convolution's weights (512 x 4608): the matrix
/// product by the weights' coefficient words against the subset sums by their bits.
fn bench_row_sums_by_bits(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let mut group = c.benchmark_group("fold_by_binary_weights");
    group.sample_size(10);
    let (rows, cols) = (512, 4608);
    let x: Vec<u64> = (0..rows * cols).map(|_| rng.gen()).collect();
    let bits: Vec<u64> = (0..rows).map(|_| rng.gen()).collect();
    let words: Vec<u64> = bits.iter().flat_map(|b| (0..64).map(move |c| (b >> c) & 1)).collect();
    group.bench_function("matmul_tn", |bch| bch.iter(|| matmul_tn(&x, &words, cols, rows, 64)));
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        group.bench_function(format!("subset_sums_{kernel:?}"), |bch| {
            bch.iter(|| add_rows_by_bits_with(kernel, &x, rows, cols, &bits))
        });
    }
    // `Y sigma` for an early ResNet-50 convolution's im2col matrix (576 x 3136): the matrix
    // product against the subset sums of the transpose's rows (the transposition included).
    let (k, n) = (576, 3136);
    let y: Vec<u64> = (0..k * n).map(|_| rng.gen()).collect();
    let bits: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
    let words: Vec<u64> = bits.iter().flat_map(|b| (0..64).map(move |c| (b >> c) & 1)).collect();
    group.bench_function("right_matmul", |bch| bch.iter(|| musket_ring::matmul(&y, &words, k, n, 64)));
    group.bench_function("right_transposed_subset_sums", |bch| {
        bch.iter(|| {
            let mut t = vec![0u64; k * n];
            for (i, row) in y.chunks_exact(n).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    t[j * k + i] = v;
                }
            }
            add_rows_by_bits_with(Kernel::best(), &t, n, k, &bits)
        })
    });
    group.finish();
}

/// The packed binary proof's level sums: 2^16 AND words split into `2^m` corner rows, summed
/// over the `3^m` extended points (levels `m - 1`), against the same words' products by
/// member pairs (`2^m` weighted sums over all the words, the form until the nineteenth
/// session: `clmul_dot_and` per pair and half).
fn bench_extended_and_sums(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let mut group = c.benchmark_group("binary_level_sums");
    group.sample_size(20);
    let words = 1 << 16;
    let x: Vec<u64> = (0..words).map(|_| rng.gen()).collect();
    let y: Vec<u64> = (0..words).map(|_| rng.gen()).collect();
    let w: Vec<u64> = (0..words).map(|_| rng.gen()).collect();
    for m in [1usize, 3, 5, 6] {
        let corners = 1 << m;
        let len = words / corners;
        let xs: Vec<&[u64]> = x.chunks_exact(len).collect();
        let ys: Vec<&[u64]> = y.chunks_exact(len).collect();
        let mut acc = vec![0u128; 3usize.pow(m as u32)];
        group.bench_function(format!("extended_points_m{m}"), |b| {
            b.iter(|| musket_ring::clmul_dot_and_extended(&w[..len], &xs, &ys, false, &mut acc))
        });
        group.bench_function(format!("extended_points_without_last_one_m{m}"), |b| {
            b.iter(|| musket_ring::clmul_dot_and_extended(&w[..len], &xs, &ys, true, &mut acc))
        });
        group.bench_function(format!("member_pairs_m{m}"), |b| {
            b.iter(|| {
                let mut total = 0u128;
                for _ in 0..corners {
                    total ^= musket_ring::clmul_dot_and(&w, &x, &y);
                }
                total
            })
        });
    }
    group.finish();
}

/// A packed ring proof's per-group product (`musket_core::dzkp_packed`: 64 lanes by 64
/// members by 64 coefficients) with its operands' rows a power of two of words apart (the
/// members' blocks of one group, 256 groups), against the right operand laid out group by
/// group (contiguous rows) and both contiguous: rows `2^k` words apart share cache sets.
fn bench_strided_products(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let mut group = c.benchmark_group("strided_group_products");
    let (d, groups) = (64usize, 256usize);
    let x: Vec<u64> = (0..groups * d * d).map(|_| rng.gen()).collect();
    let w: Vec<u64> = (0..groups * d * d).map(|_| rng.gen()).collect();
    let mut out = vec![0u64; d * d];
    // The right operand's row stride and where group `q`'s rows start: member-major (as
    // the left one), or group by group.
    let layouts = [("both_strided_256_groups", groups * d, d), ("right_by_group_256_groups", d, d * d)];
    for (name, ldw, group_start) in layouts {
        let mut q = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                q = (q + 1) % groups;
                let (xq, wq) = (&x[q * d..], &w[q * group_start..]);
                musket_ring::matmul_tn_strided_add(xq, groups * d, wq, ldw, &mut out, d, (d, d, d))
            })
        });
    }
    group.bench_function("contiguous", |b| {
        b.iter(|| musket_ring::matmul_tn_strided_add(&x, d, &w, d, &mut out, d, (d, d, d)))
    });
    // Fifteen members, as many of ResNet-50's proofs have: the per-tile passes (clearing a
    // tile, adding it back) weigh more against fewer steps.
    group.bench_function("contiguous_15_steps", |b| {
        b.iter(|| musket_ring::matmul_tn_strided_add(&x, d, &w, d, &mut out, d, (d, 15, d)))
    });
    group.finish();
}

/// A fold's product by a 0/1 challenge (`add_times_binary_poly`): 32 elements, a challenge
/// with about half its 64 coefficients set, GR(2^64, 64)'s taps.
fn bench_binary_poly(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let mut group = c.benchmark_group("binary_poly");
    let words = 64 * musket_ring::BINARY_POLY_CHUNK;
    let d: Vec<u64> = (0..words).map(|_| rng.gen()).collect();
    let mut out = vec![0u64; words];
    let t: u64 = rng.gen();
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        group.bench_function(format!("chunk_{kernel:?}"), |b| {
            b.iter(|| musket_ring::add_times_binary_poly_with(kernel, &d, t, &[0, 1, 3, 4], &mut out))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_matmul,
    bench_poly_sums,
    bench_row_sums_by_bits,
    bench_extended_and_sums,
    bench_strided_products,
    bench_binary_poly
);
criterion_main!(benches);
