//! The range each op needs of its operands for its products to stay in the ring: the contract
//! of the secure range check (`RunOptions::secure_range_check`), written once per op.
//!
//! A fixed-point product of `a` and `b` is computed at `2f` fractional bits and must stay below
//! 2^62 in the ring before truncation: `|a b| < 2^(62 - 2f)`. Bounding both operands by
//! `2^(31 - f)` guarantees it for elementwise products; a matrix product sums `k` of them, and
//! its output, the next layer's operand, is checked in turn (an overflowed sum is a value of
//! about 2^(63 - f) that fails that check, unless it lands within 2^(31 - f) of zero by chance:
//! about one chance in 2^32 per element). Functions whose inputs may be anything (comparisons,
//! sigmoid, the normalised functions) need no bound: they clamp or saturate, and flag their
//! saturated elements themselves. GELU, softmax and ReLU are the exceptions: their sign
//! circuits are narrow (32, 42 and `64 - f` bits; max-pool's and ReLU6's `65 - f`), so GELU's
//! input needs the product operands' bound, softmax's `2^(40 - f)` and ReLU's, max-pool's and
//! clip's `2^(63 - 2f)` (twice the garbage bound, which the plan checks their inputs against
//! anyway).

use crate::ir::Op;

impl Op {
    /// For each input position, the largest magnitude (in real units, exclusive) the op's
    /// secure evaluation handles at `frac_bits` fractional bits, or `None` where any encodable
    /// value is fine. Positions beyond the returned vector have no bound.
    pub fn operand_bounds(&self, frac_bits: u32) -> Vec<Option<f64>> {
        let f = frac_bits as i32;
        let pow = |e: i32| Some(2f64.powi(e));
        let product = pow(31 - f);
        // Means scale by 1/n with 12 extra fractional bits: |mean| < 2^(62 - 2f - 12).
        let mean = pow(50 - 2 * f);
        // A product with a public constant c: |x c| < 2^(62 - 2f), with a bit of margin for
        // the rounding of c.
        let by_constant = |c: f64| (c != 0.0 && c.is_finite()).then(|| 2f64.powi(61 - 2 * f) / c.abs());
        match self {
            Op::MatMul | Op::Mul | Op::Affine => vec![product, product],
            // beta scales the bias (alpha scales the product, whose size the next layer checks).
            Op::Gemm { beta, .. } => {
                vec![product, product, if *beta == 1.0 { None } else { by_constant(*beta) }]
            }
            Op::Conv { .. } => vec![product, product],
            // a y 2^-(e+1) with y <= 2 and 2^-(e+1) up to 2^12 (musket_nn::div).
            Op::Div => vec![pow(49 - 2 * f)],
            // The deviations from the row mean are squared: |x - mean| <= 2 |x| < 2^(31 - f).
            // gamma multiplies values of at most sqrt(n) <= 2^8.
            Op::LayerNorm { .. } => vec![pow(30 - f), pow(54 - 2 * f)],
            Op::MulConst(c) => vec![by_constant(*c)],
            // a x + (1 - a) relu(x) is about x at 2f bits for positive x, whatever a.
            Op::LeakyRelu(a) => vec![by_constant(a.abs().max((1.0 - a).abs()).max(1.0))],
            Op::Tanh => vec![pow(61 - f)],
            // GELU's sign circuits are 32 bits wide.
            Op::Gelu | Op::GeluTanh => vec![Some(musket_nn::gelu_input_bound(frac_bits))],
            // Softmax's tournament and clamp are 42 bits wide.
            Op::Softmax { .. } => vec![Some(musket_nn::softmax_input_bound(frac_bits))],
            // ReLU's sign circuit is 64 - f bits wide.
            Op::Relu => vec![Some(musket_nn::relu_input_bound(frac_bits))],
            // Max-pool's comparisons are 65 - f bits wide, clip's about as wide.
            Op::MaxPool { .. } => vec![Some(musket_nn::max_pool_input_bound(frac_bits))],
            Op::Clip { .. } => vec![Some(musket_nn::relu_input_bound(frac_bits))],
            Op::AveragePool { .. } | Op::GlobalAveragePool | Op::ReduceMean { .. } => vec![mean],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_at_16_bits() {
        assert_eq!(Op::MatMul.operand_bounds(16), vec![Some(32768.0), Some(32768.0)]);
        assert_eq!(Op::MulConst(0.5).operand_bounds(16), vec![Some(2f64.powi(30))]);
        assert_eq!(Op::LeakyRelu(0.5).operand_bounds(16), vec![Some(2f64.powi(29))]);
        assert_eq!(Op::MulConst(0.0).operand_bounds(16), vec![None]);
        assert_eq!(Op::Relu.operand_bounds(16), vec![Some(2f64.powi(31))]);
        let pool = musket_nn::Pool2d::new([2, 2], [2, 2], [0; 4]);
        assert_eq!(Op::MaxPool { pool, same: None }.operand_bounds(16), vec![Some(2f64.powi(31))]);
        assert_eq!(Op::Clip { lo: 0.0, hi: 6.0 }.operand_bounds(16), vec![Some(2f64.powi(31))]);
        assert_eq!(Op::Gelu.operand_bounds(16), vec![Some(32768.0)]);
        let softmax = Op::Softmax { axis: -1, flatten: false, log: false };
        assert_eq!(softmax.operand_bounds(16), vec![Some(2f64.powi(24))]);
        let gemm = Op::Gemm { trans_a: false, trans_b: true, alpha: 1.0, beta: 1.0 };
        assert_eq!(gemm.operand_bounds(16), vec![Some(32768.0), Some(32768.0), None]);
    }
}
