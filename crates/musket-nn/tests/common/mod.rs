//! Harness shared by the musket-nn test files.
#![allow(dead_code, unreachable_pub, missing_docs)]

use musket_core::{Plain, Protocol};
use musket_nn::FixedPoint;
use musket_session::{run_local, Backend, Job};
use std::time::Duration;

pub const FP: FixedPoint = FixedPoint::DEFAULT;

/// The value if this party owns it (the one-party oracle owns everything).
pub fn owned<'a, P: Protocol, T: ?Sized>(p: &P, owner: usize, v: &'a T) -> Option<&'a T> {
    (p.party_id() == owner || p.compute_parties() == 1).then_some(v)
}

/// Runs `job` on the malicious-secure 3PC back end; returns party 0's output.
pub fn on_malicious<J: Job>(job: &J) -> J::Output {
    on(Backend::ThreePcMalicious, job)
}

/// Runs `job` on back end `b`; returns party 0's output.
pub fn on<J: Job>(b: Backend, job: &J) -> J::Output {
    let o = run_local(b, job, Some(Duration::from_secs(60))).unwrap_or_else(|e| panic!("{}: {e}", b.name()));
    o.into_iter().find_map(|o| o.output).expect("party 0 output")
}

/// Runs `job` on the oracle and both back ends; returns the outputs (party 0's).
pub fn everywhere<J: Job>(job: &J) -> Vec<(&'static str, J::Output)> {
    let mut outs = vec![("plain", job.run(&mut Plain).expect("oracle"))];
    for b in [Backend::TwoPc, Backend::ThreePc] {
        let o =
            run_local(b, job, Some(Duration::from_secs(60))).unwrap_or_else(|e| panic!("{}: {e}", b.name()));
        outs.push((b.name(), o.into_iter().find_map(|o| o.output).expect("party 0 output")));
    }
    outs
}
