//! Elementwise arithmetic (Add, Sub, Mul, Div) with its constant cases, and the folding of
//! nodes whose inputs are all constants.

use super::{attr, is_integer_type, Builder, Ref};
use crate::ImportError;
use musket_graph::{FloatTensor, Op};
use onnx_protobuf::NodeProto;

impl Builder {
    /// True for a node whose inputs are all constants and that can be evaluated at import.
    pub(super) fn foldable(&self, n: &NodeProto) -> bool {
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
    pub(super) fn fold(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let public = n
            .input
            .iter()
            .filter(|i| !i.is_empty())
            .all(|i| matches!(self.vals.get(i), Some(Ref::Const(_, true))));
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
        let consts: Vec<Option<&FloatTensor>> = n
            .input
            .iter()
            .map(|i| match self.vals.get(i) {
                Some(Ref::Const(t, _)) => Some(t),
                _ => None,
            })
            .collect();
        if let Some(value) = self.fold_special(n, &consts) {
            return self.alias(n, Ref::Const(truncate(value?), public));
        }
        // Otherwise the op's IR definition, in a throwaway builder holding copies of the inputs.
        let mut tb = Builder { opset: self.opset, folding: true, ..Default::default() };
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if let Some(Ref::Const(t, p)) = self.vals.get(i) {
                tb.vals.insert(i.clone(), Ref::Const(t.clone(), *p));
            }
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

    pub(super) fn binary(&mut self, n: &NodeProto) -> Result<(), ImportError> {
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
                    let neg = self.sub_node(n, "neg", Op::MulConst(-1.0), vec![x])?;
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
        // A product by a scalar initializer (the dynamo exporter's attention scale) folds into
        // the weights of the layer that produced the other operand, when it can (`fold.rs`).
        if !folding && !self.training && matches!(op, "Mul" | "Div") {
            let secret_scalar = |r: &Ref| match r {
                Ref::Const(t, false) if t.data.len() == 1 => Some((t.data[0], t.shape.len())),
                _ => None,
            };
            let candidate = match (&a, &b) {
                (Ref::Node(k), s) => {
                    secret_scalar(s).map(|(c, rank)| (*k, if op == "Div" { 1.0 / c } else { c }, rank))
                }
                (s, Ref::Node(k)) if op == "Mul" => secret_scalar(s).map(|(c, rank)| (*k, c, rank)),
                _ => None,
            };
            if let Some((k, c, rank)) = candidate {
                if self.fold_scale_into_producer(k, c, rank) {
                    return self.alias(n, Ref::Node(k));
                }
            }
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
}
