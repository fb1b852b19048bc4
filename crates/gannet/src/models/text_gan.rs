//! The text-conditional GAN (GAN-INT-CLS, Reed et al. 2016, with StackGAN's conditioning
//! augmentation), built from DCGAN's networks:
//!
//! - G: the sentence embedding goes through conditioning augmentation (a linear map to the mean
//!   and log-variance of a Gaussian, one draw of it per image), the draw is concatenated to the
//!   noise, and a DCGAN generator makes the image from both. The Gaussian smooths the few
//!   thousand training sentences into a manifold and gives more than one image per caption.
//! - D: a DCGAN discriminator's unconditional logit plus GAN-INT-CLS's matching head: the
//!   sentence embedding, reduced and tiled over D's last feature map, joined to it by a 1x1
//!   conv, scored by a conv over the map. Trained matching-aware: a real image with another
//!   image's caption counts as fake. (A projection head, the inner product of the embedding
//!   with D's pooled features, grew D's logits past +-15 within 500 steps and G made noise.)

use super::dcgan::{DcganConfig, DcganDiscriminator, DcganGenerator};
use super::{Generator, ImageShape};
use crate::loss::GanLoss;
use crate::nn::{Activation, BatchNorm, Conv2d, Init, Linear, Mode, ParamPath};
use crate::ops::ConvSpec;

const LRELU: Activation = Activation::LeakyRelu(0.2);
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextGanConfig {
    /// Noise dimensions.
    pub latent_dim: usize,
    /// Dimensions of the conditioning-augmentation draw given to G with the noise.
    pub cond_dim: usize,
    /// DCGAN ngf: channels of G's last hidden layer.
    pub g_channels: usize,
    /// DCGAN ndf: channels of D's first layer.
    pub d_channels: usize,
    /// Spectral normalisation in D, in place of its BatchNorm. Off by default: on the emoji,
    /// with hinge loss, a spectrally normalised D left G's images grey after 300 steps where
    /// DCGAN's BatchNorm D gave coloured shapes. (BatchNorm sees the real, generated and
    /// mismatched batches separately; the mismatched batch has the real batch's images, and
    /// the text enters only after the last BatchNorm, in the projection.)
    pub spectral_norm: bool,
}

impl Default for TextGanConfig {
    fn default() -> Self {
        Self { latent_dim: 100, cond_dim: 64, g_channels: 32, d_channels: 32, spectral_norm: false }
    }
}

impl TextGanConfig {
    fn dcgan(&self) -> DcganConfig {
        DcganConfig {
            latent_dim: self.latent_dim + self.cond_dim,
            g_channels: self.g_channels,
            d_channels: self.d_channels,
            spectral_norm: self.spectral_norm,
            ..DcganConfig::default()
        }
    }
}

/// What conditioning augmentation drew for a batch: the draw and the Gaussian's parameters
/// (for the KL term).
pub struct Conditioning {
    pub code: Tensor,
    pub mean: Tensor,
    pub log_var: Tensor,
}

impl Conditioning {
    /// KL(N(mean, var) || N(0, I)), averaged over the batch.
    pub fn kl(&self) -> crate::Result<Tensor> {
        let n = self.mean.dim(0)? as f64;
        let per = ((self.mean.sqr()? + self.log_var.exp()?)? - &self.log_var)?.affine(1.0, -1.0)?;
        Ok((per.sum_all()? * (0.5 / n))?)
    }
}

pub struct TextGenerator {
    augment: Linear,
    gen: DcganGenerator,
    cfg: TextGanConfig,
}

impl TextGenerator {
    pub fn new(p: &ParamPath, cfg: &TextGanConfig, text_dim: usize, shape: ImageShape) -> crate::Result<Self> {
        let augment = Linear::new(&p.sub("augment"), text_dim, 2 * cfg.cond_dim, Init::FanInUniform { fan_in: text_dim }, true)?;
        let gen = DcganGenerator::new(&p.sub("dcgan"), &cfg.dcgan(), shape, 0)?;
        Ok(Self { augment, gen, cfg: cfg.clone() })
    }

    pub fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    pub fn cond_dim(&self) -> usize {
        self.cfg.cond_dim
    }

    pub fn image_shape(&self) -> ImageShape {
        self.gen.image_shape()
    }

    /// Conditioning augmentation of sentence embeddings `[N, text_dim]` with standard normal
    /// draws `eps` `[N, cond_dim]`.
    pub fn condition(&self, text: &Tensor, eps: &Tensor) -> crate::Result<Conditioning> {
        let stats = self.augment.forward(&unit_scale(text)?)?;
        let d = self.cfg.cond_dim;
        let (mean, log_var) = (stats.narrow(1, 0, d)?, stats.narrow(1, d, d)?);
        let code = (&mean + (log_var.affine(0.5, 0.0)?.exp()? * eps)?)?;
        Ok(Conditioning { code, mean, log_var })
    }

    /// Images from noise `z` `[N, latent_dim]` and a conditioning code `[N, cond_dim]`.
    pub fn forward(&self, z: &Tensor, code: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        self.gen.forward(&Tensor::cat(&[z, code], 1)?, None, mode)
    }
}

/// Sentence embeddings scaled to length sqrt(dim), so each component is about 1 whatever scale
/// the contrastive training (which only sees directions) left them at. Without it the
/// conditioning mean started ~20x smaller than its noise and G learned to ignore the text
/// (matching loss above chance's ln(batch) after 300 steps).
fn unit_scale(text: &Tensor) -> crate::Result<Tensor> {
    let dim = text.dim(1)? as f64;
    Ok((crate::text::encoder::normalise(text)? * dim.sqrt())?)
}

/// The matching-aware D loss (GAN-INT-CLS): a real image with its caption is real; a generated
/// image with its caption and a real image with another image's caption are both fake, each
/// weighted half.
pub fn matching_aware_d_loss(loss: GanLoss, real: &Tensor, fake: &Tensor, mismatched: &Tensor) -> crate::Result<Tensor> {
    loss.d_loss(real, &Tensor::cat(&[fake, mismatched], 0)?)
}

/// Width the sentence embedding is reduced to before D joins it to its feature map.
const D_TEXT_DIM: usize = 128;

pub struct TextDiscriminator {
    dis: DcganDiscriminator,
    /// Sentence embedding -> [`D_TEXT_DIM`] (then LeakyReLU), tiled over D's last map.
    text: Linear,
    /// 1x1 conv over [features, tiled text], BatchNorm, LeakyReLU, then a conv over the whole
    /// map to one logit: GAN-INT-CLS's matching head.
    joint: Conv2d,
    joint_bn: BatchNorm,
    head: Conv2d,
}

impl TextDiscriminator {
    pub fn new(p: &ParamPath, cfg: &TextGanConfig, text_dim: usize, shape: ImageShape) -> crate::Result<Self> {
        let dis = DcganDiscriminator::new(&p.sub("dcgan"), &cfg.dcgan(), shape, 0)?;
        let c = dis.feature_channels();
        let size = dis.feature_size();
        Ok(Self {
            text: Linear::new(&p.sub("text"), text_dim, D_TEXT_DIM, Init::DCGAN, true)?,
            joint: Conv2d::new(&p.sub("joint"), c + D_TEXT_DIM, c, 1, ConvSpec::new(1, 0), Init::DCGAN, false)?,
            joint_bn: BatchNorm::new(&p.sub("joint_bn"), c, Init::DCGAN_BN)?,
            head: Conv2d::new(&p.sub("match_head"), c, 1, size, ConvSpec::new(1, 0), Init::DCGAN, false)?,
            dis,
        })
    }

    /// Logits `[N]` of images `[N, C, R, R]` as real and matching the sentence embeddings `[N, E]`:
    /// D's unconditional logit plus the matching head's.
    pub fn forward(&self, images: &Tensor, text: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        let (logits, h) = self.dis.forward_features(images, mode)?;
        let (n, _, hh, ww) = h.dims4()?;
        let t = LRELU.forward(&self.text.forward(&unit_scale(text)?)?)?;
        let t = t.reshape((n, D_TEXT_DIM, 1, 1))?.repeat((1, 1, hh, ww))?;
        let j = self.joint_bn.forward_act(&self.joint.forward(&Tensor::cat(&[&h, &t], 1)?)?, mode, Some(0.2))?;
        Ok((logits + self.head.forward(&j)?.flatten_all()?)?)
    }
}
