//! Rows of polynomials over Z_2^64 times increasing powers of `X`, reduced:
//! [`rows_times_x_pows`]. The packed ring proofs write out, per group of blocks, the 64 lanes
//! of a member-weighted sum, lane `b` times `X^b` in the Galois ring GR(2^64, 64): a shift
//! and a sparse reduction per row, about as many word operations as the row has, which the
//! generic build ran at SSE2 width. No crate has it.

use super::Kernel;

/// Coefficients of a row.
const COEFFS: usize = 64;
/// The taps must lie below this: the words a tap carries past `X^63` again (below `X^PAD`)
/// are folded once more, and the laid-out passing words are padded by it on each side.
const PAD: usize = 8;

/// Row `b` of `out` (at `out[b * ldo..]`, 64 words) becomes row `b` of `rows` (64 rows of
/// 64 coefficient words, row-major) times `X^b`, reduced by `X^64 = -sum_(i in taps) X^i`.
///
/// # Panics
/// If `rows` is shorter than 64 rows, `out` too short for 64 rows at stride `ldo` (at least
/// 64), or a tap is 8 or more.
pub fn rows_times_x_pows(rows: &[u64], taps: &[usize; 4], out: &mut [u64], ldo: usize) {
    rows_times_x_pows_with(Kernel::best(), rows, taps, out, ldo)
}

/// [`rows_times_x_pows`] with a chosen kernel (tests compare them).
///
/// # Panics
/// As [`rows_times_x_pows`], or if `kernel` is not supported by this CPU.
pub fn rows_times_x_pows_with(kernel: Kernel, rows: &[u64], taps: &[usize; 4], out: &mut [u64], ldo: usize) {
    assert!(kernel.is_supported(), "rows_times_x_pows: the {kernel:?} kernel is not supported by this CPU");
    assert!(rows.len() >= COEFFS * COEFFS, "rows_times_x_pows: fewer than 64 rows");
    assert!(ldo >= COEFFS && out.len() >= (COEFFS - 1) * ldo + COEFFS, "rows_times_x_pows: out too short");
    assert!(taps.iter().all(|&t| t < PAD), "rows_times_x_pows: a tap of 8 or more");
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => super::x86::x_pows_avx512(rows, taps, out, ldo),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::x86::x_pows_avx2(rows, taps, out, ldo),
        _ => body(rows, taps, out, ldo),
    }
}

/// Every row (see [`row_times_x_pow`]), each copied once between zero pads so that its
/// shifted words and its passing words are plain slices of one buffer: every output word
/// past the taps' reach is five loads, no bounds to test (a third faster than a row at a
/// time in place, whose loops' lengths vary with the row).
#[inline(always)]
pub(super) fn body(rows: &[u64], taps: &[usize; 4], out: &mut [u64], ldo: usize) {
    // u = 64 zeros, the row, 64 zeros: the row shifted up by b is u[64 - b..][..64], and its
    // words past X^63, X^(64 + j) for j < b, are u[128 - b + j] (zero for j >= b).
    let mut u = [0u64; 3 * COEFFS];
    for (b, row) in rows.chunks_exact(COEFFS).take(COEFFS).enumerate() {
        u[COEFFS..2 * COEFFS].copy_from_slice(row);
        let o = &mut out[b * ldo..][..COEFFS];
        let shifted = &u[COEFFS - b..][..COEFFS];
        let [t0, t1, t2, t3] = taps.map(|tap| &u[2 * COEFFS - b - tap..][..COEFFS]);
        // From x^PAD on, tap t's word at x^i is the passing word i - t (or zero).
        for (i, x) in o.iter_mut().enumerate().skip(PAD) {
            *x = shifted[i].wrapping_sub(t0[i].wrapping_add(t1[i]).wrapping_add(t2[i]).wrapping_add(t3[i]));
        }
        for (i, x) in o.iter_mut().enumerate().take(PAD) {
            let mut w = shifted[i];
            for &tap in taps {
                if i >= tap && i - tap < b {
                    w = w.wrapping_sub(row[COEFFS - b + i - tap]);
                }
            }
            *x = w;
        }
        fold_again(row, b, taps, o);
    }
}

/// The words a tap carries past `X^63` again (`X^(64 + j)` for `j >= 64 - tap`, `j < k`),
/// folded once more (below `X^PAD`).
#[inline(always)]
fn fold_again(v: &[u64], k: usize, taps: &[usize; 4], out: &mut [u64]) {
    if k + PAD <= COEFFS {
        return;
    }
    let mut again = [0u64; PAD];
    for &tap in taps {
        for (j, w) in v[COEFFS - k..COEFFS].iter().enumerate().skip(COEFFS - tap) {
            again[j + tap - COEFFS] = again[j + tap - COEFFS].wrapping_sub(*w);
        }
    }
    for &tap in taps {
        for (j, a) in again.iter().enumerate() {
            out[j + tap] = out[j + tap].wrapping_sub(*a);
        }
    }
}

/// `out = v X^k` reduced, `k < 64`: the words shifted up by `k`, less, at each `x^i`, the sum
/// of the passing words (`X^(64 + j)`, `j < k`) that the taps send there, formed from the
/// passing words laid out once between zero pads and subtracted as each output word is
/// written. (Subtracting a tap at a time from `out` read back what the previous tap had just
/// stored, one word over, which could not be forwarded.) The few that a tap carries past
/// `X^63` again, below `X^PAD`, are folded once more. For one row; [`rows_times_x_pows`]
/// takes a block of 64.
#[inline(always)]
pub fn row_times_x_pow(v: &[u64], k: usize, taps: &[usize; 4], out: &mut [u64]) {
    assert!(k < COEFFS && taps.iter().all(|&t| t < PAD), "row_times_x_pow: k or a tap out of range");
    let out = &mut out[..COEFFS];
    let v = &v[..COEFFS];
    // t[PAD + j]: the coefficient of X^(64 + j) of the shifted words (zero past k).
    let mut t = [0u64; COEFFS + 2 * PAD];
    t[PAD..PAD + k].copy_from_slice(&v[COEFFS - k..]);
    let [t0, t1, t2, t3] = taps.map(|tap| &t[PAD - tap..PAD - tap + COEFFS]);
    let passing = |i: usize| t0[i].wrapping_add(t1[i]).wrapping_add(t2[i]).wrapping_add(t3[i]);
    let (low, high) = out.split_at_mut(k);
    for (i, o) in low.iter_mut().enumerate() {
        *o = passing(i).wrapping_neg();
    }
    for (i, (o, w)) in high.iter_mut().zip(&v[..COEFFS - k]).enumerate() {
        *o = w.wrapping_sub(passing(i + k));
    }
    fold_again(v, k, taps, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    const TAPS: [usize; 4] = [0, 1, 3, 4];

    /// Shifted into a wide row, then reduced from the top down.
    fn naive(p: &[u64], k: usize, taps: &[usize]) -> Vec<u64> {
        let mut wide = [0u64; 2 * COEFFS];
        wide[k..k + COEFFS].copy_from_slice(&p[..COEFFS]);
        for w in (COEFFS..2 * COEFFS).rev() {
            let c = wide[w];
            for &i in taps {
                wide[w - COEFFS + i] = wide[w - COEFFS + i].wrapping_sub(c);
            }
        }
        wide[..COEFFS].to_vec()
    }

    #[test]
    fn rows_times_x_pows_match_the_shifted_and_reduced_rows() {
        let mut rng = rand::thread_rng();
        let rows: Vec<u64> = (0..COEFFS * COEFFS).map(|_| rng.gen()).collect();
        for taps in [TAPS, [0, 2, 5, 7]] {
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let ldo = COEFFS + 3;
                let mut out = vec![0u64; COEFFS * ldo];
                rows_times_x_pows_with(kernel, &rows, &taps, &mut out, ldo);
                for b in 0..COEFFS {
                    let want = naive(&rows[b * COEFFS..], b, &taps);
                    assert_eq!(&out[b * ldo..][..COEFFS], &want[..], "row {b}, taps {taps:?}, {kernel:?}");
                    let mut one = [0u64; COEFFS];
                    row_times_x_pow(&rows[b * COEFFS..], b, &taps, &mut one);
                    assert_eq!(&one[..], &want[..], "one row {b}, taps {taps:?}");
                }
            }
        }
    }
}
