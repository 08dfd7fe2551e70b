//! `Protocol::onehot_matmul`, the embedding lookup of a data owner's plaintext one-hot rows in
//! a secret table: exact on every back end (including rows that are not one-hot, and negative
//! table values at the ends of the range), and its 3PC cost pinned.

mod common;
use common::*;
use musket_core::{reveal_fixed, share_fixed, Protocol};
use musket_net::CommStats;
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{Backend, Job};

const FP: FixedPoint = FixedPoint::DEFAULT;
const DEPTH: usize = 7;
const K: usize = 5;
const ROWS: usize = 4;

/// Table values on a grid, with the ends of the range.
fn table() -> Vec<f64> {
    let big = (FP.limit_log2() as f64).exp2() / 4.0;
    (0..DEPTH * K)
        .map(|i| {
            if i == 0 {
                big
            } else if i == 1 {
                -big
            } else {
                (i as f64 - 17.0) / 8.0
            }
        })
        .collect()
}

/// Rows: one-hot rows, a zero row, and one with two entries (the product is general).
fn rows() -> Vec<u64> {
    let mut o = vec![0u64; ROWS * DEPTH];
    o[3] = 1;
    o[DEPTH] = 1;
    o[3 * DEPTH + 2] = 1;
    o[3 * DEPTH + 6] = 2;
    o
}

struct Lookup;

impl Job for Lookup {
    type Output = (Vec<f64>, CommStats, CommStats);
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let t = share_fixed(p, FP, 0, (p.party_id() == 0).then_some(&table()[..]), &[DEPTH, K])?;
        let o = RingTensor::new(vec![ROWS, DEPTH], rows()).unwrap();
        let before = p.stats();
        let y = p.onehot_matmul(1, (p.party_id() == 1).then_some(&o), ROWS, &t)?;
        let after = p.stats();
        Ok((reveal_fixed(p, FP, &y)?, before, after))
    }
}

#[test]
fn lookups_are_exact_on_every_back_end() {
    let (t, o) = (table(), rows());
    let want: Vec<f64> = (0..ROWS * K)
        .map(|i| (0..DEPTH).map(|j| o[(i / K) * DEPTH + j] as f64 * t[j * K + i % K]).sum())
        .collect();
    for backend in [Backend::TwoPc, Backend::ThreePc, Backend::ThreePcMalicious] {
        for (got, ..) in run(backend, &Lookup).iter().map(out) {
            assert_eq!(got, want, "{backend:?}");
        }
    }
}

#[test]
fn the_3pc_lookup_sends_the_rows_once_and_reshares_the_output() {
    let stats: Vec<u64> = run(Backend::ThreePc, &Lookup)
        .iter()
        .map(out)
        .map(|(_, before, after)| after.since(&before).bytes_sent)
        .collect();
    let w = 8;
    // Party 1 (the owner) sends the other part of its rows to party 2, then every party
    // reshares its term of the output.
    let reshare = (ROWS * K * w) as u64;
    assert_eq!(stats, vec![reshare, (ROWS * DEPTH * w) as u64 + reshare, reshare]);
}
