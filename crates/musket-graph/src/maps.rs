//! The shape operations of [`crate::shape_ops`] as described linear maps
//! ([`musket_ring::RingMap`]): each written once, for shares modulo 2^64 and 2^128 alike.

use crate::shape_ops::{axis_map, broadcast_to, gather, pad, slice, take, take_flat, transpose};
use musket_ring::{RingMap, RingMap2, ShapeError, Tensor, Word};

/// Numpy broadcast to a shape (size-1 dimensions prepended).
pub(crate) struct BroadcastTo<'a>(pub &'a [usize]);

impl RingMap for BroadcastTo<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        broadcast_to(x, self.0)
    }
}

/// A permutation of the axes.
pub(crate) struct Permute<'a>(pub &'a [usize]);

impl RingMap for Permute<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        transpose(x, self.0)
    }
}

/// Zeros before and after each axis (begins then ends).
pub(crate) struct Pad<'a>(pub &'a [usize]);

impl RingMap for Pad<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        pad(x, self.0)
    }
}

/// ONNX Slice with positive steps.
pub(crate) struct Slice<'a> {
    pub(crate) starts: &'a [i64],
    pub(crate) ends: &'a [i64],
    pub(crate) axes: &'a [i64],
    pub(crate) steps: &'a [i64],
}

impl RingMap for Slice<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        slice(x, self.starts, self.ends, self.axes, self.steps)
    }
}

/// The sub-tensor at the cartesian product of per-axis index lists.
pub(crate) struct Take<'a>(pub &'a [Vec<usize>]);

impl RingMap for Take<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        take(x, self.0)
    }
}

/// ONNX Gather along an axis with constant indices.
pub(crate) struct Gather<'a> {
    pub(crate) axis: usize,
    pub(crate) indices: &'a [i64],
    pub(crate) indices_shape: &'a [usize],
}

impl RingMap for Gather<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        gather(x, self.axis, self.indices, self.indices_shape)
    }
}

/// The elements at flat `indices` of one source (as a [`RingMap`]) or of two concatenated
/// sources (as a [`RingMap2`]), shaped `shape`.
pub(crate) struct TakeFlat<'a> {
    pub(crate) indices: &'a [usize],
    pub(crate) shape: &'a [usize],
}

impl RingMap for TakeFlat<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        take_flat(&[x], self.indices, self.shape)
    }
}

impl RingMap2 for TakeFlat<'_> {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        take_flat(&[a, b], self.indices, self.shape)
    }
}

/// A public integer matrix applied along an axis.
pub(crate) struct AxisMap<'a> {
    pub(crate) axis: usize,
    pub(crate) matrix: &'a [u64],
    pub(crate) rows: usize,
}

impl RingMap for AxisMap<'_> {
    fn map<W: Word>(&self, x: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        axis_map(x, self.axis, self.matrix, self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use musket_ring::maps::check::{assert_described, assert_described2};
    use musket_ring::maps::{Reshape, Then};

    #[test]
    fn the_shape_maps_are_the_same_map_in_both_rings_and_linear() {
        assert_described(&BroadcastTo(&[2, 3, 4]), &[3, 1]);
        assert_described(&Then(BroadcastTo(&[2, 3, 4]), Reshape(&[6, 4])), &[1, 4]);
        assert_described(&Permute(&[2, 0, 1]), &[2, 3, 4]);
        assert_described(&Pad(&[1, 0, 2, 1]), &[2, 3]);
        assert_described(&Slice { starts: &[1], ends: &[-1], axes: &[1], steps: &[2] }, &[2, 6]);
        assert_described(&Take(&[vec![1, 0], vec![2, 2, 0]]), &[2, 3]);
        assert_described(&Gather { axis: 1, indices: &[2, -1, 0], indices_shape: &[3] }, &[2, 4]);
        assert_described(&TakeFlat { indices: &[5, 0, 0, 3], shape: &[2, 2] }, &[6]);
        assert_described2(&TakeFlat { indices: &[7, 0, 4], shape: &[3] }, &[3], &[5]);
        let m = [1, u64::MAX, 0, 2, 3, 1 << 40];
        assert_described(&AxisMap { axis: 0, matrix: &m, rows: 2 }, &[3, 2]);
    }
}
