//! Bit-slicing helpers: boolean circuits on shares run on "bit planes" where one `u64` word
//! holds the same bit position of 64 different elements, so one AND gate on a word evaluates
//! 64 comparisons at once and only the bits a circuit needs are sent.

/// Transposes a 64x64 bit matrix in place: afterwards bit `c` of word `r` is what bit `r` of
/// word `c` was. Hand-written (recursive block swap, 6 passes of 32 word pairs) because no
/// maintained crate offers it for u64 words.
pub fn transpose64(m: &mut [u64; 64]) {
    let mut width = 32usize;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while width != 0 {
        let mut k = 0usize;
        while k < 64 {
            for r in k..k + width {
                // Swap the high `width` bits of word r with the low `width` bits of r + width.
                let t = ((m[r] >> width) ^ m[r + width]) & mask;
                m[r] ^= t << width;
                m[r + width] ^= t;
            }
            k += 2 * width;
        }
        width >>= 1;
        mask ^= mask << width;
    }
}

/// The concatenation of word slices, in one allocation of the exact size.
pub fn concat_words<'a>(parts: impl IntoIterator<Item = &'a [u64]> + Clone) -> Vec<u64> {
    let len = parts.clone().into_iter().map(<[u64]>::len).sum();
    let mut out = Vec::with_capacity(len);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// Planes `idx` of `w` (plane `g` is words `g*nb .. (g+1)*nb`), concatenated in that order,
/// in one allocation; a plane index past `w`'s end panics (callers compute them from `w`'s
/// own plane count).
pub fn gather_planes(w: &[u64], idx: impl IntoIterator<Item = usize> + Clone, nb: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(idx.clone().into_iter().count() * nb);
    for g in idx {
        out.extend_from_slice(&w[g * nb..(g + 1) * nb]);
    }
    out
}

/// Packs the lowest bit of each element into words, 64 elements per word (element `i` goes to
/// bit `i % 64` of word `i / 64`); the last word is zero-padded.
pub fn pack_bits(values: &[u64]) -> Vec<u64> {
    values
        .chunks(64)
        .map(|chunk| chunk.iter().enumerate().fold(0u64, |w, (i, &v)| w | ((v & 1) << i)))
        .collect()
}

/// The inverse of [`pack_bits`]: `n` elements, each 0 or 1.
pub fn unpack_bits(words: &[u64], n: usize) -> Vec<u64> {
    (0..n).map(|i| (words[i / 64] >> (i % 64)) & 1).collect()
}

/// The lowest `planes` bit planes of `n` words, `planes` times `ceil(n / 64)` words: plane `k`
/// holds bit `k` of elements `64 j..64 j + 64` in its word `j` (the other planes are dropped
/// while transposing).
pub fn low_bit_planes(words: &[u64], n: usize, planes: usize) -> Vec<u64> {
    let nb = n.div_ceil(64);
    let mut out = vec![0u64; planes * nb];
    let mut block = [0u64; 64];
    for b in 0..nb {
        let chunk = &words[b * 64..((b + 1) * 64).min(n)];
        // Zero blocks are common (an operand that is one party's component in a third of
        // the elements) and their planes are already zero. Skipping them reveals nothing: a
        // component of a secret's share is uniformly random, so only public structure zeroes
        // a whole block.
        if chunk.iter().all(|&w| w == 0) {
            continue;
        }
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (bit, &w) in block.iter().take(planes).enumerate() {
            out[bit * nb + b] = w;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn concatenation_and_plane_gathers_keep_order() {
        let w: Vec<u64> = (0..12).collect();
        assert_eq!(concat_words([&w[..2], &w[5..7], &w[..0]]), vec![0, 1, 5, 6]);
        // Three-word planes 3, 0, 3 of four.
        assert_eq!(gather_planes(&w, [3, 0, 3], 3), vec![9, 10, 11, 0, 1, 2, 9, 10, 11]);
        assert!(gather_planes(&w, [], 3).is_empty());
    }

    #[test]
    fn transpose_moves_every_bit() {
        let mut rng = rand::thread_rng();
        let orig: [u64; 64] = std::array::from_fn(|_| rng.gen());
        let mut m = orig;
        transpose64(&mut m);
        for r in 0..64 {
            for c in 0..64 {
                assert_eq!((m[r] >> c) & 1, (orig[c] >> r) & 1, "bit ({r},{c})");
            }
        }
        transpose64(&mut m);
        assert_eq!(m, orig);
    }

    #[test]
    fn pack_round_trip() {
        let v: Vec<u64> = (0..130).map(|i| (i * 7 % 3 == 0) as u64).collect();
        let w = pack_bits(&v);
        assert_eq!(w.len(), 3);
        assert_eq!(unpack_bits(&w, v.len()), v);
    }
}
