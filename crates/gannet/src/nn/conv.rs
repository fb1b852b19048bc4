use super::{live, Init, ParamPath};
use crate::ops::{self, ConvSpec};
use candle_core::{Tensor, Var};

/// 2-D convolution with a square kernel; weight [out, in, k, k].
pub struct Conv2d {
    weight: Var,
    bias: Option<Var>,
    spec: ConvSpec,
}

impl Conv2d {
    pub fn new(p: &ParamPath, in_ch: usize, out_ch: usize, kernel: usize, spec: ConvSpec, init: Init, bias: bool) -> crate::Result<Self> {
        let (weight, bias) = weight_and_bias(p, [out_ch, in_ch, kernel, kernel], out_ch, init, bias)?;
        Ok(Self { weight, bias, spec })
    }

    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let y = ops::conv2d(x, &live(&self.weight), self.spec)?;
        add_channel_bias(y, self.bias.as_ref())
    }

    /// The weight, [out, in, k, k] (see [`live`]).
    pub fn weight(&self) -> Tensor {
        live(&self.weight)
    }

    /// The convolution with `weight` in place of the stored one (e.g. spectrally normalised).
    pub fn forward_with(&self, x: &Tensor, weight: &Tensor) -> crate::Result<Tensor> {
        let y = ops::conv2d(x, weight, self.spec)?;
        add_channel_bias(y, self.bias.as_ref())
    }
}

/// Transposed 2-D convolution; weight [in, out, k, k] (PyTorch layout).
pub struct ConvTranspose2d {
    weight: Var,
    bias: Option<Var>,
    spec: ConvSpec,
}

impl ConvTranspose2d {
    pub fn new(p: &ParamPath, in_ch: usize, out_ch: usize, kernel: usize, spec: ConvSpec, init: Init, bias: bool) -> crate::Result<Self> {
        let (weight, bias) = weight_and_bias(p, [in_ch, out_ch, kernel, kernel], out_ch, init, bias)?;
        Ok(Self { weight, bias, spec })
    }

    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let y = ops::conv_transpose2d(x, &live(&self.weight), self.spec)?;
        add_channel_bias(y, self.bias.as_ref())
    }
}

fn add_channel_bias(y: Tensor, bias: Option<&Var>) -> crate::Result<Tensor> {
    Ok(match bias {
        Some(b) => ops::per_channel::add(&y, &live(b))?,
        None => y,
    })
}

/// A conv weight of `shape` and, if asked for, a zero-initialised bias per output channel.
fn weight_and_bias(p: &ParamPath, shape: [usize; 4], out_ch: usize, init: Init, bias: bool) -> crate::Result<(Var, Option<Var>)> {
    let weight = p.param("weight", &shape, init)?;
    let bias = if bias { Some(p.param("bias", &[out_ch], Init::Const(0.0))?) } else { None };
    Ok((weight, bias))
}
