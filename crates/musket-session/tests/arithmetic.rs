//! Every arithmetic operation on both back ends against f64 and the plaintext oracle.
mod common;
use common::*;
use musket_core::{maps, mul_fixed, reveal_fixed, share_fixed, Protocol, Share};
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{Backend, Job, Security};
use rand::{Rng, SeedableRng};

fn edge_values(fp: FixedPoint, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let big = (fp.limit_log2() as f64).exp2() - 1.0;
    let mut v = vec![0.0, -0.0, fp.ulp(), -fp.ulp(), 1.0, -1.0, big, -big, big / 3.0, -big / 7.0];
    while v.len() < n {
        let scale = 10f64.powi(rng.gen_range(-4..12));
        v.push(rng.gen_range(-1.0..1.0) * scale);
    }
    v
}

/// Linear ops and reveal on values spanning the whole representable range.
struct Linear {
    fp: FixedPoint,
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Job for Linear {
    type Output = Vec<Vec<f64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let shape = [self.x.len()];
        let x = share_fixed(p, self.fp, 0, owned(p, 0, &self.x[..]), &shape)?;
        let y = share_fixed(p, self.fp, 1, owned(p, 1, &self.y[..]), &shape)?;
        let sum = p.add(&x, &y)?;
        let diff = p.sub(&x, &y)?;
        let neg = p.neg(&x)?;
        let shifted = p.add_public(&x, &RingTensor::filled(&shape, self.fp.one()))?;
        let scaled = p.scale(&y, 3)?;
        let mut outs = Vec::new();
        for t in [&sum, &diff, &neg, &shifted, &scaled] {
            outs.push(reveal_fixed(p, self.fp, t)?);
        }
        Ok(outs)
    }
}

#[test]
fn linear_ops_are_exact_over_the_whole_range() {
    let fp = FixedPoint::default();
    let x = edge_values(fp, 200, 1);
    let y: Vec<f64> = edge_values(fp, 200, 2).iter().map(|v| v / 4.0).collect();
    let job = Linear { fp, x: x.clone(), y: y.clone() };
    let enc = |v: f64| fp.decode_one(fp.encode_one(v).unwrap());
    for backend in BACKENDS {
        for o in run(backend, &job) {
            let r = out(&o);
            for i in 0..x.len() {
                let (a, b) = (enc(x[i]), enc(y[i]));
                let expect = [a + b, a - b, -a, a + 1.0, 3.0 * b];
                for (k, e) in expect.iter().enumerate() {
                    if e.abs() < (fp.limit_log2() as f64).exp2() {
                        assert_eq!(r[k][i], *e, "{} op {k} element {i}", backend.name());
                    }
                }
            }
        }
    }
}

/// Fixed-point multiplication, matmul and sum.
struct Products {
    fp: FixedPoint,
    x: Vec<f64>,
    y: Vec<f64>,
    m: usize,
    k: usize,
    n: usize,
}

impl Job for Products {
    type Output = (Vec<f64>, Vec<f64>, Vec<f64>);
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let len = self.x.len();
        let x = share_fixed(p, self.fp, 0, owned(p, 0, &self.x[..]), &[len])?;
        let y = share_fixed(p, self.fp, 1, owned(p, 1, &self.y[..]), &[len])?;
        let prod = mul_fixed(p, self.fp, &x, &y)?;
        let a = p.reshape(&x, &[len])?;
        let a = p.linear(&a, &maps::FlatRange { from: 0, shape: &[self.m, self.k] })?;
        let b = p.linear(&y, &maps::FlatRange { from: 0, shape: &[self.k, self.n] })?;
        let mm = p.matmul(&a, &b)?;
        let mm = p.truncate(&mm, self.fp.frac_bits())?;
        let fused = p.matmul_truncate(&a, &b, self.fp.frac_bits())?;
        let s = p.sum_axis(&a, 1)?;
        Ok((
            reveal_fixed(p, self.fp, &prod)?,
            [reveal_fixed(p, self.fp, &mm)?, reveal_fixed(p, self.fp, &fused)?].concat(),
            reveal_fixed(p, self.fp, &s)?,
        ))
    }
}

#[test]
fn products_match_f64_within_the_fixed_point_bound_and_the_oracle_within_one_ulp() {
    let fp = FixedPoint::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let len = 4000;
    // Products must stay below 2^30 (the documented bound at f = 16): include its edges.
    let mut x: Vec<f64> = (0..len).map(|_| rng.gen_range(-200.0..200.0)).collect();
    let mut y: Vec<f64> = (0..len).map(|_| rng.gen_range(-200.0..200.0)).collect();
    let edges = [
        (0.0, 5.0),
        (-3.5, 0.0),
        (32767.0, 32767.0),
        (-32767.0, 32767.0),
        (fp.ulp(), -fp.ulp()),
        (1.0, -1.0),
    ];
    // At the end, outside the matrices (whose sums of products must also stay in range).
    for (i, (a, b)) in edges.iter().enumerate() {
        x[len - 1 - i] = *a;
        y[len - 1 - i] = *b;
    }
    let (m, k, n) = (13, 37, 11);
    let job = Products { fp, x: x.clone(), y: y.clone(), m, k, n };
    let (want_p, want_mm, want_s) = oracle(&job);
    let ulp = fp.ulp();
    for backend in BACKENDS {
        for o in run(backend, &job) {
            let (pr, mm, s) = out(&o);
            for i in 0..len {
                let bound = (x[i].abs() + y[i].abs()) * ulp / 2.0 + 2.0 * ulp;
                assert!((pr[i] - x[i] * y[i]).abs() <= bound, "{} mul {i}", backend.name());
                assert!((pr[i] - want_p[i]).abs() <= ulp, "{} mul vs oracle {i}", backend.name());
            }
            // The matrix product then its truncation, then the fused form.
            assert_eq!(mm.len(), 2 * m * n);
            for (i, j, half) in (0..m).flat_map(|i| (0..n).flat_map(move |j| [(i, j, 0), (i, j, m * n)])) {
                let exact: f64 = (0..k).map(|t| x[i * k + t] * y[t * n + j]).sum();
                let bound = k as f64 * 400.0 * ulp / 2.0 + 2.0 * ulp;
                let at = half + i * n + j;
                assert!((mm[at] - exact).abs() <= bound, "{} matmul", backend.name());
                assert!((mm[at] - want_mm[at]).abs() <= ulp, "{} matmul vs oracle", backend.name());
            }
            assert_eq!(s, want_s, "{} sum", backend.name());
        }
    }
}

/// Truncation of raw ring values near the documented limit |x| < 2^62.
struct Trunc {
    values: Vec<u64>,
    bits: u32,
}

impl Job for Trunc {
    /// The truncation alone, then each fused form (the product by one, elementwise, as an
    /// `[n, 1] x [1, 1]` matrix product, as `n` batched `1 x 1` products, and as sums of
    /// products with and without a linear term).
    type Output = Vec<Vec<u64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Vec<Vec<u64>>> {
        let t = RingTensor::from_vec(self.values.clone());
        let n = t.len();
        let x = p.input(0, owned(p, 0, &t), &[n])?;
        let ones = RingTensor::filled(&[n], 1);
        let one = p.input(1, owned(p, 1, &ones), &[n])?;
        let alone = p.truncate(&x, self.bits)?;
        let fused = p.mul_truncate(&x, &one, self.bits)?;
        let column = p.reshape(&x, &[n, 1])?;
        let single = p.linear(&one, &maps::FlatRange { from: 0, shape: &[1, 1] })?;
        let matrix = p.matmul_truncate(&column, &single, self.bits)?;
        let (xb, ob) = (p.reshape(&x, &[n, 1, 1])?, p.reshape(&one, &[n, 1, 1])?);
        let batched = p.matmul_batched_truncate(&xb, &ob, self.bits)?;
        let zero = p.input(1, owned(p, 1, &RingTensor::zeros(&[n])), &[n])?;
        let dot = p.dot_truncate(&[(&x, &one), (&one, &zero)], None, self.bits)?;
        let dot_extra = p.dot_truncate(&[(&x, &zero)], Some(&x), self.bits)?;
        [alone, fused, matrix, batched, dot, dot_extra].iter().map(|y| Ok(p.reveal(y)?.into_data())).collect()
    }
}

#[test]
fn truncation_is_floor_or_floor_plus_one_up_to_2_pow_62() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let lim = (1i64 << 62) - 1;
    let mut vals: Vec<i64> = vec![0, 1, -1, lim, -lim, 1 << 40, -(1 << 40), 65535, 65536, -65536, -65537];
    vals.extend((0..20000).map(|_| rng.gen_range(-lim..=lim)));
    for bits in [1u32, 16, 30, 61] {
        for backend in BACKENDS {
            // The malicious truncation proves three sums' carries per element: fewer values.
            let count = if backend.security() == Security::Malicious { 3000 } else { vals.len() };
            let job = Trunc { values: vals[..count].iter().map(|&v| v as u64).collect(), bits };
            for o in run(backend, &job) {
                let forms = out(&o);
                assert_eq!(forms.len(), 6);
                for (form, got) in ["alone", "mul", "matmul", "batched", "dot", "dot+extra"].iter().zip(forms)
                {
                    assert_eq!(got.len(), count);
                    for (got, &v) in got.iter().zip(&vals) {
                        let floor = v >> bits;
                        let got = *got as i64;
                        assert!(
                            got == floor || got == floor + 1,
                            "{} trunc {bits} ({form}): {v} -> {got}",
                            backend.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn truncation_of_one_two_and_three_elements() {
    // 3PC cuts the elements into thirds, one per helper: here some thirds are empty.
    let lim = (1i64 << 62) - 1;
    let vals = [lim, -lim, -70000];
    for count in 1..=3 {
        for backend in BACKENDS {
            let job = Trunc { values: vals[..count].iter().map(|&v| v as u64).collect(), bits: 16 };
            for o in run(backend, &job) {
                for got in out(&o) {
                    assert_eq!(got.len(), count);
                    for (got, &v) in got.iter().zip(&vals) {
                        let (floor, got) = (v >> 16, *got as i64);
                        assert!(
                            got == floor || got == floor + 1,
                            "{} n={count}: {v} -> {got}",
                            backend.name()
                        );
                    }
                }
            }
        }
    }
}

/// Returns this party's raw share words of a fixed input, and what each party received.
struct RawShares {
    value: Vec<u64>,
    receiver: usize,
}

impl Job for RawShares {
    type Output = (Vec<Vec<u64>>, Option<Vec<u64>>, Vec<u64>);
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Self::Output> {
        let t = RingTensor::from_vec(self.value.clone());
        let x = p.input(0, owned(p, 0, &t), &[t.len()])?;
        let parts = x.parts();
        let before = p.stats();
        let opened = p.reveal_to(&x, self.receiver)?;
        let sent_to = p.stats().since(&before).bytes_sent_to;
        Ok((parts, opened.map(RingTensor::into_data), sent_to))
    }
}

#[test]
fn shares_are_fresh_randomness_and_reveal_reaches_only_the_receiver() {
    let value = vec![42u64; 64];
    for backend in BACKENDS {
        for receiver in 0..backend.compute_parties() {
            let job = RawShares { value: value.clone(), receiver };
            let first = run(backend, &job);
            let second = run(backend, &job);
            for (a, b) in first.iter().zip(&second) {
                let (pa, oa, sent) = out(a);
                let (pb, _, _) = out(b);
                // A party's share words are random: two runs sharing the same secret differ
                // wherever the share is not structurally zero.
                let nonzero: Vec<_> = pa.iter().zip(&pb).filter(|(x, _)| x.iter().any(|&w| w != 0)).collect();
                assert!(!nonzero.is_empty(), "{} party {} holds no randomness", backend.name(), a.party);
                for (x, y) in nonzero {
                    assert_ne!(x, y, "{} shares repeat across runs", backend.name());
                    assert_ne!(x, &value, "{} share equals the secret", backend.name());
                }
                // The malicious back end's consistency check sends the next party one 32-byte
                // digest (one to a non-receiver covers no data), and its agreement round one
                // word to each peer.
                let malicious = backend.security() == Security::Malicious;
                if backend == Backend::TwoPcMalicious {
                    // Malicious 2PC opens the value masked twice (by a mask only the receiver
                    // knows, and the high half by one nobody knows) to both parties, whose MAC
                    // check needs the opened value at each: one u128 share each way, which
                    // tells the non-receiver nothing. Its requests and checks go to the dealer.
                    let other = 1 - a.party;
                    assert_eq!(sent[other], 64 * 16, "2pc-malicious party {} to party {other}", a.party);
                    assert_eq!(oa.is_some(), a.party == receiver);
                    if a.party == receiver {
                        assert_eq!(oa, Some(value.clone()));
                    }
                    continue;
                }
                for (to, &bytes) in sent.iter().enumerate() {
                    if to != receiver && to != a.party {
                        let digest = if malicious && to == (a.party + 1) % 3 { 32 } else { 0 };
                        let digest = digest + if malicious { 8 } else { 0 };
                        assert_eq!(
                            bytes,
                            digest,
                            "{} party {} sent to non-receiver {to}",
                            backend.name(),
                            a.party
                        );
                    }
                }
                if a.party == receiver {
                    assert_eq!(oa, Some(value.clone()));
                } else {
                    assert_eq!(oa, None, "{} party {} learned the output", backend.name(), a.party);
                }
            }
            if backend == Backend::TwoPcMalicious {
                continue;
            }
            let total: u64 = first.iter().map(|o| out(o).2.iter().sum::<u64>()).sum();
            let digests = if backend.security() == Security::Malicious { 3 * 32 + 6 * 8 } else { 0 };
            assert_eq!(total, 64 * 8 + digests, "{}: exactly one share crosses the wire", backend.name());
        }
    }
}

#[test]
fn bad_usage_is_an_error_not_a_panic() {
    struct Mismatch;
    impl Job for Mismatch {
        type Output = ();
        fn run<P: Protocol>(&self, p: &mut P) -> JobResult<()> {
            let a = RingTensor::zeros(&[3]);
            let x = p.input(0, owned(p, 0, &a), &[3])?;
            let y = p.input(1, owned(p, 1, &RingTensor::zeros(&[4])), &[4])?;
            p.mul(&x, &y)?;
            Ok(())
        }
    }
    for backend in BACKENDS {
        let err = musket_session::run_local(backend, &Mismatch, Some(std::time::Duration::from_secs(5)))
            .unwrap_err();
        assert!(err.to_string().contains("shape"), "{}: {err}", backend.name());
    }
}

#[test]
fn an_unencodable_input_fails_without_telling_peers_where() {
    struct Nan;
    impl Job for Nan {
        type Output = ();
        fn run<P: Protocol>(&self, p: &mut P) -> JobResult<()> {
            let v = [1.0, 2.0, f64::NAN, 4.0];
            let x = share_fixed(p, FixedPoint::default(), 1, owned(p, 1, &v[..]), &[4])?;
            p.reveal(&x)?;
            Ok(())
        }
    }
    for backend in BACKENDS {
        let mesh = musket_net::local_mesh(3, Some(std::time::Duration::from_secs(5)));
        let errors: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = mesh
                .into_iter()
                .map(|t| s.spawn(move || musket_session::run_party(backend, Box::new(t), &Nan)))
                .collect();
            hs.into_iter().filter_map(|h| h.join().unwrap().err()).map(|e| e.to_string()).collect()
        });
        // The owner (party 1) knows the position; everyone else only learns that it failed.
        assert!(errors.iter().any(|e| e.contains("index 2")), "{errors:?}");
        for e in errors.iter().filter(|e| e.contains("aborted")) {
            assert!(!e.contains("index"), "{}: {e}", backend.name());
            assert!(e.contains("party 1"), "{e}");
        }
        assert!(errors.len() >= 2, "{}: {errors:?}", backend.name());
    }
}
