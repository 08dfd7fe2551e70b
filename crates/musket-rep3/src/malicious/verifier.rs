//! What proves and verifies a party's pending records: the proofs' own channel to the peers
//! (the links' second channel, [`musket_net::Net::second_channel`]), the proof keys, private
//! randomness for the masks of the last level, and the batch sizes.
//!
//! A verification that the pending limit starts (to bound memory, not because anything is
//! about to be opened) runs on a thread of its own while the party computes on: its rounds
//! overlap the protocol's, and on a machine with fewer cores than threads its work fills
//! the time the party spends waiting for its peers. The party joins it before the next
//! verification starts and before anything is opened, so nothing is revealed before every
//! product made so far is proved; a verification started before an opening (and at the end)
//! runs on the party's own thread, on the same channel. Either way the channel's round clock
//! starts at the party's ([`Net::start_after`]) and its counts are handed back to the party's
//! afterwards ([`Net::hand_counts_to`]): a verification run on the party's thread counts
//! exactly the rounds and bytes it did on the party's channel, and one run in the background
//! adds its bytes and the longer of the two chains of rounds, at the next point of the
//! program where the party joins it (the next verification, an opening, the end), so that
//! the count does not depend on timing. (The party also joins it as soon as it finds it
//! finished, to stop at once if it failed, but leaves its counts for that point.)

use super::record::Record;
use super::{
    batch_ranges, ring_groups, take_group, tamper_message, Cheat, Gate, ProofKeys, Target,
    LOCKSTEP_BATCHES_BINARY,
};
use musket_core::{MpcError, Prg, Result};
use musket_net::Net;
use musket_ring::KernelSpread;
use std::thread::JoinHandle;

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

    /// Starts [`Verifier::verify`] on a thread of its own, with the calling thread's spread
    /// of work over rayon's pool. The thread hands the verifier back with the result; when
    /// the verification fails, it first tells the peers (on both channels), so that nobody
    /// waits for its messages until the party joins it.
    pub(crate) fn start_in_background(
        mut self,
        arith: Vec<Record>,
        binary: Vec<Record>,
    ) -> Result<JoinHandle<(Verifier, Result<()>)>> {
        let spread = KernelSpread::of_this_thread();
        std::thread::Builder::new()
            .name(format!("musket-proofs-{}", self.id))
            .spawn(move || {
                let res = spread.run(|| self.verify(arith, binary));
                if let Err(e) = &res {
                    if !e.is_peer_abort() {
                        self.net.abort(&e.public_reason());
                    }
                }
                (self, res)
            })
            .map_err(|e| {
                MpcError::Net(musket_net::NetError::Setup(format!(
                    "could not start the background verification's thread: {e}"
                )))
            })
    }
}
