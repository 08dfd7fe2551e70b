use super::*;
use crate::dzkp::{accepts, ProverSteps, VerifierSteps};
use crate::dzkp_packed::{PackedProver, PackedVerifier};

/// A block's 64 gates as Galois-ring elements, lane `b` at index `b`.
type Lanes = [Gr64; 64];

fn lanes(words: &[u64], n: usize) -> Vec<Lanes> {
    (0..n)
        .map(|w| std::array::from_fn(|b| Gr64::from_base(words.get(64 * w + b).copied().unwrap_or(0))))
        .collect()
}

/// The top variable folded at `t`: `v_lo + t (v_hi - v_lo)`, lane by lane.
fn fold_top(v: &mut Vec<Lanes>, t: Gr64) {
    let half = v.len() / 2;
    for i in 0..half {
        for b in 0..64 {
            v[i][b] = v[i][b].add(t.mul(v[i + half][b].sub(v[i][b])));
        }
    }
    v.truncate(half);
}

/// Level `j`'s coefficients by the definition, on vectors folded `j` times lane by lane:
/// `q(X) = sum_(q') W(q') sum_b X^b x(X, q')_b y(X, q')_b` with the group weights
/// `W = eq(tau_(>j), top) rho(low)`.
fn reference_level(x: &[Lanes], y: &[Lanes], weights: &BlockWeights, j: usize) -> Vec<Gr64> {
    let half = x.len() / 2;
    let low = weights.rho.len();
    let eq = eq_table(&weights.tau[j + 1..]);
    let (mut h0, mut h11, mut h2) = (Gr64::zero(), Gr64::zero(), Gr64::zero());
    for q in 0..half {
        let w = eq[q / low].mul(Gr64::exceptional(weights.rho[q % low]));
        for b in 0..64 {
            let wb = w.times_x_pow(b);
            let (a0, a1, b0, b1) = (x[q][b], x[q + half][b], y[q][b], y[q + half][b]);
            h0 = h0.add(wb.mul(a0.mul(b0)));
            h11 = h11.add(wb.mul(a1.mul(b1)));
            h2 = h2.add(wb.mul(a1.sub(a0).mul(b1.sub(b0))));
        }
    }
    vec![h0, h11.sub(h0).sub(h2), h2]
}

/// Runs the packed levels of `x`, `y` (padded to `len` blocks) against the definition, level
/// by level, each level both ways where the lanes can take it, then the written-out vectors:
/// `rho_q X^b x(r, q)_b` and `y(r, q)_b`.
fn same_as_reference(x: Vec<u64>, y: Vec<u64>, len: usize, prg: &mut Prg) {
    let n = len.max(x.len() / 64).max(1).next_power_of_two();
    let weights = BlockWeights::draw(n, prg);
    let (mut xl, mut yl) = (lanes(&x, n), lanes(&y, n));
    let mut packed = PackedBlocks::new(x, y, weights.clone(), len);
    let levels = packed.members().packed_left;
    assert_eq!(levels, weights.tau.len());
    for j in 0..levels {
        let want = reference_level(&xl, &yl, &weights, j);
        assert_eq!(
            level_from_points(&packed.challenges, &packed.point_sums(false), None),
            want,
            "level {j} of {n} blocks"
        );
        // Given the claim the level splits, `q(1)` from it (the sums at `X = 1` left out).
        let tau = weights.tau[j];
        let at1 = want[0].add(want[1]).add(want[2]);
        let claim = Gr64::one().sub(tau).mul(want[0]).add(tau.mul(at1));
        assert_eq!(packed.level_given(claim), want, "level {j} of {n} blocks, given the claim");
        // Lanes need whole tiles of member rows (two halves of four).
        if packed.m.coef.len() >= 4 {
            assert_eq!(packed.level_by_lanes(None), want, "level {j} of {n} blocks, by lanes");
            let given = packed.level_by_lanes(Some(claim));
            assert_eq!(given, want, "level {j} of {n} blocks, by lanes given the claim");
        }
        assert_eq!(packed.level(), want);
        assert_eq!(packed.level_weight(), Some(weights.tau[j]));
        let t = Gr64::challenge(prg);
        packed.fold(t);
        fold_top(&mut xl, t);
        fold_top(&mut yl, t);
    }
    assert!(packed.expanded_now());
    let (l, r) = packed.expand();
    assert_eq!(l.len(), 64 * xl.len());
    for (q, (xq, yq)) in xl.iter().zip(&yl).enumerate() {
        for b in 0..64 {
            let want_l = Gr64::exceptional(weights.rho[q]).times_x_pow(b).mul(xq[b]);
            assert_eq!(l[64 * q + b], want_l, "l at group {q}, lane {b}");
            assert_eq!(r[64 * q + b], yq[b], "r at group {q}, lane {b}");
        }
    }
}

#[test]
fn packed_levels_and_the_written_out_vectors_match_the_definition() {
    let mut prg = Prg::from_seed([7; 16]);
    // One block (no packed level) to 128 (six levels, two groups; the last two by lanes).
    for n in [1usize, 2, 3, 8, 13, 64, 128] {
        let (x, y) = (prg.words(64 * n), prg.words(64 * n));
        same_as_reference(x, y, n, &mut prg);
    }
    // Padded beyond the blocks (a batch's longest statement sets the length).
    let (x, y) = (prg.words(64 * 20), prg.words(64 * 20));
    same_as_reference(x, y, 64, &mut prg);
}

/// Operands zero over whole stretches, as a verifier's shares and the padding are: the levels
/// skip corners past the last nonzero block, the written-out vectors members past it, and
/// both still match.
#[test]
fn zero_blocks_are_skipped_exactly() {
    let mut prg = Prg::from_seed([12; 16]);
    for (blocks, x_zero, y_zero) in [
        (64usize, 0..20usize, 40..64usize),
        (64, 37..64, 0..0),
        (128, 90..128, 101..128),
        (128, 0..0, 3..128),
        (128, 0..128, 0..0),
        (256, 180..256, 0..0),
        (256, 5..70, 129..256),
        // Both zero from a block on (the padding): the rows at `inf` mirror the low ones.
        (128, 40..128, 40..128),
        (256, 150..256, 150..256),
        (1024, 300..1024, 300..1024),
    ] {
        let (mut x, mut y) = (prg.words(64 * blocks), prg.words(64 * blocks));
        x[64 * x_zero.start..64 * x_zero.end].fill(0);
        y[64 * y_zero.start..64 * y_zero.end].fill(0);
        same_as_reference(x, y, blocks, &mut prg);
    }
}

/// One packed proof with additively split blocks: the prover proves `x`, `y` after `cheat`
/// changes its copy of `x`; the claim is of the true products plus `error`; level
/// `tamper.0`'s polynomial gets `+1` on `h1`, or with `tamper.1` `+1` on `h1` and `-1` on
/// `h2` (`X^2 - X`: zero at 0 and at 1, so the level's own check passes and the wrong claim
/// `h(t)` it carries on must be caught later).
fn run(n: usize, seed: u8, error: u64, tamper: Option<(usize, bool)>, cheat: impl Fn(&mut [u64])) -> bool {
    let mut prg = Prg::from_seed([seed; 16]);
    let (x, y) = (prg.words(64 * n), prg.words(64 * n));
    let len = n.next_power_of_two();
    let weights = BlockWeights::draw(len, &mut prg);
    let mut products: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
    products[0] = products[0].wrapping_add(error);
    let claim = weights.claim(&products);
    let (xa, ya) = (prg.words(64 * n), prg.words(64 * n));
    let xb: Vec<u64> = x.iter().zip(&xa).map(|(v, a)| v.wrapping_sub(*a)).collect();
    let yb: Vec<u64> = y.iter().zip(&ya).map(|(v, a)| v.wrapping_sub(*a)).collect();
    let ca = Gr64::random(&mut prg);
    let mut proved = x.clone();
    cheat(&mut proved);
    let mut prover = PackedProver::new(PackedBlocks::new(proved, y, weights.clone(), len));
    let mut va: Box<dyn VerifierSteps<Gr64>> =
        Box::new(PackedVerifier::new(PackedBlocks::new(xa, ya, weights.clone(), len), ca));
    let mut vb: Box<dyn VerifierSteps<Gr64>> =
        Box::new(PackedVerifier::new(PackedBlocks::new(xb, yb, weights, len), claim.sub(ca)));
    for lvl in 0..prover.levels() {
        let mut h = prover.level();
        match tamper {
            Some((at, false)) if at == lvl => h[1] = h[1].add(Gr64::one()),
            Some((at, true)) if at == lvl => {
                h[1] = h[1].add(Gr64::one());
                h[2] = h[2].sub(Gr64::one());
            }
            _ => {}
        }
        let sa: Vec<Gr64> = (0..h.len()).map(|_| Gr64::random(&mut prg)).collect();
        let sb: Vec<Gr64> = h.iter().zip(&sa).map(|(v, s)| v.sub(*s)).collect();
        let t = Gr64::challenge(&mut prg);
        va.level(&sa, t);
        vb.level(&sb, t);
        prover.fold(t);
    }
    let m = prover.last(Gr64::random(&mut prg), Gr64::random(&mut prg));
    let sa: Vec<Gr64> = (0..5).map(|_| Gr64::random(&mut prg)).collect();
    let sb: Vec<Gr64> = m.iter().zip(&sa).map(|(v, s)| v.sub(*s)).collect();
    let t = Gr64::challenge(&mut prg);
    let oa = va.last(&[sa[0], sa[1], sa[2], sa[3], sa[4]], t);
    let ob = vb.last(&[sb[0], sb[1], sb[2], sb[3], sb[4]], t);
    accepts(&oa, &ob)
}

/// The packed levels a statement of `n` blocks takes.
fn packed_levels(n: usize) -> usize {
    let len = n.next_power_of_two();
    let weights = BlockWeights::draw(len, &mut Prg::from_seed([0; 16]));
    PackedBlocks::new(vec![0; 64 * n], vec![0; 64 * n], weights, len).members().packed_left
}

#[test]
fn packed_proofs_are_complete_and_sound() {
    for (n, seed) in [(1, 1), (2, 2), (5, 3), (16, 4), (33, 5), (256, 6)] {
        assert!(run(n, seed, 0, None, |_| {}), "honest packed proof of {n} blocks rejected");
        for error in [1, 1 << 63] {
            assert!(!run(n, seed, error, None, |_| {}), "false claim accepted ({n} blocks, error {error})");
        }
        let len = n.next_power_of_two();
        let weights = BlockWeights::draw(len, &mut Prg::from_seed([0; 16]));
        let levels =
            PackedProver::new(PackedBlocks::new(vec![0; 64 * n], vec![0; 64 * n], weights, len)).levels();
        assert!(levels >= 3);
        for lvl in 0..levels {
            assert!(
                !run(n, seed, 0, Some((lvl, false)), |_| {}),
                "tampered level {lvl} accepted ({n} blocks)"
            );
            if lvl < packed_levels(n) {
                assert!(
                    !run(n, seed, 0, Some((lvl, true)), |_| {}),
                    "a level polynomial passing its own check but carrying a wrong claim accepted (level {lvl}, {n} blocks)"
                );
            }
        }
    }
}

/// A prover whose products differ from the shared ones is caught wherever the difference is
/// (errors of 1 and of 2^63, a zero divisor), including two blocks that share a low index
/// (same `rho`, different `eq` weight) and differ by the same error, which weights shared
/// across the top variables would cancel.
#[test]
fn a_wrong_block_is_caught_wherever_it_is() {
    let n = 256;
    // Blocks `low` apart share a low index, hence `rho`.
    let low = n >> PACKED_LEVELS_RING;
    for (seed, at, error) in
        [(1u8, 0usize, 1u64), (2, 64 + 5, 1 << 63), (3, 64 * 128 - 1, 3), (4, 64 * n - 1, 1 << 40)]
    {
        assert!(!run(n, seed, 0, None, |x| x[at] = x[at].wrapping_add(error)), "wrong gate {at} accepted");
    }
    for (seed, (a, b)) in [(5u8, (3usize, 3 + low)), (6, (10, 10 + 7 * low))] {
        assert!(
            !run(n, seed, 0, None, |x| {
                x[64 * a + 7] = x[64 * a + 7].wrapping_add(1 << 63);
                x[64 * b + 7] = x[64 * b + 7].wrapping_add(1 << 63);
            }),
            "equal errors in blocks {a} and {b} accepted"
        );
    }
}

#[test]
fn the_weighted_claim_is_the_sum_of_weighted_products() {
    let mut prg = Prg::from_seed([9; 16]);
    for n in [1usize, 40, 256] {
        let weights = BlockWeights::draw(n, &mut prg);
        let c = prg.words(64 * (n - n / 8));
        let mut want = Gr64::zero();
        for (i, v) in c.iter().enumerate() {
            want = want.add(weights.weight(i / 64).times_x_pow(i % 64).mul_base(*v));
        }
        assert_eq!(weights.claim(&c), want, "{n} blocks");
        for i in [0, c.len() / 2, c.len() - 1] {
            let mut bad = c.clone();
            bad[i] = bad[i].wrapping_add(1 << 63);
            assert_ne!(weights.claim(&bad), want);
        }
    }
}

/// Written out before any packed level, the vectors carry every block's whole weight (`eq`
/// on the top variables too), and their inner product is the weighted claim.
#[test]
fn written_out_before_the_levels_the_vectors_carry_the_whole_weights() {
    let mut prg = Prg::from_seed([6; 16]);
    for n in [1usize, 64, 200] {
        let (x, y) = (prg.words(64 * n), prg.words(64 * n));
        let len = n.next_power_of_two();
        let weights = BlockWeights::draw(len, &mut prg);
        let products: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
        let (l, r) = PackedBlocks::new(x.clone(), y.clone(), weights.clone(), len).expand();
        for i in [0, 64 * n / 2 + 3, 64 * n - 1] {
            assert_eq!(l[i], weights.weight(i / 64).times_x_pow(i % 64).mul_base(x[i]), "l at {i}");
            assert_eq!(r[i], Gr64::from_base(y[i]), "r at {i}");
        }
        assert_eq!(Gr64::dot(&l, &r), weights.claim(&products), "{n} blocks");
    }
}

/// A prover's levels, written-out vectors and last message, as a transcript.
fn transcript(blocks: PackedBlocks, seed: u8) -> Vec<Gr64> {
    let mut prg = Prg::from_seed([seed; 16]);
    let mut prover = PackedProver::new(blocks);
    let mut out = Vec::new();
    for _ in 0..ProverSteps::levels(&prover) {
        out.extend(ProverSteps::level(&mut prover));
        ProverSteps::fold(&mut prover, Gr64::challenge(&mut prg));
    }
    out.extend(ProverSteps::last(&mut prover, Gr64::random(&mut prg), Gr64::random(&mut prg)));
    out
}

/// Split over the cores (at the extended points, lane by lane and writing out), a proof is
/// the same as on one core: the ranges' sums add up to the whole's. Large enough for several
/// ranges at every step (from two threads on), with zero stretches as a verifier has.
#[test]
fn a_proof_split_over_the_cores_equals_the_serial_one() {
    let mut prg = Prg::from_seed([13; 16]);
    let n = 1 << 12;
    let (mut x, mut y) = (prg.words(64 * n), prg.words(64 * n));
    x[64 * 3000..].fill(0);
    y[64 * 100..64 * 900].fill(0);
    let weights = BlockWeights::draw(n, &mut prg);
    let make = || PackedBlocks::new(x.clone(), y.clone(), weights.clone(), n);
    assert!(
        crate::par::ranges(n / 2, MIN_LEVEL_GROUPS_PER_THREAD).len() > 1 || rayon::current_num_threads() == 1
    );
    let serial = musket_ring::serial_kernels(|| transcript(make(), 5));
    assert_eq!(transcript(make(), 5), serial);
}
