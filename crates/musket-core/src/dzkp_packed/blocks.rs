//! Ring blocks in packed form: [`PackedBlocks`], and their weights [`BlockWeights`].
//!
//! **Weights.** A statement of `n` blocks (a power of two) whose first `L` levels are packed
//! weighs gate `b` of block `w` by `eq(tau, top(w)) rho(low(w)) X^b`: `top(w)` the block
//! index's top `L` bits, `low(w)` the rest, `rho` per low index and `tau` per packed level,
//! all from the exceptional set (0/1 coefficients), `eq(tau, t) = prod_k (tau_k if bit k of
//! t else 1 - tau_k)` (bit 0 the most significant), as the AND words are weighted
//! ([`super::WordWeights`]). A block's errors add up to `E_w = sum_b e_(w,b) X^b`, nonzero
//! whenever one error is. They survive the combination only if, for the rows `F_t = sum_low
//! rho_low E_(t, low)`, every row with an error sums to zero under `rho` (at most `2^-64`:
//! reduced modulo 2 at the lowest power of 2 that divides some `E_w`, the combination is a
//! nonzero linear form over GF(2^64) in uniform `rho`) or the multilinear polynomial
//! `sum_t eq(tau, t) F_t` vanishes at `tau` (at most `L / 2^64`: Schwartz–Zippel over the
//! Galois ring, whose exceptional set's differences are units): `(L + 1) / 2^64` in all,
//! against `1 / 2^64` for a weight per block (until the twentieth session). An element's
//! products must therefore sit in one block each: a cross gate with two or more products in
//! a statement (planes sharing a weight) proves in plain form.
//!
//! **Levels.** As the AND words' ([`super::PackedWords`]): level `j` sends the quadratic
//! `q_j(X) = sum_(q') eq(tau_(>j), top(q')) rho(low(q')) P(x(r, X, q') * y(r, X, q'))`
//! (`P` packs a block's 64 products with lane weights `X^b`), the verifiers check
//! `(1 - tau_j) q_j(0) + tau_j q_j(1)` against the claim and go on with `q_j(t)`. With `x`
//! and `y` at the same point, their product is of degree two in each challenge, fixed by its
//! values on `{0, 1, inf}^(j+1)`, where `x` and `y` are still words of the base ring (at
//! `inf` the difference of two corners): level `j` is `3^(j+1)` sums of Hadamard products of
//! blocks weighted by the bits of `rho` ([`musket_ring::BitWeightedSums`], additions only)
//! per top value, then by `eq` and the challenges' Lagrange weights, that is `1.5^(j+1)`
//! bit-weighted rows per block, where the member pairs took `2^(j+1)` (until the twentieth
//! session, with a weight per block: the members' weights then differed, so that their
//! combinations were Galois-ring elements and a level's sums ran over pairs of members, or
//! from eight members lane by lane at about `3 * 64^2` word products per block).

use super::{
    eq_table, level_from_points, level_from_values, value_at_one, Members, Packed, PACKED_LEVELS_RING,
};
use crate::dzkp::LevelPoly;
use crate::ext::{gr64_words, gr64_words_mut, Ext, Gr64, EXT_DEGREE, REDUCTION_TAPS};
use crate::{par, Prg};
use musket_ring::{BitWeightedSums, PRODUCT_COEFFS};
mod points;
use points::{CornerSpan, InfRows};

/// Groups a core takes at least in a level (a bit-weighted row each per extended point: 64
/// KiB of every operand's corners), so that small batches stay on one core.
const MIN_LEVEL_GROUPS_PER_THREAD: usize = 128;
/// Groups a core writes out at least (three 64 x 64 products each).
const MIN_GROUPS_PER_THREAD: usize = 16;
/// From this many members on, a level is computed lane by lane
/// ([`PackedBlocks::level_by_lanes`], about `3 * 64^2` word products per block whatever the
/// members) rather than at the extended points (`1.5^(j+1)` bit-weighted rows per block at
/// level `j`, `2^j` members). For a batch of 2^14 blocks (`cargo run --release -p
/// musket-core --example ring_levels`, twentieth session, two threads) the extended points took 7 ms at
/// eight members, 11 at sixteen and 17.5 at thirty-two, the lanes about 7 from sixteen on
/// and 9 to 12 at eight; given the claim (one core), the extended points 9 ms at eight
/// members and 14 at sixteen, the lanes 14.5-15.7 at eight and 10.5 at sixteen.
const LANE_LEVEL_MEMBERS: usize = 16;
/// Groups whose rows go through the extended points together: each point's bit-weighted sum
/// of them is taken as it is made (its accumulators stay in L1), and the rows at `inf` of
/// every digit are written once per chunk. 32, 64 and 128 measured level (`ring_levels`,
/// one core); a larger chunk takes the sums less often.
const CHUNK_GROUPS: usize = 128;

/// The weights of a packed ring statement (module documentation): `rho` per low index (as
/// bit words: bit `c` the coefficient of `X^c`), `tau` per packed level.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockWeights {
    rho: Vec<u64>,
    tau: Vec<Gr64>,
}

impl BlockWeights {
    /// The weights of a statement of `blocks` blocks (padded to a power of two, as
    /// [`PackedBlocks::new`] pads), drawn from `prg`: every party building the same statement
    /// draws the same ones.
    pub fn draw(blocks: usize, prg: &mut Prg) -> Self {
        let n = blocks.max(1).next_power_of_two();
        let levels = PACKED_LEVELS_RING.min(n.trailing_zeros() as usize);
        let rho = prg.words(n >> levels);
        let tau = (0..levels).map(|_| Gr64::challenge(prg)).collect();
        Self { rho, tau }
    }

    /// Blocks the weights are for (a power of two).
    fn blocks(&self) -> usize {
        self.rho.len() << self.tau.len()
    }

    /// The weighted claim `sum_w weight_w P(c_w)` of claim words `c`, 64 a block (block `w`'s
    /// `P(c_w) = sum_b X^b c_(w,b)`; a verifier's share; blocks past its end are zero).
    ///
    /// # Panics
    /// If `c` is not whole blocks, or longer than the statement.
    pub fn claim(&self, c: &[u64]) -> Gr64 {
        assert!(
            c.len().is_multiple_of(EXT_DEGREE) && c.len() <= EXT_DEGREE * self.blocks(),
            "claim words: not whole blocks of the statement"
        );
        let low = self.rho.len();
        eq_table(&self.tau)
            .iter()
            .zip(c.chunks(EXT_DEGREE * low))
            .fold(Gr64::zero(), |acc, (e, part)| acc.add(e.mul(Gr64::dot_bits(&self.rho, part))))
    }

    /// The weight of block `w` (tests; the claim and the levels never form it).
    #[cfg(test)]
    pub(crate) fn weight(&self, w: usize) -> Gr64 {
        let low = self.rho.len();
        eq_table(&self.tau)[w / low].mul(Gr64::exceptional(self.rho[w % low]))
    }
}

/// Blocks of 64 elementwise products over Z_2^64 folded over their top variables (module
/// documentation): block `w` is `x[64 w..64 w + 64]`, `y[..]`.
#[derive(Debug)]
pub struct PackedBlocks {
    x: Vec<u64>,
    y: Vec<u64>,
    weights: BlockWeights,
    /// The challenges of the levels so far.
    challenges: Vec<Gr64>,
    m: Members<Gr64>,
    /// Blocks past these are zero in `x`, in `y` (the padding, at least): levels skip them.
    /// Folds leave the blocks in place, so the bounds hold at every level.
    x_end: usize,
    y_end: usize,
}

impl PackedBlocks {
    /// Blocks of products `x_i y_i` (lengths multiples of 64), zero-padded to `len` blocks
    /// (rounded up to a power of two): every party's statement of a batch must fold in step.
    ///
    /// # Panics
    /// If `weights` were drawn for another padded length.
    pub fn new(mut x: Vec<u64>, mut y: Vec<u64>, weights: BlockWeights, len: usize) -> Self {
        let n = len.max(x.len() / EXT_DEGREE).max(y.len() / EXT_DEGREE).max(1).next_power_of_two();
        assert_eq!(weights.blocks(), n, "block weights drawn for another length");
        x.resize(n * EXT_DEGREE, 0);
        y.resize(n * EXT_DEGREE, 0);
        let end = |v: &[u64]| v.iter().rposition(|&w| w != 0).map_or(0, |i| i / EXT_DEGREE + 1);
        let (x_end, y_end) = (end(&x), end(&y));
        let m = Members::new(n, weights.tau.len());
        Self { x, y, weights, challenges: Vec::new(), m, x_end, y_end }
    }

    /// Level `j`'s sums at the extended points `{0, 1, inf}^(j+1)`, `total[e]` (digit 0 of
    /// `e` on the first challenge, the last on the folded variable): per chunk of the low
    /// half's groups, the corners' rows (corner `u = 2 s + X`: member `s`'s blocks in the low,
    /// `X = 0`, or the high half) taken to every point ([`InfRows::visit`]), each point's
    /// Hadamard products summed weighted by the bits of `rho`; per top value, the sums
    /// weighted by its `eq`. With `skip_last_one`, the sums at points whose last digit is 1
    /// are left zero (not computed).
    fn point_sums(&self, skip_last_one: bool) -> Vec<Gr64> {
        let j = self.challenges.len();
        let (g, d) = (self.m.groups, EXT_DEGREE);
        let half = g / 2;
        let corners = 2usize << j;
        let points = 3usize.pow(j as u32 + 1);
        let low = self.weights.rho.len();
        let eq = eq_table(&self.weights.tau[j + 1..]);
        debug_assert_eq!(eq.len() * low, half);
        // A low-half group past either end has every corner past it: its products are zero.
        let live = self.x_end.min(self.y_end).min(half);
        let parts = par::map_ranges(live, MIN_LEVEL_GROUPS_PER_THREAD, |range| {
            let mut total = vec![Gr64::zero(); points];
            if range.is_empty() {
                return total;
            }
            let mut sums = BitWeightedSums::new(1);
            let mut at_points = vec![[0u64; PRODUCT_COEFFS]; points];
            let mut inf_rows = InfRows::new(j + 1, CHUNK_GROUPS * d);
            let mut start = range.start;
            while start < range.end {
                let top = start / low;
                let end = ((top + 1) * low).min(range.end);
                for c0 in (start..end).step_by(CHUNK_GROUPS) {
                    let c1 = (c0 + CHUNK_GROUPS).min(end);
                    let rho = &self.weights.rho[c0 % low..][..c1 - c0];
                    let span = CornerSpan { corners, g, half, from: c0, to: c1 };
                    let (xs, ys) = (span.rows(&self.x, self.x_end), span.rows(&self.y, self.y_end));
                    inf_rows.visit(&xs, &ys, skip_last_one, &mut |points, xe, ye| {
                        sums.add_hadamard_rows(0, rho, xe, ye);
                        let sum = sums.take_coefficients(0);
                        for &e in points {
                            for (a, v) in at_points[e].iter_mut().zip(sum) {
                                *a = a.wrapping_add(v);
                            }
                        }
                    });
                }
                for (t, acc) in total.iter_mut().zip(at_points.iter_mut()) {
                    let sum = Gr64::from_product_coefficients(std::mem::replace(acc, [0; PRODUCT_COEFFS]));
                    *t = t.add(eq[top].mul(sum));
                }
                start = end;
            }
            total
        });
        let mut total = vec![Gr64::zero(); points];
        for part in parts {
            for (t, p) in total.iter_mut().zip(part) {
                *t = t.add(p);
            }
        }
        total
    }

    /// The level lane by lane, with `r` written out one group at a time. With `W(q)` the
    /// weight of the low half's group `q` (the same for both halves), the inner product of
    /// the halves `A` (of `x`) and `B` (of `y`) is
    /// `sum_(q, b) W(q) X^b (sum_s c_s x_(s,qA,b)) R_(qB,b)` with `R_(q,b) = sum_u c_u
    /// y_(u,q,b)` (an element per lane: `r` written out), that is
    /// `sum_s c_s sum_q W(q) T_(s,q)` with `T_(s,q) = sum_b x_(s,qA,b) X^b R_(qB,b)`.
    /// Per pair of groups `q`, `q + G/2`: two products give `R` of both (the members' `y`
    /// times their coefficients), one the `T` of every member for the four pairs of halves;
    /// then, per member and pair of halves, `T` goes into a sum weighted by the bits of
    /// `rho(low(q))` (`musket_ring::BitWeightedSums`, additions only), reduced and weighted by
    /// `eq(top(q))` once per top value and by `c_s` once at the end. Per block: `R` `64^2`
    /// word products, `T` `2 * 64^2`, the sums about 300 vector additions, whatever the
    /// members, where the extended points take `1.5^(j+1)` bit-weighted rows (about 150
    /// vector additions each): from sixteen members on, lanes are cheaper
    /// ([`LANE_LEVEL_MEMBERS`]). Every operand of a group stays in cache (the strided kernel
    /// needs no packing). The sums at `(0, 0)`, `(1, 1)` and the cross pairs give `q(0)`,
    /// `q(1)` and `q(inf) = (x_1 - x_0)(y_1 - y_0)`.
    fn level_by_lanes(&self, claim: Option<Gr64>) -> LevelPoly<Gr64> {
        // Given the claim, only `q(0)` and `q(inf)`: the pairs of halves (0, 0) and
        // (inf, inf), `x_inf = x_1 - x_0` against `X^b (R_1 - R_0)`, half the products of `T`
        // and half the sums (`q(1)` from the claim, as at the extended points). Each half then
        // makes its own tiles' rows, so it takes whole tiles of members: otherwise (only a
        // test's four members) every pair is formed.
        let (g, d) = (self.m.groups, EXT_DEGREE);
        let members = self.m.coef.len();
        let half = g / 2;
        let low = self.weights.rho.len();
        let eq = eq_table(&self.weights.tau[self.challenges.len() + 1..]);
        debug_assert_eq!(eq.len() * low, half);
        // Members past the last nonzero block of x (of y) add nothing: the lanes take the
        // live ones only, whole tiles for x (two halves of four make a tile's rows, or one
        // half of eight given the claim).
        let tile = musket_ring::TILE.0;
        let live_x = self.x_end.div_ceil(g);
        let given = claim.is_some() && live_x.next_multiple_of(tile).min(members) % tile == 0;
        let per_member = if given { 2 } else { 4 };
        let mx = live_x.next_multiple_of(if given { tile } else { tile / 2 }).min(members);
        let my = self.y_end.div_ceil(g).min(members);
        if mx == 0 || my == 0 {
            return vec![Gr64::zero(); 3];
        }
        let coef = gr64_words(&self.m.coef);
        // Group pairs whose T are kept at once (2 MiB): a call of the sums' kernel loads and
        // stores its accumulators (32 KiB a sum), so it takes a member's rows of several pairs
        // (a quarter as many until the sixteenth session, when Karatsuba's 14 KiB were stored;
        // with the bit-weighted sums four times as many measured 5-10% faster, `cargo bench -p
        // musket-core --bench dzkp`).
        let batch = (1024 / mx).clamp(1, half);
        // Ranges of group pairs over the cores (see `crate::par`), each with its own sums,
        // added up at the end.
        let sums = par::map_ranges(half, batch, |pairs_range| {
            // Per member s, the sums of products `W(q) T_(s,q)` of the four pairs of halves
            // (sum 4 s + 2 A + B): bit-weighted by `rho` within a top value, then by its `eq`;
            // weighted by `c_s` once at the end, rather than each weight `c_s W(q)` formed.
            let mut sums = musket_ring::BitWeightedSums::new(per_member * mx);
            let mut weighted = vec![Gr64::zero(); per_member * mx];
            let mut r = vec![0u64; d * d];
            // Row b: X^b R_(q,b), then X^b R_(q+half,b).
            let mut lanes = vec![0u64; d * 2 * d];
            // Row b: x_(s,q,b) for every s, then x_(s,q+half,b).
            let mut xt = vec![0u64; d * 2 * mx];
            // A batch's T_(s,q) of halves A and B: rows (pair, A, s), columns (B, k); each
            // pair's product writes its own rows in place.
            let mut tt = vec![0u64; batch * 2 * mx * 2 * d];
            let mut start = pairs_range.start;
            while start < pairs_range.end {
                let top = start / low;
                let top_end = ((top + 1) * low).min(pairs_range.end);
                for q0 in (start..top_end).step_by(batch) {
                    let pairs = batch.min(top_end - q0);
                    for (k, q) in (q0..q0 + pairs).enumerate() {
                        let groups = [q, q + half];
                        for (bh, qb) in groups.into_iter().enumerate() {
                            r.fill(0);
                            musket_ring::matmul_tn_strided_add(
                                &self.y[qb * d..],
                                g * d,
                                coef,
                                d,
                                &mut r,
                                d,
                                (d, my, d),
                            );
                            musket_ring::rows_times_x_pows(&r, &REDUCTION_TAPS, &mut lanes[bh * d..], 2 * d);
                        }
                        for (ah, qa) in groups.into_iter().enumerate() {
                            for s in 0..mx {
                                let block = &self.x[(s * g + qa) * d..][..d];
                                for (b, v) in block.iter().enumerate() {
                                    xt[b * 2 * mx + ah * mx + s] = *v;
                                }
                            }
                        }
                        let pair_t = &mut tt[k * 2 * mx * 2 * d..][..2 * mx * 2 * d];
                        pair_t.fill(0);
                        if given {
                            // The high halves become the differences at `inf`.
                            for row in lanes.chunks_exact_mut(2 * d) {
                                let (lo, hi) = row.split_at_mut(d);
                                for (h, l) in hi.iter_mut().zip(lo.iter()) {
                                    *h = h.wrapping_sub(*l);
                                }
                            }
                            for row in xt.chunks_exact_mut(2 * mx) {
                                let (lo, hi) = row.split_at_mut(mx);
                                for (h, l) in hi.iter_mut().zip(lo.iter()) {
                                    *h = h.wrapping_sub(*l);
                                }
                            }
                            // T of (0, 0) at rows 0.., columns 0..; of (inf, inf) at rows mx..,
                            // columns d...
                            for half_at in [0, 1] {
                                musket_ring::matmul_tn_strided_add(
                                    &xt[half_at * mx..],
                                    2 * mx,
                                    &lanes[half_at * d..],
                                    2 * d,
                                    &mut pair_t[half_at * (mx * 2 * d + d)..],
                                    2 * d,
                                    (mx, d, d),
                                );
                            }
                        } else {
                            musket_ring::matmul_tn_strided_add(
                                &xt,
                                2 * mx,
                                &lanes,
                                2 * d,
                                pair_t,
                                2 * d,
                                (2 * mx, d, 2 * d),
                            );
                        }
                    }
                    let rho = &self.weights.rho[q0 % low..][..pairs];
                    for s in 0..mx {
                        // Pairs of halves (A, B): every one, or (0, 0) and (inf, inf).
                        let halves: &[(usize, usize)] =
                            if given { &[(0, 0), (1, 1)] } else { &[(0, 0), (0, 1), (1, 0), (1, 1)] };
                        for (i, &(ah, bh)) in halves.iter().enumerate() {
                            sums.add_rows(
                                per_member * s + i,
                                rho,
                                &tt[(ah * mx + s) * 2 * d + bh * d..],
                                2 * mx * 2 * d,
                            );
                        }
                    }
                }
                for (i, w) in weighted.iter_mut().enumerate() {
                    let sum = Gr64::from_product_coefficients(sums.take_coefficients(i));
                    *w = w.add(eq[top].mul(sum));
                }
                start = top_end;
            }
            weighted
        });
        let mut total = vec![Gr64::zero(); per_member * mx];
        for part in sums {
            for (t, p) in total.iter_mut().zip(part) {
                *t = t.add(p);
            }
        }
        let combined = |i: usize| {
            self.m.coef[..mx]
                .iter()
                .enumerate()
                .fold(Gr64::zero(), |acc, (s, c)| acc.add(c.mul(total[per_member * s + i])))
        };
        if let (true, Some(claim)) = (given, claim) {
            let (q0, q_inf) = (combined(0), combined(1));
            let tau = self.weights.tau[self.challenges.len()];
            return level_from_values(q0, value_at_one(claim, tau, q0), q_inf);
        }
        let [d00, e01, e10, d11] = std::array::from_fn(combined);
        level_from_values(d00, d11, d11.add(d00).sub(e01).sub(e10))
    }
}

impl Packed<Gr64> for PackedBlocks {
    fn members(&self) -> &Members<Gr64> {
        &self.m
    }

    fn members_mut(&mut self) -> &mut Members<Gr64> {
        &mut self.m
    }

    /// `(q(0), q(1), q(inf))` from the sums over the extended points (module documentation),
    /// as coefficients.
    fn level(&self) -> LevelPoly<Gr64> {
        if self.m.coef.len() >= LANE_LEVEL_MEMBERS {
            self.level_by_lanes(None)
        } else {
            level_from_points(&self.challenges, &self.point_sums(false), None)
        }
    }

    /// At the extended points, a third fewer sums: none whose last digit is 1; lane by lane,
    /// two pairs of halves of four (`q(1)` from the claim either way).
    fn level_given(&self, claim: Gr64) -> LevelPoly<Gr64> {
        if self.m.coef.len() >= LANE_LEVEL_MEMBERS {
            self.level_by_lanes(Some(claim))
        } else {
            let tau = self.weights.tau[self.challenges.len()];
            level_from_points(&self.challenges, &self.point_sums(true), Some((claim, tau)))
        }
    }

    fn level_weight(&self) -> Option<Gr64> {
        Some(self.weights.tau[self.challenges.len()])
    }

    fn fold(&mut self, t: Gr64) {
        self.challenges.push(t);
        self.m.fold(t);
    }

    /// As matrix products: lane `b`'s values across the members times the members'
    /// coefficients (and, for `l`, weights), then `X^b`. Members past the last nonzero block
    /// of a side add nothing and are left out: a verifier's shares are zero over whole
    /// regions (one of the two terms of every product, one side of every cross gate), and
    /// every statement over its padding, and those regions are the last members (products
    /// come first, cross planes after them, padding last). Each group's products read the
    /// members' blocks in place (rows strided by a member's span, the kernel the lane levels
    /// use): until the seventeenth session the live members' lanes were first copied out,
    /// transposed, per group, and multiplied by the general product, with its packing.
    fn expand(self) -> (Vec<Gr64>, Vec<Gr64>) {
        let (g, d) = (self.m.groups, EXT_DEGREE);
        let members = self.m.coef.len();
        let (mx, my) = (self.x_end.div_ceil(g).min(members), self.y_end.div_ceil(g).min(members));
        let coef = gr64_words(&self.m.coef[..my]);
        // Group q's weight is eq(tau_(from..), top(q)) rho(low(q)) for the `tau` not folded
        // yet (none once every packed level is: the protocol writes out then; the record
        // tests write out at once, when the claim still weighs every top variable by `eq`).
        // Member s's weights c_s eq_t rho_q for every group q = t low + i (top value t, low
        // index i): per top value t, the sums of the rows of the matrix of multiplication by
        // c_s eq_t that the bits of rho select (a product of the G x 64 matrix of the rho's
        // coefficients by it until the sixteenth session), copied a row at a time (collected
        // from a flat map, word by word through the iterator, they took a third of the
        // writing out). Laid out group by group, member s's row of group q at q mx + s, so
        // that each group's product reads them contiguously: member-major, a group's rows lay
        // a power of two of words apart, in the same cache sets (twenty-fourth session: a
        // group's 64 x 64 x 64 product 7.2-8.6 us -> 6.5-7.1 us at 256 groups, 5.3-5.7 us
        // with both operands contiguous, `cargo bench -p musket-ring --
        // strided_group_products`).
        let eq = eq_table(&self.weights.tau[self.challenges.len()..]);
        let low = self.weights.rho.len();
        debug_assert_eq!(eq.len() * low, g);
        let mut weighted = vec![0u64; mx * g * d];
        for s in 0..mx {
            for (t, e) in eq.iter().enumerate() {
                let rows =
                    musket_ring::select_rows_by_bits(&self.weights.rho, &self.m.coef[s].mul(*e).mul_matrix());
                for (i, row) in rows.chunks_exact(d).enumerate() {
                    let q = t * low + i;
                    weighted[(q * mx + s) * d..][..d].copy_from_slice(row);
                }
            }
        }
        // Ranges of groups over the cores (see `crate::par`), each writing its groups' 64
        // elements of `l` and `r` in place ([`gr64_words_mut`]): `r`'s accumulated into
        // zeroed memory, `l`'s shifted there from the product's scratch rows. (Copied from
        // scratch rows until the twenty-first session; until the twenty-third each range
        // wrote vectors of its own, which were then concatenated: a second copy of the
        // written-out vectors, into fresh pages.)
        let (mut l, mut r) = (zeroed_elements(d * g), zeroed_elements(d * g));
        par::for_ranges_mut(g, MIN_GROUPS_PER_THREAD, d, &mut l, &mut r, |groups, l, r| {
            let mut lq = vec![0u64; d * d];
            for (i, q) in groups.enumerate() {
                if mx > 0 {
                    lq.fill(0);
                    musket_ring::matmul_tn_strided_add(
                        &self.x[q * d..],
                        g * d,
                        &weighted[q * mx * d..],
                        d,
                        &mut lq,
                        d,
                        (d, mx, d),
                    );
                    musket_ring::rows_times_x_pows(&lq, &REDUCTION_TAPS, gr64_words_mut(&mut l[d * i..]), d);
                }
                if my > 0 {
                    let rq = gr64_words_mut(&mut r[d * i..d * (i + 1)]);
                    musket_ring::matmul_tn_strided_add(&self.y[q * d..], g * d, coef, d, rq, d, (d, my, d));
                }
            }
        });
        (l, r)
    }
}

/// `n` zero elements, from zeroed memory where the allocator has it (fresh pages need no
/// writing).
fn zeroed_elements(n: usize) -> Vec<Gr64> {
    use zerocopy::FromZeros;
    Gr64::new_vec_zeroed(n).unwrap_or_else(|_| {
        std::alloc::handle_alloc_error(std::alloc::Layout::array::<Gr64>(n).expect("a vector's layout"))
    })
}

#[cfg(test)]
mod tests;
