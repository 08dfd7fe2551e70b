//! Table lookups of the packed binary proof's write-out: a lane's value is a GF(2) sum of its
//! members' coefficients, picked by the lane's bits across the members (a GF(2) matrix
//! product by the four-Russians method: the bits of eight members at a lane form one byte,
//! whose nibbles index tables of the sums over subsets of four coefficients). Written by
//! hand: no crate forms these lookups; on x86-64 one byte shuffle or one 64-bit permutation
//! looks up many lanes at once (`x86_lookups`).

/// Sums over the subsets of four members' coefficients: `t[i]` is the XOR of `c[s]` over the
/// bits `s` set in `i`, entry 0 the empty subset's zero.
fn nibble_sums(c: &[u64]) -> [u64; 16] {
    let mut t = [0u64; 16];
    for i in 1..16usize {
        t[i] = t[i & (i - 1)] ^ c[i.trailing_zeros() as usize];
    }
    t
}

/// One chunk's tables: its first four and last four members' subset sums, and the same as
/// byte planes for sixteen-entry byte shuffles (`planes[j][i]` is byte `j` of `low[i]`,
/// `planes[8 + j][i]` byte `j` of `high[i]`).
#[derive(Clone, Debug)]
pub(super) struct ChunkTables {
    pub(super) low: [u64; 16],
    pub(super) high: [u64; 16],
    pub(super) planes: [[u8; 16]; 16],
}

/// The lookup tables of a list of members' coefficients, in chunks of eight members (the last
/// padded with zero coefficients), built once and used for every group of lanes
/// ([`xor_member_lookups`]).
#[derive(Clone, Debug)]
pub struct MemberTables {
    chunks: Vec<ChunkTables>,
}

impl MemberTables {
    /// The tables of these coefficients, member `s` in chunk `s / 8`.
    pub fn new(coefficients: &[u64]) -> Self {
        let chunks = coefficients
            .chunks(8)
            .map(|c| {
                let mut padded = [0u64; 8];
                padded[..c.len()].copy_from_slice(c);
                let (low, high) = (nibble_sums(&padded[..4]), nibble_sums(&padded[4..]));
                let planes = std::array::from_fn(|p| {
                    let table = if p < 8 { &low } else { &high };
                    std::array::from_fn(|i| (table[i] >> (8 * (p % 8))) as u8)
                });
                ChunkTables { low, high, planes }
            })
            .collect();
        Self { chunks }
    }

    /// How many chunks of eight members.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
}

/// `out_i ^= low[idx_i & 15] ^ high[idx_i >> 4]`: two lookups per byte in tables of sixteen
/// words. AVX-512 where the CPU has it (one permutation looks up eight entries).
///
/// # Panics
/// If the slices differ in length.
pub fn xor_nibble_lookups(out: &mut [u64], idx: &[u8], low: &[u64; 16], high: &[u64; 16]) {
    assert_eq!(out.len(), idx.len(), "xor_nibble_lookups: lengths");
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        done = super::x86_lookups::xor_nibble_lookups_avx512(out, idx, low, high);
    }
    for (o, &i) in out[done..].iter_mut().zip(&idx[done..]) {
        *o ^= low[(i & 15) as usize] ^ high[(i >> 4) as usize];
    }
}

/// `out[b] ^= sum_s bit_b(words[s / 8][s % 8]) c_s` over the members `s` of `tables`: one
/// group's 64 lanes of a packed binary proof's written-out vector, from all its chunks of
/// eight members at once. The lanes' sums stay in vector registers across the chunks:
/// AVX-512 with GFNI and VBMI (one permutation looks up eight lanes), else AVX2 (one byte
/// shuffle looks up a byte of 32 lanes), else lane bytes and nibble lookups chunk by chunk. A
/// chunk of eight zero words adds nothing and is skipped.
///
/// # Panics
/// If `words` does not hold one chunk of eight words per chunk of `tables`.
pub fn xor_member_lookups(out: &mut [u64; 64], words: &[[u64; 8]], tables: &MemberTables) {
    assert_eq!(words.len(), tables.chunks(), "xor_member_lookups: chunks");
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86_lookups;
        if x86_lookups::has_gfni_vbmi() {
            return x86_lookups::xor_member_lookups_gfni(out, words, &tables.chunks);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return x86_lookups::xor_member_lookups_avx2(out, words, &tables.chunks);
        }
    }
    xor_member_lookups_portable(out, words, tables);
}

/// [`xor_member_lookups`] chunk by chunk: lane bytes, then nibble lookups.
fn xor_member_lookups_portable(out: &mut [u64; 64], words: &[[u64; 8]], tables: &MemberTables) {
    for (w, t) in words.iter().zip(&tables.chunks) {
        if w.iter().any(|&v| v != 0) {
            xor_nibble_lookups(out, &lane_bytes_portable(w), &t.low, &t.high);
        }
    }
}

/// Byte `b` of the result holds bit `b` of each of the eight words (bit `s` from word `s`):
/// the lanes of eight binary words, for the packed binary proof's table lookups. GFNI with
/// AVX-512 VBMI where the CPU has them (two instructions), else eight 8x8 bit transposes.
pub fn lane_bytes(words: &[u64; 8]) -> [u8; 64] {
    #[cfg(target_arch = "x86_64")]
    if super::x86_lookups::has_gfni_vbmi() {
        return super::x86_lookups::lane_bytes_gfni(words);
    }
    lane_bytes_portable(words)
}

/// [`lane_bytes`] by shifts and masks.
pub fn lane_bytes_portable(words: &[u64; 8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for k in 0..8 {
        // Row s of the 8x8 matrix: byte k of word s.
        let mut m =
            words.iter().enumerate().fold(0u64, |acc, (s, w)| acc | (((w >> (8 * k)) & 0xff) << (8 * s)));
        let t = (m ^ (m >> 7)) & 0x00aa_00aa_00aa_00aa;
        m ^= t ^ (t << 7);
        let t = (m ^ (m >> 14)) & 0x0000_cccc_0000_cccc;
        m ^= t ^ (t << 14);
        let t = (m ^ (m >> 28)) & 0x0000_0000_f0f0_f0f0;
        m ^= t ^ (t << 28);
        out[8 * k..8 * k + 8].copy_from_slice(&m.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// `out[b] ^= c_s` for every member `s` whose word has bit `b` set: the definition.
    fn by_definition(start: &[u64; 64], words: &[[u64; 8]], coef: &[u64]) -> [u64; 64] {
        let mut want = *start;
        for (s, c) in coef.iter().enumerate() {
            let word = words[s / 8][s % 8];
            for (b, o) in want.iter_mut().enumerate() {
                if (word >> b) & 1 == 1 {
                    *o ^= c;
                }
            }
        }
        want
    }

    #[test]
    fn nibble_tables_hold_the_subset_sums() {
        let c = [3u64, 5, 17, 1 << 40, 7, 11, 13, 19];
        let tables = MemberTables::new(&c[..6]);
        let t = &tables.chunks[0];
        assert_eq!(tables.chunks(), 1);
        assert_eq!(t.low[0b1101], c[0] ^ c[2] ^ c[3]);
        // Members 6 and 7 are padding: zero.
        assert_eq!(t.high[0b1111], c[4] ^ c[5]);
        assert_eq!((t.low[0], t.high[0]), (0, 0));
        for (p, plane) in t.planes.iter().enumerate() {
            let table = if p < 8 { &t.low } else { &t.high };
            for i in 0..16 {
                assert_eq!(plane[i], table[i].to_le_bytes()[p % 8]);
            }
        }
    }

    #[test]
    fn nibble_lookups_match_their_definition() {
        let mut rng = rand::thread_rng();
        for n in [0usize, 5, 8, 77] {
            let start: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
            let idx: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            let low: [u64; 16] = std::array::from_fn(|_| rng.gen());
            let high: [u64; 16] = std::array::from_fn(|_| rng.gen());
            let mut out = start.clone();
            xor_nibble_lookups(&mut out, &idx, &low, &high);
            for i in 0..n {
                assert_eq!(out[i], start[i] ^ low[(idx[i] & 15) as usize] ^ high[(idx[i] >> 4) as usize]);
            }
        }
    }

    #[test]
    fn lane_bytes_match_their_definition() {
        let mut rng = rand::thread_rng();
        for _ in 0..20 {
            let w: [u64; 8] = std::array::from_fn(|_| rng.gen());
            let want: [u8; 64] =
                std::array::from_fn(|b| (0..8).fold(0u8, |acc, s| acc | ((((w[s] >> b) & 1) as u8) << s)));
            assert_eq!(lane_bytes_portable(&w), want);
            assert_eq!(lane_bytes(&w), want);
        }
    }

    /// Every form this CPU runs (the dispatched one, AVX2's and GFNI's where supported, the
    /// portable one) against the definition, with partial last chunks and zero chunks, and
    /// words with single bits at the ends of each byte and half.
    #[test]
    fn member_lookups_match_their_definition() {
        let mut rng = rand::thread_rng();
        for members in [0usize, 1, 7, 8, 13, 24, 64, 100] {
            let chunks = members.div_ceil(8);
            let coef: Vec<u64> = (0..members).map(|_| rng.gen()).collect();
            let tables = MemberTables::new(&coef);
            assert_eq!(tables.chunks(), chunks);
            let mut words: Vec<[u64; 8]> = (0..chunks)
                .map(|k| {
                    std::array::from_fn(|j| {
                        let s = 8 * k + j;
                        match s % 5 {
                            _ if s >= members => 0,
                            0 => 1 << (s % 64),
                            1 => (1 << 31) | (1 << 32) | (1 << 63),
                            _ => rng.gen(),
                        }
                    })
                })
                .collect();
            if chunks >= 3 {
                words[1] = [0; 8];
            }
            let start: [u64; 64] = std::array::from_fn(|_| rng.gen());
            let want = by_definition(&start, &words, &coef);
            let mut got = start;
            xor_member_lookups(&mut got, &words, &tables);
            assert_eq!(got, want, "{members} members");
            let mut got = start;
            xor_member_lookups_portable(&mut got, &words, &tables);
            assert_eq!(got, want, "portable: {members} members");
            #[cfg(target_arch = "x86_64")]
            {
                use super::super::x86_lookups;
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut got = start;
                    x86_lookups::xor_member_lookups_avx2(&mut got, &words, &tables.chunks);
                    assert_eq!(got, want, "AVX2: {members} members");
                }
                if x86_lookups::has_gfni_vbmi() {
                    let mut got = start;
                    x86_lookups::xor_member_lookups_gfni(&mut got, &words, &tables.chunks);
                    assert_eq!(got, want, "GFNI: {members} members");
                }
            }
        }
    }
}
