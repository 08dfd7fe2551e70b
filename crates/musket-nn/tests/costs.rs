//! Pinned rounds and bytes for the functions the issue names: ReLU, max-pool 2x2, exp,
//! reciprocal, softmax and GELU. Measured from aligned round clocks; bytes are online bytes sent by
//! each compute party (2PC dealer traffic is preprocessing and not included).

use musket_core::{share_fixed, MpcError, Protocol};
use musket_net::CommStats;
use musket_nn::*;
use musket_ring::RingTensor;
use musket_session::{run_local, Backend, Job};

const FP: FixedPoint = FixedPoint::DEFAULT;

struct Measure {
    which: &'static str,
}

impl Job for Measure {
    type Output = (CommStats, CommStats);
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let shape: Vec<usize> = match self.which {
            "maxpool" => vec![1, 4, 16, 16],
            "softmax" | "softmax_bounded" => vec![10, 10],
            _ => vec![1000],
        };
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| ((i % 17) as f64) / 4.0 + 0.5).collect();
        let x = share_fixed(p, FP, 0, (p.party_id() == 0).then_some(&v[..]), &shape)?;
        let tiny = p.input(0, (p.party_id() == 0).then_some(&RingTensor::zeros(&[1])), &[1])?;
        p.reveal(&tiny)?;
        p.reveal(&tiny)?;
        let before = p.stats();
        match self.which {
            "relu" => drop(relu(p, &x)?),
            "maxpool" => drop(max_pool2d(p, &x, &Pool2d::new([2, 2], [2, 2], [0; 4]))?),
            "exp" => drop(exp(p, FP, &x)?),
            "reciprocal" => drop(reciprocal(p, FP, &x)?),
            "softmax" => drop(softmax(p, FP, &x, 1)?),
            "softmax_bounded" => drop(softmax_bounded(p, FP, &x, 1)?),
            "gelu" => drop(gelu(p, FP, &x)?),
            "sigmoid" => drop(sigmoid(p, FP, &x)?),
            "relu6" => drop(relu6(p, FP, &x)?),
            other => panic!("{other}"),
        }
        Ok((before, p.stats()))
    }
}

/// (rounds, online bytes sent per compute party).
fn measure(backend: Backend, which: &'static str) -> (u64, Vec<u64>) {
    let outs: Vec<(CommStats, CommStats)> =
        run_local(backend, &Measure { which }, None).unwrap().into_iter().filter_map(|o| o.output).collect();
    let start = outs.iter().map(|o| o.0.rounds).max().unwrap();
    let end = outs.iter().map(|o| o.1.rounds).max().unwrap();
    let bytes = outs
        .iter()
        .map(|(b, a)| {
            let d = a.since(b);
            d.bytes_sent - d.preprocessing_bytes_sent
        })
        .collect();
    (end - start, bytes)
}

#[test]
fn pinned_function_costs() {
    // (function, backend, rounds, bytes per compute party)
    // Derivations (n = 1000 elements, nb = 16 packed words, 2PC bytes per party):
    // relu: 181 AND words x 2 x 16 x 8 + 16 x 8 (masked bit) + 1000 x 8 (masked value), one
    // round after the sign circuit (mul_bits).
    // exp: the clamp to [-64, 16] (one sign circuit over 2n, 2n injected bits, 2 products of
    // n: 9 rounds), then 11 products of n (2 words each) + 12 truncations of n; rounds 9 + 3 x 2
    // + 1 + 4 x 2.
    // reciprocal: bit decomposition (7) + suffix AND over the 59 planes of |x| from bit 4 up
    // (6) + bit injection of 27 rows and the sign (1) + the two products with the sign (1) +
    // x*s (2) + two Newton steps (8) + y*s (2) = 27 rounds.
    // softmax 10x10: max over 10 = 4 levels x 8 + clamp at -16 (8) + exp of the clamped
    // differences 10 (e^(z/2) as a degree-10 Chebyshev series: T_2, T_4, T_5 and the sum of
    // products, then one squaring) + reciprocal of the sums normalised over [2^-1, 2^5) only
    // (26) + product 2.
    // softmax_bounded: the same with the tournament's and the clamp's sign circuits 42 bits
    // wide (115 AND gates instead of 181, in as many rounds).
    // gelu: a 32-bit sign circuit on x (6 rounds in 3PC, 5 in 2PC) and its product with x
    // (`mul_bits`), then a 32-bit sign circuit on 4 - |x| and its product, then (v = |x|/2 - 1
    // needs no truncation) the Chebyshev series: T_2, T_4, T_5 each one truncated product,
    // then the sum of products (3 pairs) with its truncation.
    // sigmoid: the same sign circuit over 3n and injection, one round of products for
    // |clip(x)|, v (a truncation), the degree-12 Chebyshev series (T_2, T_4, then T_5 and T_6
    // in one round, then the sum's truncation) and one product with the sign.
    // 3PC: a product followed by its truncation is fused (`mul_truncate`, two rounds instead
    // of three), and products that are only summed before a truncation (the Chebyshev series'
    // upper half, exp's cubic and quartic terms) are never re-shared: `dot_truncate` opens
    // their summed terms straight into the truncation. Each truncation's helper role, and the
    // party that shares a conversion's operand, rotate over thirds of the elements.
    // Since the fifteenth session a 3PC party sends nothing for its own third in a
    // conversion's product (b2a, mul_bits) and in the generate layer of a sign circuit on
    // a2b operands, where its terms are zero: relu 44496 -> 39312 bytes from party 0,
    // reciprocal (27 injected bits) 488640 -> 413976.
    // relu6 (clip): one sign circuit over 2n, then its two corrections by `mul_bits` (since
    // the fifteenth session; b2a then a product before: 2PC 9 rounds and 124928 bytes, 3PC
    // and malicious 3PC one round more for the same bytes). Malicious bytes exclude the proofs
    // (they run at the next opening).
    let expected: &[(&str, Backend, u64, &[u64])] = &[
        ("relu", Backend::TwoPc, 8, &[54464, 54464]),
        ("relu", Backend::ThreePc, 10, &[39312, 39816, 39320]),
        ("maxpool", Backend::TwoPc, 16, &[40992, 40992]),
        ("maxpool", Backend::ThreePc, 20, &[30192, 30704, 30208]),
        ("exp", Backend::TwoPc, 24, &[396928, 396928]),
        ("exp", Backend::ThreePc, 27, &[284456, 284856, 283912]),
        ("reciprocal", Backend::TwoPc, 27, &[320816, 320816]),
        ("reciprocal", Backend::ThreePc, 29, &[413976, 413880, 413936]),
        ("softmax", Backend::TwoPc, 78, &[46240, 46240]),
        ("softmax", Backend::ThreePc, 90, &[28776, 28600, 28736]),
        ("softmax_bounded", Backend::TwoPc, 78, &[39904, 39904]),
        ("softmax_bounded", Backend::ThreePc, 90, &[25608, 25432, 25568]),
        ("gelu", Backend::TwoPc, 22, &[188288, 188288]),
        ("gelu", Backend::ThreePc, 26, &[127952, 128384, 127944]),
        ("sigmoid", Backend::TwoPc, 19, &[376488, 376488]),
        ("sigmoid", Backend::ThreePc, 22, &[223112, 223040, 223080]),
        ("relu6", Backend::TwoPc, 8, &[108928, 108928]),
        ("relu6", Backend::ThreePc, 10, &[78624, 79136, 78128]),
        ("relu6", Backend::ThreePcMalicious, 10, &[94336, 94336, 94336]),
    ];
    let mut wrong = Vec::new();
    for &(which, backend, rounds, bytes) in expected {
        let (r, b) = measure(backend, which);
        if (r, b.as_slice()) != (rounds, bytes) {
            wrong.push(format!("(\"{which}\", Backend::{backend:?}, {r}, &{b:?}),"));
        }
    }
    assert!(wrong.is_empty(), "costs changed; if deliberate, update the table:\n{}", wrong.join("\n"));
}

/// A convolution of images `[1, 4, 8, 8]` by weights `[8, 4, 3, 3]` (padding 1).
struct Convolution;

impl Job for Convolution {
    type Output = (CommStats, CommStats);
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let x: Vec<f64> = (0..256).map(|i| ((i % 13) as f64) / 8.0 - 0.7).collect();
        let w: Vec<f64> = (0..288).map(|i| ((i % 7) as f64) / 16.0 - 0.2).collect();
        let x = share_fixed(p, FP, 0, (p.party_id() == 0).then_some(&x[..]), &[1, 4, 8, 8])?;
        let w = share_fixed(p, FP, 1, (p.party_id() == 1).then_some(&w[..]), &[8, 4, 3, 3])?;
        let before = p.stats();
        conv2d(p, FP, &x, &w, None, &Conv2d { pads: [1, 1, 1, 1], ..Default::default() })?;
        Ok((before, p.stats()))
    }
}

#[test]
fn a_two_party_convolution_opens_its_masked_images_not_their_im2col_matrix() {
    let cost = |backend| {
        let outs: Vec<(CommStats, CommStats)> =
            run_local(backend, &Convolution, None).unwrap().into_iter().filter_map(|o| o.output).collect();
        outs.iter()
            .map(|(b, a)| {
                let d = a.since(b);
                (a.rounds - b.rounds, d.bytes_sent - d.preprocessing_bytes_sent)
            })
            .collect::<Vec<_>>()
    };
    // Opened: the masked weights (288 words) and the masked images (256 words; their im2col
    // matrix has 36 x 64 = 2304), then the truncation's masked product (8 x 64 = 512 words):
    // 8 bytes a word, two rounds. Malicious 2PC: the same words as u128s (16 bytes each).
    let words = 288 + 256 + 512;
    assert_eq!(cost(Backend::TwoPc), vec![(2, 8 * words); 2]);
    assert_eq!(cost(Backend::TwoPcMalicious), vec![(2, 16 * words); 2]);
}
