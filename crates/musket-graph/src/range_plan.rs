//! Where the secure range check looks, for one graph (`RunOptions::secure_range_check`).
//!
//! Each op's operand bounds ([`Op::operand_bounds`]) say what its inputs must satisfy. Checking
//! them where they are consumed is not enough: a matrix product that wrapped gives a value of
//! about 2^(63-f) of either sign, and a ReLU, a max-pool or a clip between it and the next
//! bounded op can turn it into a legal one (a negative garbage value becomes 0). So the bounds
//! are carried backwards through the ops that cannot increase magnitudes (moves, averages,
//! ReLU, max-pool, clip) to the value that produced them, which is checked instead, on both
//! sides; the lower side of a value that only feeds a ReLU or a max-pool needs only the loose
//! garbage bound [`garbage_bound`]. Every output of a sum of products (MatMul, Gemm, Conv) and
//! the graph output are checked at least against that garbage bound. Values that are
//! non-negative or bounded by construction (ReLU, sigmoid, softmax...) skip the sides they
//! cannot violate. The weights and the input are checked by their owners in plaintext.

use crate::ir::{Graph, Op, ValueId};

/// What one value is checked against (real units, exclusive): `value < upper` and, if set,
/// `value > -lower`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    /// Upper bound, if any.
    pub(crate) upper: Option<f64>,
    /// Magnitude of the lower bound, if any.
    pub(crate) lower: Option<f64>,
    /// The node whose needs set the tightest bound, for error messages.
    pub(crate) reason: Option<usize>,
}

/// The bound that tells a wrapped value from a real one: no real activation reaches
/// `2^(62-2f)` (a product with any value of at least 1 would already overflow), while a wrapped
/// sum of products is spread over about ±2^(63-f).
pub(crate) fn garbage_bound(frac_bits: u32) -> f64 {
    2f64.powi(62 - 2 * frac_bits as i32)
}

/// How an op's output relates to its inputs' magnitudes.
enum Flow {
    /// Moves or averages values: `|out| <= max |in|`, both sides.
    Moves,
    /// Never above its input's maximum, but may hide a negative one (ReLU, max-pool, clip).
    Hides,
    /// Anything else: the output is checked where it is.
    Other,
}

fn flow(op: &Op) -> Flow {
    match op {
        Op::Flatten(_)
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::Squeeze(_)
        | Op::Unsqueeze(_)
        | Op::Slice { .. }
        | Op::SplitPart { .. }
        | Op::Gather { .. }
        | Op::Expand(_)
        | Op::Identity
        | Op::Concat(_)
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::ReduceMean { .. } => Flow::Moves,
        Op::Pad { value, .. } if *value == 0.0 => Flow::Moves,
        Op::Relu | Op::MaxPool { .. } | Op::Clip { .. } => Flow::Hides,
        _ => Flow::Other,
    }
}

/// Ops whose output never exceeds `limit` in magnitude, whatever their input.
fn bounded_output(op: &Op) -> Option<f64> {
    match op {
        Op::Sigmoid | Op::Softmax { log: false, .. } | Op::Tanh | Op::Erf => Some(1.0 + 1e-3),
        Op::Clip { lo, hi } => Some(lo.abs().max(hi.abs())),
        _ => None,
    }
}

/// Ops whose output is never negative.
fn non_negative(op: &Op) -> bool {
    matches!(op, Op::Relu | Op::Sigmoid | Op::Sqrt | Op::Softmax { log: false, .. })
        || matches!(op, Op::Clip { lo, .. } if *lo >= 0.0)
}

/// For each value of `graph` (by id), what the secure range check verifies there, if anything.
/// Weights and the input (ids `0..=W`) are included: their owners check them in plaintext.
pub(crate) fn plan(graph: &Graph, frac_bits: u32) -> Vec<Option<Check>> {
    let n = 1 + graph.weights.len() + graph.nodes.len();
    let garbage = garbage_bound(frac_bits);
    let mut hi = vec![f64::INFINITY; n];
    let mut lo = vec![f64::INFINITY; n];
    let mut why: Vec<Option<usize>> = vec![None; n];
    let mut covered = vec![false; n];
    let tighten =
        |v: &mut Vec<f64>, why: &mut Vec<Option<usize>>, id: ValueId, b: f64, reason: Option<usize>| {
            if b < v[id] {
                v[id] = b;
                if reason.is_some() {
                    why[id] = reason;
                }
            }
        };
    // What the graph output and each op's operands need.
    if graph.output < n {
        hi[graph.output] = garbage;
        lo[graph.output] = garbage;
    }
    for (k, node) in graph.nodes.iter().enumerate() {
        for (i, bound) in node.op.operand_bounds(frac_bits).into_iter().enumerate() {
            if let (Some(b), Some(&id)) = (bound, node.inputs.get(i)) {
                tighten(&mut hi, &mut why, id, b, Some(k));
                tighten(&mut lo, &mut why, id, b, Some(k));
            }
        }
    }
    // Carried backwards through the ops that cannot increase magnitudes.
    for node in graph.nodes.iter().rev() {
        let o = node.output;
        let data: &[ValueId] = match node.op {
            Op::Concat(_) => &node.inputs,
            _ => &node.inputs[..1.min(node.inputs.len())],
        };
        let (h, l, r) = (hi[o], lo[o], why[o]);
        match flow(&node.op) {
            Flow::Moves => {
                for &i in data {
                    tighten(&mut hi, &mut why, i, h, r);
                    tighten(&mut lo, &mut why, i, l, r);
                }
                covered[o] = true;
            }
            Flow::Hides => {
                // The output's upper side is the input's; its lower side (0 for ReLU, a clip
                // bound, a window's maximum) needs only the input to be real, not wrapped.
                let (h, l) = match node.op {
                    Op::Clip { lo: cl, hi: ch } => {
                        (if ch.abs() < h { garbage } else { h }, if cl.abs() < l { garbage } else { l })
                    }
                    Op::Relu => (h, garbage),
                    // A window's maximum is above -l when all its values are.
                    _ => (h, l.min(garbage)),
                };
                for &i in data {
                    tighten(&mut hi, &mut why, i, h, r);
                    tighten(&mut lo, &mut why, i, l, r);
                }
                covered[o] = true;
            }
            Flow::Other => {}
        }
    }
    // Every sum of products is checked for wrapping, unless it only feeds sums and
    // differences whose own outputs are checked on both sides: a wrapped value plus a real one
    // is still a wrapped one, found there (a residual block's second convolution and its Add).
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, node) in graph.nodes.iter().enumerate() {
        for &i in &node.inputs {
            consumers[i].push(k);
        }
    }
    for node in &graph.nodes {
        if matches!(node.op, Op::MatMul | Op::Gemm { .. } | Op::Conv { .. }) {
            let o = node.output;
            let passed_on = o != graph.output
                && !consumers[o].is_empty()
                && consumers[o].iter().map(|&k| &graph.nodes[k]).all(|c| {
                    matches!(c.op, Op::Add | Op::Sub)
                        && !covered[c.output]
                        && hi[c.output] <= garbage
                        && lo[c.output] <= garbage
                });
            if !passed_on {
                tighten(&mut hi, &mut why, o, garbage, None);
                tighten(&mut lo, &mut why, o, garbage, None);
            }
        }
    }
    let mut out: Vec<Option<Check>> = vec![None; n];
    let producer: Vec<Option<&Op>> = {
        let mut p = vec![None; n];
        for node in &graph.nodes {
            p[node.output] = Some(&node.op);
        }
        p
    };
    for id in 0..n {
        if covered[id] {
            continue;
        }
        let (mut h, mut l) = (hi[id], lo[id]);
        if let Some(op) = producer[id] {
            if non_negative(op) {
                l = f64::INFINITY;
            }
            if let Some(limit) = bounded_output(op) {
                if limit < h {
                    h = f64::INFINITY;
                }
                if limit < l {
                    l = f64::INFINITY;
                }
            }
        }
        let finite = |b: f64| b.is_finite().then_some(b);
        if h.is_finite() || l.is_finite() {
            out[id] = Some(Check { upper: finite(h), lower: finite(l), reason: why[id] });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FloatTensor, Node};

    fn node(op: Op, inputs: Vec<usize>, output: usize) -> Node {
        Node { name: format!("n{output}"), op_type: String::new(), op, inputs, output }
    }

    /// x -> Gemm(w1) -> Relu -> Gemm(w2) -> Sigmoid: the first Gemm's output is checked on both
    /// sides (tight above, garbage below) instead of the ReLU's; the second Gemm's against the
    /// garbage bound; the ReLU and sigmoid outputs are not checked.
    #[test]
    fn bounds_move_back_through_relu_and_every_matmul_is_checked() {
        let w = |r, c| ("w".to_string(), FloatTensor::new(vec![r, c], vec![0.0; r * c]).unwrap());
        let gemm = Op::Gemm { trans_a: false, trans_b: false, alpha: 1.0, beta: 1.0 };
        let g = Graph {
            input_name: "x".into(),
            ids: None,
            input_shape: vec![None, Some(4)],
            weights: vec![w(4, 4), w(4, 2)],
            nodes: vec![
                node(gemm.clone(), vec![0, 1], 3),
                node(Op::Relu, vec![3], 4),
                node(gemm, vec![4, 2], 5),
                node(Op::Sigmoid, vec![5], 6),
            ],
            output: 6,
        };
        let p = plan(&g, 16);
        let tight = 2f64.powi(15);
        let garbage = garbage_bound(16);
        assert_eq!(p[0], Some(Check { upper: Some(tight), lower: Some(tight), reason: Some(0) }), "input");
        assert_eq!(p[3], Some(Check { upper: Some(tight), lower: Some(garbage), reason: Some(2) }));
        assert_eq!(p[4], None, "the ReLU's output is covered by its input's check");
        assert_eq!(p[5], Some(Check { upper: Some(garbage), lower: Some(garbage), reason: None }));
        assert_eq!(p[6], None, "sigmoid is bounded by construction");
    }
}
