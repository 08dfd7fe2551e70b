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
//! Cost: bound checks are deferred and batched (one circuit per [`FLUSH_ELEMENTS`] checked
//! elements), each batch folded to one bit per 64 elements by 6 rounds of ANDs before it is
//! converted to arithmetic and summed; domain flags are free (local sums). A side alone is a
//! sign test; both sides whose window holds a power of two of values (what the graph's check
//! plan arranges for a product feeding a ReLU) are one test of `x + lower - 1` against that
//! power of two ([`sum_reaches_many`]: 163 AND gates at 2^46 against 2 x 181 for two signs),
//! and so are both sides of a symmetric bound (one value short of a power of two).
//! The verdict is one comparison of one element and one opening.

use crate::compare::sign_of_a2b_operands;
use crate::protocol::{Protocol, Share};
use crate::{msb, sum_reaches_many, MpcError, Result, WindowTest};
use musket_net::CommStats;
use musket_ring::maps::{self, LinearOp, LinearOp2};
use musket_ring::RingTensor;

/// Checked elements held before one batched comparison runs.
pub const FLUSH_ELEMENTS: usize = 1 << 21;

/// A back end with a secret count of out-of-range elements (see the module documentation).
pub struct RangeChecked<'a, P: Protocol> {
    inner: &'a mut P,
    /// Secret number of flagged elements so far (shape `[1]`), if any check ran.
    count: Option<P::Share>,
    /// Values that must be non-negative (`x + bound - 1` and `bound - 1 - x`), flattened.
    signs: Vec<P::Share>,
    /// Two-sided checks as values that must lie in `[0, 2^k)` (`x + lower - 1`, where the
    /// window holds `2^k` values) or, marked `true`, in `[1, 2^k)` (`x + lower`, where it holds
    /// `2^k - 1`, as a symmetric bound's does), with their `k`, flattened.
    windows: Vec<(Window, P::Share)>,
    pending_len: usize,
}

/// A two-sided check as one test against a power of two (see [`window_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Window {
    /// Whether the bottom value is left out: `[1, 2^k)` rather than `[0, 2^k)`.
    bottom_out: std::cmp::Reverse<bool>,
    /// The power of two.
    k: usize,
}

/// The window test of a two-sided check `-lower < x < upper`, if its `upper + lower - 1` legal
/// values are `2^k` (1 to 62) of them (`x + lower - 1` in `[0, 2^k)`) or `2^k - 1` (`x +
/// lower` in `[1, 2^k)`, as for a symmetric bound `lower = upper = 2^(k-1)`); either is one
/// [`sum_reaches_many`] test, the second with its OR of the bits below.
fn window_of(upper: u64, lower: u64) -> Option<Window> {
    let count = upper.checked_add(lower)?.checked_sub(1)?;
    let fits = |c: u64| c.is_power_of_two() && (2..=1 << 62).contains(&c);
    let window = |k: u32, bottom_out| Window { bottom_out: std::cmp::Reverse(bottom_out), k: k as usize };
    if fits(count) {
        Some(window(count.trailing_zeros(), false))
    } else if fits(count + 1) {
        Some(window((count + 1).trailing_zeros(), true))
    } else {
        None
    }
}

impl<'a, P: Protocol> RangeChecked<'a, P> {
    /// Wraps a back end.
    pub fn new(inner: &'a mut P) -> Self {
        Self { inner, count: None, signs: Vec::new(), windows: Vec::new(), pending_len: 0 }
    }

    fn add_to_count(&mut self, flags: &P::Share) -> Result<()> {
        let total = self.inner.linear(flags, &maps::SumAll)?;
        self.count = Some(match self.count.take() {
            None => total,
            Some(c) => self.inner.add(&c, &total)?,
        });
        Ok(())
    }

    /// One flattened share of the concatenated parts.
    fn concat(&self, parts: &[&P::Share]) -> Result<P::Share> {
        let mut all = parts[0].clone();
        for part in &parts[1..] {
            all = self.inner.linear2(&all, part, &maps::ConcatFlat)?;
        }
        Ok(all)
    }

    /// Runs the deferred bound checks: the operands of every pending value in one conversion;
    /// a sign circuit when all of them are values that must be non-negative, else one
    /// [`sum_reaches_many`] test per kind of window (the sign values as values below 2^63),
    /// in lockstep; the failure bits folded by OR within each 64-bit word (6 AND rounds), one
    /// bit per word converted and added to the count.
    fn flush(&mut self) -> Result<()> {
        if self.signs.is_empty() && self.windows.is_empty() {
            return Ok(());
        }
        self.pending_len = 0;
        let signs = std::mem::take(&mut self.signs);
        let mut windows = std::mem::take(&mut self.windows);
        let only_signs = windows.is_empty();
        let sign = Window { bottom_out: std::cmp::Reverse(false), k: 63 };
        windows.extend(signs.into_iter().map(|v| (sign, v)));
        windows.sort_by_key(|(w, _)| *w);
        // Each kind's values, concatenated.
        let mut kinds: Vec<(Window, usize)> = Vec::new();
        for (w, v) in &windows {
            match kinds.last_mut() {
                Some((last, len)) if last == w => *len += v.len(),
                _ => kinds.push((*w, v.len())),
            }
        }
        let all = self.concat(&windows.iter().map(|(_, v)| v).collect::<Vec<_>>())?;
        drop(windows);
        let p = &mut *self.inner;
        let (a, b) = p.a2b_operands(&all)?;
        drop(all);
        let mut fails: Vec<(P::Bits, usize)> = Vec::new();
        if only_signs {
            let n = kinds[0].1;
            fails.push((sign_of_a2b_operands(p, &a, &b, n, 64)?, n));
        } else {
            let mut parts = Vec::with_capacity(kinds.len());
            let mut start = 0;
            for &(_, n) in &kinds {
                let range = start..start + n;
                start += n;
                parts.push((
                    p.bits_linear(&a, &|w| w[range.clone()].to_vec()),
                    p.bits_linear(&b, &|w| w[range.clone()].to_vec()),
                ));
            }
            let tests: Vec<WindowTest<'_, P::Bits>> = kinds
                .iter()
                .zip(&parts)
                .map(|((w, n), (a, b))| WindowTest { a, b, n: *n, k: w.k, below: w.bottom_out.0 })
                .collect();
            let outs = sum_reaches_many(p, &tests)?;
            drop(tests);
            for ((w, n), [bit, above, below]) in kinds.iter().zip(outs) {
                fails.push((bit, *n));
                fails.push((above, *n));
                if w.bottom_out.0 {
                    // Zero below (and, unless the others fail, above): the left-out bottom
                    // value.
                    let ones: Vec<u64> = (0..n.div_ceil(64))
                        .map(|i| if (i + 1) * 64 <= *n { u64::MAX } else { (1u64 << (n % 64)) - 1 })
                        .collect();
                    fails.push((p.bits_xor_public(&below, &ones), *n));
                }
            }
        }
        drop((a, b));
        // Clear the padding bits of each part's last word, then OR-fold every word onto its
        // bit 0.
        let cleared: Vec<P::Bits> = fails
            .iter()
            .map(|(f, n)| {
                let tail = n % 64;
                p.bits_linear(f, &|ws| {
                    let mut v = ws.to_vec();
                    if tail != 0 {
                        if let Some(last) = v.last_mut() {
                            *last &= (1u64 << tail) - 1;
                        }
                    }
                    v
                })
            })
            .collect();
        let mut w = p.bits_concat(&cleared.iter().collect::<Vec<_>>());
        drop((fails, cleared));
        let words = p.bits_len(&w);
        for shift in [32u32, 16, 8, 4, 2, 1] {
            let shifted = p.bits_linear(&w, &|ws| ws.iter().map(|x| x >> shift).collect());
            let both = p.bits_and(&w, &shifted)?;
            w = p.bits_xor(&p.bits_xor(&w, &shifted), &both);
        }
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

    fn flush_if_full(&mut self) -> Result<()> {
        if self.pending_len >= FLUSH_ELEMENTS {
            self.flush()?;
        }
        Ok(())
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
    fn explain_failure(&mut self, err: MpcError) -> MpcError {
        self.inner.explain_failure(err)
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
        let flat = self.inner.linear(x, &maps::Flatten)?;
        let n = flat.len();
        if let (Some(u), Some(l)) = (upper, lower) {
            if let Some(window) = window_of(u, l) {
                // -l < x < u exactly when x + l - 1 lies in [0, 2^k), or x + l in [1, 2^k): one
                // circuit, not two.
                let offset = if window.bottom_out.0 { l } else { l - 1 };
                let shifted = self.inner.add_public(&flat, &RingTensor::filled(&[n], offset))?;
                self.windows.push((window, shifted));
                self.pending_len += n;
                return self.flush_if_full();
            }
        }
        if let Some(u) = upper {
            let neg = self.inner.neg(&flat)?;
            let below = self.inner.add_public(&neg, &RingTensor::filled(&[n], u - 1))?; // u - 1 - x >= 0
            self.signs.push(below);
            self.pending_len += n;
        }
        if let Some(l) = lower {
            let above = self.inner.add_public(&flat, &RingTensor::filled(&[n], l - 1))?; // x + l - 1 >= 0
            self.signs.push(above);
            self.pending_len += n;
        }
        self.flush_if_full()
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
    fn linear(&self, x: &P::Share, f: &dyn LinearOp) -> Result<P::Share> {
        self.inner.linear(x, f)
    }
    fn linear2(&self, a: &P::Share, b: &P::Share, f: &dyn LinearOp2) -> Result<P::Share> {
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
    fn matmul_im2col_truncate(
        &mut self,
        a: &P::Share,
        images: &P::Share,
        cols: &musket_ring::Im2col,
        bits: u32,
    ) -> Result<P::Share> {
        self.inner.matmul_im2col_truncate(a, images, cols, bits)
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
    fn bits_and_with_a2b_planes(
        &mut self,
        a: &P::Bits,
        b: &P::Bits,
        n: usize,
        planes_len: usize,
    ) -> Result<P::Bits> {
        self.inner.bits_and_with_a2b_planes(a, b, n, planes_len)
    }
    fn reveal_bits(&mut self, x: &P::Bits) -> Result<Vec<u64>> {
        self.inner.reveal_bits(x)
    }
    fn a2b_operands(&mut self, x: &P::Share) -> Result<(P::Bits, P::Bits)> {
        self.inner.a2b_operands(x)
    }
    fn a2b_operand_planes(&mut self, x: &P::Share, width: usize) -> Result<Option<(P::Bits, P::Bits)>> {
        self.inner.a2b_operand_planes(x, width)
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

    fn verdict_of(checks: &[(&[i64], Option<u64>, Option<u64>)]) -> bool {
        let mut plain = Plain;
        let mut c = RangeChecked::new(&mut plain);
        for &(vals, upper, lower) in checks {
            c.check_bound(&t_signed(vals), upper, lower, "test").unwrap();
        }
        c.verdict().unwrap()
    }

    /// Two-sided checks whose window holds a power of two of values (one circuit) are exact at
    /// both ends, for every window size and several splits of it between the two sides.
    #[test]
    fn window_checks_are_exact_at_both_ends() {
        let window = |k, bottom_out| Some(Window { bottom_out: std::cmp::Reverse(bottom_out), k });
        assert_eq!(window_of(1 << 15, (1 << 46) - (1 << 15) + 1), window(46, false));
        assert_eq!(window_of(1 << 15, 1 << 46), None, "neither: two sign circuits");
        assert_eq!(window_of(1 << 31, 1 << 31), window(32, true), "symmetric");
        assert_eq!(window_of(1, 1), window(1, true));
        assert_eq!(window_of(1 << 62, 1 << 62), None);
        assert_eq!(window_of(3, 3), None);
        for k in 1..=62u32 {
            let count = 1u64 << k;
            for (upper, lower) in [1, count / 2, count - 1, count, (count / 3).max(1)]
                .into_iter()
                .flat_map(|u| [(u, count + 1 - u, false), (u, count - u, true)])
                .filter(|&(u, l, _)| l >= 1 && u >= 1)
                .map(|(u, l, bottom_out)| {
                    assert_eq!(window_of(u, l), window(k as usize, bottom_out), "{u} {l}");
                    (u, l)
                })
            {
                let (u, l) = (upper as i64, lower as i64);
                let inside = [u - 1, 1 - l, 0.clamp(1 - l, u - 1)];
                let outside =
                    [u, -l, i64::MAX, i64::MIN, u.wrapping_add(1 << 40), (1 - l).wrapping_sub(1 << 50)];
                for v in inside {
                    assert!(
                        !verdict_of(&[(&[v], Some(upper), Some(lower))]),
                        "k {k} upper {upper}: {v} is inside"
                    );
                }
                for v in outside {
                    if v < u && v > -l {
                        continue; // a shift that landed inside again
                    }
                    assert!(
                        verdict_of(&[(&[v], Some(upper), Some(lower))]),
                        "k {k} upper {upper}: {v} is outside"
                    );
                }
            }
        }
        // One flush with sign values, windows of two sizes and two without their bottom value:
        // each finds its own violation.
        let relu_like = (Some(1u64 << 31), Some((1u64 << 46) - (1 << 31) + 1));
        let small = (Some(8u64), Some(9u64)); // -9 < x < 8: 16 values
        let tight = (Some(1u64 << 15), Some(1u64 << 15)); // 2^16 - 1 values
        let wide = (Some(1u64 << 40), Some(1u64 << 40));
        let clean: [(&[i64], Option<u64>, Option<u64>); 5] = [
            (&[5, -5, 99, -99], Some(100), Some(100)),
            (&[(1 << 31) - 1, -(1 << 45), 0], relu_like.0, relu_like.1),
            (&[7, -8, 0], small.0, small.1),
            (&[(1 << 15) - 1, 1 - (1 << 15), 0, 1, -1], tight.0, tight.1),
            (&[(1 << 40) - 1, 1 - (1 << 40), 0], wide.0, wide.1),
        ];
        assert!(!verdict_of(&clean));
        for (i, bad) in [100i64, 1 << 31, -8 - 1, -(1 << 15), -(1 << 40)].into_iter().enumerate() {
            let mut checks = clean;
            let mut vals = checks[i].0.to_vec();
            vals.push(bad);
            checks[i].0 = &vals;
            assert!(verdict_of(&checks), "group {i}: {bad}");
        }
    }
}
