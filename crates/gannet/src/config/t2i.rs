//! A text-to-image run (`gannet train --preset t2i-emoji`): the captioned images, the encoders
//! and their contrastive pretraining, the text-conditional GAN, its losses and schedule.

use super::GuardConfig;
use crate::loss::GanLoss;
use crate::models::text_gan::TextGanConfig;
use crate::text::EncoderConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `kind` key a text-to-image config file carries, which tells it from a GAN config.
pub const T2I_KIND: &str = "text-to-image";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct T2iConfig {
    /// Always "text-to-image": what `gannet train` reads this file as.
    pub kind: String,
    pub seed: u64,
    /// cpu, cuda, cuda:N or metal.
    pub device: String,
    pub data: T2iData,
    pub text: EncoderConfig,
    pub model: TextGanConfig,
    pub loss: T2iLoss,
    pub schedule: T2iSchedule,
    pub output: T2iOutput,
    pub guard: GuardConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct T2iData {
    /// A folder of captioned images: the emoji folder (emoji.json), a folder with
    /// captions.jsonl, or one with name.txt beside each name.png. A tenth of the caption groups
    /// is held out (never trained on) for evaluation.
    pub source: String,
    /// Square image size (4*2^k or 7*2^k with k >= 2, as DCGAN's).
    pub resolution: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct T2iLoss {
    /// The adversarial loss.
    pub gan: GanLoss,
    /// Weight of conditioning augmentation's KL term in G's loss.
    pub kl_weight: f64,
    /// Weight of the text-image matching loss on generated images in G's loss (AttnGAN's DAMSM
    /// loss, with the contrastive encoders frozen): pulls each image towards its own caption.
    pub match_weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct T2iSchedule {
    /// Steps in total: first `pretrain_steps` of the encoders, then GAN steps.
    pub steps: u64,
    /// Steps of contrastive pretraining of the text and image encoders.
    pub pretrain_steps: u64,
    pub batch_size: usize,
    /// Adam's learning rate for the encoders' pretraining.
    pub lr_encoders: f64,
    pub lr_g: f64,
    pub lr_d: f64,
    /// Adam's beta1 and beta2 for G and D.
    pub betas: (f64, f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct T2iOutput {
    /// The run folder: config, metrics.csv, samples/, checkpoints/.
    pub dir: PathBuf,
    pub log_every: u64,
    /// A grid of 8 training captions x 8 samples every N steps.
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// R-precision of generated images on held-out captions every N steps (0: off).
    pub eval_every: u64,
}

impl Default for T2iConfig {
    fn default() -> Self {
        Self {
            kind: T2I_KIND.into(),
            seed: 0,
            device: "cpu".into(),
            data: T2iData::default(),
            text: EncoderConfig::default(),
            model: TextGanConfig::default(),
            loss: T2iLoss::default(),
            schedule: T2iSchedule::default(),
            output: T2iOutput::default(),
            guard: GuardConfig::default(),
        }
    }
}

impl Default for T2iData {
    fn default() -> Self {
        Self { source: crate::data::data_root().join("emoji").display().to_string(), resolution: 64 }
    }
}

impl Default for T2iLoss {
    fn default() -> Self {
        Self { gan: GanLoss::Hinge, kl_weight: 1.0, match_weight: 1.0 }
    }
}

impl Default for T2iSchedule {
    fn default() -> Self {
        Self { steps: 6000, pretrain_steps: 1000, batch_size: 64, lr_encoders: 1e-3, lr_g: 2e-4, lr_d: 2e-4, betas: (0.5, 0.999) }
    }
}

impl Default for T2iOutput {
    fn default() -> Self {
        Self { dir: PathBuf::from("runs/t2i"), log_every: 10, sample_every: 500, checkpoint_every: 500, eval_every: 1000 }
    }
}

impl T2iConfig {
    /// Whether a config file's TOML is a text-to-image config (its `kind` key).
    pub fn is_t2i_toml(text: &str) -> bool {
        toml::from_str::<toml::Table>(text).ok().and_then(|t| t.get("kind").and_then(|k| k.as_str().map(|k| k == T2I_KIND))).unwrap_or(false)
    }

    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        if self.kind != T2I_KIND {
            return bad(format!("kind = '{}': a text-to-image config has kind = \"{T2I_KIND}\"", self.kind));
        }
        let s = &self.schedule;
        if s.batch_size < 2 {
            return bad(format!("schedule.batch_size = {}: text-to-image needs at least 2 (a batch's other captions are its mismatched ones)", s.batch_size));
        }
        if s.pretrain_steps >= s.steps {
            return bad(format!(
                "schedule.pretrain_steps = {} is not below schedule.steps = {}: leave steps for the GAN after the encoders' pretraining",
                s.pretrain_steps, s.steps
            ));
        }
        for (name, lr) in [("lr_encoders", s.lr_encoders), ("lr_g", s.lr_g), ("lr_d", s.lr_d)] {
            if !(lr > 0.0 && lr.is_finite()) {
                return bad(format!("schedule.{name} = {lr}: a learning rate must be positive"));
            }
        }
        if !(0.0..1.0).contains(&s.betas.0) || !(0.0..1.0).contains(&s.betas.1) {
            return bad(format!("schedule.betas = {:?}: each must be in [0, 1)", s.betas));
        }
        let t = &self.text;
        for (name, v) in [("word_dim", t.word_dim), ("hidden", t.hidden), ("embed_dim", t.embed_dim), ("image_channels", t.image_channels)] {
            if v == 0 || v > 4096 {
                return bad(format!("text.{name} = {v}: must be 1 to 4096"));
            }
        }
        if !(t.temperature > 0.0 && t.temperature.is_finite()) {
            return bad(format!("text.temperature = {}: must be positive", t.temperature));
        }
        let m = &self.model;
        for (name, v) in [("latent_dim", m.latent_dim), ("cond_dim", m.cond_dim), ("g_channels", m.g_channels), ("d_channels", m.d_channels)] {
            if v == 0 || v > 4096 {
                return bad(format!("model.{name} = {v}: must be 1 to 4096"));
            }
        }
        for (name, w) in [("kl_weight", self.loss.kl_weight), ("match_weight", self.loss.match_weight)] {
            if !(w >= 0.0 && w.is_finite()) {
                return bad(format!("loss.{name} = {w}: must be 0 or more"));
            }
        }
        if self.output.log_every == 0 || self.output.checkpoint_every == 0 || self.output.sample_every == 0 {
            return bad("output.log_every, sample_every and checkpoint_every must be at least 1".into());
        }
        crate::limits::check_resolution(self.data.resolution, "data.resolution")?;
        self.guard.validate()
    }
}
