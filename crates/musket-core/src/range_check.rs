//! The secure range check: a wrapper around any back end that counts, in secret, the elements
//! that left their safe range during a computation, and reveals one bit at the end.
//!
//! Where no party may see both the weights and the input (parties in separate processes), the
//! plaintext [`crate::Audit`] cannot run. Instead every party wraps its back end in
//! [`RangeChecked`]: the model executor passes the operands of layers whose products need a
//! bound to [`Protocol::check_bound`], and the secure functions pass the bits marking inputs
//! outside their domain to [`Protocol::note_out_of_range`]. Both are added to one secret count;
//! [`RangeChecked::verdict`] opens `[count > 0]`, one bit, before the output is opened. It is
//! opened to every compute party, so that all of them fail together (the output receiver would
//! otherwise abort alone while the others, who only send their output shares, exit as if
//! the run had succeeded); it says nothing about which layer or element.
//!
//! Cost: bound checks are deferred and batched (one comparison circuit per
//! [`FLUSH_ELEMENTS`] checked elements, both signs at once), each batch folded to one bit per
//! 64 elements by 6 rounds of ANDs before it is converted to arithmetic and summed; domain flags
//! are free (local sums). The verdict is one comparison of one element and one opening.

use crate::protocol::{LinearMap, LinearMap2, Protocol, Share};
use crate::{msb, MpcError, Result};
use musket_net::CommStats;
use musket_ring::RingTensor;

/// Checked elements held before one batched comparison runs.
pub const FLUSH_ELEMENTS: usize = 1 << 21;

/// A back end with a secret count of out-of-range elements (see the module documentation).
pub struct RangeChecked<'a, P: Protocol> {
    inner: &'a mut P,
    /// Secret number of flagged elements so far (shape `[1]`), if any check ran.
    count: Option<P::Share>,
    /// Values that must be non-negative (`x + bound - 1` and `bound - 1 - x`), flattened.
    pending: Vec<P::Share>,
    pending_len: usize,
}

fn flatten(t: &RingTensor) -> std::result::Result<RingTensor, musket_ring::ShapeError> {
    t.reshape(&[t.len()])
}

impl<'a, P: Protocol> RangeChecked<'a, P> {
    /// Wraps a back end.
    pub fn new(inner: &'a mut P) -> Self {
        Self { inner, count: None, pending: Vec::new(), pending_len: 0 }
    }

    fn add_to_count(&mut self, flags: &P::Share) -> Result<()> {
        let total = self.inner.linear(flags, &|t| {
            let s = t.data().iter().fold(0u64, |a, &v| a.wrapping_add(v));
            Ok(RingTensor::from_vec(vec![s]))
        })?;
        self.count = Some(match self.count.take() {
            None => total,
            Some(c) => self.inner.add(&c, &total)?,
        });
        Ok(())
    }

    /// Runs the deferred bound checks: one sign circuit over all pending values, the sign bits
    /// folded by OR within each 64-bit word (6 AND rounds), one bit per word converted and
    /// added to the count.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let parts = std::mem::take(&mut self.pending);
        let n = std::mem::take(&mut self.pending_len);
        let mut all = parts[0].clone();
        for part in &parts[1..] {
            all = self.inner.linear2(&all, part, &|a, b| {
                let mut v = a.data().to_vec();
                v.extend_from_slice(b.data());
                Ok(RingTensor::from_vec(v))
            })?;
        }
        let p = &mut *self.inner;
        let signs = msb(p, &all)?;
        // Clear the padding bits of the last word, then OR-fold every word onto its bit 0.
        let tail = n % 64;
        let mut w = p.bits_linear(&signs, &|ws| {
            let mut v = ws.to_vec();
            if tail != 0 {
                if let Some(last) = v.last_mut() {
                    *last &= (1u64 << tail) - 1;
                }
            }
            v
        });
        for shift in [32u32, 16, 8, 4, 2, 1] {
            let shifted = p.bits_linear(&w, &|ws| ws.iter().map(|x| x >> shift).collect());
            let both = p.bits_and(&w, &shifted)?;
            w = p.bits_xor(&p.bits_xor(&w, &shifted), &both);
        }
        let words = n.div_ceil(64);
        let packed = p.bits_linear(&w, &|ws| {
            let mut out = vec![0u64; words.div_ceil(64)];
            for (i, x) in ws.iter().enumerate() {
                out[i / 64] |= (x & 1) << (i % 64);
            }
            out
        });
        let flags = p.b2a_packed(&packed, &[words])?;
        self.add_to_count(&flags)
    }

    /// Ends the check: true when any element was out of range (the output must then not be
    /// opened). Every compute party must call it at the same point and learns the same bit.
    pub fn verdict(&mut self) -> Result<bool> {
        self.flush()?;
        let Some(count) = self.count.take() else {
            return Ok(false);
        };
        let p = &mut *self.inner;
        let negated = p.neg(&count)?;
        let positive = msb(p, &negated)?; // [count > 0]: count is small and non-negative
        Ok(p.reveal_bits(&positive)?.first().is_some_and(|w| w & 1 == 1))
    }
}

impl<P: Protocol> Protocol for RangeChecked<'_, P> {
    type Share = P::Share;
    type Bits = P::Bits;

    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn party_id(&self) -> usize {
        self.inner.party_id()
    }
    fn compute_parties(&self) -> usize {
        self.inner.compute_parties()
    }
    fn stats(&self) -> CommStats {
        self.inner.stats()
    }
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
    fn material_requests(&self) -> usize {
        self.inner.material_requests()
    }
    fn material_plan(&self, from: usize) -> Vec<u8> {
        self.inner.material_plan(from)
    }
    fn preprocess(&mut self, plan: &[u8]) -> Result<()> {
        self.inner.preprocess(plan)
    }
    fn abort(&mut self, reason: &str) {
        self.inner.abort(reason)
    }
    fn begin_layer(&mut self, name: &str) {
        self.inner.begin_layer(name)
    }
    fn note_out_of_range(&mut self, flags: &P::Share, _what: &str) -> Result<()> {
        self.add_to_count(flags)
    }
    fn assume_within(&mut self, x: &P::Share, bound: u64, what: &str) -> Result<()> {
        // The plan bounded this value where it was produced; an audit underneath still checks.
        self.inner.assume_within(x, bound, what)
    }
    fn check_bound(
        &mut self,
        x: &P::Share,
        upper: Option<u64>,
        lower: Option<u64>,
        _what: &str,
    ) -> Result<()> {
        if x.is_empty() || (upper.is_none() && lower.is_none()) {
            return Ok(());
        }
        if [upper, lower].iter().flatten().any(|&b| b == 0 || b > 1 << 62) {
            return Err(MpcError::Usage("range check bound out of range".into()));
        }
        let flat = self.inner.linear(x, &flatten)?;
        let n = flat.len();
        if let Some(u) = upper {
            let neg = self.inner.neg(&flat)?;
            let below = self.inner.add_public(&neg, &RingTensor::filled(&[n], u - 1))?; // u - 1 - x >= 0
            self.pending.push(below);
            self.pending_len += n;
        }
        if let Some(l) = lower {
            let above = self.inner.add_public(&flat, &RingTensor::filled(&[n], l - 1))?; // x + l - 1 >= 0
            self.pending.push(above);
            self.pending_len += n;
        }
        if self.pending_len >= FLUSH_ELEMENTS {
            self.flush()?;
        }
        Ok(())
    }

    fn input(&mut self, owner: usize, value: Option<&RingTensor>, shape: &[usize]) -> Result<P::Share> {
        self.inner.input(owner, value, shape)
    }
    fn reveal_to(&mut self, x: &P::Share, receiver: usize) -> Result<Option<RingTensor>> {
        self.inner.reveal_to(x, receiver)
    }
    fn reveal(&mut self, x: &P::Share) -> Result<RingTensor> {
        self.inner.reveal(x)
    }
    fn linear(&self, x: &P::Share, f: LinearMap<'_>) -> Result<P::Share> {
        self.inner.linear(x, f)
    }
    fn linear2(&self, a: &P::Share, b: &P::Share, f: LinearMap2<'_>) -> Result<P::Share> {
        self.inner.linear2(a, b, f)
    }
    fn add_public(&self, x: &P::Share, c: &RingTensor) -> Result<P::Share> {
        self.inner.add_public(x, c)
    }
    fn mul(&mut self, a: &P::Share, b: &P::Share) -> Result<P::Share> {
        self.inner.mul(a, b)
    }
    fn matmul(&mut self, a: &P::Share, b: &P::Share) -> Result<P::Share> {
        self.inner.matmul(a, b)
    }
    fn matmul_batched(&mut self, a: &P::Share, b: &P::Share) -> Result<P::Share> {
        self.inner.matmul_batched(a, b)
    }
    fn onehot_matmul(
        &mut self,
        owner: usize,
        onehot: Option<&RingTensor>,
        rows: usize,
        table: &P::Share,
    ) -> Result<P::Share> {
        self.inner.onehot_matmul(owner, onehot, rows, table)
    }
    fn truncate(&mut self, x: &P::Share, bits: u32) -> Result<P::Share> {
        self.inner.truncate(x, bits)
    }
    fn mul_truncate(&mut self, a: &P::Share, b: &P::Share, bits: u32) -> Result<P::Share> {
        self.inner.mul_truncate(a, b, bits)
    }
    fn matmul_truncate(&mut self, a: &P::Share, b: &P::Share, bits: u32) -> Result<P::Share> {
        self.inner.matmul_truncate(a, b, bits)
    }
    fn matmul_rows_truncate(&mut self, a: &P::Share, b: &P::Share, bits: u32) -> Result<P::Share> {
        self.inner.matmul_rows_truncate(a, b, bits)
    }
    fn matmul_batched_truncate(&mut self, a: &P::Share, b: &P::Share, bits: u32) -> Result<P::Share> {
        self.inner.matmul_batched_truncate(a, b, bits)
    }
    fn dot_truncate(
        &mut self,
        pairs: &[(&P::Share, &P::Share)],
        extra: Option<&P::Share>,
        bits: u32,
    ) -> Result<P::Share> {
        self.inner.dot_truncate(pairs, extra, bits)
    }
    fn bits_len(&self, x: &P::Bits) -> usize {
        self.inner.bits_len(x)
    }
    fn bits_linear(&self, x: &P::Bits, f: &dyn Fn(&[u64]) -> Vec<u64>) -> P::Bits {
        self.inner.bits_linear(x, f)
    }
    fn bits_linear2(&self, a: &P::Bits, b: &P::Bits, f: crate::protocol::WordMap2<'_>) -> P::Bits {
        self.inner.bits_linear2(a, b, f)
    }
    fn bits_concat(&self, parts: &[&P::Bits]) -> P::Bits {
        self.inner.bits_concat(parts)
    }
    fn bits_xor(&self, a: &P::Bits, b: &P::Bits) -> P::Bits {
        self.inner.bits_xor(a, b)
    }
    fn bits_xor_public(&self, a: &P::Bits, c: &[u64]) -> P::Bits {
        self.inner.bits_xor_public(a, c)
    }
    fn bits_and(&mut self, a: &P::Bits, b: &P::Bits) -> Result<P::Bits> {
        self.inner.bits_and(a, b)
    }
    fn reveal_bits(&mut self, x: &P::Bits) -> Result<Vec<u64>> {
        self.inner.reveal_bits(x)
    }
    fn a2b_operands(&mut self, x: &P::Share) -> Result<(P::Bits, P::Bits)> {
        self.inner.a2b_operands(x)
    }
    fn b2a_packed(&mut self, bits: &P::Bits, shape: &[usize]) -> Result<P::Share> {
        self.inner.b2a_packed(bits, shape)
    }
    fn mul_bits(&mut self, x: &P::Share, bits: &P::Bits) -> Result<P::Share> {
        self.inner.mul_bits(x, bits)
    }
    fn add(&self, a: &P::Share, b: &P::Share) -> Result<P::Share> {
        self.inner.add(a, b)
    }
    fn sub(&self, a: &P::Share, b: &P::Share) -> Result<P::Share> {
        self.inner.sub(a, b)
    }
    fn neg(&self, x: &P::Share) -> Result<P::Share> {
        self.inner.neg(x)
    }
    fn scale(&self, x: &P::Share, c: u64) -> Result<P::Share> {
        self.inner.scale(x, c)
    }
    fn mul_public(&self, x: &P::Share, c: &RingTensor) -> Result<P::Share> {
        self.inner.mul_public(x, c)
    }
    fn sum_axis(&self, x: &P::Share, axis: usize) -> Result<P::Share> {
        self.inner.sum_axis(x, axis)
    }
    fn reshape(&self, x: &P::Share, shape: &[usize]) -> Result<P::Share> {
        self.inner.reshape(x, shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plain;

    fn t_signed(v: &[i64]) -> RingTensor {
        RingTensor::from_vec(v.iter().map(|&x| x as u64).collect())
    }

    #[test]
    fn bound_checks_and_flags_count_on_the_oracle() {
        let vals: Vec<u64> = [0i64, 5, -5, 99, -100, 100, -101, 1 << 40].iter().map(|&v| v as u64).collect();
        for (bound, expect) in [(1u64 << 41, false), (101, true), (102, false), (100, true)] {
            let mut plain = Plain;
            let mut c = RangeChecked::new(&mut plain);
            let x = RingTensor::from_vec(vals[..7].to_vec());
            c.check_bound(&x, Some(bound), Some(bound), "test").unwrap();
            assert_eq!(c.verdict().unwrap(), expect, "bound {bound}");
        }
        // One side only: -100 is fine without a lower bound, not with one.
        let mut plain = Plain;
        let mut c = RangeChecked::new(&mut plain);
        c.check_bound(&t_signed(&[-100, 5]), Some(100), None, "relu").unwrap();
        assert!(!c.verdict().unwrap());
        let mut plain = Plain;
        let mut c = RangeChecked::new(&mut plain);
        c.check_bound(&t_signed(&[-100, 5]), None, Some(100), "lower").unwrap();
        assert!(c.verdict().unwrap());
        // Domain flags alone, and many elements across a flush.
        let mut plain = Plain;
        let mut c = RangeChecked::new(&mut plain);
        c.note_out_of_range(&RingTensor::from_vec(vec![0, 0, 1]), "f").unwrap();
        assert!(c.verdict().unwrap());
        let mut plain = Plain;
        let mut c = RangeChecked::new(&mut plain);
        let big = RingTensor::from_vec(vec![7; FLUSH_ELEMENTS / 2 + 3]);
        c.check_bound(&big, Some(8), None, "big").unwrap();
        c.check_bound(&RingTensor::from_vec(vec![1, 2, 3]), Some(8), Some(8), "small").unwrap();
        assert!(!c.verdict().unwrap());
        let mut plain = Plain;
        let mut c = RangeChecked::new(&mut plain);
        let mut v = vec![7u64; FLUSH_ELEMENTS / 2 + 3];
        v[FLUSH_ELEMENTS / 2 + 1] = 8;
        c.check_bound(&RingTensor::from_vec(v), Some(8), None, "big").unwrap();
        assert!(c.verdict().unwrap());
        let mut plain = Plain;
        let mut c = RangeChecked::new(&mut plain);
        assert!(!c.verdict().unwrap(), "nothing checked");
    }
}
