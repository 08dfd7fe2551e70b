#![allow(missing_docs)] // criterion macros generate undocumented items
//! The prover's side of one packed proof batch, the largest cost of malicious 3PC: every level
//! (packed, writing out, plain) and the last message, for AND words and for ring blocks at
//! the batch sizes `musket-rep3` uses (2^23 bit terms; 2^20 ring terms). Building the
//! statement (copies of the operands) is set-up, not timed. The steps split over the cores
//! (`musket_core`'s `par`): `taskset -c 0` measures one core.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use musket_core::dzkp::{Prover, ProverSteps};
use musket_core::dzkp_packed::{BlockWeights, PackedBlocks, PackedProver, PackedWords, WordWeights};
use musket_core::ext::{Ext, Gf64, Gr64};
use musket_core::Prg;

fn run<E: Ext>(mut prover: Box<dyn ProverSteps<E>>, prg: &mut Prg) {
    for _ in 0..prover.levels() {
        std::hint::black_box(prover.level());
        prover.fold(E::challenge(prg));
    }
    std::hint::black_box(prover.last(E::random(prg), E::random(prg)));
}

fn bench_dzkp(c: &mut Criterion) {
    let mut group = c.benchmark_group("dzkp_prover");
    group.sample_size(10);
    let mut prg = Prg::from_seed([3; 16]);
    let words = 1 << 17;
    let (lw, rw) = (prg.words(words), prg.words(words));
    let weights = WordWeights::draw(words, &mut prg);
    group.bench_function("and_words_2^17", |b| {
        b.iter_batched(
            || PackedProver::new(PackedWords::new(lw.clone(), rw.clone(), weights.clone(), words)),
            |p| run::<Gf64>(Box::new(p), &mut Prg::from_seed([4; 16])),
            BatchSize::LargeInput,
        )
    });
    let blocks = 1 << 14;
    let (x, y) = (prg.words(64 * blocks), prg.words(64 * blocks));
    let rho = BlockWeights::draw(blocks, &mut prg);
    group.bench_function("ring_blocks_2^14", |b| {
        b.iter_batched(
            || PackedProver::new(PackedBlocks::new(x.clone(), y.clone(), rho.clone(), blocks)),
            |p| run::<Gr64>(Box::new(p), &mut Prg::from_seed([4; 16])),
            BatchSize::LargeInput,
        )
    });
    // A plain batch (matrix products' Freivalds statements; elementwise ones under 1024
    // products): 2^14 dense Galois-ring elements a vector, every level plain.
    let plain_n = 1 << 14;
    let pl: Vec<Gr64> = (0..plain_n).map(|_| Gr64::random(&mut prg)).collect();
    let pr: Vec<Gr64> = (0..plain_n).map(|_| Gr64::random(&mut prg)).collect();
    group.bench_function("plain_ring_2^14", |b| {
        b.iter_batched(
            || Prover::new(pl.clone(), pr.clone(), plain_n),
            |p| run::<Gr64>(Box::new(p), &mut Prg::from_seed([4; 16])),
            BatchSize::LargeInput,
        )
    });
    // A plain level's fold of 2^14 elements: at a challenge (0/1 coefficients, shifted
    // additions) and at any element (the multiplication matrix).
    let n = 1 << 14;
    let lo: Vec<Gr64> = (0..n).map(|_| Gr64::random(&mut prg)).collect();
    let hi: Vec<Gr64> = (0..n).map(|_| Gr64::random(&mut prg)).collect();
    for (name, t) in
        [("fold_2^14_challenge", Gr64::challenge(&mut prg)), ("fold_2^14_any", Gr64::random(&mut prg))]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut v = lo.clone();
                Gr64::fold_into(&mut v, &hi, t);
                v
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dzkp);
criterion_main!(benches);
