//! The im2col convolutions against naive nested-loop references (forward, input and weight
//! gradients), against candle's built-ins, and second-order gradients against finite differences;
//! the per-channel ops against plain broadcasting.

use candle_core::{DType, Device, Tensor, Var};
use gannet::ops::{self, ConvSpec, Geom};

/// Deterministic pseudo-random values in [-1, 1): a small LCG keeps the test self-contained.
fn vals(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(dims: [usize; 4], seed: u64, dt: DType) -> Tensor {
    let v = vals(dims.iter().product(), seed);
    Tensor::from_vec(v, &dims, &Device::Cpu).unwrap().to_dtype(dt).unwrap()
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn spec(stride: usize, padding: usize, output_padding: usize, dilation: usize) -> ConvSpec {
    ConvSpec { stride, padding, output_padding, dilation }
}

/// Naive results: y, and for the loss sum(y * r): dL/dx and dL/dw.
struct Naive {
    y: Vec<f64>,
    dx: Vec<f64>,
    dw: Vec<f64>,
    ydims: [usize; 4],
}

/// Naive conv2d. Every (output, tap) pair is one multiply-add; gradients of sum(y*r) by the same
/// loops. `r` is filled lazily: the caller passes a seed and the output size comes from here.
fn naive_conv(x: &[f64], xd: [usize; 4], w: &[f64], wd: [usize; 4], s: ConvSpec, rseed: u64) -> Naive {
    naive_conv_rect(x, xd, w, wd, s.stride, (s.padding, s.padding), s.dilation, rseed)
}

/// [`naive_conv`] with a kernel of any height and width and padding per axis (rows, columns).
#[allow(clippy::too_many_arguments)]
fn naive_conv_rect(x: &[f64], xd: [usize; 4], w: &[f64], wd: [usize; 4], stride: usize, pad: (usize, usize), dil: usize, rseed: u64) -> Naive {
    let [n, ci, h, wi] = xd;
    let [co, _, kh, kw] = wd;
    let ho = (h + 2 * pad.0 - dil * (kh - 1) - 1) / stride + 1;
    let wo = (wi + 2 * pad.1 - dil * (kw - 1) - 1) / stride + 1;
    let ydims = [n, co, ho, wo];
    let r = vals(n * co * ho * wo, rseed);
    let (mut y, mut dx, mut dw) = (vec![0.0; r.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
    for b in 0..n {
        for o in 0..co {
            for oh in 0..ho {
                for ow in 0..wo {
                    let yi = ((b * co + o) * ho + oh) * wo + ow;
                    for c in 0..ci {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih = (oh * stride + ki * dil) as isize - pad.0 as isize;
                                let iw = (ow * stride + kj * dil) as isize - pad.1 as isize;
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= wi as isize {
                                    continue;
                                }
                                let xi = ((b * ci + c) * h + ih as usize) * wi + iw as usize;
                                let wj = ((o * ci + c) * kh + ki) * kw + kj;
                                y[yi] += x[xi] * w[wj];
                                dx[xi] += w[wj] * r[yi];
                                dw[wj] += x[xi] * r[yi];
                            }
                        }
                    }
                }
            }
        }
    }
    Naive { y, dx, dw, ydims }
}

/// Naive transposed conv (PyTorch semantics): each input pixel scatters over the output.
fn naive_conv_t(x: &[f64], xd: [usize; 4], w: &[f64], wd: [usize; 4], s: ConvSpec, rseed: u64) -> Naive {
    let [n, ci, h, wi] = xd;
    let [_, co, k, _] = wd;
    let out = |l: usize| (l - 1) * s.stride + s.dilation * (k - 1) + s.output_padding + 1 - 2 * s.padding;
    let (ho, wo) = (out(h), out(wi));
    let ydims = [n, co, ho, wo];
    let r = vals(n * co * ho * wo, rseed);
    let (mut y, mut dx, mut dw) = (vec![0.0; r.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
    for b in 0..n {
        for c in 0..ci {
            for ih in 0..h {
                for iw in 0..wi {
                    let xi = ((b * ci + c) * h + ih) * wi + iw;
                    for o in 0..co {
                        for ki in 0..k {
                            for kj in 0..k {
                                let oh = (ih * s.stride + ki * s.dilation) as isize - s.padding as isize;
                                let ow = (iw * s.stride + kj * s.dilation) as isize - s.padding as isize;
                                if oh < 0 || ow < 0 || oh >= ho as isize || ow >= wo as isize {
                                    continue;
                                }
                                let yi = ((b * co + o) * ho + oh as usize) * wo + ow as usize;
                                let wj = ((c * co + o) * k + ki) * k + kj;
                                y[yi] += x[xi] * w[wj];
                                dx[xi] += w[wj] * r[yi];
                                dw[wj] += x[xi] * r[yi];
                            }
                        }
                    }
                }
            }
        }
    }
    Naive { y, dx, dw, ydims }
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}[{i}]: got {g}, want {w} (scale {scale})");
    }
}

/// Central finite differences of `f` at `x0` against the autodiff gradient `grad`, at `indices`.
fn assert_matches_fd(f: impl Fn(Vec<f64>) -> f64, x0: &[f64], grad: &[f64], eps: f64, indices: impl Iterator<Item = usize>, what: &str) {
    for i in indices {
        let (mut hi, mut lo) = (x0.to_vec(), x0.to_vec());
        hi[i] += eps;
        lo[i] -= eps;
        let fd = (f(hi) - f(lo)) / (2.0 * eps);
        assert!((fd - grad[i]).abs() <= 1e-6 * fd.abs().max(1.0), "{what}[{i}]: fd {fd}, autodiff {}", grad[i]);
    }
}

type OpFn = fn(&Tensor, &Tensor, ConvSpec) -> gannet::Result<Tensor>;
type NaiveFn = fn(&[f64], [usize; 4], &[f64], [usize; 4], ConvSpec, u64) -> Naive;

/// Forward and both gradients of `op` vs the naive reference, in f32 and f64.
fn check(op: OpFn, naive: NaiveFn, xd: [usize; 4], wd: [usize; 4], s: ConvSpec) {
    check_with(|x, w| op(x, w, s), |x, w| naive(x, xd, w, wd, s, 3), xd, wd, &format!("{s:?}"));
}

/// [`check`] for any op and reference (the reference draws its `r` from seed 3).
fn check_with(op: impl Fn(&Tensor, &Tensor) -> gannet::Result<Tensor>, naive: impl Fn(&[f64], &[f64]) -> Naive, xd: [usize; 4], wd: [usize; 4], what: &str) {
    for (dt, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-10)] {
        let x = Var::from_tensor(&tensor(xd, 1, dt)).unwrap();
        let w = Var::from_tensor(&tensor(wd, 2, dt)).unwrap();
        let nv = naive(&to_vec(&x), &to_vec(&w));
        let y = op(&x, &w).unwrap();
        let what = format!("{xd:?} {wd:?} {what} {dt:?}");
        assert_eq!(y.dims(), nv.ydims, "{what}: output shape");
        assert_close(&to_vec(&y), &nv.y, tol, &format!("y {what}"));
        let r = tensor(nv.ydims, 3, dt);
        let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(&to_vec(g.get(&x).unwrap()), &nv.dx, tol, &format!("dx {what}"));
        assert_close(&to_vec(g.get(&w).unwrap()), &nv.dw, tol, &format!("dw {what}"));
    }
}

/// Rectangular kernels with padding per axis (Inception's 1x7 / 7x1 and 1x3 / 3x1), odd sizes,
/// stride 1 and 2, batch 1 and 2; a square case equals `conv2d`'s.
#[test]
fn conv2d_padded_matches_naive_with_rectangular_kernels() {
    let cases = [
        ([1, 3, 9, 8], [4, 3, 1, 7], 1, (0, 3)),
        ([2, 5, 7, 9], [3, 5, 7, 1], 1, (3, 0)),
        ([1, 4, 9, 9], [2, 4, 3, 1], 2, (1, 0)),
        ([2, 3, 6, 5], [5, 3, 1, 3], 1, (0, 1)),
        ([2, 3, 7, 6], [17, 3, 3, 3], 2, (1, 1)),
        ([1, 6, 5, 4], [3, 6, 1, 1], 1, (0, 0)),
    ];
    for (xd, wd, stride, pad) in cases {
        check_with(
            |x, w| ops::conv2d_padded(x, w, stride, pad),
            |x, w| naive_conv_rect(x, xd, w, wd, stride, pad, 1, 3),
            xd,
            wd,
            &format!("stride {stride} pad {pad:?}"),
        );
    }
    let (x, w) = (tensor([2, 3, 7, 6], 5, DType::F32), tensor([4, 3, 3, 3], 6, DType::F32));
    let a = to_vec(&ops::conv2d_padded(&x, &w, 2, (1, 1)).unwrap());
    assert_eq!(a, to_vec(&ops::conv2d(&x, &w, spec(2, 1, 0, 1)).unwrap()));
    assert!(ops::conv2d_padded(&x, &w, 0, (1, 1)).is_err(), "stride 0 is refused, not a division by zero");
}

#[test]
fn conv2d_matches_naive_on_odd_shapes() {
    let cases = [
        ([2, 3, 7, 5], [5, 3, 3, 3], spec(1, 1, 0, 1)),
        ([1, 5, 9, 6], [3, 5, 3, 3], spec(2, 0, 0, 1)),
        ([2, 3, 10, 11], [6, 3, 4, 4], spec(2, 1, 0, 1)),
        // Even sizes: the input gradient takes fold's kernel-4 stride-2 fast path.
        ([2, 3, 10, 8], [4, 3, 4, 4], spec(2, 1, 0, 1)),
        ([1, 2, 2, 6], [3, 2, 4, 4], spec(2, 1, 0, 1)),
        ([3, 2, 11, 8], [5, 2, 3, 3], spec(3, 2, 0, 1)),
        ([2, 3, 9, 10], [2, 3, 3, 3], spec(1, 2, 0, 2)),
        ([2, 7, 5, 3], [5, 7, 1, 1], spec(1, 0, 0, 1)),
        ([1, 3, 6, 7], [9, 3, 1, 1], spec(2, 0, 0, 1)),
        ([2, 5, 4, 4], [1, 5, 4, 4], spec(1, 0, 0, 1)),
        ([1, 2, 3, 2], [3, 2, 5, 5], spec(1, 2, 0, 1)),
        // Fewer output than input channels at stride 1: the adjoint (transposed) form, as in an
        // RGB output layer (7x7, padding 3) and a patch head (4x4, padding 1, one channel).
        ([2, 9, 6, 7], [3, 9, 7, 7], spec(1, 3, 0, 1)),
        ([1, 6, 5, 5], [1, 6, 4, 4], spec(1, 1, 0, 1)),
        ([2, 4, 5, 6], [3, 4, 3, 3], spec(1, 0, 0, 1)),
        // Kernel 4, stride 2, padding 1, even sizes, >= 16 channels each side: f32 takes the
        // Winograd kernel (its input gradient the Winograd transposed convolution).
        ([2, 16, 4, 6], [17, 16, 4, 4], spec(2, 1, 0, 1)),
        ([1, 20, 2, 2], [16, 20, 4, 4], spec(2, 1, 0, 1)),
        ([3, 33, 6, 4], [16, 33, 4, 4], spec(2, 1, 0, 1)),
        // 225 tiles per image: two images per chunk, the last chunk one image.
        ([3, 16, 60, 60], [16, 16, 4, 4], spec(2, 1, 0, 1)),
    ];
    for (xd, wd, s) in cases {
        check(ops::conv2d, naive_conv, xd, wd, s);
    }
}

#[test]
fn conv_transpose2d_matches_naive_on_odd_shapes() {
    let cases = [
        ([2, 5, 4, 3], [5, 3, 4, 4], spec(2, 1, 0, 1)),
        ([1, 6, 1, 1], [6, 7, 4, 4], spec(1, 0, 0, 1)),
        ([2, 3, 5, 4], [3, 5, 3, 3], spec(2, 1, 1, 1)),
        ([3, 2, 4, 6], [2, 3, 3, 3], spec(3, 2, 2, 1)),
        ([2, 3, 5, 3], [3, 2, 3, 3], spec(1, 2, 0, 2)),
        ([1, 3, 4, 5], [3, 2, 3, 3], spec(2, 1, 1, 2)),
        ([2, 7, 3, 5], [7, 5, 1, 1], spec(1, 0, 0, 1)),
        ([1, 5, 3, 3], [5, 3, 1, 1], spec(2, 0, 1, 1)),
        // Kernel 4, stride 2, padding 1 with at least 16 output channels: f32 takes the
        // Winograd kernel (odd and even sizes, batch 1, channels not multiples of 16).
        ([2, 5, 4, 3], [5, 17, 4, 4], spec(2, 1, 0, 1)),
        ([1, 3, 3, 5], [3, 16, 4, 4], spec(2, 1, 0, 1)),
        ([3, 20, 2, 2], [20, 33, 4, 4], spec(2, 1, 0, 1)),
        ([1, 2, 1, 1], [2, 16, 4, 4], spec(2, 1, 0, 1)),
        // 225 tiles per image: two images per chunk, the last chunk one image.
        ([3, 2, 30, 29], [2, 16, 4, 4], spec(2, 1, 0, 1)),
    ];
    for (xd, wd, s) in cases {
        check(ops::conv_transpose2d, naive_conv_t, xd, wd, s);
    }
}

/// Same forward and gradients as candle's own convolutions on DCGAN-like layers.
#[test]
fn matches_candle_builtins() {
    let s = spec(2, 1, 0, 1);
    let x = Var::from_tensor(&tensor([2, 6, 8, 8], 4, DType::F32)).unwrap();
    let w = Var::from_tensor(&tensor([5, 6, 4, 4], 5, DType::F32)).unwrap();
    let pairs: [(Tensor, Tensor); 2] = [
        (ops::conv2d(&x, &w, s).unwrap(), x.conv2d(&w, 1, 2, 1, 1).unwrap()),
        (ops::conv_transpose2d(&x, &w.transpose(0, 1).unwrap(), s).unwrap(), {
            x.conv_transpose2d(&w.transpose(0, 1).unwrap().contiguous().unwrap(), 1, 0, 2, 1).unwrap()
        }),
    ];
    for (ours, theirs) in pairs {
        assert_close(&to_vec(&ours), &to_vec(&theirs), 1e-4, "y");
        let r = tensor(<[usize; 4]>::try_from(ours.dims()).unwrap(), 6, DType::F32);
        let go = ours.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let gt = theirs.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            assert_close(&to_vec(go.get(v).unwrap()), &to_vec(gt.get(v).unwrap()), 1e-4, "grad");
        }
    }
}

/// fold is the adjoint of unfold: <unfold(a), b> = <a, fold(b)>.
#[test]
fn fold_is_adjoint_of_unfold() {
    let g = Geom { n: 2, c: 3, h: 7, w: 6, kh: 3, kw: 3, stride: 2, ph: 1, pw: 1, dil: 2, ho: 3, wo: 3 };
    let a = tensor([2, 3, 7, 6], 7, DType::F64);
    let b = Tensor::from_vec(vals(27 * 18, 8), (27, 18), &Device::Cpu).unwrap();
    let lhs = ops::unfold(&a, g).unwrap().mul(&b).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    let rhs = a.mul(&ops::fold(&b, g).unwrap()).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
}

/// R1-style penalty P(w) = sum((dL/dx)^2) with L = sum(op(x, w)^2 * r); its gradient w.r.t. the
/// weights needs the backward pass of the backward pass.
fn penalty(op: OpFn, x: &Var, w: &Tensor, r: &Tensor, s: ConvSpec) -> Tensor {
    let y = op(x, w, s).unwrap();
    let l = y.sqr().unwrap().mul(r).unwrap().sum_all().unwrap();
    let dx = gannet::autodiff::grad_of(&l, x).unwrap();
    dx.sqr().unwrap().sum_all().unwrap()
}

fn check_second_order(op: OpFn, xd: [usize; 4], wd: [usize; 4], s: ConvSpec) {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let x = Var::from_tensor(&tensor(xd, 11, DType::F64)).unwrap();
    let w0 = to_vec(&tensor(wd, 12, DType::F64));
    let w = Var::from_vec(w0.clone(), &wd, &Device::Cpu).unwrap();
    let ydims: Vec<usize> = op(&x, &w, s).unwrap().dims().to_vec();
    let r = Tensor::from_vec(vals(ydims.iter().product(), 13), ydims, &Device::Cpu).unwrap();
    let p = penalty(op, &x, &w, &r, s);
    let dw = to_vec(&gannet::autodiff::grad_of(&p, &w).unwrap());
    let eps = 1e-5;
    let at = |wv: Vec<f64>| {
        let wt = Tensor::from_vec(wv, &wd, &Device::Cpu).unwrap();
        penalty(op, &x, &wt, &r, s).to_scalar::<f64>().unwrap()
    };
    assert_matches_fd(at, &w0, &dw, eps, (0..w0.len()).step_by(w0.len() / 7 + 1), "dP/dw");
}

#[test]
fn second_order_conv2d_matches_finite_differences() {
    check_second_order(ops::conv2d, [2, 3, 6, 5], [4, 3, 3, 3], spec(2, 1, 0, 1));
    check_second_order(ops::conv2d, [1, 2, 7, 6], [3, 2, 3, 3], spec(1, 1, 0, 2));
    // The adjoint form of a channel-narrowing stride-1 convolution.
    check_second_order(ops::conv2d, [1, 5, 5, 4], [2, 5, 3, 3], spec(1, 1, 0, 1));
}

#[test]
fn second_order_conv_transpose2d_matches_finite_differences() {
    check_second_order(ops::conv_transpose2d, [2, 3, 3, 4], [3, 4, 4, 4], spec(2, 1, 0, 1));
    check_second_order(ops::conv_transpose2d, [1, 2, 4, 3], [2, 3, 3, 3], spec(2, 1, 1, 1));
}

/// The Winograd kernels (f32 only) under a gradient penalty: the penalty's weight gradient equals
/// the f64 im2col path's, which the finite-difference tests above check.
#[test]
fn second_order_through_the_winograd_kernels_equals_the_im2col_path() {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let s = spec(2, 1, 0, 1);
    for (op, xd, wd) in [(ops::conv2d as OpFn, [2, 16, 4, 4], [17, 16, 4, 4]), (ops::conv_transpose2d as OpFn, [2, 17, 2, 3], [17, 16, 4, 4])] {
        let grads: Vec<Vec<f64>> = [DType::F32, DType::F64]
            .into_iter()
            .map(|dt| {
                let x = Var::from_tensor(&tensor(xd, 31, dt)).unwrap();
                let w = Var::from_tensor(&tensor(wd, 32, dt)).unwrap();
                let ydims: Vec<usize> = op(&x, &w, s).unwrap().dims().to_vec();
                let r = Tensor::from_vec(vals(ydims.iter().product(), 33), ydims, &Device::Cpu).unwrap().to_dtype(dt).unwrap();
                to_vec(&gannet::autodiff::grad_of(&penalty(op, &x, &w, &r, s), &w).unwrap())
            })
            .collect();
        assert_close(&grads[0], &grads[1], 1e-3, &format!("dP/dw {xd:?} {wd:?}"));
    }
}

/// `per_channel::affine` against the plain broadcast formulation: output and the gradients of
/// x, scale and shift, for per-channel `[C]` and per-sample `[N, C]` parameters, on [N, C] and
/// [N, C, H, W] inputs.
#[test]
fn per_channel_affine_matches_broadcasting() {
    use gannet::ops::per_channel;
    for (xd, per_sample) in [([3, 4, 5, 2], false), ([3, 4, 5, 2], true), ([5, 3, 1, 1], false), ([1, 2, 3, 3], true)] {
        let x = Var::from_tensor(&tensor(xd, 21, DType::F64)).unwrap();
        let pd = if per_sample { vec![xd[0], xd[1]] } else { vec![xd[1]] };
        let param = |seed| Var::from_vec(vals(pd.iter().product(), seed), pd.as_slice(), &Device::Cpu).unwrap();
        let (s, t) = (param(22), param(23));
        let bshape = if per_sample { (xd[0], xd[1], 1, 1) } else { (1, xd[1], 1, 1) };
        let want = x.broadcast_mul(&s.reshape(bshape).unwrap()).unwrap().broadcast_add(&t.reshape(bshape).unwrap()).unwrap();
        let got = per_channel::affine(&x, Some(&s), Some(&t)).unwrap();
        let what = format!("{xd:?} per_sample {per_sample}");
        assert_eq!(got.dims(), want.dims(), "{what}");
        assert_close(&to_vec(&got), &to_vec(&want), 1e-12, &what);
        let r = tensor(xd, 24, DType::F64);
        let grads = |y: &Tensor| y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let (gg, gw) = (grads(&got), grads(&want));
        for (v, name) in [(&x, "dx"), (&s, "dscale"), (&t, "dshift")] {
            assert_close(&to_vec(gg.get(v).unwrap()), &to_vec(gw.get(v).unwrap()), 1e-12, &format!("{name} {what}"));
        }
    }
    assert!(per_channel::add(&Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(), &Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap()).is_err());
}

/// A penalty on dL/dx through a per-channel affine needs its backward to be differentiable:
/// P(s) = sum((dL/dx)^2), L = sum(affine(x, s, s^2)^2 * r), checked against finite differences.
#[test]
fn second_order_per_channel_affine_matches_finite_differences() {
    use gannet::ops::per_channel;
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let xd = [2, 3, 4, 3];
    let x = Var::from_tensor(&tensor(xd, 31, DType::F64)).unwrap();
    let r = tensor(xd, 32, DType::F64);
    let penalty = |s: &Tensor| {
        let y = per_channel::affine(&x, Some(s), Some(&s.sqr().unwrap())).unwrap();
        let l = y.sqr().unwrap().mul(&r).unwrap().sum_all().unwrap();
        let dx = gannet::autodiff::grad_of(&l, &x).unwrap();
        dx.sqr().unwrap().sum_all().unwrap()
    };
    let s0 = vals(3, 33);
    let s = Var::from_vec(s0.clone(), 3, &Device::Cpu).unwrap();
    let ds = to_vec(&gannet::autodiff::grad_of(&penalty(&s), &s).unwrap());
    let eps = 1e-5;
    let at = |v: Vec<f64>| penalty(&Tensor::from_vec(v, 3, &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap();
    assert_matches_fd(at, &s0, &ds, eps, 0..3, "dP/ds");
}

/// The fused (leaky) ReLU: values and first-order gradients against candle's composite form, and
/// a penalty on dL/dx through it (second order) against finite differences.
#[test]
fn leaky_relu_matches_composite_and_is_twice_differentiable() {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let xd = [2, 3, 4, 5];
    for slope in [0.0, 0.2] {
        let x = Var::from_tensor(&tensor(xd, 41, DType::F64)).unwrap();
        let got = ops::leaky_relu(&x, slope).unwrap();
        let want = x.maximum(&(x.as_tensor() * slope).unwrap()).unwrap();
        assert_close(&to_vec(&got), &to_vec(&want), 1e-15, "leaky relu forward");
        let r = tensor(xd, 42, DType::F64);
        let dx = |y: &Tensor| to_vec(&gannet::autodiff::grad_of(&y.mul(&r).unwrap().sum_all().unwrap(), &x).unwrap());
        assert_close(&dx(&got), &dx(&want), 1e-15, "leaky relu dx");
    }
    // P(w) = sum((dL/dx)^2), L = sum(leaky_relu(x * w)^2 * r): dL/dx goes through the backward
    // kernel, whose own backward carries dP/dw.
    let x = Var::from_tensor(&tensor(xd, 43, DType::F64)).unwrap();
    let r = tensor(xd, 44, DType::F64);
    let penalty = |w: &Tensor| {
        let y = ops::leaky_relu(&x.broadcast_mul(w).unwrap(), 0.2).unwrap();
        let l = y.sqr().unwrap().mul(&r).unwrap().sum_all().unwrap();
        gannet::autodiff::grad_of(&l, &x).unwrap().sqr().unwrap().sum_all().unwrap()
    };
    let w = Var::from_vec(vec![0.7f64], 1, &Device::Cpu).unwrap();
    let dw = to_vec(&gannet::autodiff::grad_of(&penalty(&w), &w).unwrap());
    let at = |v: Vec<f64>| penalty(&Tensor::from_vec(v, 1, &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap();
    assert_matches_fd(at, &[0.7], &dw, 1e-6, 0..1, "dP/dw");
}

/// The fused per-channel affine + (leaky) ReLU (batch norm in eval mode) against the composite
/// form: output and the gradients of x, scale and shift; and a penalty on dL/dx through it (second
/// order) against finite differences.
#[test]
fn per_channel_affine_relu_matches_composite_and_is_twice_differentiable() {
    use gannet::ops::per_channel;
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let xd = [3, 4, 3, 2];
    let param = |seed| Var::from_vec(vals(4, seed), 4, &Device::Cpu).unwrap();
    for slope in [0.0, 0.2] {
        let x = Var::from_tensor(&tensor(xd, 51, DType::F64)).unwrap();
        let (s, t) = (param(52), param(53));
        let got = per_channel::affine_relu(&x, &s, &t, slope).unwrap();
        let want = ops::leaky_relu(&per_channel::affine(&x, Some(&s), Some(&t)).unwrap(), slope).unwrap();
        assert_close(&to_vec(&got), &to_vec(&want), 1e-14, "affine relu forward");
        let r = tensor(xd, 54, DType::F64);
        let grads = |y: &Tensor| y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let (gg, gw) = (grads(&got), grads(&want));
        for (v, name) in [(&x, "dx"), (&s, "dscale"), (&t, "dshift")] {
            assert_close(&to_vec(gg.get(v).unwrap()), &to_vec(gw.get(v).unwrap()), 1e-12, &format!("{name} slope {slope}"));
        }
    }
    // P(s) = sum((dL/dx)^2), L = sum(affine_relu(x, s, s^2)^2 * r).
    let x = Var::from_tensor(&tensor(xd, 55, DType::F64)).unwrap();
    let r = tensor(xd, 56, DType::F64);
    let penalty = |s: &Tensor| {
        let y = per_channel::affine_relu(&x, s, &s.sqr().unwrap(), 0.2).unwrap();
        let l = y.sqr().unwrap().mul(&r).unwrap().sum_all().unwrap();
        gannet::autodiff::grad_of(&l, &x).unwrap().sqr().unwrap().sum_all().unwrap()
    };
    let s0 = vals(4, 57);
    let s = Var::from_vec(s0.clone(), 4, &Device::Cpu).unwrap();
    let ds = to_vec(&gannet::autodiff::grad_of(&penalty(&s), &s).unwrap());
    let eps = 1e-6;
    let at = |v: Vec<f64>| penalty(&Tensor::from_vec(v, 4, &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap();
    assert_matches_fd(at, &s0, &ds, eps, 0..4, "dP/ds");
}

/// Instance norm with second-order gradients on takes the composite form: per-plane
/// normalisation plus leaky ReLU against a plain reference, and a penalty on dL/dx through it
/// against finite differences.
#[test]
fn instance_norm_composite_matches_reference_and_is_twice_differentiable() {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let xd = [2, 3, 4, 3];
    let x0 = tensor(xd, 41, DType::F64);
    let y = to_vec(&ops::batch_norm::instance(&x0, 1e-5, Some(0.2)).unwrap());
    let xv = to_vec(&x0);
    for (plane, p) in xv.chunks(12).enumerate() {
        let mean = p.iter().sum::<f64>() / 12.0;
        let var = p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0;
        for (k, v) in p.iter().enumerate() {
            let t = (v - mean) / (var + 1e-5).sqrt();
            let want = if t > 0.0 { t } else { 0.2 * t };
            assert!((y[plane * 12 + k] - want).abs() < 1e-9, "plane {plane} pixel {k}");
        }
    }
    // P(s) = sum((dL/dx)^2) with L = sum(instance(x * s)^2 * r): s scales each plane's input.
    let x = Var::from_tensor(&x0).unwrap();
    let r = tensor(xd, 42, DType::F64);
    let penalty = |s: &Tensor| {
        let scaled = ops::per_channel::affine(&x, Some(s), None).unwrap();
        let l = ops::batch_norm::instance(&scaled, 1e-5, Some(0.2)).unwrap().sqr().unwrap().mul(&r).unwrap().sum_all().unwrap();
        let dx = gannet::autodiff::grad_of(&l, &x).unwrap();
        dx.sqr().unwrap().sum_all().unwrap()
    };
    let s0 = vals(3, 43).iter().map(|v| 1.0 + 0.5 * v).collect::<Vec<_>>();
    let s = Var::from_vec(s0.clone(), 3, &Device::Cpu).unwrap();
    let ds = to_vec(&gannet::autodiff::grad_of(&penalty(&s), &s).unwrap());
    let at = |v: Vec<f64>| penalty(&Tensor::from_vec(v, 3, &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap();
    assert_matches_fd(at, &s0, &ds, 1e-5, 0..3, "dP/ds");
}

/// `ops::matmul` with one operand tracked: the same product and the same gradient as candle's
/// `matmul` (bit for bit), no gradient computed for the constant operand (candle's own computes
/// and stores one), and the gradient is itself differentiable.
#[test]
fn one_sided_matmul_equals_candle_and_skips_the_constant_gradient() {
    gannet::autodiff::enable_second_order();
    let a = Var::from_tensor(&tensor([1, 1, 5, 7], 1, DType::F32).reshape((5, 7)).unwrap()).unwrap();
    let b = tensor([1, 1, 7, 3], 2, DType::F32).reshape((7, 3)).unwrap();
    let r = tensor([1, 1, 5, 3], 3, DType::F32).reshape((5, 3)).unwrap();
    for (x, y, var_first) in [(a.as_tensor().clone(), b.clone(), true), (b.t().unwrap(), a.as_tensor().t().unwrap(), false)] {
        let ours = ops::matmul(&x, &y).unwrap();
        let theirs = x.matmul(&y).unwrap();
        assert_eq!(to_vec(&ours), to_vec(&theirs));
        let r = if var_first { r.clone() } else { r.t().unwrap() };
        let g_ours = ours.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = theirs.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(to_vec(g_ours.get(&a).unwrap()), to_vec(g_theirs.get(&a).unwrap()));
        let constant = if var_first { &y } else { &x };
        assert!(g_ours.get(constant).is_none(), "no gradient for the constant operand");
        assert!(g_theirs.get(constant).is_some(), "candle's matmul stores one (what the op saves)");
    }
    // Second order: d/da sum((a @ b)^2) = 2 (a b) b^T, whose sum's gradient is again linear in a.
    let p = ops::matmul(a.as_tensor(), &b).unwrap().sqr().unwrap().sum_all().unwrap();
    let ga = gannet::autodiff::grad_of(&p, a.as_tensor()).unwrap();
    let gg = ga.sum_all().unwrap().backward().unwrap();
    // d/da sum(2 a b b^T) = 2 * (row sums of b b^T) broadcast over a's rows.
    let bbt = b.matmul(&b.t().unwrap()).unwrap().sum(1).unwrap();
    let want: Vec<f64> = (0..5).flat_map(|_| to_vec(&bbt).into_iter().map(|v| 2.0 * v)).collect();
    assert_close(&to_vec(gg.get(&a).unwrap()), &want, 1e-5, "second order through ops::matmul");
}

/// A long reduction into a small result (a weight gradient) is split across the cores: the same
/// product as one GEMM up to rounding, in f32 and f64, at lengths that split unevenly; both
/// gradients of a product of two tracked operands match candle's.
#[test]
fn split_reductions_match_one_gemm() {
    for (m, l, n) in [(3, 5000, 4), (17, 4097, 9), (2, 2048, 2), (64, 1000, 64)] {
        for (dt, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-12)] {
            let a = tensor([1, 1, m, l], 7, dt).reshape((m, l)).unwrap();
            let b = tensor([1, 1, l, n], 8, dt).reshape((l, n)).unwrap();
            let want = to_vec(&a.matmul(&b).unwrap());
            assert_close(&to_vec(&ops::matmul::product(&a, &b).unwrap()), &want, tol, &format!("{m}x{l}x{n} {dt:?}"));
        }
    }
    let a = Var::from_tensor(&tensor([1, 1, 6, 3000], 9, DType::F64).reshape((6, 3000)).unwrap()).unwrap();
    let b = Var::from_tensor(&tensor([1, 1, 3000, 5], 10, DType::F64).reshape((3000, 5)).unwrap()).unwrap();
    let r = tensor([1, 1, 6, 5], 11, DType::F64).reshape((6, 5)).unwrap();
    let ours = ops::matmul(a.as_tensor(), b.as_tensor()).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let theirs = a.as_tensor().matmul(b.as_tensor()).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    for v in [&a, &b] {
        assert_close(&to_vec(ours.get(v).unwrap()), &to_vec(theirs.get(v).unwrap()), 1e-12, "gradient of a tracked product");
    }
}
