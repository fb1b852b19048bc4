//! SNGAN-style ResNet generator and discriminator (Miyato et al. 2018, after Gulrajani et al.
//! 2017), `arch = "resnet"`.
//!
//! G: a linear layer maps the latent to a `base x base` map (base 4 for 32/64 px, 7 for 28 px),
//! then one up-block per doubling:
//! `x -> BN -> ReLU -> upsample x2 -> conv3x3 -> BN -> ReLU -> conv3x3`, plus the shortcut
//! `upsample x2 -> conv1x1`; then BN -> ReLU -> conv3x3 -> tanh.
//!
//! D: an "optimized" first block `conv3x3 -> ReLU -> conv3x3 -> avgpool` with shortcut
//! `avgpool -> conv1x1`; down-blocks `ReLU -> conv3x3 -> ReLU -> conv3x3 -> avgpool` with shortcut
//! `conv1x1 -> avgpool` while the map is larger than 8x8 (and even); one block at that size with
//! an identity shortcut; then ReLU, a sum over all positions and a linear head. Every conv and the
//! head are spectrally normalised unless `spectral_norm = false`; D has no BatchNorm.
//!
//! Widths are constant through each network (`g_channels`, `d_channels`), as in SNGAN's CIFAR
//! models (which use 256 and 128). Weights: Xavier-uniform, gain sqrt(2) for the convs inside
//! blocks and 1 elsewhere, zero biases, BatchNorm scale 1.
//!
//! Up- and downsampling are [`crate::ops::upsample2x`] and [`crate::ops::avg_pool2x`], whose
//! backward passes are differentiable again, so R1 and WGAN-GP work with this D.

use super::{Discriminator, Generator, ImageShape};
use crate::nn::{BatchNorm, Conv2d, Init, Linear, Mode, ParamPath, SnConv2d, SnLinear};
use crate::ops::{self, ConvSpec};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResnetConfig {
    pub latent_dim: usize,
    /// Channels of every generator block.
    pub g_channels: usize,
    /// Channels of every discriminator block.
    pub d_channels: usize,
    /// Spectral normalisation on every layer of D (default on, as in SNGAN).
    pub spectral_norm: bool,
}

impl Default for ResnetConfig {
    fn default() -> Self {
        Self { latent_dim: 128, g_channels: 64, d_channels: 64, spectral_norm: true }
    }
}

/// Starting size and doublings of G for a resolution: `base * 2^k`, base 4 or 7, k >= 2.
fn plan(r: usize) -> crate::Result<(usize, usize)> {
    for base in [4, 7] {
        if r.is_multiple_of(base) && (r / base).is_power_of_two() && r / base >= 4 {
            return Ok((base, (r / base).trailing_zeros() as usize));
        }
    }
    Err(crate::Error::Config(format!(
        "the ResNet GAN cannot make {r}x{r} images: the resolution must be 4*2^k or 7*2^k with k >= 2 \
         (e.g. 16, 28, 32, 56, 64, 128)"
    )))
}

/// Xavier (Glorot) uniform initialisation with `gain`.
pub(crate) fn xavier(fan_in: usize, fan_out: usize, gain: f32) -> Init {
    let b = gain * (6.0 / (fan_in + fan_out) as f32).sqrt();
    Init::Uniform { lo: -b, hi: b }
}

pub(crate) fn conv_init(cin: usize, cout: usize, k: usize, gain: f32) -> Init {
    xavier(cin * k * k, cout * k * k, gain)
}

pub(crate) const SAME3: ConvSpec = ConvSpec::new(1, 1);
pub(crate) const ONE: ConvSpec = ConvSpec::new(1, 0);
pub(crate) const GAIN: f32 = std::f32::consts::SQRT_2;

struct GBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    shortcut: Conv2d,
}

impl GBlock {
    fn new(p: &ParamPath, cin: usize, cout: usize) -> crate::Result<Self> {
        Ok(Self {
            bn1: BatchNorm::new(&p.sub("bn1"), cin, Init::Const(1.0))?,
            conv1: Conv2d::new(&p.sub("conv1"), cin, cout, 3, SAME3, conv_init(cin, cout, 3, GAIN), true)?,
            bn2: BatchNorm::new(&p.sub("bn2"), cout, Init::Const(1.0))?,
            conv2: Conv2d::new(&p.sub("conv2"), cout, cout, 3, SAME3, conv_init(cout, cout, 3, GAIN), true)?,
            shortcut: Conv2d::new(&p.sub("shortcut"), cin, cout, 1, ONE, conv_init(cin, cout, 1, 1.0), true)?,
        })
    }

    fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        let h = ops::upsample2x(&self.bn1.forward_act(x, mode, Some(0.0))?)?;
        let h = self.conv1.forward(&h)?;
        let h = self.conv2.forward(&self.bn2.forward_act(&h, mode, Some(0.0))?)?;
        let sc = self.shortcut.forward(&ops::upsample2x(x)?)?;
        Ok((h + sc)?)
    }
}

pub struct ResnetGenerator {
    fc: Linear,
    blocks: Vec<GBlock>,
    out_bn: BatchNorm,
    to_image: Conv2d,
    cfg: ResnetConfig,
    shape: ImageShape,
    base: usize,
}

impl ResnetGenerator {
    pub fn new(p: &ParamPath, cfg: &ResnetConfig, shape: ImageShape) -> crate::Result<Self> {
        let (base, doublings) = plan(shape.resolution)?;
        let ch = cfg.g_channels;
        let fc_out = base * base * ch;
        let fc = Linear::new(&p.sub("fc"), cfg.latent_dim, fc_out, xavier(cfg.latent_dim, fc_out, 1.0), true)?;
        let blocks = (0..doublings).map(|i| GBlock::new(&p.sub(format!("block{i}")), ch, ch)).collect::<crate::Result<Vec<_>>>()?;
        let out_bn = BatchNorm::new(&p.sub("out_bn"), ch, Init::Const(1.0))?;
        let to_image = Conv2d::new(&p.sub("to_image"), ch, shape.channels, 3, SAME3, conv_init(ch, shape.channels, 3, 1.0), true)?;
        Ok(Self { fc, blocks, out_bn, to_image, cfg: cfg.clone(), shape, base })
    }
}

impl Generator for ResnetGenerator {
    fn forward(&self, z: &Tensor, _labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let n = z.dim(0)?;
        let mut h = self.fc.forward(z)?.reshape((n, self.cfg.g_channels, self.base, self.base))?;
        for b in &self.blocks {
            h = b.forward(&h, mode)?;
        }
        let h = self.out_bn.forward_act(&h, mode, Some(0.0))?;
        Ok(self.to_image.forward(&h)?.tanh()?)
    }

    fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    fn image_shape(&self) -> ImageShape {
        self.shape
    }
}

/// How a D block resamples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DKind {
    /// The first block: no ReLU before its first conv; shortcut pools first, then 1x1 conv.
    Optimized,
    /// ReLU-conv-ReLU-conv-avgpool, shortcut 1x1 conv then avgpool.
    Down,
    /// ReLU-conv-ReLU-conv, identity shortcut.
    Plain,
}

pub(crate) struct DBlock {
    kind: DKind,
    conv1: SnConv2d,
    conv2: SnConv2d,
    shortcut: Option<SnConv2d>,
}

impl DBlock {
    pub(crate) fn new(p: &ParamPath, kind: DKind, cin: usize, cout: usize, sn: bool) -> crate::Result<Self> {
        let conv = |name: &str, i: usize, o: usize, k: usize, spec: ConvSpec, gain: f32| {
            SnConv2d::new(&p.sub(name), i, o, k, spec, conv_init(i, o, k, gain), true, sn)
        };
        let shortcut = if kind == DKind::Plain && cin == cout { None } else { Some(conv("shortcut", cin, cout, 1, ONE, 1.0)?) };
        Ok(Self { kind, conv1: conv("conv1", cin, cout, 3, SAME3, GAIN)?, conv2: conv("conv2", cout, cout, 3, SAME3, GAIN)?, shortcut })
    }

    pub(crate) fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        let first = if self.kind == DKind::Optimized { x.clone() } else { ops::relu(x)? };
        let h = self.conv2.forward(&ops::relu(&self.conv1.forward(&first, mode)?)?, mode)?;
        let (h, sc) = match (self.kind, &self.shortcut) {
            (DKind::Optimized, Some(s)) => (ops::avg_pool2x(&h)?, s.forward(&ops::avg_pool2x(x)?, mode)?),
            (DKind::Down, Some(s)) => (ops::avg_pool2x(&h)?, ops::avg_pool2x(&s.forward(x, mode)?)?),
            (_, Some(s)) => (h, s.forward(x, mode)?),
            (_, None) => (h, x.clone()),
        };
        Ok((h + sc)?)
    }
}

/// D's residual blocks (`block0`, `block1`, ...) for `shape`, each with the side of the map it
/// outputs: the optimized block halves the image, down-blocks halve while the map is larger than
/// 8x8 (and even), and one plain block ends at that size. BigGAN's D shares them.
pub(crate) fn d_blocks(p: &ParamPath, shape: ImageShape, ch: usize, sn: bool) -> crate::Result<Vec<(DBlock, usize)>> {
    let mut side = shape.resolution / 2;
    let mut blocks = vec![(DBlock::new(&p.sub("block0"), DKind::Optimized, shape.channels, ch, sn)?, side)];
    while side > 8 && side.is_multiple_of(2) {
        side /= 2;
        blocks.push((DBlock::new(&p.sub(format!("block{}", blocks.len())), DKind::Down, ch, ch, sn)?, side));
    }
    blocks.push((DBlock::new(&p.sub(format!("block{}", blocks.len())), DKind::Plain, ch, ch, sn)?, side));
    Ok(blocks)
}

pub struct ResnetDiscriminator {
    blocks: Vec<DBlock>,
    head: SnLinear,
}

impl ResnetDiscriminator {
    pub fn new(p: &ParamPath, cfg: &ResnetConfig, shape: ImageShape) -> crate::Result<Self> {
        plan(shape.resolution)?;
        let (ch, sn) = (cfg.d_channels, cfg.spectral_norm);
        let blocks = d_blocks(p, shape, ch, sn)?.into_iter().map(|(b, _)| b).collect();
        let head = SnLinear::new(&p.sub("head"), ch, 1, xavier(ch, 1, 1.0), true, sn)?;
        Ok(Self { blocks, head })
    }
}

impl Discriminator for ResnetDiscriminator {
    fn forward(&self, x: &Tensor, _labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let mut h = x.clone();
        for b in &self.blocks {
            h = b.forward(&h, mode)?;
        }
        // Global sum pooling: [N, C, H, W] -> [N, C].
        let pooled = ops::relu(&h)?.sum((2, 3))?;
        Ok(self.head.forward(&pooled, mode)?.flatten_all()?)
    }
}
