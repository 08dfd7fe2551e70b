//! Comparisons and selection. All comparisons cost one sign-bit circuit (8 rounds in 2PC, 10 in
//! 3PC) however many elements, and return integer 0/1 shares. Requires `|x - y| < 2^63` in the
//! ring, which holds for all encoded fixed-point values.

use crate::maps::{AxisToLast, LastToAxis, PositionSum, SelectAlong, Widen};
use crate::tensor_ops::{concat_shares, filled, mul_many, split_share};
use musket_core::maps::{self, Then};
use musket_core::{msb, msb_within, Protocol, Result, Share};
use musket_ring::{FixedPoint, RingTensor};

fn one_minus<P: Protocol>(p: &P, b: &P::Share) -> Result<P::Share> {
    let neg = p.neg(b)?;
    p.add_public(&neg, &filled(b.shape(), 1))
}

/// `[x < y]`.
pub fn lt<P: Protocol>(p: &mut P, x: &P::Share, y: &P::Share) -> Result<P::Share> {
    musket_core::lt(p, x, y)
}

/// `[x > y]`.
pub fn gt<P: Protocol>(p: &mut P, x: &P::Share, y: &P::Share) -> Result<P::Share> {
    lt(p, y, x)
}

/// `[x >= y]`.
pub fn ge<P: Protocol>(p: &mut P, x: &P::Share, y: &P::Share) -> Result<P::Share> {
    let l = lt(p, x, y)?;
    one_minus(p, &l)
}

/// `[x <= y]`.
pub fn le<P: Protocol>(p: &mut P, x: &P::Share, y: &P::Share) -> Result<P::Share> {
    let g = lt(p, y, x)?;
    one_minus(p, &g)
}

/// Sign bits of several tensors from one circuit: `[t < 0]` for each, as integer shares.
fn negative_many<P: Protocol>(p: &mut P, ts: &[&P::Share]) -> Result<Vec<P::Share>> {
    let all = concat_shares(p, ts)?;
    let bits = msb(p, &all)?;
    let arith = p.b2a_packed(&bits, &[all.len()])?;
    let shapes: Vec<Vec<usize>> = ts.iter().map(|t| t.shape().to_vec()).collect();
    split_share(p, &arith, &shapes)
}

/// `[x == y]`: both `x < y` and `y < x` from one circuit.
pub fn eq<P: Protocol>(p: &mut P, x: &P::Share, y: &P::Share) -> Result<P::Share> {
    let (d1, d2) = (p.sub(x, y)?, p.sub(y, x)?);
    let n = negative_many(p, &[&d1, &d2])?;
    let either = p.add(&n[0], &n[1])?;
    one_minus(p, &either)
}

/// `+1` where `x >= 0`, `-1` where `x < 0` (integer shares; sign(0) = +1).
pub fn sign<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Share> {
    let m = negative_many(p, &[x])?.remove(0);
    let twice = p.scale(&m, 2)?;
    let neg = p.neg(&twice)?;
    p.add_public(&neg, &filled(x.shape(), 1))
}

/// `|x|`, exact.
pub fn abs<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Share> {
    let m = msb(p, x)?;
    let xm = p.mul_bits(x, &m)?;
    let twice = p.scale(&xm, 2)?;
    p.sub(x, &twice)
}

/// `max(x, 0)`, exact, for any ring value (a 64-bit sign circuit).
pub fn relu<P: Protocol>(p: &mut P, x: &P::Share) -> Result<P::Share> {
    musket_core::relu(p, x)
}

/// The largest magnitude (exclusive, in real units at `frac_bits` fractional bits) that
/// [`relu_bounded`] accepts: `2^(63 - 2f)`, twice the line past which a value is taken for a
/// wrapped product (no real activation comes near it: a product with any value of at least 1
/// would overflow first), so that a sum of two values below that line, as a residual block's
/// Add gives, fits too.
pub fn relu_input_bound(frac_bits: u32) -> f64 {
    2f64.powi(63 - 2 * frac_bits as i32)
}

/// [`relu`] for `|x| <` [`relu_input_bound`], on a sign circuit `64 - f` bits wide (48 at 16
/// fractional bits: 133 AND gates per element instead of 181, the same rounds), exact there.
/// The graph's ReLU: its operand bound (`Op::operand_bounds`) makes the range audit check the
/// domain on every element and the secure range check's plan enforce it; outside it the
/// result is meaningless, so a run with both checks switched off must keep its activations
/// in range (as for GELU).
pub fn relu_bounded<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    musket_core::relu_within(p, x, 64 - fp.frac_bits(), "relu")
}

/// `a` where the integer bit `c` is 1, else `b`: `b + c (a - b)`, exact.
pub fn select<P: Protocol>(p: &mut P, c: &P::Share, a: &P::Share, b: &P::Share) -> Result<P::Share> {
    let diff = p.sub(a, b)?;
    let picked = p.mul(c, &diff)?;
    p.add(b, &picked)
}

/// Elementwise maximum, exact.
pub fn maximum<P: Protocol>(p: &mut P, a: &P::Share, b: &P::Share) -> Result<P::Share> {
    let c = lt(p, a, b)?;
    select(p, &c, b, a)
}

/// Elementwise minimum, exact.
pub fn minimum<P: Protocol>(p: &mut P, a: &P::Share, b: &P::Share) -> Result<P::Share> {
    let c = lt(p, a, b)?;
    select(p, &c, a, b)
}

/// `min(max(x, lo), hi)` for public `lo <= hi`, exact: one circuit for both comparisons and one
/// `mul_bits` for both corrections.
pub fn clip<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, lo: f64, hi: f64) -> Result<P::Share> {
    clip_with(p, fp, x, lo, hi, false)
}

/// [`clip`] for `|x| <` [`relu_input_bound`] (`2^(63-f)` in the ring), exact there: the
/// differences `x - lo` and `hi - x` lie within `2^(63-f) + max(|lo|, |hi|)`, so the
/// comparisons take a sign circuit just wide enough for that (`65 - f` bits for ReLU6's 0
/// and 6: 136 AND gates per comparison instead of 181), 64 bits for bounds beyond `2^(63-f)`.
/// The graph's Clip: its operand bound (`Op::operand_bounds`) makes the secure range check
/// enforce the domain, and the range audit checks the differences; outside, the result is
/// meaningless.
pub fn clip_bounded<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    lo: f64,
    hi: f64,
) -> Result<P::Share> {
    clip_with(p, fp, x, lo, hi, true)
}

fn clip_with<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    lo: f64,
    hi: f64,
    bounded: bool,
) -> Result<P::Share> {
    let enc = |v: f64| {
        fp.encode_one(v).ok_or_else(|| musket_core::MpcError::Usage("clip bound out of range".into()))
    };
    let (lo, hi) = (enc(lo)?, enc(hi)?);
    if (lo as i64) > (hi as i64) {
        return Err(musket_core::MpcError::Usage("clip needs lo <= hi".into()));
    }
    let shape = x.shape().to_vec();
    let below = p.add_public(x, &filled(&shape, lo.wrapping_neg()))?; // x - lo
    let neg_x = p.neg(x)?;
    let above = p.add_public(&neg_x, &filled(&shape, hi))?; // hi - x
    let narrow = (bounded && fp.frac_bits() > 0).then(|| {
        // |x - lo|, |hi - x| < 2^(63-f) + max(|lo|, |hi|) <= 2^(width-1), below 2^64: no
        // overflow. (At f = 0 the bound is every value: the 64-bit circuit.)
        let f = fp.frac_bits();
        let reach = (1u64 << (63 - f)) + (lo as i64).unsigned_abs().max((hi as i64).unsigned_abs());
        let width = 65 - (reach - 1).leading_zeros();
        (width.min(64), "clip")
    });
    // [x < lo], [x > hi]; then x + [x < lo](lo - x) + [x > hi](hi - x): at most one correction
    // applies since lo <= hi. The products take the sign bits as they are (`mul_bits`: in 3PC
    // two rounds, where converting them and then multiplying took three, for the same words).
    let all = concat_shares(p, &[&below, &above])?;
    let bits = match narrow {
        Some((width, what)) => msb_within(p, &all, width, what)?,
        None => msb(p, &all)?,
    };
    let lo_minus_x = p.neg(&below)?;
    let corrections = concat_shares(p, &[&lo_minus_x, &above])?;
    let prods = p.mul_bits(&corrections, &bits)?;
    let prods = split_share(p, &prods, &[shape.clone(), shape])?;
    let y = p.add(x, &prods[0])?;
    p.add(&y, &prods[1])
}

/// `min(max(x, 0), 6)`, exact.
pub fn relu6<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    clip(p, fp, x, 0.0, 6.0)
}

/// `x` where `x >= 0`, `alpha x` elsewhere; within one ulp (one truncation).
pub fn leaky_relu<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, alpha: f64) -> Result<P::Share> {
    leaky_relu_with(p, fp, x, alpha, false)
}

/// [`leaky_relu`] on [`relu_bounded`]'s narrow circuit, for `|x| <` [`relu_input_bound`]: the
/// graph's LeakyRelu, whose own operand bound (`|alpha x| < 2^(61-2f)`, for its products) is
/// tighter still. Same error; outside the bound the result is meaningless.
pub fn leaky_relu_bounded<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    alpha: f64,
) -> Result<P::Share> {
    leaky_relu_with(p, fp, x, alpha, true)
}

fn leaky_relu_with<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    alpha: f64,
    bounded: bool,
) -> Result<P::Share> {
    let enc =
        |v: f64| fp.encode_one(v).ok_or_else(|| musket_core::MpcError::Usage("alpha out of range".into()));
    let r = if bounded { relu_bounded(p, fp, x)? } else { relu(p, x)? };
    // alpha x + (1 - alpha) relu(x), both at scale 2f, truncated once.
    let a = p.scale(x, enc(alpha)?)?;
    let b = p.scale(&r, enc(1.0 - alpha)?)?;
    let sum = p.add(&a, &b)?;
    p.truncate(&sum, fp.frac_bits())
}

/// Tournament over the last axis of `t` (shape `[rows, n]`), keeping per candidate its value
/// and, if `track`, a one-hot vector over the original `n` positions (shape `[rows, n, n]`).
/// Adjacent candidates are paired, so ranges stay contiguous and ties go to the lower index.
fn tournament<P: Protocol>(
    p: &mut P,
    mut vals: P::Share,
    mut onehot: Option<P::Share>,
    narrow: Option<(u32, &str)>,
) -> Result<(P::Share, Option<P::Share>)> {
    let rank = vals.shape().len();
    loop {
        let n = vals.shape()[rank - 1];
        if n <= 1 {
            return Ok((vals, onehot));
        }
        let pairs = n / 2;
        let evens: Vec<usize> = (0..pairs).map(|j| 2 * j).collect();
        let odds: Vec<usize> = (0..pairs).map(|j| 2 * j + 1).collect();
        let a = p.linear(&vals, &SelectAlong { axis: rank - 1, picks: &evens })?;
        let b = p.linear(&vals, &SelectAlong { axis: rank - 1, picks: &odds })?;
        // Pick b where a < b, else a (ties: lower index).
        let dv = p.sub(&b, &a)?;
        let (new_vals, new_onehot) = match &onehot {
            None => {
                let a_minus_b = p.neg(&dv)?;
                let c = match narrow {
                    Some((width, what)) => msb_within(p, &a_minus_b, width, what)?,
                    None => msb(p, &a_minus_b)?,
                };
                let pick = p.mul_bits(&dv, &c)?;
                (p.add(&a, &pick)?, None)
            }
            Some(oh) => {
                let c = lt(p, &a, &b)?;
                // One-hot rows are laid out as [rows, n, width]: gather candidate rows.
                let oa = p.linear(oh, &SelectAlong { axis: rank - 1, picks: &evens })?;
                let ob = p.linear(oh, &SelectAlong { axis: rank - 1, picks: &odds })?;
                let doh = p.sub(&ob, &oa)?;
                let oh_shape = doh.shape().to_vec();
                let c_keep = [c.shape(), &[1]].concat();
                let c_wide = p.linear(&c, &Widen { keep: &c_keep, shape: &oh_shape })?;
                let prods = mul_many(p, &[(&c, &dv), (&c_wide, &doh)])?;
                (p.add(&a, &prods[0])?, Some(p.add(&oa, &prods[1])?))
            }
        };
        if n % 2 == 1 {
            let last = [n - 1];
            let tail = p.linear(&vals, &SelectAlong { axis: rank - 1, picks: &last })?;
            vals = p.linear2(&new_vals, &tail, &maps::ConcatAxis(rank - 1))?;
            if let (Some(oh), Some(new_oh)) = (&onehot, &new_onehot) {
                // Along the candidate axis (second to last of the one-hot rows).
                let tail_oh = p.linear(oh, &SelectAlong { axis: rank - 1, picks: &last })?;
                onehot = Some(p.linear2(new_oh, &tail_oh, &maps::ConcatAxis(rank - 1))?);
            } else {
                onehot = new_onehot;
            }
        } else {
            vals = new_vals;
            onehot = new_onehot;
        }
    }
}

/// Maximum along `axis` (removed from the shape), exact: a comparison tree of
/// `ceil(log2(n))` levels, each one comparison circuit and one round of products.
pub fn max_along<P: Protocol>(p: &mut P, x: &P::Share, axis: usize) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let moved = p.linear(x, &AxisToLast(axis))?;
    let (best, _) = tournament(p, moved, None, None)?;
    let mut out_shape = shape.clone();
    out_shape.remove(axis);
    p.reshape(&best, &out_shape)
}

/// [`max_along`] for inputs whose pairwise differences are known to lie within `2^(width-1)`
/// in the ring (the caller's domain, which it declares as an operand bound): narrow sign
/// circuits ([`msb_within`], which names `what` to the range audit).
pub(crate) fn max_along_within<P: Protocol>(
    p: &mut P,
    x: &P::Share,
    axis: usize,
    width: u32,
    what: &str,
) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let moved = p.linear(x, &AxisToLast(axis))?;
    let (best, _) = tournament(p, moved, None, Some((width, what)))?;
    let mut out_shape = shape.clone();
    out_shape.remove(axis);
    p.reshape(&best, &out_shape)
}

/// One-hot integer shares of the position of the maximum along `axis` (same shape as `x`);
/// ties go to the lowest index. The index itself is `sum_i i * onehot_i`, a local operation.
pub fn argmax_onehot<P: Protocol>(p: &mut P, x: &P::Share, axis: usize) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let moved = p.linear(x, &AxisToLast(axis))?;
    let (_, flat) = max_with_onehot_last(p, &moved)?;
    p.linear(&flat, &LastToAxis { axis, shape: &shape })
}

/// The maximum over the last axis (removed from the shape) and the one-hot integer shares of
/// its position (same shape as `x`; ties go to the lowest index), from one comparison tree:
/// max-pooling's forward pass together with what its backward pass needs.
pub fn max_with_onehot_last<P: Protocol>(p: &mut P, x: &P::Share) -> Result<(P::Share, P::Share)> {
    let moved_shape = x.shape().to_vec();
    let n = *moved_shape.last().ok_or_else(|| musket_core::MpcError::Usage("max of a scalar".into()))?;
    let mut oh_shape = moved_shape.clone();
    oh_shape.push(n);
    let rows: usize = moved_shape[..moved_shape.len() - 1].iter().product();
    // The identity one-hot, as a public constant added to a zero share.
    let mut eye = vec![0u64; rows * n * n];
    for r in 0..rows {
        for i in 0..n {
            eye[(r * n + i) * n + i] = 1;
        }
    }
    let keep = [&moved_shape[..], &[1]].concat();
    let zero = p.linear(x, &Then(maps::Scale(0), Widen { keep: &keep, shape: &oh_shape }))?;
    let oh = p.add_public(&zero, &RingTensor::new(oh_shape.clone(), eye)?)?;
    let (best, onehot) = tournament(p, x.clone(), Some(oh), None)?;
    let onehot = p.reshape(&onehot.expect("tracked"), &moved_shape)?;
    let best = p.reshape(&best, &moved_shape[..moved_shape.len() - 1])?;
    Ok((best, onehot))
}

/// Minimum along `axis` (removed from the shape), exact: `-max(-x)`.
pub fn min_along<P: Protocol>(p: &mut P, x: &P::Share, axis: usize) -> Result<P::Share> {
    let neg = p.neg(x)?;
    let m = max_along(p, &neg, axis)?;
    p.neg(&m)
}

/// The index of the maximum along `axis` (removed from the shape) as an integer share; ties go
/// to the lowest index. `sum_i i * onehot_i`, local after [`argmax_onehot`].
pub fn argmax_index<P: Protocol>(p: &mut P, x: &P::Share, axis: usize) -> Result<P::Share> {
    let onehot = argmax_onehot(p, x, axis)?;
    let shape = x.shape().to_vec();
    let mut out_shape = shape;
    out_shape.remove(axis);
    p.linear(&onehot, &Then(AxisToLast(axis), Then(PositionSum, maps::Reshape(&out_shape))))
}
