//! Batch normalisation in training mode: `y = (x - mean) / sqrt(var + eps) * weight + bias` with
//! the batch's per-channel mean and biased variance, as one fused kernel forward and one backward.
//!
//! Built from candle ops ([`composite`]) the layer is about a dozen activation-sized passes and
//! fresh buffers forward and backward; [`fused`] reads `x` twice and writes `y` once forward, and
//! reads `x` and the gradient twice and writes the input gradient once backward. The fused
//! backward is not itself differentiable, so [`train`] takes the composite form whenever second
//! order gradients are enabled (R1, gradient penalty), and the fused one otherwise.
//!
//! Under data-parallel training with synchronised batch norm ([`crate::parallel::sync_batch_norm`])
//! the fused kernels sum their per-channel statistics over all processes: forward the sums for the
//! mean and the variance, backward `sum(g)` and `sum(g * (x - mean))` for the input gradient. The
//! weight and bias gradients stay per process; the gradient averaging that follows every backward
//! pass combines them, as it does every other weight's.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Storage, Tensor, WithDType};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

use super::{cpu_slice, per_channel};

const NAME: &str = "gannet-batch-norm";

/// Batch-normalised `x`, and the batch's per-channel mean and biased variance (`[C]`, detached).
pub struct Normalised {
    pub y: Tensor,
    pub mean: Tensor,
    pub var: Tensor,
}

/// The fused kernels when they apply (CPU, f32/f64, first-order gradients only), else
/// [`composite`]. `relu_slope`: a (leaky) ReLU applied to the result, `Some(0.0)` being ReLU.
pub fn train(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, relu_slope: Option<f64>) -> crate::Result<Normalised> {
    let fast = super::cpu_float(x) && weight.dtype() == x.dtype();
    if crate::parallel::sync_batch_norm() {
        if !fast || crate::autodiff::second_order_enabled() {
            return Err(crate::Error::Config(
                "synchronised batch norm runs on the CPU without second-order gradients (R1, gradient penalty, path length): \
                 set [parallel] sync_batch_norm = false, or train without the penalty"
                    .into(),
            ));
        }
        return fused(x, weight, bias, eps, relu_slope);
    }
    if fast && !crate::autodiff::second_order_enabled() {
        fused(x, weight, bias, eps, relu_slope)
    } else {
        composite(x, weight, bias, eps, relu_slope)
    }
}

/// Built from candle ops: differentiable to any order, on any device.
pub fn composite(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, relu_slope: Option<f64>) -> crate::Result<Normalised> {
    let mean = per_channel::mean(x)?;
    let centred = per_channel::add(x, &mean.neg()?)?;
    let var = per_channel::mean(&centred.sqr()?)?;
    let scale = ((&var + eps)?.sqrt()?.recip()? * weight)?;
    let mut y = per_channel::affine(&centred, Some(&scale), Some(bias))?;
    if let Some(slope) = relu_slope {
        y = super::leaky_relu(&y, slope)?;
    }
    Ok(Normalised { y, mean: mean.detach(), var: var.detach() })
}

/// The fused CPU kernels (first-order gradients only); the activation is applied in the same
/// pass, and its mask in the backward one.
pub fn fused(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, relu_slope: Option<f64>) -> crate::Result<Normalised> {
    fused_with(x, weight, bias, eps, relu_slope, crate::parallel::sync_batch_norm())
}

/// [`fused`], with the statistics summed over the data-parallel processes only when `sync`
/// (instance norm's statistics are every image's own, never shared).
pub(crate) fn fused_with(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, relu_slope: Option<f64>, sync: bool) -> crate::Result<Normalised> {
    if x.rank() < 2 {
        return Err(crate::Error::Msg(format!("batch norm needs [N, C, ...], got {:?}", x.dims())));
    }
    let stats = Arc::new(Mutex::new(Stats::default()));
    let op = Fused { eps, relu_slope, sync, stats: stats.clone() };
    let y = x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?;
    let stats = stats.lock().unwrap_or_else(|e| e.into_inner());
    let vec = |v: &[f64]| Tensor::from_vec(v.to_vec(), v.len(), x.device())?.to_dtype(x.dtype());
    Ok(Normalised { y, mean: vec(&stats.mean)?, var: vec(&stats.var)? })
}

/// Instance normalisation of `x` [N, C, H, W]: every (image, channel) plane by its own mean and
/// biased variance, then the (leaky) ReLU of `relu_slope` if given. It is batch norm over
/// `[1, N * C, H * W]` (each plane a channel of its own) with unit scale and zero shift, never
/// synchronised across processes: the fused kernel where it applies (CPU, first-order gradients),
/// else [`composite`], differentiable to any order on any device.
pub fn instance(x: &Tensor, eps: f64, relu_slope: Option<f64>) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let planes = x.reshape((1, n * c, h * w))?;
    let (ones, zeros) = (Tensor::ones(n * c, x.dtype(), x.device())?, Tensor::zeros(n * c, x.dtype(), x.device())?);
    let normalised = if super::cpu_float(x) && !crate::autodiff::second_order_enabled() {
        fused_with(&planes, &ones, &zeros, eps, relu_slope, false)?
    } else {
        composite(&planes, &ones, &zeros, eps, relu_slope)?
    };
    Ok(normalised.y.reshape((n, c, h, w))?)
}

/// Per-channel statistics of one forward pass, kept for its backward.
#[derive(Default)]
struct Stats {
    mean: Vec<f64>,
    var: Vec<f64>,
    inv_std: Vec<f64>,
    /// Values per channel the statistics are over (all processes' when synchronised).
    count: f64,
}

/// Per-channel `sums` (and `count` in the last slot) summed over all data-parallel processes
/// when `sync` (synchronised batch norm).
fn combine(mut sums: Vec<f64>, sync: bool) -> Vec<f64> {
    if sync {
        // A failed collective cannot be reported from inside a kernel; MPI aborts the job on
        // communication errors by default, so a return here is always a success.
        let _ = crate::parallel::world().sum_f64(&mut sums);
    }
    sums
}

struct Fused {
    eps: f64,
    relu_slope: Option<f64>,
    /// Sum the statistics over the data-parallel processes.
    sync: bool,
    stats: Arc<Mutex<Stats>>,
}

/// `[N, C, H * W ...]` sizes.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    hw: usize,
}

impl Dims {
    fn of(shape: &Shape) -> Self {
        let d = shape.dims();
        Self { n: d[0], c: d[1], hw: d[2..].iter().product() }
    }

    fn count(self) -> f64 {
        (self.n * self.hw) as f64
    }

    /// Per channel, the sum over its planes of `f(channel, plane of a, plane of b)`, in f64.
    fn channel_sums<T: WithDType>(self, a: &[T], b: &[T], f: impl Fn(usize, &[T], &[T]) -> (f64, f64) + Sync) -> Vec<(f64, f64)> {
        (0..self.c)
            .into_par_iter()
            .map(|ch| {
                (0..self.n).fold((0.0, 0.0), |acc, i| {
                    let r = (i * self.c + ch) * self.hw..(i * self.c + ch + 1) * self.hw;
                    let (u, v) = f(ch, &a[r.clone()], &b[r]);
                    (acc.0 + u, acc.1 + v)
                })
            })
            .collect()
    }

    /// A new tensor whose every (sample, channel) plane is `g(channel, plane of a, plane of b)`.
    fn map_planes<T: WithDType>(self, a: &[T], b: &[T], g: impl Fn(usize, &[T], &[T], &mut [T]) + Sync) -> Vec<T> {
        let mut out = vec![T::zero(); a.len()];
        out.par_chunks_mut(self.hw).zip(a.par_chunks(self.hw).zip(b.par_chunks(self.hw))).enumerate().for_each(|(p, (o, (a, b)))| g(p % self.c, a, b, o));
        out
    }
}

fn forward<T: WithDType>(x: &[T], w: &[T], b: &[T], d: Dims, eps: f64, relu_slope: Option<f64>, sync: bool) -> (Vec<T>, Stats) {
    let sum = |p: &[T]| p.iter().map(|v| v.to_f64()).sum::<f64>();
    let mut sums: Vec<f64> = d.channel_sums(x, x, |_, p, _| (sum(p), 0.0)).iter().map(|s| s.0).collect();
    sums.push(d.count());
    let sums = combine(sums, sync);
    let count = sums[d.c];
    let mean: Vec<f64> = sums[..d.c].iter().map(|s| s / count).collect();
    // Squared deviations from the mean, a second pass, keep the variance exact for large means.
    let dev = d.channel_sums(x, x, |ch, p, _| (p.iter().map(|v| (v.to_f64() - mean[ch]).powi(2)).sum(), 0.0)).iter().map(|s| s.0).collect();
    let var: Vec<f64> = combine(dev, sync).iter().map(|s| s / count).collect();
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let y = d.map_planes(x, x, |ch, xs, _, out| {
        let scale = inv_std[ch] * w[ch].to_f64();
        let shift = b[ch].to_f64() - mean[ch] * scale;
        let (scale, shift) = (T::from_f64(scale), T::from_f64(shift));
        match relu_slope {
            None => {
                for (o, &v) in out.iter_mut().zip(xs) {
                    *o = v * scale + shift;
                }
            }
            Some(slope) => {
                let (zero, one, slope) = (T::zero(), T::one(), T::from_f64(slope));
                for (o, &v) in out.iter_mut().zip(xs) {
                    let t = v * scale + shift;
                    *o = t * if t > zero { one } else { slope };
                }
            }
        }
    });
    (y, Stats { mean, var, inv_std, count })
}

/// Gradients of x, weight and bias from the output gradient `g`.
fn backward<T: WithDType>(g: &[T], x: &[T], w: &[T], d: Dims, st: &Stats, sync: bool) -> (Vec<T>, Vec<T>, Vec<T>) {
    // Per channel: sum(g) (the bias gradient) and sum(g * (x - mean)).
    let sums = d.channel_sums(g, x, |ch, g, x| {
        let m = st.mean[ch];
        g.iter().zip(x).fold((0.0, 0.0), |(s, sx), (g, x)| {
            let g = g.to_f64();
            (s + g, sx + g * (x.to_f64() - m))
        })
    });
    // The input gradient's sums are over every process's values when synchronised.
    let all: Vec<f64> = combine(sums.iter().flat_map(|s| [s.0, s.1]).collect(), sync);
    let count = st.count;
    // dx = w * is * (g - sum(g) / M - (x - mean) * is^2 * sum(g * (x - mean)) / M), as
    // g * k1 + x * k2 + k0 per channel.
    let dx = d.map_planes(g, x, |ch, g, x, out| {
        let (is, m, (sg, sgx)) = (st.inv_std[ch], st.mean[ch], (all[2 * ch], all[2 * ch + 1]));
        let k1 = w[ch].to_f64() * is;
        let k2 = -k1 * is * is * sgx / count;
        let k0 = -k1 * sg / count - m * k2;
        let (k1, k2, k0) = (T::from_f64(k1), T::from_f64(k2), T::from_f64(k0));
        for ((o, &g), &x) in out.iter_mut().zip(g).zip(x) {
            *o = g * k1 + x * k2 + k0;
        }
    });
    let dw = sums.iter().zip(&st.inv_std).map(|(s, is)| T::from_f64(s.1 * is)).collect();
    let db = sums.iter().map(|s| T::from_f64(s.0)).collect();
    (dx, dw, db)
}

impl CustomOp3 for Fused {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sw: &CpuStorage, lw: &Layout, sb: &CpuStorage, lb: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = Dims::of(lx.shape());
        if lw.shape().elem_count() != d.c || lb.shape().elem_count() != d.c {
            candle_core::bail!("gannet-batch-norm: {} channels but weight {:?} and bias {:?}", d.c, lw.shape(), lb.shape())
        }
        let (y, stats) = match sx {
            CpuStorage::F32(_) => {
                let (y, st) =
                    forward::<f32>(cpu_slice(sx, lx, NAME)?, cpu_slice(sw, lw, NAME)?, cpu_slice(sb, lb, NAME)?, d, self.eps, self.relu_slope, self.sync);
                (CpuStorage::F32(y), st)
            }
            CpuStorage::F64(_) => {
                let (y, st) =
                    forward::<f64>(cpu_slice(sx, lx, NAME)?, cpu_slice(sw, lw, NAME)?, cpu_slice(sb, lb, NAME)?, d, self.eps, self.relu_slope, self.sync);
                (CpuStorage::F64(y), st)
            }
            _ => candle_core::bail!("gannet-batch-norm: only f32 and f64 are supported"),
        };
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = stats;
        Ok((y, lx.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Through the activation first: the output is positive exactly where its input is.
        let grad = match self.relu_slope {
            Some(slope) => super::leaky_relu::backward(y, grad, slope)?,
            None => grad.contiguous()?,
        };
        let (d, dev) = (Dims::of(x.shape()), x.device());
        let st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let (gs, gl) = grad.storage_and_layout();
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (Storage::Cpu(gs), Storage::Cpu(xs), Storage::Cpu(ws)) = (&*gs, &*xs, &*ws) else { candle_core::bail!("gannet-batch-norm: CPU tensors only") };
        fn wrap<T: candle_core::WithDType>(
            v: (Vec<T>, Vec<T>, Vec<T>),
            shape: &Shape,
            dev: &candle_core::Device,
        ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
            let c = v.1.len();
            Ok((Some(Tensor::from_vec(v.0, shape, dev)?), Some(Tensor::from_vec(v.1, c, dev)?), Some(Tensor::from_vec(v.2, c, dev)?)))
        }
        match x.dtype() {
            DType::F32 => {
                wrap(backward::<f32>(cpu_slice(gs, gl, NAME)?, cpu_slice(xs, xl, NAME)?, cpu_slice(ws, wl, NAME)?, d, &st, self.sync), x.shape(), dev)
            }
            DType::F64 => {
                wrap(backward::<f64>(cpu_slice(gs, gl, NAME)?, cpu_slice(xs, xl, NAME)?, cpu_slice(ws, wl, NAME)?, d, &st, self.sync), x.shape(), dev)
            }
            dt => candle_core::bail!("gannet-batch-norm: {dt:?} is not supported"),
        }
    }
}
