//! Every function of musket-nn on the plaintext oracle and both back ends, against f64.

mod common;
use common::*;
use musket_core::{reveal_fixed, share_fixed, MpcError, Protocol};
use musket_nn::*;
use musket_session::Job;
use rand::{Rng, SeedableRng};

fn round(v: f64) -> f64 {
    FP.decode_one(FP.encode_one(v).unwrap())
}

/// Applies a one-input function to shared `x` and reveals the result as f64.
struct Unary {
    x: Vec<f64>,
    shape: Vec<usize>,
    which: &'static str,
}

impl Job for Unary {
    type Output = Vec<f64>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Vec<f64>, MpcError> {
        let x = share_fixed(p, FP, 0, owned(p, 0, &self.x[..]), &self.shape)?;
        let y = match self.which {
            "relu" => relu(p, &x)?,
            "abs" => abs(p, &x)?,
            "relu6" => relu6(p, FP, &x)?,
            "clip" => clip(p, FP, &x, -1.5, 2.25)?,
            "leaky" => leaky_relu(p, FP, &x, 0.1)?,
            "exp" => exp(p, FP, &x)?,
            "reciprocal" => reciprocal(p, FP, &x)?,
            "sigmoid" => sigmoid(p, FP, &x)?,
            "tanh" => tanh(p, FP, &x)?,
            "softmax" => softmax(p, FP, &x, 1)?,
            "max_along" => max_along(p, &x, 1)?,
            "min_along" => min_along(p, &x, 1)?,
            "argmax_index" => {
                let a = argmax_index(p, &x, 1)?;
                p.scale(&a, FP.one())?
            }
            "div3" => div_public(p, FP, &x, 3.0)?,
            "log" => log(p, FP, &x)?,
            "erf" => erf(p, FP, &x)?,
            "gelu" => gelu(p, FP, &x)?,
            "log_softmax" => log_softmax(p, FP, &x, 1)?,
            "sqrt" => sqrt(p, FP, &x)?,
            "inv_sqrt" => inv_sqrt(p, FP, &x)?,
            // integer-valued results, made fixed point for decoding
            "sign" => {
                let s = sign(p, &x)?;
                p.scale(&s, FP.one())?
            }
            "argmax" => {
                let a = argmax_onehot(p, &x, 1)?;
                p.scale(&a, FP.one())?
            }
            other => panic!("unknown function {other}"),
        };
        reveal_fixed(p, FP, &y)
    }
}

fn unary(which: &'static str, x: Vec<f64>, shape: Vec<usize>) -> Vec<(&'static str, Vec<f64>)> {
    everywhere(&Unary { x, shape, which })
}

fn check(
    which: &'static str,
    x: &[f64],
    shape: Vec<usize>,
    exact: impl Fn(usize) -> f64,
    tol: impl Fn(f64) -> f64,
) {
    for (name, got) in unary(which, x.to_vec(), shape) {
        for i in 0..got.len() {
            let want = exact(i);
            assert!(
                (got[i] - want).abs() <= tol(want),
                "{name} {which}: element {i} (input {:?}) gave {} want {want}",
                x.get(i),
                got[i]
            );
        }
    }
}

fn target(v: f64) -> f64 {
    (1e-3 * v.abs()).max(2f64.powi(-12))
}

fn samples(lo: f64, hi: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v: Vec<f64> = vec![lo, hi, (lo + hi) / 2.0];
    v.extend((0..n).map(|_| round(rng.gen_range(lo..hi))));
    v
}

#[test]
fn exact_piecewise_functions() {
    let mut x = samples(-50.0, 50.0, 300, 1);
    x.extend([0.0, -0.0, 6.0, -1.5, 2.25, FP.ulp(), -FP.ulp(), 1e6, -1e6]);
    let n = x.len();
    let x: Vec<f64> = x.iter().map(|&v| round(v)).collect();
    check("relu", &x, vec![n], |i| x[i].max(0.0), |_| 0.0);
    check("abs", &x, vec![n], |i| x[i].abs(), |_| 0.0);
    check("relu6", &x, vec![n], |i| x[i].clamp(0.0, 6.0), |_| 0.0);
    check("clip", &x, vec![n], |i| x[i].clamp(-1.5, 2.25), |_| 0.0);
    check("sign", &x, vec![n], |i| if x[i] < 0.0 { -1.0 } else { 1.0 }, |_| 0.0);
    // Documented bound for a public constant: |x| 2^-(f+1) (rounding the constant) + 1 ulp.
    let half_ulp = FP.ulp() / 2.0;
    check(
        "leaky",
        &x,
        vec![n],
        |i| if x[i] >= 0.0 { x[i] } else { 0.1 * x[i] },
        |v| 10.0 * v.abs() * half_ulp + FP.ulp(),
    );
    check("div3", &x, vec![n], |i| x[i] / 3.0, |v| 3.0 * v.abs() * half_ulp + FP.ulp());
}

#[test]
fn max_and_argmax_along_an_axis_with_ties_and_negatives() {
    // Rows: random, all equal, all negative, a tie for the maximum, a single large value.
    let mut rows: Vec<Vec<f64>> = vec![samples(-9.0, 9.0, 4, 2)];
    rows.push(vec![2.5; 7]);
    rows.push(vec![-3.0, -1.0, -7.0, -1.0, -2.0, -9.0, -4.0]);
    rows.push(vec![1.0, 5.0, 2.0, 5.0, 0.0, 5.0, -1.0]);
    rows.push(vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1000.0]);
    let x: Vec<f64> = rows.iter().flatten().copied().collect();
    let shape = vec![rows.len(), 7];
    let maxes: Vec<f64> = rows.iter().map(|r| r.iter().copied().fold(f64::MIN, f64::max)).collect();
    check("max_along", &x, shape.clone(), |i| maxes[i], |_| 0.0);
    let first_max: Vec<usize> = rows
        .iter()
        .map(|r| r.iter().position(|&v| v == r.iter().copied().fold(f64::MIN, f64::max)).unwrap())
        .collect();
    check("argmax", &x, shape.clone(), |i| (i % 7 == first_max[i / 7]) as u8 as f64, |_| 0.0);
    check("argmax_index", &x, shape.clone(), |i| first_max[i] as f64, |_| 0.0);
    let mins: Vec<f64> = rows.iter().map(|r| r.iter().copied().fold(f64::MAX, f64::min)).collect();
    check("min_along", &x, shape, |i| mins[i], |_| 0.0);
}

#[test]
fn exp_on_its_domain() {
    let (lo, hi) = EXP_DOMAIN;
    let mut x = samples(lo, hi, 400, 3);
    x.extend([0.0, -16.0, 16.0, -4.0, 4.0, 1.0, -1.0, -20.0, -63.9]);
    let n = x.len();
    check("exp", &x, vec![n], |i| x[i].exp(), target);
}

#[test]
fn reciprocal_on_its_domain_including_the_small_edge() {
    let (lo, hi) = RECIPROCAL_DOMAIN;
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    // Log-uniform samples, plus the edges and exact powers of two.
    let mut x: Vec<f64> = (0..300).map(|_| round(2f64.powf(rng.gen_range(lo.log2()..hi.log2())))).collect();
    x.extend([lo, lo * 1.01, 0.5, 1.0, 2.0, 3.0, 1000.0, hi - 1.0, 0.75, 50.0]);
    let x: Vec<f64> = x.iter().map(|&v| round(v)).collect();
    let n = x.len();
    check("reciprocal", &x, vec![n], |i| 1.0 / x[i], target);
    // Below the domain (zero and negatives) the documented result is 0.
    check("reciprocal", &[0.0, -2.0, 0.0001], vec![3], |_| 0.0, |_| 2.0 * FP.ulp());
}

#[test]
fn sigmoid_and_tanh() {
    let mut x = samples(-64.0, 64.0, 300, 5);
    x.extend([0.0, 1e-4, -1e-4, 8.0, -8.0, 30.0, -30.0]);
    let n = x.len();
    check("sigmoid", &x, vec![n], |i| 1.0 / (1.0 + (-x[i]).exp()), |_| 2f64.powi(-12));
    let x: Vec<f64> = x.iter().map(|v| v / 2.0).map(round).collect();
    check("tanh", &x, vec![n], |i| x[i].tanh(), |_| 2f64.powi(-11));
}

#[test]
fn softmax_rows_including_equal_inputs_and_wide_spreads() {
    let mut rows: Vec<Vec<f64>> = vec![vec![0.0; 10], vec![3.0; 10]];
    rows.push(samples(-4.0, 4.0, 7, 6));
    rows.push((0..10).map(|i| -6.4 * i as f64).collect()); // spread 57.6
    rows.push(vec![10.0, -50.0, 9.5, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let x: Vec<f64> = rows.iter().flatten().copied().collect();
    let want: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let m = r.iter().copied().fold(f64::MIN, f64::max);
            let s: f64 = r.iter().map(|v| (v - m).exp()).sum();
            r.iter().map(move |v| (v - m).exp() / s).collect::<Vec<_>>()
        })
        .collect();
    check("softmax", &x, vec![rows.len(), 10], |i| want[i], |_| 2f64.powi(-12));
}

fn log_uniform(lo: f64, hi: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x: Vec<f64> = (0..n).map(|_| 2f64.powf(rng.gen_range(lo.log2()..hi.log2()))).collect();
    x.extend([lo, lo * 1.01, 0.5, 1.0, 2.0, 0.75, 0.1, 100.0, hi - 1.0]);
    x.iter().map(|&v| round(v)).collect()
}

#[test]
fn log_sqrt_and_inverse_sqrt_on_their_domain() {
    let (lo, hi) = NORMALIZED_DOMAIN;
    let x = log_uniform(lo, hi, 300, 7);
    let n = x.len();
    check("log", &x, vec![n], |i| x[i].ln(), target);
    check("sqrt", &x, vec![n], |i| x[i].sqrt(), target);
    check("inv_sqrt", &x, vec![n], |i| 1.0 / x[i].sqrt(), target);
    // The domain's top edge itself (a softmax denominator over 16384 equal entries: bit f+14
    // set, every bit the powers look at clear) must land in the top class, not wrap to 0.
    let edge = [hi, hi + 1.0];
    check("log", &edge, vec![2], |i| edge[i].ln(), target);
    check("sqrt", &edge, vec![2], |i| edge[i].sqrt(), target);
    check("reciprocal", &edge, vec![2], |i| 1.0 / edge[i], target);
}

#[test]
fn erf_and_gelu() {
    let mut x = samples(-8.0, 8.0, 300, 8);
    x.extend([0.0, 5.0, -5.0, 5.01, -5.01, 100.0, -100.0, 0.5, -0.5]);
    let x: Vec<f64> = x.iter().map(|&v| round(v)).collect();
    let n = x.len();
    check("erf", &x, vec![n], |i| musket_nn::reference::erf(x[i]), |_| 2f64.powi(-12));
    check(
        "gelu",
        &x,
        vec![n],
        |i| 0.5 * x[i] * (1.0 + musket_nn::reference::erf(x[i] / 2f64.sqrt())),
        |v| v.abs() * 2f64.powi(-13) + 2f64.powi(-12),
    );
}

#[test]
fn log_softmax_rows() {
    let mut rows: Vec<Vec<f64>> = vec![vec![0.0; 10], samples(-4.0, 4.0, 7, 9)];
    rows.push((0..10).map(|i| -6.0 * i as f64).collect());
    let x: Vec<f64> = rows.iter().flatten().copied().collect();
    let want: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let m = r.iter().copied().fold(f64::MIN, f64::max);
            let s: f64 = r.iter().map(|v| (v - m).exp()).sum();
            r.iter().map(move |v| v - m - s.ln()).collect::<Vec<_>>()
        })
        .collect();
    check("log_softmax", &x, vec![rows.len(), 10], |i| want[i], |_| 2f64.powi(-11));
}
