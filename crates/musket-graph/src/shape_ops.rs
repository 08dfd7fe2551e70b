//! Plaintext shape manipulations used as linear maps on shares.

use musket_ring::{RingTensor, ShapeError};

/// Numpy broadcast of two shapes.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, ShapeError> {
    let rank = a.len().max(b.len());
    let pad = |s: &[usize]| [vec![1; rank - s.len()], s.to_vec()].concat();
    let (a, b) = (pad(a), pad(b));
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(ShapeError(format!("cannot broadcast {a:?} with {b:?}"))),
        })
        .collect()
}

/// Broadcasts `t` to `shape` (numpy rules, prepending size-1 dims).
pub(crate) fn broadcast_to(t: &RingTensor, shape: &[usize]) -> Result<RingTensor, ShapeError> {
    if t.shape() == shape {
        return Ok(t.clone());
    }
    let mut s = vec![1; shape.len().saturating_sub(t.shape().len())];
    s.extend_from_slice(t.shape());
    musket_nn::broadcast(&t.reshape(&s)?, shape)
}

/// Permutes axes.
pub(crate) fn transpose(t: &RingTensor, perm: &[usize]) -> Result<RingTensor, ShapeError> {
    let shape = t.shape();
    let rank = shape.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
        return Err(ShapeError(format!("bad permutation {perm:?} for {shape:?}")));
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let n = t.len();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        out.push(t.data()[idx.iter().enumerate().map(|(d, &i)| i * strides[perm[d]]).sum::<usize>()]);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    RingTensor::new(out_shape, out)
}

/// Pads with zeros (begins then ends per axis).
pub(crate) fn pad(t: &RingTensor, pads: &[usize]) -> Result<RingTensor, ShapeError> {
    let shape = t.shape();
    let rank = shape.len();
    if pads.len() != 2 * rank {
        return Err(ShapeError(format!("pads {pads:?} do not fit rank {rank}")));
    }
    let out_shape: Vec<usize> = (0..rank).map(|d| shape[d] + pads[d] + pads[rank + d]).collect();
    let mut out = vec![0u64; out_shape.iter().product()];
    let mut idx = vec![0usize; rank];
    for &v in t.data() {
        let mut off = 0;
        for d in 0..rank {
            off = off * out_shape[d] + idx[d] + pads[d];
        }
        out[off] = v;
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    RingTensor::new(out_shape, out)
}

/// Concatenates along `axis`.
pub(crate) fn concat(a: &RingTensor, b: &RingTensor, axis: usize) -> Result<RingTensor, ShapeError> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != sb.len() || axis >= sa.len() || (0..sa.len()).any(|d| d != axis && sa[d] != sb[d]) {
        return Err(ShapeError(format!("cannot concatenate {sa:?} and {sb:?} on axis {axis}")));
    }
    let outer: usize = sa[..axis].iter().product();
    let (ia, ib) = (sa[axis..].iter().product::<usize>(), sb[axis..].iter().product::<usize>());
    let mut out = Vec::with_capacity(a.len() + b.len());
    for o in 0..outer {
        out.extend_from_slice(&a.data()[o * ia..(o + 1) * ia]);
        out.extend_from_slice(&b.data()[o * ib..(o + 1) * ib]);
    }
    let mut shape = sa.to_vec();
    shape[axis] += sb[axis];
    RingTensor::new(shape, out)
}

/// Resolves an ONNX reshape target (0 copies the input dim, -1 is inferred).
pub(crate) fn resolve_reshape(input: &[usize], target: &[i64]) -> Result<Vec<usize>, ShapeError> {
    let n: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            0 => out.push(
                *input.get(i).ok_or_else(|| ShapeError(format!("reshape 0 at {i} beyond input rank")))?,
            ),
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            t if t > 0 => out.push(t as usize),
            _ => return Err(ShapeError(format!("bad reshape target {target:?}"))),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !n.is_multiple_of(known) {
            return Err(ShapeError(format!("cannot reshape {input:?} to {target:?}")));
        }
        out[i] = n / known;
    }
    if out.iter().product::<usize>() != n {
        return Err(ShapeError(format!("cannot reshape {input:?} to {target:?}")));
    }
    Ok(out)
}
