//! The training loop: runs [`GanState::step`] on batches from the data loader and writes logs,
//! sample grids and checkpoints on their intervals. Every random draw is indexed by step (see
//! [`crate::rng`]) and data order by batch index, so a resumed run repeats the unbroken run.

use super::config::{TrainConfig, BUILTIN_DIGITS};
use super::ema::Ema;
use super::metrics_log::{MetricsLog, Row};
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
        let classes = cfg.model.classes_for(dataset.num_classes()).map_err(|e| match e {
            crate::Error::Config(m) => crate::Error::data(dataset.source(), m),
            other => other,
        })?;
        let mut state = GanState::with_classes(&cfg, shape, classes, &device)?;
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

    /// One generator update and the discriminator updates before it.
    pub fn train_step(&mut self) -> crate::Result<StepStats> {
        let t0 = Instant::now();
        let (loader, device) = (&mut self.loader, &self.device);
        let losses = self.state.step(self.step, |batch_index| {
            let host = loader.next_batch()?;
            debug_assert_eq!(host.step, batch_index);
            let (images, labels) = host.to_tensors(device)?;
            Ok(RealBatch { images, labels })
        })?;
        self.step += 1;
        if !losses.is_finite() {
            return Err(crate::Error::Msg(format!(
                "training diverged at step {}: D loss {}, G loss {}; the last good checkpoint is {}",
                self.step,
                losses.d_loss,
                losses.g_loss,
                self.run.latest_checkpoint().display()
            )));
        }
        let images = self.cfg.schedule.batch_size * self.cfg.schedule.d_steps_per_g;
        Ok(StepStats {
            step: self.step,
            d_loss: losses.d_loss,
            g_loss: losses.g_loss,
            d_real: losses.d_real,
            d_fake: losses.d_fake,
            images_per_s: images as f64 / t0.elapsed().as_secs_f64(),
        })
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
        let images = self.sampling_generator().forward(&self.fixed_latents, self.fixed_labels.as_ref(), Mode::Eval)?;
        let path = self.run.sample_grid(self.step);
        let grid = crate::image_io::grid(&images, self.grid_columns, 2)?;
        crate::image_io::save_png(&grid, &path)?;
        crate::image_io::save_png(&grid, &self.run.latest_grid())?;
        self.log.plot(&self.run.loss_plot())?;
        Ok(path)
    }

    /// Writes `checkpoints/latest.safetensors` atomically; returns its path.
    pub fn save_checkpoint(&mut self) -> crate::Result<PathBuf> {
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
        let path = self.run.latest_checkpoint();
        checkpoint::save(&path, &tensors, &meta)?;
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
