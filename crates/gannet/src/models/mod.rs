//! Generators and discriminators, chosen by [`ModelConfig`].
//!
//! A generator maps latents [N, latent_dim] (and, for conditional models, labels [N]) to images
//! [N, C, H, W] in [-1, 1]; a discriminator maps images to one logit per image, [N].

pub mod dcgan;
pub mod mlp;
pub mod resnet;

use crate::nn::{Mode, ParamStore};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Channels and square resolution of the images a model makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub resolution: usize,
}

impl ImageShape {
    pub fn numel(&self) -> usize {
        self.channels * self.resolution * self.resolution
    }
}

pub trait Generator {
    fn forward(&self, z: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor>;
    fn latent_dim(&self) -> usize;
    fn image_shape(&self) -> ImageShape;
}

pub trait Discriminator {
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor>;
}

/// The architecture and its sizes, as written in a config file (`arch = "dcgan"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelConfig {
    Mlp(mlp::MlpConfig),
    Dcgan(dcgan::DcganConfig),
    Resnet(resnet::ResnetConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Dcgan(dcgan::DcganConfig::default())
    }
}

impl ModelConfig {
    pub fn latent_dim(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.latent_dim,
            ModelConfig::Dcgan(c) => c.latent_dim,
            ModelConfig::Resnet(c) => c.latent_dim,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Mlp(_) => "mlp",
            ModelConfig::Dcgan(_) => "dcgan",
            ModelConfig::Resnet(_) => "resnet",
        }
    }
}

/// A generator and a discriminator with their parameter stores.
pub struct Gan {
    pub gen: Box<dyn Generator>,
    pub disc: Box<dyn Discriminator>,
    pub gen_params: ParamStore,
    pub disc_params: ParamStore,
}

/// Builds both networks; weights are drawn from `seed` (G and D from independent streams).
pub fn build(cfg: &ModelConfig, shape: ImageShape, seed: u64, device: &Device) -> crate::Result<Gan> {
    let gen_params = ParamStore::new(crate::rng::mix(seed, crate::rng::Stream::Init, 1), device);
    let disc_params = ParamStore::new(crate::rng::mix(seed, crate::rng::Stream::Init, 2), device);
    let (gen, disc): (Box<dyn Generator>, Box<dyn Discriminator>) = match cfg {
        ModelConfig::Mlp(c) => (
            Box::new(mlp::MlpGenerator::new(&gen_params.root(), c, shape)?),
            Box::new(mlp::MlpDiscriminator::new(&disc_params.root(), c, shape)?),
        ),
        ModelConfig::Dcgan(c) => (
            Box::new(dcgan::DcganGenerator::new(&gen_params.root(), c, shape)?),
            Box::new(dcgan::DcganDiscriminator::new(&disc_params.root(), c, shape)?),
        ),
        ModelConfig::Resnet(c) => (
            Box::new(resnet::ResnetGenerator::new(&gen_params.root(), c, shape)?),
            Box::new(resnet::ResnetDiscriminator::new(&disc_params.root(), c, shape)?),
        ),
    };
    Ok(Gan { gen, disc, gen_params, disc_params })
}

/// Builds only the generator, with the same initial weights [`build`] gives it for `seed`
/// (used for the EMA shadow generator and for sampling).
pub fn build_generator(cfg: &ModelConfig, shape: ImageShape, seed: u64, device: &Device) -> crate::Result<(Box<dyn Generator>, ParamStore)> {
    let params = ParamStore::new(crate::rng::mix(seed, crate::rng::Stream::Init, 1), device);
    let gen: Box<dyn Generator> = match cfg {
        ModelConfig::Mlp(c) => Box::new(mlp::MlpGenerator::new(&params.root(), c, shape)?),
        ModelConfig::Dcgan(c) => Box::new(dcgan::DcganGenerator::new(&params.root(), c, shape)?),
        ModelConfig::Resnet(c) => Box::new(resnet::ResnetGenerator::new(&params.root(), c, shape)?),
    };
    Ok((gen, params))
}
