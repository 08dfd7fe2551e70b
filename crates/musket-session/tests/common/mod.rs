//! Helpers shared by the protocol test files.
#![allow(dead_code, unreachable_pub, missing_docs)]

use musket_core::{MpcError, Plain, Protocol};
use musket_session::{run_local, Backend, Job, PartyOutcome};
use std::time::Duration;

pub const BACKENDS: [Backend; 4] =
    [Backend::TwoPc, Backend::TwoPcMalicious, Backend::ThreePc, Backend::ThreePcMalicious];

/// The value if this party owns it (the one-party oracle owns everything).
pub fn owned<'a, P: Protocol, T: ?Sized>(p: &P, owner: usize, v: &'a T) -> Option<&'a T> {
    (p.party_id() == owner || p.compute_parties() == 1).then_some(v)
}

/// Runs a job on a back end; returns compute parties' outcomes (dealer dropped).
pub fn run<J: Job>(backend: Backend, job: &J) -> Vec<PartyOutcome<J::Output>> {
    run_local(backend, job, Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("{} failed: {e}", backend.name()))
        .into_iter()
        .filter(|o| o.output.is_some())
        .collect()
}

/// Runs a job on the oracle.
pub fn oracle<J: Job>(job: &J) -> J::Output {
    job.run(&mut Plain).expect("oracle failed")
}

pub fn out<T: Clone>(o: &PartyOutcome<T>) -> T {
    o.output.clone().expect("compute party output")
}

pub type JobResult<T> = Result<T, MpcError>;
