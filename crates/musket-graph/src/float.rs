//! Plaintext f64 evaluation of a graph: the reference for `--check`, for choosing the number of
//! fractional bits, and for warning when intermediate values leave the fixed-point range.
//! Ops that only move elements reuse the ring helpers on the f64 bit patterns.

use crate::ir::{Comparison, FloatTensor, Graph, Op};
use crate::shape_ops::{
    broadcast_shapes, broadcast_to, gather, pad, resolve_reshape, same_pads, slice, split_range, transpose,
};
use musket_nn::{Conv2d, Pool2d};
use musket_ring::RingTensor;

/// What the float evaluation found.
#[derive(Debug, Clone)]
pub struct FloatRun {
    /// The output.
    pub output: FloatTensor,
    /// Largest magnitude of each node's output, in node order.
    pub max_abs: Vec<f64>,
    /// Shape of each node's output, in node order.
    pub shapes: Vec<Vec<usize>>,
}

fn bits(t: &FloatTensor) -> RingTensor {
    RingTensor::new(t.shape.clone(), t.data.iter().map(|v| v.to_bits()).collect()).expect("consistent tensor")
}

fn unbits(t: RingTensor) -> FloatTensor {
    FloatTensor { shape: t.shape().to_vec(), data: t.data().iter().map(|&b| f64::from_bits(b)).collect() }
}

fn moved(
    t: &FloatTensor,
    f: impl Fn(&RingTensor) -> Result<RingTensor, musket_ring::ShapeError>,
) -> Result<FloatTensor, String> {
    f(&bits(t)).map(unbits).map_err(|e| e.to_string())
}

fn zip(a: &FloatTensor, b: &FloatTensor, f: impl Fn(f64, f64) -> f64) -> Result<FloatTensor, String> {
    let shape = broadcast_shapes(&a.shape, &b.shape).map_err(|e| e.to_string())?;
    let (a, b) = (moved(a, |t| broadcast_to(t, &shape))?, moved(b, |t| broadcast_to(t, &shape))?);
    Ok(FloatTensor { shape, data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect() })
}

fn map(t: &FloatTensor, f: impl Fn(f64) -> f64) -> FloatTensor {
    FloatTensor { shape: t.shape.clone(), data: t.data.iter().map(|&v| f(v)).collect() }
}

/// `[m, k] x [k, n]` in f64 through ndarray (matrixmultiply's blocked, vectorised kernel):
/// the reference must keep up with ImageNet-size models.
fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let a = ndarray::ArrayView2::from_shape((m, k), a).expect("matmul: a is m x k");
    let b = ndarray::ArrayView2::from_shape((k, n), b).expect("matmul: b is k x n");
    a.dot(&b).into_raw_vec_and_offset().0
}

fn transpose2(t: &FloatTensor) -> Result<FloatTensor, String> {
    moved(t, |r| r.transpose2())
}

pub(crate) fn resolve_axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = if a < 0 { a + rank as i64 } else { a };
    if r < 0 || r as usize >= rank {
        return Err(format!("axis {a} out of range for rank {rank}"));
    }
    Ok(r as usize)
}

/// Applies `f` to each lane along `axis`.
fn along(t: &FloatTensor, axis: usize, f: impl Fn(&mut [f64])) -> FloatTensor {
    let s = &t.shape;
    let (outer, len, inner) =
        (s[..axis].iter().product::<usize>(), s[axis], s[axis + 1..].iter().product::<usize>());
    let mut out = t.clone();
    let mut lane = vec![0.0; len];
    for o in 0..outer {
        for i in 0..inner {
            for l in 0..len {
                lane[l] = t.data[(o * len + l) * inner + i];
            }
            f(&mut lane);
            for l in 0..len {
                out.data[(o * len + l) * inner + i] = lane[l];
            }
        }
    }
    out
}

fn conv(
    x: &FloatTensor,
    w: &FloatTensor,
    bias: Option<&FloatTensor>,
    cv: &Conv2d,
) -> Result<FloatTensor, String> {
    let ([n, c, h, wd], [o, cg, kh, kw]) = (
        x.shape[..].try_into().map_err(|_| "conv input must be 4-D")?,
        w.shape[..].try_into().map_err(|_| "conv weights must be 4-D")?,
    );
    if cv.groups == 0 || c != cg * cv.groups || o % cv.groups != 0 {
        return Err("conv channels do not fit the groups".into());
    }
    if bias.is_some_and(|b| b.data.len() != o) {
        return Err("conv bias length differs from the output channels".into());
    }
    let (ekh, ekw) = ((kh - 1) * cv.dilation[0] + 1, (kw - 1) * cv.dilation[1] + 1);
    if h + cv.pads[0] + cv.pads[2] < ekh || wd + cv.pads[1] + cv.pads[3] < ekw {
        return Err("conv kernel larger than the input".into());
    }
    let oh = (h + cv.pads[0] + cv.pads[2] - ekh) / cv.stride[0] + 1;
    let ow = (wd + cv.pads[1] + cv.pads[3] - ekw) / cv.stride[1] + 1;
    let og = o / cv.groups;
    let (taps, pixels) = (cg * kh * kw, oh * ow);
    let mut out = Vec::with_capacity(n * o * pixels);
    // im2col per image and group: cols[(cl, ki, kj), (i, j)], then weights x cols.
    let mut cols = vec![0.0; taps * pixels];
    for b in 0..n {
        for g in 0..cv.groups {
            for cl in 0..cg {
                let plane = &x.data[((b * c + g * cg + cl) * h) * wd..][..h * wd];
                for ki in 0..kh {
                    for kj in 0..kw {
                        let row = &mut cols[((cl * kh + ki) * kw + kj) * pixels..][..pixels];
                        for i in 0..oh {
                            let y = (i * cv.stride[0] + ki * cv.dilation[0]) as isize - cv.pads[0] as isize;
                            for j in 0..ow {
                                let xx =
                                    (j * cv.stride[1] + kj * cv.dilation[1]) as isize - cv.pads[1] as isize;
                                let inside = y >= 0 && (y as usize) < h && xx >= 0 && (xx as usize) < wd;
                                row[i * ow + j] =
                                    if inside { plane[y as usize * wd + xx as usize] } else { 0.0 };
                            }
                        }
                    }
                }
            }
            let wg = &w.data[g * og * taps..(g + 1) * og * taps];
            let mut y = matmul(wg, &cols, og, taps, pixels);
            if let Some(bias) = bias {
                for (oc, row) in y.chunks_mut(pixels).enumerate() {
                    let bv = bias.data[g * og + oc];
                    row.iter_mut().for_each(|v| *v += bv);
                }
            }
            out.extend_from_slice(&y);
        }
    }
    Ok(FloatTensor { shape: vec![n, o, oh, ow], data: out })
}

fn pool(x: &FloatTensor, p: &Pool2d, max: bool, include_pad: bool) -> Result<FloatTensor, String> {
    // The windows of the secure pooling (`musket_nn::pool_windows`): one geometry for both.
    let (shape, idx) = musket_nn::pool_windows(&x.shape, p).map_err(|e| e.to_string())?;
    let k = shape[4];
    let out = idx
        .chunks(k.max(1))
        .map(|window| {
            let taps: Vec<f64> = window.iter().flatten().map(|&i| x.data[i]).collect();
            if max {
                taps.iter().copied().fold(f64::MIN, f64::max)
            } else {
                taps.iter().sum::<f64>() / if include_pad { k } else { taps.len().max(1) } as f64
            }
        })
        .collect();
    Ok(FloatTensor { shape: shape[..4].to_vec(), data: out })
}

/// Evaluates `graph` on `input` in f64 (the model owner's weights must be present). With
/// [`Graph::ids`], `input` holds the token ids.
pub fn eval_f64(graph: &Graph, input: &FloatTensor) -> Result<FloatRun, String> {
    graph.validate()?;
    let mut vals: Vec<Option<FloatTensor>> = vec![None; 1 + graph.weights.len() + graph.nodes.len()];
    vals[0] = Some(match &graph.ids {
        Some(program) => program.one_hot_input(input)?,
        None => input.clone(),
    });
    for (i, (_, w)) in graph.weights.iter().enumerate() {
        vals[Graph::weight_id(i)] = Some(w.clone());
    }
    let mut max_abs = Vec::with_capacity(graph.nodes.len());
    let mut shapes = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let ins = node
            .inputs
            .iter()
            .enumerate()
            .map(|(k, &i)| vals[i].as_ref().ok_or_else(|| format!("node {:?}: missing input {k}", node.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let y = eval_op(&node.op, &ins).map_err(|e| format!("node {:?}: {e}", node.name))?;
        max_abs.push(y.data.iter().fold(0.0f64, |m, v| m.max(v.abs())));
        shapes.push(y.shape.clone());
        vals[node.output] = Some(y);
    }
    let output = vals[graph.output].take().ok_or("the graph output is never computed")?;
    Ok(FloatRun { output, max_abs, shapes })
}

/// The f64 meaning of one op on its inputs: the reference every other evaluation is compared
/// with, and (on zeros) the shape inference of the ops whose shape rule is not written out in
/// [`Op::output_shape`].
pub(crate) fn eval_op(op: &Op, ins: &[&FloatTensor]) -> Result<FloatTensor, String> {
    let get = |k: usize| -> Result<&FloatTensor, String> {
        ins.get(k).copied().ok_or_else(|| format!("missing input {k}"))
    };
    let err = |e: String| e;
    let y = match op {
        Op::Identity => get(0)?.clone(),
        Op::MatMul => {
            let (a, b) = (get(0)?, get(1)?);
            let (ra, rb) = (a.shape.len(), b.shape.len());
            if ra < 2 || rb < 2 {
                return Err(err("MatMul needs 2-D or higher operands".into()));
            }
            let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
            if b.shape[rb - 2] != k {
                return Err(err("MatMul shapes do not conform".into()));
            }
            let lead =
                broadcast_shapes(&a.shape[..ra - 2], &b.shape[..rb - 2]).map_err(|e| err(e.to_string()))?;
            let fa = moved(a, |t| broadcast_to(t, &[lead.clone(), vec![m, k]].concat()))?;
            let fb = moved(b, |t| broadcast_to(t, &[lead.clone(), vec![k, n]].concat()))?;
            let batch: usize = lead.iter().product();
            let mut data = Vec::with_capacity(batch * m * n);
            for i in 0..batch {
                data.extend(matmul(
                    &fa.data[i * m * k..(i + 1) * m * k],
                    &fb.data[i * k * n..(i + 1) * k * n],
                    m,
                    k,
                    n,
                ));
            }
            FloatTensor { shape: [lead, vec![m, n]].concat(), data }
        }
        Op::Gemm { trans_a, trans_b, alpha, beta } => {
            let a = if *trans_a { transpose2(get(0)?)? } else { get(0)?.clone() };
            let b = if *trans_b { transpose2(get(1)?)? } else { get(1)?.clone() };
            let ([m, k], [k2, n]) = (
                a.shape[..].try_into().map_err(|_| err("Gemm needs 2-D".into()))?,
                b.shape[..].try_into().map_err(|_| err("Gemm needs 2-D".into()))?,
            );
            if k != k2 {
                return Err(err("Gemm shapes do not conform".into()));
            }
            let mut y = FloatTensor {
                shape: vec![m, n],
                data: matmul(&a.data, &b.data, m, k, n).iter().map(|v| v * alpha).collect(),
            };
            if ins.len() > 2 {
                y = zip(&y, &map(get(2)?, |v| v * beta), |x, c| x + c).map_err(err)?;
            }
            y
        }
        Op::Conv { geometry, same } => {
            let (x, w) = (get(0)?, get(1)?);
            let mut g = *geometry;
            if let (Some(upper), [_, _, h, wd], [_, _, kh, kw]) = (same, &x.shape[..], &w.shape[..]) {
                g.pads = same_pads([*h, *wd], [*kh, *kw], g.stride, g.dilation, *upper);
            }
            conv(x, w, if ins.len() > 2 { Some(get(2)?) } else { None }, &g).map_err(err)?
        }
        Op::Add => zip(get(0)?, get(1)?, |a, b| a + b).map_err(err)?,
        Op::Sub => zip(get(0)?, get(1)?, |a, b| a - b).map_err(err)?,
        Op::Mul => zip(get(0)?, get(1)?, |a, b| a * b).map_err(err)?,
        Op::Div => zip(get(0)?, get(1)?, |a, b| a / b).map_err(err)?,
        Op::AddConst(c) => map(get(0)?, |v| v + c),
        Op::MulConst(c) => map(get(0)?, |v| v * c),
        Op::Affine => {
            let x = get(0)?;
            let mut s = vec![1; x.shape.len()];
            if s.len() < 2 {
                return Err(err("Affine needs [N, C, ...]".into()));
            }
            s[1] = x.shape[1];
            let sc = FloatTensor::new(s.clone(), get(1)?.data.clone())
                .ok_or_else(|| err("Affine scale length".into()))?;
            let sh =
                FloatTensor::new(s, get(2)?.data.clone()).ok_or_else(|| err("Affine shift length".into()))?;
            zip(&zip(x, &sc, |a, b| a * b).map_err(err)?, &sh, |a, b| a + b).map_err(err)?
        }
        Op::LayerNorm { eps } => {
            let x = get(0)?;
            let d = *x.shape.last().ok_or_else(|| err("LayerNorm of a scalar".into()))?;
            let (g, b) = (get(1)?, if ins.len() > 2 { Some(get(2)?) } else { None });
            if g.data.len() != d || b.is_some_and(|b| b.data.len() != d) {
                return Err(err("LayerNorm scale/bias length differs from the last axis".into()));
            }
            let mut out = x.clone();
            for row in out.data.chunks_mut(d.max(1)) {
                let mean = row.iter().sum::<f64>() / d as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
                for (i, v) in row.iter_mut().enumerate() {
                    *v = (*v - mean) / (var + eps).sqrt() * g.data[i] + b.map_or(0.0, |b| b.data[i]);
                }
            }
            out
        }
        Op::Relu => map(get(0)?, |v| v.max(0.0)),
        Op::Clip { lo, hi } => map(get(0)?, |v| v.clamp(*lo, *hi)),
        Op::LeakyRelu(a) => map(get(0)?, |v| if v >= 0.0 { v } else { a * v }),
        Op::Sigmoid => map(get(0)?, |v| 1.0 / (1.0 + (-v).exp())),
        Op::Tanh => map(get(0)?, f64::tanh),
        Op::Erf => map(get(0)?, musket_nn::reference::erf),
        Op::Sqrt => map(get(0)?, f64::sqrt),
        Op::Reciprocal => map(get(0)?, |v| 1.0 / v),
        Op::Softmax { axis: a, flatten, log } => {
            let x = get(0)?;
            let axis = resolve_axis(*a, x.shape.len()).map_err(err)?;
            let view = if *flatten {
                FloatTensor {
                    shape: vec![x.shape[..axis].iter().product(), x.shape[axis..].iter().product()],
                    data: x.data.clone(),
                }
            } else {
                x.clone()
            };
            let y = along(&view, if *flatten { 1 } else { axis }, |lane| {
                let m = lane.iter().copied().fold(f64::MIN, f64::max);
                let s: f64 = lane.iter().map(|v| (v - m).exp()).sum();
                for v in lane.iter_mut() {
                    *v = if *log { *v - m - s.ln() } else { (*v - m).exp() / s };
                }
            });
            FloatTensor { shape: x.shape.clone(), data: y.data }
        }
        Op::MaxPool { pool: p, same } => {
            let x = get(0)?;
            pool(x, &crate::node::resolve_pool(p, *same, &x.shape), true, false).map_err(err)?
        }
        Op::AveragePool { pool: p, same, count_include_pad } => {
            let x = get(0)?;
            pool(x, &crate::node::resolve_pool(p, *same, &x.shape), false, *count_include_pad).map_err(err)?
        }
        Op::Slice { starts, ends, axes, steps } => {
            moved(get(0)?, |t| slice(t, starts, ends, axes, steps)).map_err(err)?
        }
        Op::SplitPart { axis, index, count, sizes } => {
            let x = get(0)?;
            let a = resolve_axis(*axis, x.shape.len()).map_err(err)?;
            let (b, e) = split_range(x.shape[a], *index, *count, sizes).map_err(|e| err(e.to_string()))?;
            moved(x, |t| slice(t, &[b as i64], &[e as i64], &[a as i64], &[])).map_err(err)?
        }
        Op::Gather { axis, indices, indices_shape } => {
            let x = get(0)?;
            let a = resolve_axis(*axis, x.shape.len()).map_err(err)?;
            moved(x, |t| gather(t, a, indices, indices_shape)).map_err(err)?
        }
        Op::Expand(shape) => {
            let x = get(0)?;
            let target = broadcast_shapes(&x.shape, shape).map_err(|e| err(e.to_string()))?;
            moved(x, |t| broadcast_to(t, &target)).map_err(err)?
        }
        Op::GlobalAveragePool => {
            let x = get(0)?;
            let [n, c, h, w] = x.shape[..].try_into().map_err(|_| err("needs [N, C, H, W]".into()))?;
            FloatTensor {
                shape: vec![n, c, 1, 1],
                data: x
                    .data
                    .chunks((h * w).max(1))
                    .map(|ch| ch.iter().sum::<f64>() / (h * w).max(1) as f64)
                    .collect(),
            }
        }
        Op::Flatten(a) => {
            let x = get(0)?;
            // The same rule as the secure executor: an axis outside [-rank, rank] is an error
            // (this evaluator used to clamp it and flatten to [n, 1]).
            let a = if *a < 0 { *a + x.shape.len() as i64 } else { *a };
            if a < 0 || a as usize > x.shape.len() {
                return Err(err("Flatten axis out of range".into()));
            }
            let a = a as usize;
            FloatTensor {
                shape: vec![x.shape[..a].iter().product(), x.shape[a..].iter().product()],
                data: x.data.clone(),
            }
        }
        Op::Reshape(target) => {
            let x = get(0)?;
            FloatTensor {
                shape: resolve_reshape(&x.shape, target).map_err(|e| err(e.to_string()))?,
                data: x.data.clone(),
            }
        }
        Op::Transpose(perm) => {
            let x = get(0)?;
            let perm: Vec<usize> =
                if perm.is_empty() { (0..x.shape.len()).rev().collect() } else { perm.clone() };
            moved(x, |t| transpose(t, &perm)).map_err(err)?
        }
        Op::Concat(a) => {
            let mut acc = get(0)?.clone();
            let axis = resolve_axis(*a, acc.shape.len()).map_err(err)?;
            for k in 1..ins.len() {
                let b = bits(get(k)?);
                acc = moved(&acc, |t| t.concat_axis(&b, axis)).map_err(err)?;
            }
            acc
        }
        Op::Squeeze(axes) => {
            let x = get(0)?;
            let drop: Vec<usize> = if axes.is_empty() {
                (0..x.shape.len()).filter(|&d| x.shape[d] == 1).collect()
            } else {
                axes.iter().map(|&a| resolve_axis(a, x.shape.len())).collect::<Result<_, _>>().map_err(err)?
            };
            if drop.iter().any(|&d| x.shape[d] != 1) {
                return Err(err(format!("cannot squeeze axes {axes:?} of {:?}", x.shape)));
            }
            FloatTensor {
                shape: (0..x.shape.len()).filter(|d| !drop.contains(d)).map(|d| x.shape[d]).collect(),
                data: x.data.clone(),
            }
        }
        Op::Unsqueeze(axes) => {
            let x = get(0)?;
            let rank = x.shape.len() + axes.len();
            let ins: Vec<usize> =
                axes.iter().map(|&a| resolve_axis(a, rank)).collect::<Result<_, _>>().map_err(err)?;
            let mut it = x.shape.iter();
            FloatTensor {
                shape: (0..rank)
                    .map(|d| if ins.contains(&d) { 1 } else { *it.next().unwrap_or(&1) })
                    .collect(),
                data: x.data.clone(),
            }
        }
        Op::Pad { pads, value } => {
            let x = get(0)?;
            let y = moved(x, |t| pad(t, pads)).map_err(err)?;
            let mask = pad(&RingTensor::filled(&x.shape, 1), pads).map_err(|e| err(e.to_string()))?;
            FloatTensor {
                shape: y.shape.clone(),
                data: y
                    .data
                    .iter()
                    .zip(mask.data())
                    .map(|(&v, &m)| if m == 0 { *value } else { v })
                    .collect(),
            }
        }
        Op::ReduceMean { axes, keepdims } => {
            let x = get(0)?;
            let rank = x.shape.len();
            let axes: Vec<usize> = if axes.is_empty() {
                (0..rank).collect()
            } else {
                axes.iter().map(|&a| resolve_axis(a, rank)).collect::<Result<_, _>>().map_err(err)?
            };
            let mut y = x.clone();
            let mut sorted = axes.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            for &a in &sorted {
                let s = y.shape.clone();
                let (outer, len, inner) =
                    (s[..a].iter().product::<usize>(), s[a], s[a + 1..].iter().product::<usize>());
                let mut data = vec![0.0; outer * inner];
                for o in 0..outer {
                    for l in 0..len {
                        for i in 0..inner {
                            data[o * inner + i] += y.data[(o * len + l) * inner + i] / len as f64;
                        }
                    }
                }
                let mut shape = s;
                shape.remove(a);
                y = FloatTensor { shape, data };
            }
            if *keepdims {
                y.shape =
                    x.shape.iter().enumerate().map(|(d, &s)| if axes.contains(&d) { 1 } else { s }).collect();
            }
            y
        }
        Op::Exp => map(get(0)?, |v| v.clamp(musket_nn::EXP_DOMAIN.0, musket_nn::EXP_DOMAIN.1).exp()),
        Op::Log => map(get(0)?, f64::ln),
        Op::Abs => map(get(0)?, f64::abs),
        Op::Gelu => {
            map(get(0)?, |v| v * (1.0 + musket_nn::reference::erf(v / std::f64::consts::SQRT_2)) / 2.0)
        }
        Op::GeluTanh => map(get(0)?, |v| {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            v * (1.0 + (k * (v + 0.044_715 * v * v * v)).tanh()) / 2.0
        }),
        Op::Max => zip(get(0)?, get(1)?, f64::max)?,
        Op::Min => zip(get(0)?, get(1)?, f64::min)?,
        Op::ReduceSum { axes, keepdims } => reduce(get(0)?, axes, *keepdims, 0.0, |a, v| a + v)?,
        Op::ReduceMax { axes, keepdims, min: false } => {
            reduce(get(0)?, axes, *keepdims, f64::NEG_INFINITY, f64::max)?
        }
        Op::ReduceMax { axes, keepdims, min: true } => {
            reduce(get(0)?, axes, *keepdims, f64::INFINITY, f64::min)?
        }
        Op::AddPublic(c) => zip(get(0)?, c, |a, b| a + b)?,
        Op::Select { keep, fill } => {
            crate::ids::broadcast_zip(
                &[get(0)?, keep, fill],
                1 << 28,
                |v| if v[1] != 0.0 { v[0] } else { v[2] },
            )?
        }
        Op::Take { indices, shape } => {
            let all: Vec<f64> = ins.iter().flat_map(|t| t.data.iter().copied()).collect();
            let data = indices
                .iter()
                .map(|&i| {
                    all.get(i).copied().ok_or_else(|| format!("element index {i} beyond {}", all.len()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            FloatTensor::new(shape.clone(), data).ok_or("take indices do not match their shape")?
        }
        Op::AxisMap { axis, matrix } => {
            let x = get(0)?;
            let a = resolve_axis(*axis, x.shape.len())?;
            let (rows, n) = (matrix.shape[0], *matrix.shape.get(1).unwrap_or(&0));
            if n != x.shape[a] {
                return Err(format!("a map of {n} columns on axis {a} of {:?}", x.shape));
            }
            let (outer, inner) =
                (x.shape[..a].iter().product::<usize>(), x.shape[a + 1..].iter().product::<usize>());
            let mut shape = x.shape.clone();
            shape[a] = rows;
            let mut data = vec![0.0; outer * rows * inner];
            for o in 0..outer {
                for i in 0..rows {
                    for j in 0..n {
                        let w = matrix.data[i * n + j];
                        if w != 0.0 {
                            for k in 0..inner {
                                data[(o * rows + i) * inner + k] += w * x.data[(o * n + j) * inner + k];
                            }
                        }
                    }
                }
            }
            FloatTensor { shape, data }
        }
        Op::ArgMax { axis, keepdims, min, last } => {
            let x = get(0)?;
            let a = resolve_axis(*axis, x.shape.len())?;
            let (outer, n, inner) = (
                x.shape[..a].iter().product::<usize>(),
                x.shape[a],
                x.shape[a + 1..].iter().product::<usize>(),
            );
            let mut data = Vec::with_capacity(outer * inner);
            for o in 0..outer {
                for k in 0..inner {
                    let mut best = 0;
                    for j in 1..n {
                        let (v, b) = (x.data[(o * n + j) * inner + k], x.data[(o * n + best) * inner + k]);
                        let better = if *min { v < b } else { v > b };
                        if better || (*last && v == b) {
                            best = j;
                        }
                    }
                    data.push(best as f64);
                }
            }
            let mut shape = x.shape.clone();
            if *keepdims {
                shape[a] = 1;
            } else {
                shape.remove(a);
            }
            FloatTensor { shape, data }
        }
        Op::Compare(c) => {
            let c = *c;
            zip(get(0)?, get(1)?, move |a, b| {
                let holds = match c {
                    Comparison::Less => a < b,
                    Comparison::LessOrEqual => a <= b,
                    Comparison::Greater => a > b,
                    Comparison::GreaterOrEqual => a >= b,
                    Comparison::Equal => a == b,
                };
                f64::from(u8::from(holds))
            })?
        }
        Op::Where => {
            crate::ids::broadcast_zip(&[get(0)?, get(1)?, get(2)?], 1 << 28, |v| v[2] + v[0] * (v[1] - v[2]))?
        }
        Op::Lookup { offset, indices_shape, depth } => {
            let (hot, table) = (get(0)?, get(1)?);
            let n: usize = indices_shape.iter().product();
            let k = match table.shape[..] {
                [d, k] if d == *depth => k,
                _ => return Err(format!("a lookup of depth {depth} in a table of shape {:?}", table.shape)),
            };
            let rows = hot
                .data
                .get(*offset..offset + n * depth)
                .ok_or_else(|| format!("a lookup beyond the {} one-hot elements", hot.data.len()))?;
            let mut data = vec![0.0; n * k];
            for (r, row) in rows.chunks(*depth).enumerate() {
                for (j, &v) in row.iter().enumerate().filter(|(_, &v)| v != 0.0) {
                    for (d, &t) in data[r * k..(r + 1) * k].iter_mut().zip(&table.data[j * k..(j + 1) * k]) {
                        *d += v * t;
                    }
                }
            }
            FloatTensor { shape: [indices_shape.clone(), vec![k]].concat(), data }
        }
    };
    Ok(y)
}

/// The axes a reduction names, resolved (empty: all).
pub(crate) fn reduce_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    axes.iter().map(|&a| resolve_axis(a, rank)).collect()
}

/// The shape after reducing `axes` of `shape` (kept as size 1 with `keepdims`).
pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(d, &s)| match (axes.contains(&d), keepdims) {
            (false, _) => Some(s),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Folds `x` over `axes` (empty: all) with `f`, starting from `init`.
pub fn reduce(
    x: &FloatTensor,
    axes: &[i64],
    keepdims: bool,
    init: f64,
    f: impl Fn(f64, f64) -> f64,
) -> Result<FloatTensor, String> {
    let rank = x.shape.len();
    let axes = reduce_axes(axes, rank)?;
    let out_full = reduced_shape(&x.shape, &axes, true);
    let n_out: usize = out_full.iter().product();
    let mut data = vec![init; n_out];
    let mut idx = vec![0usize; rank];
    for &v in &x.data {
        let mut off = 0;
        for d in 0..rank {
            off = off * out_full[d] + if axes.contains(&d) { 0 } else { idx[d] };
        }
        data[off] = f(data[off], v);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < x.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(FloatTensor { shape: reduced_shape(&x.shape, &axes, keepdims), data })
}
