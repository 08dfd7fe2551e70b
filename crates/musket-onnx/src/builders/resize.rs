//! Resize (and the older Upsample) and ConvTranspose, as public linear maps along axes
//! ([`Op::AxisMap`]): interpolation is separable, so each resized axis is one matrix of
//! interpolation weights (0/1 for nearest, so exact); a transposed convolution is a zero
//! insertion and padding (one 0/1 matrix per spatial axis), then an ordinary convolution with
//! the kernel flipped and its channel axes swapped (done on the plaintext weights at import),
//! then a crop.

use super::{attr, attr_f, attr_i, attr_ints, attr_s, Builder, Ref};
use crate::ImportError;
use musket_graph::{broadcast_zip, FloatTensor, Op};
use musket_nn::Conv2d;
use onnx_protobuf::NodeProto;

/// The interpolation weights of one output coordinate, for `ratio` in (0, 1].
fn coefficients(mode: &str, nearest: &str, a: f64, ratio: f64) -> Result<Vec<f64>, String> {
    Ok(match mode {
        "nearest" => {
            let (lo, hi) = match nearest {
                _ if ratio == 1.0 => (false, true),
                "round_prefer_floor" => (ratio <= 0.5, ratio > 0.5),
                "round_prefer_ceil" => (ratio < 0.5, ratio >= 0.5),
                "floor" => (true, false),
                "ceil" => (false, true),
                other => return Err(format!("nearest_mode {other:?}")),
            };
            vec![f64::from(u8::from(lo)), f64::from(u8::from(hi))]
        }
        "linear" => vec![1.0 - ratio, ratio],
        "cubic" => {
            let (r, s) = (ratio, 1.0 - ratio);
            vec![
                ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
                ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
                ((a * (s + 1.0) - 5.0 * a) * (s + 1.0) + 8.0 * a) * (s + 1.0) - 4.0 * a,
            ]
        }
        other => return Err(format!("mode {other:?}")),
    })
}

/// How one axis is resized.
struct AxisResize<'a> {
    mode: &'a str,
    nearest: &'a str,
    transform: &'a str,
    cubic_a: f64,
    exclude_outside: bool,
    roi: Option<(f64, f64)>,
}

impl AxisResize<'_> {
    /// The `[output, input]` weights and, per output, whether it is extrapolated.
    fn matrix(&self, input: usize, output: usize, scale: f64) -> Result<(Vec<f64>, Vec<bool>), String> {
        let (inw, outw) = (input as f64, scale * input as f64);
        let mut m = vec![0.0; output * input];
        let mut outside = vec![false; output];
        for i in 0..output {
            let y = i as f64;
            let x = match self.transform {
                "align_corners" if outw == 1.0 => 0.0,
                "align_corners" => y * (inw - 1.0) / (outw - 1.0),
                "asymmetric" => y / scale,
                "tf_crop_and_resize" => {
                    let (r0, r1) = self.roi.ok_or("tf_crop_and_resize without a roi")?;
                    let x = if outw == 1.0 {
                        (r1 - r0) * (inw - 1.0) / 2.0
                    } else {
                        y * (r1 - r0) * (inw - 1.0) / (outw - 1.0)
                    } + r0 * (inw - 1.0);
                    outside[i] = x < 0.0 || x > inw - 1.0;
                    x
                }
                "pytorch_half_pixel" if outw == 1.0 => -0.5,
                "pytorch_half_pixel" | "half_pixel" => (y + 0.5) / scale - 0.5,
                "half_pixel_symmetric" => {
                    let adjustment = output as f64 / outw;
                    inw / 2.0 * (1.0 - adjustment) + (y + 0.5) / scale - 0.5
                }
                other => return Err(format!("coordinate_transformation_mode {other:?}")),
            };
            let floor = x.floor();
            let ratio = if x == floor { 1.0 } else { x - floor };
            let mut c = coefficients(self.mode, self.nearest, self.cubic_a, ratio)?;
            let k = c.len() as i64;
            // The k nearest integers to x, ties to the smaller: start at floor(x) - k/2 + 1,
            // one lower when x is an integer (then the ratio is 1).
            let start = floor as i64 - k / 2 + if x == floor { 0 } else { 1 };
            let idx: Vec<i64> = (0..k).map(|j| start + j).collect();
            if self.exclude_outside {
                for (cj, &j) in c.iter_mut().zip(&idx) {
                    if j < 0 || j >= input as i64 {
                        *cj = 0.0;
                    }
                }
                let sum: f64 = c.iter().sum();
                if sum != 0.0 {
                    c.iter_mut().for_each(|v| *v /= sum);
                }
            }
            for (cj, &j) in c.iter().zip(&idx) {
                let j = j.clamp(0, input as i64 - 1) as usize;
                m[i * input + j] += cj;
            }
        }
        Ok((m, outside))
    }
}

impl Builder {
    /// Resize (opset 10 and later) and Upsample.
    pub(super) fn resize(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.get(n, 0)?;
        let shape = self.static_shape(&x)?.ok_or_else(|| {
            self.unsupported(n, "on a value whose shape is only known for a concrete input")
        })?;
        let rank = shape.len();
        let old = n.op_type == "Upsample" || self.opset < 11;
        let mode = attr_s(n, "mode").unwrap_or_else(|| "nearest".into());
        let transform = if old {
            "asymmetric".to_string()
        } else {
            attr_s(n, "coordinate_transformation_mode").unwrap_or_else(|| "half_pixel".into())
        };
        let nearest = attr_s(n, "nearest_mode").unwrap_or_else(|| "round_prefer_floor".into());
        let axes: Vec<usize> = match attr_ints(n, "axes") {
            Some(a) => a
                .iter()
                .map(|&v| usize::try_from(if v < 0 { v + rank as i64 } else { v }).ok().filter(|&v| v < rank))
                .collect::<Option<_>>()
                .ok_or_else(|| self.invalid(n, "bad axes"))?,
            None => (0..rank).collect(),
        };
        let constant_input = |b: &Self, k: usize| -> Result<Option<Vec<f64>>, ImportError> {
            match b.optional(n, k)? {
                Some(_) => Ok(Some(b.constant(n, k)?.data).filter(|d| !d.is_empty())),
                None => Ok(None),
            }
        };
        let (roi, scales, sizes) = if n.op_type == "Upsample" && attr(n, "scales").is_some() {
            (
                None,
                Some(
                    attr(n, "scales")
                        .map(|a| a.floats.iter().map(|&v| v as f64).collect())
                        .unwrap_or_default(),
                ),
                None,
            )
        } else if old {
            (None, constant_input(self, 1)?, None)
        } else {
            (constant_input(self, 1)?, constant_input(self, 2)?, constant_input(self, 3)?)
        };
        let mut scale = vec![1.0; rank];
        let mut out = shape.clone();
        match (scales, sizes) {
            (Some(s), None) if s.len() == axes.len() => {
                for (&a, &v) in axes.iter().zip(&s) {
                    if v.is_nan() || v <= 0.0 {
                        return Err(self.invalid(n, format!("scale {v}")));
                    }
                    scale[a] = v;
                    out[a] = (v * shape[a] as f64).floor() as usize;
                }
            }
            (None, Some(s)) if s.len() == axes.len() => {
                for (&a, &v) in axes.iter().zip(&s) {
                    out[a] = v.max(0.0) as usize;
                    scale[a] = v / shape[a] as f64;
                }
                let policy = attr_s(n, "keep_aspect_ratio_policy").unwrap_or_else(|| "stretch".into());
                if policy != "stretch" {
                    let pick = axes.iter().map(|&a| scale[a]);
                    let s = if policy == "not_larger" {
                        pick.fold(f64::INFINITY, f64::min)
                    } else {
                        pick.fold(0.0, f64::max)
                    };
                    for &a in &axes {
                        scale[a] = s;
                        out[a] = (s * shape[a] as f64 + 0.5) as usize;
                    }
                }
            }
            _ => return Err(self.invalid(n, "needs either scales or sizes, one per resized axis")),
        }
        if out.contains(&0) {
            return Err(self.unsupported(n, "an empty output"));
        }
        if attr_i(n, "antialias", 0) != 0 && mode != "nearest" && scale.iter().any(|&s| s < 1.0) {
            return Err(self.unsupported(n, "antialiased downsampling"));
        }
        let spec = |roi_axis: Option<(f64, f64)>| AxisResize {
            mode: &mode,
            nearest: &nearest,
            transform: &transform,
            cubic_a: attr_f(n, "cubic_coeff_a", -0.75),
            exclude_outside: attr_i(n, "exclude_outside", 0) != 0,
            roi: roi_axis,
        };
        let mut cur = self.secret(n, 0)?;
        let mut keep: Option<FloatTensor> = None;
        let mut changed = false;
        for &a in &axes {
            let roi_axis = roi.as_ref().and_then(|r| {
                let k = axes.iter().position(|&b| b == a)?;
                (r.len() == 2 * axes.len())
                    .then(|| (r[k], r[axes.len() + k]))
                    .or_else(|| (r.len() == 2 * rank).then(|| (r[a], r[rank + a])))
            });
            let unit_roi = roi_axis.is_none_or(|(r0, r1)| r0 == 0.0 && r1 == 1.0);
            if (scale[a] - 1.0).abs() < 1e-12
                && out[a] == shape[a]
                && (unit_roi || transform != "tf_crop_and_resize")
            {
                continue;
            }
            let (m, outside) =
                spec(roi_axis).matrix(shape[a], out[a], scale[a]).map_err(|e| self.unsupported(n, &e))?;
            let matrix = FloatTensor { shape: vec![out[a], shape[a]], data: m };
            cur = self.sub_node(n, &format!("axis{a}"), Op::AxisMap { axis: a as i64, matrix }, vec![cur])?;
            changed = true;
            if outside.iter().any(|&o| o) {
                let mut kshape = vec![1; rank];
                kshape[a] = out[a];
                let k = FloatTensor {
                    shape: kshape,
                    data: outside.iter().map(|&o| f64::from(u8::from(!o))).collect(),
                };
                keep = Some(match keep {
                    None => k,
                    // Extrapolated along any axis: the masks multiply.
                    Some(prev) => broadcast_zip(&[&prev, &k], usize::MAX, |v| v[0] * v[1])
                        .map_err(|e| self.invalid(n, e))?,
                });
            }
        }
        match keep {
            Some(keep) => {
                let fill = FloatTensor { shape: vec![], data: vec![attr_f(n, "extrapolation_value", 0.0)] };
                self.emit(n, Op::Select { keep, fill }, vec![cur])
            }
            None if changed => self.alias(n, cur),
            None => self.emit(n, Op::Identity, vec![cur]),
        }
    }

    /// ConvTranspose (1-D or 2-D) with a constant kernel; 1-D runs as 2-D of height 1.
    pub(super) fn conv_transpose(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.get(n, 0)?;
        let shape = self.static_shape(&x)?.ok_or_else(|| {
            self.unsupported(n, "on a value whose shape is only known for a concrete input")
        })?;
        let w = match self.get(n, 1)? {
            Ref::Const(t, _) => t,
            _ => return Err(self.unsupported(n, "a kernel computed from secret values")),
        };
        let one_d = shape.len() == 3 && w.shape.len() == 3;
        let (shape, w) = if one_d {
            let height_one = |s: &[usize]| vec![s[0], s[1], 1, s[2]];
            (height_one(&shape), FloatTensor { shape: height_one(&w.shape), data: w.data })
        } else {
            (shape, w)
        };
        let ([_, c, h, wd], [wc, og, kh, kw]) = (
            <[usize; 4]>::try_from(shape.as_slice())
                .map_err(|_| self.unsupported(n, "other than 1-D and 2-D"))?,
            <[usize; 4]>::try_from(w.shape.as_slice())
                .map_err(|_| self.unsupported(n, "other than 1-D and 2-D"))?,
        );
        let g = usize::try_from(attr_i(n, "group", 1))
            .ok()
            .filter(|&g| g > 0 && c % g == 0 && wc == c)
            .ok_or_else(|| self.invalid(n, "bad group or kernel channels"))?;
        // Per spatial axis (1-D: the height's is the default).
        let two = |name: &str, d: usize| -> Result<[usize; 2], ImportError> {
            match attr_ints(n, name) {
                None => Ok([d, d]),
                Some(v) if v.len() == 2 && !one_d && v.iter().all(|&x| x >= 0) => {
                    Ok([v[0] as usize, v[1] as usize])
                }
                Some(v) if v.len() == 1 && one_d && v[0] >= 0 => Ok([d, v[0] as usize]),
                Some(v) => Err(self.unsupported(n, &format!("{name} = {v:?}"))),
            }
        };
        let (stride, dil, opad) = (two("strides", 1)?, two("dilations", 1)?, two("output_padding", 0)?);
        if stride.contains(&0) || dil.contains(&0) {
            return Err(self.invalid(n, "zero stride or dilation"));
        }
        let (k, inp) = ([kh, kw], [h, wd]);
        let span = |d: usize| (k[d] - 1) * dil[d] + 1;
        // Pads [begin_h, begin_w, end_h, end_w] and the output size.
        let full = |d: usize| stride[d] * (inp[d] - 1) + opad[d] + span(d);
        let mut pads = [0usize; 4];
        let auto = attr_s(n, "auto_pad").unwrap_or_default();
        let out_shape = attr_ints(n, "output_shape");
        // A total padding split between begin and end: SAME_LOWER puts the odd one first.
        let split = |total: usize| {
            if auto == "SAME_LOWER" {
                (total - total / 2, total / 2)
            } else {
                (total / 2, total - total / 2)
            }
        };
        // 1-D: the length (the last entry, whether N and C are given or not) at height 1.
        let out_shape = out_shape.map(|v| {
            if one_d {
                [vec![1], v.last().copied().into_iter().collect()].concat()
            } else {
                v
            }
        });
        if let Some(os) = out_shape.as_ref().filter(|v| v.len() >= 2) {
            let os = &os[os.len() - 2..];
            for d in 0..2 {
                let total = full(d)
                    .checked_sub(os[d].max(0) as usize)
                    .ok_or_else(|| self.invalid(n, "output_shape too large"))?;
                (pads[d], pads[d + 2]) = split(total);
            }
        } else if auto == "SAME_UPPER" || auto == "SAME_LOWER" {
            for d in 0..2 {
                let total = full(d).saturating_sub(inp[d] * stride[d]);
                (pads[d], pads[d + 2]) = split(total);
            }
        } else if auto.is_empty() || auto == "NOTSET" {
            if let Some(p) = attr_ints(n, "pads") {
                if p.len() != if one_d { 2 } else { 4 } || p.iter().any(|&v| v < 0) {
                    return Err(self.unsupported(n, &format!("pads = {p:?}")));
                }
                pads = if one_d {
                    [0, p[0] as usize, 0, p[1] as usize]
                } else {
                    [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
                };
            }
        } else if auto != "VALID" {
            return Err(self.unsupported(n, &format!("auto_pad = {auto}")));
        }
        let out = [0, 1].map(|d| full(d).saturating_sub(pads[d] + pads[d + 2]));
        if out.contains(&0) {
            return Err(self.invalid(n, "the pads remove the whole output"));
        }
        // Zero insertion and full padding along H and W.
        let mut cur = self.secret(n, 0)?;
        if one_d {
            let as_2d = Op::Reshape(shape.iter().map(|&d| d as i64).collect());
            cur = self.sub_node(n, "as_2d", as_2d, vec![cur])?;
        }
        for d in 0..2 {
            let rows = stride[d] * (inp[d] - 1) + 1 + 2 * (span(d) - 1) + opad[d];
            let mut m = vec![0.0; rows * inp[d]];
            for i in 0..inp[d] {
                m[(span(d) - 1 + i * stride[d]) * inp[d] + i] = 1.0;
            }
            let matrix = FloatTensor { shape: vec![rows, inp[d]], data: m };
            cur = self.sub_node(
                n,
                &format!("dilate{d}"),
                Op::AxisMap { axis: 2 + d as i64, matrix },
                vec![cur],
            )?;
        }
        // The kernel for a convolution: [C_out, C_in / g, kh, kw], flipped.
        let cg = c / g;
        let mut kernel = vec![0.0; og * g * cg * kh * kw];
        for gi in 0..g {
            for o in 0..og {
                for ci in 0..cg {
                    for i in 0..kh {
                        for j in 0..kw {
                            let src = (((gi * cg + ci) * og + o) * kh + (kh - 1 - i)) * kw + (kw - 1 - j);
                            kernel[(((gi * og + o) * cg + ci) * kh + i) * kw + j] = w.data[src];
                        }
                    }
                }
            }
        }
        let kname = format!("{}/kernel", n.input[1]);
        let kref = self.add_weight(kname, FloatTensor { shape: vec![og * g, cg, kh, kw], data: kernel });
        let mut ins = vec![cur, kref];
        if self.optional(n, 2)?.is_some() {
            ins.push(self.secret(n, 2)?);
        }
        let geometry = Conv2d { stride: [1, 1], pads: [0; 4], dilation: dil, groups: g };
        let conv = self.sub_node(n, "conv", Op::Conv { geometry, same: None }, ins)?;
        let starts = vec![pads[0] as i64, pads[1] as i64];
        let ends = vec![(pads[0] + out[0]) as i64, (pads[1] + out[1]) as i64];
        let crop = Op::Slice { starts, ends, axes: vec![2, 3], steps: Vec::new() };
        if one_d {
            let y = self.sub_node(n, "crop", crop, vec![conv])?;
            return self.emit(n, Op::Reshape(vec![shape[0] as i64, (og * g) as i64, out[1] as i64]), vec![y]);
        }
        self.emit(n, crop, vec![conv])
    }
}
