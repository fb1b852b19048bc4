//! Per-channel arithmetic on `[N, C, ...]` tensors (biases, normalisation, modulation) laid out
//! so that its backward pass is fast.
//!
//! `x.broadcast_add(b.reshape((1, C, 1, 1)))` is the obvious way to add a bias, but the gradient of
//! `b` is then a sum over dims (0, 2, 3), which candle's CPU backend does one element at a time with
//! an index division each (14-19% of a DCGAN train step in `perf`). Here the per-channel vector is
//! first spread to one value per (sample, channel) row, a tiny `[N * C, 1]` tensor, and `x` is
//! viewed as `[N * C, H * W]`: the broadcast then runs over the trailing contiguous dimension, whose
//! reduction candle vectorises. Everything is built from candle ops, so second-order gradients
//! still flow.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType, D};
use rayon::prelude::*;

/// `v` as one value per (sample, channel) row of `x`: `[N * C, 1]`. `v` is per channel (`[C]`)
/// or per sample and channel (`[N, C]`).
fn rows(v: &Tensor, n: usize, c: usize) -> crate::Result<Tensor> {
    let per_sample = match v.rank() {
        1 => v.unsqueeze(0)?.broadcast_as((n, c))?.contiguous()?,
        _ => v.reshape((n, c))?,
    };
    Ok(per_sample.reshape((n * c, 1))?)
}

fn n_c(x: &Tensor) -> crate::Result<(usize, usize)> {
    if x.rank() < 2 {
        return Err(crate::Error::Msg(format!("per-channel op needs [N, C, ...], got {:?}", x.dims())));
    }
    Ok((x.dim(0)?, x.dim(1)?))
}

/// `x * scale + shift` per channel; either may be left out. `scale` and `shift` are `[C]` or
/// `[N, C]`.
pub fn affine(x: &Tensor, scale: Option<&Tensor>, shift: Option<&Tensor>) -> crate::Result<Tensor> {
    let (n, c) = n_c(x)?;
    let mut y = x.reshape((n * c, ()))?;
    if let Some(s) = scale {
        y = y.broadcast_mul(&rows(s, n, c)?)?;
    }
    if let Some(t) = shift {
        y = y.broadcast_add(&rows(t, n, c)?)?;
    }
    Ok(y.reshape(x.shape())?)
}

/// `x + shift` per channel (a bias).
pub fn add(x: &Tensor, shift: &Tensor) -> crate::Result<Tensor> {
    affine(x, None, Some(shift))
}

/// `x * scale` per channel.
pub fn mul(x: &Tensor, scale: &Tensor) -> crate::Result<Tensor> {
    affine(x, Some(scale), None)
}

/// Sum of each (sample, channel) plane: `[N, C]`.
pub fn plane_sums(x: &Tensor) -> crate::Result<Tensor> {
    let (n, c) = n_c(x)?;
    Ok(x.reshape((n, c, ()))?.sum(D::Minus1)?)
}

/// Per-channel mean over the batch and all positions: `[C]`.
pub fn mean(x: &Tensor) -> crate::Result<Tensor> {
    let count = (x.elem_count() / n_c(x)?.1) as f64;
    Ok((plane_sums(x)?.sum(0)? / count)?)
}

/// `leaky_relu(x * scale + shift, slope)` per channel (`scale`, `shift`: `[C]`): batch
/// normalisation with fixed statistics and its activation, as one pass on the CPU. The backward
/// pass is built from candle ops and the tracked mask kernel, so it is differentiable again.
pub fn affine_relu(x: &Tensor, scale: &Tensor, shift: &Tensor, slope: f64) -> crate::Result<Tensor> {
    let fast = super::cpu_float(x) && scale.dtype() == x.dtype() && scale.rank() == 1;
    if !fast {
        return super::leaky_relu(&affine(x, Some(scale), Some(shift))?, slope);
    }
    n_c(x)?;
    Ok(x.contiguous()?.apply_op3(&scale.contiguous()?, &shift.contiguous()?, AffineRelu(slope))?)
}

struct AffineRelu(f64);

fn affine_relu_kernel<T: WithDType>(x: &[T], scale: &[T], shift: &[T], hw: usize, slope: f64) -> Vec<T> {
    let c = scale.len();
    let (zero, one, slope) = (T::zero(), T::one(), T::from_f64(slope));
    let mut out = vec![zero; x.len()];
    out.par_chunks_mut(hw).zip(x.par_chunks(hw)).enumerate().for_each(|(p, (o, x))| {
        let (s, t) = (scale[p % c], shift[p % c]);
        for (o, &v) in o.iter_mut().zip(x) {
            let y = v * s + t;
            *o = y * if y > zero { one } else { slope };
        }
    });
    out
}

impl CustomOp3 for AffineRelu {
    fn name(&self) -> &'static str {
        "gannet-affine-relu"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, ss: &CpuStorage, ls: &Layout, st: &CpuStorage, lt: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = lx.shape().dims();
        let (c, hw) = (dims[1], dims[2..].iter().product::<usize>());
        if ls.shape().elem_count() != c || lt.shape().elem_count() != c {
            candle_core::bail!("{}: {c} channels but scale {:?} and shift {:?}", self.name(), ls.shape(), lt.shape())
        }
        let out = match sx {
            CpuStorage::F32(_) => CpuStorage::F32(affine_relu_kernel::<f32>(
                super::cpu_slice(sx, lx, self.name())?,
                super::cpu_slice(ss, ls, self.name())?,
                super::cpu_slice(st, lt, self.name())?,
                hw,
                self.0,
            )),
            CpuStorage::F64(_) => CpuStorage::F64(affine_relu_kernel::<f64>(
                super::cpu_slice(sx, lx, self.name())?,
                super::cpu_slice(ss, ls, self.name())?,
                super::cpu_slice(st, lt, self.name())?,
                hw,
                self.0,
            )),
            _ => candle_core::bail!("{}: only f32 and f64 are supported", self.name()),
        };
        Ok((out, lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        _shift: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let e = |e: crate::Error| candle_core::Error::Msg(e.to_string());
        // Through the activation (its output is positive exactly where its input is), then the
        // affine map, all tracked ops.
        let g = super::leaky_relu::backward(y, grad, self.0)?;
        let dx = mul(&g, scale).map_err(e)?;
        let dscale = plane_sums(&(&g * x)?).map_err(e)?.sum(0)?;
        let dshift = plane_sums(&g).map_err(e)?.sum(0)?;
        Ok((Some(dx), Some(dscale), Some(dshift)))
    }
}
