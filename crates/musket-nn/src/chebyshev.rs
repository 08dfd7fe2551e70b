//! Chebyshev series on shares with as few truncated products as the degree allows.
//!
//! `sum_k c_k T_k(v)` needs every `T_k` up to the degree `d`, but only some of them have to
//! exist as shares: a final sum of products (`Protocol::dot_truncate`, in 3PC the cost of one
//! truncated product however many pairs it sums) can form any `T_k` with `k = a + b` from
//! `T_(a+b) = 2 T_a T_b - T_(b-a)` when `T_a` and `T_b` exist. So only a set of polynomials
//! whose pairwise sums cover `0..=d` is formed, each with one truncated product of earlier ones:
//! for degree 10 that is `T_2, T_4, T_5` (three products in three rounds) where the doubling
//! formulas alone would form `T_2 … T_5` (four). Products that share a factor are summed into one
//! operand first (`T_5 (a T_1 + b T_2 + c T_4 + e T_5)`), so the 2PC back end, which pays per
//! pair, also multiplies less.

use crate::normalize::encode_at;
use crate::tensor_ops::{concat_shares, filled, split_share};
use musket_core::{MpcError, Protocol, Result, Share};
use musket_ring::FixedPoint;
use std::collections::BTreeMap;

/// A polynomial to form: its degree, the product's two operands and the added terms.
type Pending<S> = (usize, S, S, S);

/// How a polynomial that is multiplied again is formed from lower ones with one product:
/// `T_k = 2 T_left (sum of w T_j over right) + sum of w T_j over correction` (`T_0` = 1).
struct Formed {
    k: usize,
    left: usize,
    right: &'static [(usize, i64)],
    correction: &'static [(usize, i64)],
}

const FORMS: [Formed; 5] = [
    Formed { k: 2, left: 1, right: &[(1, 1)], correction: &[(0, -1)] },
    Formed { k: 3, left: 1, right: &[(2, 1)], correction: &[(1, -1)] },
    Formed { k: 4, left: 2, right: &[(2, 1)], correction: &[(0, -1)] },
    // T5 = 2 T1 T4 - T3 = 2 T1 T4 - (2 T1 T2 - T1): one product, T3 never formed.
    Formed { k: 5, left: 1, right: &[(4, 1), (2, -1)], correction: &[(1, 1)] },
    Formed { k: 6, left: 2, right: &[(4, 1)], correction: &[(2, -1)] },
];

/// The polynomials formed for degree `d` (4 to 12): with `T_0` and `T_1`, every degree up to
/// `d` is the sum of two of them.
fn formed_for(d: usize) -> &'static [usize] {
    match d {
        0..=4 => &[2],
        5 | 6 => &[2, 3],
        7 | 8 => &[2, 3, 4],
        9 | 10 => &[2, 4, 5],
        _ => &[2, 4, 5, 6],
    }
}

/// Adds `w T_k` to `products` (pairs `(a, b)`, `a <= b`, of available polynomials) and `linear`
/// (available polynomials, `T_0` = 1): `T_k` itself if available, else `2 T_a T_b - T_(b-a)`
/// for the most balanced available `a + b = k`.
fn express(
    k: usize,
    w: f64,
    available: &[usize],
    products: &mut BTreeMap<(usize, usize), f64>,
    linear: &mut BTreeMap<usize, f64>,
) {
    let has = |j: usize| j <= 1 || available.contains(&j);
    if has(k) {
        *linear.entry(k).or_default() += w;
        return;
    }
    let a = (1..=k / 2).rev().find(|&a| has(a) && has(k - a)).expect("formed_for covers every degree");
    *products.entry((a, k - a)).or_default() += 2.0 * w;
    express(k - 2 * a, -w, available, products, linear);
}

/// `sum_k c_k T_k(v)` for `v` in [-1, 1] given at `v_bits` fractional bits (`f` to `f + 4`: a
/// caller whose `v` is an input scaled by a power of two reads it at more bits instead of
/// truncating), for 5 to 13 coefficients (degree 4 to 12); the result is at `f` bits. The
/// formed polynomials are truncated back to `f` bits, level by level; the sum is one
/// `dot_truncate` at `2f + v_bits` bits (`|T_k| <= 1` keeps every term far below 2^62).
/// Degree 10: four rounds of products (three formed polynomials, then the sum); degree 12:
/// four as well, with four formed. Rounding: a few units of `2^-f` per formed polynomial,
/// weighted by the coefficients, and the weights of the sum's products rounded at `f` or
/// `v_bits` fractional bits. Refused (a usage error, never a wrapped sum) when
/// `2f + v_bits > 61`: softmax's exponential (a series at `f + 2` bits with `v` at `f + 3`)
/// works up to 18 fractional bits, sigmoid and GELU up to 20.
pub(crate) fn chebyshev_series<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    v: &P::Share,
    v_bits: u32,
    coefs: &[f64],
) -> Result<P::Share> {
    let d = coefs.len().wrapping_sub(1);
    let f = fp.frac_bits();
    if !(4..=12).contains(&d) {
        return Err(MpcError::Usage("chebyshev_series takes 5 to 13 coefficients".into()));
    }
    if !(f..=f + 4).contains(&v_bits) {
        return Err(MpcError::Usage(format!("chebyshev_series: v at {v_bits} bits (f = {f})")));
    }
    // The sum is taken at 2f + v_bits bits and reaches the sum of the coefficients' magnitudes
    // (below 1 for every table here): it must stay below the truncation's 2^62.
    if 2 * f + v_bits > 61 {
        return Err(MpcError::Usage(format!(
            "chebyshev_series at {f} fractional bits (v at {v_bits}): its sum would exceed the ring"
        )));
    }
    let shape = v.shape().to_vec();
    let bits_of = |k: usize| if k == 1 { v_bits } else { f };
    let zero = p.scale(v, 0)?;
    let available = formed_for(d);
    let forms: Vec<&Formed> = available
        .iter()
        .map(|k| FORMS.iter().find(|m| m.k == *k).expect("every formed degree has a form"))
        .collect();

    // Weighted sum of available polynomials at `scale` bits (T_0 as the constant), one pass
    // over the elements per term (the terms are many, the elements millions: this is most of
    // the series' local work).
    let weighted =
        |p: &mut P, t: &BTreeMap<usize, P::Share>, terms: &[(usize, f64)], scale: u32| -> Result<P::Share> {
            let mut acc: Option<P::Share> = None;
            let mut constant = 0u64;
            for &(j, w) in terms {
                if j == 0 {
                    constant = constant.wrapping_add(encode_at(w, scale)?);
                    continue;
                }
                let c = encode_at(w, scale - bits_of(j))?;
                acc = Some(match acc {
                    None => p.scale(&t[&j], c)?,
                    Some(a) => p.linear2(&a, &t[&j], &musket_core::maps::AddScaled(c))?,
                });
            }
            let acc = match acc {
                Some(a) => a,
                None => zero.clone(),
            };
            if constant == 0 {
                return Ok(acc);
            }
            p.add_public(&acc, &filled(&shape, constant))
        };

    let mut t: BTreeMap<usize, P::Share> = BTreeMap::from([(1, v.clone())]);
    let mut level: BTreeMap<usize, usize> = BTreeMap::from([(0, 0), (1, 0)]);
    for m in &forms {
        let below = m.right.iter().map(|(j, _)| level[j]).chain([level[&m.left]]).max().unwrap_or(0);
        level.insert(m.k, below + 1);
    }
    let depth = forms.iter().map(|m| level[&m.k]).max().unwrap_or(0);
    for l in 1..=depth {
        // One truncated product per formed polynomial of this level, batched by product scale.
        let mut by_scale: BTreeMap<u32, Vec<Pending<P::Share>>> = BTreeMap::new();
        for m in forms.iter().filter(|m| level[&m.k] == l) {
            let right_bits = m.right.iter().map(|(j, _)| bits_of(*j)).max().unwrap_or(f);
            let g_bits = (f + v_bits - bits_of(m.left)).max(right_bits);
            let scale = bits_of(m.left) + g_bits;
            let right: Vec<(usize, f64)> = m.right.iter().map(|&(j, w)| (j, 2.0 * w as f64)).collect();
            let g = weighted(p, &t, &right, g_bits)?;
            let correction: Vec<(usize, f64)> = m.correction.iter().map(|&(j, w)| (j, w as f64)).collect();
            let extra = weighted(p, &t, &correction, scale)?;
            by_scale.entry(scale).or_default().push((m.k, t[&m.left].clone(), g, extra));
        }
        for (scale, group) in by_scale {
            if let [(k, left, right, extra)] = group.as_slice() {
                let out = p.dot_truncate(&[(left, right)], Some(extra), scale - f)?;
                t.insert(*k, out);
                continue;
            }
            let lefts: Vec<&P::Share> = group.iter().map(|g| &g.1).collect();
            let rights: Vec<&P::Share> = group.iter().map(|g| &g.2).collect();
            let extras: Vec<&P::Share> = group.iter().map(|g| &g.3).collect();
            let (a, b, e) =
                (concat_shares(p, &lefts)?, concat_shares(p, &rights)?, concat_shares(p, &extras)?);
            let out = p.dot_truncate(&[(&a, &b)], Some(&e), scale - f)?;
            let parts = split_share(p, &out, &vec![shape.clone(); group.len()])?;
            for (g, part) in group.iter().zip(parts) {
                t.insert(g.0, part);
            }
        }
    }

    // The sum: every T_k as products and multiples of the formed ones.
    let mut products = BTreeMap::new();
    let mut linear = BTreeMap::new();
    for (k, &c) in coefs.iter().enumerate() {
        express(k, c, available, &mut products, &mut linear);
    }
    let sum_bits = 2 * f + v_bits;
    // Products sharing a factor become one pair: greedily take the polynomial in most of the
    // remaining products as the common factor.
    let mut pairs_owned: Vec<(P::Share, P::Share)> = Vec::new();
    while !products.is_empty() {
        let mut count: BTreeMap<usize, usize> = BTreeMap::new();
        for &(a, b) in products.keys() {
            *count.entry(a).or_default() += 1;
            if b != a {
                *count.entry(b).or_default() += 1;
            }
        }
        let (&x, _) = count.iter().max_by_key(|(k, n)| (**n, **k)).expect("products left");
        let mine: Vec<((usize, usize), f64)> =
            products.iter().filter(|((a, b), _)| *a == x || *b == x).map(|(k, w)| (*k, *w)).collect();
        let terms: Vec<(usize, f64)> =
            mine.iter().map(|&((a, b), w)| (if a == x { b } else { a }, w)).collect();
        for (k, _) in &mine {
            products.remove(k);
        }
        let g = weighted(p, &t, &terms, sum_bits - bits_of(x))?;
        pairs_owned.push((t[&x].clone(), g));
    }
    let linear: Vec<(usize, f64)> = linear.into_iter().collect();
    let extra = weighted(p, &t, &linear, sum_bits)?;
    let pairs: Vec<(&P::Share, &P::Share)> = pairs_owned.iter().map(|(a, b)| (a, b)).collect();
    p.dot_truncate(&pairs, Some(&extra), sum_bits - f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every degree up to 12 is expressible from the formed polynomials, and the expressions
    /// are exact: evaluating them in f64 gives the Chebyshev polynomials.
    #[test]
    fn expressions_reproduce_every_chebyshev_polynomial() {
        let cheb = |k: usize, v: f64| (k as f64 * v.acos()).cos();
        for d in 4..=12 {
            let available = formed_for(d);
            // The forms themselves.
            for m in FORMS.iter().filter(|m| available.contains(&m.k)) {
                for &v in &[-1.0, -0.3, 0.0, 0.55, 1.0] {
                    let right: f64 = m.right.iter().map(|&(j, w)| w as f64 * cheb(j, v)).sum();
                    let corr: f64 = m.correction.iter().map(|&(j, w)| w as f64 * cheb(j, v)).sum();
                    assert!((2.0 * cheb(m.left, v) * right + corr - cheb(m.k, v)).abs() < 1e-12);
                }
            }
            for k in 0..=d {
                let (mut prods, mut lin) = (BTreeMap::new(), BTreeMap::new());
                express(k, 1.0, available, &mut prods, &mut lin);
                for &v in &[-0.9, -0.2, 0.4, 0.99] {
                    let got: f64 = prods.iter().map(|(&(a, b), w)| w * cheb(a, v) * cheb(b, v)).sum::<f64>()
                        + lin.iter().map(|(&j, w)| w * cheb(j, v)).sum::<f64>();
                    assert!((got - cheb(k, v)).abs() < 1e-12, "d {d} k {k}");
                }
                for (a, b) in prods.keys() {
                    assert!(*a <= 1 || available.contains(a), "d {d} k {k}: T{a} not formed");
                    assert!(*b <= 1 || available.contains(b), "d {d} k {k}: T{b} not formed");
                }
            }
        }
    }
}
