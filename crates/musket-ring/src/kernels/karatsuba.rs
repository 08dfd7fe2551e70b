//! Sums of products of polynomials of degree below 64 over Z_2^64 by Karatsuba:
//! [`PolyProductSum`]. The malicious back end's proofs spend most of their time on
//! `sum_i a_i(X) b_i(X)` for Galois-ring elements (their coefficient words), where a
//! schoolbook product costs `64^2` word products per pair. No crate multiplies polynomials
//! over Z_2^64 (NTT-based ones need a field), so this kernel is ours.
//!
//! Three levels of Karatsuba split each operand into 27 *leaves* of 8 coefficients (a leaf
//! is a sum of halves of halves...: additions only); each pair's product is then 27 products
//! of 8-coefficient leaves, `27 * 64 = 1728` word products instead of 4096. Karatsuba's
//! recombination (`P_lo + X^h (P_sum - P_lo - P_hi) + X^(2h) P_hi`) uses subtractions only,
//! so it is exact over Z_2^64, and it is linear: the leaves' products are *summed over all
//! pairs first*, as 8 x 8 outer products (one `vpmullq` with a broadcast per row of a leaf),
//! and recombined once at the end. Per pair the cost is the two spreads (152 additions
//! each) and `27 * 8` vector products and additions, against `512` of each for the
//! schoolbook tile kernel.

use super::Kernel;

/// Coefficients of an operand (a Galois-ring element of degree 64).
pub const POLY_COEFFS: usize = 64;
/// Coefficients of a product of two operands, `2 * 64 - 1`, padded to 128 (the last is 0).
pub const PRODUCT_COEFFS: usize = 2 * POLY_COEFFS;
/// Coefficients of a leaf.
const LEAF: usize = 8;
/// Leaves of an operand: three levels of Karatsuba, `3^3`.
const LEAVES: usize = 27;
/// Words of a spread operand.
const SPREAD: usize = LEAVES * LEAF;
/// Pairs spread at a time: both spreads of a chunk (27 KiB) stay in the L1 cache while
/// every leaf's accumulator passes over them.
const CHUNK_ROWS: usize = 8;

/// A running sum `sum_i a_i(X) b_i(X)` of products of polynomials with 64 coefficients each
/// (wrapping in Z_2^64), kept as the 27 leaves' summed outer products; [`Self::coefficients`]
/// recombines them into the 127 coefficients of the sum (unreduced: the caller reduces
/// modulo its ring's polynomial). [`PolyProductSums`] keeps several such sums.
#[derive(Clone, Debug, Default)]
pub struct PolyProductSum(PolyProductSums);

impl PolyProductSum {
    /// An empty sum, using the fastest kernel this CPU supports.
    pub fn new() -> Self {
        Self(PolyProductSums::new(1))
    }

    /// An empty sum with a chosen kernel (tests compare them).
    ///
    /// # Panics
    /// If `kernel` is not supported by this CPU.
    pub fn with_kernel(kernel: Kernel) -> Self {
        Self(PolyProductSums::with_kernel(kernel, 1))
    }

    /// Adds `sum_(r < rows) a_r(X) b_r(X)`, with `a_r` the 64 words at `a[r * lda..]` and `b_r`
    /// those at `b[r * ldb..]`.
    ///
    /// # Panics
    /// If an operand is too short for `rows` rows.
    pub fn add_products(&mut self, a: &[u64], lda: usize, b: &[u64], ldb: usize, rows: usize) {
        self.0.add_products(0, a, lda, b, ldb, rows);
    }

    /// Adds `sum_r a_r(X) (x_r * y_r)(X)` for `[k, 64]` row-major `a`, `x`, `y`, the middle
    /// factor the elementwise product of two rows (a packed product of two ring blocks).
    ///
    /// # Panics
    /// If the three slices differ in length or are not whole rows.
    pub fn add_hadamard_products(&mut self, a: &[u64], x: &[u64], y: &[u64]) {
        self.0.add_hadamard_products(0, a, x, y);
    }

    /// The sum's coefficients, `out[w]` that of `X^w` (`w < 127`; `out[127]` is 0).
    pub fn coefficients(&self) -> [u64; PRODUCT_COEFFS] {
        self.0.coefficients(0)
    }
}

/// Several sums of polynomial products (see [`PolyProductSum`]), indexed from 0, sharing
/// their scratch space: 14 KiB of accumulators each.
#[derive(Clone, Debug)]
pub struct PolyProductSums {
    kernel: Kernel,
    /// Sum `i`'s leaf `l` outer-product sums at `(i * 27 + l) * 64`, row `i` (a's
    /// coefficient) then column `j`.
    acc: Vec<u64>,
    spread_a: Vec<u64>,
    spread_b: Vec<u64>,
}

impl Default for PolyProductSums {
    fn default() -> Self {
        Self::new(1)
    }
}

impl PolyProductSums {
    /// `count` empty sums, using the fastest kernel this CPU supports.
    pub fn new(count: usize) -> Self {
        Self::with_kernel(Kernel::best(), count)
    }

    /// `count` empty sums with a chosen kernel.
    ///
    /// # Panics
    /// If `kernel` is not supported by this CPU.
    pub fn with_kernel(kernel: Kernel, count: usize) -> Self {
        assert!(kernel.is_supported(), "PolyProductSums: the {kernel:?} kernel is not supported by this CPU");
        Self {
            kernel,
            acc: vec![0; count * ACC_WORDS],
            spread_a: vec![0; CHUNK_ROWS * SPREAD],
            spread_b: vec![0; CHUNK_ROWS * SPREAD],
        }
    }

    /// Adds `sum_(r < rows) a_r(X) b_r(X)` to sum `i` ([`PolyProductSum::add_products`]).
    ///
    /// # Panics
    /// If an operand is too short for `rows` rows, or `i` is not a sum's index.
    pub fn add_products(&mut self, i: usize, a: &[u64], lda: usize, b: &[u64], ldb: usize, rows: usize) {
        if rows == 0 {
            return;
        }
        assert!(
            a.len() >= (rows - 1) * lda + POLY_COEFFS && b.len() >= (rows - 1) * ldb + POLY_COEFFS,
            "PolyProductSums::add_products: an operand is too short"
        );
        for r0 in (0..rows).step_by(CHUNK_ROWS) {
            let n = CHUNK_ROWS.min(rows - r0);
            let chunk = Chunk::Rows { a: &a[r0 * lda..], lda, b: &b[r0 * ldb..], ldb, rows: n };
            self.add_chunk(i, chunk);
        }
    }

    /// Adds `sum_r a_r(X) (x_r * y_r)(X)` to sum `i` ([`PolyProductSum::add_hadamard_products`]).
    ///
    /// # Panics
    /// If the three slices differ in length or are not whole rows, or `i` is not a sum's index.
    pub fn add_hadamard_products(&mut self, i: usize, a: &[u64], x: &[u64], y: &[u64]) {
        assert!(
            a.len() == x.len() && x.len() == y.len() && a.len().is_multiple_of(POLY_COEFFS),
            "PolyProductSums::add_hadamard_products: operand lengths"
        );
        let rows = a.len() / POLY_COEFFS;
        for r0 in (0..rows).step_by(CHUNK_ROWS) {
            let n = CHUNK_ROWS.min(rows - r0);
            let span = r0 * POLY_COEFFS..(r0 + n) * POLY_COEFFS;
            let chunk = Chunk::Hadamard { a: &a[span.clone()], x: &x[span.clone()], y: &y[span], rows: n };
            self.add_chunk(i, chunk);
        }
    }

    fn add_chunk(&mut self, i: usize, chunk: Chunk<'_>) {
        let acc = &mut self.acc[i * ACC_WORDS..(i + 1) * ACC_WORDS];
        let (sa, sb) = (&mut self.spread_a, &mut self.spread_b);
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => super::x86::karatsuba_chunk_avx512(chunk, sa, sb, acc),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => super::x86::karatsuba_chunk_avx2(chunk, sa, sb, acc),
            _ => chunk_body(chunk, sa, sb, acc),
        }
    }

    /// Sum `i`'s coefficients, `out[w]` that of `X^w` (`w < 127`; `out[127]` is 0).
    ///
    /// # Panics
    /// If `i` is not a sum's index.
    pub fn coefficients(&self, i: usize) -> [u64; PRODUCT_COEFFS] {
        let acc = &self.acc[i * ACC_WORDS..(i + 1) * ACC_WORDS];
        // Each leaf's product: the anti-diagonals of its outer-product sums.
        let mut leaf = [[0u64; 2 * LEAF - 1]; LEAVES];
        for (l, p) in leaf.iter_mut().enumerate() {
            for i in 0..LEAF {
                for j in 0..LEAF {
                    p[i + j] = p[i + j].wrapping_add(acc[l * LEAF * LEAF + i * LEAF + j]);
                }
            }
        }
        // Recombine level by level, leaves in the spreads' order (low, high, sum).
        let p16: Vec<Vec<u64>> = leaf.chunks_exact(3).map(|t| combine(&t[0], &t[1], &t[2])).collect();
        let p32: Vec<Vec<u64>> = p16.chunks_exact(3).map(|t| combine(&t[0], &t[1], &t[2])).collect();
        let p64 = combine(&p32[0], &p32[1], &p32[2]);
        let mut out = [0u64; PRODUCT_COEFFS];
        out[..p64.len()].copy_from_slice(&p64);
        out
    }
}

/// Words of one sum's accumulators.
const ACC_WORDS: usize = LEAVES * LEAF * LEAF;

/// One Karatsuba recombination: from the products of the low halves, the high halves and the
/// halves' sums (each `2h - 1` coefficients), the product of the whole (`4h - 1`).
fn combine(lo: &[u64], hi: &[u64], sum: &[u64]) -> Vec<u64> {
    let w = lo.len();
    let h = w.div_ceil(2);
    let mut out = vec![0u64; 2 * w + 1];
    for k in 0..w {
        out[k] = out[k].wrapping_add(lo[k]);
        out[2 * h + k] = out[2 * h + k].wrapping_add(hi[k]);
        let mid = sum[k].wrapping_sub(lo[k]).wrapping_sub(hi[k]);
        out[h + k] = out[h + k].wrapping_add(mid);
    }
    out
}

/// Up to [`CHUNK_ROWS`] pairs of operands.
#[derive(Clone, Copy)]
pub(super) enum Chunk<'a> {
    /// Rows of `a` and `b` at their strides.
    Rows { a: &'a [u64], lda: usize, b: &'a [u64], ldb: usize, rows: usize },
    /// Rows of `a` and of the elementwise product of `x` and `y`, contiguous.
    Hadamard { a: &'a [u64], x: &'a [u64], y: &'a [u64], rows: usize },
}

/// The spread of 16 coefficients: leaves low, high, their sum.
#[inline(always)]
fn spread16(a: &[u64], out: &mut [u64]) {
    let (a, out) = (&a[..16], &mut out[..3 * LEAF]);
    out[..LEAF].copy_from_slice(&a[..LEAF]);
    out[LEAF..2 * LEAF].copy_from_slice(&a[LEAF..]);
    for i in 0..LEAF {
        out[2 * LEAF + i] = a[i].wrapping_add(a[LEAF + i]);
    }
}

#[inline(always)]
fn spread32(a: &[u64], out: &mut [u64]) {
    let (a, out) = (&a[..32], &mut out[..9 * LEAF]);
    let mut s = [0u64; 16];
    for i in 0..16 {
        s[i] = a[i].wrapping_add(a[16 + i]);
    }
    spread16(&a[..16], &mut out[..3 * LEAF]);
    spread16(&a[16..], &mut out[3 * LEAF..6 * LEAF]);
    spread16(&s, &mut out[6 * LEAF..]);
}

/// The spread of an operand: its 27 leaves, in the order [`PolyProductSum::coefficients`]
/// recombines them.
#[inline(always)]
fn spread64(a: &[u64], out: &mut [u64]) {
    let (a, out) = (&a[..POLY_COEFFS], &mut out[..SPREAD]);
    let mut s = [0u64; 32];
    for i in 0..32 {
        s[i] = a[i].wrapping_add(a[32 + i]);
    }
    spread32(&a[..32], &mut out[..9 * LEAF]);
    spread32(&a[32..], &mut out[9 * LEAF..18 * LEAF]);
    spread32(&s, &mut out[18 * LEAF..]);
}

/// Spreads a chunk's operands into `sa` and `sb`; returns its number of rows.
#[inline(always)]
fn spread_chunk(chunk: Chunk<'_>, sa: &mut [u64], sb: &mut [u64]) -> usize {
    match chunk {
        Chunk::Rows { a, lda, b, ldb, rows } => {
            for r in 0..rows {
                spread64(&a[r * lda..], &mut sa[r * SPREAD..]);
                spread64(&b[r * ldb..], &mut sb[r * SPREAD..]);
            }
            rows
        }
        Chunk::Hadamard { a, x, y, rows } => {
            let mut h = [0u64; POLY_COEFFS];
            for r in 0..rows {
                let span = r * POLY_COEFFS..(r + 1) * POLY_COEFFS;
                for ((o, u), v) in h.iter_mut().zip(&x[span.clone()]).zip(&y[span.clone()]) {
                    *o = u.wrapping_mul(*v);
                }
                spread64(&a[span], &mut sa[r * SPREAD..]);
                spread64(&h, &mut sb[r * SPREAD..]);
            }
            rows
        }
    }
}

/// The portable chunk: spreads, then every leaf's outer products added to its accumulator
/// (the 64 accumulator words fully unrolled, so that LLVM keeps them in registers).
#[inline(always)]
pub(super) fn chunk_body(chunk: Chunk<'_>, sa: &mut [u64], sb: &mut [u64], acc: &mut [u64]) {
    let rows = spread_chunk(chunk, sa, sb);
    for l in 0..LEAVES {
        let mut t = [0u64; LEAF * LEAF];
        t.copy_from_slice(&acc[l * LEAF * LEAF..][..LEAF * LEAF]);
        for r in 0..rows {
            let a = &sa[r * SPREAD + l * LEAF..][..LEAF];
            let b = &sb[r * SPREAD + l * LEAF..][..LEAF];
            for i in 0..LEAF {
                for j in 0..LEAF {
                    t[i * LEAF + j] = t[i * LEAF + j].wrapping_add(a[i].wrapping_mul(b[j]));
                }
            }
        }
        acc[l * LEAF * LEAF..][..LEAF * LEAF].copy_from_slice(&t);
    }
}

/// Leaves and words of a spread, for the x86 kernels.
pub(super) const LEAF_COUNT: usize = LEAVES;
/// Words of a spread operand, for the x86 kernels.
pub(super) const SPREAD_WORDS: usize = SPREAD;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// The schoolbook sum of products, for reference.
    fn naive(a: &[u64], b: &[u64]) -> [u64; PRODUCT_COEFFS] {
        let mut out = [0u64; PRODUCT_COEFFS];
        for (x, y) in a.chunks_exact(POLY_COEFFS).zip(b.chunks_exact(POLY_COEFFS)) {
            for i in 0..POLY_COEFFS {
                for j in 0..POLY_COEFFS {
                    out[i + j] = out[i + j].wrapping_add(x[i].wrapping_mul(y[j]));
                }
            }
        }
        out
    }

    #[test]
    fn sums_of_products_match_the_schoolbook_ones() {
        let mut rng = rand::thread_rng();
        for rows in [0usize, 1, 7, 8, 9, 33] {
            let [a, b] = [0, 1].map(|_| (0..rows * POLY_COEFFS).map(|_| rng.gen()).collect::<Vec<u64>>());
            let want = naive(&a, &b);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut sum = PolyProductSum::with_kernel(kernel);
                sum.add_products(&a, POLY_COEFFS, &b, POLY_COEFFS, rows);
                assert_eq!(sum.coefficients(), want, "{rows} rows, {kernel:?}");
                // Added in two calls, the same.
                let mut split = PolyProductSum::with_kernel(kernel);
                let half = rows / 2;
                split.add_products(&a, POLY_COEFFS, &b, POLY_COEFFS, half);
                split.add_products(
                    &a[half * POLY_COEFFS..],
                    POLY_COEFFS,
                    &b[half * POLY_COEFFS..],
                    POLY_COEFFS,
                    rows - half,
                );
                assert_eq!(split.coefficients(), want, "{rows} rows in two, {kernel:?}");
            }
        }
    }

    #[test]
    fn strided_rows_and_extreme_words_are_handled() {
        let mut rng = rand::thread_rng();
        let rows = 11;
        // Rows embedded in wider ones; words at the ends of the range.
        let (lda, ldb) = (POLY_COEFFS + 5, 2 * POLY_COEFFS);
        let pick = |rng: &mut rand::rngs::ThreadRng| match rng.gen_range(0..4) {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 63,
            _ => rng.gen(),
        };
        let a: Vec<u64> = (0..rows * lda).map(|_| pick(&mut rng)).collect();
        let b: Vec<u64> = (0..rows * ldb).map(|_| pick(&mut rng)).collect();
        let dense = |v: &[u64], ld: usize| -> Vec<u64> {
            (0..rows).flat_map(|r| v[r * ld..r * ld + POLY_COEFFS].to_vec()).collect()
        };
        let want = naive(&dense(&a, lda), &dense(&b, ldb));
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let mut sum = PolyProductSum::with_kernel(kernel);
            sum.add_products(&a, lda, &b, ldb, rows);
            assert_eq!(sum.coefficients(), want, "{kernel:?}");
        }
    }

    #[test]
    fn hadamard_products_match_the_formed_ones() {
        let mut rng = rand::thread_rng();
        for rows in [1usize, 8, 21] {
            // Words at the ends of the range among random ones (the products' cross terms).
            let pick = |rng: &mut rand::rngs::ThreadRng| match rng.gen_range(0..5) {
                0 => 0,
                1 => u64::MAX,
                2 => 1 << 63,
                3 => u32::MAX as u64,
                _ => rng.gen(),
            };
            let [a, x, y] =
                [0, 1, 2].map(|_| (0..rows * POLY_COEFFS).map(|_| pick(&mut rng)).collect::<Vec<u64>>());
            let h: Vec<u64> = x.iter().zip(&y).map(|(p, q)| p.wrapping_mul(*q)).collect();
            let want = naive(&a, &h);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut sum = PolyProductSum::with_kernel(kernel);
                sum.add_hadamard_products(&a, &x, &y);
                assert_eq!(sum.coefficients(), want, "{rows} rows, {kernel:?}");
            }
        }
    }
}
