//! Plaintext shape manipulations used as linear maps on shares.

use musket_ring::{ShapeError, Tensor, Word};

/// Largest tensor an op may create (elements).
const MAX_ELEMENTS: usize = 1 << 28;

/// The element count of `shape`, or an error above [`MAX_ELEMENTS`].
pub(crate) fn checked_elements(shape: &[usize]) -> Result<usize, ShapeError> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| ShapeError(format!("tensor of shape {shape:?} would exceed {MAX_ELEMENTS} elements")))
}

/// Numpy broadcast of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, ShapeError> {
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
pub(crate) fn broadcast_to<W: Word>(t: &Tensor<W>, shape: &[usize]) -> Result<Tensor<W>, ShapeError> {
    if t.shape() == shape {
        return Ok(t.clone());
    }
    checked_elements(shape)?;
    let mut s = vec![1; shape.len().saturating_sub(t.shape().len())];
    s.extend_from_slice(t.shape());
    musket_nn::broadcast(&t.reshape(&s)?, shape)
}

/// Permutes axes.
pub(crate) fn transpose<W: Word>(t: &Tensor<W>, perm: &[usize]) -> Result<Tensor<W>, ShapeError> {
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
    Tensor::new(out_shape, out)
}

/// Pads with zeros (begins then ends per axis).
pub(crate) fn pad<W: Word>(t: &Tensor<W>, pads: &[usize]) -> Result<Tensor<W>, ShapeError> {
    let shape = t.shape();
    let rank = shape.len();
    if pads.len() != 2 * rank {
        return Err(ShapeError(format!("pads {pads:?} do not fit rank {rank}")));
    }
    let out_shape: Vec<usize> = (0..rank).map(|d| shape[d] + pads[d] + pads[rank + d]).collect();
    let n = checked_elements(&out_shape)?;
    let mut out = vec![W::ZERO; n];
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
    Tensor::new(out_shape, out)
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

/// ONNX auto_pad SAME: pads `[top, left, bottom, right]` for a window on `[h, w]`.
pub fn same_pads(
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    upper: bool,
) -> [usize; 4] {
    let mut p = [0usize; 4];
    for d in 0..2 {
        let out = hw[d].div_ceil(stride[d].max(1));
        let span = (kernel[d].max(1) - 1) * dilation[d] + 1;
        let total = ((out.max(1) - 1) * stride[d] + span).saturating_sub(hw[d]);
        let (small, big) = (total / 2, total - total / 2);
        let (begin, end) = if upper { (small, big) } else { (big, small) };
        p[d] = begin;
        p[d + 2] = end;
    }
    p
}

/// ONNX Slice with positive steps; returns the element indices taken, per axis.
pub(crate) fn slice<W: Word>(
    t: &Tensor<W>,
    starts: &[i64],
    ends: &[i64],
    axes: &[i64],
    steps: &[i64],
) -> Result<Tensor<W>, ShapeError> {
    let shape = t.shape().to_vec();
    let rank = shape.len();
    let mut ranges: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d).collect()).collect();
    for k in 0..starts.len() {
        let ax = *axes.get(k).unwrap_or(&(k as i64));
        let ax = if ax < 0 { ax + rank as i64 } else { ax };
        if ax < 0 || ax as usize >= rank {
            return Err(ShapeError(format!("slice axis {ax} out of range for {shape:?}")));
        }
        let dim = shape[ax as usize] as i64;
        let step = *steps.get(k).unwrap_or(&1);
        if step <= 0 {
            return Err(ShapeError("slice steps must be positive".into()));
        }
        let clamp = |v: i64| (if v < 0 { v + dim } else { v }).clamp(0, dim);
        let (b, e) =
            (clamp(starts[k]), clamp(*ends.get(k).ok_or_else(|| ShapeError("slice ends missing".into()))?));
        ranges[ax as usize] = (b..e).step_by(step as usize).map(|v| v as usize).collect();
    }
    take(t, &ranges)
}

/// The sub-tensor at the cartesian product of per-axis index lists.
pub(crate) fn take<W: Word>(t: &Tensor<W>, ranges: &[Vec<usize>]) -> Result<Tensor<W>, ShapeError> {
    let shape = t.shape();
    let out_shape: Vec<usize> = ranges.iter().map(Vec::len).collect();
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let n: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        out.push(t.data()[idx.iter().enumerate().map(|(d, &i)| ranges[d][i] * strides[d]).sum::<usize>()]);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Tensor::new(out_shape, out)
}

/// ONNX Gather along `axis` with constant indices of shape `idx_shape`.
pub(crate) fn gather<W: Word>(
    t: &Tensor<W>,
    axis: usize,
    indices: &[i64],
    idx_shape: &[usize],
) -> Result<Tensor<W>, ShapeError> {
    let shape = t.shape();
    if axis >= shape.len() {
        return Err(ShapeError(format!("gather axis {axis} out of range for {shape:?}")));
    }
    let dim = shape[axis] as i64;
    let idx: Vec<usize> = indices
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            (0..dim)
                .contains(&j)
                .then_some(j as usize)
                .ok_or_else(|| ShapeError(format!("gather index {i} out of range {dim}")))
        })
        .collect::<Result<_, _>>()?;
    let out_shape: Vec<usize> = [&shape[..axis], idx_shape, &shape[axis + 1..]].concat();
    Tensor::new(out_shape, t.take_along(axis, &idx)?.into_data())
}

/// The slice range of part `index` of a Split.
pub(crate) fn split_range(
    dim: usize,
    index: usize,
    count: usize,
    sizes: &Option<Vec<usize>>,
) -> Result<(usize, usize), ShapeError> {
    match sizes {
        Some(s) => {
            if s.iter().sum::<usize>() != dim || index >= s.len() {
                return Err(ShapeError(format!("split sizes {s:?} do not fit {dim}")));
            }
            let b: usize = s[..index].iter().sum();
            Ok((b, b + s[index]))
        }
        None => {
            let part = dim.div_ceil(count.max(1));
            let b = (index * part).min(dim);
            Ok((b, ((index + 1) * part).min(dim)))
        }
    }
}

/// The elements of `sources` (flattened and concatenated) at `indices`, as a tensor of
/// `shape`: every public rearrangement of elements (GatherElements, GatherND, the scatters,
/// Tile, reversed slices) is one of these.
pub(crate) fn take_flat<W: Word>(
    sources: &[&Tensor<W>],
    indices: &[usize],
    shape: &[usize],
) -> Result<Tensor<W>, ShapeError> {
    let total: usize = sources.iter().map(|t| t.len()).sum();
    if checked_elements(shape)? != indices.len() {
        return Err(ShapeError(format!("{} indices for shape {shape:?}", indices.len())));
    }
    let mut out = Vec::with_capacity(indices.len());
    for &i in indices {
        if i >= total {
            return Err(ShapeError(format!("element index {i} beyond the {total} elements")));
        }
        let mut k = i;
        let mut value = W::ZERO;
        for t in sources {
            if k < t.len() {
                value = t.data()[k];
                break;
            }
            k -= t.len();
        }
        out.push(value);
    }
    Tensor::new(shape.to_vec(), out)
}

/// `y[.., i, ..] = sum_j m[i][j] x[.., j, ..]` along `axis` with the public integer matrix `m`
/// (`rows` x the axis length, each lifted by [`Word::lift`]), wrapping: exact on shares.
pub(crate) fn axis_map<W: Word>(
    t: &Tensor<W>,
    axis: usize,
    m: &[u64],
    rows: usize,
) -> Result<Tensor<W>, ShapeError> {
    let shape = t.shape();
    if axis >= shape.len() || m.len() != rows * shape[axis] {
        return Err(ShapeError(format!("a {rows}-row map does not fit axis {axis} of {shape:?}")));
    }
    let (outer, n, inner) =
        (shape[..axis].iter().product::<usize>(), shape[axis], shape[axis + 1..].iter().product::<usize>());
    let mut out_shape = shape.to_vec();
    out_shape[axis] = rows;
    checked_elements(&out_shape)?;
    let mut out = vec![W::ZERO; outer * rows * inner];
    for o in 0..outer {
        for i in 0..rows {
            let dst = &mut out[(o * rows + i) * inner..][..inner];
            for j in 0..n {
                if m[i * n + j] == 0 {
                    continue;
                }
                let w = W::lift(m[i * n + j]);
                let src = &t.data()[(o * n + j) * inner..][..inner];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = d.wadd(w.wmul(s));
                }
            }
        }
    }
    Tensor::new(out_shape, out)
}
