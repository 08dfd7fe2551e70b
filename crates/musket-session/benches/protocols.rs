#![allow(missing_docs)] // criterion macros generate undocumented items
//! Protocol benchmarks on both back ends, all parties as threads of this process: fixed-point
//! multiplication of 10^5 and 10^6 elements, a 256x256 matrix product with truncation, and
//! comparison of 10^5 and 10^6 pairs. Only the operation is timed (inputs are shared first).
//! Bytes and rounds are exact and printed by `musket bench`; this measures time only.

// The binary's allocator, so that the figures match `musket bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use musket_core::{lt, mul_fixed, MpcError, Prg, Protocol};
use musket_ring::{FixedPoint, RingTensor};
use musket_session::{run_local, Backend, Job};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Op {
    Mul,
    Matmul,
    Lt,
}

struct Repeat {
    op: Op,
    shape: [usize; 2],
    iters: u64,
}

impl Job for Repeat {
    type Output = Duration;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Duration, MpcError> {
        let len = self.shape[0] * self.shape[1];
        let v = RingTensor::new(
            self.shape.to_vec(),
            Prg::from_os().words(len).iter().map(|w| ((*w as i64) >> 44) as u64).collect(),
        )?;
        let a = p.input(0, (p.party_id() == 0).then_some(&v), &self.shape)?;
        let b = p.input(1, (p.party_id() == 1).then_some(&v), &self.shape)?;
        let fp = FixedPoint::default();
        let t = Instant::now();
        for _ in 0..self.iters {
            match self.op {
                Op::Mul => drop(mul_fixed(p, fp, &a, &b)?),
                Op::Matmul => drop(p.matmul_truncate(&a, &b, fp.frac_bits())?),
                Op::Lt => drop(lt(p, &a, &b)?),
            }
        }
        Ok(t.elapsed())
    }
}

fn bench(c: &mut Criterion) {
    let cases: [(&str, Op, [usize; 2]); 5] = [
        ("mul_1e5", Op::Mul, [1, 100_000]),
        ("mul_1e6", Op::Mul, [1, 1_000_000]),
        ("matmul_256", Op::Matmul, [256, 256]),
        ("lt_1e5", Op::Lt, [1, 100_000]),
        ("lt_1e6", Op::Lt, [1, 1_000_000]),
    ];
    for backend in [Backend::TwoPc, Backend::ThreePc] {
        let mut group = c.benchmark_group(backend.name());
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(5));
        for (name, op, shape) in cases {
            group.bench_function(name, |bch| {
                bch.iter_custom(|iters| {
                    let outs = run_local(backend, &Repeat { op, shape, iters }, None).expect("benchmark job");
                    outs.iter().filter_map(|o| o.output).max().unwrap_or_default()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
