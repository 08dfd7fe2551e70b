//! Packing and the blocked driver: `C = A B` computed as `MR x NR` tiles, each tile an outer-
//! product accumulation over a `KC`-long slice of the shared dimension. Packing makes every
//! micro-kernel read both operands sequentially (A by `MR`-row panels, B by `NR`-column
//! panels, zero-padded), and the `KC` blocking keeps a B panel in L1 while the A block it
//! meets stays in L2.

use rayon::prelude::*;

/// Rows of an output tile (values of A broadcast per step).
pub(super) const MR: usize = 8;
/// Columns of an output tile (two 512-bit vectors of B per step).
pub(super) const NR: usize = 16;
/// Length of the shared-dimension slice one tile accumulates before writing back: a packed B
/// panel of `KC x NR` words (24 KiB) fits a 32 KiB L1 data cache.
const KC: usize = 192;
/// Below this many multiply-adds, threading costs more than it saves.
const PARALLEL_THRESHOLD: usize = 1 << 18;

/// How much of rayon's pool a thread's work may use (see [`serial_kernels`] and
/// [`local_party_kernels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Spread {
    /// Matrix products and proof steps over the pool.
    Everything,
    /// Matrix products on the calling thread, proof steps over the pool.
    ProofsOnly,
    /// Everything on the calling thread.
    Nothing,
}

thread_local! {
    /// This thread's [`Spread`].
    static SPREAD: std::cell::Cell<Spread> = const { std::cell::Cell::new(Spread::Everything) };
}

/// Runs `f` with this thread's spread at most `spread` (a nested call narrows it, never
/// widens it), restored afterwards, also after a panic.
fn with_spread<R>(spread: Spread, f: impl FnOnce() -> R) -> R {
    struct Restore(Spread);
    impl Drop for Restore {
        fn drop(&mut self) {
            SPREAD.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SPREAD.with(|s| {
        let old = s.get();
        s.set(old.max(spread));
        old
    }));
    f()
}

/// Runs `f` with every matrix product and proof step it makes on the calling thread alone,
/// not spread over rayon's pool: the reference that split work must equal (tests), and a
/// thread that must not touch the pool. Results do not depend on it.
pub fn serial_kernels<R>(f: impl FnOnce() -> R) -> R {
    with_spread(Spread::Nothing, f)
}

/// Runs `f` as one of the `parties` party threads of a local run (every party a thread of
/// one process). Where the parties alone can keep the cores busy (fewer than two cores a
/// party, as on the two-core machine the benchmarks run on), its matrix products stay on its
/// own thread: splitting a product there only added hand-offs and wake-ups, and made the
/// malicious back end 10-17% slower (ReLU and multiplication of 10^6, ResNet-18) with no gain
/// for the semi-honest one. Its proof steps (the malicious back end's, `musket_core::par`)
/// still go to rayon's pool, which the parties then share, and the pool's workers spread the
/// products those steps make (the matrix products' statements' folds) as any other work:
/// three party threads on two cores
/// leave a core idle whenever two of them wait, and a proof's rounds are such waits, while
/// the pool's workers keep both cores on whichever party's proof has work (twenty-first
/// session, alternated runs: malicious ReLU of 10^6 8%, multiplication 5%, matmul 1024² 2%,
/// ResNet-50 4-5% faster). Where the
/// cores outnumber the parties twice over, both spread (a threshold set by reasoning, not
/// measured: no such machine was at hand). Results do not depend on it.
pub fn local_party_kernels<R>(parties: usize, f: impl FnOnce() -> R) -> R {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 * parties {
        with_spread(Spread::ProofsOnly, f)
    } else {
        f()
    }
}

/// This thread's spread of work over rayon's pool, to carry into a thread it starts (the
/// malicious back end's background proofs), which would otherwise spread everything.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpread(Spread);

impl KernelSpread {
    /// The calling thread's spread.
    pub fn of_this_thread() -> Self {
        KernelSpread(SPREAD.with(|s| s.get()))
    }

    /// Runs `f` on the calling thread with this spread (at most: as a nested call, never
    /// wider than the thread's own).
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        with_spread(self.0, f)
    }
}

/// True when this thread's matrix products may use rayon's pool: false inside
/// [`serial_kernels`] and inside [`local_party_kernels`] with fewer than two cores a party.
pub fn parallel_allowed() -> bool {
    SPREAD.with(|s| s.get()) == Spread::Everything
}

/// True when this thread's proof steps may use rayon's pool (`musket_core::par`): false
/// inside [`serial_kernels`] only.
pub fn proof_parallel_allowed() -> bool {
    SPREAD.with(|s| s.get()) != Spread::Nothing
}

/// A micro-kernel implementation; [`Kernel::best`] picks the fastest this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust for any target, vectorised by LLVM for the baseline instruction set.
    Portable,
    /// A hand-written AVX2 tile (each 64-bit product from a `vpmuludq` and half a `vpmulld`).
    Avx2,
    /// A hand-written AVX-512 F+DQ tile, where `vpmullq` multiplies 8 words at once.
    Avx512,
}

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512];

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest kernel this CPU supports.
    pub fn best() -> Kernel {
        Kernel::ALL.into_iter().rev().find(|k| k.is_supported()).unwrap_or(Kernel::Portable)
    }
}

/// One tile: `out = sum_p a[p*lda + r] * b[p*ldb + c]` over `kc` steps, written in a form LLVM
/// keeps in registers and vectorises (the accumulator array is fully unrolled). Packed panels
/// have `lda = MR`, `ldb = NR` (constants once inlined); operands laid out row by row, their
/// row length.
#[inline(always)]
pub(super) fn tile_body(kc: usize, a: &[u64], lda: usize, b: &[u64], ldb: usize, out: &mut [u64; MR * NR]) {
    if kc == 0 {
        out.fill(0);
        return;
    }
    // Checked once, so that the loop's slices need no checks of their own.
    let (a, b) = (&a[..(kc - 1) * lda + MR], &b[..(kc - 1) * ldb + NR]);
    let mut acc = [[0u64; NR]; MR];
    for p in 0..kc {
        let (ap, bp) = (&a[p * lda..p * lda + MR], &b[p * ldb..p * ldb + NR]);
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] = acc[r][c].wrapping_add(ap[r].wrapping_mul(bp[c]));
            }
        }
    }
    for r in 0..MR {
        out[r * NR..(r + 1) * NR].copy_from_slice(&acc[r]);
    }
}

fn tile(kernel: Kernel, kc: usize, a: &[u64], b: &[u64], out: &mut [u64; MR * NR]) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::x86::tile_avx2(kc, a, b, out),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => super::x86::tile_avx512(kc, a, b, out),
        _ => tile_body(kc, a, MR, b, NR, out),
    }
}

/// Packs rows `p0..p0+kc` of B (`[k, n]`) as `NR`-column panels, each `kc x NR`, zero-padded.
fn pack_b_block(b: &[u64], n: usize, p0: usize, kc: usize, out: &mut [u64]) {
    for (jp, panel) in out.chunks_exact_mut(kc * NR).enumerate() {
        let j0 = jp * NR;
        let w = NR.min(n - j0);
        for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
            let row = &b[(p0 + p) * n + j0..][..w];
            dst[..w].copy_from_slice(row);
            dst[w..].fill(0);
        }
    }
}

/// How the left operand is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeftLayout {
    /// `[m, k]`, row-major.
    RowMajor,
    /// Its transpose, `[k, m]` row-major: packing then copies runs of `MR` words, so a caller
    /// holding `A^T` (a list of Galois-ring elements as rows) needs no transposition pass.
    Transposed,
}

/// Packs rows `i0..i0+rows`, columns `p0..p0+kc` of A (`[m, k]`) as `MR`-row panels, each
/// `kc x MR` (column by column), zero-padded.
#[allow(clippy::too_many_arguments)]
fn pack_a_block(
    a: &[u64],
    layout: LeftLayout,
    (m, k): (usize, usize),
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    out: &mut [u64],
) {
    if layout == LeftLayout::Transposed {
        for (ip, panel) in out.chunks_exact_mut(kc * MR).enumerate() {
            let r0 = ip * MR;
            let h = MR.min(rows - r0);
            for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                dst[..h].copy_from_slice(&a[(p0 + p) * m + i0 + r0..][..h]);
                dst[h..].fill(0);
            }
        }
        return;
    }
    for (ip, panel) in out.chunks_exact_mut(kc * MR).enumerate() {
        let r0 = ip * MR;
        let h = MR.min(rows - r0);
        for r in 0..MR {
            if r < h {
                let row = &a[(i0 + r0 + r) * k + p0..][..kc];
                for (p, &v) in row.iter().enumerate() {
                    panel[p * MR + r] = v;
                }
            } else {
                for p in 0..kc {
                    panel[p * MR + r] = 0;
                }
            }
        }
    }
}

/// `c += a b` for `a: [m, k]` stored as `layout` says, row-major `b: [k, n]` and `c: [m, n]`;
/// all dimensions non-zero.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    kernel: Kernel,
    a: &[u64],
    layout: LeftLayout,
    b: &[u64],
    c: &mut [u64],
    m: usize,
    k: usize,
    n: usize,
) {
    let n_panels = n.div_ceil(NR);
    let np = n_panels * NR;
    // B is packed once, block by block of KC rows: block p0 starts at p0 * np.
    let mut bp = vec![0u64; k * np];
    let parallel = parallel_allowed();
    let pack = |(blk, out): (usize, &mut [u64])| {
        let p0 = blk * KC;
        pack_b_block(b, n, p0, KC.min(k - p0), out)
    };
    if parallel {
        bp.par_chunks_mut(KC * np).enumerate().for_each(pack);
    } else {
        bp.chunks_mut(KC * np).enumerate().for_each(pack);
    }
    // Rows are split into blocks of whole MR panels, several per thread for balance, at most
    // 64 rows so that a block's slab of C stays small (256-row blocks ran 1.5x slower at 1024).
    let threads = if parallel { rayon::current_num_threads().max(1) } else { 1 };
    let mc = (m.div_ceil(4 * threads).div_ceil(MR) * MR).clamp(MR, 64);
    let run = |(blk, c_rows): (usize, &mut [u64])| {
        let i0 = blk * mc;
        let rows = c_rows.len() / n;
        let m_panels = rows.div_ceil(MR);
        let mut ap = vec![0u64; m_panels * MR * KC.min(k)];
        let mut out = [0u64; MR * NR];
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let ap = &mut ap[..m_panels * MR * kc];
            pack_a_block(a, layout, (m, k), i0, rows, p0, kc, ap);
            let b_block = &bp[p0 * np..p0 * np + kc * np];
            for (jp, b_panel) in b_block.chunks_exact(kc * NR).enumerate() {
                let j0 = jp * NR;
                let w = NR.min(n - j0);
                for (ip, a_panel) in ap.chunks_exact(kc * MR).enumerate() {
                    tile(kernel, kc, a_panel, b_panel, &mut out);
                    let r0 = ip * MR;
                    for r in 0..MR.min(rows - r0) {
                        let dst = &mut c_rows[(r0 + r) * n + j0..][..w];
                        for (d, s) in dst.iter_mut().zip(&out[r * NR..]) {
                            *d = d.wrapping_add(*s);
                        }
                    }
                }
            }
        }
    };
    if !parallel || m * k * n < PARALLEL_THRESHOLD {
        c.chunks_mut(mc * n).enumerate().for_each(run);
    } else {
        c.par_chunks_mut(mc * n).enumerate().for_each(run);
    }
}
