//! x86-64 builds of the kernels: hand-written tiles for AVX2 and AVX-512 (`vpmullq` with
//! AVX-512 DQ), carry-less products with PCLMULQDQ and VPCLMULQDQ, and portable bodies compiled
//! with AVX2 or AVX-512 enabled so that LLVM uses 256/512-bit vectors. Each is only reached
//! after run-time detection, which is what makes calling it sound.
#![allow(unsafe_code)]

use super::binpoly;
use super::bitweighted;
use super::karatsuba::{self, Chunk};
use super::packed::{MR, NR};
use super::subset;
use super::transpose;
use super::xpow;

/// Steps of a strided A copied at a time into a panel (4 KiB), and of a packed one taken at a
/// time (each 2 x 8 block of the output passes over the step block's B rows, which stay in L1).
const AVX2_STEPS: usize = 64;

/// The general product's tile on AVX2: `out = a^T b` for a packed panel `a` (`kc` steps of
/// `MR` words) and `b` (`kc` steps of `NR`), by [`add_outer_products_avx2`]. `cargo bench -p
/// musket-ring`: a 1024^3 product 126 ms against LLVM's 188-207 ms.
#[target_feature(enable = "avx2")]
fn tile_avx2_impl(kc: usize, a: &[u64], b: &[u64], out: &mut [u64; MR * NR]) {
    assert!(super::holds_rows(a.len(), kc, MR, MR) && super::holds_rows(b.len(), kc, NR, NR));
    out.fill(0);
    for p0 in (0..kc).step_by(AVX2_STEPS) {
        let steps = AVX2_STEPS.min(kc - p0);
        // SAFETY: AVX2 is enabled here; the assertion above keeps the steps from p0 on of
        // both operands in bounds, and `out` holds MR rows of NR words.
        unsafe {
            add_outer_products_avx2::<NR>(
                steps,
                a.as_ptr().add(p0 * MR),
                MR,
                b.as_ptr().add(p0 * NR),
                NR,
                out.as_mut_ptr(),
                NR,
            )
        };
    }
}

/// `out += a^T b` for strided operands (`matmul_tn_strided_add`'s contract, its shape checked
/// by the caller) on AVX2: per `MR` rows of the output, `a`'s steps copied into a panel
/// (in the proofs its rows lie a power of two of words apart and share cache sets), then
/// every `NR` columns' outer products added into `out` in place, with no tile to clear and
/// add back (the proofs' products are 64 x 64 with as few as a dozen steps, where those
/// passes cost a sixth of the products). `cargo bench -p musket-ring -- strided`: the
/// proofs' strided 64^3 products 60-85 µs against 116-134 µs for LLVM's tile.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)] // three strided operands and the three sizes
fn add_tn_strided_avx2_impl(
    a: &[u64],
    lda: usize,
    b: &[u64],
    ldb: usize,
    out: &mut [u64],
    ldo: usize,
    (m, k, n): (usize, usize, usize),
) {
    assert!(m.is_multiple_of(MR) && n.is_multiple_of(NR));
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // Checked sums (`holds_rows`): the pointer arithmetic below relies on them.
    assert!(
        super::holds_rows(a.len(), k, lda, m)
            && super::holds_rows(b.len(), k, ldb, n)
            && super::holds_rows(out.len(), m, ldo, n)
    );
    let mut panel = [0u64; AVX2_STEPS * MR];
    for r0 in (0..m).step_by(MR) {
        for p0 in (0..k).step_by(AVX2_STEPS) {
            let steps = AVX2_STEPS.min(k - p0);
            for (p, row) in panel.chunks_exact_mut(MR).take(steps).enumerate() {
                row.copy_from_slice(&a[(p0 + p) * lda + r0..][..MR]);
            }
            for c0 in (0..n).step_by(NR) {
                // SAFETY: AVX2 is enabled here; the assertion above keeps `b`'s NR words at
                // every step from p0 on, and `out`'s MR rows of NR words from (r0, c0), in
                // bounds; the panel holds `steps` rows of MR.
                unsafe {
                    add_outer_products_avx2::<NR>(
                        steps,
                        panel.as_ptr(),
                        MR,
                        b.as_ptr().add(p0 * ldb + c0),
                        ldb,
                        out.as_mut_ptr().add(r0 * ldo + c0),
                        ldo,
                    )
                };
            }
        }
    }
}

/// `out[i * ldo + j] += sum_p a[p * lda + i] b[p * ldb + j]` for `i < 8`, `j < COLS`,
/// `p < steps`: the outer products of `steps` columns of eight words and rows of `COLS`.
/// Hand-written because AVX2 has no 64-bit product: a wrapping one is `lo(a) lo(b) + (hi(a)
/// lo(b) + lo(a) hi(b)) << 32`, and only the low halves of the cross terms count, so one
/// `vpmuludq` gives the first term and one `vpmulld` of `a` by `b` with its halves swapped
/// gives both cross terms' low halves, summed in 32-bit lanes and combined once at the end
/// (LLVM's widening of the portable body used three `vpmuludq` and kept its 128 accumulators
/// in memory). A `2 x 8` block of the output at a time keeps its accumulators in registers.
///
/// # Safety
/// AVX2 must be enabled in the caller; `a` must hold 8 words at every `p * lda`, `b` `COLS`
/// words at every `p * ldb` (`p < steps`), and `out` `COLS` words at every `i * ldo`, `i < 8`.
#[inline(always)]
unsafe fn add_outer_products_avx2<const COLS: usize>(
    steps: usize,
    a: *const u64,
    lda: usize,
    b: *const u64,
    ldb: usize,
    out: *mut u64,
    ldo: usize,
) {
    use std::arch::x86_64::*;
    const { assert!(COLS.is_multiple_of(8)) };
    for r0 in (0..8).step_by(2) {
        for c0 in (0..COLS).step_by(8) {
            let mut lo = [_mm256_setzero_si256(); 4];
            let mut cross = [_mm256_setzero_si256(); 4];
            for p in 0..steps {
                // In bounds by the function's contract (c0 + 8 <= COLS, r0 + 2 <= 8).
                let bp = b.add(p * ldb + c0);
                let (b0, b1) = (_mm256_loadu_si256(bp.cast()), _mm256_loadu_si256(bp.add(4).cast()));
                // Each word's halves swapped: one 32-bit product per half gives both cross
                // terms' low halves, all a wrapping product needs of them.
                let swap = |v: __m256i| _mm256_shuffle_epi32::<0b1011_0001>(v);
                let (s0, s1) = (swap(b0), swap(b1));
                for r in 0..2 {
                    let av = _mm256_set1_epi64x(*a.add(p * lda + r0 + r) as i64);
                    lo[2 * r] = _mm256_add_epi64(lo[2 * r], _mm256_mul_epu32(av, b0));
                    lo[2 * r + 1] = _mm256_add_epi64(lo[2 * r + 1], _mm256_mul_epu32(av, b1));
                    cross[2 * r] = _mm256_add_epi32(cross[2 * r], _mm256_mullo_epi32(av, s0));
                    cross[2 * r + 1] = _mm256_add_epi32(cross[2 * r + 1], _mm256_mullo_epi32(av, s1));
                }
            }
            for i in 0..4 {
                // The two cross halves' sum, moved up: `(x + y) << 32` is linear modulo 2^64,
                // so summing it per step or once gives the same.
                let c = _mm256_add_epi32(cross[i], _mm256_srli_epi64(cross[i], 32));
                let v = _mm256_add_epi64(lo[i], _mm256_slli_epi64(c, 32));
                // Row r0 + i / 2 of `out` holds COLS words; c0 + 4 (i % 2) + 4 <= COLS.
                let o = out.add((r0 + i / 2) * ldo + c0 + 4 * (i % 2));
                _mm256_storeu_si256(o.cast(), _mm256_add_epi64(_mm256_loadu_si256(o.cast()), v));
            }
        }
    }
}

/// Hand-written because LLVM does not keep the 16 accumulators of the portable body in
/// registers when it widens it to 512 bits: two B vectors per step, each A value broadcast
/// (folded into `vpmullq` as an embedded broadcast), 16 `vpmullq` + 16 `vpaddq` per step.
/// Row `p` of A's panel is at `a[p * lda..]` (8 words), of B's at `b[p * ldb..]` (16 words):
/// packed panels have `lda = MR`, `ldb = NR`; operands already laid out row by row their row
/// length.
#[target_feature(enable = "avx512f,avx512dq")]
fn tile_avx512_impl(kc: usize, a: &[u64], lda: usize, b: &[u64], ldb: usize, out: &mut [u64; MR * NR]) {
    use std::arch::x86_64::*;
    const _: () = assert!(MR == 8 && NR == 16);
    assert!(super::holds_rows(a.len(), kc, lda, MR) && super::holds_rows(b.len(), kc, ldb, NR));
    let mut acc = [_mm512_setzero_si512(); 16];
    for p in 0..kc {
        // SAFETY: the assertion above keeps row p's 16 words of `b` in bounds.
        let (b0, b1) = unsafe {
            let bp = b.as_ptr().add(p * ldb);
            (_mm512_loadu_si512(bp.cast()), _mm512_loadu_si512(bp.add(8).cast()))
        };
        let ap = &a[p * lda..p * lda + MR];
        for r in 0..MR {
            let av = _mm512_set1_epi64(ap[r] as i64);
            acc[2 * r] = _mm512_add_epi64(acc[2 * r], _mm512_mullo_epi64(av, b0));
            acc[2 * r + 1] = _mm512_add_epi64(acc[2 * r + 1], _mm512_mullo_epi64(av, b1));
        }
    }
    for (i, v) in acc.iter().enumerate() {
        // SAFETY: `out` holds MR * NR = 16 * 8 words; vector i covers words 8i..8i+8.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(8 * i).cast(), *v) };
    }
}

pub(super) fn tile_strided_avx512(
    kc: usize,
    a: &[u64],
    lda: usize,
    b: &[u64],
    ldb: usize,
    out: &mut [u64; MR * NR],
) {
    assert!(super::Kernel::Avx512.is_supported(), "AVX-512 kernel on a CPU without AVX-512 F/DQ");
    // SAFETY: AVX-512 F and DQ were detected at run time just above.
    unsafe { tile_avx512_impl(kc, a, lda, b, ldb, out) }
}

pub(super) fn tile_avx2(kc: usize, a: &[u64], b: &[u64], out: &mut [u64; MR * NR]) {
    // Detection is cached by std (one atomic load), negligible against a tile's work.
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { tile_avx2_impl(kc, a, b, out) }
}

#[allow(clippy::too_many_arguments)] // as `add_tn_strided_avx2_impl`
pub(super) fn add_tn_strided_avx2(
    a: &[u64],
    lda: usize,
    b: &[u64],
    ldb: usize,
    out: &mut [u64],
    ldo: usize,
    shape: (usize, usize, usize),
) {
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { add_tn_strided_avx2_impl(a, lda, b, ldb, out, ldo, shape) }
}

pub(super) fn tile_avx512(kc: usize, a: &[u64], b: &[u64], out: &mut [u64; MR * NR]) {
    tile_strided_avx512(kc, a, MR, b, NR, out)
}

#[target_feature(enable = "pclmulqdq,sse2")]
fn clmul_dot_impl(a: &[u64], b: &[u64]) -> u128 {
    use std::arch::x86_64::*;
    let mut acc = _mm_setzero_si128();
    for (&x, &y) in a.iter().zip(b) {
        let p = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set_epi64x(0, y as i64), 0);
        acc = _mm_xor_si128(acc, p);
    }
    let lo = _mm_cvtsi128_si64(acc) as u64;
    let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)) as u64;
    ((hi as u128) << 64) | lo as u128
}

#[target_feature(enable = "pclmulqdq,sse2")]
fn clmul_dot_and_impl(w: &[u64], x: &[u64], y: &[u64]) -> u128 {
    use std::arch::x86_64::*;
    let mut acc = _mm_setzero_si128();
    for ((&c, &a), &b) in w.iter().zip(x).zip(y) {
        let p = _mm_clmulepi64_si128(_mm_set_epi64x(0, c as i64), _mm_set_epi64x(0, (a & b) as i64), 0);
        acc = _mm_xor_si128(acc, p);
    }
    let lo = _mm_cvtsi128_si64(acc) as u64;
    let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)) as u64;
    ((hi as u128) << 64) | lo as u128
}

pub(super) fn clmul_dot_and_pclmul(w: &[u64], x: &[u64], y: &[u64]) -> u128 {
    assert!(std::arch::is_x86_feature_detected!("pclmulqdq"), "PCLMULQDQ kernel on a CPU without it");
    // SAFETY: PCLMULQDQ (and SSE2, part of x86-64) was detected at run time just above.
    unsafe { clmul_dot_and_impl(w, x, y) }
}

#[target_feature(enable = "pclmulqdq,sse2")]
fn clmul_one_impl(a: u64, b: u64) -> u128 {
    use std::arch::x86_64::*;
    let p = _mm_clmulepi64_si128(_mm_set_epi64x(0, a as i64), _mm_set_epi64x(0, b as i64), 0);
    let lo = _mm_cvtsi128_si64(p) as u64;
    let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(p, p)) as u64;
    ((hi as u128) << 64) | lo as u128
}

pub(super) fn clmul_pclmul(a: u64, b: u64) -> u128 {
    assert!(std::arch::is_x86_feature_detected!("pclmulqdq"), "PCLMULQDQ kernel on a CPU without it");
    // SAFETY: PCLMULQDQ (and SSE2, part of x86-64) was detected at run time just above.
    unsafe { clmul_one_impl(a, b) }
}

pub(super) fn clmul_dot_pclmul(a: &[u64], b: &[u64]) -> u128 {
    assert!(std::arch::is_x86_feature_detected!("pclmulqdq"), "PCLMULQDQ kernel on a CPU without it");
    // SAFETY: PCLMULQDQ (and SSE2, part of x86-64) was detected at run time just above.
    unsafe { clmul_dot_impl(a, b) }
}

/// Spreads a chunk's operands into `sa` and `sb` (the portable chunk's spreads) with one
/// vector width's row of 64 words: its load, elementwise product and spread (functions or
/// closures). Evaluates to the chunk's rows. A macro, so that each width's
/// `#[target_feature]` chunk calls its own functions directly (such functions are not `Fn`,
/// and a generic function would take them only through closures).
macro_rules! spread_chunk_with {
    ($chunk:expr, $sa:expr, $sb:expr, $load:expr, $mul:expr, $spread:expr) => {{
        let (sa, sb, words) = ($sa, $sb, karatsuba::SPREAD_WORDS);
        match $chunk {
            Chunk::Rows { a, lda, b, ldb, rows } => {
                for r in 0..rows {
                    $spread($load(&a[r * lda..]), &mut sa[r * words..]);
                    $spread($load(&b[r * ldb..]), &mut sb[r * words..]);
                }
                rows
            }
            Chunk::Hadamard { a, x, y, rows } => {
                for r in 0..rows {
                    let h = $mul($load(&x[r * 64..]), $load(&y[r * 64..]));
                    $spread($load(&a[r * 64..]), &mut sa[r * words..]);
                    $spread(h, &mut sb[r * words..]);
                }
                rows
            }
        }
    }};
}

/// The Karatsuba chunk on AVX2: the spreads in vector registers (LLVM left the portable ones
/// scalar), then each leaf's outer products by the tile's two-multiply form
/// ([`add_outer_products_avx2`]; LLVM's widening of the portable leaves used three products
/// per four words and spilled the accumulators).
#[target_feature(enable = "avx2")]
fn karatsuba_chunk_avx2_impl(chunk: Chunk<'_>, sa: &mut [u64], sb: &mut [u64], acc: &mut [u64]) {
    let (leaves, spread) = (karatsuba::LEAF_COUNT, karatsuba::SPREAD_WORDS);
    let rows = spread_chunk_with!(
        chunk,
        &mut *sa,
        &mut *sb,
        load_row_avx2,
        |x: [_; 16], y: [_; 16]| -> [_; 16] { std::array::from_fn(|i| mul_words_avx2(x[i], y[i])) },
        spread_avx2
    );
    if rows == 0 {
        // (The leaves' pointers below are formed only over whole spreads.)
        return;
    }
    assert!(sa.len() >= rows * spread && sb.len() >= rows * spread && acc.len() >= leaves * 64);
    for l in 0..leaves {
        // SAFETY: AVX2 is enabled here; leaf l's 8 words lie at `r * spread + 8 l` of both
        // spreads for every row r < rows, and its 64 accumulator words at `64 l` (the
        // assertion above).
        unsafe {
            add_outer_products_avx2::<8>(
                rows,
                sa.as_ptr().add(8 * l),
                spread,
                sb.as_ptr().add(8 * l),
                spread,
                acc.as_mut_ptr().add(64 * l),
                8,
            )
        };
    }
}

pub(super) fn karatsuba_chunk_avx2(chunk: Chunk<'_>, sa: &mut [u64], sb: &mut [u64], acc: &mut [u64]) {
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { karatsuba_chunk_avx2_impl(chunk, sa, sb, acc) }
}

/// The 64 words at the start of `row` as sixteen vectors.
#[target_feature(enable = "avx2")]
fn load_row_avx2(row: &[u64]) -> [std::arch::x86_64::__m256i; 16] {
    use std::arch::x86_64::*;
    let row = &row[..64];
    // SAFETY: `row` holds 64 words, sixteen vectors.
    std::array::from_fn(|i| unsafe { _mm256_loadu_si256(row.as_ptr().add(4 * i).cast()) })
}

/// Wrapping products of four pairs of words: `lo(a) lo(b)` by `vpmuludq`, and both cross
/// terms' low halves by one `vpmulld` with `b`'s halves swapped (see
/// [`add_outer_products_avx2`]).
#[target_feature(enable = "avx2")]
fn mul_words_avx2(
    a: std::arch::x86_64::__m256i,
    b: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let cross = _mm256_mullo_epi32(a, _mm256_shuffle_epi32::<0b1011_0001>(b));
    let c = _mm256_add_epi32(cross, _mm256_srli_epi64::<32>(cross));
    _mm256_add_epi64(_mm256_mul_epu32(a, b), _mm256_slli_epi64::<32>(c))
}

/// An operand's 27 leaves (`karatsuba::spread64`'s order: low, high, sum at each level), a
/// leaf two vectors.
#[target_feature(enable = "avx2")]
fn spread_avx2(v: [std::arch::x86_64::__m256i; 16], out: &mut [u64]) {
    use std::arch::x86_64::*;
    type Leaf = [__m256i; 2];
    let add = |x: Leaf, y: Leaf| [_mm256_add_epi64(x[0], y[0]), _mm256_add_epi64(x[1], y[1])];
    let out = &mut out[..karatsuba::SPREAD_WORDS];
    let leaf = |i: usize| [v[2 * i], v[2 * i + 1]];
    let s: [Leaf; 4] = std::array::from_fn(|i| add(leaf(i), leaf(i + 4)));
    let halves = [[leaf(0), leaf(1), leaf(2), leaf(3)], [leaf(4), leaf(5), leaf(6), leaf(7)], s];
    for (k, w) in halves.iter().enumerate() {
        let quarters = [[w[0], w[1]], [w[2], w[3]], [add(w[0], w[2]), add(w[1], w[3])]];
        for (m, p) in quarters.iter().enumerate() {
            let first = 9 * k + 3 * m;
            for (j, value) in [p[0], p[1], add(p[0], p[1])].into_iter().enumerate() {
                // SAFETY: first + j < 27, so its eight words are within the spread's 216.
                unsafe {
                    let o = out.as_mut_ptr().add(8 * (first + j));
                    _mm256_storeu_si256(o.cast(), value[0]);
                    _mm256_storeu_si256(o.add(4).cast(), value[1]);
                }
            }
        }
    }
}

/// Hand-written for the same reason as the tile kernel (the eight accumulator vectors of a
/// leaf stay in registers): per pair and leaf, one load of b's leaf and eight `vpmullq` with
/// a's words broadcast.
#[target_feature(enable = "avx512f,avx512dq")]
fn karatsuba_chunk_avx512_impl(chunk: Chunk<'_>, sa: &mut [u64], sb: &mut [u64], acc: &mut [u64]) {
    use std::arch::x86_64::*;
    let (leaves, spread) = (karatsuba::LEAF_COUNT, karatsuba::SPREAD_WORDS);
    // The spreads in vector registers (LLVM leaves the portable ones scalar): an operand is
    // eight vectors, its leaves 19 vector additions and 27 stores.
    let rows = spread_chunk_with!(
        chunk,
        &mut *sa,
        &mut *sb,
        load_row,
        |x: [_; 8], y: [_; 8]| -> [_; 8] { std::array::from_fn(|i| _mm512_mullo_epi64(x[i], y[i])) },
        spread_avx512
    );
    assert!(sa.len() >= rows * spread && sb.len() >= rows * spread && acc.len() >= leaves * 64);
    for l in 0..leaves {
        let base = acc[l * 64..].as_mut_ptr();
        // SAFETY: the assertion keeps leaf l's 64 accumulator words in bounds.
        let mut t: [__m512i; 8] =
            std::array::from_fn(|i| unsafe { _mm512_loadu_si512(base.add(8 * i).cast()) });
        for r in 0..rows {
            // SAFETY: r < rows keeps pair r's leaf l (8 words) in bounds of `sb`.
            let bv = unsafe { _mm512_loadu_si512(sb.as_ptr().add(r * spread + l * 8).cast()) };
            let a = &sa[r * spread + l * 8..][..8];
            for (i, ti) in t.iter_mut().enumerate() {
                *ti = _mm512_add_epi64(*ti, _mm512_mullo_epi64(_mm512_set1_epi64(a[i] as i64), bv));
            }
        }
        for (i, ti) in t.iter().enumerate() {
            // SAFETY: as for the loads.
            unsafe { _mm512_storeu_si512(base.add(8 * i).cast(), *ti) };
        }
    }
}

/// The 64 words at the start of `row` as eight vectors.
#[target_feature(enable = "avx512f")]
fn load_row(row: &[u64]) -> [std::arch::x86_64::__m512i; 8] {
    use std::arch::x86_64::*;
    let row = &row[..64];
    // SAFETY: `row` holds 64 words, eight vectors.
    std::array::from_fn(|i| unsafe { _mm512_loadu_si512(row.as_ptr().add(8 * i).cast()) })
}

/// An operand's 27 leaves (`karatsuba::spread64`'s order: low, high, sum at each level).
#[target_feature(enable = "avx512f")]
fn spread_avx512(v: [std::arch::x86_64::__m512i; 8], out: &mut [u64]) {
    use std::arch::x86_64::*;
    let out = &mut out[..karatsuba::SPREAD_WORDS];
    let s: [__m512i; 4] = std::array::from_fn(|i| _mm512_add_epi64(v[i], v[i + 4]));
    let halves = [[v[0], v[1], v[2], v[3]], [v[4], v[5], v[6], v[7]], s];
    for (k, w) in halves.iter().enumerate() {
        let quarters =
            [[w[0], w[1]], [w[2], w[3]], [_mm512_add_epi64(w[0], w[2]), _mm512_add_epi64(w[1], w[3])]];
        for (m, p) in quarters.iter().enumerate() {
            let leaf = 9 * k + 3 * m;
            for (j, leaf_value) in [p[0], p[1], _mm512_add_epi64(p[0], p[1])].into_iter().enumerate() {
                // SAFETY: leaf + j < 27, so its eight words are within the spread's 216.
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(8 * (leaf + j)).cast(), leaf_value) };
            }
        }
    }
}

pub(super) fn karatsuba_chunk_avx512(chunk: Chunk<'_>, sa: &mut [u64], sb: &mut [u64], acc: &mut [u64]) {
    assert!(super::Kernel::Avx512.is_supported(), "AVX-512 kernel on a CPU without AVX-512 F/DQ");
    // SAFETY: AVX-512 F and DQ were detected at run time just above.
    unsafe { karatsuba_chunk_avx512_impl(chunk, sa, sb, acc) }
}

/// The portable product by a 0/1 polynomial compiled for AVX-512 (a row of the chunk is four
/// vectors; LLVM keeps the accumulator row in registers).
#[target_feature(enable = "avx512f")]
fn binary_poly_avx512_impl(d: &[u64], t: u64, taps: &[usize], out: &mut [u64]) {
    binpoly::body(d, t, taps, out)
}

pub(super) fn binary_poly_avx512(d: &[u64], t: u64, taps: &[usize], out: &mut [u64]) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "AVX-512 kernel on a CPU without it");
    // SAFETY: AVX-512 F was detected at run time just above.
    unsafe { binary_poly_avx512_impl(d, t, taps, out) }
}

/// The same compiled for AVX2.
#[target_feature(enable = "avx2")]
fn binary_poly_avx2_impl(d: &[u64], t: u64, taps: &[usize], out: &mut [u64]) {
    binpoly::body(d, t, taps, out)
}

pub(super) fn binary_poly_avx2(d: &[u64], t: u64, taps: &[usize], out: &mut [u64]) {
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { binary_poly_avx2_impl(d, t, taps, out) }
}

/// The portable rows times powers of X compiled for AVX-512 (a row is eight vectors).
#[target_feature(enable = "avx512f")]
fn x_pows_avx512_impl(rows: &[u64], taps: &[usize; 4], out: &mut [u64], ldo: usize) {
    xpow::body(rows, taps, out, ldo)
}

pub(super) fn x_pows_avx512(rows: &[u64], taps: &[usize; 4], out: &mut [u64], ldo: usize) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "AVX-512 kernel on a CPU without it");
    // SAFETY: AVX-512 F was detected at run time just above.
    unsafe { x_pows_avx512_impl(rows, taps, out, ldo) }
}

/// The same compiled for AVX2.
#[target_feature(enable = "avx2")]
fn x_pows_avx2_impl(rows: &[u64], taps: &[usize; 4], out: &mut [u64], ldo: usize) {
    xpow::body(rows, taps, out, ldo)
}

pub(super) fn x_pows_avx2(rows: &[u64], taps: &[usize; 4], out: &mut [u64], ldo: usize) {
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { x_pows_avx2_impl(rows, taps, out, ldo) }
}

/// The portable subset sums compiled for AVX-512 (their additions are whole vectors).
#[target_feature(enable = "avx512f")]
fn subset_sums_avx512_impl(x: &[u64], rows: usize, cols: usize, selections: &[[u8; 64]], out: &mut [u64]) {
    subset::body(x, rows, cols, selections, out)
}

pub(super) fn subset_sums_avx512(
    x: &[u64],
    rows: usize,
    cols: usize,
    selections: &[[u8; 64]],
    out: &mut [u64],
) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "AVX-512 kernel on a CPU without it");
    // SAFETY: AVX-512 F was detected at run time just above.
    unsafe { subset_sums_avx512_impl(x, rows, cols, selections, out) }
}

/// The same compiled for AVX2.
#[target_feature(enable = "avx2")]
fn subset_sums_avx2_impl(x: &[u64], rows: usize, cols: usize, selections: &[[u8; 64]], out: &mut [u64]) {
    subset::body(x, rows, cols, selections, out)
}

pub(super) fn subset_sums_avx2(
    x: &[u64],
    rows: usize,
    cols: usize,
    selections: &[[u8; 64]],
    out: &mut [u64],
) {
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { subset_sums_avx2_impl(x, rows, cols, selections, out) }
}

/// The portable bit-weighted sums compiled for AVX-512 (their additions are whole vectors;
/// DQ for the Hadamard rows' `vpmullq`, which were scalar products without it).
#[target_feature(enable = "avx512f,avx512dq")]
fn bit_weighted_avx512_impl(rows: bitweighted::Rows<'_>, acc: &mut [u64], tables: &mut [bitweighted::Table]) {
    bitweighted::body(rows, acc, tables)
}

pub(super) fn bit_weighted_avx512(
    rows: bitweighted::Rows<'_>,
    acc: &mut [u64],
    tables: &mut [bitweighted::Table],
) {
    assert!(super::Kernel::Avx512.is_supported(), "AVX-512 kernel on a CPU without AVX-512 F/DQ");
    // SAFETY: AVX-512 F and DQ were detected at run time just above.
    unsafe { bit_weighted_avx512_impl(rows, acc, tables) }
}

/// The same compiled for AVX2.
#[target_feature(enable = "avx2")]
fn bit_weighted_avx2_impl(rows: bitweighted::Rows<'_>, acc: &mut [u64], tables: &mut [bitweighted::Table]) {
    bitweighted::body(rows, acc, tables)
}

pub(super) fn bit_weighted_avx2(
    rows: bitweighted::Rows<'_>,
    acc: &mut [u64],
    tables: &mut [bitweighted::Table],
) {
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { bit_weighted_avx2_impl(rows, acc, tables) }
}

/// The portable row selection compiled for AVX-512 (a row is eight vectors).
#[target_feature(enable = "avx512f")]
fn select_rows_avx512_impl(weights: &[u64], tables: &[bitweighted::RowTable], out: &mut [u64]) {
    bitweighted::select_body(weights, tables, out)
}

pub(super) fn select_rows_avx512(weights: &[u64], tables: &[bitweighted::RowTable], out: &mut [u64]) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "AVX-512 kernel on a CPU without it");
    // SAFETY: AVX-512 F was detected at run time just above.
    unsafe { select_rows_avx512_impl(weights, tables, out) }
}

/// The same compiled for AVX2.
#[target_feature(enable = "avx2")]
fn select_rows_avx2_impl(weights: &[u64], tables: &[bitweighted::RowTable], out: &mut [u64]) {
    bitweighted::select_body(weights, tables, out)
}

pub(super) fn select_rows_avx2(weights: &[u64], tables: &[bitweighted::RowTable], out: &mut [u64]) {
    assert!(super::Kernel::Avx2.is_supported(), "AVX2 kernel on a CPU without AVX2");
    // SAFETY: AVX2 was detected at run time just above.
    unsafe { select_rows_avx2_impl(weights, tables, out) }
}

/// The 8 x 8 transpose of eight rows of eight words: unpacks of word pairs, then two rounds of
/// two-source permutes (128-bit lanes, then 256-bit halves), 24 shuffles in all.
#[target_feature(enable = "avx512f")]
fn transpose8x8(r: [std::arch::x86_64::__m512i; 8]) -> [std::arch::x86_64::__m512i; 8] {
    use std::arch::x86_64::*;
    // Lanes (128-bit) of `a` and `b` interleaved: columns 0 and 4 of four rows, or 2 and 6.
    let lanes_even = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    let lanes_odd = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    // Low halves (256-bit) of `a` and `b`, then high halves.
    let low = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
    let high = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
    let t: [__m512i; 8] = std::array::from_fn(|i| {
        let (a, b) = (r[2 * (i / 2)], r[2 * (i / 2) + 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    // u[0]: columns 0, 4 of rows 0-3; u[1]: 1, 5; u[2]: 2, 6; u[3]: 3, 7; u[4..]: rows 4-7.
    let u: [__m512i; 8] = std::array::from_fn(|i| {
        let (half, col) = (i / 4, i % 4);
        let (a, b) = (t[4 * half + col % 2], t[4 * half + 2 + col % 2]);
        _mm512_permutex2var_epi64(a, if col < 2 { lanes_even } else { lanes_odd }, b)
    });
    // Column j: u's rows 0-3 and 4-7 of it.
    std::array::from_fn(|j| {
        let (c, upper) = (j % 4, j >= 4);
        _mm512_permutex2var_epi64(u[c], if upper { high } else { low }, u[4 + c])
    })
}

/// See `transpose::coefficient_rows`: whole blocks of eight elements by 8 x 8 transposes, the
/// rest (and the zeros past the elements) by the portable body.
#[target_feature(enable = "avx512f")]
fn coefficient_rows_impl(src: transpose::Source<'_>, rows: &mut [u64]) {
    use std::arch::x86_64::*;
    const CHUNK: usize = super::BINARY_POLY_CHUNK;
    let blocks = src.words() / 64 / 8;
    assert!(rows.len() >= 64 * CHUNK && blocks * 8 <= CHUNK);
    // SAFETY (loads): element 8b + i's words 8k..8k+8 lie within the `8 * blocks` whole
    // elements of the source.
    let load = |v: &[u64], b: usize, k: usize, i: usize| unsafe {
        _mm512_loadu_si512(v.as_ptr().add((8 * b + i) * 64 + 8 * k).cast())
    };
    for b in 0..blocks {
        for k in 0..8 {
            let block: [__m512i; 8] = match src {
                transpose::Source::Elements(v) => std::array::from_fn(|i| load(v, b, k, i)),
                transpose::Source::Differences { lo, hi } => {
                    std::array::from_fn(|i| _mm512_sub_epi64(load(hi, b, k, i), load(lo, b, k, i)))
                }
            };
            for (j, column) in transpose8x8(block).into_iter().enumerate() {
                // SAFETY: row 8k + j's columns 8b..8b+8 lie within the 64 rows of 32 words.
                unsafe {
                    _mm512_storeu_si512(rows.as_mut_ptr().add((8 * k + j) * CHUNK + 8 * b).cast(), column)
                };
            }
        }
    }
    transpose::rows_body(src, rows, 8 * blocks);
}

pub(super) fn coefficient_rows_avx512(src: transpose::Source<'_>, rows: &mut [u64]) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "AVX-512 kernel on a CPU without it");
    // SAFETY: AVX-512 F was detected just above.
    unsafe { coefficient_rows_impl(src, rows) }
}

/// See `transpose::add_coefficient_rows`: whole blocks of eight elements by 8 x 8 transposes,
/// the rest by the portable body.
#[target_feature(enable = "avx512f")]
fn add_coefficient_rows_impl(rows: &[u64], elements: &mut [u64]) {
    use std::arch::x86_64::*;
    const CHUNK: usize = super::BINARY_POLY_CHUNK;
    let blocks = elements.len() / 64 / 8;
    assert!(rows.len() >= 64 * CHUNK && blocks * 8 <= CHUNK);
    for b in 0..blocks {
        for k in 0..8 {
            // SAFETY: row 8k + i's columns 8b..8b+8 lie within the 64 rows of 32 words.
            let block: [__m512i; 8] = std::array::from_fn(|i| unsafe {
                _mm512_loadu_si512(rows.as_ptr().add((8 * k + i) * CHUNK + 8 * b).cast())
            });
            for (j, column) in transpose8x8(block).into_iter().enumerate() {
                // SAFETY: element 8b + j's words 8k..8k+8 lie within the `8 * blocks` whole
                // elements.
                unsafe {
                    let p = elements.as_mut_ptr().add((8 * b + j) * 64 + 8 * k);
                    _mm512_storeu_si512(p.cast(), _mm512_add_epi64(_mm512_loadu_si512(p.cast()), column));
                }
            }
        }
    }
    transpose::add_body(rows, elements, 8 * blocks);
}

pub(super) fn add_coefficient_rows_avx512(rows: &[u64], elements: &mut [u64]) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "AVX-512 kernel on a CPU without it");
    // SAFETY: AVX-512 F was detected just above.
    unsafe { add_coefficient_rows_impl(rows, elements) }
}

/// Asks for the cache line holding `data[at]` (`prefetcht0`), if `at` is within `data`.
#[inline(always)]
pub(super) fn prefetch(data: &[u64], at: usize) {
    if at < data.len() {
        // SAFETY: a prefetch never faults and changes no state the program sees; the
        // address is within `data` besides. SSE is part of x86-64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                data.as_ptr().add(at).cast(),
            )
        }
    }
}
