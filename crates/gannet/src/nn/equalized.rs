//! Equalised learning rate (Karras et al. 2018, "Progressive Growing of GANs"): weights are stored
//! as N(0, 1) draws and multiplied by He's constant `1/sqrt(fan_in)` at run time instead of at
//! initialisation. Adam's update is invariant to the scale of a gradient, so storing the weights
//! unscaled makes every layer learn at the same speed whatever its fan-in. StyleGAN's mapping
//! network also slows its layers down by `lr_mult` (weights stored as N(0, 1/lr_mult^2), scaled by
//! `lr_mult/sqrt(fan_in)`).

use super::{Init, ParamPath};
use crate::ops::{self, ConvSpec};
use candle_core::{Tensor, Var};

/// `y = x (s W)^T + lr_mult b` with `s = lr_mult / sqrt(in)`; W [out, in].
pub struct EqLinear {
    weight: Var,
    bias: Option<Var>,
    weight_scale: f64,
    lr_mult: f64,
}

impl EqLinear {
    /// `bias_init` is the bias's effective starting value (StyleGAN's affine layers start at 1).
    pub fn new(p: &ParamPath, din: usize, dout: usize, bias_init: Option<f32>, lr_mult: f64) -> crate::Result<Self> {
        let weight = p.param("weight", &[dout, din], Init::Normal { mean: 0.0, std: (1.0 / lr_mult) as f32 })?;
        let bias = bias_init.map(|b| p.param("bias", &[dout], Init::Const(b / lr_mult as f32))).transpose()?;
        Ok(Self { weight, bias, weight_scale: lr_mult / (din as f64).sqrt(), lr_mult })
    }

    /// The weight as the layer uses it, [out, in].
    pub fn weight(&self) -> crate::Result<Tensor> {
        Ok((self.weight.as_tensor() * self.weight_scale)?)
    }

    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let y = x.matmul(&self.weight()?.t()?)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&(b.as_tensor() * self.lr_mult)?)?,
            None => y,
        })
    }
}

/// A square-kernel convolution with the weight [out, in, k, k] scaled by `1/sqrt(in*k*k)`.
pub struct EqConv2d {
    weight: Var,
    bias: Option<Var>,
    scale: f64,
    spec: ConvSpec,
}

impl EqConv2d {
    /// A `k x k` convolution with "same" padding (k odd), stride 1.
    pub fn new(p: &ParamPath, cin: usize, cout: usize, k: usize, bias: bool) -> crate::Result<Self> {
        let weight = p.param("weight", &[cout, cin, k, k], Init::Normal { mean: 0.0, std: 1.0 })?;
        let bias = if bias { Some(p.param("bias", &[cout], Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, scale: 1.0 / ((cin * k * k) as f64).sqrt(), spec: ConvSpec::new(1, k / 2) })
    }

    /// The weight as the layer uses it.
    pub fn weight(&self) -> crate::Result<Tensor> {
        Ok((self.weight.as_tensor() * self.scale)?)
    }

    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let y = ops::conv2d(x, &self.weight()?, self.spec)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&b.as_tensor().reshape((1, (), 1, 1))?)?,
            None => y,
        })
    }
}

/// Leaky ReLU (slope 0.2) times sqrt(2), the gain that keeps activations' magnitude through a
/// layer of equalised weights (StyleGAN's `lrelu` with its default gain).
pub fn lrelu_gain(x: &Tensor) -> crate::Result<Tensor> {
    Ok((x.maximum(&(x * 0.2)?)? * std::f64::consts::SQRT_2)?)
}
