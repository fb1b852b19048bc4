//! The vanilla GAN of Goodfellow et al.: fully connected G and D. Also serves the 2-D toy
//! distributions (an "image" of shape [2, 1, 1]).

use super::{Discriminator, Generator, ImageShape};
use crate::nn::{Activation, BatchNorm, Init, Linear, Mode, ParamPath};
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
    /// Batch normalisation after each hidden layer of G (before its ReLU), as the PacGAN and
    /// VEEGAN 2-D benchmarks' generators have; it speeds up the toys' training a lot.
    pub gen_batch_norm: bool,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self { latent_dim: 64, hidden: 256, layers: 2, tanh_output: true, gen_batch_norm: false }
    }
}

fn stack(p: &ParamPath, dims: &[usize]) -> crate::Result<Vec<Linear>> {
    dims.windows(2)
        .enumerate()
        .map(|(i, w)| Linear::new(&p.sub(format!("fc{i}")), w[0], w[1], Init::FanInUniform { fan_in: w[0] }, true))
        .collect()
}

fn run(layers: &[Linear], x: &Tensor, hidden_act: Activation) -> crate::Result<Tensor> {
    let mut h = x.clone();
    for (i, l) in layers.iter().enumerate() {
        h = l.forward(&h)?;
        if i + 1 < layers.len() {
            h = hidden_act.forward(&h)?;
        }
    }
    Ok(h)
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
}

impl MlpGenerator {
    pub fn new(p: &ParamPath, cfg: &MlpConfig, shape: ImageShape) -> crate::Result<Self> {
        let layers = stack(p, &dims(cfg.latent_dim, cfg, shape.numel()))?;
        let norms = if cfg.gen_batch_norm {
            (0..cfg.layers).map(|i| BatchNorm::new(&p.sub(format!("bn{i}")), cfg.hidden, Init::Const(1.0))).collect::<crate::Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(Self { layers, norms, cfg: cfg.clone(), shape })
    }
}

impl Generator for MlpGenerator {
    fn forward(&self, z: &Tensor, _labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let mut x = z.clone();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(&x)?;
            if i + 1 < self.layers.len() {
                if let Some(bn) = self.norms.get(i) {
                    x = bn.forward(&x, mode)?;
                }
                x = x.relu()?;
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
}

pub struct MlpDiscriminator {
    layers: Vec<Linear>,
}

impl MlpDiscriminator {
    pub fn new(p: &ParamPath, cfg: &MlpConfig, shape: ImageShape) -> crate::Result<Self> {
        Ok(Self { layers: stack(p, &dims(shape.numel(), cfg, 1))? })
    }
}

impl Discriminator for MlpDiscriminator {
    fn forward(&self, x: &Tensor, _labels: Option<&Tensor>, _mode: Mode) -> crate::Result<Tensor> {
        let h = x.flatten_from(1)?;
        Ok(run(&self.layers, &h, Activation::LeakyRelu(0.2))?.flatten_all()?)
    }
}
