//! The arithmetic a training step needs, as one interface with two implementations: exact f64
//! ([`crate::FloatCalc`], the reference) and secret shares on any back end
//! ([`crate::SecureCalc`]). Every forward and backward formula of `crate::ops` and every loss is
//! written once against it, so the secure run and its f64 reference cannot drift apart.

use musket_core::Result;
use musket_net::CommStats;

/// A public map from output positions to input positions: `None` reads zero.
pub type Gather = [Option<usize>];

/// Tensor arithmetic of one party (or of the plaintext reference).
pub trait Calc {
    /// A tensor: f64 values, or this party's shares.
    type T: Clone;
    /// Which elements of a ReLU input were negative (the derivative's zeros).
    type Mask;

    /// The tensor's shape.
    fn shape(t: &Self::T) -> Vec<usize>;
    /// The same elements with another shape of the same size.
    fn reshape(&mut self, t: &Self::T, shape: &[usize]) -> Result<Self::T>;
    /// `out[i] = t[src[i]]` (zero where `src[i]` is `None`), of shape `shape`. Exact.
    fn gather(&mut self, t: &Self::T, shape: &[usize], src: &Gather) -> Result<Self::T>;
    /// The adjoint of [`Calc::gather`]: `out[src[i]] += g[i]`, of shape `shape`. Exact.
    fn gather_adjoint(&mut self, g: &Self::T, shape: &[usize], src: &Gather) -> Result<Self::T>;
    /// Sets the listed elements to below every value (max-pooling's padding).
    fn fill_lowest(&mut self, t: &Self::T, at: &[bool]) -> Result<Self::T>;
    /// `a + b` (same shape). Exact.
    fn add(&mut self, a: &Self::T, b: &Self::T) -> Result<Self::T>;
    /// `a - b` (same shape). Exact.
    fn sub(&mut self, a: &Self::T, b: &Self::T) -> Result<Self::T>;
    /// `-t`. Exact.
    fn neg(&mut self, t: &Self::T) -> Result<Self::T>;
    /// `t + c` for a public real `c`. Exact up to the encoding of `c`.
    fn add_const(&mut self, t: &Self::T, c: f64) -> Result<Self::T>;
    /// `t[k] * c[k]` for public reals (one per tensor), one rounding each. Factors below 1/16
    /// in magnitude (such as `lr / batch`) carry 12 more fractional bits than the values, so
    /// they keep their precision; the product must then stay below 2^(50-2f) (2^18 at
    /// f = 16); with larger factors, below 2^(62-2f).
    fn scale_many(&mut self, items: &[(&Self::T, f64)]) -> Result<Vec<Self::T>>;
    /// `t * c` elementwise with public reals `c` (same length as `t`), as [`Calc::scale_many`].
    fn scale_each(&mut self, t: &Self::T, c: &[f64]) -> Result<Self::T>;
    /// Elementwise products of real pairs (same shapes), one rounding each, in one round.
    fn mul_many(&mut self, pairs: &[(&Self::T, &Self::T)]) -> Result<Vec<Self::T>>;
    /// Elementwise product of reals with 0/1 indicators (from [`Calc::max_last`]): exact.
    fn mul_indicator(&mut self, a: &Self::T, ind: &Self::T) -> Result<Self::T>;
    /// Matrix products `a [m, k] @ b [k, n]`, one rounding per element, in one round.
    fn matmul_many(&mut self, pairs: &[(&Self::T, &Self::T)]) -> Result<Vec<Self::T>>;
    /// `max(x, 0)` and the mask of negative elements. Exact.
    fn relu(&mut self, x: &Self::T) -> Result<(Self::T, Self::Mask)>;
    /// `g` with the masked (negative-input) elements zeroed: ReLU's backward. Exact.
    fn apply_mask(&mut self, g: &Self::T, mask: &Self::Mask) -> Result<Self::T>;
    /// The maximum over the last axis (removed) and the 0/1 indicator of its position (ties:
    /// the first). Exact.
    fn max_last(&mut self, x: &Self::T) -> Result<(Self::T, Self::T)>;
    /// The logistic function (error bound: `musket_nn::sigmoid`).
    fn sigmoid(&mut self, x: &Self::T) -> Result<Self::T>;
    /// tanh (error bound: `musket_nn::tanh`).
    fn tanh(&mut self, x: &Self::T) -> Result<Self::T>;
    /// Softmax over the last axis (error bound: `musket_nn::softmax`).
    fn softmax_last(&mut self, x: &Self::T) -> Result<Self::T>;
    /// Log-softmax over the last axis (error bound: `musket_nn::log_softmax`).
    fn log_softmax_last(&mut self, x: &Self::T) -> Result<Self::T>;
    /// `e^x` (domain: `musket_nn::exp`).
    fn exp(&mut self, x: &Self::T) -> Result<Self::T>;
    /// `ln x` for positive `x` (domain: `musket_nn::log`).
    fn log(&mut self, x: &Self::T) -> Result<Self::T>;
    /// `1/sqrt(t)` of several positive tensors in one evaluation (error bound:
    /// `musket_nn::inv_sqrt`, relative 1e-3).
    fn inv_sqrt_many(&mut self, ts: &[&Self::T]) -> Result<Vec<Self::T>>;
    /// Names what is computed next (a node's forward or backward pass, the loss, the update),
    /// for the range audit's findings.
    fn begin(&mut self, _what: &str) {}
    /// Opens `t` to `party` only: `Some(values)` there, `None` elsewhere.
    fn reveal_to(&mut self, t: &Self::T, party: usize) -> Result<Option<Vec<f64>>>;
    /// This party's id (0 for the reference).
    fn party(&self) -> usize;
    /// Communication so far (zero for the reference).
    fn comm(&self) -> CommStats;
}
