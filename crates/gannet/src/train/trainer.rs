//! The training loop: alternating discriminator and generator updates.
//!
//! One *step* is `d_steps_per_g` discriminator updates, each on a fresh real batch and fresh
//! latents, followed by one generator update that reuses the last fake batch (as PyTorch's DCGAN
//! example does, saving a generator forward pass). Every random draw is indexed by step
//! (see [`crate::rng`]) and data order by batch index, so a resumed run repeats the unbroken run.

use super::config::{TrainConfig, BUILTIN_DIGITS};
use super::ema::Ema;
use super::penalty::{self, PenaltyKind};
use super::metrics_log::{MetricsLog, Row};
use super::periodic_eval::PeriodicEval;
use super::run_dir::RunDir;
use crate::checkpoint;
use crate::data::{self, BatchLoader, DataSource, Dataset, LoadOptions};
use crate::models::{self, Gan, ImageShape};
use crate::nn::Mode;
use crate::optim::Adam;
use crate::rng::{self, Stream};
use candle_core::{Device, Tensor, Var};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub step: u64,
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
    pub images_per_s: f64,
}

/// Hooks for a front end (the CLI's progress bar); every method has a no-op default.
pub trait Observer {
    fn on_start(&mut self, _start_step: u64, _total_steps: u64) {}
    fn on_step(&mut self, _stats: &StepStats) {}
    fn on_event(&mut self, _message: &str) {}
}

/// An observer that ignores everything, for tests and library use.
pub struct Quiet;
impl Observer for Quiet {}

/// Checkpoint metadata keys.
const META_KIND: &str = "gannet_kind";
const META_CONFIG: &str = "config";
const META_STEP: &str = "step";
const META_SHAPE: &str = "image_shape";
const META_CLASSES: &str = "class_names";
const KIND_TRAIN: &str = "train";
/// Checkpoint prefix of the EMA shadow generator's tensors.
const EMA_PREFIX: &str = "gen_ema";

pub struct Trainer {
    cfg: TrainConfig,
    device: Device,
    gan: Gan,
    opt_gen: Adam,
    opt_disc: Adam,
    loader: BatchLoader,
    dataset: Arc<Dataset>,
    /// Generator updates done so far.
    step: u64,
    fixed_latents: Tensor,
    run: RunDir,
    log: MetricsLog,
    pending: Vec<StepStats>,
    started: Instant,
    elapsed_before: f64,
    /// The EMA shadow generator, when `ema_decay > 0`.
    ema: Option<Ema>,
    /// The thread on which second-order gradients were last verified (penalties only).
    second_order_checked: Option<std::thread::ThreadId>,
    /// Metrics during training (`[eval]`), when on.
    periodic: Option<PeriodicEval>,
}

impl Trainer {
    /// A fresh run. Refuses to overwrite a run directory that already holds a checkpoint.
    pub fn new(cfg: TrainConfig) -> crate::Result<Self> {
        let run = RunDir::create(&cfg.output.dir)?;
        if run.latest_checkpoint().exists() {
            return Err(crate::Error::Config(format!(
                "{} already holds a checkpoint: resume it with --resume {}, or choose another --out",
                run.root().display(),
                run.latest_checkpoint().display()
            )));
        }
        Self::build(cfg, run, None)
    }

    /// Continues the run saved in `checkpoint`; `adjust` may change settings that do not affect
    /// the model (e.g. the number of steps).
    pub fn resume(checkpoint: &Path, adjust: impl FnOnce(&mut TrainConfig)) -> crate::Result<Self> {
        let saved = SavedRun::load(checkpoint, &Device::Cpu)?;
        let mut cfg = saved.config.clone();
        adjust(&mut cfg);
        if cfg.model != saved.config.model || cfg.seed != saved.config.seed {
            return Err(crate::Error::Config("resume cannot change the model or the seed".into()));
        }
        let run = RunDir::create(&cfg.output.dir)?;
        Self::build(cfg, run, Some(saved))
    }

    fn build(cfg: TrainConfig, run: RunDir, saved: Option<SavedRun>) -> crate::Result<Self> {
        cfg.validate()?;
        let device = crate::device::parse_device(&cfg.device)?;
        let dataset = Arc::new(load_dataset(&cfg)?);
        let shape = ImageShape { channels: dataset.channels(), resolution: dataset.height() };
        let gan = models::build(&cfg.model, shape, cfg.seed, &device)?;
        let mut opt_gen = Adam::new(gan.gen_params.trainable(), cfg.optim.gen)?;
        let mut opt_disc = Adam::new(gan.disc_params.trainable(), cfg.optim.disc)?;
        if cfg.penalty.is_active() {
            // Works only if this thread has not run a backward pass yet; train_step verifies.
            crate::autodiff::enable_second_order();
        }
        let (step, elapsed_before) = match &saved {
            Some(s) => {
                s.restore(&gan, &mut opt_gen, &mut opt_disc)?;
                (s.step, s.elapsed_s)
            }
            None => (0, 0.0),
        };
        let ema = if cfg.ema_decay > 0.0 {
            let e = Ema::new(&cfg.model, shape, cfg.seed, &device, &gan.gen_params, cfg.ema_decay)?;
            if let Some(s) = &saved {
                let t = checkpoint::strip_prefix(EMA_PREFIX, &s.tensors);
                // A checkpoint from a run without EMA starts the shadow from the current G.
                if !t.is_empty() {
                    e.params.load(&t).map_err(|err| crate::Error::Msg(format!("checkpoint's EMA generator does not fit the model: {err}")))?;
                }
            }
            Some(e)
        } else {
            None
        };
        let batches_per_step = cfg.schedule.d_steps_per_g as u64;
        let loader = BatchLoader::new(dataset.clone(), cfg.schedule.batch_size, cfg.seed, step * batches_per_step)?;
        let mut fixed_rng = rng::rng(cfg.seed, Stream::FixedLatent, 0);
        let fixed_latents = rng::randn(&mut fixed_rng, &[cfg.output.sample_count, cfg.model.latent_dim()], &device)?;
        crate::checkpoint::write_atomic(&run.config(), cfg.to_toml().as_bytes())?;
        let log = MetricsLog::open(&run.metrics_csv(), step)?;
        let periodic = PeriodicEval::new(&cfg.eval, &dataset, &cfg.data.source, cfg.seed, cfg.schedule.steps, step, &run, &device)?;
        Ok(Self {
            cfg,
            device,
            gan,
            opt_gen,
            opt_disc,
            loader,
            dataset,
            step,
            fixed_latents,
            run,
            log,
            pending: Vec::new(),
            started: Instant::now(),
            elapsed_before,
            ema,
            second_order_checked: None,
            periodic,
        })
    }

    pub fn step(&self) -> u64 {
        self.step
    }
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    pub fn gan(&self) -> &Gan {
        &self.gan
    }
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    fn latents(&self, index: u64, n: usize) -> crate::Result<Tensor> {
        let mut r = rng::rng(self.cfg.seed, Stream::Latent, index);
        rng::randn(&mut r, &[n, self.cfg.model.latent_dim()], &self.device)
    }

    /// One generator update and the discriminator updates before it.
    pub fn train_step(&mut self) -> crate::Result<StepStats> {
        let t0 = Instant::now();
        let loss = self.cfg.loss;
        let d_steps = self.cfg.schedule.d_steps_per_g;
        let (mut d_loss_v, mut d_real_v, mut d_fake_v) = (0.0, 0.0, 0.0);
        let mut last_fake = None;
        for j in 0..d_steps {
            let batch_index = self.step * d_steps as u64 + j as u64;
            let host = self.loader.next_batch()?;
            debug_assert_eq!(host.step, batch_index);
            let (real, labels) = host.to_tensors(&self.device)?;
            let z = self.latents(batch_index, real.dim(0)?)?;
            let fake = self.gan.gen.forward(&z, labels.as_ref(), Mode::Train)?;
            let with_penalty = self.cfg.penalty.applies_at(batch_index);
            // R1 differentiates D's logits on the real batch w.r.t. the batch: make it a leaf.
            let real_leaf = if with_penalty && self.cfg.penalty.kind == PenaltyKind::R1 {
                self.check_second_order()?;
                Some(Var::from_tensor(&real)?)
            } else {
                None
            };
            let real_in = real_leaf.as_ref().map(|v| v.as_tensor()).unwrap_or(&real);
            let real_logits = self.gan.disc.forward(real_in, labels.as_ref(), Mode::Train)?;
            let fake_logits = self.gan.disc.forward(&fake.detach(), labels.as_ref(), Mode::Train)?;
            let d_loss = loss.d_loss(&real_logits, &fake_logits)?;
            let d_total = if with_penalty {
                let pen = self.d_penalty(batch_index, &real, &fake, labels.as_ref(), &real_logits, real_leaf.as_ref())?;
                (&d_loss + (pen * self.cfg.penalty.scale())?)?
            } else {
                d_loss.clone()
            };
            self.opt_disc.step(&d_total.backward()?)?;
            d_loss_v += scalar(&d_loss)? / d_steps as f64;
            d_real_v += scalar(&real_logits.mean_all()?)? / d_steps as f64;
            d_fake_v += scalar(&fake_logits.mean_all()?)? / d_steps as f64;
            last_fake = Some((fake, labels));
        }
        let (fake, labels) = last_fake.expect("d_steps_per_g >= 1");
        let g_loss = loss.g_loss(&self.gan.disc.forward(&fake, labels.as_ref(), Mode::Train)?)?;
        self.opt_gen.step(&g_loss.backward()?)?;
        if let Some(ema) = &self.ema {
            ema.update(&self.gan.gen_params)?;
        }
        let g_loss_v = scalar(&g_loss)?;
        self.step += 1;
        let stats = StepStats {
            step: self.step,
            d_loss: d_loss_v,
            g_loss: g_loss_v,
            d_real: d_real_v,
            d_fake: d_fake_v,
            images_per_s: (self.cfg.schedule.batch_size * d_steps) as f64 / t0.elapsed().as_secs_f64(),
        };
        if !(d_loss_v.is_finite() && g_loss_v.is_finite()) {
            return Err(crate::Error::Msg(format!(
                "training diverged at step {}: D loss {d_loss_v}, G loss {g_loss_v}; the last good checkpoint is {}",
                self.step,
                self.run.latest_checkpoint().display()
            )));
        }
        Ok(stats)
    }

    /// Fails loudly (once per thread) when second-order gradients are off, since a penalty would
    /// then silently not reach D's weights.
    fn check_second_order(&mut self) -> crate::Result<()> {
        let me = std::thread::current().id();
        if self.second_order_checked != Some(me) {
            crate::autodiff::ensure_second_order()?;
            self.second_order_checked = Some(me);
        }
        Ok(())
    }

    /// The unweighted gradient penalty for D update `d_step` (the caller scales it).
    fn d_penalty(
        &mut self,
        d_step: u64,
        real: &Tensor,
        fake: &Tensor,
        labels: Option<&Tensor>,
        real_logits: &Tensor,
        real_leaf: Option<&Var>,
    ) -> crate::Result<Tensor> {
        self.check_second_order()?;
        match self.cfg.penalty.kind {
            PenaltyKind::None => Ok(Tensor::new(0f32, &self.device)?),
            PenaltyKind::R1 => {
                let leaf = real_leaf.expect("R1 makes the real batch a leaf");
                penalty::r1_from_logits(real_logits, leaf)
            }
            PenaltyKind::WganGp => {
                let eps = penalty::interpolation_weights(self.cfg.seed, d_step, real.dim(0)?, &self.device)?;
                let disc = &self.gan.disc;
                penalty::wgan_gp(&|x| disc.forward(x, labels, Mode::Train), real, fake, &eps)
            }
        }
    }

    /// The generator sample grids use: the EMA shadow when there is one.
    pub fn sampling_generator(&self) -> &dyn crate::models::Generator {
        match &self.ema {
            Some(e) => e.gen.as_ref(),
            None => self.gan.gen.as_ref(),
        }
    }

    /// The EMA shadow generator, when `ema_decay > 0`.
    pub fn ema(&self) -> Option<&Ema> {
        self.ema.as_ref()
    }

    /// Trains until `schedule.steps`, writing logs, grids and checkpoints on their intervals.
    /// Stops early (after saving a checkpoint) when `stop` becomes true, e.g. on Ctrl-C.
    pub fn run(&mut self, observer: &mut dyn Observer, stop: &AtomicBool) -> crate::Result<()> {
        let total = self.cfg.schedule.steps;
        observer.on_start(self.step, total);
        while self.step < total {
            if stop.load(Ordering::Relaxed) {
                let p = self.save_checkpoint()?;
                observer.on_event(&format!("interrupted at step {}: saved {}", self.step, p.display()));
                return Ok(());
            }
            let stats = self.train_step()?;
            observer.on_step(&stats);
            self.after_step(stats, observer)?;
        }
        if !self.step.is_multiple_of(self.cfg.output.checkpoint_every) {
            self.save_checkpoint()?;
        }
        if !self.step.is_multiple_of(self.cfg.output.sample_every) {
            self.write_samples()?;
        }
        Ok(())
    }

    fn after_step(&mut self, stats: StepStats, observer: &mut dyn Observer) -> crate::Result<()> {
        let out = self.cfg.output.clone();
        self.pending.push(stats);
        if self.step.is_multiple_of(out.log_every) || self.step == self.cfg.schedule.steps {
            self.flush_log()?;
        }
        if self.step.is_multiple_of(out.sample_every) {
            let p = self.write_samples()?;
            observer.on_event(&format!("step {}: samples in {}", self.step, p.display()));
        }
        if self.step.is_multiple_of(out.checkpoint_every) {
            self.save_checkpoint()?;
        }
        if let Some(mut p) = self.periodic.take() {
            let done = p.after_step(self.step, self.sampling_generator());
            self.periodic = Some(p);
            if let Some(summary) = done? {
                observer.on_event(&summary);
            }
        }
        Ok(())
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    fn flush_log(&mut self) -> crate::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let n = self.pending.len() as f64;
        let mean = |f: fn(&StepStats) -> f64| self.pending.iter().map(f).sum::<f64>() / n;
        let row = Row {
            step: self.step,
            d_loss: mean(|s| s.d_loss),
            g_loss: mean(|s| s.g_loss),
            d_real: mean(|s| s.d_real),
            d_fake: mean(|s| s.d_fake),
            images_per_s: mean(|s| s.images_per_s),
            elapsed_s: self.elapsed(),
        };
        self.pending.clear();
        self.log.append(row)
    }

    /// Generates the fixed latent batch (G in eval mode) and writes the grid and loss curve.
    pub fn write_samples(&mut self) -> crate::Result<PathBuf> {
        let images = self.sampling_generator().forward(&self.fixed_latents, None, Mode::Eval)?;
        let path = self.run.sample_grid(self.step);
        crate::image_io::save_grid(&images, &path)?;
        crate::image_io::save_grid(&images, &self.run.latest_grid())?;
        self.log.plot(&self.run.loss_plot())?;
        Ok(path)
    }

    /// Writes `checkpoints/latest.safetensors` atomically; returns its path.
    pub fn save_checkpoint(&mut self) -> crate::Result<PathBuf> {
        self.flush_log()?;
        let mut tensors = BTreeMap::new();
        tensors.extend(checkpoint::prefixed("gen", self.gan.gen_params.tensors()));
        tensors.extend(checkpoint::prefixed("disc", self.gan.disc_params.tensors()));
        if let Some(ema) = &self.ema {
            tensors.extend(checkpoint::prefixed(EMA_PREFIX, ema.tensors()));
        }
        tensors.extend(checkpoint::prefixed("opt_gen", self.opt_gen.state()));
        tensors.extend(checkpoint::prefixed("opt_disc", self.opt_disc.state()));
        let shape = ImageShape { channels: self.dataset.channels(), resolution: self.dataset.height() };
        let mut meta = BTreeMap::new();
        meta.insert(META_KIND.to_string(), KIND_TRAIN.to_string());
        meta.insert(META_CONFIG.to_string(), self.cfg.to_toml());
        meta.insert(META_STEP.to_string(), self.step.to_string());
        meta.insert("elapsed_s".to_string(), format!("{:.3}", self.elapsed()));
        meta.insert(META_SHAPE.to_string(), serde_json::to_string(&shape).expect("plain struct"));
        meta.insert(META_CLASSES.to_string(), serde_json::to_string(self.dataset.class_names()).expect("strings"));
        let path = self.run.latest_checkpoint();
        checkpoint::save(&path, &tensors, &meta)?;
        Ok(path)
    }
}

fn scalar(t: &Tensor) -> crate::Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

/// Loads the configured dataset at the configured (or the data's natural) resolution.
pub fn load_dataset(cfg: &TrainConfig) -> crate::Result<Dataset> {
    let source = if cfg.data.source == BUILTIN_DIGITS {
        DataSource::BuiltinDigits
    } else if let Some(other) = cfg.data.source.strip_prefix("builtin:") {
        return Err(crate::Error::Config(format!("unknown built-in dataset '{other}': the only one is '{BUILTIN_DIGITS}'")));
    } else {
        DataSource::Path(PathBuf::from(&cfg.data.source))
    };
    let resolution = cfg.data.resolution.unwrap_or_else(|| default_resolution(&source));
    data::load(&source, &LoadOptions { resolution, channels: cfg.data.channels })
}

/// 28 for digit-style IDX data (its native size), 32 for image folders.
fn default_resolution(source: &DataSource) -> usize {
    match source {
        DataSource::BuiltinDigits => 28,
        DataSource::Path(p) if data::is_idx(p) => 28,
        DataSource::Path(_) => 32,
    }
}

/// A training checkpoint read back: config, step and tensors.
pub struct SavedRun {
    pub config: TrainConfig,
    pub step: u64,
    pub elapsed_s: f64,
    pub image_shape: ImageShape,
    pub class_names: Vec<String>,
    pub tensors: BTreeMap<String, Tensor>,
}

impl SavedRun {
    pub fn load(path: &Path, device: &Device) -> crate::Result<Self> {
        let (tensors, meta) = checkpoint::load(path, device)?;
        let err = |m: String| crate::Error::checkpoint(path, m);
        let get = |k: &str| meta.get(k).ok_or_else(|| err(format!("metadata has no '{k}': not a gannet training checkpoint")));
        if get(META_KIND)? != KIND_TRAIN {
            return Err(err(format!("is a '{}' checkpoint, not a training checkpoint", get(META_KIND)?)));
        }
        let config = TrainConfig::from_toml_str(get(META_CONFIG)?).map_err(|e| err(e.to_string()))?;
        let step = get(META_STEP)?.parse().map_err(|_| err("bad step in metadata".into()))?;
        let elapsed_s = meta.get("elapsed_s").and_then(|s| s.parse().ok()).unwrap_or(0.0);
        let image_shape = serde_json::from_str(get(META_SHAPE)?).map_err(|e| err(format!("bad image_shape: {e}")))?;
        let class_names = serde_json::from_str(get(META_CLASSES)?).map_err(|e| err(format!("bad class_names: {e}")))?;
        Ok(Self { config, step, elapsed_s, image_shape, class_names, tensors })
    }

    /// Builds the networks on `device` and loads their weights (for sampling).
    pub fn gan(&self, device: &Device) -> crate::Result<Gan> {
        let gan = models::build(&self.config.model, self.image_shape, self.config.seed, device)?;
        self.load_weights(&gan)?;
        Ok(gan)
    }

    /// The generator to sample from on `device`: the EMA shadow (`gen_ema.*`) when the checkpoint
    /// has one, else the trained generator.
    pub fn sampling_generator(&self, device: &Device) -> crate::Result<Box<dyn crate::models::Generator>> {
        let (gen, params) = models::build_generator(&self.config.model, self.image_shape, self.config.seed, device)?;
        let ema = checkpoint::strip_prefix(EMA_PREFIX, &self.tensors);
        let src = if ema.is_empty() { checkpoint::strip_prefix("gen", &self.tensors) } else { ema };
        params.load(&src).map_err(|e| crate::Error::Msg(format!("checkpoint does not fit the model: {e}")))?;
        Ok(gen)
    }

    /// Whether the checkpoint holds an EMA generator.
    pub fn has_ema(&self) -> bool {
        !checkpoint::strip_prefix(EMA_PREFIX, &self.tensors).is_empty()
    }

    fn load_weights(&self, gan: &Gan) -> crate::Result<()> {
        let on = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the model: {e}"));
        gan.gen_params.load(&checkpoint::strip_prefix("gen", &self.tensors)).map_err(on)?;
        gan.disc_params.load(&checkpoint::strip_prefix("disc", &self.tensors)).map_err(on)?;
        Ok(())
    }

    fn restore(&self, gan: &Gan, opt_gen: &mut Adam, opt_disc: &mut Adam) -> crate::Result<()> {
        self.load_weights(gan)?;
        opt_gen.load_state(&checkpoint::strip_prefix("opt_gen", &self.tensors))?;
        opt_disc.load_state(&checkpoint::strip_prefix("opt_disc", &self.tensors))?;
        Ok(())
    }
}
