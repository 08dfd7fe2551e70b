//! Secure comparison, protocol-generic: arithmetic-to-binary conversion by a bit-sliced
//! parallel-prefix adder that computes only the carry into the sign bit.
//!
//! The two operands from [`Protocol::a2b_operands`] are transposed into 64 bit planes (one
//! word holds one bit position of 64 elements), so every AND gate below is evaluated for 64
//! elements at once and only the gates the sign bit needs are paid for. Generate/propagate
//! pairs of the low 63 bits are combined in a binary tree, `log2(63)` = 6 levels of one round
//! each after the first AND layer: 7 rounds and [`MSB_CIRCUIT_ANDS`] AND gates per element.

use crate::protocol::{Protocol, Share};
use crate::Result;
use musket_ring::RingTensor;

/// AND gates per element in the sign-bit circuit: 63 generate bits plus the carry tree
/// (61 + 31 + 15 + 7 + 3 + 1, skipping the propagate bit of the lowest group at every level,
/// which a carry-in of zero never needs).
pub const MSB_CIRCUIT_ANDS: usize = 181;

/// Transposes `n` words into 64 bit planes of `ceil(n/64)` words each.
pub(crate) fn to_planes(words: &[u64], n: usize) -> Vec<u64> {
    to_low_planes(words, n, 64)
}

/// The lowest `planes` bit planes of `n` words (see [`musket_ring::low_bit_planes`]).
fn to_low_planes(words: &[u64], n: usize, planes: usize) -> Vec<u64> {
    musket_ring::low_bit_planes(words, n, planes)
}

/// The sign bit of every element of `x`, as packed bits (element `i` is bit `i % 64` of word
/// `i / 64`), XOR-shared.
pub fn msb<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Bits> {
    sum_top_of(p, x, 64)
}

/// Bit `width - 1` of the secret `x`, by the carry tree on the operands the back end gives:
/// their low bit planes where it makes those more cheaply
/// ([`Protocol::a2b_operand_planes`]), else [`Protocol::a2b_operands`]' words.
fn sum_top_of<P: Protocol>(p: &mut P, x: &P::Share, width: usize) -> Result<P::Bits> {
    let n = x.len();
    if let Some((a, b)) = p.a2b_operand_planes(x, width)? {
        let extras = Extras { operand_planes: true, ..Extras::default() };
        return Ok(tree::run(p, &a, &b, n, width, extras)?.top);
    }
    let (a, b) = p.a2b_operands(x)?;
    sign_of_a2b_operands(p, &a, &b, n, width)
}

/// [`sum_bit`] of the operands `a2b_operands` returned, which the generate layer may use
/// ([`Protocol::bits_and_with_a2b_planes`]).
pub(crate) fn sign_of_a2b_operands<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    width: usize,
) -> Result<P::Bits> {
    Ok(tree::run(p, a, b, n, width, Extras { b_from_a2b: true, ..Extras::default() })?.top)
}

/// `[x < 0]` for inputs known to satisfy `|x| < 2^(bits - 1)`, by a `bits`-wide circuit:
/// `y = x + 2^(bits-1)` lies in `[0, 2^bits)`, so `x < 0` exactly when bit `bits - 1` of `y`
/// is clear, and that bit depends only on the operands' low `bits` bits. At 32 bits it costs
/// [`msb_within_ands`]`(32)` = 89 AND gates per element instead of 181, and 6 rounds instead
/// of 7.
///
/// Outside the domain the bit is meaningless, so the caller must have the bound guaranteed:
/// it is declared through [`Protocol::assume_within`], which the range audit checks on every
/// element; the secure range check's plan bounds the value before it gets here (an op that
/// calls this declares the bound in `Op::operand_bounds`). `bits` must be in 2..=64 (64 is
/// [`msb`]).
pub fn msb_within<P: Protocol>(p: &mut P, x: &P::Share, bits: u32, what: &str) -> Result<P::Bits> {
    if !(2..=64).contains(&bits) {
        return Err(crate::MpcError::Usage(format!("{what}: a sign circuit of {bits} bits")));
    }
    if bits == 64 {
        return msb(p, x);
    }
    let half = 1u64 << (bits - 1);
    p.assume_within(x, half, what)?;
    let n = x.len();
    let y = p.add_public(x, &RingTensor::filled(x.shape(), half))?;
    let top = sum_top_of(p, &y, bits as usize)?;
    // [x < 0] = NOT bit (bits - 1) of y, on the n valid bits only (padding stays zero).
    let mut ones = vec![u64::MAX; n.div_ceil(64)];
    if n % 64 != 0 {
        *ones.last_mut().expect("n > 0 when n % 64 != 0") = (1u64 << (n % 64)) - 1;
    }
    Ok(p.bits_xor_public(&top, &ones))
}

/// AND gates per element of the `bits`-wide sign circuit: `bits - 1` generate bits plus the
/// carry tree over `bits - 1` groups (`2 pairs - 1` gates a level, the lowest group's
/// propagate bit skipped).
pub fn msb_within_ands(bits: usize) -> usize {
    let mut ands = bits - 1;
    let mut groups = bits - 1;
    while groups > 1 {
        let pairs = groups / 2;
        ands += 2 * pairs - 1;
        groups = pairs + groups % 2;
    }
    ands
}

/// Bit `width - 1` (2 to 64) of `a + b`, the ring sum of two XOR-shared operands of one word
/// per element, for `n` elements, as packed bits: generate bits of the low `width - 1`
/// positions (one AND layer), then a carry tree over those groups (`ceil(log2(width - 1))`
/// layers, [`msb_within_ands`]`(width)` AND gates per element); the bit is `a ^ b ^ carry`
/// there.
pub fn sum_bit<P: Protocol>(p: &mut P, a: &P::Bits, b: &P::Bits, n: usize, width: usize) -> Result<P::Bits> {
    Ok(tree::run(p, a, b, n, width, Extras::default())?.top)
}

/// [`sum_bit`], and also the carry into bit `carry_at` (1 to `width - 2`) of `a + b`, taken
/// from the same carry tree: the generate bit of `[0, carry_at)` is combined from the tree's
/// aligned groups along the binary digits of `carry_at` (`[0, 16)` is one of them, so at 16
/// it costs nothing), one AND per further digit, carried in the tree's later AND layers: no
/// extra round while the tree has layers left, which in a 64-bit tree holds for every
/// `carry_at` up to 22 (each fixed-point scale); beyond, up to three more AND layers.
pub fn sum_bit_and_carry<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    width: usize,
    carry_at: usize,
) -> Result<(P::Bits, P::Bits)> {
    if carry_at == 0 || carry_at + 1 >= width {
        return Err(crate::MpcError::Usage(format!("sum_bit_and_carry: carry into {carry_at} of {width}")));
    }
    let out = tree::run(p, a, b, n, width, Extras { carry_at: Some(carry_at), ..Extras::default() })?;
    Ok((out.top, out.carry.expect("requested")))
}

/// `[a + b >= 2^k]` for the ring sum `a + b mod 2^64` read as unsigned, `k` in 1 to 62, of two
/// XOR-shared operands of one word per element, for `n` elements: two packed bit vectors
/// whose OR it is, bit `k` of the sum and the OR of its bits `k + 1..=63`. Bit `k` is a
/// `k + 1`-wide carry tree ([`sum_bit`]); the bits above need no carries of their own (see
/// `compare/tree.rs`), one AND per bit and an OR tree whose layers ride along with the carry
/// tree's: [`sum_reaches_ands`]`(k)` AND gates per element (163 at `k = 46`, where two full
/// sign circuits take 362), in the rounds of the carry tree (and of the OR tree where it is
/// deeper, for `k` below 32).
pub fn sum_reaches<P: Protocol>(
    p: &mut P,
    a: &P::Bits,
    b: &P::Bits,
    n: usize,
    k: usize,
) -> Result<(P::Bits, P::Bits)> {
    if !(1..=62).contains(&k) {
        return Err(crate::MpcError::Usage(format!("sum_reaches: 2^{k}")));
    }
    let [bit, above, _] =
        sum_reaches_many(p, &[WindowTest { a, b, n, k, below: false }])?.pop().expect("one test");
    Ok((bit, above))
}

/// One test of [`sum_reaches_many`]: `[a + b >= 2^k]` for `n` elements, `k` in 1 to 63 (63: a
/// sign test, nothing above), and, if `below`, the OR of the sum's bits below bit `k`.
pub struct WindowTest<'a, B> {
    /// The first operand, one word per element, XOR-shared.
    pub a: &'a B,
    /// The second operand.
    pub b: &'a B,
    /// Elements.
    pub n: usize,
    /// The power of two.
    pub k: usize,
    /// Whether to give the OR of the bits below bit `k` too.
    pub below: bool,
}

/// Several [`sum_reaches`] tests in lockstep (one AND layer for all, the rounds of the
/// deepest): for each, bit `k` of the sum, the OR of its bits above, and the OR of its bits
/// below where asked (zero otherwise): whether the sum is nonzero below bit `k`, another OR
/// tree riding along, `k - 1` AND gates per element (the range check's windows that leave out
/// their bottom value: zero below and above).
pub fn sum_reaches_many<P: Protocol>(
    p: &mut P,
    tests: &[WindowTest<'_, P::Bits>],
) -> Result<Vec<[P::Bits; 3]>> {
    let mut trees = Vec::with_capacity(tests.len());
    for t in tests {
        if !(1..=63).contains(&t.k) {
            return Err(crate::MpcError::Usage(format!("sum_reaches: 2^{}", t.k)));
        }
        let extras = Extras { carry_at: None, high: true, low: t.below, ..Extras::default() };
        trees.push(tree::CarryTree::new(p, t.a, t.b, t.n, t.k + 1, extras)?);
    }
    let outs = tree::run_lockstep(p, trees)?;
    Ok(outs
        .into_iter()
        .map(|out| {
            let high = out.high.expect("requested");
            let low = match out.low {
                Some(low) => low,
                None => p.bits_linear(&high, &|w| vec![0; w.len()]),
            };
            [out.top, high, low]
        })
        .collect())
}

/// AND gates per element of [`sum_reaches`]`(k)`.
pub fn sum_reaches_ands(k: usize) -> usize {
    msb_within_ands(k + 1) + 2 * (63 - k) - 1
}

/// Bit `k` of `x[i] ^ y[i]` for the `n` words, packed (element `i` is bit `i % 64` of word
/// `i / 64`): the plane `k` that [`to_low_planes`] would give of the XOR, without the others.
fn xor_bit_plane(x: &[u64], y: &[u64], n: usize, k: usize) -> Vec<u64> {
    x[..n]
        .chunks(64)
        .zip(y[..n].chunks(64))
        .map(|(xs, ys)| {
            xs.iter().zip(ys).enumerate().fold(0u64, |w, (i, (a, b))| w | (((a ^ b) >> k) & 1) << i)
        })
        .collect()
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
    relu_within(p, x, 64, "relu")
}

/// [`relu`] for inputs known to satisfy `|x| < 2^(bits - 1)`, on [`msb_within`]'s `bits`-wide
/// sign circuit (at 48 bits 133 AND gates per element instead of 181), with its contract: the
/// caller declares the bound, which the range audit checks on every element and the secure
/// range check's plan enforces; outside it the result is meaningless. `bits` = 64 is [`relu`].
pub fn relu_within<P: Protocol>(p: &mut P, x: &P::Share, bits: u32, what: &str) -> Result<P::Share> {
    let m = msb_within(p, x, bits, what)?;
    let x_neg = p.mul_bits(x, &m)?;
    p.sub(x, &x_neg)
}

#[cfg(test)]
mod tests;
mod tree;

use tree::Extras;
