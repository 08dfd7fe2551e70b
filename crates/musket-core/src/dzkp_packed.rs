//! The first levels of a proof on whole blocks of gates: the first folds of [`crate::dzkp`]
//! computed on 64 gates at a time, before the vectors are written out element by element.
//!
//! **Statement.** A batch is a list of *block terms* `(x_w, y_w)`, each 64 gates (the 64
//! bits of an AND word, or 64 consecutive elementwise products), with weights `W_w`; the
//! inner product to prove is `sum_(w, b) (W_w X^b x_(w,b)) y_(w,b) = claim`, i.e. the plain
//! proof's vectors would be `l_(64 w + b) = W_w X^b x_(w,b)` and `r_(64 w + b) = y_(w,b)`
//! (AND words write `X^b` out on `r` instead, whose member coefficients, hence tables, are
//! the same for every group: the same inner product, so the same levels).
//! The weight of gate `b` of block `w` is `W_w X^b`, so the errors `e_(w,b)` of a block
//! contribute `W_w E_w` with `E_w = sum_b e_(w,b) X^b`, nonzero whenever one error is (the
//! 64 coefficients of an element are independent). Blocks are weighted
//! `W_w = eq(tau, top(w)) rho(low(w))` ([`WordWeights`], [`BlockWeights`]): a uniform `rho`
//! per low index and `eq` on the top variables, the ones the packed levels fold, at most
//! `(L + 1) / 2^64` for `L` packed levels (AND words since the nineteenth session, ring
//! blocks since the twentieth; until then an independent weight per block, `2^-64`).
//!
//! **Packed folds.** With the top variables weighted by `eq`, each packed level is a round
//! of the sum-check of `eq(tau, .) x y` in Gruen's form: level `j` sends the quadratic
//! `q_j(X) = sum_(q') eq(tau_(>j), top(q')) rho(low(q')) P(x(r, X, q') * y(r, X, q'))`,
//! where `x(r, X, q')` is the members' blocks combined at the challenges `r` so far and `P`
//! packs a block's 64 products with lane weights `X^b`; the verifiers check
//! `(1 - tau_j) q_j(0) + tau_j q_j(1)` against the claim (a linear check, so on shares) and
//! go on with `q_j(t)`. With `x` and `y` at the same point, their product is of degree two
//! in each challenge, fixed by its values on `{0, 1, inf}^(j+1)` (Bagad, Dao, Domb, Thaler,
//! "Speeding up sum-check proving", 2025), where the operands are still base words (at `inf`
//! the difference of two corners: an XOR of bit words, or a difference of ring words), so a
//! level is `3^(j+1)` weighted sums of products of words, `1.5^(j+1)` per block, combined
//! with the challenges' Lagrange weights: AND words by carry-less products
//! ([`PackedWords`]), ring blocks by Hadamard products summed weighted by the bits of `rho`
//! until sixteen members, then lane by lane ([`PackedBlocks`]). Until the nineteenth (bits)
//! and twentieth (ring) sessions the members' weights differed, so their combinations were
//! extension elements and a level's sums ran over member pairs (`2^(j+1)` per block). After
//! [`PACKED_LEVELS_BITS`] or [`PACKED_LEVELS_RING`] levels (or fewer for a small batch) the
//! vectors are written out element by element, 32 (bits) or 64 (ring) times shorter than the
//! plain proof's, and the plain proof continues. Messages and rounds are the plain proof's;
//! only the prover's arithmetic, the weighted check of each packed level and the verifiers'
//! folds change.

use crate::dzkp::{
    arity_schedule, ClaimShares, FinalPoly, LevelPoly, Opening, Prover, ProverSteps, Verifier, VerifierSteps,
};
use crate::ext::Ext;

mod blocks;
mod words;
pub use blocks::{BlockWeights, PackedBlocks};
pub use words::{PackedWords, WordWeights};

/// Levels run on AND words before the vectors are written out: level `j` forms the weighted
/// AND sums of `3^(j+1)` extended points from `2^(j+1)` corners, `1.5^(j+1)` carry-less
/// products per word term (`2^(j+1)` by member pairs until the nineteenth session), writing
/// out one table lookup per gate and eight members (a lane's bits across eight members form
/// one byte), and each level packed halves what the plain proof folds. Five measured fastest
/// with the pairs (mul and ReLU of 10^6 and ReLU of 10^5, alternated: three was 15-20%
/// slower, four 5-10%) in time alone; where a sixth costs no round it is taken
/// ([`packed_levels_bits`]). More would cost a round per batch: a packed level halves where
/// the plain proof's levels quarter.
pub const PACKED_LEVELS_BITS: usize = 5;

/// Packed levels for a batch of `words` AND words (`64 words` bit terms, `2^L`): six where `L`
/// is even, [`PACKED_LEVELS_BITS`] otherwise. The plain levels after `P` packed ones quarter,
/// and halve once where `L - P` is odd, so for even `L` six packed levels give the same
/// number of levels (`3 + L / 2`, hence the same rounds) as five, and write out half as many
/// field elements: the written-out vectors of a group's batches, all alive at once, were
/// most of a verification's memory (1.1 of the 2.8 GiB at the peak of a ReLU of 10^6 on three
/// local parties, `heaptrack`), and on a virtual machine whose fresh pages cost microseconds
/// each, memory is time (sixteenth session: ReLU of 10^6 1.15 -> 1.05 s warm, and 12 -> 8.6 s
/// for a process's first run, with the same rounds).
pub fn packed_levels_bits(words: usize) -> usize {
    if words.trailing_zeros().is_multiple_of(2) {
        PACKED_LEVELS_BITS + 1
    } else {
        PACKED_LEVELS_BITS
    }
}
/// The same for ring blocks, where the plain proof's elements are 64 words. Lane by lane a
/// level costs about the same whatever the members (it goes lane by lane, see
/// [`PackedBlocks`]), so more levels only shorten the written-out vectors: five, six and seven
/// measured level (272-281 ms for a batch of 2^14 blocks, `cargo bench -p musket-core --bench
/// dzkp`), eight slower; six writes out half the words of five (measured before the
/// twentieth session's extended points, which made the first four levels cheaper and left
/// the lanes' as they were).
pub const PACKED_LEVELS_RING: usize = 6;

/// Block terms in packed form: what [`PackedProver`] and [`PackedVerifier`] fold.
pub trait Packed<E: Ext>: Send + Sized {
    /// The member bookkeeping (see [`Members`]).
    fn members(&self) -> &Members<E>;
    /// The same, to fold.
    fn members_mut(&mut self) -> &mut Members<E>;
    /// This level's polynomial `(h0, h1, h2)` (only while packed levels are left).
    fn level(&self) -> LevelPoly<E>;
    /// The same, for a prover that knows the claim the level must split (the previous
    /// level's polynomial at its challenge): where [`Packed::level_weight`] is `tau`, the
    /// claim is `(1 - tau) q(0) + tau q(1)`, so `q(1)` follows from `q(0)` without its sums
    /// (Gruen's observation). By default, [`Packed::level`].
    fn level_given(&self, claim: E) -> LevelPoly<E> {
        let _ = claim;
        self.level()
    }
    /// The folded vectors, element by element.
    fn expand(self) -> (Vec<E>, Vec<E>);
    /// Variables of the gate vectors (the plain proof's length is `2^variables`).
    fn variables(&self) -> usize {
        6 + self.members().groups.trailing_zeros() as usize
    }
    /// The weight of this level's check, where the statement weighs its top variables by
    /// `eq(tau, .)` ([`PackedWords`], [`PackedBlocks`]): the verifiers check `(1 - tau_j) h(0) + tau_j h(1)`
    /// against the claim instead of `h(0) + h(1)`. `None` for plain weights.
    fn level_weight(&self) -> Option<E> {
        None
    }
    /// Folds the top variable at `t`.
    fn fold(&mut self, t: E) {
        self.members_mut().fold(t);
    }
    /// True when the vectors should be written out before the next level.
    fn expanded_now(&self) -> bool {
        self.members().packed_left == 0
    }
}

/// What both packed forms keep besides their block terms: the member coefficients, the
/// number of groups, and the packed levels left.
#[derive(Debug)]
pub struct Members<E: Ext> {
    coef: Vec<E>,
    groups: usize,
    packed_left: usize,
}

impl<E: Ext> Members<E> {
    /// `groups` block terms (a power of two), one member each, with at most `max_levels`
    /// packed levels.
    fn new(groups: usize, max_levels: usize) -> Self {
        Self { coef: vec![E::one()], groups, packed_left: max_levels.min(groups.trailing_zeros() as usize) }
    }
    fn fold(&mut self, t: E) {
        self.coef = fold_coefficients(&self.coef, t);
        self.groups /= 2;
        self.packed_left -= 1;
    }
}

/// Member coefficients after a fold at `t`: member `s` of group `q` becomes member `2s` (the
/// low half's, times `1 - t`) and `2s + 1` (the high half's, times `t`) of group `q`.
fn fold_coefficients<E: Ext>(coef: &[E], t: E) -> Vec<E> {
    let lo = E::one().sub(t);
    coef.iter().flat_map(|c| [c.mul(lo), c.mul(t)]).collect()
}

/// `eq(tau, t)` for every `t` of `tau.len()` bits, `tau_0` on the most significant: the
/// member coefficients of folds at `tau` ([`fold_coefficients`]).
fn eq_table<E: Ext>(tau: &[E]) -> Vec<E> {
    tau.iter().fold(vec![E::one()], |table, &t| fold_coefficients(&table, t))
}

/// The Lagrange weights of the points `{0, 1, inf}^j` at the challenges `r` (digit 0, on
/// `r_0`, the most significant): `prod_k l_(d_k)(r_k)` with `l_0 = 1 - r`, `l_1 = r` and
/// `l_inf = r (r - 1)`, so that a polynomial of degree two in each variable is
/// `sum_e weight_e value_e` (the value at `inf` its leading coefficient there).
fn lagrange_weights<E: Ext>(r: &[E]) -> Vec<E> {
    let mut weights = vec![E::one()];
    for &t in r {
        let basis = [E::one().sub(t), t, t.mul(t.sub(E::one()))];
        weights = weights.iter().flat_map(|w| basis.map(|b| w.mul(b))).collect();
    }
    weights
}

/// A packed level's coefficients from its sums at the extended points `(v, X)`,
/// `total[3 v + X]` (`X` in `{0, 1, inf}` the folded variable, `v` the challenges' points):
/// `q(X) = sum_v lagrange_v(r) total(v, X)`, as `(q(0), q(1) - q(0) - q(inf), q(inf))`. With
/// `given = (claim, tau)`, the sums at `X = 1` are not read: `q(1) = (claim - (1 - tau) q(0))
/// / tau`, the value the verifiers' weighted check needs (`tau` a challenge, hence a unit).
fn level_from_points<E: Ext>(challenges: &[E], total: &[E], given: Option<(E, E)>) -> LevelPoly<E> {
    let lagrange = lagrange_weights(challenges);
    debug_assert_eq!(3 * lagrange.len(), total.len());
    let mut q = [E::zero(); 3];
    for (l, sums) in lagrange.iter().zip(total.chunks_exact(3)) {
        for (x, (qx, s)) in q.iter_mut().zip(sums).enumerate() {
            if x != 1 || given.is_none() {
                *qx = qx.add(l.mul(*s));
            }
        }
    }
    let [q0, q1, q_inf] = q;
    level_from_values(q0, given.map_or(q1, |(claim, tau)| value_at_one(claim, tau, q0)), q_inf)
}

/// A packed level's quadratic from its values at 0, 1 and `inf` (the leading coefficient), as
/// coefficients: `(q(0), q(1) - q(0) - q(inf), q(inf))`.
fn level_from_values<E: Ext>(q0: E, q1: E, q_inf: E) -> LevelPoly<E> {
    vec![q0, q1.sub(q0).sub(q_inf), q_inf]
}

/// `q(1)` from the claim a level weighted by `tau` splits: the verifiers check `(1 - tau) q(0) +
/// tau q(1)` against it, so `q(1) = (claim - (1 - tau) q(0)) / tau` (`tau` a challenge, hence a
/// unit).
fn value_at_one<E: Ext>(claim: E, tau: E, q0: E) -> E {
    let inverse = tau.inverse().expect("a packed level's weight is a challenge, a unit");
    claim.sub(E::one().sub(tau).mul(q0)).mul(inverse)
}

/// The prover of a packed statement: packed levels, then the plain [`Prover`].
#[derive(Debug)]
pub struct PackedProver<E: Ext, P: Packed<E>> {
    packed: Option<P>,
    plain: Option<Prover<E>>,
    arities: Vec<usize>,
    /// The last packed level's polynomial, then, once folded, the claim it leaves (the
    /// packed levels after the first take it, [`Packed::level_given`]).
    last_level: Option<LevelPoly<E>>,
    claim: Option<E>,
}

/// The whole proof's levels: the packed ones halve, then the plain proof's schedule.
fn packed_schedule<E: Ext, P: Packed<E>>(terms: &P) -> Vec<usize> {
    arity_schedule(1 << terms.variables(), terms.members().packed_left)
}

impl<E: Ext, P: Packed<E>> PackedProver<E, P> {
    /// The prover of `terms`.
    pub fn new(terms: P) -> Self {
        let arities = packed_schedule(&terms);
        let mut p = Self { packed: Some(terms), plain: None, arities, last_level: None, claim: None };
        p.expand_if_done();
        p
    }
    fn expand_if_done(&mut self) {
        if self.packed.as_ref().is_some_and(Packed::expanded_now) {
            let (l, r) = self.packed.take().expect("checked just above").expand();
            let len = l.len();
            self.plain = Some(Prover::new(l, r, len));
        }
    }
}

impl<E: Ext, P: Packed<E>> ProverSteps<E> for PackedProver<E, P> {
    fn levels(&self) -> usize {
        self.arities.len()
    }
    fn arity(&self, level: usize) -> usize {
        self.arities[level]
    }
    fn level(&mut self) -> LevelPoly<E> {
        match (&self.plain, &self.packed) {
            (Some(p), _) => p.level(),
            (None, Some(w)) => {
                let h = match self.claim {
                    Some(claim) => w.level_given(claim),
                    None => w.level(),
                };
                self.last_level = Some(h.clone());
                h
            }
            (None, None) => unreachable!("a packed prover holds one form or the other"),
        }
    }
    fn fold(&mut self, t: E) {
        match (&mut self.plain, &mut self.packed) {
            (Some(p), _) => p.fold(t),
            (None, Some(w)) => {
                self.claim = self.last_level.take().map(|h| crate::dzkp::eval(&h, t));
                w.fold(t);
                self.expand_if_done();
            }
            (None, None) => unreachable!("a packed prover holds one form or the other"),
        }
    }
    fn last(&mut self, p: E, q: E) -> FinalPoly<E> {
        self.plain.as_ref().expect("the packed levels end before the last message").last(p, q)
    }
}

/// A verifier of a packed statement: its shares of the block terms, folded the same way.
#[derive(Debug)]
pub struct PackedVerifier<E: Ext, P: Packed<E>> {
    packed: Option<(P, ClaimShares<E>)>,
    plain: Option<Verifier<E>>,
    arities: Vec<usize>,
}

impl<E: Ext, P: Packed<E>> PackedVerifier<E, P> {
    /// A verifier holding shares `terms` of the block terms and `claim` of the claim.
    pub fn new(terms: P, claim: E) -> Self {
        let arities = packed_schedule(&terms);
        let mut v = Self { packed: Some((terms, ClaimShares::new(claim))), plain: None, arities };
        v.expand_if_done();
        v
    }
    fn expand_if_done(&mut self) {
        if self.packed.as_ref().is_some_and(|(w, _)| w.expanded_now()) {
            let (w, claims) = self.packed.take().expect("checked just above");
            let (l, r) = w.expand();
            self.plain = Some(Verifier::resume(l, r, claims));
        }
    }
}

impl<E: Ext, P: Packed<E>> VerifierSteps<E> for PackedVerifier<E, P> {
    fn levels(&self) -> usize {
        self.arities.len()
    }
    fn arity(&self, level: usize) -> usize {
        self.arities[level]
    }
    fn level(&mut self, h: &[E], t: E) {
        match (&mut self.plain, &mut self.packed) {
            (Some(v), _) => v.level(h, t),
            (None, Some((w, claims))) => {
                match w.level_weight() {
                    Some(tau) => claims.level_weighted(h, t, tau),
                    None => claims.level(h, t),
                }
                w.fold(t);
                self.expand_if_done();
            }
            (None, None) => unreachable!("a packed verifier holds one form or the other"),
        }
    }
    fn last(self: Box<Self>, m: &FinalPoly<E>, t: E) -> Opening<E> {
        self.plain.expect("the packed levels end before the last message").last(m, t)
    }
}
