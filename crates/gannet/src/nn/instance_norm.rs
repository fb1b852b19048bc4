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
        self.forward_act(x, None)
    }

    /// The normalisation followed by the (leaky) ReLU of `relu_slope` (`Some(0.0)`: ReLU), fused
    /// into one pass when there is no affine step between them.
    pub fn forward_act(&self, x: &Tensor, relu_slope: Option<f64>) -> crate::Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        if c != self.channels || h * w < 2 {
            return Err(crate::Error::Msg(format!(
                "InstanceNorm over {} channels got input of shape {:?} (needs more than one pixel)",
                self.channels,
                x.dims()
            )));
        }
        let Some((wt, b)) = &self.affine else {
            return ops::batch_norm::instance(x, self.eps, relu_slope);
        };
        let y = ops::per_channel::affine(&ops::batch_norm::instance(x, self.eps, None)?, Some(&live(wt)), Some(&live(b)))?;
        Ok(match relu_slope {
            Some(slope) => ops::leaky_relu(&y, slope)?,
            None => y,
        })
    }
}
