//! Full arithmetic-to-binary conversion: every bit of every element, by a bit-sliced Sklansky
//! parallel-prefix adder over the two operands of [`Protocol::a2b_operands`], and prefix ANDs
//! over bit planes. The sign-bit circuit in `compare` pays only for the carry into bit 63; this
//! one pays about twice that (see [`BIT_DECOMPOSITION_ANDS`]) for all 64 carries in the same 7
//! rounds, which is what locating a value between many powers of two needs (one decomposition
//! instead of one comparison circuit per power).

use crate::compare::to_planes;
use crate::protocol::{Protocol, Share};
use crate::Result;

/// AND gates per element of [`bit_planes`]: 64 generate bits, then at each of the 6 levels 32
/// group-generate updates and the group-propagate updates of groups that do not start at bit 0
/// (32 - 2^l of them at level l): 64 + 6 * 32 + (31 + 30 + 28 + 24 + 16 + 0) = 385.
pub const BIT_DECOMPOSITION_ANDS: usize = 385;

/// Positions updated at level `l` of a Sklansky prefix over `len` positions, with the last
/// position of the block below each (its partner).
fn sklansky_level(len: usize, l: u32) -> (Vec<usize>, Vec<usize>) {
    let targets: Vec<usize> = (0..len).filter(|i| (i >> l) & 1 == 1).collect();
    let partners = targets.iter().map(|i| ((i >> l) << l) - 1).collect();
    (targets, partners)
}

/// Planes `idx` (each `nb` words) of `w`, concatenated.
pub(crate) fn gather(w: &[u64], idx: &[usize], nb: usize) -> Vec<u64> {
    musket_ring::gather_planes(w, idx.iter().copied(), nb)
}

/// `len` planes, zero except planes `idx`, which take the consecutive planes of `w`.
fn scatter(w: &[u64], idx: &[usize], nb: usize, len: usize) -> Vec<u64> {
    let mut out = vec![0u64; len * nb];
    for (k, &g) in idx.iter().enumerate() {
        out[g * nb..(g + 1) * nb].copy_from_slice(&w[k * nb..(k + 1) * nb]);
    }
    out
}

/// Replaces planes `idx` of `x` by the planes of `new` (a linear map of the pair).
fn replace<P: Protocol>(p: &P, x: &P::Bits, idx: &[usize], new: &P::Bits, nb: usize, len: usize) -> P::Bits {
    let old = p.bits_linear(x, &|w| gather(w, idx, nb));
    let diff = p.bits_xor(&old, new);
    let delta = p.bits_linear(&diff, &|w| scatter(w, idx, nb, len));
    p.bits_xor(x, &delta)
}

/// The 64 bits of every element of `x`, XOR-shared as bit planes: plane `i` (words
/// `i*nb .. (i+1)*nb`, `nb = ceil(n/64)`) holds bit `i` of every element, packed (element `e`
/// is bit `e % 64` of word `e / 64`). 7 rounds, [`BIT_DECOMPOSITION_ANDS`] ANDs per element.
pub fn bit_planes<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Bits> {
    let n = x.len();
    let nb = n.div_ceil(64);
    let (a, b) = p.a2b_operands(x)?;
    let a = p.bits_linear(&a, &|w| to_planes(w, n));
    let b = p.bits_linear(&b, &|w| to_planes(w, n));
    let half_sum = p.bits_xor(&a, &b);
    // (g, prop) at position i describe the group of bits ending at i: whether it generates a
    // carry, whether it propagates one. g and prop are never both set, so OR is XOR.
    let mut g = p.bits_and(&a, &b)?;
    let mut prop = half_sum.clone();
    for l in 0..6 {
        let (targets, partners) = sklansky_level(64, l);
        // Groups ending at a target now start at (i >> (l+1)) << (l+1); only those that do not
        // start at bit 0 need their propagate bit again.
        let keep: Vec<usize> = targets.iter().copied().filter(|&i| i >= 2 << l).collect();
        let keep_partners: Vec<usize> = keep.iter().map(|i| ((i >> l) << l) - 1).collect();
        let left = p.bits_linear(&prop, &|w| {
            let mut v = gather(w, &targets, nb);
            v.extend(gather(w, &keep, nb));
            v
        });
        let g_part = p.bits_linear(&g, &|w| gather(w, &partners, nb));
        let p_part = p.bits_linear(&prop, &|w| gather(w, &keep_partners, nb));
        let right = p.bits_concat(&[&g_part, &p_part]);
        let prod = p.bits_and(&left, &right)?;
        let t = targets.len() * nb;
        let carry = p.bits_linear(&prod, &|w| scatter(&w[..t], &targets, nb, 64));
        g = p.bits_xor(&g, &carry);
        let new_prop = p.bits_linear(&prod, &|w| w[t..].to_vec());
        prop = replace(p, &prop, &keep, &new_prop, nb, 64);
    }
    // Bit i = a_i ^ b_i ^ carry into i, and the carry into i is the generate bit of [0, i-1].
    let carries = p.bits_linear(&g, &|w| {
        let mut v = vec![0u64; nb];
        v.extend_from_slice(&w[..63 * nb]);
        v
    });
    Ok(p.bits_xor(&half_sum, &carries))
}

/// Suffix ANDs of `len` XOR-shared planes: plane `k` of the result is the AND of planes
/// `k..len` of `x`. `ceil(log2 len)` rounds.
pub fn suffix_and<P: Protocol>(p: &mut P, x: &P::Bits, len: usize, nb: usize) -> Result<P::Bits> {
    // A prefix AND over the reversed order.
    let rev = |w: &[u64]| -> Vec<u64> {
        let mut out = Vec::with_capacity(len * nb);
        for k in (0..len).rev() {
            out.extend_from_slice(&w[k * nb..(k + 1) * nb]);
        }
        out
    };
    let mut acc = p.bits_linear(x, &rev);
    let mut l = 0;
    while (1usize << l) < len {
        let (targets, partners) = sklansky_level(len, l);
        let left = p.bits_linear(&acc, &|w| gather(w, &targets, nb));
        let right = p.bits_linear(&acc, &|w| gather(w, &partners, nb));
        let prod = p.bits_and(&left, &right)?;
        acc = replace(p, &acc, &targets, &prod, nb, len);
        l += 1;
    }
    Ok(p.bits_linear(&acc, &rev))
}

/// Concatenates `planes` planes of `n` packed bits each (`nb = ceil(n/64)` words, padding bits
/// ignored) into one packed run of `planes * n` bits, the layout of
/// [`Protocol::b2a_packed`].
pub fn planes_to_packed(w: &[u64], planes: usize, n: usize) -> Vec<u64> {
    let nb = n.div_ceil(64);
    if n.is_multiple_of(64) {
        return w[..planes * nb].to_vec();
    }
    let mut out = vec![0u64; (planes * n).div_ceil(64)];
    for k in 0..planes {
        for e in 0..n {
            let bit = (w[k * nb + e / 64] >> (e % 64)) & 1;
            let at = k * n + e;
            out[at / 64] |= bit << (at % 64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plain;
    use musket_ring::RingTensor;

    #[test]
    fn bit_planes_on_the_oracle_give_every_bit() {
        let vals: Vec<u64> = [0i64, 1, -1, i64::MAX, i64::MIN, 5, -5, 1 << 62, -(1 << 62)]
            .iter()
            .map(|&v| v as u64)
            .chain((0..150).map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        let n = vals.len();
        let nb = n.div_ceil(64);
        let x = RingTensor::from_vec(vals.clone());
        let mut p = Plain;
        let planes = bit_planes(&mut p, &x).unwrap();
        for (e, v) in vals.iter().enumerate() {
            for bit in 0..64 {
                assert_eq!(
                    (planes[bit * nb + e / 64] >> (e % 64)) & 1,
                    (v >> bit) & 1,
                    "element {e} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn suffix_and_and_packing() {
        let mut p = Plain;
        for len in [1usize, 2, 5, 27, 64] {
            let n: usize = 70;
            let nb = n.div_ceil(64);
            let x: Vec<u64> =
                (0..len * nb).map(|i| !((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0x0101)).collect();
            let s = suffix_and(&mut p, &x, len, nb).unwrap();
            for k in 0..len {
                for w in 0..nb {
                    let expect = (k..len).fold(u64::MAX, |acc, j| acc & x[j * nb + w]);
                    assert_eq!(s[k * nb + w], expect, "len {len} plane {k}");
                }
            }
            let packed = planes_to_packed(&s, len, n);
            for k in 0..len {
                for e in 0..n {
                    let at = k * n + e;
                    assert_eq!((packed[at / 64] >> (at % 64)) & 1, (s[k * nb + e / 64] >> (e % 64)) & 1);
                }
            }
        }
    }
}
