//! The verification step: the three proofs of a batch run side by side (each party proves
//! its own messages and verifies its two neighbours'), one message per peer per round, and
//! the consistency check of opened values.
//!
//! Rounds of one proof batch: the seed, two per folding level (the prover's polynomial to
//! verifier `B`, `B`'s challenge back), the last polynomial, verifier `A`'s copy of every
//! challenge to the prover (a prover that was sent a challenge its other verifier did not
//! draw stops here, before anything about its witness is opened), the prover's go-ahead,
//! and the verifiers' exchange of openings: `2 L + 5` for `L = log2(terms)` levels.
//!
//! Keys: the prover's messages to `A` are never sent; both draw them from a stream of
//! `k_P` (known to `P` and `A`), and `B` receives the difference. The challenges come from a
//! stream of `k_{P+2}`, which both verifiers hold and the prover does not.

use super::record::{Lift, Record, Role};
use super::{Rep3Mal, Target};
use musket_core::dzkp::{accepts, Opening};
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

impl Rep3Mal {
    /// Proves and verifies `records` (one batch).
    pub(crate) fn prove_batch<E: Lift>(&mut self, records: &[Record], what: &str) -> Result<()> {
        let (prev, next) = (self.base.prev(), self.base.next_party());
        // The statement seeds: as B of the previous party we draw it and send it to that
        // prover; as A of the next party we draw the same one as its B; ours comes from our B.
        let seed_b = self.keys.chal_next.seed();
        let seed_a = self.keys.chal_own.seed();
        self.base.net.send_u64s(prev, &seed_words(&seed_b))?;
        let seed_p_words = self.base.net.recv_u64s(next, 2)?;
        let mut seed_p = [0u8; 16];
        for (chunk, w) in seed_p.chunks_exact_mut(8).zip(&seed_p_words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        // Every statement has one term per recorded term, so the three proofs fold in step.
        let len = records.iter().map(|r| r.terms(E::BINARY)).sum::<usize>();
        let mut prover = E::prover(records, len, &mut Prg::from_seed(seed_p));
        let mut va = E::verifier(records, Role::A, len, &mut Prg::from_seed(seed_a));
        let mut vb = E::verifier(records, Role::B, len, &mut Prg::from_seed(seed_b));
        let levels = prover.levels();
        let mut drawn_as_a = seed_words(&seed_a);
        let mut received = seed_p_words;
        for _ in 0..levels {
            let h = prover.level();
            let mine_a: Vec<E> = (0..3).map(|_| E::random(&mut self.keys.share_own)).collect();
            let mut corr: Vec<E> = h.iter().zip(&mine_a).map(|(x, s)| x.sub(*s)).collect();
            let sa: Vec<E> = (0..3).map(|_| E::random(&mut self.keys.share_next)).collect();
            let mut words = elems_to_words(&corr);
            self.tamper(Target::Proof, &mut words);
            corr = read_elems(&words);
            self.base.net.send_u64s(next, &elems_to_words(&corr))?;
            let sb: Vec<E> = read_elems(&self.base.net.recv_u64s(prev, 3 * E::WORDS)?);
            let tb = E::challenge(&mut self.keys.chal_next);
            let ta = E::challenge(&mut self.keys.chal_own);
            self.base.net.send_u64s(prev, &elems_to_words(&[tb]))?;
            let tp_words = self.base.net.recv_u64s(next, E::WORDS)?;
            let tp = E::read(&tp_words);
            received.extend(tp_words);
            ta.write(&mut drawn_as_a);
            prover.fold(tp);
            va.level(&[sa[0], sa[1], sa[2]], ta);
            vb.level(&[sb[0], sb[1], sb[2]], tb);
        }
        let (p, q) = (E::random(&mut self.base.private), E::random(&mut self.base.private));
        let last = prover.last(p, q);
        let mine_a: Vec<E> = (0..5).map(|_| E::random(&mut self.keys.share_own)).collect();
        let corr: Vec<E> = last.iter().zip(&mine_a).map(|(x, s)| x.sub(*s)).collect();
        let sa: Vec<E> = (0..5).map(|_| E::random(&mut self.keys.share_next)).collect();
        self.base.net.send_u64s(next, &elems_to_words(&corr))?;
        let sb: Vec<E> = read_elems(&self.base.net.recv_u64s(prev, 5 * E::WORDS)?);
        let (ta, tb) = (E::challenge(&mut self.keys.chal_own), E::challenge(&mut self.keys.chal_next));
        let oa = va.last(&[sa[0], sa[1], sa[2], sa[3], sa[4]], ta);
        let ob = vb.last(&[sb[0], sb[1], sb[2], sb[3], sb[4]], tb);
        // A's copy of the challenges goes to the prover, which stops if B sent others.
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
        let mut oa_words = oa.to_words();
        self.tamper(Target::ProofOpening, &mut oa_words);
        self.base.net.send_u64s(prev, &oa_words)?;
        self.base.net.send_u64s(next, &ob.to_words())?;
        let zeros = levels + 1;
        let len = (zeros + 3) * E::WORDS;
        let b_of_next = self.base.net.recv_u64s(prev, len)?;
        let a_of_prev = self.base.net.recv_u64s(next, len)?;
        let malformed =
            |peer| MpcError::Net(NetError::Malformed { peer, reason: "bad proof opening".into() });
        let b_of_next = Opening::<E>::from_words(&b_of_next, zeros).ok_or_else(|| malformed(prev))?;
        let a_of_prev = Opening::<E>::from_words(&a_of_prev, zeros).ok_or_else(|| malformed(next))?;
        if !accepts(&oa, &b_of_next) {
            return Err(MpcError::CheatingDetected {
                phase: format!("{what} check of party {next}'s messages"),
                party: None,
            });
        }
        if !accepts(&a_of_prev, &ob) {
            return Err(MpcError::CheatingDetected {
                phase: format!("{what} check of party {prev}'s messages"),
                party: None,
            });
        }
        Ok(())
    }
}
