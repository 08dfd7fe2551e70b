//! Fixed-point approximations of exp, reciprocal, sigmoid, tanh and softmax.
//!
//! Error target (checked by tests against f64 on both back ends over each domain):
//! `|secure - exact| <= max(1e-3 * |exact|, 2^-12)` at 16 fractional bits. The stated domains
//! hold for 14 to 18 fractional bits (exp's intermediate powers overflow above, the
//! normalisation constants round to zero below).

use crate::cmp::max_along;
use crate::tensor_ops::{axis_to_last, broadcast, concat_shares, filled, last_to_axis, split_share};
use musket_core::{bit_planes, msb, planes_to_packed, suffix_and, MpcError, Protocol, Result, Share};
use musket_ring::{FixedPoint, RingTensor};

/// Inputs for which [`exp`] meets the error target. Below -16 the exact value is under 2^-23
/// and the result is within 2^-12 of 0; outside the domain the result is unspecified (it
/// overflows above 16 and grows without bound below about -64).
pub const EXP_DOMAIN: (f64, f64) = (-64.0, 16.0);

/// Inputs for which [`reciprocal`] meets the error target. Below the domain (including zero
/// and negative inputs) the result is 0; above it, unspecified (the iteration diverges).
pub const RECIPROCAL_DOMAIN: (f64, f64) = (1.0 / 4096.0, 16384.0);

/// Extra fractional bits used inside exp: the input read at scale `f + 4` is `x / 16`.
const EXP_EXTRA_BITS: u32 = 4;

/// Extra fractional bits of layer norm's variance and inverse square root.
const VAR_EXTRA_BITS: u32 = 4;

fn encode(fp: FixedPoint, v: f64) -> Result<u64> {
    fp.encode_one(v).ok_or_else(|| {
        MpcError::Usage(format!("constant {v} does not fit {} fractional bits", fp.frac_bits()))
    })
}

/// Products of several pairs at scale `bits`, truncated back to scale `bits` (minus `extra`),
/// in one multiplication and one truncation.
fn mul_trunc_many<P: Protocol>(
    p: &mut P,
    pairs: &[(&P::Share, &P::Share)],
    shift: u32,
) -> Result<Vec<P::Share>> {
    let lefts: Vec<&P::Share> = pairs.iter().map(|(a, _)| *a).collect();
    let rights: Vec<&P::Share> = pairs.iter().map(|(_, b)| *b).collect();
    let (a, b) = (concat_shares(p, &lefts)?, concat_shares(p, &rights)?);
    let prod = p.mul(&a, &b)?;
    let t = p.truncate(&prod, shift)?;
    let shapes: Vec<Vec<usize>> = pairs.iter().map(|(a, _)| a.shape().to_vec()).collect();
    split_share(p, &t, &shapes)
}

fn mul_trunc<P: Protocol>(p: &mut P, a: &P::Share, b: &P::Share, shift: u32) -> Result<P::Share> {
    let prod = p.mul(a, b)?;
    p.truncate(&prod, shift)
}

/// `e^x`, for x in [`EXP_DOMAIN`].
///
/// Method: `e^x = (e^(x/16))^16`. Reading x's encoding at 4 more fractional bits gives
/// `y = x/16` in [-4, 1] exactly (no truncation); `e^y` is a degree-8 Taylor polynomial
/// (relative error < 7e-6 on [-1, 1]) evaluated at `f + 4` bits with its powers in three
/// rounds of products, then four squarings, the first two still at `f + 4` bits. CrypTen
/// uses `(1 + x/256)^256` (8 squarings, max error 1.87 on [-4, 4]); this costs 3 more product
/// rounds and is accurate to the error target on the whole domain.
pub fn exp<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits();
    let wf = f + EXP_EXTRA_BITS; // working precision
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
                                                                            // Squarings: e^(x/8), e^(x/4) at wf (values below e^4 = 55: products fit), then
                                                                            // e^(x/2) back to f bits, then e^x at f bits (values up to e^16 < 2^30).
    for _ in 0..2 {
        r = mul_trunc(p, &r, &r, wf)?;
    }
    r = mul_trunc(p, &r, &r, wf + EXP_EXTRA_BITS)?;
    mul_trunc(p, &r, &r, f)
}

/// `1/z` for z in [1, 2]: linear initial guess `24/17 - 8z/17` (relative error at most 1/17)
/// and two Newton steps (relative error about 1.2e-5 before rounding).
pub fn reciprocal_in_unit_range<P: Protocol>(p: &mut P, fp: FixedPoint, z: &P::Share) -> Result<P::Share> {
    reciprocal_in_range(p, fp, z, 1.0, 2.0, 2)
}

/// `1/z` for z in `[lo, hi]` (public, `0 < lo < hi`): the linear guess minimising the worst
/// relative error, `c1 - c2 z` with `c2 = 8 / ((lo+hi)^2 + 4 lo hi)`, `c1 = c2 (lo+hi)`
/// (error `1 - c2 lo hi`), then `steps` Newton steps, each squaring the relative error.
fn reciprocal_in_range<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    z: &P::Share,
    lo: f64,
    hi: f64,
    steps: usize,
) -> Result<P::Share> {
    let c2 = 8.0 / ((lo + hi).powi(2) + 4.0 * lo * hi);
    let c1 = c2 * (lo + hi);
    let scaled = p.scale(z, encode(fp, c2)?)?;
    let t = p.truncate(&scaled, fp.frac_bits())?;
    let neg = p.neg(&t)?;
    let y = p.add_public(&neg, &filled(z.shape(), encode(fp, c1)?))?;
    newton_reciprocal(p, fp, z, y, steps)
}

fn newton_reciprocal<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    z: &P::Share,
    mut y: P::Share,
    steps: usize,
) -> Result<P::Share> {
    let f = fp.frac_bits();
    let two = filled(z.shape(), encode(fp, 2.0)?);
    for _ in 0..steps {
        let zy = mul_trunc(p, z, &y, f)?;
        let neg = p.neg(&zy)?;
        let corr = p.add_public(&neg, &two)?;
        y = mul_trunc(p, &y, &corr, f)?;
    }
    Ok(y)
}

/// Powers of two `2^j` for `j` in this range bracket the inputs of the normalised functions.
const NORM_EXPONENTS: std::ops::RangeInclusive<i32> = -12..=13;

/// `x` located between powers of two: integer shares (shape `[K + 1, n]`) of
/// `below[k] = [0 <= x < 2^exps[k]]` for the K exponents, and `below[K] = [x >= 0]`.
struct Normalized<S> {
    below: S,
    exps: Vec<i32>,
    shape: Vec<usize>,
}

/// One bit decomposition of x (every bit, 7 rounds), then suffix ANDs of the negated bits from
/// bit `f + exps[0]` up to bit 62, with the negated sign bit on top: `below[k]` is 1 when no
/// bit from `f + exps[k]` up is set and x is not negative (all bits up to 62 count, so values
/// above the last power stay in the top class). About 570 AND gates per element where one
/// sign-bit circuit per power of two took 26 x 181; 6 rounds more.
fn normalize<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<Normalized<P::Share>> {
    let shape = x.shape().to_vec();
    let exps: Vec<i32> = NORM_EXPONENTS.collect();
    let n = x.len();
    let nb = n.div_ceil(64);
    let first = fp.frac_bits() as i32 + exps[0];
    if first < 0 {
        return Err(MpcError::Usage(format!("{} fractional bits are too few to normalise", fp.frac_bits())));
    }
    let first = first as usize;
    let k = exps.len();
    let planes = bit_planes(p, x)?;
    // Planes first ..= 63 (the sign last), negated; their suffix ANDs; then the K entries that
    // start at the K powers, and the sign's alone.
    let len = 64 - first;
    let zeros =
        p.bits_xor_public(&p.bits_linear(&planes, &|w| w[first * nb..].to_vec()), &vec![u64::MAX; len * nb]);
    let suffix = suffix_and(p, &zeros, len, nb)?;
    let below_bits = p.bits_linear(&suffix, &|w| {
        let mut v = w[..k * nb].to_vec();
        v.extend_from_slice(&w[(len - 1) * nb..]);
        v
    });
    let packed = p.bits_linear(&below_bits, &|w| planes_to_packed(w, k + 1, n));
    let below = p.b2a_packed(&packed, &[k + 1, n])?;
    Ok(Normalized { below, exps, shape })
}

/// `value(e)` where `2^e <= x < 2^(e+1)`, as a fixed-point share: a linear combination of the
/// comparison bits (no products). 0 below the lowest power and for negative x; `value(last)`
/// from the highest power up.
fn by_exponent<P: Protocol>(
    p: &P,
    fp: FixedPoint,
    nz: &Normalized<P::Share>,
    value: impl Fn(i32) -> f64,
) -> Result<P::Share> {
    // With w = below and v_{-1} = v_K = 0, the class indicators are w_{k+1} - w_k, so the
    // value is sum_k v_k (w_{k+1} - w_k) = sum_{k=0..K} w_k (v_{k-1} - v_k).
    let mut v: Vec<u64> = nz.exps.iter().map(|&j| encode(fp, value(j))).collect::<Result<_>>()?;
    v.push(0);
    let coef: Vec<u64> = (0..v.len()).map(|k| if k == 0 { 0 } else { v[k - 1] }.wrapping_sub(v[k])).collect();
    let n = nz.shape.iter().product::<usize>();
    let shape = nz.shape.clone();
    p.linear(&nz.below, &|t| {
        let mut out = vec![0u64; n];
        for (k, c) in coef.iter().enumerate() {
            for (o, b) in out.iter_mut().zip(&t.data()[k * n..(k + 1) * n]) {
                *o = o.wrapping_add(b.wrapping_mul(*c));
            }
        }
        RingTensor::new(shape.clone(), out)
    })
}

/// `x * 2^-(e+1)`, in [0.5, 1) on the domain, at `f + 4` fractional bits.
fn normalized_value<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    nz: &Normalized<P::Share>,
) -> Result<P::Share> {
    let s = by_exponent(p, fp, nz, |j| 2f64.powi(-(j + 1)))?;
    mul_trunc(p, x, &s, fp.frac_bits() - EXP_EXTRA_BITS)
}

/// `sum_k coef[k] u^k` for `u = xn - 0.75` (xn at `f + 4` bits), returned at `f` bits: the
/// degree-8 Taylor series of a function around 0.75, powers in three rounds of products.
fn series_at_three_quarters<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    xn: &P::Share,
    coef: &[f64; 9],
) -> Result<P::Share> {
    let wf = fp.frac_bits() + EXP_EXTRA_BITS;
    let wp = FixedPoint::new(wf);
    let u = p.add_public(xn, &filled(xn.shape(), encode(wp, 0.75)?.wrapping_neg()))?;
    let u2 = mul_trunc(p, &u, &u, wf)?;
    let v = mul_trunc_many(p, &[(&u2, &u), (&u2, &u2)], wf)?;
    let w = mul_trunc_many(p, &[(&v[1], &u), (&v[1], &u2), (&v[1], &v[0]), (&v[1], &v[1])], wf)?;
    let powers = [&u, &u2, &v[0], &v[1], &w[0], &w[1], &w[2], &w[3]];
    let mut acc = p.scale(powers[0], encode(wp, coef[1])?)?;
    for (k, pw) in powers.iter().enumerate().skip(1) {
        let term = p.scale(pw, encode(wp, coef[k + 1])?)?;
        acc = p.add(&acc, &term)?;
    }
    let sum = p.truncate(&acc, wf + EXP_EXTRA_BITS)?; // scale 2 wf -> f
    p.add_public(&sum, &filled(xn.shape(), encode(fp, coef[0])?))
}

/// Taylor coefficients around 0.75 of `(0.75 + u)^a`.
fn power_series(a: f64) -> [f64; 9] {
    let mut c = [0.0; 9];
    let mut binom = 1.0;
    for (k, ck) in c.iter_mut().enumerate() {
        *ck = binom * 0.75f64.powf(a - k as f64);
        binom *= (a - k as f64) / (k as f64 + 1.0);
    }
    c
}

/// `1/x` for x in [`RECIPROCAL_DOMAIN`].
///
/// Method: one comparison circuit against the powers of two 2^-12 .. 2^13 gives
/// `s = 2^-(e+1)` with `2^e <= x < 2^(e+1)` (a linear combination of the comparison bits, no
/// product); `x s` is in [0.5, 1), where the linear guess `2.9142 - 2 x s` (relative error
/// 0.086) and two Newton steps give `1/(x s)`; times `s` gives `1/x`. 20 rounds in 2PC
/// including the comparison; CrypTen's default (an exp-based guess and 10 Newton steps)
/// takes 38.
pub fn reciprocal<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let nz = normalize(p, fp, x)?;
    let s = by_exponent(p, fp, &nz, |j| 2f64.powi(-(j + 1)))?;
    // Below the domain the bits make s = 0, and the result is 0.
    let f = fp.frac_bits();
    let xn = mul_trunc(p, x, &s, f)?;
    let twice = p.scale(&xn, 2)?;
    let neg = p.neg(&twice)?;
    let y0 = p.add_public(&neg, &filled(&shape, encode(fp, 2.9142)?))?;
    let y = newton_reciprocal(p, fp, &xn, y0, 2)?;
    mul_trunc(p, &y, &s, f)
}

/// Inputs for which [`log`], [`sqrt`] and [`inv_sqrt`] meet the error target. Below it the
/// results are unspecified; above it too.
pub const NORMALIZED_DOMAIN: (f64, f64) = (1.0 / 4096.0, 16384.0);

/// Natural logarithm for x in [`NORMALIZED_DOMAIN`]: `ln x = ln(x s) + (e+1) ln 2` with the
/// normalisation of [`reciprocal`] (the second term is a linear combination of comparison
/// bits) and a degree-8 series of `ln` around 0.75 on [0.5, 1). 16 rounds in 2PC; CrypTen's
/// Householder iterations take 32 with error 0.045 on [0.1, 100].
pub fn log<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let nz = normalize(p, fp, x)?;
    let xn = normalized_value(p, fp, x, &nz)?;
    let mut coef = [0.0; 9];
    coef[0] = 0.75f64.ln();
    for (k, c) in coef.iter_mut().enumerate().skip(1) {
        *c = if k % 2 == 1 { 1.0 } else { -1.0 } / (k as f64 * 0.75f64.powi(k as i32));
    }
    let ln_xn = series_at_three_quarters(p, fp, &xn, &coef)?;
    let exponent = by_exponent(p, fp, &nz, |j| (j + 1) as f64 * std::f64::consts::LN_2)?;
    p.add(&ln_xn, &exponent)
}

/// Square root for x in [`NORMALIZED_DOMAIN`]: `sqrt(x s) / sqrt(s)` with a degree-8 series
/// for the first factor and the second a linear combination of comparison bits.
pub fn sqrt<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let nz = normalize(p, fp, x)?;
    let xn = normalized_value(p, fp, x, &nz)?;
    let r = series_at_three_quarters(p, fp, &xn, &power_series(0.5))?;
    let k = by_exponent(p, fp, &nz, |j| 2f64.powf((j + 1) as f64 / 2.0))?;
    mul_trunc(p, &r, &k, fp.frac_bits())
}

/// `1/sqrt(x)` for x in [`NORMALIZED_DOMAIN`], as [`sqrt`] with the series of `u^-1/2`.
pub fn inv_sqrt<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let nz = normalize(p, fp, x)?;
    let xn = normalized_value(p, fp, x, &nz)?;
    let r = series_at_three_quarters(p, fp, &xn, &power_series(-0.5))?;
    let k = by_exponent(p, fp, &nz, |j| 2f64.powf(-(j + 1) as f64 / 2.0))?;
    mul_trunc(p, &r, &k, fp.frac_bits())
}

/// The logistic function `1/(1 + e^-x)`, for |x| <= 64 (beyond, unspecified): computed on
/// |x| so that exp only sees non-positive inputs and the reciprocal only [1, 2], then
/// reflected for negative x. Absolute error below 2^-12.
pub fn sigmoid<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let bits = msb(p, x)?; // [x < 0]
    let xm = p.mul_bits(x, &bits)?;
    let twice = p.scale(&xm, 2)?;
    let minus_abs = p.sub(&twice, x)?; // -|x|
    let t = exp(p, fp, &minus_abs)?;
    let one_plus = p.add_public(&t, &filled(&shape, encode(fp, 1.0)?))?;
    let r = reciprocal_in_unit_range(p, fp, &one_plus)?; // sigmoid(|x|)
                                                         // x < 0: 1 - r; else r.  r + neg (1 - 2r)
    let two_r = p.scale(&r, 2)?;
    let neg_two_r = p.neg(&two_r)?;
    let one_minus = p.add_public(&neg_two_r, &filled(&shape, encode(fp, 1.0)?))?;
    let flip = p.mul_bits(&one_minus, &bits)?;
    p.add(&r, &flip)
}

/// `tanh(x) = 2 sigmoid(2x) - 1`, for |x| <= 32; absolute error below 2^-11.
pub fn tanh<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let x2 = p.scale(x, 2)?;
    let s = sigmoid(p, fp, &x2)?;
    let s2 = p.scale(&s, 2)?;
    p.add_public(&s2, &filled(x.shape(), encode(fp, 1.0)?.wrapping_neg()))
}

/// Softmax along `axis`: subtract the maximum (exact, comparison tree), exp, divide by the
/// sum. Domain: along the axis, `max - min <= 64` (so every exp input is in [-64, 0]) and at
/// most 16384 entries. Absolute error below 2^-12 per output.
pub fn softmax<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, axis: usize) -> Result<P::Share> {
    let s = shifted_exp(p, fp, x, axis, "softmax")?;
    let r = reciprocal(p, fp, &s.sum)?;
    let (keep, mshape) = (s.keep.clone(), s.moved_shape.clone());
    let wide = p.linear(&r, &|t| broadcast(&t.reshape(&keep)?, &mshape))?;
    let out = mul_trunc(p, &s.exp, &wide, fp.frac_bits())?;
    p.linear(&out, &|t| last_to_axis(t, axis, &s.shape))
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
}

fn shifted_exp<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    axis: usize,
    what: &str,
) -> Result<ShiftedExp<P::Share>> {
    let shape = x.shape().to_vec();
    if axis >= shape.len() {
        return Err(MpcError::Usage(format!("{what}: axis {axis} out of range for {shape:?}")));
    }
    let moved = p.linear(x, &|t| axis_to_last(t, axis))?;
    let moved_shape = moved.shape().to_vec();
    let mut keep = moved_shape.clone();
    *keep.last_mut().expect("rank >= 1") = 1;
    let m = max_along(p, &moved, moved_shape.len() - 1)?;
    let z = p.linear2(&moved, &m, &|a, b| a.sub(&broadcast(&b.reshape(&keep)?, &moved_shape)?))?;
    let exp = exp(p, fp, &z)?;
    let sum = p.sum_axis(&exp, moved_shape.len() - 1)?;
    Ok(ShiftedExp { shape, moved_shape, keep, z, exp, sum })
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
    let fixes = crate::tensor_ops::mul_many(p, &[(&m[0], &lo_gap), (&m[1], &below_hi)])?;
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
    let e = exp(p, fp, &neg_a2)?;
    let q = mul_trunc(p, &poly, &e, f)?;
    let neg_q = p.neg(&q)?;
    let r = p.add_public(&neg_q, &filled(&shape, encode(fp, 1.0)?))?; // erf(|x|)
    let rm = p.mul(&r, &m[2])?;
    let twice = p.scale(&rm, 2)?;
    p.sub(&r, &twice)
}

/// GELU, `x (1 + erf(x / sqrt 2)) / 2`, the exact form PyTorch exports. Error at most
/// `|x| 2^-13 + 2^-12`.
pub fn gelu<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let z = p.scale(x, encode(fp, std::f64::consts::FRAC_1_SQRT_2)?)?;
    let z = p.truncate(&z, fp.frac_bits())?;
    let e = erf(p, fp, &z)?;
    let one_plus = p.add_public(&e, &filled(x.shape(), encode(fp, 1.0)?))?;
    mul_trunc(p, x, &one_plus, fp.frac_bits() + 1)
}

/// Log-softmax along `axis`: `z - ln(sum e^z)` with `z = x - max`. Same domain as
/// [`softmax`]; absolute error below 2^-11.
pub fn log_softmax<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, axis: usize) -> Result<P::Share> {
    let s = shifted_exp(p, fp, x, axis, "log_softmax")?;
    let l = log(p, fp, &s.sum)?;
    let (keep, mshape) = (s.keep.clone(), s.moved_shape.clone());
    let out = p.linear2(&s.z, &l, &|a, b| a.sub(&broadcast(&b.reshape(&keep)?, &mshape)?))?;
    p.linear(&out, &|t| last_to_axis(t, axis, &s.shape))
}

/// Layer normalisation over the last axis with secret `gamma` and `beta` of that axis' size:
/// `(x - mean) / sqrt(var + eps) * gamma + beta`. Domain: `var + eps` in
/// [`NORMALIZED_DOMAIN`]. Error below `2^-10 (1 + |gamma|)` for unit-scale outputs.
pub fn layer_norm<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    gamma: &P::Share,
    beta: &P::Share,
    eps: f64,
) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    let rank = shape.len();
    let n = *shape.last().ok_or_else(|| MpcError::Usage("layer_norm of a scalar".into()))?;
    if gamma.len() != n || beta.len() != n {
        return Err(MpcError::Usage(format!("layer_norm: gamma/beta must have {n} elements")));
    }
    let f = fp.frac_bits();
    let mut keep = shape.clone();
    keep[rank - 1] = 1;
    let mut lane = vec![1; rank];
    lane[rank - 1] = n;
    let sum = p.sum_axis(x, rank - 1)?;
    let mean = crate::linear::scale_public_fine(p, fp, &sum, 1.0 / n as f64)?;
    let d = p.linear2(x, &mean, &|a, b| a.sub(&broadcast(&b.reshape(&keep)?, &shape)?))?;
    // Sum the squares at scale 2f and truncate once: truncating each square first would bias
    // a small variance by up to n ulps. Requires sum (x - mean)^2 < 2^(62-2f). The variance
    // and its inverse square root keep VAR_EXTRA_BITS more fractional bits: at f bits a small
    // variance (0.0017 is 109 ulps at f = 16) lost up to 1% to the two truncations, 0.5% of
    // every output of the row.
    let wide = FixedPoint::new(f + VAR_EXTRA_BITS);
    let d2 = p.mul(&d, &d)?;
    let ss = p.sum_axis(&d2, rank - 1)?;
    let ss = p.truncate(&ss, f - VAR_EXTRA_BITS)?;
    // 1/n gets as many bits as keep var (< 2^14, the domain) times 2^(f+4) times 2^bits within
    // 62 bits: 28 at f = 16, 26 at f = 18.
    let inv_n_bits = 62 - 14 - (f + VAR_EXTRA_BITS);
    let inv_n = encode(FixedPoint::new(inv_n_bits), 1.0 / n as f64)?;
    let scaled = p.scale(&ss, inv_n)?;
    let var = p.truncate(&scaled, inv_n_bits)?;
    let var_eps = p.add_public(&var, &filled(var.shape(), encode(wide, eps)?))?;
    let inv = inv_sqrt(p, wide, &var_eps)?;
    let inv_wide = p.linear(&inv, &|t| broadcast(&t.reshape(&keep)?, &shape))?;
    let gamma_wide = p.linear(gamma, &|t| broadcast(&t.reshape(&lane)?, &shape))?;
    let normed = mul_trunc(p, &d, &inv_wide, f + VAR_EXTRA_BITS)?;
    let scaled = mul_trunc(p, &normed, &gamma_wide, f)?;
    p.linear2(&scaled, beta, &|a, b| a.add(&broadcast(&b.reshape(&lane)?, &shape)?))
}
