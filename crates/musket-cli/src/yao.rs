//! Yao's millionaires' problem as a job every party runs: Alice (party 0) and Bob (party 1)
//! learn who is richer and nothing else; party 2 (the 3PC helper or the 2PC dealer) learns
//! nothing. Used by `musket millionaires`, `musket party … millionaires` and the Python package.

use anyhow::{bail, Result};
use musket_core::{msb, MpcError, Protocol};
use musket_ring::{RingMap2, RingTensor, ShapeError, Tensor, Word};
use musket_session::Job;

/// Amounts must differ by less than 2^63 for the sign of the difference to be right.
const LIMIT: i64 = 1 << 61;

/// The secure comparison, seen from one party: each owner supplies only its own amount.
pub struct Millionaires {
    /// Alice's amount (at Alice only).
    pub alice: Option<i64>,
    /// Bob's amount (at Bob only).
    pub bob: Option<i64>,
}

/// Alice's party id.
pub const ALICE: usize = 0;
/// Bob's party id.
pub const BOB: usize = 1;

/// `[a - b, b - a]` of two one-element tensors.
struct BothDifferences;

impl RingMap2 for BothDifferences {
    fn map2<W: Word>(&self, a: &Tensor<W>, b: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let d = a.sub(b)?;
        d.concat_axis(&d.neg(), 0)
    }
}

impl Job for Millionaires {
    /// `[alice < bob, bob < alice]` for Alice and Bob; `None` for anyone else.
    type Output = Option<[bool; 2]>;

    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let mine = |v: Option<i64>| v.map(|a| RingTensor::from_vec(vec![a as u64]));
        let a = p.input(ALICE, mine(self.alice).as_ref(), &[1])?;
        let b = p.input(BOB, mine(self.bob).as_ref(), &[1])?;
        // Both differences in one tensor: one comparison circuit answers both questions.
        let d = p.linear2(&a, &b, &BothDifferences)?;
        let sign = msb(p, &d)?;
        let less = p.b2a_packed(&sign, &[2])?;
        let to_alice = p.reveal_to(&less, ALICE)?;
        let to_bob = p.reveal_to(&less, BOB)?;
        Ok(to_alice.or(to_bob).map(|t| [t.data()[0] == 1, t.data()[1] == 1]))
    }
}

/// Checks an amount is in the supported range.
pub fn check_amount(name: &str, v: i64) -> Result<()> {
    if !(-LIMIT..=LIMIT).contains(&v) {
        bail!("{name}'s amount is outside the supported range ±2^61");
    }
    Ok(())
}

/// The verdict from `[alice < bob, bob < alice]`.
pub fn verdict(less: [bool; 2]) -> &'static str {
    match less {
        [true, _] => "bob",
        [_, true] => "alice",
        _ => "equal",
    }
}

#[cfg(test)]
mod tests {
    use super::BothDifferences;
    use musket_ring::maps::check::assert_described2;

    #[test]
    fn both_differences_are_the_same_map_in_both_rings_and_linear() {
        assert_described2(&BothDifferences, &[1], &[1]);
    }
}
