//! Messages of `f`-bit values: a truncation by `f` bits uses its sign and its wrap only
//! multiplied by `2^(64-f)`, so those values live in a word's top `f` bits ("high-aligned",
//! the bits below zero) and travel as their top `f` bits alone, `64 / f` to a word.

/// The words whose top `f` bits may be set: `!0 << (64 - f)`.
pub(super) fn high_mask(f: usize) -> u64 {
    u64::MAX << (64 - f)
}

/// Values a word holds (fields do not straddle words: for `f = 16` four, without waste).
fn per_word(f: usize) -> usize {
    64 / f
}

/// Words of a message of `n` values of `f` bits.
pub(super) fn fields_len(n: usize, f: usize) -> usize {
    n.div_ceil(per_word(f))
}

/// The top `f` bits of every value, `64 / f` to a word (value `j` of a word in bits
/// `j f..(j + 1) f`); the bits below the top `f` of each value are dropped, so callers pass
/// high-aligned values.
pub(super) fn pack_high(values: &[u64], f: usize) -> Vec<u64> {
    let shift = 64 - f;
    values
        .chunks(per_word(f))
        .map(|chunk| chunk.iter().enumerate().fold(0u64, |w, (j, v)| w | ((v >> shift) << (j * f))))
        .collect()
}

/// The `n` high-aligned values [`pack_high`] packed into `words`, or `None` when the message
/// has the wrong length or a bit set outside its fields (in the unused top bits of a word
/// or in the fields past the last value): the sender deviated.
pub(super) fn unpack_high(words: &[u64], n: usize, f: usize) -> Option<Vec<u64>> {
    let per = per_word(f);
    if words.len() != fields_len(n, f) {
        return None;
    }
    let field = (1u64 << f) - 1;
    let mut out = Vec::with_capacity(n);
    for (k, &w) in words.iter().enumerate() {
        let live = per.min(n - k * per);
        // The bits past this word's live fields must be zero.
        if live * f < 64 && w >> (live * f) != 0 {
            return None;
        }
        out.extend((0..live).map(|j| ((w >> (j * f)) & field) << (64 - f)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_reject_stray_bits() {
        for f in [1usize, 7, 13, 16, 21, 32, 33, 61] {
            for n in [0usize, 1, 3, 4, 5, 64, 65] {
                let values: Vec<u64> = (0..n as u64)
                    .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1) & high_mask(f))
                    .collect();
                let packed = pack_high(&values, f);
                assert_eq!(packed.len(), fields_len(n, f));
                assert_eq!(unpack_high(&packed, n, f).as_deref(), Some(&values[..]), "f {f} n {n}");
                if n > 0 {
                    // A bit past the last live field of the last word (when there is one).
                    let live = per_word(f).min(n - (packed.len() - 1) * per_word(f));
                    if live * f < 64 {
                        let mut bad = packed.clone();
                        *bad.last_mut().unwrap() |= 1 << (live * f);
                        assert_eq!(unpack_high(&bad, n, f), None, "f {f} n {n}");
                    }
                }
                let mut short = packed.clone();
                short.push(0);
                assert_eq!(unpack_high(&short, n, f), None);
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
