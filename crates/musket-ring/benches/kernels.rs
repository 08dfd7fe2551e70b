#![allow(missing_docs)] // criterion macros generate undocumented items
//! Kernel benchmarks: the u64 matmul against the naive loop and an f64 reference loop.
use criterion::{criterion_group, criterion_main, Criterion};
use musket_ring::{matmul, matmul_naive};
use rand::Rng;

fn bench_matmul(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let mut group = c.benchmark_group("u64_matmul");
    group.sample_size(10);
    for &n in &[256usize, 512] {
        let a: Vec<u64> = (0..n * n).map(|_| rng.gen()).collect();
        let b: Vec<u64> = (0..n * n).map(|_| rng.gen()).collect();
        group.bench_function(format!("tiled_{n}"), |bch| bch.iter(|| matmul(&a, &b, n, n, n)));
        if n == 256 {
            group.bench_function(format!("naive_{n}"), |bch| bch.iter(|| matmul_naive(&a, &b, n, n, n)));
        }
    }
    group.finish();
}

criterion_group!(benches, bench_matmul);
criterion_main!(benches);
