//! x86-64 builds of the tile kernel. The body is the portable one; compiling it with AVX2 or
//! AVX-512 enabled lets LLVM use 256/512-bit vectors (`vpmullq` with AVX-512 DQ). Each is only
//! reached after run-time detection, which is what makes calling it sound.
#![allow(unsafe_code)]

use super::packed::{tile_body, MR, NR};

#[target_feature(enable = "avx2")]
fn tile_avx2_impl(kc: usize, a: &[u64], b: &[u64], out: &mut [u64; MR * NR]) {
    tile_body(kc, a, MR, b, NR, out)
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
    assert!(kc == 0 || (a.len() >= (kc - 1) * lda + MR && b.len() >= (kc - 1) * ldb + NR));
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

pub(super) fn tile_avx512(kc: usize, a: &[u64], b: &[u64], out: &mut [u64; MR * NR]) {
    assert!(super::Kernel::Avx512.is_supported(), "AVX-512 kernel on a CPU without AVX-512 F/DQ");
    // SAFETY: AVX-512 F and DQ were detected at run time just above.
    unsafe { tile_avx512_impl(kc, a, MR, b, NR, out) }
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
