//! The GAN task of the training engine: [`GanState::step`] on batches from the data loader,
//! grids from a fixed latent batch, periodic metrics of the sampling generator. Every random
//! draw is indexed by step (see [`crate::rng`]) and data order by batch index, so a resumed run
//! repeats the unbroken run.
//!
//! [`Trainer`] is the engine's [`Run`] of this task.

use super::ema::Ema;
use super::engine::{self, Losses, Record, Run, Saved, Schedule, TaskConfig};
use super::guard::GuardInput;
use super::step::{GanState, RealBatch, StepLosses};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::{self, BatchLoader, DataSource, Dataset, LoadOptions};
use crate::metrics::evaluate::{self, EvalOptions, Evaluator, Metric, Silent};
use crate::models::{Gan, ImageShape};
use crate::nn::Mode;
use crate::rng::{self, Stream};
use crate::saved::{self, gan::GanMeta, gan::EMA_PREFIX};
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A GAN training run (`gannet train`).
pub type Trainer = Run<GanTask>;

impl Losses for StepLosses {
    const COLUMNS: &'static [&'static str] = &["d_loss", "g_loss", "d_real", "d_fake"];
    const PLOTTED: &'static [&'static str] = &["d_loss", "g_loss"];
    fn values(&self) -> Vec<f64> {
        vec![self.d_loss, self.g_loss, self.d_real, self.d_fake]
    }
    fn guard_input(&self) -> GuardInput {
        self.into()
    }
    fn summary(&self) -> String {
        format!("D {:.3} G {:.3} | D(x) {:+.2} D(G(z)) {:+.2}", self.d_loss, self.g_loss, self.d_real, self.d_fake)
    }
}

impl TaskConfig for TrainConfig {
    const FIXED_ON_RESUME: &'static [&'static str] =
        &["data.source", "data.resolution", "data.channels", "model", "seed", "loss", "schedule.batch_size", "schedule.d_steps_per_g"];
    fn schedule(&self) -> Schedule {
        Schedule {
            dir: self.output.dir.clone(),
            steps: self.schedule.steps,
            log_every: self.output.log_every,
            sample_every: self.output.sample_every,
            checkpoint_every: self.output.checkpoint_every,
            eval_every: self.eval.every,
            guard: self.guard,
            loss: self.loss,
        }
    }
    fn validate(&self) -> crate::Result<()> {
        TrainConfig::validate(self)
    }
    fn device(&self) -> &str {
        &self.device
    }
    fn scale_learning_rates(&mut self, factor: f64) {
        self.optim.gen.lr *= factor;
        self.optim.disc.lr *= factor;
    }
    fn learning_rates(&self) -> (f64, f64) {
        (self.optim.gen.lr, self.optim.disc.lr)
    }
}

/// Periodic evaluation of the sampling generator against the training data.
struct PeriodicEval {
    evaluator: Evaluator,
    metrics: Vec<Metric>,
}

/// Networks, optimisers, data and the fixed sample batch of a GAN run.
pub struct GanTask {
    cfg: TrainConfig,
    state: GanState,
    loader: BatchLoader,
    dataset: Arc<Dataset>,
    fixed_latents: Tensor,
    /// Labels of the fixed grid batch (conditional models: one class per row).
    fixed_labels: Option<Tensor>,
    /// Images per row of the sample grids.
    grid_columns: usize,
    periodic: Option<PeriodicEval>,
}

impl engine::Task for GanTask {
    type Config = TrainConfig;
    type Losses = StepLosses;
    const KIND: &'static str = saved::gan::KIND_TRAIN;
    const COMMAND: &'static str = "gannet train";
    const DATA_PARALLEL: bool = true;

    fn build(cfg: &TrainConfig, saved: Option<&Record>, device: &Device) -> crate::Result<Self> {
        let dataset = Arc::new(load_dataset(cfg)?);
        let shape = ImageShape { channels: dataset.channels(), resolution: dataset.height() };
        let classes = cfg.model.classes_for(dataset.num_classes()).map_err(|e| match e {
            crate::Error::Config(m) => crate::Error::data(dataset.source(), m),
            other => other,
        })?;
        check_step_memory(cfg, shape)?;
        crate::parallel::set_sync_batch_norm(cfg.parallel.sync_batch_norm);
        let mut state = GanState::with_classes(cfg, shape, classes, device)?;
        let step = match saved {
            Some(r) => {
                let meta: GanMeta = serde_json::from_value(r.task.clone()).map_err(|e| crate::Error::Msg(format!("bad GAN checkpoint metadata: {e}")))?;
                restore(&r.tensors, meta.ada, &mut state)?;
                r.run.step
            }
            None => 0,
        };
        let batches_per_step = cfg.schedule.d_steps_per_g as u64;
        // Under data-parallel training this process loads its slice of every batch.
        let shard = crate::parallel::Shard::of(cfg.schedule.batch_size)?;
        let loader = BatchLoader::sharded(dataset.clone(), cfg.schedule.batch_size, cfg.seed, step * batches_per_step, shard)?;
        let mut fixed_rng = rng::rng(cfg.seed, Stream::FixedLatent, 0);
        let fixed_latents = rng::randn(&mut fixed_rng, &[cfg.output.sample_count, cfg.model.latent_dim()], device)?;
        let (fixed_latents, fixed_labels, grid_columns) = grid_batch(fixed_latents, classes)?;
        // Only the data-parallel writer (rank 0) evaluates.
        let periodic = if cfg.eval.every > 0 && crate::parallel::is_writer() {
            let opts = EvalOptions {
                metrics: cfg.eval.metrics.clone(),
                count: cfg.eval.count,
                seed: cfg.seed,
                classifier: cfg.eval.classifier.clone(),
                cache_dir: cfg.eval.cache.then(evaluate::cache_dir),
                inception_weights: None,
            };
            let key = evaluate::dataset_cache_key(&cfg.data.source, &dataset);
            let evaluator = Evaluator::new(&dataset, Some(&key), opts, device, &mut Silent)?;
            Some(PeriodicEval { evaluator, metrics: cfg.eval.metrics.clone() })
        } else {
            None
        };
        Ok(Self { cfg: cfg.clone(), state, loader, dataset, fixed_latents, fixed_labels, grid_columns, periodic })
    }

    fn step(&mut self, step: u64) -> crate::Result<StepLosses> {
        let (loader, device) = (&mut self.loader, self.fixed_latents.device().clone());
        self.state.step(step, |batch_index| {
            let host = loader.next_batch()?;
            debug_assert_eq!(host.step, batch_index);
            let (images, labels) = host.to_tensors(&device)?;
            Ok(RealBatch { images, labels })
        })
    }

    /// Images of the combined batch (all data-parallel processes together).
    fn images_per_step(&self) -> usize {
        self.cfg.schedule.batch_size * self.cfg.schedule.d_steps_per_g
    }

    fn non_finite_tensor(&self) -> crate::Result<Option<String>> {
        self.state.non_finite_tensor()
    }

    /// The fixed latent batch through the sampling generator (in eval mode). Conditional models
    /// get one class per row, the same latents in every row.
    fn sample_grid(&mut self, step: u64) -> crate::Result<Option<image::DynamicImage>> {
        self.state.set_step(step);
        let images = self.state.sampling_generator().forward(&self.fixed_latents, self.fixed_labels.as_ref(), Mode::Eval)?;
        crate::image_io::grid(&images, self.grid_columns, 2).map(Some)
    }

    fn save(&self, _step: u64) -> crate::Result<Saved> {
        let mut tensors = BTreeMap::new();
        let st = &self.state;
        tensors.extend(checkpoint::prefixed("gen", st.gan.gen_params.tensors()));
        tensors.extend(checkpoint::prefixed("disc", st.gan.disc_params.tensors()));
        if let Some(ema) = &st.ema {
            tensors.extend(checkpoint::prefixed(EMA_PREFIX, ema.tensors()));
        }
        tensors.extend(checkpoint::prefixed("opt_gen", st.opt_gen.state()));
        tensors.extend(checkpoint::prefixed("opt_disc", st.opt_disc.state()));
        let meta = GanMeta {
            image_shape: ImageShape { channels: self.dataset.channels(), resolution: self.dataset.height() },
            class_names: self.dataset.class_names().to_vec(),
            ada: st.ada,
        };
        Ok(Saved { tensors, meta: serde_json::to_value(meta).expect("plain struct") })
    }

    fn evaluate(&mut self, step: u64) -> crate::Result<Vec<f64>> {
        let Some(p) = &mut self.periodic else { return Ok(Vec::new()) };
        self.state.set_step(step);
        let report = p.evaluator.evaluate_generator(self.state.sampling_generator(), &mut Silent)?;
        Ok(p.metrics.iter().flat_map(|m| report.scalars(*m).into_iter().map(|s| s.1)).collect())
    }

    fn eval_columns(&self) -> Vec<(String, Vec<String>)> {
        let Some(p) = &self.periodic else { return Vec::new() };
        p.metrics.iter().map(|m| (m.name().to_string(), m.scalar_names().iter().map(|s| s.to_string()).collect())).collect()
    }

    fn eval_note(&self) -> String {
        self.periodic.as_ref().map_or(String::new(), |p| format!(" ({} images, seed {})", p.evaluator.reference_count(), self.cfg.seed))
    }
}

impl GanTask {
    pub fn gan(&self) -> &Gan {
        &self.state.gan
    }
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
    /// Networks, optimizers (with their current learning rates) and the EMA shadow.
    pub fn state(&self) -> &GanState {
        &self.state
    }
}

/// What tests, the CLI and the benchmarks ask of a GAN run.
impl Run<GanTask> {
    pub fn gan(&self) -> &Gan {
        self.task().gan()
    }
    pub fn dataset(&self) -> &Dataset {
        self.task().dataset()
    }
    pub fn state(&self) -> &GanState {
        self.task().state()
    }
    /// The generator sample grids use: the EMA shadow when there is one.
    pub fn sampling_generator(&self) -> &dyn crate::models::Generator {
        self.task().state().sampling_generator()
    }
    /// The EMA shadow generator, when `ema_decay > 0`.
    pub fn ema(&self) -> Option<&Ema> {
        self.task().state().ema.as_ref()
    }
}

/// Loads weights, optimizer state, ADA's state and the EMA shadow into a freshly built state.
fn restore(tensors: &BTreeMap<String, Tensor>, ada: crate::train::AdaState, state: &mut GanState) -> crate::Result<()> {
    saved::gan::load_weights(tensors, &state.gan)?;
    state.ada = ada;
    state.opt_gen.load_state(&checkpoint::strip_prefix("opt_gen", tensors))?;
    state.opt_disc.load_state(&checkpoint::strip_prefix("opt_disc", tensors))?;
    if let Some(ema) = &state.ema {
        let t = checkpoint::strip_prefix(EMA_PREFIX, tensors);
        // A checkpoint from a run without EMA starts the shadow from the current G.
        if !t.is_empty() {
            ema.params.load(&t).map_err(|err| crate::Error::Msg(format!("checkpoint's EMA generator does not fit the model: {err}")))?;
        }
    }
    Ok(())
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
    let source = DataSource::parse(&cfg.data.source)?;
    let resolution = cfg.data.resolution.unwrap_or_else(|| default_resolution(&source));
    data::load(&source, &LoadOptions { resolution, channels: cfg.data.channels })
}

/// 28 for digit-style IDX data (its native size), 32 for image folders.
fn default_resolution(source: &DataSource) -> usize {
    match source {
        DataSource::BuiltinDigits => 28,
        DataSource::Path(p) if data::is_idx(p) => 28,
        DataSource::Path(_) | DataSource::Captioned { .. } => 32,
    }
}

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
