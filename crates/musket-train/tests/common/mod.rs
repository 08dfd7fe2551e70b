//! Small models built by hand for the training tests.
#![allow(dead_code, missing_docs, unreachable_pub)]

use musket_core::{share_fixed, MpcError, Protocol};
use musket_graph::{FloatTensor, Graph, Node, Op};
use musket_nn::{Conv2d, Pool2d};
use musket_ring::FixedPoint;
use musket_train::TrainPlan;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

pub fn random(r: &mut impl Rng, shape: &[usize], scale: f64) -> FloatTensor {
    let n = shape.iter().product();
    FloatTensor::new(shape.to_vec(), (0..n).map(|_| r.gen_range(-scale..scale)).collect()).unwrap()
}

/// Builds a graph: `weights` are (name, tensor); `nodes` are (op, input ids); the output is
/// the last node's.
pub fn graph(input: &[usize], weights: Vec<(&str, FloatTensor)>, nodes: Vec<(Op, Vec<usize>)>) -> Graph {
    let w = weights.len();
    let nodes: Vec<Node> = nodes
        .into_iter()
        .enumerate()
        .map(|(k, (op, inputs))| Node {
            name: format!("n{k}"),
            op_type: format!("{op:?}").split(|c: char| !c.is_alphanumeric()).next().unwrap().to_string(),
            op,
            inputs,
            output: 1 + w + k,
        })
        .collect();
    Graph {
        input_name: "x".into(),
        input_shape: input.iter().map(|&d| Some(d)).collect(),
        weights: weights.into_iter().map(|(n, t)| (n.to_string(), t)).collect(),
        output: nodes.last().unwrap().output,
        nodes,
        ids: None,
    }
}

fn gemm() -> Op {
    Op::Gemm { trans_a: false, trans_b: true, alpha: 1.0, beta: 1.0 }
}

/// Logistic regression `sigmoid(x w^T + b)`: input [batch, features].
pub fn logistic(r: &mut impl Rng, batch: usize, features: usize) -> Graph {
    graph(
        &[batch, features],
        vec![("w", random(r, &[1, features], 0.3)), ("b", random(r, &[1], 0.3))],
        vec![(gemm(), vec![0, 1, 2]), (Op::Sigmoid, vec![3])],
    )
}

/// MLP `gemm, relu, gemm` to `classes` logits.
pub fn mlp(r: &mut impl Rng, batch: usize, features: usize, hidden: usize, classes: usize) -> Graph {
    graph(
        &[batch, features],
        vec![
            ("w1", random(r, &[hidden, features], 0.5)),
            ("b1", random(r, &[hidden], 0.2)),
            ("w2", random(r, &[classes, hidden], 0.5)),
            ("b2", random(r, &[classes], 0.2)),
        ],
        vec![(gemm(), vec![0, 1, 2]), (Op::Relu, vec![5]), (gemm(), vec![6, 3, 4])],
    )
}

/// CNN: conv 3x3 (pad 1, stride `stride`), relu, max-pool 2, flatten, gemm.
pub fn cnn(r: &mut impl Rng, batch: usize, side: usize, stride: usize, classes: usize) -> Graph {
    let out = (side + 2 - 3) / stride + 1;
    let pooled = out / 2;
    graph(
        &[batch, 1, side, side],
        vec![
            ("cw", random(r, &[3, 1, 3, 3], 0.5)),
            ("cb", random(r, &[3], 0.2)),
            ("fw", random(r, &[classes, 3 * pooled * pooled], 0.4)),
            ("fb", random(r, &[classes], 0.2)),
        ],
        vec![
            (
                Op::Conv {
                    geometry: Conv2d { stride: [stride, stride], pads: [1; 4], ..Conv2d::default() },
                    same: None,
                },
                vec![0, 1, 2],
            ),
            (Op::Relu, vec![5]),
            (Op::MaxPool { pool: Pool2d::new([2, 2], [2, 2], [0; 4]), same: None }, vec![6]),
            (Op::Flatten(1), vec![7]),
            (gemm(), vec![8, 3, 4]),
        ],
    )
}

/// The remaining ops: MatMul + Add bias, Tanh, Mul by a weight, Sub, MulConst, AddConst,
/// Transpose twice, average pools, log-softmax. Input [batch, 1, 4, 4].
pub fn assorted(r: &mut impl Rng, batch: usize) -> Graph {
    graph(
        &[batch, 1, 4, 4],
        vec![
            ("scale", random(r, &[1, 1, 1, 4], 0.8)),
            ("shift", random(r, &[4], 0.3)),
            ("m", random(r, &[2, 3], 0.6)),
            ("mb", random(r, &[3], 0.2)),
        ],
        vec![
            (Op::Mul, vec![0, 1]), // 5
            (Op::Sub, vec![5, 2]), // 6
            (Op::Tanh, vec![6]),   // 7
            (
                Op::AveragePool {
                    pool: Pool2d::new([2, 2], [1, 1], [1, 1, 0, 0]),
                    same: None,
                    count_include_pad: false,
                },
                vec![7],
            ), // 8: [b,1,4,4]
            (Op::MulConst(1.5), vec![8]), // 9
            (Op::AddConst(0.25), vec![9]), // 10
            (Op::Transpose(vec![0, 1, 3, 2]), vec![10]), // 11
            (Op::GlobalAveragePool, vec![11]), // 12 [b,1,1,1]
            (Op::Add, vec![11, 12]), // 13 [b,1,4,4]
            (Op::Reshape(vec![batch as i64 * 8, 2]), vec![13]), // 14 [8b, 2]
            (Op::MatMul, vec![14, 3]), // 15 [8b, 3]
            (Op::Add, vec![15, 4]), // 16
            (Op::Softmax { axis: -1, flatten: false, log: true }, vec![16]), // 17
            (Op::Softmax { axis: 1, flatten: false, log: false }, vec![17]), // 18
            (Op::Sigmoid, vec![18]), // 19
            (Op::Reshape(vec![batch as i64, 24]), vec![19]), // 20
        ],
    )
}

/// The weights, data and labels as shares.
pub type Shared<P> = (Vec<<P as Protocol>::Share>, <P as Protocol>::Share, <P as Protocol>::Share);

/// Shares the plan's weights (party 0's) and `x`, `y` (party 1's); on `Plain` (one party) the
/// values are given for both.
pub fn share_inputs<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    plan: &TrainPlan,
    x: &FloatTensor,
    y: &FloatTensor,
) -> Result<Shared<P>, MpcError> {
    let me = p.party_id();
    let plain = p.compute_parties() == 1;
    let mut ws = Vec::new();
    for (_, t) in &plan.graph.weights {
        ws.push(share_fixed(p, fp, 0, (me == 0 || plain).then_some(&t.data[..]), &t.shape)?);
    }
    let xs = share_fixed(p, fp, 1, (me == 1 || plain).then_some(&x.data[..]), &x.shape)?;
    let ys = share_fixed(p, fp, 1, (me == 1 || plain).then_some(&y.data[..]), &y.shape)?;
    Ok((ws, xs, ys))
}
