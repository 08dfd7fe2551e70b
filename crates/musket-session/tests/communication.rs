//! Pinned communication: bytes and rounds per party for the core operations. A change that
//! alters these numbers must update them here deliberately.
mod common;
use common::*;
use musket_core::{lt, relu, relu_within, sum_reaches_ands, Protocol, MSB_CIRCUIT_ANDS};
use musket_net::CommStats;
use musket_ring::RingTensor;
use musket_session::{Backend, Job};

#[derive(Clone, Copy)]
enum Op {
    Mul,
    Matmul {
        m: usize,
        k: usize,
        n: usize,
    },
    Truncate,
    /// `mul_truncate` by 16 bits.
    MulTruncate,
    Lt,
    Relu,
    /// ReLU on a sign circuit of this many bits (`relu_within`: the graph's ReLU takes 48).
    ReluWithin(u32),
    /// A secure range check of n non-negative values, then its verdict.
    RangeCheck,
    /// A secure range check of n values on both sides, `-lower < x < upper` with a window of
    /// 2^46 values (the ReLU inputs' check at 16 fractional bits), then its verdict.
    RangeWindow,
    /// The same n values in three checks, windows of 2^46 and 2^47 and one side alone, in one
    /// batch, then its verdict.
    RangeMixed,
    /// A secure range check of n values against a symmetric bound, `|x| < 2^31` (a product
    /// operand's at 16 fractional bits: `2^32 - 1` values), then its verdict.
    RangeSymmetric,
}

/// Shares inputs, then measures one operation.
struct Measure {
    op: Op,
    n: usize,
}

impl Job for Measure {
    type Output = (CommStats, CommStats);
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<(CommStats, CommStats)> {
        let (sa, sb) = match self.op {
            Op::Matmul { m, k, n } => (vec![m, k], vec![k, n]),
            _ => (vec![self.n], vec![self.n]),
        };
        let va = RingTensor::filled(&sa, 3);
        let vb = RingTensor::filled(&sb, 5);
        let a = p.input(0, owned(p, 0, &va), &sa)?;
        let b = p.input(1, owned(p, 1, &vb), &sb)?;
        // Two all-to-all openings bring every party's round clock to the same value, so the
        // op's depth is measured from a common start.
        let tiny = p.input(0, owned(p, 0, &RingTensor::zeros(&[1])), &[1])?;
        p.reveal(&tiny)?;
        p.reveal(&tiny)?;
        let before = p.stats();
        match self.op {
            Op::Mul => drop(p.mul(&a, &b)?),
            Op::Matmul { .. } => drop(p.matmul(&a, &b)?),
            Op::Truncate => drop(p.truncate(&a, 16)?),
            Op::MulTruncate => drop(p.mul_truncate(&a, &b, 16)?),
            Op::Lt => drop(lt(p, &a, &b)?),
            Op::Relu => drop(relu(p, &a)?),
            Op::ReluWithin(bits) => drop(relu_within(p, &a, bits, "test")?),
            Op::RangeCheck => {
                let mut checked = musket_core::RangeChecked::new(p);
                checked.check_bound(&a, Some(1 << 20), None, "test")?;
                assert!(!checked.verdict()?);
            }
            Op::RangeWindow => {
                let mut checked = musket_core::RangeChecked::new(p);
                checked.check_bound(&a, Some(1 << 31), Some((1 << 46) - (1 << 31) + 1), "test")?;
                assert!(!checked.verdict()?);
            }
            Op::RangeMixed => {
                let mut checked = musket_core::RangeChecked::new(p);
                checked.check_bound(&a, Some(1 << 31), Some((1 << 46) - (1 << 31) + 1), "relu input")?;
                checked.check_bound(&a, Some(1 << 46), Some((1 << 46) + 1), "output")?;
                checked.check_bound(&a, Some(1 << 20), None, "one side")?;
                assert!(!checked.verdict()?);
            }
            Op::RangeSymmetric => {
                let mut checked = musket_core::RangeChecked::new(p);
                checked.check_bound(&a, Some(1 << 31), Some(1 << 31), "test")?;
                assert!(!checked.verdict()?);
            }
        }
        if p.security() == "malicious" {
            // Include the verification of the op's products (it runs before any opening).
            p.finish()?;
        }
        Ok((before, p.stats()))
    }
}

/// (online bytes sent, rounds) per compute party. Rounds are the op's depth: how far the
/// latest Lamport clock among the parties advanced.
fn measure(backend: Backend, op: Op, n: usize) -> Vec<(u64, u64)> {
    let outs: Vec<(CommStats, CommStats)> = run(backend, &Measure { op, n }).iter().map(out).collect();
    let start = outs.iter().map(|o| o.0.rounds).max().unwrap_or(0);
    let end = outs.iter().map(|o| o.1.rounds).max().unwrap_or(0);
    outs.iter()
        .map(|(before, after)| {
            let d = after.since(before);
            (d.bytes_sent - d.preprocessing_bytes_sent, end - start)
        })
        .collect()
}

const N: usize = 1000;
const NB: u64 = (N as u64).div_ceil(64);
const W: u64 = 8; // bytes per word

/// Length of chunk `i` when 3PC cuts `n` elements into thirds (each party plays each role of
/// a truncation or a conversion on one of them).
fn third(n: u64, i: u64) -> u64 {
    (i + 1) * n / 3 - i * n / 3
}

/// Words a 3PC party leaves out of a sign circuit's generate layer (`planes` bit planes of `n`
/// elements): those of each plane whose 64 elements all lie in its own third, where its AND
/// term is zero (`Rep3::and_with_split_planes`, since the fifteenth session).
fn own_third_words(n: u64, i: u64, planes: u64) -> u64 {
    let (lo, hi) = (i * n / 3, (i + 1) * n / 3);
    (0..n.div_ceil(64)).filter(|k| lo <= 64 * k && (64 * k + 64).min(n) <= hi).count() as u64 * planes
}

#[test]
fn mul_costs() {
    // 2PC: open x - a and y - b: two words per element each way, one round.
    assert_eq!(measure(Backend::TwoPc, Op::Mul, N), vec![(2 * N as u64 * W, 1); 2]);
    // 3PC: re-share one word per element, one round.
    assert_eq!(measure(Backend::ThreePc, Op::Mul, N), vec![(N as u64 * W, 1); 3]);
}

#[test]
fn matmul_costs_output_size_in_3pc() {
    let (m, k, n) = (8usize, 500usize, 6usize);
    let out3 = measure(Backend::ThreePc, Op::Matmul { m, k, n }, 0);
    assert_eq!(out3, vec![((m * n) as u64 * W, 1); 3], "3PC sends m*n, independent of k");
    let out2 = measure(Backend::TwoPc, Op::Matmul { m, k, n }, 0);
    assert_eq!(out2, vec![((m * k + k * n) as u64 * W, 1); 2], "2PC opens both masked operands");
}

#[test]
fn truncation_costs() {
    assert_eq!(measure(Backend::TwoPc, Op::Truncate, N), vec![(N as u64 * W, 1); 2]);
    // 3PC: the elements are cut into three chunks; chunk h has helper h, A = h+1, B = h+2.
    // A sends B one word per element and the helper two (its candidates); the helper sends B
    // one word plus 16 bits (f = 16, four per word); B sends A one bit and the helper one
    // word and one bit.
    let n = N as u64;
    let chunk = |h: u64| third(n, h);
    let expected: Vec<(u64, u64)> = (0..3u64)
        .map(|i| {
            let (helper, a, b) = (chunk(i), chunk((i + 2) % 3), chunk((i + 1) % 3));
            ((helper + helper.div_ceil(4) + 3 * a + b + 2 * b.div_ceil(64)) * W, 2)
        })
        .collect();
    assert_eq!(measure(Backend::ThreePc, Op::Truncate, N), expected);
}

#[test]
fn fused_multiply_truncate_costs() {
    // 2PC: the product's opening, then the truncation's.
    assert_eq!(measure(Backend::TwoPc, Op::MulTruncate, N), vec![(3 * N as u64 * W, 2); 2]);
    // 3PC: the product terms are opened straight into the truncation: per chunk the helper
    // sends B its masked term besides the shares of T and msb(r); A sends B its masked term
    // and the helper its two candidates; B sends A one bit and the helper one word and one
    // bit. Two rounds, against three for mul then truncate, and 2.09 words per element and
    // party against 2.76.
    let n = N as u64;
    let chunk = |h: u64| third(n, h);
    let expected: Vec<(u64, u64)> = (0..3u64)
        .map(|i| {
            let (helper, a, b) = (chunk(i), chunk((i + 2) % 3), chunk((i + 1) % 3));
            ((2 * helper + helper.div_ceil(4) + 3 * a + b + 2 * b.div_ceil(64)) * W, 2)
        })
        .collect();
    assert_eq!(measure(Backend::ThreePc, Op::MulTruncate, N), expected);
}

#[test]
fn comparison_costs() {
    let ands = MSB_CIRCUIT_ANDS as u64 * NB;
    // 2PC: each AND opens two masked words; then one word per 64 elements for bit injection.
    // 7 rounds of AND layers + 1 for the conversion.
    assert_eq!(measure(Backend::TwoPc, Op::Lt, N), vec![((2 * ands + NB) * W, 8); 2]);
    // 3PC: party i shares the operand of its third of the elements, one word per AND each,
    // then the bit is injected with party i's input of its third and one multiplication in
    // which party i sends nothing for its own third (its term there is zero; n words each
    // until the fifteenth session): n words for the injection in all. In the sign circuit's
    // generate layer (63 planes) each party leaves out the words of its own third.
    let n = N as u64;
    let expected: Vec<(u64, u64)> =
        (0..3).map(|i| ((third(n, i) + ands - own_third_words(n, i, 63) + n) * W, 10)).collect();
    assert_eq!(measure(Backend::ThreePc, Op::Lt, N), expected);
}

#[test]
fn relu_costs() {
    let ands = MSB_CIRCUIT_ANDS as u64 * NB;
    let n = N as u64;
    // 2PC: the sign circuit, then one round opening the masked bit (one word per 64 elements)
    // and the masked value (n words) together.
    assert_eq!(measure(Backend::TwoPc, Op::Relu, N), vec![((2 * ands + NB + n) * W, 8); 2]);
    // 3PC: operand sharing (a third each), the sign circuit, then each party's input of its
    // third of the bit shares together with one product in which it sends nothing for its
    // own third (round 1, n words in all), and one more product (round 2); the generate
    // layer without each party's own third, as in comparison.
    let expected: Vec<(u64, u64)> =
        (0..3).map(|i| ((third(n, i) + ands - own_third_words(n, i, 63) + 2 * n) * W, 10)).collect();
    assert_eq!(measure(Backend::ThreePc, Op::Relu, N), expected);
}

#[test]
fn range_check_costs() {
    let ands = MSB_CIRCUIT_ANDS as u64;
    let nb = NB;
    // 2PC: one sign circuit over the n checked values (2 words per AND), the OR-fold of each
    // word onto one bit (6 AND layers on nb words), one word of injected bits, then the
    // verdict: a sign circuit on one element and one opened word. 7 + 6 + 1 + 7 + 1 rounds.
    let two = (2 * ands * nb + 2 * 6 * nb + 1 + 2 * ands + 1) * W;
    assert_eq!(measure(Backend::TwoPc, Op::RangeCheck, N), vec![(two, 22); 2]);
    // 3PC: the operands of each circuit shared a third by each party (n words, then 1), one
    // word per AND, the injection of nb bits (an input, a third each, and a product without
    // the inputting party's third: nb words each), one word opened to each; (1 + 7) + 6 + 2 +
    // (1 + 7) + 1 rounds.
    let n = N as u64;
    let common = (ands * nb + 6 * nb + nb + ands + 1) * W;
    // The verdict's sign circuit is on one element, in party 2's third: it leaves out its 63
    // generate words (and the checked values' circuit too, as one sign test on the values a2b
    // gave).
    let expected: Vec<(u64, u64)> = (0..3)
        .map(|i| {
            (
                common
                    + (third(n, i) + third(1, i) - own_third_words(1, i, 63) - own_third_words(n, i, 63)) * W,
                25,
            )
        })
        .collect();
    assert_eq!(measure(Backend::ThreePc, Op::RangeCheck, N), expected);
}

/// Both sides of a value in one circuit (`sum_reaches` at 2^46: 163 AND gates per element,
/// where a sign circuit per side took 2 x 181) and one conversion of operands, in the rounds
/// of one sign circuit; two failure bits per element to fold (`bit 46` and the bits above).
#[test]
fn range_window_costs() {
    let ands = sum_reaches_ands(46) as u64;
    assert_eq!(ands, 163);
    let sign = MSB_CIRCUIT_ANDS as u64;
    let nb = NB;
    let two = (2 * ands * nb + 2 * 6 * 2 * nb + 1 + 2 * sign + 1) * W;
    assert_eq!(measure(Backend::TwoPc, Op::RangeWindow, N), vec![(two, 22); 2]);
    let n = N as u64;
    let common = (ands * nb + 6 * 2 * nb + 2 * nb + sign + 1) * W;
    let expected: Vec<(u64, u64)> =
        (0..3).map(|i| (common + (third(n, i) + third(1, i) - own_third_words(1, i, 63)) * W, 25)).collect();
    assert_eq!(measure(Backend::ThreePc, Op::RangeWindow, N), expected);
}

/// A symmetric bound's `2^32 - 1` values: `x + 2^31` in `[1, 2^32)`, the window test at 2^32
/// (150 AND gates) and the OR of the 32 bits below (31), riding along: 181 AND gates and one
/// conversion of operands per element where two sign circuits took 362 and two; three failure
/// bits per element to fold; one round less than a sign circuit (a 33-wide tree).
#[test]
fn range_symmetric_costs() {
    let ands = (sum_reaches_ands(32) + 31) as u64;
    assert_eq!(ands, 181);
    let sign = MSB_CIRCUIT_ANDS as u64;
    let nb = NB;
    let two = (2 * ands * nb + 2 * 6 * 3 * nb + 1 + 2 * sign + 1) * W;
    assert_eq!(measure(Backend::TwoPc, Op::RangeSymmetric, N), vec![(two, 21); 2]);
    let n = N as u64;
    let common = (ands * nb + 6 * 3 * nb + 3 * nb + sign + 1) * W;
    let expected: Vec<(u64, u64)> =
        (0..3).map(|i| (common + (third(n, i) + third(1, i) - own_third_words(1, i, 63)) * W, 24)).collect();
    assert_eq!(measure(Backend::ThreePc, Op::RangeSymmetric, N), expected);
}

/// Windows of two sizes and a side alone in one batch: three circuits in lockstep, one AND
/// layer for all, in the rounds of the deepest (the sign test's): 163, 164 and 181 AND gates
/// per element, two failure bits per element of each to fold.
#[test]
fn range_mixed_batch_costs() {
    let sign = MSB_CIRCUIT_ANDS as u64;
    assert_eq!(sum_reaches_ands(47), 164);
    let nb = NB;
    let and_words = (sum_reaches_ands(46) as u64 + sum_reaches_ands(47) as u64 + sign) * nb;
    let fold = 6 * nb;
    let two = (2 * and_words + 2 * 6 * fold + fold.div_ceil(64) + 2 * sign + 1) * W;
    assert_eq!(measure(Backend::TwoPc, Op::RangeMixed, N), vec![(two, 22); 2]);
    let n = 3 * N as u64;
    let common = (and_words + 6 * fold + fold + sign + 1) * W;
    let expected: Vec<(u64, u64)> =
        (0..3).map(|i| (common + (third(n, i) + third(1, i) - own_third_words(1, i, 63)) * W, 25)).collect();
    assert_eq!(measure(Backend::ThreePc, Op::RangeMixed, N), expected);
}

/// Bytes one party sends in one proof batch of Galois-ring terms (an element is 64 words)
/// whose proof has `halving` levels and `quartering` ones: the 2-word seed, per level a
/// polynomial share (3 elements halving, 7 quartering) and a challenge, the 5-element last
/// message, verifier A's copy of the seed and challenges, the go-ahead word, and two
/// openings of a zero-share per level and 4 values. Rounds: `2 levels + 3` (A's copies go
/// with B's seed and challenges, the go-ahead with the last message, since the eleventh
/// session; they took two rounds of their own). A plain proof of `2^L` terms quarters
/// `L / 2` times and halves `L % 2` times (since the eleventh session: it halved `L`
/// times, `2 L + 5` rounds); a packed one halves first (five or six levels).
fn proof_bytes(halving: u64, quartering: u64) -> u64 {
    let (e, levels) = (64 * W, halving + quartering);
    2 * W + (halving * 4 + quartering * 8) * e + 5 * e + (2 * W + levels * e) + W + 2 * (levels + 4) * e
}

/// A party's proof bytes for one kind of statement (elements of `e` bytes: 512 for the
/// Galois ring, 8 for GF(2^64)), from the levels `(halving, quartering)` of its own statement,
/// of the next party's (which it verifies as `A`) and of the previous party's (as `B`): as
/// prover, each level's polynomial (3 or 7 elements) and the last one (5); as `A`, its copies
/// of the seed (two words) and of each challenge, then its opening (`levels + 4` elements);
/// as `B`, the seed and the challenges, then its opening. The prover's go-ahead to `A` is
/// one word a verification ([`GO_AHEAD`]). With the three statements alike this is
/// [`proof_bytes`] less the go-ahead.
fn roles_bytes(own: (u64, u64), next: (u64, u64), prev: (u64, u64), e: u64) -> u64 {
    let verifier = |(h, q): (u64, u64)| 2 * W + (h + q) * e + (h + q + 4) * e;
    (3 * own.0 + 7 * own.1 + 5) * e + verifier(next) + verifier(prev)
}

/// The prover's go-ahead word to verifier `A`, one a verification (its kinds run side by side).
const GO_AHEAD: u64 = W;

/// What quartering took off a party's bytes in the statements of a truncation, a
/// comparison or a ReLU of 100 elements below: with `Q` quartering levels in a statement
/// (each in place of two halving ones) its prover's polynomials gain `Q` elements (seven
/// where two levels sent six), and the challenges as `B`, the copies as `A` and each
/// opening's zero-shares lose `Q`; `ring` and `field` count the elements a party's messages
/// lose (ring elements 64 words, field elements one).
fn quartering_saved(ring: u64, field: u64) -> u64 {
    (ring * 64 + field) * W
}

/// The malicious-secure 3PC back end: the semi-honest messages (or their checked
/// replacements) plus the verification that precedes any opening; pinned like the
/// semi-honest costs.
#[test]
fn malicious_costs() {
    const M: usize = 100;
    // A product is one term of its prover's statement, `(x_P + x_(P+1)) (y_P + y_(P+1))`
    // (two until the tenth session: one level more everywhere below, 2 rounds and one level's
    // messages). 100 products are 100 terms, padded to 2^7: three quartering levels and a
    // halving one (seven halving levels, 1 + 19 rounds, until the eleventh session).
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Mul, M),
        vec![(M as u64 * W + proof_bytes(1, 3), 1 + 11); 3]
    );
    // From 1024 products the proof packs 64 products a block (the same messages): 2000
    // products are 32 blocks, 32 block terms of 64 products, 2^11 terms; five packed levels
    // (halving: the 32 blocks' index), then three quartering ones (11 levels, 1 + 27).
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Mul, 2000),
        vec![(2000 * W + proof_bytes(5, 3), 1 + 19); 3]
    );
    // 20,000 products are recorded in three pieces of at most 8,192 but sent in one
    // message: one round, as for 100 (it was one round per piece, 3 + 37); packed, 2^15
    // terms: six packed levels, then four quartering and one halving (15 levels, 1 + 35).
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Mul, 20_000),
        vec![(20_000 * W + proof_bytes(7, 4), 1 + 25); 3]
    );
    // Freivalds: a 16x16x16 product is one statement of k = 16 terms (two quartering
    // levels; four halving ones, 1 + 13 rounds, before).
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Matmul { m: 16, k: 16, n: 16 }, 0),
        vec![(256 * W + proof_bytes(0, 2), 1 + 7); 3]
    );
    // Truncation (eighteenth session; the history of its earlier forms is in git): each
    // third of the elements has its own frame, with another party as its helper (thirds
    // 33, 33 and 34 elements; party 0 is party 0 of the first frame, the helper of the
    // second and party 1 of the third, and so on round). In a frame: the mask's halves are
    // components (no input message); c is opened to its parties 0 and 1 (a word per
    // element each way); the helper sends party 0 the carries' component 0 of the mask, of
    // its correction A (a word per element each) and of 2^(64-f) msb(R) (16-bit fields,
    // four to a word), and party 1 the b halves of A (a word) and of the sign (a field);
    // parties 0 and 1 then exchange their wrap terms (a field each). Each party sends two
    // digests (32 bytes each, both directions used).
    //
    // Statements (levels as `(halving, quartering)`): the wrap's two products are one ring
    // term per element for a frame's parties 0 and 1, so every party proves 66 or 67 (plain:
    // (1, 3)); a helper proves its frame's carries, 33 + 33 + 9 (or 34 + 34 + 9) AND words
    // (packed: five levels, then four quartering). Until the eighteenth session a helper
    // proved three ring terms an element for the conversion of three bits and its parties
    // 0 and 1 one each, after an AND layer for the wrap: two rounds more, 26 in all, with
    // one frame for all the elements (so per-party bytes differed by role).
    let f = 16u64;
    let fields = |n: u64| (n * f).div_ceil(64) * W;
    let (ring, bits) = (64 * W, W);
    let (plain_100, carries) = ((1, 3), (5, 4));
    // (as party 0, as party 1, as helper) elements of each party.
    let roles = [(33u64, 34u64, 33u64), (33, 33, 34), (34, 33, 33)];
    let online = roles.map(|(p0, p1, helper)| {
        (p0 * W + fields(p0)) + (p1 * W + fields(p1)) + (3 * helper * W + 2 * fields(helper))
    });
    let (digests, ring_proof, bits_proof) = (
        2 * 32,
        roles_bytes(plain_100, plain_100, plain_100, ring),
        roles_bytes(carries, carries, carries, bits),
    );
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Truncate, M),
        online.map(|o| (o + digests + ring_proof + bits_proof + GO_AHEAD, 24)).to_vec()
    );
    // A truncated product (twenty-third session): the product's terms go straight into the
    // opening of c, as the semi-honest back end's do. Frame party 0 sends party 1 its product
    // term plus its mask half and a mask shared with the helper (in place of its copy of c's
    // component), party 1 likewise to party 0, and the helper its term less those masks to
    // each (two words per element more than the truncation alone): per party the truncation's
    // bytes plus twice its helper third's words, where the product's resharing had added a
    // word per element (`M * W`: 272, 256 and 272 bytes more). Rounds: the opening with the
    // helpers' messages and the wrap's exchange, and the verification: 2 + 22 (1 + 2 + 22
    // before). Each party's ring statement gains its 100 products as before: 166 or 167
    // terms (four quartering levels).
    let ring_proof = roles_bytes((0, 4), (0, 4), (0, 4), ring);
    let fused = roles.map(|(_, _, helper)| 2 * helper * W);
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::MulTruncate, M),
        (0..3)
            .map(|i| (online[i] + fused[i] + digests + ring_proof + bits_proof + GO_AHEAD, 24))
            .collect::<Vec<_>>()
    );
    // The comparison's and ReLU's history below counts in ring elements (`e`) and one level
    // of a binary statement (7 field elements).
    let (e, level) = (64 * W, 7 * W);
    // Comparison: the carry-save AND layer plus the sign circuit, verified in GF(2^64), and
    // the result bits converted (100 words, 100 proved terms: 7 levels; it was (45288, 70)
    // with two checked products, 200 words and 400 terms, then (37320, 66) with the two
    // kinds' proofs one after the other).
    // One term per AND gate (tenth session): the binary statements a level shorter, (37312,
    // 47) before.
    // Quartering (eleventh session, 45 rounds before): the ring statements (100 terms) 7
    // levels to 4, 9 ring elements fewer a party; the binary ones 15 field elements fewer.
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Lt, M),
        vec![(37312 - level - quartering_saved(9, 15), 33); 3]
    );
    // ReLU: comparison, then mul_bits as a conversion (100 words, 100 terms) and a product
    // (100 words, 200 terms): 9 levels. (Since the fifteenth session mul_bits's first round
    // is not a plain conversion but the same words and terms, see `Rep3Mal::mul_bits_checked`.) It was (49672, 73) with the conversion as two
    // products, then (45288, 71) with the two kinds' proofs one after the other.
    // One term per product and AND gate (tenth session): every statement a level shorter,
    // the three ring statements 200 terms (300 before): 7 ring elements and 7 field elements
    // fewer per party, 2 rounds; (45280, 48) before.
    // Quartering (eleventh session, 46 rounds before): the ring statements (200 terms) 8
    // levels to 4, 12 ring elements fewer a party; the binary ones 15 field elements fewer.
    // mul_bits in two rounds (fifteenth session: the conversion's product with x formed
    // beside party 0's input, then one product), the same words and terms: 34 rounds before.
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Relu, M),
        vec![(45280 - 7 * e - level - quartering_saved(12, 15), 33); 3]
    );
}

/// The malicious back end's narrow ReLU (the graph's, at 48 bits) and a 32-bit one (GELU's
/// sign circuits' width) on 1,000 elements: since the twenty-third session the carry-save
/// adder of the operands runs on bit planes (`Protocol::a2b_operand_planes`) and ANDs only
/// the `w - 1` planes the circuit reads, 16 words a plane, instead of a word (64 gates) per
/// element. At 48 bits that is 752 AND words instead of 1,000, 248 words fewer from each
/// party (83,536 bytes before) with the same statement levels and rounds; at 32 bits 496
/// instead of 1,000, 504 words fewer, and each binary statement a quartering level shorter
/// (one level of 7 field elements, 2 rounds: 77,520 bytes and 36 rounds before). At 64 bits
/// on 100 elements the planes (63 of two words each) would be more than the words, so the
/// adder stays word-wise there (`malicious_costs`'s ReLU).
#[test]
fn malicious_narrow_relu_costs() {
    let level = 7 * W;
    assert_eq!(measure(Backend::ThreePcMalicious, Op::ReluWithin(48), N), vec![(83_536 - 248 * W, 37); 3]);
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::ReluWithin(32), N),
        vec![(77_520 - 504 * W - level, 36 - 2); 3]
    );
}
