//! Training the MLP GAN on the 2-D mode-coverage benchmarks ([`crate::metrics::mode_coverage`]
//! defines the toys and scores the points): a small self-contained loop, one D step and one G
//! step, fully deterministic given the seed. It keeps nothing on disk, so it does not use the
//! run engine; it lives with training so that metrics never import training code.

use crate::loss::GanLoss;
use crate::metrics::mode_coverage::{coverage, Coverage, Toy};
use crate::models::mlp::MlpConfig;
use crate::models::{self, ImageShape, ModelConfig};
use crate::nn::Mode;
use crate::optim::{Adam, AdamConfig};
use crate::rng::{self, Stream};
use candle_core::{Device, Tensor};

/// Settings of the toy training run and its evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ToyConfig {
    pub seed: u64,
    pub latent_dim: usize,
    pub hidden: usize,
    pub layers: usize,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// Learning rate at the last step as a fraction of `lr`, reached by a cosine decay (both
    /// networks); 1 keeps it constant. Annealing sharpens the generated modes at the end.
    pub lr_end: f64,
    /// Fraction of the steps after which the decay starts (constant before).
    pub lr_decay_start: f64,
    pub beta1: f64,
    pub loss: GanLoss,
    /// Decay of an EMA (shadow) copy of G's weights ([`super::Ema`]), updated after every
    /// G step and used for the scored samples; 0 scores the trained G itself. Averaging damps
    /// the oscillation of G around the modes (Yazici et al. 2019).
    pub ema_decay: f64,
    /// Batch normalisation in G's hidden layers ([`MlpConfig::gen_batch_norm`]).
    pub gen_batch_norm: bool,
    /// Generated points scored after training.
    pub eval_samples: usize,
    /// High-quality samples a mode needs to count as covered.
    pub min_count: usize,
}

impl Default for ToyConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            latent_dim: 2,
            hidden: 128,
            layers: 3,
            steps: 3000,
            batch: 256,
            lr: 1e-3,
            lr_end: 0.1,
            lr_decay_start: 0.6,
            beta1: 0.5,
            loss: GanLoss::NonSaturating,
            gen_batch_norm: true,
            ema_decay: 0.99,
            eval_samples: 2500,
            min_count: 10,
        }
    }
}

/// Trains the MLP GAN on `toy` and returns `cfg.eval_samples` generated points.
pub fn train_toy(toy: Toy, cfg: &ToyConfig, device: &Device) -> crate::Result<Vec<[f32; 2]>> {
    if cfg.batch < 2 || !(cfg.lr_decay_start >= 0.0 && cfg.lr_decay_start < 1.0) {
        return Err(crate::Error::Config(format!("toy batch must be at least 2 and lr_decay_start in [0, 1), got {} and {}", cfg.batch, cfg.lr_decay_start)));
    }
    let mcfg = MlpConfig {
        latent_dim: cfg.latent_dim,
        hidden: cfg.hidden,
        layers: cfg.layers,
        tanh_output: false,
        gen_batch_norm: cfg.gen_batch_norm,
        ..MlpConfig::default()
    };
    let shape = ImageShape { channels: 2, resolution: 1 };
    let models::Gan { gen, disc, gen_params, disc_params } = models::build(&ModelConfig::Mlp(mcfg.clone()), shape, cfg.seed, device)?;
    let adam = AdamConfig { lr: cfg.lr, beta1: cfg.beta1, beta2: 0.999, ..AdamConfig::default() };
    let mut opt_g = Adam::new(gen_params.trainable(), adam)?;
    let mut opt_d = Adam::new(disc_params.trainable(), adam)?;
    let ema = if cfg.ema_decay > 0.0 {
        Some(super::Ema::new(&ModelConfig::Mlp(mcfg.clone()), shape, 0, cfg.seed, device, &gen_params, cfg.ema_decay)?)
    } else {
        None
    };
    let b = cfg.batch;
    for step in 0..cfg.steps as u64 {
        let t = ((step as f64 / cfg.steps.max(1) as f64 - cfg.lr_decay_start) / (1.0 - cfg.lr_decay_start)).max(0.0);
        let lr = cfg.lr * (cfg.lr_end + (1.0 - cfg.lr_end) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
        opt_g.set_lr(lr);
        opt_d.set_lr(lr);
        let mut data_rng = rng::rng(cfg.seed, Stream::Shuffle, step);
        let real = Tensor::from_vec(toy.sample(&mut data_rng, b), (b, 2, 1, 1), device)?;
        let mut zr = rng::rng(cfg.seed, Stream::Latent, 2 * step);
        let z = rng::randn(&mut zr, &[b, cfg.latent_dim], device)?;
        let fake = gen.forward(&z, None, Mode::Train)?;
        let d_loss = cfg.loss.d_loss(&disc.forward(&real, None, Mode::Train)?, &disc.forward(&fake.detach(), None, Mode::Train)?)?;
        opt_d.step(&d_loss.backward()?)?;
        let mut zr = rng::rng(cfg.seed, Stream::Latent, 2 * step + 1);
        let z = rng::randn(&mut zr, &[b, cfg.latent_dim], device)?;
        let fake = gen.forward(&z, None, Mode::Train)?;
        let g_loss = cfg.loss.g_loss(&disc.forward(&fake, None, Mode::Train)?)?;
        opt_g.step(&g_loss.backward()?)?;
        if let Some(e) = &ema {
            e.update(&gen_params, step)?;
        }
    }
    let mut zr = rng::rng(cfg.seed, Stream::Sample, 0);
    let z = rng::randn(&mut zr, &[cfg.eval_samples, cfg.latent_dim], device)?;
    let g: &dyn models::Generator = ema.as_ref().map_or(gen.as_ref(), |e| e.gen.as_ref());
    let x = g.forward(&z, None, Mode::Eval)?.flatten_from(1)?.to_vec2::<f32>()?;
    Ok(x.into_iter().map(|r| [r[0], r[1]]).collect())
}

/// Trains on `toy` and scores the result.
pub fn evaluate(toy: Toy, cfg: &ToyConfig, device: &Device) -> crate::Result<Coverage> {
    let pts = train_toy(toy, cfg, device)?;
    Ok(coverage(&pts, &toy.centers(), toy.std(), cfg.min_count))
}
