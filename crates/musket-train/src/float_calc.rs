//! The f64 reference of [`Calc`]: exact real arithmetic, the plaintext autograd every secure
//! gradient is tested against.

use crate::calc::{Calc, Gather};
use musket_core::{MpcError, Result};
use musket_graph::FloatTensor;
use musket_net::CommStats;

/// Exact f64 arithmetic.
#[derive(Debug, Default, Clone, Copy)]
pub struct FloatCalc;

fn tensor(shape: &[usize], data: Vec<f64>) -> Result<FloatTensor> {
    FloatTensor::new(shape.to_vec(), data)
        .ok_or_else(|| MpcError::Usage(format!("{shape:?} does not fit the element count")))
}

fn same(a: &FloatTensor, b: &FloatTensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(MpcError::Usage(format!("shapes {:?} and {:?} differ", a.shape, b.shape)));
    }
    Ok(())
}

fn zip(a: &FloatTensor, b: &FloatTensor, f: impl Fn(f64, f64) -> f64) -> Result<FloatTensor> {
    same(a, b)?;
    tensor(&a.shape, a.data.iter().zip(&b.data).map(|(x, y)| f(*x, *y)).collect())
}

fn map(t: &FloatTensor, f: impl Fn(f64) -> f64) -> FloatTensor {
    FloatTensor { shape: t.shape.clone(), data: t.data.iter().map(|&x| f(x)).collect() }
}

/// Applies `f` to each row of the last axis.
fn rows(t: &FloatTensor, f: impl Fn(&[f64], &mut Vec<f64>)) -> FloatTensor {
    let n = t.shape.last().copied().unwrap_or(1).max(1);
    let mut out = Vec::with_capacity(t.data.len());
    for row in t.data.chunks(n) {
        f(row, &mut out);
    }
    FloatTensor { shape: t.shape.clone(), data: out }
}

fn row_max(row: &[f64]) -> f64 {
    row.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

impl Calc for FloatCalc {
    type T = FloatTensor;
    type Mask = Vec<bool>;

    fn shape(t: &FloatTensor) -> Vec<usize> {
        t.shape.clone()
    }
    fn reshape(&mut self, t: &FloatTensor, shape: &[usize]) -> Result<FloatTensor> {
        tensor(shape, t.data.clone())
    }
    fn gather(&mut self, t: &FloatTensor, shape: &[usize], src: &Gather) -> Result<FloatTensor> {
        tensor(shape, src.iter().map(|s| s.map_or(0.0, |j| t.data[j])).collect())
    }
    fn gather_adjoint(&mut self, g: &FloatTensor, shape: &[usize], src: &Gather) -> Result<FloatTensor> {
        if g.data.len() != src.len() {
            // As the secure form's `ScatterAdd` refuses it.
            return Err(MpcError::Usage(format!("{} targets for {} elements", src.len(), g.data.len())));
        }
        let mut out = vec![0.0; shape.iter().product()];
        for (v, s) in g.data.iter().zip(src) {
            if let Some(j) = s {
                out[*j] += v;
            }
        }
        tensor(shape, out)
    }
    fn fill_lowest(&mut self, t: &FloatTensor, at: &[bool]) -> Result<FloatTensor> {
        let data = t.data.iter().zip(at).map(|(&v, &a)| if a { f64::NEG_INFINITY } else { v }).collect();
        tensor(&t.shape, data)
    }
    fn add(&mut self, a: &FloatTensor, b: &FloatTensor) -> Result<FloatTensor> {
        zip(a, b, |x, y| x + y)
    }
    fn sub(&mut self, a: &FloatTensor, b: &FloatTensor) -> Result<FloatTensor> {
        zip(a, b, |x, y| x - y)
    }
    fn neg(&mut self, t: &FloatTensor) -> Result<FloatTensor> {
        Ok(map(t, |x| -x))
    }
    fn add_const(&mut self, t: &FloatTensor, c: f64) -> Result<FloatTensor> {
        Ok(map(t, |x| x + c))
    }
    fn scale_many(&mut self, items: &[(&FloatTensor, f64)]) -> Result<Vec<FloatTensor>> {
        Ok(items.iter().map(|(t, c)| map(t, |x| x * c)).collect())
    }
    fn scale_each(&mut self, t: &FloatTensor, c: &[f64]) -> Result<FloatTensor> {
        tensor(&t.shape, t.data.iter().zip(c).map(|(x, c)| x * c).collect())
    }
    fn mul_many(&mut self, pairs: &[(&FloatTensor, &FloatTensor)]) -> Result<Vec<FloatTensor>> {
        pairs.iter().map(|(a, b)| zip(a, b, |x, y| x * y)).collect()
    }
    fn mul_indicator(&mut self, a: &FloatTensor, ind: &FloatTensor) -> Result<FloatTensor> {
        zip(a, ind, |x, y| x * y)
    }
    fn matmul_many(&mut self, pairs: &[(&FloatTensor, &FloatTensor)]) -> Result<Vec<FloatTensor>> {
        pairs
            .iter()
            .map(|(a, b)| {
                if a.shape.len() != 2 || b.shape.len() != 2 || a.shape[1] != b.shape[0] {
                    return Err(MpcError::Usage(format!("matmul of {:?} and {:?}", a.shape, b.shape)));
                }
                let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
                let mut out = vec![0.0; m * n];
                for i in 0..m {
                    for l in 0..k {
                        let v = a.data[i * k + l];
                        if v != 0.0 {
                            for j in 0..n {
                                out[i * n + j] += v * b.data[l * n + j];
                            }
                        }
                    }
                }
                tensor(&[m, n], out)
            })
            .collect()
    }
    fn relu(&mut self, x: &FloatTensor) -> Result<(FloatTensor, Vec<bool>)> {
        Ok((map(x, |v| v.max(0.0)), x.data.iter().map(|&v| v < 0.0).collect()))
    }
    fn apply_mask(&mut self, g: &FloatTensor, mask: &Vec<bool>) -> Result<FloatTensor> {
        tensor(&g.shape, g.data.iter().zip(mask).map(|(&v, &m)| if m { 0.0 } else { v }).collect())
    }
    fn max_last(&mut self, x: &FloatTensor) -> Result<(FloatTensor, FloatTensor)> {
        let n = x.shape.last().copied().unwrap_or(1).max(1);
        let mut best = Vec::with_capacity(x.data.len() / n);
        let mut onehot = Vec::with_capacity(x.data.len());
        for row in x.data.chunks(n) {
            let m = row_max(row);
            let at = row.iter().position(|&v| v == m).unwrap_or(0);
            best.push(m);
            onehot.extend((0..row.len()).map(|i| if i == at { 1.0 } else { 0.0 }));
        }
        let shape = &x.shape[..x.shape.len().saturating_sub(1)];
        Ok((tensor(shape, best)?, tensor(&x.shape, onehot)?))
    }
    fn sigmoid(&mut self, x: &FloatTensor) -> Result<FloatTensor> {
        Ok(map(x, |v| 1.0 / (1.0 + (-v).exp())))
    }
    fn tanh(&mut self, x: &FloatTensor) -> Result<FloatTensor> {
        Ok(map(x, f64::tanh))
    }
    fn softmax_last(&mut self, x: &FloatTensor) -> Result<FloatTensor> {
        Ok(rows(x, |row, out| {
            let m = row_max(row);
            let sum: f64 = row.iter().map(|v| (v - m).exp()).sum();
            out.extend(row.iter().map(|v| (v - m).exp() / sum));
        }))
    }
    fn log_softmax_last(&mut self, x: &FloatTensor) -> Result<FloatTensor> {
        Ok(rows(x, |row, out| {
            let m = row_max(row);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            out.extend(row.iter().map(|v| v - lse));
        }))
    }
    fn exp(&mut self, x: &FloatTensor) -> Result<FloatTensor> {
        Ok(map(x, f64::exp))
    }
    fn log(&mut self, x: &FloatTensor) -> Result<FloatTensor> {
        Ok(map(x, f64::ln))
    }
    fn inv_sqrt_many(&mut self, ts: &[&FloatTensor]) -> Result<Vec<FloatTensor>> {
        Ok(ts.iter().map(|t| map(t, |x| 1.0 / x.sqrt())).collect())
    }
    fn reveal_to(&mut self, t: &FloatTensor, _party: usize) -> Result<Option<Vec<f64>>> {
        Ok(Some(t.data.clone()))
    }
    fn party(&self) -> usize {
        0
    }
    fn comm(&self) -> CommStats {
        CommStats::default()
    }
}
