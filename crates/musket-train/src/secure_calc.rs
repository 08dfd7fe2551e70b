//! [`Calc`] on secret shares: every operation through [`Protocol`] and the functions of
//! `musket-nn`, at the fixed-point scale given.

use crate::calc::{Calc, Gather};
use musket_core::{maps, msb, MpcError, Protocol, Result, Share};
use musket_net::CommStats;
use musket_nn as nn;
use musket_ring::{FixedPoint, RingTensor};

/// Extra fractional bits of small public factors in [`Calc::scale_many`]: `lr / batch` =
/// 0.1 / 32 keeps 1e-5 relative precision.
const FINE_BITS: u32 = 12;

/// Padding value of max-pooling windows: below every encodable value, close enough that the
/// comparisons' differences cannot wrap (as `musket_nn::max_pool2d`).
const LOWEST: i64 = -(1 << 62);

/// One party's view of a secure training run.
pub struct SecureCalc<'p, P: Protocol> {
    /// The back end.
    pub p: &'p mut P,
    /// The fixed-point encoding of every value.
    pub fp: FixedPoint,
}

impl<'p, P: Protocol> SecureCalc<'p, P> {
    /// Wraps a back end.
    pub fn new(p: &'p mut P, fp: FixedPoint) -> Self {
        Self { p, fp }
    }

    fn fine(&self) -> FixedPoint {
        FixedPoint::new((self.fp.frac_bits() + FINE_BITS).min(30))
    }

    /// Truncates several tensors by the same number of bits in one call (one round trip).
    fn truncate_many(&mut self, ts: Vec<P::Share>, bits: u32) -> Result<Vec<P::Share>> {
        if ts.len() <= 1 {
            if ts.is_empty() {
                return Ok(ts);
            }
            return Ok(vec![self.p.truncate(&ts[0], bits)?]);
        }
        let refs: Vec<&P::Share> = ts.iter().collect();
        let all = nn::concat_shares(self.p, &refs)?;
        let cut = self.p.truncate(&all, bits)?;
        let shapes: Vec<Vec<usize>> = ts.iter().map(|t| t.shape().to_vec()).collect();
        nn::split_share(self.p, &cut, &shapes)
    }
}

fn ring(shape: &[usize], data: Vec<u64>) -> Result<RingTensor> {
    Ok(RingTensor::new(shape.to_vec(), data)?)
}

impl<P: Protocol> Calc for SecureCalc<'_, P> {
    type T = P::Share;
    type Mask = P::Bits;

    fn shape(t: &P::Share) -> Vec<usize> {
        t.shape().to_vec()
    }
    fn reshape(&mut self, t: &P::Share, shape: &[usize]) -> Result<P::Share> {
        self.p.reshape(t, shape)
    }
    fn gather(&mut self, t: &P::Share, shape: &[usize], src: &Gather) -> Result<P::Share> {
        self.p.linear(t, &maps::Pick { shape, sources: src })
    }
    fn gather_adjoint(&mut self, g: &P::Share, shape: &[usize], src: &Gather) -> Result<P::Share> {
        self.p.linear(g, &maps::ScatterAdd { shape, targets: src })
    }
    fn fill_lowest(&mut self, t: &P::Share, at: &[bool]) -> Result<P::Share> {
        let pad = at.iter().map(|&a| if a { LOWEST as u64 } else { 0 }).collect();
        self.p.add_public(t, &ring(t.shape(), pad)?)
    }
    fn add(&mut self, a: &P::Share, b: &P::Share) -> Result<P::Share> {
        self.p.add(a, b)
    }
    fn sub(&mut self, a: &P::Share, b: &P::Share) -> Result<P::Share> {
        self.p.sub(a, b)
    }
    fn neg(&mut self, t: &P::Share) -> Result<P::Share> {
        self.p.neg(t)
    }
    fn add_const(&mut self, t: &P::Share, c: f64) -> Result<P::Share> {
        let v = self.fp.encode_one(c).ok_or_else(|| MpcError::Usage(format!("constant {c} out of range")))?;
        self.p.add_public(t, &RingTensor::filled(t.shape(), v))
    }
    fn scale_many(&mut self, items: &[(&P::Share, f64)]) -> Result<Vec<P::Share>> {
        // Small factors (below 1/16: learning rates, 1/batch, 1 - beta2) get 12 more
        // fractional bits; the others the values' own scale, so that the product may reach
        // 2^(62-2f) (2^30 at f = 16) instead of 2^18. One truncation per group.
        let fine = self.fine();
        let mut out: Vec<Option<P::Share>> = vec![None; items.len()];
        let mut groups: [Vec<(usize, P::Share)>; 2] = [Vec::new(), Vec::new()];
        for (k, (t, c)) in items.iter().enumerate() {
            let small = c.abs() < 1.0 / 16.0;
            let enc = if small { fine } else { self.fp };
            let v = enc.encode_one(*c).ok_or_else(|| MpcError::Usage(format!("factor {c} out of range")))?;
            groups[usize::from(small)].push((k, self.p.scale(t, v)?));
        }
        for (g, bits) in groups.into_iter().zip([self.fp.frac_bits(), fine.frac_bits()]) {
            let (at, ts): (Vec<usize>, Vec<P::Share>) = g.into_iter().unzip();
            for (k, t) in at.into_iter().zip(self.truncate_many(ts, bits)?) {
                out[k] = Some(t);
            }
        }
        Ok(out.into_iter().map(|t| t.expect("every item scaled")).collect())
    }
    fn scale_each(&mut self, t: &P::Share, c: &[f64]) -> Result<P::Share> {
        let fine = self.fine();
        let enc = fine.encode(c)?;
        let scaled = self.p.mul_public(t, &ring(t.shape(), enc)?)?;
        self.p.truncate(&scaled, fine.frac_bits())
    }
    fn mul_many(&mut self, pairs: &[(&P::Share, &P::Share)]) -> Result<Vec<P::Share>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let prods = nn::mul_many(self.p, pairs)?;
        self.truncate_many(prods, self.fp.frac_bits())
    }
    fn mul_indicator(&mut self, a: &P::Share, ind: &P::Share) -> Result<P::Share> {
        self.p.mul(a, ind)
    }
    fn matmul_many(&mut self, pairs: &[(&P::Share, &P::Share)]) -> Result<Vec<P::Share>> {
        if let [(a, b)] = pairs {
            return Ok(vec![self.p.matmul_truncate(a, b, self.fp.frac_bits())?]);
        }
        let mut prods = Vec::with_capacity(pairs.len());
        for (a, b) in pairs {
            prods.push(self.p.matmul(a, b)?);
        }
        self.truncate_many(prods, self.fp.frac_bits())
    }
    fn relu(&mut self, x: &P::Share) -> Result<(P::Share, P::Bits)> {
        let m = msb(self.p, x)?;
        let neg = self.p.mul_bits(x, &m)?;
        Ok((self.p.sub(x, &neg)?, m))
    }
    fn apply_mask(&mut self, g: &P::Share, mask: &P::Bits) -> Result<P::Share> {
        let neg = self.p.mul_bits(g, mask)?;
        self.p.sub(g, &neg)
    }
    fn max_last(&mut self, x: &P::Share) -> Result<(P::Share, P::Share)> {
        nn::max_with_onehot_last(self.p, x)
    }
    fn sigmoid(&mut self, x: &P::Share) -> Result<P::Share> {
        nn::sigmoid(self.p, self.fp, x)
    }
    fn tanh(&mut self, x: &P::Share) -> Result<P::Share> {
        nn::tanh(self.p, self.fp, x)
    }
    fn softmax_last(&mut self, x: &P::Share) -> Result<P::Share> {
        let axis = x.shape().len().saturating_sub(1);
        nn::softmax(self.p, self.fp, x, axis)
    }
    fn log_softmax_last(&mut self, x: &P::Share) -> Result<P::Share> {
        let axis = x.shape().len().saturating_sub(1);
        nn::log_softmax(self.p, self.fp, x, axis)
    }
    fn exp(&mut self, x: &P::Share) -> Result<P::Share> {
        nn::exp(self.p, self.fp, x)
    }
    fn log(&mut self, x: &P::Share) -> Result<P::Share> {
        nn::log(self.p, self.fp, x)
    }
    fn inv_sqrt_many(&mut self, ts: &[&P::Share]) -> Result<Vec<P::Share>> {
        if ts.is_empty() {
            return Ok(Vec::new());
        }
        let all = nn::concat_shares(self.p, ts)?;
        let r = nn::inv_sqrt(self.p, self.fp, &all)?;
        let shapes: Vec<Vec<usize>> = ts.iter().map(|t| t.shape().to_vec()).collect();
        nn::split_share(self.p, &r, &shapes)
    }
    fn begin(&mut self, what: &str) {
        self.p.begin_layer(what);
    }
    fn reveal_to(&mut self, t: &P::Share, party: usize) -> Result<Option<Vec<f64>>> {
        Ok(self.p.reveal_to(t, party)?.map(|r| self.fp.decode(r.data())))
    }
    fn party(&self) -> usize {
        self.p.party_id()
    }
    fn comm(&self) -> CommStats {
        self.p.stats()
    }
}
