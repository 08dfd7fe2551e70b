//! The first levels of a proof on whole blocks of gates: the first folds of [`crate::dzkp`]
//! computed on 64 gates at a time, before the vectors are written out element by element.
//!
//! **Statement.** A batch is a list of *block terms* `(x_w, y_w)`, each 64 gates (the 64
//! bits of an AND word, or 64 consecutive elementwise products), with weights `rho_w`; the
//! inner product to prove is `sum_(w, b) (rho_w X^b x_(w,b)) y_(w,b) = claim`, i.e. the plain
//! proof's vectors would be `l_(64 w + b) = rho_w X^b x_(w,b)` and `r_(64 w + b) = y_(w,b)`
//! (AND words write `X^b` out on `r` instead, whose member coefficients, hence tables, are
//! the same for every group: the same inner product, so the same levels).
//! The weight of gate `b` of block `w` is `rho_w X^b`, so the errors `e_(w,b)` of a block
//! contribute `rho_w E_w` with `E_w = sum_b e_(w,b) X^b`, nonzero whenever one error is (the
//! 64 coefficients of an element are independent). For ring blocks `rho_w` is drawn from the
//! exceptional set per block: errors in different blocks cancel with probability at most
//! `2^-64`, the bound of independent weights per gate. AND words are weighted
//! `eq(tau, top(w)) rho(low(w))` since the nineteenth session ([`WordWeights`]): a uniform
//! `rho` per low index and `eq` on the top variables, the ones the packed levels fold, at
//! most `(L + 1) / 2^64` for `L` packed levels.
//!
//! **Packed folds.** Folding the top variables (the block index) first keeps both vectors of
//! ring blocks in the form, for `G` groups and members `s`,
//! `l_(q,b) = X^b sum_s c_s rho_(sG+q) x_(sG+q,b)` and `r_(q,b) = sum_s c_s y_(sG+q,b)`,
//! where the member coefficients `c_s` are products of `1 - t` and `t` over the challenges so
//! far, the same for every group. A level's inner products are then sums over member pairs
//! of `c_s c_u sum_q rho_q P(x_q * y_u)`, where `P` packs the 64 gate products of two blocks
//! into one element (`sum_b X^b x_b y_b`): for ring blocks 64 products and one
//! extension product per block by `rho_q`, whose coefficients are 0 or 1, so that the sum is
//! one of the rows each bit of `rho_q` selects (`musket_ring::BitWeightedSum`, additions only;
//! by Karatsuba until the sixteenth session). From eight members on, ring blocks go lane by
//! lane instead, with `r` written out one group at a time (about `3 * 64^2` word products per
//! block and level, where the pairs cost `2 M` Hadamard products and bit-weighted rows).
//! AND words, whose top variables `eq` weighs, prove the sum-check in Gruen's form and form
//! each level from the extended points `{0, 1, inf}^(j+1)` of the members and the folded
//! variable, `1.5^(j+1)` carry-less products per word where the pairs took `2^(j+1)`
//! ([`PackedWords`]; by pairs, one carry-less product per word and pair, until the
//! nineteenth session). After [`PACKED_LEVELS_BITS`] or [`PACKED_LEVELS_RING`] levels (or
//! fewer for a small batch) the vectors are written out element by element, 32 (bits) or 64
//! (ring) times shorter than the plain proof's, and the plain proof continues. Messages,
//! rounds and soundness are the plain proof's (for AND words, with the weighted check of
//! each packed level and the bound above): only the prover's arithmetic and the verifiers'
//! folds change.

use crate::dzkp::{
    arity_schedule, ClaimShares, FinalPoly, LevelPoly, Opening, Prover, ProverSteps, Verifier, VerifierSteps,
};
use crate::ext::Ext;

mod blocks;
mod words;
pub use blocks::PackedBlocks;
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
/// dzkp`), eight slower; six writes out half the words of five.
pub const PACKED_LEVELS_RING: usize = 6;

/// Block terms in packed form: what [`PackedProver`] and [`PackedVerifier`] fold.
pub trait Packed<E: Ext>: Send + Sized {
    /// The member bookkeeping (see [`Members`]).
    fn members(&self) -> &Members<E>;
    /// The same, to fold.
    fn members_mut(&mut self) -> &mut Members<E>;
    /// This level's polynomial `(h0, h1, h2)` (only while packed levels are left).
    fn level(&self) -> LevelPoly<E>;
    /// The folded vectors, element by element.
    fn expand(self) -> (Vec<E>, Vec<E>);
    /// Variables of the gate vectors (the plain proof's length is `2^variables`).
    fn variables(&self) -> usize {
        6 + self.members().groups.trailing_zeros() as usize
    }
    /// The weight of this level's check, where the statement weighs its top variables by
    /// `eq(tau, .)` ([`PackedWords`]): the verifiers check `(1 - tau_j) h(0) + tau_j h(1)`
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

/// The level polynomial from the member-pair sums `(d00, d11, e01, e10)` of `sums(s, u)`
/// (low-low, high-high, low-high, high-low halves, `rho` on the left), weighted by
/// `c_s c_u`: `h0 = <a0, b0>`, `h2 = <a1 - a0, b1 - b0>`, `h1 = <a1, b1> - h0 - h2`. The
/// weighting is `sum_s c_s (sum_u c_u d)`: inner products, which the ring batches.
fn level_from_pairs<E: Ext>(coef: &[E], sums: impl Fn(usize, usize) -> [E; 4]) -> LevelPoly<E> {
    let n = coef.len();
    let (mut a00, mut a11, mut a2) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for s in 0..n {
        let (mut v00, mut v11, mut v2) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for u in 0..n {
            let [d00, d11, e01, e10] = sums(s, u);
            v00.push(d00);
            v11.push(d11);
            v2.push(d11.add(d00).sub(e01).sub(e10));
        }
        a00.push(E::dot(coef, &v00));
        a11.push(E::dot(coef, &v11));
        a2.push(E::dot(coef, &v2));
    }
    let (h0, h11, h2) = (E::dot(coef, &a00), E::dot(coef, &a11), E::dot(coef, &a2));
    vec![h0, h11.sub(h0).sub(h2), h2]
}

/// The prover of a packed statement: packed levels, then the plain [`Prover`].
#[derive(Debug)]
pub struct PackedProver<E: Ext, P: Packed<E>> {
    packed: Option<P>,
    plain: Option<Prover<E>>,
    arities: Vec<usize>,
}

/// The whole proof's levels: the packed ones halve, then the plain proof's schedule.
fn packed_schedule<E: Ext, P: Packed<E>>(terms: &P) -> Vec<usize> {
    arity_schedule(1 << terms.variables(), terms.members().packed_left)
}

impl<E: Ext, P: Packed<E>> PackedProver<E, P> {
    /// The prover of `terms`.
    pub fn new(terms: P) -> Self {
        let arities = packed_schedule(&terms);
        let mut p = Self { packed: Some(terms), plain: None, arities };
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
            (None, Some(w)) => w.level(),
            (None, None) => unreachable!("a packed prover holds one form or the other"),
        }
    }
    fn fold(&mut self, t: E) {
        match (&mut self.plain, &mut self.packed) {
            (Some(p), _) => p.fold(t),
            (None, Some(w)) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::Gr64;
    use crate::Prg;

    /// Runs a packed prover and the plain one on the vectors it stands for, in step.
    fn same_as_plain<E: Ext, P: Packed<E>>(packed: P, l: Vec<E>, r: Vec<E>, prg: &mut Prg) {
        let len = l.len();
        // The plain proof halving where the packed levels do, to compare level by level.
        let mut plain = Prover::halving_first(l, r, len, packed.members().packed_left);
        let mut packed = PackedProver::new(packed);
        assert_eq!(ProverSteps::levels(&packed), plain.levels());
        for lvl in 0..plain.levels() {
            assert_eq!(ProverSteps::level(&mut packed), plain.level(), "level {lvl}");
            let t = E::challenge(prg);
            ProverSteps::fold(&mut packed, t);
            plain.fold(t);
        }
        let (p, q) = (E::random(prg), E::random(prg));
        assert_eq!(ProverSteps::last(&mut packed, p, q), plain.last(p, q));
    }

    #[test]
    fn packed_ring_blocks_match_the_plain_proof() {
        let mut prg = Prg::from_seed([8; 16]);
        for n in [1usize, 2, 5, 8, 16, 64] {
            let (x, y) = (prg.words(64 * n), prg.words(64 * n));
            let rho: Vec<Gr64> = prg.words(n).into_iter().map(Gr64::exceptional).collect();
            let mut l = Vec::new();
            for (i, v) in x.iter().enumerate() {
                l.push(rho[i / 64].times_x_pow(i % 64).mul_base(*v));
            }
            let r: Vec<Gr64> = y.iter().map(|v| Gr64::from_base(*v)).collect();
            let len = n.next_power_of_two();
            let (l, r) = padded(l, r, 64 * len);
            same_as_plain(PackedBlocks::new(x, y, rho, len), l, r, &mut prg);
        }
    }

    /// Ring blocks with zeros where a verifier's shares have them (whole regions of blocks):
    /// the written-out vectors skip them and still match.
    #[test]
    fn zero_blocks_are_skipped_exactly() {
        let mut prg = Prg::from_seed([12; 16]);
        // Ring blocks (64 to 256: 64 members after six levels, or lanes from several groups), zero
        // over whole stretches of x and y, as a verifier's shares and the padding are: zero
        // members are left out of the levels (past the last nonzero block) and of the
        // written-out vectors (anywhere).
        for (blocks, x_zero, y_zero) in [
            (64usize, 0..20usize, 40..64usize),
            (64, 37..64, 0..0),
            (128, 90..128, 101..128),
            (128, 0..0, 3..128),
            (128, 0..128, 0..0),
            // 12 live members of 16 at 16 groups, one batch of pair rows.
            (256, 180..256, 0..0),
            // Several batches of pair rows and a short last one (the lanes keep 256 rows of
            // `T`): 8 live members at 128 groups, batches of 32 pairs (two); 12 of 16 at 64
            // groups, 21 and 11; 24 of 32 at 32 groups, 10 and 6.
            (1024, 720..1024, 0..0),
        ] {
            let (mut x, mut y) = (prg.words(64 * blocks), prg.words(64 * blocks));
            x[64 * x_zero.start..64 * x_zero.end].fill(0);
            y[64 * y_zero.start..64 * y_zero.end].fill(0);
            let rho: Vec<Gr64> = prg.words(blocks).into_iter().map(Gr64::exceptional).collect();
            let l: Vec<Gr64> =
                x.iter().enumerate().map(|(i, v)| rho[i / 64].times_x_pow(i % 64).mul_base(*v)).collect();
            let r: Vec<Gr64> = y.iter().map(|v| Gr64::from_base(*v)).collect();
            same_as_plain(PackedBlocks::new(x, y, rho, blocks), l, r, &mut prg);
        }
    }

    fn padded<E: Ext>(mut l: Vec<E>, mut r: Vec<E>, len: usize) -> (Vec<E>, Vec<E>) {
        l.resize(len, E::zero());
        r.resize(len, E::zero());
        (l, r)
    }
}
