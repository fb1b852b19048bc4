//! Adaptive discriminator augmentation, ADA (Karras et al. 2020, "Training Generative
//! Adversarial Networks with Limited Data"): D sees each image augmented with probability `p`,
//! and `p` follows an overfitting signal instead of being tuned by hand.
//!
//! The signal is `r_t = E[sign(D(real))]` over the last `interval` D updates: near 0 when D cannot
//! tell training images from generated ones, near 1 when it has memorised the training set. Every
//! `interval` D updates `p` moves by `sign(r_t - target) * images / speed_images` (so it can go
//! from 0 to 1 in `speed_images` images), clamped to [0, 1]. The augmentations are the DiffAugment
//! families of [`super::augment`] (`augment = ...`, all three when none is set); gannet applies
//! the whole pipeline to an image with probability `p` (the paper draws each transform
//! separately). `p` and the running sums are saved in checkpoints, so a resumed run continues
//! with the same probability.

use super::augment::{self, AugmentPolicy};
use crate::rng::{self, Stream};
use candle_core::Tensor;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaConfig {
    /// The r_t ADA holds D at (the paper's 0.6); 0 turns ADA off.
    pub target: f64,
    /// D updates between adjustments of p.
    pub interval: u64,
    /// Images over which p can move from 0 to 1 (the paper's 500k; smaller runs need faster).
    pub speed_images: f64,
}

impl Default for AdaConfig {
    fn default() -> Self {
        Self { target: 0.0, interval: 4, speed_images: 100_000.0 }
    }
}

impl AdaConfig {
    pub fn is_active(&self) -> bool {
        self.target > 0.0
    }

    pub fn validate(&self) -> crate::Result<()> {
        if !(0.0..1.0).contains(&self.target) {
            return Err(crate::Error::Config(format!("ada.target must be in [0, 1) (0 = off), got {}", self.target)));
        }
        if self.interval == 0 || !(self.speed_images > 0.0 && self.speed_images.is_finite()) {
            return Err(crate::Error::Config("ada.interval must be at least 1 and ada.speed_images positive".into()));
        }
        Ok(())
    }

    /// The augmentations ADA applies: the configured ones, or all three.
    pub fn policy(&self, configured: AugmentPolicy) -> AugmentPolicy {
        if configured.is_active() {
            configured
        } else {
            AugmentPolicy::ALL
        }
    }
}

/// The augmentation probability and the sums of the interval in progress.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AdaState {
    pub p: f64,
    sign_sum: f64,
    images: u64,
}

impl AdaState {
    /// Adds D update `d_step`'s real logits to the signal, and adjusts p at the end of an interval.
    pub fn observe(&mut self, cfg: &AdaConfig, real_logits: &Tensor, d_step: u64) -> crate::Result<()> {
        let signs = real_logits.flatten_all()?.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
        self.sign_sum += signs.iter().map(|v| v.signum() * f64::from(*v != 0.0)).sum::<f64>();
        self.images += signs.len() as u64;
        if (d_step + 1).is_multiple_of(cfg.interval) {
            let rt = self.sign_sum / self.images.max(1) as f64;
            let step = (rt - cfg.target).signum() * self.images as f64 / cfg.speed_images;
            self.p = (self.p + step).clamp(0.0, 1.0);
            (self.sign_sum, self.images) = (0.0, 0);
        }
        Ok(())
    }
}

/// `x` with each image replaced, with probability `p`, by its augmentation number `index`
/// (`augment::augment(x, policy, seed, index)`); which images are drawn from the same seed and
/// index, so a resumed run repeats them.
pub fn augment_with_probability(x: &Tensor, policy: AugmentPolicy, p: f64, seed: u64, index: u64) -> crate::Result<Tensor> {
    if p <= 0.0 || !policy.is_active() {
        return Ok(x.clone());
    }
    let n = x.dim(0)?;
    let mut r = rng::rng(seed, Stream::Augment, index | (1 << 62));
    let chosen: Vec<f32> = (0..n).map(|_| f32::from(r.random::<f64>() < p)).collect();
    let mask = Tensor::from_vec(chosen, (n, 1, 1, 1), x.device())?.to_dtype(x.dtype())?;
    let aug = augment::augment(x, policy, seed, index)?;
    Ok((x + (aug - x)?.broadcast_mul(&mask)?)?)
}
