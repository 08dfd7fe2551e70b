//! Malicious 2PC arithmetic (SPDZ2k's MACs, honest dealer) against plaintext, and against a
//! party that changes what it sends.

use musket_2pc::{run_dealer_malicious, MacShare, Request, Spdz2k};
use musket_core::{maps, MpcError};
use musket_net::{local_mesh, Net};
use musket_ring::{Im2col, RingTensor, WideTensor};
use std::time::Duration;

/// Which message a cheating party changes (adding `delta` to its first word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Input,
    Product,
    MatrixProduct,
    Convolution,
    ConvolutionImage,
    Truncation,
    Reveal,
}

const FRAC: u32 = 16;

fn t(shape: &[usize], v: &[i64]) -> RingTensor {
    RingTensor::new(shape.to_vec(), v.iter().map(|&x| x as u64).collect()).unwrap()
}

/// The inputs: party 0's `x` [2, 3], `a` [2, 3] and convolution weights `w` [2, 1, 2, 2],
/// party 1's `y` [2, 3], `b` [3, 2] and image `img` [1, 1, 3, 3].
#[derive(Clone)]
struct Inputs {
    x: Vec<i64>,
    y: Vec<i64>,
    a: Vec<i64>,
    b: Vec<i64>,
    w: Vec<i64>,
    img: Vec<i64>,
}

/// The test's convolution: a 2x2 kernel over a 3x3 image padded at the top and left.
const CONV: Im2col = Im2col {
    n: 1,
    c: 1,
    h: 3,
    wd: 3,
    kh: 2,
    kw: 2,
    oh: 3,
    ow: 3,
    stride: [1, 1],
    dilation: [1, 1],
    pads: [1, 1],
};

/// What both parties run; reveals `[trunc(x * y), trunc(a @ b), x^T + 1 (public), the sum of
/// y over axis 0, trunc(z), trunc(w conv img)]`, where `z` is 0 modulo 2^64 but -2^64 modulo 2^128 (the high
/// half must not matter).
fn computation(p: &mut Spdz2k, v: &Inputs, cheat: Option<(Step, u128)>) -> Result<Vec<RingTensor>, MpcError> {
    let me = p.party_id();
    let mine = |owner: usize, shape: &[usize], v: &[i64]| (me == owner).then(|| t(shape, v));
    let cheat_at = |p: &mut Spdz2k, step: Step| {
        if let Some((s, delta)) = cheat.filter(|c| c.0 == step) {
            let _ = s;
            p.cheat_on_next_opening(delta);
        }
    };
    cheat_at(p, Step::Input);
    let xs = p.input(0, mine(0, &[2, 3], &v.x).as_ref(), &[2, 3])?;
    let ys = p.input(1, mine(1, &[2, 3], &v.y).as_ref(), &[2, 3])?;
    let as_ = p.input(0, mine(0, &[2, 3], &v.a).as_ref(), &[2, 3])?;
    let bs = p.input(1, mine(1, &[3, 2], &v.b).as_ref(), &[3, 2])?;
    // -2^63 (2^63 as a word, lifted with its sign) plus the public 2^63 lifted alike.
    let z = p.input(0, mine(0, &[1], &[i64::MIN]).as_ref(), &[1])?;
    let z = p.add_public(&z, &t(&[1], &[i64::MIN]))?;
    let ws = p.input(0, mine(0, &[2, 1, 2, 2], &v.w).as_ref(), &[2, 1, 2, 2])?;
    let imgs = p.input(1, mine(1, &[1, 1, 3, 3], &v.img).as_ref(), &[1, 1, 3, 3])?;

    cheat_at(p, Step::Product);
    let xy = p.mul(&xs, &ys)?;
    cheat_at(p, Step::Truncation);
    let xy = p.truncate(&xy, FRAC)?;
    cheat_at(p, Step::MatrixProduct);
    let ab = p.matmul(&as_, &bs)?;
    let ab = p.truncate(&ab, FRAC)?;
    let xt = p.linear(&xs, &maps::Transpose2)?;
    let xt = p.add_public(&xt, &RingTensor::filled(&[3, 2], 1 << FRAC))?;
    let ysum = p.linear(&ys, &maps::SumAxis(0))?;
    let zt = p.truncate(&z, FRAC)?;
    cheat_at(p, Step::Convolution);
    if let Some((_, delta)) = cheat.filter(|c| c.0 == Step::ConvolutionImage) {
        // The opening's last share: the image's last pixel (after the 8 weights).
        p.cheat_on_opening_at(0, delta, 16);
    }
    let conv = p.matmul_im2col(&ws, &imgs, &CONV)?;
    let conv = p.truncate(&conv, FRAC)?;
    let mut out = Vec::new();
    for (i, share) in [xy, ab, xt, ysum, zt, conv].iter().enumerate() {
        if i == 4 {
            cheat_at(p, Step::Reveal);
        }
        out.push(p.reveal(share)?);
    }
    p.finish()?;
    Ok(out)
}

type Outcome = [Result<Vec<RingTensor>, MpcError>; 2];

/// Runs both parties and the dealer as threads; `cheater` is `(party, step, delta)`.
fn run(v: &Inputs, cheater: Option<(usize, Step, u128)>) -> Outcome {
    let mut ends = local_mesh(3, Some(Duration::from_secs(20))).into_iter();
    let (e0, e1, e2) = (ends.next().unwrap(), ends.next().unwrap(), ends.next().unwrap());
    let dealer = std::thread::spawn(move || run_dealer_malicious(Net::new(Box::new(e2))));
    let party = |end, id: usize| {
        let v = v.clone();
        let cheat = cheater.filter(|c| c.0 == id).map(|c| (c.1, c.2));
        std::thread::spawn(move || {
            let mut p = Spdz2k::new(Net::new(Box::new(end)))?;
            let out = computation(&mut p, &v, cheat);
            if let Err(e) = &out {
                p.abort(&e.public_reason());
            }
            out
        })
    };
    let (h0, h1) = (party(e0, 0), party(e1, 1));
    let outcome = [h0.join().unwrap(), h1.join().unwrap()];
    let _ = dealer.join().unwrap();
    outcome
}

fn fixed(v: f64) -> i64 {
    (v * f64::from(1u32 << FRAC)).round() as i64
}

/// The same outputs in plaintext, in i128 (floor division for the truncations).
fn expected(v: &Inputs) -> Vec<Vec<i64>> {
    let tr = |p: i128| p.div_euclid(1 << FRAC) as i64;
    let xy = v.x.iter().zip(&v.y).map(|(&p, &q)| tr(i128::from(p) * i128::from(q))).collect();
    let ab = (0..4)
        .map(|ij| {
            let (i, j) = (ij / 2, ij % 2);
            tr((0..3).map(|l| i128::from(v.a[i * 3 + l]) * i128::from(v.b[l * 2 + j])).sum())
        })
        .collect();
    let xt = (0..6).map(|ji| v.x[(ji % 2) * 3 + ji / 2] + (1 << FRAC)).collect();
    let ysum = (0..3).map(|j| v.y[j] + v.y[3 + j]).collect();
    // The convolution directly: output channel o at (i, j) sums w[o, ki, kj] times the pixel
    // at (i + ki - 1, j + kj - 1), zero outside the image.
    let pixel = |y: i64, x: i64| {
        if (0..3).contains(&y) && (0..3).contains(&x) {
            v.img[(y * 3 + x) as usize]
        } else {
            0
        }
    };
    let conv = (0..18)
        .map(|at| {
            let (o, i, j) = (at / 9, (at % 9) / 3, at % 3);
            tr((0..4)
                .map(|tap| {
                    let (ki, kj) = (tap / 2, tap % 2);
                    i128::from(v.w[o * 4 + tap])
                        * i128::from(pixel(i as i64 + ki as i64 - 1, j as i64 + kj as i64 - 1))
                })
                .sum())
        })
        .collect();
    vec![xy, ab, xt, ysum, vec![0], conv]
}

fn inputs(seed: u64) -> Inputs {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let mut next = |scale: f64| {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        fixed(((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale)
    };
    let mut draw = |n: usize, scale: f64| (0..n).map(|_| next(scale)).collect::<Vec<i64>>();
    let (mut x, mut y, a, b) = (draw(6, 1000.0), draw(6, 1000.0), draw(6, 100.0), draw(6, 100.0));
    let (w, img) = (draw(8, 100.0), draw(9, 100.0));
    // Edge cases: zero, negatives, products near 2^46 (2^62 at the truncation's input).
    x[0] = 0;
    x[1] = -fixed(3.5);
    x[2] = fixed(30000.0);
    y[2] = -fixed(30000.0);
    Inputs { x, y, a, b, w, img }
}

#[test]
fn honest_runs_match_plaintext_within_one_ulp_and_never_abort() {
    for seed in 0..12 {
        let v = inputs(seed);
        let [r0, r1] = run(&v, None);
        let (r0, r1) = (r0.expect("party 0 finishes"), r1.expect("party 1 finishes"));
        assert_eq!(r0, r1, "both parties open the same values");
        for (k, (got, want)) in r0.iter().zip(expected(&v)).enumerate() {
            assert_eq!(got.len(), want.len());
            for (g, w) in got.data().iter().zip(&want) {
                let d = (*g as i64).wrapping_sub(*w);
                // Truncations are the floor or one more; the rest are exact.
                let ok = if [0, 1, 4, 5].contains(&k) { d == 0 || d == 1 } else { d == 0 };
                assert!(ok, "output {k} (seed {seed}): {} against {w}", *g as i64);
            }
        }
    }
}

#[test]
fn a_changed_message_from_either_party_at_any_step_makes_both_abort_with_cheating_detected() {
    let v = inputs(99);
    for cheater in 0..2 {
        for step in [
            Step::Input,
            Step::Product,
            Step::MatrixProduct,
            Step::Convolution,
            Step::ConvolutionImage,
            Step::Truncation,
            Step::Reveal,
        ] {
            // An error in the low bit, and one in the top bit of the secret half, which a MAC
            // modulo 2^64 alone would miss half the time. (An error in the high half alone
            // changes no output: outputs and truncations read the low half.)
            for delta in [1u128, 1 << 63] {
                let outcome = run(&v, Some((cheater, step, delta)));
                for (party, r) in outcome.iter().enumerate() {
                    let err = r.as_ref().err().unwrap_or_else(|| {
                        panic!(
                            "party {party} finished although party {cheater} changed {step:?} by {delta:#x}"
                        )
                    });
                    if party != cheater {
                        assert!(
                            err.is_cheating_detected(),
                            "honest party {party} ({step:?}, {delta:#x}): {err}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_share_prints_its_shape_only() {
    let share = MacShare {
        value: WideTensor::new(vec![1], vec![7]).unwrap(),
        mac: WideTensor::new(vec![1], vec![9]).unwrap(),
    };
    assert_eq!(format!("{share:?}"), "MacShare[1]");
}

#[test]
fn parties_asking_the_dealer_for_different_material_are_stopped_by_it() {
    let mut ends = local_mesh(3, Some(Duration::from_secs(20))).into_iter();
    let (e0, e1, e2) = (ends.next().unwrap(), ends.next().unwrap(), ends.next().unwrap());
    let dealer = std::thread::spawn(move || run_dealer_malicious(Net::new(Box::new(e2))));
    let party = |end, bits: u32| {
        std::thread::spawn(move || -> Result<RingTensor, MpcError> {
            let mut p = Spdz2k::new(Net::new(Box::new(end)))?;
            let x = p.input(0, (p.party_id() == 0).then(|| t(&[2], &[5 << 20, -3])).as_ref(), &[2])?;
            // Party 1 truncates by another shift: its request differs from party 0's.
            let y = p.truncate(&x, bits)?;
            p.reveal(&y)
        })
    };
    let (h0, h1) = (party(e0, 16), party(e1, 12));
    for (id, r) in [h0.join().unwrap(), h1.join().unwrap()].into_iter().enumerate() {
        let err = r.expect_err("no party may finish");
        assert!(err.is_cheating_detected(), "party {id}: {err}");
    }
    assert!(dealer.join().unwrap().expect_err("the dealer stops").is_cheating_detected());
}

/// Runs `job` at both parties (and the dealer) as threads.
fn run_job<T: Send + 'static>(
    job: impl Fn(&mut Spdz2k) -> Result<T, MpcError> + Send + Clone + 'static,
) -> [Result<T, MpcError>; 2] {
    let mut ends = local_mesh(3, Some(Duration::from_secs(20))).into_iter();
    let (e0, e1, e2) = (ends.next().unwrap(), ends.next().unwrap(), ends.next().unwrap());
    let dealer = std::thread::spawn(move || run_dealer_malicious(Net::new(Box::new(e2))));
    let party = |end| {
        let job = job.clone();
        std::thread::spawn(move || {
            let mut p = Spdz2k::new(Net::new(Box::new(end)))?;
            let out = job(&mut p).and_then(|v| p.finish().map(|()| v));
            if let Err(e) = &out {
                p.abort(&e.public_reason());
            }
            out
        })
    };
    let (h0, h1) = (party(e0), party(e1));
    let out = [h0.join().unwrap(), h1.join().unwrap()];
    let _ = dealer.join().unwrap();
    out
}

#[test]
fn private_reveals_reach_their_receiver_only_and_batched_products_match_plaintext() {
    // x [2, 2, 3] (party 0) times y [2, 3, 2] (party 1), item by item; then x revealed to
    // party 1 alone, and a changed message in that private reveal.
    let x: Vec<i64> = (0..12).map(|v| fixed(v as f64 - 5.5)).collect();
    let y: Vec<i64> = (0..12).map(|v| fixed(2.0 - v as f64 * 0.25)).collect();
    let (xj, yj) = (x.clone(), y.clone());
    let job = move |cheat: Option<usize>| {
        let (x, y) = (xj.clone(), yj.clone());
        move |p: &mut Spdz2k| {
            let me = p.party_id();
            let xs = p.input(0, (me == 0).then(|| t(&[2, 2, 3], &x)).as_ref(), &[2, 2, 3])?;
            let ys = p.input(1, (me == 1).then(|| t(&[2, 3, 2], &y)).as_ref(), &[2, 3, 2])?;
            let prod = p.matmul_batched(&xs, &ys)?;
            let prod = p.truncate(&prod, FRAC)?;
            if cheat == Some(me) {
                p.cheat_on_next_opening(1 << 63);
            }
            let private = p.reveal_to(&xs, 1)?;
            Ok((p.reveal(&prod)?, private))
        }
    };
    let [r0, r1] = run_job(job(None));
    let ((prod0, private0), (prod1, private1)) = (r0.unwrap(), r1.unwrap());
    assert_eq!(prod0, prod1);
    assert!(private0.is_none(), "party 0 receives nothing");
    assert_eq!(private1.unwrap(), t(&[2, 2, 3], &x));
    for b in 0..2 {
        for i in 0..2 {
            for j in 0..2 {
                let exact: i128 =
                    (0..3).map(|l| i128::from(x[b * 6 + i * 3 + l]) * i128::from(y[b * 6 + l * 2 + j])).sum();
                let got = prod0.data()[b * 4 + i * 2 + j] as i64;
                let d = got - exact.div_euclid(1 << FRAC) as i64;
                assert!(d == 0 || d == 1, "item {b} ({i}, {j}): {got}");
            }
        }
    }
    for cheater in 0..2 {
        for (id, r) in run_job(job(Some(cheater))).iter().enumerate() {
            let err = r.as_ref().err().unwrap_or_else(|| panic!("party {id} finished (cheater {cheater})"));
            assert!(id == cheater || err.is_cheating_detected(), "party {id}: {err}");
        }
    }
}

#[test]
fn products_and_truncations_send_pinned_bytes_in_one_round() {
    let n = 1000;
    let [r0, r1] = run_job(move |p: &mut Spdz2k| {
        let me = p.party_id();
        let other = 1 - me;
        let v = vec![3u64 << FRAC; n];
        let a = p.input(0, (me == 0).then(|| RingTensor::from_vec(v.clone())).as_ref(), &[n])?;
        let b = p.input(1, (me == 1).then(|| RingTensor::from_vec(v.clone())).as_ref(), &[n])?;
        let before = p.stats();
        let c = p.mul(&a, &b)?;
        let after_mul = p.stats();
        p.truncate(&c, FRAC)?;
        let after_trunc = p.stats();
        let (m, k, q) = (4, 5, 6);
        let x = p.linear(&a, &maps::FlatRange { from: 0, shape: &[m, k] })?;
        let y = p.linear(&b, &maps::FlatRange { from: 0, shape: &[k, q] })?;
        p.matmul(&x, &y)?;
        let after_matmul = p.stats();
        // A convolution opens its masked weights and image, not the image's im2col matrix.
        let w = p.linear(&a, &maps::FlatRange { from: 0, shape: &[2, 1, 2, 2] })?;
        let img = p.linear(&b, &maps::FlatRange { from: 0, shape: &[1, 1, 3, 3] })?;
        p.matmul_im2col(&w, &img, &CONV)?;
        let after_conv = p.stats();
        p.reveal(&c)?;
        let after_reveal = p.stats();
        let sent = |s: &musket_net::CommStats, e: &musket_net::CommStats| {
            s.bytes_sent_to[other] - e.bytes_sent_to[other]
        };
        Ok([
            (sent(&after_mul, &before), after_mul.rounds - before.rounds),
            (sent(&after_trunc, &after_mul), after_trunc.rounds - after_mul.rounds),
            (sent(&after_matmul, &after_trunc), after_matmul.rounds - after_trunc.rounds),
            (sent(&after_conv, &after_matmul), after_conv.rounds - after_matmul.rounds),
            (sent(&after_reveal, &after_conv), after_reveal.rounds - after_conv.rounds),
        ])
    });
    let n = n as u64;
    // Two u128s an element for a product (x - a, y - b), one for a truncation (x + r), and
    // one an element of each operand for a matrix product (for a convolution, of the weights
    // and the image: 8 + 9, where the im2col matrix alone has 4 x 9); one round each. A reveal
    // opens one u128 an element between two MAC checks, each four messages in a chain with the
    // dealer (the request, the coefficients' seed, the combination, the verdict): 9 rounds.
    let want = [(32 * n, 1), (16 * n, 1), (16 * (20 + 30), 1), (16 * (8 + 9), 1), (16 * n, 9)];
    assert_eq!(r0.unwrap(), want);
    assert_eq!(r1.unwrap(), want);
}

#[test]
fn a_sign_circuit_ands_the_opened_operand_locally_with_pinned_bytes_and_rounds() {
    let n = 6400;
    let [r0, r1] = run_job(move |p: &mut Spdz2k| {
        let me = p.party_id();
        let v: Vec<i64> = (0..n as i64).map(|i| (i - 3200) * 977).collect();
        let x = p.input(0, (me == 0).then(|| t(&[n], &v)).as_ref(), &[n])?;
        let before = p.stats();
        let signs = musket_core::msb(p, &x)?;
        let after = p.stats();
        let negatives = p.mul_bits(&x, &signs)?;
        let after_product = p.stats();
        let opened = p.reveal_bits(&signs)?;
        let products = p.reveal(&negatives)?;
        for (i, &vi) in v.iter().enumerate() {
            assert_eq!(opened[i / 64] >> (i % 64) & 1, u64::from(vi < 0), "element {i}");
            assert_eq!(products.data()[i] as i64, vi.min(0), "element {i}");
        }
        let sent = |s: &musket_net::CommStats| s.bytes_sent_to[1 - me];
        Ok([
            (sent(&after) - sent(&before), after.rounds - before.rounds),
            (sent(&after_product) - sent(&after), after_product.rounds - after.rounds),
        ])
    });
    // The opening of x + r (16 bytes an element, one round), then the carry tree's six AND
    // layers (181 - 63 = 118 AND words per 64 elements, two words opened each): the generate
    // layer's 63 words, an AND with the opened x + r, are local.
    // A product with the signs opens the masked bits (a word per 64 elements) and the masked
    // value (a u128) in one round.
    let words = n as u64 / 64;
    let want = [(16 * n as u64 + 118 * words * 16, 7), (8 * words + 16 * n as u64, 1)];
    assert_eq!(r0.unwrap(), want);
    assert_eq!(r1.unwrap(), want);
}

#[test]
fn the_malicious_dealer_serves_no_semi_honest_material_and_wants_the_key_first() {
    for first in [Request::Triple { n: 4 }, Request::MacTriple { n: 4 }, Request::MacCheck] {
        let mut ends = local_mesh(3, Some(Duration::from_secs(20))).into_iter();
        let (e0, e1, e2) = (ends.next().unwrap(), ends.next().unwrap(), ends.next().unwrap());
        let dealer = std::thread::spawn(move || run_dealer_malicious(Net::new(Box::new(e2))));
        // Both parties ask the same, so only the kind (or its place) can be refused.
        let party = |end| {
            std::thread::spawn(move || {
                let mut net = Net::new(Box::new(end));
                net.recv_bytes(2).unwrap();
                net.send_bytes(2, &first.encode()).unwrap();
            })
        };
        let (h0, h1) = (party(e0), party(e1));
        h0.join().unwrap();
        h1.join().unwrap();
        let err = dealer.join().unwrap().expect_err("the dealer refuses");
        assert!(err.to_string().contains("does not serve"), "{first:?}: {err}");
    }
}

/// Signs of party 0's `x` through the sign circuit, and ReLU through `mul_bits`: every binary
/// step of the back end (the conversion to binary, AND layers, XOR with public words, the
/// conversion back, products with bits).
fn signs_and_relu(p: &mut Spdz2k, x: &[i64]) -> Result<(RingTensor, RingTensor), MpcError> {
    use musket_core::Protocol;
    let n = x.len();
    let me = p.party_id();
    let xs = p.input(0, (me == 0).then(|| t(&[n], x)).as_ref(), &[n])?;
    let sign = musket_core::msb(p, &xs)?;
    let negative = p.b2a_packed(&sign, &[n])?;
    let not_negative = p.bits_xor_public(&sign, &vec![u64::MAX; n.div_ceil(64)]);
    let relu = Protocol::mul_bits(p, &xs, &not_negative)?;
    Ok((p.reveal(&negative)?, p.reveal(&relu)?))
}

fn sign_inputs() -> Vec<i64> {
    let mut x = vec![0, 1, -1, 5 << 16, -(5 << 16), (1 << 62) - 1, -(1 << 62) + 1, i64::MIN, i64::MAX];
    x.extend((0..70).map(|i| (i as i64 - 35) * 0x1234_5678_9ABC));
    x
}

#[test]
fn signs_and_relu_match_plaintext_over_the_whole_ring() {
    let x = sign_inputs();
    let xj = x.clone();
    let [r0, r1] = run_job(move |p: &mut Spdz2k| signs_and_relu(p, &xj));
    let ((neg, relu), other) = (r0.unwrap(), r1.unwrap());
    assert_eq!((neg.clone(), relu.clone()), other);
    for (i, &v) in x.iter().enumerate() {
        assert_eq!(neg.data()[i], u64::from(v < 0), "sign of {v}");
        assert_eq!(relu.data()[i] as i64, v.max(0), "relu of {v}");
    }
}

#[test]
fn a_changed_message_at_any_binary_step_makes_both_abort_with_cheating_detected() {
    let x = sign_inputs();
    // How many messages of shares each party sends (a combined opening's parts counted apart).
    let xj = x.clone();
    let [c0, c1] = run_job(move |p: &mut Spdz2k| signs_and_relu(p, &xj).map(|_| p.cheat_points()));
    let counts = [c0.unwrap(), c1.unwrap()];
    for cheater in 0..2 {
        for delta in [1u128, 1 << 63] {
            // Each message of shares the cheater sends, in turn, until it has none left (the
            // run then finishes): every one must be caught.
            let mut skip = 0;
            loop {
                let xj = x.clone();
                let outcome = run_job(move |p: &mut Spdz2k| {
                    if p.party_id() == cheater {
                        p.cheat_on_opening(skip, delta);
                    }
                    signs_and_relu(p, &xj)
                });
                if outcome.iter().all(Result::is_ok) {
                    assert_eq!(
                        skip, counts[cheater],
                        "party {cheater}'s message {skip} changed and not caught"
                    );
                    assert!(skip >= 10, "party {cheater} sent only {skip} messages of shares");
                    break;
                }
                for (party, r) in outcome.iter().enumerate() {
                    let err = r.as_ref().err().unwrap_or_else(|| {
                        panic!("party {party} finished although party {cheater} changed message {skip}")
                    });
                    if party != cheater {
                        assert!(err.is_cheating_detected(), "honest party {party} (message {skip}): {err}");
                    }
                }
                skip += 1;
            }
        }
    }
}

#[test]
fn early_checks_at_a_small_pending_limit_keep_the_answers_and_catch_a_change() {
    // Every opening of the sign circuit is checked as soon as it is recorded.
    let x = sign_inputs();
    for cheat in [None, Some(2usize)] {
        let xj = x.clone();
        let mut ends = local_mesh(3, Some(Duration::from_secs(20))).into_iter();
        let (e0, e1, e2) = (ends.next().unwrap(), ends.next().unwrap(), ends.next().unwrap());
        let dealer = std::thread::spawn(move || run_dealer_malicious(Net::new(Box::new(e2))));
        let party = |end| {
            let xj = xj.clone();
            std::thread::spawn(move || {
                let mut p = Spdz2k::new(Net::new(Box::new(end)))?.with_pending_limit(64);
                if let (Some(skip), 1) = (cheat, p.party_id()) {
                    p.cheat_on_opening(skip, 1);
                }
                let out = signs_and_relu(&mut p, &xj).and_then(|v| p.finish().map(|()| v));
                if let Err(e) = &out {
                    p.abort(&e.public_reason());
                }
                out
            })
        };
        let (h0, h1) = (party(e0), party(e1));
        let (r0, r1) = (h0.join().unwrap(), h1.join().unwrap());
        let _ = dealer.join().unwrap();
        match cheat {
            None => {
                let (neg, relu) = r0.unwrap();
                assert_eq!((neg.clone(), relu.clone()), r1.unwrap());
                for (i, &v) in x.iter().enumerate() {
                    assert_eq!((neg.data()[i], relu.data()[i] as i64), (u64::from(v < 0), v.max(0)));
                }
            }
            Some(_) => assert!(r0.unwrap_err().is_cheating_detected()),
        }
    }
}
