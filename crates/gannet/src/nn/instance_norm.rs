//! Instance normalisation (Ulyanov et al. 2016): every image's every channel is normalised by its
//! own spatial mean and biased variance, the same in training and evaluation (no running
//! statistics), which is what pix2pix and CycleGAN use so that one image's style does not leak
//! into another's through batch statistics. An optional per-channel scale and shift follows
//! (CycleGAN's default has none).

use super::{live, Init, ParamPath};
use crate::ops;
use candle_core::{Tensor, Var};

pub struct InstanceNorm {
    affine: Option<(Var, Var)>,
    channels: usize,
    eps: f64,
}

impl InstanceNorm {
    /// `affine`: learn a scale (init 1) and shift (init 0) per channel.
    pub fn new(p: &ParamPath, channels: usize, affine: bool) -> crate::Result<Self> {
        let affine = if affine { Some((p.param("weight", &[channels], Init::Const(1.0))?, p.param("bias", &[channels], Init::Const(0.0))?)) } else { None };
        Ok(Self { affine, channels, eps: 1e-5 })
    }

    /// x [N, C, H, W] with H*W > 1 -> the same shape.
    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        if c != self.channels || h * w < 2 {
            return Err(crate::Error::Msg(format!(
                "InstanceNorm over {} channels got input of shape {:?} (needs more than one pixel)",
                self.channels,
                x.dims()
            )));
        }
        let flat = x.reshape((n, c, h * w))?;
        let mean = flat.mean_keepdim(2)?;
        let centred = flat.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(2)?;
        let y = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?.reshape((n, c, h, w))?;
        Ok(match &self.affine {
            Some((wt, b)) => ops::per_channel::affine(&y, Some(&live(wt)), Some(&live(b)))?,
            None => y,
        })
    }
}
