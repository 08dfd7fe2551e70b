//! Layer normalisation on shares, robust over the whole range a row's deviations can take.

use crate::approx::{mul_trunc, mul_trunc_many, EXTRA_BITS};
use crate::maps::Widen;
use crate::normalize::{encode_at, normalize, power_series, series_at_three_quarters, Sign};
use musket_core::maps;
use musket_core::{MpcError, Protocol, Result, Share};
use musket_ring::FixedPoint;

/// Layer normalisation over the last axis (`n` entries) with secret `gamma` and `beta` of that
/// axis' size: `(x - mean) / sqrt(var + eps) * gamma + beta`.
///
/// Domain: every deviation from the row mean below `2^(31-f)` in magnitude (its square must fit
/// the ring), any variance (no lower or upper limit), `n <= 2^16`. Error below
/// `2^-10 (1 + |gamma|) + |gamma| (2 ulp + |sum x| 2^-(f+13)) / sqrt(var + eps) +
/// |gamma y| n 2^-2f / (var + eps)`, `y` the normalised value: the second term is the
/// rounding of the mean (and of `1/n` in it), amplified for rows of tiny variance; the third the
/// bias of the squares' truncation, which only long rows of tiny variance notice.
///
/// Method: the normalisation is scale invariant, `d / sqrt(var + eps) = d sqrt(n) / sqrt(v)`
/// with `v = sum d^2 + n eps`, so no division by `n` is needed. Each square is truncated by
/// `t = ceil(log2 n)` bits, so the row sum of `n` of them cannot wrap; `v` (at `2f - t` bits)
/// is located between powers of two over every bit it can have (one bit decomposition per row,
/// cheap next to the row), `v 2^-(e+1)` in [0.5, 1) goes through the series of `u^-1/2`, and
/// its product with the factor `sqrt(n) 2^-(e+1)/2` is formed per row (at two scales, as the
/// factor spans about 31 powers of two) and applied to `d` at 62 - f - log2(sqrt n) - 2
/// fractional bits, where `|d| sqrt(n) 2^-(e+1)/2 <= sqrt(n)` keeps the product in range:
/// three products per element (the square, the normalisation, gamma). A variance of
/// `2^30` (activations in the tens of thousands) or of `2^-20` is as accurate as one near 1.
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
    if n == 0 || n > 1 << 16 {
        return Err(MpcError::Usage(format!("layer_norm over {n} entries (1 to 65536 supported)")));
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(MpcError::Usage("layer_norm: epsilon must be a non-negative number".into()));
    }
    let f = fp.frac_bits();
    let mut keep = shape.clone();
    keep[rank - 1] = 1;
    let mut lane = vec![1; rank];
    lane[rank - 1] = n;
    let sum = p.sum_axis(x, rank - 1)?;
    let mean = crate::linear::scale_public_fine(p, fp, &sum, 1.0 / n as f64)?;
    let d = p.linear2(x, &mean, &maps::SubMapped(Widen { keep: &keep, shape: &shape }))?;

    // v = sum (d^2 / 2^t) + n eps, at 2f - t fractional bits: each truncated square is below
    // 2^(62-t), so the sum of n <= 2^t of them stays below 2^62. Truncating each square costs
    // a bias of at most n ulps of 2^-(2f-t), i.e. n^2 2^-2f relative to the sum's unit.
    let t = (usize::BITS - (n - 1).leading_zeros()).min(2 * f - 8);
    let v_scale = 2 * f - t;
    let sq = if t > 0 { p.mul_truncate(&d, &d, t)? } else { p.mul(&d, &d)? };
    let ss = p.sum_axis(&sq, rank - 1)?;
    let n_eps = encode_at(n as f64 * eps, v_scale)?;
    let v = p.add_public(&ss, &crate::tensor_ops::filled(ss.shape(), n_eps))?;

    // Every bit of v takes part: classes 2^e for e from -(2f-t) (one ulp) to 62 - (2f-t).
    let lo = -(v_scale as i32);
    let hi = 62 - v_scale as i32;
    let nz = normalize(p, v_scale, &v, lo, hi, Sign::NonNegative)?;
    // The mantissa v 2^-(e+1) at f + 8 bits (the series works 4 bits above its output, which
    // is f + 4): 2^-(e+1) at 62 - v_scale bits makes the product scale 62, below 2^62 as the
    // mantissa is below 1. A zero v (a constant row with eps too small to encode) has d = 0:
    // any mantissa will do, 0.5 is used.
    let s_scale = 62 - v_scale;
    let s = nz.by_exponent(p, s_scale, 0.0, |e| 2f64.powi(-(e + 1)), 0.0, 0.0)?;
    let work = FixedPoint::new(f + EXTRA_BITS);
    let vn = mul_trunc(p, &v, &s, 62 - (work.frac_bits() + EXTRA_BITS))?;
    let zero_v = nz.below_range(p)?;
    let half = p.scale(&zero_v, encode_at(0.5, work.frac_bits() + EXTRA_BITS)?)?;
    let vn = p.add(&vn, &half)?;
    let r = series_at_three_quarters(p, work, &vn, &power_series(-0.5))?; // at f + 4 bits

    // g = sqrt(n) 2^-(e+1)/2, so that d g r is the normalised value. g r is formed per row, so
    // that each element needs one product, d (g r), at g_scale bits: |d g| <= sqrt(n) (v >= d^2)
    // and r <= sqrt 2, so d g r at f + g_scale bits stays below 2^61. g spans about 31 powers
    // of two, too many for one product with r's f + 4 bits: the classes with g below
    // split = 2^(hl - 3) are multiplied at g_scale bits (below 2^61.5 with r) and truncated by
    // f + 4, those from split up at big_scale bits (at least 2^(54 + hl - 2f) units: 2^19 at
    // f = 18 and n = 2, a relative 2^-19; below 2^61 with r), truncated likewise and shifted
    // back up, exactly.
    let half_log_n = (usize::BITS - n.leading_zeros()).div_ceil(2);
    let g_scale = 62 - f - half_log_n - 2;
    let sqrt_n = (n as f64).sqrt();
    let g_of = |e: i32| sqrt_n * 2f64.powf(-(e + 1) as f64 / 2.0);
    let split = 2f64.powi(half_log_n as i32 - 3);
    let r_bits = work.frac_bits();
    let widest = (g_of(lo) * std::f64::consts::SQRT_2).log2().ceil() as u32;
    let big_scale = 61 - r_bits - widest;
    let g_small =
        nz.by_exponent(p, g_scale, 0.0, |e| if g_of(e) < split { g_of(e) } else { 0.0 }, 0.0, 0.0)?;
    let g_big =
        nz.by_exponent(p, big_scale, 0.0, |e| if g_of(e) >= split { g_of(e) } else { 0.0 }, 0.0, 0.0)?;
    let parts = mul_trunc_many(p, &[(&g_small, &r), (&g_big, &r)], r_bits)?;
    let big = p.scale(&parts[1], 1u64 << (g_scale - big_scale))?;
    let gr = p.add(&parts[0], &big)?;
    let gr_wide = p.linear(&gr, &Widen { keep: &keep, shape: &shape })?;
    let normed = mul_trunc(p, &d, &gr_wide, g_scale)?; // at f bits
    let gamma_wide = p.linear(gamma, &Widen { keep: &lane, shape: &shape })?;
    let scaled = mul_trunc(p, &normed, &gamma_wide, f)?;
    p.linear2(&scaled, beta, &maps::AddMapped(Widen { keep: &lane, shape: &shape }))
}
