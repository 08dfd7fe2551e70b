//! What proves and verifies a party's pending records: the proofs' own channel to the peers
//! (the links' second channel, [`musket_net::Net::second_channel`]), the proof keys, private
//! randomness for the masks of the last level, and the batch sizes.
//!
//! Every verification runs on the party's proofs' worker, a thread that owns the
//! [`Verifier`] from the first verification on and proves the record sets it is sent, one
//! after another ([`Worker`]). One that the pending limit starts (to bound memory, not
//! because anything is about to be opened) runs there while the party computes on: its
//! rounds overlap the protocol's, and on a machine with fewer cores than threads its work
//! fills the time the party spends waiting for its peers. The party waits for it when the
//! next one starts (with the default of one verification ahead,
//! `Rep3Mal::with_verifications_ahead`) and before anything is opened, so nothing is
//! revealed before every product made so far is proved; before an opening (and at the end)
//! the party sends the rest and waits for all. Each job's round clock starts at the
//! party's when it was sent, or where the job before it ended if later
//! ([`Net::start_at`]); the worker hands its counts back with each report
//! ([`Net::hand_over`]), and the party adds them to its own ([`Net::take_over`]) where it
//! waits for that report in the program's order, never where a report happened to arrive
//! (it also takes reports as they arrive, to stop at once if one failed), so that the
//! rounds counted do not depend on timing. A verification the party waits for at once
//! counts exactly the rounds and bytes it did on the party's own channel; one beside the
//! computation adds its bytes and the longer of the two chains of rounds.

use super::record::Record;
use super::{
    batch_ranges, ring_groups, take_group, tamper_message, Cheat, Gate, ProofKeys, Target,
    LOCKSTEP_BATCHES_BINARY,
};
use musket_core::{MpcError, Prg, Result};
use musket_net::{HandOver, Net, RoundClock};
use musket_ring::KernelSpread;
use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A party's prover and verifier of its neighbours (see the module's documentation).
pub(crate) struct Verifier {
    /// The party's id.
    pub(crate) id: usize,
    /// The proofs' channel.
    pub(crate) net: Net,
    pub(crate) keys: ProofKeys,
    /// The party's own randomness (the last level's masks), from the party's private stream.
    pub(crate) private: Prg,
    /// Terms per batch: packed ring, plain ring, binary.
    pub(crate) batch_terms: (usize, usize, usize),
    /// Proof state of a group of ring batches.
    pub(crate) ring_group_bytes: usize,
    /// The test harness's deviation in proof messages, and how many of each kind were sent.
    pub(crate) cheat: Option<Cheat>,
    seen: Vec<(Target, usize)>,
}

impl Verifier {
    /// A verifier on `net` (the proofs' channel) with the given keys and sizes.
    pub(crate) fn new(
        id: usize,
        net: Net,
        keys: ProofKeys,
        private: Prg,
        batch_terms: (usize, usize, usize),
        ring_group_bytes: usize,
    ) -> Self {
        Self { id, net, keys, private, batch_terms, ring_group_bytes, cheat: None, seen: Vec::new() }
    }

    /// Applies the test harness's deviation to an outgoing proof message.
    pub(crate) fn tamper(&mut self, target: Target, words: &mut [u64]) {
        tamper_message(self.cheat, &mut self.seen, target, words);
    }

    /// Proves this party's records and verifies its neighbours', batch by batch, a group of
    /// batches side by side. Elementwise gates (products and conversions' cross gates) and
    /// matrix products prove separately, the first in packed form, unless the elementwise
    /// ones are too few to pack: then all go in plain batches, as one proof costs fewer
    /// rounds and bytes than two.
    pub(crate) fn verify(&mut self, arith: Vec<Record>, binary: Vec<Record>) -> Result<()> {
        let is_matmul = |r: &Record| matches!(r.gate, Gate::Matmul { .. });
        let products: usize = arith.iter().filter(|r| !is_matmul(r)).map(Record::elements).sum();
        let (elementwise, matmul): (Vec<Record>, Vec<Record>) =
            if products >= super::record::PACKED_MIN_PRODUCTS {
                arith.into_iter().partition(|r| !is_matmul(r))
            } else {
                (Vec::new(), arith)
            };
        // Batches prove side by side, a group's rounds those of one batch: ring batches (packed
        // and plain) up to the group's bytes of proof state and LOCKSTEP_BATCHES_BINARY
        // binary ones per group, the i-th ring group with the i-th binary group. The proofs'
        // state of one group at a time lives beside the records of the groups not yet
        // proved: a group's records are moved out of the lists when it starts and dropped
        // once its statements are built (until the sixteenth session every record lived
        // until its kind's last group was done).
        let (packed_terms, plain_terms, binary_terms) = self.batch_terms;
        let mut ring_ranges = batch_ranges(&elementwise, false, packed_terms);
        let mut ring_records = elementwise;
        let offset = ring_records.len();
        ring_ranges.extend(
            batch_ranges(&matmul, false, plain_terms).into_iter().map(|r| r.start + offset..r.end + offset),
        );
        ring_records.extend(matmul);
        let binary_ranges = batch_ranges(&binary, true, binary_terms);
        let mut binary_records = binary;
        let ring_groups = ring_groups(&ring_ranges, &ring_records, offset, self.ring_group_bytes);
        let binary_groups: Vec<_> = binary_ranges.chunks(LOCKSTEP_BATCHES_BINARY).collect();
        for i in 0..ring_groups.len().max(binary_groups.len()) {
            let (ring, binary) = (
                take_group(&ring_groups, i, &mut ring_records),
                take_group(&binary_groups, i, &mut binary_records),
            );
            self.prove_group(ring, binary)?;
        }
        Ok(())
    }
}

/// A verification for the worker: the records, and the party's clock when it sent them.
struct Job {
    arith: Vec<Record>,
    binary: Vec<Record>,
    clock: RoundClock,
}

/// The worker's report on a job, sent in the order of the jobs: the result, and the proofs'
/// channel's counts since the previous report.
struct Report {
    result: Result<()>,
    counts: HandOver,
}

/// The proofs' worker (see the module's documentation): a thread that owns the party's
/// [`Verifier`] and proves the jobs it is sent, one after another, in order, each from the
/// party's clock when it was sent or the end of the job before, whichever is later. Its
/// reports' counts are handed to the party's channel at points of the program only
/// ([`Worker::settle_through`]).
pub(crate) struct Worker {
    jobs: Option<Sender<Job>>,
    reports: Receiver<Report>,
    thread: Option<JoinHandle<()>>,
    /// Jobs sent so far.
    sent: usize,
    /// Reports received (in order), and how many of them were handed over.
    received: VecDeque<HandOver>,
    received_total: usize,
    settled: usize,
}

impl Worker {
    /// Starts the worker thread with `verifier`, with the calling thread's spread of work
    /// over rayon's pool. A job that fails makes the worker tell the peers (on both
    /// channels), so that nobody waits for its messages, and stop.
    pub(crate) fn start(mut verifier: Verifier) -> Result<Self> {
        let spread = KernelSpread::of_this_thread();
        let (jobs, inbox) = channel::<Job>();
        let (outbox, reports) = channel::<Report>();
        let thread = std::thread::Builder::new()
            .name(format!("musket-proofs-{}", verifier.id))
            .spawn(move || {
                spread.run(|| {
                    for job in inbox {
                        verifier.net.start_at(job.clock);
                        let result = verifier.verify(job.arith, job.binary);
                        if let Err(e) = &result {
                            if !e.is_peer_abort() {
                                verifier.net.abort(&e.public_reason());
                            }
                        }
                        let failed = result.is_err();
                        let counts = verifier.net.hand_over();
                        if outbox.send(Report { result, counts }).is_err() || failed {
                            return;
                        }
                    }
                })
            })
            .map_err(|e| {
                MpcError::Net(musket_net::NetError::Setup(format!("could not start the proofs' thread: {e}")))
            })?;
        Ok(Self {
            jobs: Some(jobs),
            reports,
            thread: Some(thread),
            sent: 0,
            received: VecDeque::new(),
            received_total: 0,
            settled: 0,
        })
    }

    /// Sends the worker `arith` and `binary` to verify from `clock`, the party's.
    pub(crate) fn send(&mut self, arith: Vec<Record>, binary: Vec<Record>, clock: RoundClock) -> Result<()> {
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send(Job { arith, binary, clock }).is_ok());
        if !sent {
            // The worker stopped after a failed job; its report says why.
            self.receive_through(self.sent)?;
            return Err(worker_stopped());
        }
        self.sent += 1;
        Ok(())
    }

    /// Jobs sent and not yet reported on.
    pub(crate) fn in_flight(&self) -> usize {
        self.sent - self.received_total
    }

    /// Takes the reports that have arrived, without waiting: the first failure among them.
    pub(crate) fn poll(&mut self) -> Result<()> {
        while let Ok(report) = self.reports.try_recv() {
            self.take(report)?;
        }
        Ok(())
    }

    /// The first failure among the reports on the jobs sent so far, waiting at most `wait`
    /// for them; `None` when none failed by then. For explaining a failure (the party stops
    /// after it), not for counting: reports taken here are never handed over.
    pub(crate) fn failure_within(&mut self, wait: Duration) -> Option<MpcError> {
        let deadline = Instant::now() + wait;
        while self.in_flight() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(report) => {
                    if let Err(e) = self.take(report) {
                        return Some(e);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits for the reports on the first `jobs` jobs: the first failure among them.
    fn receive_through(&mut self, jobs: usize) -> Result<()> {
        while self.received_total < jobs {
            match self.reports.recv() {
                Ok(report) => self.take(report)?,
                Err(_) => {
                    // Gone without a report: it panicked (a bug), which goes on here as it
                    // would have on this thread.
                    if let Some(Err(panic)) = self.thread.take().map(JoinHandle::join) {
                        std::panic::resume_unwind(panic);
                    }
                    return Err(worker_stopped());
                }
            }
        }
        Ok(())
    }

    fn take(&mut self, report: Report) -> Result<()> {
        self.received_total += 1;
        self.received.push_back(report.counts);
        report.result
    }

    /// Waits for the reports on the first `jobs` jobs and returns the counts of those not
    /// yet handed over, in order, for the party's channel ([`Net::take_over`]); or the first
    /// failure among them.
    pub(crate) fn settle_through(&mut self, jobs: usize) -> Result<Vec<HandOver>> {
        self.receive_through(jobs)?;
        let n = jobs.saturating_sub(self.settled);
        self.settled += n;
        Ok(self.received.drain(..n).collect())
    }

    /// Jobs sent so far.
    pub(crate) fn sent(&self) -> usize {
        self.sent
    }
}

impl Drop for Worker {
    // The worker finishes the job it is on (its peers expect it to) and stops; nobody
    // waits for it.
    fn drop(&mut self) {
        self.jobs.take();
    }
}

/// The error when the proofs' worker stopped without saying why.
fn worker_stopped() -> MpcError {
    MpcError::Usage("the proofs' thread stopped after a failed verification".into())
}
