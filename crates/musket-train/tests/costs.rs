//! Rounds and bytes of one training step, exact and pinned (as the function costs of
//! musket-nn are): a logistic-regression step and an MLP step on both back ends.

mod common;

use common::*;
use musket_core::{MpcError, Protocol};
use musket_graph::FloatTensor;
use musket_net::CommStats;
use musket_ring::FixedPoint;
use musket_session::{run_local, Backend, Job};
use musket_train::{train, Loss, SecureCalc, TrainConfig, TrainPlan};

struct Step<'a> {
    plan: &'a TrainPlan,
    x: FloatTensor,
    y: FloatTensor,
}

impl Job for Step<'_> {
    type Output = CommStats;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<CommStats, MpcError> {
        let fp = FixedPoint::new(16);
        let (ws, x, y) = share_inputs(p, fp, self.plan, &self.x, &self.y)?;
        let config = TrainConfig {
            epochs: 1,
            lr: 0.1,
            optimizer: musket_train::Optimizer::Sgd { momentum: 0.0 },
            batch_size: self.x.shape[0],
            shuffle: None,
            report_loss: false,
            model_owner: 0,
        };
        let plans = [(self.x.shape[0], self.plan)];
        let trained = train(&mut SecureCalc::new(p, fp), &plans, ws, &x, &y, &config, &mut |_| {})?;
        let e = &trained.epochs[0];
        Ok(CommStats { rounds: e.rounds, bytes_sent: e.bytes_sent, ..Default::default() })
    }
}

fn measure(backend: Backend, step: &Step<'_>) -> (u64, Vec<u64>) {
    let outs: Vec<CommStats> =
        run_local(backend, step, None).unwrap().into_iter().filter_map(|o| o.output).collect();
    (outs.iter().map(|s| s.rounds).max().unwrap(), outs.iter().map(|s| s.bytes_sent).collect())
}

#[test]
fn pinned_training_step_costs() {
    let mut r = rng(3);
    let lr = TrainPlan::new(logistic(&mut r, 100, 10), Loss::Bce, vec![true; 2]).unwrap();
    let lr_step = Step {
        plan: &lr,
        x: random(&mut r, &[100, 10], 1.0),
        y: FloatTensor::new(vec![100, 1], vec![1.0; 100]).unwrap(),
    };
    let mlp = TrainPlan::new(mlp(&mut r, 32, 64, 32, 10), Loss::CrossEntropy, vec![true; 4]).unwrap();
    let mut onehot = vec![0.0; 320];
    for i in 0..32 {
        onehot[i * 10 + i % 10] = 1.0;
    }
    let mlp_step = Step {
        plan: &mlp,
        x: random(&mut r, &[32, 64], 1.0),
        y: FloatTensor::new(vec![32, 10], onehot).unwrap(),
    };
    // Logistic regression: matmul (1) + truncation, sigmoid (19 in 2PC, 22 in 3PC), the
    // gradient's matmul + truncation, the update's truncation: 2 + 19 + 2 + 1 = 24 in 2PC,
    // in 3PC the products and their truncations are fused: 2 + 22 + 2 + 2 = 28, and one more
    // since every party now sends in both rounds of a truncation (the rotating helper), so it
    // no longer overlaps a neighbouring step. The MLP step is dominated by the loss's softmax
    // (78 and 90 rounds on its own). 3PC bytes fell 4-5% in the fifteenth session (no message
    // for a party's zero terms in conversions' products and sign circuits' generate layers).
    // (case, backend, rounds, bytes sent per compute party, the 2PC dealer's included)
    let expected: &[(&str, Backend, u64, &[u64])] = &[
        ("logistic", Backend::TwoPc, 24, &[56680, 56368]),
        ("logistic", Backend::ThreePc, 29, &[25160, 25040, 25112]),
        ("mlp", Backend::TwoPc, 97, &[311209, 310120]),
        ("mlp", Backend::ThreePc, 115, &[248232, 248664, 247912]),
    ];
    let mut wrong = Vec::new();
    for &(case, backend, rounds, bytes) in expected {
        let step = if case == "logistic" { &lr_step } else { &mlp_step };
        let (r, b) = measure(backend, step);
        if (r, b.as_slice()) != (rounds, bytes) {
            wrong.push(format!("(\"{case}\", Backend::{backend:?}, {r}, &{b:?}),"));
        }
    }
    assert!(wrong.is_empty(), "costs changed; if deliberate, update the table:\n{}", wrong.join("\n"));
}
