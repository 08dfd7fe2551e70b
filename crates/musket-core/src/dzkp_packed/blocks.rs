//! Ring blocks in packed form: [`PackedBlocks`].

use super::{level_from_pairs, Members, Packed, PACKED_LEVELS_RING};
use crate::dzkp::LevelPoly;
use crate::ext::{Ext, Gr64, EXT_DEGREE, REDUCTION_TAPS};
use crate::par;
use musket_ring::PRODUCT_COEFFS;

/// Blocks a core takes at least in a level by member pairs (a bit-weighted sum each: 64 KiB
/// of every operand), so that small batches stay on one core.
const MIN_BLOCKS_PER_THREAD: usize = 128;
/// Groups a core writes out at least (three 64 x 64 products each).
const MIN_GROUPS_PER_THREAD: usize = 16;

/// The sums of coefficient-polynomial products of several ranges, added up (wrapping):
/// the sums of the whole.
fn add_coefficient_sums(parts: Vec<Vec<[u64; PRODUCT_COEFFS]>>) -> Vec<[u64; PRODUCT_COEFFS]> {
    let mut parts = parts.into_iter();
    let mut total = parts.next().expect("at least one range");
    for part in parts {
        for (t, p) in total.iter_mut().zip(&part) {
            for (a, b) in t.iter_mut().zip(p) {
                *a = a.wrapping_add(*b);
            }
        }
    }
    total
}

/// From this many members on, a level is computed lane by lane
/// ([`PackedBlocks::level_by_lanes`], about `3 * 64^2` word products per block whatever the
/// members) rather than by member pairs (`2 M` Hadamard products and bit-weighted rows per
/// block for `M` members). The lanes' products need whole tiles of eight
/// member rows (two halves of four), and at four members their sums over the members (four
/// terms) are memory-bound: one level of a 2^14-block batch took about 50 ms by lanes against
/// 38 ms by pairs (and 40 against 76 at eight members), so lanes start at eight. With both
/// ways' sums by Karatsuba (ninth session), lanes from sixteen members measured level with
/// lanes from eight (296 and 288 ms for a batch of 2^14 blocks); with both ways' sums weighted
/// by bits (sixteenth session), lanes from sixteen took 81.5 ms against 66.5 from eight.
const LANE_LEVEL_MEMBERS: usize = 8;

/// Blocks of 64 elementwise products over Z_2^64 folded over their top variables (see the
/// module documentation): block `w` is `x[64 w..64 w + 64]`, `y[..]`, with weight `rho_w`
/// from the exceptional set.
#[derive(Debug)]
pub struct PackedBlocks {
    x: Vec<u64>,
    y: Vec<u64>,
    /// The blocks' weights, from the exceptional set, as bit words (bit `c` the coefficient
    /// of `X^c`), one per block: a 64th of their coefficient words (until the sixteenth
    /// session a third of a ring batch's proof state), and sums weighted by them are
    /// additions only ([`Gr64::dot_hadamard_bits`]).
    rho: Vec<u64>,
    m: Members<Gr64>,
    /// Blocks past these are zero in `x`, in `y` (the padding, at least): levels skip them.
    /// Folds leave the blocks in place, so the bounds hold at every level.
    x_end: usize,
    y_end: usize,
}

impl PackedBlocks {
    /// Blocks of products `x_i y_i` (lengths multiples of 64, one weight per block), zero-padded
    /// to `len` blocks (rounded up to a power of two).
    ///
    /// # Panics
    /// If a weight is not from the exceptional set (a coefficient other than 0 or 1).
    pub fn new(x: Vec<u64>, y: Vec<u64>, rho: Vec<Gr64>, len: usize) -> Self {
        let bits =
            rho.iter().map(|r| r.binary_bits().expect("block weights from the exceptional set")).collect();
        Self::from_bits(x, y, bits, len)
    }

    /// [`PackedBlocks::new`] with the weights as the bit words [`crate::ext::Ext::exceptional`]
    /// reads (bit `c` the coefficient of `X^c`), one per block, so that a caller can write
    /// every operand in place (a batch's operands are tens of MiB).
    pub fn from_bits(mut x: Vec<u64>, mut y: Vec<u64>, mut rho: Vec<u64>, len: usize) -> Self {
        let n = len.max(rho.len()).max(1).next_power_of_two();
        x.resize(n * EXT_DEGREE, 0);
        y.resize(n * EXT_DEGREE, 0);
        rho.resize(n, 0);
        let end = |v: &[u64]| v.iter().rposition(|&w| w != 0).map_or(0, |i| i / EXT_DEGREE + 1);
        let (x_end, y_end) = (end(&x), end(&y));
        Self { x, y, rho, m: Members::new(n, PACKED_LEVELS_RING), x_end, y_end }
    }

    /// Of member `s`'s `g` blocks, how many lead up to `end` (the rest are zero).
    fn live_blocks(&self, s: usize, end: usize) -> usize {
        end.saturating_sub(s * self.m.groups).min(self.m.groups)
    }

    /// The level by member pairs: `sum_q rho_q P(x_(s,q) * y_(u,q))` for every pair `(s, u)`
    /// of members, each a Hadamard product and a sum selected by the weight's bits per block
    /// ([`Gr64::dot_hadamard_bits`]; a Karatsuba product per block until the sixteenth
    /// session, which took 2.4 ms where this takes 1.4 for 2^14 blocks, `cargo bench -p
    /// musket-ring -- poly_product_sums`).
    fn level_by_pairs(&self) -> LevelPoly<Gr64> {
        let (g, d) = (self.m.groups, EXT_DEGREE);
        let half = g / 2;
        level_from_pairs(&self.m.coef, |s, u| {
            let (x, rho, y) = (
                &self.x[s * g * d..(s + 1) * g * d],
                &self.rho[s * g..(s + 1) * g],
                &self.y[u * g * d..(u + 1) * g * d],
            );
            // Live blocks of each half; past them the products are zero.
            let (lx, ly) = (self.live_blocks(s, self.x_end), self.live_blocks(u, self.y_end));
            let (x_lo, x_hi) = (lx.min(half), lx.saturating_sub(half));
            let (y_lo, y_hi) = (ly.min(half), ly.saturating_sub(half));
            // The weighted products of half `a` of x with half `b` of y over `len` blocks.
            // Split into ranges of blocks over the cores (see `crate::par`).
            let part = |a: usize, b: usize, len: usize| {
                let (xa, ya) = (a * half * d, b * half * d);
                par::map_ranges(len, MIN_BLOCKS_PER_THREAD, |blocks| {
                    let (from, to) = (blocks.start * d, blocks.end * d);
                    if from == to {
                        return Gr64::zero();
                    }
                    Gr64::dot_hadamard_bits(
                        &rho[a * half + blocks.start..a * half + blocks.end],
                        &x[xa + from..xa + to],
                        &y[ya + from..ya + to],
                    )
                })
                .into_iter()
                .fold(Gr64::zero(), |acc, v| acc.add(v))
            };
            [
                part(0, 0, x_lo.min(y_lo)),
                part(1, 1, x_hi.min(y_hi)),
                part(0, 1, x_lo.min(y_hi)),
                part(1, 0, x_hi.min(y_lo)),
            ]
        })
    }

    /// The level lane by lane, with `r` written out one group at a time. The inner product
    /// of the halves `A` (of `l`) and `B` (of `r`) is
    /// `sum_(q, b) X^b (sum_s c_s rho_(s,qA) x_(s,qA,b)) R_(qB,b)` with `R_(q,b) = sum_u c_u
    /// y_(u,q,b)` (an element per lane: `r` written out), that is
    /// `sum_s c_s sum_q rho_(s,qA) T_(s,q)` with `T_(s,q) = sum_b x_(s,qA,b) X^b R_(qB,b)`.
    /// Per pair of groups `q`, `q + G/2`: two products give `R` of both (the members' `y`
    /// times their coefficients), one the `T` of every member for the four pairs of halves;
    /// then, per member and pair of halves, `rho T` goes into a sum weighted by the bits of
    /// `rho` (`musket_ring::BitWeightedSums`, additions only; Karatsuba products until the
    /// sixteenth session), reduced and weighted by `c_s` once at the end. Per block: `R`
    /// `64^2` word products, `T` `2 * 64^2`, the sums about 300 vector additions, whatever
    /// the members (until the ninth session, also the weights `c_s rho`, `64^2`, and
    /// schoolbook sums, `2 * 64^2`); against `2 M` Hadamard products and bit-weighted rows by
    /// pairs; every operand of a group stays in cache (the strided kernel needs no packing).
    fn level_by_lanes(&self) -> LevelPoly<Gr64> {
        let (g, d) = (self.m.groups, EXT_DEGREE);
        let members = self.m.coef.len();
        let half = g / 2;
        // Members past the last nonzero block of x (of y) add nothing: the lanes take the
        // live ones only, whole tiles of four for x (two halves of four make a tile's rows).
        let mx = (self.x_end.div_ceil(g).next_multiple_of(4)).min(members);
        let my = self.y_end.div_ceil(g).min(members);
        if mx == 0 || my == 0 {
            return vec![Gr64::zero(); 3];
        }
        let coef: Vec<u64> = self.m.coef.iter().flat_map(|c| c.0).collect();
        // Group pairs whose T are kept at once (2 MiB): a call of the sums' kernel loads and
        // stores its accumulators (32 KiB a sum), so it takes a member's rows of several pairs
        // (a quarter as many until the sixteenth session, when Karatsuba's 14 KiB were stored;
        // with the bit-weighted sums four times as many measured 5-10% faster, `cargo bench -p
        // musket-core --bench dzkp`).
        let batch = (1024 / mx).clamp(1, half);
        // Ranges of group pairs over the cores (see `crate::par`), each with its own sums,
        // added up at the end.
        let sums = par::map_ranges(half, batch, |pairs_range| {
            // Per member s, the sums of products `rho_(s,q) T_(s,q)` of
            // the four pairs of halves (sum 4 s + 2 A + B); weighted by `c_s` once at the end,
            // rather than each weight `c_s rho_(s,q)` formed (a product per block).
            let mut sums = musket_ring::BitWeightedSums::new(4 * mx);
            let mut r = vec![0u64; d * d];
            // Row b: X^b R_(q,b), then X^b R_(q+half,b).
            let mut lanes = vec![0u64; d * 2 * d];
            // Row b: x_(s,q,b) for every s, then x_(s,q+half,b).
            let mut xt = vec![0u64; d * 2 * mx];
            // A batch's T_(s,q) of halves A and B: rows (pair, A, s), columns (B, k); each
            // pair's product writes its own rows in place.
            let mut tt = vec![0u64; batch * 2 * mx * 2 * d];
            for q0 in pairs_range.clone().step_by(batch) {
                let pairs = batch.min(pairs_range.end - q0);
                for (k, q) in (q0..q0 + pairs).enumerate() {
                    let groups = [q, q + half];
                    for (bh, qb) in groups.into_iter().enumerate() {
                        r.fill(0);
                        musket_ring::matmul_tn_strided_add(
                            &self.y[qb * d..],
                            g * d,
                            &coef,
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
                for s in 0..mx {
                    for ah in 0..2 {
                        let qa0 = q0 + ah * half;
                        for bh in 0..2 {
                            sums.add_rows(
                                4 * s + 2 * ah + bh,
                                &self.rho[s * g + qa0..][..pairs],
                                &tt[(ah * mx + s) * 2 * d + bh * d..],
                                2 * mx * 2 * d,
                            );
                        }
                    }
                }
            }
            (0..4 * mx).map(|i| sums.coefficients(i)).collect::<Vec<_>>()
        });
        let sums = add_coefficient_sums(sums);
        let [d00, e01, e10, d11] = std::array::from_fn(|i| {
            self.m.coef[..mx].iter().enumerate().fold(Gr64::zero(), |acc, (s, c)| {
                acc.add(c.mul(Gr64::from_product_coefficients(sums[4 * s + i])))
            })
        });
        let h2 = d11.add(d00).sub(e01).sub(e10);
        vec![d00, d11.sub(d00).sub(h2), h2]
    }
}

impl Packed<Gr64> for PackedBlocks {
    fn members(&self) -> &Members<Gr64> {
        &self.m
    }

    fn members_mut(&mut self) -> &mut Members<Gr64> {
        &mut self.m
    }

    fn level(&self) -> LevelPoly<Gr64> {
        if self.m.coef.len() >= LANE_LEVEL_MEMBERS {
            self.level_by_lanes()
        } else {
            self.level_by_pairs()
        }
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
        let coef: Vec<u64> = self.m.coef[..my].iter().flat_map(|c| c.0).collect();
        // Member s's weights c_s rho_(sG+q) for every q, at row sG + q as its blocks are: the
        // sums of the rows of the matrix of multiplication by c_s that the bits of rho
        // select (a product of the G x 64 matrix of the rho's coefficients by it until the
        // sixteenth session).
        // (Appended a member at a time: collected from a flat map, word by word through the
        // iterator, they took a third of the writing out.)
        let mut weighted: Vec<u64> = Vec::with_capacity(mx * g * d);
        for s in 0..mx {
            weighted.extend_from_slice(&musket_ring::select_rows_by_bits(
                &self.rho[s * g..(s + 1) * g],
                &self.m.coef[s].mul_matrix(),
            ));
        }
        // Ranges of groups over the cores (see `crate::par`), written out in order.
        let parts = par::map_ranges(g, MIN_GROUPS_PER_THREAD, |groups| {
            let (mut l, mut r) = (Vec::with_capacity(d * groups.len()), Vec::with_capacity(d * groups.len()));
            let (mut lq, mut rq) = (vec![0u64; d * d], vec![0u64; d * d]);
            let mut shifted = vec![0u64; d * d];
            for q in groups {
                lq.fill(0);
                rq.fill(0);
                if mx > 0 {
                    musket_ring::matmul_tn_strided_add(
                        &self.x[q * d..],
                        g * d,
                        &weighted[q * d..],
                        g * d,
                        &mut lq,
                        d,
                        (d, mx, d),
                    );
                }
                if my > 0 {
                    musket_ring::matmul_tn_strided_add(
                        &self.y[q * d..],
                        g * d,
                        &coef,
                        d,
                        &mut rq,
                        d,
                        (d, my, d),
                    );
                }
                musket_ring::rows_times_x_pows(&lq, &REDUCTION_TAPS, &mut shifted, d);
                for (lrow, rrow) in shifted.chunks_exact(d).zip(rq.chunks_exact(d)) {
                    l.push(Gr64(lrow.try_into().expect("a row")));
                    r.push(Gr64(rrow.try_into().expect("a row")));
                }
            }
            (l, r)
        });
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let (mut l, mut r) = (Vec::with_capacity(d * g), Vec::with_capacity(d * g));
        for (pl, pr) in parts {
            l.extend(pl);
            r.extend(pr);
        }
        (l, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Prg;

    /// The fewest members the lanes can take (whole tiles).
    const LANE_MIN_MEMBERS: usize = 4;

    /// The two ways of computing a level agree at every member count, level after level.
    #[test]
    fn levels_by_lanes_equal_levels_by_pairs() {
        let mut prg = Prg::from_seed([11; 16]);
        let mut checked = 0;
        for n in [2usize, 4, 16, 64] {
            let (x, y) = (prg.words(64 * n), prg.words(64 * n));
            let rho: Vec<Gr64> = prg.words(n).into_iter().map(Gr64::exceptional).collect();
            let mut blocks = PackedBlocks::new(x, y, rho, n);
            blocks.m.packed_left = n.trailing_zeros() as usize;
            while blocks.m.groups > 1 {
                let members = blocks.m.coef.len();
                // Lanes need whole tiles of member rows (two halves of members each).
                if members >= LANE_MIN_MEMBERS {
                    assert_eq!(
                        blocks.level_by_lanes(),
                        blocks.level_by_pairs(),
                        "{n} blocks, {members} members"
                    );
                    checked += 1;
                }
                blocks.fold(Gr64::challenge(&mut prg));
            }
        }
        // 16 blocks: members 4 and 8; 64: 4 to 32.
        assert_eq!(checked, 2 + 4);
    }

    /// A prover's levels, written-out vectors and last message, as a transcript.
    fn transcript(blocks: PackedBlocks, seed: u8) -> Vec<Gr64> {
        use crate::dzkp::ProverSteps;
        let mut prg = Prg::from_seed([seed; 16]);
        let mut prover = crate::dzkp_packed::PackedProver::new(blocks);
        let mut out = Vec::new();
        for _ in 0..ProverSteps::levels(&prover) {
            out.extend(ProverSteps::level(&mut prover));
            ProverSteps::fold(&mut prover, Gr64::challenge(&mut prg));
        }
        out.extend(ProverSteps::last(&mut prover, Gr64::random(&mut prg), Gr64::random(&mut prg)));
        out
    }

    /// Split over the cores (by member pairs, lane by lane and writing out), a proof is the
    /// same as on one core: the ranges' sums add up to the whole's. Large enough for several
    /// ranges at every step (from two threads on), with zero stretches as a verifier has.
    #[test]
    fn a_proof_split_over_the_cores_equals_the_serial_one() {
        let mut prg = Prg::from_seed([13; 16]);
        let n = 1 << 12;
        let (mut x, mut y) = (prg.words(64 * n), prg.words(64 * n));
        x[64 * 3000..].fill(0);
        y[64 * 100..64 * 900].fill(0);
        let rho: Vec<Gr64> = prg.words(n).into_iter().map(Gr64::exceptional).collect();
        let make = || PackedBlocks::new(x.clone(), y.clone(), rho.clone(), n);
        assert!(
            crate::par::ranges(n / 2, MIN_BLOCKS_PER_THREAD).len() > 1 || rayon::current_num_threads() == 1
        );
        let serial = musket_ring::serial_kernels(|| transcript(make(), 5));
        assert_eq!(transcript(make(), 5), serial);
    }
}
