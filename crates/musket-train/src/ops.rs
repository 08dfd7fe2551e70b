//! The forward and backward pass of every op training supports, each written once against
//! [`Calc`] (so the f64 reference and the secure run share every formula). A backward pass
//! maps the gradient of a node's output to the gradients of the inputs that need one.
//!
//! Gradients flow unscaled: the loss's `1 / batch` (and the learning rate) are applied once,
//! at the weight update, with 12 extra fractional bits (`crate::train`). Every backward
//! formula is linear in the incoming gradient, so deferring the factor changes nothing
//! mathematically and keeps small gradients far above the fixed-point resolution.

use crate::calc::Calc;
use crate::index::{broadcast_src, conv_maps, transpose2_src, transpose_src, ConvMaps};
use musket_core::{MpcError, Result};
use musket_graph::{broadcast_shapes, resolve_pool, same_pads, Node, Op};
use musket_nn::pool_windows;

/// What a forward pass keeps for its backward pass (besides the node's inputs and output).
pub(crate) enum Saved<C: Calc> {
    /// Nothing beyond inputs and output.
    Nothing,
    /// ReLU: where the input was negative.
    Mask(C::Mask),
    /// Convolution: the im2col matrix, the weight matrix and the maps.
    Conv {
        /// `[rows, k]`.
        cols: C::T,
        /// `[k, o]`.
        wmat: C::T,
        /// The index maps.
        maps: Box<ConvMaps>,
    },
    /// Max-pooling: the window slots' sources and the one-hot position of each maximum.
    MaxPool {
        /// `[N, C, OH, OW, K]`.
        shape: Vec<usize>,
        /// Sources of the window slots in the input.
        src: Vec<Option<usize>>,
        /// 0/1 indicators, `[N, C, OH, OW, K]`.
        onehot: C::T,
    },
    /// Average pooling: the window slots' sources and each window's `1 / count`.
    AvgPool {
        /// `[N, C, OH, OW, K]`.
        shape: Vec<usize>,
        /// Sources of the window slots in the input.
        src: Vec<Option<usize>>,
        /// One factor per output element.
        scales: Vec<f64>,
    },
    /// Log-softmax: the softmax of the input.
    Softmax(C::T),
}

fn usage(node: &Node, msg: impl std::fmt::Display) -> MpcError {
    MpcError::Usage(format!("node {} ({}): {msg}", node.name, node.op_type))
}

/// Why training cannot run `node`, or `None` when it can.
pub(crate) fn unsupported(node: &Node) -> Option<String> {
    match &node.op {
        Op::MatMul
        | Op::Gemm { .. }
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::AddConst(_)
        | Op::MulConst(_)
        | Op::Relu
        | Op::Sigmoid
        | Op::Tanh
        | Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::Flatten(_)
        | Op::Reshape(_)
        | Op::Squeeze(_)
        | Op::Unsqueeze(_)
        | Op::Transpose(_)
        | Op::Identity => None,
        Op::Conv { geometry, .. } if geometry.groups == 1 => None,
        Op::Conv { .. } => Some("grouped convolution has no backward pass yet".into()),
        Op::Softmax { .. } => None,
        other => Some(format!("{} has no backward pass yet", op_name(other))),
    }
}

fn op_name(op: &Op) -> String {
    let s = format!("{op:?}");
    s.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("op").to_string()
}

/// Each element's row (over the last axis): sums rows with `gather_adjoint`, broadcasts row
/// values back with `gather`.
fn rows_src(shape: &[usize]) -> (Vec<usize>, Vec<Option<usize>>) {
    let n = shape.last().copied().unwrap_or(1).max(1);
    let total: usize = shape.iter().product();
    (shape[..shape.len().saturating_sub(1)].to_vec(), (0..total).map(|i| Some(i / n)).collect())
}

/// `t` broadcast to `shape` (a copy only when the shape differs).
fn broadcast<C: Calc>(c: &mut C, t: &C::T, shape: &[usize]) -> Result<C::T> {
    let from = C::shape(t);
    if from == shape {
        return Ok(t.clone());
    }
    let src = broadcast_src(&from, shape)?;
    c.gather(t, shape, &src)
}

/// The adjoint of [`broadcast`]: `g` summed back to `shape`.
fn unbroadcast<C: Calc>(c: &mut C, g: &C::T, shape: &[usize]) -> Result<C::T> {
    let to = C::shape(g);
    if to == shape {
        return Ok(g.clone());
    }
    let src = broadcast_src(shape, &to)?;
    c.gather_adjoint(g, shape, &src)
}

fn transpose2<C: Calc>(c: &mut C, t: &C::T) -> Result<C::T> {
    let s = C::shape(t);
    let [r, k] = s[..] else { return Err(MpcError::Usage(format!("transpose of {s:?}"))) };
    c.gather(t, &[k, r], &transpose2_src(r, k))
}

/// Softmax over `axis` as the model means it: the last axis, or (before opset 13, `flatten`)
/// the input viewed as 2-D at `axis`. Returns the 2-D-or-last-axis view's shape.
fn softmax_view(node: &Node, shape: &[usize]) -> Result<Option<Vec<usize>>> {
    let Op::Softmax { axis, flatten, .. } = node.op else { unreachable!("softmax only") };
    let rank = shape.len() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&a) {
        return Err(usage(node, format!("axis {axis} out of range for {shape:?}")));
    }
    let a = a as usize;
    if flatten {
        let outer: usize = shape[..a].iter().product();
        return Ok(Some(vec![outer, shape[a..].iter().product()]));
    }
    if a + 1 != shape.len() {
        return Err(usage(node, "training supports softmax over the last axis only"));
    }
    Ok(None)
}

/// The forward pass of `node` on its inputs: the output and what the backward pass needs.
pub(crate) fn forward<C: Calc>(c: &mut C, node: &Node, ins: &[&C::T]) -> Result<(C::T, Saved<C>)> {
    let get = |k: usize| ins.get(k).copied().ok_or_else(|| usage(node, format!("missing input {k}")));
    let x = get(0)?;
    let xs = C::shape(x);
    let nothing = |t: C::T| Ok((t, Saved::Nothing));
    match &node.op {
        Op::Identity | Op::Flatten(_) | Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) => {
            let shape = node.op.output_shape(&[&xs]).map_err(|e| usage(node, e))?;
            nothing(c.reshape(x, &shape)?)
        }
        Op::Transpose(perm) => {
            let (shape, src) = transpose_src(&xs, perm)?;
            nothing(c.gather(x, &shape, &src)?)
        }
        Op::MatMul => {
            let b = get(1)?;
            let bs = C::shape(b);
            let (&[k, n], Some(&xk)) = (&bs[..], xs.last()) else {
                return Err(usage(node, "training supports MatMul by a 2-D matrix only"));
            };
            if xk != k {
                return Err(usage(node, format!("shapes {xs:?} and {bs:?} do not conform")));
            }
            let m = xs.iter().product::<usize>() / k.max(1);
            let a2 = c.reshape(x, &[m, k])?;
            let y = c.matmul_many(&[(&a2, b)])?.remove(0);
            let mut shape = xs.clone();
            *shape.last_mut().expect("rank >= 1") = n;
            nothing(c.reshape(&y, &shape)?)
        }
        Op::Gemm { trans_a, trans_b, alpha, beta } => {
            let a = if *trans_a { transpose2(c, x)? } else { x.clone() };
            let b = if *trans_b { transpose2(c, get(1)?)? } else { get(1)?.clone() };
            let mut y = c.matmul_many(&[(&a, &b)])?.remove(0);
            if *alpha != 1.0 {
                y = c.scale_many(&[(&y, *alpha)])?.remove(0);
            }
            if let Some(bias) = ins.get(2) {
                let bias =
                    if *beta != 1.0 { c.scale_many(&[(bias, *beta)])?.remove(0) } else { (*bias).clone() };
                let wide = broadcast(c, &bias, &C::shape(&y))?;
                y = c.add(&y, &wide)?;
            }
            nothing(y)
        }
        Op::Conv { geometry, same } => {
            let w = get(1)?;
            let ws = C::shape(w);
            let mut g = *geometry;
            if let (Some(upper), [_, _, h, wd], [_, _, kh, kw]) = (same, &xs[..], &ws[..]) {
                g.pads = same_pads([*h, *wd], [*kh, *kw], g.stride, g.dilation, *upper);
            }
            let maps = conv_maps(&xs, &ws, &g).map_err(|e| usage(node, e))?;
            let cols = c.gather(x, &maps.cols_shape, &maps.cols)?;
            let wmat = c.gather(w, &maps.wmat_shape, &maps.wmat)?;
            let mut prod = c.matmul_many(&[(&cols, &wmat)])?.remove(0);
            if let Some(bias) = ins.get(2) {
                let o = maps.wmat_shape[1];
                let b = c.reshape(bias, &[o])?;
                let wide = broadcast(c, &b, &[maps.cols_shape[0], o])?;
                prod = c.add(&prod, &wide)?;
            }
            let y = c.gather(&prod, &maps.out_shape, &maps.out)?;
            Ok((y, Saved::Conv { cols, wmat, maps: Box::new(maps) }))
        }
        Op::Add | Op::Sub | Op::Mul => {
            let b = get(1)?;
            let shape = broadcast_shapes(&xs, &C::shape(b)).map_err(|e| usage(node, e))?;
            let (a, b) = (broadcast(c, x, &shape)?, broadcast(c, b, &shape)?);
            nothing(match node.op {
                Op::Add => c.add(&a, &b)?,
                Op::Sub => c.sub(&a, &b)?,
                _ => c.mul_many(&[(&a, &b)])?.remove(0),
            })
        }
        Op::AddConst(v) => nothing(c.add_const(x, *v)?),
        Op::MulConst(v) => nothing(c.scale_many(&[(x, *v)])?.remove(0)),
        Op::Relu => {
            let (y, mask) = c.relu(x)?;
            Ok((y, Saved::Mask(mask)))
        }
        Op::Sigmoid => nothing(c.sigmoid(x)?),
        Op::Tanh => nothing(c.tanh(x)?),
        Op::Softmax { log, .. } => {
            let view = softmax_view(node, &xs)?;
            let v = match &view {
                Some(s) => c.reshape(x, s)?,
                None => x.clone(),
            };
            let (y, saved) = if *log {
                let s = c.softmax_last(&v)?;
                (c.log_softmax_last(&v)?, Saved::Softmax(s))
            } else {
                (c.softmax_last(&v)?, Saved::Nothing)
            };
            nothing(c.reshape(&y, &xs)?).map(|(y, _)| (y, saved))
        }
        Op::MaxPool { pool, same } => {
            let pool = resolve_pool(pool, *same, &xs);
            let (shape, src) = pool_windows(&xs, &pool).map_err(|e| usage(node, e))?;
            let mut win = c.gather(x, &shape, &src)?;
            if src.iter().any(Option::is_none) {
                let pads: Vec<bool> = src.iter().map(Option::is_none).collect();
                win = c.fill_lowest(&win, &pads)?;
            }
            let (y, onehot) = c.max_last(&win)?;
            Ok((y, Saved::MaxPool { shape, src, onehot }))
        }
        Op::AveragePool { pool, same, count_include_pad } => {
            let pool = resolve_pool(pool, *same, &xs);
            let (shape, src) = pool_windows(&xs, &pool).map_err(|e| usage(node, e))?;
            let k = *shape.last().expect("5-D");
            let scales: Vec<f64> = src
                .chunks(k)
                .map(|w| 1.0 / if *count_include_pad { k } else { w.iter().flatten().count().max(1) } as f64)
                .collect();
            let win = c.gather(x, &shape, &src)?;
            let (out_shape, rows) = rows_src(&shape);
            let sums = c.gather_adjoint(&win, &out_shape, &rows)?;
            let y = c.scale_each(&sums, &scales)?;
            Ok((y, Saved::AvgPool { shape, src, scales }))
        }
        Op::GlobalAveragePool => {
            let &[n, ch, h, w] = &xs[..] else {
                return Err(usage(node, format!("needs [N, C, H, W], got {xs:?}")));
            };
            let flat = c.reshape(x, &[n, ch, h * w])?;
            let (shape, rows) = rows_src(&[n, ch, h * w]);
            let sums = c.gather_adjoint(&flat, &shape, &rows)?;
            let mean = c.scale_many(&[(&sums, 1.0 / (h * w).max(1) as f64)])?.remove(0);
            nothing(c.reshape(&mean, &[n, ch, 1, 1])?)
        }
        _ => Err(usage(node, unsupported(node).unwrap_or_else(|| "not supported in training".into()))),
    }
}

/// The backward pass of `node`: from `g`, the gradient of its output, the gradient of each
/// input `k` with `need[k]` (others `None`).
pub(crate) fn backward<C: Calc>(
    c: &mut C,
    node: &Node,
    ins: &[&C::T],
    out: &C::T,
    saved: &Saved<C>,
    g: &C::T,
    need: &[bool],
) -> Result<Vec<Option<C::T>>> {
    let want = |k: usize| need.get(k).copied().unwrap_or(false);
    let x = ins[0];
    let xs = C::shape(x);
    let mut grads: Vec<Option<C::T>> = vec![None; ins.len()];
    match (&node.op, saved) {
        (Op::Identity | Op::Flatten(_) | Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_), _) => {
            grads[0] = Some(c.reshape(g, &xs)?);
        }
        (Op::Transpose(perm), _) => {
            let (_, src) = transpose_src(&xs, perm)?;
            grads[0] = Some(c.gather_adjoint(g, &xs, &src)?);
        }
        (Op::MatMul, _) => {
            let b = ins[1];
            let bs = C::shape(b);
            let (k, n) = (bs[0], bs[1]);
            let m = xs.iter().product::<usize>() / k.max(1);
            let g2 = c.reshape(g, &[m, n])?;
            let mut pairs_owned = Vec::new();
            if want(0) {
                pairs_owned.push((g2.clone(), transpose2(c, b)?));
            }
            if want(1) {
                let a2 = c.reshape(x, &[m, k])?;
                pairs_owned.push((transpose2(c, &a2)?, g2.clone()));
            }
            let pairs: Vec<(&C::T, &C::T)> = pairs_owned.iter().map(|(a, b)| (a, b)).collect();
            let mut prods = c.matmul_many(&pairs)?.into_iter();
            if want(0) {
                grads[0] = Some(c.reshape(&prods.next().expect("first"), &xs)?);
            }
            if want(1) {
                grads[1] = prods.next();
            }
        }
        (Op::Gemm { trans_a, trans_b, alpha, beta }, _) => {
            let a = if *trans_a { transpose2(c, x)? } else { x.clone() };
            let b = if *trans_b { transpose2(c, ins[1])? } else { ins[1].clone() };
            let mut pairs_owned = Vec::new();
            if want(0) {
                pairs_owned.push((g.clone(), transpose2(c, &b)?));
            }
            if want(1) {
                pairs_owned.push((transpose2(c, &a)?, g.clone()));
            }
            let pairs: Vec<(&C::T, &C::T)> = pairs_owned.iter().map(|(a, b)| (a, b)).collect();
            let mut prods = c.matmul_many(&pairs)?;
            if *alpha != 1.0 {
                let items: Vec<(&C::T, f64)> = prods.iter().map(|t| (t, *alpha)).collect();
                prods = c.scale_many(&items)?;
            }
            let mut prods = prods.into_iter();
            if want(0) {
                let ga = prods.next().expect("first");
                grads[0] = Some(if *trans_a { transpose2(c, &ga)? } else { ga });
            }
            if want(1) {
                let gb = prods.next().expect("second");
                grads[1] = Some(if *trans_b { transpose2(c, &gb)? } else { gb });
            }
            if want(2) {
                let gc = unbroadcast(c, g, &C::shape(ins[2]))?;
                grads[2] = Some(if *beta != 1.0 { c.scale_many(&[(&gc, *beta)])?.remove(0) } else { gc });
            }
        }
        (Op::Conv { .. }, Saved::Conv { cols, wmat, maps }) => {
            let [rows, o] = [maps.cols_shape[0], maps.wmat_shape[1]];
            let gp = c.gather_adjoint(g, &[rows, o], &maps.out)?;
            let mut pairs_owned = Vec::new();
            if want(0) {
                pairs_owned.push((gp.clone(), transpose2(c, wmat)?));
            }
            if want(1) {
                pairs_owned.push((transpose2(c, cols)?, gp.clone()));
            }
            let pairs: Vec<(&C::T, &C::T)> = pairs_owned.iter().map(|(a, b)| (a, b)).collect();
            let mut prods = c.matmul_many(&pairs)?.into_iter();
            if want(0) {
                let gcols = prods.next().expect("first");
                grads[0] = Some(c.gather_adjoint(&gcols, &xs, &maps.cols)?);
            }
            if want(1) {
                let gw = prods.next().expect("second");
                grads[1] = Some(c.gather_adjoint(&gw, &C::shape(ins[1]), &maps.wmat)?);
            }
            if want(2) {
                let gb = unbroadcast(c, &gp, &[o])?;
                grads[2] = Some(c.reshape(&gb, &C::shape(ins[2]))?);
            }
        }
        (Op::Add | Op::Sub | Op::Mul, _) => {
            let shape = C::shape(g);
            let (da, db) = if matches!(node.op, Op::Mul) {
                let a = broadcast(c, x, &shape)?;
                let b = broadcast(c, ins[1], &shape)?;
                let mut pairs = Vec::new();
                if want(0) {
                    pairs.push((g, &b));
                }
                if want(1) {
                    pairs.push((g, &a));
                }
                let mut prods = c.mul_many(&pairs)?.into_iter();
                (if want(0) { prods.next() } else { None }, if want(1) { prods.next() } else { None })
            } else {
                let db = if matches!(node.op, Op::Sub) { c.neg(g)? } else { g.clone() };
                (Some(g.clone()), Some(db))
            };
            if want(0) {
                grads[0] = Some(unbroadcast(c, &da.expect("computed"), &xs)?);
            }
            if want(1) {
                grads[1] = Some(unbroadcast(c, &db.expect("computed"), &C::shape(ins[1]))?);
            }
        }
        (Op::AddConst(_), _) => grads[0] = Some(g.clone()),
        (Op::MulConst(v), _) => grads[0] = Some(c.scale_many(&[(g, *v)])?.remove(0)),
        (Op::Relu, Saved::Mask(mask)) => grads[0] = Some(c.apply_mask(g, mask)?),
        (Op::Sigmoid, _) => {
            // y (1 - y) g
            let yy = c.mul_many(&[(out, out)])?.remove(0);
            let d = c.sub(out, &yy)?;
            grads[0] = Some(c.mul_many(&[(g, &d)])?.remove(0));
        }
        (Op::Tanh, _) => {
            // (1 - y^2) g
            let yy = c.mul_many(&[(out, out)])?.remove(0);
            let minus = c.neg(&yy)?;
            let d = c.add_const(&minus, 1.0)?;
            grads[0] = Some(c.mul_many(&[(g, &d)])?.remove(0));
        }
        (Op::Softmax { log, .. }, saved) => {
            let view = softmax_view(node, &xs)?.unwrap_or_else(|| xs.clone());
            let gv = c.reshape(g, &view)?;
            let (sum_shape, rows) = rows_src(&view);
            let gx = match (log, saved) {
                // g - s sum(g)
                (true, Saved::Softmax(s)) => {
                    let s = c.reshape(s, &view)?;
                    let sums = c.gather_adjoint(&gv, &sum_shape, &rows)?;
                    let wide = c.gather(&sums, &view, &rows)?;
                    let prod = c.mul_many(&[(&s, &wide)])?.remove(0);
                    c.sub(&gv, &prod)?
                }
                // s (g - sum(g s))
                (false, _) => {
                    let s = c.reshape(out, &view)?;
                    let gs = c.mul_many(&[(&gv, &s)])?.remove(0);
                    let sums = c.gather_adjoint(&gs, &sum_shape, &rows)?;
                    let wide = c.gather(&sums, &view, &rows)?;
                    let diff = c.sub(&gv, &wide)?;
                    c.mul_many(&[(&s, &diff)])?.remove(0)
                }
                _ => return Err(usage(node, "log-softmax without its saved softmax")),
            };
            grads[0] = Some(c.reshape(&gx, &xs)?);
        }
        (Op::MaxPool { .. }, Saved::MaxPool { shape, src, onehot }) => {
            let (_, rows) = rows_src(shape);
            let wide = c.gather(g, shape, &rows)?;
            let picked = c.mul_indicator(&wide, onehot)?;
            grads[0] = Some(c.gather_adjoint(&picked, &xs, src)?);
        }
        (Op::AveragePool { .. }, Saved::AvgPool { shape, src, scales }) => {
            let gs = c.scale_each(g, scales)?;
            let (_, rows) = rows_src(shape);
            let wide = c.gather(&gs, shape, &rows)?;
            grads[0] = Some(c.gather_adjoint(&wide, &xs, src)?);
        }
        (Op::GlobalAveragePool, _) => {
            let &[n, ch, h, w] = &xs[..] else { return Err(usage(node, "needs [N, C, H, W]")) };
            let gs = c.scale_many(&[(g, 1.0 / (h * w).max(1) as f64)])?.remove(0);
            let flat = c.reshape(&gs, &[n, ch])?;
            let (_, rows) = rows_src(&[n, ch, h * w]);
            let wide = c.gather(&flat, &[n, ch, h * w], &rows)?;
            grads[0] = Some(c.reshape(&wide, &xs)?);
        }
        _ => return Err(usage(node, "no backward pass")),
    }
    for (k, g) in grads.iter_mut().enumerate() {
        if !want(k) {
            *g = None;
        }
    }
    Ok(grads)
}
