//! ONNX ops lowered to several IR ops: the reductions built from sums and maxima, GlobalMaxPool,
//! Softsign, normalisation over any trailing axes, InstanceNormalization, logical ops on 0/1
//! values, comparisons and Where on secret values, one-dimensional MatMul.

use super::{attr_f, attr_i, attr_ints, Builder};
use crate::ImportError;
use musket_graph::{Comparison, FloatTensor, Op};
use onnx_protobuf::NodeProto;

impl Builder {
    /// A reduction's axes: its second input from `from_opset` on, else its `axes` attribute.
    pub(super) fn axes_input_or_attr(&self, n: &NodeProto, from_opset: i64) -> Result<Vec<i64>, ImportError> {
        Ok(if self.opset >= from_opset {
            match self.optional(n, 1)? {
                Some(_) => self.constant(n, 1)?.data.iter().map(|&v| v as i64).collect(),
                None => Vec::new(),
            }
        } else {
            attr_ints(n, "axes").unwrap_or_default()
        })
    }

    /// The ops handled here; `Ok(false)` when `n` is none of them.
    pub(super) fn lowered_op(&mut self, n: &NodeProto) -> Result<bool, ImportError> {
        match n.op_type.as_str() {
            "ReduceL1" | "ReduceL2" | "ReduceSumSquare" | "ReduceLogSumExp" => {
                let axes = self.axes_input_or_attr(n, 18)?;
                let keepdims = attr_i(n, "keepdims", 1) != 0;
                if axes.is_empty() && attr_i(n, "noop_with_empty_axes", 0) != 0 {
                    return Err(self.unsupported(n, "noop_with_empty_axes = 1 without axes"));
                }
                let x = self.secret(n, 0)?;
                let out = match n.op_type.as_str() {
                    "ReduceL1" => {
                        let a = self.sub_node(n, "abs", Op::Abs, vec![x])?;
                        self.sub_node(n, "sum", Op::ReduceSum { axes, keepdims }, vec![a])?
                    }
                    "ReduceLogSumExp" => {
                        // max + log(sum(e^(x - max))): the exponentials stay in [0, 1].
                        let m = self.sub_node(
                            n,
                            "max",
                            Op::ReduceMax { axes: axes.clone(), keepdims: true, min: false },
                            vec![x.clone()],
                        )?;
                        let z = self.sub_node(n, "shift", Op::Sub, vec![x, m.clone()])?;
                        let e = self.sub_node(n, "exp", Op::Exp, vec![z])?;
                        let s =
                            self.sub_node(n, "sum", Op::ReduceSum { axes: axes.clone(), keepdims }, vec![e])?;
                        let l = self.sub_node(n, "log", Op::Log, vec![s])?;
                        let m = if keepdims {
                            m
                        } else {
                            self.sub_node(
                                n,
                                "squeeze",
                                Op::ReduceMax { axes, keepdims: false, min: false },
                                vec![m],
                            )?
                        };
                        self.sub_node(n, "add", Op::Add, vec![l, m])?
                    }
                    _ => {
                        let sq = self.sub_node(n, "square", Op::Mul, vec![x.clone(), x])?;
                        let s = self.sub_node(n, "sum", Op::ReduceSum { axes, keepdims }, vec![sq])?;
                        if n.op_type == "ReduceL2" {
                            self.sub_node(n, "sqrt", Op::Sqrt, vec![s])?
                        } else {
                            s
                        }
                    }
                };
                self.alias(n, out)?;
            }
            "GlobalMaxPool" => {
                // The maximum over every axis after the channels ([N, C, H, W] when the rank
                // is not known here).
                let rank = self.static_shape(&self.get(n, 0)?)?.map_or(4, |s| s.len()).max(3);
                self.unary(n, Op::ReduceMax { axes: (2..rank as i64).collect(), keepdims: true, min: false })?
            }
            "Softsign" => {
                let x = self.secret(n, 0)?;
                let a = self.sub_node(n, "abs", Op::Abs, vec![x.clone()])?;
                let d = self.sub_node(n, "plus1", Op::AddConst(1.0), vec![a])?;
                self.emit(n, Op::Div, vec![x, d])?;
            }
            "Not" => {
                let x = self.secret(n, 0)?;
                let neg = self.sub_node(n, "neg", Op::MulConst(-1.0), vec![x])?;
                self.emit(n, Op::AddConst(1.0), vec![neg])?;
            }
            "And" | "Or" | "Xor" => {
                // On 0/1 values: a b, a + b - a b, a + b - 2 a b.
                let (a, b) = (self.secret(n, 0)?, self.secret(n, 1)?);
                let ab = self.sub_node(n, "and", Op::Mul, vec![a.clone(), b.clone()])?;
                if n.op_type == "And" {
                    self.alias(n, ab)?;
                } else {
                    let sum = self.sub_node(n, "sum", Op::Add, vec![a, b])?;
                    let k = if n.op_type == "Or" { 1.0 } else { 2.0 };
                    let kab = self.sub_node(n, "scaled", Op::MulConst(k), vec![ab])?;
                    self.emit(n, Op::Sub, vec![sum, kab])?;
                }
            }
            "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" | "Equal" => {
                let c = match n.op_type.as_str() {
                    "Less" => Comparison::Less,
                    "LessOrEqual" => Comparison::LessOrEqual,
                    "Greater" => Comparison::Greater,
                    "GreaterOrEqual" => Comparison::GreaterOrEqual,
                    _ => Comparison::Equal,
                };
                let (a, b) = (self.secret(n, 0)?, self.secret(n, 1)?);
                self.emit(n, Op::Compare(c), vec![a, b])?;
            }
            "Sign" => {
                // [x > 0] - [x < 0].
                let x = self.secret(n, 0)?;
                let zero =
                    self.add_weight(self.part(n, "zero"), FloatTensor { shape: vec![], data: vec![0.0] });
                let pos =
                    self.sub_node(n, "pos", Op::Compare(Comparison::Greater), vec![x.clone(), zero.clone()])?;
                let neg = self.sub_node(n, "neg", Op::Compare(Comparison::Less), vec![x, zero])?;
                self.emit(n, Op::Sub, vec![pos, neg])?;
            }
            "InstanceNormalization" => {
                // Per image and channel over the spatial axes: a layer norm over the flattened
                // spatial axis, then the per-channel scale and bias.
                let x = self.get(n, 0)?;
                let shape = self.static_shape(&x)?.ok_or_else(|| {
                    self.unsupported(n, "on a value whose shape is only known for a concrete input")
                })?;
                if shape.len() < 3 {
                    return Err(self.invalid(n, "needs [N, C, ...]"));
                }
                let (nn, c, rest) = (shape[0], shape[1], shape[2..].iter().product::<usize>());
                let x = self.secret(n, 0)?;
                let flat = self.sub_node(
                    n,
                    "flatten",
                    Op::Reshape(vec![nn as i64, c as i64, rest as i64]),
                    vec![x],
                )?;
                let ones = self.add_weight(
                    self.part(n, "ones"),
                    FloatTensor { shape: vec![rest], data: vec![1.0; rest] },
                );
                let normed = self.sub_node(
                    n,
                    "normalise",
                    Op::LayerNorm { eps: attr_f(n, "epsilon", 1e-5) },
                    vec![flat, ones],
                )?;
                let back = self.sub_node(
                    n,
                    "unflatten",
                    Op::Reshape(shape.iter().map(|&d| d as i64).collect()),
                    vec![normed],
                )?;
                let (scale, bias) = (self.secret(n, 1)?, self.secret(n, 2)?);
                self.emit(n, Op::Affine, vec![back, scale, bias])?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Where with a condition computed from secret values.
    pub(super) fn secret_where(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let ins = (0..3).map(|k| self.secret(n, k)).collect::<Result<Vec<_>, _>>()?;
        self.emit(n, Op::Where, ins)
    }

    /// LayerNormalization over the axes from `axis` on: a layer norm over one flattened axis.
    pub(super) fn layer_norm_axes(&mut self, n: &NodeProto, axis: i64) -> Result<(), ImportError> {
        let x = self.get(n, 0)?;
        let shape = self.static_shape(&x)?.ok_or_else(|| self.unsupported(n, "normalisation over other than the last axis, on a value whose shape is only known for a concrete input"))?;
        let rank = shape.len() as i64;
        let a = if axis < 0 { axis + rank } else { axis };
        if a < 0 || a >= rank {
            return Err(self.invalid(n, format!("axis {axis} out of range for rank {rank}")));
        }
        let a = a as usize;
        let (outer, inner) = (shape[..a].iter().product::<usize>(), shape[a..].iter().product::<usize>());
        let x = self.secret(n, 0)?;
        let flat = self.sub_node(n, "flatten", Op::Reshape(vec![outer as i64, inner as i64]), vec![x])?;
        let mut ins = vec![flat];
        for k in 1..3 {
            if self.optional(n, k)?.is_none() {
                continue;
            }
            let p = self.secret(n, k)?;
            // Scale and bias broadcast against the normalised axes.
            let full = self.sub_node(n, &format!("param{k}"), Op::Expand(shape[a..].to_vec()), vec![p])?;
            ins.push(self.sub_node(n, &format!("flat{k}"), Op::Reshape(vec![inner as i64]), vec![full])?);
        }
        let normed = self.sub_node(n, "normalise", Op::LayerNorm { eps: attr_f(n, "epsilon", 1e-5) }, ins)?;
        self.emit(n, Op::Reshape(shape.iter().map(|&d| d as i64).collect()), vec![normed])
    }

    /// MatMul with a one-dimensional operand (numpy: a vector is a row on the left, a column
    /// on the right, and that axis is dropped from the result).
    pub(super) fn matmul(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (a, b) = (self.secret(n, 0)?, self.secret(n, 1)?);
        let (sa, sb) = (self.static_shape(&a)?, self.static_shape(&b)?);
        let (ra, rb) = (sa.as_ref().map(Vec::len), sb.as_ref().map(Vec::len));
        if ra != Some(1) && rb != Some(1) {
            return self.emit(n, Op::MatMul, vec![a, b]);
        }
        let a2 = if ra == Some(1) { self.sub_node(n, "row", Op::Unsqueeze(vec![0]), vec![a])? } else { a };
        let b2 =
            if rb == Some(1) { self.sub_node(n, "column", Op::Unsqueeze(vec![-1]), vec![b])? } else { b };
        let y = self.sub_node(n, "product", Op::MatMul, vec![a2, b2])?;
        let mut drop = Vec::new();
        if ra == Some(1) {
            drop.push(-2);
        }
        if rb == Some(1) {
            drop.push(-1);
        }
        self.emit(n, Op::Squeeze(drop), vec![y])
    }
}
