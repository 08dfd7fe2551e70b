//! Linear maps on tensors described once, generic over the ring's word.
//!
//! A back end applies a linear map to each share component. Semi-honest and DZKP-verified
//! shares live modulo 2^64; a MAC'd share (SPDZ2k) lives modulo 2^128 and needs the same map
//! there, on its value and its MAC alike. A closure on `u64` tensors cannot give that: its
//! coefficients' lifts are lost, and mapping the two halves of a `u128` separately drops the
//! carries out of the low half. So a map is a type with one generic method ([`RingMap`]),
//! and [`LinearOp`] is its object-safe form, which the `Protocol` API takes.

use crate::{RingTensor, ShapeError, Tensor, WideTensor, Word};

/// A homogeneous Z-linear map on tensors, written once for every ring word.
///
/// Implementations must be Z-linear with the same integer coefficients for every `W`: for a
/// public coefficient `c` of Z_2^64 they use [`Word::lift`]. Then applying the map modulo
/// 2^128 and reducing modulo 2^64 equals applying it modulo 2^64, and `F(a x) = a F(x)` holds
/// modulo 2^128 (what a MAC needs); [`check::assert_described`] checks both, and each crate's
/// tests run it on that crate's maps.
pub trait RingMap: Sync {
    /// Applies the map.
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError>;
}

/// A Z-linear map of two tensors (sums, differences, concatenations), written once for every
/// ring word; see [`RingMap`].
pub trait RingMap2: Sync {
    /// Applies the map.
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError>;
}

/// A described linear map in object-safe form: what `Protocol::linear` takes. Every
/// [`RingMap`] is one.
pub trait LinearOp: Sync {
    /// The map modulo 2^64.
    fn apply(&self, x: &RingTensor) -> Result<RingTensor, ShapeError>;
    /// The same map modulo 2^128.
    fn apply_wide(&self, x: &WideTensor) -> Result<WideTensor, ShapeError>;
}

impl<T: RingMap> LinearOp for T {
    fn apply(&self, x: &RingTensor) -> Result<RingTensor, ShapeError> {
        self.map(x)
    }
    fn apply_wide(&self, x: &WideTensor) -> Result<WideTensor, ShapeError> {
        self.map(x)
    }
}

/// A described linear map of two tensors in object-safe form; every [`RingMap2`] is one.
pub trait LinearOp2: Sync {
    /// The map modulo 2^64.
    fn apply2(&self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor, ShapeError>;
    /// The same map modulo 2^128.
    fn apply2_wide(&self, a: &WideTensor, b: &WideTensor) -> Result<WideTensor, ShapeError>;
}

impl<T: RingMap2> LinearOp2 for T {
    fn apply2(&self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor, ShapeError> {
        self.map2(a, b)
    }
    fn apply2_wide(&self, a: &WideTensor, b: &WideTensor) -> Result<WideTensor, ShapeError> {
        self.map2(a, b)
    }
}

/// `first` then `second`.
pub struct Then<A, B>(pub A, pub B);

impl<A: RingMap, B: RingMap> RingMap for Then<A, B> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        self.1.map(&self.0.map(x)?)
    }
}

impl<M: RingMap + ?Sized> RingMap for &M {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        (**self).map(x)
    }
}

/// `a + b`.
pub struct Add;

impl RingMap2 for Add {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        a.add(b)
    }
}

/// `a - b`.
pub struct Sub;

impl RingMap2 for Sub {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        a.sub(b)
    }
}

/// `a + M(b)`: a sum with a mapped second operand (a bias broadcast over a batch).
pub struct AddMapped<M>(pub M);

impl<M: RingMap> RingMap2 for AddMapped<M> {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        a.add(&self.0.map(b)?)
    }
}

/// `a - M(b)`.
pub struct SubMapped<M>(pub M);

impl<M: RingMap> RingMap2 for SubMapped<M> {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        a.sub(&self.0.map(b)?)
    }
}

/// `a + c b` for the public ring constant `c`.
pub struct AddScaled(pub u64);

impl RingMap2 for AddScaled {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let c = W::lift(self.0);
        a.zip_with(b, "weighted sum", |x, y| x.wadd(y.wmul(c)))
    }
}

/// `-x`.
pub struct Neg;

impl RingMap for Neg {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        Ok(x.neg())
    }
}

/// `c x` for the public ring constant `c`.
pub struct Scale(pub u64);

impl RingMap for Scale {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        Ok(x.scale(self.0))
    }
}

/// The elementwise product with a public tensor of the same shape (its elements lifted).
pub struct MulPublic<'a>(pub &'a RingTensor);

impl RingMap for MulPublic<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        if x.shape() != self.0.shape() {
            return Err(ShapeError(format!("mul: shapes {:?} and {:?} differ", x.shape(), self.0.shape())));
        }
        let data = x.data().iter().zip(self.0.data()).map(|(&v, &c)| v.wmul(W::lift(c))).collect();
        Tensor::new(x.shape().to_vec(), data)
    }
}

/// The sum along an axis, which goes.
pub struct SumAxis(pub usize);

impl RingMap for SumAxis {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        x.sum_axis(self.0)
    }
}

/// The sum of every element, as a one-element vector.
pub struct SumAll;

impl RingMap for SumAll {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        Ok(Tensor::from_vec(vec![x.data().iter().fold(W::ZERO, |a, &v| a.wadd(v))]))
    }
}

/// The same elements under another shape.
pub struct Reshape<'a>(pub &'a [usize]);

impl RingMap for Reshape<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        x.reshape(self.0)
    }
}

/// The elements as a vector.
pub struct Flatten;

impl RingMap for Flatten {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        x.reshape(&[x.len()])
    }
}

/// The transpose of a matrix.
pub struct Transpose2;

impl RingMap for Transpose2 {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        x.transpose2()
    }
}

/// The `len` elements from flat position `from`, as a tensor of `shape` (a part of a
/// concatenation).
pub struct FlatRange<'a> {
    /// The first element taken.
    pub from: usize,
    /// The shape of the part (its element count is the number taken).
    pub shape: &'a [usize],
}

impl RingMap for FlatRange<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let len: usize = self.shape.iter().product();
        let part = x.data().get(self.from..self.from + len).ok_or_else(|| {
            ShapeError(format!("elements {}..{} of {:?}", self.from, self.from + len, x.shape()))
        })?;
        Tensor::new(self.shape.to_vec(), part.to_vec())
    }
}

/// Element `i` of the result (shaped `shape`) is the flat element `sources[i]` of the input, or
/// zero where that is `None`: every public selection or rearrangement (windows of a pooling,
/// a layer's inputs gathered for its backward pass).
pub struct Pick<'a> {
    /// The result's shape.
    pub shape: &'a [usize],
    /// Where each result element comes from.
    pub sources: &'a [Option<usize>],
}

impl RingMap for Pick<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        if let Some(j) = self.sources.iter().flatten().find(|&&j| j >= x.len()) {
            return Err(ShapeError(format!("element {j} of a tensor of shape {:?}", x.shape())));
        }
        let data = self.sources.iter().map(|s| s.map_or(W::ZERO, |j| x.data()[j])).collect();
        Tensor::new(self.shape.to_vec(), data)
    }
}

/// The transpose of [`Pick`]: input element `i` is added to the flat result element
/// `targets[i]` (dropped where that is `None`), in a zero tensor of `shape`.
pub struct ScatterAdd<'a> {
    /// The result's shape.
    pub shape: &'a [usize],
    /// Where each input element goes.
    pub targets: &'a [Option<usize>],
}

impl RingMap for ScatterAdd<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        if x.len() != self.targets.len() {
            return Err(ShapeError(format!("{} targets for {} elements", self.targets.len(), x.len())));
        }
        let n: usize = self.shape.iter().product();
        let mut out = vec![W::ZERO; n];
        for (&v, t) in x.data().iter().zip(self.targets) {
            if let Some(j) = *t {
                let o =
                    out.get_mut(j).ok_or_else(|| ShapeError(format!("target {j} beyond {n} elements")))?;
                *o = o.wadd(v);
            }
        }
        Tensor::new(self.shape.to_vec(), out)
    }
}

/// Both operands' elements, the first's then the second's, as a vector.
pub struct ConcatFlat;

impl RingMap2 for ConcatFlat {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a.data());
        v.extend_from_slice(b.data());
        Ok(Tensor::from_vec(v))
    }
}

/// The concatenation of two tensors along an axis.
pub struct ConcatAxis(pub usize);

impl RingMap2 for ConcatAxis {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        a.concat_axis(b, self.0)
    }
}

/// Test helpers: checks that a described map is the same map modulo 2^64 and 2^128, and
/// linear modulo 2^128.
pub mod check {
    use super::{LinearOp, LinearOp2};
    use crate::{RingTensor, Tensor, WideTensor};

    /// A deterministic stream of words for the checks (SplitMix64).
    fn words(seed: u64, n: usize) -> Vec<u128> {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..n).map(|_| (u128::from(next()) << 64) | u128::from(next())).collect()
    }

    fn wide(shape: &[usize], seed: u64) -> WideTensor {
        let n = shape.iter().product();
        Tensor::new(shape.to_vec(), words(seed, n)).expect("shape and data agree")
    }

    /// Panics unless `op` on a random tensor of `shape` modulo 2^128, reduced modulo 2^64,
    /// equals `op` on the reduced tensor, and `op(a x + y) = a op(x) + op(y)` modulo 2^128 for
    /// a random odd-or-even `a` (three seeds).
    pub fn assert_described(op: &dyn LinearOp, shape: &[usize]) {
        for seed in 1..4u64 {
            let (x, y) = (wide(shape, seed), wide(shape, seed + 100));
            let a = words(seed + 200, 1)[0] | u128::from(seed & 1 == 0);
            let fx = op.apply_wide(&x).expect("the map applies modulo 2^128");
            let low: RingTensor = op.apply(&x.low()).expect("the map applies modulo 2^64");
            assert_eq!(fx.low(), low, "the map modulo 2^128 disagrees with it modulo 2^64");
            let ax_y = x.map(|v| v.wrapping_mul(a)).add(&y).expect("same shapes");
            let lhs = op.apply_wide(&ax_y).expect("the map applies");
            let rhs = fx.map(|v| v.wrapping_mul(a)).add(&op.apply_wide(&y).expect("applies"));
            assert_eq!(lhs, rhs.expect("same shapes"), "the map is not linear modulo 2^128");
        }
    }

    /// [`assert_described`] for a map of two tensors of shapes `sa` and `sb`.
    pub fn assert_described2(op: &dyn LinearOp2, sa: &[usize], sb: &[usize]) {
        for seed in 1..4u64 {
            let (x1, x2) = (wide(sa, seed), wide(sb, seed + 50));
            let (y1, y2) = (wide(sa, seed + 100), wide(sb, seed + 150));
            let a = words(seed + 200, 1)[0] | u128::from(seed & 1 == 0);
            let fx = op.apply2_wide(&x1, &x2).expect("the map applies modulo 2^128");
            let low = op.apply2(&x1.low(), &x2.low()).expect("the map applies modulo 2^64");
            assert_eq!(fx.low(), low, "the map modulo 2^128 disagrees with it modulo 2^64");
            let scaled = |t: &WideTensor| t.map(|v| v.wrapping_mul(a));
            let lhs = op
                .apply2_wide(&scaled(&x1).add(&y1).expect("same"), &scaled(&x2).add(&y2).expect("same"))
                .expect("the map applies");
            let rhs = scaled(&fx).add(&op.apply2_wide(&y1, &y2).expect("applies")).expect("same");
            assert_eq!(lhs, rhs, "the map is not linear modulo 2^128");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check::{assert_described, assert_described2};
    use super::*;

    #[test]
    fn the_basic_maps_are_the_same_map_in_both_rings_and_linear() {
        let c = RingTensor::new(vec![2, 3], vec![3, u64::MAX, 1 << 63, 0, 7, 12345]).unwrap();
        assert_described(&Neg, &[2, 3]);
        assert_described(&Scale(u64::MAX - 4), &[2, 3]);
        assert_described(&MulPublic(&c), &[2, 3]);
        assert_described(&SumAxis(1), &[2, 3]);
        assert_described(&SumAll, &[2, 3]);
        assert_described(&Reshape(&[3, 2]), &[2, 3]);
        assert_described(&Flatten, &[2, 3]);
        assert_described(&Transpose2, &[2, 3]);
        assert_described(&FlatRange { from: 2, shape: &[2, 2] }, &[2, 3]);
        assert_described(&Then(Transpose2, Reshape(&[6])), &[2, 3]);
        assert_described(&Pick { shape: &[2, 2], sources: &[Some(5), None, Some(0), Some(5)] }, &[6]);
        assert_described(&ScatterAdd { shape: &[3], targets: &[Some(2), None, Some(0), Some(2)] }, &[4]);
        assert_described2(&Add, &[2, 3], &[2, 3]);
        assert_described2(&Sub, &[2, 3], &[2, 3]);
        assert_described2(&AddScaled(1 << 40), &[2, 3], &[2, 3]);
        assert_described2(&ConcatFlat, &[2, 3], &[4]);
        assert_described2(&ConcatAxis(1), &[2, 3, 2], &[2, 1, 2]);
        assert_described2(&AddMapped(Transpose2), &[3, 2], &[2, 3]);
        assert_described2(&SubMapped(Reshape(&[2, 3])), &[2, 3], &[6]);
    }

    /// A map that handles the two halves of a `u128` separately (the closure-on-u64 way) is
    /// what the check must reject: the carries out of the low half are lost.
    struct HalvesSeparately;

    impl LinearOp for HalvesSeparately {
        fn apply(&self, x: &RingTensor) -> Result<RingTensor, ShapeError> {
            Ok(x.scale(3))
        }
        fn apply_wide(&self, x: &WideTensor) -> Result<WideTensor, ShapeError> {
            Ok(x.map(|v| {
                let (lo, hi) = (v as u64, (v >> 64) as u64);
                (u128::from(hi.wrapping_mul(3)) << 64) | u128::from(lo.wrapping_mul(3))
            }))
        }
    }

    #[test]
    #[should_panic(expected = "not linear modulo 2^128")]
    fn the_check_rejects_a_map_that_drops_carries() {
        assert_described(&HalvesSeparately, &[4]);
    }
}
