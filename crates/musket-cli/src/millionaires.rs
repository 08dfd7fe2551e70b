//! Yao's millionaires' problem: Alice (party 0) and Bob (party 1) learn who is richer and
//! nothing else; party 2 (the 3PC helper or the 2PC dealer) learns nothing.

use anyhow::Result;
use musket_cli::yao::{check_amount, verdict, Millionaires};
use musket_session::{job_rounds, run_local, Backend, PartyOutcome};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    richer: &'static str,
    protocol: &'static str,
    security: &'static str,
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
        security: backend.security().name(),
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
            "protocol {} ({}): {} rounds, bytes sent per party {:?}{}",
            report.protocol,
            report.security,
            report.rounds,
            report.bytes_sent,
            if backend.has_dealer() { " (party 2 is the dealer)" } else { "" }
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
