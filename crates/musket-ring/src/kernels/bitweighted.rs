//! Sums of polynomial products whose left factors have 0/1 coefficients:
//! [`BitWeightedSum`]. The malicious back end's packed proofs weight block `w` by `rho_w`,
//! drawn from the exceptional set (a Galois-ring element whose 64 coefficients are 0 or 1),
//! and their first levels sum `rho_w(X) h_w(X)` over the blocks. With `rho_w`'s coefficients
//! the bits of a word, that sum is `sum_c X^c S_c` with `S_c` the sum of the `h_w` whose
//! weight has bit `c` set: a product by a 0/1 matrix, done by the method of the Four Russians
//! as in [`super::add_rows_by_bits`] (per group of four rows the table of their 16 subset
//! sums, then each coefficient adds the entry its four bits select): about 150 vector
//! additions a row, against Karatsuba's 216 vector products, 216 additions and the spreads
//! ([`super::PolyProductSum`], which takes any left factor). No crate has it.

use super::subset::{fill_subset_sums, GROUP};
use super::{Kernel, POLY_COEFFS, PRODUCT_COEFFS};
/// Columns a table covers (half a row: the table and the accumulators' half stay in L1).
const HALF: usize = POLY_COEFFS / 2;

/// A running sum `sum_r rho_r(X) h_r(X)` of products of polynomials with 64 coefficients each
/// (wrapping in Z_2^64), where every `rho_r` has 0/1 coefficients, given as the bits of a
/// word (bit `c` the coefficient of `X^c`). Kept as `S_c`, the sum of the rows whose weight
/// has bit `c` set (32 KiB); [`Self::coefficients`] gives the 127 coefficients of the sum
/// (unreduced: the caller reduces modulo its ring's polynomial). [`BitWeightedSums`] keeps
/// several such sums.
#[derive(Clone, Debug, Default)]
pub struct BitWeightedSum(BitWeightedSums);

impl BitWeightedSum {
    /// An empty sum, using the fastest kernel this CPU supports.
    pub fn new() -> Self {
        Self(BitWeightedSums::new(1))
    }

    /// An empty sum with a chosen kernel (tests compare them).
    ///
    /// # Panics
    /// If `kernel` is not supported by this CPU.
    pub fn with_kernel(kernel: Kernel) -> Self {
        Self(BitWeightedSums::with_kernel(kernel, 1))
    }

    /// Adds `sum_r rho_r(X) h_r(X)` for `r < weights.len()`, `rho_r`'s coefficients the bits
    /// of `weights[r]` and `h_r` the 64 words at `h[r * ldh..]`.
    ///
    /// # Panics
    /// If `h` is too short for `weights.len()` rows.
    pub fn add_rows(&mut self, weights: &[u64], h: &[u64], ldh: usize) {
        self.0.add_rows(0, weights, h, ldh);
    }

    /// Adds `sum_r rho_r(X) (x_r * y_r)(X)` for `[k, 64]` row-major `x`, `y` (`k` =
    /// `weights.len()`), the right factor the elementwise product of two rows (a packed
    /// product of two ring blocks).
    ///
    /// # Panics
    /// If `x` or `y` is not `weights.len()` whole rows.
    pub fn add_hadamard_rows(&mut self, weights: &[u64], x: &[u64], y: &[u64]) {
        self.0.add_hadamard_rows(0, weights, x, y);
    }

    /// The sum's coefficients, `out[w]` that of `X^w` (`w < 127`; `out[127]` is 0).
    pub fn coefficients(&self) -> [u64; PRODUCT_COEFFS] {
        self.0.coefficients(0)
    }
}

/// Words of one sum's accumulators (`S_c[t]` at `c * 64 + t`).
const ACC_WORDS: usize = POLY_COEFFS * POLY_COEFFS;

/// Several sums weighted by bits (see [`BitWeightedSum`]), indexed from 0, sharing their
/// scratch space (the subset sums' tables, 32 KiB).
#[derive(Clone, Debug)]
pub struct BitWeightedSums {
    kernel: Kernel,
    acc: Vec<u64>,
    tables: Vec<Table>,
}

impl Default for BitWeightedSums {
    fn default() -> Self {
        Self::new(1)
    }
}

impl BitWeightedSums {
    /// `count` empty sums, using the fastest kernel this CPU supports.
    pub fn new(count: usize) -> Self {
        Self::with_kernel(Kernel::best(), count)
    }

    /// `count` empty sums with a chosen kernel.
    ///
    /// # Panics
    /// If `kernel` is not supported by this CPU.
    pub fn with_kernel(kernel: Kernel, count: usize) -> Self {
        assert!(kernel.is_supported(), "BitWeightedSums: the {kernel:?} kernel is not supported by this CPU");
        Self { kernel, acc: vec![0; count * ACC_WORDS], tables: vec![[[0; HALF]; 1 << GROUP]; CHUNK_GROUPS] }
    }

    /// Adds `sum_r rho_r(X) h_r(X)` to sum `i` ([`BitWeightedSum::add_rows`]).
    ///
    /// # Panics
    /// If `h` is too short for `weights.len()` rows, or `i` is not a sum's index.
    pub fn add_rows(&mut self, i: usize, weights: &[u64], h: &[u64], ldh: usize) {
        let rows = weights.len();
        if rows == 0 {
            return;
        }
        assert!(h.len() >= (rows - 1) * ldh + POLY_COEFFS, "BitWeightedSums::add_rows: h is too short");
        self.dispatch(i, Rows::Strided { weights, h, ldh });
    }

    /// Adds `sum_r rho_r(X) (x_r * y_r)(X)` to sum `i` ([`BitWeightedSum::add_hadamard_rows`]).
    ///
    /// # Panics
    /// If `x` or `y` is not `weights.len()` whole rows, or `i` is not a sum's index.
    pub fn add_hadamard_rows(&mut self, i: usize, weights: &[u64], x: &[u64], y: &[u64]) {
        assert!(
            x.len() == weights.len() * POLY_COEFFS && y.len() == x.len(),
            "BitWeightedSums::add_hadamard_rows: operand lengths"
        );
        if weights.is_empty() {
            return;
        }
        self.dispatch(i, Rows::Hadamard { weights, x, y });
    }

    fn dispatch(&mut self, i: usize, rows: Rows<'_>) {
        let acc = &mut self.acc[i * ACC_WORDS..(i + 1) * ACC_WORDS];
        let tables = &mut self.tables;
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => super::x86::bit_weighted_avx512(rows, acc, tables),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => super::x86::bit_weighted_avx2(rows, acc, tables),
            _ => body(rows, acc, tables),
        }
    }

    /// Sum `i`'s coefficients, `out[w]` that of `X^w` (`w < 127`; `out[127]` is 0).
    ///
    /// # Panics
    /// If `i` is not a sum's index.
    pub fn coefficients(&self, i: usize) -> [u64; PRODUCT_COEFFS] {
        let mut out = [0u64; PRODUCT_COEFFS];
        for (c, s) in self.acc[i * ACC_WORDS..(i + 1) * ACC_WORDS].chunks_exact(POLY_COEFFS).enumerate() {
            for (o, v) in out[c..c + POLY_COEFFS].iter_mut().zip(s) {
                *o = o.wrapping_add(*v);
            }
        }
        out
    }

    /// Sum `i`'s coefficients as [`Self::coefficients`] gives them, leaving the sum empty (a
    /// sum taken after every few rows, as the packed proofs' levels at extended points take
    /// theirs, stays in L1).
    ///
    /// # Panics
    /// If `i` is not a sum's index.
    pub fn take_coefficients(&mut self, i: usize) -> [u64; PRODUCT_COEFFS] {
        let out = self.coefficients(i);
        // (A separate fill: taking each word in the summing loop kept it scalar.)
        self.acc[i * ACC_WORDS..(i + 1) * ACC_WORDS].fill(0);
        out
    }
}

/// Per weight word `w_q`, the sum of the rows `c` of the `[64, 64]` row-major matrix `m` whose
/// bit `c` of `w_q` is set, as `out[q * 64..][..64]`: with `m`'s row `c` the coefficients of
/// `X^c e`, the products `rho_q e` of the weights `rho_q` with 0/1 coefficients (the bits of
/// `w_q`) by one element `e`. By the method of the Four Russians over `m`'s rows: per four
/// rows the table of their 16 subset sums (128 KiB in all, built once), then per weight 16
/// table rows added (128 vector additions, against a matrix product's 512 products and 512
/// additions).
///
/// # Panics
/// If `m` is not 64 x 64 words.
pub fn select_rows_by_bits(weights: &[u64], m: &[u64]) -> Vec<u64> {
    assert_eq!(m.len(), POLY_COEFFS * POLY_COEFFS, "select_rows_by_bits: m is not 64 x 64");
    let tables_count = POLY_COEFFS / GROUP;
    let mut tables = vec![[[0u64; POLY_COEFFS]; 1 << GROUP]; tables_count];
    for (n, table) in tables.iter_mut().enumerate() {
        for j in 0..GROUP {
            table[1 << j].copy_from_slice(&m[(GROUP * n + j) * POLY_COEFFS..][..POLY_COEFFS]);
        }
        fill_subset_sums(table);
    }
    let mut out = vec![0u64; weights.len() * POLY_COEFFS];
    match Kernel::best() {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => super::x86::select_rows_avx512(weights, &tables, &mut out),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::x86::select_rows_avx2(weights, &tables, &mut out),
        _ => select_body(weights, &tables, &mut out),
    }
    out
}

/// A 64-word row's table of the subset sums of four of `m`'s rows.
pub(super) type RowTable = [[u64; POLY_COEFFS]; 1 << GROUP];

/// Per weight, its 16 nibbles' table rows summed (the sum in registers).
#[inline(always)]
pub(super) fn select_body(weights: &[u64], tables: &[RowTable], out: &mut [u64]) {
    for (o, &w) in out.chunks_exact_mut(POLY_COEFFS).zip(weights) {
        let mut sum = [0u64; POLY_COEFFS];
        for (n, table) in tables.iter().enumerate() {
            let entry = &table[((w >> (GROUP * n)) & 15) as usize];
            for (s, v) in sum.iter_mut().zip(entry) {
                *s = s.wrapping_add(*v);
            }
        }
        o.copy_from_slice(&sum);
    }
}

/// The rows a call adds.
#[derive(Clone, Copy)]
pub(super) enum Rows<'a> {
    /// `h_r` at `h[r * ldh..]`.
    Strided { weights: &'a [u64], h: &'a [u64], ldh: usize },
    /// `h_r = x_r * y_r`, elementwise, rows contiguous.
    Hadamard { weights: &'a [u64], x: &'a [u64], y: &'a [u64] },
}

type Half = [u64; HALF];
/// A group's 16 subset sums of half a row each.
pub(super) type Table = [Half; 1 << GROUP];

/// Groups of four rows whose tables are built before the accumulators pass over them (32 KiB
/// of tables: with half a row each, they and the rows stay in L1).
const CHUNK_GROUPS: usize = 8;

/// Coefficient `c`'s four weight bits of a group, for every `c`.
#[inline(always)]
fn selections(w: &[u64]) -> [u8; POLY_COEFFS] {
    let mut select = [0u8; POLY_COEFFS];
    for (j, &bits) in w.iter().enumerate() {
        for (c, s) in select.iter_mut().enumerate() {
            *s |= (((bits >> c) & 1) as u8) << j;
        }
    }
    select
}

/// Per chunk of [`CHUNK_GROUPS`] groups of four rows and per half of the columns: each
/// group's table of its 16 subset sums (each one addition from a smaller subset's), then per
/// coefficient `c` its accumulator (four vectors, in registers) plus the entry each group's
/// bits select. An accumulator is loaded and stored once a chunk rather than once a group,
/// which was a third of the time (32 KiB of accumulators read and written per four rows).
#[inline(always)]
pub(super) fn body(rows: Rows<'_>, acc: &mut [u64], tables: &mut [Table]) {
    let weights = match rows {
        Rows::Strided { weights, .. } | Rows::Hadamard { weights, .. } => weights,
    };
    let acc = &mut acc[..POLY_COEFFS * POLY_COEFFS];
    let tables = &mut tables[..CHUNK_GROUPS];
    let mut select = [[0u8; POLY_COEFFS]; CHUNK_GROUPS];
    let per_chunk = GROUP * CHUNK_GROUPS;
    for (k, chunk) in weights.chunks(per_chunk).enumerate() {
        let groups = chunk.len().div_ceil(GROUP);
        for (g, w) in chunk.chunks(GROUP).enumerate() {
            select[g] = selections(w);
        }
        for half in 0..2 {
            let cols = half * HALF..(half + 1) * HALF;
            for (g, w) in chunk.chunks(GROUP).enumerate() {
                let table = &mut tables[g];
                for j in 0..GROUP {
                    let entry = &mut table[1 << j];
                    if j >= w.len() {
                        *entry = [0; HALF];
                        continue;
                    }
                    let r = k * per_chunk + g * GROUP + j;
                    match rows {
                        Rows::Strided { h, ldh, .. } => {
                            entry.copy_from_slice(&h[r * ldh + cols.start..r * ldh + cols.end]);
                        }
                        Rows::Hadamard { x, y, .. } => {
                            let span = r * POLY_COEFFS + cols.start..r * POLY_COEFFS + cols.end;
                            for ((o, a), b) in entry.iter_mut().zip(&x[span.clone()]).zip(&y[span]) {
                                *o = a.wrapping_mul(*b);
                            }
                        }
                    }
                }
                fill_subset_sums(table);
            }
            for c in 0..POLY_COEFFS {
                let slot = &mut acc[c * POLY_COEFFS + cols.start..c * POLY_COEFFS + cols.end];
                let mut sum: Half = slot.try_into().expect("half a row");
                for (table, select) in tables[..groups].iter().zip(&select[..groups]) {
                    let entry = &table[select[c] as usize];
                    for (o, v) in sum.iter_mut().zip(entry) {
                        *o = o.wrapping_add(*v);
                    }
                }
                slot.copy_from_slice(&sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PolyProductSum;
    use rand::Rng;

    /// A weight word's polynomial as coefficient words (0 or 1).
    fn as_words(bits: u64) -> [u64; POLY_COEFFS] {
        std::array::from_fn(|c| (bits >> c) & 1)
    }

    #[test]
    fn rows_selected_by_bits_are_products_by_the_weights() {
        let mut rng = rand::thread_rng();
        let m: Vec<u64> = (0..POLY_COEFFS * POLY_COEFFS).map(|_| rng.gen()).collect();
        let weights = [0, u64::MAX, 1, 1 << 63, rng.gen(), rng.gen()];
        let got = select_rows_by_bits(&weights, &m);
        let rho: Vec<u64> = weights.iter().flat_map(|&w| as_words(w)).collect();
        assert_eq!(got, crate::matmul_naive(&rho, &m, weights.len(), POLY_COEFFS, POLY_COEFFS));
        assert!(select_rows_by_bits(&[], &m).is_empty());
    }

    #[test]
    fn bit_weighted_sums_match_karatsuba_ones() {
        let mut rng = rand::thread_rng();
        for rows in [1usize, 3, 4, 5, 17, 130] {
            let mut weights: Vec<u64> = (0..rows).map(|_| rng.gen()).collect();
            weights[0] = u64::MAX;
            if rows > 2 {
                weights[1] = 0;
            }
            let (x, y): (Vec<u64>, Vec<u64>) =
                (0..rows * POLY_COEFFS).map(|_| (rng.gen::<u64>(), rng.gen::<u64>())).unzip();
            let ldh = 3 * POLY_COEFFS;
            let mut h: Vec<u64> = (0..rows * ldh).map(|_| rng.gen()).collect();
            h[0] = u64::MAX;
            let rho: Vec<u64> = weights.iter().flat_map(|&w| as_words(w)).collect();
            let mut want_rows = PolyProductSum::new();
            want_rows.add_products(&rho, POLY_COEFFS, &h, ldh, rows);
            let mut want_hadamard = PolyProductSum::new();
            want_hadamard.add_hadamard_products(&rho, &x, &y);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut got = BitWeightedSum::with_kernel(kernel);
                got.add_rows(&weights, &h, ldh);
                assert_eq!(got.coefficients(), want_rows.coefficients(), "{rows} rows, {kernel:?}");
                // Sums add up over calls.
                got.add_hadamard_rows(&weights, &x, &y);
                let mut both = want_rows.clone();
                both.add_hadamard_products(&rho, &x, &y);
                assert_eq!(got.coefficients(), both.coefficients(), "{rows} rows, {kernel:?}");
                let mut alone = BitWeightedSum::with_kernel(kernel);
                alone.add_hadamard_rows(&weights, &x, &y);
                assert_eq!(alone.coefficients(), want_hadamard.coefficients(), "{rows} rows, {kernel:?}");
                // Taken, a sum is the same and then empty: the next rows start from zero.
                let mut sums = BitWeightedSums::with_kernel(kernel, 2);
                sums.add_rows(1, &weights, &h, ldh);
                assert_eq!(sums.take_coefficients(1), want_rows.coefficients(), "{rows} rows, {kernel:?}");
                assert_eq!(sums.take_coefficients(1), [0; PRODUCT_COEFFS]);
                sums.add_hadamard_rows(1, &weights, &x, &y);
                assert_eq!(
                    sums.take_coefficients(1),
                    want_hadamard.coefficients(),
                    "{rows} rows, {kernel:?}"
                );
            }
        }
    }
}
