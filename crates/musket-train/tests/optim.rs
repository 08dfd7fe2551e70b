//! The optimisers: the training loop's Adam against the documented formula applied by hand to
//! the f64 gradients, SGD with momentum likewise, and the secure runs against f64.

mod common;

use common::*;
use musket_core::{MpcError, Protocol};
use musket_graph::FloatTensor;
use musket_ring::FixedPoint;
use musket_session::{run_local, Backend, Job};
use musket_train::{
    gradients, train, Adam, FloatCalc, Loss, Optimizer, SecureCalc, TrainConfig, TrainPlan, ADAM_FLOOR,
};

fn config(optimizer: Optimizer, batch: usize, epochs: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        lr,
        optimizer,
        batch_size: batch,
        shuffle: None,
        report_loss: false,
        model_owner: 0,
    }
}

fn rows(t: &FloatTensor, from: usize, to: usize) -> FloatTensor {
    let per: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = to - from;
    FloatTensor::new(shape, t.data[from * per..to * per].to_vec()).unwrap()
}

fn setup() -> (TrainPlan, FloatTensor, FloatTensor) {
    let mut r = rng(11);
    let plan = TrainPlan::new(mlp(&mut r, 4, 5, 6, 3), Loss::CrossEntropy, vec![true; 4]).unwrap();
    let x = random(&mut r, &[12, 5], 2.0);
    let mut y = vec![0.0; 36];
    for i in 0..12 {
        y[i * 3 + i % 3] = 1.0;
    }
    (plan, x, FloatTensor::new(vec![12, 3], y).unwrap())
}

#[test]
fn adam_and_momentum_follow_their_formulas() {
    let (plan, x, y) = setup();
    let initial: Vec<FloatTensor> = plan.graph.weights.iter().map(|(_, t)| t.clone()).collect();
    let plans = [(4, &plan)];
    let a = Adam::default();
    let (lr, s) = (0.05, 0.25);
    for optimizer in [Optimizer::Adam(a), Optimizer::Sgd { momentum: 0.9 }] {
        let got =
            train(&mut FloatCalc, &plans, initial.clone(), &x, &y, &config(optimizer, 4, 2, lr), &mut |_| {})
                .unwrap()
                .weights;
        // By hand: the documented update on the gradients of each batch in turn.
        let mut w = initial.clone();
        let mut m: Vec<Vec<f64>> = w.iter().map(|t| vec![0.0; t.data.len()]).collect();
        let mut v = m.clone();
        let mut t = 0;
        for _ in 0..2 {
            for b in 0..3 {
                t += 1;
                let g = gradients(
                    &mut FloatCalc,
                    &plan,
                    &w,
                    rows(&x, 4 * b, 4 * b + 4),
                    &rows(&y, 4 * b, 4 * b + 4),
                )
                .unwrap();
                for (i, gi) in g.iter().enumerate() {
                    let gi = gi.as_ref().unwrap();
                    for e in 0..gi.data.len() {
                        let grad = gi.data[e];
                        w[i].data[e] -= match optimizer {
                            Optimizer::Adam(a) => {
                                m[i][e] = a.beta1 * m[i][e] + (1.0 - a.beta1) * grad;
                                v[i][e] = a.beta2 * v[i][e] + (1.0 - a.beta2) * grad * grad;
                                let mh = m[i][e] / (1.0 - a.beta1.powi(t));
                                let vh = v[i][e] / (1.0 - a.beta2.powi(t));
                                lr * mh / (vh + (a.eps / s).powi(2).max(ADAM_FLOOR)).sqrt()
                            }
                            Optimizer::Sgd { momentum } => {
                                m[i][e] = if t == 1 { grad } else { momentum * m[i][e] + grad };
                                lr * s * m[i][e]
                            }
                        };
                    }
                }
            }
        }
        for (a, b) in got.iter().zip(&w) {
            for (x, y) in a.data.iter().zip(&b.data) {
                assert!((x - y).abs() < 1e-9, "{optimizer:?}: {x} vs {y}");
            }
        }
    }
}

struct SecureTraining<'a> {
    plan: &'a TrainPlan,
    x: &'a FloatTensor,
    y: &'a FloatTensor,
    optimizer: Optimizer,
}

impl Job for SecureTraining<'_> {
    type Output = Vec<Vec<f64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Vec<Vec<f64>>, MpcError> {
        let fp = FixedPoint::new(16);
        let (ws, x, y) = share_inputs(p, fp, self.plan, self.x, self.y)?;
        let plans = [(4, self.plan)];
        let cfg = config(self.optimizer, 4, 2, 0.05);
        let trained = train(&mut SecureCalc::new(p, fp), &plans, ws, &x, &y, &cfg, &mut |_| {})?;
        trained.weights.iter().map(|w| Ok(fp.decode(p.reveal(w)?.data()))).collect()
    }
}

#[test]
fn secure_optimisers_match_f64() {
    let (plan, x, y) = setup();
    let initial: Vec<FloatTensor> = plan.graph.weights.iter().map(|(_, t)| t.clone()).collect();
    for optimizer in [Optimizer::Adam(Adam::default()), Optimizer::Sgd { momentum: 0.9 }] {
        let want = train(
            &mut FloatCalc,
            &[(4, &plan)],
            initial.clone(),
            &x,
            &y,
            &config(optimizer, 4, 2, 0.05),
            &mut |_| {},
        )
        .unwrap()
        .weights;
        for backend in [Backend::TwoPc, Backend::ThreePc] {
            let job = SecureTraining { plan: &plan, x: &x, y: &y, optimizer };
            let got = run_local(backend, &job, None).unwrap().into_iter().find_map(|o| o.output).unwrap();
            for (a, b) in want.iter().zip(&got) {
                let d = a.data.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                // Six steps of 0.05 (Adam's normalised steps move each weight by up to 0.3):
                // measured at most 3.1e-4.
                assert!(d < 1e-3, "{optimizer:?} on {backend:?}: weights off by {d}");
            }
        }
    }
}
