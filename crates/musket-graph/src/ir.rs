use musket_nn::{Conv2d, Pool2d};

/// A plaintext tensor of reals (weights, inputs, outputs).
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FloatTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl std::fmt::Debug for FloatTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FloatTensor{:?}", self.shape)
    }
}

impl FloatTensor {
    /// A tensor; `None` if the element count does not match the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Option<Self> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        (n == data.len()).then_some(Self { shape, data })
    }
}

/// Index of a value: 0 is the model input, then the weights in order, then node outputs.
pub type ValueId = usize;

/// The operations the executor supports. The set is closed: every back end covers every op.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Matrix product with numpy semantics: `a [.., k] @ b [k, n]`, or batched
    /// `a [.., m, k] @ b [.., k, n]` with broadcast leading dimensions (secret x secret).
    MatMul,
    /// `alpha * a' @ b' + beta * c` with optional transposes (ONNX Gemm).
    Gemm {
        /// Transpose A.
        trans_a: bool,
        /// Transpose B.
        trans_b: bool,
        /// Scale of the product.
        alpha: f64,
        /// Scale of C.
        beta: f64,
    },
    /// 2-D convolution; inputs: x, w, optional bias. `same` resolves ONNX's auto_pad SAME at
    /// run time (`Some(true)`: SAME_UPPER, extra padding at the end; `Some(false)`: SAME_LOWER).
    Conv {
        /// Geometry (its pads are replaced when `same` is set).
        geometry: Conv2d,
        /// auto_pad SAME variant, if any.
        same: Option<bool>,
    },
    /// Elementwise sum with numpy broadcasting.
    Add,
    /// Elementwise difference with numpy broadcasting.
    Sub,
    /// Elementwise product with numpy broadcasting.
    Mul,
    /// Elementwise quotient of secrets with numpy broadcasting (`musket_nn::div`: the divisor
    /// of either sign, at least 2^-12 in magnitude; the quotient exact to its own scale).
    Div,
    /// Layer normalisation over the last axis (inputs: x, scale, optional bias).
    LayerNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// Add a public scalar.
    AddConst(f64),
    /// Multiply by a public scalar.
    MulConst(f64),
    /// Per-channel `x * scale + shift` (inputs: x, scale, shift); unfolded batch norm.
    Affine,
    /// max(x, 0).
    Relu,
    /// Clamp to public bounds.
    Clip {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Leaky ReLU with public slope.
    LeakyRelu(f64),
    /// Logistic function.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Error function.
    Erf,
    /// Square root.
    Sqrt,
    /// Reciprocal.
    Reciprocal,
    /// Softmax or log-softmax along an axis (negative counts from the end). With `flatten`
    /// (ONNX before opset 13) the input is viewed as 2-D `[prod(..axis), prod(axis..)]` and
    /// normalised over its second dimension.
    Softmax {
        /// Axis.
        axis: i64,
        /// Opset < 13 semantics.
        flatten: bool,
        /// Log-softmax instead.
        log: bool,
    },
    /// 2-D max pooling (`same` as for Conv).
    MaxPool {
        /// Geometry.
        pool: Pool2d,
        /// auto_pad SAME variant, if any.
        same: Option<bool>,
    },
    /// 2-D average pooling (`same` as for Conv).
    AveragePool {
        /// Geometry.
        pool: Pool2d,
        /// auto_pad SAME variant, if any.
        same: Option<bool>,
        /// Divide by the full window size even where it overlaps padding.
        count_include_pad: bool,
    },
    /// Mean over H and W.
    GlobalAveragePool,
    /// Collapse to 2-D at `axis` (negative counts from the end).
    Flatten(i64),
    /// Reshape to a fully resolved shape (ONNX's 0 and -1 resolved at run time).
    Reshape(Vec<i64>),
    /// Permute axes (empty: reverse them).
    Transpose(Vec<usize>),
    /// Concatenate along an axis (negative counts from the end).
    Concat(i64),
    /// Remove size-1 axes (empty: all of them).
    Squeeze(Vec<i64>),
    /// Insert size-1 axes at these output positions.
    Unsqueeze(Vec<i64>),
    /// Zero or constant padding: `pads` = begins then ends per axis.
    Pad {
        /// Begins then ends.
        pads: Vec<usize>,
        /// Fill value (public).
        value: f64,
    },
    /// Mean over axes.
    ReduceMean {
        /// Axes (negative count from the end; empty: all).
        axes: Vec<i64>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
    },
    /// ONNX Slice with constant parameters (positive steps).
    Slice {
        /// Start per listed axis (negative counts from the end; clamped).
        starts: Vec<i64>,
        /// End per listed axis (exclusive; clamped).
        ends: Vec<i64>,
        /// Axes (empty: 0..starts.len()).
        axes: Vec<i64>,
        /// Steps (empty: all 1).
        steps: Vec<i64>,
    },
    /// Output `index` of an ONNX Split into `count` parts along `axis` (`sizes` or equal parts).
    SplitPart {
        /// Axis.
        axis: i64,
        /// Which part.
        index: usize,
        /// Number of parts.
        count: usize,
        /// Part sizes, if given.
        sizes: Option<Vec<usize>>,
    },
    /// Gather with public indices along an axis (the data is secret; the positions are part of
    /// the model, e.g. selecting tokens).
    Gather {
        /// Axis.
        axis: i64,
        /// Indices (negative count from the end).
        indices: Vec<i64>,
        /// Shape of the indices tensor.
        indices_shape: Vec<usize>,
    },
    /// Broadcast to a shape (numpy rules, as ONNX Expand).
    Expand(Vec<usize>),
    /// Pass-through (Identity, Dropout at inference, no-op casts).
    Identity,
    /// `e^x` (`musket_nn::exp`: the input is clamped to [`musket_nn::EXP_DOMAIN`]).
    Exp,
    /// Natural logarithm (`musket_nn::log`: right for every positive encodable value).
    Log,
    /// `|x|`, exact.
    Abs,
    /// GELU in its exact form, `x (1 + erf(x / sqrt 2)) / 2`.
    Gelu,
    /// GELU in its tanh form (GPT-2's, ONNX `approximate = "tanh"`),
    /// `x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2`.
    GeluTanh,
    /// Elementwise maximum of two secrets with numpy broadcasting, exact.
    Max,
    /// Elementwise minimum of two secrets with numpy broadcasting, exact.
    Min,
    /// Sum over axes (exact: no truncation).
    ReduceSum {
        /// Axes (negative count from the end; empty: all).
        axes: Vec<i64>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
    },
    /// Maximum (or, with `min`, minimum) over axes, exact: a comparison tree per axis.
    ReduceMax {
        /// Axes (negative count from the end; empty: all).
        axes: Vec<i64>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
        /// The minimum instead.
        min: bool,
    },
    /// Adds a public tensor (numpy broadcasting): additive attention masks and other constants
    /// that only depend on the shapes. Linear, no communication.
    AddPublic(FloatTensor),
    /// A public rearrangement of elements: the output (of `shape`) takes element `indices[i]`
    /// of the inputs flattened and concatenated (at most two inputs). GatherElements, GatherND,
    /// ScatterND and ScatterElements with public indices, Tile, reversed slices. Linear, exact.
    Take {
        /// Source element per output element.
        indices: Vec<usize>,
        /// Output shape.
        shape: Vec<usize>,
    },
    /// A public linear map along one axis: `y[.., i, ..] = sum_j matrix[i][j] x[.., j, ..]`
    /// (`matrix` is rows x the axis length). Resize's interpolation and ConvTranspose's zero
    /// insertion. Exact (no truncation) when every entry is an integer.
    AxisMap {
        /// The axis.
        axis: i64,
        /// Row-major `[rows, axis length]`.
        matrix: FloatTensor,
    },
    /// Index of the maximum (or minimum) along an axis, as a real number: a comparison tree
    /// that tracks a one-hot position (ties: the first index, or the last with `last`).
    ArgMax {
        /// The axis.
        axis: i64,
        /// Keep the reduced axis as size 1.
        keepdims: bool,
        /// Of the minimum instead.
        min: bool,
        /// Ties go to the last index.
        last: bool,
    },
    /// An embedding lookup (inputs: the token-id input, a table `[depth, k]`): rows
    /// `offset..offset + n depth` of the shared-input vector are the one-hot rows of `n`
    /// indices (shape `indices_shape`), which the data owner knows in plaintext; the output
    /// is their product with the table, `[indices_shape.., k]`
    /// (`Protocol::onehot_matmul`: exact, and in 3PC two local products instead of six).
    Lookup {
        /// Where this lookup's one-hot rows start in the input vector.
        offset: usize,
        /// The shape of the looked-up indices.
        indices_shape: Vec<usize>,
        /// The table's row count (the one-hot rows' length).
        depth: usize,
    },
    /// A comparison of two secrets with numpy broadcasting: 1.0 where it holds, else 0.0 (one
    /// comparison circuit; Equal uses both orders in the same circuit).
    Compare(Comparison),
    /// ONNX Where on a secret condition (0.0 or 1.0, as comparisons give): `b + c (a - b)`,
    /// one product (inputs: condition, a, b, broadcast).
    Where,
    /// `keep ? x : fill` elementwise with public `keep` (0 or 1) and public `fill`, both
    /// broadcast against `x`: masks computed from the shapes (ONNX Where with a constant
    /// condition). Linear, no communication.
    Select {
        /// 1 where `x` is kept, 0 where `fill` is taken.
        keep: FloatTensor,
        /// The value taken where `keep` is 0.
        fill: FloatTensor,
    },
}

/// The comparison of [`Op::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Comparison {
    /// `a < b`.
    Less,
    /// `a <= b`.
    LessOrEqual,
    /// `a > b`.
    Greater,
    /// `a >= b`.
    GreaterOrEqual,
    /// `a == b`.
    Equal,
}

/// One operation of the graph.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    /// The name in the source model (for error messages and per-layer reports).
    pub name: String,
    /// The source op type (e.g. `Gemm`).
    pub op_type: String,
    /// What it computes.
    pub op: Op,
    /// Input values.
    pub inputs: Vec<ValueId>,
    /// Output value.
    pub output: ValueId,
}

/// A model ready to run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Graph {
    /// Name of the model input.
    pub input_name: String,
    /// Input shape; `None` for a dynamic dimension (batch).
    pub input_shape: Vec<Option<usize>>,
    /// Weights (the model owner's secrets), value ids `1..=weights.len()`.
    pub weights: Vec<(String, FloatTensor)>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// The output value.
    pub output: ValueId,
    /// When set, the model's input is the data owner's token ids, and what is shared is the
    /// output of this program on them: the one-hot rows of every embedding lookup's indices,
    /// flattened and concatenated (`crate::ids`). Inside the graph, value 0 is that vector.
    #[serde(default)]
    pub ids: Option<crate::ids::IdsProgram>,
}

impl Graph {
    /// The value id of weight `i`.
    pub fn weight_id(i: usize) -> ValueId {
        i + 1
    }

    /// The weights' shapes (public: part of the architecture).
    pub fn weight_shapes(&self) -> Vec<Vec<usize>> {
        self.weights.iter().map(|(_, t)| t.shape.clone()).collect()
    }

    /// The same architecture without weight values (what the non-owners may see): weight
    /// shapes are kept, their data is empty.
    pub fn without_weights(&self) -> Graph {
        let mut g = self.clone();
        for (_, t) in &mut g.weights {
            t.data = Vec::new();
        }
        g
    }

    /// Checks that the graph is well formed: every node reads only values defined before it,
    /// writes the next value id, and the output exists. Run on architectures received from a
    /// peer before executing them.
    pub fn validate(&self) -> Result<(), String> {
        let base = 1 + self.weights.len();
        for (k, node) in self.nodes.iter().enumerate() {
            if node.output != base + k {
                return Err(format!(
                    "node {:?} writes value {} instead of {}",
                    node.name,
                    node.output,
                    base + k
                ));
            }
            if let Some(bad) = node.inputs.iter().find(|&&i| i >= node.output) {
                return Err(format!("node {:?} reads value {bad} before it is defined", node.name));
            }
            if node.inputs.is_empty() {
                return Err(format!("node {:?} has no inputs", node.name));
            }
        }
        if let Some(ids) = &self.ids {
            ids.validate()?;
        }
        if self.output >= base + self.nodes.len() {
            return Err(format!("output value {} does not exist", self.output));
        }
        for node in &self.nodes {
            op_bounds(&node.op).map_err(|e| format!("node {:?}: {e}", node.name))?;
        }
        let mut total = 0usize;
        for (name, t) in &self.weights {
            let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if n.is_none_or(|n| n > 1 << 28) {
                return Err(format!("weight {name:?} is too large"));
            }
            total = total.saturating_add(n.unwrap_or(0));
        }
        // Every party allocates a share of every weight: bound their sum too (2^29 elements,
        // over 500 million parameters), so a small architecture cannot make a peer allocate
        // without limit.
        if total > MAX_WEIGHT_ELEMENTS {
            return Err(format!("the weights hold {total} elements in all, more than {MAX_WEIGHT_ELEMENTS}"));
        }
        Ok(())
    }
}

/// Largest spatial parameter (kernel, stride, dilation, pad) accepted.
const MAX_GEOMETRY: usize = 1 << 12;
/// Most weight elements a model may have in all.
const MAX_WEIGHT_ELEMENTS: usize = 1 << 29;
/// Largest tensor, in elements, an op parameter may describe.
const MAX_ELEMENTS: usize = 1 << 28;

fn distinct(axes: &[i64]) -> bool {
    axes.iter().enumerate().all(|(i, a)| !axes[..i].contains(a))
}

/// A public tensor carried by an op: consistent, finite and bounded.
fn public_tensor(t: &FloatTensor) -> Result<(), String> {
    let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if t.shape.len() > 16 || n != Some(t.data.len()) || t.data.len() > MAX_ELEMENTS {
        return Err(format!("a public tensor of shape {:?} holds {} values", t.shape, t.data.len()));
    }
    if t.data.iter().any(|v| !v.is_finite()) {
        return Err("a public tensor holds a value that is not finite".into());
    }
    Ok(())
}

/// Bounds on op parameters, so that no op of a received architecture can allocate without
/// limit, overflow an index, or divide by zero.
fn op_bounds(op: &Op) -> Result<(), String> {
    let small = |v: &[usize], what: &str| {
        if v.iter().all(|&x| x <= MAX_GEOMETRY) {
            Ok(())
        } else {
            Err(format!("{what} {v:?} too large"))
        }
    };
    let positive = |v: &[usize], what: &str| {
        if v.iter().all(|&x| (1..=MAX_GEOMETRY).contains(&x)) {
            Ok(())
        } else {
            Err(format!("{what} {v:?} out of range"))
        }
    };
    match op {
        Op::Conv { geometry: g, .. } => {
            positive(&g.stride, "strides")?;
            positive(&g.dilation, "dilations")?;
            small(&g.pads, "pads")?;
            if g.groups == 0 || g.groups > MAX_GEOMETRY * 16 {
                return Err("bad group count".into());
            }
        }
        Op::MaxPool { pool, .. } | Op::AveragePool { pool, .. } => {
            positive(&pool.kernel, "kernel")?;
            positive(&pool.stride, "strides")?;
            positive(&pool.dilation, "dilations")?;
            small(&pool.pads, "pads")?;
            // ONNX requires pads smaller than the kernel: a window of padding alone would have
            // no value (max-pool's padding would win).
            let [kh, kw] = pool.kernel;
            let [pt, pl, pb, pr] = pool.pads;
            if pt.max(pb) >= kh || pl.max(pr) >= kw {
                return Err(format!("pads {:?} not smaller than the kernel {:?}", pool.pads, pool.kernel));
            }
        }
        Op::Pad { pads, value } => {
            small(pads, "pads")?;
            if !value.is_finite() {
                return Err("pad value is not finite".into());
            }
        }
        Op::Expand(shape)
            if shape.len() > 16
                || shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .is_none_or(|n| n > MAX_ELEMENTS) =>
        {
            return Err(format!("expand to {shape:?} is too large"));
        }
        Op::Reshape(target)
            if target.len() > 16 || target.iter().any(|&t| t < -1 || t > MAX_ELEMENTS as i64) =>
        {
            return Err(format!("bad reshape target {target:?}"));
        }
        Op::SplitPart { index, count, sizes, .. } => {
            if *count == 0 || *count > MAX_GEOMETRY || index >= count {
                return Err("bad split".into());
            }
            if let Some(s) = sizes {
                if s.len() != *count
                    || s.iter().try_fold(0usize, |a, &d| a.checked_add(d)).is_none_or(|n| n > MAX_ELEMENTS)
                {
                    return Err(format!("bad split sizes {s:?}"));
                }
            }
        }
        Op::Gather { indices, indices_shape, .. }
            if indices_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(indices.len())
                || indices.len() > MAX_ELEMENTS =>
        {
            return Err("gather indices do not match their shape".into());
        }
        Op::Transpose(perm) if perm.len() > 16 => return Err("transpose of too many axes".into()),
        Op::Squeeze(axes) | Op::Unsqueeze(axes) | Op::ReduceMean { axes, .. }
            if !distinct(axes) || axes.len() > 16 =>
        {
            return Err(format!("repeated or too many axes {axes:?}"));
        }
        Op::Slice { starts, ends, axes, steps } => {
            if starts.len() != ends.len()
                || starts.len() > 16
                || axes.len() > starts.len()
                || steps.len() > starts.len()
            {
                return Err("slice parameters of different lengths".into());
            }
            if steps.iter().any(|&s| s <= 0) || !distinct(axes) {
                return Err("bad slice steps or axes".into());
            }
        }
        Op::Clip { lo, hi } if !(lo.is_finite() && hi.is_finite() && lo <= hi) => {
            return Err("bad clip bounds".into())
        }
        Op::ReduceSum { axes, .. } | Op::ReduceMax { axes, .. } if !distinct(axes) || axes.len() > 16 => {
            return Err(format!("repeated or too many axes {axes:?}"));
        }
        Op::AddPublic(t) => public_tensor(t)?,
        Op::Lookup { offset, indices_shape, depth } => {
            let n = indices_shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|n| n.checked_mul(*depth));
            if indices_shape.len() > 16
                || n.and_then(|n| n.checked_add(*offset)).is_none_or(|end| end > MAX_ELEMENTS)
            {
                return Err("a lookup beyond the one-hot input's bound".into());
            }
        }
        Op::Take { indices, shape }
            if shape.len() > 16
                || shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(indices.len())
                || indices.len() > MAX_ELEMENTS =>
        {
            return Err("take indices do not match their shape".into());
        }
        Op::AxisMap { matrix, .. } => {
            public_tensor(matrix)?;
            if matrix.shape.len() != 2 {
                return Err("an axis map must be a matrix".into());
            }
        }
        Op::Select { keep, fill } => {
            public_tensor(keep)?;
            public_tensor(fill)?;
            if keep.data.iter().any(|&k| k != 0.0 && k != 1.0) {
                return Err("a select mask holds values other than 0 and 1".into());
            }
        }
        _ => {}
    }
    Ok(())
}
