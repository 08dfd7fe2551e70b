//! AND words in packed form: [`PackedWords`], and their weights [`WordWeights`].
//!
//! **Weights.** A statement of `n` words (a power of two) whose first `L` levels are packed
//! weighs word `w` by `eq(tau, top(w)) rho(low(w))`: `top(w)` its top `L` bits, `low(w)` the
//! rest, `rho` a uniform element per low index and `tau` one per packed level, with
//! `eq(tau, t) = prod_k (tau_k if bit k of t else 1 - tau_k)` (bit 0 the most significant).
//! Errors `E_w` (nonzero words) survive the combination `sum_w weight_w E_w` only if, for the
//! rows `F_t = sum_low rho_low E_(t, low)`, either every row with an error sums to zero under
//! `rho` (probability at most `2^-64`) or the multilinear polynomial `sum_t eq(tau, t) F_t`
//! vanishes at `tau` (at most `L / 2^64`, Schwartz–Zippel): `(L + 1) / 2^64` in all, against
//! `1 / 2^64` for independent weights per word (until the nineteenth session).
//!
//! **Levels.** With the top variables weighted by `eq`, a packed level proves the sum-check
//! of `eq(tau, .) x y` in Gruen's form: level `j` sends the quadratic
//! `q_j(X) = sum_(q') eq(tau_(>j), top(q')) rho(low(q')) P(x(r, X, q') * y(r, X, q'))`, where
//! `r` are the challenges so far, `x(r, X, q')` the members' words combined at `r` (the
//! multilinear extension) and `P` packs a word's 64 bit products with lane weights `X^b`;
//! the verifiers check `(1 - tau_j) q_j(0) + tau_j q_j(1)` against the claim (instead of
//! `q(0) + q(1)`) and continue with `q_j(t)`. After the `L` levels the claim is about
//! `sum_q rho_q P(x(r, q) * y(r, q))`, the plain proof's form, written out. Because `x` and
//! `y` are then evaluated at the same point, the product `x(r) y(r)` is a polynomial of
//! degree two in each challenge, fixed by its values on `{0, 1, inf}^j` (Bagad, Dao, Domb,
//! Thaler, "Speeding up sum-check proving", 2025): level `j` forms `3^(j+1)` weighted sums
//! of AND words over the extended points (values at `inf` are XORs of bit words, still bit
//! words) and combines them with the Lagrange weights of `r`, where every pair of members
//! took `4^(j+1)` (`2^(j+1)` carry-less products per word, against `1.5^(j+1)`).

use super::{eq_table, level_from_points, Members, Packed};
use crate::dzkp::LevelPoly;
use crate::ext::{reduce, Ext, Gf64};
use crate::{par, Prg};

/// Words a core takes at least in a level (about 64 KiB of each operand's members).
const MIN_WORDS_PER_THREAD: usize = 1 << 10;

/// The weights of a packed binary statement (module documentation): `rho` per low index,
/// `tau` per packed level.
#[derive(Debug, Clone, PartialEq)]
pub struct WordWeights {
    rho: Vec<u64>,
    tau: Vec<Gf64>,
}

impl WordWeights {
    /// The weights of a statement of `words` word terms (padded to a power of two, as
    /// [`PackedWords::new`] pads), drawn from `prg`: every party building the same statement
    /// draws the same ones.
    pub fn draw(words: usize, prg: &mut Prg) -> Self {
        let n = words.max(1).next_power_of_two();
        let levels = super::packed_levels_bits(n).min(n.trailing_zeros() as usize);
        let rho = prg.words(n >> levels);
        let tau = (0..levels).map(|_| Gf64::random(prg)).collect();
        Self { rho, tau }
    }

    /// Word terms the weights are for (a power of two).
    fn words(&self) -> usize {
        self.rho.len() << self.tau.len()
    }

    /// The weighted claim `sum_w weight_w field(c_w)` of claim words `c` (a verifier's share;
    /// words past its end are zero).
    pub fn claim(&self, c: &[u64]) -> Gf64 {
        debug_assert!(c.len() <= self.words(), "claim words past the statement");
        let low = self.rho.len();
        eq_table(&self.tau).iter().zip(c.chunks(low)).fold(Gf64(0), |acc, (e, part)| {
            acc.add(e.mul(Gf64(reduce(musket_ring::clmul_dot(&self.rho, part)))))
        })
    }

    /// The weight of word `w` (tests; the claim and the levels never form it).
    #[cfg(test)]
    pub(crate) fn weight(&self, w: usize) -> Gf64 {
        let low = self.rho.len();
        eq_table(&self.tau)[w / low].mul(Gf64(self.rho[w % low]))
    }
}

/// Word terms folded over their top variables (module documentation).
#[derive(Debug)]
pub struct PackedWords {
    lw: Vec<u64>,
    rw: Vec<u64>,
    weights: WordWeights,
    /// The challenges of the levels so far.
    challenges: Vec<Gf64>,
    /// Words past this are zero in `lw` or in `rw` (the padding): their products are zero at
    /// every point, so levels skip them.
    live_end: usize,
    m: Members<Gf64>,
}

impl PackedWords {
    /// Word terms `(lw_i, rw_i)`, zero-padded to `len` terms (rounded up to a power of two):
    /// every party's statement of a batch must fold in step.
    ///
    /// # Panics
    /// If `weights` were drawn for another padded length.
    pub fn new(mut lw: Vec<u64>, mut rw: Vec<u64>, weights: WordWeights, len: usize) -> Self {
        let n = len.max(lw.len()).max(1).next_power_of_two();
        assert_eq!(weights.words(), n, "word weights drawn for another length");
        // The padding, by length: where the terms end is the protocol's structure, which every
        // party knows (scanning for the last nonzero word would make the prover's time depend
        // on its values).
        let live_end = lw.len().min(rw.len());
        lw.resize(n, 0);
        rw.resize(n, 0);
        let m = Members::new(n, weights.tau.len());
        Self { lw, rw, weights, challenges: Vec::new(), live_end, m }
    }

    /// The weights `eq(tau_(from..), top(q)) rho(low(q))` of the `rho.len() << (L - from)`
    /// groups whose top variables from `from` on are not folded yet: the low half's groups
    /// at level `from - 1`, or every group once `from` levels are folded.
    fn group_weights(&self, from: usize) -> Vec<u64> {
        let low = self.weights.rho.len();
        let eq = eq_table(&self.weights.tau[from..]);
        let mut out = vec![0u64; low * eq.len()];
        for (part, e) in out.chunks_exact_mut(low).zip(eq) {
            // `part` is zero: the fold `part ^= e (part ^ rho)` writes `e rho`.
            musket_ring::gf64_fold_into(part, &self.weights.rho, e.0);
        }
        out
    }

    /// The level's coefficients from the sums over the extended points (module
    /// documentation); given the claim it splits, without the sums whose last digit is 1.
    fn level_from_sums(&self, claim: Option<Gf64>) -> LevelPoly<Gf64> {
        let j = self.challenges.len();
        let g = self.m.groups;
        let half = g / 2;
        let corners = 2usize << j;
        let points = 3usize.pow(j as u32 + 1);
        let weights = self.group_weights(j + 1);
        debug_assert_eq!(weights.len(), half);
        // A low-half group past the live end has every corner past it.
        let live = self.live_end.min(half);
        let sums = par::map_ranges(live, MIN_WORDS_PER_THREAD, |range| {
            let mut acc = vec![0u128; points];
            if range.is_empty() {
                return acc;
            }
            let (xs, ys) =
                (corner_rows(&self.lw, corners, g, &range), corner_rows(&self.rw, corners, g, &range));
            musket_ring::clmul_dot_and_extended(&weights[range.clone()], &xs, &ys, claim.is_some(), &mut acc);
            acc
        });
        let mut total = vec![0u128; points];
        for part in sums {
            for (t, p) in total.iter_mut().zip(part) {
                *t ^= p;
            }
        }
        // The last digit is X: q(X) = sum_v lagrange_v(r) sum at (v, X).
        let total: Vec<Gf64> = total.into_iter().map(|s| Gf64(reduce(s))).collect();
        let given = claim.map(|c| (c, self.weights.tau[j]));
        level_from_points(&self.challenges, &total, given)
    }
}

impl Packed<Gf64> for PackedWords {
    fn members(&self) -> &Members<Gf64> {
        &self.m
    }

    fn members_mut(&mut self) -> &mut Members<Gf64> {
        &mut self.m
    }

    /// `(q(0), q(1), q(inf))` from the sums over the extended points (module documentation),
    /// as coefficients.
    fn level(&self) -> LevelPoly<Gf64> {
        self.level_from_sums(None)
    }

    /// Without the sums at points whose last digit is 1: `q(1)` from the claim.
    fn level_given(&self, claim: Gf64) -> LevelPoly<Gf64> {
        self.level_from_sums(Some(claim))
    }

    fn level_weight(&self) -> Option<Gf64> {
        Some(self.weights.tau[self.challenges.len()])
    }

    fn fold(&mut self, t: Gf64) {
        self.challenges.push(t);
        self.m.fold(t);
    }

    /// By tables: the bits of lane `b` across eight members form one byte, whose two nibbles
    /// index tables of the sums of four members' coefficients (sixteen entries each, two
    /// vector registers: one permutation or byte shuffle looks up many lanes, `musket_ring::xor_member_lookups`
    /// a group's lanes from all its chunks of eight members); a lane's value is the XOR of two
    /// lookups per eight members. The coefficients are the
    /// same for every group and both sides, so the tables are built once; `l` is then
    /// weighted by its group's weight, `r` by the lane weights `X^b`. (Written out after
    /// every packed level a group's weight is its `rho`; before, the claim still weighs the
    /// top variables not folded by `eq`, so the weights do too.)
    fn expand(self) -> (Vec<Gf64>, Vec<Gf64>) {
        let g = self.m.groups;
        let group_weights = self.group_weights(self.challenges.len());
        debug_assert_eq!(group_weights.len(), g);
        let members = self.m.coef.len();
        let chunks = members.div_ceil(8);
        let tables = musket_ring::MemberTables::new(musket_ring::gf64_words(&self.m.coef));
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
                    // Each member's words are a stream of their own (64 members, two sides: too
                    // many for the hardware's prefetchers, each line a miss): the line two
                    // blocks on asked for now.
                    musket_ring::prefetch(v, s * g + q0 + 16);
                } else {
                    row[..rows].copy_from_slice(&v[s * g + q0..][..rows]);
                }
            }
        };
        let (mut bx, mut by) = ([[0u64; 8]; 8], [[0u64; 8]; 8]);
        // Per group of the eight, its eight members' words of every chunk, then all the
        // chunks' lookups at once (`musket_ring::xor_member_lookups`: the lanes' sums stay in
        // registers; a call per chunk loaded and stored them each time).
        let mut xw = vec![vec![[0u64; 8]; chunks]; 8];
        let mut yw = vec![vec![[0u64; 8]; chunks]; 8];
        let mut lanes = [0u64; 64];
        for q0 in (0..g).step_by(8) {
            let rows = (g - q0).min(8);
            for k in 0..chunks {
                block(&mut bx, &self.lw, k, q0, rows);
                block(&mut by, &self.rw, k, q0, rows);
                for dq in 0..rows {
                    xw[dq][k] = std::array::from_fn(|j| bx[j][dq]);
                    yw[dq][k] = std::array::from_fn(|j| by[j][dq]);
                }
            }
            for dq in 0..rows {
                let q = q0 + dq;
                // Zero words add nothing (the padding, and wherever shares are zero by the
                // protocol's structure): a group with none leaves its lanes zero.
                let live = |w: &[[u64; 8]]| w.iter().any(|c| c.iter().any(|&v| v != 0));
                if live(&xw[dq]) {
                    lanes.fill(0);
                    musket_ring::xor_member_lookups(&mut lanes, &xw[dq], &tables);
                    // `l`'s lanes are zero: the fold `lq ^= w (lq ^ lanes)` writes `w lanes`.
                    musket_ring::gf64_fold_into(&mut l[64 * q..64 * (q + 1)], &lanes, group_weights[q]);
                }
                if live(&yw[dq]) {
                    let rq: &mut [u64; 64] = (&mut r[64 * q..64 * (q + 1)]).try_into().expect("64 lanes");
                    musket_ring::xor_member_lookups(rq, &yw[dq], &tables);
                    musket_ring::gf64_times_x_lanes(rq);
                }
            }
        }
        (l.into_iter().map(Gf64).collect(), r.into_iter().map(Gf64).collect())
    }
}

/// The `corners` rows of a level's words over `range` of the low half's groups: corner
/// `u = 2 s + X` is member `s`'s words in the low (`X = 0`) or the high half of its `g`
/// groups.
fn corner_rows<'a>(v: &'a [u64], corners: usize, g: usize, range: &std::ops::Range<usize>) -> Vec<&'a [u64]> {
    let half = g / 2;
    (0..corners).map(|u| &v[(u >> 1) * g + (u & 1) * half + range.start..][..range.len()]).collect()
}

#[cfg(test)]
mod tests;
