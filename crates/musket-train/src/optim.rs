//! The optimisers, written once against [`Calc`]: SGD with momentum and Adam. Both work on the
//! unscaled gradient `G` (the loss's sum over the batch; the mean's factor `s` is applied
//! here), so that small gradients keep their precision.

use crate::calc::Calc;
use musket_core::{MpcError, Result};

/// Adam's hyper-parameters (PyTorch's names and defaults: 0.9, 0.999, 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Adam {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
}

impl Default for Adam {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// The least value added under Adam's square root, in the unscaled gradient's units: far above
/// the fixed-point resolution, so that `1/sqrt` stays in its domain where a weight never gets
/// a gradient (its second moment is exactly 0; its step is then 0 too).
pub const ADAM_FLOOR: f64 = 1.0 / 4096.0;

/// Which optimiser a run uses.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Optimizer {
    /// SGD with momentum `m` (0: plain SGD), PyTorch's convention: `v = m v + g`, `w -= lr v`.
    Sgd {
        /// Momentum in [0, 1).
        momentum: f64,
    },
    /// Adam with bias correction. With `G = g / s` the unscaled gradient and moments
    /// `M = b1 M + (1 - b1) G`, `V = b2 V + (1 - b2) G^2`, the step is
    /// `w -= lr M^ / sqrt(V^ + delta)` with `M^ = M / (1 - b1^t)`, `V^ = V / (1 - b2^t)` and
    /// `delta = max((eps / s)^2, ADAM_FLOOR)`: PyTorch's `lr m^ / (sqrt(v^) + eps)` (the
    /// scale `s` cancels) with eps moved under the root and floored, which differs from it
    /// only where `V^` is below about `delta`. `M^` and `V^` are what is stored.
    Adam(Adam),
}

impl Optimizer {
    pub(crate) fn check(&self) -> Result<()> {
        let ok = match self {
            Optimizer::Sgd { momentum } => (0.0..1.0).contains(momentum),
            Optimizer::Adam(a) => {
                (0.0..1.0).contains(&a.beta1)
                    && (0.0..1.0).contains(&a.beta2)
                    && a.eps >= 0.0
                    && a.eps.is_finite()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(MpcError::Usage(format!("optimiser settings out of range: {self:?}")))
        }
    }
}

/// What an optimiser carries from step to step, per weight.
pub(crate) struct State<T> {
    first: Vec<Option<T>>,
    second: Vec<Option<T>>,
    steps: i32,
}

impl<T: Clone> State<T> {
    pub(crate) fn new(weights: usize) -> Self {
        Self { first: vec![None; weights], second: vec![None; weights], steps: 0 }
    }

    /// Updates `weights` from the unscaled gradients `grads` (`None`: not trained); `s` is the
    /// loss's mean factor for this batch.
    pub(crate) fn step<C: Calc<T = T>>(
        &mut self,
        c: &mut C,
        optimizer: &Optimizer,
        lr: f64,
        s: f64,
        weights: &mut [T],
        grads: &[Option<T>],
    ) -> Result<()> {
        let trained: Vec<usize> = (0..weights.len()).filter(|&i| grads[i].is_some()).collect();
        let grad = |i: usize| grads[i].as_ref().expect("trained");
        self.steps += 1;
        let deltas = match optimizer {
            Optimizer::Sgd { momentum } => {
                if *momentum > 0.0 {
                    let have: Vec<usize> =
                        trained.iter().copied().filter(|&i| self.first[i].is_some()).collect();
                    let items: Vec<(&T, f64)> = have
                        .iter()
                        .map(|&i| (self.first[i].as_ref().expect("filtered"), *momentum))
                        .collect();
                    let decayed = c.scale_many(&items)?;
                    for (&i, v) in have.iter().zip(decayed) {
                        self.first[i] = Some(v);
                    }
                    for &i in &trained {
                        self.first[i] = Some(match &self.first[i] {
                            Some(v) => c.add(v, grad(i))?,
                            None => grad(i).clone(),
                        });
                    }
                }
                let steps: Vec<(&T, f64)> = trained
                    .iter()
                    .map(|&i| {
                        let d = if *momentum > 0.0 { self.first[i].as_ref().expect("set") } else { grad(i) };
                        (d, lr * s)
                    })
                    .collect();
                c.scale_many(&steps)?
            }
            Optimizer::Adam(a) => {
                // The bias-corrected moments are kept directly (M^_t = m_t / (1 - b1^t), the
                // same for V^): their update has coefficients at most 1, and V^ starts at G^2
                // rather than at (1 - b2) G^2, which would fall below the fixed-point
                // resolution for small gradients.
                let t = self.steps;
                let (c1, c1_prev) = (1.0 - a.beta1.powi(t), 1.0 - a.beta1.powi(t - 1));
                let (c2, c2_prev) = (1.0 - a.beta2.powi(t), 1.0 - a.beta2.powi(t - 1));
                let pairs: Vec<(&T, &T)> = trained.iter().map(|&i| (grad(i), grad(i))).collect();
                let squares = c.mul_many(&pairs)?;
                let mut items: Vec<(&T, f64)> = Vec::new();
                for (k, &i) in trained.iter().enumerate() {
                    items.push((grad(i), (1.0 - a.beta1) / c1));
                    items.push((&squares[k], (1.0 - a.beta2) / c2));
                    if let (Some(m), Some(v)) = (&self.first[i], &self.second[i]) {
                        items.push((m, a.beta1 * c1_prev / c1));
                        items.push((v, a.beta2 * c2_prev / c2));
                    }
                }
                let scaled = c.scale_many(&items)?;
                let mut it = scaled.into_iter();
                for &i in &trained {
                    let (gm, gv) = (it.next().expect("item"), it.next().expect("item"));
                    let (m, v) = if self.first[i].is_some() {
                        let (dm, dv) = (it.next().expect("item"), it.next().expect("item"));
                        (c.add(&dm, &gm)?, c.add(&dv, &gv)?)
                    } else {
                        (gm, gv)
                    };
                    self.first[i] = Some(m);
                    self.second[i] = Some(v);
                }
                let delta = (a.eps / s).powi(2).max(ADAM_FLOOR);
                let mut floored = Vec::with_capacity(trained.len());
                for &i in &trained {
                    floored.push(c.add_const(self.second[i].as_ref().expect("set"), delta)?);
                }
                let refs: Vec<&T> = floored.iter().collect();
                let roots = c.inv_sqrt_many(&refs)?;
                let pairs: Vec<(&T, &T)> = trained
                    .iter()
                    .zip(&roots)
                    .map(|(&i, r)| (self.first[i].as_ref().expect("set"), r))
                    .collect();
                let ratios = c.mul_many(&pairs)?;
                let items: Vec<(&T, f64)> = ratios.iter().map(|r| (r, lr)).collect();
                c.scale_many(&items)?
            }
        };
        for (&i, d) in trained.iter().zip(deltas) {
            weights[i] = c.sub(&weights[i], &d)?;
        }
        Ok(())
    }
}
