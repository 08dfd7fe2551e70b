//! One builder per supported ONNX op.

mod arith;
mod cnn;
mod cnn3d;
mod consts;
mod einsum;
mod entry;
mod fold;
mod ids;
mod indexing;
mod lowered;
mod resize;
mod transformer;

pub use entry::{import, import_for_input, load, load_for_input};
pub(crate) use entry::{import_model, is_integer_type};

use crate::tensors::to_float;
use crate::ImportError;
use musket_graph::{FloatTensor, Graph, Node, Op, ValueId};
use onnx_protobuf::{AttributeProto, NodeProto};
use std::collections::HashMap;

/// What a name refers to while building.
#[derive(Clone)]
enum Ref {
    Input,
    /// A constant: an initializer (`public` false: a trained value, shared as a secret weight
    /// when it is an arithmetic operand) or a Constant node (`public` true: part of the
    /// architecture, folded into attributes). Structural inputs (shapes, pads, axes, bounds)
    /// are read from either.
    Const(FloatTensor, bool),
    /// A secret weight (index into `weights`).
    Weight(usize),
    /// The output of node k (index into `nodes`).
    Node(usize),
    /// Token ids or an index tensor the data owner derives from them: step `.0` of the ids
    /// program, of shape `.1` (`None` when the input shape is not known).
    Ids(usize, Option<Vec<usize>>),
}

#[derive(Default)]
struct Builder {
    opset: i64,
    vals: HashMap<String, Ref>,
    uses: HashMap<String, usize>,
    weights: Vec<(String, FloatTensor)>,
    weight_of: HashMap<String, usize>,
    /// Nodes with their inputs as refs (remapped to value ids by `finish`).
    nodes: Vec<(Node, Vec<Ref>)>,
    /// The concrete input shape, when importing for a known input.
    concrete: Option<Vec<usize>>,
    /// Output shapes of nodes (when the input shape is known), by each op's shape rule.
    node_shapes: Vec<Option<Vec<usize>>>,
    /// The data owner's program on its token ids (step 0: the ids), and its lookups.
    ids: musket_graph::IdsProgram,
    /// Elements of the one-hot input so far (the lookups' one-hot rows).
    ids_total: usize,
    /// The integer input was cast to a float and is used as numbers.
    ids_as_values: bool,
    /// Names of constants of integer (or boolean) type: their arithmetic is integer arithmetic
    /// when folded (a Div of shape values truncates).
    integers: std::collections::HashSet<String>,
    /// Set in the throwaway builders that fold constant nodes.
    folding: bool,
    /// Importing for training: initializers stay weights of their own (no scalar fold).
    training: bool,
}

const NODE_BASE: usize = 1 << 40;

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}
fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}
fn attr_f(n: &NodeProto, name: &str, default: f64) -> f64 {
    attr(n, name).map_or(default, |a| a.f as f64)
}
fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}
fn attr_s(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

impl Builder {
    fn invalid(&self, n: &NodeProto, msg: impl Into<String>) -> ImportError {
        ImportError::Invalid { node: n.name.clone(), op: n.op_type.clone(), msg: msg.into() }
    }

    fn unsupported(&self, n: &NodeProto, detail: &str) -> ImportError {
        let op = if n.domain.is_empty() || n.domain == "ai.onnx" {
            n.op_type.clone()
        } else {
            format!("{}::{}", n.domain, n.op_type)
        };
        ImportError::Unsupported {
            node: n.name.clone(),
            op,
            detail: if detail.is_empty() { String::new() } else { format!("; {detail}") },
        }
    }

    fn get(&self, n: &NodeProto, k: usize) -> Result<Ref, ImportError> {
        let name = n
            .input
            .get(k)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.invalid(n, format!("missing input {k}")))?;
        self.vals
            .get(name)
            .cloned()
            .ok_or_else(|| self.invalid(n, format!("input {name:?} is not defined before use")))
    }

    fn optional(&self, n: &NodeProto, k: usize) -> Result<Option<Ref>, ImportError> {
        match n.input.get(k) {
            Some(s) if !s.is_empty() => self.get(n, k).map(Some),
            _ => Ok(None),
        }
    }

    fn constant(&self, n: &NodeProto, k: usize) -> Result<FloatTensor, ImportError> {
        match self.get(n, k)? {
            Ref::Const(t, _) => Ok(t),
            _ => Err(self.invalid(
                n,
                format!("input {k} must be a constant (computed values there are not supported)"),
            )),
        }
    }

    /// A secret operand: constants become the model owner's weights.
    fn secret(&mut self, n: &NodeProto, k: usize) -> Result<Ref, ImportError> {
        Ok(match self.get(n, k)? {
            Ref::Const(t, _) => {
                let name = n.input[k].clone();
                let idx = match self.weight_of.get(&name) {
                    Some(&i) => i,
                    None => {
                        self.weights.push((name.clone(), t));
                        self.weight_of.insert(name, self.weights.len() - 1);
                        self.weights.len() - 1
                    }
                };
                Ref::Weight(idx)
            }
            r => r,
        })
    }

    fn add_weight(&mut self, name: String, t: FloatTensor) -> Ref {
        self.weights.push((name, t));
        Ref::Weight(self.weights.len() - 1)
    }

    fn emit(&mut self, n: &NodeProto, op: Op, inputs: Vec<Ref>) -> Result<(), ImportError> {
        let (op, inputs, rewritten) = match self.gelu_pattern(&op, &inputs) {
            Some((gelu, x)) => (gelu, vec![x], true),
            None => (op, inputs, false),
        };
        let out = n.output.first().filter(|s| !s.is_empty()).ok_or_else(|| self.invalid(n, "no output"))?;
        let name =
            if n.name.is_empty() { format!("{}_{}", n.op_type, self.nodes.len()) } else { n.name.clone() };
        let r = self.push(n, name, op, inputs)?;
        if rewritten {
            if let Some((node, _)) = self.nodes.last_mut() {
                node.op_type = "Gelu".into();
            }
        }
        self.vals.insert(out.clone(), r);
        Ok(())
    }

    /// Adds a node computing `op` (one of possibly several an ONNX node is lowered to) and
    /// learns its output shape by the op's shape rule when its inputs' shapes are known.
    fn push(&mut self, n: &NodeProto, name: String, op: Op, inputs: Vec<Ref>) -> Result<Ref, ImportError> {
        if inputs.iter().any(|r| matches!(r, Ref::Ids(..))) {
            return Err(self.unsupported(
                n,
                "token ids (an integer input) are only supported as the indices of embedding lookups",
            ));
        }
        let mut shapes = Vec::with_capacity(inputs.len());
        for r in &inputs {
            shapes.push(self.static_shape(r)?);
        }
        let shape = match shapes.into_iter().collect::<Option<Vec<_>>>() {
            Some(shapes) => {
                let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
                Some(op.output_shape(&refs).map_err(|e| self.invalid(n, e))?)
            }
            None => None,
        };
        let node = Node {
            name,
            op_type: n.op_type.clone(),
            op,
            inputs: Vec::new(),
            output: NODE_BASE + self.nodes.len(),
        };
        self.nodes.push((node, inputs));
        self.node_shapes.push(shape);
        Ok(Ref::Node(self.nodes.len() - 1))
    }

    /// The name of an IR node that is part of the lowering of ONNX node `n`.
    fn part(&self, n: &NodeProto, what: &str) -> String {
        let base =
            if n.name.is_empty() { format!("{}_{}", n.op_type, self.nodes.len()) } else { n.name.clone() };
        format!("{base}/{what}")
    }

    /// Adds an IR node named `what` within the lowering of `n`.
    fn sub_node(&mut self, n: &NodeProto, what: &str, op: Op, ins: Vec<Ref>) -> Result<Ref, ImportError> {
        self.push(n, self.part(n, what), op, ins)
    }

    /// A secret operand from a ref: a constant becomes a weight named after the node.
    fn secret_ref(&mut self, n: &NodeProto, r: Ref) -> Result<Ref, ImportError> {
        Ok(match r {
            Ref::Const(t, _) => self.add_weight(self.part(n, "constant"), t),
            r => r,
        })
    }

    fn alias(&mut self, n: &NodeProto, r: Ref) -> Result<(), ImportError> {
        let out = n.output.first().filter(|s| !s.is_empty()).ok_or_else(|| self.invalid(n, "no output"))?;
        self.vals.insert(out.clone(), r);
        Ok(())
    }

    fn unary(&mut self, n: &NodeProto, op: Op) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        self.emit(n, op, vec![x])
    }

    fn node(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(self.unsupported(n, "custom op domains are not supported"));
        }
        if self.foldable(n) {
            return self.fold(n);
        }
        if n.op_type != "Shape" && n.input.iter().any(|i| matches!(self.vals.get(i), Some(Ref::Ids(..)))) {
            return self.ids_op(n);
        }
        match n.op_type.as_str() {
            "Constant" => {
                let integer = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .is_some_and(|t| is_integer_type(t.data_type) || t.data_type == 9)
                    || attr(n, "value_int").is_some()
                    || attr(n, "value_ints").is_some();
                if integer {
                    if let Some(o) = n.output.first() {
                        self.integers.insert(o.clone());
                    }
                }
                let t = if let Some(a) = attr(n, "value") {
                    to_float(a.t.as_ref().ok_or_else(|| self.invalid(n, "value is not a tensor"))?)?
                } else if let Some(a) = attr(n, "value_float") {
                    FloatTensor { shape: vec![], data: vec![a.f as f64] }
                } else if let Some(a) = attr(n, "value_floats") {
                    FloatTensor {
                        shape: vec![a.floats.len()],
                        data: a.floats.iter().map(|&v| v as f64).collect(),
                    }
                } else if let Some(a) = attr(n, "value_int") {
                    FloatTensor { shape: vec![], data: vec![a.i as f64] }
                } else if let Some(a) = attr(n, "value_ints") {
                    FloatTensor {
                        shape: vec![a.ints.len()],
                        data: a.ints.iter().map(|&v| v as f64).collect(),
                    }
                } else {
                    return Err(self.unsupported(n, "only tensor, float and int constants are supported"));
                };
                self.alias(n, Ref::Const(t, true))
            }
            "Identity" => {
                let r = self.get(n, 0)?;
                self.alias(n, r)
            }
            "Dropout" => {
                if n.output
                    .get(1)
                    .is_some_and(|m| !m.is_empty() && self.uses.get(m).copied().unwrap_or(0) > 0)
                {
                    return Err(self.unsupported(n, "the dropout mask output is not supported"));
                }
                let r = self.get(n, 0)?;
                self.alias(n, r)
            }
            "Cast" => {
                let to = attr_i(n, "to", 1);
                let r = self.get(n, 0)?;
                // Float types (FLOAT, DOUBLE, FLOAT16, BFLOAT16) keep real values; a constant cast
                // to an integer type is truncated toward zero.
                let float_target = matches!(to, 1 | 10 | 11 | 16);
                if let Ref::Const(t, public) = &r {
                    let data = if float_target {
                        t.data.clone()
                    } else {
                        t.data.iter().map(|v| v.trunc()).collect()
                    };
                    if !float_target {
                        self.integers.extend(n.output.first().cloned());
                    }
                    self.alias(n, Ref::Const(FloatTensor { shape: t.shape.clone(), data }, *public))
                } else if float_target {
                    self.alias(n, r)
                } else {
                    Err(self.unsupported(n, "casting a computed value to an integer type"))
                }
            }
            "Relu" => self.unary(n, Op::Relu),
            "Sigmoid" => self.unary(n, Op::Sigmoid),
            "Tanh" => self.unary(n, Op::Tanh),
            "Erf" => self.unary(n, Op::Erf),
            "Sqrt" => self.unary(n, Op::Sqrt),
            "Reciprocal" => self.unary(n, Op::Reciprocal),
            "LeakyRelu" => self.unary(n, Op::LeakyRelu(attr_f(n, "alpha", 0.01))),
            "Clip" => {
                let (lo, hi) = if self.opset < 11 {
                    (attr_f(n, "min", f64::MIN), attr_f(n, "max", f64::MAX))
                } else {
                    let bound = |b: &Self, k: usize, d: f64| -> Result<f64, ImportError> {
                        match b.optional(n, k)? {
                            None => Ok(d),
                            Some(_) => b.scalar(n, k),
                        }
                    };
                    (bound(self, 1, f64::MIN)?, bound(self, 2, f64::MAX)?)
                };
                // Unbounded sides are clipped at the edge of the fixed-point range.
                let edge = 2f64.powi(40);
                self.unary(n, Op::Clip { lo: lo.max(-edge), hi: hi.min(edge) })
            }
            "Softmax" | "LogSoftmax" => {
                // Before opset 13 the input is flattened to 2-D at `axis` (default 1).
                let flatten = self.opset < 13;
                let axis = attr_i(n, "axis", if flatten { 1 } else { -1 });
                let log = n.op_type == "LogSoftmax";
                self.unary(n, Op::Softmax { axis, flatten, log })
            }
            "MatMul" => self.matmul(n),
            "Einsum" => self.einsum(n),
            "Gemm" => {
                let op = Op::Gemm {
                    trans_a: attr_i(n, "transA", 0) != 0,
                    trans_b: attr_i(n, "transB", 0) != 0,
                    alpha: attr_f(n, "alpha", 1.0),
                    beta: attr_f(n, "beta", 1.0),
                };
                let mut ins = vec![self.secret(n, 0)?, self.secret(n, 1)?];
                if self.optional(n, 2)?.is_some() {
                    ins.push(self.secret(n, 2)?);
                }
                self.emit(n, op, ins)
            }
            "Conv" => self.conv(n),
            "ConvTranspose" => self.conv_transpose(n),
            "Resize" | "Upsample" => self.resize(n),
            "BatchNormalization" => self.batch_norm(n),
            "Add" | "Sub" | "Mul" | "Div" => self.binary(n),
            "LayerNormalization" => {
                if n.output
                    .iter()
                    .skip(1)
                    .any(|o| !o.is_empty() && self.uses.get(o).copied().unwrap_or(0) > 0)
                {
                    return Err(self.unsupported(n, "the mean and inverse deviation outputs"));
                }
                let axis = attr_i(n, "axis", -1);
                let rank = self.static_shape(&self.get(n, 0)?)?.map(|s| s.len() as i64);
                if axis != -1 && Some(axis) != rank.map(|r| r - 1) {
                    return self.layer_norm_axes(n, axis);
                }
                let mut ins = vec![self.secret(n, 0)?, self.secret(n, 1)?];
                if self.optional(n, 2)?.is_some() {
                    ins.push(self.secret(n, 2)?);
                }
                self.emit(n, Op::LayerNorm { eps: attr_f(n, "epsilon", 1e-5) }, ins)
            }
            "Pow" => {
                let e = self.scalar(n, 1)?;
                let x = self.secret(n, 0)?;
                match e {
                    1.0 => self.alias(n, x),
                    0.5 => self.emit(n, Op::Sqrt, vec![x]),
                    -1.0 => self.emit(n, Op::Reciprocal, vec![x]),
                    e if e.fract() == 0.0 && (2.0..=64.0).contains(&e) => self.integer_power(n, x, e as u32),
                    _ => Err(self
                        .unsupported(n, "only the exponents 0.5, -1 and the integers 1 to 64 are supported")),
                }
            }
            "MaxPool" | "AveragePool" => {
                let rank = self.spatial_rank(n)?;
                if rank == 3 {
                    return self.pool3d(n);
                }
                let one_d = rank == 1;
                let (mut pool, same) = self.pool(n, one_d)?;
                if attr_i(n, "ceil_mode", 0) != 0 {
                    pool = self.ceil_mode_pads(n, pool, same)?;
                }
                let op = if n.op_type == "MaxPool" {
                    if n.output.get(1).is_some_and(|s| !s.is_empty()) {
                        return Err(self.unsupported(n, "the indices output"));
                    }
                    Op::MaxPool { pool, same }
                } else {
                    Op::AveragePool { pool, same, count_include_pad: attr_i(n, "count_include_pad", 0) != 0 }
                };
                if one_d {
                    let x = self.secret(n, 0)?;
                    return self.emit_one_d(n, op, vec![x]);
                }
                self.unary(n, op)
            }
            "GlobalAveragePool" => match self.static_shape(&self.get(n, 0)?)?.map(|s| s.len()) {
                // Other ranks than [N, C, H, W] (tf2onnx writes it for a mean over a sequence):
                // the mean over every axis after the channels.
                Some(r) if r != 4 && r > 2 => {
                    self.unary(n, Op::ReduceMean { axes: (2..r as i64).collect(), keepdims: true })
                }
                _ => self.unary(n, Op::GlobalAveragePool),
            },
            "Flatten" => self.unary(n, Op::Flatten(attr_i(n, "axis", 1))),
            "Reshape" => {
                let target: Vec<i64> = if self.opset < 5 {
                    attr_ints(n, "shape").ok_or_else(|| self.invalid(n, "missing shape"))?
                } else {
                    self.constant(n, 1)?.data.iter().map(|&v| v as i64).collect()
                };
                // With allowzero = 1 (what the dynamo exporter writes) a 0 in the target is a
                // zero-length dimension rather than a copy of the input's; without a 0 both
                // meanings agree, and an empty tensor has nothing to compute.
                if attr_i(n, "allowzero", 0) != 0 && target.contains(&0) {
                    return Err(self
                        .unsupported(n, "allowzero = 1 with a zero in the target shape (an empty tensor)"));
                }
                self.unary(n, Op::Reshape(target))
            }
            "Transpose" => {
                let perm: Vec<usize> =
                    attr_ints(n, "perm").unwrap_or_default().iter().map(|&v| v as usize).collect();
                self.unary(n, Op::Transpose(perm))
            }
            "Concat" => {
                let axis = attr(n, "axis").map(|a| a.i).ok_or_else(|| self.invalid(n, "missing axis"))?;
                let ins = (0..n.input.len()).map(|k| self.secret(n, k)).collect::<Result<Vec<_>, _>>()?;
                self.emit(n, Op::Concat(axis), ins)
            }
            "Squeeze" | "Unsqueeze" => {
                let axes: Vec<i64> = if self.opset < 13 {
                    attr_ints(n, "axes").unwrap_or_default()
                } else {
                    match self.optional(n, 1)? {
                        Some(_) => self.constant(n, 1)?.data.iter().map(|&v| v as i64).collect(),
                        None => Vec::new(),
                    }
                };
                if n.op_type == "Unsqueeze" && axes.is_empty() {
                    return Err(self.invalid(n, "Unsqueeze needs axes"));
                }
                let op = if n.op_type == "Squeeze" { Op::Squeeze(axes) } else { Op::Unsqueeze(axes) };
                self.unary(n, op)
            }
            "Pad" => {
                let mode = attr_s(n, "mode").unwrap_or_else(|| "constant".into());
                if mode != "constant" {
                    return Err(self.unsupported(n, &format!("pad mode {mode:?}")));
                }
                let (pads, value): (Vec<i64>, f64) = if self.opset < 11 {
                    (
                        attr_ints(n, "pads").ok_or_else(|| self.invalid(n, "missing pads"))?,
                        attr_f(n, "value", 0.0),
                    )
                } else {
                    let mut pads: Vec<i64> = self.constant(n, 1)?.data.iter().map(|&v| v as i64).collect();
                    let value = if self.optional(n, 2)?.is_some() { self.scalar(n, 2)? } else { 0.0 };
                    if self.optional(n, 3)?.is_some() {
                        // Opset 18: pads for the listed axes only; the others get none.
                        let axes: Vec<i64> = self.constant(n, 3)?.data.iter().map(|&v| v as i64).collect();
                        let rank =
                            self.static_shape(&self.get(n, 0)?)?.map(|s| s.len()).ok_or_else(|| {
                                self.unsupported(n, "the axes input on a value of unknown rank")
                            })?;
                        if pads.len() != 2 * axes.len() {
                            return Err(self.invalid(n, "pads do not fit the axes"));
                        }
                        let mut full = vec![0i64; 2 * rank];
                        for (k, &a) in axes.iter().enumerate() {
                            let a = if a < 0 { a + rank as i64 } else { a };
                            let a = usize::try_from(a)
                                .ok()
                                .filter(|&a| a < rank)
                                .ok_or_else(|| self.invalid(n, "bad axis"))?;
                            full[a] = pads[k];
                            full[rank + a] = pads[axes.len() + k];
                        }
                        pads = full;
                    }
                    (pads, value)
                };
                if pads.iter().any(|&p| p < 0) {
                    return Err(self.unsupported(n, "negative pads (cropping)"));
                }
                self.unary(n, Op::Pad { pads: pads.iter().map(|&p| p as usize).collect(), value })
            }
            "Slice" => {
                let ints = |b: &Self, k: usize| -> Result<Vec<i64>, ImportError> {
                    Ok(match b.optional(n, k)? {
                        Some(_) => b.constant(n, k)?.data.iter().map(|&v| v as i64).collect(),
                        None => Vec::new(),
                    })
                };
                let (starts, ends, axes, steps) = if self.opset < 10 {
                    (
                        attr_ints(n, "starts").unwrap_or_default(),
                        attr_ints(n, "ends").unwrap_or_default(),
                        attr_ints(n, "axes").unwrap_or_default(),
                        Vec::new(),
                    )
                } else {
                    (ints(self, 1)?, ints(self, 2)?, ints(self, 3)?, ints(self, 4)?)
                };
                if steps.iter().any(|&s| s < 0) {
                    return self.reversed_slice(n, &starts, &ends, &axes, &steps);
                }
                if steps.contains(&0) {
                    return Err(self.invalid(n, "a zero step"));
                }
                if starts.len() != ends.len() {
                    return Err(self.invalid(n, "starts and ends differ in length"));
                }
                self.unary(n, Op::Slice { starts, ends, axes, steps })
            }
            "Split" => {
                let axis = attr_i(n, "axis", 0);
                let sizes: Option<Vec<usize>> = if self.opset < 13 {
                    attr_ints(n, "split").map(|v| v.iter().map(|&x| x.max(0) as usize).collect())
                } else {
                    match self.optional(n, 1)? {
                        Some(_) => {
                            Some(self.constant(n, 1)?.data.iter().map(|&x| x.max(0.0) as usize).collect())
                        }
                        None => None,
                    }
                };
                let x = self.secret(n, 0)?;
                let count = n.output.len();
                for (index, out) in n.output.iter().enumerate() {
                    let mut part = n.clone();
                    part.output = vec![out.clone()];
                    part.name = format!("{}[{index}]", n.name);
                    self.emit(
                        &part,
                        Op::SplitPart { axis, index, count, sizes: sizes.clone() },
                        vec![x.clone()],
                    )?;
                }
                Ok(())
            }
            "Gather" => {
                let idx = match self.get(n, 1)? {
                    Ref::Const(t, _) => t,
                    _ => return Err(self.unsupported(n, "indices computed from secret values")),
                };
                if matches!(self.get(n, 0)?, Ref::Const(..)) && !self.folding {
                    return Err(self.unsupported(
                        n,
                        "gathering from a constant (an embedding lookup with secret indices)",
                    ));
                }
                let indices = idx.data.iter().map(|&v| v as i64).collect();
                self.unary(
                    n,
                    Op::Gather { axis: attr_i(n, "axis", 0), indices, indices_shape: idx.shape.clone() },
                )
            }
            "Expand" => {
                let shape: Vec<usize> =
                    self.constant(n, 1)?.data.iter().map(|&v| v.max(0.0) as usize).collect();
                self.unary(n, Op::Expand(shape))
            }
            "Shape" => {
                self.integers.extend(n.output.first().cloned());
                let r = self.get(n, 0)?;
                let Some(shape) = self.static_shape(&r)? else {
                    return Err(self.unsupported(
                        n,
                        "the shape of a computed value is only known when the model is loaded for a concrete input",
                    ));
                };
                let rank = shape.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
                let (start, end) = (clamp(attr_i(n, "start", 0)), clamp(attr_i(n, "end", rank)));
                let dims: Vec<f64> = shape[start..end.max(start)].iter().map(|&d| d as f64).collect();
                self.alias(n, Ref::Const(FloatTensor { shape: vec![dims.len()], data: dims }, true))
            }
            _ => {
                if self.transformer_op(n)? || self.indexing_op(n)? || self.lowered_op(n)? {
                    Ok(())
                } else {
                    Err(self.unsupported(n, ""))
                }
            }
        }
    }

    /// The static shape of a value, if known (needs a concrete input shape for computed values).
    fn static_shape(&self, r: &Ref) -> Result<Option<Vec<usize>>, ImportError> {
        Ok(match r {
            Ref::Input if !self.ids.lookups.is_empty() => Some(vec![self.ids_total]),
            Ref::Input => self.concrete.clone(),
            Ref::Ids(_, shape) => shape.clone(),
            Ref::Const(t, _) => Some(t.shape.clone()),
            Ref::Weight(i) => Some(self.weights[*i].1.shape.clone()),
            Ref::Node(k) => self.node_shapes.get(*k).cloned().flatten(),
        })
    }

    /// A one-element constant input.
    fn scalar(&self, n: &NodeProto, k: usize) -> Result<f64, ImportError> {
        let t = self.constant(n, k)?;
        match t.data[..] {
            [v] => Ok(v),
            _ => Err(self.invalid(n, format!("input {k} must be a scalar constant"))),
        }
    }

    /// Drops unused weights and assigns final value ids.
    fn finish(self, input_name: String, input_shape: Vec<Option<usize>>, out_node: Option<usize>) -> Graph {
        // Only what the output needs is kept: the other outputs' branches of a multi-output
        // export and the nodes a rewrite (erf-GELU to Gelu) left unused.
        let mut live = vec![false; self.nodes.len()];
        if let Some(k) = out_node {
            live[k] = true;
        }
        for k in (0..self.nodes.len()).rev() {
            if live[k] {
                for r in &self.nodes[k].1 {
                    if let Ref::Node(j) = r {
                        live[*j] = true;
                    }
                }
            }
        }
        let mut node_index = vec![usize::MAX; self.nodes.len()];
        let mut kept = 0;
        for (k, &l) in live.iter().enumerate() {
            if l {
                node_index[k] = kept;
                kept += 1;
            }
        }
        let mut used = vec![false; self.weights.len()];
        for (_, ins) in self.nodes.iter().zip(&live).filter(|(_, &l)| l).map(|(n, _)| n) {
            for r in ins {
                if let Ref::Weight(w) = r {
                    used[*w] = true;
                }
            }
        }
        let mut new_index = vec![usize::MAX; self.weights.len()];
        let mut weights = Vec::new();
        for (i, w) in self.weights.into_iter().enumerate() {
            if used[i] {
                new_index[i] = weights.len();
                weights.push(w);
            }
        }
        let w = weights.len();
        let id = |r: &Ref| -> ValueId {
            match r {
                Ref::Input => 0,
                Ref::Weight(i) => Graph::weight_id(new_index[*i]),
                Ref::Node(k) => 1 + w + node_index[*k],
                Ref::Const(..) | Ref::Ids(..) => {
                    unreachable!("constants and token ids are converted before use")
                }
            }
        };
        let nodes: Vec<Node> = self
            .nodes
            .iter()
            .zip(&live)
            .filter(|(_, &l)| l)
            .enumerate()
            .map(|(k, ((node, ins), _))| Node {
                inputs: ins.iter().map(id).collect(),
                output: 1 + w + k,
                ..node.clone()
            })
            .collect();
        let out_node = out_node.map(|k| node_index[k]);
        let output = out_node.map_or(0, |k| 1 + w + k);
        let ids = (!self.ids.lookups.is_empty()).then_some(self.ids);
        Graph { input_name, input_shape, weights, nodes, output, ids }
    }
}
