//! Private training as both the `musket` binary and other front ends (the Python package) run
//! it: preparing an ONNX model for training, encoding labels, the secure training job of every
//! party (with data from one or several owners), the plaintext range audit, and accuracy.

use anyhow::{bail, Context, Result};
use musket_core::{share_fixed, MpcError, Protocol, Share};
use musket_graph::{eval_f64, FloatTensor, Graph};
use musket_onnx::{ImportOptions, Model};
use musket_ring::FixedPoint;
use musket_session::Job;
use musket_train::{batch_lengths, EpochStats, Loss, Progress, SecureCalc, TrainConfig, TrainPlan};

/// The optimiser's name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerName {
    /// SGD with optional momentum.
    Sgd,
    /// Adam.
    Adam,
}

impl OptimizerName {
    /// The optimiser with its settings; momentum belongs to SGD only.
    /// The optimiser with its settings; momentum belongs to SGD only.
    pub fn with(self, momentum: f64) -> Result<musket_train::Optimizer> {
        Ok(match self {
            OptimizerName::Sgd => musket_train::Optimizer::Sgd { momentum },
            OptimizerName::Adam if momentum != 0.0 => {
                bail!("--momentum is for sgd; adam has its own moments")
            }
            OptimizerName::Adam => musket_train::Optimizer::Adam(musket_train::Adam::default()),
        })
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerName::Sgd => "sgd",
            OptimizerName::Adam => "adam",
        }
    }
}

/// Party ids of the roles.
/// The hyper-parameters of a training run, as every front end takes them (`musket train`
/// and `musket party … train` flatten this into their options).
#[derive(clap::Args, Debug, Clone)]
pub struct Hyper {
    /// The loss: cross-entropy (on logits), bce (on a final Sigmoid's probabilities) or mse.
    #[arg(long)]
    pub loss: Loss,
    /// Passes over the data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Learning rate.
    #[arg(long)]
    pub lr: f64,
    /// Rows per mini-batch (the last one may be shorter).
    #[arg(long)]
    pub batch_size: usize,
    /// SGD momentum (PyTorch's convention).
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// The optimiser: sgd (with --momentum) or adam (PyTorch's defaults: betas 0.9 and 0.999,
    /// eps 1e-8, with eps under the square root and floored at 2^-12).
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerName,
    /// Shuffle the rows each epoch with a public permutation from this seed (default: file
    /// order).
    #[arg(long)]
    pub shuffle: Option<u64>,
    /// Compute each epoch's mean loss and reveal it to the model owner (costs a softmax or
    /// logarithm per step).
    #[arg(long)]
    pub report_loss: bool,
}

impl Hyper {
    /// The training loop's configuration.
    pub fn config(&self) -> Result<TrainConfig> {
        Ok(TrainConfig {
            epochs: self.epochs,
            lr: self.lr,
            optimizer: self.optimizer.with(self.momentum)?,
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            report_loss: self.report_loss,
            model_owner: MODEL_OWNER,
        })
    }

    /// The public parameters every party of a cluster must agree on.
    pub fn params(&self) -> Vec<String> {
        vec![
            format!("loss={}", self.loss.name()),
            format!("epochs={}", self.epochs),
            format!("lr={:e}", self.lr),
            format!("batch_size={}", self.batch_size),
            format!("momentum={:e}", self.momentum),
            format!("optimizer={}", self.optimizer.name()),
            format!("shuffle={:?}", self.shuffle),
            format!("report_loss={}", self.report_loss),
        ]
    }
}

/// The model owner's party id.
pub const MODEL_OWNER: usize = 0;
/// The data owner's party id (in the local mode).
pub const DATA_OWNER: usize = 1;

/// A model prepared for training: one plan per batch length, and the ONNX initializers the
/// trained weights go back to.
pub struct Prepared {
    /// The ONNX model (the trained weights are written back into it).
    pub model: Model,
    /// One plan per batch length.
    pub plans: Vec<(usize, TrainPlan)>,
    /// Output shape of one row.
    pub row_output: Vec<usize>,
}

/// Imports `model` for every batch length of `rows` rows shaped `row_shape`, and checks it for
/// training with `loss`: every trained weight must be an ONNX initializer used as it is.
pub fn prepare(
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
            .import(&ImportOptions { input_shape: Some(&shape), output: None, training: true })
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
pub fn encode_labels(
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
pub struct PartyResult {
    /// The trained weights (the model owner only).
    /// The trained weights (the model owner only).
    pub weights: Option<Vec<FloatTensor>>,
    /// Per-epoch statistics of this party.
    pub epochs: Vec<EpochStats>,
}

/// How the data of several owners fits together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// Each owner holds some rows (samples) with their labels: a horizontal split.
    Rows,
    /// Each owner holds some columns (features) of the same rows, in the same order; one of
    /// them holds the labels: a vertical split.
    Columns,
}

impl Split {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Split::Rows => "rows",
            Split::Columns => "columns",
        }
    }
}

/// One data owner's part: its party id, its data and encoded labels (`None` where this party
/// is not that owner; labels only at the owner that has them), and the shapes every party
/// knows.
pub struct OwnerRows<'a> {
    /// The owner's party id.
    pub party: usize,
    /// The data and labels, at the owner only.
    pub values: Option<(&'a FloatTensor, Option<&'a FloatTensor>)>,
    /// The data's shape.
    pub data_shape: Vec<usize>,
    /// The encoded labels' shape, if this owner has labels.
    pub label_shape: Option<Vec<usize>>,
}

/// Joins 2-D shares `[rows, d_k]` along the columns, in order (a local operation).
fn join_columns<P: Protocol>(p: &mut P, parts: Vec<P::Share>) -> Result<P::Share, MpcError> {
    let mut parts = parts.into_iter();
    let mut acc = parts.next().ok_or_else(|| MpcError::Usage("no data".into()))?;
    for next in parts {
        acc = p.linear2(&acc, &next, &musket_core::maps::ConcatAxis(1))?;
    }
    Ok(acc)
}

/// The secure training, as every party runs it. The data of several owners is joined in party
/// order, by rows or by columns (`split`); each owner's values enter only as shares.
pub struct Training<'a> {
    /// One plan per batch length; the weights' values are the model owner's (the other
    /// parties hold the architecture only).
    pub plans: &'a [(usize, TrainPlan)],
    /// Every data owner's part, in party order.
    pub owners: Vec<OwnerRows<'a>>,
    /// How the parts fit together.
    pub split: Split,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// The fixed-point encoding.
    pub fp: FixedPoint,
    /// A progress bar, drawn by the model owner.
    pub progress: Option<indicatif::ProgressBar>,
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

/// Fraction of rows whose prediction matches: argmax for cross-entropy, p > 0.5 for bce.
pub fn accuracy(loss: Loss, out: &FloatTensor, labels: &FloatTensor) -> Option<f64> {
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

/// `graph` with its weights replaced by `weights` (same order).
pub fn with_weights(graph: &Graph, weights: &[FloatTensor]) -> Graph {
    let mut g = graph.clone();
    for ((_, t), w) in g.weights.iter_mut().zip(weights) {
        *t = w.clone();
    }
    g
}

/// Runs the training on the range audit (plaintext fixed point, every operation checked) and
/// returns what it found.
pub fn audit_training(
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
