//! pix2pix's U-Net generator (Isola et al. 2017): an encoder of 4x4 stride-2 convolutions down to
//! a 2x2 bottleneck and a mirror-image decoder of transposed convolutions, each decoder layer
//! also fed the encoder's output at its size (the skip connections carry the input's layout
//! straight across, which is why pix2pix learns layout-preserving maps quickly).
//!
//! As in pix2pix: LeakyReLU(0.2) in the encoder, ReLU in the decoder, no normalisation on the
//! first encoder layer, the innermost layer or the output layer, tanh output, N(0, 0.02) init.
//! Normalisation is instance norm (pix2pix's batch norm at its batch size of 1 is the same
//! thing, and it keeps images of a batch independent). pix2pix's decoder dropout is left out:
//! it made the outputs random without making them better, and deterministic outputs keep
//! `gannet translate` reproducible.

use super::ImageShape;
use crate::nn::{Activation, Conv2d, ConvTranspose2d, Init, InstanceNorm, ParamPath};
use crate::ops::{self, ConvSpec};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnetConfig {
    /// ngf: channels of the first encoder layer; each layer doubles them up to 8 * ngf.
    pub channels: usize,
}

impl Default for UnetConfig {
    fn default() -> Self {
        Self { channels: 32 }
    }
}

const HALVE: ConvSpec = ConvSpec::new(2, 1);
const LRELU: Activation = Activation::LeakyRelu(0.2);

pub struct UnetGenerator {
    /// Encoder convs, outermost first, each with its norm (None on the first and innermost).
    down: Vec<(Conv2d, Option<InstanceNorm>)>,
    /// Decoder transposed convs, innermost first, each with its norm (None on the outermost).
    up: Vec<(ConvTranspose2d, Option<InstanceNorm>)>,
}

impl UnetGenerator {
    /// A U-Net from `shape.channels` to `out_channels` channels; the resolution must be a power of
    /// two of at least 4 (the encoder halves it down to 2x2).
    pub fn new(p: &ParamPath, cfg: &UnetConfig, shape: ImageShape, out_channels: usize) -> crate::Result<Self> {
        let r = shape.resolution;
        if !r.is_power_of_two() || r < 4 {
            return Err(crate::Error::Config(format!("the U-Net needs a power-of-two resolution of at least 4, got {r}")));
        }
        let depth = r.trailing_zeros() as usize - 1;
        let ch = |i: usize| cfg.channels * (1usize << i.min(3));
        let mut down = Vec::with_capacity(depth);
        for i in 0..depth {
            let cin = if i == 0 { shape.channels } else { ch(i - 1) };
            let q = p.sub(format!("down{i}"));
            let norm = if i == 0 || i == depth - 1 { None } else { Some(InstanceNorm::new(&q.sub("norm"), ch(i), false)?) };
            down.push((Conv2d::new(&q.sub("conv"), cin, ch(i), 4, HALVE, Init::DCGAN, norm.is_none())?, norm));
        }
        // Decoder layer i (i = depth-1 innermost .. 0 outermost) maps back to the size of encoder
        // layer i's input; all but the innermost also read encoder layer i's output.
        let mut up = Vec::with_capacity(depth);
        for i in (0..depth).rev() {
            let cin = if i == depth - 1 { ch(i) } else { 2 * ch(i) };
            let cout = if i == 0 { out_channels } else { ch(i - 1) };
            let q = p.sub(format!("up{i}"));
            let norm = if i == 0 { None } else { Some(InstanceNorm::new(&q.sub("norm"), cout, false)?) };
            up.push((ConvTranspose2d::new(&q.sub("conv"), cin, cout, 4, HALVE, Init::DCGAN, norm.is_none())?, norm));
        }
        Ok(Self { down, up })
    }
}

fn norm_opt(norm: &Option<InstanceNorm>, x: Tensor) -> crate::Result<Tensor> {
    match norm {
        Some(n) => n.forward(&x),
        None => Ok(x),
    }
}

impl super::Translator for UnetGenerator {
    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut h = x.clone();
        for (i, (conv, norm)) in self.down.iter().enumerate() {
            let input = if i == 0 { h.clone() } else { LRELU.forward(&h)? };
            h = norm_opt(norm, conv.forward(&input)?)?;
            skips.push(h.clone());
        }
        // `h` is the innermost encoder output; the decoder walks the skips back outwards.
        skips.pop();
        for (conv, norm) in &self.up {
            h = norm_opt(norm, conv.forward(&ops::relu(&h)?)?)?;
            if let Some(skip) = skips.pop() {
                h = Tensor::cat(&[&skip, &h], 1)?;
            }
        }
        Ok(h.tanh()?)
    }
}
