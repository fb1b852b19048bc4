//! A classifier training run (`gannet classifier`): the labelled data, the network's widths, the
//! schedule and where the run writes. The trained network is exported as a classifier file
//! ([`crate::metrics::classifier::Classifier::save`]) for the class-based metrics.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierRunConfig {
    pub seed: u64,
    /// cpu, cuda, cuda:N or metal.
    pub device: String,
    pub data: ClassifierData,
    pub model: ClassifierWidths,
    pub schedule: ClassifierSchedule,
    pub output: ClassifierOutput,
    /// Test accuracy every N steps (and at the end) into `metrics_eval.csv`; 0 turns it off.
    pub eval_every: u64,
    pub augment: ClassifierAugment,
}

/// Random changes to each training image, drawn from the run's seed and the step (so a resumed
/// run sees the same ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierAugment {
    /// Shift each image by up to this many pixels in each direction (the background fills in).
    pub shift: usize,
    /// Mirror half of the images left-right (for classes that a mirror keeps, e.g. clothes; not
    /// for digits).
    pub flip: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierData {
    /// Labelled training images: an IDX folder, an IDX images file with its labels beside it, a
    /// folder with one subfolder per class, or `builtin:digits`.
    pub source: String,
    /// Labelled test images; default the t10k split of an IDX folder, else a held-out tenth.
    pub test: Option<String>,
    /// Square input size (a multiple of 4).
    pub resolution: usize,
    /// Names for the classes in label order, replacing the data's own ("0".."9" for IDX data,
    /// subfolder names for folders); saved in the classifier file, shown in `gannet eval`.
    pub class_names: Option<Vec<String>>,
}

/// Widths of the network (its channels and classes come from the data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierWidths {
    pub conv1: usize,
    pub conv2: usize,
    pub hidden: usize,
    /// Convolutions per stage: 1, or 2 for a VGG-style net.
    pub depth: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierSchedule {
    pub steps: u64,
    pub batch_size: usize,
    /// Adam's learning rate, decayed by a cosine to 5% of it over `steps`.
    pub lr: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierOutput {
    /// The run folder: config, metrics.csv, checkpoints/.
    pub dir: PathBuf,
    pub log_every: u64,
    pub checkpoint_every: u64,
}

impl Default for ClassifierRunConfig {
    /// About 4 epochs of MNIST's 60k training images.
    fn default() -> Self {
        Self {
            seed: 0,
            device: "cpu".into(),
            data: ClassifierData { source: "builtin:digits".into(), test: None, resolution: 28, class_names: None },
            model: ClassifierWidths::default(),
            schedule: ClassifierSchedule { steps: 2000, batch_size: 128, lr: 2e-3 },
            output: ClassifierOutput { dir: PathBuf::from("runs/classifier"), log_every: 10, checkpoint_every: 500 },
            eval_every: 0,
            augment: ClassifierAugment::default(),
        }
    }
}

impl Default for ClassifierData {
    fn default() -> Self {
        ClassifierRunConfig::default().data
    }
}
impl Default for ClassifierWidths {
    fn default() -> Self {
        Self { conv1: 16, conv2: 32, hidden: 64, depth: 1 }
    }
}
impl Default for ClassifierSchedule {
    fn default() -> Self {
        ClassifierRunConfig::default().schedule
    }
}
impl Default for ClassifierOutput {
    fn default() -> Self {
        ClassifierRunConfig::default().output
    }
}

impl ClassifierRunConfig {
    /// Rejects settings that cannot run, naming the setting.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        let r = self.data.resolution;
        if r == 0 || !r.is_multiple_of(4) || r > 512 {
            return bad(format!("data.resolution (--resolution) must be a positive multiple of 4 up to 512, got {r}"));
        }
        let w = &self.model;
        for (name, v) in [("model.conv1", w.conv1), ("model.conv2", w.conv2), ("model.hidden", w.hidden)] {
            crate::limits::check_width(v, name)?;
        }
        if !(1..=2).contains(&w.depth) {
            return bad(format!("model.depth (--depth) must be 1 or 2 convolutions per stage, got {}", w.depth));
        }
        if self.augment.shift >= r / 2 {
            return bad(format!("augment.shift (--shift) must be less than half the resolution ({r}), got {}", self.augment.shift));
        }
        if self.schedule.steps == 0 {
            return bad("schedule.steps (--steps) must be at least 1".into());
        }
        if self.schedule.batch_size == 0 || self.schedule.batch_size > super::train::MAX_BATCH {
            return bad(format!("schedule.batch_size must be between 1 and {}, got {}", super::train::MAX_BATCH, self.schedule.batch_size));
        }
        if !(self.schedule.lr > 0.0 && self.schedule.lr.is_finite()) {
            return bad(format!("schedule.lr (--lr) must be a positive number, got {}", self.schedule.lr));
        }
        if self.output.log_every == 0 || self.output.checkpoint_every == 0 {
            return bad("output.log_every and output.checkpoint_every must be at least 1".into());
        }
        Ok(())
    }

    /// The learning rate at (0-based) step `step`: a cosine from `lr` down to 5% of it.
    pub fn lr_at(&self, step: u64) -> f64 {
        let t = step as f64 / self.schedule.steps.max(1) as f64;
        self.schedule.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }
}
