//! The one training loop. A [`Run`] drives any [`Task`] (a GAN, pix2pix, CycleGAN,
//! super-resolution) and owns everything that is not the task's own algorithm:
//!
//! - the run folder ([`RunDir`]): fresh or resumed, locked against a second process, cleared of
//!   temp files a killed process left behind, and never shared by two runs;
//! - `metrics.csv` and `losses.svg` ([`MetricsLog`]), with the columns the task names;
//! - sample grids, checkpoints and periodic evaluation on their intervals;
//! - the divergence guard ([`Guard`]): stop naming the last good checkpoint, or roll back to it
//!   with lower learning rates;
//! - stopping on request (Ctrl-C) after saving a checkpoint;
//! - data-parallel training ([`crate::parallel`]): every process runs the same loop on the same
//!   state; only rank 0 writes the run folder, all agree on stopping, diverging and failing.
//!
//! A task only knows how to build itself (fresh or from a [`Record`]), take one step, draw a
//! grid, say what to save and, optionally, evaluate itself. Every random draw of a task is
//! indexed by the step, so a resumed run repeats the unbroken one bit for bit.

pub mod eval_log;
pub mod log;
pub mod resume;
pub mod run_dir;

pub use crate::checkpoint::record::{Record, RunMeta};
pub use eval_log::EvalLog;
pub use log::MetricsLog;
pub use run_dir::{RunDir, RunLock};

use super::guard::{Guard, GuardConfig, GuardInput, Signal};
use crate::loss::GanLoss;
use crate::parallel;
use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What one step measured, for a front end's progress display.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// Steps done (the step just taken, counted from 1).
    pub step: u64,
    pub images_per_s: f64,
    /// The step's losses in a few words (e.g. `D 0.693 G 0.701 | D(x) +0.12 D(G(z)) -0.10`).
    pub summary: String,
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

/// How [`Run::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All `steps` were trained.
    Finished,
    /// The stop flag was raised (Ctrl-C); a checkpoint of `step` was saved at `checkpoint`.
    Stopped { step: u64, checkpoint: PathBuf },
}

/// The losses of one step, as the engine logs and guards them.
pub trait Losses: Copy + std::fmt::Debug + Send {
    /// Columns of `metrics.csv` after `step` (the engine adds `images_per_s` and `elapsed_s`).
    const COLUMNS: &'static [&'static str];
    /// Columns drawn in `losses.svg`.
    const PLOTTED: &'static [&'static str];
    /// One value per [`Losses::COLUMNS`] entry.
    fn values(&self) -> Vec<f64>;
    /// What the divergence guard watches.
    fn guard_input(&self) -> GuardInput;
    /// A few words for the progress bar.
    fn summary(&self) -> String;
}

/// The settings every run has, read from the task's config.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub dir: PathBuf,
    pub steps: u64,
    pub log_every: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// Periodic evaluation interval (0: off).
    pub eval_every: u64,
    pub guard: GuardConfig,
    /// The adversarial loss (the guard's collapse checks do not apply to Wasserstein critics).
    pub loss: GanLoss,
}

/// A task's config file.
pub trait TaskConfig: Clone + Serialize + DeserializeOwned {
    /// Top-level settings (dotted paths into the config) a resume must keep: the data, the
    /// model, the seed and what else makes the saved weights and optimiser state mean something.
    const FIXED_ON_RESUME: &'static [&'static str];
    fn schedule(&self) -> Schedule;
    fn validate(&self) -> crate::Result<()>;
    fn device(&self) -> &str;
    /// Multiplies the generator's and discriminator's learning rates (a guard rollback).
    fn scale_learning_rates(&mut self, factor: f64);
    fn learning_rates(&self) -> (f64, f64);
    /// The config as checkpoints and `config.toml` keep it.
    fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configs are always serialisable")
    }
    fn from_toml(text: &str) -> crate::Result<Self> {
        toml::from_str(text).map_err(|e| crate::Error::Config(e.to_string()))
    }
}

/// What the task saves in a checkpoint besides the engine's own record.
pub struct Saved {
    pub tensors: BTreeMap<String, Tensor>,
    /// The task's metadata (a JSON object).
    pub meta: serde_json::Value,
}

/// One kind of training: its state, its update rule and what it writes.
pub trait Task: Sized + Send {
    type Config: TaskConfig;
    type Losses: Losses;
    /// The checkpoint kind (`train`, `i2i`).
    const KIND: &'static str;
    /// The command that trains this kind (named in errors).
    const COMMAND: &'static str;
    /// How that command lowers the learning rates (named in the divergence advice).
    const LOWER_LR: &'static str = "--lr-g .. --lr-d ..";
    /// True when [`Task::step`] shards its batches and averages its gradients over
    /// data-parallel processes ([`crate::parallel`]); other tasks refuse to run in several.
    const DATA_PARALLEL: bool = false;

    /// Builds the data, networks and optimisers of `cfg`, restoring `saved` when resuming.
    /// `step` is the step training starts at (0 for a fresh run).
    fn build(cfg: &Self::Config, saved: Option<&Record>, device: &Device) -> crate::Result<Self>;
    /// Step `step` (0-based) on the next batch.
    fn step(&mut self, step: u64) -> crate::Result<Self::Losses>;
    /// Images one step consumes.
    fn images_per_step(&self) -> usize;
    /// The first tensor of the state holding a NaN or infinity.
    fn non_finite_tensor(&self) -> crate::Result<Option<String>>;
    /// The sample grid after `step` steps (None: the task draws none, e.g. a classifier).
    fn sample_grid(&mut self, step: u64) -> crate::Result<Option<image::DynamicImage>>;
    /// Tensors and metadata to checkpoint after `step` steps.
    fn save(&self, step: u64) -> crate::Result<Saved>;
    /// Periodic evaluation after `step` steps: the values of [`Task::eval_columns`].
    fn evaluate(&mut self, _step: u64) -> crate::Result<Vec<f64>> {
        Ok(Vec::new())
    }
    /// Metrics of periodic evaluation, grouped per chart: (chart name, its columns).
    fn eval_columns(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }
    /// Words appended to the evaluation line (e.g. how many images were scored).
    fn eval_note(&self) -> String {
        String::new()
    }
}

/// A training run of task `T`.
pub struct Run<T: Task> {
    cfg: T::Config,
    task: T,
    device: Device,
    step: u64,
    run: RunDir,
    /// The folder's lock: taken when the run is made, kept while it trains, given up when
    /// [`Run::run`] returns (the run is over; inspecting it writes nothing) and taken again by
    /// any later call that writes.
    lock: Option<RunLock>,
    /// This process writes the run folder (false for data-parallel ranks other than 0).
    writer: bool,
    run_id: String,
    log: MetricsLog<T::Losses>,
    eval: Option<EvalLog>,
    guard: Guard,
    rollbacks: u32,
    started: Instant,
    elapsed_before: f64,
    /// The step and file of the last checkpoint known to be good.
    last_good: Option<(u64, PathBuf)>,
}

impl<T: Task> Run<T> {
    /// A fresh run in `cfg`'s output folder; refuses a folder that holds a checkpoint or that
    /// another process is training in.
    pub fn new(cfg: T::Config) -> crate::Result<Self> {
        cfg.validate()?;
        check_data_parallel::<T>()?;
        // A device that cannot be used (no GPU, no driver) fails before the folder exists.
        let device = crate::device::parse_device(cfg.device())?;
        let dir = cfg.schedule().dir;
        let existed = dir.exists();
        let writer = parallel::is_writer();
        let made = if writer { RunDir::create_fresh(&dir).map(|(run, lock)| (run, Some(lock))) } else { Ok((RunDir::at(&dir), None)) };
        let (run, lock) = parallel::agree(made)?;
        parallel::agree(Self::build(cfg, device, run, lock, None, resume::new_run_id())).inspect_err(|_| {
            // A run that could not start (bad data, no memory) leaves no empty folder behind.
            if writer && !existed {
                let _ = std::fs::remove_dir_all(&dir);
            }
        })
    }

    /// Continues the run saved in `checkpoint`. `adjust` applies what the user asked for
    /// (more steps, other intervals, learning rates, another output folder); a change to a
    /// setting that fixes the model or its data is an error naming both values.
    pub fn resume(checkpoint: &Path, adjust: impl FnOnce(&mut T::Config)) -> crate::Result<Self> {
        Self::resume_with(checkpoint, |cfg| {
            adjust(cfg);
            Ok(())
        })
    }

    /// [`Run::resume`] with an `adjust` that may fail (e.g. a flag that does not parse).
    pub fn resume_with(checkpoint: &Path, adjust: impl FnOnce(&mut T::Config) -> crate::Result<()>) -> crate::Result<Self> {
        let saved = Record::read(checkpoint, T::KIND, T::COMMAND, &Device::Cpu)?;
        let before: T::Config =
            T::Config::from_toml(&saved.config).map_err(|e| crate::Error::checkpoint(checkpoint, format!("its saved config is not valid: {e}")))?;
        before.validate().map_err(|e| crate::Error::checkpoint(checkpoint, format!("its saved config is not valid: {e}")))?;
        let mut cfg = before.clone();
        adjust(&mut cfg)?;
        cfg.validate()?;
        resume::check_fixed(&before, &cfg, T::Config::FIXED_ON_RESUME)?;
        let steps = cfg.schedule().steps;
        if steps <= saved.run.step {
            return Err(crate::Error::Config(format!(
                "{} is at step {} and the run is set to {steps} steps (schedule.steps): nothing left to train; \
                 pass --steps above {} to train on",
                checkpoint.display(),
                saved.run.step,
                saved.run.step
            )));
        }
        check_data_parallel::<T>()?;
        let device = crate::device::parse_device(cfg.device())?;
        let dir = cfg.schedule().dir;
        let opened = if parallel::is_writer() {
            RunDir::open_for_resume(&dir, checkpoint, &saved.run.run_id).map(|(run, lock)| (run, Some(lock)))
        } else {
            Ok((RunDir::at(&dir), None))
        };
        let (run, lock) = parallel::agree(opened)?;
        let run_id = saved.run.run_id.clone();
        let mut r = parallel::agree(Self::build(cfg, device, run, lock, Some(saved), run_id))?;
        r.last_good = Some((r.step, checkpoint.to_path_buf()));
        Ok(r)
    }

    /// `lock` is None exactly for a data-parallel process that does not write.
    fn build(cfg: T::Config, device: Device, run: RunDir, lock: Option<RunLock>, saved: Option<Record>, run_id: String) -> crate::Result<Self> {
        let sched = cfg.schedule();
        let task = T::build(&cfg, saved.as_ref(), &device)?;
        let meta = saved.as_ref().map(|s| s.run.clone()).unwrap_or_default();
        let mut guard = Guard::new(sched.guard, sched.loss);
        guard.set_streaks(meta.guard_streaks);
        let writer = lock.is_some();
        let (log, eval) = if writer {
            crate::checkpoint::write_atomic(&run.config(), cfg.to_toml().as_bytes())?;
            let columns = task.eval_columns();
            let eval = if sched.eval_every > 0 && !columns.is_empty() { Some(EvalLog::open(&run, columns, meta.step)?) } else { None };
            (MetricsLog::open(&run.metrics_csv(), meta.step)?, eval)
        } else {
            (MetricsLog::in_memory(), None)
        };
        Ok(Self {
            cfg,
            task,
            device,
            step: meta.step,
            run,
            lock,
            writer,
            run_id,
            log,
            eval,
            guard,
            rollbacks: meta.rollbacks,
            started: Instant::now(),
            elapsed_before: meta.elapsed_s,
            last_good: None,
        })
    }

    /// Steps done.
    pub fn step(&self) -> u64 {
        self.step
    }
    pub fn config(&self) -> &T::Config {
        &self.cfg
    }
    pub fn task(&self) -> &T {
        &self.task
    }
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }
    /// Rollbacks the divergence guard has done in this run.
    pub fn rollbacks(&self) -> u32 {
        self.rollbacks
    }
    /// The identity of this run (kept by every checkpoint of it).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// One step; an error naming the last good checkpoint when the divergence guard trips.
    pub fn train_step(&mut self) -> crate::Result<StepStats> {
        self.hold_lock()?;
        let (stats, signal) = self.guarded_step()?;
        match signal {
            Some(s) => Err(self.divergence_error(&s)),
            None => Ok(stats),
        }
    }

    fn guarded_step(&mut self) -> crate::Result<(StepStats, Option<Signal>)> {
        let t0 = Instant::now();
        let (task, step) = (&mut self.task, self.step);
        let losses = crate::nn::on_pool(|| task.step(step))?;
        self.step += 1;
        let mut signal = self.guard.observe(losses.guard_input());
        if signal.is_none() {
            signal = self.task.non_finite_tensor()?.map(|tensor| Signal::NonFiniteWeights { tensor });
        }
        // Data-parallel: the losses are the same everywhere, but buffers (per-process batch norm
        // statistics) may not be; all processes act when any sees a signal.
        if parallel::any(signal.is_some())? && signal.is_none() {
            signal = Some(Signal::NonFiniteWeights { tensor: "a buffer on another data-parallel process".into() });
        }
        let images_per_s = self.task.images_per_step() as f64 / t0.elapsed().as_secs_f64();
        self.log.push(losses, images_per_s);
        Ok((StepStats { step: self.step, images_per_s, summary: losses.summary() }, signal))
    }

    /// Trains until the configured number of steps, writing logs, grids, evaluations and
    /// checkpoints on their intervals. When `stop` becomes true, saves a checkpoint and returns
    /// [`Outcome::Stopped`].
    pub fn run(&mut self, observer: &mut dyn Observer, stop: &AtomicBool) -> crate::Result<Outcome> {
        self.hold_lock()?;
        let outcome = self.train_to_end(observer, stop);
        self.lock = None;
        outcome
    }

    /// Takes the folder's lock again if it was given up.
    fn hold_lock(&mut self) -> crate::Result<()> {
        if self.writer && self.lock.is_none() {
            self.lock = Some(self.run.lock()?);
        }
        Ok(())
    }

    fn train_to_end(&mut self, observer: &mut dyn Observer, stop: &AtomicBool) -> crate::Result<Outcome> {
        let total = self.cfg.schedule().steps;
        observer.on_start(self.step, total);
        while self.step < total {
            // Every data-parallel process stops at the same step, whichever got the request.
            if parallel::any(stop.load(Ordering::Relaxed))? {
                let checkpoint = self.save_checkpoint()?;
                return Ok(Outcome::Stopped { step: self.step, checkpoint });
            }
            let (stats, signal) = self.guarded_step()?;
            if let Some(signal) = signal {
                self.on_divergence(signal, observer)?;
                continue;
            }
            observer.on_step(&stats);
            self.after_step(observer)?;
        }
        // The final state is always saved (also when the periodic checkpoint of this step was
        // held back by the guard: the run is over, there is nothing left to roll back).
        if self.last_good.as_ref() != Some(&(self.step, self.run.latest_checkpoint())) {
            self.save_checkpoint()?;
        }
        if !self.step.is_multiple_of(self.cfg.schedule().sample_every) {
            self.write_samples()?;
        }
        Ok(Outcome::Finished)
    }

    fn after_step(&mut self, observer: &mut dyn Observer) -> crate::Result<()> {
        let s = self.cfg.schedule();
        if self.step.is_multiple_of(s.log_every) || self.step == s.steps {
            self.log.flush(self.step, self.elapsed())?;
        }
        if self.step.is_multiple_of(s.sample_every) {
            if let Some(p) = self.write_samples()? {
                observer.on_event(&format!("step {}: samples in {}", self.step, p.display()));
            }
        }
        if self.step.is_multiple_of(s.checkpoint_every) {
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
        if let Some(eval) = &mut self.eval {
            if (self.step.is_multiple_of(s.eval_every) || self.step == s.steps) && !eval.has(self.step) {
                let t0 = Instant::now();
                let values = self.task.evaluate(self.step)?;
                let summary = eval.append(self.step, values, t0.elapsed().as_secs_f64())?;
                observer.on_event(&format!("step {}: {summary}{}", self.step, self.task.eval_note()));
            }
        }
        Ok(())
    }

    /// Seconds trained in this run, across resumes.
    pub fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    /// Redraws the loss chart and writes the sample grid of this step (and
    /// `samples/latest.png`), when the task draws one; returns the grid's path.
    pub fn write_samples(&mut self) -> crate::Result<Option<PathBuf>> {
        if !self.writer {
            return Ok(None);
        }
        self.hold_lock()?;
        self.log.plot(&self.run.loss_plot())?;
        let Some(grid) = self.task.sample_grid(self.step)? else { return Ok(None) };
        let path = self.run.sample_grid(self.step);
        crate::image_io::save_png(&grid, &path)?;
        crate::image_io::save_png(&grid, &self.run.latest_grid())?;
        Ok(Some(path))
    }

    /// Writes `checkpoints/latest.safetensors` atomically; returns its path. Refuses to write
    /// weights holding a NaN or Inf, so the file on disk stays the last good one.
    pub fn save_checkpoint(&mut self) -> crate::Result<PathBuf> {
        self.hold_lock()?;
        if let Some(t) = self.task.non_finite_tensor()? {
            return Err(crate::Error::Msg(format!(
                "not saving a checkpoint at step {}: tensor {t} is not finite; {} is left as it was",
                self.step,
                self.run.latest_checkpoint().display()
            )));
        }
        self.log.flush(self.step, self.elapsed())?;
        let path = self.run.latest_checkpoint();
        // Data-parallel: every process reaches the collective below, also when writing failed.
        let written = if self.writer { self.write_checkpoint(&path) } else { Ok(()) };
        // Data-parallel: the file is complete before any process may read it (a rollback).
        parallel::agree(written)?;
        self.last_good = Some((self.step, path.clone()));
        Ok(path)
    }

    /// The task's state and the run's record, atomically, at `path`.
    fn write_checkpoint(&self, path: &Path) -> crate::Result<()> {
        let saved = self.task.save(self.step)?;
        let meta =
            RunMeta { step: self.step, elapsed_s: self.elapsed(), run_id: self.run_id.clone(), rollbacks: self.rollbacks, guard_streaks: self.guard.streaks() };
        Record::write(path, T::KIND, &self.cfg.to_toml(), &meta, &saved.tensors, &saved.meta)
    }

    /// The error a divergence stops the run with: step, signal, and the last good checkpoint.
    fn divergence_error(&self, signal: &Signal) -> crate::Error {
        let g = self.cfg.schedule().guard;
        let exhausted = if g.rollback && self.rollbacks >= g.max_rollbacks {
            format!(" after {} rollbacks (guard.max_rollbacks = {})", self.rollbacks, g.max_rollbacks)
        } else {
            String::new()
        };
        let next = match &self.last_good {
            Some((step, path)) => format!(
                "the last good checkpoint is {} (step {step}); continue from it with lower learning rates \
                 ({} --resume {} {}), or set [guard] rollback = true",
                path.display(),
                T::COMMAND,
                path.display(),
                T::LOWER_LR
            ),
            None => format!(
                "no checkpoint had been written yet (the first is due at step {}, output.checkpoint_every); start again \
                 with lower learning rates ({} {}), or set [guard] rollback = true",
                self.cfg.schedule().checkpoint_every,
                T::COMMAND,
                T::LOWER_LR
            ),
        };
        crate::Error::Msg(format!("training diverged at step {}{exhausted}: {signal}; {next}", self.step))
    }

    /// Appends a line to the run's `guard.log`.
    fn guard_log(&self, line: &str) -> crate::Result<()> {
        use std::io::Write;
        if !self.writer {
            return Ok(());
        }
        let path = self.run.guard_log();
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| crate::Error::io(format!("opening {}", path.display()), e))?;
        writeln!(f, "[{:.1}s] {line}", self.elapsed()).map_err(|e| crate::Error::io(format!("writing {}", path.display()), e))
    }

    /// The guard tripped: stop with an error, or (with `guard.rollback`, while rollbacks are
    /// left) rebuild the task from the last good checkpoint with both learning rates multiplied
    /// by `guard.lr_factor` and carry on from there. Without a checkpoint yet, the run restarts
    /// from its initial weights (a pure function of the seed).
    fn on_divergence(&mut self, signal: Signal, observer: &mut dyn Observer) -> crate::Result<()> {
        let at = self.step;
        let g = self.cfg.schedule().guard;
        if !g.rollback || self.rollbacks >= g.max_rollbacks {
            let err = self.divergence_error(&signal);
            self.guard_log(&format!("step {at}: {signal}; stopped: {err}"))?;
            observer.on_event(&err.to_string());
            return Err(err);
        }
        self.rollbacks += 1;
        self.cfg.scale_learning_rates(g.lr_factor);
        let (saved, from) = match &self.last_good {
            Some((step, path)) => {
                let saved = Record::read(path, T::KIND, T::COMMAND, &Device::Cpu)?;
                if saved.run.step != *step {
                    return Err(crate::Error::checkpoint(path, format!("holds step {}, expected the last good step {step}", saved.run.step)));
                }
                let from = format!("{} (step {step})", path.display());
                (Some(saved), from)
            }
            None => (None, "the initial weights (step 0; no checkpoint had been written yet)".to_string()),
        };
        self.task = T::build(&self.cfg, saved.as_ref(), &self.device)?;
        self.step = saved.as_ref().map_or(0, |s| s.run.step);
        if self.writer {
            self.log = MetricsLog::open(&self.run.metrics_csv(), self.step)?;
            crate::checkpoint::write_atomic(&self.run.config(), self.cfg.to_toml().as_bytes())?;
        }
        if let Some(e) = &mut self.eval {
            e.truncate(self.step)?;
        }
        self.guard = Guard::new(g, self.cfg.schedule().loss);
        let (lr_g, lr_d) = self.cfg.learning_rates();
        let msg = format!(
            "step {at}: {signal}; rolled back to {from} with learning rates G {lr_g:e}, D {lr_d:e} (rollback {} of {})",
            self.rollbacks, g.max_rollbacks
        );
        self.guard_log(&msg)?;
        observer.on_event(&msg);
        observer.on_start(self.step, self.cfg.schedule().steps);
        Ok(())
    }
}

/// Refuses a task that does not train data-parallel when several processes run it: each would
/// train its own copy on the whole batch, and only rank 0's would be saved.
fn check_data_parallel<T: Task>() -> crate::Result<()> {
    if parallel::is_parallel() && !T::DATA_PARALLEL {
        return Err(crate::Error::Config(format!(
            "data-parallel training (mpirun, --launch) is available for `gannet train` only; run `{}` as one process",
            T::COMMAND
        )));
    }
    Ok(())
}
