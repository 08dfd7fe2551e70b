//! Private training: a model's weights stay secret-shared from start to end while the parties
//! run mini-batch SGD on data that nobody else sees.
//!
//! - [`TrainPlan`] checks a [`musket_graph::Graph`] for training (every node must have a
//!   backward pass; anything else is refused by name) and fixes which weights are trained.
//! - [`Calc`] is the arithmetic of a step, implemented twice: [`FloatCalc`] (exact f64, the
//!   reference autograd) and [`SecureCalc`] (shares on any back end). The forward and
//!   backward pass of each op (`ops`), the losses and the optimiser ([`train`]) are written
//!   once against it, so the secure run and the reference run the same formulas.
//!
//! Precision: every value uses the run's fixed-point scale (16 fractional bits by default).
//! Gradients flow unscaled (sums over the batch, far above the resolution); the loss's
//! `1 / batch` and the learning rate are applied once per step as a public factor with 12
//! more fractional bits. See ARCHITECTURE.md ("Training").

mod calc;
mod float_calc;
mod index;
mod ops;
mod optim;
mod plan;
mod secure_calc;
mod train;

pub use calc::{Calc, Gather};
pub use float_calc::FloatCalc;
pub use optim::{Adam, Optimizer, ADAM_FLOOR};
pub use plan::{Loss, TrainPlan};
pub use secure_calc::SecureCalc;
pub use train::{batch_lengths, train, EpochStats, Progress, TrainConfig, Trained};

/// Test support: one step's weight gradients, for checking backward passes against finite
/// differences and the secure back ends against f64.
pub fn gradients<C: Calc>(
    c: &mut C,
    plan: &TrainPlan,
    weights: &[C::T],
    x: C::T,
    y: &C::T,
) -> musket_core::Result<Vec<Option<C::T>>> {
    Ok(train::step_gradients(c, plan, weights, x, y, false)?.0)
}

/// Test support: one batch's summed loss (the quantity whose gradient [`gradients`] gives).
pub fn loss<C: Calc>(
    c: &mut C,
    plan: &TrainPlan,
    weights: &[C::T],
    x: C::T,
    y: &C::T,
) -> musket_core::Result<C::T> {
    Ok(train::step_gradients(c, plan, weights, x, y, true)?.1.expect("asked for"))
}
