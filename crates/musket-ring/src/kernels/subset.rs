//! Sums of rows selected by the bits of weight words: [`add_rows_by_bits`]. The malicious back
//! end's Freivalds statements fold a matrix product's operands by weights drawn from the
//! exceptional set, ring elements whose 64 coefficients are 0 or 1. Coefficient `c` of the
//! fold of a column is then the sum of the rows whose weight has bit `c` set: a product by a
//! 0/1 matrix, done here by the method of the Four Russians (the sums of every subset of four
//! rows once, then one table entry added per coefficient), about a third of the additions of
//! the matrix product and none of its `vpmullq`. No crate has it.

use super::Kernel;

/// Rows whose subset sums make one table.
pub(super) const GROUP: usize = 4;
/// Columns a step takes.
const LANES: usize = 32;
/// Coefficients of a weight.
const COEFFS: usize = 64;

/// `out[t * 64 + c] = sum over rows i with bit c of weights[i] set of x[i * cols + t]`
/// (wrapping), for an `[rows, cols]` matrix `x`: the fold `sum_i rho_i x[i, t]` of every column
/// by weights `rho_i` with 0/1 coefficients (`weights[i]`'s bit `c` the coefficient of `X^c`),
/// each result's 64 coefficients contiguous.
///
/// # Panics
/// If `x` is shorter than `rows * cols` or `weights` than `rows`.
pub fn add_rows_by_bits(x: &[u64], rows: usize, cols: usize, weights: &[u64]) -> Vec<u64> {
    add_rows_by_bits_with(Kernel::best(), x, rows, cols, weights)
}

/// [`add_rows_by_bits`] with a chosen kernel (tests compare them).
///
/// # Panics
/// As [`add_rows_by_bits`], or if `kernel` is not supported by this CPU.
pub fn add_rows_by_bits_with(
    kernel: Kernel,
    x: &[u64],
    rows: usize,
    cols: usize,
    weights: &[u64],
) -> Vec<u64> {
    assert!(kernel.is_supported(), "add_rows_by_bits: the {kernel:?} kernel is not supported by this CPU");
    assert!(x.len() >= rows * cols, "add_rows_by_bits: x is shorter than rows * cols");
    assert!(weights.len() >= rows, "add_rows_by_bits: fewer weights than rows");
    // Per group of four rows and coefficient, the subset of the group's rows it selects.
    let selections: Vec<[u8; COEFFS]> = weights[..rows]
        .chunks(GROUP)
        .map(|w| {
            std::array::from_fn(|c| {
                w.iter().enumerate().fold(0u8, |acc, (j, v)| acc | (((v >> c) & 1) as u8) << j)
            })
        })
        .collect();
    let mut out = vec![0u64; cols * COEFFS];
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => super::x86::subset_sums_avx512(x, rows, cols, &selections, &mut out),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::x86::subset_sums_avx2(x, rows, cols, &selections, &mut out),
        _ => body(x, rows, cols, &selections, &mut out),
    }
    out
}

/// Completes a table whose entries `1 << j` hold four rows: entry `s` becomes the sum of the
/// rows its bits select, each one addition from a smaller subset's (entry 0, the empty
/// subset, is left as it is: zero). Shared by every Four Russians kernel here.
#[inline(always)]
pub(super) fn fill_subset_sums<const N: usize>(table: &mut [[u64; N]; 1 << GROUP]) {
    for s in 3..1usize << GROUP {
        let low = s & (s - 1);
        if low != 0 {
            let (head, tail) = table.split_at_mut(s);
            for ((o, a), b) in tail[0].iter_mut().zip(&head[low]).zip(&head[s ^ low]) {
                *o = a.wrapping_add(*b);
            }
        }
    }
}

/// Columns a step takes: four 512-bit vectors per row.
type Lanes = [u64; LANES];

#[inline(always)]
fn add_into(a: &mut Lanes, b: &Lanes) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_add(*y);
    }
}

/// [`LANES`] columns at a time (a ragged last step reads zeros past the end): the 64
/// coefficients' accumulators stay in L1 (16 KiB) over all the rows; per group of four rows,
/// the table of its 16 subset sums (each one addition from a smaller subset's, the empty one
/// zero), then each coefficient adds the table entry its four weight bits select. Reading
/// `x` (once) is most of the time on a large matrix: a version with 16 accumulators in
/// registers and every group's table built first was no faster.
#[inline(always)]
pub(super) fn body(x: &[u64], rows: usize, cols: usize, selections: &[[u8; COEFFS]], out: &mut [u64]) {
    let mut acc = vec![[0u64; LANES]; COEFFS];
    let mut table = [[0u64; LANES]; 1 << GROUP];
    for t0 in (0..cols).step_by(LANES) {
        let width = LANES.min(cols - t0);
        acc.iter_mut().for_each(|a| *a = [0; LANES]);
        for (g, selection) in selections.iter().enumerate() {
            for j in 0..GROUP {
                let i = g * GROUP + j;
                let entry = &mut table[1 << j];
                if i >= rows {
                    *entry = [0; LANES];
                } else if width == LANES {
                    *entry = x[i * cols + t0..][..LANES].try_into().expect("a step");
                } else {
                    *entry = [0; LANES];
                    entry[..width].copy_from_slice(&x[i * cols + t0..][..width]);
                }
            }
            fill_subset_sums(&mut table);
            for (a, &s) in acc.iter_mut().zip(selection) {
                add_into(a, &table[s as usize]);
            }
        }
        for l in 0..width {
            for (c, a) in acc.iter().enumerate() {
                out[(t0 + l) * COEFFS + c] = a[l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Row by row and bit by bit.
    fn naive(x: &[u64], rows: usize, cols: usize, weights: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; cols * COEFFS];
        for i in 0..rows {
            for c in (0..COEFFS).filter(|c| weights[i] >> c & 1 == 1) {
                for t in 0..cols {
                    out[t * COEFFS + c] = out[t * COEFFS + c].wrapping_add(x[i * cols + t]);
                }
            }
        }
        out
    }

    #[test]
    fn row_sums_by_weight_bits_match_the_naive_ones() {
        let mut rng = rand::thread_rng();
        // Row counts around the group of four, column counts around a pass; extreme words.
        for (rows, cols) in [(0, 5), (1, 1), (3, 7), (4, 256), (5, 257), (9, 600), (17, 33)] {
            let mut x: Vec<u64> = (0..rows * cols).map(|_| rng.gen()).collect();
            if let Some(v) = x.first_mut() {
                *v = u64::MAX;
            }
            if let Some(v) = x.last_mut() {
                *v = 1 << 63;
            }
            let mut weights: Vec<u64> = (0..rows).map(|_| rng.gen()).collect();
            if rows > 2 {
                (weights[0], weights[1]) = (0, u64::MAX);
            }
            let want = naive(&x, rows, cols, &weights);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                assert_eq!(
                    add_rows_by_bits_with(kernel, &x, rows, cols, &weights),
                    want,
                    "{rows} x {cols}, {kernel:?}"
                );
            }
        }
    }
}
