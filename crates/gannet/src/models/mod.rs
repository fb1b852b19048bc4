//! Generators and discriminators, chosen by [`ModelConfig`].
//!
//! A generator maps latents `[N, latent_dim]` (and, for conditional models, labels `[N]`) to images
//! `[N, C, H, W]` in [-1, 1]; a discriminator maps images to one logit per image, `[N]`.
//! Conditional models (`conditional = "projection" | "acgan"`, see [`conditional`]) also take the
//! class of every image; the number of classes comes from the dataset.

pub mod arch;
pub mod biggan;
pub mod conditional;
pub mod dcgan;
pub mod mlp;
pub mod patchgan;
pub mod progan;
pub mod resnet;
pub mod resnet_translator;
pub mod srgan;
pub mod stylegan2;
pub mod text_gan;
pub mod unet;

pub use arch::Architecture;
pub use conditional::{AcganClassLoss, Conditioning};

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

/// An image-to-image network (pix2pix's U-Net, CycleGAN's ResNet generator, the super-resolution
/// generator): images [N, C, H, W] in [-1, 1] to images. None of them keeps batch statistics, so
/// training and evaluation run the same forward pass.
pub trait Translator: Send {
    fn forward(&self, x: &Tensor) -> crate::Result<Tensor>;
}

pub trait Generator: Send + Sync {
    fn forward(&self, z: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor>;
    fn latent_dim(&self) -> usize;
    fn image_shape(&self) -> ImageShape;
    /// Classes a conditional generator was built for; 0 when it ignores labels.
    fn num_classes(&self) -> usize {
        0
    }

    /// Tells the network which generator update comes next (counting from 0). Networks whose
    /// forward pass depends on training progress (Progressive GAN's growth and fade-in,
    /// StyleGAN2's style-mixing and noise draws) read it; the others ignore it. The step loop calls
    /// it before every step and a checkpoint loader with the saved step, so a resumed run, a
    /// sample grid and `gannet sample` all see the network the unbroken run had.
    fn set_step(&self, _step: u64) {}

    /// A term added to G's loss at generator update `step`, already weighted (BigGAN's orthogonal
    /// regularisation, StyleGAN2's lazy path-length penalty); `batch_size` is the run's batch.
    fn regularisation(&self, _step: u64, _batch_size: usize) -> crate::Result<Option<Tensor>> {
        Ok(None)
    }

    /// The style-based editing interface (mapping, synthesis, mean w) when the generator has one.
    fn as_style(&self) -> Option<&dyn StyleGenerator> {
        None
    }
}

/// A style-based generator (StyleGAN2): `z -> w` by a mapping network, then one `w` per synthesis
/// layer. Editing tools (truncation towards the mean w, style mixing, interpolation in w,
/// projection of real images into w) work through this interface.
pub trait StyleGenerator {
    /// Width of w.
    fn w_dim(&self) -> usize;
    /// How many w's the synthesis network takes (one per modulated layer, toRGB layers included).
    fn num_ws(&self) -> usize;
    /// z [N, latent_dim] -> w [N, w_dim].
    fn mapping(&self, z: &Tensor) -> crate::Result<Tensor>;
    /// The running mean of w tracked during training, `[w_dim]`: the centre of truncation.
    fn w_avg(&self) -> crate::Result<Tensor>;
    /// ws [N, num_ws, w_dim] -> images [N, C, H, W] in [-1, 1] (fixed noise: the same ws give the
    /// same images).
    fn synthesis(&self, ws: &Tensor) -> crate::Result<Tensor>;

    /// w [N, w_dim] -> ws [N, num_ws, w_dim], the same w for every layer.
    fn broadcast_w(&self, w: &Tensor) -> crate::Result<Tensor> {
        let (n, d) = w.dims2()?;
        Ok(w.unsqueeze(1)?.broadcast_as((n, self.num_ws(), d))?.contiguous()?)
    }

    /// ws whose layers `< cutoff` come from `coarse` and the others from `fine` (both [N, w_dim]):
    /// style mixing, for the training regulariser and the editing tools alike.
    fn mix_ws(&self, coarse: &Tensor, fine: &Tensor, cutoff: usize) -> crate::Result<Tensor> {
        let l = self.num_ws();
        if cutoff == 0 || cutoff >= l {
            return Err(crate::Error::Config(format!("the mixing cutoff must be between 1 and {} (the model has {l} w's), got {cutoff}", l - 1)));
        }
        let (a, b) = (self.broadcast_w(coarse)?, self.broadcast_w(fine)?);
        Ok(Tensor::cat(&[a.narrow(1, 0, cutoff)?, b.narrow(1, cutoff, l - cutoff)?], 1)?)
    }
}

pub trait Discriminator: Send {
    /// See [`Generator::set_step`].
    fn set_step(&self, _step: u64) {}

    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor>;

    /// Activations at every resolution, for feature losses (projection); empty when the
    /// architecture does not expose them.
    fn features(&self, _x: &Tensor) -> crate::Result<Vec<Tensor>> {
        Ok(Vec::new())
    }

    /// The logits `[N]` and, for an AC-GAN discriminator, its class logits `[N, classes]`, from one
    /// forward pass (BatchNorm statistics and spectral-norm iterations advance once).
    fn forward_with_classes(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<(Tensor, Option<Tensor>)> {
        Ok((self.forward(x, labels, mode)?, None))
    }
}

/// The architecture and its sizes, as written in a config file (`arch = "dcgan"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelConfig {
    Mlp(mlp::MlpConfig),
    Dcgan(dcgan::DcganConfig),
    Resnet(resnet::ResnetConfig),
    Stylegan2(stylegan2::Stylegan2Config),
    Progan(progan::ProganConfig),
    Biggan(biggan::BigganConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Dcgan(dcgan::DcganConfig::default())
    }
}

impl ModelConfig {
    /// The architecture's own facts and builders: the one place that tells the variants apart.
    pub fn arch(&self) -> &dyn Architecture {
        match self {
            ModelConfig::Mlp(c) => c,
            ModelConfig::Dcgan(c) => c,
            ModelConfig::Resnet(c) => c,
            ModelConfig::Stylegan2(c) => c,
            ModelConfig::Progan(c) => c,
            ModelConfig::Biggan(c) => c,
        }
    }

    fn arch_mut(&mut self) -> &mut dyn Architecture {
        match self {
            ModelConfig::Mlp(c) => c,
            ModelConfig::Dcgan(c) => c,
            ModelConfig::Resnet(c) => c,
            ModelConfig::Stylegan2(c) => c,
            ModelConfig::Progan(c) => c,
            ModelConfig::Biggan(c) => c,
        }
    }

    pub fn latent_dim(&self) -> usize {
        self.arch().latent_dim()
    }

    /// Whether and how the model uses class labels.
    pub fn conditioning(&self) -> Conditioning {
        self.arch().conditioning()
    }

    /// Sets the conditioning (the CLI's `--conditional`); the ResNet, ProGAN and StyleGAN2 models
    /// are unconditional only, BigGAN is projection-conditional only.
    pub fn set_conditioning(&mut self, cond: Conditioning) -> crate::Result<()> {
        self.arch_mut().set_conditioning(cond)
    }

    /// The number of classes the networks are built for: `dataset_classes` for a conditional
    /// model (an error when it is 0), 0 for an unconditional one.
    pub fn classes_for(&self, dataset_classes: usize) -> crate::Result<usize> {
        let cond = self.conditioning();
        if !cond.is_conditional() {
            return Ok(0);
        }
        if dataset_classes == 0 {
            let (what, or_else) = match self {
                ModelConfig::Biggan(_) => (format!("arch = \"biggan\" (class-conditional, {cond} discriminator)"), "an unconditional arch such as \"resnet\""),
                _ => (format!("model.conditional = \"{cond}\""), "conditional = \"none\""),
            };
            return Err(crate::Error::Config(format!(
                "{what} needs class labels, but the dataset has none: use an IDX \
                 dataset with a labels file, a folder with one subfolder per class, or {or_else}"
            )));
        }
        Ok(dataset_classes)
    }

    /// The default config of the architecture called `arch` (the CLI's `--arch`).
    pub fn for_arch(arch: &str) -> crate::Result<Self> {
        toml::from_str(&format!("arch = {arch:?}")).map_err(|e| crate::Error::Config(format!("unknown architecture '{arch}': {}", e.message())))
    }

    /// Sets the latent width (the CLI's `--latent-dim`).
    pub fn set_latent_dim(&mut self, v: usize) {
        self.arch_mut().set_latent_dim(v)
    }

    /// Sets the width of both networks (the CLI's `--channels`): base channels of the conv
    /// models, the hidden width of the MLP, the largest layer of StyleGAN2.
    pub fn set_width(&mut self, v: usize) {
        self.arch_mut().set_width(v)
    }

    /// Whether training differentiates a gradient (StyleGAN2's path-length penalty), so the
    /// process must turn on candle's second-order gradients before its first backward pass.
    pub fn needs_second_order(&self) -> bool {
        self.arch().needs_second_order()
    }

    /// Rejects widths and depths of 0 or beyond what any machine could hold, naming the setting
    /// (whether a size within these bounds fits this machine is [`Self::step_bytes_per_image`]'s
    /// and the parameter store's business).
    pub fn validate_sizes(&self) -> crate::Result<()> {
        for (name, value, max) in self.arch().sizes() {
            if value == 0 || value > max {
                return Err(crate::Error::Config(format!("{name} must be between 1 and {max}, got {value}")));
            }
        }
        Ok(())
    }

    /// Roughly the bytes one image costs in a training step (activations of G and D, their
    /// gradients and the convolutions' unfolded inputs), from the feature-map sizes of the
    /// architecture: sum over resolutions of channels x pixels. An estimate for refusing
    /// impossible requests before allocating, not a measurement; None on overflow.
    pub fn step_bytes_per_image(&self, shape: ImageShape) -> Option<u64> {
        let elems = (shape.numel() as u64).checked_add(self.arch().activation_elems(shape.resolution as u64)?)?;
        // G and D; forward values, gradients and unfolded inputs: ~8 floats of 4 bytes each.
        elems.checked_mul(2 * 8 * 4)
    }

    pub fn name(&self) -> &'static str {
        self.arch().name()
    }
}

/// A generator and a discriminator with their parameter stores.
pub struct Gan {
    pub gen: Box<dyn Generator>,
    pub disc: Box<dyn Discriminator>,
    pub gen_params: ParamStore,
    pub disc_params: ParamStore,
}

/// Builds both networks of an unconditional model; weights are drawn from `seed` (G and D from
/// independent streams). A conditional config is an error here: use [`build_with_classes`].
pub fn build(cfg: &ModelConfig, shape: ImageShape, seed: u64, device: &Device) -> crate::Result<Gan> {
    build_with_classes(cfg, shape, 0, seed, device)
}

/// Builds both networks for data with `classes` classes (ignored by unconditional models).
pub fn build_with_classes(cfg: &ModelConfig, shape: ImageShape, classes: usize, seed: u64, device: &Device) -> crate::Result<Gan> {
    let k = cfg.classes_for(classes)?;
    let gen_params = ParamStore::new(crate::rng::mix(seed, crate::rng::Stream::Init, 1), device);
    let disc_params = ParamStore::new(crate::rng::mix(seed, crate::rng::Stream::Init, 2), device);
    let gen = cfg.arch().generator(&gen_params, shape, k, seed)?;
    let disc = cfg.arch().discriminator(&disc_params, shape, k)?;
    Ok(Gan { gen, disc, gen_params, disc_params })
}

/// Builds only the generator, with the same initial weights [`build`] gives it for `seed`
/// (used for the EMA shadow generator and for sampling).
pub fn build_generator(cfg: &ModelConfig, shape: ImageShape, seed: u64, device: &Device) -> crate::Result<(Box<dyn Generator>, ParamStore)> {
    build_generator_with_classes(cfg, shape, 0, seed, device)
}

/// [`build_generator`] for data with `classes` classes (ignored by unconditional models).
pub fn build_generator_with_classes(
    cfg: &ModelConfig,
    shape: ImageShape,
    classes: usize,
    seed: u64,
    device: &Device,
) -> crate::Result<(Box<dyn Generator>, ParamStore)> {
    let k = cfg.classes_for(classes)?;
    let params = ParamStore::new(crate::rng::mix(seed, crate::rng::Stream::Init, 1), device);
    let gen = cfg.arch().generator(&params, shape, k, seed)?;
    Ok((gen, params))
}
