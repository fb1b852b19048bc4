//! `[ada]`: adaptive discriminator augmentation's settings, and its probability and signal, which
//! checkpoints keep (the augmentation itself is `train::ada`).

use super::AugmentPolicy;
use candle_core::Tensor;
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
        // Over all data-parallel processes, so that every one adjusts p alike.
        let mut seen = [signs.iter().map(|v| v.signum() * f64::from(*v != 0.0)).sum::<f64>(), signs.len() as f64];
        crate::parallel::world().sum_f64(&mut seen)?;
        self.sign_sum += seen[0];
        self.images += seen[1] as u64;
        if (d_step + 1).is_multiple_of(cfg.interval) {
            let rt = self.sign_sum / self.images.max(1) as f64;
            let step = (rt - cfg.target).signum() * self.images as f64 / cfg.speed_images;
            self.p = (self.p + step).clamp(0.0, 1.0);
            (self.sign_sum, self.images) = (0.0, 0);
        }
        Ok(())
    }
}
