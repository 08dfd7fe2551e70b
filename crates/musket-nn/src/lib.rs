//! Secure functions an ML model needs, written once against [`musket_core::Protocol`] and run
//! on every back end: comparisons and selection, pooling, convolution and other linear layers,
//! and fixed-point approximations of exp, reciprocal, sigmoid, tanh and softmax.
//!
//! Conventions: values are fixed point with the [`FixedPoint`] passed in (never a global);
//! comparison results are *integer* 0/1 shares (ring value 1, not 2^f), so multiplying by them
//! needs no truncation. Every approximation documents its input domain, what happens outside
//! it, and its maximum error against f64, which the tests check on both back ends.

mod approx;
mod cmp;
mod linear;
mod pool;
mod tensor_ops;

pub use approx::{
    erf, exp, gelu, inv_sqrt, layer_norm, log, log_softmax, reciprocal, reciprocal_in_unit_range, sigmoid,
    softmax, sqrt, tanh, EXP_DOMAIN, NORMALIZED_DOMAIN, RECIPROCAL_DOMAIN,
};
pub use cmp::{
    abs, argmax_index, argmax_onehot, clip, eq, ge, gt, le, leaky_relu, lt, max_along, maximum, min_along,
    minimum, relu, relu6, select, sign,
};
pub use linear::{affine, conv2d, div_public, linear, scale_public, Conv2d};
pub use pool::{avg_pool2d, global_avg_pool, max_pool2d, Pool2d};
pub use tensor_ops::{broadcast, concat_shares, mul_many, split_share};

pub use musket_ring::FixedPoint;
