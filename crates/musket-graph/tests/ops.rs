//! The ops added for today's exporters and the conformance suite, each against its f64
//! definition on random inputs (a grid of values exact in fixed point, so comparisons and ties
//! are meaningful, with zeros, negatives and large values), on `Plain`, 2PC and 3PC.

use musket_core::{MpcError, Plain, Protocol};
use musket_graph::{eval_f64, run, Comparison, FloatTensor, Graph, Node, Op, Owners, RunOutput};
use musket_ring::FixedPoint;
use musket_session::{run_local, Backend, Job};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const FP: FixedPoint = FixedPoint::DEFAULT;
const OWNERS: Owners = Owners { model: 0, data: 1, output: 1 };

/// A graph of one op on the input (value 0) and, for binary ops, a weight (value 1).
fn graph(op: Op, x_shape: &[usize], weight: Option<FloatTensor>) -> Graph {
    let has_w = weight.is_some();
    let mut inputs = vec![0];
    if has_w {
        inputs.push(1);
    }
    if matches!(op, Op::Where) {
        // condition = input, a = weight, b = input.
        inputs = vec![0, 1, 0];
    }
    let output = 1 + usize::from(has_w);
    Graph {
        input_name: "x".into(),
        ids: None,
        input_shape: x_shape.iter().map(|&d| Some(d)).collect(),
        weights: weight.map(|w| vec![("w".to_string(), w)]).unwrap_or_default(),
        nodes: vec![Node { name: "op".into(), op_type: "Op".into(), op, inputs, output }],
        output,
    }
}

struct Infer<'a> {
    graph: &'a Graph,
    x: &'a FloatTensor,
}

impl Job for Infer<'_> {
    type Output = RunOutput;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<RunOutput, MpcError> {
        let mine = (p.party_id() == OWNERS.data).then_some(self.x);
        let public = self.graph.without_weights();
        let g = if p.party_id() == OWNERS.model { self.graph } else { &public };
        run(p, g, FP, OWNERS, mine, &self.x.shape, &mut |_, _, _| {})
    }
}

/// Runs `g` on `x` everywhere and checks each output against f64 within `tol(want)`.
fn check(what: &str, g: &Graph, x: &FloatTensor, tol: &dyn Fn(f64) -> f64) -> Result<(), TestCaseError> {
    let want = eval_f64(g, x).map_err(|e| TestCaseError::fail(format!("{what}: f64: {e}")))?.output;
    let plain =
        run(&mut Plain, g, FP, Owners { model: 0, data: 0, output: 0 }, Some(x), &x.shape, &mut |_, _, _| {})
            .map_err(|e| TestCaseError::fail(format!("{what}: plain: {e}")))?
            .output
            .unwrap();
    let mut got = vec![("plain", plain)];
    for (name, backend) in [("2pc", Backend::TwoPc), ("3pc", Backend::ThreePc)] {
        let outcomes = run_local(backend, &Infer { graph: g, x }, None)
            .map_err(|e| TestCaseError::fail(format!("{what} {name}: {e}")))?;
        got.push((name, outcomes.into_iter().find_map(|o| o.output.and_then(|r| r.output)).unwrap()));
    }
    for (name, y) in got {
        prop_assert_eq!(&y.shape, &want.shape, "{} {}", what, name);
        for (i, (a, b)) in y.data.iter().zip(&want.data).enumerate() {
            prop_assert!((a - b).abs() <= tol(*b), "{} {}: element {}: {} against {}", what, name, i, a, b);
        }
    }
    Ok(())
}

/// Values on a grid of 1/64 in [-range, range], with zeros and the ends.
fn grid(range: f64, n: usize) -> impl Strategy<Value = Vec<f64>> {
    let steps = (range * 64.0) as i64;
    prop::collection::vec(
        prop_oneof![
            1 => Just(0.0),
            1 => Just(range),
            1 => Just(-range),
            6 => (-steps..=steps).prop_map(|k| k as f64 / 64.0),
        ],
        n,
    )
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..5, 1..4)
}

fn tensor(shape: &[usize], range: f64) -> impl Strategy<Value = FloatTensor> {
    let shape = shape.to_vec();
    grid(range, shape.iter().product()).prop_map(move |d| FloatTensor::new(shape.clone(), d).unwrap())
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: 12, failure_persistence: None, ..Config::default() })
}

const EXACT: f64 = 2e-4;

/// A case: name, op, input range, tolerance for an expected value.
type Case = (&'static str, Op, f64, Box<dyn Fn(f64) -> f64>);

#[test]
fn unary_ops_match_f64() {
    let cases: Vec<Case> = vec![
        ("abs", Op::Abs, 1000.0, Box::new(|_| EXACT)),
        ("exp", Op::Exp, 8.0, Box::new(|y: f64| 2e-3 * y.abs() + 2f64.powi(-11))),
        ("gelu", Op::Gelu, 50.0, Box::new(|_| 2f64.powi(-12) + 2f64.powi(-14))),
        ("gelu-tanh", Op::GeluTanh, 50.0, Box::new(|_| 2f64.powi(-12) + 2f64.powi(-14))),
        ("reduce-sum", Op::ReduceSum { axes: vec![-1], keepdims: true }, 100.0, Box::new(|_| 1e-3)),
        ("reduce-sum-all", Op::ReduceSum { axes: vec![], keepdims: false }, 100.0, Box::new(|_| 1e-3)),
        (
            "reduce-max",
            Op::ReduceMax { axes: vec![0], keepdims: false, min: false },
            100.0,
            Box::new(|_| EXACT),
        ),
        (
            "reduce-min",
            Op::ReduceMax { axes: vec![-1], keepdims: true, min: true },
            100.0,
            Box::new(|_| EXACT),
        ),
        (
            "argmax",
            Op::ArgMax { axis: -1, keepdims: false, min: false, last: false },
            2.0,
            Box::new(|_| EXACT),
        ),
        (
            "argmin-last",
            Op::ArgMax { axis: 0, keepdims: true, min: true, last: true },
            2.0,
            Box::new(|_| EXACT),
        ),
    ];
    for (what, op, range, tol) in cases {
        runner()
            .run(&shape().prop_flat_map(move |s| tensor(&s, range)), |x| {
                check(what, &graph(op.clone(), &x.shape, None), &x, &*tol)
            })
            .unwrap();
    }
}

#[test]
fn log_matches_f64_on_positive_values() {
    runner()
        .run(&prop::collection::vec(1i64..640_000, 1..20), |v| {
            let x = FloatTensor::new(vec![v.len()], v.iter().map(|&k| k as f64 / 64.0).collect()).unwrap();
            check("log", &graph(Op::Log, &x.shape, None), &x, &|_| 2f64.powi(-10))
        })
        .unwrap();
}

#[test]
fn binary_ops_match_f64() {
    let comparisons = [
        Comparison::Less,
        Comparison::LessOrEqual,
        Comparison::Greater,
        Comparison::GreaterOrEqual,
        Comparison::Equal,
    ];
    let mut ops: Vec<(String, Op)> = vec![("max".into(), Op::Max), ("min".into(), Op::Min)];
    ops.extend(comparisons.iter().map(|c| (format!("{c:?}"), Op::Compare(*c))));
    for (what, op) in ops {
        // The weight broadcasts against the last axis of the input; small ranges make ties.
        let strategy = shape().prop_flat_map(|s| {
            let last = *s.last().unwrap();
            (tensor(&s, 2.0), tensor(&[last], 2.0))
        });
        runner()
            .run(&strategy, |(x, w)| check(&what, &graph(op.clone(), &x.shape, Some(w)), &x, &|_| EXACT))
            .unwrap();
    }
}

#[test]
fn where_on_a_secret_condition_matches_f64() {
    // where(x, w, x) with x in {0, 1}: w where x is 1, else 0.
    let strategy = shape().prop_flat_map(|s| {
        let n: usize = s.iter().product();
        let last = *s.last().unwrap();
        (
            prop::collection::vec(0u8..2, n).prop_map(move |b| {
                FloatTensor::new(s.clone(), b.iter().map(|&v| f64::from(v)).collect()).unwrap()
            }),
            tensor(&[last], 100.0),
        )
    });
    runner()
        .run(&strategy, |(x, w)| check("where", &graph(Op::Where, &x.shape, Some(w)), &x, &|_| 1e-3))
        .unwrap();
}

#[test]
fn public_constant_ops_match_f64() {
    let strategy = shape().prop_flat_map(|s| {
        let last = *s.last().unwrap();
        (tensor(&s, 1000.0), tensor(&[last], 100.0), prop::collection::vec(0u8..2, last))
    });
    runner()
        .run(&strategy, |(x, c, keep)| {
            check("add-public", &graph(Op::AddPublic(c.clone()), &x.shape, None), &x, &|_| EXACT)?;
            let keep =
                FloatTensor::new(vec![keep.len()], keep.iter().map(|&k| f64::from(k)).collect()).unwrap();
            check("select", &graph(Op::Select { keep, fill: c }, &x.shape, None), &x, &|_| EXACT)
        })
        .unwrap();
}

#[test]
fn moves_and_axis_maps_match_f64() {
    let strategy = shape().prop_flat_map(|s| {
        let n: usize = s.iter().product();
        let last = *s.last().unwrap();
        (
            tensor(&s, 1000.0),
            prop::collection::vec(0..n, 1..2 * n + 1),
            prop::collection::vec(-8i64..9, 3 * last),
            prop::collection::vec(-64i64..65, 2 * last),
        )
    });
    runner()
        .run(&strategy, |(x, idx, ints, fracs)| {
            let take = Op::Take { indices: idx.clone(), shape: vec![idx.len()] };
            check("take", &graph(take, &x.shape, None), &x, &|_| EXACT)?;
            let last = *x.shape.last().unwrap();
            let m = FloatTensor::new(vec![3, last], ints.iter().map(|&v| v as f64).collect()).unwrap();
            check(
                "axis-map-integer",
                &graph(Op::AxisMap { axis: -1, matrix: m }, &x.shape, None),
                &x,
                &|_| 1e-2,
            )?;
            let m =
                FloatTensor::new(vec![2, last], fracs.iter().map(|&v| v as f64 / 64.0).collect()).unwrap();
            check("axis-map", &graph(Op::AxisMap { axis: -1, matrix: m }, &x.shape, None), &x, &|y: f64| {
                1e-3 + 1e-6 * y.abs()
            })
        })
        .unwrap();
}

/// The f64 evaluator and the secure executor agree on Flatten's axis: in range they give the
/// same shape, out of range both refuse (the f64 evaluator used to clamp the axis).
#[test]
fn flatten_axis_rule_is_the_same_in_both_interpreters() {
    let x = FloatTensor::new(vec![2, 3, 4], (0..24).map(f64::from).collect()).unwrap();
    for axis in [-3i64, -1, 0, 2, 3] {
        let g = graph(Op::Flatten(axis), &x.shape, None);
        check(&format!("flatten {axis}"), &g, &x, &|_| 0.0).unwrap();
    }
    for axis in [-4i64, 4, -9] {
        let g = graph(Op::Flatten(axis), &x.shape, None);
        assert!(eval_f64(&g, &x).is_err(), "f64 accepts axis {axis}");
        let secure = run(
            &mut Plain,
            &g,
            FP,
            Owners { model: 0, data: 0, output: 0 },
            Some(&x),
            &x.shape,
            &mut |_, _, _| {},
        );
        assert!(secure.is_err(), "the executor accepts axis {axis}");
    }
}
