//! DCGAN (Radford et al. 2016): transposed-conv generator with BatchNorm + ReLU, strided-conv
//! discriminator with LeakyReLU(0.2), N(0, 0.02) init.
//!
//! The resolution decides the depth: it must be `base * 2^k` with base 4 (32, 64, 128, ...) or
//! base 7 (28, 56, ...) and k >= 2. G starts from a `base x base` map made by a transposed conv
//! of the latent; every further block doubles the size and halves the channels.

use super::conditional::{self, Conditioning};
use super::{Discriminator, Generator, ImageShape};
use crate::nn::{Activation, BatchNorm, ClassBatchNorm, Conv2d, ConvTranspose2d, Embedding, Init, Mode, ParamPath, SpectralNorm};
use crate::ops::ConvSpec;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DcganConfig {
    pub latent_dim: usize,
    /// ngf: channels of G's last hidden layer; earlier layers have 2x, 4x, ...
    pub g_channels: usize,
    /// ndf: channels of D's first layer.
    pub d_channels: usize,
    /// Spectral normalisation on every conv of D (one power-iteration step per training forward,
    /// `u` vectors saved as `*.sn_u` buffers). It replaces D's BatchNorm, which is then left out.
    pub spectral_norm: bool,
    /// BatchNorm in D's hidden blocks (the DCGAN paper's D). Turn it off for WGAN-GP, whose
    /// per-image gradient penalty BatchNorm's batch coupling invalidates. Spectral normalisation
    /// leaves it out regardless.
    pub d_batch_norm: bool,
    /// Class conditioning: "none", "projection" or "acgan" (see [`super::conditional`]). When on,
    /// G's stem takes the one-hot label with the latent and every BatchNorm of G is
    /// class-conditional, and D gets a projection term or an auxiliary
    /// classifier head (a conv like the real/fake head, with one output per class).
    pub conditional: Conditioning,
}

impl Default for DcganConfig {
    fn default() -> Self {
        Self { latent_dim: 100, g_channels: 32, d_channels: 32, spectral_norm: false, d_batch_norm: true, conditional: Conditioning::None }
    }
}

/// The starting size and number of doublings for a resolution.
#[derive(Debug, Clone, Copy)]
struct Plan {
    base: usize,
    doublings: usize,
}

impl Plan {
    fn for_resolution(r: usize) -> crate::Result<Self> {
        for base in [4, 7] {
            if r.is_multiple_of(base) && (r / base).is_power_of_two() && r / base >= 4 {
                return Ok(Plan { base, doublings: (r / base).trailing_zeros() as usize });
            }
        }
        Err(crate::Error::Config(format!(
            "DCGAN cannot make {r}x{r} images: the resolution must be 4*2^k or 7*2^k with k >= 2 \
             (e.g. 28, 32, 56, 64, 128)"
        )))
    }
}

const UP: ConvSpec = ConvSpec::new(2, 1);

pub struct DcganGenerator {
    stem: ConvTranspose2d,
    stem_bn: ClassBatchNorm,
    blocks: Vec<(ConvTranspose2d, ClassBatchNorm)>,
    to_image: ConvTranspose2d,
    cfg: DcganConfig,
    shape: ImageShape,
    classes: usize,
}

impl DcganGenerator {
    /// `classes` > 0 makes every BatchNorm class-conditional (0: unconditional).
    pub fn new(p: &ParamPath, cfg: &DcganConfig, shape: ImageShape, classes: usize) -> crate::Result<Self> {
        let plan = Plan::for_resolution(shape.resolution)?;
        // Channels per map size: ngf * 2^(doublings-1) at the base, halving each doubling.
        let ch = |i: usize| cfg.g_channels << (plan.doublings - 1 - i);
        // A conditional G also gets the one-hot label as extra input channels of the stem, which
        // gives every class its own learned starting map, on top of the class BatchNorms.
        let stem = ConvTranspose2d::new(&p.sub("stem"), cfg.latent_dim + classes, ch(0), plan.base, ConvSpec::new(1, 0), Init::DCGAN, false)?;
        let stem_bn = ClassBatchNorm::new(&p.sub("stem_bn"), ch(0), Init::DCGAN_BN, classes)?;
        let blocks = (1..plan.doublings)
            .map(|i| -> crate::Result<_> {
                let b = p.sub(format!("up{i}"));
                Ok((
                    ConvTranspose2d::new(&b.sub("conv"), ch(i - 1), ch(i), 4, UP, Init::DCGAN, false)?,
                    ClassBatchNorm::new(&b.sub("bn"), ch(i), Init::DCGAN_BN, classes)?,
                ))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let last = ch(plan.doublings - 1);
        let to_image = ConvTranspose2d::new(&p.sub("to_image"), last, shape.channels, 4, UP, Init::DCGAN, false)?;
        Ok(Self { stem, stem_bn, blocks, to_image, cfg: cfg.clone(), shape, classes })
    }
}

impl Generator for DcganGenerator {
    fn forward(&self, z: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let labels = if self.classes > 0 { Some(conditional::require_labels(labels, "generator")?) } else { None };
        let z = match labels {
            Some(l) => conditional::concat_one_hot(z, l, self.classes)?,
            None => z.clone(),
        };
        let x = z.reshape((z.dim(0)?, self.cfg.latent_dim + self.classes, 1, 1))?;
        let mut h = self.stem_bn.forward_act(&self.stem.forward(&x)?, labels, mode, Some(0.0))?;
        for (conv, bn) in &self.blocks {
            h = bn.forward_act(&conv.forward(&h)?, labels, mode, Some(0.0))?;
        }
        Ok(self.to_image.forward(&h)?.tanh()?)
    }

    fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    fn image_shape(&self) -> ImageShape {
        self.shape
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
}

pub struct DcganDiscriminator {
    from_image: SnConv,
    blocks: Vec<(SnConv, Option<BatchNorm>)>,
    head: SnConv,
    class_head: ClassHead,
    /// Channels and size of the last feature map (what a conditioning head works on).
    feature_channels: usize,
    feature_size: usize,
}

/// What a conditional D adds to the real/fake head.
enum ClassHead {
    None,
    /// Class embedding [classes, C] dotted with the sum-pooled last feature map [N, C].
    Projection(Embedding),
    /// A conv over the last feature map with one output per class (AC-GAN).
    Auxiliary(SnConv),
}

/// A conv with optional spectral normalisation of its weight.
struct SnConv {
    conv: Conv2d,
    sn: Option<SpectralNorm>,
}

impl SnConv {
    fn new(p: &ParamPath, cin: usize, cout: usize, k: usize, spec: ConvSpec, sn: bool) -> crate::Result<Self> {
        let conv = Conv2d::new(p, cin, cout, k, spec, Init::DCGAN, false)?;
        let sn = if sn { Some(SpectralNorm::new(p, cout)?) } else { None };
        Ok(Self { conv, sn })
    }

    fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        match &self.sn {
            None => self.conv.forward(x),
            Some(sn) => self.conv.forward_with(x, &sn.normalise(&self.conv.weight(), mode)?.0),
        }
    }
}

const DOWN: ConvSpec = ConvSpec::new(2, 1);
const LRELU_SLOPE: f64 = 0.2;
const LRELU: Activation = Activation::LeakyRelu(LRELU_SLOPE);

impl DcganDiscriminator {
    /// `classes` > 0 with `cfg.conditional` set adds the projection or auxiliary head.
    pub fn new(p: &ParamPath, cfg: &DcganConfig, shape: ImageShape, classes: usize) -> crate::Result<Self> {
        let plan = Plan::for_resolution(shape.resolution)?;
        let ch = |i: usize| cfg.d_channels << i;
        let sn = cfg.spectral_norm;
        let from_image = SnConv::new(&p.sub("from_image"), shape.channels, ch(0), 4, DOWN, sn)?;
        let blocks = (1..plan.doublings)
            .map(|i| -> crate::Result<_> {
                let b = p.sub(format!("down{i}"));
                let bn = if sn || !cfg.d_batch_norm { None } else { Some(BatchNorm::new(&b.sub("bn"), ch(i), Init::DCGAN_BN)?) };
                Ok((SnConv::new(&b.sub("conv"), ch(i - 1), ch(i), 4, DOWN, sn)?, bn))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let last = ch(plan.doublings - 1);
        let head = SnConv::new(&p.sub("head"), last, 1, plan.base, ConvSpec::new(1, 0), sn)?;
        let class_head = match (cfg.conditional, classes) {
            (Conditioning::None, _) | (_, 0) => ClassHead::None,
            (Conditioning::Projection, k) => ClassHead::Projection(Embedding::new(&p.sub("class_embed"), "weight", k, last, Init::DCGAN)?),
            (Conditioning::Acgan, k) => ClassHead::Auxiliary(SnConv::new(&p.sub("class_head"), last, k, plan.base, ConvSpec::new(1, 0), sn)?),
        };
        Ok(Self { from_image, blocks, head, class_head, feature_channels: last, feature_size: plan.base })
    }

    /// Channels of the last feature map that [`DcganDiscriminator::forward_features`] returns.
    pub fn feature_channels(&self) -> usize {
        self.feature_channels
    }

    /// Height and width of that map.
    pub fn feature_size(&self) -> usize {
        self.feature_size
    }

    /// The unconditional logits `[N]` and the last feature map `[N, C, base, base]`, for heads
    /// that condition on something other than a class (e.g. a sentence embedding).
    pub fn forward_features(&self, x: &Tensor, mode: Mode) -> crate::Result<(Tensor, Tensor)> {
        let mut h = LRELU.forward(&self.from_image.forward(x, mode)?)?;
        for (conv, bn) in &self.blocks {
            let y = conv.forward(&h, mode)?;
            h = match bn {
                Some(bn) => bn.forward_act(&y, mode, Some(LRELU_SLOPE))?,
                None => LRELU.forward(&y)?,
            };
        }
        Ok((self.head.forward(&h, mode)?.flatten_all()?, h))
    }
}

impl Discriminator for DcganDiscriminator {
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        Ok(self.forward_with_classes(x, labels, mode)?.0)
    }

    fn forward_with_classes(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<(Tensor, Option<Tensor>)> {
        let (logits, h) = self.forward_features(x, mode)?;
        match &self.class_head {
            ClassHead::None => Ok((logits, None)),
            ClassHead::Projection(embed) => {
                let labels = conditional::require_labels(labels, "discriminator")?;
                let pooled = h.sum((2, 3))?;
                Ok(((logits + conditional::projection(embed, &pooled, labels)?)?, None))
            }
            ClassHead::Auxiliary(conv) => Ok((logits, Some(conv.forward(&h, mode)?.flatten_from(1)?))),
        }
    }
}
