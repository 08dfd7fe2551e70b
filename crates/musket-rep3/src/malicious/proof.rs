//! The verification step: the three proofs of a batch run side by side (each party proves
//! its own messages and verifies its two neighbours'), one message per peer per round, and
//! the consistency check of opened values.
//!
//! Rounds of one proof batch: the seed, two per folding level (the prover's polynomial to
//! verifier `B`, `B`'s challenge back), the last polynomial (with, in the same round, the
//! prover's go-ahead to verifier `A`), and the verifiers' exchange of openings: `2 N + 3`
//! for `N` levels. Verifier `A` sends the prover its copy of the seed and of each challenge
//! in the round `B` sends them, and a prover that was sent one its other verifier did not
//! draw stops there, before anything about its witness is opened (until the eleventh
//! session the copies went in a round of their own after the last polynomial, and the
//! go-ahead in another: `2 N + 5`). A batch of `2^L`
//! terms has `N = P + ceil((L - P) / 2)` levels: `P` packed ones that halve (five or six,
//! fewer for a small batch; none for a plain one), then quartering ones and at most one
//! more halving ([`musket_core::dzkp::arity_schedule`]; it was `N = L` until the eleventh
//! session). A level's message has as many elements per batch as its polynomial has
//! coefficients (3 or 7), which the verifiers know from the statement's length. Batches
//! run side by side in a group, Galois-ring and GF(2^64) ones together (each message carries
//! every live batch's part, ring parts first), so a group costs the rounds of its largest
//! batch.
//!
//! Keys: the prover's messages to `A` are never sent; both draw them from a stream of
//! `k_P` (known to `P` and `A`), and `B` receives the difference. The challenges come from a
//! stream of `k_{P+2}`, which both verifiers hold and the prover does not.

use super::record::{Lift, Record, Role};
use super::verifier::Verifier;
use super::Target;
use musket_core::dzkp::{accepts, coefficients, LevelPoly, Opening, ProverSteps, VerifierSteps};
use musket_core::ext::{Gf64, Gr64};
use musket_core::par::{both, map_each};
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

/// A statement of a batch to build: its role and the seed of its weights.
type StatementJob = (usize, Role, [u8; 16]);

/// A built statement: this party's prover, or one of its verifiers.
enum Built<E: Lift> {
    Prover(Box<dyn ProverSteps<E>>),
    Verifier(Box<dyn VerifierSteps<E>>),
}

/// One step of a level on one statement (see [`Lockstep::fold`]).
enum FoldStep<'a, E: Lift> {
    Prover(&'a mut Box<dyn ProverSteps<E>>, E),
    Verifier(&'a mut Box<dyn VerifierSteps<E>>, &'a [E], E),
}

/// One batch's proofs as this party runs them: its own statement's prover and its
/// verifiers (as `A` of the next party, `B` of the previous one).
struct Batch<E: Lift> {
    prover: Box<dyn ProverSteps<E>>,
    va: Option<Box<dyn VerifierSteps<E>>>,
    vb: Option<Box<dyn VerifierSteps<E>>>,
    /// Folding levels of the three statements: this party's, the next party's (verified as
    /// `A`) and the previous party's (as `B`). They differ where a record gives provers
    /// different numbers of terms (a [`super::record::Gate::Cross`] record can).
    levels: Levels,
    /// This level's polynomial of the prover, computed ahead of the message that carries it
    /// ([`Lockstep::prove_level`]).
    poly: Option<LevelPoly<E>>,
    /// This round's shares as verifier `A` (drawn, not sent) and challenges `(as A, as B)`.
    shares_a: Vec<E>,
    challenges: (E, E),
    /// What the verifiers open at the end: as `A` of the next party, as `B` of the previous.
    openings: Option<(Opening<E>, Opening<E>)>,
}

/// Folding levels of one batch's three statements.
#[derive(Clone, Copy)]
struct Levels {
    own: usize,
    a: usize,
    b: usize,
}

/// The batches of one kind in a group, as a state machine without IO. The steps, in order:
/// [`Lockstep::seeds`], [`Lockstep::start`], then per level [`Lockstep::level_message`],
/// [`Lockstep::challenges`] and [`Lockstep::fold`], then [`Lockstep::last_message`],
/// [`Lockstep::finish`], the challenge copies and the openings. Each step draws from the
/// shared streams in the same order at every party, so partners stay in step however many
/// kinds a driver runs side by side.
struct Lockstep<E: Lift> {
    /// The batches' records until [`Lockstep::start`] has built their statements; it drops
    /// them a chunk of batches at a time, so that a group's records and its statements are
    /// not all alive at once (they were the peak of a verification's memory).
    batches: Vec<Vec<Record>>,
    what: &'static str,
    /// The statement seeds drawn as `(B of the previous party, A of the next)`.
    seeds: Vec<([u8; 16], [u8; 16])>,
    group: Vec<Batch<E>>,
}

impl<E: Lift> Lockstep<E> {
    /// Draws the statement seeds: as `B` of the previous party this party sends its prover
    /// the seed; as `A` of the next party it draws the same one as that party's `B`.
    fn seeds(batches: Vec<Vec<Record>>, what: &'static str, keys: &mut ProofKeys) -> Self {
        let seeds = batches.iter().map(|_| (keys.chal_next.seed(), keys.chal_own.seed())).collect();
        Lockstep { batches, what, seeds, group: Vec::new() }
    }

    /// Words to the previous party (its statements' seeds, as `B`) and to the next (the
    /// same seeds as `A`, for its prover to compare), and how many come from each.
    fn seed_message(&self) -> (Vec<u64>, Vec<u64>, usize) {
        let as_b = self.seeds.iter().flat_map(|(b, _)| seed_words(b)).collect();
        let as_a = self.seeds.iter().flat_map(|(_, a)| seed_words(a)).collect();
        (as_b, as_a, 2 * self.seeds.len())
    }

    /// Builds the provers and verifiers, the prover's statements from the seeds its `B` sent
    /// (every statement of the group at once, over the cores where allowed: [`map_each`]; a
    /// group's statements are independent, so a party proves and verifies them on all its
    /// cores), a chunk of batches at a time: as many as keep every core busy (one where the
    /// proofs stay on this thread, inside `musket_ring::serial_kernels`), each chunk's records
    /// dropped once its statements are built. (Called inside [`both`], so on one of the pool's
    /// workers wherever proofs use the pool, a local run's parties included.)
    fn start(&mut self, seed_p_words: &[u64]) {
        let mut jobs: Vec<StatementJob> = Vec::with_capacity(3 * self.batches.len());
        for (k, ((seed_b, seed_a), seed_p)) in self.seeds.iter().zip(seed_p_words.chunks_exact(2)).enumerate()
        {
            let mut p = [0u8; 16];
            for (chunk, w) in p.chunks_exact_mut(8).zip(seed_p) {
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            jobs.extend([(k, Role::Prover, p), (k, Role::A, *seed_a), (k, Role::B, *seed_b)]);
        }
        let batches = std::mem::take(&mut self.batches);
        let count = batches.len();
        let per_chunk = if musket_ring::proof_parallel_allowed() {
            rayon::current_num_threads().div_ceil(3).max(1)
        } else {
            1
        };
        let mut built = Vec::with_capacity(3 * count);
        let mut jobs = jobs.into_iter();
        let mut batches = batches.into_iter();
        for first in (0..count).step_by(per_chunk) {
            let chunk: Vec<Vec<Record>> = batches.by_ref().take(per_chunk).collect();
            let chunk_jobs: Vec<StatementJob> = jobs.by_ref().take(3 * chunk.len()).collect();
            built.extend(map_each(chunk_jobs, |(k, role, seed)| {
                let records = &chunk[k - first];
                // A statement has one term per term its prover's records give it, the same at
                // the prover and at its two verifiers, which fold it in step.
                let len = records.iter().map(|r| r.terms_as(E::BINARY, role)).sum::<usize>();
                let weights = &mut Prg::from_seed(seed);
                match role {
                    Role::Prover => Built::Prover(E::prover(records, len, weights)),
                    _ => Built::Verifier(E::verifier(records, role, len, weights)),
                }
            }));
        }
        let mut built = built.into_iter();
        for _ in 0..count {
            let (Some(Built::Prover(prover)), Some(Built::Verifier(va)), Some(Built::Verifier(vb))) =
                (built.next(), built.next(), built.next())
            else {
                unreachable!("each batch's statements are built in order: its prover's, A's, B's");
            };
            let levels = Levels { own: prover.levels(), a: va.levels(), b: vb.levels() };
            self.group.push(Batch {
                prover,
                va: Some(va),
                vb: Some(vb),
                levels,
                poly: None,
                shares_a: Vec::new(),
                challenges: (E::zero(), E::zero()),
                openings: None,
            });
        }
    }

    /// Folding levels of the largest statement (the same at every party: each holds one
    /// role in every statement).
    fn levels(&self) -> usize {
        self.group.iter().map(|b| b.levels.own.max(b.levels.a).max(b.levels.b)).max().unwrap_or(0)
    }

    /// How many batches' statements of one role still fold at `level`.
    fn live_count(&self, level: usize, role: fn(&Levels) -> usize) -> usize {
        self.group.iter().filter(|b| level < role(&b.levels)).count()
    }

    /// Computes this level's polynomial of every batch's prover (see [`map_each`]).
    fn prove_level(&mut self, level: usize) {
        let live: Vec<&mut Batch<E>> = self.group.iter_mut().filter(|b| level < b.levels.own).collect();
        map_each(live, |b| b.poly = Some(b.prover.level()));
    }

    /// The prover's level polynomials ([`Lockstep::prove_level`]), less the shares verifier
    /// `A` draws, to the next party (verifier `B`); and how many words come from the previous
    /// party.
    fn level_message(&mut self, level: usize, keys: &mut ProofKeys) -> (Vec<u64>, usize) {
        let mut words = Vec::new();
        let mut from_prev = 0;
        for b in self.group.iter_mut() {
            if level < b.levels.own {
                let h = b.poly.take().expect("the level's polynomial, computed first");
                let mine_a: Vec<E> = (0..h.len()).map(|_| E::random(&mut keys.share_own)).collect();
                let corr: Vec<E> = h.iter().zip(&mine_a).map(|(x, s)| x.sub(*s)).collect();
                words.extend(elems_to_words(&corr));
            }
            if level < b.levels.a {
                let n = coefficients(b.va.as_ref().expect("verifier before its last step").arity(level));
                b.shares_a = (0..n).map(|_| E::random(&mut keys.share_next)).collect();
            }
            if level < b.levels.b {
                from_prev += coefficients(b.vb.as_ref().expect("verifier before its last step").arity(level));
            }
        }
        (words, from_prev * E::WORDS)
    }

    /// The challenges as `B`, to the previous party (the prover), and the same challenges as
    /// `A`, to the next party (its prover compares the two copies before folding, so that a
    /// verifier that lies about a challenge is caught before anything is opened); and how
    /// many words come from each peer for our proofs (the same count: each sends a copy).
    fn challenges(&mut self, level: usize, keys: &mut ProofKeys) -> (Vec<u64>, Vec<u64>, usize) {
        let (mut as_b, mut as_a) = (Vec::new(), Vec::new());
        for b in self.group.iter_mut() {
            if level < b.levels.b {
                let tb = E::challenge(&mut keys.chal_next);
                tb.write(&mut as_b);
                b.challenges.1 = tb;
            }
            if level < b.levels.a {
                let ta = E::challenge(&mut keys.chal_own);
                ta.write(&mut as_a);
                b.challenges.0 = ta;
            }
        }
        (as_b, as_a, self.live_count(level, |l| l.own) * E::WORDS)
    }

    /// Folds at the challenges and feeds both verifiers their shares: `sb` the previous
    /// party's polynomials (as `B`), `tp` the challenges for our proofs. Every statement folds
    /// on its own (see [`map_each`]): the folds, and after the packed levels the writing out,
    /// are most of a verifier's work.
    fn fold(&mut self, level: usize, sb: &[u64], tp: &[u64]) {
        let sb: Vec<E> = read_elems(sb);
        let (mut kp, mut at_b) = (0, 0);
        let mut steps = Vec::with_capacity(3 * self.group.len());
        for b in self.group.iter_mut() {
            let Batch { prover, va, vb, levels, shares_a, challenges: (ta, tb), .. } = b;
            if level < levels.own {
                steps.push(FoldStep::Prover(prover, E::read(&tp[kp * E::WORDS..(kp + 1) * E::WORDS])));
                kp += 1;
            }
            if level < levels.a {
                steps.push(FoldStep::Verifier(
                    va.as_mut().expect("verifier before its last step"),
                    shares_a,
                    *ta,
                ));
            }
            if level < levels.b {
                let vb = vb.as_mut().expect("verifier before its last step");
                let n = coefficients(vb.arity(level));
                steps.push(FoldStep::Verifier(vb, &sb[at_b..at_b + n], *tb));
                at_b += n;
            }
        }
        map_each(steps, |step| match step {
            FoldStep::Prover(p, t) => p.fold(t),
            FoldStep::Verifier(v, h, t) => v.level(h, t),
        });
    }

    /// The masked last messages to the next party; and how many words come from the previous.
    fn last_message(&mut self, keys: &mut ProofKeys, private: &mut Prg) -> (Vec<u64>, usize) {
        let mut words = Vec::new();
        for b in &mut self.group {
            let (p, q) = (E::random(private), E::random(private));
            let last = b.prover.last(p, q);
            let mine_a: Vec<E> = (0..5).map(|_| E::random(&mut keys.share_own)).collect();
            let corr: Vec<E> = last.iter().zip(&mine_a).map(|(x, s)| x.sub(*s)).collect();
            words.extend(elems_to_words(&corr));
            b.shares_a = (0..5).map(|_| E::random(&mut keys.share_next)).collect();
        }
        (words, self.group.len() * 5 * E::WORDS)
    }

    /// The verifiers' last steps: what each will open.
    fn finish(&mut self, sb: &[u64], keys: &mut ProofKeys) {
        let sb: Vec<E> = read_elems(sb);
        for (k, b) in self.group.iter_mut().enumerate() {
            let (ta, tb) = (E::challenge(&mut keys.chal_own), E::challenge(&mut keys.chal_next));
            let sa: [E; 5] = std::array::from_fn(|j| b.shares_a[j]);
            let sbk: [E; 5] = std::array::from_fn(|j| sb[5 * k + j]);
            let oa = b.va.take().expect("one last step").last(&sa, ta);
            let ob = b.vb.take().expect("one last step").last(&sbk, tb);
            b.openings = Some((oa, ob));
        }
    }

    /// Openings as `A` (to the previous party) and as `B` (to the next), and how many words
    /// come back from each: `B`'s of the next party's statements from the previous party,
    /// `A`'s of the previous party's from the next.
    fn opening_messages(&self) -> (Vec<u64>, Vec<u64>, (usize, usize)) {
        let openings = || self.group.iter().map(|b| b.openings.as_ref().expect("finished"));
        let a = openings().flat_map(|o| o.0.to_words()).collect();
        let b = openings().flat_map(|o| o.1.to_words()).collect();
        let from_prev = self.group.iter().map(|b| opening_words::<E>(b.levels.a)).sum();
        let from_next = self.group.iter().map(|b| opening_words::<E>(b.levels.b)).sum();
        (a, b, (from_prev, from_next))
    }

    /// Checks the other verifiers' openings: `b_of_next` from the previous party (`B` of the
    /// next party's proofs, which we verify as `A`), `a_of_prev` from the next party.
    fn check(&self, b_of_next: &[u64], a_of_prev: &[u64], prev: usize, next: usize) -> Result<()> {
        let malformed =
            |peer| MpcError::Net(NetError::Malformed { peer, reason: "bad proof opening".into() });
        let (mut at_b, mut at_a) = (0, 0);
        for b in &self.group {
            let (oa, ob) = b.openings.as_ref().expect("finished");
            let (zeros_b, size_b) = (b.levels.a + 1, opening_words::<E>(b.levels.a));
            let (zeros_a, size_a) = (b.levels.b + 1, opening_words::<E>(b.levels.b));
            let theirs_b = Opening::<E>::from_words(&b_of_next[at_b..at_b + size_b], zeros_b)
                .ok_or_else(|| malformed(prev))?;
            let theirs_a = Opening::<E>::from_words(&a_of_prev[at_a..at_a + size_a], zeros_a)
                .ok_or_else(|| malformed(next))?;
            at_b += size_b;
            at_a += size_a;
            if !accepts(oa, &theirs_b) {
                return Err(MpcError::CheatingDetected {
                    phase: format!("{} check of party {next}'s messages", self.what),
                    party: None,
                });
            }
            if !accepts(&theirs_a, ob) {
                return Err(MpcError::CheatingDetected {
                    phase: format!("{} check of party {prev}'s messages", self.what),
                    party: None,
                });
            }
        }
        Ok(())
    }
}

/// Words of a verifier's opening of a statement of `levels` levels: a zero-share per level
/// and one more, and three values.
fn opening_words<E: Lift>(levels: usize) -> usize {
    (levels + 1 + 3) * E::WORDS
}

/// The prover's check that verifier `B` sent the seeds or challenges that verifier `A`
/// drew: a verifier that sent others could steer the prover's folds and learn about its
/// witness from the openings.
fn same_from_both_verifiers(from_b: &[u64], from_a: &[u64]) -> Result<()> {
    if from_b == from_a {
        return Ok(());
    }
    Err(MpcError::CheatingDetected {
        phase: "proof: the challenges this party received differ between its verifiers".into(),
        party: None,
    })
}

/// Splits `words` into consecutive parts of the given lengths.
fn split<'w>(words: &'w [u64], lens: &[usize]) -> Vec<&'w [u64]> {
    let mut at = 0;
    lens.iter()
        .map(|&n| {
            let part = &words[at..at + n];
            at += n;
            part
        })
        .collect()
}

impl Verifier {
    /// Proves and verifies a group side by side: `ring` (Galois-ring batches: products and
    /// cross gates) and `binary` (AND gates) in the same rounds, every round carrying each
    /// live batch's message (a batch with fewer levels sits out the rounds past its last), so
    /// the group costs the rounds of its largest batch, `2 N + 3` for `N` levels, whatever it
    /// holds.
    ///
    /// The group's records are taken by value, a `Vec` per batch: they are dropped as soon as
    /// their statements are built.
    pub(crate) fn prove_group(&mut self, ring: Vec<Vec<Record>>, binary: Vec<Vec<Record>>) -> Result<()> {
        if ring.is_empty() && binary.is_empty() {
            return Ok(());
        }
        let (prev, next) = ((self.id + 2) % 3, (self.id + 1) % 3);
        let mut r = Lockstep::<Gr64>::seeds(ring, "multiplication", &mut self.keys);
        let mut b = Lockstep::<Gf64>::seeds(binary, "AND-gate", &mut self.keys);
        // The seeds go to the prover from verifier B and, as a copy, from verifier A, and so
        // do the challenges of every level: the prover stops at the first difference, before
        // anything about its witness is opened.
        let ((r_seeds, r_copies, r_len), (b_seeds, b_copies, b_len)) = (r.seed_message(), b.seed_message());
        self.net.send_u64s(prev, &[r_seeds, b_seeds].concat())?;
        self.net.send_u64s(next, &[r_copies, b_copies].concat())?;
        let got = self.net.recv_u64s(next, r_len + b_len)?;
        let copies = self.net.recv_u64s(prev, r_len + b_len)?;
        same_from_both_verifiers(&got, &copies)?;
        let got = split(&got, &[r_len, b_len]);
        both(|| r.start(got[0]), || b.start(got[1]));
        for level in 0..r.levels().max(b.levels()) {
            both(|| r.prove_level(level), || b.prove_level(level));
            let ((r_msg, r_len), (b_msg, b_len)) =
                (r.level_message(level, &mut self.keys), b.level_message(level, &mut self.keys));
            let mut words = [r_msg, b_msg].concat();
            self.tamper(Target::Proof, &mut words);
            self.net.send_u64s(next, &words)?;
            let sb = self.net.recv_u64s(prev, r_len + b_len)?;
            let ((r_tb, r_ta, r_tlen), (b_tb, b_ta, b_tlen)) =
                (r.challenges(level, &mut self.keys), b.challenges(level, &mut self.keys));
            let mut as_b = [r_tb, b_tb].concat();
            self.tamper(Target::Challenge, &mut as_b);
            self.net.send_u64s(prev, &as_b)?;
            self.net.send_u64s(next, &[r_ta, b_ta].concat())?;
            let tp = self.net.recv_u64s(next, r_tlen + b_tlen)?;
            let copies = self.net.recv_u64s(prev, r_tlen + b_tlen)?;
            same_from_both_verifiers(&tp, &copies)?;
            let (sb, tp) = (split(&sb, &[r_len, b_len]), split(&tp, &[r_tlen, b_tlen]));
            both(|| r.fold(level, sb[0], tp[0]), || b.fold(level, sb[1], tp[1]));
        }
        // The last messages to B and, in the same round, the go-ahead to A: every seed and
        // challenge matched.
        let private = &mut self.private;
        let ((r_last, r_len), (b_last, b_len)) =
            (r.last_message(&mut self.keys, private), b.last_message(&mut self.keys, private));
        self.net.send_u64s(next, &[r_last, b_last].concat())?;
        self.net.send_u64s(prev, &[1])?;
        let sb = self.net.recv_u64s(prev, r_len + b_len)?;
        let go = self.net.recv_u64s(next, 1)?;
        if go != [1] {
            return Err(MpcError::Net(NetError::Malformed {
                peer: next,
                reason: "expected a go-ahead".into(),
            }));
        }
        let sb = split(&sb, &[r_len, b_len]);
        r.finish(sb[0], &mut self.keys);
        b.finish(sb[1], &mut self.keys);
        let ((r_a, r_b, (r_prev, r_next)), (b_a, b_b, (b_prev, b_next))) =
            (r.opening_messages(), b.opening_messages());
        let mut oa_words = [r_a, b_a].concat();
        self.tamper(Target::ProofOpening, &mut oa_words);
        self.net.send_u64s(prev, &oa_words)?;
        self.net.send_u64s(next, &[r_b, b_b].concat())?;
        let b_of_next = self.net.recv_u64s(prev, r_prev + b_prev)?;
        let a_of_prev = self.net.recv_u64s(next, r_next + b_next)?;
        let (b_of_next, a_of_prev) =
            (split(&b_of_next, &[r_prev, b_prev]), split(&a_of_prev, &[r_next, b_next]));
        r.check(b_of_next[0], a_of_prev[0], prev, next)?;
        b.check(b_of_next[1], a_of_prev[1], prev, next)
    }
}
