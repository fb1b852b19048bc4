//! Forward-only pooling and resizing with PyTorch's exact semantics, for the FID network.
//!
//! On the CPU (f32) each pool is one parallel pass whose windows never read the padding. Elsewhere
//! candle's pools, which have no padding, run on a padded copy: -inf for max pools (so a pad
//! never wins), zeros plus a per-position divisor for `count_include_pad=False` average pools
//! (PyTorch divides by the number of real pixels under the window).

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolKind {
    Max,
    /// The mean over the window's pixels inside the image (`count_include_pad=False`).
    AvgExcludePad,
}

/// A square pooling window: padding is never read, which is what both PyTorch pools amount to
/// (a max pool pads with -inf, this average pool leaves pads out of the count).
#[derive(Debug, Clone, Copy)]
struct Pool {
    kind: PoolKind,
    k: usize,
    stride: usize,
    padding: usize,
}

impl Pool {
    /// Output length over `len` pixels (floor mode), None when the window does not fit.
    fn out(&self, len: usize) -> Option<usize> {
        if self.stride == 0 || self.padding >= self.k {
            return None;
        }
        (len + 2 * self.padding).checked_sub(self.k).map(|r| r / self.stride + 1)
    }

    /// The input range under window `o` along one axis of `len` pixels.
    fn window(&self, o: usize, len: usize) -> std::ops::Range<usize> {
        let start = (o * self.stride).saturating_sub(self.padding);
        start..(o * self.stride + self.k - self.padding).min(len)
    }

    /// One image plane [h, w] into `out` [oh, ow].
    fn plane(&self, x: &[f32], (h, w): (usize, usize), out: &mut [f32], ow: usize) {
        for (oh, row) in out.chunks_mut(ow).enumerate() {
            let rows = self.window(oh, h);
            for (oc, o) in row.iter_mut().enumerate() {
                let cols = self.window(oc, w);
                let taps = rows.clone().flat_map(|r| &x[r * w + cols.start..r * w + cols.end]);
                *o = match self.kind {
                    PoolKind::Max => taps.fold(f32::NEG_INFINITY, |m, &v| m.max(v)),
                    PoolKind::AvgExcludePad => taps.sum::<f32>() / (rows.len() * cols.len()) as f32,
                };
            }
        }
    }
}

impl CustomOp1 for Pool {
    fn name(&self) -> &'static str {
        "gannet-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let (Some(oh), Some(ow)) = (self.out(h), self.out(w)) else { candle_core::bail!("{}: window {} does not fit {h}x{w}", self.name(), self.k) };
        let x = crate::ops::cpu_slice::<f32>(s, l, self.name())?;
        let mut y = vec![0f32; n * c * oh * ow];
        y.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w)).for_each(|(o, p)| self.plane(p, (h, w), o, ow));
        Ok((CpuStorage::F32(y), (n, c, oh, ow).into()))
    }
}

/// The pool on the CPU in one parallel pass over f32 images (no padded copy); None where the
/// portable path below must run (other devices or dtypes). Forward only: the FID network is
/// never differentiated.
fn pool_cpu(x: &Tensor, pool: Pool) -> crate::Result<Option<Tensor>> {
    if !(x.device().is_cpu() && x.dtype() == DType::F32) {
        return Ok(None);
    }
    let (_, _, h, w) = x.dims4()?;
    if pool.out(h).is_none() || pool.out(w).is_none() {
        return Err(crate::Error::Msg(format!("pool: a {}x{} window (padding {}) does not fit a {h}x{w} image", pool.k, pool.k, pool.padding)));
    }
    Ok(Some(x.detach().contiguous()?.apply_op1_no_bwd(&pool)?))
}

/// Pads the last two dims of an NCHW tensor by `p` on every side with `value`.
fn pad_const(x: &Tensor, p: usize, value: f32) -> crate::Result<Tensor> {
    if p == 0 {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let side = Tensor::full(value, (n, c, h, p), x.device())?.to_dtype(x.dtype())?;
    let x = Tensor::cat(&[&side, x, &side], 3)?;
    let top = Tensor::full(value, (n, c, p, w + 2 * p), x.device())?.to_dtype(x.dtype())?;
    Ok(Tensor::cat(&[&top, &x, &top], 2)?)
}

/// `F.max_pool2d(x, k, stride, padding)` (floor mode).
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize, padding: usize) -> crate::Result<Tensor> {
    if let Some(y) = pool_cpu(x, Pool { kind: PoolKind::Max, k, stride, padding })? {
        return Ok(y);
    }
    let x = pad_const(x, padding, f32::NEG_INFINITY)?;
    Ok(x.max_pool2d_with_stride(k, stride)?)
}

/// `F.avg_pool2d(x, k, stride, padding, count_include_pad=False)` (floor mode).
pub fn avg_pool2d_exclude_pad(x: &Tensor, k: usize, stride: usize, padding: usize) -> crate::Result<Tensor> {
    if let Some(y) = pool_cpu(x, Pool { kind: PoolKind::AvgExcludePad, k, stride, padding })? {
        return Ok(y);
    }
    let (_, _, h, w) = x.dims4()?;
    let avg = pad_const(x, padding, 0.0)?.avg_pool2d_with_stride(k, stride)?;
    if padding == 0 {
        return Ok(avg);
    }
    let (_, _, oh, ow) = avg.dims4()?;
    // candle divided by k*k; rescale each output by k*k / (real pixels in its window).
    let rows = window_counts(h, oh, k, stride, padding);
    let cols = window_counts(w, ow, k, stride, padding);
    let scale: Vec<f32> = rows.iter().flat_map(|&r| cols.iter().map(move |&c| (k * k) as f32 / (r * c) as f32)).collect();
    let scale = Tensor::from_vec(scale, (1, 1, oh, ow), x.device())?.to_dtype(x.dtype())?;
    Ok(avg.broadcast_mul(&scale)?)
}

/// For each output index along one axis: how many input positions its window covers.
fn window_counts(len: usize, out: usize, k: usize, stride: usize, padding: usize) -> Vec<usize> {
    (0..out)
        .map(|o| {
            let start = (o * stride) as isize - padding as isize;
            let end = start + k as isize;
            (end.min(len as isize) - start.max(0)) as usize
        })
        .collect()
}

/// Interpolation matrix [out, len] of 1-D linear resampling with `align_corners=False`
/// (PyTorch: src = (dst + 0.5) * len/out - 0.5, clamped at 0; no antialiasing).
fn linear_weights(len: usize, out: usize) -> Vec<f32> {
    let scale = len as f32 / out as f32;
    let mut m = vec![0f32; out * len];
    for o in 0..out {
        let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(len - 1);
        let i1 = (i0 + 1).min(len - 1);
        let l1 = src - i0 as f32;
        m[o * len + i0] += 1.0 - l1;
        m[o * len + i1] += l1;
    }
    m
}

/// `F.interpolate(x, size=(oh, ow), mode='bilinear', align_corners=False)` on NCHW, done as two
/// separable matrix products (rows then columns).
pub fn resize_bilinear(x: &Tensor, oh: usize, ow: usize) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if (h, w) == (oh, ow) {
        return Ok(x.clone());
    }
    let dev: &Device = x.device();
    let ry = Tensor::from_vec(linear_weights(h, oh), (oh, h), dev)?.to_dtype(x.dtype())?;
    let rxt = Tensor::from_vec(linear_weights(w, ow), (ow, w), dev)?.to_dtype(x.dtype())?.t()?;
    let x = x.reshape((n * c, h, w))?;
    let x = x.broadcast_matmul(&rxt.contiguous()?)?; // [nc, h, ow]
    let x = ry.broadcast_matmul(&x)?; // [nc, oh, ow]
    Ok(x.reshape((n, c, oh, ow))?)
}

/// Whether `x` is a float tensor the network can consume.
pub(crate) fn is_float(x: &Tensor) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}
