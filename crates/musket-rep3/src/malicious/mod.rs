//! Three-party replicated sharing secure against one malicious party, with abort
//! (`Rep3Mal`). The messages are those of the semi-honest protocol wherever the semi-honest
//! protocol is checkable, and every deviation is caught before anything is opened:
//!
//! - **Products** (`mul`, `matmul`, `matmul_batched`, `bits_and`) are the semi-honest
//!   resharings, recorded (a truncated product's terms go into the truncation's opening
//!   instead, masked: `truncate/fused.rs`); before every opening, each party proves in zero
//!   knowledge that its resharing messages (and those openings) were computed correctly
//!   (`musket_core::dzkp`, over GR(2^64, 64) for arithmetic and GF(2^64) for bits; Boyle,
//!   Gilboa, Ishai, Nof).
//! - **Openings** (`reveal`, `reveal_to`, `reveal_bits`, and the masked value of a
//!   truncation): every share component is held by two parties; one sends it, the other
//!   vouches for it with a running SHA-256 digest, compared before a result is returned.
//! - **Steps the semi-honest protocol trusts one party with** are replaced:
//!   `a2b_operands` (party 0 shared `s0 + s1`) by a carry-save adder on the components, one
//!   checked AND layer; `b2a_packed` and `mul_bits` (party 0 shared `b0 xor b1`) by party 0
//!   inputting `b0 xor b1` with a proof, then one message from each of the other two, each
//!   one proved term (`Rep3Mal::bits_to_arith`; `mul_bits` forms `x * b2` beside the input
//!   and ends with one checked product, `Rep3Mal::mul_bits_checked`); `truncate` (party 2, the
//!   helper who knows the mask, sent unchecked shares of its high part and sign) by a mask
//!   whose halves are components drawn from shared keys, the masked value opened to parties 0
//!   and 1 only, the helper inputting the mask's correction and sign with the carries of
//!   their halves (proved by the helper, the bits they imply compared by parties 0 and 1),
//!   and the wrap formed by parties 0 and 1 in one checked exchange (`truncate.rs`).
//! - **Inputs** are unchanged: every component of an input is defined by one message or by
//!   a key two parties share, so a party can only be inconsistent with itself, which the
//!   proofs and the digests catch wherever the value is used.
//!
//! Statistical security: 57 bits per proof batch (see `musket_core::dzkp`); the digests are
//! SHA-256.

mod proof;
mod record;
mod verifier;

use crate::party::{RBits, RShare, Rep3, Stream};
use musket_core::{
    batch_item, batched_dims, element_count, matrix_dims, rows_dims, MpcError, Prg, Protocol, Result, Share,
};
use musket_net::{CommStats, Net};
use musket_ring::{unpack_bits, RingTensor};
use proof::ProofKeys;
use record::{Gate, Record, Role};
use std::ops::Range;
use verifier::{Verifier, Worker};

/// Products verified per proof batch, as terms of the inner product: bounds a batch's
/// memory (a Galois-ring term is 512 bytes) and its length (soundness, see `dzkp`). Matrix
/// products (plain proofs) batch this many terms; elementwise products and conversions' cross
/// gates, which prove in packed form and are written out as a 32nd as many elements (see
/// `dzkp_packed`), 64 times as many (their records are cut into pieces of at most this many).
const BATCH_TERMS_ARITH: usize = 1 << 14;
/// Elementwise products' and cross gates' batch (packed proofs; see above).
const BATCH_TERMS_ARITH_PACKED: usize = 1 << 20;
/// The same for bits (packed: after six packed levels a full batch's written-out vectors are
/// `2^16` field elements). `2^23` rather than `2^24` (until the eleventh session) so that
/// the plain levels after the five packed ones were all quartering: 14 levels a full batch,
/// not 15, two rounds fewer a group, with twice as many batches a group (the same proof
/// state, [`LOCKSTEP_BATCHES_BINARY`]); `2^22` since the sixteenth session, so that a full
/// batch takes six packed levels for the same 14 (`dzkp_packed::packed_levels_bits`) and
/// writes out half as many field elements per bit as five levels did, again with twice as many
/// batches a group.
const BATCH_TERMS_BINARY: usize = 1 << 22;
/// Batches of one kind proved side by side, in the same rounds: a verification's rounds are
/// those of one batch per group. Their proofs' state lives at once (for prover and both
/// verifiers up to about 72 MiB a packed ring batch, 48 MiB a plain one, 4.5 MiB a binary
/// one), so ring groups are capped at about 300 MiB by their size (see [`ring_groups`]: four
/// full packed batches, or a few more smaller ones, such as the tail of a large record), and
/// binary ones by count ([`LOCKSTEP_BATCHES_BINARY`]).
const LOCKSTEP_BYTES_RING: usize = (4 * 72) << 20;
/// Proof state of a packed ring batch per term, for prover and both verifiers: the block
/// terms' two words and weight, three statements.
const PACKED_BYTES_PER_TERM: usize = 3 * 3 * 8;
/// The same for a plain batch: two Galois-ring elements per term.
const PLAIN_BYTES_PER_TERM: usize = 3 * 2 * 512;
/// Binary batches proved side by side (up to about 580 MiB of proof state). Binary proofs
/// were 24 levels deep (53 rounds a group; since the eleventh session's quartering levels
/// and half-size batches, 14 levels and 31 rounds), so their groups are most of a large
/// model's rounds: 32 where there were 16, with the pending limit halved below, took
/// ResNet-50 from 2,886 to 2,235 rounds at 0.45 GiB less peak memory (three parties) and the
/// same time, and ReLU of 10^6 from 117 to 64 rounds at 1.4 GiB more (every batch's state at
/// once). 64 since the batches are half the size (the same state a group), 128 since they
/// are a quarter (sixteenth session).
const LOCKSTEP_BATCHES_BINARY: usize = 128;
/// Pending records are verified (in batches as usual) once they hold this many words
/// (256 MiB), so that a large model's memory does not grow with its depth: verifying earlier
/// than at the next opening costs rounds, not security. It was 1 GiB, then 512 MiB (a local
/// ResNet-18 at 224x224 ran 23.6 -> 20.7 s with 2.4% more rounds, peak memory 6.0 -> 4.3
/// GiB, and a third of the kernel's time touching fresh pages); 256 MiB since binary groups
/// hold 32 full batches (64 half-size ones now), which pays for their proof state (see
/// [`LOCKSTEP_BATCHES_BINARY`]).
const PENDING_WORDS_LIMIT: usize = 1 << 25;
/// Verifications the pending limit starts that may run beside the computation (see
/// [`Rep3Mal::with_verifications_ahead`]). One: two (the next one queued behind the running
/// one, so that the party never waits at a limit) took a malicious ResNet-50 from 884 to 840
/// rounds only, the verifications' own chain being then the longer one, at 1.1 GB more peak
/// memory for the three parties and 1.2 s more time on this two-core box (twenty-second
/// session, alternated).
const VERIFICATIONS_AHEAD: usize = 1;
/// How long a party whose peers stopped waits for its proofs' worker to say why
/// ([`Protocol::explain_failure`]): a worker whose peers left fails within a moment.
const EXPLAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Which message a cheating party of the test harness changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The masked value an input owner sends.
    Input,
    /// An elementwise product's resharing.
    Mul,
    /// A matrix product's resharing.
    Matmul,
    /// An AND layer's resharing.
    And,
    /// The masked value of a truncation, as opened.
    Truncate,
    /// A message of a truncated product's opening (`Rep3Mal::truncated_product`), in the
    /// order sent: as a frame's helper its product term to party 1, then its copy to party
    /// 0; as party 0 or 1 its product term with its mask.
    TruncatedProduct,
    /// Party 2's input of a truncation mask's carries (to party 0).
    Carries,
    /// Party 2's arithmetic inputs of a truncation mask's correction and sign (to party 1).
    MaskInput,
    /// A message of the checked conversion of bits to arithmetic (`b2a_packed`, `mul_bits`),
    /// or an opener's term of a truncation's wrap.
    Convert,
    /// An output component sent in `reveal`, `reveal_to` or `reveal_bits`.
    Reveal,
    /// A prover's polynomial in a proof.
    Proof,
    /// A verifier's challenges to its prover in a proof (as `B`).
    Challenge,
    /// A verifier's opening at the end of a proof.
    ProofOpening,
}

/// A deviation for tests: party `party` adds `error` (XORs it, for bits) to the first (or
/// last) word of its `nth` (from 0) message of kind `target`.
#[derive(Clone, Copy, Debug)]
pub struct Cheat {
    /// The cheating party.
    pub party: usize,
    /// Which message.
    pub target: Target,
    /// Which occurrence.
    pub nth: usize,
    /// What it adds.
    pub error: u64,
    /// The last word of the message rather than the first (in a proof message, the last
    /// batch's part of a group proved side by side).
    pub last_word: bool,
}

/// A party of the malicious-secure 3PC protocol.
pub struct Rep3Mal {
    base: Rep3,
    /// The proofs' prover and verifiers, until the first verification hands them to the
    /// worker.
    verifier: Option<Verifier>,
    /// The proofs' worker thread, from the first verification on (see `verifier.rs`).
    worker: Option<Worker>,
    /// How many verifications the pending limit starts may run beside the computation
    /// ([`Rep3Mal::with_verifications_ahead`]).
    ahead: usize,
    arith: Vec<Record>,
    binary: Vec<Record>,
    /// Words the pending records hold, and the limit past which they are verified.
    pending_words: usize,
    pending_limit: usize,
    /// Digest of the opened components received from the next party.
    received: ring::digest::Context,
    /// Digest of the components the next party received from the previous one, which this
    /// party also holds.
    vouched: ring::digest::Context,
    /// Openings received from the next party since the last digest comparison.
    unchecked_openings: usize,
    /// The other direction (truncation's opening to party 1 comes from party 0, so that the
    /// helper, party 2, which already sends the mask's carries, sends no copy): the digest
    /// of the components received from the previous party, and of those the previous party
    /// received from its own previous one, which this party also holds.
    received_from_prev: ring::digest::Context,
    vouched_for_prev: ring::digest::Context,
    /// Openings received from the previous party since the last digest comparison.
    unchecked_from_prev: usize,
    /// Truncation masks drawn so far, mod 3: the frame of the next truncation's first third
    /// of its elements (that third's helper is party `(truncations + 2) % 3`, the next
    /// thirds' the following parties; see `truncate.rs`).
    truncations: usize,
    cheat: Option<Cheat>,
    seen: Vec<(Target, usize)>,
}

impl std::fmt::Debug for Rep3Mal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rep3Mal").field("id", &self.base.id).finish()
    }
}

/// Applies `cheat` (the test harness's deviation, if any) to an outgoing message of kind
/// `target`, counting the messages of each kind in `seen`.
fn tamper_message(cheat: Option<Cheat>, seen: &mut Vec<(Target, usize)>, target: Target, words: &mut [u64]) {
    let Some(c) = cheat.filter(|c| c.target == target) else { return };
    let count = match seen.iter_mut().find(|(t, _)| *t == target) {
        Some((_, n)) => {
            *n += 1;
            *n - 1
        }
        None => {
            seen.push((target, 1));
            0
        }
    };
    if count == c.nth {
        let at = if c.last_word { words.len().saturating_sub(1) } else { 0 };
        if let Some(w) = words.get_mut(at) {
            *w = if matches!(target, Target::And) { *w ^ c.error } else { w.wrapping_add(c.error) };
        }
    }
}

/// The error when a party's verifier is gone: the proofs' thread could not be started (the
/// computation already failed then).
fn verifier_lost() -> MpcError {
    MpcError::Usage("the proofs' verifier is gone: its thread failed to start".into())
}

fn digest() -> ring::digest::Context {
    ring::digest::Context::new(&ring::digest::SHA256)
}

impl Rep3Mal {
    /// Joins the computation (as [`Rep3::new`]).
    /// The proofs run on the transport's second channel ([`musket_net::Transport::second_channel`]),
    /// which it must have.
    pub fn new(mut net: Net) -> Result<Self> {
        let proofs = net.second_channel().ok_or_else(|| {
            MpcError::Usage("the malicious back end needs a transport with a second channel".into())
        })?;
        let (mut base, own, next) = Rep3::with_keys(net)?;
        let private = Prg::from_seed(base.private.seed());
        let verifier = Verifier::new(
            base.id,
            proofs,
            ProofKeys::derive(&own, &next),
            private,
            (BATCH_TERMS_ARITH_PACKED, BATCH_TERMS_ARITH, BATCH_TERMS_BINARY),
            LOCKSTEP_BYTES_RING,
        );
        Ok(Self {
            base,
            verifier: Some(verifier),
            worker: None,
            ahead: VERIFICATIONS_AHEAD,
            arith: Vec::new(),
            binary: Vec::new(),
            pending_words: 0,
            pending_limit: PENDING_WORDS_LIMIT,
            received: digest(),
            vouched: digest(),
            unchecked_openings: 0,
            received_from_prev: digest(),
            vouched_for_prev: digest(),
            unchecked_from_prev: 0,
            truncations: 0,
            cheat: None,
            seen: Vec::new(),
        })
    }

    /// Makes this party deviate as `cheat` says when it is the cheating party (the
    /// cheating-party test harness; only with the `cheat` feature). Like the other
    /// settings of the proofs, it must be made before the first operation: the proofs'
    /// worker takes the verifier at the first verification.
    #[cfg(feature = "cheat")]
    pub fn with_cheat(mut self, cheat: Cheat) -> Self {
        if cheat.party == self.base.id {
            self.cheat = Some(cheat);
            if let Some(v) = self.verifier.as_mut() {
                v.cheat = Some(cheat);
            }
        }
        self
    }

    /// Verifies pending products whenever they hold more than `words` words (default 2^25,
    /// 256 MiB): a lower limit bounds memory further at the cost of more proof rounds. Every
    /// party must use the same limit.
    pub fn with_pending_limit(mut self, words: usize) -> Self {
        self.pending_limit = words;
        self
    }

    /// Lets `n` verifications that the pending limit starts run beside the computation
    /// (see `verifier.rs`): 0 runs each on this party's thread before it goes on (as until
    /// the twenty-second session: the same messages, a digest comparison more each, and
    /// every round counted); 1 lets one run while the party computes on, and waits for it
    /// when the next starts; 2 lets the next one wait behind it instead, at the cost of one
    /// more pending limit's worth of records alive at once. Every party must use the same.
    pub fn with_verifications_ahead(mut self, n: usize) -> Self {
        self.ahead = n;
        self
    }

    /// Batches of at most these many terms (packed ring, plain ring, binary; each at most the
    /// default, which the soundness bound assumes), for tests that need many batches from
    /// a small computation: proofs of smaller batches are as sound and cost more rounds.
    /// Every party must use the same sizes, before the first operation.
    pub fn with_batch_terms(mut self, packed_ring: usize, plain_ring: usize, binary: usize) -> Self {
        if let Some(v) = self.verifier.as_mut() {
            v.batch_terms = (
                packed_ring.clamp(1, BATCH_TERMS_ARITH_PACKED),
                plain_ring.clamp(1, BATCH_TERMS_ARITH),
                binary.clamp(1, BATCH_TERMS_BINARY),
            );
        }
        self
    }

    /// Groups of ring batches of at most `bytes` of proof state (at most the default; a
    /// batch larger than that is a group alone), for tests that need several groups from a
    /// small computation. Every party must use the same size, before the first operation.
    pub fn with_ring_group_bytes(mut self, bytes: usize) -> Self {
        if let Some(v) = self.verifier.as_mut() {
            v.ring_group_bytes = bytes.min(LOCKSTEP_BYTES_RING);
        }
        self
    }

    /// Applies the test harness's deviation to an outgoing message.
    fn tamper(&mut self, target: Target, words: &mut [u64]) {
        tamper_message(self.cheat, &mut self.seen, target, words);
    }

    /// The two zero-share draws and `z = cross terms + own - nxt` (or XOR).
    fn draws(&mut self, n: usize, binary: bool, cross: impl Fn(usize) -> u64) -> ZeroDraws {
        let own_at = self.base.stream_snapshot(Stream::Own);
        let own = self.base.draw(Stream::Own, n);
        let nxt = self.base.draw(Stream::Next, n);
        let z = (0..n)
            .map(|i| {
                if binary {
                    cross(i) ^ own[i] ^ nxt[i]
                } else {
                    cross(i).wrapping_add(own[i]).wrapping_sub(nxt[i])
                }
            })
            .collect();
        ZeroDraws { z, own_at, nxt, binary }
    }

    /// Elementwise products of replicated shares, in one message (one round, however many
    /// elements), recorded in pieces of at most a batch each (so that no record outgrows a
    /// batch's soundness bound).
    fn products(
        &mut self,
        a: &[u64],
        an: &[u64],
        b: &[u64],
        bn: &[u64],
        binary: bool,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        if a.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let (z, records) = self.elementwise_terms(a, an, b, bn, binary, true);
        self.reshare_records(z, records, binary)
    }

    /// This party's terms `x_c (y_c + y_n) + x_n y_c` (AND and XOR for bits) of elementwise
    /// products, and their records in pieces of at most a batch each. With `zero_share`, the
    /// zero share's draws are drawn a piece at a time (the two streams are apart, so drawn in
    /// pieces they are the same words), the next stream's into the pieces' records and the
    /// own stream's kept as where they began (`Record::own_at`), and added to the terms,
    /// `z = terms + own - nxt` (or XOR), the resharing message; without, the records' claim
    /// fields are left empty for a truncated product to fill
    /// ([`Rep3Mal::truncated_product`]: the truncation's masks hide the terms instead).
    fn elementwise_terms(
        &mut self,
        a: &[u64],
        an: &[u64],
        b: &[u64],
        bn: &[u64],
        binary: bool,
        zero_share: bool,
    ) -> (Vec<u64>, Vec<Record>) {
        let n = a.len();
        let piece = if binary { BATCH_TERMS_BINARY / 128 } else { BATCH_TERMS_ARITH / 2 };
        let mut z = Vec::with_capacity(n);
        let mut records = Vec::with_capacity(n.div_ceil(piece));
        for start in (0..n).step_by(piece) {
            let end = (start + piece).min(n);
            // The own draws are kept as where they began (`Record::own_at`), not as words.
            let (own_at, own, nxt) = if zero_share {
                let at = self.base.stream_snapshot(Stream::Own);
                (
                    Some(at),
                    self.base.draw(Stream::Own, end - start),
                    self.base.draw(Stream::Next, end - start),
                )
            } else {
                (None, Vec::new(), Vec::new())
            };
            let (xc, xn, yc, yn) = (&a[start..end], &an[start..end], &b[start..end], &bn[start..end]);
            match (binary, zero_share) {
                (true, true) => z.extend(
                    (0..end - start).map(|i| (xc[i] & (yc[i] ^ yn[i])) ^ (xn[i] & yc[i]) ^ own[i] ^ nxt[i]),
                ),
                (true, false) => {
                    z.extend((0..end - start).map(|i| (xc[i] & (yc[i] ^ yn[i])) ^ (xn[i] & yc[i])))
                }
                (false, true) => z.extend((0..end - start).map(|i| {
                    xc[i]
                        .wrapping_mul(yc[i].wrapping_add(yn[i]))
                        .wrapping_add(xn[i].wrapping_mul(yc[i]))
                        .wrapping_add(own[i])
                        .wrapping_sub(nxt[i])
                })),
                (false, false) => z.extend((0..end - start).map(|i| {
                    xc[i].wrapping_mul(yc[i].wrapping_add(yn[i])).wrapping_add(xn[i].wrapping_mul(yc[i]))
                })),
            }
            records.push(Record {
                gate: Gate::Elementwise,
                xc: xc.to_vec(),
                xn: xn.to_vec(),
                yc: yc.to_vec(),
                yn: yn.to_vec(),
                theirs: Vec::new(),
                own: Vec::new(),
                nxt,
                own_at,
            });
            drop(own);
        }
        (z, records)
    }

    /// Runs every pending proof, after those the worker is on, and compares the digests of
    /// the openings so far. Called before anything is opened as a result, and at the end;
    /// this party waits for it.
    fn verify_all(&mut self) -> Result<()> {
        if self.worker.is_none() && self.arith.is_empty() && self.binary.is_empty() {
            // Nothing was ever recorded: no thread to start.
            return self.check_openings();
        }
        let (arith, binary) = self.take_pending();
        let clock = self.base.net.clock();
        let worker = self.worker()?;
        if !arith.is_empty() || !binary.is_empty() {
            worker.send(arith, binary, clock)?;
        }
        let jobs = worker.sent();
        for counts in worker.settle_through(jobs)? {
            self.base.net.take_over(counts);
        }
        self.check_openings()
    }

    /// The pending records, and none left pending.
    fn take_pending(&mut self) -> (Vec<Record>, Vec<Record>) {
        self.pending_words = 0;
        (std::mem::take(&mut self.arith), std::mem::take(&mut self.binary))
    }

    /// The proofs' worker, started with this party's verifier the first time.
    fn worker(&mut self) -> Result<&mut Worker> {
        if self.worker.is_none() {
            let verifier = self.verifier.take().ok_or_else(verifier_lost)?;
            self.worker = Some(Worker::start(verifier)?);
        }
        self.worker.as_mut().ok_or_else(verifier_lost)
    }

    /// After records were kept: takes the worker's reports that have arrived (so that
    /// cheating caught beside the computation stops this party at once), and past the
    /// pending limit sends the pending records to the worker, after waiting for all but
    /// `ahead - 1` of the verifications before them and handing their counts (bytes, and
    /// their round clock) to this party's. The counts are handed over there, at a point of
    /// the program, and never where a report happened to arrive, which depends on timing:
    /// so do the rounds counted from them.
    fn check_pending(&mut self) -> Result<()> {
        if let Some(worker) = self.worker.as_mut() {
            worker.poll()?;
        }
        if self.pending_words > self.pending_limit {
            if self.ahead == 0 {
                return self.verify_all();
            }
            let ahead = self.ahead;
            let (arith, binary) = self.take_pending();
            let worker = self.worker()?;
            let done_before = (worker.sent() + 1).saturating_sub(ahead);
            for counts in worker.settle_through(done_before)? {
                self.base.net.take_over(counts);
            }
            let clock = self.base.net.clock();
            self.worker()?.send(arith, binary, clock)?;
        }
        Ok(())
    }

    /// Compares the digest of the components received from the next party with the one the
    /// previous party vouches for, and, when truncations opened values the other way, the
    /// digest of those received from the previous party with the next party's (one round,
    /// 32 bytes per party and direction used).
    fn check_openings(&mut self) -> Result<()> {
        let (from_next, from_prev) = (self.unchecked_openings > 0, self.unchecked_from_prev > 0);
        if !from_next && !from_prev {
            return Ok(());
        }
        self.unchecked_openings = 0;
        self.unchecked_from_prev = 0;
        let (prev, next) = (self.base.prev(), self.base.next_party());
        let vouched = std::mem::replace(&mut self.vouched, digest()).finish();
        let received = std::mem::replace(&mut self.received, digest()).finish();
        let vouched_for_prev = std::mem::replace(&mut self.vouched_for_prev, digest()).finish();
        let received_from_prev = std::mem::replace(&mut self.received_from_prev, digest()).finish();
        if from_next {
            self.base.net.send_bytes(next, vouched.as_ref())?;
        }
        if from_prev {
            self.base.net.send_bytes(prev, vouched_for_prev.as_ref())?;
        }
        let mismatch = || MpcError::CheatingDetected {
            phase: format!(
                "an opening or a truncation helper's input: the copies of parties {next} and {prev} differ"
            ),
            party: None,
        };
        if from_next && self.base.net.recv_bytes(prev)? != received.as_ref() {
            return Err(mismatch());
        }
        if from_prev && self.base.net.recv_bytes(next)? != received_from_prev.as_ref() {
            return Err(mismatch());
        }
        Ok(())
    }

    /// After an output's own check: tells both peers this party found nothing wrong and waits
    /// for theirs, so that a party that detected cheating (and aborted, which reaches every
    /// peer) stops the others too, and no honest party keeps an output another rejected.
    fn agree(&mut self) -> Result<()> {
        let (prev, next) = (self.base.prev(), self.base.next_party());
        self.base.net.send_u64s(prev, &[1])?;
        self.base.net.send_u64s(next, &[1])?;
        for peer in [prev, next] {
            if self.base.net.recv_u64s(peer, 1)? != [1] {
                return Err(MpcError::CheatingDetected {
                    phase: "the output agreement".into(),
                    party: Some(peer),
                });
            }
        }
        Ok(())
    }

    /// Opens `x` to every party without verifying first (for masked values); the copies are
    /// compared at the next check.
    fn open_unverified(&mut self, cur: &[u64], next: &[u64], target: Target) -> Result<Vec<u64>> {
        let mut send = next.to_vec();
        self.tamper(target, &mut send);
        let (_, missing) = self.base.reshare(send)?;
        self.received.update(&musket_net::le_bytes(&missing));
        self.vouched.update(&musket_net::le_bytes(cur));
        self.unchecked_openings += 1;
        Ok(missing)
    }

    /// XOR-shared words with only component `j` set (to this party's copy of it: `cur` when
    /// component `j` is its own, `next` when it is the next party's).
    fn bits_component(&self, j: usize, cur: &[u64], next: &[u64]) -> RBits {
        let zeros = vec![0u64; cur.len()];
        let id = self.base.id;
        if j == id {
            RBits { cur: cur.to_vec(), next: zeros }
        } else if j == (id + 1) % 3 {
            RBits { cur: zeros, next: next.to_vec() }
        } else {
            RBits { cur: zeros.clone(), next: zeros }
        }
    }
}

/// Draws and product term of one resharing: the message `z`, the own stream where its draws
/// began (the records draw them again when verified), the next stream's draws.
struct ZeroDraws {
    z: Vec<u64>,
    own_at: musket_core::Prg,
    nxt: Vec<u64>,
    binary: bool,
}

/// The batches of group `i` (none when that kind has fewer groups), as slices of `records`.
/// Group `i`'s batches, each the records of one of its ranges, moved out of `records` (each
/// left empty in its place, so that the other groups' ranges still index the list).
fn take_group(groups: &[&[Range<usize>]], i: usize, records: &mut [Record]) -> Vec<Vec<Record>> {
    groups.get(i).map_or_else(Vec::new, |g| {
        g.iter().map(|r| records[r.clone()].iter_mut().map(std::mem::take).collect()).collect()
    })
}

/// Ring batches (`ranges` of `records`, those before `packed_until` elementwise, which prove
/// packed from [`record::PACKED_MIN_PRODUCTS`] elements a batch) in consecutive groups of at
/// most `budget` ([`LOCKSTEP_BYTES_RING`]) of proof state each (a larger batch is a group alone). By
/// size rather than count, so that a small batch (a large record's tail, a small matrix
/// product) joins a group instead of costing one more group's rounds.
fn ring_groups<'g>(
    ranges: &'g [Range<usize>],
    records: &[Record],
    packed_until: usize,
    budget: usize,
) -> Vec<&'g [Range<usize>]> {
    let bytes = |r: &Range<usize>| {
        let batch = &records[r.clone()];
        // Statements pad to a power of two of terms (of blocks, packed).
        let terms = batch.iter().map(|rec| rec.terms(false)).sum::<usize>().next_power_of_two();
        let elements: usize = batch.iter().map(Record::elements).sum();
        let packed = r.end <= packed_until && elements >= record::PACKED_MIN_PRODUCTS;
        terms * if packed { PACKED_BYTES_PER_TERM } else { PLAIN_BYTES_PER_TERM }
    };
    let mut groups = Vec::new();
    let (mut start, mut held) = (0, 0);
    for (i, r) in ranges.iter().enumerate() {
        let b = bytes(r);
        if i > start && held + b > budget {
            groups.push(&ranges[start..i]);
            start = i;
            held = 0;
        }
        held += b;
    }
    if start < ranges.len() {
        groups.push(&ranges[start..]);
    }
    groups
}

/// Splits records into consecutive batches of at most `limit` terms, as index ranges (a
/// record larger than the limit is a batch alone).
fn batch_ranges(records: &[Record], binary: bool, limit: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut terms) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let t = r.terms(binary);
        if terms > 0 && terms + t > limit {
            out.push(start..i);
            start = i;
            terms = 0;
        }
        terms += t;
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

mod convert;
mod protocol_impl;
mod truncate;
use truncate::{check_truncation_bits, ProductTerms};

#[cfg(test)]
mod tests {
    use super::*;

    fn products(n: usize) -> Record {
        let v = vec![0u64; n];
        Record {
            gate: Gate::Elementwise,
            xc: v.clone(),
            xn: v.clone(),
            yc: v.clone(),
            yn: v.clone(),
            theirs: v.clone(),
            own: v.clone(),
            nxt: v,
            own_at: None,
        }
    }

    #[test]
    fn ring_groups_hold_batches_up_to_the_budget() {
        // Three full packed batches (2^20 terms, 72 MiB each), a small tail and a small
        // plain one: one group, where four batches a group made two.
        let full = BATCH_TERMS_ARITH_PACKED;
        let records = vec![products(full), products(full), products(full), products(32), products(8)];
        let ranges: Vec<Range<usize>> = (0..5).map(|i| i..i + 1).collect();
        let groups = ring_groups(&ranges, &records, 4, LOCKSTEP_BYTES_RING);
        assert_eq!(groups, vec![&ranges[..]]);
        // Five full packed batches: four, then one.
        let records: Vec<Record> = (0..5).map(|_| products(full)).collect();
        let groups = ring_groups(&ranges, &records, 5, LOCKSTEP_BYTES_RING);
        assert_eq!(groups, vec![&ranges[..4], &ranges[4..]]);
        // Plain batches (past `packed_until`) cost a Galois-ring element per term and vector:
        // six full ones (48 MiB each) a group.
        let records: Vec<Record> = (0..8).map(|_| products(BATCH_TERMS_ARITH)).collect();
        let ranges: Vec<Range<usize>> = (0..8).map(|i| i..i + 1).collect();
        let groups = ring_groups(&ranges, &records, 0, LOCKSTEP_BYTES_RING);
        assert_eq!(groups, vec![&ranges[..6], &ranges[6..]]);
        // A budget below one batch: each alone.
        assert_eq!(ring_groups(&ranges, &records, 0, 1).len(), 8);
    }
}
