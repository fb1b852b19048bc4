//! PatchGAN discriminator (pix2pix, CycleGAN): a fully convolutional net whose output is a map of
//! logits, one per overlapping patch of the input, so it judges local texture and leaves the
//! global structure to the L1 or cycle loss.
//!
//! Layers: a 4x4 stride-2 conv (no norm), `layers - 1` more stride-2 convs doubling the channels
//! (up to 8 * ndf) with instance norm, one stride-1 conv with instance norm, and a stride-1 conv
//! to one channel; LeakyReLU(0.2) between. `layers = 3` is pix2pix's 70x70 PatchGAN. A
//! conditional D (pix2pix) sees the input and the output image stacked along the channels.

use crate::nn::{Activation, Conv2d, Init, InstanceNorm, ParamPath};
use crate::ops::ConvSpec;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatchGanConfig {
    /// ndf: channels of the first layer.
    pub channels: usize,
    /// Stride-2 layers: 3 gives 70x70 patches, 2 gives 34x34, 1 gives 16x16.
    pub layers: usize,
}

impl Default for PatchGanConfig {
    fn default() -> Self {
        Self { channels: 32, layers: 3 }
    }
}

const LRELU_SLOPE: f64 = 0.2;
const LRELU: Activation = Activation::LeakyRelu(LRELU_SLOPE);

pub struct PatchGan {
    convs: Vec<(Conv2d, Option<InstanceNorm>)>,
    head: Conv2d,
}

impl PatchGan {
    /// A PatchGAN over images of `in_channels` channels (for a conditional D, input + output).
    pub fn new(p: &ParamPath, cfg: &PatchGanConfig, in_channels: usize) -> crate::Result<Self> {
        if cfg.layers == 0 || cfg.channels == 0 {
            return Err(crate::Error::Config("the PatchGAN needs at least one layer and one channel".into()));
        }
        let ch = |i: usize| cfg.channels * (1usize << i.min(3));
        let mut convs = Vec::with_capacity(cfg.layers + 1);
        for i in 0..=cfg.layers {
            let cin = if i == 0 { in_channels } else { ch(i - 1) };
            let stride = if i < cfg.layers { 2 } else { 1 };
            let q = p.sub(format!("conv{i}"));
            let norm = if i == 0 { None } else { Some(InstanceNorm::new(&q.sub("norm"), ch(i), false)?) };
            convs.push((Conv2d::new(&q, cin, ch(i), 4, ConvSpec::new(stride, 1), Init::DCGAN, norm.is_none())?, norm));
        }
        let head = Conv2d::new(&p.sub("head"), ch(cfg.layers), 1, 4, ConvSpec::new(1, 1), Init::DCGAN, true)?;
        Ok(Self { convs, head })
    }

    /// Patch logits [N, 1, h, w] of images [N, C, H, W].
    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let mut h = x.clone();
        for (conv, norm) in &self.convs {
            let y = conv.forward(&h)?;
            h = match norm {
                Some(n) => n.forward_act(&y, Some(LRELU_SLOPE))?,
                None => LRELU.forward(&y)?,
            };
        }
        self.head.forward(&h)
    }

    /// The logits of a conditional D: the input and the (real or generated) output stacked.
    pub fn forward_pair(&self, input: &Tensor, output: &Tensor) -> crate::Result<Tensor> {
        self.forward(&Tensor::cat(&[input, output], 1)?)
    }
}
