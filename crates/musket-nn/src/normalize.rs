//! Functions computed by locating `x` between powers of two: reciprocal, log, sqrt and inverse
//! square root. One bit decomposition of `x` gives, by suffix ANDs of its negated bits, the
//! bits `[x < 2^e]` for a range of exponents `e`; any function of the exponent is then a
//! linear combination of those bits (no products), the mantissa in [0.5, 1) goes through a
//! short polynomial or Newton iteration, and inputs outside the range get a documented
//! saturated value with their out-of-domain bits passed to [`Protocol::note_out_of_range`].

use crate::approx::{encode, mul_trunc, mul_trunc_many, EXTRA_BITS};
use crate::maps::{Broadcast, RowCombination};
use crate::tensor_ops::{filled, mul_many};
use musket_core::maps;
use musket_core::{bit_planes, planes_to_packed, suffix_and, MpcError, Protocol, Result, Share};
use musket_ring::FixedPoint;

/// Inputs for which [`reciprocal`] meets the error target: `2^-12 <= |x|`, either sign (above
/// 2^14 the result is below 4 ulps and 0 is within the target). For `|x| < 2^-12`, zero
/// included, the result is saturated at `±2^12` (the reciprocal of the domain's edge; `+2^12`
/// for zero) and the elements are flagged.
pub const RECIPROCAL_DOMAIN: (f64, f64) = (1.0 / 4096.0, f64::INFINITY);

/// Inputs for which [`log`], [`sqrt`] and [`inv_sqrt`] meet the error target: every positive
/// encodable value (`sqrt` also 0). Outside (x <= 0 for log and inv_sqrt, x < 0 for sqrt) the
/// results are saturated: `log` gives `ln(2^-f)`, `sqrt` 0, `inv_sqrt` `2^(f/2)`, and the
/// elements are flagged.
pub const NORMALIZED_DOMAIN: (f64, f64) = (0.0, f64::INFINITY);

/// Whether [`normalize`] classifies `x` itself (non-negative inputs; negative ones get their
/// own row and no class) or `|x|` (for odd functions such as the reciprocal).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sign {
    NonNegative,
    Magnitude,
}

/// `x` located between powers of two: integer 0/1 shares of shape `[K + 2, n]` whose rows
/// `0..=K` are `below[k] = [v < 2^(lo + k)]` (`v = x` with negative `x` in no class, or `|x|`
/// up to one ulp), and whose last row is `neg = [x < 0]`.
pub(crate) struct Normalized<S> {
    rows: S,
    lo: i32,
    k: usize,
    n: usize,
    shape: Vec<usize>,
    sign: Sign,
}

impl<S: Share> Normalized<S> {
    /// Row `r` as a share of the input's shape.
    pub(crate) fn row<P: Protocol<Share = S>>(&self, p: &P, r: usize) -> Result<S> {
        p.linear(&self.rows, &maps::FlatRange { from: r * self.n, shape: &self.shape })
    }

    /// `[x < 2^lo]` (and not negative, for [`Sign::NonNegative`]).
    pub(crate) fn below_range<P: Protocol<Share = S>>(&self, p: &P) -> Result<S> {
        self.row(p, 0)
    }

    /// Indicator of the inputs outside `[2^lo, 2^hi)`: below, above, or negative (for
    /// [`Sign::NonNegative`]); `1 - below[K] + below[0]` in either mode.
    pub(crate) fn outside<P: Protocol<Share = S>>(&self, p: &P) -> Result<S> {
        self.combination(p, &[(0, 1), (self.k, 1u64.wrapping_neg())], 1)
    }

    /// `sum_r coef_r row_r + constant` (ring constants), as a share of the input's shape.
    pub(crate) fn combination<P: Protocol<Share = S>>(
        &self,
        p: &P,
        coefs: &[(usize, u64)],
        constant: u64,
    ) -> Result<S> {
        let sum = p.linear(&self.rows, &RowCombination { n: self.n, coefs, shape: &self.shape })?;
        if constant == 0 {
            Ok(sum)
        } else {
            p.add_public(&sum, &filled(&self.shape, constant))
        }
    }

    /// A function of the class of `x`, as a fixed-point share at `scale` fractional bits: the
    /// value `class(e)` where `2^e <= v < 2^(e+1)` (`lo <= e < hi`), `below` under `2^lo`,
    /// `above` from `2^hi` up, `negative` for negative `x` ([`Sign::NonNegative`] only). A
    /// linear combination of the rows, no products.
    pub(crate) fn by_exponent<P: Protocol<Share = S>>(
        &self,
        p: &P,
        scale: u32,
        below: f64,
        class: impl Fn(i32) -> f64,
        above: f64,
        negative: f64,
    ) -> Result<S> {
        let enc = |v: f64| encode_at(v, scale);
        // With indicators below[0], below[j+1] - below[j] (class lo + j), 1 - below[K] (- neg),
        // and neg, the value's coefficient on each row is the difference of neighbouring values.
        let v: Vec<u64> = (0..self.k).map(|j| enc(class(self.lo + j as i32))).collect::<Result<_>>()?;
        let (vb, va, vn) = (enc(below)?, enc(above)?, enc(negative)?);
        let mut coefs = Vec::with_capacity(self.k + 2);
        coefs.push((0, vb.wrapping_sub(v[0])));
        for k in 1..self.k {
            coefs.push((k, v[k - 1].wrapping_sub(v[k])));
        }
        coefs.push((self.k, v[self.k - 1].wrapping_sub(va)));
        if self.sign == Sign::NonNegative {
            coefs.push((self.k + 1, vn.wrapping_sub(va)));
        }
        self.combination(p, &coefs, va)
    }
}

/// `round(v 2^scale)` as a ring element, for scales up to 61 (beyond [`FixedPoint`]'s 30: the
/// normalisation constants of a layer norm's variance need them); `|v 2^scale| < 2^62`.
pub(crate) fn encode_at(v: f64, scale: u32) -> Result<u64> {
    let x = v * (scale as f64).exp2();
    if !x.is_finite() || x.abs() >= 2f64.powi(62) {
        return Err(MpcError::Usage(format!("constant {v} does not fit {scale} fractional bits")));
    }
    Ok(x.round() as i64 as u64)
}

/// Locates `x` (fixed point at `scale` fractional bits) between the powers of two
/// `2^lo .. 2^hi` (`scale + lo >= 0`, `scale + hi <= 62`): one bit decomposition of `x`
/// ([`bit_planes`], 7 rounds), the suffix ANDs of its negated bits from bit `scale + lo` up to
/// 62 (with the negated sign on top for [`Sign::NonNegative`]; XORed with the sign for
/// [`Sign::Magnitude`], which turns a negative `x` into `|x| - 1 ulp`), and one bit injection
/// of the `hi - lo + 1` rows plus the sign.
pub(crate) fn normalize<P: Protocol>(
    p: &mut P,
    scale: u32,
    x: &P::Share,
    lo: i32,
    hi: i32,
    sign: Sign,
) -> Result<Normalized<P::Share>> {
    let shape = x.shape().to_vec();
    let n = x.len();
    let nb = n.div_ceil(64);
    let first = scale as i32 + lo;
    if first < 0 || scale as i32 + hi > 62 || hi <= lo {
        return Err(MpcError::Usage(format!(
            "cannot normalise between 2^{lo} and 2^{hi} at {scale} fractional bits"
        )));
    }
    let first = first as usize;
    let k = (hi - lo) as usize;
    let planes = bit_planes(p, x)?;
    let len = 63 - first; // planes first ..= 62
    let mut values = p.bits_linear(&planes, &|w| w[first * nb..63 * nb].to_vec());
    if sign == Sign::Magnitude {
        let signs = p.bits_linear(&planes, &|w| w[63 * nb..].repeat(len));
        values = p.bits_xor(&values, &signs);
    }
    let chain = match sign {
        Sign::Magnitude => values,
        Sign::NonNegative => {
            let top = p.bits_linear(&planes, &|w| w[63 * nb..].to_vec());
            p.bits_concat(&[&values, &top])
        }
    };
    let chain_len = len + usize::from(sign == Sign::NonNegative);
    let zeros = p.bits_xor_public(&chain, &vec![u64::MAX; chain_len * nb]);
    let suffix = suffix_and(p, &zeros, chain_len, nb)?;
    let rows = p.bits_linear(&suffix, &|w| w[..(k + 1) * nb].to_vec());
    let sign_row = p.bits_linear(&planes, &|w| w[63 * nb..].to_vec());
    let all = p.bits_concat(&[&rows, &sign_row]);
    let packed = p.bits_linear(&all, &|w| planes_to_packed(w, k + 2, n));
    let rows = p.b2a_packed(&packed, &[k + 2, n])?;
    Ok(Normalized { rows, lo, k, n, shape, sign })
}

/// `sum_k coef[k] u^k` for `u = xn - 0.75` (`xn` at `f + 4` fractional bits), returned at `f`
/// bits: the degree-8 Taylor series of a function around 0.75, powers in three rounds of
/// products.
pub(crate) fn series_at_three_quarters<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    xn: &P::Share,
    coef: &[f64; 9],
) -> Result<P::Share> {
    let wf = fp.frac_bits() + EXTRA_BITS;
    let u = p.add_public(xn, &filled(xn.shape(), encode_at(0.75, wf)?.wrapping_neg()))?;
    let u2 = mul_trunc(p, &u, &u, wf)?;
    let v = mul_trunc_many(p, &[(&u2, &u), (&u2, &u2)], wf)?;
    let w = mul_trunc_many(p, &[(&v[1], &u), (&v[1], &u2), (&v[1], &v[0]), (&v[1], &v[1])], wf)?;
    let powers = [&u, &u2, &v[0], &v[1], &w[0], &w[1], &w[2], &w[3]];
    let mut acc = p.scale(powers[0], encode_at(coef[1], wf)?)?;
    for (k, pw) in powers.iter().enumerate().skip(1) {
        let term = p.scale(pw, encode_at(coef[k + 1], wf)?)?;
        acc = p.add(&acc, &term)?;
    }
    let sum = p.truncate(&acc, wf + EXTRA_BITS)?; // scale 2 wf -> f
    p.add_public(&sum, &filled(xn.shape(), encode_at(coef[0], fp.frac_bits())?))
}

/// Taylor coefficients around 0.75 of `(0.75 + u)^a`.
pub(crate) fn power_series(a: f64) -> [f64; 9] {
    let mut c = [0.0; 9];
    let mut binom = 1.0;
    for (k, ck) in c.iter_mut().enumerate() {
        *ck = binom * 0.75f64.powf(a - k as f64);
        binom *= (a - k as f64) / (k as f64 + 1.0);
    }
    c
}

/// `1/z` for z in [1, 2]: linear initial guess `24/17 - 8z/17` (relative error at most 1/17)
/// and two Newton steps (relative error about 1.2e-5 before rounding).
pub fn reciprocal_in_unit_range<P: Protocol>(p: &mut P, fp: FixedPoint, z: &P::Share) -> Result<P::Share> {
    reciprocal_in_range(p, fp, z, 1.0, 2.0, 2)
}

/// `1/z` for z in `[lo, hi]` (public, `0 < lo < hi`): the linear guess minimising the worst
/// relative error, `c1 - c2 z` with `c2 = 8 / ((lo+hi)^2 + 4 lo hi)`, `c1 = c2 (lo+hi)`
/// (error `1 - c2 lo hi`), then `steps` Newton steps, each squaring the relative error.
pub(crate) fn reciprocal_in_range<P: Protocol>(
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

/// `1/z` for `z` in [0.5, 1] (or exactly 1 where a saturated element was set to 1): the guess
/// `2.9142 - 2 z` (relative error 0.086) and two Newton steps.
fn reciprocal_of_mantissa<P: Protocol>(p: &mut P, fp: FixedPoint, z: &P::Share) -> Result<P::Share> {
    let twice = p.scale(z, 2)?;
    let neg = p.neg(&twice)?;
    let y0 = p.add_public(&neg, &filled(z.shape(), encode(fp, 2.9142)?))?;
    newton_reciprocal(p, fp, z, y0, 2)
}

/// Lowest power of two of [`reciprocal`]'s normalisation (its domain's lower edge).
const RECIPROCAL_LO: i32 = -12;
/// Highest: from 2^14 up the reciprocal is below 4 ulps at 16 fractional bits and 0 is within
/// the error target (at 14 bits, 1 ulp).
const RECIPROCAL_HI: i32 = 14;

/// `1/x` for any encodable `x`, with its sign.
///
/// Method: the normalisation bits of `|x|` between 2^-12 and 2^14 give `s = 2^-(e+1)` with
/// `2^e <= |x| < 2^(e+1)` (a linear combination of the bits), and the sign bit gives
/// `sigma = 1 - 2[x < 0]`; `x (sigma s)` is in [0.5, 1), where the linear guess and two Newton
/// steps give its reciprocal; times `sigma s` gives `1/x`. The two products with `sigma` are
/// exact (it is an integer) and share one round. Error: at most `max(1e-3 |1/x|, 2^-12)` on the
/// domain ([`RECIPROCAL_DOMAIN`]); `|x| < 2^-12` (zero included) saturates at `±2^12` and is
/// flagged; from 2^14 up the result is 0.
pub fn reciprocal<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits();
    let nz = normalize(p, f, x, RECIPROCAL_LO, RECIPROCAL_HI, Sign::Magnitude)?;
    let class = |e: i32| 2f64.powi(-(e + 1));
    let s_norm = nz.by_exponent(p, f, 0.0, class, 0.0, 0.0)?;
    let s_out = nz.by_exponent(p, f, 2f64.powi(-RECIPROCAL_LO), class, 0.0, 0.0)?;
    let sigma = nz.combination(p, &[(nz.k + 1, 2u64.wrapping_neg())], 1)?;
    let signed = mul_many(p, &[(&s_norm, &sigma), (&s_out, &sigma)])?;
    let xn = mul_trunc(p, x, &signed[0], f)?; // |x| s, or 0 outside the domain
                                              // Below the domain the mantissa is set to 1, so the result is the saturated sigma 2^12.
    let below = nz.below_range(p)?;
    let one_below = p.scale(&below, fp.one())?;
    let z = p.add(&xn, &one_below)?;
    let y = reciprocal_of_mantissa(p, fp, &z)?;
    p.note_out_of_range(&below, "reciprocal")?;
    mul_trunc(p, &y, &signed[1], f)
}

/// `1/x` for `x >= 2^lo` known to be positive (softmax denominators): [`reciprocal`] without
/// the sign, normalised between `2^lo` and `2^hi` only (rows cost bit injections). Below `2^lo`
/// and for negative `x` the result saturates at `2^-lo` and is flagged; from `2^hi` up it is
/// 0, within the error target when `hi >= 14`.
pub(crate) fn reciprocal_positive<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    lo: i32,
    hi: i32,
) -> Result<P::Share> {
    let f = fp.frac_bits();
    let nz = normalize(p, f, x, lo, hi, Sign::NonNegative)?;
    let class = |e: i32| 2f64.powi(-(e + 1));
    let s_norm = nz.by_exponent(p, f, 0.0, class, 0.0, 0.0)?;
    let s_out = nz.by_exponent(p, f, 2f64.powi(-lo), class, 0.0, 2f64.powi(-lo))?;
    let xn = mul_trunc(p, x, &s_norm, f)?;
    let low = nz.combination(p, &[(0, 1), (nz.k + 1, 1)], 0)?; // below or negative
    let one_low = p.scale(&low, fp.one())?;
    let z = p.add(&xn, &one_low)?;
    let y = reciprocal_of_mantissa(p, fp, &z)?;
    p.note_out_of_range(&low, "reciprocal")?;
    mul_trunc(p, &y, &s_out, f)
}

/// The mantissa `x 2^-(e+1)` at `f + 4` bits for [`Sign::NonNegative`] normalisations, with
/// every input outside `[2^lo, 2^hi)` (or negative) mapped to 0.5; and that outside indicator.
fn mantissa<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    nz: &Normalized<P::Share>,
) -> Result<(P::Share, P::Share)> {
    let f = fp.frac_bits();
    // s = 2^-(e+1) down to 2^-(62-f) must be representable: it is encoded at 62 - f fractional
    // bits, where x s < 1 keeps the product below 2^62.
    let s_scale = 62 - f;
    let s = nz.by_exponent(p, s_scale, 0.0, |e| 2f64.powi(-(e + 1)), 0.0, 0.0)?;
    let xn = mul_trunc(p, x, &s, s_scale - EXTRA_BITS)?;
    let outside = nz.outside(p)?;
    let half = p.scale(&outside, encode_at(0.5, f + EXTRA_BITS)?)?;
    Ok((p.add(&xn, &half)?, outside))
}

/// `ln x` for `x` in `[2^lo, 2^hi)` (`scale + lo >= 0`, `scale + hi <= 62`), saturated at
/// `ln 2^lo` below (and for `x <= 0`) and at `ln 2^hi` above, those elements flagged.
pub(crate) fn log_between<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    lo: i32,
    hi: i32,
) -> Result<P::Share> {
    let f = fp.frac_bits();
    let nz = normalize(p, f, x, lo, hi, Sign::NonNegative)?;
    let (z, outside) = mantissa(p, fp, x, &nz)?;
    let mut coef = [0.0; 9];
    coef[0] = 0.75f64.ln();
    for (k, c) in coef.iter_mut().enumerate().skip(1) {
        *c = if k % 2 == 1 { 1.0 } else { -1.0 } / (k as f64 * 0.75f64.powi(k as i32));
    }
    let ln_z = series_at_three_quarters(p, fp, &z, &coef)?;
    // ln x = ln(x s) + (e+1) ln 2; outside, ln z = ln 0.5 and the exponent term makes the total
    // the saturated value.
    let ln2 = std::f64::consts::LN_2;
    let below = (lo + 1) as f64 * ln2;
    let exponent = nz.by_exponent(p, f, below, |e| (e + 1) as f64 * ln2, (hi + 1) as f64 * ln2, below)?;
    p.note_out_of_range(&outside, "log")?;
    p.add(&ln_z, &exponent)
}

/// Natural logarithm of any positive encodable `x` (down to one ulp): `ln x = ln(x s) +
/// (e+1) ln 2` with the normalisation of [`reciprocal`] over every bit and a degree-8 series
/// of `ln` around 0.75 on [0.5, 1). Error below `max(1e-3 |ln x|, 2^-12)`. For `x <= 0` the
/// result saturates at `ln 2^-f` and the elements are flagged.
pub fn log<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits() as i32;
    log_between(p, fp, x, -f, 62 - f)
}

/// Square root of any non-negative encodable `x` (0 exactly): `sqrt(x s) / sqrt(s)` with a
/// degree-8 series for the first factor and the second a linear combination of the
/// normalisation bits over every bit. Error below `max(1e-3 sqrt(x), 2^-12)`. Negative `x`
/// gives 0 and is flagged.
pub fn sqrt<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits() as i32;
    let nz = normalize(p, fp.frac_bits(), x, -f, 62 - f, Sign::NonNegative)?;
    let (z, _) = mantissa(p, fp, x, &nz)?;
    let r = series_at_three_quarters(p, fp, &z, &power_series(0.5))?;
    // Below 2^-f means x = 0; from 2^(62-f) up (a sum of two encodable values can get there)
    // the result is 0 and flagged, like a negative x: both are 1 - below[K].
    let k = nz.by_exponent(p, fp.frac_bits(), 0.0, |e| 2f64.powf((e + 1) as f64 / 2.0), 0.0, 0.0)?;
    let flags = nz.combination(p, &[(nz.k, 1u64.wrapping_neg())], 1)?;
    p.note_out_of_range(&flags, "sqrt")?;
    mul_trunc(p, &r, &k, fp.frac_bits())
}

/// Highest power of two of [`inv_sqrt`]'s normalisation: from 2^26 up `1/sqrt(x) < 2^-13`, and
/// 0 is within the error target.
const INV_SQRT_HI: i32 = 26;

/// `1/sqrt(x)` for any positive encodable `x`, as [`sqrt`] with the series of `u^-1/2`. Error
/// below `max(1e-3 / sqrt(x), 2^-12)`; 0 from `2^26` up. For `x <= 0` the result saturates at
/// `2^(f/2)` and the elements are flagged.
pub fn inv_sqrt<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits() as i32;
    let hi = INV_SQRT_HI.min(62 - f);
    let nz = normalize(p, fp.frac_bits(), x, -f, hi, Sign::NonNegative)?;
    let (z, _) = mantissa(p, fp, x, &nz)?;
    let r = series_at_three_quarters(p, fp, &z, &power_series(-0.5))?;
    // Outside, z = 0.5 and r = sqrt(2): the saturated value 2^(f/2) is sqrt(2) times this.
    let sat = 2f64.powf(f as f64 / 2.0) / 2f64.sqrt();
    let k = nz.by_exponent(p, fp.frac_bits(), sat, |e| 2f64.powf(-(e + 1) as f64 / 2.0), 0.0, sat)?;
    let flags = nz.combination(p, &[(0, 1), (nz.k + 1, 1)], 0)?; // zero or negative
    p.note_out_of_range(&flags, "inv_sqrt")?;
    mul_trunc(p, &r, &k, fp.frac_bits())
}

/// Lowest power of two of [`div`]'s divisor normalisation; below, the quotient saturates.
const DIV_LO: i32 = -12;
/// Highest: from 2^30 up, `|a / b| < 2^(49-2f-30)` (below 2^-12 at 14 to 18 bits), and 0 is
/// within the error target.
const DIV_HI: i32 = 30;
/// Divisors from `2^DIV_FINE` up are applied at `DIV_EXTRA_BITS` more fractional bits, where
/// their `2^-(e+1)` down to 2^-30 is exact.
const DIV_FINE: i32 = 2;
const DIV_EXTRA_BITS: u32 = 14;

/// `a / b` elementwise, `b` of either sign, broadcast to `a`'s shape (same rank, size-1
/// dimensions repeat).
///
/// Method: `b` is located between 2^-12 and 2^30 (by `|b|`, as in [`reciprocal`]), its
/// mantissa `|b| s` in [0.5, 1) (with `s = 2^-(e+1)` at `62 - f` fractional bits, exact over the
/// whole range, the mantissa kept at `f + 4` bits) goes through the minimax linear guess and
/// two Newton steps to `y = 1/(|b| s)` in (1, 2] (relative error 1.2e-5),
/// `t = a y`, and the quotient is `t sigma s`: a multiplication by an exact power of two, taken
/// at `f` fractional bits for `|b| < 4` and at `f + 14` above (where `2^-(e+1)` would round
/// at `f` bits), in one round for both. So the quotient is accurate to its own scale, not to
/// `1/b`'s: `100000 / 20000` is 5 (a product with a rounded reciprocal gave 0).
///
/// Domain: `|a| < 2^(49-2f)` (2^17 at 16 bits) and `|a / b| < 2^(62-2f)`. Error below
/// `2e-5 |a / b| + 2 ulp`. Divisors with `|b| < 2^-12` (zero included) give
/// `sign(b) a 2^12` and are flagged; from 2^30 up the result is 0.
pub fn div<P: Protocol>(p: &mut P, fp: FixedPoint, a: &P::Share, b: &P::Share) -> Result<P::Share> {
    let f = fp.frac_bits();
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    if sa.len() != sb.len() || sa.iter().zip(&sb).any(|(&x, &y)| y != x && y != 1) {
        return Err(MpcError::Usage(format!("div: divisor of shape {sb:?} does not broadcast to {sa:?}")));
    }
    let nz = normalize(p, f, b, DIV_LO, DIV_HI, Sign::Magnitude)?;
    // 2^-(e+1) at 61 - f bits: |b| s is below 1, or exactly 1 for a negative power of two (its
    // class is read from |b| - 1 ulp), and the product at 61 bits stays below 2^62.
    let s_scale = 61 - f;
    let class = |e: i32| 2f64.powi(-(e + 1));
    let s_norm = nz.by_exponent(p, s_scale, 0.0, class, 0.0, 0.0)?;
    let coarse = |e: i32| if e < DIV_FINE { class(e) } else { 0.0 };
    let fine = |e: i32| if e >= DIV_FINE { class(e) } else { 0.0 };
    let s_coarse = nz.by_exponent(p, f, 2f64.powi(-DIV_LO), coarse, 0.0, 0.0)?;
    let s_fine = nz.by_exponent(p, f + DIV_EXTRA_BITS, 0.0, fine, 0.0, 0.0)?;
    let sigma = nz.combination(p, &[(nz.k + 1, 2u64.wrapping_neg())], 1)?;
    let signed = mul_many(p, &[(&s_norm, &sigma), (&s_coarse, &sigma), (&s_fine, &sigma)])?;
    // |b| s in [0.5, 1]: the product is at 61 fractional bits; kept at f + 4 bits,
    // where the minimax linear guess and two Newton steps give 1/(|b| s) to 1.2e-5.
    let work = FixedPoint::new(f + EXTRA_BITS);
    let bn = mul_trunc(p, b, &signed[0], s_scale - EXTRA_BITS)?;
    let below = nz.below_range(p)?;
    let one_below = p.scale(&below, work.one())?;
    let z = p.add(&bn, &one_below)?;
    let y = reciprocal_in_range(p, work, &z, 0.5, 1.0, 2)?;
    p.note_out_of_range(&below, "a divisor")?;
    let wide = |p: &P, t: &P::Share| p.linear(t, &Broadcast(&sa));
    let (y, sc, sf) = (wide(p, &y)?, wide(p, &signed[1])?, wide(p, &signed[2])?);
    let t = mul_trunc(p, a, &y, work.frac_bits())?;
    let parts = mul_many(p, &[(&t, &sc), (&t, &sf)])?;
    let coarse_part = p.truncate(&parts[0], f)?;
    let fine_part = p.truncate(&parts[1], f + DIV_EXTRA_BITS)?;
    p.add(&coarse_part, &fine_part)
}
