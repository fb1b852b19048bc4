//! Adversarial losses.
//!
//! Every loss takes raw discriminator outputs (logits, no sigmoid) and returns a scalar tensor
//! that stays in the autodiff graph, so the caller differentiates it with `backward`.

use candle_core::Tensor;
use std::fmt;
use std::str::FromStr;

/// Mean binary cross-entropy between `sigmoid(logits)` and a constant `target` in [0, 1].
///
/// Uses `max(x, 0) - x t + log(1 + exp(-|x|))`, which never exponentiates a large positive
/// number, so logits of ±1000 give finite values and correct (saturated) gradients. At x = 0
/// the kinks of `max` and `|.|` cancel because candle gives both the same one-sided derivative
/// (x >= 0), so the gradient there is sigmoid(0) - t as it should be.
pub fn bce_with_logits(logits: &Tensor, target: f64) -> crate::Result<Tensor> {
    let softplus_tail = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let per_elem = ((logits.relu()? - (logits * target)?)? + softplus_tail)?;
    Ok(per_elem.mean_all()?)
}

/// Mean cross-entropy of class logits `[N, K]` against labels `[N]` (u32), computed stably as
/// `logsumexp(logits) - logits[label]`. The label's logit is picked with a one-hot product, not
/// a gather, so the loss stays differentiable twice (AC-GAN's class loss under R1).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> crate::Result<Tensor> {
    let (_, k) = logits.dims2()?;
    let max = logits.max_keepdim(candle_core::D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(candle_core::D::Minus1)?.log()?;
    let ids = Tensor::arange(0u32, k as u32, logits.device())?.unsqueeze(0)?;
    let one_hot = labels.flatten_all()?.to_dtype(candle_core::DType::U32)?.unsqueeze(1)?.broadcast_eq(&ids)?.to_dtype(logits.dtype())?;
    let picked = (shifted * one_hot)?.sum_keepdim(candle_core::D::Minus1)?;
    Ok((lse - picked)?.mean_all()?)
}

/// The adversarial objective: how discriminator and generator losses are built from logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanLoss {
    /// Goodfellow et al.'s practical variant: G maximises log D(G(z)).
    NonSaturating,
    /// The original min-max game: G minimises log(1 - D(G(z))).
    Minimax,
    /// Hinge loss (SAGAN, BigGAN).
    Hinge,
    /// WGAN critic loss; needs a Lipschitz constraint (penalty or clipping) elsewhere.
    Wasserstein,
    /// LSGAN with targets 0 (fake) and 1 (real).
    LeastSquares,
}

impl GanLoss {
    pub const ALL: [GanLoss; 5] = [GanLoss::NonSaturating, GanLoss::Minimax, GanLoss::Hinge, GanLoss::Wasserstein, GanLoss::LeastSquares];

    /// The name used in configs and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            GanLoss::NonSaturating => "non-saturating",
            GanLoss::Minimax => "minimax",
            GanLoss::Hinge => "hinge",
            GanLoss::Wasserstein => "wasserstein",
            GanLoss::LeastSquares => "least-squares",
        }
    }

    /// Discriminator (critic) loss to minimise, from its logits on real and generated data.
    pub fn d_loss(&self, real_logits: &Tensor, fake_logits: &Tensor) -> crate::Result<Tensor> {
        let (r, f) = (real_logits, fake_logits);
        Ok(match self {
            GanLoss::NonSaturating | GanLoss::Minimax => (bce_with_logits(r, 1.0)? + bce_with_logits(f, 0.0)?)?,
            GanLoss::Hinge => {
                let real_term = r.affine(-1.0, 1.0)?.relu()?.mean_all()?;
                let fake_term = f.affine(1.0, 1.0)?.relu()?.mean_all()?;
                (real_term + fake_term)?
            }
            GanLoss::Wasserstein => (f.mean_all()? - r.mean_all()?)?,
            GanLoss::LeastSquares => {
                let real_term = r.affine(1.0, -1.0)?.sqr()?.mean_all()?;
                let fake_term = f.sqr()?.mean_all()?;
                ((real_term + fake_term)? * 0.5)?
            }
        })
    }

    /// Generator loss to minimise, from the discriminator's logits on generated data.
    pub fn g_loss(&self, fake_logits: &Tensor) -> crate::Result<Tensor> {
        let f = fake_logits;
        Ok(match self {
            GanLoss::NonSaturating => bce_with_logits(f, 1.0)?,
            // mean log(1 - D(G(z))) = -BCE(f, 0); saturates (vanishing gradient) when D wins.
            GanLoss::Minimax => bce_with_logits(f, 0.0)?.neg()?,
            GanLoss::Hinge | GanLoss::Wasserstein => f.mean_all()?.neg()?,
            GanLoss::LeastSquares => (f.affine(1.0, -1.0)?.sqr()?.mean_all()? * 0.5)?,
        })
    }
}

impl fmt::Display for GanLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GanLoss {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        GanLoss::ALL.iter().copied().find(|l| l.name() == s).ok_or_else(|| {
            let valid: Vec<&str> = GanLoss::ALL.iter().map(|l| l.name()).collect();
            crate::Error::Config(format!("unknown loss '{s}'; valid losses: {}", valid.join(", ")))
        })
    }
}
