//! Between element-major and coefficient-major chunks of polynomials: the Galois-ring folds
//! keep their vectors element by element (64 coefficient words an element) and multiply by a
//! 0/1 challenge a chunk of [`BINARY_POLY_CHUNK`] elements at a time in coefficient-major rows
//! ([`super::add_times_binary_poly`]). Word by word, turning a chunk into rows and adding the
//! product back cost as much as the product itself; the AVX-512 build transposes 8 x 8 blocks
//! of words in registers. No crate transposes wrapping u64 blocks with AVX-512.

use super::{Kernel, BINARY_POLY_CHUNK};

/// Coefficients of a polynomial.
const COEFFS: usize = 64;
/// Words of a chunk.
const WORDS: usize = COEFFS * BINARY_POLY_CHUNK;

/// What a transposition reads: a chunk's elements, or the differences of two chunks'.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// Element `c`'s coefficient `k` at `v[c * 64 + k]`.
    Elements(&'a [u64]),
    /// `hi - lo`, both as [`Source::Elements`].
    Differences { lo: &'a [u64], hi: &'a [u64] },
}

impl Source<'_> {
    pub(super) fn words(&self) -> usize {
        match self {
            Source::Elements(v) => v.len(),
            Source::Differences { lo, hi } => lo.len().min(hi.len()),
        }
    }
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        match self {
            Source::Elements(v) => v[i],
            Source::Differences { lo, hi } => hi[i].wrapping_sub(lo[i]),
        }
    }
}

/// Row `k` of `rows` (32 words, at `k * 32`) becomes coefficient `k` of each element `c` of
/// `elements` (element-major, at most [`BINARY_POLY_CHUNK`] whole elements of 64 words),
/// zero past the last element.
///
/// # Panics
/// If `elements` is not whole elements or holds more than a chunk, or `rows` is shorter than
/// a chunk's 64 rows.
pub fn coefficient_rows(elements: &[u64], rows: &mut [u64]) {
    coefficient_rows_with(Kernel::best(), Source::Elements(elements), rows)
}

/// [`coefficient_rows`] of `hi - lo`, elementwise (wrapping).
///
/// # Panics
/// As [`coefficient_rows`], or if `lo` and `hi` differ in length.
pub fn coefficient_rows_of_differences(lo: &[u64], hi: &[u64], rows: &mut [u64]) {
    assert_eq!(lo.len(), hi.len(), "coefficient_rows_of_differences: lengths differ");
    coefficient_rows_with(Kernel::best(), Source::Differences { lo, hi }, rows)
}

/// Adds coefficient-major `rows` (row `k` at `k * 32`) to the element-major `elements` (at most
/// a chunk of whole elements; rows' columns past them are not read).
///
/// # Panics
/// If `elements` is not whole elements or holds more than a chunk, or `rows` is shorter than
/// a chunk's 64 rows.
pub fn add_coefficient_rows(rows: &[u64], elements: &mut [u64]) {
    add_coefficient_rows_with(Kernel::best(), rows, elements)
}

/// [`coefficient_rows`] (or its differences) with a chosen kernel (tests compare them).
///
/// # Panics
/// As [`coefficient_rows`], or if `kernel` is not supported by this CPU.
pub(super) fn coefficient_rows_with(kernel: Kernel, src: Source<'_>, rows: &mut [u64]) {
    assert!(kernel.is_supported(), "coefficient_rows: the {kernel:?} kernel is not supported by this CPU");
    let words = src.words();
    assert!(
        words.is_multiple_of(COEFFS) && words <= WORDS && rows.len() >= WORDS,
        "coefficient_rows: operand lengths"
    );
    let rows = &mut rows[..WORDS];
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => super::x86::coefficient_rows_avx512(src, rows),
        _ => rows_body(src, rows, 0),
    }
}

/// [`add_coefficient_rows`] with a chosen kernel.
///
/// # Panics
/// As [`add_coefficient_rows`], or if `kernel` is not supported by this CPU.
pub(super) fn add_coefficient_rows_with(kernel: Kernel, rows: &[u64], elements: &mut [u64]) {
    assert!(
        kernel.is_supported(),
        "add_coefficient_rows: the {kernel:?} kernel is not supported by this CPU"
    );
    assert!(
        elements.len().is_multiple_of(COEFFS) && elements.len() <= WORDS && rows.len() >= WORDS,
        "add_coefficient_rows: operand lengths"
    );
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => super::x86::add_coefficient_rows_avx512(&rows[..WORDS], elements),
        _ => add_body(&rows[..WORDS], elements, 0),
    }
}

/// Word by word from element `first` on (the vector kernel leaves it the elements past its
/// last whole block of eight), and zero past the last element.
pub(super) fn rows_body(src: Source<'_>, rows: &mut [u64], first: usize) {
    let elements = src.words() / COEFFS;
    for c in first..elements {
        for k in 0..COEFFS {
            rows[k * BINARY_POLY_CHUNK + c] = src.word(c * COEFFS + k);
        }
    }
    for k in 0..COEFFS {
        rows[k * BINARY_POLY_CHUNK + elements.max(first)..(k + 1) * BINARY_POLY_CHUNK].fill(0);
    }
}

/// Word by word from element `first` on.
pub(super) fn add_body(rows: &[u64], elements: &mut [u64], first: usize) {
    for (c, e) in elements.chunks_exact_mut(COEFFS).enumerate().skip(first) {
        for (k, v) in e.iter_mut().enumerate() {
            *v = v.wrapping_add(rows[k * BINARY_POLY_CHUNK + c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, seed: u64) -> Vec<u64> {
        (0..n as u64).map(|i| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15 ^ seed).rotate_left(17)).collect()
    }

    /// Every kernel, for every element count up to a chunk (whole blocks of eight, partial
    /// ones, none), gives the definition: rows are the coefficients, zero past the elements;
    /// adding rows back adds coefficient `k` of element `c` from row `k`, column `c`.
    #[test]
    fn transpositions_match_their_definition() {
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            for n in [0usize, 1, 7, 8, 9, 16, 23, 31, 32] {
                let (lo, hi) = (words(n * COEFFS, 1), words(n * COEFFS, 2));
                let mut rows = vec![u64::MAX; WORDS];
                coefficient_rows_with(kernel, Source::Elements(&hi), &mut rows);
                let mut diffs = vec![u64::MAX; WORDS];
                coefficient_rows_with(kernel, Source::Differences { lo: &lo, hi: &hi }, &mut diffs);
                for k in 0..COEFFS {
                    for c in 0..BINARY_POLY_CHUNK {
                        let (want, want_diff) = if c < n {
                            (hi[c * COEFFS + k], hi[c * COEFFS + k].wrapping_sub(lo[c * COEFFS + k]))
                        } else {
                            (0, 0)
                        };
                        assert_eq!(rows[k * BINARY_POLY_CHUNK + c], want, "{kernel:?}, {n} elements");
                        assert_eq!(diffs[k * BINARY_POLY_CHUNK + c], want_diff, "{kernel:?}, {n} elements");
                    }
                }
                let table = words(WORDS, 3);
                let mut sum = lo.clone();
                add_coefficient_rows_with(kernel, &table, &mut sum);
                for c in 0..n {
                    for k in 0..COEFFS {
                        let want = lo[c * COEFFS + k].wrapping_add(table[k * BINARY_POLY_CHUNK + c]);
                        assert_eq!(sum[c * COEFFS + k], want, "{kernel:?}, {n} elements");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "operand lengths")]
    fn more_than_a_chunk_is_refused() {
        coefficient_rows(&vec![0; WORDS + COEFFS], &mut vec![0; WORDS]);
    }
}
