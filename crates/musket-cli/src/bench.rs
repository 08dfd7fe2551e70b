//! `musket bench`: time, bytes and rounds per party for the core protocol operations, both
//! back ends, all parties as threads of this process.

use anyhow::{bail, Result};
use clap::Args;
use musket_core::{lt, mul_fixed, relu, MpcError, Protocol};
use musket_net::CommStats;
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{run_local, Backend, Job};
use serde::Serialize;
use std::time::Instant;

/// Options of `musket bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Run only the case with this name (e.g. `relu-1e6`).
    #[arg(long)]
    only: Option<String>,
    /// Only this back end.
    #[arg(long)]
    protocol: Option<Backend>,
    /// Repetitions per case (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    MulFixed,
    Matmul(usize),
    Lt,
    Relu,
}

struct Case {
    name: &'static str,
    op: Op,
    n: usize,
}

const CASES: &[Case] = &[
    Case { name: "mul-1e6", op: Op::MulFixed, n: 1_000_000 },
    Case { name: "matmul-256", op: Op::Matmul(256), n: 0 },
    Case { name: "matmul-512", op: Op::Matmul(512), n: 0 },
    Case { name: "lt-1e5", op: Op::Lt, n: 100_000 },
    Case { name: "lt-1e6", op: Op::Lt, n: 1_000_000 },
    Case { name: "relu-1e6", op: Op::Relu, n: 1_000_000 },
];

/// Shares random inputs, then times one operation (online phase, dealer requests included).
struct Timed {
    op: Op,
    n: usize,
}

impl Job for Timed {
    /// Seconds, and this party's counts just before and just after the operation.
    type Output = (f64, CommStats, CommStats);
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let fp = FixedPoint::default();
        let shape = match self.op {
            Op::Matmul(d) => vec![d, d],
            _ => vec![self.n],
        };
        let len: usize = shape.iter().product();
        let mut prg = musket_core::Prg::from_os();
        // Values in about ±8 so that fixed-point products stay in range.
        let v = RingTensor::new(
            shape.clone(),
            prg.words(len).iter().map(|w| ((*w as i64) >> 44) as u64).collect(),
        )?;
        let a = p.input(0, (p.party_id() == 0).then_some(&v), &shape)?;
        let b = p.input(1, (p.party_id() == 1).then_some(&v), &shape)?;
        // Two all-to-all openings align every party's round clock, so that the operation's
        // rounds are measured from a common start.
        let tiny = p.input(0, (p.party_id() == 0).then_some(&RingTensor::zeros(&[1])), &[1])?;
        p.reveal(&tiny)?;
        p.reveal(&tiny)?;
        let before = p.stats();
        let t = Instant::now();
        match self.op {
            Op::MulFixed => drop(mul_fixed(p, fp, &a, &b)?),
            Op::Matmul(_) => {
                let c = p.matmul(&a, &b)?;
                drop(p.truncate(&c, fp.frac_bits())?)
            }
            Op::Lt => drop(lt(p, &a, &b)?),
            Op::Relu => drop(relu(p, &a)?),
        }
        Ok((t.elapsed().as_secs_f64(), before, p.stats()))
    }
}

/// One row of the report.
#[derive(Serialize)]
struct Row {
    name: &'static str,
    protocol: &'static str,
    seconds: f64,
    /// Bytes each party sent during the operation (for 2PC, index 2 is the dealer: its
    /// traffic is preprocessing, input-independent correlated randomness).
    bytes_per_party: Vec<u64>,
    rounds: u64,
}

pub(crate) fn run(args: BenchArgs) -> Result<()> {
    let cases: Vec<&Case> =
        CASES.iter().filter(|c| args.only.as_deref().is_none_or(|o| o == c.name)).collect();
    if cases.is_empty() {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        bail!("no case named {:?}; cases: {}", args.only.unwrap_or_default(), names.join(", "));
    }
    let backends: Vec<Backend> = match args.protocol {
        Some(b) => vec![b],
        None => vec![Backend::TwoPc, Backend::ThreePc],
    };
    let mut rows = Vec::new();
    for case in cases {
        for &backend in &backends {
            let mut times = Vec::new();
            let mut last = Vec::new();
            let mut dealer_bytes = None;
            for _ in 0..args.reps.max(1) {
                let outcomes = run_local(backend, &Timed { op: case.op, n: case.n }, None)?;
                dealer_bytes = outcomes.iter().find(|o| o.output.is_none()).map(|o| o.stats.bytes_sent);
                last = outcomes.into_iter().filter_map(|o| o.output.map(|out| (o.party, out))).collect();
                times.push(last.iter().map(|(_, o)| o.0).fold(0.0, f64::max));
            }
            times.sort_by(f64::total_cmp);
            let mut bytes = vec![0; backend.transport_parties()];
            for (party, (_, before, after)) in &last {
                bytes[*party] = after.since(before).bytes_sent;
            }
            if let Some(d) = dealer_bytes {
                bytes[musket_2pc::DEALER] = d;
            }
            let start = last.iter().map(|(_, o)| o.1.rounds).max().unwrap_or(0);
            let end = last.iter().map(|(_, o)| o.2.rounds).max().unwrap_or(0);
            let row = Row {
                name: case.name,
                protocol: backend.name(),
                seconds: times[times.len() / 2],
                bytes_per_party: bytes,
                rounds: end - start,
            };
            if !args.json {
                println!(
                    "{:<12} {:<4} {:>9.4} s  {:>3} rounds  bytes/party {:?}",
                    row.name, row.protocol, row.seconds, row.rounds, row.bytes_per_party
                );
            }
            rows.push(row);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}
