//! `musket train`: private training of an ONNX model. In the local mode all parties are
//! threads of this process: party 0 owns the model (its initial weights) and is the only one
//! to learn the trained weights and the per-epoch losses; party 1 owns the data and labels.
//! The weights stay secret-shared from the first step to the last.

use anyhow::{bail, Context, Result};
use clap::Args;
use musket_cli::files::DEFAULT_MAX_FILE_MB;
use musket_cli::npy;
use musket_core::{share_fixed, MpcError, Protocol, Share};
use musket_graph::{eval_f64, FloatTensor, Graph};
use musket_onnx::{ImportOptions, Model};
use musket_ring::FixedPoint;
use musket_session::{job_rounds, run_local, Backend, Job};
use musket_train::{
    batch_lengths, EpochStats, FloatCalc, Loss, Progress, SecureCalc, TrainConfig, TrainPlan,
};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `musket train`.
#[derive(Args, Debug)]
pub(crate) struct TrainArgs {
    /// The initial model, ONNX (the model owner's, party 0).
    #[arg(long)]
    model: PathBuf,
    /// The training inputs as .npy, one row per sample (the data owner's, party 1).
    #[arg(long)]
    data: PathBuf,
    /// The labels as .npy (the data owner's): class indices for cross-entropy, 0/1 for bce,
    /// targets of the output's shape for mse.
    #[arg(long)]
    labels: PathBuf,
    /// The loss: cross-entropy (on logits), bce (on a final Sigmoid's probabilities) or mse.
    #[arg(long)]
    loss: Loss,
    /// Passes over the data.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Learning rate.
    #[arg(long)]
    lr: f64,
    /// Rows per mini-batch (the last one may be shorter).
    #[arg(long)]
    batch_size: usize,
    /// SGD momentum (PyTorch's convention).
    #[arg(long, default_value_t = 0.0)]
    momentum: f64,
    /// The optimiser: sgd (with --momentum) or adam (PyTorch's defaults: betas 0.9 and 0.999,
    /// eps 1e-8, with eps under the square root and floored at 2^-12).
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: OptimizerName,
    /// Shuffle the rows each epoch with a public permutation from this seed (default: file
    /// order).
    #[arg(long)]
    shuffle: Option<u64>,
    /// Protocol back end.
    #[arg(long, default_value = "3pc")]
    protocol: Backend,
    /// Write the trained model here (the same graph with the trained initializers).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Compute each epoch's mean loss and reveal it to the model owner (costs a softmax or
    /// logarithm per step).
    #[arg(long)]
    report_loss: bool,
    /// Fractional bits of the fixed-point encoding (14 to 18).
    #[arg(long, default_value_t = 16)]
    frac_bits: u32,
    /// Also train in f64 from the same initial weights (the plaintext reference) and report the
    /// largest weight difference and both models' training accuracy (this process has the data
    /// and the model; a check for simulations, not something a deployed party could run).
    #[arg(long)]
    check: bool,
    /// Train even when the range audit finds values outside the range the secure protocols
    /// handle (the result is then wrong); the findings are reported as warnings.
    #[arg(long)]
    allow_out_of_range: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Largest model or data file accepted, in MiB.
    #[arg(long, default_value_t = DEFAULT_MAX_FILE_MB)]
    max_file_mb: u64,
}

/// The optimiser's name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OptimizerName {
    /// SGD with optional momentum.
    Sgd,
    /// Adam.
    Adam,
}

impl OptimizerName {
    /// The optimiser with its settings; momentum belongs to SGD only.
    pub(crate) fn with(self, momentum: f64) -> Result<musket_train::Optimizer> {
        Ok(match self {
            OptimizerName::Sgd => musket_train::Optimizer::Sgd { momentum },
            OptimizerName::Adam if momentum != 0.0 => {
                bail!("--momentum is for sgd; adam has its own moments")
            }
            OptimizerName::Adam => musket_train::Optimizer::Adam(musket_train::Adam::default()),
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            OptimizerName::Sgd => "sgd",
            OptimizerName::Adam => "adam",
        }
    }
}

/// Party ids of the roles.
pub(crate) const MODEL_OWNER: usize = 0;
pub(crate) const DATA_OWNER: usize = 1;

/// A model prepared for training: one plan per batch length, and the ONNX initializers the
/// trained weights go back to.
pub(crate) struct Prepared {
    pub(crate) model: Model,
    pub(crate) plans: Vec<(usize, TrainPlan)>,
    /// Output shape of one row.
    pub(crate) row_output: Vec<usize>,
}

/// Imports `model` for every batch length of `rows` rows shaped `row_shape`, and checks it for
/// training with `loss`: every trained weight must be an ONNX initializer used as it is.
pub(crate) fn prepare(
    model: Model,
    loss: Loss,
    rows: usize,
    row_shape: &[usize],
    batch_size: usize,
) -> Result<Prepared> {
    if rows == 0 || batch_size == 0 {
        bail!("the data has no rows, or the batch size is 0");
    }
    let lengths = batch_lengths(rows, batch_size);
    let inits = model.float_initializers();
    let mut plans: Vec<(usize, TrainPlan)> = Vec::new();
    for &len in &lengths {
        if plans.iter().any(|(l, _)| *l == len) {
            continue;
        }
        let shape = [&[len][..], row_shape].concat();
        let graph = model
            .import(&ImportOptions { input_shape: Some(&shape), output: None })
            .with_context(|| format!("importing the model for batches of {len}"))?;
        let trainable: Vec<bool> = graph
            .weights
            .iter()
            .map(|(name, t)| inits.iter().any(|i| &i.name == name && i.shape == t.shape))
            .collect();
        // An initializer the importer transformed (transposed, merged, folded) is not a weight
        // of the graph under its own name: training could not update it, so refuse rather
        // than silently keep it fixed. Scalars folded into ops stay constants.
        for init in &inits {
            if init.elements > 1
                && !graph.weights.iter().any(|(n, _)| n == &init.name)
                && used(&model, &init.name)
            {
                bail!(
                    "initializer {:?} is transformed at import (folded into another constant), so training \
                     cannot update it; export the model without constant folding",
                    init.name
                );
            }
        }
        let plan = TrainPlan::new(graph, loss, trainable)?;
        plans.push((len, plan));
    }
    let first = &plans[0].1;
    let sample = FloatTensor::new(
        [&[lengths[0]][..], row_shape].concat(),
        vec![0.0; lengths[0] * row_shape.iter().product::<usize>()],
    )
    .context("sample input")?;
    let out = eval_f64(&first.graph, &sample).map_err(|e| anyhow::anyhow!("{e}"))?.output;
    if out.shape.first() != Some(&lengths[0]) {
        bail!("the model's output {:?} does not have the batch as its first axis", out.shape);
    }
    let row_output = out.shape[1..].to_vec();
    Ok(Prepared { model, plans, row_output })
}

fn used(model: &Model, name: &str) -> bool {
    model.node_inputs().iter().any(|n| n == name)
}

/// The labels as the loss needs them: cross-entropy's class indices become one-hot rows.
pub(crate) fn encode_labels(
    loss: Loss,
    labels: &FloatTensor,
    rows: usize,
    row_output: &[usize],
) -> Result<FloatTensor> {
    let per_row: usize = row_output.iter().product();
    match loss {
        Loss::CrossEntropy => {
            let &[classes] = row_output else {
                bail!("cross-entropy needs a model output [batch, classes], got [batch, {row_output:?}]")
            };
            if labels.data.len() != rows || !(labels.shape == [rows] || labels.shape == [rows, 1]) {
                bail!(
                    "cross-entropy needs one class index per row: labels {:?} for {rows} rows",
                    labels.shape
                );
            }
            let mut onehot = vec![0.0; rows * classes];
            for (r, &v) in labels.data.iter().enumerate() {
                if v.fract() != 0.0 || v < 0.0 || v >= classes as f64 {
                    bail!("label {v} of row {r} is not a class index in 0..{classes}");
                }
                onehot[r * classes + v as usize] = 1.0;
            }
            FloatTensor::new(vec![rows, classes], onehot).context("one-hot labels")
        }
        Loss::Bce | Loss::Mse => {
            if labels.data.len() != rows * per_row {
                bail!("labels {:?} do not match {rows} rows of output {row_output:?}", labels.shape);
            }
            if loss == Loss::Bce && labels.data.iter().any(|&v| v != 0.0 && v != 1.0) {
                bail!("bce labels must be 0 or 1");
            }
            if labels.data.iter().any(|v| !v.is_finite() || v.abs() > 1e4) {
                bail!("labels must be finite and below 10^4 in magnitude");
            }
            FloatTensor::new([&[rows][..], row_output].concat(), labels.data.clone()).context("labels")
        }
    }
}

/// What each party ends with.
pub(crate) struct PartyResult {
    /// The trained weights (the model owner only).
    pub(crate) weights: Option<Vec<FloatTensor>>,
    pub(crate) epochs: Vec<EpochStats>,
}

/// How the data of several owners fits together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Split {
    /// Each owner holds some rows (samples) with their labels: a horizontal split.
    Rows,
    /// Each owner holds some columns (features) of the same rows, in the same order; one of
    /// them holds the labels: a vertical split.
    Columns,
}

impl Split {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Split::Rows => "rows",
            Split::Columns => "columns",
        }
    }
}

/// One data owner's part: its party id, its data and encoded labels (`None` where this party
/// is not that owner; labels only at the owner that has them), and the shapes every party
/// knows.
pub(crate) struct OwnerRows<'a> {
    pub(crate) party: usize,
    pub(crate) values: Option<(&'a FloatTensor, Option<&'a FloatTensor>)>,
    pub(crate) data_shape: Vec<usize>,
    pub(crate) label_shape: Option<Vec<usize>>,
}

/// Joins 2-D shares `[rows, d_k]` along the columns, in order (a local operation).
fn join_columns<P: Protocol>(p: &mut P, parts: Vec<P::Share>) -> Result<P::Share, MpcError> {
    let mut parts = parts.into_iter();
    let mut acc = parts.next().ok_or_else(|| MpcError::Usage("no data".into()))?;
    for next in parts {
        acc = p.linear2(&acc, &next, &|a, b| {
            let (rows, da, db) = (a.shape()[0], a.shape()[1], b.shape()[1]);
            let mut out = Vec::with_capacity(a.len() + b.len());
            for r in 0..rows {
                out.extend_from_slice(&a.data()[r * da..(r + 1) * da]);
                out.extend_from_slice(&b.data()[r * db..(r + 1) * db]);
            }
            musket_ring::RingTensor::new(vec![rows, da + db], out)
        })?;
    }
    Ok(acc)
}

/// The secure training, as every party runs it. The data of several owners is joined in party
/// order, by rows or by columns (`split`); each owner's values enter only as shares.
pub(crate) struct Training<'a> {
    /// One plan per batch length; the weights' values are the model owner's (the other
    /// parties hold the architecture only).
    pub(crate) plans: &'a [(usize, TrainPlan)],
    pub(crate) owners: Vec<OwnerRows<'a>>,
    pub(crate) split: Split,
    pub(crate) config: TrainConfig,
    pub(crate) fp: FixedPoint,
    pub(crate) progress: Option<indicatif::ProgressBar>,
}

impl Job for Training<'_> {
    type Output = PartyResult;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<PartyResult, MpcError> {
        let me = p.party_id();
        let alone = p.compute_parties() == 1;
        let graph: &Graph = &self.plans[0].1.graph;
        let mut weights = Vec::with_capacity(graph.weights.len());
        for (_, t) in &graph.weights {
            let mine = me == MODEL_OWNER || alone;
            weights.push(share_fixed(p, self.fp, MODEL_OWNER, mine.then_some(&t.data[..]), &t.shape)?);
        }
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for o in &self.owners {
            let values = o.values.filter(|_| me == o.party || alone);
            xs.push(share_fixed(p, self.fp, o.party, values.map(|v| &v.0.data[..]), &o.data_shape)?);
            if let Some(shape) = &o.label_shape {
                let labels = values.and_then(|v| v.1).map(|y| &y.data[..]);
                ys.push(share_fixed(p, self.fp, o.party, labels, shape)?);
            }
        }
        let join = |p: &mut P, parts: Vec<P::Share>| -> Result<P::Share, MpcError> {
            if parts.is_empty() {
                return Err(MpcError::Usage("no data owner gave data and labels".into()));
            }
            if parts.len() == 1 {
                return Ok(parts.into_iter().next().expect("one part"));
            }
            let mut shape = parts[0].shape().to_vec();
            shape[0] = parts.iter().map(|t| t.shape()[0]).sum();
            let refs: Vec<&P::Share> = parts.iter().collect();
            let flat = musket_nn::concat_shares(p, &refs)?;
            p.reshape(&flat, &shape)
        };
        let x = match self.split {
            Split::Rows => join(p, xs)?,
            Split::Columns => join_columns(p, xs)?,
        };
        let y = join(p, ys)?;
        let plans: Vec<(usize, &TrainPlan)> = self.plans.iter().map(|(l, p)| (*l, p)).collect();
        let bar = self.progress.as_ref().filter(|_| me == MODEL_OWNER);
        let mut progress = |e: Progress<'_>| {
            if let (Some(b), Progress::Step { epoch, step, steps }) = (bar, e) {
                b.set_length((steps * self.config.epochs) as u64);
                b.set_position(((epoch - 1) * steps + step) as u64);
                b.set_message(format!("epoch {epoch}/{}", self.config.epochs));
            }
        };
        let trained = {
            let mut c = SecureCalc::new(p, self.fp);
            musket_train::train(&mut c, &plans, weights, &x, &y, &self.config, &mut progress)?
        };
        let mut out = Vec::new();
        for (w, (_, t)) in trained.weights.iter().zip(&graph.weights) {
            let opened = p.reveal_to(w, MODEL_OWNER)?;
            if let Some(v) = opened {
                out.push(FloatTensor { shape: t.shape.clone(), data: self.fp.decode(v.data()) });
            }
        }
        let weights = (out.len() == graph.weights.len()).then_some(out);
        Ok(PartyResult { weights, epochs: trained.epochs })
    }
}

#[derive(Serialize)]
struct EpochReport {
    epoch: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
    seconds: f64,
    rounds: u64,
    bytes_sent: Vec<u64>,
}

#[derive(Serialize)]
struct Check {
    /// Largest |secure - f64| over every trained weight.
    max_weight_diff: f64,
    /// Training accuracy of the securely trained model (classification losses).
    #[serde(skip_serializing_if = "Option::is_none")]
    train_accuracy: Option<f64>,
    /// Training accuracy of the f64-trained model.
    #[serde(skip_serializing_if = "Option::is_none")]
    train_accuracy_float: Option<f64>,
    /// The f64 run's per-epoch mean losses.
    float_losses: Vec<f64>,
}

#[derive(Serialize)]
struct Report {
    protocol: &'static str,
    loss: &'static str,
    rows: usize,
    batch_size: usize,
    epochs: usize,
    lr: f64,
    momentum: f64,
    optimizer: &'static str,
    /// What the range audit found (only with --allow-out-of-range; otherwise it is an error).
    range_warnings: Vec<String>,
    frac_bits: u32,
    seconds: f64,
    rounds: u64,
    bytes_sent: Vec<u64>,
    per_epoch: Vec<EpochReport>,
    trained_weights: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<Check>,
}

/// Fraction of rows whose prediction matches: argmax for cross-entropy, p > 0.5 for bce.
pub(crate) fn accuracy(loss: Loss, out: &FloatTensor, labels: &FloatTensor) -> Option<f64> {
    let rows = *out.shape.first()?;
    let per_row = out.data.len() / rows.max(1);
    let hits = match loss {
        Loss::CrossEntropy => (0..rows)
            .filter(|&r| {
                let row = &out.data[r * per_row..(r + 1) * per_row];
                let best = (0..per_row).fold(0, |b, i| if row[i] > row[b] { i } else { b });
                labels.data[r * per_row + best] == 1.0
            })
            .count(),
        Loss::Bce => {
            out.data.iter().zip(&labels.data).filter(|(p, y)| (**p > 0.5) == (**y == 1.0)).count()
                / per_row.max(1)
        }
        Loss::Mse => return None,
    };
    Some(hits as f64 / rows.max(1) as f64)
}

fn with_weights(graph: &Graph, weights: &[FloatTensor]) -> Graph {
    let mut g = graph.clone();
    for ((_, t), w) in g.weights.iter_mut().zip(weights) {
        *t = w.clone();
    }
    g
}

pub(crate) fn run(args: TrainArgs) -> Result<()> {
    if !(14..=18).contains(&args.frac_bits) {
        bail!("--frac-bits must be from 14 to 18");
    }
    let max_bytes = args.max_file_mb.saturating_mul(1 << 20);
    let data = npy::read(&args.data, max_bytes)?;
    let labels = npy::read(&args.labels, max_bytes)?;
    let rows = *data.shape.first().context("the data has no rows")?;
    if data.data.iter().any(|v| !v.is_finite()) {
        bail!("{} holds a value that is not finite", args.data.display());
    }
    let model = Model::read(&args.model, max_bytes)?;
    let prepared = prepare(model, args.loss, rows, &data.shape[1..], args.batch_size)?;
    let labels = encode_labels(args.loss, &labels, rows, &prepared.row_output)?;
    let fp = FixedPoint::new(args.frac_bits);
    let config = TrainConfig {
        epochs: args.epochs,
        lr: args.lr,
        optimizer: args.optimizer.with(args.momentum)?,
        batch_size: args.batch_size,
        shuffle: args.shuffle,
        report_loss: args.report_loss,
        model_owner: MODEL_OWNER,
    };
    // The range audit: the same training in plaintext fixed point with every product, sum,
    // truncation and function input checked (the secure run computes the same values up to
    // one-ulp truncation randomness), so that an overflow is an error, not a wrong model.
    let findings = audit_training(&prepared, &data, &labels, &config, fp)?;
    let range_warnings: Vec<String> =
        findings.iter().map(|f| format!("{}: {} ({} elements)", f.layer, f.what, f.count)).collect();
    if !range_warnings.is_empty() {
        if !args.allow_out_of_range {
            bail!(
                "the range audit found values outside the range the secure protocols handle, so the secure \
                 training would give a wrong model:\n  {}\nlower the learning rate, scale the data down, or use \
                 --frac-bits 14",
                range_warnings.iter().take(8).cloned().collect::<Vec<_>>().join("\n  ")
            );
        }
        for w in &range_warnings {
            eprintln!("warning: {w} (the trained model is wrong)");
        }
    }
    let progress = (!args.json).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let owners = vec![OwnerRows {
        party: DATA_OWNER,
        values: Some((&data, Some(&labels))),
        data_shape: data.shape.clone(),
        label_shape: Some(labels.shape.clone()),
    }];
    let job =
        Training { plans: &prepared.plans, owners, split: Split::Rows, config: config.clone(), fp, progress };
    let started = Instant::now();
    let outcomes = run_local(args.protocol, &job, None)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(b) = &job.progress {
        b.finish_and_clear();
    }
    let owner = outcomes
        .iter()
        .find(|o| o.party == MODEL_OWNER)
        .and_then(|o| o.output.as_ref())
        .context("the model owner returned nothing")?;
    let trained = owner.weights.clone().context("the model owner did not learn the weights")?;
    let mut bytes_sent = vec![0; outcomes.len()];
    for o in &outcomes {
        bytes_sent[o.party] = o.stats.bytes_sent;
    }
    let per_epoch: Vec<EpochReport> = owner
        .epochs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut bytes = vec![0; outcomes.len()];
            let mut rounds = 0;
            for o in &outcomes {
                if let Some(s) = o.output.as_ref().and_then(|r| r.epochs.get(i)) {
                    bytes[o.party] = s.bytes_sent;
                    rounds = rounds.max(s.rounds);
                }
            }
            EpochReport { epoch: e.epoch, loss: e.loss, seconds: e.seconds, rounds, bytes_sent: bytes }
        })
        .collect();
    let plan = &prepared.plans[0].1;
    let names: Vec<String> = plan
        .graph
        .weights
        .iter()
        .zip(&plan.trainable)
        .filter(|(_, &t)| t)
        .map(|((n, _), _)| n.clone())
        .collect();
    if let Some(path) = &args.output {
        let updates: Vec<(String, FloatTensor)> = plan
            .graph
            .weights
            .iter()
            .zip(&plan.trainable)
            .zip(&trained)
            .filter(|((_, &t), _)| t)
            .map(|(((n, _), _), w)| (n.clone(), w.clone()))
            .collect();
        let bytes = prepared.model.with_initializers(&updates)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let check = if args.check {
        Some(reference_check(&prepared, &data, &labels, &config, &trained, args.loss)?)
    } else {
        None
    };
    let report = Report {
        protocol: args.protocol.name(),
        loss: args.loss.name(),
        rows,
        batch_size: args.batch_size,
        epochs: args.epochs,
        lr: args.lr,
        momentum: args.momentum,
        optimizer: args.optimizer.name(),
        range_warnings,
        frac_bits: args.frac_bits,
        seconds,
        rounds: job_rounds(&outcomes),
        bytes_sent,
        per_epoch,
        trained_weights: names,
        output: args.output.as_ref().map(|p| p.display().to_string()),
        check,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print_text(&report);
    Ok(())
}

/// Runs the training on the range audit (plaintext fixed point, every operation checked) and
/// returns what it found.
fn audit_training(
    prepared: &Prepared,
    data: &FloatTensor,
    labels: &FloatTensor,
    config: &TrainConfig,
    fp: FixedPoint,
) -> Result<Vec<musket_core::Finding>> {
    let mut audit = musket_core::Audit::new();
    let graph = &prepared.plans[0].1.graph;
    let mut weights = Vec::new();
    for (_, t) in &graph.weights {
        weights.push(share_fixed(&mut audit, fp, MODEL_OWNER, Some(&t.data[..]), &t.shape)?);
    }
    let x = share_fixed(&mut audit, fp, DATA_OWNER, Some(&data.data[..]), &data.shape)?;
    let y = share_fixed(&mut audit, fp, DATA_OWNER, Some(&labels.data[..]), &labels.shape)?;
    let plans: Vec<(usize, &TrainPlan)> = prepared.plans.iter().map(|(l, p)| (*l, p)).collect();
    musket_train::train(&mut SecureCalc::new(&mut audit, fp), &plans, weights, &x, &y, config, &mut |_| {})?;
    Ok(audit.findings())
}

/// Trains in f64 from the same initial weights and compares.
fn reference_check(
    prepared: &Prepared,
    data: &FloatTensor,
    labels: &FloatTensor,
    config: &TrainConfig,
    secure: &[FloatTensor],
    loss: Loss,
) -> Result<Check> {
    let plans: Vec<(usize, &TrainPlan)> = prepared.plans.iter().map(|(l, p)| (*l, p)).collect();
    let graph = &prepared.plans[0].1.graph;
    let initial: Vec<FloatTensor> = graph.weights.iter().map(|(_, t)| t.clone()).collect();
    let cfg = TrainConfig { report_loss: true, ..config.clone() };
    let float = musket_train::train(&mut FloatCalc, &plans, initial, data, labels, &cfg, &mut |_| {})?;
    let max_weight_diff = float
        .weights
        .iter()
        .zip(secure)
        .flat_map(|(a, b)| a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    let full = import_full(prepared, data)?;
    let eval = |w: &[FloatTensor]| -> Result<FloatTensor> {
        Ok(eval_f64(&with_weights(&full, w), data).map_err(|e| anyhow::anyhow!("{e}"))?.output)
    };
    Ok(Check {
        max_weight_diff,
        train_accuracy: accuracy(loss, &eval(secure)?, labels),
        train_accuracy_float: accuracy(loss, &eval(&float.weights)?, labels),
        float_losses: float.epochs.iter().filter_map(|e| e.loss).collect(),
    })
}

/// The model imported for the whole data set at once (for evaluating accuracy).
fn import_full(prepared: &Prepared, data: &FloatTensor) -> Result<Graph> {
    Ok(prepared.model.import(&ImportOptions { input_shape: Some(&data.shape), output: None })?)
}

fn print_text(r: &Report) {
    println!(
        "trained {} rows, {} epochs, batch {}, {} lr {}, momentum {} ({} loss) on {}",
        r.rows, r.epochs, r.batch_size, r.optimizer, r.lr, r.momentum, r.loss, r.protocol
    );
    for e in &r.per_epoch {
        let loss = e.loss.map_or_else(String::new, |l| format!("  loss {l:.4}"));
        println!(
            "  epoch {:>3}: {:.2} s, {} rounds, {:.1} MB sent by the busiest party{loss}",
            e.epoch,
            e.seconds,
            e.rounds,
            e.bytes_sent.iter().copied().max().unwrap_or(0) as f64 / 1e6
        );
    }
    let mb: Vec<String> = r.bytes_sent.iter().map(|b| format!("{:.1}", *b as f64 / 1e6)).collect();
    println!("total: {:.2} s, {} rounds, MB sent per party [{}]", r.seconds, r.rounds, mb.join(", "));
    println!("trained weights: {}", r.trained_weights.join(", "));
    if let Some(o) = &r.output {
        println!("wrote {o}");
    }
    if let Some(c) = &r.check {
        println!("check against f64 training: largest weight difference {:.2e}", c.max_weight_diff);
        if let (Some(a), Some(b)) = (c.train_accuracy, c.train_accuracy_float) {
            println!("training accuracy: secure {a:.4}, f64 {b:.4}");
        }
    }
}
