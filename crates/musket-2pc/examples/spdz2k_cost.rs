//! What SPDZ2k's MACs cost against the semi-honest 2PC protocol on this machine: a product of
//! 10^6 elements and a 256x256 matrix product, each truncated, then revealed, with both
//! parties and the dealer as threads of this process, on the `musket` binary's allocator.
//! Prints the median time of five runs and the bytes each party sent the other.
//!
//! `cargo run --release -p musket-2pc --example spdz2k_cost`

use musket_2pc::{run_dealer, run_dealer_malicious, Dealer2pc, Spdz2k};
use musket_core::{MpcError, Protocol};
use musket_net::{local_mesh, Net};
use musket_ring::RingTensor;
use std::time::{Duration, Instant};

// As the `musket` binary: memory freed by one run is reused by the next.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FRAC: u32 = 16;

/// The case's shapes: an elementwise product of `n`, or a matrix product of `[m, m]`.
#[derive(Clone, Copy)]
enum Case {
    Mul(usize),
    Matmul(usize),
}

impl Case {
    fn shapes(self) -> [Vec<usize>; 2] {
        match self {
            Case::Mul(n) => [vec![n], vec![n]],
            Case::Matmul(m) => [vec![m, m], vec![m, m]],
        }
    }
}

fn value(shape: &[usize]) -> RingTensor {
    let n: usize = shape.iter().product();
    RingTensor::new(shape.to_vec(), (0..n).map(|i| ((i % 97) as u64) << (FRAC - 4)).collect()).unwrap()
}

/// Runs `job` at both parties and the dealer; returns the slower party's time for the timed
/// part and the bytes party 0 sent party 1 during it.
fn time_parties<P>(
    dealer: fn(Net) -> Result<musket_net::CommStats, MpcError>,
    make: impl Fn(Net) -> Result<P, MpcError> + Send + Sync + Copy + 'static,
    job: impl Fn(&mut P) -> Result<(Duration, u64), MpcError> + Send + Sync + Copy + 'static,
) -> (Duration, u64) {
    let mut ends = local_mesh(3, Some(Duration::from_secs(120))).into_iter();
    let (e0, e1, e2) = (ends.next().unwrap(), ends.next().unwrap(), ends.next().unwrap());
    let dealer = std::thread::spawn(move || dealer(Net::new(Box::new(e2))));
    let party = |end: musket_net::LocalTransport| {
        std::thread::spawn(move || {
            let mut p = make(Net::new(Box::new(end)))?;
            job(&mut p)
        })
    };
    let (h0, h1) = (party(e0), party(e1));
    let (r0, r1) = (h0.join().unwrap().unwrap(), h1.join().unwrap().unwrap());
    dealer.join().unwrap().unwrap();
    (r0.0.max(r1.0), r0.1)
}

fn semi_honest(case: Case) -> (Duration, u64) {
    time_parties(run_dealer, Dealer2pc::new, move |p: &mut Dealer2pc| {
        let [sa, sb] = case.shapes();
        let me = p.party_id();
        let a = p.input(0, (me == 0).then(|| value(&sa)).as_ref(), &sa)?;
        let b = p.input(1, (me == 1).then(|| value(&sb)).as_ref(), &sb)?;
        let (start, before) = (Instant::now(), p.stats());
        let c = match case {
            Case::Mul(_) => p.mul_truncate(&a, &b, FRAC)?,
            Case::Matmul(_) => p.matmul_truncate(&a, &b, FRAC)?,
        };
        p.reveal(&c)?;
        let took = start.elapsed();
        let sent = p.stats().bytes_sent_to[1 - me] - before.bytes_sent_to[1 - me];
        p.finish()?;
        Ok((took, sent))
    })
}

fn malicious(case: Case) -> (Duration, u64) {
    time_parties(run_dealer_malicious, Spdz2k::new, move |p: &mut Spdz2k| {
        let [sa, sb] = case.shapes();
        let me = p.party_id();
        let a = p.input(0, (me == 0).then(|| value(&sa)).as_ref(), &sa)?;
        let b = p.input(1, (me == 1).then(|| value(&sb)).as_ref(), &sb)?;
        p.check()?;
        let (start, before) = (Instant::now(), p.stats());
        let c = match case {
            Case::Mul(_) => p.mul(&a, &b)?,
            Case::Matmul(_) => p.matmul(&a, &b)?,
        };
        let c = p.truncate(&c, FRAC)?;
        p.reveal(&c)?;
        let took = start.elapsed();
        let sent = p.stats().bytes_sent_to[1 - me] - before.bytes_sent_to[1 - me];
        p.finish()?;
        Ok((took, sent))
    })
}

fn median(mut runs: Vec<(Duration, u64)>) -> (Duration, u64) {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    for (name, case) in [("mul 10^6", Case::Mul(1_000_000)), ("matmul 256^2", Case::Matmul(256))] {
        let semi = median((0..5).map(|_| semi_honest(case)).collect());
        let mal = median((0..5).map(|_| malicious(case)).collect());
        println!(
            "{name:14} semi-honest {:8.3} s {:>11} B   malicious (SPDZ2k) {:8.3} s {:>11} B   {:.2}x time {:.2}x bytes",
            semi.0.as_secs_f64(),
            semi.1,
            mal.0.as_secs_f64(),
            mal.1,
            mal.0.as_secs_f64() / semi.0.as_secs_f64(),
            mal.1 as f64 / semi.1 as f64
        );
    }
}
