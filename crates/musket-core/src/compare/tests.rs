//! Tests of the comparison circuits on the plaintext oracle (the back ends' are in
//! `musket-session/tests/compare.rs`).
use super::*;
use crate::Plain;

/// Every threshold, operands whose sums sit on either side of it (with and without a
/// wrap past 2^64), and pseudo-random ones; `n` not a multiple of 64 (padding stays zero).
#[test]
fn sum_reaches_is_exact_at_every_threshold() {
    let mut p = Plain;
    let mut state = 0x0123_4567_89AB_CDEFu64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        state ^ (state >> 29)
    };
    for k in 1..=62usize {
        let edge = 1u64 << k;
        let mut sums: Vec<u64> =
            vec![0, 1, edge - 1, edge, edge + 1, 2 * edge - 1, 2 * edge, u64::MAX, 1 << 63];
        sums.extend((0..3).map(|_| next() >> (63 - k))); // below and just above 2^k
        sums.extend((0..3).map(|_| next()));
        let mut a = Vec::new();
        let mut b = Vec::new();
        for &s in &sums {
            for split in [0, s, next(), edge - 1, u64::MAX] {
                a.push(split);
                b.push(s.wrapping_sub(split));
            }
        }
        let n = a.len();
        let (bit, above) = sum_reaches(&mut p, &a, &b, n, k).unwrap();
        for i in 0..n {
            let got = ((bit[i / 64] | above[i / 64]) >> (i % 64)) & 1 == 1;
            assert_eq!(got, a[i].wrapping_add(b[i]) >= edge, "k {k} a {:#x} b {:#x}", a[i], b[i]);
            assert_eq!((bit[i / 64] >> (i % 64)) & 1, (a[i].wrapping_add(b[i]) >> k) & 1);
        }
        let tail = n % 64;
        if tail != 0 {
            assert_eq!((bit[n / 64] | above[n / 64]) >> tail, 0, "padding bits stay zero");
        }
    }
    assert!(sum_reaches(&mut p, &vec![0u64; 3], &vec![0u64; 3], 3, 63).is_err());
}

/// Tests against different powers of two in lockstep (the range check's windows of several
/// sizes, with and without the bits below, and its sign tests, 2^63), each exact; element
/// counts that are not multiples of 64 (padding stays zero).
#[test]
fn sum_reaches_many_is_exact_for_each_test() {
    let mut p = Plain;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        state ^ (state >> 31)
    };
    for exps in [
        vec![46usize, 47, 46],
        vec![63, 46, 1, 62, 63],
        vec![63, 63],
        vec![5, 2],
        vec![63],
        vec![32, 31, 41, 47],
    ] {
        let mut operands = Vec::new();
        for (t, &e) in exps.iter().enumerate() {
            let edge = 1u64 << e;
            let sums = [0, 1, edge - 1, edge, edge + 1, u64::MAX, 1 << 63, (1 << 63) - 1];
            let n = 70 + 13 * t;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for i in 0..n {
                let s = if i < sums.len() { sums[i] } else { next() >> (i % 64) };
                let split = if i % 3 == 0 { 0 } else { next() };
                a.push(split);
                b.push(s.wrapping_sub(split));
            }
            operands.push((a, b));
        }
        let tests: Vec<WindowTest<'_, Vec<u64>>> = exps
            .iter()
            .zip(&operands)
            .enumerate()
            .map(|(t, (&k, (a, b)))| WindowTest { a, b, n: a.len(), k, below: t % 2 == 0 })
            .collect();
        let outs = sum_reaches_many(&mut p, &tests).unwrap();
        for (t, ((&e, (a, b)), [bit, above, low])) in exps.iter().zip(&operands).zip(&outs).enumerate() {
            let n = a.len();
            for i in 0..n {
                let sum = a[i].wrapping_add(b[i]);
                let get = |w: &[u64]| (w[i / 64] >> (i % 64)) & 1;
                assert_eq!(get(bit) | get(above), (sum >= 1 << e) as u64, "2^{e}: {sum:#x}");
                assert_eq!(get(bit), (sum >> e) & 1, "bit {e} of {sum:#x}");
                let want_low = t % 2 == 0 && sum & ((1 << e) - 1) != 0;
                assert_eq!(get(low), want_low as u64, "bits below {e} of {sum:#x}");
            }
            assert_eq!((bit[n / 64] | above[n / 64] | low[n / 64]) >> (n % 64), 0, "padding bits stay zero");
        }
    }
    let zeros = vec![0u64; 3];
    let bad = WindowTest { a: &zeros, b: &zeros, n: 3, k: 64, below: false };
    assert!(sum_reaches_many(&mut p, &[bad]).is_err());
    assert_eq!(sum_reaches_ands(46), 163);
}

#[test]
fn msb_on_the_oracle_matches_sign() {
    let vals: Vec<u64> = [0i64, 1, -1, i64::MAX, i64::MIN, 5, -5, 1 << 62, -(1 << 62)]
        .iter()
        .map(|&v| v as u64)
        .chain((0..200).map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    let x = RingTensor::from_vec(vals.clone());
    let mut p = Plain;
    let m = msb(&mut p, &x).unwrap();
    for (i, v) in vals.iter().enumerate() {
        assert_eq!((m[i / 64] >> (i % 64)) & 1, v >> 63, "element {i}");
    }
}
