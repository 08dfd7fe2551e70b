//! A convolution's im2col map, in this crate so that the protocol layer and the 2PC dealer can
//! name it: a back end with Beaver triples masks a convolution's images, not their im2col
//! matrix, and its dealer builds the triple's matrix from the images' mask by this same map.

use crate::{RingMap, ShapeError, Tensor, Word};

/// The transposed im2col matrix `[C*kh*kw, N*OH*OW]` of images `[N, C, H, W]`: row
/// `(ch, ki, kj)` holds the input pixels under that kernel tap for every output position
/// (zero in the padding), so that rows are written contiguously (and copied whole along a
/// row of the image at stride 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Im2col {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub wd: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
    /// Vertical and horizontal dilation.
    pub dilation: [usize; 2],
    /// Top and left padding.
    pub pads: [usize; 2],
}

impl Im2col {
    /// Elements of the images it maps, `N C H W`.
    pub fn image_len(&self) -> usize {
        self.n * self.c * self.h * self.wd
    }

    /// Rows of the matrix: the kernel's taps, `C kh kw`.
    pub fn taps(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the matrix: the output positions, `N OH OW`.
    pub fn positions(&self) -> usize {
        self.n * self.oh * self.ow
    }

    /// Checks a description read from a peer before anything is allocated by it: strides and
    /// dilations of at least 1, and the images and the matrix at most `max_elements` each.
    pub fn check(&self, max_elements: u64) -> Result<(), String> {
        let Self { n, c, h, wd, kh, kw, oh, ow, stride, dilation, pads } = *self;
        if stride.contains(&0) || dilation.contains(&0) {
            return Err(format!("im2col with stride {stride:?} and dilation {dilation:?}"));
        }
        let product = |v: &[usize]| v.iter().try_fold(1u64, |p, &x| p.checked_mul(x as u64));
        let fits = |v: &[usize]| product(v).is_some_and(|p| p <= max_elements);
        let rows = product(&[c, kh, kw]);
        let cols = product(&[n, oh, ow]);
        let matrix = rows.zip(cols).and_then(|(r, q)| r.checked_mul(q));
        // The offsets the map computes stay far from overflow when every size fits in u32.
        let small = [h, wd, kh, kw, oh, ow, stride[0], stride[1], dilation[0], dilation[1], pads[0], pads[1]]
            .iter()
            .all(|&x| x <= u32::MAX as usize);
        // The map's loops run over every tap and every output row, whatever the output width
        // (an empty dimension elsewhere would otherwise let huge loops through).
        let loops = fits(&[c, kh, kw]) && fits(&[c, kh, kw, n.max(1), oh.max(1)]);
        if !fits(&[n, c, h, wd]) || matrix.is_none_or(|m| m > max_elements) || !small || !loops {
            return Err(format!("im2col of [{n}, {c}, {h}, {wd}] to [{rows:?}, {cols:?}] is too large"));
        }
        Ok(())
    }
}

impl RingMap for Im2col {
    fn map<W: Word>(&self, t: &Tensor<W>) -> Result<Tensor<W>, ShapeError> {
        let Self { n, c, h, wd, kh, kw, oh, ow, stride: [sh, sw], dilation: [dh, dw], pads: [pt, pl] } =
            *self;
        if t.shape() != [n, c, h, wd] {
            return Err(ShapeError(format!("im2col of {:?} for images [{n}, {c}, {h}, {wd}]", t.shape())));
        }
        if sh == 0 || sw == 0 {
            return Err(ShapeError(format!("im2col with stride [{sh}, {sw}]")));
        }
        let (k, rows) = (c * kh * kw, n * oh * ow);
        let mut out = vec![W::ZERO; k * rows];
        for ch in 0..c {
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = &mut out[((ch * kh + ki) * kw + kj) * rows..][..rows];
                    // Output columns j whose input column j*sw + kj*dw - pl lies in 0..wd.
                    let first = (pl.saturating_sub(kj * dw)).div_ceil(sw);
                    let end = (wd + pl).checked_sub(kj * dw).map_or(0, |span| span.div_ceil(sw).min(ow));
                    if first >= end {
                        continue;
                    }
                    // The input column of output column `first`.
                    let start = first * sw + kj * dw - pl;
                    for b in 0..n {
                        let image = &t.data()[(b * c + ch) * h * wd..][..h * wd];
                        for i in 0..oh {
                            let Some(y) = (i * sh + ki * dh).checked_sub(pt).filter(|&y| y < h) else {
                                continue;
                            };
                            let line = &image[y * wd..][..wd];
                            let dst = &mut row[(b * oh + i) * ow..][first..end];
                            if sw == 1 {
                                dst.copy_from_slice(&line[start..start + dst.len()]);
                            } else {
                                for (d, v) in dst.iter_mut().zip(line[start..].iter().step_by(sw)) {
                                    *d = *v;
                                }
                            }
                        }
                    }
                }
            }
        }
        Tensor::new(vec![k, rows], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::check::assert_described;

    const CONV: Im2col = Im2col {
        n: 2,
        c: 2,
        h: 4,
        wd: 5,
        kh: 3,
        kw: 2,
        oh: 2,
        ow: 2,
        stride: [2, 3],
        dilation: [1, 2],
        pads: [1, 1],
    };

    #[test]
    fn im2col_is_the_same_map_in_both_rings_and_linear() {
        assert_described(&CONV, &[2, 2, 4, 5]);
        // Stride 1 (whole rows copied) with padding on every side.
        assert_described(&Im2col { stride: [1, 1], dilation: [1, 1], oh: 4, ow: 6, ..CONV }, &[2, 2, 4, 5]);
    }

    #[test]
    fn a_description_from_a_peer_is_bounded_before_use() {
        assert!(CONV.check(1 << 20).is_ok());
        assert!(Im2col { stride: [0, 1], ..CONV }.check(1 << 20).is_err());
        assert!(Im2col { dilation: [1, 0], ..CONV }.check(1 << 20).is_err());
        assert!(Im2col { n: usize::MAX, ..CONV }.check(1 << 20).is_err());
        assert!(Im2col { oh: 1 << 20, ow: 1 << 20, ..CONV }.check(1 << 28).is_err());
        assert!(CONV.check(10).is_err());
        // Empty images or outputs with a huge kernel: nothing to allocate, but the loops over
        // the taps and output rows would run for ages.
        let huge = u32::MAX as usize;
        assert!(Im2col { n: 0, c: huge, kh: huge, kw: 1, ..CONV }.check(1 << 28).is_err());
        assert!(Im2col { h: 0, oh: 0, n: 1 << 20, wd: 1 << 20, c: 1 << 10, ..CONV }.check(1 << 28).is_err());
    }
}
