use super::*;
use crate::dzkp::{accepts, ProverSteps, VerifierSteps};
use crate::dzkp_packed::{
    lagrange_weights, packed_levels_bits, PackedProver, PackedVerifier, PACKED_LEVELS_BITS,
};

/// A word's 64 bits as field elements (0 or 1), lane `b` at index `b`.
type Lanes = [Gf64; 64];

fn lanes(words: &[u64], n: usize) -> Vec<Lanes> {
    (0..n)
        .map(|i| {
            let w = words.get(i).copied().unwrap_or(0);
            std::array::from_fn(|b| Gf64((w >> b) & 1))
        })
        .collect()
}

/// The top variable folded at `t`: `v_lo + t (v_hi - v_lo)`, lane by lane.
fn fold_top(v: &mut Vec<Lanes>, t: Gf64) {
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
fn reference_level(x: &[Lanes], y: &[Lanes], weights: &WordWeights, j: usize) -> Vec<Gf64> {
    let half = x.len() / 2;
    let low = weights.rho.len();
    let eq = eq_table(&weights.tau[j + 1..]);
    let (mut h0, mut h11, mut h2) = (Gf64(0), Gf64(0), Gf64(0));
    for q in 0..half {
        let w = eq[q / low].mul(Gf64(weights.rho[q % low]));
        for b in 0..64 {
            let wb = w.mul(Gf64(1 << b));
            let (a0, a1, b0, b1) = (x[q][b], x[q + half][b], y[q][b], y[q + half][b]);
            h0 = h0.add(wb.mul(a0.mul(b0)));
            h11 = h11.add(wb.mul(a1.mul(b1)));
            h2 = h2.add(wb.mul(a1.sub(a0).mul(b1.sub(b0))));
        }
    }
    vec![h0, h11.sub(h0).sub(h2), h2]
}

/// Runs the packed levels of `lw`, `rw` (padded to `len` words) against the definition,
/// level by level, then the written-out vectors: `rho_q x(r, q)_b` and `X^b y(r, q)_b`.
fn same_as_reference(lw: Vec<u64>, rw: Vec<u64>, len: usize, prg: &mut Prg) {
    let n = len.max(lw.len()).max(1).next_power_of_two();
    let weights = WordWeights::draw(n, prg);
    let (mut x, mut y) = (lanes(&lw, n), lanes(&rw, n));
    let mut packed = PackedWords::new(lw, rw, weights.clone(), len);
    let levels = packed.members().packed_left;
    assert_eq!(levels, weights.tau.len());
    for j in 0..levels {
        let want = reference_level(&x, &y, &weights, j);
        assert_eq!(packed.level(), want, "level {j} of {n} words");
        // Given the claim the level splits, `q(1)` from it (the sums at `X = 1` left out).
        let tau = weights.tau[j];
        let claim = Gf64::one().sub(tau).mul(want[0]).add(tau.mul(want[0].add(want[1]).add(want[2])));
        assert_eq!(packed.level_given(claim), want, "level {j} of {n} words, given the claim");
        assert_eq!(packed.level_weight(), Some(weights.tau[j]));
        let t = Gf64::challenge(prg);
        packed.fold(t);
        fold_top(&mut x, t);
        fold_top(&mut y, t);
    }
    assert!(packed.expanded_now());
    let (l, r) = packed.expand();
    assert_eq!(l.len(), 64 * x.len());
    for (q, (xq, yq)) in x.iter().zip(&y).enumerate() {
        for b in 0..64 {
            assert_eq!(l[64 * q + b], Gf64(weights.rho[q]).mul(xq[b]), "l at word {q}, lane {b}");
            assert_eq!(r[64 * q + b], Gf64(1 << b).mul(yq[b]), "r at word {q}, lane {b}");
        }
    }
}

#[test]
fn packed_levels_and_the_written_out_vectors_match_the_definition() {
    let mut prg = Prg::from_seed([7; 16]);
    for n in [1usize, 2, 3, 8, 13, 64, 300] {
        let (lw, rw) = (prg.words(n), prg.words(n));
        same_as_reference(lw, rw, n, &mut prg);
    }
    // Padded beyond the terms (a batch's longest statement sets the length).
    let (lw, rw) = (prg.words(40), prg.words(40));
    same_as_reference(lw, rw, 256, &mut prg);
}

/// Operands with zeros (scattered words, whole stretches, the padding): the levels skip the
/// padding and the written-out vectors skip zero words, and both still match.
#[test]
fn zero_operands_are_skipped_exactly() {
    let mut prg = Prg::from_seed([12; 16]);
    let n = 4096;
    let (mut lw, mut rw) = (prg.words(n), prg.words(n));
    for (i, (x, y)) in lw.iter_mut().zip(rw.iter_mut()).enumerate() {
        if i % 2 == 1 {
            *x = 0;
        }
        if i % 3 == 0 || (1000..3000).contains(&i) {
            *y = 0;
        }
    }
    same_as_reference(lw.clone(), rw.clone(), n, &mut prg);
    // Zero from a point on in one side only.
    lw[700..].fill(0);
    same_as_reference(lw, rw.clone(), n, &mut prg);
    rw[..].fill(0);
    same_as_reference(prg.words(n), rw, n, &mut prg);
}

/// A sixth packed level is taken only where it costs no level of the proof (so no round),
/// and then writes out half as many elements.
#[test]
fn a_sixth_packed_level_for_bits_costs_no_round() {
    use crate::dzkp::arity_schedule;
    let mut prg = Prg::from_seed([4; 16]);
    for log_words in 0..20 {
        let words = 1usize << log_words;
        let with = |p: usize| arity_schedule(64 * words, p.min(log_words)).len();
        assert_eq!(with(packed_levels_bits(words)), with(PACKED_LEVELS_BITS), "{words} words");
        let weights = WordWeights::draw(words, &mut prg);
        let packed = PackedWords::new(vec![0; words], vec![0; words], weights, words);
        assert_eq!(packed.members().packed_left, packed_levels_bits(words).min(log_words));
    }
    assert_eq!(packed_levels_bits(1 << 16), 6, "a full batch of 2^22 bit terms");
}

/// One packed proof with XOR-split word terms: the prover proves `lw`, `rw` after
/// `cheat` changes its copy; the claim is of the true products plus `error`.
fn run(n: usize, seed: u8, error: u64, tamper_level: Option<usize>, cheat: impl Fn(&mut [u64])) -> bool {
    run_tampered(n, seed, error, tamper_level.map(|l| (l, false)), cheat)
}

/// [`run`], with level `tamper.0`'s polynomial changed: `+1` on `h1`, or, with `tamper.1`,
/// `+1` on both `h1` and `h2` (`X^2 + X`, zero at 0 and at 1 in GF(2^64): the level's own
/// check passes, and the wrong claim `h(t)` it carries on must be caught later).
fn run_tampered(
    n: usize,
    seed: u8,
    error: u64,
    tamper: Option<(usize, bool)>,
    cheat: impl Fn(&mut [u64]),
) -> bool {
    let mut prg = Prg::from_seed([seed; 16]);
    let (lw, rw) = (prg.words(n), prg.words(n));
    let len = n.next_power_of_two();
    let weights = WordWeights::draw(len, &mut prg);
    let products: Vec<u64> = lw.iter().zip(&rw).map(|(x, y)| x & y).collect();
    let claim = weights.claim(&products).add(Gf64(error));
    let (la, ra) = (prg.words(n), prg.words(n));
    let lb: Vec<u64> = lw.iter().zip(&la).map(|(x, a)| x ^ a).collect();
    let rb: Vec<u64> = rw.iter().zip(&ra).map(|(x, a)| x ^ a).collect();
    let ca = Gf64::random(&mut prg);
    let mut proved = lw.clone();
    cheat(&mut proved);
    let mut prover = PackedProver::new(PackedWords::new(proved, rw, weights.clone(), len));
    let mut va: Box<dyn VerifierSteps<Gf64>> =
        Box::new(PackedVerifier::new(PackedWords::new(la, ra, weights.clone(), len), ca));
    let mut vb: Box<dyn VerifierSteps<Gf64>> =
        Box::new(PackedVerifier::new(PackedWords::new(lb, rb, weights, len), claim.add(ca)));
    for lvl in 0..prover.levels() {
        let mut h = prover.level();
        match tamper {
            Some((at, false)) if at == lvl => h[1] = h[1].add(Gf64(1)),
            Some((at, true)) if at == lvl => {
                h[1] = h[1].add(Gf64(1));
                h[2] = h[2].add(Gf64(1));
            }
            _ => {}
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
    for (n, seed) in [(1, 1), (2, 2), (5, 3), (16, 4), (33, 5), (4096, 6)] {
        assert!(run(n, seed, 0, None, |_| {}), "honest packed proof of {n} words rejected");
        assert!(!run(n, seed, 1, None, |_| {}), "false claim accepted ({n} words)");
        assert!(!run(n, seed, 1 << 63, None, |_| {}), "false claim accepted ({n} words)");
        let len = n.next_power_of_two();
        let weights = WordWeights::draw(len, &mut Prg::from_seed([0; 16]));
        let levels = PackedProver::new(PackedWords::new(vec![0; n], vec![0; n], weights, len)).levels();
        assert!(levels >= 3);
        for lvl in 0..levels {
            assert!(!run(n, seed, 0, Some(lvl), |_| {}), "tampered level {lvl} accepted ({n} words)");
            // Past this level's check (unweighted at a plain level, so only packed ones).
            let packed = PackedWords::new(
                vec![0; n],
                vec![0; n],
                WordWeights::draw(len, &mut Prg::from_seed([0; 16])),
                len,
            )
            .members()
            .packed_left;
            if lvl < packed {
                assert!(
                    !run_tampered(n, seed, 0, Some((lvl, true)), |_| {}),
                    "a level polynomial passing its own check but carrying a wrong claim accepted (level {lvl}, {n} words)"
                );
            }
        }
    }
}

/// A prover whose words differ from the shared ones is caught wherever the difference is,
/// including two words that share a low index (same `rho`, different `eq` weight) and
/// differ by the same error, which weights shared across the top variables would cancel.
#[test]
fn a_wrong_word_is_caught_wherever_it_is() {
    let n = 4096;
    // Words `low` apart share a low index, hence `rho`.
    let low = n >> packed_levels_bits(n);
    for (seed, at) in [(1u8, 0usize), (2, 1), (3, 2047), (4, 4095)] {
        assert!(!run(n, seed, 0, None, |w| w[at] ^= 1 << (at % 64)), "wrong word {at} accepted");
    }
    for (seed, (a, b)) in [(5u8, (3usize, 3 + low)), (6, (10, 10 + 7 * low))] {
        assert!(
            !run(n, seed, 0, None, |w| {
                w[a] ^= u64::MAX;
                w[b] ^= u64::MAX;
            }),
            "equal errors at words {a} and {b} accepted"
        );
    }
}

#[test]
fn the_weighted_claim_is_the_sum_of_weighted_bits() {
    let mut prg = Prg::from_seed([9; 16]);
    for n in [1usize, 40, 4096] {
        let weights = WordWeights::draw(n, &mut prg);
        let c = prg.words(n - n / 8);
        let mut want = Gf64(0);
        for (w, word) in c.iter().enumerate() {
            for b in 0..64 {
                want = want.add(weights.weight(w).mul(Gf64(1u64 << b)).mul_base((word >> b) & 1));
            }
        }
        assert_eq!(weights.claim(&c), want, "{n} words");
        // A single flipped bit anywhere changes it (the weights are nonzero here).
        for (w, b) in [(0, 0), (c.len() / 2, 63), (c.len() - 1, 31)] {
            let mut bad = c.clone();
            bad[w] ^= 1 << b;
            assert_ne!(weights.claim(&bad), want);
        }
    }
}

/// The Lagrange weights reproduce a polynomial of degree two in each variable from its
/// values at `{0, 1, inf}^2` (at `inf`: the leading coefficient there).
#[test]
fn lagrange_weights_interpolate_degree_two_per_variable() {
    let mut prg = Prg::from_seed([5; 16]);
    // p(a, b) = sum c_(i, k) a^i b^k, i, k <= 2.
    let c: Vec<Gf64> = (0..9).map(|_| Gf64::random(&mut prg)).collect();
    let pow = |t: Gf64, i: usize| (0..i).fold(Gf64::one(), |acc, _| acc.mul(t));
    let eval =
        |a: Gf64, b: Gf64| (0..9).fold(Gf64(0), |acc, k| acc.add(c[k].mul(pow(a, k / 3)).mul(pow(b, k % 3))));
    // The value at a point with `inf` coordinates: the coefficient of the top power there.
    let value = |da: usize, db: usize| -> Gf64 {
        let one_var = |d: usize, coefs: [Gf64; 3]| -> Gf64 {
            match d {
                0 => coefs[0],
                1 => coefs[0].add(coefs[1]).add(coefs[2]),
                _ => coefs[2],
            }
        };
        // Coefficients in b of p(a = da-point, b).
        let in_b: [Gf64; 3] = std::array::from_fn(|kb| one_var(da, std::array::from_fn(|ka| c[3 * ka + kb])));
        one_var(db, in_b)
    };
    let (a, b) = (Gf64::random(&mut prg), Gf64::random(&mut prg));
    let weights = lagrange_weights(&[a, b]);
    let got = (0..9).fold(Gf64(0), |acc, e| acc.add(weights[e].mul(value(e / 3, e % 3))));
    assert_eq!(got, eval(a, b));
}

/// Written out before any packed level, the vectors carry every word's whole weight, and
/// their inner product is the weighted claim of the products.
#[test]
fn written_out_before_the_levels_the_vectors_carry_the_whole_weights() {
    let mut prg = Prg::from_seed([6; 16]);
    for n in [1usize, 64, 1000] {
        let (lw, rw) = (prg.words(n), prg.words(n));
        let len = n.next_power_of_two();
        let weights = WordWeights::draw(len, &mut prg);
        let products: Vec<u64> = lw.iter().zip(&rw).map(|(x, y)| x & y).collect();
        let (l, r) = PackedWords::new(lw.clone(), rw.clone(), weights.clone(), len).expand();
        for w in 0..n {
            for b in 0..64 {
                assert_eq!(l[64 * w + b], weights.weight(w).mul_base((lw[w] >> b) & 1), "l at {w}, {b}");
                assert_eq!(r[64 * w + b], Gf64(1 << b).mul_base((rw[w] >> b) & 1), "r at {w}, {b}");
            }
        }
        assert_eq!(Gf64::dot(&l, &r), weights.claim(&products), "{n} words");
    }
}
