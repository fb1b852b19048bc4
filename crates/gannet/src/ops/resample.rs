//! Nearest-neighbour x2 upsampling and 2x2 average pooling, the resampling of ResNet GAN blocks.
//!
//! On the CPU both are custom ops over contiguous image planes: `upsample2x` copies each pixel to
//! a 2x2 square, `sum_pool2x` adds each 2x2 square (in a fixed order, so results are
//! reproducible). They are each other's adjoints, so each one's backward pass is the other one:
//! gradients of any order (R1, WGAN-GP through a ResNet D) flow through them. On other devices
//! the same functions are built from reshape, broadcast and sum.
//!
//! Why not candle's own: `upsample_nearest2d`'s backward pass *assigns* the input's gradient
//! instead of adding to it, so gradient is lost when the input also feeds another layer (as in a
//! residual block; checked in `tests/second_order/resnet.rs`). The reshape/sum versions are exact but slow on
//! the CPU (strided reductions): measured at [64, 32, 28, 28] on 2 busy cores, the 2x2 average
//! pool took 118 ms forward versus 5 ms for candle's `avg_pool2d`.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType, D};
use rayon::prelude::*;

fn up_kernel<T: WithDType>(x: &[T], h: usize, w: usize) -> Vec<T> {
    let mut out = vec![T::zero(); x.len() * 4];
    out.par_chunks_mut(4 * h * w).zip(x.par_chunks(h * w)).for_each(|(o, p)| {
        for i in 0..h {
            let src = &p[i * w..][..w];
            let row = &mut o[2 * i * 2 * w..][..2 * w];
            for (j, &v) in src.iter().enumerate() {
                row[2 * j] = v;
                row[2 * j + 1] = v;
            }
            o.copy_within(2 * i * 2 * w..(2 * i + 1) * 2 * w, (2 * i + 1) * 2 * w);
        }
    });
    out
}

fn pool_kernel<T: WithDType>(x: &[T], h: usize, w: usize) -> Vec<T> {
    let (h2, w2) = (h / 2, w / 2);
    let mut out = vec![T::zero(); x.len() / 4];
    out.par_chunks_mut(h2 * w2).zip(x.par_chunks(h * w)).for_each(|(o, p)| {
        for i in 0..h2 {
            let (r0, r1) = (&p[2 * i * w..][..w], &p[(2 * i + 1) * w..][..w]);
            for (j, d) in o[i * w2..][..w2].iter_mut().enumerate() {
                let mut s = r0[2 * j];
                s += r0[2 * j + 1];
                s += r1[2 * j];
                s += r1[2 * j + 1];
                *d = s;
            }
        }
    });
    out
}

/// The CPU kernels: `Up` maps [N, C, H, W] to [N, C, 2H, 2W], `Pool` the other way with sums.
#[derive(Clone, Copy)]
enum Resample {
    Up,
    Pool,
}

impl CustomOp1 for Resample {
    fn name(&self) -> &'static str {
        match self {
            Resample::Up => "gannet-upsample2x",
            Resample::Pool => "gannet-sum-pool2x",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("{}: input must be contiguous", self.name()) };
        let out: Shape = match self {
            Resample::Up => (n, c, 2 * h, 2 * w).into(),
            Resample::Pool => (n, c, h / 2, w / 2).into(),
        };
        let st = match (self, s) {
            (Resample::Up, CpuStorage::F32(v)) => CpuStorage::F32(up_kernel(&v[a..b], h, w)),
            (Resample::Up, CpuStorage::F64(v)) => CpuStorage::F64(up_kernel(&v[a..b], h, w)),
            (Resample::Pool, CpuStorage::F32(v)) => CpuStorage::F32(pool_kernel(&v[a..b], h, w)),
            (Resample::Pool, CpuStorage::F64(v)) => CpuStorage::F64(pool_kernel(&v[a..b], h, w)),
            _ => candle_core::bail!("{}: only f32 and f64 are supported", self.name()),
        };
        Ok((st, out))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = match self {
            Resample::Up => sum_pool2x(grad),
            Resample::Pool => upsample2x(grad),
        };
        g.map(Some).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
}

/// [N, C, H, W] -> [N, C, 2H, 2W], every pixel repeated in a 2x2 square.
pub fn upsample2x(x: &Tensor) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if super::cpu_float(x) {
        return Ok(x.contiguous()?.apply_op1(Resample::Up)?);
    }
    Ok(x.reshape((n, c, h, 1, w, 1))?.broadcast_as((n, c, h, 2, w, 2))?.contiguous()?.reshape((n, c, 2 * h, 2 * w))?)
}

/// [N, C, H, W] -> [N, C, H/2, W/2], the sum of each 2x2 square (H and W even); the adjoint of
/// [`upsample2x`].
pub fn sum_pool2x(x: &Tensor) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if h % 2 != 0 || w % 2 != 0 {
        return Err(crate::Error::Msg(format!("2x2 pooling needs even sizes, got {h}x{w}")));
    }
    if super::cpu_float(x) {
        return Ok(x.contiguous()?.apply_op1(Resample::Pool)?);
    }
    Ok(x.contiguous()?.reshape((n, c, h / 2, 2, w / 2, 2))?.sum(D::Minus1)?.sum(3)?)
}

/// [N, C, H, W] -> [N, C, H/2, W/2], the mean of each 2x2 square (H and W even).
pub fn avg_pool2x(x: &Tensor) -> crate::Result<Tensor> {
    Ok((sum_pool2x(x)? * 0.25)?)
}
