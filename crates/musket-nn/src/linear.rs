//! Linear layers on shares: convolution (im2col + one secret matrix product), fully connected
//! layers, per-channel affine maps (batch norm), scaling by public constants.

use crate::maps::{BlockDiagonal, ImagesFirst, Widen};
use musket_core::maps;
use musket_core::{MpcError, Protocol, Result, Share};
use musket_ring::FixedPoint;
use musket_ring::Im2col;

/// Largest intermediate tensor a layer may build (elements).
pub(crate) const MAX_LAYER_ELEMENTS: usize = 1 << 28;

/// Extra fractional bits given to a public constant in [`scale_public_fine`].
const FINE_BITS: u32 = 12;

/// Multiplies by a public real constant encoded with 12 extra fractional bits (e.g. `1/n` for a
/// mean over thousands of elements), one truncation: error at most one ulp plus
/// `|x| 2^-(f+13)`. Requires `|x c| < 2^(62 - 2f - 12)` (2^18 at f = 16).
pub fn scale_public_fine<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, c: f64) -> Result<P::Share> {
    let fine = FixedPoint::new((fp.frac_bits() + FINE_BITS).min(30));
    let extra = fine.frac_bits() - fp.frac_bits();
    let enc = fine.encode_one(c).ok_or_else(|| MpcError::Usage("public constant out of range".into()))?;
    let scaled = p.scale(x, enc)?;
    p.truncate(&scaled, fp.frac_bits() + extra)
}

/// Multiplies by a public real constant: one truncation, error at most one ulp plus
/// `|x| * 2^-(f+1)` from rounding the constant.
pub fn scale_public<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, c: f64) -> Result<P::Share> {
    let enc = fp.encode_one(c).ok_or_else(|| MpcError::Usage("public constant out of range".into()))?;
    let scaled = p.scale(x, enc)?;
    p.truncate(&scaled, fp.frac_bits())
}

/// Divides by a public real `d != 0` (as multiplication by `1/d`; same error as
/// [`scale_public`]).
pub fn div_public<P: Protocol>(p: &mut P, fp: FixedPoint, x: &P::Share, d: f64) -> Result<P::Share> {
    if d == 0.0 || !d.is_finite() {
        return Err(MpcError::Usage("division by zero or a non-finite value".into()));
    }
    scale_public(p, fp, x, 1.0 / d)
}

fn add_broadcast<P: Protocol>(p: &P, x: &P::Share, b: &P::Share, b_shape: &[usize]) -> Result<P::Share> {
    let target = x.shape().to_vec();
    let b_shape = b_shape.to_vec();
    p.linear2(x, b, &maps::AddMapped(Widen { keep: &b_shape, shape: &target }))
}

/// Fully connected layer `x w^T + bias` for `x [batch, in]`, `w [out, in]`, `bias [out]`, all
/// secret. Error: one truncation (one ulp) plus input rounding accumulated over `in` terms.
pub fn linear<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    w: &P::Share,
    bias: Option<&P::Share>,
) -> Result<P::Share> {
    let wt = p.linear(w, &maps::Transpose2)?;
    let y = p.matmul_truncate(x, &wt, fp.frac_bits())?;
    match bias {
        Some(b) => add_broadcast(p, &y, b, &[1, b.len()]),
        None => Ok(y),
    }
}

/// Per-channel affine map `x * scale[c] + shift[c]` on `[N, C, ...]` with secret `scale` and
/// `shift` of shape `[C]`: inference-time batch normalisation.
pub fn affine<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    scale: &P::Share,
    shift: &P::Share,
) -> Result<P::Share> {
    let shape = x.shape().to_vec();
    if shape.len() < 2 || scale.len() != shape[1] || shift.len() != shape[1] {
        return Err(MpcError::Usage(format!("affine: per-channel parameters do not fit {shape:?}")));
    }
    let mut ch_shape = vec![1; shape.len()];
    ch_shape[1] = shape[1];
    let wide = p.linear(scale, &Widen { keep: &ch_shape, shape: &shape })?;
    let y = p.mul_truncate(x, &wide, fp.frac_bits())?;
    add_broadcast(p, &y, shift, &ch_shape)
}

/// Convolution geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conv2d {
    /// Step between output positions.
    pub stride: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub pads: [usize; 4],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Channel groups (C for depthwise).
    pub groups: usize,
}

impl Default for Conv2d {
    fn default() -> Self {
        Self { stride: [1, 1], pads: [0; 4], dilation: [1, 1], groups: 1 }
    }
}

/// 2-D convolution of secret `x [N, C, H, W]` with secret weights `w [O, C/groups, kh, kw]` and
/// optional secret `bias [O]`, giving `[N, O, OH, OW]`. Computed as one secret matrix product
/// of the weight matrix `[O, C*kh*kw]` (block-diagonal, for groups) with the transposed
/// im2col matrix `[C*kh*kw, N*OH*OW]`, then one truncation: in 3PC the bytes sent are the output size. Error: one ulp plus
/// input rounding over `C/groups * kh * kw` terms.
pub fn conv2d<P: Protocol>(
    p: &mut P,
    fp: FixedPoint,
    x: &P::Share,
    w: &P::Share,
    bias: Option<&P::Share>,
    conv: &Conv2d,
) -> Result<P::Share> {
    let ([n, c, h, wd], [o, cg, kh, kw]) =
        (x.shape()[..].try_into().unwrap_or([0; 4]), w.shape()[..].try_into().unwrap_or([0; 4]));
    let g = conv.groups;
    if x.shape().len() != 4 || w.shape().len() != 4 || g == 0 || c != cg * g || o % g != 0 || c == 0 || o == 0
    {
        return Err(MpcError::Usage(format!(
            "conv2d: input {:?} and weights {:?} do not fit groups = {g}",
            x.shape(),
            w.shape()
        )));
    }
    let [sh, sw] = conv.stride;
    let [dh, dw] = conv.dilation;
    let [pt, pl, pb, pr] = conv.pads;
    let (ekh, ekw) = ((kh - 1) * dh + 1, (kw - 1) * dw + 1);
    if sh == 0 || sw == 0 || dh == 0 || dw == 0 || h + pt + pb < ekh || wd + pl + pr < ekw {
        return Err(MpcError::Usage(format!(
            "conv2d: kernel does not fit input {:?} with {conv:?}",
            x.shape()
        )));
    }
    let oh = (h + pt + pb - ekh) / sh + 1;
    let ow = (wd + pl + pr - ekw) / sw + 1;
    let k = c * kh * kw;
    let rows = n * oh * ow;
    if rows.checked_mul(k).is_none_or(|e| e > MAX_LAYER_ELEMENTS)
        || k.checked_mul(o).is_none_or(|e| e > MAX_LAYER_ELEMENTS)
    {
        return Err(MpcError::Usage(format!("conv2d: layer on {:?} is too large", x.shape())));
    }
    // The transposed im2col matrix `[C*kh*kw, N*OH*OW]`: row (ch, ki, kj) holds the input
    // pixels under that kernel tap for every output position, so that rows are written
    // contiguously (and copied whole along a row of the image at stride 1).
    let im2col = Im2col { n, c, h, wd, kh, kw, oh, ow, stride: [sh, sw], dilation: [dh, dw], pads: [pt, pl] };
    // The weights as `[O, C*kh*kw]`: their own layout when there is one group (read as that
    // matrix, not copied, and multiplied by the map of the images, which a back end may open
    // masked as they are); block-diagonal (each output channel's taps in its group's
    // columns) otherwise. The product `[O, N*OH*OW]` is, for one image, the output's layout
    // already.
    let mut y = if g == 1 {
        p.matmul_im2col_truncate(w, x, &im2col, fp.frac_bits())?
    } else {
        let cols = p.linear(x, &im2col)?;
        let og = o / g;
        let wmat = p.linear(w, &BlockDiagonal { o, k, taps: cg * kh * kw, per_group: og })?;
        p.matmul_truncate(&wmat, &cols, fp.frac_bits())?
    };
    if let Some(b) = bias {
        y = add_broadcast(p, &y, b, &[o, 1])?;
    }
    p.linear(&y, &ImagesFirst { n, o, oh, ow })
}
