//! Shape inference, one rule per op: the importer learns each node's output shape as it is
//! built (Shape nodes and the masks of transformer exports need them) without evaluating the
//! graph. Ops whose cost grows with more than their output (products, convolutions, pooling)
//! and the elementwise ones have their rule written out; the others move or reduce elements,
//! and their rule is their own f64 definition run on zeros, so the two cannot disagree.

use crate::float::eval_op;
use crate::ir::{FloatTensor, Op};
use crate::node::resolve_pool;
use crate::shape_ops::{broadcast_shapes, checked_elements, same_pads};

impl Op {
    /// The output shape for inputs of shapes `ins`, or why they do not fit the op.
    pub fn output_shape(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let get = |k: usize| ins.get(k).copied().ok_or_else(|| format!("missing input {k}"));
        let shape = match self {
            Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Erf
            | Op::Sqrt
            | Op::Reciprocal
            | Op::Exp
            | Op::Log
            | Op::Abs
            | Op::Gelu
            | Op::GeluTanh
            | Op::Identity
            | Op::AddConst(_)
            | Op::MulConst(_)
            | Op::Clip { .. }
            | Op::LeakyRelu(_)
            | Op::Softmax { .. }
            | Op::LayerNorm { .. }
            | Op::Affine => get(0)?.to_vec(),
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Max | Op::Min => {
                broadcast_shapes(get(0)?, get(1)?).map_err(|e| e.to_string())?
            }
            Op::MatMul => {
                let (a, b) = (get(0)?, get(1)?);
                let (ra, rb) = (a.len(), b.len());
                if ra < 2 || rb < 2 || a[ra - 1] != b[rb - 2] {
                    return Err(format!("MatMul shapes {a:?} and {b:?} do not conform"));
                }
                let lead = broadcast_shapes(&a[..ra - 2], &b[..rb - 2]).map_err(|e| e.to_string())?;
                [lead, vec![a[ra - 2], b[rb - 1]]].concat()
            }
            Op::Gemm { trans_a, trans_b, .. } => {
                let (a, b) = (get(0)?, get(1)?);
                let ([m0, k0], [k1, n1]) = (
                    <[usize; 2]>::try_from(a).map_err(|_| "Gemm needs 2-D operands")?,
                    <[usize; 2]>::try_from(b).map_err(|_| "Gemm needs 2-D operands")?,
                );
                let (m, ka) = if *trans_a { (k0, m0) } else { (m0, k0) };
                let (kb, n) = if *trans_b { (n1, k1) } else { (k1, n1) };
                if ka != kb {
                    return Err(format!("Gemm shapes {a:?} and {b:?} do not conform"));
                }
                if let Some(c) = ins.get(2) {
                    broadcast_shapes(&[m, n], c).map_err(|e| e.to_string())?;
                }
                vec![m, n]
            }
            Op::Conv { geometry, same } => {
                let (x, w) = (get(0)?, get(1)?);
                let ([n, c, h, wd], [o, cg, kh, kw]) = (
                    <[usize; 4]>::try_from(x).map_err(|_| "conv input must be 4-D")?,
                    <[usize; 4]>::try_from(w).map_err(|_| "conv weights must be 4-D")?,
                );
                let mut g = *geometry;
                if let Some(upper) = same {
                    g.pads = same_pads([h, wd], [kh, kw], g.stride, g.dilation, *upper);
                }
                if g.groups == 0 || c != cg * g.groups || o % g.groups != 0 {
                    return Err("conv channels do not fit the groups".into());
                }
                let (ekh, ekw) = ((kh.max(1) - 1) * g.dilation[0] + 1, (kw.max(1) - 1) * g.dilation[1] + 1);
                if h + g.pads[0] + g.pads[2] < ekh || wd + g.pads[1] + g.pads[3] < ekw {
                    return Err("conv kernel larger than the input".into());
                }
                vec![
                    n,
                    o,
                    (h + g.pads[0] + g.pads[2] - ekh) / g.stride[0] + 1,
                    (wd + g.pads[1] + g.pads[3] - ekw) / g.stride[1] + 1,
                ]
            }
            Op::MaxPool { pool, same } | Op::AveragePool { pool, same, .. } => {
                let x = get(0)?;
                let [n, c, h, w] = <[usize; 4]>::try_from(x).map_err(|_| "pooling input must be 4-D")?;
                let p = resolve_pool(pool, *same, x);
                let [oh, ow] = p.output_hw(h, w).ok_or("pooling window larger than the input")?;
                vec![n, c, oh, ow]
            }
            Op::Lookup { offset, indices_shape, depth } => {
                let (hot, table) = (get(0)?, get(1)?);
                let n: usize = indices_shape.iter().product();
                match table {
                    [d, k] if d == depth && hot.iter().product::<usize>() >= offset + n * depth => {
                        [indices_shape.clone(), vec![*k]].concat()
                    }
                    _ => return Err(format!("a lookup of depth {depth} in a table of shape {table:?}")),
                }
            }
            Op::GlobalAveragePool => {
                let [n, c, _, _] = <[usize; 4]>::try_from(get(0)?).map_err(|_| "needs [N, C, H, W]")?;
                vec![n, c, 1, 1]
            }
            _ => {
                // Moves and reductions: their f64 definition on zeros (linear in the size).
                let zeros = ins
                    .iter()
                    .map(|s| {
                        let n = checked_elements(s).map_err(|e| e.to_string())?;
                        Ok(FloatTensor { shape: s.to_vec(), data: vec![0.0; n] })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                let refs: Vec<&FloatTensor> = zeros.iter().collect();
                eval_op(self, &refs)?.shape
            }
        };
        checked_elements(&shape).map_err(|e| e.to_string())?;
        Ok(shape)
    }
}
