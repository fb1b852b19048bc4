//! The configuration of an image-to-image run (`gannet train-i2i`), read from TOML: a task
//! (pix2pix, CycleGAN or super-resolution) and its data, networks, loss weights and schedule.
//! [`I2iConfig::for_task`] gives each task's defaults; presets and `--config` files are laid
//! over them, and the whole config is saved in every checkpoint so `--resume` continues exactly.

use super::{GuardConfig, OptimConfig};
use crate::data::Channels;
use crate::loss::GanLoss;
use crate::models::resnet_translator::Upsample;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What is learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Paired translation A -> B: U-Net G, conditional PatchGAN D, adversarial + L1 loss.
    Pix2pix,
    /// Unpaired translation A <-> B: two ResNet Gs, two PatchGAN Ds, LSGAN + cycle + identity.
    Cyclegan,
    /// 4x super-resolution of one folder's images (downscaled copies as inputs): sub-pixel G,
    /// PatchGAN D, pixel + adversarial loss.
    Superres,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::Pix2pix, Task::Cyclegan, Task::Superres];

    pub fn name(&self) -> &'static str {
        match self {
            Task::Pix2pix => "pix2pix",
            Task::Cyclegan => "cyclegan",
            Task::Superres => "superres",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Task {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Task::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| crate::Error::Config(format!("unknown task '{s}': use pix2pix, cyclegan or superres")))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct I2iConfig {
    pub task: Task,
    pub seed: u64,
    /// cpu, cuda, cuda:N or metal.
    pub device: String,
    pub data: I2iDataConfig,
    pub model: I2iModelConfig,
    /// The adversarial loss (pix2pix: non-saturating; CycleGAN: least-squares as in the paper).
    pub loss: GanLoss,
    pub weights: LossWeights,
    pub schedule: I2iSchedule,
    pub optim: OptimConfig,
    pub output: I2iOutput,
    /// The divergence guard (as in `gannet train`).
    #[serde(default)]
    pub guard: GuardConfig,
    /// Scores of held-out examples during training.
    #[serde(default)]
    pub eval: I2iEvalConfig,
}

/// `[eval]`: every `every` steps (and at the last step) the held-out examples are translated and
/// scored into `metrics_eval.csv`: L1, PSNR and SSIM against their targets (pix2pix,
/// super-resolution), or the FID of the translations against held-out domain-B images
/// (CycleGAN; Inception-v3, about a second per image on a CPU, so keep `count` small).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct I2iEvalConfig {
    /// Evaluate every N steps (and at the last step); 0 turns it off.
    pub every: u64,
    /// Held-out examples scored (at most all of them).
    pub count: usize,
}

impl Default for I2iEvalConfig {
    fn default() -> Self {
        Self { every: 0, count: 64 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct I2iDataConfig {
    /// Domain A (the inputs); for super-resolution the high-resolution images.
    pub a: String,
    /// Domain B (the targets); unused by super-resolution. Paired tasks need the same file names.
    pub b: Option<String>,
    /// Square size of the images (for super-resolution, of the high-resolution targets).
    pub resolution: usize,
    pub channels: Channels,
}

impl Default for I2iDataConfig {
    fn default() -> Self {
        Self { a: String::new(), b: None, resolution: 64, channels: Channels::Rgb }
    }
}

/// Sizes of the networks; each task reads the fields that apply to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct I2iModelConfig {
    /// ngf: the U-Net's first layer, the ResNet generator's first layer, the SR generator's width.
    pub g_channels: usize,
    /// Residual blocks of the ResNet generator (CycleGAN) or the SR generator.
    pub g_blocks: usize,
    /// CycleGAN: the generators predict a change to their input and start as the identity
    /// (`models::resnet_translator`); off is the paper's generator.
    pub g_residual: bool,
    /// CycleGAN: the ResNet generator's upsampling, "transposed" (4x4 transposed convs, the
    /// default) or "resize" (nearest-neighbour doubling and a 3x3 conv, no checkerboard).
    pub g_upsample: Upsample,
    /// ndf of the PatchGAN discriminator(s).
    pub d_channels: usize,
    /// Stride-2 layers of the PatchGAN (3: 70x70 patches, 2: 34x34, 1: 16x16).
    pub d_layers: usize,
    /// Super-resolution: the upscaling factor (a power of two).
    pub scale: usize,
}

impl Default for I2iModelConfig {
    fn default() -> Self {
        Self { g_channels: 32, g_blocks: 4, g_residual: false, g_upsample: Upsample::Transposed, d_channels: 32, d_layers: 3, scale: 4 }
    }
}

/// Weights of the loss terms in the generator's objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossWeights {
    /// The adversarial term (SRGAN: 1e-3, next to a pixel loss of weight 1).
    pub adversarial: f64,
    /// pix2pix: L1 to the target (lambda, 100 in the paper).
    pub l1: f64,
    /// CycleGAN: L1 of A -> B -> A and B -> A -> B to the originals (lambda, 10).
    pub cycle: f64,
    /// CycleGAN: L1 of G_AB(b) to b and G_BA(a) to a, as a fraction of `cycle` (0.5).
    pub identity: f64,
    /// Super-resolution: the pixel loss, "l1" or "mse" (weight 1).
    pub pixel: PixelLoss,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self { adversarial: 1.0, l1: 100.0, cycle: 10.0, identity: 0.5, pixel: PixelLoss::L1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelLoss {
    L1,
    Mse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct I2iSchedule {
    /// Generator updates (each with one discriminator update) in the whole run.
    pub steps: u64,
    pub batch_size: usize,
    /// Linear learning-rate decay (CycleGAN): constant until this step, then falling linearly to
    /// zero over `lr_decay_steps` steps. Set in steps rather than as a share of `steps`, so that
    /// extending a run with `--steps` does not change the rates of the steps already taken.
    pub lr_decay_start: u64,
    /// 0: no decay.
    pub lr_decay_steps: u64,
    /// CycleGAN: generated images kept to train the discriminators on (Shrivastava et al.);
    /// 0 turns the history pool off.
    pub pool_size: usize,
}

impl Default for I2iSchedule {
    fn default() -> Self {
        Self { steps: 1000, batch_size: 16, lr_decay_start: 0, lr_decay_steps: 0, pool_size: 50 }
    }
}

impl I2iSchedule {
    /// The factor applied to both base learning rates at (0-based) step `step`.
    pub fn lr_factor(&self, step: u64) -> f64 {
        if self.lr_decay_steps == 0 || step < self.lr_decay_start {
            return 1.0;
        }
        let done = (step - self.lr_decay_start + 1) as f64;
        (1.0 - done / (self.lr_decay_steps + 1) as f64).max(0.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct I2iOutput {
    pub dir: PathBuf,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    pub log_every: u64,
    /// Held-out examples in each comparison grid.
    pub sample_count: usize,
}

impl Default for I2iOutput {
    fn default() -> Self {
        Self { dir: PathBuf::from("runs/i2i"), sample_every: 100, checkpoint_every: 250, log_every: 10, sample_count: 16 }
    }
}

impl I2iConfig {
    /// The defaults of `task`: the papers' loss weights and schedules, scaled to small CPU runs.
    pub fn for_task(task: Task) -> Self {
        let mut cfg = Self {
            task,
            seed: 0,
            device: "cpu".into(),
            data: I2iDataConfig::default(),
            model: I2iModelConfig::default(),
            loss: GanLoss::NonSaturating,
            weights: LossWeights::default(),
            schedule: I2iSchedule::default(),
            optim: OptimConfig::default(),
            output: I2iOutput { dir: PathBuf::from(format!("runs/{task}")), ..Default::default() },
            guard: GuardConfig::default(),
            eval: I2iEvalConfig::default(),
        };
        match task {
            Task::Pix2pix => {}
            Task::Cyclegan => {
                cfg.loss = GanLoss::LeastSquares;
                cfg.model.g_channels = 16;
            }
            Task::Superres => {
                cfg.weights.adversarial = 1e-3;
                cfg.optim.gen.lr = 1e-4;
                cfg.optim.disc.lr = 1e-4;
                cfg.optim.gen.beta1 = 0.9;
                cfg.optim.disc.beta1 = 0.9;
            }
        }
        cfg
    }

    /// The defaults of the task named in `text` (or `task` when it names none) with every key of
    /// `text` laid over them.
    pub fn from_toml_over_defaults(text: &str, task: Option<Task>) -> crate::Result<Self> {
        let over: toml::Table = toml::from_str(text).map_err(|e| crate::Error::Config(e.to_string()))?;
        let task = match over.get("task").and_then(|t| t.as_str()) {
            Some(t) => t.parse()?,
            None => task.ok_or_else(|| crate::Error::Config("the config names no task: set task = \"pix2pix\", \"cyclegan\" or \"superres\"".into()))?,
        };
        let mut base: toml::Table = toml::from_str(&Self::for_task(task).to_toml()).expect("defaults serialise");
        crate::config::merge(&mut base, over);
        toml::from_str(&toml::to_string(&base).expect("a table serialises")).map_err(|e| crate::Error::Config(e.to_string()))
    }

    /// The exact config saved in a checkpoint.
    pub fn from_toml_str(text: &str) -> crate::Result<Self> {
        toml::from_str(text).map_err(|e| crate::Error::Config(e.to_string()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config is always serialisable")
    }

    /// Rejects settings that cannot run, naming the setting.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        self.guard.validate()?;
        if self.eval.every > 0 && self.eval.count < 2 {
            return bad(format!("eval.count must be at least 2 when eval.every > 0, got {}", self.eval.count));
        }
        if self.data.a.is_empty() {
            return bad("data.a (--a) is not set: the folder of input images".into());
        }
        if self.task != Task::Superres && self.data.b.is_none() {
            return bad(format!("{} needs two folders: data.b (--b) is not set", self.task));
        }
        if self.schedule.batch_size == 0 {
            return bad("schedule.batch_size must be at least 1".into());
        }
        if self.output.sample_every == 0 || self.output.checkpoint_every == 0 || self.output.log_every == 0 {
            return bad("output.sample_every, checkpoint_every and log_every must be at least 1".into());
        }
        self.optim.gen.validate("gen")?;
        self.optim.disc.validate("disc")?;
        if self.schedule.batch_size > super::train::MAX_BATCH {
            return bad(format!("schedule.batch_size must be at most {}, got {}", super::train::MAX_BATCH, self.schedule.batch_size));
        }
        let r = self.data.resolution;
        crate::limits::check_resolution(r, "data.resolution (--resolution)")?;
        let m = &self.model;
        for (name, v, max) in [
            ("model.g_channels", m.g_channels, 1024),
            ("model.d_channels", m.d_channels, 1024),
            ("model.scale", m.scale, 16),
            ("model.d_layers", m.d_layers, 8),
        ] {
            if v == 0 || v > max {
                return bad(format!("{name} must be between 1 and {max}, got {v}"));
            }
        }
        if m.g_blocks > 64 {
            return bad(format!("model.g_blocks must be at most 64, got {}", m.g_blocks));
        }
        if self.output.sample_count == 0 || self.output.sample_count > super::train::MAX_GRID {
            return bad(format!("output.sample_count must be between 1 and {}, got {}", super::train::MAX_GRID, self.output.sample_count));
        }
        // Each stride-2 layer halves the size; the stride-1 conv and the head take 1 pixel each
        // off, and instance norm needs at least 2x2.
        let layers = self.model.d_layers.min(16) as u32;
        if r < 3 << layers {
            return bad(format!(
                "model.d_layers = {} is too deep for {r}x{r} images: the PatchGAN needs at least {} pixels; use fewer layers",
                self.model.d_layers,
                3 << layers
            ));
        }
        if self.task == Task::Superres && (!r.is_multiple_of(self.model.scale) || r / self.model.scale < 2) {
            return bad(format!("data.resolution {r} must be a multiple of model.scale {} (and at least twice it)", self.model.scale));
        }
        Ok(())
    }
}
