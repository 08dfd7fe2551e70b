//! The executor on hand-built graphs: batch slicing (same outputs, same 3PC bytes), the
//! secure range check (clean runs pass, overflowing runs fail at every party before any
//! output is opened), and the plaintext audit naming the layer.

use musket_core::{Audit, MpcError, Plain, Protocol};
use musket_graph::{
    run, run_sliced, slice_lengths, FloatTensor, Graph, Node, Op, Owners, RunOptions, RunOutput, Slices,
};
use musket_ring::FixedPoint;
use musket_session::{run_local, Backend, Job};

const FP: FixedPoint = FixedPoint::DEFAULT;
const OWNERS: Owners = Owners { model: 0, data: 1, output: 1 };
const WIDTH: usize = 64;

/// x [N, 64] -> MatMul W [64, 64] -> Relu -> Mul (square) -> Softmax (positive weights).
fn graph(weight_scale: f64) -> Graph {
    let mut g = graph_without_softmax(weight_scale);
    g.nodes.push(Node {
        name: "softmax".into(),
        op_type: "Softmax".into(),
        op: Op::Softmax { axis: -1, flatten: false, log: false },
        inputs: vec![4],
        output: 5,
    });
    g.output = 5;
    g
}

/// x [N, 64] -> MatMul W [64, 64] -> Relu -> Mul (square): every op's cost is per element.
fn node(name: &str, op_type: &str, op: Op, inputs: Vec<usize>, output: usize) -> Node {
    Node { name: name.into(), op_type: op_type.into(), op, inputs, output }
}

fn graph_without_softmax(weight_scale: f64) -> Graph {
    let w: Vec<f64> =
        (0..WIDTH * WIDTH).map(|i| weight_scale * (((i * 7) % 13) as f64 + 1.0) / 13.0).collect();
    Graph {
        input_name: "x".into(),
        ids: None,
        input_shape: vec![None, Some(WIDTH)],
        weights: vec![("w".into(), FloatTensor::new(vec![WIDTH, WIDTH], w).unwrap())],
        nodes: vec![
            node("fc", "MatMul", Op::MatMul, vec![0, 1], 2),
            node("relu", "Relu", Op::Relu, vec![2], 3),
            node("square", "Mul", Op::Mul, vec![3, 3], 4),
        ],
        output: 4,
    }
}

fn input(n: usize, scale: f64) -> FloatTensor {
    // Mostly positive (so products do not cancel), a few negative.
    let data = (0..n * WIDTH).map(|i| scale * (((i * 11) % 17) as f64 - 1.5) / 17.0).collect();
    FloatTensor::new(vec![n, WIDTH], data).unwrap()
}

struct Infer<'a> {
    graph: &'a Graph,
    x: FloatTensor,
    lengths: Vec<usize>,
    options: RunOptions,
}

impl Job for Infer<'_> {
    type Output = RunOutput;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<RunOutput, MpcError> {
        let mine = (p.party_id() == OWNERS.data || p.compute_parties() == 1).then_some(&self.x);
        let public = self.graph.without_weights();
        let g = if p.party_id() == OWNERS.model || p.compute_parties() == 1 { self.graph } else { &public };
        let mut lens: Vec<usize> = self.lengths.clone();
        lens.dedup();
        let slices = Slices::new(self.lengths.clone(), lens.iter().map(|&l| (l, g)).collect())?;
        run_sliced(p, &slices, FP, OWNERS, mine, &self.x.shape, self.options, &mut |_, _, _| {})
    }
}

fn output(outcomes: Vec<musket_session::PartyOutcome<RunOutput>>) -> (FloatTensor, u64) {
    let bytes = outcomes.iter().map(|o| o.stats.bytes_sent).sum();
    let out = outcomes.into_iter().find_map(|o| o.output.and_then(|r| r.output)).unwrap();
    (out, bytes)
}

fn max_diff(a: &FloatTensor, b: &FloatTensor) -> f64 {
    assert_eq!(a.shape, b.shape);
    a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn slice_lengths_are_balanced() {
    assert_eq!(slice_lengths(360, 64), vec![60; 6]);
    assert_eq!(slice_lengths(10, 4), vec![4, 3, 3]);
    assert_eq!(slice_lengths(5, 100), vec![5]);
    assert_eq!(slice_lengths(0, 8), vec![0]);
}

#[test]
fn sliced_runs_give_the_whole_batch_result_with_the_same_3pc_bytes() {
    let g = graph_without_softmax(0.1);
    let x = input(10, 1.0);
    let whole = Infer { graph: &g, x: x.clone(), lengths: vec![10], options: RunOptions::default() };
    let sliced = Infer { graph: &g, x: x.clone(), lengths: vec![4, 3, 3], options: RunOptions::default() };
    // The plaintext fixed-point runs agree exactly.
    let a = whole.run(&mut Plain).unwrap().output.unwrap();
    let b = sliced.run(&mut Plain).unwrap().output.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.shape, vec![10, WIDTH]);
    for backend in [Backend::TwoPc, Backend::ThreePc] {
        let (wa, bytes_whole) = output(run_local(backend, &whole, None).unwrap());
        let (wb, bytes_sliced) = output(run_local(backend, &sliced, None).unwrap());
        assert!(max_diff(&wa, &a) < 1e-3 && max_diff(&wb, &a) < 1e-3, "{backend:?}");
        if backend == Backend::ThreePc {
            // Every 3PC cost is per element (64 per item here, whole words of packed bits).
            assert_eq!(bytes_whole, bytes_sliced);
        }
    }
}

#[test]
fn the_secure_range_check_passes_clean_runs_and_stops_overflowing_ones() {
    let g = graph(0.1);
    let clean = Infer {
        graph: &g,
        x: input(3, 1.0),
        lengths: vec![2, 1],
        options: RunOptions { secure_range_check: true },
    };
    let reference = clean.run(&mut Plain).unwrap().output.unwrap();
    // Inputs and weights within the bound, but the matrix product reaches ~4e4 and its square
    // overflows: only the secure check on the computed value can see it.
    let hot = graph(8.0);
    let overflow = Infer {
        graph: &hot,
        x: input(3, 300.0),
        lengths: vec![3],
        options: RunOptions { secure_range_check: true },
    };
    for backend in [Backend::TwoPc, Backend::ThreePc] {
        let outcomes = run_local(backend, &clean, None).unwrap();
        let layers = &outcomes.iter().find_map(|o| o.output.as_ref()).unwrap().layers;
        assert!(layers.iter().any(|l| l.name == "range check"), "{layers:?}");
        let (y, _) = output(outcomes);
        assert!(max_diff(&y, &reference) < 1e-3);
        match run_local(backend, &overflow, None) {
            Err(MpcError::OutOfRange { detail, .. }) => {
                assert!(detail.contains("secure range check"), "{detail}")
            }
            other => panic!("{backend:?}: expected a range-check failure, got {:?}", other.map(|_| ())),
        }
    }
    // The owners' plaintext checks: an input beyond the bound of the layer that reads it.
    let big_input = Infer {
        graph: &g,
        x: input(2, 1e5),
        lengths: vec![2],
        options: RunOptions { secure_range_check: true },
    };
    match run_local(Backend::ThreePc, &big_input, None) {
        Err(MpcError::OutOfRange { detail, public }) => {
            assert!(detail.contains("the input reaches 8.529e4") && detail.contains("\"fc\""), "{detail}");
            assert!(!public.contains("e4"), "{public}");
        }
        other => panic!("expected the data owner's check to fail, got {:?}", other.map(|_| ())),
    }
    let big_weight = graph(5e4);
    let job = Infer {
        graph: &big_weight,
        x: input(2, 1.0),
        lengths: vec![2],
        options: RunOptions { secure_range_check: true },
    };
    match run_local(Backend::TwoPc, &job, None) {
        Err(MpcError::OutOfRange { detail, .. }) => assert!(detail.contains("weight \"w\""), "{detail}"),
        other => panic!("expected the model owner's check to fail, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn the_audit_names_the_layer_that_overflows() {
    let hot = graph(8.0);
    let x = input(3, 300.0);
    let mut audit = Audit::new();
    run(&mut audit, &hot, FP, OWNERS, Some(&x), &x.shape, &mut |_, _, _| {}).unwrap();
    let f = audit.findings();
    assert!(!f.is_empty());
    assert_eq!(f[0].layer, "square", "{f:?}");
    assert!(f[0].what.contains("overflow"), "{f:?}");
    let clean = graph(0.1);
    let x = input(3, 1.0);
    let mut audit = Audit::new();
    run(&mut audit, &clean, FP, OWNERS, Some(&x), &x.shape, &mut |_, _, _| {}).unwrap();
    assert!(audit.findings().is_empty(), "{:?}", audit.findings());
}

#[test]
fn a_nan_weight_is_named_as_a_weight_of_the_model() {
    let mut g = graph(0.1);
    g.weights[0].1.data[3] = f64::NAN;
    let x = input(1, 1.0);
    let err = run(&mut Plain, &g, FP, OWNERS, Some(&x), &x.shape, &mut |_, _, _| {}).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("weight \"w\" of the model") && text.contains("index 3"), "{text}");
    assert!(!err.public_reason().contains("index"), "{}", err.public_reason());
}

/// A matrix product that wraps to a negative value would be zeroed by the ReLU after it, and a
/// check of the ReLU's output would pass: the check plan checks the product itself, on both
/// sides (review finding; Gemm -> ReLU -> Gemm is every MLP).
#[test]
fn a_wrapped_product_cannot_hide_behind_a_relu() {
    let k = 64;
    // Each operand below 2^15, every product 1.4 * 2^25, their sum 1.4 * 2^31: past 2^(62-2f)
    // (2^30), so the ring value wraps to about -1.2 * 2^62.
    let v = (1.4f64 * 2f64.powi(25)).sqrt();
    let gemm = Op::Gemm { trans_a: false, trans_b: false, alpha: 1.0, beta: 1.0 };
    let node = |name: &str, op: Op, inputs: Vec<usize>, output: usize| Node {
        name: name.into(),
        op_type: "t".into(),
        op,
        inputs,
        output,
    };
    let g = Graph {
        input_name: "x".into(),
        ids: None,
        input_shape: vec![None, Some(k)],
        weights: vec![
            ("w1".into(), FloatTensor::new(vec![k, 1], vec![v; k]).unwrap()),
            ("w2".into(), FloatTensor::new(vec![1, 1], vec![1.0]).unwrap()),
        ],
        nodes: vec![
            node("fc1", gemm.clone(), vec![0, 1], 3),
            node("relu", Op::Relu, vec![3], 4),
            node("fc2", gemm, vec![4, 2], 5),
        ],
        output: 5,
    };
    let x = FloatTensor::new(vec![1, k], vec![v; k]).unwrap();
    // Without the check the plaintext fixed-point run silently gives 0 (the true value is 3e9).
    let plain = run(&mut Plain, &g, FP, OWNERS, Some(&x), &x.shape, &mut |_, _, _| {}).unwrap();
    assert_eq!(plain.output.unwrap().data, vec![0.0]);
    let job = Infer { graph: &g, x, lengths: vec![1], options: RunOptions { secure_range_check: true } };
    match job.run(&mut Plain) {
        Err(MpcError::OutOfRange { detail, .. }) => {
            assert!(detail.contains("secure range check"), "{detail}")
        }
        other => panic!("expected a range-check failure, got {:?}", other.map(|o| o.output)),
    }
    // The secure protocols check both sides of the product in one circuit (its window holds
    // 2^46 ring values): the wrapped value is below it.
    for backend in [Backend::TwoPc, Backend::ThreePc, Backend::ThreePcMalicious] {
        match run_local(backend, &job, None) {
            Err(MpcError::OutOfRange { detail, .. }) => {
                assert!(detail.contains("secure range check"), "{detail}")
            }
            other => panic!("{backend:?}: expected a range-check failure, got {:?}", other.map(|_| ())),
        }
    }
}

/// x [N, 64] -> MatMul W -> Gelu: GELU's narrow sign circuits need its input below 2^(31-f),
/// which its operand bound makes the secure range check enforce on the product.
fn gelu_graph(weight_scale: f64) -> Graph {
    let mut g = graph_without_softmax(weight_scale);
    g.nodes.truncate(1);
    g.nodes.push(Node {
        name: "gelu".into(),
        op_type: "Gelu".into(),
        op: Op::Gelu,
        inputs: vec![2],
        output: 3,
    });
    g.output = 3;
    g
}

/// A graph of an op with a narrow domain: clean inputs run on both back ends and match the
/// plaintext run; inputs whose product exceeds the op's operand bound (with inputs and weights
/// within the product operands' bound) are stopped by the secure range check, and the range
/// audit names the layer and its function.
fn assert_stopped_not_miscomputed(graph: fn(f64) -> Graph, hot_weights: f64, hot_input: f64, layer: &str) {
    let clean = Infer {
        graph: &graph(0.1),
        x: input(3, 1.0),
        lengths: vec![3],
        options: RunOptions { secure_range_check: true },
    };
    let reference = clean.run(&mut Plain).unwrap().output.unwrap();
    let hot = graph(hot_weights);
    let x = input(3, hot_input);
    let overflow = Infer {
        graph: &hot,
        x: x.clone(),
        lengths: vec![3],
        options: RunOptions { secure_range_check: true },
    };
    for backend in [Backend::TwoPc, Backend::ThreePc] {
        let (y, _) = output(run_local(backend, &clean, None).unwrap());
        assert!(max_diff(&y, &reference) < 1e-3);
        match run_local(backend, &overflow, None) {
            Err(MpcError::OutOfRange { detail, .. }) => {
                assert!(detail.contains("secure range check"), "{detail}")
            }
            other => panic!("{backend:?}: expected a range-check failure, got {:?}", other.map(|_| ())),
        }
    }
    let mut audit = Audit::new();
    run(&mut audit, &hot, FP, OWNERS, Some(&x), &x.shape, &mut |_, _, _| {}).unwrap();
    let f = audit.findings();
    let what = format!("{layer}: input outside its domain");
    assert!(f.iter().any(|f| f.layer == layer && f.what.contains(&what)), "{f:?}");
}

#[test]
fn a_gelu_input_beyond_its_bound_is_stopped_not_miscomputed() {
    // Products of about 4e4, beyond 2^15.
    assert_stopped_not_miscomputed(gelu_graph, 8.0, 300.0, "gelu");
}

/// x [N, 64] -> MatMul W -> 4 (x W) (two Adds) -> Relu: the graph's ReLU is a `64 - f`-bit
/// circuit for inputs below 2^(63-2f), twice the garbage bound, so a sum of products of at
/// most 2^(62-2f) each may exceed it; its operand bound makes the audit and the secure range
/// check stop such a run.
fn relu_graph(weight_scale: f64) -> Graph {
    let mut g = graph_without_softmax(weight_scale);
    g.nodes.truncate(1);
    g.nodes.push(node("twice", "Add", Op::Add, vec![2, 2], 3));
    g.nodes.push(node("four", "Add", Op::Add, vec![3, 3], 4));
    g.nodes.push(node("relu", "Relu", Op::Relu, vec![4], 5));
    g.output = 5;
    g
}

#[test]
fn a_relu_input_beyond_its_bound_is_stopped_not_miscomputed() {
    // Products of up to 8e8, within 2^30 (no overflow), four times that beyond 2^31.
    assert_stopped_not_miscomputed(relu_graph, 1900.0, 30000.0, "relu");
}

/// x [N, 64] -> MatMul W -> Softmax: softmax's 42-bit tournament and clamp need its input below
/// 2^(40-f), which its operand bound makes the secure range check enforce on the product.
fn softmax_graph(weight_scale: f64) -> Graph {
    let mut g = graph_without_softmax(weight_scale);
    g.nodes.truncate(1);
    g.nodes.push(Node {
        name: "softmax".into(),
        op_type: "Softmax".into(),
        op: Op::Softmax { axis: -1, flatten: false, log: false },
        inputs: vec![2],
        output: 3,
    });
    g.output = 3;
    g
}

#[test]
fn a_softmax_input_beyond_its_bound_is_stopped_not_miscomputed() {
    // Products of about 2.5e7, beyond 2^24.
    assert_stopped_not_miscomputed(softmax_graph, 60.0, 30000.0, "softmax");
}
