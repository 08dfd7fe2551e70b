//! The cheating-party harness: one party at a time adds an error to one kind of message of
//! the malicious-secure 3PC back end; every honest party must then abort with `cheating
//! detected` and return no output. Runs without cheating must never abort.

mod common;

use common::JobResult;
use musket_core::{mul_fixed, relu, MpcError, Protocol};
use musket_net::{local_mesh, Net};
use musket_rep3::{Cheat, Rep3Mal, Target};
use musket_ring::{FixedPoint, RingTensor};
use std::time::Duration;

/// Rows of the pipeline's input: 32 rows of 8 make 256 products per elementwise step and as
/// many cross gates in each conversion (ReLU's) or pair of a truncation's wrap terms, 1280
/// in all before the first opening, so that the packed proof (from 1024 products a batch)
/// runs; the matrix product proves in plain form.
const ROWS: usize = 32;

/// Every checked primitive once, then an output: inputs (one from each party), products, matrix product,
/// truncation (the helpers' inputs, the wrap), comparison (a2b and AND gates), ReLU (mul_bits),
/// reveal to one party, reveal to all.
fn pipeline<P: Protocol>(p: &mut P) -> JobResult<(Option<RingTensor>, RingTensor)> {
    let fp = FixedPoint::new(16);
    let xs: Vec<f64> = (0..8 * ROWS).map(|i| (i % 8) as f64 / 4.0 - 1.0 + (i / 8) as f64 / 64.0).collect();
    let ws: Vec<f64> = (0..64).map(|i| ((i * 7) % 11) as f64 / 8.0 - 0.6).collect();
    let x = RingTensor::new(vec![ROWS, 8], fp.encode(&xs)?)?;
    let w = RingTensor::new(vec![8, 8], fp.encode(&ws)?)?;
    let b = RingTensor::new(vec![ROWS, 8], fp.encode(&[0.25; 8 * ROWS])?)?;
    let x = p.input(0, (p.party_id() == 0).then_some(&x), &[ROWS, 8])?;
    let w = p.input(1, (p.party_id() == 1).then_some(&w), &[8, 8])?;
    let b = p.input(2, (p.party_id() == 2).then_some(&b), &[ROWS, 8])?;
    let sq = mul_fixed(p, fp, &x, &x)?;
    let prod = p.matmul(&sq, &w)?;
    let prod = p.truncate(&prod, fp.frac_bits())?;
    let prod = p.add(&prod, &b)?;
    let r = relu(p, &prod)?;
    let to_two = p.reveal_to(&r, 2)?;
    Ok((to_two, p.reveal(&r)?))
}

type Outcome = Result<(Option<RingTensor>, RingTensor), MpcError>;

fn run(cheat: Option<Cheat>) -> Vec<Outcome> {
    run_with_limit(cheat, None)
}

fn run_with_limit(cheat: Option<Cheat>, limit: Option<usize>) -> Vec<Outcome> {
    run_with(cheat, limit, None)
}

/// Runs the pipeline, with a cheating party if `cheat`, verifying pending products past
/// `limit` words if given, with batches of at most `batch_terms` terms if given.
fn run_with(
    cheat: Option<Cheat>,
    limit: Option<usize>,
    batch_terms: Option<(usize, usize, usize)>,
) -> Vec<Outcome> {
    run_grouped(cheat, limit, batch_terms, None)
}

/// [`run_with`], with groups of ring batches of at most `group_bytes` of proof state if given.
fn run_grouped(
    cheat: Option<Cheat>,
    limit: Option<usize>,
    batch_terms: Option<(usize, usize, usize)>,
    group_bytes: Option<usize>,
) -> Vec<Outcome> {
    run_parties(
        cheat,
        |mut p| {
            if let Some(words) = limit {
                p = p.with_pending_limit(words);
            }
            if let Some((packed, plain, binary)) = batch_terms {
                p = p.with_batch_terms(packed, plain, binary);
            }
            if let Some(bytes) = group_bytes {
                p = p.with_ring_group_bytes(bytes);
            }
            p
        },
        pipeline,
    )
}

/// Runs `job` on three local parties (each set up by `configure`, with a cheating party if
/// `cheat`), then `finish`; a party that fails tells its peers, as a deployment does.
fn run_parties<T: Send>(
    cheat: Option<Cheat>,
    configure: impl Fn(Rep3Mal) -> Rep3Mal + Sync,
    job: impl Fn(&mut Rep3Mal) -> JobResult<T> + Sync,
) -> Vec<Result<T, MpcError>> {
    let mesh = local_mesh(3, Some(Duration::from_secs(60)));
    let (configure, job) = (&configure, &job);
    std::thread::scope(|s| {
        let handles: Vec<_> = mesh
            .into_iter()
            .map(|t| {
                s.spawn(move || -> Result<T, MpcError> {
                    let mut p = configure(Rep3Mal::new(Net::new(Box::new(t)))?);
                    if let Some(c) = cheat {
                        p = p.with_cheat(c);
                    }
                    let res =
                        job(&mut p).and_then(|out| p.finish().map(|_| out)).map_err(|e| p.explain_failure(e));
                    if let Err(e) = &res {
                        if !e.is_peer_abort() {
                            p.abort(&e.public_reason());
                        }
                    }
                    res
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("party thread")).collect()
    })
}

/// Asserts that in `outs`, a run with `cheat`, every honest party stopped with `cheating
/// detected`.
fn assert_caught_in(cheat: Cheat, outs: &[Outcome]) {
    for (id, o) in outs.iter().enumerate().filter(|(id, _)| *id != cheat.party) {
        assert!(matches!(o, Err(e) if e.is_cheating_detected()), "party {id} with {cheat:?}: {o:?}");
    }
}

/// Runs the pipeline with `cheat` and asserts that every honest party caught it.
fn assert_caught(cheat: Cheat) {
    assert_caught_in(cheat, &run(Some(cheat)));
}

#[test]
fn honest_runs_never_abort_and_agree_with_semi_honest_shapes() {
    for _ in 0..6 {
        let outs = run(None);
        let opened: Vec<RingTensor> = outs.into_iter().map(|o| o.expect("honest run aborted").1).collect();
        assert!(opened.windows(2).all(|w| w[0] == w[1]));
        // ReLU output: nonnegative, and the exact plaintext value within a few ulps.
        assert!(opened[0].data().iter().all(|&v| (v as i64) >= 0));
    }
}

#[test]
fn every_deviation_is_detected_by_every_honest_party() {
    let targets = [
        (Target::Input, vec![0, 1, 2]),
        (Target::Mul, vec![0, 1, 2]),
        (Target::Matmul, vec![0, 1, 2]),
        (Target::And, vec![0, 1, 2]),
        // Every truncation has a frame per third of its elements, each party the helper of
        // one and an opener of the other two.
        (Target::Truncate, vec![0, 1, 2]),
        (Target::TruncatedProduct, vec![0, 1, 2]),
        (Target::Carries, vec![0, 1, 2]),
        (Target::MaskInput, vec![0, 1, 2]),
        (Target::Convert, vec![0, 1, 2]),
        (Target::Reveal, vec![0, 1, 2]),
        (Target::Proof, vec![0, 1, 2]),
        // A verifier that sends its prover other challenges than its fellow verifier drew.
        (Target::Challenge, vec![0, 1, 2]),
        (Target::ProofOpening, vec![0, 1, 2]),
    ];
    for (target, parties) in targets {
        for party in parties {
            for error in [1u64, 1 << 63] {
                let cheat = Cheat { party, target, nth: 0, error, last_word: false };
                let outs = run(Some(cheat));
                for (id, o) in outs.iter().enumerate() {
                    if id == party {
                        continue;
                    }
                    match o {
                        Ok(_) => panic!("{cheat:?}: honest party {id} returned an output"),
                        Err(e) => assert!(
                            e.is_cheating_detected(),
                            "{cheat:?}: honest party {id} stopped with {e}, not cheating detected"
                        ),
                    }
                }
            }
        }
    }
}

#[test]
fn every_truncated_product_message_is_checked() {
    // Each party's messages of the pipeline's truncated product (`mul_fixed`), in the order
    // sent: as a frame's helper its product term to party 1 (proved) and its copy to party 0
    // (not proved: the openers' comparison of c catches it), then as party 0 and as party 1
    // its term with its masks (proved). An error in the first or the last word.
    for party in 0..3 {
        for nth in 0..4 {
            for (error, last_word) in [(1u64, false), (1 << 63, true)] {
                assert_caught(Cheat { party, target: Target::TruncatedProduct, nth, error, last_word });
            }
        }
        // There are four: a fifth changes nothing.
        let cheat = Cheat { party, target: Target::TruncatedProduct, nth: 4, error: 1, last_word: false };
        assert!(run(Some(cheat)).iter().all(|o| o.is_ok()), "party {party}: no fifth message");
    }
}

#[test]
fn every_conversion_message_is_checked() {
    // Each party's conversion messages in order: two per truncation (its wrap terms as
    // party 0 of one third's frame and as party 1 of another's; the third's helper sends
    // none), for the pipeline's two truncations, then ReLU's (one product): five from every
    // party. An error in the first or the last word (a truncation's messages are 16-bit
    // fields, four to a word).
    for party in 0..3 {
        for nth in 0..5 {
            for last_word in [false, true] {
                assert_caught(Cheat { party, target: Target::Convert, nth, error: 1 << 63, last_word });
            }
        }
    }
}

#[test]
fn every_wrong_helper_input_is_caught() {
    // A helper that inputs a wrong half of the mask's correction `A` (the first word) or of
    // `2^(64-f) msb(R)` (the last word; its top 16 bits are the value) and the right carries
    // for it, so that its proofs hold: only the bits that parties 0 and 1 compare by digest
    // can catch it, whichever party is the helper.
    for party in 0..3 {
        for (last_word, bits) in [(false, &[0u32, 1, 13, 47, 48, 63][..]), (true, &[48, 55, 62, 63][..])] {
            for &bit in bits {
                assert_caught(Cheat { party, target: Target::MaskInput, nth: 0, error: 1 << bit, last_word });
            }
        }
    }
}

#[test]
fn every_wrong_carry_is_caught_by_the_helpers_proof() {
    // The helper proves its claimed carries itself (no AND layer, no zero check): a wrong
    // carry in any bit of the mask's carries (nth 0), of the correction's (nth 1) or of the
    // sign's (nth 2, 16-bit fields), in the first or the last word, of the third whose helper
    // the party is, must fail its proof. Adding 2^k flips bit k (and perhaps the bits above
    // it). The sign's last word holds 16 bits of fields (85 values, parties 0 and 2) or 32
    // (86, party 1): bits past them would be caught as stray bits, not by the proof.
    for party in 0..3 {
        for nth in 0..3 {
            for last_word in [false, true] {
                let bits: &[u32] = if nth == 2 && last_word { &[0, 7, 15] } else { &[0, 13, 31, 47, 62] };
                for &bit in bits {
                    assert_caught(Cheat { party, target: Target::Carries, nth, error: 1 << bit, last_word });
                }
            }
        }
    }
}

#[test]
fn both_copies_of_a_truncations_opening_are_checked() {
    // Each party sends two copies of c per truncation: as party 0 of one third's frame (its
    // first message of the kind) and as party 1 of another's (its second).
    for party in 0..3 {
        for nth in 0..2 {
            assert_caught(Cheat { party, target: Target::Truncate, nth, error: 1 << 63, last_word: true });
        }
    }
}

/// A truncation by `bits` of 40 values from party 0 (the ends of the domain among them),
/// revealed, with a cheating party if `cheat`.
fn run_truncation(cheat: Option<Cheat>, bits: u32) -> Vec<Result<Vec<u64>, MpcError>> {
    let lim = (1i64 << 62) - 1;
    let values: Vec<u64> =
        (0..40i64).map(|i| [lim, -lim, 0, -1][i as usize % 4].wrapping_add(i * 977) as u64).collect();
    let x = RingTensor::from_vec(values);
    run_parties(
        cheat,
        |p| p,
        |p| {
            let x = p.input(0, (p.party_id() == 0).then_some(&x), &[40])?;
            let t = p.truncate(&x, bits)?;
            Ok(p.reveal(&t)?.into_data())
        },
    )
}

#[test]
fn truncation_checks_hold_at_the_ends_of_the_bit_range() {
    // Fields of 1 bit and of 61 (which straddle words): the helper's messages, its inputs
    // (made consistently), the openers' wrap terms and copies of c, each party in turn.
    for bits in [1u32, 61] {
        for o in run_truncation(None, bits) {
            let got = o.expect("honest run aborted");
            let lim = (1i64 << 62) - 1;
            for (i, g) in got.iter().enumerate() {
                let v = [lim, -lim, 0, -1][i % 4].wrapping_add(i as i64 * 977);
                let (floor, g) = (v >> bits, *g as i64);
                assert!(g == floor || g == floor + 1, "trunc {bits}: {v} -> {g}");
            }
        }
        for party in 0..3 {
            for (target, nth, error, last_word) in [
                (Target::Carries, 0, 1u64 << 63, false),
                (Target::Carries, 1, 1, true),
                (Target::Carries, 2, 1, false),
                (Target::MaskInput, 0, 1, false),
                (Target::MaskInput, 0, 1 << 63, true),
                (Target::Convert, 0, 1, false),
                (Target::Convert, 1, 1 << 63, true),
                (Target::Truncate, 0, 1, true),
                (Target::Truncate, 1, 1 << 63, false),
            ] {
                let cheat = Cheat { party, target, nth, error, last_word };
                for (id, o) in run_truncation(Some(cheat), bits).iter().enumerate() {
                    if id != party {
                        assert!(
                            matches!(o, Err(e) if e.is_cheating_detected()),
                            "trunc {bits}, party {id} with {cheat:?}: {o:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_last_message_before_an_output_is_checked_too() {
    // Party 0 sends party 2 its missing share in reveal_to(2) (the second reveal-kind
    // message of party 0 is reveal()'s).
    for nth in 0..2 {
        assert_caught(Cheat { party: 0, target: Target::Reveal, nth, error: 1, last_word: false });
    }
}

#[test]
fn verifying_early_to_bound_memory_changes_nothing_but_rounds() {
    let want = run(None).into_iter().map(|o| o.expect("honest run").1).collect::<Vec<_>>();
    // A few thousand words: products are verified many times during the pipeline.
    let early = run_with_limit(None, Some(4096));
    for (o, w) in early.into_iter().zip(&want) {
        let got = o.expect("honest run with early verification aborted").1;
        // Truncation rounds at random (floor or +1): equal within a few units in the last place.
        for (a, b) in got.data().iter().zip(w.data()) {
            assert!((*a as i64 - *b as i64).abs() <= 16, "{a} against {b}");
        }
    }
    // A limit of one word: every product is verified as soon as it is made, including the
    // product of a truncated product, whose truncation mask's carries are already on their
    // way to party 0 (the verification must not read that message in their place).
    for (o, w) in run_with_limit(None, Some(1)).into_iter().zip(&want) {
        let got = o.expect("honest run verifying every product aborted").1;
        for (a, b) in got.data().iter().zip(w.data()) {
            assert!((*a as i64 - *b as i64).abs() <= 16, "{a} against {b}");
        }
    }
    // Early verifications run in the background: a deviation in a product or in a proof
    // message of one is caught there, and reported by every honest party before any output.
    for target in [Target::Mul, Target::And, Target::Proof, Target::Challenge, Target::ProofOpening] {
        for party in 0..3 {
            let cheat = Cheat { party, target, nth: 0, error: 1, last_word: false };
            assert_caught_in(cheat, &run_with_limit(Some(cheat), Some(4096)));
        }
    }
}

#[test]
fn verifications_in_the_background_overlap_the_computation() {
    // Three products of 256 elements pass a pending limit of 4096 words, which starts their
    // verification; a chain of 20 small products (under the limit) follows, then an output.
    // Rounds are a Lamport clock, so they do not depend on timing: the verification in the
    // background runs beside the chain, and its rounds count only where its chain of
    // messages is longer than the computation's it overlaps; on the party's thread they add up.
    let run = |ahead: usize| -> Vec<(RingTensor, musket_net::CommStats)> {
        let outs = run_parties(
            None,
            |p| p.with_pending_limit(4096).with_verifications_ahead(ahead),
            |p| {
                let v = RingTensor::new(vec![ROWS * 8], (0..ROWS as u64 * 8).collect())?;
                let x = p.input(0, (p.party_id() == 0).then_some(&v), &[ROWS * 8])?;
                let mut big = x.clone();
                for _ in 0..3 {
                    big = p.mul(&big, &x)?;
                }
                let v = RingTensor::new(vec![8], (1..9).collect())?;
                let mut small = p.input(1, (p.party_id() == 1).then_some(&v), &[8])?;
                for _ in 0..20 {
                    small = p.mul(&small, &small)?;
                }
                let rows = p.reshape(&big, &[ROWS, 8])?;
                let out = p.reveal(&p.add(&p.sum_axis(&rows, 0)?, &small)?)?;
                p.verify()?;
                Ok((out, p.stats()))
            },
        );
        outs.into_iter().map(|o| o.expect("honest run")).collect()
    };
    let (background, on_the_thread) = (run(1), run(0));
    for ((out_q, q), (out_b, b)) in run(2).iter().zip(&background) {
        let key = |s: &musket_net::CommStats| (s.bytes_sent, s.messages_sent, s.rounds);
        assert_eq!((out_q, key(q)), (out_b, key(b)), "one verification: nothing to queue behind it");
    }
    for ((out_b, b), (out_t, t)) in background.iter().zip(&on_the_thread) {
        assert_eq!(out_b, out_t);
        assert_eq!((b.bytes_sent, b.messages_sent), (t.bytes_sent, t.messages_sent), "the same messages");
        // The verification's 13 rounds (a plain proof of 768 products: five levels, 2 N + 3)
        // vanish into the chain's 20.
        assert_eq!((b.rounds, t.rounds), (40, 53));
    }
}

#[test]
fn batches_proved_side_by_side_are_each_checked() {
    // Small batches: each verification proves several of each kind in one group.
    let small = Some((2048, 64, 4096));
    let want = run(None).into_iter().map(|o| o.expect("honest run").1).collect::<Vec<_>>();
    for (o, w) in run_with(None, None, small).into_iter().zip(&want) {
        let got = o.expect("honest run with small batches aborted").1;
        for (a, b) in got.data().iter().zip(w.data()) {
            assert!((*a as i64 - *b as i64).abs() <= 16, "{a} against {b}");
        }
    }
    // An error in the last batch's part of a group's message (the first batch's is the
    // harness's usual target).
    for target in [Target::Proof, Target::ProofOpening] {
        for party in 0..3 {
            let cheat = Cheat { party, target, nth: 0, error: 1, last_word: true };
            assert_caught_in(cheat, &run_with(Some(cheat), None, small));
        }
    }
}

#[test]
fn groups_holding_one_kind_only_are_checked_too() {
    // Tiny ring batches, each a group alone: the ring kind has several groups, the binary
    // kind one, so the second group carries ring batches alone (and the binary records are
    // freed before it).
    let want = run(None).into_iter().map(|o| o.expect("honest run").1).collect::<Vec<_>>();
    let terms = Some((64, 4, 1 << 20));
    let one_batch_a_group = Some(1);
    for (o, w) in run_grouped(None, None, terms, one_batch_a_group).into_iter().zip(&want) {
        let got = o.expect("honest run with uneven groups aborted").1;
        for (a, b) in got.data().iter().zip(w.data()) {
            assert!((*a as i64 - *b as i64).abs() <= 16, "{a} against {b}");
        }
    }
    // The pipeline's products are verified once, in these groups: the first and the second
    // opening message of a party are those of the mixed and a ring-only group.
    for party in 0..3 {
        for (target, nth) in [(Target::Proof, 0), (Target::ProofOpening, 0), (Target::ProofOpening, 1)] {
            let cheat = Cheat { party, target, nth, error: 1, last_word: true };
            assert_caught_in(cheat, &run_grouped(Some(cheat), None, terms, one_batch_a_group));
        }
    }
}

#[test]
fn a_verifier_that_lies_about_a_challenge_is_stopped_by_its_prover() {
    // Verifier B of party P is party P + 1; its other verifier, A, sends P a copy of every
    // seed and challenge in the same round. A wrong challenge would make the proof fail
    // anyway, but only at the openings, after the lying verifier could have steered P's
    // folds: the prover must stop at the level itself.
    for party in 0..3 {
        let cheat = Cheat { party, target: Target::Challenge, nth: 0, error: 1, last_word: false };
        let outs = run(Some(cheat));
        let prover = (party + 2) % 3;
        match &outs[prover] {
            Err(MpcError::CheatingDetected { phase, .. }) => {
                assert!(
                    phase.contains("differ between its verifiers"),
                    "{cheat:?}: prover stopped at {phase}"
                )
            }
            other => panic!("{cheat:?}: prover {prover} ended with {other:?}"),
        }
    }
}
