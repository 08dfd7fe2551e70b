//! The verification step: the three proofs of a batch run side by side (each party proves
//! its own messages and verifies its two neighbours'), one message per peer per round, and
//! the consistency check of opened values.
//!
//! Rounds of one proof batch: the seed, two per folding level (the prover's polynomial to
//! verifier `B`, `B`'s challenge back), the last polynomial, verifier `A`'s copy of every
//! challenge to the prover (a prover that was sent a challenge its other verifier did not
//! draw stops here, before anything about its witness is opened), the prover's go-ahead,
//! and the verifiers' exchange of openings: `2 L + 5` for `L = log2(terms)` levels. Batches
//! of one kind run side by side in a group (each message carries every batch's part), so a
//! group costs the rounds of its largest batch.
//!
//! Keys: the prover's messages to `A` are never sent; both draw them from a stream of
//! `k_P` (known to `P` and `A`), and `B` receives the difference. The challenges come from a
//! stream of `k_{P+2}`, which both verifiers hold and the prover does not.

use super::record::{Lift, Record, Role};
use super::{Rep3Mal, Target};
use musket_core::dzkp::{accepts, Opening, ProverSteps, VerifierSteps};
use musket_core::{MpcError, Prg, Result};
use musket_net::NetError;

/// The streams a party derives from its two keys for proofs.
pub(crate) struct ProofKeys {
    /// From `k_i`: shares of this party's proof messages (with the previous party).
    pub(crate) share_own: Prg,
    /// From `k_{i+1}`: shares of the next party's proof messages.
    pub(crate) share_next: Prg,
    /// From `k_i`: challenges as verifier `A` of the next party.
    pub(crate) chal_own: Prg,
    /// From `k_{i+1}`: challenges as verifier `B` of the previous party.
    pub(crate) chal_next: Prg,
}

impl ProofKeys {
    /// Derives the streams (SHA-256 of the key and a label, so that they are independent of
    /// the sharing streams of the same keys).
    pub(crate) fn derive(own: &[u8; 16], next: &[u8; 16]) -> Self {
        let sub = |key: &[u8; 16], label: &[u8]| {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(b"musket-dzkp-v1");
            ctx.update(label);
            ctx.update(key);
            let d = ctx.finish();
            let mut seed = [0u8; 16];
            seed.copy_from_slice(&d.as_ref()[..16]);
            Prg::from_seed(seed)
        };
        Self {
            share_own: sub(own, b"shares"),
            share_next: sub(next, b"shares"),
            chal_own: sub(own, b"challenges"),
            chal_next: sub(next, b"challenges"),
        }
    }
}

fn read_elems<E: Lift>(words: &[u64]) -> Vec<E> {
    words.chunks_exact(E::WORDS).map(E::read).collect()
}

fn elems_to_words<E: Lift>(items: &[E]) -> Vec<u64> {
    let mut out = Vec::with_capacity(items.len() * E::WORDS);
    for x in items {
        x.write(&mut out);
    }
    out
}

fn seed_words(seed: &[u8; 16]) -> Vec<u64> {
    seed.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

/// One batch's proofs as this party runs them: its own statement's prover and its
/// verifiers (as `A` of the next party, `B` of the previous one), with the challenge words
/// it drew as `A` and received as the prover (compared at the end).
struct Batch<E: Lift> {
    prover: Box<dyn ProverSteps<E>>,
    va: Box<dyn VerifierSteps<E>>,
    vb: Box<dyn VerifierSteps<E>>,
    levels: usize,
    drawn_as_a: Vec<u64>,
    received: Vec<u64>,
}

impl Rep3Mal {
    /// Proves and verifies `batches` side by side: every round carries each batch's message
    /// (a batch with fewer levels sits out the rounds past its last), so a group costs the
    /// rounds of its largest batch, `2 L + 5`, however many batches it holds.
    pub(crate) fn prove_batches<E: Lift>(&mut self, batches: &[&[Record]], what: &str) -> Result<()> {
        if batches.is_empty() {
            return Ok(());
        }
        let (prev, next) = (self.base.prev(), self.base.next_party());
        // The statement seeds: as B of the previous party we draw them and send them to that
        // prover; as A of the next party we draw the same ones as its B; ours come from our B.
        let seeds: Vec<([u8; 16], [u8; 16])> =
            batches.iter().map(|_| (self.keys.chal_next.seed(), self.keys.chal_own.seed())).collect();
        let seed_b_words: Vec<u64> = seeds.iter().flat_map(|(b, _)| seed_words(b)).collect();
        self.base.net.send_u64s(prev, &seed_b_words)?;
        let seed_p_words = self.base.net.recv_u64s(next, 2 * batches.len())?;
        let mut group: Vec<Batch<E>> = Vec::with_capacity(batches.len());
        for ((records, (seed_b, seed_a)), seed_p) in
            batches.iter().zip(&seeds).zip(seed_p_words.chunks_exact(2))
        {
            let mut p = [0u8; 16];
            for (chunk, w) in p.chunks_exact_mut(8).zip(seed_p) {
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            // Every statement has one term per recorded term, so the three proofs fold in step.
            let len = records.iter().map(|r| r.terms(E::BINARY)).sum::<usize>();
            let prover = E::prover(records, len, &mut Prg::from_seed(p));
            let levels = prover.levels();
            group.push(Batch {
                prover,
                va: E::verifier(records, Role::A, len, &mut Prg::from_seed(*seed_a)),
                vb: E::verifier(records, Role::B, len, &mut Prg::from_seed(*seed_b)),
                levels,
                drawn_as_a: seed_words(seed_a),
                received: seed_p.to_vec(),
            });
        }
        let max_levels = group.iter().map(|b| b.levels).max().unwrap_or(0);
        for level in 0..max_levels {
            let live: Vec<usize> = (0..group.len()).filter(|&i| level < group[i].levels).collect();
            let mut words = Vec::with_capacity(live.len() * 3 * E::WORDS);
            let mut shares_a = Vec::with_capacity(live.len());
            for &i in &live {
                let h = group[i].prover.level();
                let mine_a: Vec<E> = (0..3).map(|_| E::random(&mut self.keys.share_own)).collect();
                let corr: Vec<E> = h.iter().zip(&mine_a).map(|(x, s)| x.sub(*s)).collect();
                words.extend(elems_to_words(&corr));
                shares_a.push([0; 3].map(|_| E::random(&mut self.keys.share_next)));
            }
            self.tamper(Target::Proof, &mut words);
            self.base.net.send_u64s(next, &words)?;
            let sb_all: Vec<E> = read_elems(&self.base.net.recv_u64s(prev, live.len() * 3 * E::WORDS)?);
            let mut tb_words = Vec::with_capacity(live.len() * E::WORDS);
            let mut challenges = Vec::with_capacity(live.len());
            for _ in &live {
                let tb = E::challenge(&mut self.keys.chal_next);
                let ta = E::challenge(&mut self.keys.chal_own);
                tb.write(&mut tb_words);
                challenges.push((ta, tb));
            }
            self.base.net.send_u64s(prev, &tb_words)?;
            let tp_all = self.base.net.recv_u64s(next, live.len() * E::WORDS)?;
            for (k, &i) in live.iter().enumerate() {
                let b = &mut group[i];
                let tp_words = &tp_all[k * E::WORDS..(k + 1) * E::WORDS];
                b.received.extend_from_slice(tp_words);
                let (ta, tb) = challenges[k];
                ta.write(&mut b.drawn_as_a);
                b.prover.fold(E::read(tp_words));
                let sa = shares_a[k];
                b.va.level(&sa, ta);
                b.vb.level(&[sb_all[3 * k], sb_all[3 * k + 1], sb_all[3 * k + 2]], tb);
            }
        }
        let mut words = Vec::with_capacity(group.len() * 5 * E::WORDS);
        let mut shares_a = Vec::with_capacity(group.len());
        for b in &mut group {
            let (p, q) = (E::random(&mut self.base.private), E::random(&mut self.base.private));
            let last = b.prover.last(p, q);
            let mine_a: Vec<E> = (0..5).map(|_| E::random(&mut self.keys.share_own)).collect();
            let corr: Vec<E> = last.iter().zip(&mine_a).map(|(x, s)| x.sub(*s)).collect();
            words.extend(elems_to_words(&corr));
            shares_a.push([0; 5].map(|_| E::random(&mut self.keys.share_next)));
        }
        self.base.net.send_u64s(next, &words)?;
        let sb_all: Vec<E> = read_elems(&self.base.net.recv_u64s(prev, group.len() * 5 * E::WORDS)?);
        let mut openings = Vec::with_capacity(group.len());
        for (k, b) in group.into_iter().enumerate() {
            let (ta, tb) = (E::challenge(&mut self.keys.chal_own), E::challenge(&mut self.keys.chal_next));
            let sb: [E; 5] = std::array::from_fn(|j| sb_all[5 * k + j]);
            let oa = b.va.last(&shares_a[k], ta);
            let ob = b.vb.last(&sb, tb);
            openings.push((oa, ob, b.levels, b.drawn_as_a, b.received));
        }
        // A's copies of the challenges go to the prover, which stops if B sent others.
        let drawn_as_a: Vec<u64> = openings.iter().flat_map(|o| o.3.iter().copied()).collect();
        let received: Vec<u64> = openings.iter().flat_map(|o| o.4.iter().copied()).collect();
        self.base.net.send_u64s(next, &drawn_as_a)?;
        let from_a = self.base.net.recv_u64s(prev, received.len())?;
        if from_a != received {
            return Err(MpcError::CheatingDetected {
                phase: format!(
                    "{what} check: the challenges this party received differ between its verifiers"
                ),
                party: None,
            });
        }
        self.base.net.send_u64s(prev, &[1])?;
        let go = self.base.net.recv_u64s(next, 1)?;
        if go != [1] {
            return Err(MpcError::Net(NetError::Malformed {
                peer: next,
                reason: "expected a go-ahead".into(),
            }));
        }
        let mut oa_words: Vec<u64> = openings.iter().flat_map(|o| o.0.to_words()).collect();
        self.tamper(Target::ProofOpening, &mut oa_words);
        self.base.net.send_u64s(prev, &oa_words)?;
        let ob_words: Vec<u64> = openings.iter().flat_map(|o| o.1.to_words()).collect();
        self.base.net.send_u64s(next, &ob_words)?;
        let sizes: Vec<usize> = openings.iter().map(|o| (o.2 + 1 + 3) * E::WORDS).collect();
        let total: usize = sizes.iter().sum();
        let b_of_next = self.base.net.recv_u64s(prev, total)?;
        let a_of_prev = self.base.net.recv_u64s(next, total)?;
        let malformed =
            |peer| MpcError::Net(NetError::Malformed { peer, reason: "bad proof opening".into() });
        let mut at = 0;
        for ((oa, ob, levels, _, _), size) in openings.iter().zip(&sizes) {
            let zeros = levels + 1;
            let b_of_next =
                Opening::<E>::from_words(&b_of_next[at..at + size], zeros).ok_or_else(|| malformed(prev))?;
            let a_of_prev =
                Opening::<E>::from_words(&a_of_prev[at..at + size], zeros).ok_or_else(|| malformed(next))?;
            at += size;
            if !accepts(oa, &b_of_next) {
                return Err(MpcError::CheatingDetected {
                    phase: format!("{what} check of party {next}'s messages"),
                    party: None,
                });
            }
            if !accepts(&a_of_prev, ob) {
                return Err(MpcError::CheatingDetected {
                    phase: format!("{what} check of party {prev}'s messages"),
                    party: None,
                });
            }
        }
        Ok(())
    }
}
