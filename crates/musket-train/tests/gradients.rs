//! Every backward pass against finite differences of the f64 loss, the training forward pass
//! against the inference f64 evaluator, and the secure gradients (Plain, 2PC, 3PC) against
//! the f64 ones.

mod common;

use common::*;
use musket_core::{MpcError, Plain, Protocol};
use musket_graph::{eval_f64, FloatTensor, Graph};
use musket_ring::FixedPoint;
use musket_session::{run_local, Backend, Job};
use musket_train::{gradients, loss, FloatCalc, Loss, SecureCalc, TrainPlan};
use rand::Rng;

fn labels(r: &mut impl Rng, loss: Loss, shape: &[usize]) -> FloatTensor {
    let n: usize = shape.iter().product();
    match loss {
        Loss::CrossEntropy => {
            let (rows, k) = (shape[0], shape[1]);
            let mut d = vec![0.0; n];
            for row in 0..rows {
                d[row * k + r.gen_range(0..k)] = 1.0;
            }
            FloatTensor::new(shape.to_vec(), d).unwrap()
        }
        Loss::Bce => {
            FloatTensor::new(shape.to_vec(), (0..n).map(|_| r.gen_range(0..2) as f64).collect()).unwrap()
        }
        Loss::Mse => random(r, shape, 1.0),
    }
}

fn plan(g: Graph, loss: Loss) -> TrainPlan {
    let n = g.weights.len();
    TrainPlan::new(g, loss, vec![true; n]).unwrap()
}

fn weights(plan: &TrainPlan) -> Vec<FloatTensor> {
    plan.graph.weights.iter().map(|(_, t)| t.clone()).collect()
}

fn output_shape(plan: &TrainPlan, x: &FloatTensor) -> Vec<usize> {
    eval_f64(&plan.graph, x).unwrap().output.shape
}

/// Central differences of the summed loss for a sample of each weight's elements.
fn check_fd(plan: &TrainPlan, x: &FloatTensor, y: &FloatTensor) {
    let w = weights(plan);
    let g = gradients(&mut FloatCalc, plan, &w, x.clone(), y).unwrap();
    // MSE's gradient flows as (o - y); the factor 2 is applied with the mean at the update.
    let factor = if plan.loss == Loss::Mse { 2.0 } else { 1.0 };
    let eps = 1e-6;
    for (i, gi) in g.iter().enumerate() {
        let gi = gi.as_ref().expect("every weight is trained");
        for e in (0..w[i].data.len()).step_by((w[i].data.len() / 7).max(1)) {
            let mut plus = w.clone();
            plus[i].data[e] += eps;
            let mut minus = w.clone();
            minus[i].data[e] -= eps;
            let lp = loss(&mut FloatCalc, plan, &plus, x.clone(), y).unwrap().data[0];
            let lm = loss(&mut FloatCalc, plan, &minus, x.clone(), y).unwrap().data[0];
            let fd = (lp - lm) / (2.0 * eps);
            let an = factor * gi.data[e];
            assert!(
                (fd - an).abs() <= 1e-5 * (1.0 + fd.abs()),
                "weight {} element {e}: finite difference {fd}, backward {an}",
                plan.graph.weights[i].0
            );
        }
    }
}

fn cases() -> Vec<(&'static str, TrainPlan, FloatTensor, FloatTensor)> {
    let mut r = rng(7);
    let mut out = Vec::new();
    let lr = plan(logistic(&mut r, 6, 5), Loss::Bce);
    let mlp_ce = plan(mlp(&mut r, 5, 6, 4, 3), Loss::CrossEntropy);
    let mlp_mse = plan(mlp(&mut r, 5, 6, 4, 2), Loss::Mse);
    let cnn1 = plan(cnn(&mut r, 3, 6, 1, 3), Loss::CrossEntropy);
    let cnn2 = plan(cnn(&mut r, 2, 7, 2, 2), Loss::CrossEntropy);
    let other = plan(assorted(&mut r, 2), Loss::Mse);
    for (name, p) in [
        ("logistic", lr),
        ("mlp-ce", mlp_ce),
        ("mlp-mse", mlp_mse),
        ("cnn", cnn1),
        ("cnn-stride2", cnn2),
        ("assorted", other),
    ] {
        let shape: Vec<usize> = p.graph.input_shape.iter().map(|d| d.unwrap()).collect();
        let x = random(&mut r, &shape, 2.0);
        let ys = output_shape(&p, &x);
        let y = labels(&mut r, p.loss, &ys);
        out.push((name, p, x, y));
    }
    out
}

#[test]
fn backward_passes_match_finite_differences() {
    for (name, p, x, y) in cases() {
        eprintln!("{name}");
        check_fd(&p, &x, &y);
    }
}

#[test]
fn training_forward_matches_the_inference_evaluator() {
    // The training ops and musket_graph's f64 evaluator are separate definitions of the
    // forward pass; they must agree.
    for (name, p, x, y) in cases() {
        let reference = eval_f64(&p.graph, &x).unwrap().output;
        let w = weights(&p);
        // With MSE the summed loss against y = 0 is the sum of squares of the output.
        let zero = FloatTensor::new(reference.shape.clone(), vec![0.0; reference.data.len()]).unwrap();
        let q = TrainPlan::new(p.graph.clone(), Loss::Mse, p.trainable.clone()).unwrap();
        let l = loss(&mut FloatCalc, &q, &w, x.clone(), &zero).unwrap().data[0];
        let expect: f64 = reference.data.iter().map(|v| v * v).sum();
        assert!((l - expect).abs() < 1e-9 * (1.0 + expect), "{name}: {l} vs {expect}");
        let _ = y;
    }
}

fn max_diff(a: &FloatTensor, b: &[f64]) -> f64 {
    a.data.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

struct SecureGradients<'a> {
    plan: &'a TrainPlan,
    x: &'a FloatTensor,
    y: &'a FloatTensor,
    fp: FixedPoint,
}

impl Job for SecureGradients<'_> {
    type Output = Vec<Vec<f64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Vec<Vec<f64>>, MpcError> {
        let (ws, x, y) = share_inputs(p, self.fp, self.plan, self.x, self.y)?;
        let g = gradients(&mut SecureCalc::new(p, self.fp), self.plan, &ws, x, &y)?;
        let mut out = Vec::new();
        for gi in g.iter().flatten() {
            out.push(self.fp.decode(p.reveal(gi)?.data()));
        }
        Ok(out)
    }
}

#[test]
fn secure_gradients_match_f64_on_every_back_end() {
    let fp = FixedPoint::new(16);
    for (name, p, x, y) in cases() {
        let reference = gradients(&mut FloatCalc, &p, &weights(&p), x.clone(), &y).unwrap();
        let job = SecureGradients { plan: &p, x: &x, y: &y, fp };
        let plain = job.run(&mut Plain).unwrap();
        let mut runs = vec![("plain", plain)];
        for backend in [Backend::TwoPc, Backend::ThreePc] {
            let outs = run_local(backend, &job, None).unwrap();
            runs.push((backend.name(), outs.into_iter().find_map(|o| o.output).unwrap()));
        }
        for (which, got) in runs {
            for (k, (r, g)) in reference.iter().flatten().zip(&got).enumerate() {
                let scale = r.data.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                let d = max_diff(r, g);
                // Fixed-point rounding and the approximations' stated bounds (softmax, sigmoid,
                // tanh within 2^-11), summed over the batch: measured at most 6.3e-4 of the scale.
                assert!(d <= 0.005 * scale, "{name} on {which}: gradient {k} off by {d} (scale {scale})");
            }
        }
    }
}

#[test]
fn unsupported_ops_are_refused_by_name() {
    let mut r = rng(1);
    let mut g = mlp(&mut r, 2, 3, 4, 2);
    g.nodes[1].op = musket_graph::Op::Erf;
    g.nodes[1].name = "the_erf".into();
    let err = TrainPlan::new(g, Loss::CrossEntropy, vec![true; 4]).unwrap_err().to_string();
    assert!(err.contains("the_erf") && err.contains("Erf"), "{err}");
    let g = mlp(&mut r, 2, 3, 4, 2);
    let err = TrainPlan::new(g, Loss::Bce, vec![true; 4]).unwrap_err().to_string();
    assert!(err.contains("Sigmoid"), "{err}");
}
