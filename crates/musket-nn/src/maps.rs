//! The layers' rearrangements of shares as described linear maps ([`musket_ring::RingMap`]):
//! each written once, for shares modulo 2^64 and 2^128 alike.

use crate::tensor_ops::{axis_to_last, broadcast, last_to_axis};
use musket_ring::{RingMap, ShapeError, Tensor, Word};

/// Numpy broadcast to a shape of the same rank.
pub(crate) struct Broadcast<'a>(pub &'a [usize]);

impl RingMap for Broadcast<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        broadcast(x, self.0)
    }
}

/// Reshaped to `keep` (the same elements, size-1 dimensions where they repeat), then
/// broadcast to `shape` (numpy rules, same rank): a row statistic spread over its row, a
/// channel's scale over its channel.
pub struct Widen<'a> {
    /// The input's elements under this shape (of `shape`'s rank).
    pub keep: &'a [usize],
    /// The result's shape.
    pub shape: &'a [usize],
}

impl RingMap for Widen<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        broadcast(&x.reshape(self.keep)?, self.shape)
    }
}

/// An axis moved to the end.
pub(crate) struct AxisToLast(pub usize);

impl RingMap for AxisToLast {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        axis_to_last(x, self.0)
    }
}

/// The inverse of [`AxisToLast`]: the last axis moved back to `axis` of `shape`.
pub(crate) struct LastToAxis<'a> {
    pub(crate) axis: usize,
    pub(crate) shape: &'a [usize],
}

impl RingMap for LastToAxis<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        last_to_axis(x, self.axis, self.shape)
    }
}

/// Grouped convolution weights `[O, C/g, kh, kw]` as the block-diagonal matrix `[O, k]`:
/// each output channel's `taps` in its group's columns.
pub(crate) struct BlockDiagonal {
    pub(crate) o: usize,
    pub(crate) k: usize,
    pub(crate) taps: usize,
    /// Output channels per group.
    pub(crate) per_group: usize,
}

impl RingMap for BlockDiagonal {
    fn map<W: Word>(&self, t: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let Self { o, k, taps, per_group } = *self;
        if t.len() != o * taps || per_group == 0 || o.div_ceil(per_group) * taps > k {
            return Err(ShapeError(format!("{:?} as {o} rows of {taps} taps in {k} columns", t.shape())));
        }
        let mut out = vec![W::ZERO; o * k];
        for oc in 0..o {
            let grp = oc / per_group;
            out[oc * k + grp * taps..][..taps].copy_from_slice(&t.data()[oc * taps..][..taps]);
        }
        Tensor::new(vec![o, k], out)
    }
}

/// A convolution's product `[O, N*OH*OW]` as the output `[N, O, OH, OW]`.
pub(crate) struct ImagesFirst {
    pub(crate) n: usize,
    pub(crate) o: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
}

impl RingMap for ImagesFirst {
    fn map<W: Word>(&self, t: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let Self { n, o, oh, ow } = *self;
        if n == 1 {
            return t.reshape(&[n, o, oh, ow]);
        }
        let area = oh * ow;
        if t.len() != n * o * area {
            return Err(ShapeError(format!("{:?} as [{o}, {n}, {oh}, {ow}]", t.shape())));
        }
        let mut out = vec![W::ZERO; t.len()];
        for oc in 0..o {
            for b in 0..n {
                out[(b * o + oc) * area..][..area].copy_from_slice(&t.data()[(oc * n + b) * area..][..area]);
            }
        }
        Tensor::new(vec![n, o, oh, ow], out)
    }
}

/// `sum_r c_r row_r` over rows of `n` elements of a flat tensor, shaped `shape`: each
/// coefficient a public ring constant, lifted by [`Word::lift`].
pub(crate) struct RowCombination<'a> {
    pub(crate) n: usize,
    pub(crate) coefs: &'a [(usize, u64)],
    pub(crate) shape: &'a [usize],
}

impl RingMap for RowCombination<'_> {
    fn map<W: Word>(&self, t: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let n = self.n;
        let mut out = vec![W::ZERO; n];
        for &(r, c) in self.coefs {
            let row = t.data().get(r * n..(r + 1) * n).ok_or_else(|| {
                ShapeError(format!("row {r} of {n} elements in a tensor of shape {:?}", t.shape()))
            })?;
            let c = W::lift(c);
            for (o, &b) in out.iter_mut().zip(row) {
                *o = o.wadd(b.wmul(c));
            }
        }
        Tensor::new(self.shape.to_vec(), out)
    }
}

/// The entries `picks` (in that order) along `axis`, each with the block of elements below it:
/// the candidates of a comparison tree's level.
pub(crate) struct SelectAlong<'a> {
    pub(crate) axis: usize,
    pub(crate) picks: &'a [usize],
}

impl RingMap for SelectAlong<'_> {
    fn map<W: Word>(&self, t: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        t.take_along(self.axis, self.picks)
    }
}

/// `sum_i i x[.., i]` over the last axis, which goes: an index from its one-hot vector.
pub(crate) struct PositionSum;

impl RingMap for PositionSum {
    fn map<W: Word>(&self, t: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let Some((&n, lead)) = t.shape().split_last().filter(|(&n, _)| n > 0) else {
            return Err(ShapeError(format!("the positions along the last axis of {:?}", t.shape())));
        };
        let idx = t
            .data()
            .chunks(n)
            .map(|row| {
                row.iter().enumerate().fold(W::ZERO, |acc, (i, &v)| acc.wadd(W::lift(i as u64).wmul(v)))
            })
            .collect();
        Tensor::new(lead.to_vec(), idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use musket_ring::maps::check::assert_described;

    #[test]
    fn the_layer_maps_are_the_same_map_in_both_rings_and_linear() {
        assert_described(&Broadcast(&[2, 3, 2]), &[2, 1, 2]);
        assert_described(&Widen { keep: &[1, 3, 1], shape: &[2, 3, 2] }, &[3]);
        assert_described(&AxisToLast(1), &[2, 3, 4]);
        assert_described(&LastToAxis { axis: 1, shape: &[2, 3, 4] }, &[2, 4, 3]);
        assert_described(&BlockDiagonal { o: 4, k: 6, taps: 3, per_group: 2 }, &[4, 3]);
        assert_described(&ImagesFirst { n: 2, o: 3, oh: 2, ow: 1 }, &[3, 4]);
        let coefs = [(0, 3), (2, u64::MAX), (0, 1 << 63)];
        assert_described(&SelectAlong { axis: 1, picks: &[2, 0, 2] }, &[2, 3, 2]);
        assert_described(&SelectAlong { axis: 1, picks: &[1] }, &[2, 3]);
        assert_described(&SelectAlong { axis: 1, picks: &[] }, &[2, 0]);
        assert_described(&PositionSum, &[2, 3, 4]);
        assert_described(&RowCombination { n: 2, coefs: &coefs, shape: &[1, 2] }, &[3, 2]);
    }
}
