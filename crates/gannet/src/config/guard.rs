//! `[guard]`: the settings of the divergence guard (the guard itself is `train::guard`).

use serde::{Deserialize, Serialize};

/// `[guard]` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Consecutive steps a collapse signal must hold before the guard trips (0 = no collapse
    /// detection; NaN/Inf is always detected).
    pub collapse_steps: u64,
    /// D loss below this counts as collapsed (all losses but wasserstein; 0 = off).
    pub d_loss_floor: f64,
    /// `mean D(real) - mean D(fake)` above this counts as collapsed (all losses but wasserstein;
    /// 0 = off).
    pub max_logit_gap: f64,
    /// Roll back to the last good checkpoint with lower learning rates instead of stopping.
    pub rollback: bool,
    /// Both learning rates are multiplied by this at each rollback.
    pub lr_factor: f64,
    /// Rollbacks allowed in the whole run; the next divergence stops it.
    pub max_rollbacks: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self { collapse_steps: 100, d_loss_floor: 1e-3, max_logit_gap: 30.0, rollback: false, lr_factor: 0.5, max_rollbacks: 3 }
    }
}

impl GuardConfig {
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        if !(self.d_loss_floor >= 0.0 && self.d_loss_floor.is_finite()) {
            return bad(format!("guard.d_loss_floor must be a non-negative number, got {}", self.d_loss_floor));
        }
        if !(self.max_logit_gap >= 0.0 && self.max_logit_gap.is_finite()) {
            return bad(format!("guard.max_logit_gap must be a non-negative number (0 = off), got {}", self.max_logit_gap));
        }
        if !(self.lr_factor > 0.0 && self.lr_factor < 1.0) {
            return bad(format!("guard.lr_factor must be in (0, 1), got {}", self.lr_factor));
        }
        Ok(())
    }
}
