//! The plaintext range audit: the oracle [`Plain`] with every operation checked for the
//! conditions under which the secure protocols compute it correctly.
//!
//! A secret-shared value wraps modulo 2^64 silently, and the truncation protocols need
//! `|x| < 2^62`; the secure functions have domains outside of which they saturate. Because
//! every secure function is written once against [`Protocol`], running it on this protocol
//! sees every intermediate value it computes (a layer norm's sum of squares, exp's powers, a
//! softmax denominator), not only layer outputs, and checks each one:
//!
//! - products (`mul`, `scale`, `mul_public`, matrix products) and sums (`add`, `sub`,
//!   `add_public`, `sum_axis`): the exact integer result must not wrap, i.e. stay below 2^63
//!   in magnitude (products with 0/1 bits, as in max-pool's padding, may come close);
//! - truncation inputs: below 2^62 (the truncation protocols' bound, which every fixed-point
//!   product meets before it is scaled back);
//! - [`Protocol::note_out_of_range`] flags: none set;
//! - [`Protocol::assume_within`] bounds (narrow sign circuits): every element below.
//!
//! Findings name the layer (from [`Protocol::begin_layer`]) and what failed. The secure run
//! computes the same values up to the one-ulp randomness of truncation, so a clean audit on an
//! input means the secure run on that input has no overflow and no saturated function.

use crate::protocol::Protocol;
use crate::{Plain, Result};
use musket_net::CommStats;
use musket_ring::RingTensor;
use musket_ring::{LinearOp, LinearOp2};
use std::cell::RefCell;

const PRODUCT_OVERFLOWS: &str = "a product wraps past 2^63 (overflow)";
const MATMUL_OVERFLOWS: &str = "a matrix product wraps past 2^63 (overflow)";
const SUM_WRAPS: &str = "a sum wraps past 2^63 (overflow)";

/// Largest magnitude a value may reach before truncation (the truncation protocols' bound).
const TRUNCATION_BOUND: i128 = 1 << 62;
/// Magnitude at which a 64-bit ring value wraps.
const WRAP_BOUND: i128 = 1 << 63;

/// One problem the audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The layer being computed (empty before the first layer: input sharing).
    pub layer: String,
    /// What went wrong, e.g. "a product exceeds 2^62 before truncation".
    pub what: String,
    /// How many elements were affected (over the whole run, for this layer and problem).
    pub count: u64,
}

/// The plaintext oracle with range checks (see the module documentation).
#[derive(Debug, Default)]
pub struct Audit {
    layer: String,
    // Interior mutability: sums and scalings are `&self` operations of the trait.
    findings: RefCell<Vec<Finding>>,
}

impl Audit {
    /// A fresh audit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything found so far, in the order found (one entry per layer and problem).
    pub fn findings(&self) -> Vec<Finding> {
        self.findings.borrow().clone()
    }

    fn record(&self, what: &str, count: u64) {
        if count == 0 {
            return;
        }
        let mut findings = self.findings.borrow_mut();
        match findings.iter_mut().find(|f| f.layer == self.layer && f.what == what) {
            Some(f) => f.count += count,
            None => findings.push(Finding { layer: self.layer.clone(), what: what.to_string(), count }),
        }
    }

    fn check_sum(&self, a: &RingTensor, b: &RingTensor, sign: i128) {
        if a.len() == b.len() {
            let n = Self::count_beyond(
                a.data().iter().zip(b.data()).map(|(&x, &y)| signed(x) + sign * signed(y)),
                WRAP_BOUND,
            );
            self.record(SUM_WRAPS, n);
        }
    }

    fn check_scaled(&self, x: &RingTensor, c: impl Fn(usize) -> u64) {
        let n = Self::count_beyond(
            x.data().iter().enumerate().map(|(i, &v)| signed(v) * signed(c(i))),
            WRAP_BOUND,
        );
        self.record(PRODUCT_OVERFLOWS, n);
    }

    fn count_beyond(values: impl Iterator<Item = i128>, bound: i128) -> u64 {
        values.filter(|v| v.abs() >= bound).count() as u64
    }
}

fn signed(v: u64) -> i128 {
    v as i64 as i128
}

/// The exact integer matrix product exceeds `bound` somewhere: first a cheap sufficient test
/// (largest row L1 norm of `a` times the largest `|b|`), then the exact product in i128 only
/// where that bound is not enough.
fn matmul_exceeds(a: &[u64], b: &[u64], m: usize, k: usize, n: usize, bound: i128) -> u64 {
    let row_l1 =
        (0..m).map(|i| a[i * k..(i + 1) * k].iter().map(|&v| signed(v).unsigned_abs()).sum::<u128>());
    let max_row = row_l1.max().unwrap_or(0);
    let max_b = b.iter().map(|&v| signed(v).unsigned_abs()).max().unwrap_or(0);
    if max_row.checked_mul(max_b).is_some_and(|p| p < bound as u128) {
        return 0;
    }
    let mut count = 0;
    let mut acc = vec![0i128; n];
    for i in 0..m {
        acc.iter_mut().for_each(|v| *v = 0);
        for kk in 0..k {
            let av = signed(a[i * k + kk]);
            if av == 0 {
                continue;
            }
            for (o, &bv) in acc.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
                *o = o.saturating_add(av.saturating_mul(signed(bv)));
            }
        }
        count += acc.iter().filter(|v| v.abs() >= bound).count() as u64;
    }
    count
}

impl Protocol for Audit {
    type Share = RingTensor;
    type Bits = Vec<u64>;

    fn name(&self) -> &'static str {
        "audit"
    }
    fn party_id(&self) -> usize {
        0
    }
    fn compute_parties(&self) -> usize {
        1
    }
    fn stats(&self) -> CommStats {
        Plain.stats()
    }
    fn abort(&mut self, _reason: &str) {}

    fn begin_layer(&mut self, name: &str) {
        self.layer = name.to_string();
    }
    fn note_out_of_range(&mut self, flags: &RingTensor, what: &str) -> Result<()> {
        let n = flags.data().iter().filter(|&&v| v != 0).count() as u64;
        self.record(&format!("{what} outside its domain (saturated)"), n);
        Ok(())
    }

    fn assume_within(&mut self, x: &RingTensor, bound: u64, what: &str) -> Result<()> {
        let n = Self::count_beyond(x.data().iter().map(|&v| signed(v)), bound as i128);
        self.record(&format!("{what}: input outside its domain (beyond 2^{} in the ring)", bound.ilog2()), n);
        Ok(())
    }
    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<RingTensor> {
        Plain.input(owner, value, shape)
    }
    fn reveal_to(&mut self, x: &RingTensor, receiver: usize) -> Result<Option<RingTensor>> {
        Plain.reveal_to(x, receiver)
    }
    fn reveal(&mut self, x: &RingTensor) -> Result<RingTensor> {
        Plain.reveal(x)
    }
    fn linear(&self, x: &RingTensor, f: &dyn LinearOp) -> Result<RingTensor> {
        Plain.linear(x, f)
    }
    fn linear2(&self, a: &RingTensor, b: &RingTensor, f: &dyn LinearOp2) -> Result<RingTensor> {
        Plain.linear2(a, b, f)
    }
    fn add_public(&self, x: &RingTensor, c: &RingTensor) -> Result<RingTensor> {
        self.check_sum(x, c, 1);
        Plain.add_public(x, c)
    }
    fn mul(&mut self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        let out = Plain.mul(a, b)?;
        let n = Self::count_beyond(
            a.data().iter().zip(b.data()).map(|(&x, &y)| signed(x) * signed(y)),
            WRAP_BOUND,
        );
        self.record(PRODUCT_OVERFLOWS, n);
        Ok(out)
    }
    fn matmul(&mut self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        let out = Plain.matmul(a, b)?;
        let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
        let bad = matmul_exceeds(a.data(), b.data(), m, k, n, WRAP_BOUND);
        self.record(MATMUL_OVERFLOWS, bad);
        Ok(out)
    }
    fn matmul_batched(&mut self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        let out = Plain.matmul_batched(a, b)?;
        let (bt, m, k, n) = crate::batched_dims(a.shape(), b.shape())?;
        let mut bad = 0;
        for i in 0..bt {
            bad += matmul_exceeds(
                &a.data()[i * m * k..(i + 1) * m * k],
                &b.data()[i * k * n..(i + 1) * k * n],
                m,
                k,
                n,
                WRAP_BOUND,
            );
        }
        self.record(MATMUL_OVERFLOWS, bad);
        Ok(out)
    }
    fn truncate(&mut self, x: &RingTensor, bits: u32) -> Result<RingTensor> {
        let n = Self::count_beyond(x.data().iter().map(|&v| signed(v)), TRUNCATION_BOUND);
        self.record("a value reaches 2^62 before truncation (overflow)", n);
        Plain.truncate(x, bits)
    }
    fn bits_len(&self, x: &Vec<u64>) -> usize {
        x.len()
    }
    fn bits_linear(&self, x: &Vec<u64>, f: &dyn Fn(&[u64]) -> Vec<u64>) -> Vec<u64> {
        Plain.bits_linear(x, f)
    }
    fn bits_linear2(&self, a: &Vec<u64>, b: &Vec<u64>, f: crate::protocol::WordMap2<'_>) -> Vec<u64> {
        Plain.bits_linear2(a, b, f)
    }
    fn bits_concat(&self, parts: &[&Vec<u64>]) -> Vec<u64> {
        Plain.bits_concat(parts)
    }
    fn bits_xor(&self, a: &Vec<u64>, b: &Vec<u64>) -> Vec<u64> {
        Plain.bits_xor(a, b)
    }
    fn bits_xor_public(&self, a: &Vec<u64>, c: &[u64]) -> Vec<u64> {
        Plain.bits_xor_public(a, c)
    }
    fn bits_and(&mut self, a: &Vec<u64>, b: &Vec<u64>) -> Result<Vec<u64>> {
        Plain.bits_and(a, b)
    }
    fn reveal_bits(&mut self, x: &Vec<u64>) -> Result<Vec<u64>> {
        Plain.reveal_bits(x)
    }
    fn a2b_operands(&mut self, x: &RingTensor) -> Result<(Vec<u64>, Vec<u64>)> {
        Plain.a2b_operands(x)
    }
    fn b2a_packed(&mut self, bits: &Vec<u64>, shape: &[usize]) -> Result<RingTensor> {
        Plain.b2a_packed(bits, shape)
    }
    // Sums are checked for wrapping past 2^63; the other linear maps (moves, broadcasts) are
    // not checked, as they only copy values or add a few of them.
    fn add(&self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        self.check_sum(a, b, 1);
        Plain.add(a, b)
    }
    fn sub(&self, a: &RingTensor, b: &RingTensor) -> Result<RingTensor> {
        self.check_sum(a, b, -1);
        Plain.sub(a, b)
    }
    fn scale(&self, x: &RingTensor, c: u64) -> Result<RingTensor> {
        self.check_scaled(x, |_| c);
        Plain.scale(x, c)
    }
    fn mul_public(&self, x: &RingTensor, c: &RingTensor) -> Result<RingTensor> {
        if x.len() == c.len() {
            self.check_scaled(x, |i| c.data()[i]);
        }
        Plain.mul_public(x, c)
    }
    fn sum_axis(&self, x: &RingTensor, axis: usize) -> Result<RingTensor> {
        let out = Plain.sum_axis(x, axis)?;
        // The exact sums, in i128, for the wrap check.
        if axis < x.shape().len() {
            let s = x.shape();
            let (outer, len, inner) =
                (s[..axis].iter().product::<usize>(), s[axis], s[axis + 1..].iter().product::<usize>());
            let mut exact = vec![0i128; outer * inner];
            for o in 0..outer {
                for l in 0..len {
                    for (e, &v) in exact[o * inner..][..inner]
                        .iter_mut()
                        .zip(&x.data()[(o * len + l) * inner..][..inner])
                    {
                        *e += signed(v);
                    }
                }
            }
            self.record(SUM_WRAPS, Self::count_beyond(exact.into_iter(), WRAP_BOUND));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[i64]) -> RingTensor {
        RingTensor::from_vec(v.iter().map(|&x| x as u64).collect())
    }

    #[test]
    fn each_check_fires_on_its_overflow_and_only_there() {
        let mut a = Audit::new();
        a.begin_layer("small");
        let x = t(&[1 << 30, -(1 << 30), 5]);
        a.mul(&x, &x).unwrap(); // 2^60: fine
        a.truncate(&t(&[(1 << 62) - 1, -(1 << 62) + 1]), 16).unwrap();
        a.add(&t(&[i64::MAX - 1]), &t(&[1])).unwrap();
        a.matmul(
            &RingTensor::new(vec![1, 2], vec![1 << 30, 1 << 30]).unwrap(),
            &RingTensor::new(vec![2, 1], vec![1 << 30, 1 << 30]).unwrap(),
        )
        .unwrap();
        assert!(a.findings().is_empty(), "{:?}", a.findings());

        a.begin_layer("big");
        a.mul(&t(&[1 << 32, 3]), &t(&[1 << 31, 3])).unwrap(); // 2^63 wraps
        a.truncate(&t(&[1 << 62, 0, -(1 << 62)]), 16).unwrap();
        a.add(&t(&[i64::MAX]), &t(&[1])).unwrap();
        a.sub(&t(&[i64::MIN]), &t(&[1])).unwrap();
        a.scale(&t(&[1 << 40]), 1 << 23).unwrap();
        // Two products of 2^62 each: every term fits, the sum wraps.
        let m = RingTensor::new(vec![1, 2], vec![1 << 31, 1 << 31]).unwrap();
        let n = RingTensor::new(vec![2, 1], vec![1 << 31, 1 << 31]).unwrap();
        a.matmul(&m, &n).unwrap();
        a.sum_axis(&t(&[i64::MAX, i64::MAX]), 0).unwrap();
        a.note_out_of_range(&t(&[0, 1, 1]), "exp").unwrap();
        let f = a.findings();
        let count = |what: &str| {
            f.iter().filter(|x| x.layer == "big" && x.what.contains(what)).map(|x| x.count).sum::<u64>()
        };
        assert_eq!(count("a product wraps"), 2, "{f:?}"); // mul and scale
        assert_eq!(count("before truncation"), 2);
        assert_eq!(count("matrix product"), 1);
        assert_eq!(count("sum wraps"), 3);
        assert_eq!(count("exp outside its domain"), 2);
    }
}
