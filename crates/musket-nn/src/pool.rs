//! 2-D pooling on `[N, C, H, W]` shares.

use crate::cmp::{max_along, max_along_within};
use musket_core::maps;
use musket_core::{MpcError, Protocol, Result, Share};
use musket_ring::{FixedPoint, RingTensor};

/// Window geometry of a 2-D pooling layer (output size rounds down, as ONNX's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pool2d {
    /// Window height and width (taps).
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zero-based padding: top, left, bottom, right.
    pub pads: [usize; 4],
    /// Spacing between a window's taps (ONNX's `dilations`; 1: contiguous).
    #[serde(default = "contiguous")]
    pub dilation: [usize; 2],
}

fn contiguous() -> [usize; 2] {
    [1, 1]
}

impl Pool2d {
    /// Contiguous windows (no dilation).
    pub fn new(kernel: [usize; 2], stride: [usize; 2], pads: [usize; 4]) -> Self {
        Pool2d { kernel, stride, pads, dilation: contiguous() }
    }

    /// The extent a window covers along each axis: `(kernel - 1) dilation + 1`.
    pub fn span(&self) -> [usize; 2] {
        [0, 1].map(|d| (self.kernel[d].max(1) - 1).saturating_mul(self.dilation[d]).saturating_add(1))
    }

    /// Output height and width on an `h x w` input; `None` when a window (with the padding)
    /// does not fit or a size is zero. The one definition of the geometry: the secure and the
    /// f64 pooling gather by [`pool_windows`], and shape inference uses this.
    pub fn output_hw(&self, h: usize, w: usize) -> Option<[usize; 2]> {
        let [pt, pl, pb, pr] = self.pads;
        let padded = [h.checked_add(pt)?.checked_add(pb)?, w.checked_add(pl)?.checked_add(pr)?];
        let span = self.span();
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return None;
        }
        let out = |d: usize| padded[d].checked_sub(span[d]).map(|r| r / self.stride[d] + 1);
        Some([out(0)?, out(1)?])
    }
}

/// Value given to padded positions of max-pool windows: below every encodable value (those are
/// below 2^62 in magnitude in the ring), and close enough that the comparisons' differences
/// (below 2^63) cannot wrap. Max-pool is exact for every encodable input.
const MAX_POOL_PAD: i64 = -(1 << 62);

/// The windows of a pooling layer on `[N, C, H, W]`: the shape `[N, C, OH, OW, kh*kw]` and,
/// for each output position and window slot, the input index or `None` for padding (the
/// forward passes here gather by it; training's backward pass scatters by it).
pub fn pool_windows(shape: &[usize], pool: &Pool2d) -> Result<(Vec<usize>, Vec<Option<usize>>)> {
    let [n, c, h, w] = shape[..] else {
        return Err(MpcError::Usage(format!("pooling needs [N, C, H, W], got {shape:?}")));
    };
    let [kh, kw] = pool.kernel;
    let [sh, sw] = pool.stride;
    let [dh, dw] = pool.dilation;
    let [pt, pl, _, _] = pool.pads;
    let Some([oh, ow]) = pool.output_hw(h, w) else {
        return Err(MpcError::Usage(format!("pooling window {pool:?} does not fit input {shape:?}")));
    };
    let total = [n, c, oh, ow, kh, kw].iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if total.is_none_or(|t| t > crate::linear::MAX_LAYER_ELEMENTS) {
        return Err(MpcError::Usage(format!("pooling window {pool:?} on {shape:?} is too large")));
    }
    let mut idx = Vec::with_capacity(n * c * oh * ow * kh * kw);
    for b in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let start = idx.len();
                for ki in 0..kh {
                    for kj in 0..kw {
                        let (y, x) = (
                            (i * sh + ki * dh) as isize - pt as isize,
                            (j * sw + kj * dw) as isize - pl as isize,
                        );
                        idx.push(
                            (y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w)
                                .then(|| (b * h + y as usize) * w + x as usize),
                        );
                    }
                }
                // Dilated taps can skip over the input: a window of padding alone has no value.
                if idx[start..].iter().all(Option::is_none) {
                    return Err(MpcError::Usage(format!(
                        "pooling window {pool:?} on {shape:?} covers padding only"
                    )));
                }
            }
        }
    }
    Ok((vec![n, c, oh, ow, kh * kw], idx))
}

/// Max-pooling, exact: a comparison tree over each window (`ceil(log2(kh*kw))` comparison
/// levels, all windows at once). Padded positions never win. Ties are fine (equal values).
pub fn max_pool2d<P: Protocol>(p: &mut P, x: &P::Share, pool: &Pool2d) -> Result<P::Share> {
    max_pool_with(p, x, pool, MAX_POOL_PAD, None)
}

/// The windows of `x` with `pad` at padded positions, and their maxima on sign circuits of
/// `narrow`'s width (64 bits without it).
fn max_pool_with<P: Protocol>(
    p: &mut P,
    x: &P::Share,
    pool: &Pool2d,
    pad: i64,
    narrow: Option<(u32, &str)>,
) -> Result<P::Share> {
    let (shape, idx) = pool_windows(x.shape(), pool)?;
    let mut win = p.linear(x, &maps::Pick { shape: &shape, sources: &idx })?;
    if idx.iter().any(Option::is_none) {
        let pad = RingTensor::new(
            shape.clone(),
            idx.iter().map(|i| if i.is_none() { pad as u64 } else { 0 }).collect(),
        )?;
        win = p.add_public(&win, &pad)?;
    }
    match narrow {
        Some((width, what)) => max_along_within(p, &win, 4, width, what),
        None => max_along(p, &win, 4),
    }
}

/// The largest magnitude (exclusive, in real units at `frac_bits` fractional bits) that
/// [`max_pool2d_bounded`] accepts: `2^(63 - 2f)`, as for the graph's ReLU
/// ([`crate::relu_input_bound`]), whose output a max-pool usually takes.
pub fn max_pool_input_bound(frac_bits: u32) -> f64 {
    crate::relu_input_bound(frac_bits)
}

/// [`max_pool2d`] for inputs below [`max_pool_input_bound`] (`2^(63-f)` in the ring), exact
/// there: a window's differences stay within `2^(64-f)`, so its comparisons take `65 - f`-bit
/// sign circuits (49 bits at 16 fractional bits: 136 AND gates per comparison instead of 181,
/// the same rounds), and padding is the bound's lowest value, `-(2^(63-f) - 1)`, which no
/// input in the domain is below. The graph's MaxPool: its operand bound
/// (`Op::operand_bounds`) makes the secure range check enforce the domain, and the range audit
/// checks every comparison's difference; outside, the result is meaningless.
pub fn max_pool2d_bounded<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    pool: &Pool2d,
) -> Result<P::Share> {
    let f = fp.frac_bits();
    if f == 0 {
        // The bound is 2^63 in the ring: every value, the 64-bit circuit.
        return max_pool2d(p, x, pool);
    }
    max_pool_with(p, x, pool, 1 - (1i64 << (63 - f)), Some((65 - f, "maxpool")))
}

/// Average pooling. With `count_include_pad` false (ONNX's default) each window is divided by
/// its number of real positions. Error: at most one ulp plus `|window sum| 2^-(f+13)` from the
/// rounding of `1/count`. Requires window means below 2^18 in magnitude.
pub fn avg_pool2d<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    pool: &Pool2d,
    count_include_pad: bool,
) -> Result<P::Share> {
    let (shape, idx) = pool_windows(x.shape(), pool)?;
    let win = p.linear(x, &maps::Pick { shape: &shape, sources: &idx })?;
    let sums = p.sum_axis(&win, 4)?;
    let k = shape[4];
    // 1/count with 12 extra fractional bits, so the rounding of the constant stays far below
    // one ulp of the result.
    let fine = FixedPoint::new((fp.frac_bits() + 12).min(30));
    let scales: Vec<u64> = idx
        .chunks(k)
        .map(|w| {
            let count = if count_include_pad { k } else { w.iter().filter(|i| i.is_some()).count().max(1) };
            fine.encode_one(1.0 / count as f64).expect("1/count is in range")
        })
        .collect();
    let scaled = p.mul_public(&sums, &RingTensor::new(sums.shape().to_vec(), scales)?)?;
    p.truncate(&scaled, fine.frac_bits())
}

/// Mean over H and W, keeping them as size-1 dimensions (`[N, C, 1, 1]`).
pub fn global_avg_pool<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share) -> Result<P::Share> {
    let [n, c, h, w] = x.shape()[..] else {
        return Err(MpcError::Usage(format!("global pooling needs [N, C, H, W], got {:?}", x.shape())));
    };
    let flat = p.reshape(x, &[n, c, h * w])?;
    let sums = p.sum_axis(&flat, 2)?;
    let mean = crate::linear::scale_public_fine(p, fp, &sums, 1.0 / (h * w).max(1) as f64)?;
    p.reshape(&mean, &[n, c, 1, 1])
}
