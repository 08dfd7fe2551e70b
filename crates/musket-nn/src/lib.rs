//! Secure functions an ML model needs, written once against [`musket_core::Protocol`] and run
//! on every back end: comparisons and selection, pooling, convolution and other linear layers,
//! and fixed-point approximations of exp, reciprocal, sigmoid, tanh and softmax.
//!
//! Conventions: values are fixed point with the [`FixedPoint`] passed in (never a global);
//! comparison results are *integer* 0/1 shares (ring value 1, not 2^f), so multiplying by them
//! needs no truncation. Every approximation documents its input domain, what happens outside
//! it, and its maximum error against f64, which the tests check on both back ends.

mod approx;
mod chebyshev;
mod cmp;
mod layernorm;
mod linear;
mod maps;
mod normalize;
mod pool;
mod tensor_ops;

/// Plaintext f64 references for functions the standard library lacks.
pub mod reference {
    /// The error function in f64 to about 1e-15: its Maclaurin series below |x| = 3, a continued
    /// fraction for erfc above.
    pub fn erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let (mut sum, mut term, mut k) = (0.0, x, 0.0);
            while term.abs() > 1e-17 {
                sum += term / (2.0 * k + 1.0);
                k += 1.0;
                term *= -x * x / k;
            }
            2.0 / std::f64::consts::PI.sqrt() * sum
        } else {
            let a = x.abs();
            let mut cf = 0.0;
            for k in (1..60).rev() {
                cf = (k as f64 / 2.0) / (a + cf);
            }
            x.signum() * (1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + cf))
        }
    }
}

pub use approx::{
    erf, exp, gelu, gelu_input_bound, gelu_tanh, log_softmax, log_softmax_bounded, sigmoid, softmax,
    softmax_bounded, softmax_input_bound, tanh, EXP_DOMAIN,
};
pub use cmp::{
    abs, argmax_index, argmax_onehot, clip, clip_bounded, eq, ge, gt, le, leaky_relu, leaky_relu_bounded, lt,
    max_along, max_with_onehot_last, maximum, min_along, minimum, relu, relu6, relu_bounded,
    relu_input_bound, select, sign,
};
pub use layernorm::layer_norm;
pub use linear::{affine, conv2d, div_public, linear, scale_public, scale_public_fine, Conv2d};
pub use maps::Widen;
pub use normalize::{
    div, inv_sqrt, log, reciprocal, reciprocal_in_unit_range, sqrt, NORMALIZED_DOMAIN, RECIPROCAL_DOMAIN,
};
pub use pool::{
    avg_pool2d, global_avg_pool, max_pool2d, max_pool2d_bounded, max_pool_input_bound, pool_windows, Pool2d,
};
pub use tensor_ops::{broadcast, concat_shares, mul_many, split_share};

pub use musket_ring::FixedPoint;
