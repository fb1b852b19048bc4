//! The image-to-image training loop: batches from the deterministic loader, [`I2iState::step`],
//! and on their intervals `metrics.csv`, comparison grids of held-out images and atomic
//! checkpoints. Data order depends only on (seed, step) and the pools are saved, so a resumed
//! run repeats the unbroken one exactly.

use super::config::{I2iConfig, Task};
use super::log::I2iLog;
use super::nets::{Direction, I2iNets};
use super::step::{downscale, I2iLosses, I2iState};
use crate::checkpoint;
use crate::data::{load_paired, load_unpaired, BatchLoader, Dataset, Split};
use crate::rng::{self, Stream};
use crate::train::run_dir::RunDir;
use crate::train::{Observer, StepStats};
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::checkpoint::META_KIND;
/// The [`META_KIND`] of `gannet train-i2i` checkpoints.
pub const KIND_I2I: &str = "i2i";
const META_CONFIG: &str = "config";
const META_STEP: &str = "step";
const META_CHANNELS: &str = "channels";

/// The training data: one loader of paired (channel-stacked) or single images, and for CycleGAN a
/// second one for domain B.
struct Loaders {
    a: BatchLoader,
    b: Option<BatchLoader>,
    /// Channels of one image (the paired loader yields twice as many).
    channels: usize,
    stacked: bool,
    len: usize,
}

/// Held-out images the comparison grids show: inputs and, when known, targets.
pub struct HeldOut {
    pub inputs: Tensor,
    pub targets: Option<Tensor>,
    pub names: Vec<String>,
}

/// The data sets of a run: (training sets, held-out inputs and targets).
fn datasets(cfg: &I2iConfig, split: Split) -> crate::Result<(Dataset, Option<Dataset>, Vec<String>)> {
    let (a_dir, r, ch) = (Path::new(&cfg.data.a), cfg.data.resolution, cfg.data.channels);
    let b_dir = cfg.data.b.as_ref().map(PathBuf::from);
    match cfg.task {
        Task::Pix2pix => {
            let p = load_paired(a_dir, b_dir.as_deref().expect("validated"), split, r, ch)?;
            Ok((p.a, Some(p.b), p.names))
        }
        Task::Cyclegan => {
            let (a, names) = load_unpaired(a_dir, split, r, ch)?;
            let b_ch = if a.channels() == 1 { crate::data::Channels::Grey } else { crate::data::Channels::Rgb };
            let (b, _) = load_unpaired(b_dir.as_deref().expect("validated"), split, r, b_ch)?;
            Ok((a, Some(b), names))
        }
        Task::Superres => {
            let (a, names) = load_unpaired(a_dir, split, r, ch)?;
            Ok((a, None, names))
        }
    }
}

impl HeldOut {
    /// The held-out split of the run's data (all of it when `count` is None): for pix2pix the
    /// input and target of every pair, for CycleGAN the A images (and the B images of the same
    /// names, when there are such), for super-resolution the downscaled images and the originals.
    pub fn load(cfg: &I2iConfig, count: Option<usize>, device: &Device) -> crate::Result<Self> {
        let (a, b, names) = datasets(cfg, Split::HeldOut)?;
        let n = count.unwrap_or(a.len()).min(a.len());
        let idx: Vec<usize> = (0..n).collect();
        let a_t = a.batch_tensor(&idx, device)?;
        Ok(match cfg.task {
            Task::Pix2pix => Self { inputs: a_t, targets: Some(b.expect("paired").batch_tensor(&idx, device)?), names: names[..n].to_vec() },
            Task::Cyclegan => Self { inputs: a_t, targets: None, names: names[..n].to_vec() },
            Task::Superres => Self { inputs: downscale(&a_t, cfg.model.scale)?, targets: Some(a_t), names: names[..n].to_vec() },
        })
    }
}

impl Loaders {
    fn new(cfg: &I2iConfig, start_step: u64) -> crate::Result<Self> {
        let bs = cfg.schedule.batch_size;
        let (a, b, _) = datasets(cfg, Split::Train)?;
        let channels = a.channels();
        Ok(match (cfg.task, b) {
            (Task::Pix2pix, Some(b)) => {
                let stacked = crate::data::PairedDataset { a, b, names: Vec::new() }.stacked()?;
                let len = stacked.len();
                Self { a: BatchLoader::new(Arc::new(stacked), bs, cfg.seed, start_step)?, b: None, channels, stacked: true, len }
            }
            (_, b) => {
                let len = a.len();
                // Domain B is shuffled by its own stream, so the pairs CycleGAN sees change.
                let b = b.map(|b| BatchLoader::new(Arc::new(b), bs, rng::mix(cfg.seed, Stream::Shuffle, u64::MAX), start_step)).transpose()?;
                Self { a: BatchLoader::new(Arc::new(a), bs, cfg.seed, start_step)?, b, channels, stacked: false, len }
            }
        })
    }

    /// The next batch: (A or high-res images, B images).
    fn next(&mut self, device: &Device) -> crate::Result<(Tensor, Option<Tensor>)> {
        let (a, _) = self.a.next_batch()?.to_tensors(device)?;
        if self.stacked {
            let c = self.channels;
            return Ok((a.narrow(1, 0, c)?.contiguous()?, Some(a.narrow(1, c, c)?.contiguous()?)));
        }
        let b = match &mut self.b {
            Some(l) => Some(l.next_batch()?.to_tensors(device)?.0),
            None => None,
        };
        Ok((a, b))
    }
}

pub struct I2iTrainer {
    cfg: I2iConfig,
    device: Device,
    state: I2iState,
    loaders: Loaders,
    held_out: HeldOut,
    step: u64,
    run: RunDir,
    log: I2iLog,
    pending: Vec<(I2iLosses, f64)>,
    started: Instant,
    elapsed_before: f64,
}

impl I2iTrainer {
    /// A fresh run; refuses a run folder that already holds a checkpoint.
    pub fn new(cfg: I2iConfig) -> crate::Result<Self> {
        let run = RunDir::create_fresh(&cfg.output.dir)?;
        Self::build(cfg, run, None)
    }

    /// Continues the run saved in `checkpoint`; `adjust` may change what does not alter the
    /// model (steps, output intervals, the run folder).
    pub fn resume(checkpoint: &Path, adjust: impl FnOnce(&mut I2iConfig)) -> crate::Result<Self> {
        let saved = SavedI2i::load(checkpoint, &Device::Cpu)?;
        let mut cfg = saved.config.clone();
        adjust(&mut cfg);
        if cfg.task != saved.config.task || cfg.model != saved.config.model || cfg.seed != saved.config.seed {
            return Err(crate::Error::Config("resume cannot change the task, the model or the seed".into()));
        }
        let run = RunDir::create(&cfg.output.dir)?;
        Self::build(cfg, run, Some(saved))
    }

    fn build(cfg: I2iConfig, run: RunDir, saved: Option<SavedI2i>) -> crate::Result<Self> {
        cfg.validate()?;
        let device = crate::device::parse_device(&cfg.device)?;
        let step = saved.as_ref().map_or(0, |s| s.step);
        let loaders = Loaders::new(&cfg, step)?;
        check_step_memory(&cfg)?;
        let mut state = I2iState::new(&cfg, loaders.channels, &device)?;
        if let Some(s) = &saved {
            s.restore(&mut state)?;
        }
        let held_out = HeldOut::load(&cfg, Some(cfg.output.sample_count), &device)?;
        checkpoint::write_atomic(&run.config(), cfg.to_toml().as_bytes())?;
        let log = I2iLog::open(&run.metrics_csv(), step)?;
        let elapsed_before = saved.as_ref().map_or(0.0, |s| s.elapsed_s);
        Ok(Self { cfg, device, state, loaders, held_out, step, run, log, pending: Vec::new(), started: Instant::now(), elapsed_before })
    }

    pub fn step(&self) -> u64 {
        self.step
    }
    pub fn config(&self) -> &I2iConfig {
        &self.cfg
    }
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }
    pub fn nets(&self) -> &I2iNets {
        &self.state.nets
    }
    pub fn state(&self) -> &I2iState {
        &self.state
    }
    /// Training examples (pairs for pix2pix, domain-A images otherwise).
    pub fn train_len(&self) -> usize {
        self.loaders.len
    }

    /// One step on the next batch.
    pub fn train_step(&mut self) -> crate::Result<I2iLosses> {
        let t0 = Instant::now();
        let (a, b) = self.loaders.next(&self.device)?;
        let losses = self.state.step(self.step, &a, b.as_ref())?;
        self.step += 1;
        if !(losses.d_loss.is_finite() && losses.g_adv.is_finite() && losses.g_pixel.is_finite()) {
            return Err(crate::Error::Msg(format!(
                "training diverged at step {}: a loss is not finite ({losses:?}); resume the last checkpoint with lower learning rates",
                self.step
            )));
        }
        self.pending.push((losses, self.cfg.schedule.batch_size as f64 / t0.elapsed().as_secs_f64()));
        Ok(losses)
    }

    /// Trains until `schedule.steps`, with logs, grids and checkpoints on their intervals; stops
    /// early, after saving, when `stop` becomes true.
    pub fn run(&mut self, observer: &mut dyn Observer, stop: &AtomicBool) -> crate::Result<()> {
        let total = self.cfg.schedule.steps;
        observer.on_start(self.step, total);
        while self.step < total {
            if stop.load(Ordering::Relaxed) {
                let p = self.save_checkpoint()?;
                observer.on_event(&format!("interrupted at step {}: saved {}", self.step, p.display()));
                return Ok(());
            }
            let l = self.train_step()?;
            let ips = self.pending.last().map_or(0.0, |p| p.1);
            observer.on_step(&StepStats { step: self.step, d_loss: l.d_loss, g_loss: l.g_pixel, d_real: l.d_real, d_fake: l.d_fake, images_per_s: ips });
            let out = self.cfg.output.clone();
            if self.step.is_multiple_of(out.log_every) {
                self.flush_log()?;
            }
            if self.step.is_multiple_of(out.sample_every) {
                let p = self.write_samples()?;
                observer.on_event(&format!("step {}: grid {}", self.step, p.display()));
            }
            if self.step.is_multiple_of(self.cfg.output.checkpoint_every) {
                self.save_checkpoint()?;
            }
        }
        if !self.step.is_multiple_of(self.cfg.output.checkpoint_every) {
            self.save_checkpoint()?;
        }
        if !self.step.is_multiple_of(self.cfg.output.sample_every) {
            self.write_samples()?;
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
        let mean = |f: &dyn Fn(&(I2iLosses, f64)) -> f64| self.pending.iter().map(f).sum::<f64>() / n;
        let row = vec![
            self.step as f64,
            mean(&|p| p.0.d_loss),
            mean(&|p| p.0.g_adv),
            mean(&|p| p.0.g_pixel),
            mean(&|p| p.0.d_real),
            mean(&|p| p.0.d_fake),
            self.cfg.schedule.lr_factor(self.step.saturating_sub(1)),
            mean(&|p| p.1),
            self.elapsed(),
        ];
        self.pending.clear();
        self.log.append(row)
    }

    /// The comparison grid of the held-out sample batch (input | output | target) and the loss
    /// chart.
    pub fn write_samples(&mut self) -> crate::Result<PathBuf> {
        let g = self.state.nets.generator(Direction::AToB)?;
        let out = g.forward(&self.held_out.inputs)?.detach();
        let grid = comparison_grid(&self.cfg, &self.held_out.inputs, &out, self.held_out.targets.as_ref())?;
        let path = self.run.sample_grid(self.step);
        crate::image_io::save_png(&grid, &path)?;
        crate::image_io::save_png(&grid, &self.run.latest_grid())?;
        self.log.plot(&self.run.loss_plot())?;
        Ok(path)
    }

    /// Writes `checkpoints/latest.safetensors` atomically: weights, optimiser state, pools.
    pub fn save_checkpoint(&mut self) -> crate::Result<PathBuf> {
        self.flush_log()?;
        let st = &self.state;
        let mut tensors = BTreeMap::new();
        tensors.extend(checkpoint::prefixed("gen", st.nets.gen_params.tensors()));
        tensors.extend(checkpoint::prefixed("disc", st.nets.disc_params.tensors()));
        tensors.extend(checkpoint::prefixed("opt_gen", st.opt_gen.state()));
        tensors.extend(checkpoint::prefixed("opt_disc", st.opt_disc.state()));
        for (name, pool) in [("pool_a", &st.pool_a), ("pool_b", &st.pool_b)] {
            if let Some(t) = pool.tensor()? {
                tensors.insert(name.to_string(), t);
            }
        }
        let mut meta = BTreeMap::new();
        meta.insert(META_KIND.to_string(), KIND_I2I.to_string());
        meta.insert(META_CONFIG.to_string(), self.cfg.to_toml());
        meta.insert(META_STEP.to_string(), self.step.to_string());
        meta.insert(META_CHANNELS.to_string(), self.loaders.channels.to_string());
        meta.insert("elapsed_s".to_string(), format!("{:.3}", self.elapsed()));
        let path = self.run.latest_checkpoint();
        checkpoint::save(&path, &tensors, &meta)?;
        Ok(path)
    }
}

/// The grid `gannet translate` / `upscale` and training write: one group of columns per example
/// (input, output and, when known, target), four groups per row. Super-resolution inputs are
/// shown nearest-upscaled to the output's size.
pub fn comparison_grid(cfg: &I2iConfig, inputs: &Tensor, outputs: &Tensor, targets: Option<&Tensor>) -> crate::Result<image::DynamicImage> {
    let shown_in = if cfg.task == Task::Superres { crate::image_io::upscale_nearest(inputs, cfg.model.scale)? } else { inputs.clone() };
    let mut cols = vec![shown_in, outputs.clamp(-1f32, 1f32)?];
    if let Some(t) = targets {
        cols.push(t.clone());
    }
    crate::image_io::comparison_grid(&cols, 4, 2)
}

/// An image-to-image checkpoint read back.
pub struct SavedI2i {
    pub config: I2iConfig,
    pub step: u64,
    pub elapsed_s: f64,
    /// Channels of one image.
    pub channels: usize,
    pub tensors: BTreeMap<String, Tensor>,
}

/// Refuses a batch whose training step could not fit in memory, before any of it is allocated.
/// An estimate from the widest feature maps: every generator and discriminator layer keeps about
/// `g_channels` maps at the full resolution, forward values and gradients, for two domains.
fn check_step_memory(cfg: &I2iConfig) -> crate::Result<()> {
    let m = &cfg.model;
    let r = cfg.data.resolution;
    let layers = m.g_blocks * 2 + m.d_layers + 8;
    let need = crate::limits::product(&[cfg.schedule.batch_size, r, r, m.g_channels.max(m.d_channels), layers, 2 * 2 * 4]);
    crate::limits::check_memory(
        need,
        &format!("a training step of {} images at {r}x{r}", cfg.schedule.batch_size),
        "lower schedule.batch_size, model.g_channels or data.resolution",
    )
}

impl SavedI2i {
    pub fn load(path: &Path, device: &Device) -> crate::Result<Self> {
        let (tensors, meta) = checkpoint::load(path, device)?;
        let err = |m: String| crate::Error::checkpoint(path, m);
        let get = |k: &str| meta.get(k).ok_or_else(|| err(format!("metadata has no '{k}': not a gannet image-to-image checkpoint")));
        if get(META_KIND)? != KIND_I2I {
            return Err(err(format!("is a '{}' checkpoint, not an image-to-image one (gannet train-i2i writes those)", get(META_KIND)?)));
        }
        let config = I2iConfig::from_toml_str(get(META_CONFIG)?).map_err(|e| err(e.to_string()))?;
        // Checksummed but not trusted: a crafted config must not size the networks.
        config.validate().map_err(|e| err(format!("its saved config is not valid: {e}")))?;
        let step = get(META_STEP)?.parse().map_err(|_| err("bad step in metadata".into()))?;
        let channels: usize = get(META_CHANNELS)?.parse().map_err(|_| err("bad channels in metadata".into()))?;
        if !matches!(channels, 1 | 3) {
            return Err(err(format!("bad channels in metadata: {channels} (gannet makes 1 or 3)")));
        }
        let elapsed_s = meta.get("elapsed_s").and_then(|s| s.parse().ok()).unwrap_or(0.0);
        Ok(Self { config, step, elapsed_s, channels, tensors })
    }

    /// The networks with the saved weights, on `device` (for translating).
    pub fn nets(&self, device: &Device) -> crate::Result<I2iNets> {
        let nets = I2iNets::build(&self.config, self.channels, device)?;
        self.load_weights(&nets)?;
        Ok(nets)
    }

    fn load_weights(&self, nets: &I2iNets) -> crate::Result<()> {
        let on = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the model: {e}"));
        nets.gen_params.load(&checkpoint::strip_prefix("gen", &self.tensors)).map_err(on)?;
        nets.disc_params.load(&checkpoint::strip_prefix("disc", &self.tensors)).map_err(on)
    }

    fn restore(&self, state: &mut I2iState) -> crate::Result<()> {
        self.load_weights(&state.nets)?;
        state.opt_gen.load_state(&checkpoint::strip_prefix("opt_gen", &self.tensors))?;
        state.opt_disc.load_state(&checkpoint::strip_prefix("opt_disc", &self.tensors))?;
        state.pool_a.load(self.tensors.get("pool_a"))?;
        state.pool_b.load(self.tensors.get("pool_b"))
    }
}
