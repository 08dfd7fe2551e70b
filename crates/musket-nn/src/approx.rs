//! Fixed-point approximations of exp and the functions built on it: sigmoid, tanh, softmax,
//! log-softmax, erf and GELU.
//!
//! Error target (checked by tests against f64 on both back ends over each domain):
//! `|secure - exact| <= max(1e-3 * |exact|, 2^-12)` at 16 fractional bits. The stated domains
//! hold for 14 to 18 fractional bits. Outside its domain every function returns a documented
//! saturated value, never an arbitrary one, and flags the elements where that value is not
//! within the error target ([`Protocol::note_out_of_range`]).

use crate::chebyshev::chebyshev_series;
use crate::cmp::{max_along, max_along_within};
use crate::maps::{AxisToLast, LastToAxis, Widen};
use crate::normalize::{log_between, reciprocal_in_range, reciprocal_positive};
use crate::tensor_ops::{concat_shares, filled, mul_many, split_share};
use musket_core::maps;
use musket_core::{msb, msb_within, MpcError, Protocol, Result, Share};
use musket_ring::FixedPoint;

/// Inputs for which [`exp`] meets the error target. Below -16 the exact value is under 2^-23
/// and the result is within 2^-12 of 0; below -64 the input is clamped to -64 (the result is
/// still within 2^-12 of 0, so those elements are not flagged); above 16 it is clamped to 16
/// (the result is `e^16`, and the elements are flagged).
pub const EXP_DOMAIN: (f64, f64) = (-64.0, 16.0);

/// Extra fractional bits used inside exp and the normalised functions: the input read at scale
/// `f + 4` is `x / 16`.
pub(crate) const EXTRA_BITS: u32 = 4;

pub(crate) fn encode(fp: FixedPoint, v: f64) -> Result<u64> {
    fp.encode_one(v).ok_or_else(|| {
        MpcError::Usage(format!("constant {v} does not fit {} fractional bits", fp.frac_bits()))
    })
}

/// Products of several pairs at scale `bits`, truncated back to scale `bits` (minus `extra`),
/// in one multiplication and one truncation.
pub(crate) fn mul_trunc_many<P: Protocol>(
    p: &mut P,
    pairs: &[(&P::Share, &P::Share)],
    shift: u32,
) -> Result<Vec<P::Share>> {
    let lefts: Vec<&P::Share> = pairs.iter().map(|(a, _)| *a).collect();
    let rights: Vec<&P::Share> = pairs.iter().map(|(_, b)| *b).collect();
    let (a, b) = (concat_shares(p, &lefts)?, concat_shares(p, &rights)?);
    let t = p.mul_truncate(&a, &b, shift)?;
    let shapes: Vec<Vec<usize>> = pairs.iter().map(|(a, _)| a.shape().to_vec()).collect();
    split_share(p, &t, &shapes)
}

pub(crate) fn mul_trunc<P: Protocol>(p: &mut P, a: &P::Share, b: &P::Share, shift: u32) -> Result<P::Share> {
    p.mul_truncate(a, b, shift)
}

/// `e^x` for any encodable x: clamped to [`EXP_DOMAIN`] first (one comparison circuit for both
/// bounds, one round of products), then the method of the in-range case below. Error:
/// `max(1e-3 e^x, 2^-12)` for x <= 16; above, `e^16` and the element is flagged.
pub fn exp<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let (lo, hi) = EXP_DOMAIN;
    let (clamped, above) = clamp(p, fp, x, lo, hi)?;
    p.note_out_of_range(&above, "exp")?;
    exp_in_range(p, fp, &clamped)
}

/// `max(x, lo)`: one sign circuit and one product with the bit; the circuit is
/// `narrow.0` bits wide when `x - lo` is known to lie within `2^(narrow.0 - 1)` in the ring
/// (`narrow.1` names the caller to the range audit).
fn clamp_below<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    lo: f64,
    narrow: Option<(u32, &str)>,
) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let d = p.add_public(x, &filled(&shape, encode(fp, lo)?.wrapping_neg()))?; // x - lo
    let bits = match narrow {
        Some((width, what)) => msb_within(p, &d, width, what)?, // [x < lo]
        None => msb(p, &d)?,
    };
    let gap = p.neg(&d)?;
    let fix = p.mul_bits(&gap, &bits)?;
    p.add(x, &fix)
}

/// `x` clamped to `[lo, hi]`, and the integer flags `[x > hi]`: one sign circuit for both
/// comparisons, one round of products.
fn clamp<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    lo: f64,
    hi: f64,
) -> Result<(P::Share, P::Share)> {
    let shape = x.shape().to_vec();
    let below = p.add_public(x, &filled(&shape, encode(fp, lo)?.wrapping_neg()))?; // x - lo
    let neg_x = p.neg(x)?;
    let above = p.add_public(&neg_x, &filled(&shape, encode(fp, hi)?))?; // hi - x
    let all = concat_shares(p, &[&below, &above])?;
    let bits = msb(p, &all)?;
    let flags = p.b2a_packed(&bits, &[all.len()])?;
    let f = split_share(p, &flags, &[shape.clone(), shape.clone()])?; // [x < lo], [x > hi]
    let lo_gap = p.neg(&below)?;
    let fixes = mul_many(p, &[(&f[0], &lo_gap), (&f[1], &above)])?;
    let y = p.add(x, &fixes[0])?;
    Ok((p.add(&y, &fixes[1])?, f[1].clone()))
}

/// `e^x` for x in [-64, 16] (not checked: callers clamp or know their range).
///
/// Method: `e^x = (e^(x/16))^16`. Reading x's encoding at 4 more fractional bits gives
/// `y = x/16` in [-4, 1] exactly (no truncation); `e^y` is a degree-8 Taylor polynomial
/// (relative error < 7e-6 on [-1, 1]) evaluated at `f + 4` bits with its powers in three
/// rounds of products, then four squarings, the first two still at `f + 4` bits. CrypTen
/// uses `(1 + x/256)^256` (8 squarings, max error 1.87 on [-4, 4]); this costs 3 more product
/// rounds and is accurate to the error target on the whole domain.
fn exp_in_range<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits();
    let wf = f + EXTRA_BITS; // working precision
    let wp = FixedPoint::new(wf);
    let y = x.clone(); // x / 16 at scale wf
    let y2 = mul_trunc(p, &y, &y, wf)?;
    let v = mul_trunc_many(p, &[(&y2, &y), (&y2, &y2)], wf)?;
    let (y3, y4) = (&v[0], &v[1]);
    let w = mul_trunc_many(p, &[(y4, &y), (y4, &y2), (y4, y3), (y4, y4)], wf)?;
    let powers = [&y, &y2, y3, y4, &w[0], &w[1], &w[2], &w[3]];
    let mut acc: Option<P::Share> = None;
    let mut fact = 1.0;
    for (i, pw) in powers.iter().enumerate() {
        fact *= (i + 1) as f64;
        let term = p.scale(pw, encode(wp, 1.0 / fact)?)?;
        acc = Some(match acc {
            None => term,
            Some(a) => p.add(&a, &term)?,
        });
    }
    let acc = acc.expect("eight terms");
    let poly = p.truncate(&acc, wf)?;
    let mut r = p.add_public(&poly, &filled(x.shape(), encode(wp, 1.0)?))?; // e^(x/16) at wf
                                                                            // Squarings: e^(x/8), e^(x/4) at wf (values below e^4 = 55: products fit), then e^(x/2)
                                                                            // back to f bits, then e^x at f bits (values up to e^16 < 2^30).
    for _ in 0..2 {
        r = mul_trunc(p, &r, &r, wf)?;
    }
    r = mul_trunc(p, &r, &r, wf + EXTRA_BITS)?;
    mul_trunc(p, &r, &r, f)
}

/// `e^x` for x in `[-2^halvings, 0]` (not checked: callers know their range), for erf (`-a^2`
/// in [-25, 0]: 6 halvings; softmax uses [`exp_above_minus_16`]).
///
/// Method: `e^x = (e^(x/2^h))^(2^h)`. Reading x's encoding at `h` more fractional bits gives
/// `y = x/2^h` in [-1, 0] exactly; `e^y` is a degree-4 Taylor polynomial (its cubic and quartic
/// terms left at twice the working precision and summed with coefficients at 10 bits, so one
/// truncation for the sum), then `h` squarings. Every value stays in (0, 1], so all squarings
/// run at `f + h` bits without overflow. The polynomial's relative error `|y|^5/120` grows
/// `2^h` times in the squarings, but `|y|` is small where `e^x` is not: the absolute error,
/// `e^x |x|^5 / (120 2^(4h))`, is below 3e-6 at `h = 4` (its peak, at x = -5) and below 1e-7
/// at `h = 6`, plus the rounding of the squarings (a few units of `2^-(f+h)`, doubled at most
/// once a squaring). `h` is 4 to 6.
fn exp_nonpositive<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, halvings: u32) -> Result<P::Share> {
    const COEF: u32 = 10;
    if !(4..=6).contains(&halvings) {
        return Err(MpcError::Usage(format!("exp_nonpositive: {halvings} halvings")));
    }
    let f = fp.frac_bits();
    let wf = f + halvings;
    let y = x.clone(); // x / 2^h at scale wf
    let y2 = mul_trunc(p, &y, &y, wf)?;
    // 1 + y + y^2/2 + y^3/6 + y^4/24 at 2wf + COEF bits (each term below 2^(2wf + COEF) <= 2^58
    // for f <= 18); y^3 and y^4 enter as products of y^2, never formed on their own.
    let scale = 1u64 << (wf + COEF);
    let mut linear = p.scale(&y, scale)?;
    linear = p.add(&linear, &p.scale(&y2, scale >> 1)?)?;
    let linear = p.add_public(&linear, &filled(x.shape(), 1u64 << (2 * wf + COEF)))?;
    let coef = |d: f64| ((1u64 << COEF) as f64 / d).round() as u64;
    let (cubic, quartic) = (p.scale(&y2, coef(6.0))?, p.scale(&y2, coef(24.0))?);
    let mut r = p.dot_truncate(&[(&cubic, &y), (&quartic, &y2)], Some(&linear), wf + COEF)?; // e^(x/2^h) at wf
    for _ in 1..halvings {
        r = mul_trunc(p, &r, &r, wf)?;
    }
    mul_trunc(p, &r, &r, wf + halvings)
}

/// Chebyshev coefficients (T_0..T_10 on `v = w / 4 + 1`) of `e^w` on [-8, 0], fitted by least
/// squares (`scripts/fit_series.py`): error below 9.2e-6.
const EXP_HALF_SERIES: [f64; 11] = [
    0.2070018538360261,
    0.35750081080224005,
    0.23525286641458026,
    0.12224778029362508,
    0.05187984662459929,
    0.018487738658573023,
    0.005658089459775721,
    0.0015128820838069233,
    0.00035917517880341,
    7.519308928477331e-05,
    1.4568762553439325e-05,
];

/// `e^z` for z in [-16, 0] (not checked: softmax clamps first), at `f` bits: `e^(z/2)` as a
/// degree-10 Chebyshev series in `v = z/8 + 1` (z's encoding read at `f + 3` bits, plus one: no
/// truncation), evaluated at `f + 2` bits, then one squaring. Error below 4e-5: the series'
/// 9.2e-6 and its rounding (a few units of 2^-(f+2)), doubled by the squaring. Five truncated
/// products in five rounds of products (the series' four and the squaring), where four halvings
/// of a Taylor polynomial took six.
fn exp_above_minus_16<P: Protocol>(p: &mut P, fp: FixedPoint, z: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits();
    let v = p.add_public(z, &filled(z.shape(), 1u64 << (f + 3)))?;
    let half = chebyshev_series(p, FixedPoint::new(f + 2), &v, f + 3, &EXP_HALF_SERIES)?;
    mul_trunc(p, &half, &half, f + 4)
}

/// Where [`sigmoid`] stops approximating: beyond it, `1/(1 + e^|x|)` is below 4.6e-5.
const SIGMOID_EDGE: f64 = 10.0;
/// Chebyshev coefficients (T_0..T_12 on `v = |x| / 5 - 1`) of `t(u) = 1/(1 + e^u)` on
/// [0, 10], fitted by least squares: error below 2.2e-5 inside, 6.8e-5 at the edge (numpy's
/// chebfit on 20001 points).
const SIGMOID_TAIL: [f64; 13] = [
    0.11192693375604855,
    -0.19349383020765398,
    0.12472119751295355,
    -0.05830512784749118,
    0.017154107731581422,
    -0.0002783286021477031,
    -0.0031446457589559807,
    0.002102476358524673,
    -0.0007500356964454611,
    8.154752909490016e-05,
    9.37722431615622e-05,
    -7.242283784061002e-05,
    3.168539434463534e-05,
];

/// The logistic function `1/(1 + e^-x)` for any encodable x, absolute error below 2^-13:
/// `t(|x|) = 1/(1 + e^|x|)` as a degree-12 Chebyshev series on `min(|x|, 10)` (beyond 10 the
/// series' value at the edge, within 6.8e-5 of the exact one), reflected for the sign:
/// `sigmoid(x) = 1 - t` for `x >= 0`, `t` below. One comparison circuit gives the sign and
/// both clip bits; `|clip(x)|` is one round of products with them; no exp and no reciprocal
/// (about half the rounds of `1/(1 + e^-x)` with a Newton reciprocal).
pub fn sigmoid<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let f = fp.frac_bits();
    let edge = encode(fp, SIGMOID_EDGE)?;
    let above_lo = p.add_public(x, &filled(&shape, edge))?; // x + L
    let neg_x = p.neg(x)?;
    let below_hi = p.add_public(&neg_x, &filled(&shape, edge))?; // L - x
    let all = concat_shares(p, &[&above_lo, &below_hi, x])?;
    let bits = msb(p, &all)?;
    let n = x.len();
    let m = p.b2a_packed(&bits, &[3 * n])?;
    let m = split_share(p, &m, &[shape.clone(), shape.clone(), shape.clone()])?; // [x<-L], [x>L], [x<0]
                                                                                 // |clip(x, -L, L)| = x - 2 [x<0] x + [x<-L](L + x) + [x>L](L - x) (x < -L implies x < 0).
    let prods = mul_many(p, &[(&m[2], x), (&m[0], &above_lo), (&m[1], &below_hi)])?;
    let twice = p.scale(&prods[0], 2)?;
    let a = p.sub(x, &twice)?;
    let a = p.add(&p.add(&a, &prods[1])?, &prods[2])?;
    // v = a / (L / 2) - 1 in [-1, 1].
    let v = p.scale(&a, encode(fp, 2.0 / SIGMOID_EDGE)?)?;
    let v = p.truncate(&v, f)?;
    let v = p.add_public(&v, &filled(&shape, encode(fp, -1.0)?))?;
    let t = chebyshev_series(p, fp, &v, f, &SIGMOID_TAIL)?;
    // (1 - t) + [x<0] (2t - 1).
    let two_t = p.scale(&t, 2)?;
    let two_t_minus_one = p.add_public(&two_t, &filled(&shape, encode(fp, -1.0)?))?;
    let flip = p.mul(&m[2], &two_t_minus_one)?;
    let neg_t = p.neg(&t)?;
    let one_minus_t = p.add_public(&neg_t, &filled(&shape, encode(fp, 1.0)?))?;
    p.add(&one_minus_t, &flip)
}

/// `tanh(x) = 2 sigmoid(2x) - 1` for any encodable x (below 2^(61-f)); absolute error below
/// 2^-12.
pub fn tanh<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let x2 = p.scale(x, 2)?;
    let s = sigmoid(p, fp, &x2)?;
    let s2 = p.scale(&s, 2)?;
    p.add_public(&s2, &filled(x.shape(), encode(fp, 1.0)?.wrapping_neg()))
}

/// Softmax along `axis`: subtract the maximum (exact, comparison tree), clamp at -16 (below,
/// `e^z < 1.2e-7`, and the sum is at least 1), exp ([`exp_above_minus_16`]), divide by the sum
/// (in [1, n], normalised over that range only). Domain:
/// any encodable input and any number of entries with `f + log2(n) < 60`. Absolute error
/// below 2^-12 per output.
pub fn softmax<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, axis: usize) -> Result<P::Share> {
    softmax_with(p, fp, x, axis, false)
}

/// Width of the bounded softmax's sign circuits ([`softmax_bounded`]).
const SOFTMAX_SIGN_BITS: u32 = 42;

/// The largest magnitude (exclusive, in real units at `frac_bits` fractional bits) that
/// [`softmax_bounded`] and [`log_softmax_bounded`] accept: `2^(40 - f)` (16.7 million at 16
/// fractional bits, 4.2 million at 18), so that the difference of two entries, and an entry
/// minus the row maximum plus 16, lie within `2^(41 - f)`: the range of 42-bit sign circuits.
/// Additive attention masks, imported as -2^20, fit at every supported scale.
pub fn softmax_input_bound(frac_bits: u32) -> f64 {
    2f64.powi(40 - frac_bits as i32)
}

/// [`softmax`] for inputs below [`softmax_input_bound`] in magnitude, with its row maximum's
/// tournament and its clamp on 42-bit sign circuits (115 AND gates each, against 181): what the
/// graph executor runs, where the secure range check enforces the bound (Softmax's operand
/// bound) and the range audit checks it. Outside the bound the result is meaningless. Same
/// error bound.
pub fn softmax_bounded<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    axis: usize,
) -> Result<P::Share> {
    softmax_with(p, fp, x, axis, true)
}

fn softmax_with<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    axis: usize,
    narrow: bool,
) -> Result<P::Share> {
    let s = shifted_exp(p, fp, x, axis, "softmax", narrow)?;
    let r = reciprocal_positive(p, fp, &s.sum, -1, s.sum_hi)?;
    let (keep, mshape) = (s.keep.clone(), s.moved_shape.clone());
    let wide = p.linear(&r, &Widen { keep: &keep, shape: &mshape })?;
    let out = mul_trunc(p, &s.exp, &wide, fp.frac_bits())?;
    p.linear(&out, &LastToAxis { axis, shape: &s.shape })
}

/// The common start of softmax and log-softmax along `axis`: `z = x - max` (axis moved last),
/// `e^z`, and the sums of `e^z`.
struct ShiftedExp<S> {
    shape: Vec<usize>,
    moved_shape: Vec<usize>,
    keep: Vec<usize>,
    z: S,
    exp: S,
    sum: S,
    /// A power of two above every possible sum (the sums lie in [1, n]).
    sum_hi: i32,
}

fn shifted_exp<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    axis: usize,
    what: &str,
    narrow: bool,
) -> Result<ShiftedExp<P::Share>> {
    let shape = x.shape().to_vec();
    if axis >= shape.len() {
        return Err(MpcError::Usage(format!("{what}: axis {axis} out of range for {shape:?}")));
    }
    let moved = p.linear(x, &AxisToLast(axis))?;
    let moved_shape = moved.shape().to_vec();
    let mut keep = moved_shape.clone();
    *keep.last_mut().expect("rank >= 1") = 1;
    if narrow {
        // The declared domain (what the secure range check enforces), checked by the audit on
        // the input itself: the circuits below only need the differences within twice it.
        p.assume_within(x, 1u64 << (SOFTMAX_SIGN_BITS - 2), what)?;
    }
    let m = if narrow {
        max_along_within(p, &moved, moved_shape.len() - 1, SOFTMAX_SIGN_BITS, what)?
    } else {
        max_along(p, &moved, moved_shape.len() - 1)?
    };
    let z = p.linear2(&moved, &m, &maps::SubMapped(Widen { keep: &keep, shape: &moved_shape }))?;
    // z <= 0; below -16, e^z is within 1.2e-7 of 0 (and of e^-16), and clamping keeps exp in
    // its range.
    let zc = clamp_below(p, fp, &z, -16.0, narrow.then_some((SOFTMAX_SIGN_BITS, what)))?;
    let exp = exp_above_minus_16(p, fp, &zc)?;
    let sum = p.sum_axis(&exp, moved_shape.len() - 1)?;
    let n = *moved_shape.last().expect("rank >= 1");
    let sum_hi = (usize::BITS - n.leading_zeros()) as i32 + 1;
    if fp.frac_bits() as i32 + sum_hi > 62 {
        return Err(MpcError::Usage(format!("{what}: {n} entries along the axis are too many")));
    }
    Ok(ShiftedExp { shape, moved_shape, keep, z, exp, sum, sum_hi })
}

/// The error function, for any x (|x| < 2^40): Abramowitz and Stegun 7.1.26,
/// `erf(a) = 1 - (a1 t + ... + a5 t^5) e^(-a^2)` with `t = 1/(1 + 0.3275911 a)`, `a = |x|`
/// clipped at 5 (where erf is 1 to 1e-11); method error 1.5e-7. The clip bounds and the sign
/// come from one comparison circuit. Absolute error below 2^-12.
pub fn erf<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    const P_AS: f64 = 0.3275911;
    const A: [f64; 5] = [0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429];
    let shape = x.shape().to_vec();
    let f = fp.frac_bits();
    let five = encode(fp, 5.0)?;
    let above_lo = p.add_public(x, &filled(&shape, five))?; // x + 5
    let neg_x = p.neg(x)?;
    let below_hi = p.add_public(&neg_x, &filled(&shape, five))?; // 5 - x
    let all = concat_shares(p, &[&above_lo, &below_hi, x])?;
    let bits = msb(p, &all)?;
    let n = x.len();
    let m = p.b2a_packed(&bits, &[3 * n])?;
    let m = split_share(p, &m, &[shape.clone(), shape.clone(), shape.clone()])?; // [x<-5], [x>5], [x<0]
                                                                                 // Clip: x + [x < -5](-5 - x) + [x > 5](5 - x).
    let lo_gap = p.neg(&above_lo)?;
    let fixes = mul_many(p, &[(&m[0], &lo_gap), (&m[1], &below_hi)])?;
    let clipped = p.add(x, &fixes[0])?;
    let clipped = p.add(&clipped, &fixes[1])?;
    let cm = p.mul(&clipped, &m[2])?;
    let twice = p.scale(&cm, 2)?;
    let a = p.sub(&clipped, &twice)?; // |clipped| in [0, 5]
    let pa = p.scale(&a, encode(fp, P_AS)?)?;
    let pa = p.truncate(&pa, f)?;
    let w = p.add_public(&pa, &filled(&shape, encode(fp, 1.0)?))?;
    let t = reciprocal_in_range(p, fp, &w, 1.0, 1.0 + 5.0 * P_AS, 3)?;
    let t2 = mul_trunc(p, &t, &t, f)?;
    let v = mul_trunc_many(p, &[(&t2, &t), (&t2, &t2)], f)?;
    let t5 = mul_trunc(p, &v[1], &t, f)?;
    let powers = [&t, &t2, &v[0], &v[1], &t5];
    let mut acc = p.scale(powers[0], encode(fp, A[0])?)?;
    for (k, pw) in powers.iter().enumerate().skip(1) {
        let term = p.scale(pw, encode(fp, A[k])?)?;
        acc = p.add(&acc, &term)?;
    }
    let poly = p.truncate(&acc, f)?;
    let a2 = mul_trunc(p, &a, &a, f)?;
    let neg_a2 = p.neg(&a2)?;
    let e = exp_nonpositive(p, fp, &neg_a2, 6)?; // -a^2 in [-25, 0]
    let q = mul_trunc(p, &poly, &e, f)?;
    let neg_q = p.neg(&q)?;
    let r = p.add_public(&neg_q, &filled(&shape, encode(fp, 1.0)?))?; // erf(|x|)
    let rm = p.mul(&r, &m[2])?;
    let twice = p.scale(&rm, 2)?;
    p.sub(&r, &twice)
}

/// Where [`gelu`] stops approximating: beyond it, `x Phi(-|x|)` is below 1.27e-4. A power of
/// two, so that `v = |x| / 2 - 1` needs no truncation (it is `|x|` read at one more bit).
const GELU_EDGE: f64 = 4.0;
/// Chebyshev coefficients (T_0..T_10 on `v = |x| / 2 - 1`) of `h(a) = a Phi(-a)` on [0, 4]
/// (`scripts/fit_series.py`: close to minimax, with the value at 4 pinned to `h(4)/2`, so that
/// the error beyond 4, where the clip holds the series at its edge value, is at most `h(4)/2`):
/// method error below 6.6e-5 on the whole line.
const GELU_TAIL: [f64; 11] = [
    0.05237916725812554,
    -0.056146517213931504,
    -0.024557294843065472,
    0.05145577881341039,
    -0.029745214100432953,
    0.005976827541308858,
    0.0018734059543341745,
    -0.0013212064658331556,
    0.00014766870587848397,
    9.820732274625835e-05,
    -9.505804452958774e-05,
];

/// Width of GELU's sign circuits: its input is below `2^31` in the ring
/// ([`gelu_input_bound`]), so `x` and `L - |x|` both lie within `2^31` in magnitude.
const GELU_SIGN_BITS: u32 = 32;

/// The largest magnitude (exclusive, in real units at `frac_bits` fractional bits) that
/// [`gelu`] accepts: `2^(31 - f)`, the bound every product operand has
/// (`Op::operand_bounds`), far beyond any activation.
pub fn gelu_input_bound(frac_bits: u32) -> f64 {
    2f64.powi(31 - frac_bits as i32)
}

/// GELU, `x Phi(x)` (`x (1 + erf(x / sqrt 2)) / 2`, the exact form PyTorch exports), for
/// `|x| < 2^(31 - f)` ([`gelu_input_bound`]; 32768 at 16 fractional bits), as
/// `relu(x) - h(|x|)` with `h(a) = a Phi(-a)`: h is smooth, decays to 1.27e-4 at 4 and is a
/// degree-10 Chebyshev series on [0, 4] (three formed polynomials and one sum of products,
/// `chebyshev_series`); beyond, GELU is relu(x) minus the series' value at 4 (`h(4)/2`), within
/// 6.6e-5 of the exact value.
///
/// Two 32-bit sign circuits, one after the other: `[x < 0]` gives `relu(x)` and `|x|` from one
/// product (`x [x < 0]`, by [`Protocol::mul_bits`]), then `[|x| > 4]` clips `|x|`. The
/// narrow circuits need the input bound, which the range audit checks and the secure range
/// check's plan enforces (GELU's operand bound); outside it the result is meaningless, so a run
/// with both checks switched off must keep its activations in range. The Chebyshev polynomials
/// come from the doubling formulas (all bounded by 1, so fixed-point rounding stays small).
/// PUMA and SIGMA also approximate GELU piecewise by polynomials. Absolute error below 2^-12.
pub fn gelu<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    relu_minus_tail(p, fp, x, &GELU_TAIL, "gelu")
}

/// Chebyshev coefficients (T_0..T_10 on `v = |x| / 2 - 1`) of
/// `h(a) = a (1 - tanh(sqrt(2/pi) (a + 0.044715 a^3))) / 2` on [0, 4], fitted as
/// [`GELU_TAIL`] is: method error below 3.7e-5 on the whole line.
const GELU_TANH_TAIL: [f64; 11] = [
    0.052296052629306936,
    -0.05628642847380772,
    -0.024511259438885706,
    0.05164689830070622,
    -0.02972550853814214,
    0.005863052924658979,
    0.0018611807406742735,
    -0.001277086544561551,
    0.00014805039500570555,
    8.854437092832169e-05,
    -6.702995198846176e-05,
];

/// GELU in the tanh form that GPT-2 and `approximate = "tanh"` use,
/// `x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2`, computed as [`gelu`] is: `relu(x) -
/// h(|x|)` with `h(a) = a (1 - tanh(sqrt(2/pi) (a + 0.044715 a^3))) / 2` (the form is odd
/// around relu as the exact one is), a degree-10 Chebyshev series on [0, 4]. Same domain
/// (`|x| < 2^(31 - f)`), cost and error bound (2^-12) as [`gelu`]; it differs from the exact
/// GELU by up to 4.7e-4, which is why it is a function of its own.
pub fn gelu_tanh<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    relu_minus_tail(p, fp, x, &GELU_TANH_TAIL, "gelu_tanh")
}

/// `relu(x) - h(min(|x|, L))` for a tail `h` given by Chebyshev coefficients on [0, L]
/// (`L` = [`GELU_EDGE`]), with the narrow sign circuits described at [`gelu`].
fn relu_minus_tail<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    tail: &[f64],
    what: &str,
) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let f = fp.frac_bits();
    let negative = msb_within(p, x, GELU_SIGN_BITS, what)?;
    let neg_part = p.mul_bits(x, &negative)?; // x [x < 0]
    let relu = p.sub(x, &neg_part)?;
    let a = p.sub(&relu, &neg_part)?; // |x|
                                      // Clip |x| at L: a - (a - L) [a > L], the sign taken of L - a.
    let edge = encode(fp, GELU_EDGE)?;
    let neg_a = p.neg(&a)?;
    let room = p.add_public(&neg_a, &filled(&shape, edge))?; // L - a
    let beyond = msb_within(p, &room, GELU_SIGN_BITS, what)?;
    let excess = p.mul_bits(&room, &beyond)?; // (L - a) [a > L] <= 0
    let a = p.add(&a, &excess)?; // min(|x|, L)
                                 // v = a / 2 - 1 in [-1, 1]: a's encoding read at f + 1 bits, minus one.
    let v = p.add_public(&a, &filled(&shape, (1u64 << (f + 1)).wrapping_neg()))?;
    let h = chebyshev_series(p, fp, &v, f + 1, tail)?;
    p.sub(&relu, &h)
}

/// Log-softmax along `axis`: `z - ln(sum e^z)` with `z = x - max`, the log normalised over
/// [1, n] only. Same domain as
/// [`softmax`]; absolute error below 2^-11.
pub fn log_softmax<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, axis: usize) -> Result<P::Share> {
    log_softmax_with(p, fp, x, axis, false)
}

/// [`log_softmax`] on the narrow circuits of [`softmax_bounded`], with its domain.
pub fn log_softmax_bounded<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    axis: usize,
) -> Result<P::Share> {
    log_softmax_with(p, fp, x, axis, true)
}

fn log_softmax_with<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    axis: usize,
    narrow: bool,
) -> Result<P::Share> {
    let s = shifted_exp(p, fp, x, axis, "log_softmax", narrow)?;
    let l = log_between(p, fp, &s.sum, -1, s.sum_hi)?;
    let (keep, mshape) = (s.keep.clone(), s.moved_shape.clone());
    let out = p.linear2(&s.z, &l, &maps::SubMapped(Widen { keep: &keep, shape: &mshape }))?;
    p.linear(&out, &LastToAxis { axis, shape: &s.shape })
}
