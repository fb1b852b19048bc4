//! Batch normalisation with explicit train/eval behaviour.
//!
//! Train: normalise with the batch's mean and biased variance, and move the running statistics
//! towards the batch's (momentum, unbiased variance, as PyTorch). Eval: normalise with the running
//! statistics. Works on [N, C] and [N, C, H, W].

use super::{Init, Mode, ParamPath};
use candle_core::{Tensor, Var, D};

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

    /// Shape that broadcasts a per-channel vector against `x`.
    fn channel_shape(&self, x: &Tensor) -> Vec<usize> {
        let mut s = vec![1; x.rank()];
        s[1] = self.channels;
        s
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        if x.rank() < 2 || x.dim(1)? != self.channels {
            return Err(crate::Error::Msg(format!(
                "BatchNorm over {} channels got input of shape {:?}",
                self.channels,
                x.dims()
            )));
        }
        let cs = self.channel_shape(x);
        let (mean, var) = match mode {
            Mode::Train => self.batch_stats(x)?,
            Mode::Eval => (
                self.running_mean.as_tensor().reshape(cs.as_slice())?,
                self.running_var.as_tensor().reshape(cs.as_slice())?,
            ),
        };
        let xhat = x.broadcast_sub(&mean)?.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        let w = self.weight.as_tensor().reshape(cs.as_slice())?;
        let b = self.bias.as_tensor().reshape(cs.as_slice())?;
        Ok(xhat.broadcast_mul(&w)?.broadcast_add(&b)?)
    }

    /// Batch mean and biased variance with shape [1, C, 1, ...]; updates running stats.
    fn batch_stats(&self, x: &Tensor) -> crate::Result<(Tensor, Tensor)> {
        // Move channels first and flatten the rest: [C, N*H*W].
        let c = self.channels;
        let flat = x.transpose(0, 1)?.contiguous()?.reshape((c, ()))?;
        let n = flat.dim(1)?;
        if n < 2 {
            return Err(crate::Error::Msg("BatchNorm in train mode needs more than one value per channel".into()));
        }
        let mean = flat.mean_keepdim(D::Minus1)?;
        let var = flat.broadcast_sub(&mean)?.sqr()?.mean_keepdim(D::Minus1)?;
        self.update_running(&mean.flatten_all()?.detach(), &var.flatten_all()?.detach(), n)?;
        let cs = self.channel_shape(x);
        Ok((mean.reshape(cs.as_slice())?, var.reshape(cs.as_slice())?))
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
