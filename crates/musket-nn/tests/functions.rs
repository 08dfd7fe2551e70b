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
            "relu_bounded" => relu_bounded(p, FP, &x)?,
            "relu6_bounded" => clip_bounded(p, FP, &x, 0.0, 6.0)?,
            "leaky_bounded" => leaky_relu_bounded(p, FP, &x, 0.1)?,
            "clip_bounded_wide" => clip_bounded(p, FP, &x, -1e12, 3e11)?,
            "clip_bounded_edge" => clip_bounded(p, FP, &x, -2147483648.0, 2147483647.0)?,
            "leaky" => leaky_relu(p, FP, &x, 0.1)?,
            "exp" => exp(p, FP, &x)?,
            "reciprocal" => reciprocal(p, FP, &x)?,
            "sigmoid" => sigmoid(p, FP, &x)?,
            "tanh" => tanh(p, FP, &x)?,
            "softmax" => softmax(p, FP, &x, 1)?,
            "softmax_bounded" => softmax_bounded(p, FP, &x, 1)?,
            "log_softmax_bounded" => log_softmax_bounded(p, FP, &x, 1)?,
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
            "gelu_tanh" => musket_nn::gelu_tanh(p, FP, &x)?,
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

/// The graph's ReLU and Clip (narrow sign circuits) are exact over their whole domain,
/// `|x| < 2^(63-2f)`, its ends included; a clip whose bounds are far beyond it falls back to
/// wider circuits and stays exact, and one at the domain's ends needs the widest narrow one.
#[test]
fn bounded_relu_and_clip_are_exact_over_their_whole_domain() {
    let end = relu_input_bound(FP.frac_bits()) - FP.ulp();
    let mut x = samples(-end, end, 300, 3);
    x.extend([0.0, -0.0, 6.0, -1.5, FP.ulp(), -FP.ulp(), end, -end, end - FP.ulp(), -end + FP.ulp()]);
    let n = x.len();
    let x: Vec<f64> = x.iter().map(|&v| round(v)).collect();
    check("relu_bounded", &x, vec![n], |i| x[i].max(0.0), |_| 0.0);
    check("relu6_bounded", &x, vec![n], |i| x[i].clamp(0.0, 6.0), |_| 0.0);
    check("clip_bounded_wide", &x, vec![n], |i| x[i].clamp(-1e12, 3e11), |_| 0.0);
    check("clip_bounded_edge", &x, vec![n], |i| x[i].clamp(-2147483648.0, 2147483647.0), |_| 0.0);
    // LeakyRelu's own bound, |alpha x| < 2^(61-2f) with alpha 0.1 and 0.9: |x| < 2^(61-2f) / 0.9.
    let leaky_end = 2f64.powi(61 - 2 * FP.frac_bits() as i32) / 0.9 - 1.0;
    let y: Vec<f64> = x.iter().map(|&v| round(v.clamp(-leaky_end, leaky_end))).collect();
    let half_ulp = FP.ulp() / 2.0;
    check(
        "leaky_bounded",
        &y,
        vec![n],
        |i| if y[i] >= 0.0 { y[i] } else { 0.1 * y[i] },
        |v| 10.0 * v.abs() * half_ulp + FP.ulp(),
    );
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
fn reciprocal_of_either_sign_with_saturation_below_the_domain() {
    let (lo, _) = RECIPROCAL_DOMAIN;
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    // Log-uniform magnitudes over the whole encodable range, either sign, plus the edges and
    // exact powers of two (a negative power of two is where |x| - 1 ulp changes class).
    let mut x: Vec<f64> = (0..400)
        .map(|i| {
            let m = 2f64.powf(rng.gen_range(lo.log2()..45.0));
            if i % 2 == 0 {
                m
            } else {
                -m
            }
        })
        .map(round)
        .collect();
    x.extend([
        lo,
        -lo,
        lo * 1.01,
        0.5,
        -0.5,
        1.0,
        -1.0,
        2.0,
        -2.0,
        -4.0,
        3.0,
        -3.0,
        1000.0,
        -16384.0,
        16383.9,
    ]);
    x.extend([2f64.powi(14), -2f64.powi(14), 2f64.powi(20), -1e9, 7e13, -7e13]);
    let x: Vec<f64> = x.iter().map(|&v| round(v)).collect();
    let n = x.len();
    check("reciprocal", &x, vec![n], |i| 1.0 / x[i], target);
    // The case: ONNX Reciprocal on [-4, 2].
    check("reciprocal", &[-4.0, 2.0], vec![2], |i| [-0.25, 0.5][i], target);
    // Below the domain (zero included) the documented result is the saturated +-2^12.
    let tiny = [0.0, FP.ulp(), -FP.ulp(), 1e-4, -1e-4, lo - FP.ulp()];
    let tiny: Vec<f64> = tiny.iter().map(|&v| round(v)).collect();
    check("reciprocal", &tiny, vec![tiny.len()], |i| if tiny[i] < 0.0 { -4096.0 } else { 4096.0 }, |_| 0.5);
}

fn log_uniform(lo: f64, hi: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x: Vec<f64> = (0..n).map(|_| 2f64.powf(rng.gen_range(lo.log2()..hi.log2()))).collect();
    x.extend([lo, lo * 1.01, 0.5, 1.0, 2.0, 0.75, 0.1, 100.0, 16384.0, 16385.0, hi]);
    x.iter().map(|&v| round(v)).collect()
}

#[test]
fn log_sqrt_and_inverse_sqrt_over_every_positive_value() {
    let x = log_uniform(FP.ulp(), 7e13, 400, 7);
    let n = x.len();
    check("log", &x, vec![n], |i| x[i].ln(), target);
    check("sqrt", &x, vec![n], |i| x[i].sqrt(), target);
    check("inv_sqrt", &x, vec![n], |i| 1.0 / x[i].sqrt(), target);
    // Outside: sqrt(0) = 0 exactly; negative inputs and zero saturate as documented.
    let out = [0.0, -1.0, -FP.ulp(), -5e10];
    check("sqrt", &out, vec![4], |_| 0.0, |_| 0.0);
    let f = FP.frac_bits() as f64;
    check("log", &out, vec![4], |_| -f * std::f64::consts::LN_2, target);
    check("inv_sqrt", &out, vec![4], |_| 2f64.powf(f / 2.0), target);
}

#[test]
fn exp_saturates_outside_its_domain() {
    let x = [17.0, 30.0, 1e6, -65.0, -1000.0, -1e12];
    check(
        "exp",
        &x,
        vec![6],
        |i| if x[i] > 0.0 { 16f64.exp() } else { 0.0 },
        |v| target(v) + 16f64.exp() * 1e-3,
    );
}

#[test]
fn sigmoid_and_tanh() {
    let mut x = samples(-64.0, 64.0, 300, 5);
    x.extend([0.0, 1e-4, -1e-4, 8.0, -8.0, 30.0, -30.0, 64.5, -64.5, 100.0, -100.0, 1e9, -1e9, 7e13, -7e13]);
    let n = x.len();
    check("sigmoid", &x, vec![n], |i| 1.0 / (1.0 + (-x[i]).exp()), |_| 2f64.powi(-13));
    let x: Vec<f64> = x.iter().map(|v| v / 2.0).map(round).collect();
    check("tanh", &x, vec![n], |i| x[i].tanh(), |_| 2f64.powi(-12));
}

/// The bounded forms (42-bit circuits) over their whole domain, |x| < 2^(40-f): rows at both
/// ends of it (spreads up to twice the bound), the -2^20 of an imported mask, equal entries.
#[test]
fn bounded_softmax_over_its_whole_domain() {
    let edge = softmax_input_bound(FP.frac_bits()) - FP.ulp();
    let mut rows: Vec<Vec<f64>> = vec![vec![0.0; 10], vec![edge; 10], vec![-edge; 10]];
    rows.push(samples(-4.0, 4.0, 7, 6));
    rows.push(vec![edge, -edge, edge - 1.0, 0.0, -edge, 5.0, edge - 0.5, -1e6, 3.0, edge]);
    rows.push(vec![-edge, -edge + 2.0, -edge + 20.0, -edge, -edge + 1.0, -edge, 0.0, -5e6, -edge, -edge]);
    rows.push(vec![2.0, -(2f64.powi(20)) + 1.5, 1.0, -(2f64.powi(20)), 0.0, 3.0, -2.0, 2.5, 1.0, 0.5]);
    let x: Vec<f64> = rows.iter().flatten().map(|&v| round(v)).collect();
    let shifted = |r: &[f64]| {
        let m = r.iter().copied().fold(f64::MIN, f64::max);
        let s: f64 = r.iter().map(|v| (v - m).exp()).sum();
        (m, s)
    };
    let rows: Vec<Vec<f64>> = x.chunks(10).map(|r| r.to_vec()).collect();
    let want: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let (m, s) = shifted(r);
            r.iter().map(move |v| (v - m).exp() / s).collect::<Vec<_>>()
        })
        .collect();
    let want_log: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let (m, s) = shifted(r);
            r.iter().map(move |v| v - m - s.ln()).collect::<Vec<_>>()
        })
        .collect();
    check("softmax_bounded", &x, vec![rows.len(), 10], |i| want[i], |_| 2f64.powi(-12));
    // Log-softmax: its terms below -16 are z - ln(sum), exact up to the sum's log.
    check("log_softmax_bounded", &x, vec![rows.len(), 10], |i| want_log[i], |_| 2f64.powi(-11));
}

#[test]
fn softmax_rows_including_equal_inputs_and_wide_spreads() {
    let mut rows: Vec<Vec<f64>> = vec![vec![0.0; 10], vec![3.0; 10]];
    rows.push(samples(-4.0, 4.0, 7, 6));
    rows.push((0..10).map(|i| -6.4 * i as f64).collect()); // spread 57.6
    rows.push(vec![10.0, -50.0, 9.5, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // Spreads far beyond 64 (exp's inputs below its domain are clamped).
    rows.push(vec![100.0, -100.0, 99.0, -1e6, 0.0, 3e4, -3e4, 2.9999e4, 5.0, -5.0]);
    rows.push(vec![-1e9, 1e9, -1e9, 1e9, 0.0, 0.0, 0.0, 0.0, 0.0, 1e9 - 1.0]);
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
    // A long row (sum up to 5000): the denominator's normalisation covers [1, n].
    let long: Vec<f64> = (0..5000).map(|i| round(((i * 37) % 101) as f64 / 50.0 - 1.0)).collect();
    let m = long.iter().copied().fold(f64::MIN, f64::max);
    let s: f64 = long.iter().map(|v| (v - m).exp()).sum();
    check("softmax", &long, vec![1, 5000], |i| (long[i] - m).exp() / s, |_| 2f64.powi(-12));
}

/// The plaintext range audit on each function: inputs in the domain raise no finding, inputs
/// outside raise one naming the function, and nothing overflows either way.
#[test]
fn out_of_domain_inputs_are_flagged_and_in_domain_ones_are_not() {
    let cases: &[(&'static str, Vec<f64>, Vec<f64>)] = &[
        ("reciprocal", vec![-4.0, 2.0, 0.01, -3e4, 7e13], vec![0.0, 1e-4, -1e-5]),
        ("log", vec![1e-4, 1.0, 3e4, 7e13], vec![0.0, -1.0]),
        ("sqrt", vec![0.0, 1e-4, 2.0, 7e13], vec![-1.0]),
        ("inv_sqrt", vec![1e-4, 2.0, 7e13], vec![0.0, -2.0]),
        ("exp", vec![-1e9, -64.0, 0.0, 16.0], vec![16.5, 1e6]),
        ("sigmoid", vec![-1e9, 0.0, 64.0, 1e9], vec![]),
        ("erf", vec![-1e9, 0.3, 1e9], vec![]),
        ("gelu", vec![-32767.0, 0.0, 4.5, 32767.0], vec![32768.0, -1e6]),
        ("gelu_tanh", vec![-32767.0, 0.0, 4.5, 32767.0], vec![32768.0, -1e6]),
    ];
    for (which, good, bad) in cases {
        for (x, expect) in [(good, false), (bad, true)] {
            if x.is_empty() {
                continue;
            }
            let x: Vec<f64> = x.iter().map(|&v| round(v)).collect();
            let mut audit = musket_core::Audit::new();
            audit.begin_layer("layer");
            Unary { x: x.clone(), shape: vec![x.len()], which }.run(&mut audit).unwrap();
            let f = audit.findings();
            if expect && which.starts_with("gelu") {
                // Beyond its domain GELU's sign circuits are meaningless: the audit names the
                // function first (what follows from the garbage may overflow later products).
                assert!(f[0].what.contains(which) && f[0].what.contains("outside its domain"), "{f:?}");
            } else if expect {
                assert_eq!(f.len(), 1, "{which} on {x:?}: {f:?}");
                assert!(f[0].what.contains(which) && f[0].what.contains("outside its domain"), "{f:?}");
                assert_eq!(f[0].layer, "layer");
            } else {
                assert!(f.is_empty(), "{which} on {x:?}: {f:?}");
            }
        }
    }
}

#[test]
fn erf_and_gelu() {
    let mut x = samples(-8.0, 8.0, 300, 8);
    x.extend([0.0, 5.0, -5.0, 5.01, -5.01, 100.0, -100.0, 0.5, -0.5]);
    // GELU's clip bounds, and values far out (GELU is relu there) up to the ends of its
    // domain, |x| < 2^(31 - f).
    let edge = musket_nn::gelu_input_bound(FP.frac_bits()) - FP.ulp();
    x.extend([4.0, -4.0, 3.99, -3.99, 4.01, -4.01, 4.5, -4.5, 1e4, -1e4, edge, -edge]);
    let x: Vec<f64> = x.iter().map(|&v| round(v)).collect();
    let n = x.len();
    let mut wide = x.clone();
    wide.extend([2f64.powi(30), -(2f64.powi(30))]);
    let m = wide.len();
    check("erf", &wide, vec![m], |i| musket_nn::reference::erf(wide[i]), |_| 2f64.powi(-12));
    check(
        "gelu",
        &x,
        vec![n],
        |i| 0.5 * x[i] * (1.0 + musket_nn::reference::erf(x[i] / 2f64.sqrt())),
        |_| 2f64.powi(-12),
    );
    let k = (2.0 / std::f64::consts::PI).sqrt();
    check(
        "gelu_tanh",
        &x,
        vec![n],
        |i| 0.5 * x[i] * (1.0 + (k * (x[i] + 0.044715 * x[i].powi(3))).tanh()),
        |_| 2f64.powi(-12),
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

/// `a / b` with `b` broadcast to `a`'s shape.
struct Div {
    a: Vec<f64>,
    b: Vec<f64>,
    shape_a: Vec<usize>,
    shape_b: Vec<usize>,
}

impl Job for Div {
    type Output = Vec<f64>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Vec<f64>, MpcError> {
        let a = share_fixed(p, FP, 0, owned(p, 0, &self.a[..]), &self.shape_a)?;
        let b = share_fixed(p, FP, 1, owned(p, 1, &self.b[..]), &self.shape_b)?;
        let q = div(p, FP, &a, &b)?;
        reveal_fixed(p, FP, &q)
    }
}

/// Division by a computed value of any sign and size: the quotient is accurate to its own scale
/// (a product with a rounded reciprocal turned 100000 / 20000 into 0), divisors below 2^-12
/// saturate, and a divisor shared by a row is broadcast.
#[test]
fn division_by_values_of_every_size_and_sign() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let n = 300;
    let mut a: Vec<f64> = (0..n).map(|_| round(rng.gen_range(-1e5..1e5))).collect();
    let mut b: Vec<f64> = (0..n)
        .map(|i| {
            let m = 2f64.powf(rng.gen_range(-12.0..40.0));
            round(if i % 2 == 0 { m } else { -m })
        })
        .collect();
    // Negative exact powers of two: their class is read from |b| - 1 ulp, so their mantissa is
    // exactly 1 (a product at the edge of the truncation range before the fix).
    a.extend([100000.0, 5.0, -7.0, 1.0, 3.0, 1e5, -1e5, 3.0, 1e5, -9.0]);
    b.extend([20000.0, 3.0, 2.0, -16384.0, 1e9, 4096.0, 3.0 * 2f64.powi(20), -4.0, -1024.0, -0.5]);
    let n = a.len();
    let job = Div { a: a.clone(), b: b.clone(), shape_a: vec![n], shape_b: vec![n] };
    let mut audit = musket_core::Audit::new();
    job.run(&mut audit).unwrap();
    assert!(audit.findings().is_empty(), "{:?}", audit.findings());
    for (name, got) in everywhere(&job) {
        for i in 0..n {
            let want = a[i] / b[i];
            let tol = 2e-5 * want.abs()
                + 3.0 * FP.ulp()
                + if b[i].abs() >= 2f64.powi(30) { 2f64.powi(-12) } else { 0.0 };
            assert!((got[i] - want).abs() <= tol, "{name}: {} / {} gave {} want {want}", a[i], b[i], got[i]);
        }
    }
    // Saturation below 2^-12 (zero included), and a divisor broadcast along a row.
    let job =
        Div { a: vec![1.5, -2.0, 3.0], b: vec![0.0, -FP.ulp(), 1e-4], shape_a: vec![3], shape_b: vec![3] };
    for (name, got) in everywhere(&job) {
        let want = [1.5 * 4096.0, 2.0 * 4096.0, 3.0 * 4096.0];
        for i in 0..3 {
            assert!(
                (got[i] - want[i]).abs() <= 1.0,
                "{name}: saturated element {i}: {} want {}",
                got[i],
                want[i]
            );
        }
    }
    let rows: Vec<f64> = (0..12).map(|i| i as f64 - 5.5).collect();
    let job = Div { a: rows.clone(), b: vec![2.0, -0.25, 1000.0], shape_a: vec![3, 4], shape_b: vec![3, 1] };
    for (name, got) in everywhere(&job) {
        for i in 0..12 {
            let want = rows[i] / [2.0, -0.25, 1000.0][i / 4];
            assert!(
                (got[i] - want).abs() <= 3.0 * FP.ulp() + 2e-5 * want.abs(),
                "{name}: {i}: {} want {want}",
                got[i]
            );
        }
    }
}

/// Above 18 fractional bits the exponential's Chebyshev sum would pass 2^62: softmax refuses
/// rather than wrap (its stated scales are 14 to 18); at 18 it is still right.
#[test]
fn softmax_beyond_its_scales_is_refused_not_wrapped() {
    let row = [0.5, -1.0, 2.0, 0.0];
    for (bits, ok) in [(18, true), (19, false)] {
        let fp = FixedPoint::new(bits);
        let mut p = musket_core::Plain;
        let x = share_fixed(&mut p, fp, 0, Some(&row[..]), &[1, 4]).unwrap();
        match softmax(&mut p, fp, &x, 1) {
            Ok(y) => {
                assert!(ok, "{bits} bits: expected a refusal");
                let got = reveal_fixed(&mut p, fp, &y).unwrap();
                let s: f64 = row.iter().map(|v| (v - 2.0f64).exp()).sum();
                for (g, v) in got.iter().zip(row) {
                    assert!((g - (v - 2.0f64).exp() / s).abs() < 2f64.powi(-12), "{bits} bits: {got:?}");
                }
            }
            Err(e) => assert!(!ok && matches!(e, MpcError::Usage(_)), "{bits} bits: {e}"),
        }
    }
}
