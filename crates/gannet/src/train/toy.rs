//! The MLP GAN on the 2-D mode-coverage benchmarks ([`crate::metrics::mode_coverage`] defines
//! the mixtures and scores the points), as an engine task: one D step and one G step per step,
//! fully deterministic given the seed. Weights come from [`Stream::Init`], real points from
//! `Stream::Shuffle`, latents from `Stream::Latent`, the scored points from `Stream::Sample`.
//! The run folder gets metrics.csv, a scatter plot of the samples as its "grid", checkpoints
//! and, with `eval_every`, the coverage during training.

use super::engine::{self, Outcome, Quiet, Record, Run, Saved, Schedule, TaskConfig};
use super::step::StepLosses;
use super::Ema;
use crate::checkpoint;
use crate::config::{GuardConfig, ToyConfig};
use crate::metrics::mode_coverage::{coverage, Coverage, Toy};
use crate::models::{self, Discriminator, Generator, ImageShape, ModelConfig};
use crate::nn::{Mode, ParamStore};
use crate::optim::{Adam, AdamConfig};
use crate::rng::{self, Stream};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// The checkpoint kind of toy runs.
pub const KIND_TOY: &str = "toy";

/// A toy run.
pub type ToyTrainer = Run<ToyTask>;

impl TaskConfig for ToyConfig {
    const FIXED_ON_RESUME: &'static [&'static str] = &["toy", "seed", "latent_dim", "hidden", "layers", "batch", "loss", "gen_batch_norm", "ema_decay"];
    fn schedule(&self) -> Schedule {
        Schedule {
            dir: self.dir.clone(),
            steps: self.steps,
            log_every: self.log_every,
            sample_every: self.sample_every,
            checkpoint_every: self.checkpoint_every,
            eval_every: self.eval_every,
            guard: GuardConfig::default(),
            loss: self.loss,
        }
    }
    fn validate(&self) -> crate::Result<()> {
        ToyConfig::validate(self)
    }
    fn device(&self) -> &str {
        "cpu"
    }
    fn scale_learning_rates(&mut self, factor: f64) {
        self.lr *= factor;
    }
    fn learning_rates(&self) -> (f64, f64) {
        (self.lr, self.lr)
    }
}

/// Networks, optimisers and the EMA generator of a toy run.
pub struct ToyTask {
    cfg: ToyConfig,
    device: Device,
    gen: Box<dyn Generator>,
    disc: Box<dyn Discriminator>,
    gen_params: ParamStore,
    disc_params: ParamStore,
    opt_g: Adam,
    opt_d: Adam,
    ema: Option<Ema>,
}

fn mean(t: &Tensor) -> crate::Result<f64> {
    Ok(t.mean_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

impl engine::Task for ToyTask {
    type Config = ToyConfig;
    type Losses = StepLosses;
    const KIND: &'static str = KIND_TOY;
    const COMMAND: &'static str = "train::toy";
    const LOWER_LR: &'static str = "with a lower ToyConfig::lr";

    fn build(cfg: &ToyConfig, saved: Option<&Record>, device: &Device) -> crate::Result<Self> {
        let model = ModelConfig::Mlp(cfg.mlp());
        let shape = ImageShape { channels: 2, resolution: 1 };
        let models::Gan { gen, disc, gen_params, disc_params } = models::build(&model, shape, cfg.seed, device)?;
        let adam = AdamConfig { lr: cfg.lr, beta1: cfg.beta1, beta2: 0.999, ..AdamConfig::default() };
        let mut opt_g = Adam::new(gen_params.trainable(), adam)?;
        let mut opt_d = Adam::new(disc_params.trainable(), adam)?;
        let ema = if cfg.ema_decay > 0.0 { Some(Ema::new(&model, shape, 0, cfg.seed, device, &gen_params, cfg.ema_decay)?) } else { None };
        if let Some(r) = saved {
            let fit = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the toy model: {e}"));
            gen_params.load(&checkpoint::strip_prefix("gen", &r.tensors)).map_err(fit)?;
            disc_params.load(&checkpoint::strip_prefix("disc", &r.tensors)).map_err(fit)?;
            opt_g.load_state(&checkpoint::strip_prefix("opt_gen", &r.tensors))?;
            opt_d.load_state(&checkpoint::strip_prefix("opt_disc", &r.tensors))?;
            if let Some(e) = &ema {
                e.params.load(&checkpoint::strip_prefix("gen_ema", &r.tensors)).map_err(fit)?;
            }
        }
        Ok(Self { cfg: cfg.clone(), device: device.clone(), gen, disc, gen_params, disc_params, opt_g, opt_d, ema })
    }

    fn step(&mut self, step: u64) -> crate::Result<StepLosses> {
        let (cfg, b) = (&self.cfg, self.cfg.batch);
        let lr = cfg.lr_at(step);
        self.opt_g.set_lr(lr);
        self.opt_d.set_lr(lr);
        let mut data_rng = rng::rng(cfg.seed, Stream::Shuffle, step);
        let real = Tensor::from_vec(cfg.toy.sample(&mut data_rng, b), (b, 2, 1, 1), &self.device)?;
        let mut zr = rng::rng(cfg.seed, Stream::Latent, 2 * step);
        let z = rng::randn(&mut zr, &[b, cfg.latent_dim], &self.device)?;
        let fake = self.gen.forward(&z, None, Mode::Train)?;
        let (real_logits, fake_logits) = (self.disc.forward(&real, None, Mode::Train)?, self.disc.forward(&fake.detach(), None, Mode::Train)?);
        let d_loss = cfg.loss.d_loss(&real_logits, &fake_logits)?;
        self.opt_d.step(&d_loss.backward()?)?;
        let mut zr = rng::rng(cfg.seed, Stream::Latent, 2 * step + 1);
        let z = rng::randn(&mut zr, &[b, cfg.latent_dim], &self.device)?;
        let fake = self.gen.forward(&z, None, Mode::Train)?;
        let g_loss = cfg.loss.g_loss(&self.disc.forward(&fake, None, Mode::Train)?)?;
        self.opt_g.step(&g_loss.backward()?)?;
        if let Some(e) = &self.ema {
            e.update(&self.gen_params, step)?;
        }
        Ok(StepLosses { d_loss: mean(&d_loss)?, g_loss: mean(&g_loss)?, d_real: mean(&real_logits)?, d_fake: mean(&fake_logits)? })
    }

    fn images_per_step(&self) -> usize {
        self.cfg.batch
    }

    fn non_finite_tensor(&self) -> crate::Result<Option<String>> {
        crate::nn::params::first_non_finite_in([("gen", &self.gen_params), ("disc", &self.disc_params)])
    }

    /// A scatter plot of the scored points over the mixture's modes.
    fn sample_grid(&mut self, _step: u64) -> crate::Result<Option<image::DynamicImage>> {
        Ok(Some(scatter(&self.points()?, &self.cfg.toy.centers())))
    }

    fn save(&self, _step: u64) -> crate::Result<Saved> {
        let mut tensors = BTreeMap::new();
        tensors.extend(checkpoint::prefixed("gen", self.gen_params.tensors()));
        tensors.extend(checkpoint::prefixed("disc", self.disc_params.tensors()));
        tensors.extend(checkpoint::prefixed("opt_gen", self.opt_g.state()));
        tensors.extend(checkpoint::prefixed("opt_disc", self.opt_d.state()));
        if let Some(e) = &self.ema {
            tensors.extend(checkpoint::prefixed("gen_ema", e.tensors()));
        }
        Ok(Saved { tensors, meta: serde_json::json!({}) })
    }

    fn evaluate(&mut self, _step: u64) -> crate::Result<Vec<f64>> {
        let c = self.coverage()?;
        Ok(vec![c.modes_covered as f64, c.high_quality])
    }

    fn eval_columns(&self) -> Vec<(String, Vec<String>)> {
        vec![("modes".into(), vec!["modes_covered".into()]), ("quality".into(), vec!["high_quality".into()])]
    }
}

impl ToyTask {
    /// `eval_samples` generated points from the fixed sample latents (the EMA generator when
    /// kept, in eval mode).
    pub fn points(&self) -> crate::Result<Vec<[f32; 2]>> {
        let mut zr = rng::rng(self.cfg.seed, Stream::Sample, 0);
        let z = rng::randn(&mut zr, &[self.cfg.eval_samples, self.cfg.latent_dim], &self.device)?;
        let g: &dyn Generator = self.ema.as_ref().map_or(self.gen.as_ref(), |e| e.gen.as_ref());
        let x = g.forward(&z, None, Mode::Eval)?.flatten_from(1)?.to_vec2::<f32>()?;
        Ok(x.into_iter().map(|r| [r[0], r[1]]).collect())
    }

    /// Mode coverage of [`ToyTask::points`].
    pub fn coverage(&self) -> crate::Result<Coverage> {
        let toy: Toy = self.cfg.toy;
        Ok(coverage(&self.points()?, &toy.centers(), toy.std(), self.cfg.min_count))
    }
}

/// Trains `cfg.toy` in `cfg.dir` to the end and scores the result.
pub fn evaluate(cfg: &ToyConfig) -> crate::Result<Coverage> {
    let mut run = ToyTrainer::new(cfg.clone())?;
    match run.run(&mut Quiet, &AtomicBool::new(false))? {
        Outcome::Finished => run.task().coverage(),
        Outcome::Stopped { step, .. } => Err(crate::Error::Msg(format!("the toy run stopped at step {step}"))),
    }
}

/// Points as black dots on white, 256x256, with the modes as grey crosses; the view spans the
/// modes plus a margin.
fn scatter(points: &[[f32; 2]], centers: &[[f32; 2]]) -> image::DynamicImage {
    const SIZE: u32 = 256;
    let extent = centers.iter().flat_map(|c| [c[0].abs(), c[1].abs()]).fold(1.0f32, f32::max) * 1.25;
    let to_px = |v: f32| ((v / extent * 0.5 + 0.5) * (SIZE - 1) as f32).round() as i64;
    let mut img = image::RgbImage::from_pixel(SIZE, SIZE, image::Rgb([255, 255, 255]));
    let mut put = |x: i64, y: i64, c: [u8; 3]| {
        if (0..SIZE as i64).contains(&x) && (0..SIZE as i64).contains(&y) {
            img.put_pixel(x as u32, (SIZE as i64 - 1 - y) as u32, image::Rgb(c));
        }
    };
    for c in centers {
        let (x, y) = (to_px(c[0]), to_px(c[1]));
        for d in -4..=4 {
            put(x + d, y, [180, 180, 180]);
            put(x, y + d, [180, 180, 180]);
        }
    }
    for p in points {
        put(to_px(p[0]), to_px(p[1]), [0, 0, 0]);
    }
    image::DynamicImage::ImageRgb8(img)
}
