//! StyleGAN2's synthesis network: a learned 4x4 constant, then per resolution two modulated 3x3
//! convolutions (the first after a 2x nearest upsample) with per-pixel noise, and a 1x1 toRGB
//! whose outputs are upsampled and summed across resolutions (the "skip" generator).
//!
//! Simplifications against the paper, all for 2-core CPU budgets: nearest upsampling without the
//! FIR blur filter, and the modulated convolution written as "scale the input by the style,
//! convolve with the shared weight, scale the output by the demodulation factor", which equals
//! the per-sample weight form (Karras et al. 2020, eq. 1-3) without grouped convolutions.

use crate::nn::{activation::leaky_relu_gain, EqLinear, EqOptions, Init, ParamPath};
use crate::ops::{self, ConvSpec};
use crate::rng;
use candle_core::{Tensor, Var};
use rand::rngs::StdRng;

/// A convolution whose input channels are scaled per sample by a style computed from w.
struct ModConv {
    /// w -> one scale per input channel, bias initialised to 1 (start as a plain convolution).
    affine: EqLinear,
    weight: Var,
    scale: f64,
    demodulate: bool,
    spec: ConvSpec,
}

impl ModConv {
    fn new(p: &ParamPath, w_dim: usize, cin: usize, cout: usize, k: usize, demodulate: bool) -> crate::Result<Self> {
        Ok(Self {
            affine: EqLinear::new(&p.sub("affine"), w_dim, cin, EqOptions { gain: 1.0, lr_mul: 1.0, bias: Some(1.0) })?,
            weight: p.param("weight", &[cout, cin, k, k], Init::Normal { mean: 0.0, std: 1.0 })?,
            scale: 1.0 / ((cin * k * k) as f64).sqrt(),
            demodulate,
            spec: ConvSpec::new(1, k / 2),
        })
    }

    /// x [N, Cin, H, W], w [N, w_dim] -> [N, Cout, H, W].
    fn forward(&self, x: &Tensor, w: &Tensor) -> crate::Result<Tensor> {
        let styles = self.affine.forward(w)?; // [N, Cin]
        let weight = (self.weight.as_tensor() * self.scale)?;
        let y = ops::conv2d(&ops::per_channel::mul(x, &styles)?, &weight, self.spec)?;
        if !self.demodulate {
            return Ok(y);
        }
        // The norm of each sample's effective weight per output channel:
        // sum_{cin,kh,kw} (W * s_cin)^2 = (s^2) @ (sum_{kh,kw} W^2)^T.
        let w_sq = weight.sqr()?.sum((2, 3))?; // [Cout, Cin]
        let demod = (styles.sqr()?.matmul(&w_sq.t()?)? + 1e-8)?.sqrt()?.recip()?; // [N, Cout]
        ops::per_channel::mul(&y, &demod)
    }
}

/// Where a layer's per-pixel noise comes from.
pub enum Noise<'a> {
    /// Fresh N(0, 1) noise from the run's seeded stream (training).
    Random(&'a mut StdRng),
    /// The layer's fixed noise buffer, so the same w's always give the same image (sampling,
    /// editing, projection).
    Fixed,
}

/// Modulated 3x3 conv, noise, bias, leaky ReLU.
struct StyleLayer {
    conv: ModConv,
    noise_strength: Var,
    noise_fixed: Var,
    bias: Var,
    up: bool,
}

impl StyleLayer {
    fn new(p: &ParamPath, w_dim: usize, cin: usize, cout: usize, res: usize, up: bool) -> crate::Result<Self> {
        Ok(Self {
            conv: ModConv::new(&p.sub("conv"), w_dim, cin, cout, 3, true)?,
            // Starts at 0: noise is something G learns to use, not a perturbation from step 0.
            noise_strength: p.param("noise_strength", &[1], Init::Const(0.0))?,
            noise_fixed: p.buffer("noise_fixed", &[1, 1, res, res], Init::Normal { mean: 0.0, std: 1.0 })?,
            bias: p.param("bias", &[cout], Init::Const(0.0))?,
            up,
        })
    }

    fn forward(&self, x: &Tensor, w: &Tensor, noise: &mut Noise) -> crate::Result<Tensor> {
        let x = if self.up { ops::upsample2x(x)? } else { x.clone() };
        let y = self.conv.forward(&x, w)?;
        let (n, _, h, wd) = y.dims4()?;
        let noise = match noise {
            Noise::Random(r) => rng::randn_shard(r, &[n, 1, h, wd], y.device())?,
            Noise::Fixed => self.noise_fixed.as_tensor().clone(),
        };
        let y = y.broadcast_add(&noise.broadcast_mul(self.noise_strength.as_tensor())?)?;
        leaky_relu_gain(&ops::per_channel::add(&y, self.bias.as_tensor())?)
    }
}

/// 1x1 modulated conv to the image's channels, no demodulation (the output is colour, not a
/// feature that the next layer normalises).
struct ToRgb {
    conv: ModConv,
    bias: Var,
}

impl ToRgb {
    fn new(p: &ParamPath, w_dim: usize, cin: usize, channels: usize) -> crate::Result<Self> {
        Ok(Self { conv: ModConv::new(&p.sub("conv"), w_dim, cin, channels, 1, false)?, bias: p.param("bias", &[channels], Init::Const(0.0))? })
    }

    fn forward(&self, x: &Tensor, w: &Tensor) -> crate::Result<Tensor> {
        ops::per_channel::add(&self.conv.forward(x, w)?, self.bias.as_tensor())
    }
}

/// The layers of one resolution; the 4x4 block has no upsampling conv.
struct Block {
    conv0: Option<StyleLayer>,
    conv1: StyleLayer,
    to_rgb: ToRgb,
}

impl Block {
    /// How many w's the block reads.
    fn num_ws(&self) -> usize {
        2 + usize::from(self.conv0.is_some())
    }
}

pub struct Synthesis {
    constant: Var,
    blocks: Vec<Block>,
    num_ws: usize,
}

impl Synthesis {
    /// `channels(res)` gives the feature maps at each resolution 4, 8, .., `resolution`.
    pub fn new(p: &ParamPath, w_dim: usize, resolution: usize, image_channels: usize, channels: impl Fn(usize) -> usize) -> crate::Result<Self> {
        let c4 = channels(4);
        let constant = p.param("const", &[c4, 4, 4], Init::Normal { mean: 0.0, std: 1.0 })?;
        let mut blocks = Vec::new();
        let (mut res, mut cin) = (4, c4);
        while res <= resolution {
            let (b, cout) = (p.sub(format!("b{res}")), channels(res));
            let conv0 = if res == 4 { None } else { Some(StyleLayer::new(&b.sub("conv0"), w_dim, cin, cout, res, true)?) };
            let conv1 = StyleLayer::new(&b.sub("conv1"), w_dim, cout, cout, res, false)?;
            let to_rgb = ToRgb::new(&b.sub("to_rgb"), w_dim, cout, image_channels)?;
            blocks.push(Block { conv0, conv1, to_rgb });
            (res, cin) = (res * 2, cout);
        }
        let num_ws = blocks.iter().map(Block::num_ws).sum();
        Ok(Self { constant, blocks, num_ws })
    }

    pub fn num_ws(&self) -> usize {
        self.num_ws
    }

    /// ws [N, num_ws, w_dim] -> images [N, C, R, R] (unbounded; about [-1, 1] once trained).
    pub fn forward(&self, ws: &Tensor, mut noise: Noise) -> crate::Result<Tensor> {
        let (n, l, _) = ws.dims3()?;
        if l != self.num_ws {
            return Err(crate::Error::Msg(format!("synthesis takes {} w's per image, got {l}", self.num_ws)));
        }
        let c = self.constant.as_tensor();
        let mut x = c.unsqueeze(0)?.broadcast_as((n, c.dim(0)?, 4, 4))?.contiguous()?;
        let mut img: Option<Tensor> = None;
        let mut next = 0;
        let mut take = || {
            next += 1;
            ws.narrow(1, next - 1, 1).and_then(|w| w.squeeze(1))
        };
        for b in &self.blocks {
            if let Some(c0) = &b.conv0 {
                x = c0.forward(&x, &take()?, &mut noise)?;
            }
            x = b.conv1.forward(&x, &take()?, &mut noise)?;
            let rgb = b.to_rgb.forward(&x, &take()?)?;
            img = Some(match img {
                None => rgb,
                Some(prev) => (ops::upsample2x(&prev)? + rgb)?,
            });
        }
        Ok(img.expect("at least the 4x4 block"))
    }
}
