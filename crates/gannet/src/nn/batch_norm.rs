//! Batch normalisation with explicit train/eval behaviour.
//!
//! Train: normalise with the batch's mean and biased variance, and move the running statistics
//! towards the batch's (momentum, unbiased variance, as PyTorch). Eval: normalise with the running
//! statistics. Works on [N, C] and [N, C, H, W].

use super::{live, Init, Mode, ParamPath};
use crate::ops::{self, per_channel};
use candle_core::{Tensor, Var};

pub struct BatchNorm {
    weight: Var,
    bias: Var,
    running_mean: Var,
    running_var: Var,
    channels: usize,
    eps: f64,
    momentum: f64,
}

impl BatchNorm {
    pub fn new(p: &ParamPath, channels: usize, weight_init: Init) -> crate::Result<Self> {
        Ok(Self {
            weight: p.param("weight", &[channels], weight_init)?,
            bias: p.param("bias", &[channels], Init::Const(0.0))?,
            running_mean: p.buffer("running_mean", &[channels], Init::Const(0.0))?,
            running_var: p.buffer("running_var", &[channels], Init::Const(1.0))?,
            channels,
            eps: 1e-5,
            momentum: 0.1,
        })
    }

    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        self.forward_act(x, mode, None)
    }

    /// [`BatchNorm::forward`] followed by a (leaky) ReLU of slope `relu_slope` (`Some(0.0)`: ReLU),
    /// fused into the normalisation's kernels in training.
    pub fn forward_act(&self, x: &Tensor, mode: Mode, relu_slope: Option<f64>) -> crate::Result<Tensor> {
        if x.rank() < 2 || x.dim(1)? != self.channels {
            return Err(crate::Error::Msg(format!("BatchNorm over {} channels got input of shape {:?}", self.channels, x.dims())));
        }
        let inv_std = |var: &Tensor| (var + self.eps)?.sqrt()?.recip();
        let (w, b) = (&live(&self.weight), &live(&self.bias));
        match mode {
            Mode::Train => {
                // Values per channel the statistics are over: all processes' when synchronised.
                let mut per_channel = x.elem_count() / self.channels;
                if crate::parallel::sync_batch_norm() {
                    per_channel *= crate::parallel::world().size();
                }
                if per_channel < 2 {
                    return Err(crate::Error::Msg("BatchNorm in train mode needs more than one value per channel".into()));
                }
                let out = ops::batch_norm::train(x, w, b, self.eps, relu_slope)?;
                self.update_running(&out.mean, &out.var, per_channel)?;
                Ok(out.y)
            }
            // x * scale + (b - mean * scale): one pass over x, as PyTorch's CPU kernel does.
            Mode::Eval => {
                let scale = (inv_std(self.running_var.as_tensor())? * w)?;
                let shift = (b - (self.running_mean.as_tensor() * &scale)?)?;
                match relu_slope {
                    Some(slope) => per_channel::affine_relu(x, &scale, &shift, slope),
                    None => per_channel::affine(x, Some(&scale), Some(&shift)),
                }
            }
        }
    }

    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> crate::Result<()> {
        let m = self.momentum;
        let unbiased = (var * (n as f64 / (n as f64 - 1.0)))?;
        let rm = ((self.running_mean.as_tensor() * (1.0 - m))? + (mean * m)?)?;
        let rv = ((self.running_var.as_tensor() * (1.0 - m))? + (unbiased * m)?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)?;
        Ok(())
    }
}
