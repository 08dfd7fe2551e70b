//! Token ids: what the data owner computes from its ids in plaintext before sharing. A model's
//! integer input is private token ids; the model may derive more index tensors from them
//! (RoBERTa's position ids: a cumulative count of the non-padding tokens) and look rows up in
//! embedding tables. Those derivations only involve the data owner's own data and public
//! constants, so the data owner runs them ([`IdsProgram`]), turns every looked-up index
//! tensor into one-hot rows, and shares the one-hot rows, flattened and concatenated, as the
//! model's input; each lookup is then a product of its part with the (secret) table.

use crate::ir::FloatTensor;

/// Largest one-hot input (elements) the data owner builds.
pub const MAX_ONE_HOT_ELEMENTS: usize = 1 << 28;
/// Longest one-hot row (vocabulary) of a lookup.
const MAX_DEPTH: usize = 1 << 20;
/// Most steps a program may have.
const MAX_STEPS: usize = 1 << 12;

/// An elementwise operation of two index tensors (numpy broadcasting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IdsBinary {
    /// Sum.
    Add,
    /// Difference.
    Sub,
    /// Product.
    Mul,
    /// 1 where equal, else 0.
    Equal,
    /// 1 where less, else 0.
    Less,
    /// 1 where greater, else 0.
    Greater,
    /// 1 where both are non-zero.
    And,
    /// 1 where either is non-zero.
    Or,
}

/// One step of an [`IdsProgram`]; its inputs are earlier steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum IdsOp {
    /// The data owner's token ids (no inputs).
    Input,
    /// A public constant (no inputs).
    Constant(FloatTensor),
    /// Elementwise, two inputs.
    Binary(IdsBinary),
    /// 1 where zero, else 0.
    Not,
    /// Toward zero (a cast to an integer type).
    Truncate,
    /// Cumulative sum along an axis.
    CumSum {
        /// The axis (negative counts from the end).
        axis: i64,
        /// Exclude the current element.
        exclusive: bool,
        /// From the end.
        reverse: bool,
    },
    /// Same elements, another shape.
    Reshape(Vec<usize>),
    /// Broadcast to a shape.
    Expand(Vec<usize>),
    /// ONNX GatherElements (inputs: data, indices).
    GatherElements {
        /// The axis.
        axis: i64,
    },
    /// ONNX Where (inputs: condition, a, b).
    Where,
}

/// A step and its inputs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdsStep {
    /// What it computes.
    pub op: IdsOp,
    /// Earlier steps it reads.
    pub inputs: Vec<usize>,
}

/// An embedding lookup: the index tensor of `step`, one-hot over `depth` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdsLookup {
    /// The step whose values are the indices.
    pub step: usize,
    /// The table's row count.
    pub depth: usize,
}

/// The data owner's plaintext program on its token ids.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdsProgram {
    /// Steps in order (step 0 is the input).
    pub steps: Vec<IdsStep>,
    /// The lookups, in the order their one-hot rows appear in the shared input.
    pub lookups: Vec<IdsLookup>,
}

fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    crate::shape_ops::broadcast_shapes(a, b).map_err(|e| e.to_string())
}

/// The element of `t` at the multi-index `idx` of a broadcast shape.
fn at(t: &FloatTensor, idx: &[usize]) -> f64 {
    let off = idx.len() - t.shape.len();
    let flat =
        t.shape.iter().enumerate().fold(0, |acc, (d, &s)| acc * s + if s == 1 { 0 } else { idx[off + d] });
    t.data[flat]
}

/// Calls `f` with every multi-index of `shape`, in row-major order.
pub fn each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = shape.iter().product();
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        f(&idx);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// `f` elementwise over `ins` broadcast against each other (numpy rules), refusing a result of
/// more than `max` elements: the plaintext evaluation of constant and token-id computations.
pub fn broadcast_zip(
    ins: &[&FloatTensor],
    max: usize,
    f: impl Fn(&[f64]) -> f64,
) -> Result<FloatTensor, String> {
    let mut shape = Vec::new();
    for t in ins {
        shape = broadcast_shape(&shape, &t.shape)?;
    }
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
    if n > max {
        return Err(format!("an index tensor of shape {shape:?} is too large"));
    }
    let mut data = Vec::with_capacity(n);
    let mut vals = vec![0.0; ins.len()];
    each_index(&shape, |idx| {
        for (k, t) in ins.iter().enumerate() {
            vals[k] = at(t, idx);
        }
        data.push(f(&vals));
    });
    Ok(FloatTensor { shape, data })
}

fn truth(b: bool) -> f64 {
    f64::from(u8::from(b))
}

impl IdsStep {
    fn eval(&self, ids: &FloatTensor, vals: &[FloatTensor]) -> Result<FloatTensor, String> {
        let ins = self
            .inputs
            .iter()
            .map(|&i| vals.get(i).ok_or_else(|| format!("step {i} not computed")))
            .collect::<Result<Vec<_>, _>>()?;
        match &self.op {
            IdsOp::Input => Ok(ids.clone()),
            op => eval_index_op(op, &ins, MAX_ONE_HOT_ELEMENTS),
        }
    }
}

/// The plaintext meaning of an [`IdsOp`] other than [`IdsOp::Input`] on its inputs, building
/// at most `max` elements: the data owner's token-id programs, and the importer's folding of
/// the same ops on constants.
pub fn eval_index_op(op: &IdsOp, ins: &[&FloatTensor], max: usize) -> Result<FloatTensor, String> {
    let get = |k: usize| -> Result<&FloatTensor, String> {
        ins.get(k).copied().ok_or_else(|| format!("missing input {k}"))
    };
    Ok(match op {
        IdsOp::Input => return Err("the token ids are not an operation".into()),
        IdsOp::Constant(t) => t.clone(),
        IdsOp::Binary(b) => {
            let b = *b;
            broadcast_zip(&[get(0)?, get(1)?], max, move |v| match b {
                IdsBinary::Add => v[0] + v[1],
                IdsBinary::Sub => v[0] - v[1],
                IdsBinary::Mul => v[0] * v[1],
                IdsBinary::Equal => truth(v[0] == v[1]),
                IdsBinary::Less => truth(v[0] < v[1]),
                IdsBinary::Greater => truth(v[0] > v[1]),
                IdsBinary::And => truth(v[0] != 0.0 && v[1] != 0.0),
                IdsBinary::Or => truth(v[0] != 0.0 || v[1] != 0.0),
            })?
        }
        IdsOp::Not => broadcast_zip(&[get(0)?], max, |v| truth(v[0] == 0.0))?,
        IdsOp::Truncate => broadcast_zip(&[get(0)?], max, |v| v[0].trunc())?,
        IdsOp::CumSum { axis, exclusive, reverse } => {
            let x = get(0)?;
            let a = crate::float::resolve_axis(*axis, x.shape.len())?;
            let (outer, len, inner) = (
                x.shape[..a].iter().product::<usize>(),
                x.shape[a],
                x.shape[a + 1..].iter().product::<usize>(),
            );
            let mut out = x.data.clone();
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = 0.0;
                    for step in 0..len {
                        let l = if *reverse { len - 1 - step } else { step };
                        let k = (o * len + l) * inner + i;
                        let v = x.data[k];
                        out[k] = if *exclusive { acc } else { acc + v };
                        acc += v;
                    }
                }
            }
            FloatTensor { shape: x.shape.clone(), data: out }
        }
        IdsOp::Reshape(shape) => {
            let x = get(0)?;
            FloatTensor::new(shape.clone(), x.data.clone())
                .ok_or_else(|| format!("cannot reshape {:?} to {shape:?}", x.shape))?
        }
        IdsOp::Expand(shape) => {
            let x = get(0)?;
            let target = broadcast_shape(&x.shape, shape)?;
            let n = target.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= max);
            let n = n.ok_or_else(|| format!("expanding to {target:?} is too large"))?;
            let zeros = FloatTensor { shape: target, data: vec![0.0; n] };
            broadcast_zip(&[x, &zeros], max, |v| v[0])?
        }
        IdsOp::GatherElements { axis } => {
            let (data, idx) = (get(0)?, get(1)?);
            let a = crate::float::resolve_axis(*axis, data.shape.len())?;
            if idx.shape.len() != data.shape.len() {
                return Err("GatherElements: ranks differ".into());
            }
            let mut out = Vec::with_capacity(idx.data.len());
            let mut bad = None;
            each_index(&idx.shape, |ix| {
                let raw = at(idx, ix);
                let dim = data.shape[a] as f64;
                let j = if raw < 0.0 { raw + dim } else { raw };
                if raw.fract() != 0.0
                    || !(0.0..dim).contains(&j)
                    || ix.iter().zip(&data.shape).any(|(i, d)| i >= d)
                {
                    bad = Some(raw);
                    out.push(0.0);
                    return;
                }
                let mut p = ix.to_vec();
                p[a] = j as usize;
                out.push(at(data, &p));
            });
            if bad.is_some() {
                return Err("GatherElements: an index is out of range".into());
            }
            FloatTensor { shape: idx.shape.clone(), data: out }
        }
        IdsOp::Where => {
            broadcast_zip(&[get(0)?, get(1)?, get(2)?], max, |v| if v[0] != 0.0 { v[1] } else { v[2] })?
        }
    })
}

impl IdsProgram {
    /// Checks the program's structure (run on programs received from a peer).
    pub fn validate(&self) -> Result<(), String> {
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS || self.lookups.is_empty() {
            return Err("a token-id program with no steps, too many, or no lookups".into());
        }
        for (k, s) in self.steps.iter().enumerate() {
            if s.inputs.iter().any(|&i| i >= k) {
                return Err(format!("token-id step {k} reads a later step"));
            }
            let arity = match s.op {
                IdsOp::Input | IdsOp::Constant(_) => 0,
                IdsOp::Binary(_) | IdsOp::GatherElements { .. } => 2,
                IdsOp::Where => 3,
                _ => 1,
            };
            if s.inputs.len() != arity {
                return Err(format!("token-id step {k} has {} inputs, not {arity}", s.inputs.len()));
            }
            let sizes: Vec<&[usize]> = match &s.op {
                IdsOp::Constant(t) => {
                    if FloatTensor::new(t.shape.clone(), t.data.clone()).is_none()
                        || t.data.iter().any(|v| !v.is_finite())
                    {
                        return Err(format!("token-id step {k}: a bad constant"));
                    }
                    vec![&t.shape]
                }
                IdsOp::Reshape(s) | IdsOp::Expand(s) => vec![s],
                _ => vec![],
            };
            for s in sizes {
                if s.len() > 16
                    || s.iter()
                        .try_fold(1usize, |a, &d| a.checked_mul(d))
                        .is_none_or(|n| n > MAX_ONE_HOT_ELEMENTS)
                {
                    return Err(format!("token-id step {k}: shape {s:?} too large"));
                }
            }
        }
        for l in &self.lookups {
            if l.step >= self.steps.len() || l.depth == 0 || l.depth > MAX_DEPTH {
                return Err(format!("a lookup of step {} with {} rows", l.step, l.depth));
            }
        }
        Ok(())
    }

    /// Runs the program on the token ids: the one-hot rows of every lookup's indices,
    /// flattened and concatenated (`[sum of indices x depth]`). Every index must be an integer
    /// in `[-depth, depth)` (negative ones count from the end, as ONNX Gather's).
    pub fn one_hot_input(&self, ids: &FloatTensor) -> Result<FloatTensor, String> {
        self.validate()?;
        let mut vals: Vec<FloatTensor> = Vec::with_capacity(self.steps.len());
        for (k, s) in self.steps.iter().enumerate() {
            vals.push(s.eval(ids, &vals).map_err(|e| format!("token-id step {k}: {e}"))?);
        }
        let total = self.lookups.iter().try_fold(0usize, |acc, l| {
            vals[l.step].data.len().checked_mul(l.depth).and_then(|n| acc.checked_add(n))
        });
        let total = total.filter(|&n| n <= MAX_ONE_HOT_ELEMENTS).ok_or_else(|| {
            format!("the one-hot rows of the token ids would exceed {MAX_ONE_HOT_ELEMENTS} elements")
        })?;
        let mut data = vec![0.0; total];
        let mut base = 0;
        for l in &self.lookups {
            let d = l.depth as f64;
            for (i, &v) in vals[l.step].data.iter().enumerate() {
                if v.fract() != 0.0 || !(-d..d).contains(&v) {
                    return Err(format!(
                        "the token id (or index derived from the ids) at position {i} is not an integer in [-{0}, {0})",
                        l.depth
                    ));
                }
                let j = if v < 0.0 { v + d } else { v } as usize;
                data[base + i * l.depth + j] = 1.0;
            }
            base += vals[l.step].data.len() * l.depth;
        }
        Ok(FloatTensor { shape: vec![total], data })
    }

    /// The shape of every step for ids of `shape` (from a run on zeros).
    pub fn shapes(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>, String> {
        let zeros = FloatTensor { shape: shape.to_vec(), data: vec![0.0; shape.iter().product()] };
        let mut vals: Vec<FloatTensor> = Vec::with_capacity(self.steps.len());
        for (k, s) in self.steps.iter().enumerate() {
            vals.push(s.eval(&zeros, &vals).map_err(|e| format!("token-id step {k}: {e}"))?);
        }
        Ok(vals.into_iter().map(|t| t.shape).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: &[f64]) -> FloatTensor {
        FloatTensor::new(shape.to_vec(), data.to_vec()).unwrap()
    }

    /// RoBERTa's position ids: cumsum(ids != pad) * (ids != pad) + pad, with pad = 1.
    fn roberta() -> IdsProgram {
        let step = |op, inputs: Vec<usize>| IdsStep { op, inputs };
        IdsProgram {
            steps: vec![
                step(IdsOp::Input, vec![]),
                step(IdsOp::Constant(t(&[], &[1.0])), vec![]),
                step(IdsOp::Binary(IdsBinary::Equal), vec![0, 1]),
                step(IdsOp::Not, vec![2]),
                step(IdsOp::CumSum { axis: 1, exclusive: false, reverse: false }, vec![3]),
                step(IdsOp::Binary(IdsBinary::Mul), vec![4, 3]),
                step(IdsOp::Binary(IdsBinary::Add), vec![5, 1]),
            ],
            lookups: vec![IdsLookup { step: 0, depth: 6 }, IdsLookup { step: 6, depth: 8 }],
        }
    }

    #[test]
    fn position_ids_and_one_hot_rows() {
        let ids = t(&[1, 4], &[5.0, 3.0, 1.0, 1.0]);
        let x = roberta().one_hot_input(&ids).unwrap();
        assert_eq!(x.shape, vec![4 * 6 + 4 * 8]);
        let hot = |base: usize, depth: usize| -> Vec<usize> {
            (0..4).map(|i| (0..depth).find(|&j| x.data[base + i * depth + j] == 1.0).unwrap()).collect()
        };
        assert_eq!(hot(0, 6), vec![5, 3, 1, 1]);
        // Positions 2, 3 for the real tokens, the padding id 1 for the padding.
        assert_eq!(hot(24, 8), vec![2, 3, 1, 1]);
        assert_eq!(x.data.iter().sum::<f64>(), 8.0);
        assert_eq!(roberta().shapes(&[1, 4]).unwrap()[6], vec![1, 4]);
    }

    #[test]
    fn bad_ids_and_bad_programs_are_refused() {
        let err = roberta().one_hot_input(&t(&[1, 2], &[6.0, 0.0])).unwrap_err();
        assert!(err.contains("not an integer in [-6, 6)"), "{err}");
        assert!(roberta().one_hot_input(&t(&[1, 2], &[0.5, 0.0])).is_err());
        assert!(!err.contains("6.0") && !err.contains(" 6 "), "the value itself stays secret: {err}");
        let mut p = roberta();
        p.steps[3].inputs = vec![5];
        assert!(p.validate().unwrap_err().contains("later step"));
        let mut p = roberta();
        p.steps[2].inputs = vec![0];
        assert!(p.validate().unwrap_err().contains("inputs"));
        let mut p = roberta();
        p.lookups[1].depth = 0;
        assert!(p.validate().is_err());
        let mut p = roberta();
        p.steps[1].op = IdsOp::Constant(FloatTensor { shape: vec![2], data: vec![1.0] });
        assert!(p.validate().is_err());
        let mut p = roberta();
        p.steps.push(IdsStep { op: IdsOp::Expand(vec![1 << 20, 1 << 20]), inputs: vec![0] });
        assert!(p.validate().is_err());
    }
}
