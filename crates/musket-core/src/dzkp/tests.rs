//! Completeness and soundness of the plain proof, halving and quartering.

use super::*;
use crate::ext::{Gf64, Gr64};
use crate::Prg;

/// `<a, b>`.
fn dot<E: Ext>(a: &[E], b: &[E]) -> E {
    a.iter().zip(b).fold(E::zero(), |acc, (x, y)| acc.add(x.mul(*y)))
}

/// Runs one proof with the prover's vectors split at random between two verifiers;
/// `tamper` may change the prover's messages. Returns whether the verifiers accept.
fn run<E: Ext>(l: &[E], r: &[E], claim: E, len: usize, seed: u8, tamper: impl Fn(usize, &mut [E])) -> bool {
    let mut prg = Prg::from_seed([seed; 16]);
    let split = |v: &[E], prg: &mut Prg| -> (Vec<E>, Vec<E>) {
        v.iter()
            .map(|x| {
                let s = E::random(prg);
                (s, x.sub(s))
            })
            .unzip()
    };
    let (la, lb) = split(l, &mut prg);
    let (ra, rb) = split(r, &mut prg);
    let ca = E::random(&mut prg);
    let mut prover = Prover::new(l.to_vec(), r.to_vec(), len);
    let mut va = Verifier::new(la, ra, ca, len);
    let mut vb = Verifier::new(lb, rb, claim.sub(ca), len);
    let levels = prover.levels();
    assert_eq!(levels, va.levels());
    for lvl in 0..levels {
        let mut h = prover.level();
        assert_eq!(h.len(), coefficients(prover.arity(lvl)));
        tamper(lvl, &mut h);
        let sa: Vec<E> = (0..h.len()).map(|_| E::random(&mut prg)).collect();
        let sb: Vec<E> = h.iter().zip(&sa).map(|(x, s)| x.sub(*s)).collect();
        let t = E::challenge(&mut prg);
        va.level(&sa, t);
        vb.level(&sb, t);
        prover.fold(t);
    }
    let mut m = prover.last(E::random(&mut prg), E::random(&mut prg));
    tamper(levels, &mut m);
    let sa: Vec<E> = (0..5).map(|_| E::random(&mut prg)).collect();
    let sb: Vec<E> = m.iter().zip(&sa).map(|(x, s)| x.sub(*s)).collect();
    let t = E::challenge(&mut prg);
    let oa = va.last(&[sa[0], sa[1], sa[2], sa[3], sa[4]], t);
    let ob = vb.last(&[sb[0], sb[1], sb[2], sb[3], sb[4]], t);
    let back = Opening::<E>::from_words(&oa.to_words(), oa.zeros.len()).unwrap();
    assert_eq!(back, oa);
    accepts(&oa, &ob)
}

fn vectors<E: Ext>(n: usize, seed: u8) -> (Vec<E>, Vec<E>, E) {
    let mut prg = Prg::from_seed([seed; 16]);
    let l: Vec<E> = (0..n).map(|_| E::random(&mut prg)).collect();
    let r: Vec<E> = (0..n).map(|_| E::random(&mut prg)).collect();
    let c = dot(&l, &r);
    (l, r, c)
}

fn honest_and_cheating<E: Ext>(error: E) {
    // Lengths whose padded forms give schedules (2), (4), (4, 2), (4, 4), (4, 4, 2) and
    // live parts ending in each quarter.
    for (n, seed) in [(1, 1), (2, 2), (5, 3), (16, 4), (33, 5), (9, 6), (19, 7), (70, 8), (100, 9)] {
        let (l, r, c) = vectors::<E>(n, seed);
        // Padded to the next power of two (the live part ending in any quarter) and to
        // twice that (the upper half all padding).
        for len in [n, 2 * n] {
            assert!(run(&l, &r, c, len, seed, |_, _| {}), "honest proof of length {n} rejected");
            assert!(!run(&l, &r, c.add(error), len, seed, |_, _| {}), "false claim accepted (n = {n})");
            let prover = Prover::new(l.clone(), r.clone(), len);
            let levels = prover.levels();
            for lvl in 0..=levels {
                let terms = if lvl == levels { 3 } else { coefficients(prover.arity(lvl)) };
                for k in 0..terms {
                    let cheat = |at: usize, m: &mut [E]| {
                        if at == lvl {
                            m[k + if at == levels { 2 } else { 0 }] =
                                m[k + if at == levels { 2 } else { 0 }].add(error);
                        }
                    };
                    // A changed polynomial on a true claim is caught too.
                    assert!(
                        !run(&l, &r, c, len, seed, cheat),
                        "tampered level {lvl} term {k} accepted (n = {n}, len = {len})"
                    );
                }
            }
        }
    }
}

#[test]
fn schedules_quarter_then_halve_once() {
    assert_eq!(arity_schedule(1, 0), Vec::<usize>::new());
    assert_eq!(arity_schedule(2, 0), [2]);
    assert_eq!(arity_schedule(8, 0), [4, 2]);
    assert_eq!(arity_schedule(1 << 14, 0), [4; 7]);
    assert_eq!(arity_schedule(1 << 9, 3), [2, 2, 2, 4, 4, 4]);
    assert_eq!(arity_schedule(1 << 8, 3), [2, 2, 2, 4, 4, 2]);
}

/// A quartering level's polynomial against its definition, term by term.
fn quartering_matches_definition<E: Ext>() {
    for (n, live) in [(16, 16), (16, 9), (64, 40), (64, 3), (256, 200)] {
        let (mut l, mut r, _) = vectors::<E>(live, n as u8);
        l.resize(n, E::zero());
        r.resize(n, E::zero());
        let q = n / 4;
        let h = level_poly4(&l, &r, live);
        let mut want = vec![E::zero(); 7];
        for i in 0..4 {
            for j in 0..4 {
                let d = dot(&l[i * q..(i + 1) * q], &r[j * q..(j + 1) * q]);
                want[i + 3 - j] = want[i + 3 - j].add(d);
            }
        }
        assert_eq!(h, want, "n = {n}, live = {live}");
        let t = E::challenge(&mut Prg::from_seed([7; 16]));
        let (mut fl, mut fr) = (l.clone(), r.clone());
        let new_live = fold4(&mut fl, &mut fr, t, live);
        assert_eq!(new_live, live.min(q));
        assert_eq!(dot(&fl, &fr), eval(&h, t), "fold at t, n = {n}");
        assert!(fl[new_live..].iter().chain(&fr[new_live..]).all(|v| *v == E::zero()));
    }
}

#[test]
fn quartering_levels_match_their_definition() {
    quartering_matches_definition::<Gr64>();
    quartering_matches_definition::<Gf64>();
}

#[test]
fn galois_ring_proofs_are_complete_and_sound() {
    // The error an attacker would pick over Z_2^64: only the top bit.
    honest_and_cheating(Gr64::from_base(1 << 63));
    honest_and_cheating(Gr64::from_base(1));
}

#[test]
fn binary_field_proofs_are_complete_and_sound() {
    honest_and_cheating(Gf64(1));
}

/// The prover's messages of a proof halving its first `halving` levels.
fn transcript<E: Ext>(l: &[E], r: &[E], halving: usize) -> Vec<E> {
    let mut prg = Prg::from_seed([21; 16]);
    let mut prover = Prover::halving_first(l.to_vec(), r.to_vec(), l.len(), halving);
    let mut out = Vec::new();
    for _ in 0..prover.levels() {
        out.extend(prover.level());
        prover.fold(E::challenge(&mut prg));
    }
    out.extend(prover.last(E::random(&mut prg), E::random(&mut prg)));
    out
}

/// Long enough for the levels' sums and the folds to split over the cores (see
/// `crate::par`): the same messages as on one core, and an honest proof is accepted and a
/// false claim rejected with the verifiers split too.
fn split_over_the_cores<E: Ext>(n: usize, error: E) {
    let (l, r, c) = vectors::<E>(n, 31);
    for halving in [0, 1] {
        let serial = musket_ring::serial_kernels(|| transcript(&l, &r, halving));
        assert_eq!(transcript(&l, &r, halving), serial, "halving {halving}");
    }
    assert!(run(&l, &r, c, n, 32, |_, _| {}));
    assert!(!run(&l, &r, c.add(error), n, 32, |_, _| {}));
}

#[test]
fn proofs_split_over_the_cores_equal_serial_ones() {
    split_over_the_cores::<Gr64>(3000, Gr64::one());
    split_over_the_cores::<Gf64>(300_000, Gf64(1 << 63));
}
