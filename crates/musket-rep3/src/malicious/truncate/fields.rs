//! Messages of `f`-bit values: a truncation by `f` bits uses its sign and its wrap only
//! multiplied by `2^(64-f)`, so those values live in a word's top `f` bits ("high-aligned",
//! the bits below zero) and travel as their top `f` bits alone, end to end.

/// The words whose top `f` bits may be set: `!0 << (64 - f)`.
pub(super) fn high_mask(f: usize) -> u64 {
    u64::MAX << (64 - f)
}

/// `values` with every bit below the top `f` cleared (random draws made high-aligned).
pub(super) fn high_aligned(mut values: Vec<u64>, f: usize) -> Vec<u64> {
    for v in &mut values {
        *v &= high_mask(f);
    }
    values
}

/// Words of a message of `n` values of `f` bits (packed end to end: a value may straddle two
/// words).
pub(super) fn fields_len(n: usize, f: usize) -> usize {
    (n * f).div_ceil(64)
}

/// The top `f` bits of every value, packed end to end (value `i` in bits `i f..(i + 1) f` of
/// the message, low bits first); the bits below the top `f` of each value are dropped, so
/// callers pass high-aligned values.
pub(super) fn pack_high(values: &[u64], f: usize) -> Vec<u64> {
    pack_high_from(values.iter().copied(), values.len(), f)
}

/// [`pack_high`] of the `n` values `values` yields, formed as they are packed (no vector of
/// them first).
pub(super) fn pack_high_from(values: impl Iterator<Item = u64>, n: usize, f: usize) -> Vec<u64> {
    let shift = 64 - f;
    if 64 % f == 0 {
        // No value straddles two words (f = 16 packs four a word): each word is formed in a
        // register and pushed, where the general loop below zeroes the message first and
        // reads and writes a word per value.
        let per_word = 64 / f;
        let mut values = values.take(n);
        return (0..fields_len(n, f))
            .map(|_| {
                values
                    .by_ref()
                    .take(per_word)
                    .enumerate()
                    .fold(0u64, |w, (j, v)| w | ((v >> shift) << (j * f)))
            })
            .collect();
    }
    let mut out = vec![0u64; fields_len(n, f)];
    for (i, v) in values.take(n).enumerate() {
        let (v, at) = (v >> shift, i * f);
        let (word, off) = (at / 64, at % 64);
        out[word] |= v << off;
        if off + f > 64 {
            out[word + 1] |= v >> (64 - off);
        }
    }
    out
}

/// The `n` high-aligned values [`pack_high`] packed into `words`, or `None` when the message
/// has the wrong length or a bit set past its last value: the sender deviated.
pub(super) fn unpack_high(words: &[u64], n: usize, f: usize) -> Option<Vec<u64>> {
    if words.len() != fields_len(n, f) {
        return None;
    }
    let used = (n * f) % 64;
    if used != 0 && words.last().is_some_and(|w| w >> used != 0) {
        return None;
    }
    let field = u64::MAX >> (64 - f);
    Some(
        (0..n)
            .map(|i| {
                let (word, off) = (i * f / 64, i * f % 64);
                let mut v = words[word] >> off;
                if off + f > 64 {
                    v |= words[word + 1] << (64 - off);
                }
                (v & field) << (64 - f)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_reject_stray_bits() {
        for f in [1usize, 7, 13, 16, 21, 32, 33, 61] {
            for n in [0usize, 1, 3, 4, 5, 64, 65] {
                // Nonzero values whose top bit alternates, the lowest field bit always set.
                let values: Vec<u64> = (0..n as u64)
                    .map(|i| {
                        ((i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & high_mask(f)) | (1 << (64 - f))) ^ (i << 63)
                    })
                    .collect();
                let packed = pack_high(&values, f);
                assert_eq!(packed.len(), fields_len(n, f));
                assert_eq!(unpack_high(&packed, n, f).as_deref(), Some(&values[..]), "f {f} n {n}");
                // A bit past the last value (when the last word has room).
                if (n * f) % 64 != 0 {
                    let mut bad = packed.clone();
                    *bad.last_mut().unwrap() |= 1 << ((n * f) % 64);
                    assert_eq!(unpack_high(&bad, n, f), None, "f {f} n {n}");
                }
                let mut long = packed.clone();
                long.push(0);
                assert_eq!(unpack_high(&long, n, f), None);
                if let Some((_, short)) = packed.split_last() {
                    assert_eq!(unpack_high(short, n, f), None);
                }
            }
        }
    }

    #[test]
    fn packing_keeps_only_the_top_bits() {
        let f = 16;
        let values = [u64::MAX, 1 << 48, (1 << 48) - 1];
        let back = unpack_high(&pack_high(&values, f), 3, f).unwrap();
        assert_eq!(back, vec![high_mask(f), 1 << 48, 0]);
    }
}
