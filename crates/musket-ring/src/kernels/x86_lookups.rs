//! x86-64 builds of the packed binary proof's table lookups (`lookups`): 64-bit permutations
//! with AVX-512, GFNI's bit transpose with VBMI, and byte shuffles with AVX2. Each is only
//! reached after run-time detection, which is what makes calling it sound.
#![allow(unsafe_code)]

use super::lookups::ChunkTables;
use std::arch::x86_64::*;

/// `out_i ^= low[idx_i & 15] ^ high[idx_i >> 4]`, eight at a time: each table of sixteen
/// words is two registers, and one VPERMT2Q looks up eight entries.
#[target_feature(enable = "avx512f")]
fn xor_nibble_lookups_impl(out: &mut [u64], idx: &[u8], low: &[u64; 16], high: &[u64; 16]) -> usize {
    let n = out.len().min(idx.len());
    let full = n - n % 8;
    // SAFETY: each table holds sixteen words, two vectors.
    let (l0, l1, h0, h1) = unsafe {
        (
            _mm512_loadu_si512(low.as_ptr().cast()),
            _mm512_loadu_si512(low.as_ptr().add(8).cast()),
            _mm512_loadu_si512(high.as_ptr().cast()),
            _mm512_loadu_si512(high.as_ptr().add(8).cast()),
        )
    };
    for i in (0..full).step_by(8) {
        // SAFETY: i + 8 <= full <= the length of both slices.
        unsafe {
            let bytes = _mm_loadl_epi64(idx.as_ptr().add(i).cast());
            let at = _mm512_cvtepu8_epi64(bytes);
            // VPERMT2Q reads the low four bits of each index: the low nibble as it is.
            let v = _mm512_xor_si512(
                _mm512_permutex2var_epi64(l0, at, l1),
                _mm512_permutex2var_epi64(h0, _mm512_srli_epi64(at, 4), h1),
            );
            let o = _mm512_loadu_si512(out.as_ptr().add(i).cast());
            _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), _mm512_xor_si512(o, v));
        }
    }
    full
}

/// As [`xor_nibble_lookups_impl`]; returns how many leading elements it did.
pub(super) fn xor_nibble_lookups_avx512(
    out: &mut [u64],
    idx: &[u8],
    low: &[u64; 16],
    high: &[u64; 16],
) -> usize {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "AVX-512 kernel on a CPU without it");
    // SAFETY: AVX-512 F was detected just above.
    unsafe { xor_nibble_lookups_impl(out, idx, low, high) }
}

/// True when the CPU has the byte permutation and GF(2^8) affine instructions the bit
/// transpose uses (AVX-512 F, BW and VBMI, GFNI).
pub(super) fn has_gfni_vbmi() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi")
        && std::arch::is_x86_feature_detected!("gfni")
}

/// Byte `b` of the result holds bit `b` of each word (bit `s` from word `s`): one byte
/// permutation gathers byte `k` of every word into word `k` (in reverse order), then one
/// GF(2^8) affine step per word transposes its 8x8 bit matrix (the identity's rows as data,
/// the gathered word as the matrix: output byte `i`, bit `j` is bit `i` of matrix byte `7 - j`).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
fn lane_bytes_gfni_impl(words: &[u64; 8]) -> [u8; 64] {
    // idx[8 k + 7 - s] = 8 s + k: byte k of word s, rows reversed for the affine step.
    let idx: [u8; 64] = std::array::from_fn(|p| {
        let (k, s) = (p / 8, 7 - p % 8);
        (8 * s + k) as u8
    });
    let mut out = [0u8; 64];
    // SAFETY: `words`, `idx` and `out` are 64 bytes each.
    unsafe {
        let w = _mm512_loadu_si512(words.as_ptr().cast());
        let i = _mm512_loadu_si512(idx.as_ptr().cast());
        let gathered = _mm512_permutexvar_epi8(i, w);
        let identity = _mm512_set1_epi64(0x8040_2010_0804_0201u64 as i64);
        let t = _mm512_gf2p8affine_epi64_epi8(identity, gathered, 0);
        _mm512_storeu_si512(out.as_mut_ptr().cast(), t);
    }
    out
}

/// `xor_member_lookups` with the 64 lanes' sums in eight registers across the chunks: per
/// chunk the lane bytes as [`lane_bytes_gfni_impl`] forms them, then two table permutations
/// per eight lanes as [`xor_nibble_lookups_impl`] does.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
fn xor_member_lookups_gfni_impl(out: &mut [u64; 64], words: &[[u64; 8]], tables: &[ChunkTables]) {
    let idx: [u8; 64] = std::array::from_fn(|p| {
        let (k, s) = (p / 8, 7 - p % 8);
        (8 * s + k) as u8
    });
    // SAFETY: `idx` and `out` are 64 bytes and 64 words.
    let (gather, mut acc) = unsafe {
        let acc: [__m512i; 8] = std::array::from_fn(|i| _mm512_loadu_si512(out.as_ptr().add(8 * i).cast()));
        (_mm512_loadu_si512(idx.as_ptr().cast()), acc)
    };
    let identity = _mm512_set1_epi64(0x8040_2010_0804_0201u64 as i64);
    let mut bytes = [0u8; 64];
    for (w, ChunkTables { low, high, .. }) in words.iter().zip(tables) {
        if w.iter().all(|&v| v == 0) {
            continue;
        }
        // SAFETY: each word array is 64 bytes, `bytes` too, and each table sixteen words.
        unsafe {
            let lanes = _mm512_gf2p8affine_epi64_epi8(
                identity,
                _mm512_permutexvar_epi8(gather, _mm512_loadu_si512(w.as_ptr().cast())),
                0,
            );
            _mm512_storeu_si512(bytes.as_mut_ptr().cast(), lanes);
            let (l0, l1) =
                (_mm512_loadu_si512(low.as_ptr().cast()), _mm512_loadu_si512(low.as_ptr().add(8).cast()));
            let (h0, h1) =
                (_mm512_loadu_si512(high.as_ptr().cast()), _mm512_loadu_si512(high.as_ptr().add(8).cast()));
            for (i, a) in acc.iter_mut().enumerate() {
                let at = _mm512_cvtepu8_epi64(_mm_loadl_epi64(bytes.as_ptr().add(8 * i).cast()));
                // VPERMT2Q reads the low four bits of each index: the low nibble as it is.
                let v = _mm512_xor_si512(
                    _mm512_permutex2var_epi64(l0, at, l1),
                    _mm512_permutex2var_epi64(h0, _mm512_srli_epi64(at, 4), h1),
                );
                *a = _mm512_xor_si512(*a, v);
            }
        }
    }
    for (i, a) in acc.iter().enumerate() {
        // SAFETY: lanes 8i..8i+8 of the 64.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(8 * i).cast(), *a) };
    }
}

pub(super) fn xor_member_lookups_gfni(out: &mut [u64; 64], words: &[[u64; 8]], tables: &[ChunkTables]) {
    assert!(has_gfni_vbmi(), "GFNI kernel on a CPU without it");
    assert_eq!(words.len(), tables.len(), "xor_member_lookups: chunks");
    // SAFETY: the features were detected just above.
    unsafe { xor_member_lookups_gfni_impl(out, words, tables) }
}

pub(super) fn lane_bytes_gfni(words: &[u64; 8]) -> [u8; 64] {
    assert!(has_gfni_vbmi(), "GFNI kernel on a CPU without it");
    // SAFETY: the features were detected just above.
    unsafe { lane_bytes_gfni_impl(words) }
}

/// The lane bytes of half `half` of eight words (lanes `32 half .. 32 half + 32`; byte `b`
/// holds bit `32 half + b` of word `s` at bit `s`), by byte unpacks gathering byte `k` of
/// every word into one 64-bit row per `k`, then three shift-and-mask steps transposing each
/// row's 8x8 bit matrix (as [`super::lookups::lane_bytes_portable`] does one row at a time).
#[target_feature(enable = "avx2")]
fn lane_bytes_half_avx2(words: &[u64; 8], half: usize) -> __m256i {
    // SAFETY: `words` is 64 bytes, two vectors.
    let (a, b) = unsafe {
        (_mm256_loadu_si256(words.as_ptr().cast()), _mm256_loadu_si256(words.as_ptr().add(4).cast()))
    };
    // Per 128-bit lane: words 0 and 4 (2 and 6) byte by byte, then 1 and 5 (3 and 7).
    let (lo, hi) = (_mm256_unpacklo_epi8(a, b), _mm256_unpackhi_epi8(a, b));
    // Groups of four bytes, byte k of words (0, 4, 1, 5) in the low lane and (2, 6, 3, 7) in
    // the high one, for k = 0..4 (the low half) or 4..8.
    let groups = if half == 0 { _mm256_unpacklo_epi16(lo, hi) } else { _mm256_unpackhi_epi16(lo, hi) };
    // Rows k, k + 1 of both lanes' groups side by side in each lane, then each row's bytes in
    // word order.
    let paired = _mm256_permute4x64_epi64(groups, 0b11_01_10_00);
    let order = _mm256_setr_epi8(
        0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15, 0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7,
        13, 15,
    );
    let m = _mm256_shuffle_epi8(paired, order);
    // The 8x8 bit transpose of each row (byte s of row k is byte k of word s).
    let m = swap_bits::<7>(m, 0x00aa_00aa_00aa_00aa);
    let m = swap_bits::<14>(m, 0x0000_cccc_0000_cccc);
    swap_bits::<28>(m, 0x0000_0000_f0f0_f0f0)
}

/// One step of an 8x8 bit transpose in each 64-bit lane: the bits under `mask` trade places
/// with those `S` bits above them.
#[target_feature(enable = "avx2")]
#[inline]
fn swap_bits<const S: i32>(m: __m256i, mask: u64) -> __m256i {
    let t = _mm256_and_si256(_mm256_xor_si256(m, _mm256_srli_epi64::<S>(m)), _mm256_set1_epi64x(mask as i64));
    _mm256_xor_si256(m, _mm256_xor_si256(t, _mm256_slli_epi64::<S>(t)))
}

/// `xor_member_lookups` by byte shuffles: a table of sixteen words is eight tables of sixteen
/// bytes (`ChunkTables::planes`), and one `vpshufb` looks up one byte of 32 lanes' entries by
/// their nibbles. The sums are kept byte-sliced (register `j` holds byte `j` of 32 lanes'
/// sums) across the chunks, a half of the lanes at a time so that they stay in eight
/// registers, and turned back into words once at the end.
#[target_feature(enable = "avx2")]
fn xor_member_lookups_avx2_impl(out: &mut [u64; 64], words: &[[u64; 8]], tables: &[ChunkTables]) {
    let nibble = _mm256_set1_epi8(0x0f);
    for half in 0..2 {
        let mut acc = [_mm256_setzero_si256(); 8];
        for (w, t) in words.iter().zip(tables) {
            if w.iter().all(|&v| v == 0) {
                continue;
            }
            let lanes = lane_bytes_half_avx2(w, half);
            let low = _mm256_and_si256(lanes, nibble);
            let high = _mm256_and_si256(_mm256_srli_epi16(lanes, 4), nibble);
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: each plane is sixteen bytes.
                let (tl, th) = unsafe {
                    (
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.planes[j].as_ptr().cast())),
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.planes[8 + j].as_ptr().cast())),
                    )
                };
                let v = _mm256_xor_si256(_mm256_shuffle_epi8(tl, low), _mm256_shuffle_epi8(th, high));
                *a = _mm256_xor_si256(*a, v);
            }
        }
        // Bytes back into words: pairs (bytes 0-1, 2-3, ...) of lanes 0-7 | 16-23 and 8-15 |
        // 24-31, then quads, then words two lanes at a time.
        let pairs: [[__m256i; 2]; 4] = std::array::from_fn(|p| {
            let (x, y) = (acc[2 * p], acc[2 * p + 1]);
            [_mm256_unpacklo_epi8(x, y), _mm256_unpackhi_epi8(x, y)]
        });
        // quads[q][i]: bytes 4q..4q+4 of lanes 4i..4i+4 | 16+4i..16+4i+4.
        let quads: [[__m256i; 4]; 2] = std::array::from_fn(|q| {
            let (x, y) = (pairs[2 * q], pairs[2 * q + 1]);
            [
                _mm256_unpacklo_epi16(x[0], y[0]),
                _mm256_unpackhi_epi16(x[0], y[0]),
                _mm256_unpacklo_epi16(x[1], y[1]),
                _mm256_unpackhi_epi16(x[1], y[1]),
            ]
        });
        for i in 0..4 {
            // Lanes 4i, 4i + 1 | 16 + 4i, .. and 4i + 2, 4i + 3 | 18 + 4i, ..
            let w01 = _mm256_unpacklo_epi32(quads[0][i], quads[1][i]);
            let w23 = _mm256_unpackhi_epi32(quads[0][i], quads[1][i]);
            for (lane, v) in [
                (32 * half + 4 * i, _mm256_permute2x128_si256::<0x20>(w01, w23)),
                (32 * half + 16 + 4 * i, _mm256_permute2x128_si256::<0x31>(w01, w23)),
            ] {
                // SAFETY: lane + 4 <= 64.
                unsafe {
                    let o = out.as_mut_ptr().add(lane).cast::<__m256i>();
                    _mm256_storeu_si256(o, _mm256_xor_si256(_mm256_loadu_si256(o), v));
                }
            }
        }
    }
}

pub(super) fn xor_member_lookups_avx2(out: &mut [u64; 64], words: &[[u64; 8]], tables: &[ChunkTables]) {
    assert!(std::arch::is_x86_feature_detected!("avx2"), "AVX2 kernel on a CPU without it");
    assert_eq!(words.len(), tables.len(), "xor_member_lookups: chunks");
    // SAFETY: AVX2 was detected just above.
    unsafe { xor_member_lookups_avx2_impl(out, words, tables) }
}
