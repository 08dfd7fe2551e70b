use thiserror::Error;

/// CrypTen's default number of fractional bits.
pub const DEFAULT_FRAC_BITS: u32 = 16;

/// A real number that cannot be encoded (NaN, infinite, or outside the representable range).
/// The value itself is deliberately not part of the message: inputs may be secret.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("value at index {index} is not finite or exceeds the fixed-point range ±2^{limit_log2} (frac_bits = {frac_bits})")]
pub struct RangeError {
    /// Position of the offending element in the input.
    pub index: usize,
    /// log2 of the largest magnitude accepted.
    pub limit_log2: u32,
    /// The encoding's fractional bits.
    pub frac_bits: u32,
}

/// Signed two's-complement fixed point in Z_2^64 with `frac_bits` fractional bits.
///
/// A real `x` is stored as `round(x * 2^f) mod 2^64`. The encoding accepts `|x| < 2^(62 - f)`
/// (2^46 at f = 16), leaving one bit of headroom below the sign so that sums of two encoded
/// values and the truncation protocols (which need `|v| < 2^62` in the ring) stay correct. A
/// product of two encodings has scale 2^(2f) and must itself stay below 2^62 in the ring before
/// truncation, i.e. `|x * y| < 2^(62 - 2f)` (2^30 at f = 16); larger products wrap silently, as
/// in every ring-based MPC system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedPoint {
    frac_bits: u32,
}

impl Default for FixedPoint {
    fn default() -> Self {
        Self { frac_bits: DEFAULT_FRAC_BITS }
    }
}

/// Whether `x` is encodable below `limit`: false for NaN and the infinities too.
fn within(x: f64, limit: f64) -> bool {
    x.abs() < limit
}

/// `y.round()` (half away from zero) as an integer, for `|y| < 2^63`, without the library
/// call `f64::round` compiles to on baseline x86-64 (it was a tenth of encoding 10^6 values):
/// the conversion truncates toward zero, and the remainder `y - trunc(y)` is exact (below
/// 2^52 both are within one of each other; from 2^52 on, `y` is a whole number).
fn round_half_away(y: f64) -> i64 {
    let whole = y as i64;
    let rest = y - whole as f64;
    whole + i64::from(rest >= 0.5) - i64::from(rest <= -0.5)
}

impl FixedPoint {
    /// The default encoding, 16 fractional bits.
    pub const DEFAULT: FixedPoint = FixedPoint { frac_bits: DEFAULT_FRAC_BITS };

    /// An encoding with `frac_bits` fractional bits (at most 30, so that products fit).
    pub fn new(frac_bits: u32) -> Self {
        assert!(frac_bits <= 30, "frac_bits must be at most 30");
        Self { frac_bits }
    }

    /// The number of fractional bits.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// The ring element that encodes 1.0.
    pub fn one(&self) -> u64 {
        1u64 << self.frac_bits
    }

    /// log2 of the largest magnitude `encode` accepts.
    pub fn limit_log2(&self) -> u32 {
        62 - self.frac_bits
    }

    /// The smallest representable step, 2^-f.
    pub fn ulp(&self) -> f64 {
        (-(self.frac_bits as f64)).exp2()
    }

    /// Encodes one real number.
    pub fn encode_one(&self, x: f64) -> Option<u64> {
        let (limit, one) = ((self.limit_log2() as f64).exp2(), self.one() as f64);
        within(x, limit).then(|| round_half_away(x * one) as u64)
    }

    /// Encodes a slice, failing on the first value out of range. Two passes, both of which
    /// vectorise: the range check (NaN fails it too), then the encoding.
    pub fn encode(&self, xs: &[f64]) -> Result<Vec<u64>, RangeError> {
        let (limit, one) = ((self.limit_log2() as f64).exp2(), self.one() as f64);
        if let Some(index) = xs.iter().position(|&x| !within(x, limit)) {
            return Err(RangeError { index, limit_log2: self.limit_log2(), frac_bits: self.frac_bits });
        }
        Ok(xs.iter().map(|&x| round_half_away(x * one) as u64).collect())
    }

    /// Decodes one ring element as a signed fixed-point number.
    pub fn decode_one(&self, v: u64) -> f64 {
        v as i64 as f64 / self.one() as f64
    }

    /// Decodes a slice.
    pub fn decode(&self, vs: &[u64]) -> Vec<f64> {
        vs.iter().map(|&v| self.decode_one(v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounding_matches_f64_round_at_halves_and_large_values() {
        let ulp = f64::EPSILON;
        let mut cases =
            vec![0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994];
        cases.extend([
            0.5 + ulp,
            0.5 - ulp / 2.0,
            4503599627370495.5,
            -4503599627370495.5,
            2f64.powi(52) + 1.0,
        ]);
        cases.extend([
            2f64.powi(53) + 2.0,
            -(2f64.powi(62)) + 1024.0,
            2f64.powi(62) - 1024.0,
            1e-300,
            -1e-300,
        ]);
        for y in cases {
            assert_eq!(round_half_away(y), y.round() as i64, "{y:e}");
        }
    }

    proptest! {
        #[test]
        fn rounding_matches_f64_round(y in -4.6e18f64..4.6e18, scale in -60i32..0) {
            let y = y * 2f64.powi(scale);
            prop_assert_eq!(round_half_away(y), y.round() as i64);
        }
    }

    #[test]
    fn edges_of_the_range() {
        let fp = FixedPoint::default();
        let limit = 2f64.powi(46);
        assert!(fp.encode_one(limit).is_none());
        assert!(fp.encode_one(-limit).is_none());
        assert!(fp.encode_one(f64::NAN).is_none());
        assert!(fp.encode_one(f64::INFINITY).is_none());
        let big = limit - 1.0;
        assert_eq!(fp.decode_one(fp.encode_one(big).unwrap()), big);
        assert_eq!(fp.decode_one(fp.encode_one(-big).unwrap()), -big);
        assert_eq!(fp.encode_one(0.0), Some(0));
        assert_eq!(fp.encode_one(-fp.ulp()), Some(u64::MAX));
        let err = fp.encode(&[1.0, 1e300]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(!err.to_string().contains("1e300"));
    }

    proptest! {
        #[test]
        fn round_trip_within_half_ulp(x in -7.0e13f64..7.0e13, f in 0u32..=30) {
            let fp = FixedPoint::new(f);
            if let Some(v) = fp.encode_one(x) {
                prop_assert!((fp.decode_one(v) - x).abs() <= fp.ulp() / 2.0 + x.abs() * 1e-15);
            } else {
                prop_assert!(x.abs() >= (fp.limit_log2() as f64).exp2());
            }
        }

        #[test]
        fn ring_ops_match_f64(x in -1.0e6f64..1.0e6, y in -1.0e6f64..1.0e6) {
            let fp = FixedPoint::default();
            let (a, b) = (fp.encode_one(x).unwrap(), fp.encode_one(y).unwrap());
            prop_assert!((fp.decode_one(a.wrapping_add(b)) - (x + y)).abs() <= fp.ulp());
            prop_assert!((fp.decode_one(a.wrapping_sub(b)) - (x - y)).abs() <= fp.ulp());
            // Product at scale 2f, truncated by an arithmetic shift: within |x|+|y|+1 ulps.
            let xs = x / 64.0; let ys = y / 64.0;
            let (a, b) = (fp.encode_one(xs).unwrap(), fp.encode_one(ys).unwrap());
            let prod = ((a.wrapping_mul(b) as i64) >> fp.frac_bits()) as u64;
            let bound = (xs.abs() + ys.abs() + 1.0) * fp.ulp();
            prop_assert!((fp.decode_one(prod) - xs * ys).abs() <= bound);
        }
    }
}
