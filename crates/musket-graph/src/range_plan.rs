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
    /// The lower side is only the garbage bound (no op needs it tighter), which may move a
    /// little (see [`Check::ring_bounds`]).
    pub(crate) loose_lower: bool,
}

impl Check {
    /// The bounds in ring units at scale `one` (exclusive, as `Protocol::check_bound` takes
    /// them), each at least 1 and at most 2^62. A loose lower side moves, by at most 1/256 of
    /// it, so that the window `(-lower, upper)` holds a power of two of values: the secure
    /// range check then verifies both sides with one circuit instead of two sign circuits
    /// (`RangeChecked`). The garbage bound is a line no real activation comes near (a product
    /// with any value of at least 1 would overflow long before) and that a wrapped value
    /// crosses with probability about 1 - 2^-17, so a line moved that little tells them apart
    /// as well. It is tightened where that is enough (ResNet's checks, an upper bound of 2^15
    /// below a garbage bound of 2^30 at 16 fractional bits: by 2^-15 of it), else loosened
    /// (the graph output's two garbage sides, `2^46 - 1 + 2^46` values: by one ulp).
    pub(crate) fn ring_bounds(&self, one: f64) -> (Option<u64>, Option<u64>) {
        let ring = |b: f64| (b * one).clamp(1.0, 2f64.powi(62)) as u64;
        let (upper, lower) = (self.upper.map(ring), self.lower.map(ring));
        let (Some(u), Some(l), true) = (upper, lower, self.loose_lower) else {
            return (upper, lower);
        };
        let window = u + l - 1; // both at most 2^62: no overflow
        if window.is_power_of_two() {
            return (upper, lower);
        }
        let below = 1u64 << (63 - window.leading_zeros());
        let mut moved = [below, 2 * below].into_iter().filter_map(|pow| (pow + 1).checked_sub(u));
        let within = moved.find(|&m| m >= 1 && m.abs_diff(l) <= l / 256);
        (upper, Some(within.unwrap_or(l)))
    }
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
    // Whether a value's lower side is an op's own need rather than only the garbage bound
    // (kept apart from the value: an op's bound can equal the garbage bound, as MulConst(0.5)'s
    // does at every scale).
    let mut lo_tight = vec![false; n];
    let tighten_lo = |lo: &mut Vec<f64>,
                      lo_tight: &mut Vec<bool>,
                      why: &mut Vec<Option<usize>>,
                      id: ValueId,
                      (b, tight): (f64, bool),
                      reason: Option<usize>| {
        if b < lo[id] {
            lo[id] = b;
            lo_tight[id] = tight;
            if reason.is_some() {
                why[id] = reason;
            }
        } else if b == lo[id] && tight {
            lo_tight[id] = true;
        }
    };
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
                tighten_lo(&mut lo, &mut lo_tight, &mut why, id, (b, true), Some(k));
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
        let lt = lo_tight[o];
        match flow(&node.op) {
            Flow::Moves => {
                for &i in data {
                    tighten(&mut hi, &mut why, i, h, r);
                    tighten_lo(&mut lo, &mut lo_tight, &mut why, i, (l, lt), r);
                }
                covered[o] = true;
            }
            Flow::Hides => {
                // The output's upper side is the input's; its lower side (0 for ReLU, a clip
                // bound, a window's maximum) needs only the input to be real, not wrapped.
                let only_garbage = (garbage, false);
                let (h, l) = match node.op {
                    Op::Clip { lo: cl, hi: ch } => (
                        if ch.abs() < h { garbage } else { h },
                        if cl.abs() < l { only_garbage } else { (l, lt) },
                    ),
                    Op::Relu => (h, only_garbage),
                    // A window's maximum is above -l when all its values are.
                    _ => (h, if l <= garbage { (l, lt) } else { only_garbage }),
                };
                for &i in data {
                    tighten(&mut hi, &mut why, i, h, r);
                    tighten_lo(&mut lo, &mut lo_tight, &mut why, i, l, r);
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
                tighten_lo(&mut lo, &mut lo_tight, &mut why, o, (garbage, false), None);
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
            out[id] = Some(Check {
                upper: finite(h),
                lower: finite(l),
                reason: why[id],
                loose_lower: !lo_tight[id],
            });
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
        let check = |upper, lower, reason, loose_lower| Some(Check { upper, lower, reason, loose_lower });
        assert_eq!(p[0], check(Some(tight), Some(tight), Some(0), false), "input");
        assert_eq!(p[3], check(Some(tight), Some(garbage), Some(2), true));
        assert_eq!(p[4], None, "the ReLU's output is covered by its input's check");
        assert_eq!(p[5], check(Some(garbage), Some(garbage), None, true));
        assert_eq!(p[6], None, "sigmoid is bounded by construction");
        // In ring units, the ReLU's input's garbage side moves by 2^-15 of it, so that its
        // window holds 2^46 values; the output's would have to halve, so it moves out by one.
        let one = 65536.0;
        assert_eq!(p[3].as_ref().unwrap().ring_bounds(one), (Some(1 << 31), Some((1 << 46) - (1 << 31) + 1)));
        assert_eq!(p[5].as_ref().unwrap().ring_bounds(one), (Some(1 << 46), Some((1 << 46) + 1)));
        assert_eq!(
            p[0].as_ref().unwrap().ring_bounds(one),
            (Some(1 << 31), Some(1 << 31)),
            "tight sides stay"
        );
        // An op's own bound equal to the garbage bound (MulConst(0.5): 2^(61-2f) / 0.5) is
        // tight, and stays where it is.
        let mut halved = g.clone();
        halved.nodes.truncate(1);
        halved.nodes.push(node(Op::MulConst(0.5), vec![3], 4));
        halved.output = 4;
        let q = plan(&halved, 16);
        assert_eq!(q[3], check(Some(garbage), Some(garbage), Some(1), false), "{:?}", q[3]);
        assert_eq!(q[3].as_ref().unwrap().ring_bounds(one), (Some(1 << 46), Some(1 << 46)));
        let odd = Check { upper: Some(3.0), lower: Some(garbage), reason: None, loose_lower: true };
        assert_eq!(odd.ring_bounds(one), (Some(3 << 16), Some((1 << 46) - (3 << 16) + 1)));
        let wide =
            Check { upper: Some(garbage * 0.75), lower: Some(garbage), reason: None, loose_lower: true };
        assert_eq!(wide.ring_bounds(one), (Some(3 << 44), Some(1 << 46)), "more than 1/256 off: stays");
        let near =
            Check { upper: Some(garbage / 512.0), lower: Some(garbage), reason: None, loose_lower: true };
        assert_eq!(near.ring_bounds(one), (Some(1 << 37), Some((1 << 46) - (1 << 37) + 1)), "1/512 in");
        let out =
            Check { upper: Some(garbage * 0.999), lower: Some(garbage), reason: None, loose_lower: true };
        let u = (garbage * 0.999 * one) as u64;
        assert_eq!(out.ring_bounds(one), (Some(u), Some((1 << 47) - u + 1)), "0.1% out");
    }
}
