//! Plaintext tensor helpers used as linear maps on shares, and batching of several
//! multiplications into one round.

pub use musket_core::{concat_shares, split_share};
use musket_core::{Protocol, Result, Share};
use musket_ring::{RingTensor, ShapeError, Tensor, Word};

/// Numpy-style broadcast of `t` to `shape` (same rank; size-1 dimensions repeat).
pub fn broadcast<W: Word>(t: &Tensor<W>, shape: &[usize]) -> std::result::Result<Tensor<W>, ShapeError> {
    let src = t.shape();
    if src.len() != shape.len() || src.iter().zip(shape).any(|(&s, &d)| s != d && s != 1) {
        return Err(ShapeError(format!("cannot broadcast {src:?} to {shape:?}")));
    }
    let n: usize = shape.iter().product();
    let rank = shape.len();
    let mut src_strides = vec![0usize; rank];
    let mut acc = 1;
    for i in (0..rank).rev() {
        src_strides[i] = if src[i] == 1 { 0 } else { acc };
        acc *= src[i];
    }
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    let data = t.data();
    for _ in 0..n {
        out.push(data[idx.iter().zip(&src_strides).map(|(i, s)| i * s).sum::<usize>()]);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Tensor::new(shape.to_vec(), out)
}

/// Several independent elementwise products in one round: `out[i] = a[i] * b[i]` (ring
/// products, no truncation).
pub fn mul_many<P: Protocol>(p: &mut P, pairs: &[(&P::Share, &P::Share)]) -> Result<Vec<P::Share>> {
    if pairs.len() == 1 {
        return Ok(vec![p.mul(pairs[0].0, pairs[0].1)?]);
    }
    let lefts: Vec<&P::Share> = pairs.iter().map(|(a, _)| *a).collect();
    let rights: Vec<&P::Share> = pairs.iter().map(|(_, b)| *b).collect();
    let a = concat_shares(p, &lefts)?;
    let b = concat_shares(p, &rights)?;
    let prod = p.mul(&a, &b)?;
    let shapes: Vec<Vec<usize>> = pairs.iter().map(|(a, _)| a.shape().to_vec()).collect();
    split_share(p, &prod, &shapes)
}

/// Moves `axis` to the end; returns the permuted tensor.
pub(crate) fn axis_to_last<W: Word>(
    t: &Tensor<W>,
    axis: usize,
) -> std::result::Result<Tensor<W>, ShapeError> {
    let shape = t.shape();
    if axis >= shape.len() {
        return Err(ShapeError(format!("axis {axis} out of range for {shape:?}")));
    }
    let outer: usize = shape[..axis].iter().product();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(t.len());
    for o in 0..outer {
        for i in 0..inner {
            for l in 0..len {
                out.push(t.data()[(o * len + l) * inner + i]);
            }
        }
    }
    let mut new_shape: Vec<usize> =
        shape.iter().enumerate().filter(|(d, _)| *d != axis).map(|(_, &s)| s).collect();
    new_shape.push(len);
    Tensor::new(new_shape, out)
}

/// Inverse of [`axis_to_last`]: `t` has the moved axis last; `shape` is the original shape.
pub(crate) fn last_to_axis<W: Word>(
    t: &Tensor<W>,
    axis: usize,
    shape: &[usize],
) -> std::result::Result<Tensor<W>, ShapeError> {
    let outer: usize = shape[..axis].iter().product();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = vec![W::ZERO; t.len()];
    let mut k = 0;
    for o in 0..outer {
        for i in 0..inner {
            for l in 0..len {
                out[(o * len + l) * inner + i] = t.data()[k];
                k += 1;
            }
        }
    }
    Tensor::new(shape.to_vec(), out)
}

/// A public tensor of `shape` filled with the ring value `v`.
pub(crate) fn filled(shape: &[usize], v: u64) -> RingTensor {
    RingTensor::filled(shape, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_and_axis_moves() {
        let t = RingTensor::new(vec![1, 2, 1], vec![1, 2]).unwrap();
        assert_eq!(broadcast(&t, &[2, 2, 3]).unwrap().data(), &[1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]);
        assert!(broadcast(&t, &[2, 3, 3]).is_err());
        let x = RingTensor::new(vec![2, 3, 2], (0..12).collect()).unwrap();
        let m = axis_to_last(&x, 1).unwrap();
        assert_eq!(m.shape(), &[2, 2, 3]);
        assert_eq!(&m.data()[..3], &[0, 2, 4]);
        assert_eq!(last_to_axis(&m, 1, x.shape()).unwrap(), x);
    }
}
