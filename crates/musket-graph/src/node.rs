//! Evaluation of one node on shares: the secure (or, on `Plain`, fixed-point) meaning of each
//! op, dispatched to the functions of `musket-nn`.

use crate::ir::{Comparison, FloatTensor, Node, Op, ValueId};
use crate::maps::{AxisMap, BroadcastTo, Gather, Pad, Permute, Slice, Take, TakeFlat};
use crate::shape_ops::{broadcast_shapes, broadcast_to, pad, resolve_reshape, same_pads, split_range};
use musket_core::maps::{self, Then};
use musket_core::{MpcError, Protocol, Result, Share};
use musket_nn as nn;
use musket_ring::{FixedPoint, RingTensor};
use std::borrow::Cow;

pub(crate) fn usage(node: &str, msg: impl std::fmt::Display) -> MpcError {
    MpcError::Usage(format!("node {node}: {msg}"))
}

pub(crate) fn encode(fp: FixedPoint, t: &FloatTensor) -> Result<RingTensor> {
    Ok(RingTensor::new(t.shape.clone(), fp.encode(&t.data)?)?)
}

/// A share, borrowed where it need not change.
type MaybeOwned<'a, P> = Cow<'a, <P as Protocol>::Share>;

/// Both operands at their common broadcast shape: borrowed where an operand has it already
/// (shares can be hundreds of megabytes: a residual sum must not copy them).
fn broadcast_pair<'a, P: Protocol>(
    p: &P,
    a: &'a P::Share,
    b: &'a P::Share,
) -> Result<(MaybeOwned<'a, P>, MaybeOwned<'a, P>)> {
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let widen = |x: &'a P::Share| -> Result<MaybeOwned<'a, P>> {
        Ok(if x.shape() == shape.as_slice() {
            Cow::Borrowed(x)
        } else {
            Cow::Owned(p.linear(x, &BroadcastTo(&shape))?)
        })
    };
    Ok((widen(a)?, widen(b)?))
}

fn matmul_2d<P: Protocol>(p: &mut P, fp: FixedPoint, a: &P::Share, b: &P::Share) -> Result<P::Share> {
    p.matmul_truncate(a, b, fp.frac_bits())
}

/// What a node may need besides its input values: the data owner's plaintext one-hot rows
/// of a token-id model (present at the data owner only).
pub(crate) struct NodeContext<'a> {
    /// The one-hot rows of every lookup, as integers (0 or 1), flattened: data owner only.
    pub(crate) one_hot: Option<&'a RingTensor>,
    /// The data owner's party id.
    pub(crate) data_owner: usize,
}

/// Computes `node` from the values available so far (`value(id)`).
pub(crate) fn eval_node<'v, P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    node: &Node,
    value: &dyn Fn(ValueId) -> Option<&'v P::Share>,
    ctx: &NodeContext<'_>,
) -> Result<P::Share> {
    let get = |k: usize| -> Result<&'v P::Share> {
        let id = *node.inputs.get(k).ok_or_else(|| usage(&node.name, format!("missing input {k}")))?;
        value(id).ok_or_else(|| usage(&node.name, "input not computed yet"))
    };
    let f = fp.frac_bits();
    let out: P::Share = match &node.op {
        Op::Identity => get(0)?.clone(),
        Op::MatMul => {
            let (a, b) = (get(0)?, get(1)?);
            if b.shape().len() == 2 {
                let [k, n] = b.shape()[..] else { unreachable!("rank checked") };
                let lead: Vec<usize> = a.shape()[..a.shape().len().saturating_sub(1)].to_vec();
                if a.shape().last() != Some(&k) {
                    return Err(usage(
                        &node.name,
                        format!("MatMul shapes {:?} and {:?} do not conform", a.shape(), b.shape()),
                    ));
                }
                let a2 = p.reshape(a, &[lead.iter().product(), k])?;
                let y = matmul_2d(p, fp, &a2, b)?;
                p.reshape(&y, &[lead, vec![n]].concat())?
            } else {
                batched_matmul(p, fp, &node.name, a, b)?
            }
        }
        Op::Gemm { trans_a, trans_b, alpha, beta } => {
            let (mut a, mut b) = (Cow::Borrowed(get(0)?), Cow::Borrowed(get(1)?));
            if a.shape().len() != 2 || b.shape().len() != 2 {
                return Err(usage(&node.name, "Gemm needs 2-D operands"));
            }
            if *trans_a {
                a = Cow::Owned(p.linear(&a, &maps::Transpose2)?);
            }
            if *trans_b {
                b = Cow::Owned(p.linear(&b, &maps::Transpose2)?);
            }
            let mut y = matmul_2d(p, fp, &a, &b)?;
            if *alpha != 1.0 {
                y = nn::scale_public(p, fp, &y, *alpha)?;
            }
            if node.inputs.len() > 2 {
                let mut c = Cow::Borrowed(get(2)?);
                if *beta != 1.0 {
                    c = Cow::Owned(nn::scale_public(p, fp, &c, *beta)?);
                }
                let (y2, c2) = broadcast_pair(p, &y, &c)?;
                y = p.add(&y2, &c2)?;
            }
            y
        }
        Op::Conv { geometry, same } => {
            let bias = if node.inputs.len() > 2 { Some(get(2)?) } else { None };
            let (x, w) = (get(0)?, get(1)?);
            let mut g = *geometry;
            if let (Some(upper), [_, _, h, wd], [_, _, kh, kw]) = (same, x.shape(), w.shape()) {
                g.pads = same_pads([*h, *wd], [*kh, *kw], g.stride, g.dilation, *upper);
            }
            nn::conv2d(p, fp, x, w, bias, &g)?
        }
        Op::Add | Op::Sub | Op::Mul => {
            let (a, b) = broadcast_pair(p, get(0)?, get(1)?)?;
            match node.op {
                Op::Add => p.add(&a, &b)?,
                Op::Sub => p.sub(&a, &b)?,
                _ => p.mul_truncate(&a, &b, f)?,
            }
        }
        Op::Div => {
            // The quotient's shape; the divisor keeps its own (broadcast inside `div`, so that
            // a row's divisor is normalised once, not once per element).
            let (a, b) = (get(0)?, get(1)?);
            let shape = broadcast_shapes(a.shape(), b.shape())?;
            let a =
                if a.shape() == shape.as_slice() { a.clone() } else { p.linear(a, &BroadcastTo(&shape))? };
            let mut aligned = vec![1; shape.len() - b.shape().len()];
            aligned.extend_from_slice(b.shape());
            let b = p.reshape(b, &aligned)?;
            nn::div(p, fp, &a, &b)?
        }
        Op::LayerNorm { eps } => {
            let x = get(0)?;
            let gamma = get(1)?;
            let beta =
                if node.inputs.len() > 2 { Cow::Borrowed(get(2)?) } else { Cow::Owned(p.scale(gamma, 0)?) };
            nn::layer_norm(p, fp, x, gamma, &beta, *eps)?
        }
        Op::AddConst(c) => {
            let x = get(0)?;
            let enc = fp.encode_one(*c).ok_or_else(|| usage(&node.name, "constant out of range"))?;
            p.add_public(x, &RingTensor::filled(x.shape(), enc))?
        }
        Op::MulConst(c) => {
            let x = get(0)?;
            nn::scale_public(p, fp, x, *c)?
        }
        Op::Affine => {
            let (x, s, t) = (get(0)?, get(1)?, get(2)?);
            nn::affine(p, fp, x, s, t)?
        }
        Op::Relu => {
            let x = get(0)?;
            nn::relu_bounded(p, fp, x)?
        }
        Op::Clip { lo, hi } => {
            let x = get(0)?;
            nn::clip_bounded(p, fp, x, *lo, *hi)?
        }
        Op::LeakyRelu(a) => {
            let x = get(0)?;
            nn::leaky_relu_bounded(p, fp, x, *a)?
        }
        Op::Sigmoid => {
            let x = get(0)?;
            nn::sigmoid(p, fp, x)?
        }
        Op::Tanh => {
            let x = get(0)?;
            nn::tanh(p, fp, x)?
        }
        Op::Erf => {
            let x = get(0)?;
            nn::erf(p, fp, x)?
        }
        Op::Sqrt => {
            let x = get(0)?;
            nn::sqrt(p, fp, x)?
        }
        Op::Reciprocal => {
            let x = get(0)?;
            nn::reciprocal(p, fp, x)?
        }
        Op::Softmax { axis: a, flatten, log } => {
            let x = get(0)?;
            let shape = x.shape().to_vec();
            let a = axis(&node.name, *a, shape.len())?;
            let (x2, a2) = if *flatten {
                (p.reshape(x, &[shape[..a].iter().product(), shape[a..].iter().product()])?, 1)
            } else {
                (x.clone(), a)
            };
            // The bounded forms: Softmax's operand bound (`bounds.rs`) is what makes their
            // narrow circuits right.
            let y = if *log {
                nn::log_softmax_bounded(p, fp, &x2, a2)?
            } else {
                nn::softmax_bounded(p, fp, &x2, a2)?
            };
            p.reshape(&y, &shape)?
        }
        Op::MaxPool { pool, same } => {
            let x = get(0)?;
            nn::max_pool2d_bounded(p, fp, x, &resolve_pool(pool, *same, x.shape()))?
        }
        Op::AveragePool { pool, same, count_include_pad } => {
            let x = get(0)?;
            nn::avg_pool2d(p, fp, x, &resolve_pool(pool, *same, x.shape()), *count_include_pad)?
        }
        Op::Slice { starts, ends, axes, steps } => p.linear(get(0)?, &Slice { starts, ends, axes, steps })?,
        Op::SplitPart { axis: a, index, count, sizes } => {
            let x = get(0)?;
            let a = axis(&node.name, *a, x.shape().len())?;
            let (b, e) = split_range(x.shape()[a], *index, *count, sizes)?;
            p.linear(x, &Slice { starts: &[b as i64], ends: &[e as i64], axes: &[a as i64], steps: &[] })?
        }
        Op::Gather { axis: a, indices, indices_shape } => {
            let x = get(0)?;
            let a = axis(&node.name, *a, x.shape().len())?;
            p.linear(x, &Gather { axis: a, indices, indices_shape })?
        }
        Op::Expand(shape) => {
            let x = get(0)?;
            let target = broadcast_shapes(x.shape(), shape)?;
            p.linear(x, &BroadcastTo(&target))?
        }
        Op::GlobalAveragePool => {
            let x = get(0)?;
            nn::global_avg_pool(p, fp, x)?
        }
        Op::Flatten(a) => {
            let x = get(0)?;
            let s = x.shape();
            let a = if *a < 0 { *a + s.len() as i64 } else { *a };
            if a < 0 || a as usize > s.len() {
                return Err(usage(&node.name, "Flatten axis out of range"));
            }
            let a = a as usize;
            p.reshape(x, &[s[..a].iter().product(), s[a..].iter().product()])?
        }
        Op::Squeeze(axes) => {
            let x = get(0)?;
            let s = x.shape().to_vec();
            let drop: Vec<usize> = if axes.is_empty() {
                (0..s.len()).filter(|&d| s[d] == 1).collect()
            } else {
                axes.iter().map(|&a| axis(&node.name, a, s.len())).collect::<Result<_>>()?
            };
            if drop.iter().any(|&d| s[d] != 1) {
                return Err(usage(&node.name, format!("cannot squeeze axes {axes:?} of {s:?}")));
            }
            let kept: Vec<usize> = (0..s.len()).filter(|d| !drop.contains(d)).map(|d| s[d]).collect();
            p.reshape(x, &kept)?
        }
        Op::Unsqueeze(axes) => {
            let x = get(0)?;
            let s = x.shape().to_vec();
            let rank = s.len() + axes.len();
            let ins: Vec<usize> = axes.iter().map(|&a| axis(&node.name, a, rank)).collect::<Result<_>>()?;
            let mut it = s.iter();
            let shape: Vec<usize> =
                (0..rank).map(|d| if ins.contains(&d) { 1 } else { *it.next().unwrap_or(&1) }).collect();
            p.reshape(x, &shape)?
        }
        Op::Reshape(target) => {
            let x = get(0)?;
            let shape = resolve_reshape(x.shape(), target)?;
            p.reshape(x, &shape)?
        }
        Op::Transpose(perm) => {
            let x = get(0)?;
            let perm: Vec<usize> =
                if perm.is_empty() { (0..x.shape().len()).rev().collect() } else { perm.clone() };
            p.linear(x, &Permute(&perm))?
        }
        Op::Concat(a) => {
            let mut acc = get(0)?.clone();
            let a = axis(&node.name, *a, acc.shape().len())?;
            for k in 1..node.inputs.len() {
                acc = p.linear2(&acc, get(k)?, &maps::ConcatAxis(a))?;
            }
            acc
        }
        Op::Pad { pads, value } => {
            let x = get(0)?;
            let y = p.linear(x, &Pad(pads))?;
            if *value != 0.0 {
                let enc = fp.encode_one(*value).ok_or_else(|| usage(&node.name, "pad value out of range"))?;
                let ones = pad(&RingTensor::filled(x.shape(), 1), pads)?;
                let fill = ones.map(|v| if v == 0 { enc } else { 0 });
                p.add_public(&y, &fill)?
            } else {
                y
            }
        }
        Op::ReduceMean { axes, keepdims } => {
            let x = get(0)?;
            let shape = x.shape().to_vec();
            let axes: Vec<usize> = if axes.is_empty() {
                (0..shape.len()).collect()
            } else {
                axes.iter().map(|&a| axis(&node.name, a, shape.len())).collect::<Result<_>>()?
            };
            let mut sorted = axes.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let mut y = x.clone();
            let mut count = 1usize;
            for &a in &sorted {
                count *=
                    shape.get(a).copied().ok_or_else(|| usage(&node.name, "ReduceMean axis out of range"))?;
                y = p.sum_axis(&y, a)?;
            }
            let mut y = nn::scale_public_fine(p, fp, &y, 1.0 / count.max(1) as f64)?;
            if *keepdims {
                let kept: Vec<usize> =
                    shape.iter().enumerate().map(|(d, &s)| if axes.contains(&d) { 1 } else { s }).collect();
                y = p.reshape(&y, &kept)?;
            }
            y
        }
        Op::Exp => nn::exp(p, fp, get(0)?)?,
        Op::Log => nn::log(p, fp, get(0)?)?,
        Op::Abs => nn::abs(p, get(0)?)?,
        Op::Gelu => nn::gelu(p, fp, get(0)?)?,
        Op::GeluTanh => nn::gelu_tanh(p, fp, get(0)?)?,
        Op::Max | Op::Min => {
            let (a, b) = broadcast_pair(p, get(0)?, get(1)?)?;
            if node.op == Op::Max {
                nn::maximum(p, &a, &b)?
            } else {
                nn::minimum(p, &a, &b)?
            }
        }
        Op::ReduceSum { axes, keepdims } | Op::ReduceMax { axes, keepdims, .. } => {
            let x = get(0)?;
            let shape = x.shape().to_vec();
            let axes = crate::float::reduce_axes(axes, shape.len()).map_err(|e| usage(&node.name, e))?;
            let mut sorted = axes.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let mut y = x.clone();
            for &a in &sorted {
                y = match node.op {
                    Op::ReduceMax { min: false, .. } => nn::max_along(p, &y, a)?,
                    Op::ReduceMax { min: true, .. } => nn::min_along(p, &y, a)?,
                    _ => p.sum_axis(&y, a)?,
                };
            }
            p.reshape(&y, &crate::float::reduced_shape(&shape, &axes, *keepdims))?
        }
        Op::AddPublic(c) => {
            let x = get(0)?;
            let shape = broadcast_shapes(x.shape(), &c.shape)?;
            let x =
                if x.shape() == shape.as_slice() { x.clone() } else { p.linear(x, &BroadcastTo(&shape))? };
            let c = broadcast_to(&encode(fp, c)?, &shape)?;
            p.add_public(&x, &c)?
        }
        Op::Select { keep, fill } => {
            let x = get(0)?;
            let shape = broadcast_shapes(&broadcast_shapes(x.shape(), &keep.shape)?, &fill.shape)?;
            let x =
                if x.shape() == shape.as_slice() { x.clone() } else { p.linear(x, &BroadcastTo(&shape))? };
            let keep = broadcast_to(
                &RingTensor::new(keep.shape.clone(), keep.data.iter().map(|&k| k as u64).collect())?,
                &shape,
            )?;
            let fill = broadcast_to(&encode(fp, fill)?, &shape)?;
            // Multiplying each share by a public 0 or 1 is linear and exact.
            let kept = p.linear(&x, &maps::MulPublic(&keep))?;
            let dropped = fill.zip_with(&keep, "select", |f, k| if k == 0 { f } else { 0 })?;
            p.add_public(&kept, &dropped)?
        }
        Op::Take { indices, shape } => match node.inputs.len() {
            1 => p.linear(get(0)?, &TakeFlat { indices, shape })?,
            2 => p.linear2(get(0)?, get(1)?, &TakeFlat { indices, shape })?,
            k => return Err(usage(&node.name, format!("Take of {k} inputs"))),
        },
        Op::AxisMap { axis: a, matrix } => {
            let x = get(0)?;
            let a = axis(&node.name, *a, x.shape().len())?;
            let rows = matrix.shape[0];
            if matrix.data.iter().all(|w| w.fract() == 0.0 && w.abs() < 2f64.powi(40)) {
                let m: Vec<u64> = matrix.data.iter().map(|&w| w as i64 as u64).collect();
                p.linear(x, &AxisMap { axis: a, matrix: &m, rows })?
            } else {
                // Weights at f fractional bits; each output is a sum of weights times inputs at 2f.
                let m = fp.encode(&matrix.data)?;
                let y = p.linear(x, &AxisMap { axis: a, matrix: &m, rows })?;
                p.truncate(&y, f)?
            }
        }
        Op::ArgMax { axis: a, keepdims, min, last } => {
            let x = get(0)?;
            let shape = x.shape().to_vec();
            let a = axis(&node.name, *a, shape.len())?;
            let n = shape[a];
            let mut v = if *min { p.neg(x)? } else { x.clone() };
            if *last {
                // Ties go to the first index of the reversed axis.
                let mut ranges: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d).collect()).collect();
                ranges[a] = (0..n).rev().collect();
                v = p.linear(&v, &Take(&ranges))?;
            }
            let idx = nn::argmax_index(p, &v, a)?;
            let mut y = p.scale(&idx, 1u64 << f)?;
            if *last {
                let top =
                    fp.encode_one((n as f64) - 1.0).ok_or_else(|| usage(&node.name, "axis too long"))?;
                let neg = p.neg(&y)?;
                y = p.add_public(&neg, &RingTensor::filled(neg.shape(), top))?;
            }
            let mut out_shape = shape.clone();
            if *keepdims {
                out_shape[a] = 1;
            } else {
                out_shape.remove(a);
            }
            p.reshape(&y, &out_shape)?
        }
        Op::Compare(c) => {
            let (a, b) = broadcast_pair(p, get(0)?, get(1)?)?;
            let bit = match c {
                Comparison::Less => nn::lt(p, &a, &b)?,
                Comparison::LessOrEqual => nn::le(p, &a, &b)?,
                Comparison::Greater => nn::gt(p, &a, &b)?,
                Comparison::GreaterOrEqual => nn::ge(p, &a, &b)?,
                Comparison::Equal => nn::eq(p, &a, &b)?,
            };
            p.scale(&bit, 1u64 << f)?
        }
        Op::Where => {
            let (a, b) = broadcast_pair(p, get(1)?, get(2)?)?;
            let diff = p.sub(&a, &b)?;
            let (c, d) = broadcast_pair(p, get(0)?, &diff)?;
            let b =
                if b.shape() == d.shape() { b } else { Cow::Owned(p.linear(&b, &BroadcastTo(d.shape()))?) };
            let picked = p.mul_truncate(&c, &d, f)?;
            p.add(&b, &picked)?
        }
        Op::Lookup { offset, indices_shape, depth } => {
            let table = get(1)?;
            let rows: usize = indices_shape.iter().product();
            let part = match ctx.one_hot {
                Some(hot) => {
                    let slice = hot
                        .data()
                        .get(*offset..offset + rows * depth)
                        .ok_or_else(|| usage(&node.name, "a lookup beyond the one-hot rows"))?;
                    Some(RingTensor::new(vec![rows, *depth], slice.to_vec())?)
                }
                None => None,
            };
            let y = p.onehot_matmul(ctx.data_owner, part.as_ref(), rows, table)?;
            let k = y.shape()[1];
            p.reshape(&y, &[indices_shape.clone(), vec![k]].concat())?
        }
    };
    Ok(out)
}

/// `a [.., m, k] @ b [.., k, n]` with numpy broadcasting of the leading dimensions, as one
/// batched product and one truncation.
fn batched_matmul<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    name: &str,
    a: &P::Share,
    b: &P::Share,
) -> Result<P::Share> {
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    if sa.len() < 2 || sb.len() < 2 || sa[sa.len() - 1] != sb[sb.len() - 2] {
        return Err(usage(name, format!("MatMul shapes {sa:?} and {sb:?} do not conform")));
    }
    let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
    let lead = broadcast_shapes(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    let batch: usize = lead.iter().product();
    let full_a = [lead.clone(), vec![m, k]].concat();
    let full_b = [lead.clone(), vec![k, n]].concat();
    let a3 = p.linear(a, &Then(BroadcastTo(&full_a), maps::Reshape(&[batch, m, k])))?;
    let b3 = p.linear(b, &Then(BroadcastTo(&full_b), maps::Reshape(&[batch, k, n])))?;
    let y = p.matmul_batched_truncate(&a3, &b3, fp.frac_bits())?;
    p.reshape(&y, &[lead, vec![m, n]].concat())
}

/// Pool geometry with auto_pad SAME resolved for an `[N, C, H, W]` input.
pub fn resolve_pool(pool: &nn::Pool2d, same: Option<bool>, shape: &[usize]) -> nn::Pool2d {
    match (same, shape) {
        (Some(upper), [_, _, h, w]) => {
            nn::Pool2d { pads: same_pads([*h, *w], pool.kernel, pool.stride, pool.dilation, upper), ..*pool }
        }
        _ => *pool,
    }
}

/// Resolves a possibly negative axis against `rank`.
fn axis(node: &str, a: i64, rank: usize) -> Result<usize> {
    let r = if a < 0 { a + rank as i64 } else { a };
    if r < 0 || r as usize >= rank {
        return Err(usage(node, format!("axis {a} out of range for rank {rank}")));
    }
    Ok(r as usize)
}
