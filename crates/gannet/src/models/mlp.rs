//! The vanilla GAN of Goodfellow et al.: fully connected G and D. Also serves the 2-D toy
//! distributions (an "image" of shape [2, 1, 1]).

use super::conditional::{self, Conditioning};
use super::{Discriminator, Generator, ImageShape};
use crate::nn::{Activation, BatchNorm, Embedding, Init, Linear, Mode, ParamPath};
use crate::ops;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    pub latent_dim: usize,
    pub hidden: usize,
    /// Hidden layers in each network.
    pub layers: usize,
    /// Squash G's output with tanh (images in [-1,1]); off for unbounded toy data.
    pub tanh_output: bool,
    /// Class conditioning: "none", "projection" or "acgan". G gets the one-hot label concatenated
    /// to the latent; D a projection term or an auxiliary linear classifier on its last hidden
    /// layer.
    pub conditional: Conditioning,
    /// Batch normalisation after each hidden layer of G (before its ReLU), as the PacGAN and
    /// VEEGAN 2-D benchmarks' generators have; it speeds up the toys' training a lot.
    pub gen_batch_norm: bool,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self { latent_dim: 64, hidden: 256, layers: 2, tanh_output: true, conditional: Conditioning::None, gen_batch_norm: false }
    }
}

fn stack(p: &ParamPath, dims: &[usize]) -> crate::Result<Vec<Linear>> {
    dims.windows(2).enumerate().map(|(i, w)| Linear::new(&p.sub(format!("fc{i}")), w[0], w[1], Init::FanInUniform { fan_in: w[0] }, true)).collect()
}

fn dims(first: usize, cfg: &MlpConfig, last: usize) -> Vec<usize> {
    let mut d = vec![first];
    d.extend(std::iter::repeat_n(cfg.hidden, cfg.layers));
    d.push(last);
    d
}

pub struct MlpGenerator {
    layers: Vec<Linear>,
    /// One per hidden layer when `gen_batch_norm`, else empty.
    norms: Vec<BatchNorm>,
    cfg: MlpConfig,
    shape: ImageShape,
    classes: usize,
}

impl MlpGenerator {
    /// `classes` > 0: the one-hot label is concatenated to the latent.
    pub fn new(p: &ParamPath, cfg: &MlpConfig, shape: ImageShape, classes: usize) -> crate::Result<Self> {
        let layers = stack(p, &dims(cfg.latent_dim + classes, cfg, shape.numel()))?;
        let norms = if cfg.gen_batch_norm {
            (0..cfg.layers).map(|i| BatchNorm::new(&p.sub(format!("bn{i}")), cfg.hidden, Init::Const(1.0))).collect::<crate::Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(Self { layers, norms, cfg: cfg.clone(), shape, classes })
    }
}

impl Generator for MlpGenerator {
    fn forward(&self, z: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let mut x = if self.classes > 0 { conditional::concat_one_hot(z, conditional::require_labels(labels, "generator")?, self.classes)? } else { z.clone() };
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(&x)?;
            if i + 1 < self.layers.len() {
                x = match self.norms.get(i) {
                    Some(bn) => bn.forward_act(&x, mode, Some(0.0))?,
                    None => ops::relu(&x)?,
                };
            }
        }
        if self.cfg.tanh_output {
            x = x.tanh()?;
        }
        let s = self.shape;
        Ok(x.reshape((z.dim(0)?, s.channels, s.resolution, s.resolution))?)
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

pub struct MlpDiscriminator {
    layers: Vec<Linear>,
    class_head: ClassHead,
}

enum ClassHead {
    None,
    Projection(Embedding),
    Auxiliary(Linear),
}

const D_ACT: Activation = Activation::LeakyRelu(0.2);

impl MlpDiscriminator {
    pub fn new(p: &ParamPath, cfg: &MlpConfig, shape: ImageShape, classes: usize) -> crate::Result<Self> {
        let d = dims(shape.numel(), cfg, 1);
        // The features the class head reads: the input of the last layer.
        let feat = d[d.len() - 2];
        let class_head = match (cfg.conditional, classes) {
            (Conditioning::None, _) | (_, 0) => ClassHead::None,
            (Conditioning::Projection, k) => {
                ClassHead::Projection(Embedding::new(&p.sub("class_embed"), "weight", k, feat, Init::FanInUniform { fan_in: feat })?)
            }
            (Conditioning::Acgan, k) => ClassHead::Auxiliary(Linear::new(&p.sub("class_head"), feat, k, Init::FanInUniform { fan_in: feat }, true)?),
        };
        Ok(Self { layers: stack(p, &d)?, class_head })
    }
}

impl Discriminator for MlpDiscriminator {
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        Ok(self.forward_with_classes(x, labels, mode)?.0)
    }

    fn forward_with_classes(&self, x: &Tensor, labels: Option<&Tensor>, _mode: Mode) -> crate::Result<(Tensor, Option<Tensor>)> {
        let (last, hidden) = self.layers.split_last().expect("at least one layer");
        let mut h = x.flatten_from(1)?;
        for l in hidden {
            h = D_ACT.forward(&l.forward(&h)?)?;
        }
        let logits = last.forward(&h)?.flatten_all()?;
        match &self.class_head {
            ClassHead::None => Ok((logits, None)),
            ClassHead::Projection(e) => {
                let labels = conditional::require_labels(labels, "discriminator")?;
                Ok(((logits + conditional::projection(e, &h, labels)?)?, None))
            }
            ClassHead::Auxiliary(l) => Ok((logits, Some(l.forward(&h)?))),
        }
    }
}
