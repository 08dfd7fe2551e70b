//! Import-time evaluation of the ops that only ever see constants in the models Musket runs:
//! the shape and mask computations of transformer exports (ConstantOfShape, Range, the
//! comparisons, Where, logical ops, GatherElements, ...). Their inputs are public (shapes) or
//! the model owner's constants, so the importer folds them; none has a secure form.

use super::{attr, attr_i, Builder};
use crate::ImportError;
use musket_graph::{
    broadcast_zip, each_index as for_each_index, eval_index_op, reduce_f64, FloatTensor, IdsBinary, IdsOp,
};
use onnx_protobuf::NodeProto;

/// Largest tensor built at import by these ops.
const MAX_FOLDED: usize = 1 << 26;

/// The flat index into `shape` (right-aligned, broadcast) of the multi-index `idx`.
fn source_index(idx: &[usize], shape: &[usize]) -> usize {
    let off = idx.len() - shape.len();
    shape.iter().enumerate().fold(0, |acc, (d, &s)| acc * s + if s == 1 { 0 } else { idx[off + d] })
}

/// Elementwise `f` over broadcast inputs.
fn zip_n(ins: &[&FloatTensor], f: impl Fn(&[f64]) -> f64) -> Result<FloatTensor, String> {
    broadcast_zip(ins, MAX_FOLDED, f)
}

fn truth(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn dims(t: &FloatTensor) -> Result<Vec<usize>, String> {
    t.data
        .iter()
        .map(
            |&v| {
                if v >= 0.0 && v.fract() == 0.0 {
                    Ok(v as usize)
                } else {
                    Err(format!("bad dimension {v}"))
                }
            },
        )
        .collect()
}

impl Builder {
    /// Evaluates `n` on constant inputs if it is one of the ops above; `None` for other ops.
    pub(super) fn fold_special(
        &self,
        n: &NodeProto,
        ins: &[Option<&FloatTensor>],
    ) -> Option<Result<FloatTensor, ImportError>> {
        let get = |k: usize| ins.get(k).copied().flatten().ok_or_else(|| format!("missing input {k}"));
        // The ops the data owner's token-id programs share have one definition there.
        let index_op = match n.op_type.as_str() {
            "Equal" => Some(IdsOp::Binary(IdsBinary::Equal)),
            "Less" => Some(IdsOp::Binary(IdsBinary::Less)),
            "Greater" => Some(IdsOp::Binary(IdsBinary::Greater)),
            "And" => Some(IdsOp::Binary(IdsBinary::And)),
            "Or" => Some(IdsOp::Binary(IdsBinary::Or)),
            "Not" => Some(IdsOp::Not),
            "Where" => Some(IdsOp::Where),
            "GatherElements" => Some(IdsOp::GatherElements { axis: attr_i(n, "axis", 0) }),
            "CumSum" => ins.get(1).copied().flatten().map(|axis| IdsOp::CumSum {
                axis: axis.data.first().copied().unwrap_or(0.0) as i64,
                exclusive: attr_i(n, "exclusive", 0) != 0,
                reverse: attr_i(n, "reverse", 0) != 0,
            }),
            _ => None,
        };
        if let Some(op) = index_op {
            let arity =
                if n.op_type == "CumSum" { 1 } else { n.input.iter().filter(|i| !i.is_empty()).count() };
            let operands = ins.iter().take(arity).copied().collect::<Option<Vec<_>>>()?;
            return Some(
                eval_index_op(&op, &operands, MAX_FOLDED)
                    .map_err(|e| self.invalid(n, format!("cannot fold this constant computation: {e}"))),
            );
        }
        let result: Result<FloatTensor, String> = match n.op_type.as_str() {
            "ConstantOfShape" => (|| {
                let shape = dims(get(0)?)?;
                let count =
                    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&c| c <= MAX_FOLDED);
                let count = count.ok_or_else(|| format!("shape {shape:?} is too large"))?;
                let value = match attr(n, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => crate::tensors::to_float(t)
                        .map_err(|e| e.to_string())?
                        .data
                        .first()
                        .copied()
                        .unwrap_or(0.0),
                    None => 0.0,
                };
                Ok(FloatTensor { shape, data: vec![value; count] })
            })(),
            "Range" => (|| {
                let (start, limit, delta) = (get(0)?, get(1)?, get(2)?);
                let (s, l, d) = (start.data[0], limit.data[0], delta.data[0]);
                if d == 0.0 {
                    return Err("Range with a zero step".into());
                }
                let count = ((l - s) / d).ceil().max(0.0);
                if count > MAX_FOLDED as f64 {
                    return Err("Range is too long".into());
                }
                let data: Vec<f64> = (0..count as usize).map(|i| s + i as f64 * d).collect();
                Ok(FloatTensor { shape: vec![data.len()], data })
            })(),
            "LessOrEqual" => zip_n(&[get(0).ok()?, get(1).ok()?], |v| truth(v[0] <= v[1])),
            "GreaterOrEqual" => zip_n(&[get(0).ok()?, get(1).ok()?], |v| truth(v[0] >= v[1])),
            "Xor" => zip_n(&[get(0).ok()?, get(1).ok()?], |v| truth((v[0] != 0.0) != (v[1] != 0.0))),
            "IsNaN" => zip_n(&[get(0).ok()?], |v| truth(v[0].is_nan())),
            "IsInf" => zip_n(&[get(0).ok()?], |v| truth(v[0].is_infinite())),
            "Neg" => zip_n(&[get(0).ok()?], |v| -v[0]),
            "Abs" => zip_n(&[get(0).ok()?], |v| v[0].abs()),
            "Floor" => zip_n(&[get(0).ok()?], |v| v[0].floor()),
            "Ceil" => zip_n(&[get(0).ok()?], |v| v[0].ceil()),
            "Round" => zip_n(&[get(0).ok()?], |v| v[0].round_ties_even()),
            "Sign" => zip_n(&[get(0).ok()?], |v| if v[0] == 0.0 { 0.0 } else { v[0].signum() }),
            "Exp" => zip_n(&[get(0).ok()?], |v| v[0].exp()),
            "Log" => zip_n(&[get(0).ok()?], |v| v[0].ln()),
            "Pow" => zip_n(&[get(0).ok()?, get(1).ok()?], |v| v[0].powf(v[1])),
            "Mod" => {
                let fmod = attr_i(n, "fmod", 0) != 0;
                zip_n(&[get(0).ok()?, get(1).ok()?], |v| {
                    if fmod {
                        v[0] % v[1]
                    } else {
                        v[0] - v[1] * (v[0] / v[1]).floor()
                    }
                })
            }
            "Min" | "Max" | "Sum" | "Mean" => {
                let all: Vec<&FloatTensor> = ins.iter().copied().flatten().collect();
                let op = n.op_type.clone();
                zip_n(&all, |v| match op.as_str() {
                    "Min" => v.iter().copied().fold(f64::INFINITY, f64::min),
                    "Max" => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    "Sum" => v.iter().sum(),
                    _ => v.iter().sum::<f64>() / v.len() as f64,
                })
            }
            "ReduceProd" => (|| {
                // On shapes (tf2onnx's Keras attention multiplies dimensions for a Reshape).
                let x = get(0)?;
                let axes = self.axes_input_or_attr(n, 18).map_err(|e| e.to_string())?;
                if axes.is_empty() && attr_i(n, "noop_with_empty_axes", 0) != 0 {
                    return Ok(x.clone());
                }
                reduce_f64(x, &axes, attr_i(n, "keepdims", 1) != 0, 1.0, |a, v| a * v)
            })(),
            "Size" => {
                let t = get(0).ok()?;
                Ok(FloatTensor { shape: vec![], data: vec![t.data.len() as f64] })
            }
            "Trilu" => (|| {
                let x = get(0)?;
                let k = match ins.get(1).copied().flatten() {
                    Some(t) => t.data.first().copied().unwrap_or(0.0) as i64,
                    None => 0,
                };
                let upper = attr_i(n, "upper", 1) != 0;
                let r = x.shape.len();
                if r < 2 {
                    return Err("Trilu needs 2-D or more".into());
                }
                let (rows, cols) = (x.shape[r - 2], x.shape[r - 1]);
                let data = x
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let (row, col) = (((i / cols) % rows) as i64, (i % cols) as i64);
                        let keep = if upper { col - row >= k } else { col - row <= k };
                        if keep {
                            v
                        } else {
                            0.0
                        }
                    })
                    .collect();
                Ok(FloatTensor { shape: x.shape.clone(), data })
            })(),
            "Tile" => (|| {
                let (x, reps) = (get(0)?, dims(get(1)?)?);
                if reps.len() != x.shape.len() {
                    return Err("Tile repeats differ from the rank".into());
                }
                let shape: Vec<usize> = x.shape.iter().zip(&reps).map(|(a, b)| a * b).collect();
                if shape.iter().product::<usize>() > MAX_FOLDED {
                    return Err("Tile result too large".into());
                }
                let mut data = Vec::new();
                for_each_index(&shape, |ix| {
                    let at: Vec<usize> = ix.iter().zip(&x.shape).map(|(i, s)| i % s).collect();
                    data.push(x.data[source_index(&at, &x.shape)]);
                });
                Ok(FloatTensor { shape, data })
            })(),
            _ => return None,
        };
        Some(result.map_err(|e| self.invalid(n, format!("cannot fold this constant computation: {e}"))))
    }
}
