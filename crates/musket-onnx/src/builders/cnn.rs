//! The convolutional ops' attributes (spatial parameters, pads, pooling geometry with
//! ceil_mode), Conv, and BatchNormalization folded into the convolution before it.

use super::{attr_f, attr_i, attr_ints, attr_s, Builder, Ref};
use crate::ImportError;
use musket_graph::{FloatTensor, Op};
use musket_nn::{Conv2d, Pool2d};
use onnx_protobuf::NodeProto;

impl Builder {
    /// A 2-D spatial attribute; with `one_d`, a 1-D one as its 2-D form of height 1.
    pub(super) fn spatial(
        &self,
        n: &NodeProto,
        name: &str,
        default: [usize; 2],
        one_d: bool,
    ) -> Result<[usize; 2], ImportError> {
        match attr_ints(n, name) {
            None => Ok(default),
            Some(v) if v.len() == 2 && !one_d && v.iter().all(|&x| x > 0) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) if v.len() == 1 && one_d && v[0] > 0 => Ok([1, v[0] as usize]),
            Some(v) => Err(self.unsupported(n, &format!("{name} = {v:?} (1-D to 3-D only)"))),
        }
    }

    /// The spatial rank of a conv or pool node (1, 2 or 3), from its weight's rank or its
    /// kernel_shape; anything else is refused.
    pub(super) fn spatial_rank(&self, n: &NodeProto) -> Result<usize, ImportError> {
        let rank = if n.op_type == "Conv" {
            self.static_shape(&self.get(n, 1)?)?.map(|s| s.len().saturating_sub(2))
        } else {
            attr_ints(n, "kernel_shape").map(|k| k.len())
        };
        match rank {
            None => Ok(2),
            Some(r @ 1..=3) => Ok(r),
            Some(r) => {
                let what = if n.op_type == "Conv" { "convolution" } else { "pooling" };
                Err(self.unsupported(n, &format!("{r}-D {what} (1-D to 3-D only)")))
            }
        }
    }

    /// Runs a 1-D conv or pool as 2-D: the input `[N, C, L]` becomes `[N, C, 1, L]` (and a
    /// convolution's weight `[M, C/g, K]` becomes `[M, C/g, 1, K]`), and the 2-D op's output
    /// `[N, M, 1, L']` becomes `[N, M, L']`.
    pub(super) fn emit_one_d(&mut self, n: &NodeProto, op: Op, mut ins: Vec<Ref>) -> Result<(), ImportError> {
        let as_2d = Op::Reshape(vec![0, 0, 1, -1]);
        ins[0] = self.sub_node(n, "as_2d", as_2d.clone(), vec![ins[0].clone()])?;
        if ins.len() > 1 {
            ins[1] = match &ins[1] {
                Ref::Weight(wi) => {
                    let (name, w) = self.weights[*wi].clone();
                    let [m, c, k] = <[usize; 3]>::try_from(w.shape.as_slice())
                        .map_err(|_| self.invalid(n, "a 1-D convolution's weight must have rank 3"))?;
                    self.add_weight(
                        format!("{name}.as_2d"),
                        FloatTensor { shape: vec![m, c, 1, k], data: w.data },
                    )
                }
                other => self.sub_node(n, "weight_as_2d", as_2d, vec![other.clone()])?,
            };
        }
        let out = self.sub_node(n, "2d", op, ins)?;
        self.emit(n, Op::Reshape(vec![0, 0, -1]), vec![out])
    }

    /// Explicit pads, and the auto_pad SAME variant if any (`Some(true)`: SAME_UPPER); 1-D
    /// pads `[begin, end]` become `[0, begin, 0, end]`.
    pub(super) fn pads(&self, n: &NodeProto, one_d: bool) -> Result<([usize; 4], Option<bool>), ImportError> {
        let same = match attr_s(n, "auto_pad").as_deref() {
            None | Some("NOTSET") | Some("") => None,
            Some("VALID") => return Ok(([0; 4], None)),
            Some("SAME_UPPER") => Some(true),
            Some("SAME_LOWER") => Some(false),
            Some(other) => return Err(self.unsupported(n, &format!("auto_pad = {other}"))),
        };
        let pads = match attr_ints(n, "pads") {
            None => [0; 4],
            Some(v) if v.len() == 4 && !one_d && v.iter().all(|&x| x >= 0) => {
                [v[0] as usize, v[1] as usize, v[2] as usize, v[3] as usize]
            }
            Some(v) if v.len() == 2 && one_d && v.iter().all(|&x| x >= 0) => {
                [0, v[0] as usize, 0, v[1] as usize]
            }
            Some(v) => return Err(self.unsupported(n, &format!("pads = {v:?} (1-D to 3-D only)"))),
        };
        Ok((pads, same))
    }

    pub(super) fn pool(&self, n: &NodeProto, one_d: bool) -> Result<(Pool2d, Option<bool>), ImportError> {
        let kernel = self.spatial(n, "kernel_shape", [0, 0], one_d)?;
        if kernel == [0, 0] {
            return Err(self.invalid(n, "missing kernel_shape"));
        }
        let (pads, same) = self.pads(n, one_d)?;
        let stride = self.spatial(n, "strides", [1, 1], one_d)?;
        let dilation = self.spatial(n, "dilations", [1, 1], one_d)?;
        Ok((Pool2d { kernel, stride, pads, dilation }, same))
    }

    /// ceil_mode = 1: windows that start inside the input (or its begin padding) but run past
    /// the end are kept, as extra end padding that no average counts and no maximum picks.
    pub(super) fn ceil_mode_pads(
        &self,
        n: &NodeProto,
        mut pool: Pool2d,
        same: Option<bool>,
    ) -> Result<Pool2d, ImportError> {
        let shape = self.static_shape(&self.get(n, 0)?)?;
        // A 1-D input [N, C, L] runs as [N, C, 1, L].
        let spatial = shape.as_deref().and_then(|s| match s {
            [_, _, h, w] => Some([*h, *w]),
            [_, _, w] => Some([1, *w]),
            _ => None,
        });
        let Some([h, w]) = spatial else {
            return Err(self
                .unsupported(n, "ceil_mode = 1 on a value whose shape is only known for a concrete input"));
        };
        if same.is_some() {
            return Err(self.unsupported(n, "ceil_mode = 1 with auto_pad"));
        }
        for (d, size) in [h, w].into_iter().enumerate() {
            let (k, s, pb, pe) = (pool.span()[d], pool.stride[d], pool.pads[d], pool.pads[d + 2]);
            let span = size + pb + pe;
            if span < k {
                return Ok(pool);
            }
            let mut out = (span - k).div_ceil(s) + 1;
            if (out - 1) * s >= size + pb {
                out -= 1;
            }
            let extra = ((out - 1) * s + k).saturating_sub(span);
            if extra > 0 {
                let counts_pads = n.op_type == "AveragePool" && attr_i(n, "count_include_pad", 0) != 0;
                if counts_pads || pe + extra >= k {
                    return Err(self.unsupported(
                        n,
                        "ceil_mode = 1 with count_include_pad = 1 or a window of padding only",
                    ));
                }
                pool.pads[d + 2] += extra;
            }
        }
        Ok(pool)
    }

    pub(super) fn conv(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let rank = self.spatial_rank(n)?;
        if rank == 3 {
            return self.conv3d(n);
        }
        let one_d = rank == 1;
        let (pads, same) = self.pads(n, one_d)?;
        let geometry = Conv2d {
            stride: self.spatial(n, "strides", [1, 1], one_d)?,
            pads,
            dilation: self.spatial(n, "dilations", [1, 1], one_d)?,
            groups: usize::try_from(attr_i(n, "group", 1))
                .ok()
                .filter(|&g| g > 0)
                .ok_or_else(|| self.invalid(n, "bad group"))?,
        };
        let mut ins = vec![self.secret(n, 0)?, self.secret(n, 1)?];
        if self.optional(n, 2)?.is_some() {
            ins.push(self.secret(n, 2)?);
        }
        if one_d {
            return self.emit_one_d(n, Op::Conv { geometry, same }, ins);
        }
        self.emit(n, Op::Conv { geometry, same }, ins)
    }

    /// Inference batch norm: `y = x a + b` with `a = scale / sqrt(var + eps)` and
    /// `b = bias - mean a`, folded into the preceding Conv's weights when the Conv's output
    /// feeds only this node, else a per-channel affine layer.
    pub(super) fn batch_norm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        if attr_i(n, "training_mode", 0) != 0 {
            // Training mode normalises by the batch's own statistics and updates the running
            // ones: not the inference computation below.
            return Err(self.unsupported(n, "training_mode = 1"));
        }
        let eps = attr_f(n, "epsilon", 1e-5);
        let [scale, bias, mean, var] = [1, 2, 3, 4].map(|k| self.constant(n, k));
        let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
        let c = scale.data.len();
        if [&bias, &mean, &var].iter().any(|t| t.data.len() != c) {
            return Err(self.invalid(n, "parameters of different lengths"));
        }
        let a: Vec<f64> = (0..c).map(|i| scale.data[i] / (var.data[i] + eps).sqrt()).collect();
        let b: Vec<f64> = (0..c).map(|i| bias.data[i] - mean.data[i] * a[i]).collect();
        let x = self.get(n, 0)?;
        let x_name = &n.input[0];
        if let Ref::Node(k) = x {
            let single_use = self.uses.get(x_name).copied() == Some(1);
            if let (true, Op::Conv { .. }) = (single_use, &self.nodes[k].0.op) {
                let inputs = self.nodes[k].1.clone();
                let bias_ok = match inputs.get(2) {
                    None => true,
                    Some(Ref::Weight(bi)) => self.weights[*bi].1.data.len() == c,
                    Some(_) => false,
                };
                if let (Ref::Weight(wi), bias_ref, true) = (&inputs[1], inputs.get(2), bias_ok) {
                    let w = self.weights[*wi].1.clone();
                    if c > 0 && w.shape.first() == Some(&c) && w.data.len().is_multiple_of(c) {
                        let per = w.data.len() / c;
                        let mut wf = w.clone();
                        for o in 0..c {
                            for v in &mut wf.data[o * per..(o + 1) * per] {
                                *v *= a[o];
                            }
                        }
                        let old_b = match bias_ref {
                            Some(Ref::Weight(bi)) => self.weights[*bi].1.data.clone(),
                            _ => vec![0.0; c],
                        };
                        let bf: Vec<f64> = (0..c).map(|o| old_b[o] * a[o] + b[o]).collect();
                        let wr = self.add_weight(format!("{}+{}", self.weights[*wi].0, n.name), wf);
                        let br = self
                            .add_weight(format!("{}.bias", n.name), FloatTensor { shape: vec![c], data: bf });
                        self.nodes[k].1 = vec![inputs[0].clone(), wr, br];
                        self.nodes[k].0.name = format!("{}+{}", self.nodes[k].0.name, n.name);
                        return self.alias(n, Ref::Node(k));
                    }
                }
            }
        }
        let x = self.secret(n, 0)?;
        let ar = self.add_weight(format!("{}.scale", n.name), FloatTensor { shape: vec![c], data: a });
        let br = self.add_weight(format!("{}.shift", n.name), FloatTensor { shape: vec![c], data: b });
        self.emit(n, Op::Affine, vec![x, ar, br])
    }
}
