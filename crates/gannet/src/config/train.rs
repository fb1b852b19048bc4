//! The run configuration, read from TOML and overridden by command-line flags.
//! Every field has a default, so an empty file (or none) is a valid DCGAN-on-digits run.

use super::{AdaConfig, AugmentPolicy, EvalConfig, GuardConfig, ParallelConfig, PenaltyConfig};
use crate::data::Channels;
use crate::loss::GanLoss;
use crate::models::{AcganClassLoss, Conditioning, ModelConfig};
use crate::optim::AdamConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seeds weights, data order and latents: the same seed and config give the same run.
    pub seed: u64,
    /// cpu, cuda, cuda:N or metal.
    pub device: String,
    /// Decay of the EMA (shadow) generator, updated after every G step:
    /// `ema = ema_decay*ema + (1-ema_decay)*gen`. 0 turns it off. When on, checkpoints hold
    /// `gen_ema.*` and sample grids / `gannet sample` use the shadow generator.
    pub ema_decay: f64,
    /// DiffAugment applied to every batch D sees (real and fake, D and G updates):
    /// `"color,translation,cutout"`, any subset, or `"none"` (default). See `train::augment`.
    pub augment: AugmentPolicy,
    /// `[ada]`: adaptive augmentation probability (off by default). See `train::ada`.
    pub ada: AdaConfig,
    pub loss: GanLoss,
    /// AC-GAN only (`model.conditional = "acgan"`): the images D's class head learns from,
    /// `"real"` (default) or `"real-and-fake"` (Odena et al.). See [`AcganClassLoss`].
    pub acgan_class_loss: Option<AcganClassLoss>,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub schedule: ScheduleConfig,
    pub optim: OptimConfig,
    pub output: OutputConfig,
    /// `[penalty]`: gradient penalty on D (R1 or WGAN-GP), off by default. See
    /// `train::penalty` and `docs/stabilisers.md`.
    pub penalty: PenaltyConfig,
    /// `[eval]`: metrics computed during training (off by default). See
    /// [`super::eval`].
    pub eval: EvalConfig,
    /// `[guard]`: divergence detection (NaN/Inf, collapsed D) and optional rollback. See
    /// `train::guard` and `docs/stabilisers.md`.
    pub guard: GuardConfig,
    /// `[parallel]`: data-parallel settings (batch norm synchronisation). See `gannet::parallel`.
    pub parallel: ParallelConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            device: "cpu".into(),
            loss: GanLoss::NonSaturating,
            acgan_class_loss: None,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            schedule: ScheduleConfig::default(),
            optim: OptimConfig::default(),
            output: OutputConfig::default(),
            penalty: PenaltyConfig::default(),
            guard: GuardConfig::default(),
            ema_decay: 0.999,
            eval: EvalConfig::default(),
            augment: AugmentPolicy::NONE,
            ada: AdaConfig::default(),
            parallel: ParallelConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `builtin:digits` (10k MNIST digits inside the binary), an IDX directory or file, or a
    /// folder of PNG/JPEG images (subfolders = classes).
    pub source: String,
    /// Square size images are resized and centre-cropped to; default: 28 for IDX data, 32 for
    /// image folders.
    pub resolution: Option<usize>,
    pub channels: Channels,
    /// Names for the classes, in label order, replacing the data's own ("0".."9" for IDX data,
    /// subfolder names for folders). Saved in checkpoints for `gannet sample --class-name`.
    pub class_names: Option<Vec<String>>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { source: BUILTIN_DIGITS.into(), resolution: None, channels: Channels::Auto, class_names: None }
    }
}

/// Fashion-MNIST's class names, in label order (the IDX files only hold the numbers).
pub const FASHION_MNIST_CLASSES: [&str; 10] = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"];

pub const BUILTIN_DIGITS: &str = crate::data::DataSource::BUILTIN_DIGITS;

/// Largest batch a config may ask for.
pub const MAX_BATCH: usize = 65_536;
/// Most images in one sample grid.
pub const MAX_GRID: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Generator updates in the whole run.
    pub steps: u64,
    pub batch_size: usize,
    /// Discriminator updates before each generator update (5 is usual for WGAN).
    pub d_steps_per_g: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { steps: 3000, batch_size: 64, d_steps_per_g: 1 }
    }
}

/// Separate optimisers for G and D (two time-scale updates when their rates differ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub gen: AdamConfig,
    pub disc: AdamConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Run directory: config, metrics.csv, loss curve, samples/, checkpoints/.
    pub dir: PathBuf,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// Steps averaged into one row of metrics.csv.
    pub log_every: u64,
    /// Images in each sample grid (drawn from one fixed latent batch for the whole run).
    pub sample_count: usize,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("runs/default"), sample_every: 100, checkpoint_every: 250, log_every: 10, sample_count: 64 }
    }
}

impl TrainConfig {
    pub fn from_toml_str(text: &str) -> crate::Result<Self> {
        toml::from_str(text).map_err(|e| crate::Error::Config(e.to_string()))
    }

    pub fn from_file(path: &Path) -> crate::Result<Self> {
        let text = crate::limits::read_text(path, crate::limits::MAX_CONFIG_BYTES).map_err(|e| crate::Error::Config(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| crate::Error::Config(format!("{}: {e}", path.display())))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config is always serialisable")
    }

    /// Rejects settings that cannot run, with the setting's name in the message.
    /// Whether training differentiates a gradient (a gradient penalty or StyleGAN2's path-length
    /// term): the program must then call [`crate::autodiff::enable_second_order`] before any
    /// other thread exists (the `gannet` binary does; a step checks and says so otherwise).
    pub fn needs_second_order(&self) -> bool {
        self.penalty.is_active() || self.model.needs_second_order()
    }

    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::Config(m.to_string()));
        if self.schedule.batch_size == 0 {
            return bad("schedule.batch_size must be at least 1");
        }
        if self.schedule.steps == 0 {
            return bad("schedule.steps must be at least 1 (generator updates in the whole run)");
        }
        if self.schedule.d_steps_per_g == 0 {
            return bad("schedule.d_steps_per_g must be at least 1");
        }
        if self.output.sample_every == 0 || self.output.checkpoint_every == 0 || self.output.log_every == 0 {
            return bad("output.sample_every, checkpoint_every and log_every must be at least 1");
        }
        self.optim.gen.validate("gen")?;
        self.optim.disc.validate("disc")?;
        if self.schedule.batch_size > MAX_BATCH {
            return Err(crate::Error::Config(format!("schedule.batch_size must be at most {MAX_BATCH}, got {}", self.schedule.batch_size)));
        }
        if self.output.sample_count == 0 || self.output.sample_count > MAX_GRID {
            return Err(crate::Error::Config(format!(
                "output.sample_count (images in each sample grid) must be between 1 and {MAX_GRID}, got {}",
                self.output.sample_count
            )));
        }
        if let Some(r) = self.data.resolution {
            crate::limits::check_resolution(r, "data.resolution (--resolution)")?;
        }
        if self.data.class_names.as_ref().is_some_and(|n| n.len() > crate::limits::MAX_CLASSES) {
            return bad("data.class_names lists more classes than gannet supports (100000)");
        }
        self.model.validate_sizes()?;
        if self.penalty.every == 0 {
            return bad("penalty.every must be at least 1");
        }
        if !(self.penalty.weight >= 0.0 && self.penalty.weight.is_finite()) {
            return Err(crate::Error::Config(format!("penalty.weight must be a non-negative number, got {}", self.penalty.weight)));
        }
        if !(self.penalty.drift >= 0.0 && self.penalty.drift.is_finite()) {
            return Err(crate::Error::Config(format!("penalty.drift must be a non-negative number (0 = off), got {}", self.penalty.drift)));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(crate::Error::Config(format!("ema_decay must be in [0, 1) (0 = off), got {}", self.ema_decay)));
        }
        if self.model.latent_dim() == 0 {
            return bad("model.latent_dim must be at least 1");
        }
        if self.acgan_class_loss.is_some() && self.model.conditioning() != Conditioning::Acgan {
            return Err(crate::Error::Config(format!(
                "acgan_class_loss applies to AC-GAN models only, but model.conditional is \"{}\": remove the setting or set conditional = \"acgan\"",
                self.model.conditioning()
            )));
        }
        self.eval.validate()?;
        self.ada.validate()?;
        self.guard.validate()
    }

    /// The images D's class head learns from (AC-GAN models).
    pub fn acgan_class_loss(&self) -> AcganClassLoss {
        self.acgan_class_loss.unwrap_or_default()
    }
}
