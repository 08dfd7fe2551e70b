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
//! Levels may also split the vectors in four (since the eleventh session, every plain level
//! while four or more elements are left; [`arity_schedule`]): with quarters `l_i`, `r_i`
//! the prover sends the seven coefficients of `h(X) = <F(X), G(X)>`, `F = sum_i X^i l_i`,
//! `G = sum_i X^(3-i) r_i`, whose `X^3` coefficient is `sum_i <l_i, r_i>`; the verifiers
//! check it against the claim and continue with `h(t)` about `F(t)`, `G(t)`. One round trip
//! does two halvings' work (nine inner products of a quarter's length by Karatsuba, the
//! halvings' three plus three halved; the folds by Horner are the same products by `t`), so a
//! proof of `2^L` terms takes about half the round trips.
//!
//! Soundness: a false claim survives a level only if `t` is a root of a nonzero polynomial of
//! degree at most 2 (halving) or 6 (quartering), so a cheating prover passes with probability
//! at most `(2 H + 6 Q + 2) / 2^64` for `H` halving and `Q` quartering levels, at most
//! `(3 L + 2) / 2^64` for `2^L` terms (Schwartz–Zippel over the exceptional set,
//! [`crate::ext`]). The random combination of many gates into one claim adds `1 / 2^64`, or
//! `2 / 2^64` for the matrix-product (Freivalds) combination, or `(P + 1) / 2^64` for AND
//! words and ring blocks whose `P <= 6` packed levels are weighted by `eq`
//! ([`crate::dzkp_packed`]; ring blocks since the twentieth session, `1 / 2^64` more for the
//! claims that have no terms in a statement, weighted apart). Batches are at most 2^30 terms,
//! so a batch is accepted wrongly with probability at most `100 / 2^64 < 2^-57`.
//!
//! This module is arithmetic only; the message exchange lives with the back end.

use crate::ext::Ext;

/// The coefficients of one level's polynomial, lowest first: three for a halving level,
/// seven for a quartering one (see [`arity_schedule`]).
pub type LevelPoly<E> = Vec<E>;
/// The last message: `(p, q, h0, h1, h2)`.
pub type FinalPoly<E> = [E; 5];

/// Coefficients of a level's polynomial when it splits the vectors into `arity` parts:
/// `2 arity - 1`.
pub fn coefficients(arity: usize) -> usize {
    2 * arity - 1
}

/// The parts each level splits the vectors into, for vectors of length `len` (a power of
/// two) whose first `halving` levels halve (the packed levels, [`crate::dzkp_packed`]): then
/// quarters while at least four elements are left, and a last halving when the length is an
/// odd power of two. Quartering takes one round trip where two halvings take two, for the
/// same inner products (see `level_poly4`).
pub fn arity_schedule(len: usize, halving: usize) -> Vec<usize> {
    let mut vars = len.trailing_zeros() as usize;
    debug_assert!(len.is_power_of_two() && halving <= vars);
    let mut out = vec![2; halving];
    vars -= halving;
    out.extend(std::iter::repeat_n(4, vars / 2));
    if vars % 2 == 1 {
        out.push(2);
    }
    out
}

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
    vec![h0, h11.sub(h0).sub(h2), h2]
}

/// Elements per chunk of the sums a quartering level forms (four operands of this many
/// elements: 256 KiB for the Galois ring, in L2 until the products read them).
const SUM_CHUNK: usize = 128;

/// The live lengths of the four quarters of a vector of length `4 q` with `live` leading
/// entries that may be nonzero.
fn quarter_lives(q: usize, live: usize) -> [usize; 4] {
    std::array::from_fn(|i| live.saturating_sub(i * q).min(q))
}

/// The coefficients of `(a + X b)(c + X d)` with inner products for products, from
/// [`Ext::level_sums`]`(a, b, c, d) = [<a, c>, <b, d>, <b - a, d - c>]`: Karatsuba's
/// `<a, d> + <b, c> = <a, c> + <b, d> - <b - a, d - c>`.
fn linear_product<E: Ext>([x, y, z]: [E; 3]) -> [E; 3] {
    [x, x.add(y).sub(z), y]
}

/// A quartering level: with quarters `l = (l0, l1, l2, l3)`, `r = (r0, r1, r2, r3)`, the
/// seven coefficients of `h(X) = <F(X), G(X)>` for `F = l0 + X l1 + X^2 l2 + X^3 l3` and
/// `G = r3 + X r2 + X^2 r1 + X^3 r0`, whose `X^3` coefficient is `sum_i <l_i, r_i>` (the
/// claim). Karatsuba twice over (`F = F_lo + X^2 F_hi`, each half linear): nine inner
/// products of a quarter's length, the two halving levels' count. Entries past `live` are
/// zero, so each product runs over the longest of its operands' live parts only.
fn level_poly4<E: Ext>(l: &[E], r: &[E], live: usize) -> LevelPoly<E> {
    let q = l.len() / 4;
    let [n0, _, n2, _] = quarter_lives(q, live);
    fn part<'a, E>(v: &'a [E], q: usize, i: usize, span: &std::ops::Range<usize>) -> &'a [E] {
        &v[i * q + span.start..i * q + span.end]
    }
    let add3 = |a: [E; 3], b: [E; 3]| -> [E; 3] { std::array::from_fn(|k| a[k].add(b[k])) };
    // Every inner product is a sum over the quarters' index, so ranges of it go to the cores
    // (see `crate::par`) and their sums add up: [lo, hi, mid] before the Karatsuba steps.
    let sums = crate::par::map_ranges(n0, min_elements::<E>(), |span| {
        // F_lo G_lo = (l0 + X l1)(r3 + X r2) and F_hi G_hi = (l2 + X l3)(r1 + X r0): past
        // the third quarter's live part l1 and l3 (and then r2, r3) are zero, so both
        // products of each pair are too.
        let short = span.start.min(n2)..span.end.min(n2);
        let lo = E::level_sums(
            part(l, q, 0, &short),
            part(l, q, 1, &short),
            part(r, q, 3, &short),
            part(r, q, 2, &short),
        );
        let hi = E::level_sums(
            part(l, q, 2, &short),
            part(l, q, 3, &short),
            part(r, q, 1, &short),
            part(r, q, 0, &short),
        );
        // (F_lo + F_hi)(G_lo + G_hi), its operands formed a chunk at a time.
        let mut mid = [E::zero(); 3];
        let mut sums = vec![E::zero(); 4 * SUM_CHUNK.min(span.len().max(1))];
        for start in span.clone().step_by(SUM_CHUNK) {
            let len = SUM_CHUNK.min(span.end - start);
            let (a, rest) = sums.split_at_mut(len);
            let (b, rest) = rest.split_at_mut(len);
            let (c, rest) = rest.split_at_mut(len);
            let d = &mut rest[..len];
            let chunk = start..start + len;
            E::add_slices(a, part(l, q, 0, &chunk), part(l, q, 2, &chunk));
            E::add_slices(b, part(l, q, 1, &chunk), part(l, q, 3, &chunk));
            E::add_slices(c, part(r, q, 3, &chunk), part(r, q, 1, &chunk));
            E::add_slices(d, part(r, q, 2, &chunk), part(r, q, 0, &chunk));
            mid = add3(mid, E::level_sums(a, b, c, d));
        }
        [lo, hi, mid]
    });
    let zero = [[E::zero(); 3]; 3];
    let [lo, hi, mid] = sums.into_iter().fold(zero, |acc, s| std::array::from_fn(|k| add3(acc[k], s[k])));
    let (lo, hi, mid) = (linear_product(lo), linear_product(hi), linear_product(mid));
    // F G = F_lo G_lo + X^2 (mid - F_lo G_lo - F_hi G_hi) + X^4 F_hi G_hi.
    let cross: Vec<E> = (0..3).map(|k| mid[k].sub(lo[k]).sub(hi[k])).collect();
    vec![lo[0], lo[1], lo[2].add(cross[0]), cross[1], hi[0].add(cross[2]), hi[1], hi[2]]
}

/// Elements a core takes at least in a level's sums or a fold (32 KiB of every operand),
/// so that short vectors stay on one core.
fn min_elements<E: Ext>() -> usize {
    ((1 << 15) / (8 * E::WORDS)).max(1)
}

/// `dst += t src`, in ranges over the cores (see `crate::par`).
fn add_times<E: Ext>(dst: &mut [E], src: &[E], t: E) {
    crate::par::zip_chunks(dst, src, min_elements::<E>(), |d, s| E::add_times_into(d, s, t));
}

/// Replaces `v = (v0, v1)` by `v0 + t (v1 - v0)`; returns the new live length.
fn fold<E: Ext>(v: &mut Vec<E>, t: E, live: usize) -> usize {
    let half = v.len() / 2;
    let live0 = live.min(half);
    let (lo, hi) = v.split_at_mut(half);
    crate::par::zip_chunks(&mut lo[..live0], &hi[..live0], min_elements::<E>(), |d, s| E::fold_into(d, s, t));
    v.truncate(half);
    live0
}

/// Replaces `l` by `F(t) = l0 + t (l1 + t (l2 + t l3))` and `r` by
/// `G(t) = r3 + t (r2 + t (r1 + t r0))` (Horner, in place: products by the challenge only);
/// returns the new live length.
fn fold4<E: Ext>(l: &mut Vec<E>, r: &mut Vec<E>, t: E, live: usize) -> usize {
    let q = l.len() / 4;
    let lives = quarter_lives(q, live);
    for i in (0..3).rev() {
        // l_i += t l_(i+1), over l_(i+1)'s live part (adding t l_(i+2) kept it within it).
        let (head, tail) = l.split_at_mut((i + 1) * q);
        let n = lives[i + 1];
        add_times(&mut head[i * q..i * q + n], &tail[..n], t);
    }
    // r_(i+1) += t r_i: r0 is the longest part, so every step runs over its live part.
    for i in 0..3 {
        let (head, tail) = r.split_at_mut((i + 1) * q);
        add_times(&mut tail[..lives[0]], &head[i * q..i * q + lives[0]], t);
    }
    r.copy_within(3 * q..3 * q + lives[0], 0);
    l.truncate(q);
    r.truncate(q);
    lives[0]
}

/// `h0 + t h1 + t^2 h2 + ...`.
pub(crate) fn eval<E: Ext>(h: &[E], t: E) -> E {
    h.iter().rev().fold(E::zero(), |acc, c| c.add(t.mul(acc)))
}

/// The prover's side: the whole vectors.
#[derive(Debug)]
pub struct Prover<E: Ext> {
    l: Vec<E>,
    r: Vec<E>,
    live: usize,
    arities: Vec<usize>,
    level: usize,
}

/// One level of the plain proof at the given arity: the polynomial.
fn level_at<E: Ext>(arity: usize, l: &[E], r: &[E], live: usize) -> LevelPoly<E> {
    if arity == 4 {
        level_poly4(l, r, live)
    } else {
        level_poly(l, r, live)
    }
}

/// One level of the plain proof at the given arity: the fold of both vectors at `t`;
/// returns the new live length.
fn fold_at<E: Ext>(arity: usize, l: &mut Vec<E>, r: &mut Vec<E>, t: E, live: usize) -> usize {
    if arity == 4 {
        fold4(l, r, t, live)
    } else {
        fold(l, t, live);
        fold(r, t, live)
    }
}

impl<E: Ext> Prover<E> {
    /// Starts a proof that `<l, r>` equals the claim the verifiers hold, with the vectors
    /// zero-padded to `len` (rounded up to a power of two): the three proofs of a batch must
    /// have the same number of levels even when their statements differ in length.
    pub fn new(l: Vec<E>, r: Vec<E>, len: usize) -> Self {
        Self::halving_first(l, r, len, 0)
    }
    /// The same, with the first `halving` levels halving (what the packed levels do, to
    /// compare with them).
    pub(crate) fn halving_first(mut l: Vec<E>, mut r: Vec<E>, len: usize, halving: usize) -> Self {
        let live = pad(&mut l, &mut r, len);
        let arities = arity_schedule(l.len(), halving);
        Self { l, r, live, arities, level: 0 }
    }
    /// Number of folding levels before the last message (the same for the verifiers).
    pub fn levels(&self) -> usize {
        self.arities.len()
    }
    /// The parts level `level` splits the vectors into (2 or 4).
    pub fn arity(&self, level: usize) -> usize {
        self.arities[level]
    }
    /// This level's polynomial (call while [`Prover::levels`] has not been reached).
    pub fn level(&self) -> LevelPoly<E> {
        level_at(self.arities[self.level], &self.l, &self.r, self.live)
    }
    /// Folds at the verifiers' challenge.
    pub fn fold(&mut self, t: E) {
        self.live = fold_at(self.arities[self.level], &mut self.l, &mut self.r, t, self.live);
        self.level += 1;
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
    /// Shares of `h(0) + h(1) - claim` (halving) or of `h_3 - claim` (quartering) per level,
    /// then of `h(0) - claim` for the last.
    zeros: Vec<E>,
    arities: Vec<usize>,
    level: usize,
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
        let arities = arity_schedule(l.len(), 0);
        Self { l, r, live, claim, zeros: Vec::new(), arities, level: 0 }
    }
    /// Number of folding levels.
    pub fn levels(&self) -> usize {
        self.arities.len()
    }
    /// The parts level `level` splits the vectors into (2 or 4).
    pub fn arity(&self, level: usize) -> usize {
        self.arities[level]
    }
    /// A verifier that took part in the first levels of a proof in another form (see
    /// [`crate::dzkp_packed`]) and continues with the folded vectors `l`, `r` (of a power-of-two
    /// length), its claim share so far and its zero-shares so far.
    pub fn resume(l: Vec<E>, r: Vec<E>, claims: ClaimShares<E>) -> Self {
        let live = l.len();
        let arities = arity_schedule(l.len(), 0);
        Self { l, r, live, claim: claims.claim, zeros: claims.zeros, arities, level: 0 }
    }
    /// Takes this verifier's share of a level's polynomial (as many coefficients as the
    /// level's arity gives) and the challenge.
    pub fn level(&mut self, h: &[E], t: E) {
        let arity = self.arities[self.level];
        debug_assert_eq!(h.len(), coefficients(arity));
        level_claims(&mut self.claim, &mut self.zeros, h, t);
        self.live = fold_at(arity, &mut self.l, &mut self.r, t, self.live);
        self.level += 1;
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
            h: eval(&[h0, h1, h2], t),
        }
    }
}

/// A verifier's running share of the claim and its shares of the values that must be zero.
#[derive(Debug, Clone)]
pub struct ClaimShares<E: Ext> {
    /// Share of the claim about the current (folded) vectors.
    pub claim: E,
    /// Shares of the values that must be zero, one per level so far.
    pub zeros: Vec<E>,
}

impl<E: Ext> ClaimShares<E> {
    /// Starts from a share of the claim.
    pub fn new(claim: E) -> Self {
        Self { claim, zeros: Vec::new() }
    }
    /// Takes a level's polynomial share and challenge (what [`Verifier::level`] does besides
    /// folding).
    pub fn level(&mut self, h: &[E], t: E) {
        level_claims(&mut self.claim, &mut self.zeros, h, t);
    }
}

impl<E: Ext> ClaimShares<E> {
    /// A packed halving level of a statement whose top variables are weighted by
    /// `eq(tau, .)` (see `crate::dzkp_packed`'s word terms): the check is
    /// `(1 - tau) h(0) + tau h(1)`, linear in `h`, so on shares as well; the next claim `h(t)`.
    pub fn level_weighted(&mut self, h: &[E], t: E, tau: E) {
        debug_assert_eq!(h.len(), coefficients(2));
        let (at0, at1) = (h[0], h[0].add(h[1]).add(h[2]));
        let held = E::one().sub(tau).mul(at0).add(tau.mul(at1));
        self.zeros.push(held.sub(self.claim));
        self.claim = eval(h, t);
    }
}

/// A level's check and new claim: a halving level's claim is `h(0) + h(1)`, a quartering
/// one's the coefficient of `X^3` (see [`level_poly4`]); the next claim is `h(t)`.
fn level_claims<E: Ext>(claim: &mut E, zeros: &mut Vec<E>, h: &[E], t: E) {
    let held = if h.len() == coefficients(4) { h[3] } else { h[0].add(h[0]).add(h[1]).add(h[2]) };
    zeros.push(held.sub(*claim));
    *claim = eval(h, t);
}

/// The prover's steps, whatever form its vectors take (the plain [`Prover`] or the packed
/// ones of [`crate::dzkp_packed`]): the message exchange drives either.
pub trait ProverSteps<E: Ext>: Send {
    /// Number of folding levels before the last message.
    fn levels(&self) -> usize;
    /// The parts level `level` splits the vectors into (2 or 4; its polynomial has
    /// [`coefficients`] of it).
    fn arity(&self, level: usize) -> usize;
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
    /// The parts level `level` splits the vectors into (the prover's).
    fn arity(&self, level: usize) -> usize;
    /// Takes this verifier's share of a level's polynomial and the challenge.
    fn level(&mut self, h: &[E], t: E);
    /// Takes the last message's share and challenge; returns what to open.
    fn last(self: Box<Self>, m: &FinalPoly<E>, t: E) -> Opening<E>;
}

impl<E: Ext> ProverSteps<E> for Prover<E> {
    fn levels(&self) -> usize {
        Prover::levels(self)
    }
    fn arity(&self, level: usize) -> usize {
        Prover::arity(self, level)
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
    fn arity(&self, level: usize) -> usize {
        Verifier::arity(self, level)
    }
    fn level(&mut self, h: &[E], t: E) {
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
mod tests;
