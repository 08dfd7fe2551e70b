//! The u64 matrix product. No maintained crate multiplies wrapping u64 matrices (BLAS works on
//! floats), so the kernel is written here: rows of the output are computed in parallel, the
//! inner loop is a broadcast-multiply-accumulate over a row of B that LLVM vectorises, and the
//! k dimension is blocked so that a panel of B stays in cache.

use rayon::prelude::*;

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

const K_BLOCK: usize = 256;
const N_BLOCK: usize = 512;
// Below this many multiply-adds, threading costs more than it saves.
const PARALLEL_THRESHOLD: usize = 1 << 16;

fn row_block(a_row: &[u64], b: &[u64], c_row: &mut [u64], k: usize, n: usize) {
    for j0 in (0..n).step_by(N_BLOCK) {
        let j1 = (j0 + N_BLOCK).min(n);
        let c_part = &mut c_row[j0..j1];
        for p0 in (0..k).step_by(K_BLOCK) {
            for p in p0..(p0 + K_BLOCK).min(k) {
                let a_ip = a_row[p];
                let b_part = &b[p * n + j0..p * n + j1];
                for (c, &bv) in c_part.iter_mut().zip(b_part) {
                    *c = c.wrapping_add(a_ip.wrapping_mul(bv));
                }
            }
        }
    }
}

/// Wrapping matrix product `[m, k] x [k, n] -> [m, n]`, row-major, parallel over output rows.
pub fn matmul(a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    assert_eq!(a.len(), m * k, "matmul: a has the wrong length");
    assert_eq!(b.len(), k * n, "matmul: b has the wrong length");
    let mut c = vec![0u64; m * n];
    if n == 0 || k == 0 {
        return c;
    }
    if m * k * n < PARALLEL_THRESHOLD {
        for (i, c_row) in c.chunks_mut(n).enumerate() {
            row_block(&a[i * k..(i + 1) * k], b, c_row, k, n);
        }
    } else {
        c.par_chunks_mut(n).enumerate().for_each(|(i, c_row)| {
            row_block(&a[i * k..(i + 1) * k], b, c_row, k, n);
        });
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn fast_matches_naive_on_odd_shapes() {
        let mut rng = rand::thread_rng();
        for &(m, k, n) in
            &[(1, 1, 1), (3, 5, 7), (17, 300, 9), (64, 64, 64), (2, 600, 700), (0, 3, 2), (4, 0, 2)]
        {
            let a: Vec<u64> = (0..m * k).map(|_| rng.gen()).collect();
            let b: Vec<u64> = (0..k * n).map(|_| rng.gen()).collect();
            assert_eq!(matmul(&a, &b, m, k, n), matmul_naive(&a, &b, m, k, n), "{m}x{k}x{n}");
        }
    }
}
