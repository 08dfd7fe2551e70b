//! The preprocessing phase: dealer material made ahead from a recorded plan gives the same
//! results and the same online bytes and rounds, the dealer sends nothing online, and a plan
//! for other operations is refused.
mod common;
use common::*;
use musket_core::{mul_fixed, relu, MpcError, Protocol};
use musket_net::CommStats;
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{run_local, Backend, Job};

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
            assert_eq!(compute(&online), compute(&on_demand), "{backend:?}: online counts changed");
            match backend {
                Backend::TwoPc => {
                    assert!(plan_len > 0);
                    assert_eq!(online.preprocessing_bytes_sent, 0, "party 0 sends no request online");
                    assert!(on_demand.preprocessing_bytes_sent > 0 || o.party == 1);
                }
                _ => assert_eq!(plan_len, 0, "no dealer, no plan"),
            }
        }
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
