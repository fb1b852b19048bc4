//! `[penalty]`: which gradient penalty D gets and how strongly (the penalties are `train::penalty`).

use serde::{Deserialize, Serialize};

/// Which gradient penalty the discriminator gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PenaltyKind {
    /// No penalty.
    #[default]
    None,
    /// `weight/2 * E ||grad_x D(x_real)||^2` (weight = gamma; 10 is usual for 64x64 images,
    /// 0.1-1 for small ones). Pairs with the non-saturating loss.
    R1,
    /// `weight * E (||grad_x D(x_hat)|| - 1)^2` on random interpolations `x_hat` of real and fake
    /// images (weight = lambda, usually 10). Pairs with `loss = "wasserstein"` and
    /// `d_steps_per_g = 5`; avoid BatchNorm in D with it.
    WganGp,
}

/// `[penalty]` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PenaltyConfig {
    /// `"none"`, `"r1"` or `"wgan-gp"`.
    pub kind: PenaltyKind,
    /// gamma for R1, lambda for WGAN-GP.
    pub weight: f64,
    /// Lazy regularisation: apply the penalty on every `every`-th discriminator update only,
    /// multiplied by `every` (1 = every update; StyleGAN2 uses 16 for R1).
    pub every: u64,
    /// Progressive GAN's drift term: `drift * mean(D(real)^2)` added to D's loss on every update
    /// (not lazily, and whatever `kind` is), so a Wasserstein critic's outputs cannot wander off
    /// towards large values its loss alone is blind to. The paper uses 0.001; 0 (default) is off.
    /// Like the penalty it is not part of the logged D loss.
    pub drift: f64,
}

impl Default for PenaltyConfig {
    fn default() -> Self {
        Self { kind: PenaltyKind::None, weight: 10.0, every: 1, drift: 0.0 }
    }
}

impl PenaltyConfig {
    pub fn is_active(&self) -> bool {
        self.kind != PenaltyKind::None && self.weight != 0.0
    }

    /// Whether discriminator update number `d_step` (counted from 0 over the whole run) gets the
    /// penalty.
    pub fn applies_at(&self, d_step: u64) -> bool {
        self.is_active() && d_step.is_multiple_of(self.every.max(1))
    }

    /// The factor the unweighted penalty is multiplied by: weight (halved for R1) times `every`.
    pub fn scale(&self) -> f64 {
        let w = match self.kind {
            PenaltyKind::R1 => self.weight / 2.0,
            _ => self.weight,
        };
        w * self.every.max(1) as f64
    }
}
