//! Secure comparison, protocol-generic: arithmetic-to-binary conversion by a bit-sliced
//! parallel-prefix adder that computes only the carry into the sign bit.
//!
//! The two operands from [`Protocol::a2b_operands`] are transposed into 64 bit planes (one
//! word holds one bit position of 64 elements), so every AND gate below is evaluated for 64
//! elements at once and only the gates the sign bit needs are paid for. Generate/propagate
//! pairs of the low 63 bits are combined in a binary tree, `log2(63)` = 6 levels of one round
//! each after the first AND layer: 7 rounds and [`MSB_CIRCUIT_ANDS`] AND gates per element.

use crate::bitdecomp::gather;
use crate::protocol::{Protocol, Share};
use crate::Result;
use musket_ring::{transpose64, RingTensor};

/// AND gates per element in the sign-bit circuit: 63 generate bits plus the carry tree
/// (61 + 31 + 15 + 7 + 3 + 1, skipping the propagate bit of the lowest group at every level,
/// which a carry-in of zero never needs).
pub const MSB_CIRCUIT_ANDS: usize = 181;

/// Transposes `n` words into 64 bit planes of `ceil(n/64)` words each.
pub(crate) fn to_planes(words: &[u64], n: usize) -> Vec<u64> {
    let nb = n.div_ceil(64);
    let mut out = vec![0u64; 64 * nb];
    let mut block = [0u64; 64];
    for b in 0..nb {
        let chunk = &words[b * 64..((b + 1) * 64).min(n)];
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (bit, &w) in block.iter().enumerate() {
            out[bit * nb + b] = w;
        }
    }
    out
}

/// The sign bit of every element of `x`, as packed bits (element `i` is bit `i % 64` of word
/// `i / 64`), XOR-shared.
pub fn msb<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Bits> {
    let n = x.len();
    let nb = n.div_ceil(64);
    let (a, b) = p.a2b_operands(x)?;
    let a = p.bits_linear(&a, &|w| to_planes(w, n));
    let b = p.bits_linear(&b, &|w| to_planes(w, n));
    let low = |w: &[u64]| w[..63 * nb].to_vec();
    let (a_low, b_low) = (p.bits_linear(&a, &low), p.bits_linear(&b, &low));
    let mut g = p.bits_and(&a_low, &b_low)?;
    let mut prop = p.bits_xor(&a_low, &b_low);
    let mut groups = 63usize;
    while groups > 1 {
        let pairs = groups / 2;
        let hi: Vec<usize> = (0..pairs).map(|j| 2 * j + 1).collect();
        let lo: Vec<usize> = (0..pairs).map(|j| 2 * j).collect();
        let left = p.bits_linear(&prop, &|w| {
            let mut v = gather(w, &hi, nb);
            v.extend(gather(w, &hi[1..], nb));
            v
        });
        let g_lo = p.bits_linear(&g, &|w| gather(w, &lo, nb));
        let p_lo = p.bits_linear(&prop, &|w| gather(w, &lo[1..], nb));
        let right = p.bits_concat(&[&g_lo, &p_lo]);
        let prod = p.bits_and(&left, &right)?;
        let g_hi = p.bits_linear(&g, &|w| gather(w, &hi, nb));
        let carry = p.bits_linear(&prod, &|w| w[..pairs * nb].to_vec());
        let mut new_g = p.bits_xor(&g_hi, &carry);
        // Group 0's propagate bit is never used (carry-in is zero): any placeholder will do.
        let placeholder = p.bits_linear(&prop, &|w| w[..nb].to_vec());
        let p_rest = p.bits_linear(&prod, &|w| w[pairs * nb..].to_vec());
        let mut new_p = p.bits_concat(&[&placeholder, &p_rest]);
        if groups % 2 == 1 {
            let last = groups - 1;
            let g_last = p.bits_linear(&g, &|w| w[last * nb..].to_vec());
            let p_last = p.bits_linear(&prop, &|w| w[last * nb..].to_vec());
            new_g = p.bits_concat(&[&new_g, &g_last]);
            new_p = p.bits_concat(&[&new_p, &p_last]);
        }
        g = new_g;
        prop = new_p;
        groups = pairs + groups % 2;
    }
    let top = |w: &[u64]| w[63 * nb..].to_vec();
    let sum_top = p.bits_xor(&p.bits_linear(&a, &top), &p.bits_linear(&b, &top));
    Ok(p.bits_xor(&sum_top, &g))
}

/// `[x < y]` elementwise as arithmetic shares of 0/1 (requires `|x - y| < 2^63`, always true
/// for encoded fixed-point values).
pub fn lt<P: Protocol>(p: &mut P, x: &P::Share, y: &P::Share) -> Result<P::Share> {
    let d = p.sub(x, y)?;
    let m = msb(p, &d)?;
    p.b2a_packed(&m, d.shape())
}

/// `[x >= 0]` elementwise as arithmetic shares of 0/1 (the derivative of ReLU).
pub fn drelu<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Share> {
    let m = msb(p, x)?;
    let neg = p.b2a_packed(&m, x.shape())?;
    let one = RingTensor::filled(x.shape(), 1);
    let minus = p.neg(&neg)?;
    p.add_public(&minus, &one)
}

/// `max(x, 0)` elementwise: `x - x [x < 0]`, exact (no truncation is needed); the product with
/// the sign bit is [`Protocol::mul_bits`], so 2PC takes one round after the sign circuit.
pub fn relu<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Share> {
    let m = msb(p, x)?;
    let x_neg = p.mul_bits(x, &m)?;
    p.sub(x, &x_neg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plain;

    #[test]
    fn msb_on_the_oracle_matches_sign() {
        let vals: Vec<u64> = [0i64, 1, -1, i64::MAX, i64::MIN, 5, -5, 1 << 62, -(1 << 62)]
            .iter()
            .map(|&v| v as u64)
            .chain((0..200).map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        let x = RingTensor::from_vec(vals.clone());
        let mut p = Plain;
        let m = msb(&mut p, &x).unwrap();
        for (i, v) in vals.iter().enumerate() {
            assert_eq!((m[i / 64] >> (i % 64)) & 1, v >> 63, "element {i}");
        }
    }
}
