//! Pooling, convolution and other linear layers on the oracle and both back ends, against f64
//! reference implementations written here.

mod common;
use common::*;
use musket_core::{reveal_fixed, share_fixed, MpcError, Protocol};
use musket_nn::*;
use musket_session::{Backend, Job};
use rand::{Rng, SeedableRng};

fn rnd(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| FP.decode_one(FP.encode_one(rng.gen_range(lo..hi)).unwrap())).collect()
}

fn close(name: &str, what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name} {what}: length");
    for i in 0..got.len() {
        assert!((got[i] - want[i]).abs() <= tol, "{name} {what}: element {i}: {} vs {}", got[i], want[i]);
    }
}

// ---------- f64 references ----------

fn pool_ref(x: &[f64], [n, c, h, w]: [usize; 4], pl: &Pool2d, f: impl Fn(&[f64], usize) -> f64) -> Vec<f64> {
    // The taps are `dilation` apart (written out here, independently of `Pool2d::span`).
    let [dh, dw] = pl.dilation;
    let (oh, ow) = (
        (h + pl.pads[0] + pl.pads[2] - ((pl.kernel[0] - 1) * dh + 1)) / pl.stride[0] + 1,
        (w + pl.pads[1] + pl.pads[3] - ((pl.kernel[1] - 1) * dw + 1)) / pl.stride[1] + 1,
    );
    let mut out = vec![];
    for b in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let mut vals = vec![];
                for ki in 0..pl.kernel[0] {
                    for kj in 0..pl.kernel[1] {
                        let (y, xx) = (
                            (i * pl.stride[0] + ki * dh) as isize - pl.pads[0] as isize,
                            (j * pl.stride[1] + kj * dw) as isize - pl.pads[1] as isize,
                        );
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                            vals.push(x[(b * h + y as usize) * w + xx as usize]);
                        }
                    }
                }
                out.push(f(&vals, pl.kernel[0] * pl.kernel[1]));
            }
        }
    }
    out
}

fn conv_ref(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    wt: &[f64],
    [o, cg, kh, kw]: [usize; 4],
    bias: &[f64],
    cv: &Conv2d,
) -> Vec<f64> {
    let (ekh, ekw) = ((kh - 1) * cv.dilation[0] + 1, (kw - 1) * cv.dilation[1] + 1);
    let oh = (h + cv.pads[0] + cv.pads[2] - ekh) / cv.stride[0] + 1;
    let ow = (w + cv.pads[1] + cv.pads[3] - ekw) / cv.stride[1] + 1;
    let og = o / cv.groups;
    let mut out = vec![0.0; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bias.get(oc).copied().unwrap_or(0.0);
                    for cl in 0..cg {
                        let ch = (oc / og) * cg + cl;
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let y =
                                    (i * cv.stride[0] + ki * cv.dilation[0]) as isize - cv.pads[0] as isize;
                                let xx =
                                    (j * cv.stride[1] + kj * cv.dilation[1]) as isize - cv.pads[1] as isize;
                                if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                                    acc += x[((b * c + ch) * h + y as usize) * w + xx as usize]
                                        * wt[((oc * cg + cl) * kh + ki) * kw + kj];
                                }
                            }
                        }
                    }
                    out[((b * o + oc) * oh + i) * ow + j] = acc;
                }
            }
        }
    }
    out
}

// ---------- jobs ----------

struct Pools {
    x: Vec<f64>,
    shape: [usize; 4],
    pools: Vec<Pool2d>,
}

impl Job for Pools {
    type Output = Vec<Vec<f64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let x = share_fixed(p, FP, 0, owned(p, 0, &self.x[..]), &self.shape)?;
        let mut outs = vec![];
        for pl in &self.pools {
            let m = max_pool2d(p, &x, pl)?;
            outs.push(reveal_fixed(p, FP, &m)?);
            let a = avg_pool2d(p, FP, &x, pl, false)?;
            outs.push(reveal_fixed(p, FP, &a)?);
            let a = avg_pool2d(p, FP, &x, pl, true)?;
            outs.push(reveal_fixed(p, FP, &a)?);
        }
        let g = global_avg_pool(p, FP, &x)?;
        outs.push(reveal_fixed(p, FP, &g)?);
        Ok(outs)
    }
}

struct BoundedMaxPools {
    x: Vec<f64>,
    shape: [usize; 4],
    pools: Vec<Pool2d>,
}

impl Job for BoundedMaxPools {
    type Output = Vec<Vec<f64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let x = share_fixed(p, FP, 0, owned(p, 0, &self.x[..]), &self.shape)?;
        let mut outs = vec![];
        for pl in &self.pools {
            let m = max_pool2d_bounded(p, FP, &x, pl)?;
            outs.push(reveal_fixed(p, FP, &m)?);
        }
        Ok(outs)
    }
}

/// The graph's max-pool (`65 - f`-bit comparisons) is exact over its whole domain: values at
/// both ends of it (`±(2^(63-f) - 1)` in the ring), windows in the padding, and a channel of
/// the lowest value, which ties with the padding.
#[test]
fn bounded_max_pooling_is_exact_over_its_whole_domain() {
    let shape = [1, 3, 5, 5];
    let end = (max_pool_input_bound(FP.frac_bits()) * FP.one() as f64 - 1.0) / FP.one() as f64;
    let mut x = rnd(3 * 25, -end, end, 7);
    for (i, v) in x[..25].iter_mut().enumerate() {
        if i % 3 == 0 {
            *v = if i % 2 == 0 { end } else { -end };
        }
    }
    for v in &mut x[50..75] {
        *v = -end;
    }
    let pools = vec![
        Pool2d::new([2, 2], [2, 2], [0; 4]),
        Pool2d::new([3, 3], [1, 1], [1, 1, 1, 1]),
        Pool2d { dilation: [2, 2], ..Pool2d::new([2, 2], [1, 1], [1, 1, 1, 1]) },
    ];
    let job = BoundedMaxPools { x: x.clone(), shape, pools: pools.clone() };
    for (name, outs) in everywhere(&job) {
        for (k, pl) in pools.iter().enumerate() {
            let mx = pool_ref(&x, shape, pl, |v, _| v.iter().copied().fold(f64::MIN, f64::max));
            close(name, &format!("bounded max {pl:?}"), &outs[k], &mx, 0.0);
        }
    }
}

#[test]
fn pooling_matches_f64_with_ties_all_negative_windows_and_dilation() {
    let shape = [2, 3, 6, 6];
    let mut x = rnd(2 * 3 * 36, -5.0, 5.0, 1);
    // Channel 1 of batch 0: all negative; channel 2: a constant (ties everywhere).
    for v in &mut x[36..72] {
        *v = -v.abs() - 0.5;
    }
    for v in &mut x[72..108] {
        *v = 1.25;
    }
    let pools = vec![
        Pool2d::new([2, 2], [2, 2], [0; 4]),
        Pool2d::new([3, 3], [1, 1], [1, 1, 1, 1]),
        Pool2d::new([3, 3], [2, 2], [0, 0, 1, 1]),
        // Dilated (ONNX's `dilations`): taps 2 apart, windows that reach into the padding.
        Pool2d { dilation: [2, 2], ..Pool2d::new([2, 2], [1, 1], [1, 1, 1, 1]) },
        Pool2d { dilation: [1, 3], ..Pool2d::new([3, 2], [2, 1], [0, 2, 1, 0]) },
    ];
    let job = Pools { x: x.clone(), shape, pools: pools.clone() };
    for (name, outs) in everywhere(&job) {
        for (k, pl) in pools.iter().enumerate() {
            let mx = pool_ref(&x, shape, pl, |v, _| v.iter().copied().fold(f64::MIN, f64::max));
            close(name, &format!("max {pl:?}"), &outs[3 * k], &mx, 0.0);
            let avg = pool_ref(&x, shape, pl, |v, _| v.iter().sum::<f64>() / v.len() as f64);
            close(name, &format!("avg {pl:?}"), &outs[3 * k + 1], &avg, 9.0 * 5.0 * FP.ulp());
            let avg_pad = pool_ref(&x, shape, pl, |v, k| v.iter().sum::<f64>() / k as f64);
            close(name, &format!("avg incl. pad {pl:?}"), &outs[3 * k + 2], &avg_pad, 9.0 * 5.0 * FP.ulp());
        }
        let g: Vec<f64> = x.chunks(36).map(|c| c.iter().sum::<f64>() / 36.0).collect();
        close(name, "global avg", &outs[3 * pools.len()], &g, 36.0 * 5.0 * FP.ulp());
    }
}

/// Weights, weight shape, bias, geometry.
type ConvCase = (Vec<f64>, [usize; 4], Vec<f64>, Conv2d);

struct Convs {
    x: Vec<f64>,
    xs: [usize; 4],
    cases: Vec<ConvCase>,
}

impl Job for Convs {
    type Output = Vec<Vec<f64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        // The data owner (party 0) holds the input; the model owner (party 1) the weights.
        let x = share_fixed(p, FP, 0, owned(p, 0, &self.x[..]), &self.xs)?;
        let mut outs = vec![];
        for (w, ws, b, cv) in &self.cases {
            let w = share_fixed(p, FP, 1, owned(p, 1, &w[..]), ws)?;
            let b = share_fixed(p, FP, 1, owned(p, 1, &b[..]), &[ws[0]])?;
            let y = conv2d(p, FP, &x, &w, Some(&b), cv)?;
            outs.push(reveal_fixed(p, FP, &y)?);
        }
        Ok(outs)
    }
}

#[test]
fn conv2d_with_stride_padding_dilation_groups_and_depthwise() {
    // A batch of two (the output is transposed from channel-major) and one image (whose
    // output is the product's layout already), square and not.
    conv2d_cases([2, 4, 7, 7]);
    conv2d_cases([1, 4, 6, 5]);
}

fn conv2d_cases(xs: [usize; 4]) {
    let x = rnd(xs.iter().product(), -3.0, 3.0, 2);
    let cases: Vec<ConvCase> = vec![
        ([5, 4, 3, 3], Conv2d::default()),
        ([6, 4, 3, 3], Conv2d { stride: [2, 2], pads: [1, 1, 1, 1], ..Default::default() }),
        ([4, 4, 3, 3], Conv2d { dilation: [2, 2], pads: [2, 2, 2, 2], ..Default::default() }),
        ([6, 2, 1, 3], Conv2d { groups: 2, pads: [0, 1, 0, 1], ..Default::default() }),
        ([4, 1, 3, 3], Conv2d { groups: 4, pads: [1, 1, 1, 1], ..Default::default() }), // depthwise
        ([3, 4, 1, 1], Conv2d::default()),
        // Uneven strides and pads, dilation along one axis, taps that reach past the image.
        ([2, 4, 2, 3], Conv2d { stride: [2, 3], pads: [0, 3, 1, 0], dilation: [1, 2], groups: 1 }),
        ([3, 4, 5, 5], Conv2d { stride: [1, 2], pads: [2, 4, 2, 1], ..Default::default() }),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (ws, cv))| {
        (rnd(ws.iter().product(), -1.0, 1.0, 10 + i as u64), ws, rnd(ws[0], -1.0, 1.0, 20 + i as u64), cv)
    })
    .collect();
    let job = Convs { x: x.clone(), xs, cases: cases.clone() };
    // The malicious back ends too: 3PC multiplies a convolution's weights as a matrix of rows
    // (`matmul_rows_truncate`) in its own way, and both 2PC back ends open the masked images
    // with a convolution triple (`matmul_im2col_truncate`).
    let mut runs = everywhere(&job);
    runs.push(("3pc malicious", on_malicious(&job)));
    runs.push(("2pc malicious", on(Backend::TwoPcMalicious, &job)));
    for (name, outs) in runs {
        for (k, (w, ws, b, cv)) in cases.iter().enumerate() {
            let want = conv_ref(&x, xs, w, *ws, b, cv);
            let terms = (ws[1] * ws[2] * ws[3]) as f64;
            close(
                name,
                &format!("conv {ws:?} {cv:?}"),
                &outs[k],
                &want,
                terms * 4.0 * FP.ulp() + 2.0 * FP.ulp(),
            );
        }
    }
}

struct Dense {
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    scale: Vec<f64>,
    shift: Vec<f64>,
}

impl Job for Dense {
    type Output = (Vec<f64>, Vec<f64>, Vec<f64>);
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let x = share_fixed(p, FP, 0, owned(p, 0, &self.x[..]), &[4, 6])?;
        let w = share_fixed(p, FP, 1, owned(p, 1, &self.w[..]), &[3, 6])?;
        let b = share_fixed(p, FP, 1, owned(p, 1, &self.b[..]), &[3])?;
        let y = linear(p, FP, &x, &w, Some(&b))?;
        let x4 = p.reshape(&x, &[2, 3, 2, 2])?;
        let sc = share_fixed(p, FP, 1, owned(p, 1, &self.scale[..]), &[3])?;
        let sh = share_fixed(p, FP, 1, owned(p, 1, &self.shift[..]), &[3])?;
        let a = affine(p, FP, &x4, &sc, &sh)?;
        let e = eq(p, &x, &x)?;
        let e = p.scale(&e, FP.one())?;
        Ok((reveal_fixed(p, FP, &y)?, reveal_fixed(p, FP, &a)?, reveal_fixed(p, FP, &e)?))
    }
}

#[test]
fn linear_affine_and_equality() {
    let (x, w, b) = (rnd(24, -4.0, 4.0, 3), rnd(18, -1.0, 1.0, 4), rnd(3, -1.0, 1.0, 5));
    let (scale, shift) = (rnd(3, 0.5, 2.0, 6), rnd(3, -1.0, 1.0, 7));
    let job = Dense { x: x.clone(), w: w.clone(), b: b.clone(), scale: scale.clone(), shift: shift.clone() };
    let want_y: Vec<f64> = (0..4)
        .flat_map(|i| (0..3).map(move |o| (i, o)))
        .map(|(i, o)| b[o] + (0..6).map(|k| x[i * 6 + k] * w[o * 6 + k]).sum::<f64>())
        .collect();
    let want_a: Vec<f64> = (0..24).map(|i| x[i] * scale[(i / 4) % 3] + shift[(i / 4) % 3]).collect();
    for (name, (y, a, e)) in everywhere(&job) {
        close(name, "linear", &y, &want_y, 6.0 * 4.0 * FP.ulp() + 2.0 * FP.ulp());
        close(name, "affine", &a, &want_a, 4.0 * FP.ulp());
        close(name, "eq", &e, &[1.0; 24], 0.0);
    }
}

struct Compare2 {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Job for Compare2 {
    type Output = Vec<Vec<f64>>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Self::Output, MpcError> {
        let n = self.x.len();
        let x = share_fixed(p, FP, 0, owned(p, 0, &self.x[..]), &[n])?;
        let y = share_fixed(p, FP, 1, owned(p, 1, &self.y[..]), &[n])?;
        let mut outs = vec![];
        for k in 0..6 {
            let r = match k {
                0 => lt(p, &x, &y)?,
                1 => le(p, &x, &y)?,
                2 => gt(p, &x, &y)?,
                3 => ge(p, &x, &y)?,
                _ => eq(p, &x, &y)?,
            };
            let r = p.scale(&r, FP.one())?;
            outs.push(reveal_fixed(p, FP, &r)?);
        }
        let mx = maximum(p, &x, &y)?;
        let mn = minimum(p, &x, &y)?;
        outs.push(reveal_fixed(p, FP, &mx)?);
        outs.push(reveal_fixed(p, FP, &mn)?);
        Ok(outs)
    }
}

#[test]
fn binary_comparisons_including_equal_and_one_ulp_apart() {
    let mut x = rnd(200, -100.0, 100.0, 8);
    let mut y = rnd(200, -100.0, 100.0, 9);
    for i in 0..50 {
        y[i] = x[i];
        y[50 + i] = x[50 + i] + FP.ulp();
        y[100 + i] = x[100 + i] - FP.ulp();
    }
    x.push(0.0);
    y.push(-0.0);
    let job = Compare2 { x: x.clone(), y: y.clone() };
    let b = |c: bool| c as u8 as f64;
    for (name, outs) in everywhere(&job) {
        let n = x.len();
        let want: [Vec<f64>; 5] = [
            (0..n).map(|i| b(x[i] < y[i])).collect(),
            (0..n).map(|i| b(x[i] <= y[i])).collect(),
            (0..n).map(|i| b(x[i] > y[i])).collect(),
            (0..n).map(|i| b(x[i] >= y[i])).collect(),
            (0..n).map(|i| b(x[i] == y[i])).collect(),
        ];
        for (k, w) in want.iter().enumerate() {
            close(name, &format!("comparison {k}"), &outs[k], w, 0.0);
        }
        close(name, "max", &outs[6], &(0..n).map(|i| x[i].max(y[i])).collect::<Vec<_>>(), 0.0);
        close(name, "min", &outs[7], &(0..n).map(|i| x[i].min(y[i])).collect::<Vec<_>>(), 0.0);
    }
}

struct LayerNorm {
    x: Vec<f64>,
    gamma: Vec<f64>,
    beta: Vec<f64>,
}

impl Job for LayerNorm {
    type Output = Vec<f64>;
    fn run<P: Protocol>(&self, p: &mut P) -> Result<Vec<f64>, MpcError> {
        let d = self.gamma.len();
        let rows = self.x.len() / d;
        let x = share_fixed(p, FP, 0, owned(p, 0, &self.x[..]), &[rows, d])?;
        let g = share_fixed(p, FP, 1, owned(p, 1, &self.gamma[..]), &[d])?;
        let b = share_fixed(p, FP, 1, owned(p, 1, &self.beta[..]), &[d])?;
        let y = layer_norm(p, FP, &x, &g, &b, 1e-5)?;
        reveal_fixed(p, FP, &y)
    }
}

fn layer_norm_ref(x: &[f64], gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    let d = gamma.len();
    x.chunks(d)
        .flat_map(|r| {
            let mean = r.iter().sum::<f64>() / d as f64;
            let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
            r.iter().enumerate().map(move |(i, v)| (v - mean) / (var + 1e-5).sqrt() * gamma[i] + beta[i])
        })
        .collect()
}

/// Rows of every scale a float32 transformer produces: unit scale, a small variance, values in
/// the tens (the old variance limit 2^14 is passed at 40), thousands and tens of thousands
/// (variance 2^28), a tiny variance (1e-6, below the old domain), a constant row.
/// Row lengths from 1 (every row constant) to BERT's 768, where the per-row factor's split
/// into two scales (`layer_norm`) has its tightest margins at the ends.
#[test]
fn layer_norm_matches_f64_over_the_whole_range() {
    for d in [1usize, 2, 16, 64, 768] {
        let mut rows: Vec<Vec<f64>> = vec![rnd(d, -3.0, 3.0, 30)];
        rows.push((0..d).map(|i| 0.5 + 0.05 * (i % 3) as f64).collect());
        for scale in [40.0, 3000.0, 15000.0] {
            rows.push(rnd(d, -1.0, 1.0, 33 + scale as u64).iter().map(|v| v * scale).collect());
        }
        rows.push(rnd(d, -1.0, 1.0, 34).iter().map(|v| 100.0 + v * 1e-3).collect());
        rows.push(vec![7.25; d]);
        let x: Vec<f64> = rows.iter().flatten().map(|&v| FP.decode_one(FP.encode_one(v).unwrap())).collect();
        let (gamma, beta) = (rnd(d, 0.5, 1.5, 31), rnd(d, -0.5, 0.5, 32));
        let want = layer_norm_ref(&x, &gamma, &beta);
        // The documented bound: 2^-10 (1 + |gamma|), plus the mean's rounding (2 ulps and the
        // rounding of 1/n, |sum x| 2^-(f+13)) amplified by |gamma| / sqrt(var + eps), plus the
        // squares' truncation bias, relative n 2^-2f / (var + eps) on the normalised value.
        let per_row: Vec<(f64, f64)> = x
            .chunks(d)
            .map(|r| {
                let mean = r.iter().sum::<f64>() / d as f64;
                let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
                (
                    2f64.powi(-10) * 2.5
                        + (2.0 * FP.ulp() + r.iter().sum::<f64>().abs() * FP.ulp() * 2f64.powi(-13)) * 1.5
                            / (var + 1e-5).sqrt(),
                    d as f64 * FP.ulp() * FP.ulp() / (var + 1e-5),
                )
            })
            .collect();
        let tol: Vec<f64> = (0..x.len())
            .map(|i| per_row[i / d].0 + per_row[i / d].1 * (want[i] - beta[i % d]).abs())
            .collect();
        let job = LayerNorm { x, gamma, beta };
        for (name, y) in everywhere(&job) {
            for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= tol[i], "{name} layer_norm d={d}: element {i}: {g} vs {w}");
            }
        }
    }
}

/// Dilated taps can step over the whole input: such a window (here taps at padded positions 0
/// and 3 of a padded length-4 row) has no value, and pooling refuses it.
#[test]
fn a_pooling_window_of_padding_only_is_refused() {
    let pool = Pool2d { dilation: [1, 3], ..Pool2d::new([1, 2], [1, 1], [0, 1, 0, 1]) };
    let err = pool_windows(&[1, 1, 1, 2], &pool).unwrap_err();
    assert!(err.to_string().contains("padding only"), "{err}");
    assert!(pool_windows(&[1, 1, 1, 3], &pool).is_ok());
}
