//! The first levels of the binary-field proof on whole words: AND gates come 64 to a word,
//! and the first folds of [`crate::dzkp`] can be computed with one carry-less product per
//! word instead of field operations per bit.
//!
//! **Statement.** A batch is a list of *word terms* `(x_w, y_w)` with weights `rho_w`; the
//! inner product to prove is over the bits,
//! `sum_(w, b) (rho_w X^b x_(w,b)) y_(w,b) = claim`, i.e. the plain proof's vectors would be
//! `l_(64 w + b) = rho_w X^b x_(w,b)` and `r_(64 w + b) = y_(w,b)`. The weight of bit `b` of
//! word `w` is `rho_w X^b`, so an error word `e` contributes `rho_w field(e)`, where
//! `field(e)` reads the word's bits as the coefficients of a field element: nonzero for any
//! nonzero `e`. With uniform `rho_w`, errors in different words cancel with probability
//! `2^-64`, the same bound as independent weights per bit.
//!
//! **Packed folds.** Folding the top variables (the word index) first keeps both vectors in
//! the form, for `G` groups and members `s`,
//! `l_(q,b) = X^b sum_s c_s rho_(sG+q) x_(sG+q,b)` and `r_(q,b) = sum_s c_s y_(sG+q,b)`,
//! where the member coefficients `c_s` are products of `1 + t` and `t` over the challenges so
//! far, the same for every group. A level's inner products are then sums over members of
//! `c_s c_u sum_q rho ⊗ (x AND y)`: the AND of two words read as a field element carries the
//! sum over its 64 bits of `X^b x_b y_b`. After [`PACKED_LEVELS`] levels (or fewer for a
//! small batch) the vectors are written out element by element, eight times shorter than
//! the plain proof's, and the plain proof continues. Messages, rounds and soundness are the
//! plain proof's: only the prover's arithmetic and the verifiers' folds change.

use crate::dzkp::{ClaimShares, FinalPoly, LevelPoly, Opening, Prover, ProverSteps, Verifier, VerifierSteps};
use crate::ext::{reduce, Ext, Gf64};

/// Levels run on words before the vectors are written out: level `j` costs `2^(j+1)`
/// carry-less products per word term, writing out costs about one masked XOR per bit, and
/// each level packed halves what the plain proof folds.
pub const PACKED_LEVELS: usize = 3;

/// Word terms folded over their top variables (see the module documentation).
#[derive(Debug)]
pub struct PackedWords {
    lw: Vec<u64>,
    rw: Vec<u64>,
    rho: Vec<u64>,
    coef: Vec<Gf64>,
    groups: usize,
    packed_left: usize,
}

impl PackedWords {
    /// Word terms `(lw_i, rw_i)` with weights `rho_i`, zero-padded to `len` terms (rounded up
    /// to a power of two): every party's statement of a batch must fold in step.
    pub fn new(mut lw: Vec<u64>, mut rw: Vec<u64>, mut rho: Vec<u64>, len: usize) -> Self {
        let n = len.max(lw.len()).max(1).next_power_of_two();
        lw.resize(n, 0);
        rw.resize(n, 0);
        rho.resize(n, 0);
        let packed_left = PACKED_LEVELS.min(n.trailing_zeros() as usize);
        Self { lw, rw, rho, coef: vec![Gf64(1)], groups: n, packed_left }
    }

    /// Folding levels of the whole proof: one per variable of the bit vectors.
    pub fn levels(&self) -> usize {
        6 + self.groups.trailing_zeros() as usize
    }

    /// This level's polynomial `(h0, h1, h2)` (only while packed levels are left).
    pub fn level(&self) -> LevelPoly<Gf64> {
        let g = self.groups;
        let half = g / 2;
        let (mut h0, mut h11, mut h2) = (Gf64(0), Gf64(0), Gf64(0));
        let dot = |w: &[u64], x: &[u64], y: &[u64]| Gf64(reduce(musket_ring::clmul_dot_and(w, x, y)));
        for (s, cs) in self.coef.iter().enumerate() {
            let x = &self.lw[s * g..(s + 1) * g];
            let rho = &self.rho[s * g..(s + 1) * g];
            for (u, cu) in self.coef.iter().enumerate() {
                let y = &self.rw[u * g..(u + 1) * g];
                let c = cs.mul(*cu);
                let d00 = dot(&rho[..half], &x[..half], &y[..half]);
                let d11 = dot(&rho[half..], &x[half..], &y[half..]);
                let e01 = dot(&rho[..half], &x[..half], &y[half..]);
                let e10 = dot(&rho[half..], &x[half..], &y[..half]);
                h0 = h0.add(c.mul(d00));
                h11 = h11.add(c.mul(d11));
                // <a0 + a1, b0 + b1>: the groups' sums share their member coefficients.
                h2 = h2.add(c.mul(d00.add(d11).add(e01).add(e10)));
            }
        }
        [h0, h11.add(h0).add(h2), h2]
    }

    /// Folds the top variable at `t`; returns true when no packed level is left (call
    /// [`PackedWords::expand`] then).
    pub fn fold(&mut self, t: Gf64) -> bool {
        let lo = Gf64(1).add(t);
        self.coef = self.coef.iter().flat_map(|c| [c.mul(lo), c.mul(t)]).collect();
        self.groups /= 2;
        self.packed_left -= 1;
        self.packed_left == 0
    }

    /// True when the vectors should be written out before the next level.
    pub fn expanded_now(&self) -> bool {
        self.packed_left == 0
    }

    /// The folded vectors, element by element (`64 G` each).
    pub fn expand(&self) -> (Vec<Gf64>, Vec<Gf64>) {
        let g = self.groups;
        let (mut l, mut r) = (Vec::with_capacity(64 * g), Vec::with_capacity(64 * g));
        for q in 0..g {
            let (mut accl, mut accr) = ([0u64; 64], [0u64; 64]);
            for (s, c) in self.coef.iter().enumerate() {
                let w = s * g + q;
                let cl = reduce(musket_ring::clmul(c.0, self.rho[w]));
                let (x, y) = (self.lw[w], self.rw[w]);
                for b in 0..64 {
                    accl[b] ^= cl & 0u64.wrapping_sub((x >> b) & 1);
                    accr[b] ^= c.0 & 0u64.wrapping_sub((y >> b) & 1);
                }
            }
            l.extend(accl.iter().enumerate().map(|(b, v)| Gf64(reduce((*v as u128) << b))));
            r.extend(accr.iter().map(|v| Gf64(*v)));
        }
        (l, r)
    }
}

/// The weighted claim `sum_i rho_i field(c_i)` of claim words `c` (a verifier's share).
pub fn packed_claim(rho: &[u64], c: &[u64]) -> Gf64 {
    Gf64(reduce(musket_ring::clmul_dot(rho, c)))
}

/// The prover of a packed statement: packed levels, then the plain [`Prover`].
#[derive(Debug)]
pub struct PackedProver {
    words: PackedWords,
    plain: Option<Prover<Gf64>>,
    levels: usize,
}

impl PackedProver {
    /// The prover of `words`.
    pub fn new(words: PackedWords) -> Self {
        let levels = words.levels();
        let mut p = Self { words, plain: None, levels };
        p.expand_if_done();
        p
    }
    fn expand_if_done(&mut self) {
        if self.plain.is_none() && self.words.expanded_now() {
            let (l, r) = self.words.expand();
            let len = l.len();
            self.plain = Some(Prover::new(l, r, len));
            self.words = PackedWords::new(Vec::new(), Vec::new(), Vec::new(), 0);
        }
    }
}

impl ProverSteps<Gf64> for PackedProver {
    fn levels(&self) -> usize {
        self.levels
    }
    fn level(&mut self) -> LevelPoly<Gf64> {
        match &self.plain {
            Some(p) => p.level(),
            None => self.words.level(),
        }
    }
    fn fold(&mut self, t: Gf64) {
        match &mut self.plain {
            Some(p) => p.fold(t),
            None => {
                self.words.fold(t);
                self.expand_if_done();
            }
        }
    }
    fn last(&mut self, p: Gf64, q: Gf64) -> FinalPoly<Gf64> {
        self.plain.as_ref().expect("the packed levels end before the last message").last(p, q)
    }
}

/// A verifier of a packed statement: its shares of the word terms, folded the same way.
#[derive(Debug)]
pub struct PackedVerifier {
    words: PackedWords,
    claims: Option<ClaimShares<Gf64>>,
    plain: Option<Verifier<Gf64>>,
}

impl PackedVerifier {
    /// A verifier holding shares `words` of the word terms and `claim` of the claim.
    pub fn new(words: PackedWords, claim: Gf64) -> Self {
        let mut v = Self { words, claims: Some(ClaimShares::new(claim)), plain: None };
        v.expand_if_done();
        v
    }
    fn expand_if_done(&mut self) {
        if self.plain.is_none() && self.words.expanded_now() {
            let (l, r) = self.words.expand();
            let claims = self.claims.take().expect("claims are kept until the vectors are written out");
            self.plain = Some(Verifier::resume(l, r, claims));
            self.words = PackedWords::new(Vec::new(), Vec::new(), Vec::new(), 0);
        }
    }
}

impl VerifierSteps<Gf64> for PackedVerifier {
    fn level(&mut self, h: &LevelPoly<Gf64>, t: Gf64) {
        match &mut self.plain {
            Some(v) => v.level(h, t),
            None => {
                self.claims.as_mut().expect("claims are kept while packed").level(h, t);
                self.words.fold(t);
                self.expand_if_done();
            }
        }
    }
    fn last(self: Box<Self>, m: &FinalPoly<Gf64>, t: Gf64) -> Opening<Gf64> {
        self.plain.expect("the packed levels end before the last message").last(m, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dzkp::accepts;
    use crate::Prg;

    /// The plain vectors of word terms (what the packed form stands for).
    fn plain_vectors(lw: &[u64], rw: &[u64], rho: &[u64]) -> (Vec<Gf64>, Vec<Gf64>) {
        let mut l = Vec::new();
        let mut r = Vec::new();
        for ((x, y), w) in lw.iter().zip(rw).zip(rho) {
            for b in 0..64 {
                let xb = (x >> b) & 1;
                l.push(Gf64(*w).mul(Gf64(1u64 << b)).mul_base(xb));
                r.push(Gf64((y >> b) & 1));
            }
        }
        (l, r)
    }

    fn words(n: usize, prg: &mut Prg) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
        (prg.words(n), prg.words(n), prg.words(n))
    }

    #[test]
    fn packed_levels_and_the_written_out_vectors_match_the_plain_proof() {
        let mut prg = Prg::from_seed([7; 16]);
        for n in [1usize, 2, 3, 8, 13, 64] {
            let (lw, rw, rho) = words(n, &mut prg);
            let len = n.next_power_of_two();
            let (l, r) = plain_vectors(&lw, &rw, &rho);
            let mut plain = Prover::new(l, r, 64 * len);
            let mut packed = PackedProver::new(PackedWords::new(lw.clone(), rw.clone(), rho.clone(), len));
            assert_eq!(ProverSteps::levels(&packed), plain.levels(), "n = {n}");
            for _ in 0..plain.levels() {
                assert_eq!(ProverSteps::level(&mut packed), plain.level(), "n = {n}");
                let t = Gf64::challenge(&mut prg);
                ProverSteps::fold(&mut packed, t);
                plain.fold(t);
            }
            let (p, q) = (Gf64::random(&mut prg), Gf64::random(&mut prg));
            assert_eq!(ProverSteps::last(&mut packed, p, q), plain.last(p, q));
        }
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
            let sa: Vec<Gf64> = (0..3).map(|_| Gf64::random(&mut prg)).collect();
            let t = Gf64::challenge(&mut prg);
            va.level(&[sa[0], sa[1], sa[2]], t);
            vb.level(&[h[0].add(sa[0]), h[1].add(sa[1]), h[2].add(sa[2])], t);
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
            for lvl in 0..4 {
                assert!(!run(n, seed, 0, Some(lvl)), "tampered level {lvl} accepted ({n} words)");
            }
        }
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
