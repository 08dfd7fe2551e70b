//! The training loop, written once against [`Calc`]: mini-batches, forward pass, loss,
//! backward pass, SGD with momentum. Run with [`crate::FloatCalc`] it is the f64 reference;
//! with [`crate::SecureCalc`] it is private training, the weights secret-shared throughout.

use crate::calc::Calc;
use crate::ops::{backward, forward, Saved};
use crate::optim::{Optimizer, State};
use crate::plan::{Loss, TrainPlan};
use musket_core::{MpcError, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::time::Instant;

/// Hyper-parameters of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// Rows per mini-batch (the last one may be shorter).
    pub batch_size: usize,
    /// Shuffle the rows each epoch with a public permutation drawn from ChaCha20 seeded
    /// with this (and the epoch); `None`: file order.
    pub shuffle: Option<u64>,
    /// Compute each epoch's mean loss and reveal it to the model owner.
    pub report_loss: bool,
    /// Who learns the losses (the model owner).
    pub model_owner: usize,
}

/// What one epoch cost and gave.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean loss per sample over the epoch (the model owner only, with `report_loss`).
    pub loss: Option<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Communication rounds (this party's clock).
    pub rounds: u64,
    /// Bytes this party sent.
    pub bytes_sent: u64,
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// A mini-batch finished.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// Steps per epoch.
        steps: usize,
    },
    /// An epoch finished.
    Epoch(&'a EpochStats),
}

/// The trained weights (every weight of the model, trained or not, in its order) and the
/// per-epoch statistics.
pub struct Trained<T> {
    /// Weights after the last step.
    pub weights: Vec<T>,
    /// One entry per epoch.
    pub epochs: Vec<EpochStats>,
}

/// Batch lengths of one epoch over `rows` rows: full batches, then the remainder.
pub fn batch_lengths(rows: usize, batch_size: usize) -> Vec<usize> {
    let b = batch_size.max(1);
    let mut out = vec![b; rows / b];
    if !rows.is_multiple_of(b) {
        out.push(rows % b);
    }
    out
}

/// The gradient factor the loss's mean applies (deferred to the update): `1 / batch` for
/// cross-entropy, `1 / elements` for BCE and `2 / elements` for MSE (PyTorch's reductions).
fn grad_scale(loss: Loss, batch: usize, elements: usize) -> f64 {
    match loss {
        Loss::CrossEntropy => 1.0 / batch.max(1) as f64,
        Loss::Bce => 1.0 / elements.max(1) as f64,
        Loss::Mse => 2.0 / elements.max(1) as f64,
    }
}

/// The sum of every element, as a 1-element tensor. Exact.
fn total<C: Calc>(c: &mut C, t: &C::T) -> Result<C::T> {
    let n: usize = C::shape(t).iter().product();
    c.gather_adjoint(t, &[1], &vec![Some(0); n])
}

/// Trains: `x` holds every row (`[rows, ..]`), `y` the labels encoded for the loss
/// (cross-entropy: one-hot `[rows, classes]`; BCE, MSE: the output's shape per row).
/// `plans` gives the model for each batch length [`batch_lengths`] yields (the same weights in
/// the same order); `weights` are the initial values, in that order.
pub fn train<C: Calc>(
    c: &mut C,
    plans: &[(usize, &TrainPlan)],
    weights: Vec<C::T>,
    x: &C::T,
    y: &C::T,
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Trained<C::T>> {
    let xs = C::shape(x);
    let ys = C::shape(y);
    let rows = *xs.first().ok_or_else(|| MpcError::Usage("the data has no rows".into()))?;
    if rows == 0 || ys.first() != Some(&rows) {
        return Err(MpcError::Usage(format!("{rows} data rows but labels of shape {ys:?}")));
    }
    if config.batch_size == 0 || config.epochs == 0 || !config.lr.is_finite() {
        return Err(MpcError::Usage(
            "batch size and epochs must be positive and the learning rate finite".into(),
        ));
    }
    config.optimizer.check()?;
    let lengths = batch_lengths(rows, config.batch_size);
    let plan_for = |len: usize| -> Result<&TrainPlan> {
        plans
            .iter()
            .find(|(l, _)| *l == len)
            .map(|(_, p)| *p)
            .ok_or_else(|| MpcError::Usage(format!("no model prepared for batches of {len}")))
    };
    let first = plan_for(lengths[0])?;
    for &len in &lengths {
        if plan_for(len)?.signature() != first.signature() {
            return Err(MpcError::Usage(
                "the models for different batch lengths have different weights".into(),
            ));
        }
    }
    if weights.len() != first.graph.weights.len() {
        return Err(MpcError::Usage("one initial value per weight is needed".into()));
    }
    let row_x: usize = xs[1..].iter().product();
    let row_y: usize = ys[1..].iter().product();
    let mut weights = weights;
    let mut state = State::new(weights.len());
    let mut epochs = Vec::with_capacity(config.epochs);
    let mut order: Vec<usize> = (0..rows).collect();
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let comm_before = c.comm();
        if let Some(seed) = config.shuffle {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed.wrapping_add(epoch as u64));
            order = (0..rows).collect();
            order.shuffle(&mut rng);
        }
        let mut loss_sum: Option<C::T> = None;
        let mut start = 0;
        for (step, &len) in lengths.iter().enumerate() {
            let plan = plan_for(len)?;
            let whole = len == rows && config.shuffle.is_none();
            let pick = |c: &mut C, t: &C::T, per_row: usize, shape: &[usize]| -> Result<C::T> {
                if whole {
                    return Ok(t.clone());
                }
                let src: Vec<Option<usize>> = order[start..start + len]
                    .iter()
                    .flat_map(|&r| (r * per_row..(r + 1) * per_row).map(Some))
                    .collect();
                let mut s = shape.to_vec();
                s[0] = len;
                c.gather(t, &s, &src)
            };
            let xb = pick(c, x, row_x, &xs)?;
            let yb = pick(c, y, row_y, &ys)?;
            let (grads, batch_loss) = step_gradients(c, plan, &weights, xb, &yb, config.report_loss)?;
            if let Some(l) = batch_loss {
                loss_sum = Some(match loss_sum {
                    None => l,
                    Some(s) => c.add(&s, &l)?,
                });
            }
            // The loss's mean factor is applied by the optimiser, once per step.
            let s = grad_scale(plan.loss, len, len * row_y);
            c.begin("weight update");
            state.step(c, &config.optimizer, config.lr, s, &mut weights, &grads)?;
            start += len;
            progress(Progress::Step { epoch, step: step + 1, steps: lengths.len() });
        }
        let loss = match (&loss_sum, config.report_loss) {
            (Some(s), true) => c.reveal_to(s, config.model_owner)?.map(|v| {
                let per_sample = if first.loss == Loss::CrossEntropy { 1 } else { row_y };
                v[0] / (rows * per_sample) as f64
            }),
            _ => None,
        };
        let comm = c.comm().since(&comm_before);
        let stats = EpochStats {
            epoch,
            loss,
            seconds: started.elapsed().as_secs_f64(),
            rounds: comm.rounds,
            bytes_sent: comm.bytes_sent,
        };
        progress(Progress::Epoch(&stats));
        epochs.push(stats);
    }
    Ok(Trained { weights, epochs })
}

/// One step's weight gradients (`None` for weights not trained) and the batch's loss.
pub(crate) type StepResult<C> = (Vec<Option<<C as Calc>::T>>, Option<<C as Calc>::T>);

/// One step's gradients of the weights (unscaled: the loss's sum over the batch) and, when
/// asked, the batch's summed loss.
pub(crate) fn step_gradients<C: Calc>(
    c: &mut C,
    plan: &TrainPlan,
    weights: &[C::T],
    xb: C::T,
    yb: &C::T,
    with_loss: bool,
) -> Result<StepResult<C>> {
    let graph = &plan.graph;
    let w = weights.len();
    let mut values: Vec<Option<C::T>> = vec![None; 1 + w + graph.nodes.len()];
    values[0] = Some(xb);
    for (i, t) in weights.iter().enumerate() {
        values[1 + i] = Some(t.clone());
    }
    let mut saved: Vec<Saved<C>> = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let ins: Vec<&C::T> = node
            .inputs
            .iter()
            .map(|&i| {
                values[i]
                    .as_ref()
                    .ok_or_else(|| MpcError::Usage(format!("node {}: input not computed", node.name)))
            })
            .collect::<Result<_>>()?;
        c.begin(&format!("{} ({}) forward", node.name, node.op_type));
        let (out, s) = forward(c, node, &ins)?;
        values[node.output] = Some(out);
        saved.push(s);
    }
    let head = &graph.nodes[plan.head];
    let out = values[graph.output].as_ref().expect("computed");
    let out_shape = C::shape(out);
    if C::shape(yb) != out_shape {
        return Err(MpcError::Usage(format!(
            "labels of shape {:?} for a model output of shape {out_shape:?}",
            C::shape(yb)
        )));
    }
    c.begin("loss");
    // The loss's gradient (unscaled) and where the backward pass starts.
    let (start_value, last_node, seed) = match plan.loss {
        Loss::CrossEntropy => {
            let s = c.softmax_last(out)?;
            (graph.output, plan.head + 1, c.sub(&s, yb)?)
        }
        Loss::Bce => (head.inputs[0], plan.head, c.sub(out, yb)?),
        Loss::Mse => (graph.output, plan.head + 1, c.sub(out, yb)?),
    };
    let loss = if with_loss { Some(batch_loss(c, plan, &values, yb)?) } else { None };
    let mut grads: Vec<Option<C::T>> = vec![None; values.len()];
    grads[start_value] = Some(seed);
    for k in (0..last_node).rev() {
        let node = &graph.nodes[k];
        let Some(g) = grads[node.output].take() else { continue };
        let need: Vec<bool> = node.inputs.iter().map(|&i| plan.requires[i]).collect();
        if !need.iter().any(|&n| n) {
            continue;
        }
        let ins: Vec<&C::T> = node.inputs.iter().map(|&i| values[i].as_ref().expect("computed")).collect();
        let out = values[node.output].as_ref().expect("computed");
        c.begin(&format!("{} ({}) backward", node.name, node.op_type));
        let gs = backward(c, node, &ins, out, &saved[k], &g, &need)?;
        for (&i, gi) in node.inputs.iter().zip(gs) {
            if let Some(gi) = gi {
                grads[i] = Some(match grads[i].take() {
                    None => gi,
                    Some(prev) => c.add(&prev, &gi)?,
                });
            }
        }
    }
    let weight_grads = (0..w).map(|i| if plan.trainable[i] { grads[1 + i].take() } else { None }).collect();
    Ok((weight_grads, loss))
}

/// The batch's loss summed over its rows (cross-entropy) or elements (BCE, MSE).
fn batch_loss<C: Calc>(c: &mut C, plan: &TrainPlan, values: &[Option<C::T>], yb: &C::T) -> Result<C::T> {
    let out = values[plan.graph.output].as_ref().expect("computed");
    match plan.loss {
        Loss::CrossEntropy => {
            // -sum y log_softmax(o)
            let ls = c.log_softmax_last(out)?;
            let prod = c.mul_many(&[(yb, &ls)])?.remove(0);
            let s = total(c, &prod)?;
            c.neg(&s)
        }
        Loss::Bce => {
            // softplus(z) - y z with softplus(z) = relu(z) + ln(1 + e^-|z|) (|z| = 2 relu(z) - z),
            // so the logarithm only sees [1, 2].
            let z = values[plan.graph.nodes[plan.head].inputs[0]].as_ref().expect("computed");
            let (r, _) = c.relu(z)?;
            let r2 = c.add(&r, &r)?;
            let abs = c.sub(&r2, z)?;
            let neg_abs = c.neg(&abs)?;
            let e = c.exp(&neg_abs)?;
            let one_plus = c.add_const(&e, 1.0)?;
            let lg = c.log(&one_plus)?;
            let yz = c.mul_many(&[(yb, z)])?.remove(0);
            let sp = c.add(&r, &lg)?;
            let l = c.sub(&sp, &yz)?;
            total(c, &l)
        }
        Loss::Mse => {
            let d = c.sub(out, yb)?;
            let sq = c.mul_many(&[(&d, &d)])?.remove(0);
            total(c, &sq)
        }
    }
}
