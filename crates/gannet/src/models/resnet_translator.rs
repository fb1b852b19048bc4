//! CycleGAN's ResNet generator (Zhu et al. 2017, after Johnson et al.'s style transfer net):
//! a 7x7 conv, two stride-2 convs down, `blocks` residual blocks at a quarter of the resolution,
//! two transposed convs back up and a 7x7 conv to the image, tanh. Instance norm and ReLU
//! throughout, N(0, 0.02) init.
//!
//! With `residual` the network predicts a change to its input instead of a new image:
//! `tanh(atanh(x) + f(x))` with the last conv starting at zero, so an untrained generator is the
//! identity and training only has to learn what differs between the domains (the cycle and
//! identity losses are met from the first step, and the outputs start at the inputs instead of
//! at noise). This is not in the paper. With the paper's loss weights such generators have so
//! far stayed at the identity on the emoji (README, "CycleGAN").
//!
//! Differences from the paper's code: zero padding instead of reflection padding (gannet's fast
//! convolutions pad with zeros; on emoji, whose borders are white, the difference does not show),
//! and 4x4 transposed convs (stride 2, padding 1) for the exact doubling instead of 3x3 ones with
//! output padding.
//!
//! `upsample = "resize"` replaces each transposed conv by a nearest-neighbour doubling and a 3x3
//! conv (Odena et al. 2016, "Deconvolution and checkerboard artifacts"): a stride-2 transposed
//! conv gives neighbouring output pixels different subsets of its taps, so until the taps agree
//! its outputs carry a 2x2 checkerboard, the high-frequency dots the emoji runs showed first.

use crate::nn::{Conv2d, ConvTranspose2d, Init, InstanceNorm, ParamPath};
use crate::ops::{upsample2x, ConvSpec};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResnetTranslatorConfig {
    /// ngf: channels of the first layer (the residual blocks have 4 * ngf).
    pub channels: usize,
    /// Residual blocks (CycleGAN: 6 at 128x128, 9 at 256x256).
    pub blocks: usize,
    /// Predict a change to the input (identity at initialisation) instead of a new image.
    pub residual: bool,
    /// How the two doublings back to full resolution are made.
    pub upsample: Upsample,
}

impl Default for ResnetTranslatorConfig {
    fn default() -> Self {
        Self { channels: 16, blocks: 4, residual: false, upsample: Upsample::Transposed }
    }
}

/// The generator's upsampling layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Upsample {
    /// 4x4 transposed convs, stride 2 (the paper's kind of layer).
    #[default]
    Transposed,
    /// Nearest-neighbour doubling, then a 3x3 conv: no checkerboard at initialisation.
    Resize,
}

/// One doubling of the resolution to `cout` channels.
enum UpConv {
    Transposed(ConvTranspose2d),
    Resize(Conv2d),
}

impl UpConv {
    fn new(p: &ParamPath, kind: Upsample, cin: usize, cout: usize) -> crate::Result<Self> {
        Ok(match kind {
            Upsample::Transposed => UpConv::Transposed(ConvTranspose2d::new(p, cin, cout, 4, ConvSpec::new(2, 1), Init::DCGAN, false)?),
            Upsample::Resize => UpConv::Resize(Conv2d::new(p, cin, cout, 3, ConvSpec::new(1, 1), Init::DCGAN, false)?),
        })
    }

    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        match self {
            UpConv::Transposed(c) => c.forward(x),
            UpConv::Resize(c) => c.forward(&upsample2x(x)?),
        }
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

    /// The conv, the norm and a ReLU, the last two in one pass.
    fn forward_relu(&self, x: &Tensor) -> crate::Result<Tensor> {
        self.norm.forward_act(&self.conv.forward(x)?, Some(0.0))
    }
}

pub struct ResnetTranslator {
    stem: ConvNorm,
    down: Vec<ConvNorm>,
    blocks: Vec<(ConvNorm, ConvNorm)>,
    up: Vec<(UpConv, InstanceNorm)>,
    to_image: Conv2d,
    residual: bool,
}

/// Inputs are clamped this far inside (-1, 1) before `atanh`, so that saturated pixels (white
/// backgrounds at exactly 1) stay finite; the identity is off by at most 1e-3 there.
const RESIDUAL_CLAMP: f64 = 0.999;

impl ResnetTranslator {
    /// A generator from `in_channels` to `out_channels`; the resolution must be a multiple of 4.
    pub fn new(p: &ParamPath, cfg: &ResnetTranslatorConfig, in_channels: usize, out_channels: usize) -> crate::Result<Self> {
        if cfg.residual && in_channels != out_channels {
            return Err(crate::Error::Config(format!(
                "a residual ResNet generator maps images to images of the same channels, got {in_channels} -> {out_channels}: set residual = false"
            )));
        }
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
                Ok((UpConv::new(&q, cfg.upsample, cin, cout)?, InstanceNorm::new(&q.sub("norm"), cout, false)?))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        // Residual: the change starts at zero, so the untrained generator is the identity.
        let last_init = if cfg.residual { Init::Const(0.0) } else { Init::DCGAN };
        let to_image = Conv2d::new(&p.sub("to_image"), c, out_channels, 7, ConvSpec::new(1, 3), last_init, true)?;
        Ok(Self { stem, down, blocks, up, to_image, residual: cfg.residual })
    }
}

impl super::Translator for ResnetTranslator {
    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        if h % 4 != 0 || w % 4 != 0 {
            return Err(crate::Error::Msg(format!("the ResNet translator needs sizes that are multiples of 4, got {h}x{w}")));
        }
        let mut h = self.stem.forward_relu(x)?;
        for d in &self.down {
            h = d.forward_relu(&h)?;
        }
        for (c0, c1) in &self.blocks {
            h = (&h + c1.forward(&c0.forward_relu(&h)?)?)?;
        }
        for (conv, norm) in &self.up {
            h = norm.forward_act(&conv.forward(&h)?, Some(0.0))?;
        }
        let out = self.to_image.forward(&h)?;
        if !self.residual {
            return Ok(out.tanh()?);
        }
        let (lo, hi) = (-RESIDUAL_CLAMP, RESIDUAL_CLAMP);
        let x = x.clamp(lo, hi)?;
        // atanh(x) = ln((1 + x) / (1 - x)) / 2
        let atanh = ((x.affine(1.0, 1.0)? / x.affine(-1.0, 1.0)?)?.log()? * 0.5)?;
        Ok((atanh + out)?.tanh()?)
    }
}
