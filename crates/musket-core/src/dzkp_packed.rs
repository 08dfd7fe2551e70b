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
//! 64 coefficients of an element are independent). With `rho_w` drawn from the exceptional
//! set, errors in different blocks cancel with probability at most `2^-64`, the bound of
//! independent weights per gate.
//!
//! **Packed folds.** Folding the top variables (the block index) first keeps both vectors in
//! the form, for `G` groups and members `s`,
//! `l_(q,b) = X^b sum_s c_s rho_(sG+q) x_(sG+q,b)` and `r_(q,b) = sum_s c_s y_(sG+q,b)`,
//! where the member coefficients `c_s` are products of `1 - t` and `t` over the challenges so
//! far, the same for every group. A level's inner products are then sums over member pairs
//! of `c_s c_u sum_q rho_q P(x_q * y_u)`, where `P` packs the 64 gate products of two blocks
//! into one element (`sum_b X^b x_b y_b`): for AND words the AND of the two words read as a
//! field element, one carry-less product per word; for ring blocks 64 products and one
//! extension product per block by `rho_q`, whose coefficients are 0 or 1, so that the sum is
//! one of the rows each bit of `rho_q` selects (`musket_ring::BitWeightedSum`, additions only;
//! by Karatsuba until the sixteenth session). From eight members on, ring blocks go lane by
//! lane instead, with `r` written out one group at a time (about `3 * 64^2` word products per
//! block and level, where the pairs cost `2 M` Hadamard products and bit-weighted rows).
//! After [`PACKED_LEVELS_BITS`] or [`PACKED_LEVELS_RING`] levels (or fewer for a small
//! batch) the vectors are written out element by element, 32 (bits) or 64 (ring) times
//! shorter than the plain proof's, and the plain proof continues. Messages, rounds and
//! soundness are the plain proof's: only the prover's arithmetic and the verifiers' folds
//! change.

use crate::dzkp::{
    arity_schedule, ClaimShares, FinalPoly, LevelPoly, Opening, Prover, ProverSteps, Verifier, VerifierSteps,
};
use crate::ext::{reduce, Ext, Gf64};

mod blocks;
pub use blocks::PackedBlocks;

/// Levels run on AND words before the vectors are written out: level `j` costs `2^(j+1)`
/// carry-less products per word term, writing out one table lookup per gate and eight
/// members (a lane's bits across eight members form one byte), and each level packed halves
/// what the plain proof folds. Five measured fastest (mul and ReLU of 10^6 and ReLU of 10^5,
/// alternated: three was 15-20% slower, four 5-10%) in time alone; where a sixth costs no
/// round it is taken ([`packed_levels_bits`]).
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

/// Word terms folded over their top variables (see the module documentation).
#[derive(Debug)]
pub struct PackedWords {
    lw: Vec<u64>,
    rw: Vec<u64>,
    rho: Vec<u64>,
    m: Members<Gf64>,
}

impl PackedWords {
    /// Word terms `(lw_i, rw_i)` with weights `rho_i`, zero-padded to `len` terms (rounded up
    /// to a power of two): every party's statement of a batch must fold in step.
    pub fn new(mut lw: Vec<u64>, mut rw: Vec<u64>, mut rho: Vec<u64>, len: usize) -> Self {
        let n = len.max(lw.len()).max(1).next_power_of_two();
        lw.resize(n, 0);
        rw.resize(n, 0);
        rho.resize(n, 0);
        Self { lw, rw, rho, m: Members::new(n, packed_levels_bits(n)) }
    }
}

impl Packed<Gf64> for PackedWords {
    fn members(&self) -> &Members<Gf64> {
        &self.m
    }

    fn members_mut(&mut self) -> &mut Members<Gf64> {
        &mut self.m
    }

    fn level(&self) -> LevelPoly<Gf64> {
        let g = self.m.groups;
        let half = g / 2;
        let dot = |w: &[u64], x: &[u64], y: &[u64]| Gf64(reduce(musket_ring::clmul_dot_and(w, x, y)));
        level_from_pairs(&self.m.coef, |s, u| {
            let (x, rho, y) =
                (&self.lw[s * g..(s + 1) * g], &self.rho[s * g..(s + 1) * g], &self.rw[u * g..(u + 1) * g]);
            [
                dot(&rho[..half], &x[..half], &y[..half]),
                dot(&rho[half..], &x[half..], &y[half..]),
                dot(&rho[..half], &x[..half], &y[half..]),
                dot(&rho[half..], &x[half..], &y[..half]),
            ]
        })
    }

    /// By tables: the bits of lane `b` across eight members form one byte, whose two nibbles
    /// index tables of the sums of four members' coefficients (sixteen entries each, two
    /// vector registers: `musket_ring::xor_nibble_lookups` looks up eight lanes at once); a
    /// lane's value is the XOR of two lookups per eight members.
    fn expand(self) -> (Vec<Gf64>, Vec<Gf64>) {
        let g = self.m.groups;
        let members = self.m.coef.len();
        let chunks = members.div_ceil(8);
        let mut cr = vec![0u64; 8 * chunks];
        for (c, v) in cr.iter_mut().zip(&self.m.coef) {
            *c = v.0;
        }
        // r's member coefficients are the same for every group: its tables are built once;
        // the lane weight X^b goes on r, applied once per lane after the lookups.
        let tables_r: Vec<([u64; 16], [u64; 16])> =
            cr.chunks_exact(8).map(|c| (nibble_sums(&c[..4]), nibble_sums(&c[4..]))).collect();
        // l's weights c_s rho_w for every term, in one vector pass per member.
        let mut weights = vec![0u64; self.rho.len()];
        for (s, c) in self.m.coef.iter().enumerate() {
            let span = s * g..(s + 1) * g;
            musket_ring::gf64_fold_into(&mut weights[span.clone()], &self.rho[span], c.0);
        }
        // Eight groups at a time, each chunk's 8 x 8 block of words (eight members, eight
        // groups: a cache line of each member) read once, then taken group by group: read
        // word by word from eight members' spans, a group at a time, they were a third of
        // the writing out (scalar, the registers spilled).
        let (mut l, mut r) = (vec![0u64; 64 * g], vec![0u64; 64 * g]);
        // (Whole lines as fixed-size copies: a copy of `rows` words called `memcpy`.)
        let block = |b: &mut [[u64; 8]; 8], v: &[u64], k: usize, q0: usize, rows: usize| {
            for (j, row) in b.iter_mut().enumerate() {
                let s = 8 * k + j;
                if s >= members {
                    *row = [0; 8];
                } else if rows == 8 {
                    *row = v[s * g + q0..][..8].try_into().expect("eight words");
                } else {
                    row[..rows].copy_from_slice(&v[s * g + q0..][..rows]);
                }
            }
        };
        let (mut bx, mut by, mut bc) = ([[0u64; 8]; 8], [[0u64; 8]; 8], [[0u64; 8]; 8]);
        for q0 in (0..g).step_by(8) {
            let rows = (g - q0).min(8);
            for k in 0..chunks {
                block(&mut bx, &self.lw, k, q0, rows);
                block(&mut by, &self.rw, k, q0, rows);
                block(&mut bc, &weights, k, q0, rows);
                for dq in 0..rows {
                    let q = q0 + dq;
                    let xs: [u64; 8] = std::array::from_fn(|j| bx[j][dq]);
                    let ys: [u64; 8] = std::array::from_fn(|j| by[j][dq]);
                    // Eight zero words add nothing (index 0 looks up 0): a verifier's shares
                    // are zero for one of each AND word's two terms, or both.
                    if xs.iter().any(|&v| v != 0) {
                        // l's tables change with every group (its weights do).
                        let cl: [u64; 8] = std::array::from_fn(|j| bc[j][dq]);
                        let (low_l, high_l) = (nibble_sums(&cl[..4]), nibble_sums(&cl[4..]));
                        let lq = &mut l[64 * q..64 * (q + 1)];
                        musket_ring::xor_nibble_lookups(lq, &musket_ring::lane_bytes(&xs), &low_l, &high_l);
                    }
                    if ys.iter().any(|&v| v != 0) {
                        let (low_r, high_r) = &tables_r[k];
                        let rq = &mut r[64 * q..64 * (q + 1)];
                        musket_ring::xor_nibble_lookups(rq, &musket_ring::lane_bytes(&ys), low_r, high_r);
                    }
                }
            }
            for rq in r[64 * q0..64 * (q0 + rows)].chunks_exact_mut(64) {
                musket_ring::gf64_times_x_lanes(rq.try_into().expect("64 lanes"));
            }
        }
        (l.into_iter().map(Gf64).collect(), r.into_iter().map(Gf64).collect())
    }
}

/// `t[i]` = XOR of `c[s]` over the bits `s` set in `i`, for four members.
fn nibble_sums(c: &[u64]) -> [u64; 16] {
    let mut t = [0u64; 16];
    for i in 1..16usize {
        t[i] = t[i & (i - 1)] ^ c[i.trailing_zeros() as usize];
    }
    t
}

/// The weighted claim `sum_i rho_i field(c_i)` of claim words `c` (a verifier's share).
pub fn packed_claim(rho: &[u64], c: &[u64]) -> Gf64 {
    Gf64(reduce(musket_ring::clmul_dot(rho, c)))
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
                claims.level(h, t);
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
    use crate::dzkp::accepts;
    use crate::ext::Gr64;
    use crate::Prg;

    /// The plain vectors of word terms (what the packed form stands for).
    fn plain_vectors(lw: &[u64], rw: &[u64], rho: &[u64]) -> (Vec<Gf64>, Vec<Gf64>) {
        let mut l = Vec::new();
        let mut r = Vec::new();
        for ((x, y), w) in lw.iter().zip(rw).zip(rho) {
            for b in 0..64 {
                let xb = (x >> b) & 1;
                // The written-out form puts the lane weight X^b on r.
                l.push(Gf64(*w).mul_base(xb));
                r.push(Gf64(1u64 << b).mul_base((y >> b) & 1));
            }
        }
        (l, r)
    }

    fn words(n: usize, prg: &mut Prg) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
        (prg.words(n), prg.words(n), prg.words(n))
    }

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
    fn packed_levels_and_the_written_out_vectors_match_the_plain_proof() {
        let mut prg = Prg::from_seed([7; 16]);
        for n in [1usize, 2, 3, 8, 13, 64] {
            let (lw, rw, rho) = words(n, &mut prg);
            let (l, r) = plain_vectors(&lw, &rw, &rho);
            let len = n.next_power_of_two();
            let (l, r) = padded(l, r, 64 * len);
            same_as_plain(PackedWords::new(lw, rw, rho, len), l, r, &mut prg);
        }
    }

    /// A sixth packed level is taken only where it costs no level of the proof (so no
    /// round), and then writes out half as many elements.
    #[test]
    fn a_sixth_packed_level_for_bits_costs_no_round() {
        for log_words in 0..20 {
            let words = 1usize << log_words;
            let with = |p: usize| arity_schedule(64 * words, p.min(log_words)).len();
            assert_eq!(with(packed_levels_bits(words)), with(PACKED_LEVELS_BITS), "{words} words");
            let packed = PackedWords::new(vec![0; words], vec![0; words], vec![0; words], words);
            assert_eq!(packed.members().packed_left, packed_levels_bits(words).min(log_words));
        }
        assert_eq!(packed_levels_bits(1 << 16), 6, "a full batch of 2^22 bit terms");
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

    /// Operands with zeros where a verifier's shares have them (every other AND word's
    /// term, whole regions of blocks): the written-out vectors skip them and still match.
    #[test]
    fn zero_operands_are_skipped_exactly() {
        let mut prg = Prg::from_seed([12; 16]);
        // Words: l zero at odd terms, r zero at every third and over a whole stretch.
        let n = 4096;
        let (mut lw, mut rw, rho) = words(n, &mut prg);
        for (i, (x, y)) in lw.iter_mut().zip(rw.iter_mut()).enumerate() {
            if i % 2 == 1 {
                *x = 0;
            }
            if i % 3 == 0 || (1000..3000).contains(&i) {
                *y = 0;
            }
        }
        let (l, r) = plain_vectors(&lw, &rw, &rho);
        same_as_plain(PackedWords::new(lw, rw, rho, n), l, r, &mut prg);
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

    /// One packed proof with XOR-split word terms; `error` is added to the claim.
    fn run(n: usize, seed: u8, error: u64, tamper_level: Option<usize>) -> bool {
        let mut prg = Prg::from_seed([seed; 16]);
        let (lw, rw, rho) = words(n, &mut prg);
        let claim = Gf64(reduce(musket_ring::clmul_dot_and(&rho, &lw, &rw)) ^ error);
        let (la, ra) = (prg.words(n), prg.words(n));
        let lb: Vec<u64> = lw.iter().zip(&la).map(|(x, a)| x ^ a).collect();
        let rb: Vec<u64> = rw.iter().zip(&ra).map(|(x, a)| x ^ a).collect();
        let ca = Gf64::random(&mut prg);
        let len = n.next_power_of_two();
        let mut prover = PackedProver::new(PackedWords::new(lw, rw, rho.clone(), len));
        let mut va: Box<dyn VerifierSteps<Gf64>> =
            Box::new(PackedVerifier::new(PackedWords::new(la, ra, rho.clone(), len), ca));
        let mut vb: Box<dyn VerifierSteps<Gf64>> =
            Box::new(PackedVerifier::new(PackedWords::new(lb, rb, rho, len), claim.add(ca)));
        for lvl in 0..prover.levels() {
            let mut h = prover.level();
            if tamper_level == Some(lvl) {
                h[1] = h[1].add(Gf64(1));
            }
            let sa: Vec<Gf64> = (0..h.len()).map(|_| Gf64::random(&mut prg)).collect();
            let sb: Vec<Gf64> = h.iter().zip(&sa).map(|(x, s)| x.add(*s)).collect();
            let t = Gf64::challenge(&mut prg);
            va.level(&sa, t);
            vb.level(&sb, t);
            prover.fold(t);
        }
        let m = prover.last(Gf64::random(&mut prg), Gf64::random(&mut prg));
        let sa: Vec<Gf64> = (0..5).map(|_| Gf64::random(&mut prg)).collect();
        let sb: Vec<Gf64> = m.iter().zip(&sa).map(|(x, s)| x.add(*s)).collect();
        let t = Gf64::challenge(&mut prg);
        let oa = va.last(&[sa[0], sa[1], sa[2], sa[3], sa[4]], t);
        let ob = vb.last(&[sb[0], sb[1], sb[2], sb[3], sb[4]], t);
        accepts(&oa, &ob)
    }

    #[test]
    fn packed_proofs_are_complete_and_sound() {
        for (n, seed) in [(1, 1), (2, 2), (5, 3), (16, 4), (33, 5)] {
            assert!(run(n, seed, 0, None), "honest packed proof of {n} words rejected");
            assert!(!run(n, seed, 1, None), "false claim accepted ({n} words)");
            assert!(!run(n, seed, 1 << 63, None), "false claim accepted ({n} words)");
            let len = n.next_power_of_two();
            let levels =
                PackedProver::new(PackedWords::new(vec![0; n], vec![0; n], vec![0; n], len)).levels();
            assert!(levels >= 3);
            for lvl in 0..levels {
                assert!(!run(n, seed, 0, Some(lvl)), "tampered level {lvl} accepted ({n} words)");
            }
        }
    }

    #[test]
    fn nibble_tables_hold_the_subset_sums() {
        let mut prg = Prg::from_seed([3; 16]);
        let c: [u64; 4] = prg.words(4).try_into().unwrap();
        let t = nibble_sums(&c);
        assert_eq!(t[0b1101], c[0] ^ c[2] ^ c[3]);
        assert_eq!(t[0], 0);
    }

    #[test]
    fn the_weighted_claim_is_the_sum_of_weighted_bits() {
        let mut prg = Prg::from_seed([9; 16]);
        let (c, _, rho) = words(40, &mut prg);
        let mut want = Gf64(0);
        for (w, r) in c.iter().zip(&rho) {
            for b in 0..64 {
                want = want.add(Gf64(*r).mul(Gf64(1u64 << b)).mul_base((w >> b) & 1));
            }
        }
        assert_eq!(packed_claim(&rho, &c), want);
        // A single flipped bit anywhere changes it (the weights are nonzero here).
        for (w, b) in [(0, 0), (17, 63), (39, 31)] {
            let mut bad = c.clone();
            bad[w] ^= 1 << b;
            assert_ne!(packed_claim(&rho, &bad), want);
        }
    }
}
