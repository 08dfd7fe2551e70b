//! The time of each level of one packed ring proof batch (2^14 blocks of 64 products, the
//! size `musket-rep3` proves), prover side, three runs: `level + fold` per level, the fold
//! after the last packed level including the writing out. Where the criterion benchmark
//! (`cargo bench -p musket-core --bench dzkp`) times a whole batch, this says which level
//! took it; `taskset -c 0` measures one core.
use musket_core::dzkp::ProverSteps;
use musket_core::dzkp_packed::{BlockWeights, PackedBlocks, PackedProver};
use musket_core::ext::{Ext, Gr64};
use musket_core::Prg;
use std::time::Instant;
fn main() {
    let mut prg = Prg::from_seed([3; 16]);
    let blocks = 1 << 14;
    let (x, y) = (prg.words(64 * blocks), prg.words(64 * blocks));
    let rho = BlockWeights::draw(blocks, &mut prg);
    for _rep in 0..3 {
        let mut p = PackedProver::new(PackedBlocks::new(x.clone(), y.clone(), rho.clone(), blocks));
        let mut prg = Prg::from_seed([4; 16]);
        let mut line = String::new();
        let t0 = Instant::now();
        for l in 0..ProverSteps::levels(&p) {
            let t = Instant::now();
            std::hint::black_box(ProverSteps::level(&mut p));
            let a = t.elapsed();
            let t = Instant::now();
            ProverSteps::fold(&mut p, Gr64::challenge(&mut prg));
            let b = t.elapsed();
            line += &format!("L{l} {:.1}+{:.1}  ", a.as_secs_f64() * 1e3, b.as_secs_f64() * 1e3);
        }
        println!("{line} total {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    }
}
