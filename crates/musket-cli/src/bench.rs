//! `musket bench`: time, bytes and rounds per party for the core protocol operations, both
//! back ends, all parties as threads of this process.

use anyhow::{bail, Result};
use clap::Args;
use musket_core::{lt, mul_fixed, relu, MpcError, Protocol};
use musket_net::CommStats;
use musket_nn as nn;
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{run_local, Backend, Job, Security};
use serde::Serialize;
use std::time::Instant;

/// Options of `musket bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Run only the case with this name (e.g. `relu-1e6`).
    #[arg(long)]
    only: Option<String>,
    /// Only this back end.
    #[arg(long)]
    protocol: Option<Backend>,
    /// Security level (malicious: the 3pc back end secure against a cheating party).
    #[arg(long, default_value = "semi-honest")]
    security: Security,
    /// Repetitions per case (the median is reported); operation cases run once more first,
    /// untimed, to warm up; model cases do not (they are timed cold, end to end).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    MulFixed,
    Matmul(usize),
    Lt,
    Relu,
    /// A musket-nn function on inputs uniform in `[lo, hi]`.
    Func(Func, f64, f64),
    /// Secure inference of a bundled model (paths relative to the repository root) on the
    /// first `batch` rows of a bundled input, end to end (weights and input sharing included).
    Model {
        /// ONNX file.
        model: &'static str,
        /// .npy input.
        input: &'static str,
        /// Rows of the input.
        batch: usize,
    },
}

#[derive(Clone, Copy, Debug)]
enum Func {
    Exp,
    Reciprocal,
    Sigmoid,
    Tanh,
    Log,
    Sqrt,
    InvSqrt,
    Erf,
    Gelu,
    Softmax,
    MaxPool2x2,
}

impl Func {
    fn reference(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
            Func::Reciprocal => 1.0 / x,
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Func::Tanh => x.tanh(),
            Func::Log => x.ln(),
            Func::Sqrt => x.sqrt(),
            Func::InvSqrt => 1.0 / x.sqrt(),
            Func::Erf => nn::reference::erf(x),
            Func::Gelu => 0.5 * x * (1.0 + nn::reference::erf(x / std::f64::consts::SQRT_2)),
            Func::Softmax | Func::MaxPool2x2 => unreachable!("not elementwise"),
        }
    }
}

/// erf in f64 (series below 3, continued fraction above), for error measurement.
/// The exact result of a function case, for error measurement.
fn reference(f: Func, x: &[f64]) -> Vec<f64> {
    match f {
        Func::Softmax => x
            .chunks(10)
            .flat_map(|r| {
                let m = r.iter().copied().fold(f64::MIN, f64::max);
                let s: f64 = r.iter().map(|v| (v - m).exp()).sum();
                r.iter().map(move |v| (v - m).exp() / s).collect::<Vec<_>>()
            })
            .collect(),
        Func::MaxPool2x2 => {
            // [1, 10, 100, 100] -> [1, 10, 50, 50]
            let mut out = Vec::new();
            for c in 0..10 {
                for i in 0..50 {
                    for j in 0..50 {
                        let at = |y: usize, x2: usize| x[(c * 100 + y) * 100 + x2];
                        out.push(
                            at(2 * i, 2 * j)
                                .max(at(2 * i, 2 * j + 1))
                                .max(at(2 * i + 1, 2 * j))
                                .max(at(2 * i + 1, 2 * j + 1)),
                        );
                    }
                }
            }
            out
        }
        f => x.iter().map(|&v| f.reference(v)).collect(),
    }
}

struct Case {
    name: &'static str,
    op: Op,
    n: usize,
}

const CASES: &[Case] = &[
    Case { name: "mul-1e6", op: Op::MulFixed, n: 1_000_000 },
    Case { name: "matmul-256", op: Op::Matmul(256), n: 0 },
    Case { name: "matmul-512", op: Op::Matmul(512), n: 0 },
    Case { name: "matmul-1024", op: Op::Matmul(1024), n: 0 },
    Case { name: "lt-1e5", op: Op::Lt, n: 100_000 },
    Case { name: "lt-1e6", op: Op::Lt, n: 1_000_000 },
    Case { name: "relu-1e6", op: Op::Relu, n: 1_000_000 },
    Case { name: "relu-1e5", op: Op::Relu, n: 100_000 },
    Case { name: "exp-1e5", op: Op::Func(Func::Exp, -4.0, 4.0), n: 100_000 },
    Case { name: "exp-full-1e5", op: Op::Func(Func::Exp, -64.0, 16.0), n: 100_000 },
    Case { name: "reciprocal-1e5", op: Op::Func(Func::Reciprocal, 0.5, 50.0), n: 100_000 },
    Case { name: "sigmoid-1e5", op: Op::Func(Func::Sigmoid, -8.0, 8.0), n: 100_000 },
    Case { name: "tanh-1e5", op: Op::Func(Func::Tanh, -8.0, 8.0), n: 100_000 },
    Case { name: "log-1e5", op: Op::Func(Func::Log, 0.1, 100.0), n: 100_000 },
    Case { name: "sqrt-1e5", op: Op::Func(Func::Sqrt, 0.1, 100.0), n: 100_000 },
    Case { name: "inv-sqrt-1e5", op: Op::Func(Func::InvSqrt, 0.1, 100.0), n: 100_000 },
    Case { name: "erf-1e5", op: Op::Func(Func::Erf, -4.0, 4.0), n: 100_000 },
    Case { name: "gelu-1e5", op: Op::Func(Func::Gelu, -8.0, 8.0), n: 100_000 },
    Case { name: "softmax-1000x10", op: Op::Func(Func::Softmax, -4.0, 4.0), n: 10_000 },
    Case { name: "maxpool2x2-1e5", op: Op::Func(Func::MaxPool2x2, -4.0, 4.0), n: 100_000 },
    Case { name: "lenet-1", op: Op::Model { model: LENET, input: LENET_INPUT, batch: 1 }, n: 1 },
    Case { name: "lenet-64", op: Op::Model { model: LENET, input: LENET_INPUT, batch: 64 }, n: 64 },
    Case {
        name: "lenet-crypten-1",
        op: Op::Model { model: LENET_CRYPTEN, input: LENET_CRYPTEN_INPUT, batch: 1 },
        n: 1,
    },
    Case {
        name: "lenet-crypten-64",
        op: Op::Model { model: LENET_CRYPTEN, input: LENET_CRYPTEN_INPUT, batch: 64 },
        n: 64,
    },
    Case { name: "resnet18-32-1", op: Op::Model { model: RESNET18, input: RESNET18_INPUT, batch: 1 }, n: 1 },
    Case {
        name: "resnet18-224-1",
        op: Op::Model { model: RESNET18_224, input: IMAGENET_INPUT, batch: 1 },
        n: 1,
    },
    Case {
        name: "resnet50-224-1",
        op: Op::Model { model: RESNET50_224, input: IMAGENET_INPUT, batch: 1 },
        n: 1,
    },
    Case {
        name: "mobilenetv2-224-1",
        op: Op::Model { model: MOBILENETV2_224, input: IMAGENET_INPUT, batch: 1 },
        n: 1,
    },
    Case {
        name: "bert-base-128",
        op: Op::Model { model: BERT_BASE, input: BERT_BASE_INPUT, batch: 1 },
        n: 1,
    },
    Case {
        name: "gpt2-small-32",
        op: Op::Model { model: GPT2_SMALL, input: GPT2_SMALL_INPUT, batch: 1 },
        n: 1,
    },
    Case {
        name: "vit-small-224",
        op: Op::Model { model: VIT_SMALL, input: VIT_SMALL_INPUT, batch: 1 },
        n: 1,
    },
];

const LENET: &str = "examples/lenet5-28-opset17.onnx";
const LENET_INPUT: &str = "examples/digits-test-28x28.npy";
// CrypTen's benchmark network and inputs (scripts/make_crypten_lenet.py).
const LENET_CRYPTEN: &str = "examples/lenet-crypten-opset17.onnx";
const LENET_CRYPTEN_INPUT: &str = "examples/lenet-crypten-input-64.npy";
const RESNET18: &str = "examples/resnet18-32-opset17.onnx";
const RESNET18_INPUT: &str = "examples/digits-test-32x32x3.npy";
// Too large to commit: written by scripts/make_big_models.py.
// PyTorch's default (dynamo) exporter, weights in .onnx.data files beside the models.
const RESNET18_224: &str = "target/models/resnet18-224.onnx";
const RESNET50_224: &str = "target/models/resnet50-224.onnx";
const MOBILENETV2_224: &str = "target/models/mobilenetv2-224.onnx";
const IMAGENET_INPUT: &str = "target/models/imagenet-224-sample.npy";
// transformers models from their config classes (random weights): BERT-base on 128 token ids,
// GPT-2 small's next-token logits for a 32-token prompt, ViT-small on one 224x224 image.
const BERT_BASE: &str = "target/models/bert-base-128.onnx";
const BERT_BASE_INPUT: &str = "target/models/bert-base-128-input.npy";
const GPT2_SMALL: &str = "target/models/gpt2-small-32.onnx";
const GPT2_SMALL_INPUT: &str = "target/models/gpt2-small-32-input.npy";
const VIT_SMALL: &str = "target/models/vit-small-224.onnx";
const VIT_SMALL_INPUT: &str = "target/models/vit-small-224-input.npy";

/// What one model case measured (medians over the repetitions; counts from the last).
struct ModelRun {
    seconds: f64,
    online_seconds: f64,
    bytes: Vec<u64>,
    rounds: u64,
    /// The one-time sharing of the weights: seconds (the slowest party) and bytes per party.
    weights_seconds: f64,
    weights_bytes: Vec<u64>,
}

/// Runs one model case. Online is the wall time less the smallest preprocessing time of a
/// compute party (an upper bound on every party's time without it).
fn run_model(backend: Backend, model: &str, input: &str, batch: usize, reps: usize) -> Result<ModelRun> {
    use anyhow::Context;
    if model.starts_with("target/models/") && !std::path::Path::new(model).exists() {
        bail!("{model} is missing: run scripts/make_big_models.py (torch, torchvision, onnx) first");
    }
    let x = musket_cli::npy::read(std::path::Path::new(input), 1 << 31)
        .context("model benchmarks run from the repository root")?;
    let rows = batch.min(x.shape[0]);
    let per = x.data.len() / x.shape[0].max(1);
    let mut shape = x.shape.clone();
    shape[0] = rows;
    let input = musket_graph::FloatTensor { shape: shape.clone(), data: x.data[..rows * per].to_vec() };
    let prepared = musket_cli::inference::prepare_file(
        std::path::Path::new(model),
        1 << 31,
        &shape,
        musket_cli::inference::BatchSlice::Items(usize::MAX),
    )?;
    let job = musket_cli::inference::Inference {
        prepared: &prepared,
        public: prepared.public(),
        input: &input,
        fp: FixedPoint::default(),
        options: musket_graph::RunOptions::default(),
        progress: None,
    };
    let mut times = Vec::new();
    let mut online = Vec::new();
    let mut last = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let outcomes = run_local(backend, &job, None)?;
        let wall = t.elapsed().as_secs_f64();
        let prep = outcomes
            .iter()
            .filter(|o| !(backend.has_dealer() && o.party == musket_2pc::DEALER))
            .map(|o| o.stats.preprocessing_time.as_secs_f64())
            .fold(f64::INFINITY, f64::min);
        times.push(wall);
        online.push(wall - if prep.is_finite() { prep } else { 0.0 });
        last = Some(outcomes);
    }
    times.sort_by(f64::total_cmp);
    online.sort_by(f64::total_cmp);
    let outcomes = last.expect("at least one run");
    let mut bytes = vec![0; backend.transport_parties()];
    let mut weights_bytes = vec![0; backend.transport_parties()];
    let mut weights_seconds: f64 = 0.0;
    for o in &outcomes {
        bytes[o.party] = o.stats.bytes_sent;
        if let Some(w) = o.output.as_ref().and_then(|r| r.layers.iter().find(|l| l.name == "share weights")) {
            weights_bytes[o.party] = w.bytes_sent;
            weights_seconds = weights_seconds.max(w.seconds);
        }
    }
    Ok(ModelRun {
        seconds: times[times.len() / 2],
        online_seconds: online[online.len() / 2],
        bytes,
        rounds: musket_session::job_rounds(&outcomes),
        weights_seconds,
        weights_bytes,
    })
}

/// Shares random inputs, then times one operation. Without a plan the 2PC dealer serves
/// requests as the operation makes them; with one (recorded by an identical earlier run), its
/// material is produced first by [`Protocol::preprocess`] and only the online phase is timed.
struct Timed {
    op: Op,
    n: usize,
    plan: Option<Vec<u8>>,
}

/// What one party measured in a [`Timed`] run.
struct TimedOut {
    /// Seconds the operation took at this party.
    seconds: f64,
    /// Counts just before and just after the operation.
    before: CommStats,
    after: CommStats,
    /// Function cases: the input and the opened result.
    values: Option<(Vec<f64>, Vec<f64>)>,
    /// The dealer-material requests the operation made (its preprocessing plan).
    plan: Vec<u8>,
    /// Seconds `preprocess` took at this party (0 without a plan).
    preprocess_seconds: f64,
}

impl TimedOut {
    /// The operation's seconds without the correlated randomness still made during it.
    fn online_seconds(&self) -> f64 {
        self.seconds - self.after.since(&self.before).preprocessing_time.as_secs_f64()
    }
}

/// Runs the plan's preprocessing, then aligns every party's round clock with two all-to-all
/// openings, so that the operation is timed and counted from a common start.
fn prepare_and_align<P: Protocol>(p: &mut P, plan: Option<&[u8]>) -> Result<f64, MpcError> {
    let t = Instant::now();
    if let Some(plan) = plan {
        p.preprocess(plan)?;
    }
    let secs = t.elapsed().as_secs_f64();
    let tiny = p.input(0, (p.party_id() == 0).then_some(&RingTensor::zeros(&[1])), &[1])?;
    p.reveal(&tiny)?;
    p.reveal(&tiny)?;
    Ok(secs)
}

impl Job for Timed {
    type Output = TimedOut;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let fp = FixedPoint::default();
        if let Op::Func(f, lo, hi) = self.op {
            return run_function(p, f, lo, hi, self.n, self.plan.as_deref());
        }
        if let Op::Model { .. } = self.op {
            return Err(MpcError::Usage("model cases run through run_model".into()));
        }
        let shape = match self.op {
            Op::Matmul(d) => vec![d, d],
            _ => vec![self.n],
        };
        let len: usize = shape.iter().product();
        let mut prg = musket_core::Prg::from_os();
        // Values in about ±8 so that fixed-point products stay in range.
        let v = RingTensor::new(
            shape.clone(),
            prg.words(len).iter().map(|w| ((*w as i64) >> 44) as u64).collect(),
        )?;
        let a = p.input(0, (p.party_id() == 0).then_some(&v), &shape)?;
        let b = p.input(1, (p.party_id() == 1).then_some(&v), &shape)?;
        let preprocess_seconds = prepare_and_align(p, self.plan.as_deref())?;
        let from = p.material_requests();
        let before = p.stats();
        let t = Instant::now();
        match self.op {
            Op::MulFixed => drop(mul_fixed(p, fp, &a, &b)?),
            Op::Matmul(_) => drop(p.matmul_truncate(&a, &b, fp.frac_bits())?),
            Op::Lt => drop(lt(p, &a, &b)?),
            Op::Relu => drop(relu(p, &a)?),
            Op::Func(..) | Op::Model { .. } => unreachable!("handled above"),
        }
        // A malicious-secure back end's verification of the operation is part of its cost.
        p.verify()?;
        let seconds = t.elapsed().as_secs_f64();
        Ok(TimedOut {
            seconds,
            before,
            after: p.stats(),
            values: None,
            plan: p.material_plan(from),
            preprocess_seconds,
        })
    }
}

/// Shares inputs uniform in `[lo, hi]` (fixed seed), times the function, then opens the
/// result for error measurement (the opening is not timed or counted).
fn run_function<P: Protocol>(
    p: &mut P,
    f: Func,
    lo: f64,
    hi: f64,
    n: usize,
    plan: Option<&[u8]>,
) -> Result<TimedOut, MpcError> {
    use rand::{Rng, SeedableRng};
    let fp = FixedPoint::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let x: Vec<f64> =
        (0..n).map(|_| fp.decode_one(fp.encode_one(rng.gen_range(lo..hi)).unwrap_or(0))).collect();
    let shape = match f {
        Func::Softmax => vec![n / 10, 10],
        Func::MaxPool2x2 => vec![1, 10, 100, 100],
        _ => vec![n],
    };
    let xs = musket_core::share_fixed(p, fp, 0, (p.party_id() == 0).then_some(&x[..]), &shape)?;
    let preprocess_seconds = prepare_and_align(p, plan)?;
    let from = p.material_requests();
    let before = p.stats();
    let t = Instant::now();
    let y = match f {
        Func::Exp => nn::exp(p, fp, &xs)?,
        Func::Reciprocal => nn::reciprocal(p, fp, &xs)?,
        Func::Sigmoid => nn::sigmoid(p, fp, &xs)?,
        Func::Tanh => nn::tanh(p, fp, &xs)?,
        Func::Log => nn::log(p, fp, &xs)?,
        Func::Sqrt => nn::sqrt(p, fp, &xs)?,
        Func::InvSqrt => nn::inv_sqrt(p, fp, &xs)?,
        Func::Erf => nn::erf(p, fp, &xs)?,
        Func::Gelu => nn::gelu(p, fp, &xs)?,
        Func::Softmax => nn::softmax(p, fp, &xs, 1)?,
        Func::MaxPool2x2 => nn::max_pool2d(p, &xs, &nn::Pool2d::new([2, 2], [2, 2], [0; 4]))?,
    };
    // A malicious-secure back end's verification of the operation is part of its cost.
    p.verify()?;
    let seconds = t.elapsed().as_secs_f64();
    let after = p.stats();
    let plan = p.material_plan(from);
    let out = musket_core::reveal_fixed(p, fp, &y)?;
    Ok(TimedOut { seconds, before, after, values: Some((x, out)), plan, preprocess_seconds })
}

/// One row of the report.
#[derive(Serialize)]
struct Row {
    name: &'static str,
    protocol: &'static str,
    security: &'static str,
    seconds: f64,
    /// The online phase. Operation cases: the operation with the 2PC dealer's material made
    /// beforehand (`Protocol::preprocess`), less any PRG expansion still done during it.
    /// Model cases: `seconds` less the smallest time a compute party spent on correlated
    /// randomness (waiting for the dealer, PRG expansion), an upper bound.
    online_seconds: f64,
    /// Operation cases: the preprocessing phase (the `preprocess` call, plus PRG expansion
    /// during the operation).
    #[serde(skip_serializing_if = "Option::is_none")]
    preprocessing_seconds: Option<f64>,
    /// Bytes each party sent during the operation (for 2PC, index 2 is the dealer: its
    /// traffic is preprocessing, input-independent correlated randomness).
    bytes_per_party: Vec<u64>,
    /// Model cases: the part of `bytes_per_party` spent sharing the weights (once per model:
    /// it can be done ahead and reused).
    #[serde(skip_serializing_if = "Option::is_none")]
    weights_bytes_per_party: Option<Vec<u64>>,
    /// Model cases: seconds spent sharing the weights (included in `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    weights_seconds: Option<f64>,
    rounds: u64,
    /// Largest |secure - f64| over the inputs (function cases only).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_abs_error: Option<f64>,
    /// Largest error as a fraction of the target `max(1e-3 |f(x)|, 2^-12)`: at most 1 meets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_vs_target: Option<f64>,
    /// Elements the operation processes (for bytes per element).
    elements: usize,
    /// Peak resident memory of this process so far, in MiB (all parties run in it): model
    /// cases only, so run one case per process (`--only`) to read it per case.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_rss_mib: Option<u64>,
}

impl Row {
    /// The back end as the table shows it: `3pc-m` for the malicious-secure 3PC.
    fn label(&self) -> String {
        if self.security == "malicious" {
            format!("{}-m", self.protocol)
        } else {
            self.protocol.to_string()
        }
    }
}

/// The process's peak resident set (VmHWM), in MiB, where /proc tells it.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib / 1024)
}

pub(crate) fn run(args: BenchArgs) -> Result<()> {
    let cases: Vec<&Case> =
        CASES.iter().filter(|c| args.only.as_deref().is_none_or(|o| o == c.name)).collect();
    if cases.is_empty() {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        bail!("no case named {:?}; cases: {}", args.only.unwrap_or_default(), names.join(", "));
    }
    let backends: Vec<Backend> = match (args.protocol, args.security) {
        (Some(b), s) => vec![b.with_security(s).map_err(anyhow::Error::msg)?],
        (None, Security::SemiHonest) => vec![Backend::TwoPc, Backend::ThreePc],
        (None, Security::Malicious) => vec![Backend::ThreePcMalicious],
    };
    let mut rows = Vec::new();
    for case in cases {
        for &backend in &backends {
            if let Op::Model { model, input, batch } = case.op {
                if args.only.is_none() && !std::path::Path::new(model).exists() {
                    eprintln!("{}: skipped, {model} is missing (scripts/make_big_models.py)", case.name);
                    continue;
                }
                let m = run_model(backend, model, input, batch, args.reps)?;
                let row = Row {
                    name: case.name,
                    protocol: backend.name(),
                    security: backend.security().name(),
                    seconds: m.seconds,
                    online_seconds: m.online_seconds,
                    preprocessing_seconds: None,
                    bytes_per_party: m.bytes,
                    weights_bytes_per_party: Some(m.weights_bytes),
                    weights_seconds: Some(m.weights_seconds),
                    rounds: m.rounds,
                    max_abs_error: None,
                    error_vs_target: None,
                    elements: batch,
                    peak_rss_mib: peak_rss_mib(),
                };
                if !args.json {
                    println!(
                        "{:<16} {:<5} {:>9.4} s (online {:.4} s; weight sharing {:.2} s)  {:>3} rounds  bytes/party {:?} \
                         (weight sharing {:?})  peak RSS {} MiB",
                        row.name,
                        row.label(),
                        row.seconds,
                        row.online_seconds,
                        row.weights_seconds.unwrap_or(0.0),
                        row.rounds,
                        row.bytes_per_party,
                        row.weights_bytes_per_party.as_deref().unwrap_or(&[]),
                        row.peak_rss_mib.map_or("?".into(), |m| m.to_string())
                    );
                }
                rows.push(row);
                continue;
            }
            let mut times = Vec::new();
            let mut online = Vec::new();
            let mut prep = Vec::new();
            let mut last: Vec<(usize, TimedOut)> = Vec::new();
            let mut dealer_bytes = None;
            let mut plan = None;
            // Run 0 warms up (the process's first touch of its heap, thread start-up), untimed as
            // in criterion, and records the operation's preprocessing plan. Each repetition then
            // runs twice: with dealer material made on demand (`seconds`), and with it made
            // first by `preprocess` (`online_seconds`, `preprocessing_seconds`).
            for rep in 0..=args.reps.max(1) {
                let outcomes = run_local(backend, &Timed { op: case.op, n: case.n, plan: None }, None)?;
                dealer_bytes = outcomes.iter().find(|o| o.output.is_none()).map(|o| o.stats.bytes_sent);
                last = outcomes.into_iter().filter_map(|o| o.output.map(|out| (o.party, out))).collect();
                if rep == 0 {
                    plan = last.first().map(|(_, o)| o.plan.clone());
                    continue;
                }
                times.push(last.iter().map(|(_, o)| o.seconds).fold(0.0, f64::max));
                let job = Timed { op: case.op, n: case.n, plan: plan.clone() };
                let prepared: Vec<TimedOut> =
                    run_local(backend, &job, None)?.into_iter().filter_map(|o| o.output).collect();
                online.push(prepared.iter().map(TimedOut::online_seconds).fold(0.0, f64::max));
                prep.push(
                    prepared
                        .iter()
                        .map(|o| o.preprocess_seconds + o.seconds - o.online_seconds())
                        .fold(0.0, f64::max),
                );
            }
            for v in [&mut times, &mut online, &mut prep] {
                v.sort_by(f64::total_cmp);
            }
            let mut bytes = vec![0; backend.transport_parties()];
            for (party, o) in &last {
                bytes[*party] = o.after.since(&o.before).bytes_sent;
            }
            if let Some(d) = dealer_bytes {
                bytes[musket_2pc::DEALER] = d;
            }
            let start = last.iter().map(|(_, o)| o.before.rounds).max().unwrap_or(0);
            let end = last.iter().map(|(_, o)| o.after.rounds).max().unwrap_or(0);
            let errors: Option<(f64, f64)> = match case.op {
                Op::Func(f, ..) => last.iter().find_map(|(_, o)| o.values.as_ref()).map(|(x, got)| {
                    reference(f, x).iter().zip(got).fold((0.0, 0.0), |(abs, ratio), (w, g)| {
                        let e = (w - g).abs();
                        (f64::max(abs, e), f64::max(ratio, e / (1e-3 * w.abs()).max(2f64.powi(-12))))
                    })
                }),
                _ => None,
            };
            let row = Row {
                name: case.name,
                protocol: backend.name(),
                security: backend.security().name(),
                seconds: times[times.len() / 2],
                online_seconds: online[online.len() / 2],
                preprocessing_seconds: Some(prep[prep.len() / 2]),
                bytes_per_party: bytes,
                weights_bytes_per_party: None,
                weights_seconds: None,
                rounds: end - start,
                max_abs_error: errors.map(|e| e.0),
                error_vs_target: errors.map(|e| e.1),
                elements: match case.op {
                    Op::Matmul(d) => d * d,
                    _ => case.n,
                },
                peak_rss_mib: None,
            };
            if !args.json {
                let err = match (row.max_abs_error, row.error_vs_target) {
                    (Some(e), Some(r)) => format!("  max err {e:.2e} ({r:.2} of target)"),
                    _ => String::new(),
                };
                println!(
                    "{:<16} {:<5} {:>9.4} s (online {:.4} s, preprocessing {:.4} s)  {:>3} rounds  bytes/party {:?}{err}",
                    row.name,
                    row.label(),
                    row.seconds,
                    row.online_seconds,
                    row.preprocessing_seconds.unwrap_or(0.0),
                    row.rounds,
                    row.bytes_per_party
                );
            }
            rows.push(row);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}
