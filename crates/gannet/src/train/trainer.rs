//! The training loop: runs [`GanState::step`] on batches from the data loader and writes logs,
//! sample grids and checkpoints on their intervals. Every random draw is indexed by step (see
//! [`crate::rng`]) and data order by batch index, so a resumed run repeats the unbroken run.

use super::config::{TrainConfig, BUILTIN_DIGITS};
use super::ema::Ema;
use super::guard::{Guard, Signal};
use super::metrics_log::{MetricsLog, Row};
use super::periodic_eval::PeriodicEval;
use super::run_dir::RunDir;
use super::step::{GanState, RealBatch};
use crate::checkpoint;
use crate::data::{self, BatchLoader, DataSource, Dataset, LoadOptions};
use crate::models::{self, Gan, ImageShape};
use crate::nn::Mode;
use crate::rng::{self, Stream};
use candle_core::{Device, Tensor};
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
use crate::checkpoint::META_KIND;
const META_CONFIG: &str = "config";
const META_STEP: &str = "step";
const META_SHAPE: &str = "image_shape";
const META_CLASSES: &str = "class_names";
const KIND_TRAIN: &str = "train";
/// Rollbacks the divergence guard has done in the run, and its collapse-signal streaks.
const META_ROLLBACKS: &str = "guard_rollbacks";
const META_STREAKS: &str = "guard_streaks";
/// ADA's probability and running signal (JSON).
const META_ADA: &str = "ada";
/// Checkpoint prefix of the EMA shadow generator's tensors.
const EMA_PREFIX: &str = "gen_ema";

pub struct Trainer {
    cfg: TrainConfig,
    device: Device,
    state: GanState,
    loader: BatchLoader,
    dataset: Arc<Dataset>,
    /// Generator updates done so far.
    step: u64,
    fixed_latents: Tensor,
    /// Labels of the fixed grid batch (conditional models: one class per row).
    fixed_labels: Option<Tensor>,
    /// Images per row of the sample grids.
    grid_columns: usize,
    run: RunDir,
    log: MetricsLog,
    pending: Vec<StepStats>,
    started: Instant,
    elapsed_before: f64,
    /// Metrics during training (`[eval]`), when on.
    periodic: Option<PeriodicEval>,
    guard: Guard,
    /// Rollbacks done so far in this run (saved in checkpoints).
    rollbacks: u32,
    /// The step and file of the last checkpoint known to be good: the last one this trainer
    /// wrote, or the one it resumed from.
    last_good: Option<(u64, PathBuf)>,
}

impl Trainer {
    /// A fresh run. Refuses to overwrite a run directory that already holds a checkpoint.
    pub fn new(cfg: TrainConfig) -> crate::Result<Self> {
        let run = RunDir::create_fresh(&cfg.output.dir)?;
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
        let mut t = Self::build(cfg, run, Some(saved))?;
        t.last_good = Some((t.step, checkpoint.to_path_buf()));
        Ok(t)
    }

    fn build(cfg: TrainConfig, run: RunDir, saved: Option<SavedRun>) -> crate::Result<Self> {
        cfg.validate()?;
        let device = crate::device::parse_device(&cfg.device)?;
        let dataset = Arc::new(load_dataset(&cfg)?);
        let shape = ImageShape { channels: dataset.channels(), resolution: dataset.height() };
        let classes = cfg.model.classes_for(dataset.num_classes()).map_err(|e| match e {
            crate::Error::Config(m) => crate::Error::data(dataset.source(), m),
            other => other,
        })?;
        check_step_memory(&cfg, shape)?;
        let mut state = GanState::with_classes(&cfg, shape, classes, &device)?;
        let mut guard = Guard::new(cfg.guard, cfg.loss);
        let rollbacks = saved.as_ref().map_or(0, |s| s.rollbacks);
        if let Some(s) = &saved {
            guard.set_streaks(s.guard_streaks);
        }
        let (step, elapsed_before) = match &saved {
            Some(s) => {
                s.restore(&mut state)?;
                (s.step, s.elapsed_s)
            }
            None => (0, 0.0),
        };
        let batches_per_step = cfg.schedule.d_steps_per_g as u64;
        let loader = BatchLoader::new(dataset.clone(), cfg.schedule.batch_size, cfg.seed, step * batches_per_step)?;
        let mut fixed_rng = rng::rng(cfg.seed, Stream::FixedLatent, 0);
        let fixed_latents = rng::randn(&mut fixed_rng, &[cfg.output.sample_count, cfg.model.latent_dim()], &device)?;
        let (fixed_latents, fixed_labels, grid_columns) = grid_batch(fixed_latents, classes)?;
        crate::checkpoint::write_atomic(&run.config(), cfg.to_toml().as_bytes())?;
        let log = MetricsLog::open(&run.metrics_csv(), step)?;
        let periodic = PeriodicEval::new(&cfg.eval, &dataset, &cfg.data.source, cfg.seed, cfg.schedule.steps, step, &run, &device)?;
        Ok(Self {
            cfg,
            device,
            state,
            loader,
            dataset,
            step,
            fixed_latents,
            fixed_labels,
            grid_columns,
            run,
            log,
            pending: Vec::new(),
            started: Instant::now(),
            elapsed_before,
            periodic,
            guard,
            rollbacks,
            last_good: None,
        })
    }

    pub fn step(&self) -> u64 {
        self.step
    }
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    pub fn gan(&self) -> &Gan {
        &self.state.gan
    }
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
    /// Networks, optimizers (with their current learning rates) and the EMA shadow.
    pub fn state(&self) -> &GanState {
        &self.state
    }
    /// Rollbacks the divergence guard has done in this run.
    pub fn rollbacks(&self) -> u32 {
        self.rollbacks
    }

    /// One generator update and the discriminator updates before it; an error naming the last
    /// good checkpoint when the divergence guard trips.
    pub fn train_step(&mut self) -> crate::Result<StepStats> {
        let (stats, signal) = self.guarded_step()?;
        match signal {
            Some(s) => Err(self.divergence_error(&s)),
            None => Ok(stats),
        }
    }

    /// One step and what the divergence guard made of it.
    fn guarded_step(&mut self) -> crate::Result<(StepStats, Option<Signal>)> {
        let t0 = Instant::now();
        let (loader, device) = (&mut self.loader, &self.device);
        let losses = self.state.step(self.step, |batch_index| {
            let host = loader.next_batch()?;
            debug_assert_eq!(host.step, batch_index);
            let (images, labels) = host.to_tensors(device)?;
            Ok(RealBatch { images, labels })
        })?;
        self.step += 1;
        let mut signal = self.guard.observe(&losses);
        if signal.is_none() {
            signal = self.state.non_finite_tensor()?.map(|tensor| Signal::NonFiniteWeights { tensor });
        }
        let images = self.cfg.schedule.batch_size * self.cfg.schedule.d_steps_per_g;
        let stats = StepStats {
            step: self.step,
            d_loss: losses.d_loss,
            g_loss: losses.g_loss,
            d_real: losses.d_real,
            d_fake: losses.d_fake,
            images_per_s: images as f64 / t0.elapsed().as_secs_f64(),
        };
        Ok((stats, signal))
    }

    /// The error a divergence stops the run with: step, signal, and the last good checkpoint.
    fn divergence_error(&self, signal: &Signal) -> crate::Error {
        let g = &self.cfg.guard;
        let exhausted = if g.rollback && self.rollbacks >= g.max_rollbacks {
            format!(" after {} rollbacks (guard.max_rollbacks = {})", self.rollbacks, g.max_rollbacks)
        } else {
            String::new()
        };
        let next = match &self.last_good {
            Some((step, path)) => format!(
                "the last good checkpoint is {} (step {step}); continue from it with lower learning rates \
                 (gannet train --resume {} --lr-g .. --lr-d ..), or set [guard] rollback = true",
                path.display(),
                path.display()
            ),
            None => format!(
                "no checkpoint had been written yet (the first is due at step {}, output.checkpoint_every); start again \
                 with lower learning rates, or set [guard] rollback = true",
                self.cfg.output.checkpoint_every
            ),
        };
        crate::Error::Msg(format!("training diverged at step {}{exhausted}: {signal}; {next}", self.step))
    }

    /// Appends a line to the run's `guard.log`.
    fn guard_log(&self, line: &str) -> crate::Result<()> {
        use std::io::Write;
        let path = self.run.guard_log();
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| crate::Error::io(format!("opening {}", path.display()), e))?;
        writeln!(f, "[{:.1}s] {line}", self.elapsed()).map_err(|e| crate::Error::io(format!("writing {}", path.display()), e))
    }

    /// The guard tripped: stop with an error, or (with `guard.rollback`, while rollbacks are
    /// left) reload the last good checkpoint, multiply both learning rates by `guard.lr_factor`
    /// and carry on from there. Without a checkpoint yet, the run restarts from its initial
    /// weights (a pure function of the seed).
    fn on_divergence(&mut self, signal: Signal, observer: &mut dyn Observer) -> crate::Result<()> {
        let at = self.step;
        let g = self.cfg.guard;
        if !g.rollback || self.rollbacks >= g.max_rollbacks {
            let err = self.divergence_error(&signal);
            self.guard_log(&format!("step {at}: {signal}; stopped: {err}"))?;
            observer.on_event(&err.to_string());
            return Err(err);
        }
        self.rollbacks += 1;
        self.cfg.optim.gen.lr *= g.lr_factor;
        self.cfg.optim.disc.lr *= g.lr_factor;
        let classes = self.cfg.model.classes_for(self.dataset.num_classes())?;
        let mut state = GanState::with_classes(&self.cfg, self.state.gan.gen.image_shape(), classes, &self.device)?;
        let (step, from) = match &self.last_good {
            Some((step, path)) => {
                let saved = SavedRun::load(path, &Device::Cpu)?;
                if saved.step != *step {
                    return Err(crate::Error::checkpoint(path, format!("holds step {}, expected the last good step {step}", saved.step)));
                }
                saved.restore(&mut state)?;
                (saved.step, format!("{} (step {})", path.display(), saved.step))
            }
            None => (0, "the initial weights (step 0; no checkpoint had been written yet)".to_string()),
        };
        self.state = state;
        self.step = step;
        self.loader = BatchLoader::new(self.dataset.clone(), self.cfg.schedule.batch_size, self.cfg.seed, step * self.cfg.schedule.d_steps_per_g as u64)?;
        self.pending.clear();
        self.log = MetricsLog::open(&self.run.metrics_csv(), step)?;
        if let Some(p) = &mut self.periodic {
            p.truncate(step)?;
        }
        self.guard = Guard::new(self.cfg.guard, self.cfg.loss);
        crate::checkpoint::write_atomic(&self.run.config(), self.cfg.to_toml().as_bytes())?;
        let msg = format!(
            "step {at}: {signal}; rolled back to {from} with learning rates G {:e}, D {:e} (rollback {} of {})",
            self.cfg.optim.gen.lr, self.cfg.optim.disc.lr, self.rollbacks, g.max_rollbacks
        );
        self.guard_log(&msg)?;
        observer.on_event(&msg);
        observer.on_start(self.step, self.cfg.schedule.steps);
        Ok(())
    }

    /// The generator sample grids use: the EMA shadow when there is one.
    pub fn sampling_generator(&self) -> &dyn crate::models::Generator {
        self.state.sampling_generator()
    }

    /// The EMA shadow generator, when `ema_decay > 0`.
    pub fn ema(&self) -> Option<&Ema> {
        self.state.ema.as_ref()
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
            let (stats, signal) = self.guarded_step()?;
            if let Some(signal) = signal {
                self.on_divergence(signal, observer)?;
                continue;
            }
            observer.on_step(&stats);
            self.after_step(stats, observer)?;
        }
        // The final state is always saved (also when the periodic checkpoint of this step was
        // held back by the guard: the run is over, there is nothing left to roll back).
        let saved_now = (self.step, self.run.latest_checkpoint());
        if self.last_good.as_ref() != Some(&saved_now) {
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
            if self.guard.suspect() {
                // Keep the last good checkpoint: this state may be the start of a collapse.
                let (low, gap) = self.guard.streaks();
                observer.on_event(&format!(
                    "step {}: checkpoint skipped while a collapse signal holds (low D loss {low} steps, wide logit gap {gap} steps)",
                    self.step
                ));
            } else {
                self.save_checkpoint()?;
            }
        }
        if let Some(mut p) = self.periodic.take() {
            self.state.set_step(self.step);
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
    /// Conditional models get one class per row, the same latents in every row.
    pub fn write_samples(&mut self) -> crate::Result<PathBuf> {
        self.state.set_step(self.step);
        let images = self.sampling_generator().forward(&self.fixed_latents, self.fixed_labels.as_ref(), Mode::Eval)?;
        let path = self.run.sample_grid(self.step);
        let grid = crate::image_io::grid(&images, self.grid_columns, 2)?;
        crate::image_io::save_png(&grid, &path)?;
        crate::image_io::save_png(&grid, &self.run.latest_grid())?;
        self.log.plot(&self.run.loss_plot())?;
        Ok(path)
    }

    /// Writes `checkpoints/latest.safetensors` atomically; returns its path.
    /// Refuses (with an error) to write weights that hold a NaN or Inf, so the file on disk stays
    /// the last good one.
    pub fn save_checkpoint(&mut self) -> crate::Result<PathBuf> {
        if let Some(t) = self.state.non_finite_tensor()? {
            return Err(crate::Error::Msg(format!(
                "not saving a checkpoint at step {}: tensor {t} is not finite; {} is left as it was",
                self.step,
                self.run.latest_checkpoint().display()
            )));
        }
        self.flush_log()?;
        let mut tensors = BTreeMap::new();
        let st = &self.state;
        tensors.extend(checkpoint::prefixed("gen", st.gan.gen_params.tensors()));
        tensors.extend(checkpoint::prefixed("disc", st.gan.disc_params.tensors()));
        if let Some(ema) = &st.ema {
            tensors.extend(checkpoint::prefixed(EMA_PREFIX, ema.tensors()));
        }
        tensors.extend(checkpoint::prefixed("opt_gen", st.opt_gen.state()));
        tensors.extend(checkpoint::prefixed("opt_disc", st.opt_disc.state()));
        let shape = ImageShape { channels: self.dataset.channels(), resolution: self.dataset.height() };
        let mut meta = BTreeMap::new();
        meta.insert(META_KIND.to_string(), KIND_TRAIN.to_string());
        meta.insert(META_CONFIG.to_string(), self.cfg.to_toml());
        meta.insert(META_STEP.to_string(), self.step.to_string());
        meta.insert("elapsed_s".to_string(), format!("{:.3}", self.elapsed()));
        meta.insert(META_SHAPE.to_string(), serde_json::to_string(&shape).expect("plain struct"));
        meta.insert(META_CLASSES.to_string(), serde_json::to_string(self.dataset.class_names()).expect("strings"));
        meta.insert(META_ROLLBACKS.to_string(), self.rollbacks.to_string());
        let (low, gap) = self.guard.streaks();
        meta.insert(META_STREAKS.to_string(), format!("{low},{gap}"));
        meta.insert(META_ADA.to_string(), serde_json::to_string(&st.ada).expect("plain struct"));
        let path = self.run.latest_checkpoint();
        checkpoint::save(&path, &tensors, &meta)?;
        self.last_good = Some((self.step, path.clone()));
        Ok(path)
    }
}

/// The fixed grid batch: unconditional models use the `n` latents as they are, in a square-ish
/// grid; a model with `classes` classes gets `classes` rows of `max(1, n / classes)` images, row
/// `k` of class `k`, every row from the same latents (so a column shows one latent across classes).
fn grid_batch(latents: Tensor, classes: usize) -> crate::Result<(Tensor, Option<Tensor>, usize)> {
    let n = latents.dim(0)?;
    if classes == 0 {
        return Ok((latents, None, (n as f64).sqrt().ceil() as usize));
    }
    let cols = (n / classes).max(1);
    let row = latents.narrow(0, 0, cols.min(n))?;
    let z = Tensor::cat(&vec![row; classes], 0)?;
    let labels: Vec<u32> = (0..classes as u32).flat_map(|k| std::iter::repeat_n(k, cols)).collect();
    let labels = Tensor::from_vec(labels, classes * cols, latents.device())?;
    Ok((z, Some(labels), cols))
}

/// Loads the configured dataset at the configured (or the data's natural) resolution, with the
/// configured class names (`data.class_names`) when given.
pub fn load_dataset(cfg: &TrainConfig) -> crate::Result<Dataset> {
    let dataset = load_dataset_unnamed(cfg)?;
    match &cfg.data.class_names {
        Some(names) => dataset.with_class_names(names.clone()),
        None => Ok(dataset),
    }
}

fn load_dataset_unnamed(cfg: &TrainConfig) -> crate::Result<Dataset> {
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
/// Refuses a batch (or sample grid) whose training step could not fit in memory, before any of
/// it is allocated.
fn check_step_memory(cfg: &TrainConfig, shape: ImageShape) -> crate::Result<()> {
    let images = cfg.schedule.batch_size.max(cfg.output.sample_count) as u64;
    let need = cfg.model.step_bytes_per_image(shape).and_then(|b| b.checked_mul(images));
    crate::limits::check_memory(
        need,
        &format!("a training step of {images} images at {}x{} ({})", shape.resolution, shape.resolution, cfg.model.name()),
        "lower schedule.batch_size (--batch-size), output.sample_count, the widths (--channels) or data.resolution",
    )
}

pub struct SavedRun {
    pub config: TrainConfig,
    pub step: u64,
    pub elapsed_s: f64,
    pub image_shape: ImageShape,
    pub class_names: Vec<String>,
    pub tensors: BTreeMap<String, Tensor>,
    /// Rollbacks the divergence guard had done (0 in checkpoints from before the guard).
    pub rollbacks: u32,
    /// The guard's collapse-signal streaks (low D loss, wide logit gap) at the checkpoint.
    pub guard_streaks: (u64, u64),
    /// ADA's state (p = 0 in checkpoints from before ADA).
    pub ada: crate::train::AdaState,
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
        // The metadata is checksummed but not trusted: a crafted file must not make gannet
        // allocate terabytes or build a model it cannot run.
        config.validate().map_err(|e| err(format!("its saved config is not valid: {e}")))?;
        let step = get(META_STEP)?.parse().map_err(|_| err("bad step in metadata".into()))?;
        let elapsed_s = meta.get("elapsed_s").and_then(|s| s.parse().ok()).unwrap_or(0.0);
        let image_shape: ImageShape = serde_json::from_str(get(META_SHAPE)?).map_err(|e| err(format!("bad image_shape: {e}")))?;
        if !matches!(image_shape.channels, 1 | 3) {
            return Err(err(format!("bad image_shape: {} channels (gannet makes 1 or 3)", image_shape.channels)));
        }
        crate::limits::check_resolution(image_shape.resolution, "the image_shape resolution").map_err(|e| err(e.to_string()))?;
        let class_names: Vec<String> = serde_json::from_str(get(META_CLASSES)?).map_err(|e| err(format!("bad class_names: {e}")))?;
        if class_names.len() > crate::limits::MAX_CLASSES {
            return Err(err(format!("bad class_names: {} classes", class_names.len())));
        }
        let rollbacks = meta.get(META_ROLLBACKS).map_or(Ok(0), |s| s.parse()).map_err(|_| err("bad guard_rollbacks in metadata".into()))?;
        let guard_streaks = match meta.get(META_STREAKS) {
            None => (0, 0),
            Some(s) => s
                .split_once(',')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| err(format!("bad guard_streaks '{s}' in metadata")))?,
        };
        let ada = match meta.get(META_ADA) {
            None => Default::default(),
            Some(s) => serde_json::from_str(s).map_err(|e| err(format!("bad ada state '{s}' in metadata: {e}")))?,
        };
        Ok(Self { config, step, elapsed_s, image_shape, class_names, tensors, rollbacks, guard_streaks, ada })
    }

    /// Classes the networks were built for: the checkpoint's class names for a conditional
    /// model, 0 for an unconditional one.
    pub fn num_classes(&self) -> usize {
        if self.config.model.conditioning().is_conditional() {
            self.class_names.len()
        } else {
            0
        }
    }

    /// Builds the networks on `device` and loads their weights (for sampling).
    pub fn gan(&self, device: &Device) -> crate::Result<Gan> {
        let gan = models::build_with_classes(&self.config.model, self.image_shape, self.num_classes(), self.config.seed, device)?;
        self.load_weights(&gan)?;
        gan.gen.set_step(self.step);
        gan.disc.set_step(self.step);
        Ok(gan)
    }

    /// The generator to sample from on `device`: the EMA shadow (`gen_ema.*`) when the checkpoint
    /// has one, else the trained generator.
    pub fn sampling_generator(&self, device: &Device) -> crate::Result<Box<dyn crate::models::Generator>> {
        self.generator(device, self.has_ema())
    }

    /// The EMA shadow generator (`ema` true; an error when the run kept none) or the trained one.
    pub fn generator(&self, device: &Device, ema: bool) -> crate::Result<Box<dyn crate::models::Generator>> {
        let (gen, params) = models::build_generator_with_classes(&self.config.model, self.image_shape, self.num_classes(), self.config.seed, device)?;
        let src = checkpoint::strip_prefix(if ema { EMA_PREFIX } else { "gen" }, &self.tensors);
        if ema && src.is_empty() {
            return Err(crate::Error::Msg("the checkpoint has no EMA generator (its run had ema_decay = 0)".into()));
        }
        params.load(&src).map_err(|e| crate::Error::Msg(format!("checkpoint does not fit the model: {e}")))?;
        gen.set_step(self.step);
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

    /// Loads weights, optimizer state and the EMA shadow into a freshly built state.
    fn restore(&self, state: &mut GanState) -> crate::Result<()> {
        self.load_weights(&state.gan)?;
        state.ada = self.ada;
        state.opt_gen.load_state(&checkpoint::strip_prefix("opt_gen", &self.tensors))?;
        state.opt_disc.load_state(&checkpoint::strip_prefix("opt_disc", &self.tensors))?;
        if let Some(ema) = &state.ema {
            let t = checkpoint::strip_prefix(EMA_PREFIX, &self.tensors);
            // A checkpoint from a run without EMA starts the shadow from the current G.
            if !t.is_empty() {
                ema.params.load(&t).map_err(|err| crate::Error::Msg(format!("checkpoint's EMA generator does not fit the model: {err}")))?;
            }
        }
        Ok(())
    }
}
