//! The ops of today's exporters beyond the classic CNN set: what PyTorch's dynamo exporter and
//! `transformers` write (IsNaN guards, Where on masks, Gelu, additive masks of -inf, token-id
//! embedding lookups, integer powers) and the elementwise and reduction ops of the ONNX
//! conformance tests. Each is either lowered to IR ops (one definition each, in musket-graph)
//! or folded to a constant.

use super::{attr_f, attr_i, attr_ints, attr_s, Builder, Ref};
use crate::ImportError;
use musket_graph::{FloatTensor, Op};
use onnx_protobuf::NodeProto;

/// A constant at least this large in magnitude (or infinite) in an additive mask or a Where
/// fill stands for minus or plus infinity (PyTorch writes the float32 minimum, -3.4e38).
const SENTINEL: f64 = 1e30;
/// What such a sentinel becomes: far beyond any score a softmax meets (its exponential input
/// is clamped at -16 below the row maximum) and well inside the fixed-point range.
pub(crate) const SENTINEL_LIMIT: f64 = (1u64 << 20) as f64;

/// Replaces infinite or huge mask constants by ±[`SENTINEL_LIMIT`].
fn clamp_sentinels(t: &FloatTensor) -> FloatTensor {
    let data = t
        .data
        .iter()
        .map(|&v| {
            if v.is_nan() {
                0.0
            } else if v.abs() >= SENTINEL {
                SENTINEL_LIMIT.copysign(v)
            } else {
                v
            }
        })
        .collect();
    FloatTensor { shape: t.shape.clone(), data }
}

fn has_sentinels(t: &FloatTensor) -> bool {
    t.data.iter().any(|v| !v.is_finite() || v.abs() >= SENTINEL)
}

impl Builder {
    /// The ops handled here; `Ok(false)` when `n` is none of them.
    pub(super) fn transformer_op(&mut self, n: &NodeProto) -> Result<bool, ImportError> {
        match n.op_type.as_str() {
            "IsNaN" | "IsInf" => {
                // Fixed-point values are never NaN or infinite (inputs and weights are checked
                // when encoded), so the guard is a constant: false everywhere.
                let r = self.get(n, 0)?;
                let shape = self.static_shape(&r)?.ok_or_else(|| {
                    self.unsupported(n, "on a value whose shape is only known for a concrete input")
                })?;
                let count = shape.iter().product();
                self.alias(n, Ref::Const(FloatTensor { shape, data: vec![0.0; count] }, true))?;
            }
            "Where" => self.where_(n)?,
            "Gelu" => match attr_s(n, "approximate").as_deref() {
                None | Some("none") | Some("") => self.unary(n, Op::Gelu)?,
                Some("tanh") => self.unary(n, Op::GeluTanh)?,
                Some(other) => return Err(self.unsupported(n, &format!("approximate = {other:?}"))),
            },
            "Neg" => self.unary(n, Op::MulConst(-1.0))?,
            "Abs" => self.unary(n, Op::Abs)?,
            "Exp" => self.unary(n, Op::Exp)?,
            "Log" => self.unary(n, Op::Log)?,
            "Softplus" => {
                // ln(1 + e^x) = relu(x) + ln(1 + e^-|x|): the log's argument stays in [1, 2].
                let x = self.secret(n, 0)?;
                let r = self.sub_node(n, "relu", Op::Relu, vec![x.clone()])?;
                let a = self.sub_node(n, "abs", Op::Abs, vec![x])?;
                let na = self.sub_node(n, "neg", Op::MulConst(-1.0), vec![a])?;
                let e = self.sub_node(n, "exp", Op::Exp, vec![na])?;
                let e1 = self.sub_node(n, "plus1", Op::AddConst(1.0), vec![e])?;
                let l = self.sub_node(n, "log", Op::Log, vec![e1])?;
                self.emit(n, Op::Add, vec![r, l])?;
            }
            "HardSigmoid" => {
                let (alpha, beta) = (attr_f(n, "alpha", 0.2), attr_f(n, "beta", 0.5));
                let x = self.secret(n, 0)?;
                let ax = self.sub_node(n, "scale", Op::MulConst(alpha), vec![x])?;
                let axb = self.sub_node(n, "shift", Op::AddConst(beta), vec![ax])?;
                self.emit(n, Op::Clip { lo: 0.0, hi: 1.0 }, vec![axb])?;
            }
            "HardSwish" => {
                let x = self.secret(n, 0)?;
                let ax = self.sub_node(n, "scale", Op::MulConst(1.0 / 6.0), vec![x.clone()])?;
                let axb = self.sub_node(n, "shift", Op::AddConst(0.5), vec![ax])?;
                let h = self.sub_node(n, "clip", Op::Clip { lo: 0.0, hi: 1.0 }, vec![axb])?;
                self.emit(n, Op::Mul, vec![x, h])?;
            }
            "Elu" | "Selu" | "Celu" => {
                // scale (relu(x) + alpha (e^min(x, 0) - 1)); Celu divides min(x, 0) by alpha.
                let (alpha, scale) = match n.op_type.as_str() {
                    "Elu" => (attr_f(n, "alpha", 1.0), 1.0),
                    "Celu" => (attr_f(n, "alpha", 1.0), 1.0),
                    _ => (
                        attr_f(n, "alpha", 1.673_263_192_176_818_8),
                        attr_f(n, "gamma", 1.050_701_022_148_132_3),
                    ),
                };
                let x = self.secret(n, 0)?;
                let pos = self.sub_node(n, "relu", Op::Relu, vec![x.clone()])?;
                let neg = self.sub_node(n, "min0", Op::Sub, vec![x, pos.clone()])?;
                let neg = if n.op_type == "Celu" {
                    self.sub_node(n, "over_alpha", Op::MulConst(1.0 / alpha), vec![neg])?
                } else {
                    neg
                };
                let e = self.sub_node(n, "exp", Op::Exp, vec![neg])?;
                let em1 = self.sub_node(n, "minus1", Op::AddConst(-1.0), vec![e])?;
                let aem1 = self.sub_node(n, "alpha", Op::MulConst(alpha), vec![em1])?;
                if scale == 1.0 {
                    self.emit(n, Op::Add, vec![pos, aem1])?;
                } else {
                    let sum = self.sub_node(n, "sum", Op::Add, vec![pos, aem1])?;
                    self.emit(n, Op::MulConst(scale), vec![sum])?;
                }
            }
            "PRelu" => {
                // relu(x) + slope * min(x, 0), the slope a secret weight.
                let x = self.secret(n, 0)?;
                let slope = self.secret(n, 1)?;
                let pos = self.sub_node(n, "relu", Op::Relu, vec![x.clone()])?;
                let neg = self.sub_node(n, "min0", Op::Sub, vec![x, pos.clone()])?;
                let sn = self.sub_node(n, "slope", Op::Mul, vec![neg, slope])?;
                self.emit(n, Op::Add, vec![pos, sn])?;
            }
            "Max" | "Min" | "Sum" | "Mean" => {
                let count = n.input.iter().filter(|i| !i.is_empty()).count();
                if count == 0 {
                    return Err(self.invalid(n, "no inputs"));
                }
                let op = match n.op_type.as_str() {
                    "Max" => Op::Max,
                    "Min" => Op::Min,
                    _ => Op::Add,
                };
                let mut acc = self.secret(n, 0)?;
                for k in 1..count {
                    let next = self.secret(n, k)?;
                    acc = self.sub_node(n, &format!("{k}"), op.clone(), vec![acc, next])?;
                }
                let out = if n.op_type == "Mean" && count > 1 {
                    self.sub_node(n, "mean", Op::MulConst(1.0 / count as f64), vec![acc])?
                } else if count == 1 {
                    self.sub_node(n, "copy", Op::Identity, vec![acc])?
                } else {
                    acc
                };
                self.alias(n, out)?;
            }
            "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceMean" => {
                // The axes are an input from opset 13 (ReduceSum) or 18 (the others).
                let axes_as_input =
                    if n.op_type == "ReduceSum" { self.opset >= 13 } else { self.opset >= 18 };
                let axes: Vec<i64> = if axes_as_input {
                    match self.optional(n, 1)? {
                        Some(_) => self.constant(n, 1)?.data.iter().map(|&v| v as i64).collect(),
                        None => Vec::new(),
                    }
                } else {
                    attr_ints(n, "axes").unwrap_or_default()
                };
                if axes.is_empty() && attr_i(n, "noop_with_empty_axes", 0) != 0 {
                    let r = self.get(n, 0)?;
                    self.alias(n, r)?;
                    return Ok(true);
                }
                let keepdims = attr_i(n, "keepdims", 1) != 0;
                let op = match n.op_type.as_str() {
                    "ReduceSum" => Op::ReduceSum { axes, keepdims },
                    "ReduceMean" => Op::ReduceMean { axes, keepdims },
                    "ReduceMax" => Op::ReduceMax { axes, keepdims, min: false },
                    _ => Op::ReduceMax { axes, keepdims, min: true },
                };
                self.unary(n, op)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `x^k` for an integer `k >= 2` by square and multiply (log2 k rounds of products).
    pub(super) fn integer_power(&mut self, n: &NodeProto, x: Ref, k: u32) -> Result<(), ImportError> {
        let mut result: Option<Ref> = None;
        let mut base = x;
        let mut e = k;
        let mut step = 0;
        loop {
            if e & 1 == 1 {
                result = Some(match result {
                    None => base.clone(),
                    Some(r) => {
                        step += 1;
                        self.sub_node(n, &format!("mul{step}"), Op::Mul, vec![r, base.clone()])?
                    }
                });
            }
            e >>= 1;
            if e == 0 {
                break;
            }
            step += 1;
            base = self.sub_node(n, &format!("sq{step}"), Op::Mul, vec![base.clone(), base])?;
        }
        let r = result.expect("k >= 1");
        self.alias(n, r)
    }

    /// A value broadcast to `shape` (an Expand node only if its shape differs or is unknown).
    fn broadcast_ref(&mut self, n: &NodeProto, r: Ref, shape: &[usize]) -> Result<Ref, ImportError> {
        if self.static_shape(&r)?.as_deref() == Some(shape) {
            return Ok(r);
        }
        let r = self.secret_ref(n, r)?;
        self.sub_node(n, "expand", Op::Expand(shape.to_vec()), vec![r])
    }

    /// ONNX Where with a constant condition: the branches are selected at import where the
    /// condition is uniform, else by public masks ([`Op::Select`]). A condition computed from
    /// secret values is not supported.
    fn where_(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let cond = match self.get(n, 0)? {
            Ref::Const(t, _) => t,
            _ => return self.secret_where(n),
        };
        let (x, y) = (self.get(n, 1)?, self.get(n, 2)?);
        let shapes = [Some(cond.shape.clone()), self.static_shape(&x)?, self.static_shape(&y)?];
        let Some(shapes) = shapes.into_iter().collect::<Option<Vec<_>>>() else {
            return Err(self.unsupported(n, "on values whose shapes are only known for a concrete input"));
        };
        let out = shapes
            .iter()
            .try_fold(Vec::new(), |acc, s| musket_graph::broadcast_shapes(&acc, s))
            .map_err(|e| self.invalid(n, e.to_string()))?;
        if cond.data.iter().all(|&c| c != 0.0) {
            let r = self.broadcast_ref(n, x, &out)?;
            return self.alias(n, r);
        }
        if cond.data.iter().all(|&c| c == 0.0) {
            let r = self.broadcast_ref(n, y, &out)?;
            return self.alias(n, r);
        }
        let keep = FloatTensor {
            shape: cond.shape.clone(),
            data: cond.data.iter().map(|&c| f64::from(u8::from(c != 0.0))).collect(),
        };
        let drop =
            FloatTensor { shape: cond.shape.clone(), data: keep.data.iter().map(|&k| 1.0 - k).collect() };
        let zero = FloatTensor { shape: vec![], data: vec![0.0] };
        match (x, y) {
            (x, Ref::Const(fill, _)) => {
                let x = self.secret_ref(n, x)?;
                self.emit(n, Op::Select { keep, fill: clamp_sentinels(&fill) }, vec![x])
            }
            (Ref::Const(fill, _), y) => {
                let y = self.secret_ref(n, y)?;
                self.emit(n, Op::Select { keep: drop, fill: clamp_sentinels(&fill) }, vec![y])
            }
            (x, y) => {
                let a = self.sub_node(n, "then", Op::Select { keep, fill: zero.clone() }, vec![x])?;
                let b = self.sub_node(n, "else", Op::Select { keep: drop, fill: zero }, vec![y])?;
                self.emit(n, Op::Add, vec![a, b])
            }
        }
    }

    /// GELU as exporters spell it out: `x (1 + erf(x / sqrt 2)) / 2` (the TorchScript exporter,
    /// hand-written models) or GPT-2's `x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2`, in
    /// either order of the products. When the node about to be emitted completes one of
    /// them, returns [`Op::Gelu`] or [`Op::GeluTanh`] and the input `x`, so that one node
    /// replaces the pattern (the nodes it leaves unused are dropped at the end). The cheap GELU
    /// then serves these exports too.
    pub(super) fn gelu_pattern(&self, op: &Op, inputs: &[Ref]) -> Option<(Op, Ref)> {
        let node = |r: &Ref| match r {
            Ref::Node(k) => Some(&self.nodes[*k]),
            _ => None,
        };
        let same = |a: &Ref, b: &Ref| match (a, b) {
            (Ref::Node(i), Ref::Node(j)) | (Ref::Weight(i), Ref::Weight(j)) => i == j,
            (Ref::Input, Ref::Input) => true,
            _ => false,
        };
        // A product by a public constant within float32 rounding of `want`.
        let near = |op: &Op, want: f64| matches!(op, Op::MulConst(c) if (c - want).abs() < 1e-6);
        // 1 + erf(x / sqrt 2): the x, if `r` is that.
        let one_plus_erf = |r: &Ref| -> Option<Ref> {
            let (add, add_in) = node(r)?;
            if add.op != Op::AddConst(1.0) {
                return None;
            }
            let (erf, erf_in) = node(&add_in[0])?;
            if erf.op != Op::Erf {
                return None;
            }
            let (scale, scale_in) = node(&erf_in[0])?;
            near(&scale.op, std::f64::consts::FRAC_1_SQRT_2).then(|| scale_in[0].clone())
        };
        // x^3 as integer powers are imported: x (x x) or (x x) x.
        let cube_of = |r: &Ref| -> Option<Ref> {
            let (mul, ins) = node(r)?;
            if mul.op != Op::Mul {
                return None;
            }
            [(0, 1), (1, 0)].iter().find_map(|&(a, b)| {
                let (sq, sq_in) = node(&ins[b])?;
                (sq.op == Op::Mul && same(&sq_in[0], &ins[a]) && same(&sq_in[1], &ins[a]))
                    .then(|| ins[a].clone())
            })
        };
        // 1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)): the x, if `r` is that.
        let one_plus_tanh = |r: &Ref| -> Option<Ref> {
            let (add, add_in) = node(r)?;
            if add.op != Op::AddConst(1.0) {
                return None;
            }
            let (tanh, tanh_in) = node(&add_in[0])?;
            if tanh.op != Op::Tanh {
                return None;
            }
            let (scale, scale_in) = node(&tanh_in[0])?;
            if !near(&scale.op, (2.0 / std::f64::consts::PI).sqrt()) {
                return None;
            }
            let (sum, sum_in) = node(&scale_in[0])?;
            if sum.op != Op::Add {
                return None;
            }
            [(0, 1), (1, 0)].iter().find_map(|&(a, b)| {
                let (c, c_in) = node(&sum_in[b])?;
                if !near(&c.op, 0.044_715) {
                    return None;
                }
                let x = cube_of(&c_in[0])?;
                same(&x, &sum_in[a]).then_some(x)
            })
        };
        let half = |r: &Ref| -> Option<Ref> {
            let (h, h_in) = node(r)?;
            (h.op == Op::MulConst(0.5)).then(|| h_in[0].clone())
        };
        // The x of `1 + erf(..)` or `1 + tanh(..)`, with the GELU it makes.
        let one_plus = |r: &Ref| -> Option<(Op, Ref)> {
            one_plus_erf(r).map(|x| (Op::Gelu, x)).or_else(|| one_plus_tanh(r).map(|x| (Op::GeluTanh, x)))
        };
        match (op, inputs) {
            // ((x (1 + erf)) / 2)
            (Op::MulConst(c), [prod]) if *c == 0.5 => {
                let (mul, ins) = node(prod)?;
                if mul.op != Op::Mul {
                    return None;
                }
                [(0, 1), (1, 0)].iter().find_map(|&(a, b)| {
                    let (gelu, x) = one_plus(&ins[b])?;
                    same(&x, &ins[a]).then_some((gelu, x))
                })
            }
            // (x / 2) (1 + erf), either order
            (Op::Mul, [a, b]) => [(a, b), (b, a)].iter().find_map(|(h, e)| {
                let (x1, (gelu, x2)) = (half(h)?, one_plus(e)?);
                same(&x1, &x2).then_some((gelu, x1))
            }),
            _ => None,
        }
    }

    /// Add with one constant operand that is public (computed from shapes) or holds mask
    /// sentinels: a public addition, `None` for an ordinary (secret) operand.
    pub(super) fn public_addend(&self, r: &Ref) -> Option<FloatTensor> {
        match r {
            Ref::Const(t, public) if *public || has_sentinels(t) => Some(clamp_sentinels(t)),
            _ => None,
        }
    }
}
