//! Ops that rearrange elements by public indices (GatherElements, GatherND, the scatters, Tile,
//! DepthToSpace, SpaceToDepth, reversed slices, Trilu) and ArgMax: each becomes one
//! [`Op::Take`] (or a mask) computed here for the concrete shapes, so the secure evaluation is a
//! single linear move with no communication.

use super::{attr_i, attr_s, Builder, Ref};
use crate::ImportError;
use musket_graph::{FloatTensor, Op};
use onnx_protobuf::NodeProto;

/// Largest output an index map may describe.
const MAX_TAKE: usize = 1 << 26;

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The flat source index of every element of `out_shape`, in order.
fn index_map(
    out_shape: &[usize],
    mut source: impl FnMut(&[usize]) -> Result<usize, String>,
) -> Result<Vec<usize>, String> {
    let n = out_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_TAKE);
    let n = n.ok_or_else(|| format!("an output of shape {out_shape:?} is too large"))?;
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; out_shape.len()];
    for _ in 0..n {
        out.push(source(&idx)?);
        for d in (0..out_shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

fn flat(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// An index along a dimension of length `dim` (negative counts from the end).
fn wrap(i: f64, dim: usize) -> Result<usize, String> {
    let j = if i < 0.0 { i + dim as f64 } else { i };
    if i.fract() != 0.0 || j < 0.0 || j >= dim as f64 {
        return Err(format!("index {i} out of range for a dimension of {dim}"));
    }
    Ok(j as usize)
}

fn resolve(axis: i64, rank: usize) -> Result<usize, String> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a as usize >= rank {
        return Err(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(a as usize)
}

impl Builder {
    fn shape_of(&self, n: &NodeProto, r: &Ref) -> Result<Vec<usize>, ImportError> {
        self.static_shape(r)?
            .ok_or_else(|| self.unsupported(n, "on a value whose shape is only known for a concrete input"))
    }

    fn take(
        &mut self,
        n: &NodeProto,
        ins: Vec<Ref>,
        indices: Result<Vec<usize>, String>,
        shape: Vec<usize>,
    ) -> Result<(), ImportError> {
        let indices = indices.map_err(|e| self.invalid(n, e))?;
        let ins = ins.into_iter().map(|r| self.secret_ref(n, r)).collect::<Result<Vec<_>, _>>()?;
        self.emit(n, Op::Take { indices, shape }, ins)
    }

    /// The ops handled here; `Ok(false)` when `n` is none of them.
    pub(super) fn indexing_op(&mut self, n: &NodeProto) -> Result<bool, ImportError> {
        match n.op_type.as_str() {
            "ArgMax" | "ArgMin" => {
                let op = Op::ArgMax {
                    axis: attr_i(n, "axis", 0),
                    keepdims: attr_i(n, "keepdims", 1) != 0,
                    min: n.op_type == "ArgMin",
                    last: attr_i(n, "select_last_index", 0) != 0,
                };
                self.unary(n, op)?;
            }
            "GatherElements" => {
                let (data, idx) = (self.get(n, 0)?, self.constant(n, 1)?);
                let shape = self.shape_of(n, &data)?;
                let a = resolve(attr_i(n, "axis", 0), shape.len()).map_err(|e| self.invalid(n, e))?;
                if idx.shape.len() != shape.len() {
                    return Err(self.invalid(n, "indices and data differ in rank"));
                }
                let (st, ist) = (strides(&shape), strides(&idx.shape));
                let map = index_map(&idx.shape, |o| {
                    let mut at = o.to_vec();
                    at[a] = wrap(idx.data[flat(o, &ist)], shape[a])?;
                    if at.iter().zip(&shape).any(|(i, d)| i >= d) {
                        return Err("indices shape exceeds the data".into());
                    }
                    Ok(flat(&at, &st))
                });
                self.take(n, vec![data], map, idx.shape.clone())?;
            }
            "GatherND" => {
                let (data, idx) = (self.get(n, 0)?, self.constant(n, 1)?);
                let shape = self.shape_of(n, &data)?;
                let b = attr_i(n, "batch_dims", 0).max(0) as usize;
                let k = *idx.shape.last().ok_or_else(|| self.invalid(n, "scalar indices"))?;
                if b + k > shape.len() || idx.shape.len() < b + 1 || idx.shape[..b] != shape[..b] {
                    return Err(self.invalid(n, "indices do not fit the data"));
                }
                let out: Vec<usize> = [&idx.shape[..idx.shape.len() - 1], &shape[b + k..]].concat();
                let (st, ist) = (strides(&shape), strides(&idx.shape));
                let q = idx.shape.len() - 1;
                let map = index_map(&out, |o| {
                    let mut at: Vec<usize> = o[..b].to_vec();
                    let mut ipos: Vec<usize> = o[..q].to_vec();
                    ipos.push(0);
                    for j in 0..k {
                        ipos[q] = j;
                        at.push(wrap(idx.data[flat(&ipos, &ist)], shape[b + j])?);
                    }
                    at.extend_from_slice(&o[q..]);
                    Ok(flat(&at, &st))
                });
                self.take(n, vec![data], map, out)?;
            }
            "ScatterND" | "ScatterElements" | "Scatter" => {
                if attr_s(n, "reduction").is_some_and(|r| r != "none") {
                    return Err(self.unsupported(n, "reductions other than none"));
                }
                let (data, idx, updates) = (self.get(n, 0)?, self.constant(n, 1)?, self.get(n, 2)?);
                let shape = self.shape_of(n, &data)?;
                let ushape = self.shape_of(n, &updates)?;
                let total: usize = shape.iter().product();
                let st = strides(&shape);
                // Which update (if any) lands on each data element; later ones win, as in ONNX.
                let mut from: Vec<Option<usize>> = vec![None; total];
                let assign = (|| -> Result<(), String> {
                    if n.op_type == "ScatterND" {
                        let k = *idx.shape.last().ok_or("scalar indices")?;
                        let q = idx.shape.len() - 1;
                        let slice: usize = shape[k..].iter().product();
                        let rows: usize = idx.shape[..q].iter().product();
                        if ushape != [&idx.shape[..q], &shape[k..]].concat() {
                            return Err("updates do not fit the indices".into());
                        }
                        for r in 0..rows {
                            let at: Vec<usize> = (0..k)
                                .map(|j| wrap(idx.data[r * k + j], shape[j]))
                                .collect::<Result<_, _>>()?;
                            let base = flat(&at, &st[..k]);
                            for e in 0..slice {
                                from[base + e] = Some(r * slice + e);
                            }
                        }
                    } else {
                        let a = resolve(attr_i(n, "axis", 0), shape.len())?;
                        if idx.shape != ushape || idx.shape.len() != shape.len() {
                            return Err("indices and updates differ in shape".into());
                        }
                        let ist = strides(&idx.shape);
                        index_map(&idx.shape, |o| {
                            let mut at = o.to_vec();
                            at[a] = wrap(idx.data[flat(o, &ist)], shape[a])?;
                            if at.iter().zip(&shape).any(|(i, d)| i >= d) {
                                return Err("indices exceed the data".into());
                            }
                            from[flat(&at, &st)] = Some(flat(o, &ist));
                            Ok(0)
                        })?;
                    }
                    Ok(())
                })();
                assign.map_err(|e| self.invalid(n, e))?;
                let map = Ok(from.iter().enumerate().map(|(i, u)| u.map_or(i, |u| total + u)).collect());
                self.take(n, vec![data, updates], map, shape)?;
            }
            "Tile" => {
                let x = self.get(n, 0)?;
                let reps = self.constant(n, 1)?;
                let shape = self.shape_of(n, &x)?;
                if reps.data.len() != shape.len() || reps.data.iter().any(|&r| r < 0.0 || r.fract() != 0.0) {
                    return Err(self.invalid(n, "repeats do not fit the rank"));
                }
                let out: Vec<usize> = shape.iter().zip(&reps.data).map(|(&d, &r)| d * r as usize).collect();
                let st = strides(&shape);
                let map = index_map(&out, |o| {
                    Ok(o.iter().zip(&shape).zip(&st).map(|((i, d), s)| (i % d) * s).sum())
                });
                self.take(n, vec![x], map, out)?;
            }
            "DepthToSpace" | "SpaceToDepth" => {
                let x = self.get(n, 0)?;
                let shape = self.shape_of(n, &x)?;
                let b = usize::try_from(attr_i(n, "blocksize", 0))
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| self.invalid(n, "bad blocksize"))?;
                let [nn, c, h, w] = shape[..] else { return Err(self.invalid(n, "needs [N, C, H, W]")) };
                let st = strides(&shape);
                let crd = attr_s(n, "mode").as_deref() == Some("CRD");
                let (out, map) = if n.op_type == "DepthToSpace" {
                    if c % (b * b) != 0 {
                        return Err(self.invalid(n, "channels not divisible by blocksize^2"));
                    }
                    let oc = c / (b * b);
                    let out = vec![nn, oc, h * b, w * b];
                    let map = index_map(&out, |o| {
                        let (bi, bj) = (o[2] % b, o[3] % b);
                        let ch = if crd { o[1] * b * b + bi * b + bj } else { (bi * b + bj) * oc + o[1] };
                        Ok(flat(&[o[0], ch, o[2] / b, o[3] / b], &st))
                    });
                    (out, map)
                } else {
                    if h % b != 0 || w % b != 0 {
                        return Err(self.invalid(n, "height or width not divisible by blocksize"));
                    }
                    let out = vec![nn, c * b * b, h / b, w / b];
                    let map = index_map(&out, |o| {
                        // DCR (the default): blocks outside, channels inside; CRD (SpaceToDepth's
                        // mode from opset 24): channels outside.
                        let (blk, ch) =
                            if crd { (o[1] % (b * b), o[1] / (b * b)) } else { (o[1] / c, o[1] % c) };
                        let (bi, bj) = (blk / b, blk % b);
                        Ok(flat(&[o[0], ch, o[2] * b + bi, o[3] * b + bj], &st))
                    });
                    (out, map)
                };
                self.take(n, vec![x], map, out)?;
            }
            "Trilu" => {
                let x = self.get(n, 0)?;
                let shape = self.shape_of(n, &x)?;
                let k = if self.optional(n, 1)?.is_some() { self.scalar(n, 1)? as i64 } else { 0 };
                let upper = attr_i(n, "upper", 1) != 0;
                if shape.len() < 2 {
                    return Err(self.invalid(n, "needs 2-D or more"));
                }
                let (rows, cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
                let keep: Vec<f64> = (0..rows * cols)
                    .map(|i| {
                        let (r, c) = ((i / cols) as i64, (i % cols) as i64);
                        f64::from(u8::from(if upper { c - r >= k } else { c - r <= k }))
                    })
                    .collect();
                let keep = FloatTensor { shape: vec![rows, cols], data: keep };
                let zero = FloatTensor { shape: vec![], data: vec![0.0] };
                let x = self.secret_ref(n, x)?;
                self.emit(n, Op::Select { keep, fill: zero }, vec![x])?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Slice with a negative step: the reversed range as a [`Op::Take`].
    pub(super) fn reversed_slice(
        &mut self,
        n: &NodeProto,
        starts: &[i64],
        ends: &[i64],
        axes: &[i64],
        steps: &[i64],
    ) -> Result<(), ImportError> {
        let x = self.get(n, 0)?;
        let shape = self.shape_of(n, &x)?;
        let rank = shape.len();
        let mut ranges: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d).collect()).collect();
        for k in 0..starts.len() {
            let a = resolve(*axes.get(k).unwrap_or(&(k as i64)), rank).map_err(|e| self.invalid(n, e))?;
            let dim = shape[a] as i64;
            let step = *steps.get(k).unwrap_or(&1);
            if step == 0 {
                return Err(self.invalid(n, "a zero step"));
            }
            let norm = |v: i64| if v < 0 { v + dim } else { v };
            ranges[a] = if step > 0 {
                let (b, e) = (norm(starts[k]).clamp(0, dim), norm(ends[k]).clamp(0, dim));
                (b..e).step_by(step as usize).map(|v| v as usize).collect()
            } else {
                let (b, e) = (norm(starts[k]).clamp(0, dim - 1), norm(ends[k]).clamp(-1, dim - 1));
                let mut v = Vec::new();
                let mut i = b;
                while i > e {
                    v.push(i as usize);
                    i += step;
                }
                v
            };
        }
        let out: Vec<usize> = ranges.iter().map(Vec::len).collect();
        let st = strides(&shape);
        let map = index_map(&out, |o| Ok(o.iter().enumerate().map(|(d, &i)| ranges[d][i] * st[d]).sum()));
        self.take(n, vec![x], map, out)
    }
}
