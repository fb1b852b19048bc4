//! The 2-D mode-coverage benchmark runs (`train::toy`): which mixture, the MLP GAN's sizes, the
//! schedule and the run folder.

use crate::loss::GanLoss;
use crate::metrics::mode_coverage::Toy;
use crate::models::mlp::MlpConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings of the toy training run and its evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToyConfig {
    /// Which mixture to learn.
    pub toy: Toy,
    /// The run folder: config, metrics.csv, scatter plots of the samples, checkpoints.
    pub dir: PathBuf,
    pub log_every: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// Mode coverage of `eval_samples` points every N steps (and at the end); 0 turns it off.
    pub eval_every: u64,
    pub seed: u64,
    pub latent_dim: usize,
    pub hidden: usize,
    pub layers: usize,
    pub steps: u64,
    pub batch: usize,
    pub lr: f64,
    /// Learning rate at the last step as a fraction of `lr`, reached by a cosine decay (both
    /// networks); 1 keeps it constant. Annealing sharpens the generated modes at the end.
    pub lr_end: f64,
    /// Fraction of the steps after which the decay starts (constant before).
    pub lr_decay_start: f64,
    pub beta1: f64,
    pub loss: GanLoss,
    /// Decay of an EMA (shadow) copy of G's weights (`train::Ema`), updated after every
    /// G step and used for the scored samples; 0 scores the trained G itself. Averaging damps
    /// the oscillation of G around the modes (Yazici et al. 2019).
    pub ema_decay: f64,
    /// Batch normalisation in G's hidden layers ([`MlpConfig::gen_batch_norm`]).
    pub gen_batch_norm: bool,
    /// Generated points scored after training.
    pub eval_samples: usize,
    /// High-quality samples a mode needs to count as covered.
    pub min_count: usize,
}

impl Default for ToyConfig {
    fn default() -> Self {
        Self {
            toy: Toy::Ring8,
            dir: PathBuf::from("runs/toy"),
            log_every: 50,
            sample_every: 500,
            checkpoint_every: 1000,
            eval_every: 0,
            seed: 0,
            latent_dim: 2,
            hidden: 128,
            layers: 3,
            steps: 3000,
            batch: 256,
            lr: 1e-3,
            lr_end: 0.1,
            lr_decay_start: 0.6,
            beta1: 0.5,
            loss: GanLoss::NonSaturating,
            gen_batch_norm: true,
            ema_decay: 0.99,
            eval_samples: 2500,
            min_count: 10,
        }
    }
}

impl ToyConfig {
    pub fn validate(&self) -> crate::Result<()> {
        if self.batch < 2 || !(self.lr_decay_start >= 0.0 && self.lr_decay_start < 1.0) {
            return Err(crate::Error::Config(format!(
                "toy batch must be at least 2 and lr_decay_start in [0, 1), got {} and {}",
                self.batch, self.lr_decay_start
            )));
        }
        if self.steps == 0 || self.log_every == 0 || self.sample_every == 0 || self.checkpoint_every == 0 || self.eval_samples == 0 {
            return Err(crate::Error::Config("toy steps, log_every, sample_every, checkpoint_every and eval_samples must be at least 1".into()));
        }
        Ok(())
    }

    /// The MLP GAN: no output tanh (the points are not images), batch norm in G as configured.
    pub fn mlp(&self) -> MlpConfig {
        MlpConfig {
            latent_dim: self.latent_dim,
            hidden: self.hidden,
            layers: self.layers,
            tanh_output: false,
            gen_batch_norm: self.gen_batch_norm,
            ..MlpConfig::default()
        }
    }

    /// The learning rate at (0-based) step `step`: constant, then a cosine down to `lr_end`.
    pub fn lr_at(&self, step: u64) -> f64 {
        let t = ((step as f64 / self.steps.max(1) as f64 - self.lr_decay_start) / (1.0 - self.lr_decay_start)).max(0.0);
        self.lr * (self.lr_end + (1.0 - self.lr_end) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }
}
