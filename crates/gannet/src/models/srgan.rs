//! The super-resolution generator (SRGAN's layout, Ledig et al. 2017, with EDSR's simplification):
//! a 3x3 conv, `blocks` residual blocks (conv, ReLU, conv; no batch norm, which EDSR found to hurt
//! PSNR), a conv with a skip around the blocks, then one sub-pixel upsampling stage per factor
//! of two (conv to 4x the channels, [`pixel_shuffle()`] by 2, ReLU) and a conv to the image.
//!
//! The network predicts a correction to the nearest-neighbour upscaled input, rather than the
//! whole image (a global residual, as VDSR): the colours and layout are right from the first
//! step and training only has to learn the edges. The output is not squashed by a tanh (the
//! residual may overshoot a little); images are clamped to [-1, 1] when written or scored.

use crate::nn::{Conv2d, Init, ParamPath};
use crate::ops::{self, pixel_shuffle, upsample2x, ConvSpec};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SrConfig {
    /// Channels of the residual blocks.
    pub channels: usize,
    pub blocks: usize,
    /// Upscaling factor: a power of two (4 by default).
    pub scale: usize,
}

impl Default for SrConfig {
    fn default() -> Self {
        Self { channels: 32, blocks: 4, scale: 4 }
    }
}

const SAME3: ConvSpec = ConvSpec::new(1, 1);

pub struct SrGenerator {
    head: Conv2d,
    blocks: Vec<(Conv2d, Conv2d)>,
    body_out: Conv2d,
    ups: Vec<Conv2d>,
    tail: Conv2d,
}

impl SrGenerator {
    pub fn new(p: &ParamPath, cfg: &SrConfig, channels: usize) -> crate::Result<Self> {
        if !cfg.scale.is_power_of_two() || cfg.scale < 2 {
            return Err(crate::Error::Config(format!("super-resolution scale must be a power of two of at least 2, got {}", cfg.scale)));
        }
        let c = cfg.channels;
        let conv = |name: String, cin: usize, cout: usize| Conv2d::new(&p.sub(name), cin, cout, 3, SAME3, Init::DCGAN, true);
        let head = conv("head".into(), channels, c)?;
        let blocks =
            (0..cfg.blocks).map(|i| Ok((conv(format!("block{i}.conv0"), c, c)?, conv(format!("block{i}.conv1"), c, c)?))).collect::<crate::Result<Vec<_>>>()?;
        let body_out = conv("body_out".into(), c, c)?;
        let ups = (0..cfg.scale.trailing_zeros()).map(|i| conv(format!("up{i}"), c, 4 * c)).collect::<crate::Result<Vec<_>>>()?;
        let tail = conv("tail".into(), c, channels)?;
        Ok(Self { head, blocks, body_out, ups, tail })
    }

    /// The upscaling factor.
    pub fn scale(&self) -> usize {
        1 << self.ups.len()
    }
}

impl super::Translator for SrGenerator {
    /// [N, C, h, w] -> [N, C, h*scale, w*scale].
    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let h0 = self.head.forward(x)?;
        let mut h = h0.clone();
        for (c0, c1) in &self.blocks {
            h = (&h + c1.forward(&ops::relu(&c0.forward(&h)?)?)?)?;
        }
        let mut h = (self.body_out.forward(&h)? + h0)?;
        let mut base = x.detach();
        for up in &self.ups {
            h = ops::relu(&pixel_shuffle(&up.forward(&h)?, 2)?)?;
            base = upsample2x(&base)?;
        }
        Ok((self.tail.forward(&h)? + base)?)
    }
}
