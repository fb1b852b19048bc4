//! The image-to-image training loop: batches from the deterministic loader, [`I2iState::step`],
//! and on their intervals `metrics.csv`, comparison grids of held-out images and atomic
//! checkpoints. Data order depends only on (seed, step) and the pools are saved, so a resumed
//! run repeats the unbroken one exactly.

use super::step::{downscale, I2iLosses, I2iState};
use crate::checkpoint;
use crate::config::{I2iConfig, Task};
use crate::data::{load_paired, load_unpaired, BatchLoader, Dataset, Split};
use crate::metrics::FidInception;
use crate::rng::{self, Stream};
use crate::saved::{self, i2i::KIND_I2I, Direction, I2iNets};
use crate::train::engine::{self, Losses, Record, Run, Saved, Schedule, TaskConfig};
use crate::train::guard::GuardInput;
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An image-to-image training run (`gannet train-i2i`).
pub type I2iTrainer = Run<I2iTask>;

impl Losses for I2iLosses {
    const COLUMNS: &'static [&'static str] = &["d_loss", "g_adv", "g_pixel", "d_real", "d_fake", "lr_factor"];
    const PLOTTED: &'static [&'static str] = &["d_loss", "g_adv", "g_pixel"];
    fn values(&self) -> Vec<f64> {
        vec![self.d_loss, self.g_adv, self.g_pixel, self.d_real, self.d_fake, self.lr_factor]
    }
    /// The guard watches the adversarial game; the pixel term is checked for being finite.
    fn guard_input(&self) -> GuardInput {
        let g_loss = if self.g_pixel.is_finite() { self.g_adv } else { self.g_pixel };
        GuardInput { d_loss: self.d_loss, g_loss, d_real: self.d_real, d_fake: self.d_fake }
    }
    fn summary(&self) -> String {
        format!("D {:.3} pixel {:.3} | D(real) {:+.2} D(fake) {:+.2}", self.d_loss, self.g_pixel, self.d_real, self.d_fake)
    }
}

impl TaskConfig for I2iConfig {
    const FIXED_ON_RESUME: &'static [&'static str] = &["task", "data", "model", "seed", "loss", "schedule.batch_size", "schedule.pool_size"];
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
        I2iConfig::validate(self)
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
        Self::from_sets(cfg, &a, b.as_ref(), &names, count, device)
    }

    /// [`HeldOut::load`] from the held-out sets already read.
    fn from_sets(cfg: &I2iConfig, a: &Dataset, b: Option<&Dataset>, names: &[String], count: Option<usize>, device: &Device) -> crate::Result<Self> {
        let n = count.unwrap_or(a.len()).min(a.len());
        let idx: Vec<usize> = (0..n).collect();
        let a_t = a.batch_tensor(&idx, device)?;
        let names = names[..n].to_vec();
        Ok(match cfg.task {
            Task::Pix2pix => Self { inputs: a_t, targets: Some(b.expect("paired").batch_tensor(&idx, device)?), names },
            Task::Cyclegan => Self { inputs: a_t, targets: None, names },
            Task::Superres => Self { inputs: downscale(&a_t, cfg.model.scale)?, targets: Some(a_t), names },
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

/// Held-out examples scored during training (`[eval]`).
struct PeriodicEval {
    /// Inputs and, for paired tasks, their targets; for CycleGAN the domain-B images.
    held_out: HeldOut,
    domain_b: Option<Tensor>,
    /// CycleGAN's FID network.
    inception: Option<FidInception>,
}

/// Networks, optimisers, pools and data of an image-to-image run.
pub struct I2iTask {
    cfg: I2iConfig,
    device: Device,
    state: I2iState,
    loaders: Loaders,
    held_out: HeldOut,
    periodic: Option<PeriodicEval>,
}

impl engine::Task for I2iTask {
    type Config = I2iConfig;
    type Losses = I2iLosses;
    const KIND: &'static str = KIND_I2I;
    const COMMAND: &'static str = "gannet train-i2i";

    fn build(cfg: &I2iConfig, saved: Option<&Record>, device: &Device) -> crate::Result<Self> {
        let step = saved.map_or(0, |s| s.run.step);
        let loaders = Loaders::new(cfg, step)?;
        check_step_memory(cfg)?;
        let mut state = I2iState::new(cfg, loaders.channels, device)?;
        if let Some(s) = saved {
            restore(&s.tensors, &mut state)?;
        }
        // The held-out sets are read once, for the grids and for evaluation.
        let (a, b, names) = datasets(cfg, Split::HeldOut)?;
        let held_out = HeldOut::from_sets(cfg, &a, b.as_ref(), &names, Some(cfg.output.sample_count), device)?;
        let periodic = if cfg.eval.every > 0 { Some(PeriodicEval::new(cfg, &a, b.as_ref(), &names, device)?) } else { None };
        Ok(Self { cfg: cfg.clone(), device: device.clone(), state, loaders, held_out, periodic })
    }

    fn step(&mut self, step: u64) -> crate::Result<I2iLosses> {
        let (a, b) = self.loaders.next(&self.device)?;
        self.state.step(step, &a, b.as_ref())
    }

    fn images_per_step(&self) -> usize {
        self.cfg.schedule.batch_size
    }

    fn non_finite_tensor(&self) -> crate::Result<Option<String>> {
        let n = &self.state.nets;
        crate::nn::params::first_non_finite_in([("gen", &n.gen_params), ("disc", &n.disc_params)])
    }

    /// The comparison grid of the held-out sample batch: input | output | target.
    fn sample_grid(&mut self, _step: u64) -> crate::Result<Option<image::DynamicImage>> {
        let g = self.state.nets.generator(Direction::AToB)?;
        let out = g.forward(&self.held_out.inputs)?.detach();
        comparison_grid(&self.cfg, &self.held_out.inputs, &out, self.held_out.targets.as_ref()).map(Some)
    }

    /// Weights, optimiser state and CycleGAN's pools.
    fn save(&self, _step: u64) -> crate::Result<Saved> {
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
        let meta = saved::i2i::I2iMeta { channels: self.loaders.channels };
        Ok(Saved { tensors, meta: serde_json::to_value(meta).expect("plain struct") })
    }

    fn evaluate(&mut self, _step: u64) -> crate::Result<Vec<f64>> {
        let Some(p) = &self.periodic else { return Ok(Vec::new()) };
        let g = self.state.nets.generator(Direction::AToB)?;
        let outputs = super::eval::translate_all(g, &p.held_out.inputs)?;
        match (&p.held_out.targets, &p.domain_b, &p.inception) {
            (Some(targets), _, _) => {
                let s = super::eval::paired_scores(&outputs, targets)?;
                Ok(vec![s.l1, s.psnr, s.ssim])
            }
            (None, Some(b), Some(net)) => Ok(vec![super::eval::fid(net, &outputs, b)?]),
            _ => Err(crate::Error::Msg("image-to-image evaluation has neither targets nor a target domain".into())),
        }
    }

    fn eval_columns(&self) -> Vec<(String, Vec<String>)> {
        let Some(p) = &self.periodic else { return Vec::new() };
        let names: &[&str] = if p.held_out.targets.is_some() { &["l1", "psnr", "ssim"] } else { &["fid"] };
        names.iter().map(|n| (n.to_string(), vec![n.to_string()])).collect()
    }

    fn eval_note(&self) -> String {
        self.periodic.as_ref().map_or(String::new(), |p| format!(" ({} held-out examples)", p.held_out.names.len()))
    }
}

impl PeriodicEval {
    /// `eval.count` examples of the held-out sets `a`, `b` (and for CycleGAN, its FID network).
    fn new(cfg: &I2iConfig, a: &Dataset, b: Option<&Dataset>, names: &[String], device: &Device) -> crate::Result<Self> {
        let held_out = HeldOut::from_sets(cfg, a, b, names, Some(cfg.eval.count), device)?;
        if cfg.task != Task::Cyclegan {
            return Ok(Self { held_out, domain_b: None, inception: None });
        }
        let b = b.expect("CycleGAN has two domains");
        let idx: Vec<usize> = (0..cfg.eval.count.min(b.len())).collect();
        let domain_b = b.batch_tensor(&idx, device)?;
        let inception = FidInception::load_default(device)?;
        Ok(Self { held_out, domain_b: Some(domain_b), inception: Some(inception) })
    }
}

impl I2iTask {
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
}

/// What tests and the CLI ask of an image-to-image run.
impl Run<I2iTask> {
    pub fn nets(&self) -> &I2iNets {
        self.task().nets()
    }
    pub fn state(&self) -> &I2iState {
        self.task().state()
    }
    pub fn train_len(&self) -> usize {
        self.task().train_len()
    }
}

fn restore(tensors: &BTreeMap<String, Tensor>, state: &mut I2iState) -> crate::Result<()> {
    saved::i2i::load_weights(tensors, &state.nets)?;
    state.opt_gen.load_state(&checkpoint::strip_prefix("opt_gen", tensors))?;
    state.opt_disc.load_state(&checkpoint::strip_prefix("opt_disc", tensors))?;
    state.pool_a.load(tensors.get("pool_a"))?;
    state.pool_b.load(tensors.get("pool_b"))
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
