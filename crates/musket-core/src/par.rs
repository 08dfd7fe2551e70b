//! Proof work spread over the cores, where the calling thread may use them: one rule for
//! every parallel step of the proofs.
//!
//! A party process proves on all its cores: its statements run side by side
//! ([`map_each`], [`both`], in `musket-rep3`'s proof driver), and one statement's largest
//! steps split their groups or blocks into ranges here, whose results are summed or concatenated in order, so they are
//! the same however the work is split. A local run's party threads hand these steps to
//! rayon's pool too, which they share, even where their matrix products stay on their own
//! threads (`musket_ring::local_party_kernels`): the pool keeps every core on whichever
//! party's proof has work while the others wait for a round. Only inside
//! `musket_ring::serial_kernels` (read by `musket_ring::proof_parallel_allowed`) is there one
//! range and no hand-off.

use rayon::prelude::*;
use std::ops::Range;

/// `f` of every item, in order, computed over rayon's pool where this thread may use it
/// ([`musket_ring::proof_parallel_allowed`]), one after another otherwise. The results do not
/// depend on which, as long as `f` draws from no shared stream.
pub fn map_each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    if items.len() > 1 && musket_ring::proof_parallel_allowed() {
        items.into_par_iter().map(f).collect()
    } else {
        items.into_iter().map(f).collect()
    }
}

/// `a` and `b`, side by side under the same rule as [`map_each`].
pub fn both<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    if musket_ring::proof_parallel_allowed() {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// `0..len` in consecutive ranges of equal length (the last one shorter), at most one per
/// thread of rayon's pool and at most `len / min` of them (so about `min` or more each);
/// a single range where this thread stays serial.
pub(crate) fn ranges(len: usize, min: usize) -> Vec<Range<usize>> {
    let threads = if musket_ring::proof_parallel_allowed() { rayon::current_num_threads() } else { 1 };
    let parts = threads.min(len / min.max(1)).max(1);
    let step = len.div_ceil(parts).max(1);
    let mut out: Vec<Range<usize>> = (0..len).step_by(step).map(|s| s..(s + step).min(len)).collect();
    if out.is_empty() {
        out.push(0..0);
    }
    out
}

/// `f` of each of [`ranges`]`(len, min)`, in order, side by side when there are several.
pub(crate) fn map_ranges<R: Send>(
    len: usize,
    min: usize,
    f: impl Fn(Range<usize>) -> R + Sync + Send,
) -> Vec<R> {
    map_each(ranges(len, min), f)
}

/// `f` on matching chunks of `dst` and `src` (of equal lengths), split as [`ranges`] splits
/// their length, side by side when there are several.
pub(crate) fn zip_chunks<A: Send, B: Sync>(
    dst: &mut [A],
    src: &[B],
    min: usize,
    f: impl Fn(&mut [A], &[B]) + Sync + Send,
) {
    debug_assert_eq!(dst.len(), src.len());
    let parts = ranges(dst.len(), min);
    if parts.len() > 1 {
        let step = parts[0].len();
        dst.par_chunks_mut(step).zip(src.par_chunks(step)).for_each(|(d, s)| f(d, s));
    } else {
        f(dst, src);
    }
}

/// `f` on each of [`ranges`]`(len, min)` with the matching chunks of `a` and `b`, which hold
/// `unit` elements per index (`a.len() == b.len() == len * unit`), side by side when there
/// are several: each part writes its own rows of the outputs in place, where parts returned
/// and concatenated would copy them all once more (into fresh memory).
pub(crate) fn for_ranges_mut<A: Send, B: Send>(
    len: usize,
    min: usize,
    unit: usize,
    a: &mut [A],
    b: &mut [B],
    f: impl Fn(Range<usize>, &mut [A], &mut [B]) + Sync + Send,
) {
    debug_assert_eq!(a.len(), len * unit);
    debug_assert_eq!(b.len(), len * unit);
    let parts = ranges(len, min);
    if parts.len() > 1 {
        let step = parts[0].len();
        a.par_chunks_mut(step * unit)
            .zip(b.par_chunks_mut(step * unit))
            .enumerate()
            .for_each(|(i, (ca, cb))| f(i * step..(i * step + step).min(len), ca, cb));
    } else {
        f(0..len, a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once_in_order() {
        for len in [0usize, 1, 5, 64, 1000, 1023] {
            for min in [1usize, 3, 64, 5000] {
                let parts = ranges(len, min);
                assert!(!parts.is_empty());
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts.last().map(|r| r.end), Some(len));
                assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
                assert!(parts.len() <= (len / min).max(1));
                let serial = musket_ring::serial_kernels(|| ranges(len, min));
                assert_eq!(serial, vec![0..len]);
            }
        }
    }

    #[test]
    fn ranges_written_in_place_cover_every_row_once() {
        for len in [0usize, 1, 5, 64, 1000] {
            for min in [1usize, 3, 64] {
                let (mut a, mut b) = (vec![0usize; 3 * len], vec![0usize; 3 * len]);
                for_ranges_mut(len, min, 3, &mut a, &mut b, |r, ca, cb| {
                    assert_eq!(ca.len(), 3 * r.len());
                    for (k, i) in r.enumerate() {
                        ca[3 * k..3 * k + 3].iter_mut().for_each(|v| *v += i + 1);
                        cb[3 * k] += 1;
                    }
                });
                assert!(a.chunks(3).enumerate().all(|(i, c)| c.iter().all(|&v| v == i + 1)));
                assert_eq!(b.iter().sum::<usize>(), len);
            }
        }
    }
}
