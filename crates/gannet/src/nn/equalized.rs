//! Equalised-learning-rate layers (Karras et al. 2018, "Progressive Growing of GANs", 4.1).
//!
//! The stored weights are drawn from N(0, 1) (divided by `lr_mul`, see below) and scaled at run
//! time by `c = gain / sqrt(fan_in)` (He's constant). The forward pass is the same as a layer
//! initialised with He's init, but Adam's update, which is invariant to the scale of a
//! parameter's gradient, now moves every layer's *effective* weights at the same relative speed:
//! with ordinary init a layer with a large fan-in learns more slowly than one with a small fan-in.
//!
//! `lr_mul` (StyleGAN's mapping network uses 0.01) slows a layer down further: the stored weight
//! is N(0, 1/lr_mul) and both weight and bias are multiplied by `lr_mul` at run time, so the
//! initial function is unchanged while the effective learning rate is `lr * lr_mul`.
//!
//! Biases start at `bias_init` (0 by default). The layers are generic: ProGAN's networks and
//! StyleGAN2's mapping network build on them.

use super::{live, Init, ParamPath};
use crate::ops::{self, ConvSpec};
use candle_core::{Tensor, Var};

/// He's gain for (leaky) ReLU layers; ProGAN uses it for every layer but the outputs.
pub const GAIN_RELU: f64 = std::f64::consts::SQRT_2;

/// How an equalised layer scales its weights and initialises its bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EqOptions {
    /// Run-time weight scale numerator: `gain / sqrt(fan_in)`.
    pub gain: f64,
    /// Learning-rate multiplier (1 = plain equalised learning rate).
    pub lr_mul: f64,
    /// Initial bias value (stored divided by `lr_mul`); `None` for no bias.
    pub bias: Option<f32>,
}

impl EqOptions {
    /// `gain`, `lr_mul` 1, a zero bias.
    pub const fn gain(gain: f64) -> Self {
        Self { gain, lr_mul: 1.0, bias: Some(0.0) }
    }
}

impl Default for EqOptions {
    fn default() -> Self {
        Self::gain(GAIN_RELU)
    }
}

/// An equalised layer: the stored weight and optional bias, their run-time factors, and `K`, what
/// the layer does with them ([`Dense`] or [`Conv`]).
pub struct Equalized<K> {
    weight: Var,
    bias: Option<Var>,
    scale: f64,
    lr_mul: f64,
    kind: K,
}

/// Equalised dense layer: `y = x (c W)^T + lr_mul * b`, W [out, in], `c = gain*lr_mul/sqrt(in)`.
pub type EqLinear = Equalized<Dense>;
/// Equalised 2-D convolution with a square kernel, stride 1 and "same" padding (`k/2`, k odd):
/// weight [out, in, k, k], `c = gain*lr_mul/sqrt(in*k*k)`.
pub type EqConv2d = Equalized<Conv>;

/// [`EqLinear`]'s operation.
pub struct Dense;
/// [`EqConv2d`]'s operation: its padding.
pub struct Conv(ConvSpec);

impl<K> Equalized<K> {
    /// Weight of `shape` drawn from N(0, 1/lr_mul), scaled at run time by `gain*lr_mul/sqrt(fan_in)`
    /// with `fan_in` the product of all but the first dimension, and the optional bias, under `p`.
    fn build(p: &ParamPath, shape: &[usize], o: EqOptions, kind: K) -> crate::Result<Self> {
        if !(o.lr_mul > 0.0 && o.lr_mul.is_finite() && o.gain.is_finite()) {
            return Err(crate::Error::Config(format!("an equalised layer needs a positive lr_mul and a finite gain, got {o:?}")));
        }
        let weight = p.param("weight", shape, Init::Normal { mean: 0.0, std: (1.0 / o.lr_mul) as f32 })?;
        let bias = match o.bias {
            Some(b) => Some(p.param("bias", &shape[..1], Init::Const((b as f64 / o.lr_mul) as f32))?),
            None => None,
        };
        let fan_in: usize = shape[1..].iter().product();
        let scale = o.gain * o.lr_mul / (fan_in.max(1) as f64).sqrt();
        Ok(Self { weight, bias, scale, lr_mul: o.lr_mul, kind })
    }

    /// The run-time factor applied to the stored weight.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The stored weight (see [`live`]).
    pub fn weight(&self) -> Tensor {
        live(&self.weight)
    }

    /// The weight the forward pass uses, `scale * weight`.
    pub fn effective_weight(&self) -> crate::Result<Tensor> {
        Ok((live(&self.weight) * self.scale)?)
    }

    /// The bias as used at run time (`stored * lr_mul`).
    fn runtime_bias(&self) -> crate::Result<Option<Tensor>> {
        Ok(match &self.bias {
            Some(b) if self.lr_mul == 1.0 => Some(live(b)),
            Some(b) => Some((live(b) * self.lr_mul)?),
            None => None,
        })
    }
}

impl EqLinear {
    pub fn new(p: &ParamPath, in_dim: usize, out_dim: usize, opts: EqOptions) -> crate::Result<Self> {
        Self::build(p, &[out_dim, in_dim], opts, Dense)
    }

    /// x [N, in] -> [N, out].
    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let y = crate::ops::matmul(x, &self.effective_weight()?.t()?)?;
        Ok(match self.runtime_bias()? {
            Some(b) => y.broadcast_add(&b)?,
            None => y,
        })
    }
}

impl EqConv2d {
    pub fn new(p: &ParamPath, in_ch: usize, out_ch: usize, kernel: usize, opts: EqOptions) -> crate::Result<Self> {
        if kernel.is_multiple_of(2) {
            return Err(crate::Error::Config(format!("EqConv2d keeps the image size and needs an odd kernel, got {kernel}")));
        }
        Self::build(p, &[out_ch, in_ch, kernel, kernel], opts, Conv(ConvSpec::new(1, kernel / 2)))
    }

    /// x [N, in, H, W] -> [N, out, H, W].
    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let y = ops::conv2d(x, &self.effective_weight()?, self.kind.0)?;
        Ok(match self.runtime_bias()? {
            Some(b) => ops::per_channel::add(&y, &b)?,
            None => y,
        })
    }
}
