//! Products of polynomials over Z_2^64 by a polynomial with 0/1 coefficients:
//! [`add_times_binary_poly`]. The malicious back end's proofs fold every vector of
//! Galois-ring elements at a challenge drawn from the exceptional set (0/1 coefficients,
//! about 32 of them set), where the product by the challenge is a sum of shifted copies:
//! additions only, about half the vector operations of the 64 x 64 matrix product by the
//! challenge's multiplication matrix, and none of them a `vpmullq`. No crate has it.

use super::Kernel;

/// Elements a call takes at a time: each coefficient row of a chunk is four 512-bit vectors.
pub const BINARY_POLY_CHUNK: usize = 32;
/// Coefficients of an operand.
const COEFFS: usize = 64;

/// `out += d * t` reduced by `X^64 = -sum_(i in taps) X^i`, for [`BINARY_POLY_CHUNK`]
/// polynomials of 64 coefficients stored coefficient-major (`d[k * 32 + c]` is coefficient `k`
/// of polynomial `c`, and so is `out`), `t` the 0/1 polynomial whose bit `j` is the
/// coefficient of `X^j`. `taps` (each below 64) describe the modulus `X^64 + sum X^i`.
///
/// # Panics
/// If `d` or `out` is shorter than 64 rows of 32 words, or a tap is 64 or more.
pub fn add_times_binary_poly(d: &[u64], t: u64, taps: &[usize], out: &mut [u64]) {
    add_times_binary_poly_with(Kernel::best(), d, t, taps, out)
}

/// [`add_times_binary_poly`] with a chosen kernel (tests compare them).
///
/// # Panics
/// As [`add_times_binary_poly`], or if `kernel` is not supported by this CPU.
pub fn add_times_binary_poly_with(kernel: Kernel, d: &[u64], t: u64, taps: &[usize], out: &mut [u64]) {
    assert!(
        kernel.is_supported(),
        "add_times_binary_poly: the {kernel:?} kernel is not supported by this CPU"
    );
    let words = COEFFS * BINARY_POLY_CHUNK;
    assert!(d.len() >= words && out.len() >= words, "add_times_binary_poly: operands too short");
    assert!(taps.iter().all(|&i| i < COEFFS), "add_times_binary_poly: a tap past the degree");
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => super::x86::binary_poly_avx512(&d[..words], t, taps, &mut out[..words]),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::x86::binary_poly_avx2(&d[..words], t, taps, &mut out[..words]),
        _ => body(&d[..words], t, taps, &mut out[..words]),
    }
}

/// One row of a chunk.
type Row = [u64; BINARY_POLY_CHUNK];

/// Output rows from the top down: row `w` of the unreduced product is the sum of `d`'s rows
/// `w - j` over the set bits `j` of `t`, accumulated in registers; a row past `X^63` is
/// folded into the rows `w - 64 + i` of the taps (those still past `X^63` wait in `high`,
/// which is complete by the time its row comes up).
#[inline(always)]
pub(super) fn body(d: &[u64], t: u64, taps: &[usize], out: &mut [u64]) {
    let rows: Vec<&Row> = d.chunks_exact(BINARY_POLY_CHUNK).map(|r| r.try_into().expect("a row")).collect();
    let shifts: Vec<usize> = (0..COEFFS).filter(|j| t >> j & 1 == 1).collect();
    let mut high = [[0u64; BINARY_POLY_CHUNK]; COEFFS - 1];
    for w in (0..2 * COEFFS - 1).rev() {
        let mut acc: Row = if w >= COEFFS { high[w - COEFFS] } else { [0; BINARY_POLY_CHUNK] };
        // The shifts that reach row w, `w - 63 <= j <= w`: a run of the ascending list, found
        // once a row rather than tested shift by shift (`cargo bench -p musket-ring --
        // binary_poly`: the portable body 17.8 -> 15.6 µs a chunk, AVX2's level).
        let first = shifts.partition_point(|&j| j + COEFFS <= w);
        let end = shifts.partition_point(|&j| j <= w);
        for &j in &shifts[first..end] {
            let src = rows[w - j];
            for c in 0..BINARY_POLY_CHUNK {
                acc[c] = acc[c].wrapping_add(src[c]);
            }
        }
        if w >= COEFFS {
            for &i in taps {
                let target = w - COEFFS + i;
                let dst = if target >= COEFFS {
                    &mut high[target - COEFFS]
                } else {
                    (&mut out[target * BINARY_POLY_CHUNK..][..BINARY_POLY_CHUNK]).try_into().expect("a row")
                };
                for c in 0..BINARY_POLY_CHUNK {
                    dst[c] = dst[c].wrapping_sub(acc[c]);
                }
            }
        } else {
            let dst = &mut out[w * BINARY_POLY_CHUNK..][..BINARY_POLY_CHUNK];
            for c in 0..BINARY_POLY_CHUNK {
                dst[c] = dst[c].wrapping_add(acc[c]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    const TAPS: [usize; 4] = [0, 1, 3, 4];

    /// Schoolbook product by `t`, then reduction from the top down, one polynomial at a time.
    fn naive(p: &[u64; COEFFS], t: u64, taps: &[usize]) -> [u64; COEFFS] {
        let mut wide = [0u64; 2 * COEFFS];
        for j in (0..COEFFS).filter(|j| t >> j & 1 == 1) {
            for k in 0..COEFFS {
                wide[j + k] = wide[j + k].wrapping_add(p[k]);
            }
        }
        for w in (COEFFS..2 * COEFFS - 1).rev() {
            let c = wide[w];
            for &i in taps {
                wide[w - COEFFS + i] = wide[w - COEFFS + i].wrapping_sub(c);
            }
        }
        wide[..COEFFS].try_into().expect("64")
    }

    #[test]
    fn products_by_binary_polynomials_match_the_schoolbook_ones() {
        let mut rng = rand::thread_rng();
        for t in [0u64, 1, 1 << 63, u64::MAX, rng.gen(), rng.gen(), rng.gen()] {
            let polys: Vec<[u64; COEFFS]> =
                (0..BINARY_POLY_CHUNK).map(|_| std::array::from_fn(|_| rng.gen())).collect();
            let start: Vec<u64> = (0..COEFFS * BINARY_POLY_CHUNK).map(|_| rng.gen()).collect();
            let mut d = vec![0u64; COEFFS * BINARY_POLY_CHUNK];
            for (c, p) in polys.iter().enumerate() {
                for k in 0..COEFFS {
                    d[k * BINARY_POLY_CHUNK + c] = p[k];
                }
            }
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut out = start.clone();
                add_times_binary_poly_with(kernel, &d, t, &TAPS, &mut out);
                for (c, p) in polys.iter().enumerate() {
                    let want = naive(p, t, &TAPS);
                    for k in 0..COEFFS {
                        let got =
                            out[k * BINARY_POLY_CHUNK + c].wrapping_sub(start[k * BINARY_POLY_CHUNK + c]);
                        assert_eq!(got, want[k], "t = {t:#x}, polynomial {c}, coefficient {k}, {kernel:?}");
                    }
                }
            }
        }
    }
}
