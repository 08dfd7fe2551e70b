//! Token ids in the importer: an integer model input is the data owner's token ids. Nodes that
//! compute on the ids and constants only (RoBERTa's position ids: Equal, Not, CumSum, Mul, Add,
//! integer Casts; reshapes, Expand, GatherElements, Where) become steps of the data owner's
//! plaintext program ([`musket_graph::IdsProgram`]); a Gather of a constant table by ids or
//! by a derived index tensor becomes a lookup: the product of that tensor's one-hot rows (a
//! slice of the shared input) with the secret table.

use super::{attr_i, Builder, Ref};
use crate::ImportError;
use musket_graph::{IdsBinary, IdsLookup, IdsOp, IdsStep, Op};
use onnx_protobuf::NodeProto;

impl Builder {
    /// The reference of the token-id input (step 0 of the program).
    pub(super) fn ids_input(&mut self) -> Ref {
        self.ids.steps = vec![IdsStep { op: IdsOp::Input, inputs: Vec::new() }];
        Ref::Ids(0, self.concrete.clone())
    }

    fn ids_push(&mut self, n: &NodeProto, op: IdsOp, inputs: Vec<usize>) -> Result<Ref, ImportError> {
        let Some(shape) = self.concrete.clone() else {
            return Err(
                self.unsupported(n, "on token ids, when the model is not loaded for a concrete input shape")
            );
        };
        self.ids.steps.push(IdsStep { op, inputs });
        let shapes = self.ids.shapes(&shape).map_err(|e| self.invalid(n, e))?;
        Ok(Ref::Ids(self.ids.steps.len() - 1, shapes.last().cloned()))
    }

    /// A step for an operand: ids as they are, constants as constant steps.
    fn ids_operand(&mut self, n: &NodeProto, k: usize) -> Result<usize, ImportError> {
        match self.get(n, k)? {
            Ref::Ids(step, _) => Ok(step),
            Ref::Const(t, _) => match self.ids_push(n, IdsOp::Constant(t), Vec::new())? {
                Ref::Ids(step, _) => Ok(step),
                _ => unreachable!("ids_push gives ids"),
            },
            _ => Err(self.unsupported(
                n,
                "on token ids together with computed values: the token ids (an integer input) only \
                 take part in computations with constants, whose results index embedding tables",
            )),
        }
    }

    /// A node with token ids among its inputs.
    pub(super) fn ids_op(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let binary = |b: IdsBinary| Some(IdsOp::Binary(b));
        let simple = match n.op_type.as_str() {
            "Add" => binary(IdsBinary::Add),
            "Sub" => binary(IdsBinary::Sub),
            "Mul" => binary(IdsBinary::Mul),
            "Equal" => binary(IdsBinary::Equal),
            "Less" => binary(IdsBinary::Less),
            "Greater" => binary(IdsBinary::Greater),
            "And" => binary(IdsBinary::And),
            "Or" => binary(IdsBinary::Or),
            "Not" => Some(IdsOp::Not),
            "Where" => Some(IdsOp::Where),
            "GatherElements" => Some(IdsOp::GatherElements { axis: attr_i(n, "axis", 0) }),
            _ => None,
        };
        if let Some(op) = simple {
            let count = n.input.iter().filter(|i| !i.is_empty()).count();
            let ins = (0..count).map(|k| self.ids_operand(n, k)).collect::<Result<Vec<_>, _>>()?;
            let r = self.ids_push(n, op, ins)?;
            return self.alias(n, r);
        }
        if n.op_type == "Gather" {
            return self.embedding(n);
        }
        let x = self.get(n, 0)?;
        let (step, shape) = match &x {
            Ref::Ids(step, shape) => (*step, shape.clone()),
            _ => return Err(self.unsupported(n, "token ids in an input other than the first")),
        };
        match n.op_type.as_str() {
            "Identity" | "Dropout" => self.alias(n, x),
            "Cast" => {
                let to = attr_i(n, "to", 1);
                if !matches!(to, 1 | 10 | 11 | 16) {
                    let r = self.ids_push(n, IdsOp::Truncate, vec![step])?;
                    return self.alias(n, r);
                }
                // Cast to a float, the raw ids are the model's numeric input (and never ids).
                if step != 0 || !self.ids.lookups.is_empty() || self.ids.steps.len() > 1 {
                    return Err(self.unsupported(n, "token ids used both as indices and as values"));
                }
                self.ids_as_values = true;
                self.alias(n, Ref::Input)
            }
            "CumSum" => {
                let axis = self.scalar(n, 1)? as i64;
                let op = IdsOp::CumSum {
                    axis,
                    exclusive: attr_i(n, "exclusive", 0) != 0,
                    reverse: attr_i(n, "reverse", 0) != 0,
                };
                let r = self.ids_push(n, op, vec![step])?;
                self.alias(n, r)
            }
            "Reshape" | "Squeeze" | "Unsqueeze" | "Flatten" | "Expand" => {
                let Some(shape) = shape else {
                    return Err(self.unsupported(n, "on token ids of unknown shape"));
                };
                let target = if n.op_type == "Expand" {
                    let t: Vec<usize> =
                        self.constant(n, 1)?.data.iter().map(|&v| v.max(0.0) as usize).collect();
                    Op::Expand(t)
                } else {
                    // The same op's shape rule on the ids' shape.
                    let probe = self.view_op(n)?;
                    Op::Reshape(
                        probe
                            .output_shape(&[&shape])
                            .map_err(|e| self.invalid(n, e))?
                            .iter()
                            .map(|&d| d as i64)
                            .collect(),
                    )
                };
                let op = match target {
                    Op::Expand(t) => IdsOp::Expand(t),
                    Op::Reshape(t) => IdsOp::Reshape(t.iter().map(|&d| d as usize).collect()),
                    _ => unreachable!("built above"),
                };
                let r = self.ids_push(n, op, vec![step])?;
                self.alias(n, r)
            }
            _ => Err(self.unsupported(
                n,
                "on the integer input: an integer input is taken as private token ids, which are only \
                 supported as the indices of embedding lookups and in computations with constants that \
                 derive such indices",
            )),
        }
    }

    /// The IR op of a shape-only ONNX node (Reshape, Squeeze, Unsqueeze, Flatten).
    fn view_op(&self, n: &NodeProto) -> Result<Op, ImportError> {
        let list = |b: &Self, k: usize| -> Result<Vec<i64>, ImportError> {
            Ok(match b.optional(n, k)? {
                Some(_) => b.constant(n, k)?.data.iter().map(|&v| v as i64).collect(),
                None => Vec::new(),
            })
        };
        let ints = |name: &str| super::attr_ints(n, name).unwrap_or_default();
        Ok(match n.op_type.as_str() {
            "Reshape" if self.opset < 5 => Op::Reshape(ints("shape")),
            "Reshape" => Op::Reshape(list(self, 1)?),
            "Flatten" => Op::Flatten(attr_i(n, "axis", 1)),
            "Squeeze" if self.opset < 13 => Op::Squeeze(ints("axes")),
            "Squeeze" => Op::Squeeze(list(self, 1)?),
            "Unsqueeze" if self.opset < 13 => Op::Unsqueeze(ints("axes")),
            _ => Op::Unsqueeze(list(self, 1)?),
        })
    }

    /// An embedding lookup: `Gather(table, indices)` with indices from the token ids becomes
    /// the product of the indices' one-hot rows (built by the data owner before sharing) with
    /// the table.
    fn embedding(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        if attr_i(n, "axis", 0) != 0 {
            return Err(self.unsupported(n, "a lookup of token ids along an axis other than 0"));
        }
        let (step, shape) = match self.get(n, 1)? {
            Ref::Ids(step, Some(shape)) => (step, shape),
            Ref::Ids(..) => return Err(self.unsupported(n, "on token ids of unknown shape")),
            _ => return Err(self.unsupported(n, "token ids as the table of a lookup")),
        };
        let table = match self.get(n, 0)? {
            Ref::Const(t, _) if t.shape.len() == 2 => t,
            _ => return Err(self.unsupported(n, "token ids index only a constant 2-D embedding table")),
        };
        if self.ids_as_values {
            return Err(self.unsupported(n, "token ids used both as indices and as values"));
        }
        let vocab = table.shape[0];
        let count: usize = shape.iter().product();
        let offset = self.ids_total;
        self.ids.lookups.push(IdsLookup { step, depth: vocab });
        self.ids_total = count
            .checked_mul(vocab)
            .and_then(|k| offset.checked_add(k))
            .filter(|&t| t <= musket_graph::MAX_ONE_HOT_ELEMENTS)
            .ok_or_else(|| self.unsupported(n, "one-hot rows of the token ids beyond 2^28 elements"))?;
        let table = self.secret(n, 0)?;
        self.emit(n, Op::Lookup { offset, indices_shape: shape, depth: vocab }, vec![Ref::Input, table])
    }
}
