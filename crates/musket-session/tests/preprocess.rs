//! The preprocessing phase: dealer material made ahead from a recorded plan gives the same
//! results and the same online bytes and rounds, the dealer sends nothing online, and a plan
//! for other operations is refused. A plan traced from the code alone (`trace_plan`) equals
//! the one a real run records, and preprocesses a run.
mod common;
use common::*;
use musket_core::{mul_fixed, relu, MpcError, Protocol};
use musket_net::CommStats;
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{run_local, trace_plan, Backend, Job, Preprocessed};

fn fp() -> FixedPoint {
    FixedPoint::new(16)
}

/// A fixed-point product, a matrix product, a ReLU and a batched matrix product, opened.
fn ops<P: Protocol>(
    p: &mut P,
    a: &P::Share,
    b: &P::Share,
    m: &P::Share,
) -> Result<Vec<RingTensor>, MpcError> {
    let prod = mul_fixed(p, fp(), a, b)?;
    let mm = p.matmul(m, m)?;
    let r = relu(p, a)?;
    let m3 = p.reshape(m, &[4, 2, 2])?;
    let bm = p.matmul_batched(&m3, &m3)?;
    Ok(vec![p.reveal(&prod)?, p.reveal(&mm)?, p.reveal(&r)?, p.reveal(&bm)?])
}

/// Runs `ops` on demand, records its plan, preprocesses it and runs `ops` again; returns both
/// results and the online counts of each run.
struct Twice;

type TwiceOut = (Vec<RingTensor>, Vec<RingTensor>, CommStats, CommStats, usize);

impl Job for Twice {
    type Output = TwiceOut;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<TwiceOut> {
        let va = fp().encode(&[1.5, -2.25, 0.0, 7.0, -0.5]).unwrap();
        let vb = fp().encode(&[2.0, 4.0, -3.0, 0.125, -8.0]).unwrap();
        let vm: Vec<u64> = (0..16u64).map(|i| i.wrapping_mul(3).wrapping_sub(20)).collect();
        let (va, vb) = (RingTensor::from_vec(va), RingTensor::from_vec(vb));
        let vm = RingTensor::new(vec![4, 4], vm).unwrap();
        let a = p.input(0, owned(p, 0, &va), &[5])?;
        let b = p.input(1, owned(p, 1, &vb), &[5])?;
        let m = p.input(0, owned(p, 0, &vm), &[4, 4])?;
        // Two all-to-all openings align the parties' round clocks (`ops` ends with openings too).
        let tiny = p.input(0, owned(p, 0, &RingTensor::zeros(&[1])), &[1])?;
        p.reveal(&tiny)?;
        p.reveal(&tiny)?;
        let from = p.material_requests();
        let s0 = p.stats();
        let first = ops(p, &a, &b, &m)?;
        let s1 = p.stats();
        let plan = p.material_plan(from);
        p.preprocess(&plan)?;
        let s2 = p.stats();
        let second = ops(p, &a, &b, &m)?;
        let s3 = p.stats();
        Ok((first, second, s1.since(&s0), s3.since(&s2), plan.len()))
    }
}

#[test]
fn preprocessed_runs_match_on_demand_runs() {
    let expect = oracle(&Twice).0;
    for backend in BACKENDS {
        // The malicious back end rotates which party helps which third of a truncation's
        // elements from one truncation to the next, and the thirds may differ in length, so a
        // party's bytes may differ between the two runs; the three parties' counts, as a set,
        // do not.
        let (mut counts_on_demand, mut counts_online) = (Vec::new(), Vec::new());
        for o in run(backend, &Twice) {
            let (first, second, on_demand, online, plan_len) = out(&o);
            assert_eq!(first[1], expect[1], "{backend:?} matmul");
            assert_eq!(first[2], expect[2], "{backend:?} relu");
            assert_eq!(first[3], expect[3], "{backend:?} batched matmul");
            assert_eq!(second, first, "{backend:?}: preprocessed results differ");
            // Fixed-point products may differ by the truncation's one ulp between runs.
            for (x, y) in first[0].data().iter().zip(expect[0].data()) {
                assert!((*x as i64 - *y as i64).abs() <= 1, "{backend:?} mul");
            }
            let compute = |s: &CommStats| (s.bytes_sent - s.preprocessing_bytes_sent, s.rounds);
            if backend == Backend::ThreePcMalicious {
                counts_on_demand.push(compute(&on_demand));
                counts_online.push(compute(&online));
            } else {
                assert_eq!(compute(&online), compute(&on_demand), "{backend:?}: online counts changed");
            }
            match backend {
                Backend::TwoPc => {
                    assert!(plan_len > 0);
                    assert_eq!(online.preprocessing_bytes_sent, 0, "party 0 sends no request online");
                    assert!(on_demand.preprocessing_bytes_sent > 0 || o.party == 1);
                }
                _ => assert_eq!(plan_len, 0, "no dealer, no plan"),
            }
        }
        counts_on_demand.sort_unstable();
        counts_online.sort_unstable();
        assert_eq!(counts_online, counts_on_demand, "{backend:?}: online counts changed");
    }
}

/// Preprocesses a plan for a product of 5 elements, then multiplies 6.
struct Mismatch;

impl Job for Mismatch {
    type Output = ();
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<()> {
        let v = RingTensor::filled(&[5], 3);
        let a = p.input(0, owned(p, 0, &v), &[5])?;
        let from = p.material_requests();
        p.mul(&a, &a)?;
        let plan = p.material_plan(from);
        p.preprocess(&plan)?;
        let w = RingTensor::filled(&[6], 3);
        let b = p.input(0, owned(p, 0, &w), &[6])?;
        p.mul(&b, &b)?;
        Ok(())
    }
}

#[test]
fn a_plan_for_other_operations_is_refused() {
    let err = run_local(Backend::TwoPc, &Mismatch, Some(std::time::Duration::from_secs(20))).unwrap_err();
    assert!(err.to_string().contains("preprocessed plan"), "{err}");
    assert!(musket_2pc::decode_plan(&[3, 1, 2]).is_err(), "a truncated plan is refused");
}

/// A plan with an empty product, then a product of 3: every correction message, empty ones
/// included, must be consumed in order.
struct EmptyThenSome;

impl Job for EmptyThenSome {
    type Output = RingTensor;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<RingTensor> {
        let (e, v) = (RingTensor::zeros(&[0]), RingTensor::filled(&[3], 7));
        let a = p.input(0, owned(p, 0, &e), &[0])?;
        let b = p.input(0, owned(p, 0, &v), &[3])?;
        let from = p.material_requests();
        p.mul(&a, &a)?;
        p.mul(&b, &b)?;
        let plan = p.material_plan(from);
        p.preprocess(&plan)?;
        p.mul(&a, &a)?;
        let sq = p.mul(&b, &b)?;
        p.reveal(&sq)
    }
}

#[test]
fn empty_operations_keep_the_material_in_step() {
    for o in run(Backend::TwoPc, &EmptyThenSome) {
        assert_eq!(out(&o), RingTensor::filled(&[3], 49));
    }
}

/// A plan that would end the dealer.
struct EndsDealer;

impl Job for EndsDealer {
    type Output = ();
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<()> {
        p.preprocess(&musket_2pc::encode_plan(&[musket_2pc::Request::Done]))
    }
}

#[test]
fn a_plan_that_ends_the_dealer_is_refused() {
    let err = run_local(Backend::TwoPc, &EndsDealer, Some(std::time::Duration::from_secs(20))).unwrap_err();
    assert!(err.to_string().contains("ends the dealer"), "{err}");
}

/// A little of everything that asks the dealer for material: fixed-point and matrix products
/// (plain, batched, of a convolution's rows), comparisons, the bit products of ReLU and
/// selection, the approximations (exp, softmax, sigmoid, reciprocal, log, sqrt), layer norm,
/// pooling and argmax. Returns every result, opened.
struct Library;

impl Job for Library {
    type Output = Vec<RingTensor>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Vec<RingTensor>> {
        use musket_nn as nn;
        let f = fp();
        let enc = |v: &[f64], shape: &[usize]| RingTensor::new(shape.to_vec(), f.encode(v).unwrap()).unwrap();
        let va = enc(&[1.5, -2.25, 0.0, 7.0, -0.5, 3.0, 0.25, -1.0], &[2, 4]);
        let vb = enc(&[2.0, 4.0, 3.0, 0.125, 8.0, 0.5, 1.0, 6.0], &[2, 4]);
        let vimg = enc(&(0..32).map(|i| (i as f64 - 16.0) / 8.0).collect::<Vec<_>>(), &[1, 2, 4, 4]);
        let vw = enc(&(0..36).map(|i| (i as f64 - 18.0) / 16.0).collect::<Vec<_>>(), &[2, 2, 3, 3]);
        let a = p.input(0, owned(p, 0, &va), &[2, 4])?;
        let b = p.input(1, owned(p, 1, &vb), &[2, 4])?;
        let img = p.input(1, owned(p, 1, &vimg), &[1, 2, 4, 4])?;
        let w = p.input(0, owned(p, 0, &vw), &[2, 2, 3, 3])?;
        let at = p.linear(&a, &musket_core::maps::Transpose2)?;
        let a3 = p.reshape(&a, &[2, 2, 2])?;
        let conv = nn::Conv2d { pads: [1, 1, 1, 1], ..Default::default() };
        let pool = nn::Pool2d::new([2, 2], [2, 2], [0; 4]);
        let ones = p.input(0, owned(p, 0, &enc(&[1.0; 4], &[4])), &[4])?;
        let zeros = p.input(0, owned(p, 0, &enc(&[0.0; 4], &[4])), &[4])?;
        let results = [
            mul_fixed(p, f, &a, &b)?,
            p.matmul_truncate(&a, &at, f.frac_bits())?,
            p.matmul_batched_truncate(&a3, &a3, f.frac_bits())?,
            relu(p, &a)?,
            nn::lt(p, &a, &b)?,
            nn::maximum(p, &a, &b)?,
            nn::exp(p, f, &a)?,
            nn::softmax(p, f, &a, 1)?,
            nn::sigmoid(p, f, &a)?,
            nn::reciprocal(p, f, &b)?,
            nn::log(p, f, &b)?,
            nn::sqrt(p, f, &b)?,
            nn::layer_norm(p, f, &a, &ones, &zeros, 1e-5)?,
            nn::conv2d(p, f, &img, &w, None, &conv)?,
            nn::max_pool2d(p, &img, &pool)?,
            nn::argmax_onehot(p, &a, 1)?,
        ];
        results.iter().map(|r| p.reveal(r)).collect()
    }
}

/// [`Library`], then the plan it recorded.
struct Recorded;

impl Job for Recorded {
    type Output = Vec<u8>;
    fn run<P: Protocol>(&self, p: &mut P) -> JobResult<Vec<u8>> {
        Library.run(p)?;
        Ok(p.material_plan(0))
    }
}

#[test]
fn a_traced_plan_is_the_plan_of_a_real_run() {
    let traced = trace_plan(&Library, 0).unwrap();
    assert!(trace_plan(&Library, 1).unwrap() == traced, "both parties' views trace one plan");
    let requests = musket_2pc::decode_plan(&traced).unwrap();
    assert!(requests.len() > 100, "{} requests", requests.len());
    for o in run(Backend::TwoPc, &Recorded) {
        assert!(out(&o) == traced, "party {}: the traced plan differs from the recorded one", o.party);
    }
}

#[test]
fn a_traced_plan_preprocesses_a_run() {
    let job = Preprocessed { job: &Library, plan: trace_plan(&Library, 0).unwrap() };
    let expect = oracle(&Library);
    for o in run(Backend::TwoPc, &job) {
        let got = o.output.expect("compute party output");
        assert!(got.preprocessing > std::time::Duration::ZERO);
        assert_eq!(got.output.len(), expect.len());
        for (i, (g, e)) in got.output.iter().zip(&expect).enumerate() {
            assert_eq!(g.shape(), e.shape(), "result {i}");
            for (x, y) in fp().decode(g.data()).iter().zip(fp().decode(e.data())) {
                // exp(7) = 1096.6 comes within its relative error bound, not 1e-2.
                assert!((x - y).abs() < 1e-2 * y.abs().max(1.0), "result {i}: {x} against the oracle's {y}");
            }
        }
    }
    // Back ends without a dealer take the empty plan of a 3PC trace and run as usual.
    let job = Preprocessed { job: &Library, plan: Vec::new() };
    assert_eq!(run(Backend::ThreePc, &job).len(), 3);
}
