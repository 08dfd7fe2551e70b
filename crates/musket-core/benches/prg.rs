#![allow(missing_docs)] // criterion macros generate undocumented items
//! PRG expansion (AES-128 in counter mode), the cost under every correlated-randomness draw.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use musket_core::Prg;

fn bench_prg(c: &mut Criterion) {
    let mut group = c.benchmark_group("prg");
    let n = 1 << 20;
    group.throughput(Throughput::Bytes(8 * n as u64));
    let mut prg = Prg::from_seed([1; 16]);
    group.bench_function("words_1M", |b| b.iter(|| prg.words(n)));
    let mut buf = vec![0u64; n];
    group.bench_function("fill_1M", |b| b.iter(|| prg.fill(&mut buf)));
    group.finish();
}

criterion_group!(benches, bench_prg);
criterion_main!(benches);
