//! StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"),
//! `arch = "stylegan2"`, sized for small images on a CPU.
//!
//! - G = [`mapping`] (z -> w, 8 layers in the paper, `mapping_layers` here) + [`synthesis`]
//!   (a learned 4x4 constant, modulated/demodulated 3x3 convolutions with per-layer noise, and a
//!   skip architecture of toRGB outputs summed across resolutions). One w per synthesis layer.
//! - D = [`discriminator`]: residual blocks, minibatch stddev, no normalisation.
//! - Training: style-mixing regularisation (with probability `style_mixing` a batch switches
//!   from one w to a second one at a random layer), the lazy path-length penalty on G
//!   (`pl_weight`, every `pl_every` G steps), the EMA generator and lazy R1 on D (`[penalty]`,
//!   shared with the other architectures), optional ADA (`ada_target`, see `train::ada`).
//! - Editing goes through [`StyleGenerator`]: truncation towards the tracked mean w, style mixing,
//!   interpolation in w, projection of real images (see `crate::edit`).
//!
//! Random draws inside G (mixing, noise, the path-length batch) come from
//! `rng(seed, Stream::Network, step * 1024 + k)` for the k-th draw of generator update `step`, so
//! a resumed run repeats the unbroken one; sampling uses the fixed noise buffers.

pub mod discriminator;
pub mod mapping;
pub mod synthesis;

use super::{Discriminator, Generator, ImageShape, StyleGenerator};
use crate::nn::{Mode, ParamPath};
use crate::rng::{self, Stream};
use candle_core::{Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use synthesis::{Noise, Synthesis};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stylegan2Config {
    /// Width of z.
    pub latent_dim: usize,
    /// Width of w.
    pub w_dim: usize,
    /// Fully connected layers of the mapping network.
    pub mapping_layers: usize,
    /// Feature maps at resolution r: `min(max_channels, channel_base / r)` (G and D alike).
    pub channel_base: usize,
    pub max_channels: usize,
    /// Probability that a training batch mixes two w's (0 = off).
    pub style_mixing: f64,
    /// Weight of the path-length penalty on G (0 = off; on, it needs second-order gradients).
    pub pl_weight: f64,
    /// The penalty runs every `pl_every` G steps, weighted by `pl_every` (lazy regularisation).
    pub pl_every: u64,
    /// Decay of the running mean path length the penalty pulls towards.
    pub pl_decay: f64,
}

impl Default for Stylegan2Config {
    fn default() -> Self {
        Self {
            latent_dim: 64,
            w_dim: 64,
            mapping_layers: 4,
            channel_base: 1024,
            max_channels: 64,
            style_mixing: 0.9,
            pl_weight: 2.0,
            pl_every: 4,
            pl_decay: 0.01,
        }
    }
}

impl Stylegan2Config {
    pub fn channels(&self, res: usize) -> usize {
        (self.channel_base / res).clamp(1, self.max_channels)
    }

    fn check(&self, shape: ImageShape) -> crate::Result<()> {
        let r = shape.resolution;
        let bad = |m: String| Err(crate::Error::Config(m));
        if !(r.is_power_of_two() && r >= 8) {
            return bad(format!("arch = \"stylegan2\" makes square images of a power-of-two size >= 8; set data.resolution to 8, 16, 32 or 64 (got {r})"));
        }
        if self.w_dim == 0 || self.mapping_layers == 0 || self.max_channels == 0 {
            return bad("model.w_dim, model.mapping_layers and model.max_channels must be at least 1".into());
        }
        if self.pl_every == 0 {
            return bad("model.pl_every must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.style_mixing) || !(0.0..=1.0).contains(&self.pl_decay) || self.pl_weight < 0.0 {
            return bad("model.style_mixing and model.pl_decay must be in [0, 1], model.pl_weight >= 0".into());
        }
        Ok(())
    }
}

/// Draw index reserved for the path-length batch within a step (forward passes use 0, 1, ...).
const PL_DRAW: u64 = 1023;

pub struct Stylegan2Generator {
    mapping: mapping::Mapping,
    synthesis: Synthesis,
    pl_mean: Var,
    cfg: Stylegan2Config,
    shape: ImageShape,
    seed: u64,
    /// The generator update in progress and the draws made in it (atomics only so that a
    /// generator can be shared with the thread pool; one thread uses them at a time).
    step: AtomicU64,
    draws: AtomicU64,
}

impl Stylegan2Generator {
    pub fn new(p: &ParamPath, cfg: &Stylegan2Config, shape: ImageShape, seed: u64) -> crate::Result<Self> {
        cfg.check(shape)?;
        Ok(Self {
            mapping: mapping::Mapping::new(&p.sub("mapping"), cfg.latent_dim, cfg.w_dim, cfg.mapping_layers)?,
            synthesis: Synthesis::new(&p.sub("synthesis"), cfg.w_dim, shape.resolution, shape.channels, |r| cfg.channels(r))?,
            pl_mean: p.buffer("pl_mean", &[1], crate::nn::Init::Const(0.0))?,
            cfg: cfg.clone(),
            shape,
            seed,
            step: AtomicU64::new(0),
            draws: AtomicU64::new(0),
        })
    }

    fn rng(&self, draw: u64) -> rand::rngs::StdRng {
        rng::rng(self.seed, Stream::Network, self.step.load(Ordering::Relaxed) * 1024 + draw)
    }

    fn next_rng(&self) -> rand::rngs::StdRng {
        let k = self.draws.load(Ordering::Relaxed);
        self.draws.store((k + 1).min(PL_DRAW - 1), Ordering::Relaxed);
        self.rng(k)
    }

    /// ws for a training pass. Style mixing regularisation: with probability `style_mixing`,
    /// layers from a random cutoff on take the w of a second latent batch.
    fn training_ws(&self, w: &Tensor, r: &mut rand::rngs::StdRng) -> crate::Result<Tensor> {
        if self.cfg.style_mixing == 0.0 || r.random::<f64>() >= self.cfg.style_mixing {
            return self.broadcast_w(w);
        }
        let cutoff = r.random_range(1..self.synthesis.num_ws());
        let z2 = rng::randn_shard(r, &[w.dim(0)?, self.cfg.latent_dim], w.device())?;
        self.mix_ws(w, &self.mapping.forward(&z2, false)?, cutoff)
    }

    /// The path-length penalty (Karras et al. 2020, sec. 3.2): for random image-space directions
    /// y, the length of J_w^T y should not depend on w. The gradient is taken at w as a point
    /// (a leaf), so the penalty shapes the synthesis network, not the mapping (the official code
    /// also lets it reach the mapping through w; at this scale the difference did not matter
    /// enough to pay for a second graph).
    fn path_length_penalty(&self, batch_size: usize) -> crate::Result<Tensor> {
        let mut r = self.rng(PL_DRAW);
        // `batch_size` is the combined batch: data-parallel processes each take their slice of
        // the n latents (drawn for all), and average the lengths' mean for `pl_mean`.
        let n = (batch_size / 2).max(1);
        let procs = crate::parallel::world().size();
        if !n.is_multiple_of(procs) {
            return Err(crate::Error::Config(format!(
                "StyleGAN2's path length regularisation draws half the batch, {n} images, which does not split over {procs} processes: \
                 use a schedule.batch_size (--batch-size) that is a multiple of {}",
                2 * procs
            )));
        }
        let shard = crate::parallel::Shard::of(n)?;
        let device = self.pl_mean.device();
        let z = shard.narrow(&rng::randn(&mut r, &[n, self.cfg.latent_dim], device)?)?;
        let ws = Var::from_tensor(&self.broadcast_w(&self.mapping.forward(&z, false)?)?.detach())?;
        let img = self.synthesis.forward(ws.as_tensor(), Noise::Random(&mut r))?;
        let (_, _, h, w) = img.dims4()?;
        let dirs = (rng::randn_shard(&mut r, img.dims(), device)? / ((h * w) as f64).sqrt())?;
        let g = crate::autodiff::grad_of(&(img * dirs)?.sum_all()?, ws.as_tensor())?;
        let lengths = g.sqr()?.sum(2)?.mean(1)?.sqrt()?; // [n]
        let old = self.pl_mean.as_tensor().detach();
        let mut batch_mean = [lengths.detach().mean_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?];
        crate::parallel::mean_f64(&mut batch_mean)?;
        let batch_mean = Tensor::new(&[batch_mean[0] as f32], device)?.to_dtype(old.dtype())?;
        let mean = ((&old + ((batch_mean - &old)? * self.cfg.pl_decay)?)?).detach();
        self.pl_mean.set(&mean)?;
        let pen = lengths.broadcast_sub(&mean)?.sqr()?.mean_all()?;
        Ok((pen * (self.cfg.pl_weight * self.cfg.pl_every as f64))?)
    }
}

impl Generator for Stylegan2Generator {
    fn forward(&self, z: &Tensor, _labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let train = mode == Mode::Train;
        let w = self.mapping.forward(z, train)?;
        if !train {
            return self.synthesis.forward(&self.broadcast_w(&w)?, Noise::Fixed);
        }
        let mut r = self.next_rng();
        let ws = self.training_ws(&w, &mut r)?;
        self.synthesis.forward(&ws, Noise::Random(&mut r))
    }

    fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    fn image_shape(&self) -> ImageShape {
        self.shape
    }

    fn set_step(&self, step: u64) {
        self.step.store(step, Ordering::Relaxed);
        self.draws.store(0, Ordering::Relaxed);
    }

    fn regularisation(&self, step: u64, batch_size: usize) -> crate::Result<Option<Tensor>> {
        if self.cfg.pl_weight == 0.0 || !step.is_multiple_of(self.cfg.pl_every) {
            return Ok(None);
        }
        self.path_length_penalty(batch_size).map(Some)
    }

    fn as_style(&self) -> Option<&dyn StyleGenerator> {
        Some(self)
    }
}

impl StyleGenerator for Stylegan2Generator {
    fn w_dim(&self) -> usize {
        self.cfg.w_dim
    }

    fn num_ws(&self) -> usize {
        self.synthesis.num_ws()
    }

    fn mapping(&self, z: &Tensor) -> crate::Result<Tensor> {
        self.mapping.forward(z, false)
    }

    fn w_avg(&self) -> crate::Result<Tensor> {
        Ok(self.mapping.w_avg())
    }

    fn synthesis(&self, ws: &Tensor) -> crate::Result<Tensor> {
        self.synthesis.forward(ws, Noise::Fixed)
    }
}

pub struct Stylegan2Discriminator {
    net: discriminator::ResidualDiscriminator,
}

impl Stylegan2Discriminator {
    pub fn new(p: &ParamPath, cfg: &Stylegan2Config, shape: ImageShape) -> crate::Result<Self> {
        cfg.check(shape)?;
        Ok(Self { net: discriminator::ResidualDiscriminator::new(p, shape.resolution, shape.channels, |r| cfg.channels(r))? })
    }
}

impl Discriminator for Stylegan2Discriminator {
    fn forward(&self, x: &Tensor, _labels: Option<&Tensor>, _mode: Mode) -> crate::Result<Tensor> {
        self.net.forward(x)
    }

    fn features(&self, x: &Tensor) -> crate::Result<Vec<Tensor>> {
        self.net.features(x)
    }
}
