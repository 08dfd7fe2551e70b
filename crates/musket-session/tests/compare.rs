//! Secure comparison (the millionaires' problem) and ReLU on both back ends: exact results.
mod common;
use common::*;
use musket_core::{
    lt, msb, msb_within, relu, relu_within, sum_bit_and_carry, sum_reaches, sum_reaches_many, Protocol,
    WindowTest,
};
use musket_ring::RingTensor;
use musket_session::Job;
use rand::{Rng, SeedableRng};

struct Compare {
    x: Vec<u64>,
    y: Vec<u64>,
}

impl Job for Compare {
    type Output = (Vec<u64>, Vec<u64>, Vec<u64>);
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let n = self.x.len();
        let (tx, ty) = (RingTensor::from_vec(self.x.clone()), RingTensor::from_vec(self.y.clone()));
        let x = p.input(0, owned(p, 0, &tx), &[n])?;
        let y = p.input(1, owned(p, 1, &ty), &[n])?;
        let less = lt(p, &x, &y)?;
        let r = relu(p, &x)?;
        let m = msb(p, &x)?;
        Ok((p.reveal(&less)?.into_data(), p.reveal(&r)?.into_data(), p.reveal_bits(&m)?))
    }
}

#[test]
fn comparison_and_relu_are_exact() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let lim = 1i64 << 61;
    let mut pairs: Vec<(i64, i64)> = vec![
        (0, 0),
        (1, 0),
        (0, 1),
        (-1, 0),
        (0, -1),
        (-1, -1),
        (5, 7),
        (7, 5),
        (-3, 2),
        (-50, -51),
        (lim, lim - 1),
        (lim - 1, lim),
        (-lim, lim),
        (lim, -lim),
        (-lim, -lim + 1),
        (1 << 40, (1 << 40) + 1),
    ];
    for _ in 0..3000 {
        let a = rng.gen_range(-lim..=lim);
        let b = match rng.gen_range(0..4) {
            0 => a,
            1 => a + 1,
            2 => a - 1,
            _ => rng.gen_range(-lim..=lim),
        };
        pairs.push((a, b));
    }
    let job = Compare {
        x: pairs.iter().map(|p| p.0 as u64).collect(),
        y: pairs.iter().map(|p| p.1 as u64).collect(),
    };
    assert_eq!(oracle(&job).0, pairs.iter().map(|(a, b)| (a < b) as u64).collect::<Vec<_>>());
    for backend in BACKENDS {
        for o in run(backend, &job) {
            let (less, r, m) = out(&o);
            for (i, (a, b)) in pairs.iter().enumerate() {
                assert_eq!(less[i], (a < b) as u64, "{}: {a} < {b}", backend.name());
                assert_eq!(r[i] as i64, (*a).max(0), "{}: relu({a})", backend.name());
                assert_eq!((m[i / 64] >> (i % 64)) & 1, (*a < 0) as u64, "{}: msb({a})", backend.name());
            }
        }
    }
}

/// `b2a` and `mul_bits` on their own: the 3PC conversions cut the elements into thirds, each
/// party's product skipping its own (empty for fewer than three elements), so every length
/// from 1 to 8 and a few past a word of bits, on every back end.
struct Conversions {
    x: Vec<u64>,
    bits: Vec<u64>,
}

impl Job for Conversions {
    type Output = (Vec<u64>, Vec<u64>);
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let n = self.x.len();
        let x = p.input(0, owned(p, 0, &RingTensor::from_vec(self.x.clone())), &[n])?;
        // The bits as the sign of an input, so that they come XOR-shared from a circuit.
        let signs = p.input(1, owned(p, 1, &RingTensor::from_vec(self.bits.clone())), &[n])?;
        let b = msb(p, &signs)?;
        let arith = p.b2a_packed(&b, &[n])?;
        let product = p.mul_bits(&x, &b)?;
        Ok((p.reveal(&arith)?.into_data(), p.reveal(&product)?.into_data()))
    }
}

#[test]
fn conversions_are_exact_at_every_length() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for n in (1..=8).chain([63, 64, 65, 130]) {
        let x: Vec<u64> = (0..n)
            .map(|i| match i % 4 {
                0 => 0,
                1 => u64::MAX,
                2 => 1 << 63,
                _ => rng.gen(),
            })
            .collect();
        let bits: Vec<u64> = (0..n)
            .map(|_| if rng.gen() { rng.gen::<u64>() | 1 << 63 } else { rng.gen::<u64>() >> 1 })
            .collect();
        let want_b: Vec<u64> = bits.iter().map(|v| v >> 63).collect();
        let want_p: Vec<u64> = x.iter().zip(&want_b).map(|(x, b)| x.wrapping_mul(*b)).collect();
        let job = Conversions { x, bits };
        assert_eq!(oracle(&job), (want_b.clone(), want_p.clone()));
        for backend in BACKENDS {
            for o in run(backend, &job) {
                assert_eq!(out(&o), (want_b.clone(), want_p.clone()), "{} at {n} elements", backend.name());
            }
        }
    }
}

/// The narrow sign circuit at several widths, on every back end: exact for every input within
/// its bound, including both ends (`-2^(w-1)` and `2^(w-1) - 1`), zero and random values; an
/// element count that is not a multiple of 64 checks that the padding bits stay clear.
struct NarrowSign {
    x: Vec<u64>,
    bits: u32,
}

impl Job for NarrowSign {
    type Output = Vec<u64>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let n = self.x.len();
        let x = p.input(0, owned(p, 0, &RingTensor::from_vec(self.x.clone())), &[n])?;
        let m = msb_within(p, &x, self.bits, "test")?;
        p.reveal_bits(&m)
    }
}

/// Asserts that the packed bits `m` are the signs of `vals`, and the padding bits past them
/// clear (`vals.len()` must not be a multiple of 64).
fn assert_signs(m: &[u64], vals: &[i64], what: &str) {
    for (i, v) in vals.iter().enumerate() {
        assert_eq!((m[i / 64] >> (i % 64)) & 1, (*v < 0) as u64, "{what}: {v}");
    }
    let tail = vals.len() % 64;
    assert!(tail != 0 && m[m.len() - 1] >> tail == 0, "{what}: padding");
}

#[test]
fn narrow_sign_circuits_are_exact_within_their_bound() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for bits in [2u32, 3, 17, 32, 33, 48, 63] {
        let half = 1i64 << (bits - 1);
        let mut vals: Vec<i64> = vec![0, -1, -half, half - 1, -half + 1, half - 2];
        if half > 2 {
            vals.extend([1, 2, -2]);
        }
        vals.extend((0..190).map(|_| rng.gen_range(-half..half)));
        let job = NarrowSign { x: vals.iter().map(|&v| v as u64).collect(), bits };
        for backend in BACKENDS {
            for o in run(backend, &job) {
                assert_signs(&out(&o), &vals, &format!("{} bits {bits}", backend.name()));
            }
        }
    }
}

/// Sign circuits long enough that the malicious back end's carry-save adder runs on bit
/// planes (`Protocol::a2b_operand_planes`: fewer AND words than one per element from about
/// 64 elements at 48 bits, and from 4,033 at 64), exact on every back end at both ends of
/// each bound, at zero and on random values, the padding bits clear.
#[test]
fn sign_circuits_on_the_adders_planes_are_exact() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for bits in [2u32, 16, 48, 63, 64] {
        let half = if bits == 64 { i64::MAX } else { 1i64 << (bits - 1) };
        let mut vals: Vec<i64> = vec![0, -1, 1, -half, half - 1, -half + 1, half - 2];
        if bits == 64 {
            vals.extend([i64::MIN, i64::MIN + 1]);
        }
        vals.extend(
            (0..4100).map(|_| if bits == 64 { rng.gen::<i64>() } else { rng.gen_range(-half..half) }),
        );
        let job = NarrowSign { x: vals.iter().map(|&v| v as u64).collect(), bits };
        for backend in BACKENDS {
            for o in run(backend, &job) {
                assert_signs(&out(&o), &vals, &format!("{} bits {bits}", backend.name()));
            }
        }
    }
}

/// ReLU on the narrow sign circuit (the graph's ReLU at `64 - f` bits), on every back end:
/// exact for every input within its bound, both ends, zero and random values included.
struct NarrowRelu {
    x: Vec<u64>,
    bits: u32,
}

impl Job for NarrowRelu {
    type Output = Vec<u64>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let n = self.x.len();
        let x = p.input(0, owned(p, 0, &RingTensor::from_vec(self.x.clone())), &[n])?;
        let y = relu_within(p, &x, self.bits, "test")?;
        Ok(p.reveal(&y)?.data().to_vec())
    }
}

#[test]
fn narrow_relu_is_exact_within_its_bound() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    for bits in [2u32, 31, 46, 48, 50, 64] {
        let half = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
        let mut vals: Vec<i64> = vec![0, -1, 1, -half, half, -half + 1, half - 1];
        vals.extend((0..121).map(|_| rng.gen_range(-half..=half)));
        if bits == 64 {
            vals.push(i64::MIN);
        }
        let job = NarrowRelu { x: vals.iter().map(|&v| v as u64).collect(), bits };
        for backend in BACKENDS {
            for o in run(backend, &job) {
                let y = out(&o);
                for (i, v) in vals.iter().enumerate() {
                    assert_eq!(y[i] as i64, (*v).max(0), "{} bits {bits}: relu({v})", backend.name());
                }
            }
        }
    }
}

/// The carry into bit k and bit 63 of `a + b` from one carry tree, for every k that needs no,
/// one or several combination steps, on every back end, against the revealed operands.
struct Carries {
    x: Vec<u64>,
    /// (width, carry_at) pairs.
    at: Vec<(usize, usize)>,
}

impl Job for Carries {
    type Output = (Vec<u64>, Vec<u64>, Vec<(Vec<u64>, Vec<u64>)>);
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let n = self.x.len();
        let x = p.input(0, owned(p, 0, &RingTensor::from_vec(self.x.clone())), &[n])?;
        let (a, b) = p.a2b_operands(&x)?;
        let mut outs = Vec::new();
        for &(width, k) in &self.at {
            let (top, carry) = sum_bit_and_carry(p, &a, &b, n, width, k)?;
            outs.push((p.reveal_bits(&top)?, p.reveal_bits(&carry)?));
        }
        Ok((p.reveal_bits(&a)?, p.reveal_bits(&b)?, outs))
    }
}

#[test]
fn carries_from_one_tree_match_the_operands() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut x: Vec<u64> = vec![0, 1, u64::MAX, 1 << 63, (1 << 16) - 1, 1 << 16];
    x.extend((0..130).map(|_| rng.gen::<u64>()));
    let mut at: Vec<(usize, usize)> =
        [1, 2, 3, 7, 14, 15, 16, 17, 18, 22, 23, 31, 32, 33, 47, 61, 62].iter().map(|&k| (64, k)).collect();
    at.extend([(3, 1), (4, 2), (5, 3), (17, 15), (33, 16), (33, 31), (40, 38)]);
    let job = Carries { x: x.clone(), at: at.clone() };
    for backend in BACKENDS {
        for o in run(backend, &job) {
            let (a, b, outs) = out(&o);
            for (&(width, k), (top, carry)) in at.iter().zip(&outs) {
                for i in 0..x.len() {
                    let bit = |w: &[u64]| (w[i / 64] >> (i % 64)) & 1;
                    let low = |v: u64| v & ((1u64 << k) - 1);
                    let want_carry = ((low(a[i]) as u128 + low(b[i]) as u128) >> k) as u64;
                    let name = backend.name();
                    assert_eq!(bit(carry), want_carry, "{name} width {width}: carry into {k}, element {i}");
                    let want_top = (a[i].wrapping_add(b[i]) >> (width - 1)) & 1;
                    assert_eq!(bit(top), want_top, "{name} width {width}: top bit, element {i}");
                }
            }
        }
    }
}

/// `[x >= 2^k]` (unsigned) from one `sum_reaches` circuit, the range check's two-sided test,
/// for thresholds whose OR tree is shallower than, as deep as and deeper than the carry tree,
/// on every back end: exact at `2^k - 1` and `2^k`, at the ends of the ring and on random
/// values of every magnitude; an element count not a multiple of 64 (padding stays clear).
struct Reaches {
    x: Vec<u64>,
    k: Vec<usize>,
    /// Powers of two for one `sum_reaches_many` run in lockstep, each test on all of `x`,
    /// the even ones with the bits below.
    many: Vec<usize>,
}

impl Job for Reaches {
    type Output = Vec<(Vec<u64>, Vec<u64>, Vec<u64>)>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let n = self.x.len();
        let x = p.input(0, owned(p, 0, &RingTensor::from_vec(self.x.clone())), &[n])?;
        let (a, b) = p.a2b_operands(&x)?;
        let mut outs = Vec::new();
        for &k in &self.k {
            let (bit, above) = sum_reaches(p, &a, &b, n, k)?;
            outs.push((p.reveal_bits(&bit)?, p.reveal_bits(&above)?, Vec::new()));
        }
        let tests: Vec<WindowTest<'_, P::Bits>> = self
            .many
            .iter()
            .enumerate()
            .map(|(t, &k)| WindowTest { a: &a, b: &b, n, k, below: t % 2 == 0 })
            .collect();
        for [bit, above, below] in sum_reaches_many(p, &tests)? {
            outs.push((p.reveal_bits(&bit)?, p.reveal_bits(&above)?, p.reveal_bits(&below)?));
        }
        Ok(outs)
    }
}

#[test]
fn sum_reaches_is_exact_on_every_back_end() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let ks = vec![1usize, 2, 5, 16, 31, 32, 46, 47, 62];
    let mut x: Vec<u64> = vec![0, 1, u64::MAX, 1 << 63, i64::MAX as u64];
    for &k in &ks {
        x.extend([(1u64 << k) - 1, 1 << k, (1 << k) + 1, (1u64 << k).wrapping_neg()]);
    }
    x.extend((0..150).map(|i| rng.gen::<u64>() >> (i % 64)));
    let many = vec![46, 63, 5, 32, 47];
    let job = Reaches { x: x.clone(), k: ks.clone(), many: many.clone() };
    for backend in BACKENDS {
        for o in run(backend, &job) {
            let outs = out(&o);
            assert_eq!(outs.len(), ks.len() + many.len());
            for (c, (bit, above, below)) in outs.iter().enumerate() {
                let (k, with_below) =
                    if c < ks.len() { (ks[c], false) } else { (many[c - ks.len()], (c - ks.len()) % 2 == 0) };
                for (i, v) in x.iter().enumerate() {
                    let get = |w: &[u64]| (w[i / 64] >> (i % 64)) & 1;
                    let name = backend.name();
                    assert_eq!(get(bit) | get(above), (*v >= 1 << k) as u64, "{name} 2^{k}: {v:#x}");
                    assert_eq!(get(bit), (v >> k) & 1, "{name} bit {k} of {v:#x}");
                    if with_below {
                        assert_eq!(
                            get(below),
                            (v & ((1 << k) - 1) != 0) as u64,
                            "{name} below 2^{k}: {v:#x}"
                        );
                    }
                }
                let tail = x.len() % 64;
                assert!(tail != 0 && (bit[x.len() / 64] | above[x.len() / 64]) >> tail == 0, "padding");
            }
        }
    }
}
