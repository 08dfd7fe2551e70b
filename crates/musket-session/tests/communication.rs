//! Pinned communication: bytes and rounds per party for the core operations. A change that
//! alters these numbers must update them here deliberately.
mod common;
use common::*;
use musket_core::{lt, relu, sum_reaches_ands, Protocol, MSB_CIRCUIT_ANDS};
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
    // Truncation: the mask's halves are components (no input message); party 2 inputs their
    // carries (one word per element to party 0), checked by one AND layer of 64 gates per
    // element (one word each) whose XOR with the claimed carries must be zero (a digest);
    // c opened to parties 0 and 1 (one word each way from parties 1 and 2), one AND with
    // msb(c), and three bits converted (one word per element from each party, one proved
    // term each): a binary proof batch and an arithmetic one of 300 terms (9 levels). Party
    // 2 sends the carries, parties 1 and 2 the opening: 800 bytes apart each. It was
    // (54120, 34), (54920, 34), (106120, 34) with party 2's 64 proved mask bits per element,
    // then (54936, 77), (55736, 77), (55736, 77) with each bit converted by two checked
    // products, then (45368, 73), (46168, 73), (46168, 73) with a 64-bit carry tree of 181
    // AND gates per element in place of the checked carries. The two batches prove side
    // by side since the sixth session (one group of both kinds: the rounds of the larger,
    // and one go-ahead word fewer); they were (43128, 63), (43928, 63), (44728, 63) one
    // after the other. Since the seventh session the opening shares the carries' round and
    // the carries' check shares one AND layer with msb(R) & [msb(c) = 0]: 4 rounds before
    // the verification's 34, where it was 6. Since the eighth session the three bits are
    // one conversion of `-carry_f + 2^(64-f) (wrap_r + wrap_c)`: one word per element from
    // each party (it was three), and the statements differ in length: party 2 proves three
    // products per element (300 terms, 9 levels), parties 0 and 1 one (100 terms, 7 levels).
    // A party's proof bytes then follow the levels of the statement each message serves:
    // party 0 sends 2 fewer levels' polynomials (3 elements each) than before, its copies of
    // party 1's challenges and its opening as A of party 1's statement 2 levels shorter (10
    // elements fewer in all); party 1 likewise, its challenges to party 0 and its opening as
    // B of party 0's shorter; party 2 sends its own 9 levels, the rest 2 levels shorter (8
    // elements fewer). It was (43120, 38), (43920, 38), (44720, 38). Since the tenth session
    // party 0, not party 2, sends party 1 its copy of `c` (party 2 already sends the
    // carries): a word per element moves from party 2 to party 0, and each party sends a
    // second digest (to its previous party, for the openings that came the other way): 32
    // bytes each, in the same round. Then party 2 proves the carries' check itself, with
    // no AND layer (`keep_helper_products`: it knows every component): a word per element
    // less from every party, the same proof (the same gates, one AND gate per element left
    // for msb(R) & [msb(c) = 0], still a round of its own).
    let e = 64 * W;
    let conversion_saved = 2 * M as u64 * W;
    // With one term per AND gate (tenth session) the binary statements, 6,528 gates, are
    // one level shorter: 2 rounds and 7 field elements (8 bytes each) fewer per party.
    // And the carries' 6,400 gates go into party 2's statement only (`Gate::OneProver`),
    // not also into trivially true ones of parties 0 and 1: their binary statements are the
    // AND layer's 128 gates (7 levels, 13 before), and the messages serving them 6 levels'
    // field elements shorter (30 elements for parties 0 and 1, 24 for party 2).
    let (moved, digest, and_layer, level) = (M as u64 * W, 32, M as u64 * W, 7 * W);
    let (one_prover_01, one_prover_2) = (30 * W, 24 * W);
    // Quartering (eleventh session, 36 rounds before): the ring statements of parties 0 and
    // 1 (100 terms) go from 7 levels to 4 (three quartering), party 2's (300) from 9 to 5;
    // the binary ones of parties 0 and 1 (2 AND words: one packed level, then 2^6 lanes)
    // from 7 to 4, party 2's (102 words: five packed levels, then 2^8) from 13 to 9. Party
    // 0 proves a 4-level statement (+3 elements), is B of party 2's (-4) and A of party
    // 1's (-3 copies, -3 zero-shares), and opens as B (-4): 11 elements fewer of each kind;
    // party 2, proving 5 levels (+4) and serving two 4-level statements, 8.
    let (quarter_01, quarter_2) = (quartering_saved(11, 11), quartering_saved(8, 8));
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::Truncate, M),
        vec![
            (
                43120 - conversion_saved - 10 * e + moved + digest
                    - and_layer
                    - level
                    - one_prover_01
                    - quarter_01,
                26
            ),
            (43920 - conversion_saved - 10 * e + digest - and_layer - level - one_prover_01 - quarter_01, 26),
            (
                44720 - conversion_saved - 8 * e - moved + digest
                    - and_layer
                    - level
                    - one_prover_2
                    - quarter_2,
                26
            )
        ]
    );
    // A truncated product: the carries travel with the product's message (1 round), then
    // the truncation's other 4 and the same 34 of the verification, where the product and
    // a truncation took 1 + 6 + 34. Bytes: the truncation's and the product's word per
    // element. The one conversion saves each party two words per element; the product's
    // 200 terms keep every statement at 9 levels (300 and 500 terms). It was (43920, 39),
    // (44720, 39), (45520, 39). The opening's word moved and the AND layer went as above:
    // three words per element from every party (the product's, the opening's or the
    // carries', the conversion's), against two semi-honest.
    // With one term per product (tenth session) the ring statements of parties 0 and 1 are
    // 200 terms (8 levels; 300 and 9 before) and party 2's 400 (9 levels, as with 500): the
    // messages that serve the shorter statements (a prover's polynomials, a verifier's
    // challenge copies and openings) lose a level's ring elements, 5 of them in all for
    // parties 0 and 1 and 4 for party 2; the binary statements a level, and those of parties 0
    // and 1 no carries' gates, as above.
    // Quartering (eleventh session, 37 rounds before): ring statements of 8 levels (200
    // terms) and 9 (400) become 4 and 5, the binary ones as in the truncation: 12 ring
    // elements fewer from every party, 11 field elements from parties 0 and 1 and 8 from
    // party 2.
    let (quarter_01, quarter_2) = (quartering_saved(12, 11), quartering_saved(12, 8));
    assert_eq!(
        measure(Backend::ThreePcMalicious, Op::MulTruncate, M),
        vec![
            (
                43920 - conversion_saved + moved + digest
                    - and_layer
                    - level
                    - 5 * e
                    - one_prover_01
                    - quarter_01,
                27
            ),
            (44720 - conversion_saved + digest - and_layer - level - 5 * e - one_prover_01 - quarter_01, 27),
            (
                45520 - conversion_saved - moved + digest
                    - and_layer
                    - level
                    - 4 * e
                    - one_prover_2
                    - quarter_2,
                27
            )
        ]
    );
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
