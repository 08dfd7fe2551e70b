//! Public index maps that move elements: broadcasting, transposes and convolution's im2col
//! (pooling windows are `musket_nn::pool_windows`). Each is a [`Gather`](crate::calc::Gather) source list, so that its
//! backward pass is the same list read the other way ([`crate::Calc::gather_adjoint`]).

use musket_core::{MpcError, Result};
use musket_nn::Conv2d;

/// Largest index map built (elements), as `musket-nn` bounds a layer's intermediate tensors.
const MAX_MAP: usize = 1 << 28;

fn checked(total: Option<usize>, what: &str) -> Result<usize> {
    total
        .filter(|&t| t <= MAX_MAP)
        .ok_or_else(|| MpcError::Usage(format!("{what} is too large (more than 2^28 elements)")))
}

/// Row-major strides of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Source of each element of `to` when `from` is broadcast to it (numpy rules: aligned from
/// the right, size-1 axes repeated).
pub(crate) fn broadcast_src(from: &[usize], to: &[usize]) -> Result<Vec<Option<usize>>> {
    if from.len() > to.len() {
        return Err(MpcError::Usage(format!("cannot broadcast {from:?} to {to:?}")));
    }
    let lead = to.len() - from.len();
    let fs = strides(from);
    let total = checked(to.iter().try_fold(1usize, |a, &d| a.checked_mul(d)), "a broadcast")?;
    let ts = strides(to);
    let mut out = Vec::with_capacity(total);
    for i in 0..total {
        let mut src = 0;
        for (d, &t) in to.iter().enumerate() {
            let coord = (i / ts[d]) % t.max(1);
            if d >= lead {
                let f = from[d - lead];
                if f != 1 && f != t {
                    return Err(MpcError::Usage(format!("cannot broadcast {from:?} to {to:?}")));
                }
                if f != 1 {
                    src += coord * fs[d - lead];
                }
            }
        }
        out.push(Some(src));
    }
    Ok(out)
}

/// `x` with axes permuted by `perm` (empty: reversed): the output shape and its sources.
pub(crate) fn transpose_src(shape: &[usize], perm: &[usize]) -> Result<(Vec<usize>, Vec<Option<usize>>)> {
    let rank = shape.len();
    let perm: Vec<usize> = if perm.is_empty() { (0..rank).rev().collect() } else { perm.to_vec() };
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&a| a >= rank || std::mem::replace(&mut seen[a], true)) {
        return Err(MpcError::Usage(format!("permutation {perm:?} does not fit rank {rank}")));
    }
    let out_shape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    let (is, os) = (strides(shape), strides(&out_shape));
    let total: usize = shape.iter().product();
    let src = (0..total)
        .map(|i| Some((0..rank).map(|d| ((i / os[d]) % out_shape[d].max(1)) * is[perm[d]]).sum()))
        .collect();
    Ok((out_shape, src))
}

/// The transpose of a 2-D tensor's sources.
pub(crate) fn transpose2_src(rows: usize, cols: usize) -> Vec<Option<usize>> {
    (0..rows * cols).map(|i| Some((i % rows) * cols + i / rows)).collect()
}

/// Convolution as a matrix product: the im2col matrix `[N*OH*OW, C*kh*kw]` of `x` and the
/// weight matrix `[C*kh*kw, O]` of `w` (groups = 1), and where the product `[N*OH*OW, O]`
/// goes in the output `[N, O, OH, OW]`.
pub(crate) struct ConvMaps {
    /// `[rows, k]`.
    pub(crate) cols_shape: [usize; 2],
    /// Sources of the im2col matrix in `x` (`None`: padding).
    pub(crate) cols: Vec<Option<usize>>,
    /// `[k, o]`.
    pub(crate) wmat_shape: [usize; 2],
    /// Sources of the weight matrix in `w`.
    pub(crate) wmat: Vec<Option<usize>>,
    /// `[N, O, OH, OW]`.
    pub(crate) out_shape: [usize; 4],
    /// Sources of the output in the product.
    pub(crate) out: Vec<Option<usize>>,
}

/// The maps of a convolution of `x [N, C, H, W]` with `w [O, C, kh, kw]`.
pub(crate) fn conv_maps(x: &[usize], w: &[usize], g: &Conv2d) -> Result<ConvMaps> {
    let (&[n, c, h, wd], &[o, cw, kh, kw]) = (x, w) else {
        return Err(MpcError::Usage(format!("Conv needs 4-D input and weights, got {x:?} and {w:?}")));
    };
    if g.groups != 1 || cw != c {
        return Err(MpcError::Usage(format!(
            "Conv with groups = {} (input {x:?}, weights {w:?}): training supports groups = 1",
            g.groups
        )));
    }
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    let [pt, pl, pb, pr] = g.pads;
    let (ekh, ekw) = ((kh.max(1) - 1) * dh + 1, (kw.max(1) - 1) * dw + 1);
    if sh == 0
        || sw == 0
        || dh == 0
        || dw == 0
        || kh == 0
        || kw == 0
        || h + pt + pb < ekh
        || wd + pl + pr < ekw
    {
        return Err(MpcError::Usage(format!("Conv kernel {w:?} does not fit input {x:?} with {g:?}")));
    }
    let (oh, ow) = ((h + pt + pb - ekh) / sh + 1, (wd + pl + pr - ekw) / sw + 1);
    let k = c * kh * kw;
    let rows = n * oh * ow;
    checked(rows.checked_mul(k), "a convolution's im2col matrix")?;
    let mut cols = Vec::with_capacity(rows * k);
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    for ki in 0..kh {
                        for kj in 0..kw {
                            let y = (i * sh + ki * dh) as isize - pt as isize;
                            let xx = (j * sw + kj * dw) as isize - pl as isize;
                            cols.push(
                                (y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd)
                                    .then(|| ((b * c + ch) * h + y as usize) * wd + xx as usize),
                            );
                        }
                    }
                }
            }
        }
    }
    // wmat[(ch, ki, kj), oc] = w[oc, ch, ki, kj]
    let wmat = (0..k * o).map(|i| Some((i % o) * k + i / o)).collect();
    // out[b, oc, s] = prod[b * oh * ow + s, oc]
    let out = (0..n * o * oh * ow)
        .map(|i| {
            let (b, oc, s) = (i / (o * oh * ow), (i / (oh * ow)) % o, i % (oh * ow));
            Some((b * oh * ow + s) * o + oc)
        })
        .collect();
    Ok(ConvMaps { cols_shape: [rows, k], cols, wmat_shape: [k, o], wmat, out_shape: [n, o, oh, ow], out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_and_broadcasts() {
        let (shape, src) = transpose_src(&[2, 3], &[]).unwrap();
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(src, transpose2_src(2, 3));
        assert_eq!(src.iter().map(|s| s.unwrap()).collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        let b = broadcast_src(&[3], &[2, 3]).unwrap();
        assert_eq!(b.iter().map(|s| s.unwrap()).collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 2]);
        let b = broadcast_src(&[2, 1], &[2, 3]).unwrap();
        assert_eq!(b.iter().map(|s| s.unwrap()).collect::<Vec<_>>(), vec![0, 0, 0, 1, 1, 1]);
        assert!(broadcast_src(&[2], &[2, 3]).is_err());
        assert!(transpose_src(&[2, 3], &[0, 0]).is_err());
    }
}
