//! CycleGAN's ResNet generator (Zhu et al. 2017, after Johnson et al.'s style transfer net):
//! a 7x7 conv, two stride-2 convs down, `blocks` residual blocks at a quarter of the resolution,
//! two transposed convs back up and a 7x7 conv to the image, tanh. Instance norm and ReLU
//! throughout, N(0, 0.02) init.
//!
//! Differences from the paper's code: zero padding instead of reflection padding (gannet's fast
//! convolutions pad with zeros; on emoji, whose borders are white, the difference does not show),
//! and 4x4 transposed convs (stride 2, padding 1) for the exact doubling instead of 3x3 ones with
//! output padding.

use crate::nn::{Conv2d, ConvTranspose2d, Init, InstanceNorm, ParamPath};
use crate::ops::{self, ConvSpec};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResnetTranslatorConfig {
    /// ngf: channels of the first layer (the residual blocks have 4 * ngf).
    pub channels: usize,
    /// Residual blocks (CycleGAN: 6 at 128x128, 9 at 256x256).
    pub blocks: usize,
}

impl Default for ResnetTranslatorConfig {
    fn default() -> Self {
        Self { channels: 16, blocks: 4 }
    }
}

/// A conv followed by instance norm.
struct ConvNorm {
    conv: Conv2d,
    norm: InstanceNorm,
}

impl ConvNorm {
    fn new(p: &ParamPath, cin: usize, cout: usize, k: usize, spec: ConvSpec) -> crate::Result<Self> {
        Ok(Self { conv: Conv2d::new(p, cin, cout, k, spec, Init::DCGAN, false)?, norm: InstanceNorm::new(&p.sub("norm"), cout, false)? })
    }

    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        self.norm.forward(&self.conv.forward(x)?)
    }
}

pub struct ResnetTranslator {
    stem: ConvNorm,
    down: Vec<ConvNorm>,
    blocks: Vec<(ConvNorm, ConvNorm)>,
    up: Vec<(ConvTranspose2d, InstanceNorm)>,
    to_image: Conv2d,
}

impl ResnetTranslator {
    /// A generator from `in_channels` to `out_channels`; the resolution must be a multiple of 4.
    pub fn new(p: &ParamPath, cfg: &ResnetTranslatorConfig, in_channels: usize, out_channels: usize) -> crate::Result<Self> {
        let c = cfg.channels;
        let stem = ConvNorm::new(&p.sub("stem"), in_channels, c, 7, ConvSpec::new(1, 3))?;
        let down =
            vec![ConvNorm::new(&p.sub("down0"), c, 2 * c, 3, ConvSpec::new(2, 1))?, ConvNorm::new(&p.sub("down1"), 2 * c, 4 * c, 3, ConvSpec::new(2, 1))?];
        let blocks = (0..cfg.blocks)
            .map(|i| {
                let q = p.sub(format!("block{i}"));
                Ok((
                    ConvNorm::new(&q.sub("conv0"), 4 * c, 4 * c, 3, ConvSpec::new(1, 1))?,
                    ConvNorm::new(&q.sub("conv1"), 4 * c, 4 * c, 3, ConvSpec::new(1, 1))?,
                ))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let up = [(4 * c, 2 * c), (2 * c, c)]
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout))| {
                let q = p.sub(format!("up{i}"));
                Ok((ConvTranspose2d::new(&q, cin, cout, 4, ConvSpec::new(2, 1), Init::DCGAN, false)?, InstanceNorm::new(&q.sub("norm"), cout, false)?))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let to_image = Conv2d::new(&p.sub("to_image"), c, out_channels, 7, ConvSpec::new(1, 3), Init::DCGAN, true)?;
        Ok(Self { stem, down, blocks, up, to_image })
    }
}

impl super::Translator for ResnetTranslator {
    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        if h % 4 != 0 || w % 4 != 0 {
            return Err(crate::Error::Msg(format!("the ResNet translator needs sizes that are multiples of 4, got {h}x{w}")));
        }
        let mut h = ops::relu(&self.stem.forward(x)?)?;
        for d in &self.down {
            h = ops::relu(&d.forward(&h)?)?;
        }
        for (c0, c1) in &self.blocks {
            h = (&h + c1.forward(&ops::relu(&c0.forward(&h)?)?)?)?;
        }
        for (conv, norm) in &self.up {
            h = ops::relu(&norm.forward(&conv.forward(&h)?)?)?;
        }
        Ok(self.to_image.forward(&h)?.tanh()?)
    }
}
