//! `musket train`: private training of an ONNX model. In the local mode all parties are
//! threads of this process: party 0 owns the model (its initial weights) and is the only one
//! to learn the trained weights and the per-epoch losses; party 1 owns the data and labels.
//! The weights stay secret-shared from the first step to the last.

use anyhow::{bail, Context, Result};
use clap::Args;
use musket_cli::files::DEFAULT_MAX_FILE_MB;
use musket_cli::npy;
use musket_cli::training::{
    accuracy, audit_training, encode_labels, prepare, with_weights, Hyper, OwnerRows, Prepared, Split,
    Training, DATA_OWNER, MODEL_OWNER,
};
use musket_graph::{eval_f64, FloatTensor, Graph};
use musket_onnx::{ImportOptions, Model};
use musket_ring::FixedPoint;
use musket_session::{job_rounds, run_local, Backend, Security};
use musket_train::{FloatCalc, Loss, TrainConfig, TrainPlan};
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
    /// The hyper-parameters.
    #[command(flatten)]
    hyper: Hyper,
    /// Protocol back end.
    #[arg(long, default_value = "3pc")]
    protocol: Backend,
    /// Security level: semi-honest, or malicious (3pc: every product of every step is verified
    /// and every opening checked before the losses or the weights are revealed; a cheating
    /// party makes the others abort with `cheating detected`).
    #[arg(long, default_value = "semi-honest")]
    security: Security,
    /// Write the trained model here (the same graph with the trained initializers).
    #[arg(long)]
    output: Option<PathBuf>,
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
    /// `semi-honest` or `malicious` (`musket party … train` follows the cluster file).
    security: &'static str,
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

pub(crate) fn run(args: TrainArgs) -> Result<()> {
    if !(14..=18).contains(&args.frac_bits) {
        bail!("--frac-bits must be from 14 to 18");
    }
    let backend = args.protocol.with_security(args.security).map_err(anyhow::Error::msg)?;
    let max_bytes = args.max_file_mb.saturating_mul(1 << 20);
    let data = npy::read(&args.data, max_bytes)?;
    let labels = npy::read(&args.labels, max_bytes)?;
    let rows = *data.shape.first().context("the data has no rows")?;
    if data.data.iter().any(|v| !v.is_finite()) {
        bail!("{} holds a value that is not finite", args.data.display());
    }
    let model = Model::read(&args.model, max_bytes)?;
    let prepared = prepare(model, args.hyper.loss, rows, &data.shape[1..], args.hyper.batch_size)?;
    let labels = encode_labels(args.hyper.loss, &labels, rows, &prepared.row_output)?;
    let fp = FixedPoint::new(args.frac_bits);
    let config = args.hyper.config()?;
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
    let outcomes = run_local(backend, &job, None)?;
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
        Some(reference_check(&prepared, &data, &labels, &config, &trained, args.hyper.loss)?)
    } else {
        None
    };
    let report = Report {
        protocol: backend.name(),
        security: backend.security().name(),
        loss: args.hyper.loss.name(),
        rows,
        batch_size: args.hyper.batch_size,
        epochs: args.hyper.epochs,
        lr: args.hyper.lr,
        momentum: args.hyper.momentum,
        optimizer: args.hyper.optimizer.name(),
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
    Ok(prepared.model.import(&ImportOptions {
        input_shape: Some(&data.shape),
        output: None,
        training: true,
    })?)
}

fn print_text(r: &Report) {
    println!(
        "trained {} rows, {} epochs, batch {}, {} lr {}, momentum {} ({} loss) on {} ({})",
        r.rows, r.epochs, r.batch_size, r.optimizer, r.lr, r.momentum, r.loss, r.protocol, r.security
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
