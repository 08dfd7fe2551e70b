//! Distributed zero-knowledge proofs of inner products (Boyle, Gilboa, Ishai, Nof, CCS 2019
//! and Asiacrypt 2020), the check behind the malicious-secure 3PC back end.
//!
//! A *prover* knows two vectors `l, r` over an extension ring [`Ext`]; two *verifiers* hold
//! additive shares of `l`, `r` and of a claim `c`, and want to know whether `<l, r> = c`
//! without learning `l` or `r`. In 3PC every party is the prover of the messages it sent and
//! a verifier of its two neighbours' (see `musket-rep3`'s `malicious` module): the prover's
//! witness is made of share components that the two verifiers hold between them.
//!
//! The proof folds the vectors in half per level. With `l = (a0, a1)`, `r = (b0, b1)`, the
//! prover sends shares of the coefficients of the degree-2 polynomial
//! `h(X) = <a0 + X (a1 - a0), b0 + X (b1 - b0)>`; the verifiers will check `h(0) + h(1) = c`
//! and continue with the claim `h(t)` about the folded vectors at a random challenge `t`. At
//! length one, the prover masks the last pair with random `p`, `q`
//! (`f(X) = a + X (p - a)`, `g(X) = b + X (q - b)`) and sends shares of `p`, `q` and of
//! `h = f g`; the verifiers check `h(0) = c` and open `f(t), g(t), h(t)`, which are uniformly
//! random because `t` is a unit and `p`, `q` are. Every opened value is either zero (when the
//! prover is honest) or uniformly random, so the verifiers learn nothing.
//!
//! Soundness: a false claim survives a level only if `t` is a root of a nonzero polynomial of
//! degree at most 2, so with `L` levels a cheating prover passes with probability at most
//! `2 (L + 1) / 2^64` (Schwartz–Zippel over the exceptional set, [`crate::ext`]). The random
//! combination of many gates into one claim adds `1 / 2^64`, or `2 / 2^64` for the
//! matrix-product (Freivalds) combination. Batches are at most 2^30 terms, so a batch is
//! accepted wrongly with probability at most 2^-58.
//!
//! This module is arithmetic only; the message exchange lives with the back end.

use crate::ext::Ext;

/// The coefficients `(h0, h1, h2)` of one level's polynomial.
pub type LevelPoly<E> = [E; 3];
/// The last message: `(p, q, h0, h1, h2)`.
pub type FinalPoly<E> = [E; 5];

/// Pads both vectors with zeros to `len` (a power of two at least their length, and at
/// least 1); returns how many leading entries may be nonzero.
fn pad<E: Ext>(l: &mut Vec<E>, r: &mut Vec<E>, len: usize) -> usize {
    let live = l.len().max(r.len());
    let n = len.max(live).max(1).next_power_of_two();
    l.resize(n, E::zero());
    r.resize(n, E::zero());
    live
}

/// The coefficients of `h(X) = <a0 + X (a1 - a0), b0 + X (b1 - b0)>`, where only the first
/// `live` entries of `l` and `r` can be nonzero (the rest is padding, skipped).
/// (`h1 = <a1, b1> - h0 - h2`, since `a0 + da = a1`: three inner products, not four.)
fn level_poly<E: Ext>(l: &[E], r: &[E], live: usize) -> LevelPoly<E> {
    let half = l.len() / 2;
    let (live0, live1) = (live.min(half), live.saturating_sub(half));
    let (a0, a1) = (&l[..live0], &l[half..half + live1]);
    let (b0, b1) = (&r[..live0], &r[half..half + live1]);
    let [h0, h11, h2] = E::level_sums(a0, a1, b0, b1);
    [h0, h11.sub(h0).sub(h2), h2]
}

/// Replaces `v = (v0, v1)` by `v0 + t (v1 - v0)`; returns the new live length.
fn fold<E: Ext>(v: &mut Vec<E>, t: E, live: usize) -> usize {
    let half = v.len() / 2;
    let live0 = live.min(half);
    let (lo, hi) = v.split_at_mut(half);
    E::fold_into(&mut lo[..live0], &hi[..live0], t);
    v.truncate(half);
    live0
}

/// `h0 + t h1 + t^2 h2`.
fn eval2<E: Ext>(h: &[E], t: E) -> E {
    h[0].add(t.mul(h[1].add(t.mul(h[2]))))
}

/// The prover's side: the whole vectors.
#[derive(Debug)]
pub struct Prover<E: Ext> {
    l: Vec<E>,
    r: Vec<E>,
    live: usize,
}

impl<E: Ext> Prover<E> {
    /// Starts a proof that `<l, r>` equals the claim the verifiers hold, with the vectors
    /// zero-padded to `len` (rounded up to a power of two): the three proofs of a batch must
    /// have the same number of levels even when their statements differ in length.
    pub fn new(mut l: Vec<E>, mut r: Vec<E>, len: usize) -> Self {
        let live = pad(&mut l, &mut r, len);
        Self { l, r, live }
    }
    /// Number of folding levels before the last message (the same for the verifiers).
    pub fn levels(&self) -> usize {
        self.l.len().trailing_zeros() as usize
    }
    /// This level's polynomial (call while [`Prover::levels`] has not been reached).
    pub fn level(&self) -> LevelPoly<E> {
        level_poly(&self.l, &self.r, self.live)
    }
    /// Folds at the verifiers' challenge.
    pub fn fold(&mut self, t: E) {
        fold(&mut self.l, t, self.live);
        self.live = fold(&mut self.r, t, self.live);
    }
    /// The masked last message, with the prover's random `p` and `q`.
    pub fn last(&self, p: E, q: E) -> FinalPoly<E> {
        let (a, b) = (self.l[0], self.r[0]);
        let (da, db) = (p.sub(a), q.sub(b));
        [p, q, a.mul(b), a.mul(db).add(da.mul(b)), da.mul(db)]
    }
}

/// One verifier's side: shares of the vectors and of the claim.
#[derive(Debug)]
pub struct Verifier<E: Ext> {
    l: Vec<E>,
    r: Vec<E>,
    live: usize,
    claim: E,
    /// Shares of `h(0) + h(1) - claim` per level, then of `h(0) - claim` for the last.
    zeros: Vec<E>,
}

/// What a verifier opens to the other at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening<E: Ext> {
    /// Shares of values that must be zero.
    pub zeros: Vec<E>,
    /// Share of `f(t)`.
    pub f: E,
    /// Share of `g(t)`.
    pub g: E,
    /// Share of `h(t)`.
    pub h: E,
}

impl<E: Ext> Opening<E> {
    /// Wire form.
    pub fn to_words(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity((self.zeros.len() + 3) * E::WORDS);
        for z in &self.zeros {
            z.write(&mut out);
        }
        for v in [self.f, self.g, self.h] {
            v.write(&mut out);
        }
        out
    }
    /// Reads an opening with `zeros` zero-shares.
    pub fn from_words(words: &[u64], zeros: usize) -> Option<Self> {
        if words.len() != (zeros + 3) * E::WORDS {
            return None;
        }
        let mut items = words.chunks_exact(E::WORDS).map(E::read);
        let z = items.by_ref().take(zeros).collect();
        Some(Self { zeros: z, f: items.next()?, g: items.next()?, h: items.next()? })
    }
}

impl<E: Ext> Verifier<E> {
    /// A verifier holding shares `l`, `r` of the vectors and `claim` of the inner product,
    /// padded to `len` as the prover's.
    pub fn new(mut l: Vec<E>, mut r: Vec<E>, claim: E, len: usize) -> Self {
        let live = pad(&mut l, &mut r, len);
        Self { l, r, live, claim, zeros: Vec::new() }
    }
    /// Number of folding levels.
    pub fn levels(&self) -> usize {
        self.l.len().trailing_zeros() as usize
    }
    /// A verifier that took part in the first levels of a proof in another form (see
    /// [`crate::dzkp_packed`]) and continues with the folded vectors `l`, `r` (of a power-of-two
    /// length), its claim share so far and its zero-shares so far.
    pub fn resume(l: Vec<E>, r: Vec<E>, claims: ClaimShares<E>) -> Self {
        let live = l.len();
        Self { l, r, live, claim: claims.claim, zeros: claims.zeros }
    }
    /// Takes this verifier's share of a level's polynomial and the challenge.
    pub fn level(&mut self, h: &LevelPoly<E>, t: E) {
        level_claims(&mut self.claim, &mut self.zeros, h, t);
        fold(&mut self.l, t, self.live);
        self.live = fold(&mut self.r, t, self.live);
    }
    /// Takes this verifier's share of the last message and the last challenge `t` (a unit);
    /// returns what to open.
    pub fn last(mut self, m: &FinalPoly<E>, t: E) -> Opening<E> {
        let [p, q, h0, h1, h2] = *m;
        self.zeros.push(h0.sub(self.claim));
        let (a, b) = (self.l[0], self.r[0]);
        Opening {
            zeros: self.zeros,
            f: a.add(t.mul(p.sub(a))),
            g: b.add(t.mul(q.sub(b))),
            h: eval2(&[h0, h1, h2], t),
        }
    }
}

/// A verifier's running share of the claim and its shares of the values that must be zero.
#[derive(Debug, Clone)]
pub struct ClaimShares<E: Ext> {
    /// Share of the claim about the current (folded) vectors.
    pub claim: E,
    /// Shares of `h(0) + h(1) - claim`, one per level so far.
    pub zeros: Vec<E>,
}

impl<E: Ext> ClaimShares<E> {
    /// Starts from a share of the claim.
    pub fn new(claim: E) -> Self {
        Self { claim, zeros: Vec::new() }
    }
    /// Takes a level's polynomial share and challenge (what [`Verifier::level`] does besides
    /// folding).
    pub fn level(&mut self, h: &LevelPoly<E>, t: E) {
        level_claims(&mut self.claim, &mut self.zeros, h, t);
    }
}

fn level_claims<E: Ext>(claim: &mut E, zeros: &mut Vec<E>, h: &LevelPoly<E>, t: E) {
    zeros.push(h[0].add(h[0]).add(h[1]).add(h[2]).sub(*claim));
    *claim = eval2(h, t);
}

/// The prover's steps, whatever form its vectors take (the plain [`Prover`] or the packed
/// ones of [`crate::dzkp_packed`]): the message exchange drives either.
pub trait ProverSteps<E: Ext>: Send {
    /// Number of folding levels before the last message.
    fn levels(&self) -> usize;
    /// This level's polynomial.
    fn level(&mut self) -> LevelPoly<E>;
    /// Folds at the verifiers' challenge.
    fn fold(&mut self, t: E);
    /// The masked last message.
    fn last(&mut self, p: E, q: E) -> FinalPoly<E>;
}

/// A verifier's steps, whatever form its vectors take.
pub trait VerifierSteps<E: Ext>: Send {
    /// Number of folding levels before the last message (the prover's, read before the first
    /// level).
    fn levels(&self) -> usize;
    /// Takes this verifier's share of a level's polynomial and the challenge.
    fn level(&mut self, h: &LevelPoly<E>, t: E);
    /// Takes the last message's share and challenge; returns what to open.
    fn last(self: Box<Self>, m: &FinalPoly<E>, t: E) -> Opening<E>;
}

impl<E: Ext> ProverSteps<E> for Prover<E> {
    fn levels(&self) -> usize {
        Prover::levels(self)
    }
    fn level(&mut self) -> LevelPoly<E> {
        Prover::level(self)
    }
    fn fold(&mut self, t: E) {
        Prover::fold(self, t)
    }
    fn last(&mut self, p: E, q: E) -> FinalPoly<E> {
        Prover::last(self, p, q)
    }
}

impl<E: Ext> VerifierSteps<E> for Verifier<E> {
    fn levels(&self) -> usize {
        Verifier::levels(self)
    }
    fn level(&mut self, h: &LevelPoly<E>, t: E) {
        Verifier::level(self, h, t)
    }
    fn last(self: Box<Self>, m: &FinalPoly<E>, t: E) -> Opening<E> {
        Verifier::last(*self, m, t)
    }
}

/// Whether two verifiers' openings accept: every zero-share pair sums to zero and
/// `f(t) g(t) = h(t)`.
pub fn accepts<E: Ext>(a: &Opening<E>, b: &Opening<E>) -> bool {
    a.zeros.len() == b.zeros.len()
        && a.zeros.iter().zip(&b.zeros).all(|(x, y)| x.add(*y) == E::zero())
        && a.f.add(b.f).mul(a.g.add(b.g)) == a.h.add(b.h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::{Gf64, Gr64};
    use crate::Prg;

    /// `<a, b>`.
    fn dot<E: Ext>(a: &[E], b: &[E]) -> E {
        a.iter().zip(b).fold(E::zero(), |acc, (x, y)| acc.add(x.mul(*y)))
    }

    /// Runs one proof with the prover's vectors split at random between two verifiers;
    /// `tamper` may change the prover's messages. Returns whether the verifiers accept.
    fn run<E: Ext>(l: &[E], r: &[E], claim: E, seed: u8, tamper: impl Fn(usize, &mut [E])) -> bool {
        let mut prg = Prg::from_seed([seed; 16]);
        let split = |v: &[E], prg: &mut Prg| -> (Vec<E>, Vec<E>) {
            v.iter()
                .map(|x| {
                    let s = E::random(prg);
                    (s, x.sub(s))
                })
                .unzip()
        };
        let (la, lb) = split(l, &mut prg);
        let (ra, rb) = split(r, &mut prg);
        let ca = E::random(&mut prg);
        let len = 2 * l.len();
        let mut prover = Prover::new(l.to_vec(), r.to_vec(), len);
        let mut va = Verifier::new(la, ra, ca, len);
        let mut vb = Verifier::new(lb, rb, claim.sub(ca), len);
        let levels = prover.levels();
        assert_eq!(levels, va.levels());
        for lvl in 0..levels {
            let mut h = prover.level();
            tamper(lvl, &mut h);
            let sa: Vec<E> = (0..3).map(|_| E::random(&mut prg)).collect();
            let sb: Vec<E> = h.iter().zip(&sa).map(|(x, s)| x.sub(*s)).collect();
            let t = E::challenge(&mut prg);
            va.level(&[sa[0], sa[1], sa[2]], t);
            vb.level(&[sb[0], sb[1], sb[2]], t);
            prover.fold(t);
        }
        let mut m = prover.last(E::random(&mut prg), E::random(&mut prg));
        tamper(levels, &mut m);
        let sa: Vec<E> = (0..5).map(|_| E::random(&mut prg)).collect();
        let sb: Vec<E> = m.iter().zip(&sa).map(|(x, s)| x.sub(*s)).collect();
        let t = E::challenge(&mut prg);
        let oa = va.last(&[sa[0], sa[1], sa[2], sa[3], sa[4]], t);
        let ob = vb.last(&[sb[0], sb[1], sb[2], sb[3], sb[4]], t);
        let back = Opening::<E>::from_words(&oa.to_words(), oa.zeros.len()).unwrap();
        assert_eq!(back, oa);
        accepts(&oa, &ob)
    }

    fn vectors<E: Ext>(n: usize, seed: u8) -> (Vec<E>, Vec<E>, E) {
        let mut prg = Prg::from_seed([seed; 16]);
        let l: Vec<E> = (0..n).map(|_| E::random(&mut prg)).collect();
        let r: Vec<E> = (0..n).map(|_| E::random(&mut prg)).collect();
        let c = dot(&l, &r);
        (l, r, c)
    }

    fn honest_and_cheating<E: Ext>(error: E) {
        for (n, seed) in [(1, 1), (2, 2), (5, 3), (16, 4), (33, 5)] {
            let (l, r, c) = vectors::<E>(n, seed);
            assert!(run(&l, &r, c, seed, |_, _| {}), "honest proof of length {n} rejected");
            assert!(!run(&l, &r, c.add(error), seed, |_, _| {}), "false claim accepted (n = {n})");
            let levels = Prover::new(l.clone(), r.clone(), 2 * l.len()).levels();
            for lvl in 0..=levels {
                for k in 0..3 {
                    let cheat = |at: usize, m: &mut [E]| {
                        if at == lvl {
                            m[k + if at == levels { 2 } else { 0 }] =
                                m[k + if at == levels { 2 } else { 0 }].add(error);
                        }
                    };
                    // A changed polynomial on a true claim is caught too.
                    assert!(!run(&l, &r, c, seed, cheat), "tampered level {lvl} term {k} accepted (n = {n})");
                }
            }
        }
    }

    #[test]
    fn galois_ring_proofs_are_complete_and_sound() {
        // The error an attacker would pick over Z_2^64: only the top bit.
        honest_and_cheating(Gr64::from_base(1 << 63));
        honest_and_cheating(Gr64::from_base(1));
    }

    #[test]
    fn binary_field_proofs_are_complete_and_sound() {
        honest_and_cheating(Gf64(1));
    }
}
