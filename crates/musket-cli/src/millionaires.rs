//! Yao's millionaires' problem: Alice (party 0) and Bob (party 1) learn who is richer and
//! nothing else; party 2 (the 3PC helper or the 2PC dealer) learns nothing.

use anyhow::{bail, Result};
use musket_core::{msb, MpcError, Protocol};
use musket_ring::RingTensor;
use musket_session::{job_rounds, run_local, Backend, Job, PartyOutcome};
use serde::Serialize;

/// Amounts must differ by less than 2^63 for the sign of the difference to be right.
const LIMIT: i64 = 1 << 61;

/// The secure comparison, seen from one party: each owner supplies only its own amount.
pub(crate) struct Millionaires {
    pub(crate) alice: Option<i64>,
    pub(crate) bob: Option<i64>,
}

pub(crate) const ALICE: usize = 0;
pub(crate) const BOB: usize = 1;

impl Job for Millionaires {
    /// `[alice < bob, bob < alice]` for Alice and Bob; `None` for anyone else.
    type Output = Option<[bool; 2]>;

    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let mine = |v: Option<i64>| v.map(|a| RingTensor::from_vec(vec![a as u64]));
        let a = p.input(ALICE, mine(self.alice).as_ref(), &[1])?;
        let b = p.input(BOB, mine(self.bob).as_ref(), &[1])?;
        // Both differences in one tensor: one comparison circuit answers both questions.
        let d = p.linear2(&a, &b, &|x, y| {
            Ok(RingTensor::from_vec(vec![
                x.data()[0].wrapping_sub(y.data()[0]),
                y.data()[0].wrapping_sub(x.data()[0]),
            ]))
        })?;
        let sign = msb(p, &d)?;
        let less = p.b2a_packed(&sign, &[2])?;
        let to_alice = p.reveal_to(&less, ALICE)?;
        let to_bob = p.reveal_to(&less, BOB)?;
        Ok(to_alice.or(to_bob).map(|t| [t.data()[0] == 1, t.data()[1] == 1]))
    }
}

/// Checks an amount is in the supported range.
pub(crate) fn check_amount(name: &str, v: i64) -> Result<()> {
    if !(-LIMIT..=LIMIT).contains(&v) {
        bail!("{name}'s amount is outside the supported range ±2^61");
    }
    Ok(())
}

/// The verdict from `[alice < bob, bob < alice]`.
pub(crate) fn verdict(less: [bool; 2]) -> &'static str {
    match less {
        [true, _] => "bob",
        [_, true] => "alice",
        _ => "equal",
    }
}

#[derive(Serialize)]
struct Report {
    richer: &'static str,
    protocol: &'static str,
    rounds: u64,
    bytes_sent: Vec<u64>,
}

/// Runs all parties locally and prints the verdict.
pub(crate) fn local(alice: i64, bob: i64, backend: Backend, json: bool) -> Result<()> {
    check_amount("alice", alice)?;
    check_amount("bob", bob)?;
    let outcomes = run_local(backend, &Millionaires { alice: Some(alice), bob: Some(bob) }, None)?;
    let less = outcomes
        .iter()
        .find_map(|o| o.output.flatten())
        .ok_or_else(|| anyhow::anyhow!("no party received the result"))?;
    let report = Report {
        richer: verdict(less),
        protocol: backend.name(),
        rounds: job_rounds(&outcomes),
        bytes_sent: bytes_per_party(&outcomes),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        match report.richer {
            "equal" => println!("Alice and Bob are equally rich."),
            who => println!("{} is richer.", if who == "alice" { "Alice" } else { "Bob" }),
        }
        println!(
            "protocol {}: {} rounds, bytes sent per party {:?}{}",
            report.protocol,
            report.rounds,
            report.bytes_sent,
            if backend == Backend::TwoPc { " (party 2 is the dealer)" } else { "" }
        );
    }
    Ok(())
}

/// Bytes each party sent during the job, by party id.
pub(crate) fn bytes_per_party<T>(outcomes: &[PartyOutcome<T>]) -> Vec<u64> {
    let mut v = vec![0; outcomes.len()];
    for o in outcomes {
        v[o.party] = o.stats.bytes_sent;
    }
    v
}
