//! 3-D convolution and pooling (volumes: CT and MRI scans, video), lowered to the 2-D ops.
//!
//! The depth windows are gathered by a public [`Op::Take`] into the batch or channel axis:
//! - convolution: `X'[n D' + d, c kd + z] = x[n, c, d sd + z dd - pd]` (zero outside the
//!   volume), a 2-D convolution of `X'` with the weight read as `[M, (C/g) kd, kh, kw]` (its
//!   natural layout, so the groups stay contiguous), then `[N, D', M, H', W']` transposed;
//! - pooling: `X'[z, n D' + d, c] = x[n, c, d sd + z dd - pd]`, the 2-D pooling of every depth
//!   slice of a window, then the maximum or mean over `z` (the 2-D windows are the same in
//!   every slice, so the mean of 2-D averages is the 3-D average). A depth tap outside the
//!   volume (padding, or ceil_mode's overhang) is, for max-pooling, another tap of the same
//!   window (the maximum is unchanged) and, for average pooling, a zero; without
//!   count_include_pad the sum over `z` is then divided by the window's real depth taps (a
//!   public diagonal matrix along the depth, one truncation).
//!
//! The gather is exact and costs nothing; the 2-D op works on `kd` times the input, as an
//! im2col along depth would.

use super::{attr_i, attr_ints, attr_s, Builder, Ref};
use crate::ImportError;
use musket_graph::{FloatTensor, Op};
use musket_nn::{Conv2d, Pool2d};
use onnx_protobuf::NodeProto;

/// Largest number of gathered elements (the depth windows of the input).
const MAX_GATHER: usize = 1 << 28;
/// Largest kernel, stride, dilation or pad accepted (the 2-D ops' own limit).
const MAX_GEOMETRY: usize = 1 << 12;

/// The product of sizes, or `None` on overflow.
fn checked_product(sizes: &[usize]) -> Option<usize> {
    sizes.iter().try_fold(1usize, |a, &x| a.checked_mul(x))
}

/// Output length along one axis, or `None` when the window does not fit.
/// The arithmetic is checked: an overflow is a window that does not fit.
fn out_len(size: usize, pad: usize, kernel: usize, stride: usize, dilation: usize) -> Option<usize> {
    let span = dilation.checked_mul(kernel.checked_sub(1)?)?.checked_add(1)?;
    size.checked_add(pad)?.checked_sub(span).map(|room| room / stride + 1)
}

impl Builder {
    /// A 3-attribute (or 6 for pads) integer list with a default.
    fn triple(
        &self,
        n: &NodeProto,
        name: &str,
        len: usize,
        default: usize,
    ) -> Result<Vec<usize>, ImportError> {
        match attr_ints(n, name) {
            None => Ok(vec![default; len]),
            Some(v) if v.len() == len && v.iter().all(|&x| (0..=MAX_GEOMETRY as i64).contains(&x)) => {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            Some(v) => Err(self.unsupported(n, &format!("{name} = {v:?} (each 0 to {MAX_GEOMETRY})"))),
        }
    }

    fn shape5(&self, n: &NodeProto, k: usize, what: &str) -> Result<[usize; 5], ImportError> {
        let shape = self.static_shape(&self.get(n, k)?)?.ok_or_else(|| {
            self.unsupported(n, "3-D on a value whose shape is only known for a concrete input")
        })?;
        <[usize; 5]>::try_from(shape.as_slice())
            .map_err(|_| self.invalid(n, format!("the {what} must have rank 5")))
    }

    fn no_auto_pad(&self, n: &NodeProto) -> Result<(), ImportError> {
        match attr_s(n, "auto_pad").as_deref() {
            None | Some("NOTSET") | Some("") | Some("VALID") => Ok(()),
            Some(other) => Err(self.unsupported(n, &format!("auto_pad = {other} in 3-D"))),
        }
    }

    /// Pads as `[d0, h0, w0, d1, h1, w1]` (VALID: none).
    fn pads6(&self, n: &NodeProto) -> Result<Vec<usize>, ImportError> {
        self.no_auto_pad(n)?;
        if attr_s(n, "auto_pad").as_deref() == Some("VALID") {
            return Ok(vec![0; 6]);
        }
        self.triple(n, "pads", 6, 0)
    }

    /// A zero to gather from where a window leaves the volume.
    fn zero_source(&mut self, n: &NodeProto) -> Ref {
        self.add_weight(format!("{}.zero", n.name), FloatTensor { shape: vec![1], data: vec![0.0] })
    }

    pub(super) fn conv3d(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let [nb, c, d, h, w] = self.shape5(n, 0, "input")?;
        let [m, cg, kd, kh, kw] = self.shape5(n, 1, "weight")?;
        let groups =
            usize::try_from(attr_i(n, "group", 1)).ok().filter(|&g| g > 0 && c % g == 0 && c / g == cg);
        let groups = groups.ok_or_else(|| self.invalid(n, "the group count does not fit the channels"))?;
        let stride = self.triple(n, "strides", 3, 1)?;
        let dilation = self.triple(n, "dilations", 3, 1)?;
        let pads = self.pads6(n)?;
        if stride.contains(&0) || dilation.contains(&0) || [kd, kh, kw].contains(&0) {
            return Err(self.invalid(n, "zero stride, dilation or kernel"));
        }
        if [kd, kh, kw].iter().any(|&k| k > MAX_GEOMETRY) {
            return Err(self.unsupported(n, &format!("a kernel larger than {MAX_GEOMETRY}")));
        }
        let dims = [d, h, w];
        let outs: Vec<Option<usize>> = (0..3)
            .map(|a| out_len(dims[a], pads[a] + pads[a + 3], [kd, kh, kw][a], stride[a], dilation[a]))
            .collect();
        let [Some(od), Some(oh), Some(ow)] = [outs[0], outs[1], outs[2]] else {
            return Err(self.invalid(n, "the kernel is larger than the padded input"));
        };
        // Not empty, so every partial product below is at most `count`.
        let too_large = || self.unsupported(n, "an empty 3-D input, or one this large");
        let plane = checked_product(&[h, w]).ok_or_else(too_large)?;
        let count = checked_product(&[nb, od, c, kd, plane])
            .filter(|&t| (1..=MAX_GATHER).contains(&t))
            .ok_or_else(too_large)?;
        let zero = checked_product(&[nb, c, d, plane]).ok_or_else(too_large)?;
        let mut indices = Vec::with_capacity(count);
        for i in 0..nb {
            for o in 0..od {
                for ch in 0..c {
                    for z in 0..kd {
                        let depth = (o * stride[0] + z * dilation[0]).checked_sub(pads[0]).filter(|&v| v < d);
                        match depth {
                            Some(v) => indices.extend((0..plane).map(|p| ((i * c + ch) * d + v) * plane + p)),
                            None => indices.extend(std::iter::repeat_n(zero, plane)),
                        }
                    }
                }
            }
        }
        let x = self.secret(n, 0)?;
        let zero = self.zero_source(n);
        let windows = Op::Take { indices, shape: vec![nb * od, c * kd, h, w] };
        let x2 = self.sub_node(n, "depth_windows", windows, vec![x, zero])?;
        let w2 = match self.secret(n, 1)? {
            Ref::Weight(wi) => {
                let (name, t) = self.weights[wi].clone();
                self.add_weight(
                    format!("{name}.as_2d"),
                    FloatTensor { shape: vec![m, cg * kd, kh, kw], data: t.data },
                )
            }
            other => self.sub_node(
                n,
                "weight_as_2d",
                Op::Reshape(vec![m as i64, -1, kh as i64, kw as i64]),
                vec![other],
            )?,
        };
        let mut ins = vec![x2, w2];
        if self.optional(n, 2)?.is_some() {
            ins.push(self.secret(n, 2)?);
        }
        let geometry = Conv2d {
            stride: [stride[1], stride[2]],
            pads: [pads[1], pads[2], pads[4], pads[5]],
            dilation: [dilation[1], dilation[2]],
            groups,
        };
        let y = self.sub_node(n, "2d", Op::Conv { geometry, same: None }, ins)?;
        let split = Op::Reshape(vec![nb as i64, od as i64, m as i64, oh as i64, ow as i64]);
        let y = self.sub_node(n, "split_depth", split, vec![y])?;
        self.emit(n, Op::Transpose(vec![0, 2, 1, 3, 4]), vec![y])
    }

    pub(super) fn pool3d(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let [nb, c, d, h, w] = self.shape5(n, 0, "input")?;
        let kernel = self.triple(n, "kernel_shape", 3, 0)?;
        let stride = self.triple(n, "strides", 3, 1)?;
        let pads = self.pads6(n)?;
        let dilation = self.triple(n, "dilations", 3, 1)?;
        let ceil = attr_i(n, "ceil_mode", 0) != 0;
        let is_max = n.op_type == "MaxPool";
        let count_include_pad = attr_i(n, "count_include_pad", 0) != 0;
        if n.output.get(1).is_some_and(|s| !s.is_empty()) {
            return Err(self.unsupported(n, "the indices output"));
        }
        if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
            return Err(self.invalid(n, "zero kernel, stride or dilation"));
        }
        // Per axis: the output length and the extra end padding ceil_mode adds (its windows
        // must start inside the input or the begin padding, as ONNX's rule).
        let geometry = |a: usize, size: usize| -> Result<(usize, usize), ImportError> {
            let (pb, pe) = (pads[a], pads[a + 3]);
            let span = (kernel[a] - 1) * dilation[a] + 1;
            let padded = size + pb + pe;
            let room = padded
                .checked_sub(span)
                .ok_or_else(|| self.invalid(n, "the kernel is larger than the padded input"))?;
            let mut out = if ceil { room.div_ceil(stride[a]) + 1 } else { room / stride[a] + 1 };
            if ceil && (out - 1) * stride[a] >= size + pb {
                out -= 1;
            }
            let extra = ((out - 1) * stride[a] + span).saturating_sub(padded);
            if extra > 0 && ((count_include_pad && !is_max) || pe + extra >= span) {
                return Err(self
                    .unsupported(n, "ceil_mode = 1 with count_include_pad = 1 or a window of padding only"));
            }
            Ok((out, extra))
        };
        let ((od, _), (_, extra_h), (_, extra_w)) = (geometry(0, d)?, geometry(1, h)?, geometry(2, w)?);
        // Depth taps: `o sd + z dd - pd`; outside the volume (padding, or ceil_mode's overhang) a
        // max-pool takes a tap of the same window again (the maximum is unchanged) and an
        // average-pool a zero, the mean then divided by the window's real depth taps.
        let tap =
            |o: usize, z: usize| (o * stride[0] + z * dilation[0]).checked_sub(pads[0]).filter(|&v| v < d);
        let mut real = vec![0usize; od];
        for (o, r) in real.iter_mut().enumerate() {
            *r = (0..kernel[0]).filter(|&z| tap(o, z).is_some()).count();
            if *r == 0 {
                return Err(self.unsupported(n, "a window of padding only"));
            }
        }
        // Not empty, so every partial product below is at most `count`.
        let too_large = || self.unsupported(n, "an empty 3-D input, or one this large");
        let plane = checked_product(&[h, w]).ok_or_else(too_large)?;
        let count = checked_product(&[kernel[0], nb, od, c, plane])
            .filter(|&t| (1..=MAX_GATHER).contains(&t))
            .ok_or_else(too_large)?;
        let zero_at = checked_product(&[nb, c, d, plane]).ok_or_else(too_large)?; // the zero source
        let mut indices = Vec::with_capacity(count);
        for z in 0..kernel[0] {
            for i in 0..nb {
                for o in 0..od {
                    // Outside the volume: a real tap of the same window (max) or the zero (mean).
                    let source =
                        tap(o, z)
                            .or_else(|| if is_max { (0..kernel[0]).find_map(|z| tap(o, z)) } else { None });
                    for ch in 0..c {
                        match source {
                            Some(v) => indices.extend((0..plane).map(|p| ((i * c + ch) * d + v) * plane + p)),
                            None => indices.extend(std::iter::repeat_n(zero_at, plane)),
                        }
                    }
                }
            }
        }
        let padded_depth = real.iter().any(|&r| r < kernel[0]);
        let mut ins = vec![self.secret(n, 0)?];
        if padded_depth && !is_max {
            ins.push(self.zero_source(n));
        }
        let windows = Op::Take { indices, shape: vec![kernel[0] * nb * od, c, h, w] };
        let x2 = self.sub_node(n, "depth_windows", windows, ins)?;
        let pool = Pool2d {
            kernel: [kernel[1], kernel[2]],
            stride: [stride[1], stride[2]],
            pads: [pads[1], pads[2], pads[4] + extra_h, pads[5] + extra_w],
            dilation: [dilation[1], dilation[2]],
        };
        let [oh, ow] = pool
            .output_hw(h, w)
            .ok_or_else(|| self.invalid(n, "the kernel is larger than the padded input"))?;
        let divide_by_real = padded_depth && !is_max && !count_include_pad;
        let (op2, reduce) = if is_max {
            (Op::MaxPool { pool, same: None }, Op::ReduceMax { axes: vec![0], keepdims: false, min: false })
        } else if divide_by_real {
            (
                Op::AveragePool { pool, same: None, count_include_pad },
                Op::ReduceSum { axes: vec![0], keepdims: false },
            )
        } else {
            (
                Op::AveragePool { pool, same: None, count_include_pad },
                Op::ReduceMean { axes: vec![0], keepdims: false },
            )
        };
        let y = self.sub_node(n, "2d", op2, vec![x2])?;
        let by_slice = Op::Reshape(vec![kernel[0] as i64, (nb * od) as i64, c as i64, oh as i64, ow as i64]);
        let y = self.sub_node(n, "by_slice", by_slice, vec![y])?;
        let y = self.sub_node(n, "over_depth", reduce, vec![y])?;
        let split = Op::Reshape(vec![nb as i64, od as i64, c as i64, oh as i64, ow as i64]);
        let mut y = self.sub_node(n, "split_depth", split, vec![y])?;
        if divide_by_real {
            // The sum over the window's real depth taps, divided by their number (public).
            let mut m = vec![0.0; od * od];
            for (o, &r) in real.iter().enumerate() {
                m[o * od + o] = 1.0 / r as f64;
            }
            let matrix = FloatTensor { shape: vec![od, od], data: m };
            y = self.sub_node(n, "by_real_taps", Op::AxisMap { axis: 1, matrix }, vec![y])?;
        }
        self.emit(n, Op::Transpose(vec![0, 2, 1, 3, 4]), vec![y])
    }
}
