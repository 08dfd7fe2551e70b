//! Carry-less (GF(2)[x]) products of 64-bit words, for the binary-field proofs of the
//! malicious-secure back end. No maintained crate exposes batched carry-less products; on
//! x86-64 with PCLMULQDQ one instruction does each, chosen at run time; elsewhere a portable
//! 4-bit-window version.

/// Carry-less product of two words, portable.
pub fn clmul_portable(a: u64, b: u64) -> u128 {
    let mut table = [0u128; 16];
    for i in 1..16usize {
        table[i] = if i & 1 == 1 { table[i - 1] ^ a as u128 } else { table[i >> 1] << 1 };
    }
    let mut acc = 0u128;
    for k in (0..16).rev() {
        acc = (acc << 4) ^ table[((b >> (4 * k)) & 15) as usize];
    }
    acc
}

fn has_pclmul() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("pclmulqdq") && std::arch::is_x86_feature_detected!("sse2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The widest carry-less vectors this CPU has (VPCLMULQDQ with AVX-512 or AVX2), if any.
#[cfg(target_arch = "x86_64")]
fn wide() -> Option<super::x86_clmul::Width> {
    super::x86_clmul::Width::best()
}

/// XOR of the carry-less products `a_i * b_i`.
pub fn clmul_dot(a: &[u64], b: &[u64]) -> u128 {
    #[cfg(target_arch = "x86_64")]
    if let Some(width) = wide() {
        return super::x86_clmul::clmul_dot_wide(width, a, b);
    }
    #[cfg(target_arch = "x86_64")]
    if has_pclmul() {
        return super::x86::clmul_dot_pclmul(a, b);
    }
    a.iter().zip(b).fold(0, |acc, (x, y)| acc ^ clmul_portable(*x, *y))
}

/// XOR of the carry-less products `w_i * (x_i AND y_i)`: a weighted sum of AND words, the
/// step of the packed binary proof that replaces one product per bit by one per word.
pub fn clmul_dot_and(w: &[u64], x: &[u64], y: &[u64]) -> u128 {
    #[cfg(target_arch = "x86_64")]
    if let Some(width) = wide() {
        return super::x86_clmul::clmul_dot_and_wide(width, w, x, y);
    }
    #[cfg(target_arch = "x86_64")]
    if has_pclmul() {
        return super::x86::clmul_dot_and_pclmul(w, x, y);
    }
    w.iter().zip(x).zip(y).fold(0, |acc, ((c, a), b)| acc ^ clmul_portable(*c, a & b))
}

/// The weighted sums of AND words over every point of `{0, 1, inf}^m` at once:
/// `acc[e] ^= sum_i w_i * (x_e(i) AND y_e(i))`, where row `u` of `xs` (`ys`) holds the values
/// at the corner `u` of `{0, 1}^m` (the bit `m - 1 - k` of `u` is coordinate `k`), and
/// `x_e` for `e` written in base 3 with digits `d_0 .. d_(m-1)` (`d_0` most significant) is
/// the value at the point whose coordinate `k` is `d_k`: corners as given, and coordinate
/// `inf` (digit 2) the XOR of the values at 0 and at 1 there, the leading coefficient of the
/// line through them over GF(2). The packed binary proof's levels from these points need
/// `3^m` sums where the pairs of corners need `4^m` (see `musket_core::dzkp_packed`).
/// Written by hand: no crate forms carry-less products over extended points.
///
/// With `skip_last_one`, the points whose last digit is 1 (`e % 3 == 1`) are left out and
/// their sums untouched: a prover that knows the claim a level splits derives them (see
/// `musket_core::dzkp_packed`), a third fewer products.
///
/// # Panics
/// If `xs` and `ys` do not both hold `2^m` rows of at least `w.len()` words, or `acc` does
/// not hold `3^m` sums.
pub fn clmul_dot_and_extended(
    w: &[u64],
    xs: &[&[u64]],
    ys: &[&[u64]],
    skip_last_one: bool,
    acc: &mut [u128],
) {
    let corners = xs.len();
    assert!(corners.is_power_of_two() && ys.len() == corners, "clmul_dot_and_extended: rows");
    assert_eq!(acc.len(), 3usize.pow(corners.trailing_zeros()), "clmul_dot_and_extended: sums");
    let n = w.len();
    assert!(xs.iter().chain(ys).all(|r| r.len() >= n), "clmul_dot_and_extended: row lengths");
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(width) = wide() {
        done = super::x86_clmul::clmul_dot_and_extended_wide(width, w, xs, ys, skip_last_one, acc);
    }
    extended_portable(w, xs, ys, skip_last_one, acc, done);
}

/// The words from `from` on of [`clmul_dot_and_extended`], one at a time (its bounds
/// checked by the caller).
fn extended_portable(
    w: &[u64],
    xs: &[&[u64]],
    ys: &[&[u64]],
    skip_last_one: bool,
    acc: &mut [u128],
    from: usize,
) {
    let corners = xs.len();
    let mut scratch = vec![0u64; 4 * corners];
    let (mut x, mut y) = (vec![0u64; corners], vec![0u64; corners]);
    for i in from..w.len() {
        for u in 0..corners {
            x[u] = xs[u][i];
            y[u] = ys[u][i];
        }
        extend_and_accumulate(w[i], &x, &y, skip_last_one, &mut scratch, acc);
    }
}

/// One word of [`clmul_dot_and_extended`]: the corners' values `x`, `y` extended (the top
/// coordinate's halves, then their XOR) down to single points.
fn extend_and_accumulate(
    w: u64,
    x: &[u64],
    y: &[u64],
    skip_last_one: bool,
    scratch: &mut [u64],
    acc: &mut [u128],
) {
    if x.len() == 1 {
        acc[0] ^= clmul(w, x[0] & y[0]);
        return;
    }
    let half = x.len() / 2;
    let third = acc.len() / 3;
    let (acc0, rest) = acc.split_at_mut(third);
    let (acc1, acc2) = rest.split_at_mut(third);
    extend_and_accumulate(w, &x[..half], &y[..half], skip_last_one, scratch, acc0);
    // The last digit at 1, unless left out.
    if !(skip_last_one && half == 1) {
        extend_and_accumulate(w, &x[half..], &y[half..], skip_last_one, scratch, acc1);
    }
    let (mx, rest) = scratch.split_at_mut(half);
    let (my, rest) = rest.split_at_mut(half);
    for k in 0..half {
        mx[k] = x[k] ^ x[half + k];
        my[k] = y[k] ^ y[half + k];
    }
    extend_and_accumulate(w, mx, my, skip_last_one, rest, acc2);
}

/// Carry-less product of two words (PCLMULQDQ where the CPU has it).
pub fn clmul(a: u64, b: u64) -> u128 {
    #[cfg(target_arch = "x86_64")]
    if has_pclmul() {
        return super::x86::clmul_pclmul(a, b);
    }
    clmul_portable(a, b)
}

/// `lo_i ^= t * (lo_i ^ hi_i)` in GF(2^64) = F_2\[x\] / (x^64 + x^4 + x^3 + x + 1) (elements
/// as bit vectors, bit `i` the coefficient of `x^i`): the fold of a binary proof's vector,
/// `lo + t (hi - lo)`. VPCLMULQDQ where the CPU has it, eight elements an iteration.
///
/// # Panics
/// If the slices differ in length.
pub fn gf64_fold_into(lo: &mut [u64], hi: &[u64], t: u64) {
    assert_eq!(lo.len(), hi.len(), "gf64_fold_into: lengths");
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(width) = wide() {
        done = super::x86_clmul::gf64_fold_wide(width, lo, hi, t);
    }
    for (l, h) in lo[done..].iter_mut().zip(&hi[done..]) {
        *l ^= gf64_reduce(clmul(t, *l ^ *h));
    }
}

/// A carry-less product reduced modulo `x^64 + x^4 + x^3 + x + 1`.
pub fn gf64_reduce(p: u128) -> u64 {
    let (lo, hi) = (p as u64, (p >> 64) as u64);
    // hi * x^64 = hi * (x^4 + x^3 + x + 1); the bits shifted past x^63 are folded once more.
    let spill = (hi >> 63) ^ (hi >> 61) ^ (hi >> 60);
    let fold = |v: u64| v ^ (v << 1) ^ (v << 3) ^ (v << 4);
    lo ^ fold(hi) ^ fold(spill)
}

/// `v[b] = v[b] X^b` for the 64 lanes of a block, in GF(2^64) modulo
/// `x^64 + x^4 + x^3 + x + 1` (the lane weights of the packed binary proof). AVX-512 or AVX2
/// where the CPU has them.
pub fn gf64_times_x_lanes(v: &mut [u64; 64]) {
    #[cfg(target_arch = "x86_64")]
    if super::x86_clmul::gf64_times_x_lanes_wide(v) {
        return;
    }
    for (b, o) in v.iter_mut().enumerate() {
        *o = gf64_reduce((*o as u128) << b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn masked_and_single_products_match_the_portable_one() {
        let mut rng = rand::thread_rng();
        let w: Vec<u64> = (0..77).map(|_| rng.gen()).collect();
        let x: Vec<u64> = (0..77).map(|_| rng.gen()).collect();
        let y: Vec<u64> = (0..77).map(|_| rng.gen()).collect();
        let want = (0..77).fold(0u128, |acc, i| acc ^ clmul_portable(w[i], x[i] & y[i]));
        assert_eq!(clmul_dot_and(&w, &x, &y), want);
        for i in 0..77 {
            assert_eq!(clmul(w[i], x[i]), clmul_portable(w[i], x[i]));
        }
    }

    #[test]
    fn folds_match_their_definition() {
        let mut rng = rand::thread_rng();
        for n in [0usize, 5, 8, 77] {
            let lo: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
            let hi: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
            let t: u64 = rng.gen();
            let mut got = lo.clone();
            gf64_fold_into(&mut got, &hi, t);
            for i in 0..n {
                // The reduction by the bit-serial definition: x^64 = x^4 + x^3 + x + 1.
                let mut p = clmul_portable(t, lo[i] ^ hi[i]);
                for j in (64..128).rev() {
                    if (p >> j) & 1 == 1 {
                        p ^= (1u128 << j) ^ (0b11011u128 << (j - 64));
                    }
                }
                assert_eq!(got[i], lo[i] ^ p as u64, "element {i} of {n}");
            }
        }
    }

    #[test]
    fn lane_weights_match_their_definition() {
        let mut rng = rand::thread_rng();
        for _ in 0..20 {
            let v: [u64; 64] = std::array::from_fn(|_| rng.gen());
            let mut got = v;
            gf64_times_x_lanes(&mut got);
            for b in 0..64 {
                assert_eq!(got[b], gf64_reduce(clmul_portable(v[b], 1u64 << b)), "lane {b}");
            }
        }
    }

    /// Against the definition: each point's values formed digit by digit, then the plain
    /// weighted sum of its AND words; lengths around the vector width.
    #[test]
    fn extended_sums_match_their_definition() {
        let mut rng = rand::thread_rng();
        // Every path: no digit, one and two (with and without a tail), three to six with
        // partial, whole and several blocks of eight vectors.
        let cases = [
            (0usize, 9usize),
            (1, 8),
            (1, 13),
            (2, 17),
            (3, 3),
            (3, 16),
            (4, 40),
            (4, 200),
            (5, 25),
            (5, 150),
            (6, 11),
            (6, 70),
            (6, 140),
        ];
        for (m, n) in cases {
            let corners = 1usize << m;
            let w: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
            let rows = |rng: &mut rand::rngs::ThreadRng| -> Vec<Vec<u64>> {
                (0..corners).map(|_| (0..n).map(|_| rng.gen()).collect()).collect()
            };
            let (xr, yr) = (rows(&mut rng), rows(&mut rng));
            // The value at point `e` of word `i`: the XOR of the corners it spans.
            let at = |v: &[Vec<u64>], e: usize, i: usize| -> u64 {
                let digits: Vec<usize> = (0..m).map(|k| (e / 3usize.pow((m - 1 - k) as u32)) % 3).collect();
                (0..corners)
                    .filter(|u| {
                        digits.iter().enumerate().all(|(k, &d)| {
                            let bit = (u >> (m - 1 - k)) & 1;
                            d == 2 || d == bit
                        })
                    })
                    .fold(0, |a, u| a ^ v[u][i])
            };
            let points = 3usize.pow(m as u32);
            let xs: Vec<&[u64]> = xr.iter().map(|r| &r[..]).collect();
            let ys: Vec<&[u64]> = yr.iter().map(|r| &r[..]).collect();
            for skip in [false, true] {
                let mut got = vec![0u128; points];
                clmul_dot_and_extended(&w, &xs, &ys, skip, &mut got);
                // The portable loop over every word, as on a CPU without VPCLMULQDQ.
                let mut portable = vec![0u128; points];
                extended_portable(&w, &xs, &ys, skip, &mut portable, 0);
                for e in 0..points {
                    let want = if skip && e % 3 == 1 {
                        0
                    } else {
                        (0..n).fold(0u128, |a, i| a ^ clmul_portable(w[i], at(&xr, e, i) & at(&yr, e, i)))
                    };
                    assert_eq!(got[e], want, "point {e} of {points}, {n} words, skip {skip}");
                    assert_eq!(portable[e], want, "portable: point {e} of {points}, {n} words, skip {skip}");
                }
            }
        }
    }

    /// Each width of carry-less vectors this CPU runs (AVX-512's and AVX2's) against the
    /// portable loops, on lengths around and between the vector widths.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_vector_width_matches_the_portable_loops() {
        use super::super::x86_clmul::{self as wide, Width};
        let mut rng = rand::thread_rng();
        let widths: Vec<Width> = Width::ALL.into_iter().filter(|w| w.is_supported()).collect();
        for width in widths {
            for n in [0usize, 3, 4, 7, 8, 13, 64, 77] {
                let word =
                    |rng: &mut rand::rngs::ThreadRng| -> Vec<u64> { (0..n).map(|_| rng.gen()).collect() };
                let (w, x, y) = (word(&mut rng), word(&mut rng), word(&mut rng));
                let dot_and = (0..n).fold(0u128, |a, i| a ^ clmul_portable(w[i], x[i] & y[i]));
                assert_eq!(wide::clmul_dot_and_wide(width, &w, &x, &y), dot_and, "{width:?}, {n} words");
                let dot = (0..n).fold(0u128, |a, i| a ^ clmul_portable(w[i], x[i]));
                assert_eq!(wide::clmul_dot_wide(width, &w, &x), dot, "{width:?}, {n} words");
                let t: u64 = rng.gen();
                let mut folded = x.clone();
                let done = wide::gf64_fold_wide(width, &mut folded, &y, t);
                assert_eq!(done, n - n % if width == Width::W512 { 8 } else { 4 });
                for i in 0..n {
                    let want =
                        if i < done { x[i] ^ gf64_reduce(clmul_portable(t, x[i] ^ y[i])) } else { x[i] };
                    assert_eq!(folded[i], want, "{width:?}: element {i} of {n}");
                }
            }
            for m in 0..=6u32 {
                for n in [5usize, 8, 36, 130] {
                    let corners = 1usize << m;
                    let rows = |rng: &mut rand::rngs::ThreadRng| -> Vec<Vec<u64>> {
                        (0..corners).map(|_| (0..n).map(|_| rng.gen()).collect()).collect()
                    };
                    let w: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
                    let (xr, yr) = (rows(&mut rng), rows(&mut rng));
                    let xs: Vec<&[u64]> = xr.iter().map(|r| &r[..]).collect();
                    let ys: Vec<&[u64]> = yr.iter().map(|r| &r[..]).collect();
                    for skip in [false, true] {
                        let mut want = vec![0u128; 3usize.pow(m)];
                        extended_portable(&w, &xs, &ys, skip, &mut want, 0);
                        let mut got = vec![0u128; 3usize.pow(m)];
                        let done = wide::clmul_dot_and_extended_wide(width, &w, &xs, &ys, skip, &mut got);
                        extended_portable(&w, &xs, &ys, skip, &mut got, done);
                        assert_eq!(got, want, "{width:?}: {m} digits, {n} words, skip {skip}");
                    }
                }
            }
        }
    }

    #[test]
    fn batched_products_match_the_portable_one() {
        let mut rng = rand::thread_rng();
        let a: Vec<u64> = (0..100).map(|_| rng.gen()).collect();
        let b: Vec<u64> = (0..100).map(|_| rng.gen()).collect();
        let want = a.iter().zip(&b).fold(0u128, |acc, (x, y)| acc ^ clmul_portable(*x, *y));
        assert_eq!(clmul_dot(&a, &b), want);
        assert_eq!(clmul_portable(3, 3), 5);
        assert_eq!(clmul_portable(u64::MAX, 2), (u64::MAX as u128) << 1);
    }
}
