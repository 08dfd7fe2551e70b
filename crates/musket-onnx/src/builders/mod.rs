//! One builder per supported ONNX op.

mod consts;
mod indexing;
mod lowered;
mod resize;
mod transformer;

use crate::model::{ImportOptions, Model};
use crate::tensors::to_float;
use crate::ImportError;
use musket_graph::{FloatTensor, Graph, Node, Op, ValueId};
use musket_nn::{Conv2d, Pool2d};
use onnx_protobuf::{AttributeProto, ModelProto, NodeProto};
use std::collections::HashMap;
use std::path::Path;

/// Reads and imports an ONNX file (with its external data, if any).
pub fn load(path: &Path) -> Result<Graph, ImportError> {
    load_for_input(path, None)
}

/// A protobuf message (an ONNX model without external data) is at most 2 GiB.
const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Reads and imports an ONNX file specialised to a concrete input shape: shape computations
/// on the input (Shape and what follows it) fold to constants. Only a regular file of at most
/// 2 GiB is read, with at most as much external data.
pub fn load_for_input(path: &Path, input_shape: Option<&[usize]>) -> Result<Graph, ImportError> {
    Model::read(path, MAX_MODEL_BYTES)?.import(&ImportOptions { input_shape, output: None })
}

/// Imports an ONNX model from its protobuf bytes.
pub fn import(bytes: &[u8]) -> Result<Graph, ImportError> {
    import_for_input(bytes, None)
}

/// Imports an ONNX model specialised to a concrete input shape (see [`load_for_input`]).
pub fn import_for_input(bytes: &[u8], concrete: Option<&[usize]>) -> Result<Graph, ImportError> {
    Model::parse(bytes)?.import(&ImportOptions { input_shape: concrete, output: None })
}

/// ONNX tensor element types that hold integers (token ids when they are the model input).
fn is_integer_type(elem_type: i32) -> bool {
    // INT8, UINT8, INT16, UINT16, INT32, INT64, UINT32, UINT64.
    matches!(elem_type, 2..=7 | 12 | 13)
}

/// Imports a parsed model.
pub(crate) fn import_model(model: &ModelProto, options: &ImportOptions<'_>) -> Result<Graph, ImportError> {
    let concrete = options.input_shape;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1);
    let g = model.graph.as_ref().ok_or_else(|| ImportError::Model("the model has no graph".into()))?;
    let mut b = Builder { opset, concrete: concrete.map(<[usize]>::to_vec), ..Default::default() };
    for init in &g.initializer {
        b.vals.insert(init.name.clone(), Ref::Const(to_float(init)?, false));
        if is_integer_type(init.data_type) || init.data_type == 9 {
            b.integers.insert(init.name.clone());
        }
    }
    let inputs: Vec<_> = g.input.iter().filter(|i| !b.vals.contains_key(&i.name)).collect();
    let [input] = inputs[..] else {
        return Err(ImportError::Model(format!(
            "the model has {} inputs; Musket supports exactly one",
            inputs.len()
        )));
    };
    let tensor_type = input.type_.tensor_type();
    let dims = &tensor_type.shape.dim;
    let input_shape: Vec<Option<usize>> = dims
        .iter()
        .map(|d| if d.has_dim_value() && d.dim_value() > 0 { Some(d.dim_value() as usize) } else { None })
        .collect();
    if let Some(c) = concrete {
        // Checked here, before shape inference would fail at the first node that cannot take it.
        if c.len() != input_shape.len()
            || c.iter().zip(&input_shape).any(|(&got, want)| want.is_some_and(|w| w != got))
        {
            let dims: Vec<String> =
                input_shape.iter().map(|d| d.map_or("N".to_string(), |d| d.to_string())).collect();
            return Err(ImportError::Model(format!(
                "input {:?} has shape {c:?}, the model expects [{}]",
                input.name,
                dims.join(", ")
            )));
        }
    }
    let input_ref =
        if is_integer_type(tensor_type.elem_type) { Ref::Ids(b.concrete.clone()) } else { Ref::Input };
    b.vals.insert(input.name.clone(), input_ref);
    for n in &g.node {
        for i in &n.input {
            *b.uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &g.output {
        *b.uses.entry(o.name.clone()).or_default() += 1;
    }
    for n in &g.node {
        b.node(n)?;
    }
    let output = match options.output {
        Some(name) => g.output.iter().find(|o| o.name == name).ok_or_else(|| {
            let names: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
            ImportError::Model(format!("the model has no output {name:?} (its outputs: {names:?})"))
        })?,
        None => g.output.first().ok_or_else(|| ImportError::Model("the model has no outputs".into()))?,
    };
    let out = match b.vals.get(&output.name) {
        Some(Ref::Input) => None,
        Some(Ref::Node(k)) => Some(*k),
        Some(Ref::Ids(_)) => {
            return Err(ImportError::Model(format!("output {:?} is the token ids themselves", output.name)))
        }
        Some(Ref::Weight(_) | Ref::Const(..)) | None => {
            return Err(ImportError::Model(format!(
                "output {:?} is not computed from the input",
                output.name
            )))
        }
    };
    Ok(b.finish(input.name.clone(), input_shape, out))
}

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
    /// The model input holding token ids (an integer tensor), viewed with this shape (after
    /// reshapes; `None` when the input shape is not known): only embedding lookups may use it.
    Ids(Option<Vec<usize>>),
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
    /// The vocabulary length of the embedding lookups on token ids, once one is seen.
    one_hot: Option<usize>,
    /// The integer input was cast to a float and is used as numbers.
    ids_as_values: bool,
    /// Names of constants of integer (or boolean) type: their arithmetic is integer arithmetic
    /// when folded (a Div of shape values truncates).
    integers: std::collections::HashSet<String>,
    /// Set in the throwaway builders that fold constant nodes.
    folding: bool,
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
        let out = n.output.first().filter(|s| !s.is_empty()).ok_or_else(|| self.invalid(n, "no output"))?;
        let name =
            if n.name.is_empty() { format!("{}_{}", n.op_type, self.nodes.len()) } else { n.name.clone() };
        let r = self.push(n, name, op, inputs)?;
        self.vals.insert(out.clone(), r);
        Ok(())
    }

    /// Adds a node computing `op` (one of possibly several an ONNX node is lowered to) and
    /// learns its output shape by the op's shape rule when its inputs' shapes are known.
    fn push(&mut self, n: &NodeProto, name: String, op: Op, inputs: Vec<Ref>) -> Result<Ref, ImportError> {
        if inputs.iter().any(|r| matches!(r, Ref::Ids(_))) {
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
        let ids_ok = matches!(
            n.op_type.as_str(),
            "Gather" | "Reshape" | "Squeeze" | "Unsqueeze" | "Flatten" | "Cast" | "Identity" | "Shape"
        );
        if !ids_ok && n.input.iter().any(|i| matches!(self.vals.get(i), Some(Ref::Ids(_)))) {
            return Err(self.unsupported(
                n,
                "on the integer input: an integer input is taken as private token ids, which are only \
                 supported as the indices of embedding lookups (a model that computes with them, as RoBERTa \
                 computes its position ids, is not supported yet)",
            ));
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
                if let Ref::Ids(shape) = &r {
                    // Token ids stay ids through integer casts; cast to a float they are the
                    // model's numeric input.
                    if !float_target {
                        return self.alias(n, r.clone());
                    }
                    if self.one_hot.is_some() || shape.as_ref() != self.concrete.as_ref() {
                        return Err(self.unsupported(n, "token ids used both as indices and as values"));
                    }
                    self.ids_as_values = true;
                    return self.alias(n, Ref::Input);
                }
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
                let (mut pool, same) = self.pool(n)?;
                if attr_i(n, "ceil_mode", 0) != 0 {
                    pool = self.ceil_mode_pads(n, pool, same)?;
                }
                if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    return Err(self.unsupported(n, "dilated pooling"));
                }
                let op = if n.op_type == "MaxPool" {
                    if n.output.get(1).is_some_and(|s| !s.is_empty()) {
                        return Err(self.unsupported(n, "the indices output"));
                    }
                    Op::MaxPool { pool, same }
                } else {
                    Op::AveragePool { pool, same, count_include_pad: attr_i(n, "count_include_pad", 0) != 0 }
                };
                self.unary(n, op)
            }
            "GlobalAveragePool" => self.unary(n, Op::GlobalAveragePool),
            "Flatten" => match self.get(n, 0)? {
                Ref::Ids(shape) => self.ids_view(n, shape, Op::Flatten(attr_i(n, "axis", 1))),
                _ => self.unary(n, Op::Flatten(attr_i(n, "axis", 1))),
            },
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
                if let Ref::Ids(shape) = self.get(n, 0)? {
                    return self.ids_view(n, shape, Op::Reshape(target));
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
                if let Ref::Ids(shape) = self.get(n, 0)? {
                    return self.ids_view(n, shape, op);
                }
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
                    let pads = self.constant(n, 1)?.data.iter().map(|&v| v as i64).collect();
                    let value = if self.optional(n, 2)?.is_some() { self.scalar(n, 2)? } else { 0.0 };
                    if self.optional(n, 3)?.is_some() {
                        return Err(self.unsupported(n, "the axes input"));
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
                    Ref::Ids(shape) => return self.embedding(n, shape),
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

    /// True for a node whose inputs are all constants and that can be evaluated at import.
    fn foldable(&self, n: &NodeProto) -> bool {
        !self.folding
            && n.output.len() == 1
            && !matches!(n.op_type.as_str(), "Constant" | "Identity" | "Dropout" | "Cast" | "Shape")
            && n.input.iter().any(|i| !i.is_empty())
            && n.input
                .iter()
                .filter(|i| !i.is_empty())
                .all(|i| matches!(self.vals.get(i), Some(Ref::Const(..))))
    }

    /// Evaluates an all-constant node with the f64 evaluator; the result is public only if all
    /// its inputs are.
    fn fold(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let mut tb = Builder { opset: self.opset, folding: true, ..Default::default() };
        let mut public = true;
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if let Some(Ref::Const(t, p)) = self.vals.get(i) {
                public &= *p;
                tb.vals.insert(i.clone(), Ref::Const(t.clone(), *p));
            }
        }
        let consts: Vec<Option<FloatTensor>> = n
            .input
            .iter()
            .map(|i| match self.vals.get(i) {
                Some(Ref::Const(t, _)) => Some(t.clone()),
                _ => None,
            })
            .collect();
        // The result is an integer if every operand is (the data operands, for Where), or if
        // the op yields booleans.
        let data_inputs: Vec<&String> = match n.op_type.as_str() {
            "Where" => n.input.iter().skip(1).collect(),
            "ConstantOfShape" | "Size" => Vec::new(),
            _ => n.input.iter().filter(|i| !i.is_empty()).collect(),
        };
        let boolean = matches!(
            n.op_type.as_str(),
            "Equal"
                | "Less"
                | "LessOrEqual"
                | "Greater"
                | "GreaterOrEqual"
                | "Not"
                | "And"
                | "Or"
                | "Xor"
                | "IsNaN"
                | "IsInf"
                | "Size"
        );
        let integer = boolean
            || (n.op_type == "ConstantOfShape"
                && attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .is_some_and(|t| is_integer_type(t.data_type) || t.data_type == 9))
            || (!data_inputs.is_empty() && data_inputs.iter().all(|i| self.integers.contains(*i)));
        if integer {
            self.integers.extend(n.output.first().cloned());
        }
        let truncate = |mut t: FloatTensor| {
            if integer {
                t.data.iter_mut().for_each(|v| *v = v.trunc());
            }
            t
        };
        if let Some(value) = self.fold_special(n, &consts) {
            return self.alias(n, Ref::Const(truncate(value?), public));
        }
        tb.node(n)?;
        let out_name = &n.output[0];
        let value = match tb.vals.get(out_name) {
            Some(Ref::Const(t, _)) => t.clone(),
            Some(Ref::Node(k)) => {
                let k = *k;
                let g = tb.finish(String::new(), vec![], Some(k));
                musket_graph::eval_f64(&g, &FloatTensor { shape: vec![], data: vec![0.0] })
                    .map_err(|e| self.invalid(n, format!("cannot evaluate constant node: {e}")))?
                    .output
            }
            _ => return Err(self.unsupported(n, "folding this constant computation")),
        };
        self.alias(n, Ref::Const(truncate(value), public))
    }

    /// The static shape of a value, if known (needs a concrete input shape for computed values).
    fn static_shape(&self, r: &Ref) -> Result<Option<Vec<usize>>, ImportError> {
        Ok(match r {
            Ref::Input => self.concrete.clone().map(|mut s| {
                s.extend(self.one_hot);
                s
            }),
            Ref::Ids(shape) => shape.clone(),
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

    fn binary(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (a, b) = (self.get(n, 0)?, self.get(n, 1)?);
        // Only Constant-node scalars are public (e.g. a division by sqrt(d_k)); a scalar
        // initializer is a trained value and stays a secret weight.
        // (While folding an all-constant node, every operand is simply an operand.)
        let folding = self.folding;
        let scalar = |r: &Ref| match r {
            Ref::Const(t, true) if t.data.len() == 1 && !folding => Some(t.data[0]),
            _ => None,
        };
        let op = n.op_type.as_str();
        if !folding && matches!(op, "Add" | "Sub") {
            let (pa, pb) = (self.public_addend(&a), self.public_addend(&b));
            match (pa, pb, op) {
                (None, Some(c), "Add") if scalar(&b).is_none() => {
                    let x = self.secret(n, 0)?;
                    return self.emit(n, Op::AddPublic(c), vec![x]);
                }
                (Some(c), None, "Add") if scalar(&a).is_none() => {
                    let x = self.secret(n, 1)?;
                    return self.emit(n, Op::AddPublic(c), vec![x]);
                }
                (None, Some(c), "Sub") if scalar(&b).is_none() => {
                    let x = self.secret(n, 0)?;
                    let neg =
                        FloatTensor { shape: c.shape.clone(), data: c.data.iter().map(|v| -v).collect() };
                    return self.emit(n, Op::AddPublic(neg), vec![x]);
                }
                (Some(c), None, "Sub") if scalar(&a).is_none() => {
                    let x = self.secret(n, 1)?;
                    let neg = self.push(n, format!("{}/neg", n.name), Op::MulConst(-1.0), vec![x])?;
                    return self.emit(n, Op::AddPublic(c), vec![neg]);
                }
                _ => {}
            }
        }
        match (op, scalar(&a), scalar(&b)) {
            (_, Some(_), Some(_)) => return Err(self.unsupported(n, "operations between two constants")),
            ("Add", None, Some(c)) | ("Add", Some(c), None) => {
                let x = if scalar(&a).is_some() { self.secret(n, 1)? } else { self.secret(n, 0)? };
                return self.emit(n, Op::AddConst(c), vec![x]);
            }
            ("Mul", None, Some(c)) | ("Mul", Some(c), None) => {
                let x = if scalar(&a).is_some() { self.secret(n, 1)? } else { self.secret(n, 0)? };
                return self.emit(n, Op::MulConst(c), vec![x]);
            }
            ("Sub", None, Some(c)) => {
                let x = self.secret(n, 0)?;
                return self.emit(n, Op::AddConst(-c), vec![x]);
            }
            ("Div", None, Some(c)) => {
                if c == 0.0 {
                    return Err(self.invalid(n, "division by zero"));
                }
                let x = self.secret(n, 0)?;
                return self.emit(n, Op::MulConst(1.0 / c), vec![x]);
            }
            ("Div", Some(_), None) => {
                return Err(self.unsupported(n, "a constant divided by a computed value"))
            }
            _ => {}
        }
        let ins = vec![self.secret(n, 0)?, self.secret(n, 1)?];
        let op = match op {
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Div" => Op::Div,
            _ => Op::Mul,
        };
        self.emit(n, op, ins)
    }

    fn spatial(&self, n: &NodeProto, name: &str, default: [usize; 2]) -> Result<[usize; 2], ImportError> {
        match attr_ints(n, name) {
            None => Ok(default),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok([v[0] as usize, v[1] as usize]),
            Some(v) => Err(self.unsupported(n, &format!("{name} = {v:?} (2-D only)"))),
        }
    }

    /// Explicit pads, and the auto_pad SAME variant if any (`Some(true)`: SAME_UPPER).
    fn pads(&self, n: &NodeProto) -> Result<([usize; 4], Option<bool>), ImportError> {
        let same = match attr_s(n, "auto_pad").as_deref() {
            None | Some("NOTSET") | Some("") => None,
            Some("VALID") => return Ok(([0; 4], None)),
            Some("SAME_UPPER") => Some(true),
            Some("SAME_LOWER") => Some(false),
            Some(other) => return Err(self.unsupported(n, &format!("auto_pad = {other}"))),
        };
        let pads = match attr_ints(n, "pads") {
            None => [0; 4],
            Some(v) if v.len() == 4 && v.iter().all(|&x| x >= 0) => {
                [v[0] as usize, v[1] as usize, v[2] as usize, v[3] as usize]
            }
            Some(v) => return Err(self.unsupported(n, &format!("pads = {v:?} (2-D only)"))),
        };
        Ok((pads, same))
    }

    fn pool(&self, n: &NodeProto) -> Result<(Pool2d, Option<bool>), ImportError> {
        let kernel = self.spatial(n, "kernel_shape", [0, 0])?;
        if kernel == [0, 0] {
            return Err(self.invalid(n, "missing kernel_shape"));
        }
        let (pads, same) = self.pads(n)?;
        Ok((Pool2d { kernel, stride: self.spatial(n, "strides", [1, 1])?, pads }, same))
    }

    /// ceil_mode = 1: windows that start inside the input (or its begin padding) but run past
    /// the end are kept, as extra end padding that no average counts and no maximum picks.
    fn ceil_mode_pads(
        &self,
        n: &NodeProto,
        mut pool: Pool2d,
        same: Option<bool>,
    ) -> Result<Pool2d, ImportError> {
        let shape = self.static_shape(&self.get(n, 0)?)?;
        let Some([_, _, h, w]) = shape.as_deref().and_then(|s| <[usize; 4]>::try_from(s).ok()) else {
            return Err(self
                .unsupported(n, "ceil_mode = 1 on a value whose shape is only known for a concrete input"));
        };
        if same.is_some() {
            return Err(self.unsupported(n, "ceil_mode = 1 with auto_pad"));
        }
        for (d, size) in [h, w].into_iter().enumerate() {
            let (k, s, pb, pe) = (pool.kernel[d], pool.stride[d], pool.pads[d], pool.pads[d + 2]);
            let span = size + pb + pe;
            if span < k {
                return Ok(pool);
            }
            let mut out = (span - k).div_ceil(s) + 1;
            if (out - 1) * s >= size + pb {
                out -= 1;
            }
            let extra = ((out - 1) * s + k).saturating_sub(span);
            if extra > 0 {
                let counts_pads = n.op_type == "AveragePool" && attr_i(n, "count_include_pad", 0) != 0;
                if counts_pads || pe + extra >= k {
                    return Err(self.unsupported(
                        n,
                        "ceil_mode = 1 with count_include_pad = 1 or a window of padding only",
                    ));
                }
                pool.pads[d + 2] += extra;
            }
        }
        Ok(pool)
    }

    fn conv(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (pads, same) = self.pads(n)?;
        let geometry = Conv2d {
            stride: self.spatial(n, "strides", [1, 1])?,
            pads,
            dilation: self.spatial(n, "dilations", [1, 1])?,
            groups: usize::try_from(attr_i(n, "group", 1))
                .ok()
                .filter(|&g| g > 0)
                .ok_or_else(|| self.invalid(n, "bad group"))?,
        };
        let mut ins = vec![self.secret(n, 0)?, self.secret(n, 1)?];
        if self.optional(n, 2)?.is_some() {
            ins.push(self.secret(n, 2)?);
        }
        self.emit(n, Op::Conv { geometry, same }, ins)
    }

    /// Inference batch norm: `y = x a + b` with `a = scale / sqrt(var + eps)` and
    /// `b = bias - mean a`, folded into the preceding Conv's weights when the Conv's output
    /// feeds only this node, else a per-channel affine layer.
    fn batch_norm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        if attr_i(n, "training_mode", 0) != 0 {
            // Training mode normalises by the batch's own statistics and updates the running
            // ones: not the inference computation below.
            return Err(self.unsupported(n, "training_mode = 1"));
        }
        let eps = attr_f(n, "epsilon", 1e-5);
        let [scale, bias, mean, var] = [1, 2, 3, 4].map(|k| self.constant(n, k));
        let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
        let c = scale.data.len();
        if [&bias, &mean, &var].iter().any(|t| t.data.len() != c) {
            return Err(self.invalid(n, "parameters of different lengths"));
        }
        let a: Vec<f64> = (0..c).map(|i| scale.data[i] / (var.data[i] + eps).sqrt()).collect();
        let b: Vec<f64> = (0..c).map(|i| bias.data[i] - mean.data[i] * a[i]).collect();
        let x = self.get(n, 0)?;
        let x_name = &n.input[0];
        if let Ref::Node(k) = x {
            let single_use = self.uses.get(x_name).copied() == Some(1);
            if let (true, Op::Conv { .. }) = (single_use, &self.nodes[k].0.op) {
                let inputs = self.nodes[k].1.clone();
                let bias_ok = match inputs.get(2) {
                    None => true,
                    Some(Ref::Weight(bi)) => self.weights[*bi].1.data.len() == c,
                    Some(_) => false,
                };
                if let (Ref::Weight(wi), bias_ref, true) = (&inputs[1], inputs.get(2), bias_ok) {
                    let w = self.weights[*wi].1.clone();
                    if c > 0 && w.shape.first() == Some(&c) && w.data.len().is_multiple_of(c) {
                        let per = w.data.len() / c;
                        let mut wf = w.clone();
                        for o in 0..c {
                            for v in &mut wf.data[o * per..(o + 1) * per] {
                                *v *= a[o];
                            }
                        }
                        let old_b = match bias_ref {
                            Some(Ref::Weight(bi)) => self.weights[*bi].1.data.clone(),
                            _ => vec![0.0; c],
                        };
                        let bf: Vec<f64> = (0..c).map(|o| old_b[o] * a[o] + b[o]).collect();
                        let wr = self.add_weight(format!("{}+{}", self.weights[*wi].0, n.name), wf);
                        let br = self
                            .add_weight(format!("{}.bias", n.name), FloatTensor { shape: vec![c], data: bf });
                        self.nodes[k].1 = vec![inputs[0].clone(), wr, br];
                        self.nodes[k].0.name = format!("{}+{}", self.nodes[k].0.name, n.name);
                        return self.alias(n, Ref::Node(k));
                    }
                }
            }
        }
        let x = self.secret(n, 0)?;
        let ar = self.add_weight(format!("{}.scale", n.name), FloatTensor { shape: vec![c], data: a });
        let br = self.add_weight(format!("{}.shift", n.name), FloatTensor { shape: vec![c], data: b });
        self.emit(n, Op::Affine, vec![x, ar, br])
    }

    /// Drops unused weights and assigns final value ids.
    fn finish(self, input_name: String, input_shape: Vec<Option<usize>>, out_node: Option<usize>) -> Graph {
        let mut used = vec![false; self.weights.len()];
        for (_, ins) in &self.nodes {
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
                Ref::Node(k) => 1 + w + k,
                Ref::Const(..) | Ref::Ids(_) => {
                    unreachable!("constants and token ids are converted before use")
                }
            }
        };
        let nodes: Vec<Node> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(k, (node, ins))| Node {
                inputs: ins.iter().map(id).collect(),
                output: 1 + w + k,
                ..node.clone()
            })
            .collect();
        let output = out_node.map_or(0, |k| 1 + w + k);
        Graph { input_name, input_shape, weights, nodes, output, input_one_hot: self.one_hot }
    }
}
