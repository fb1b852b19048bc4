//! The divergence guard: notices when a run has broken down, says which signal fired at which
//! step, and either stops naming the last good checkpoint or rolls back to it with lower learning
//! rates (`[guard] rollback = true`).
//!
//! Signals, checked after every step:
//! * a NaN or infinite loss, or a NaN/Inf in any weight or buffer of G or D (immediately);
//! * a collapsed D, for `collapse_steps` consecutive steps: D's loss below `d_loss_floor`, or the
//!   gap between its mean logits on real and on generated images above `max_logit_gap`. Both
//!   are skipped for `loss = "wasserstein"`, whose critic values are unbounded and whose gap
//!   estimates a distance rather than a confidence.
//!
//! The trainer never writes a periodic checkpoint while a collapse signal is building up (see
//! [`Guard::suspect`]), nor one whose weights are not finite, so the last checkpoint on disk is
//! one from before the trouble began.

pub use crate::config::GuardConfig;
use crate::loss::GanLoss;
use std::fmt;

/// What made the guard trip.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    NonFiniteLoss {
        d_loss: f64,
        g_loss: f64,
    },
    /// The first tensor (checkpoint name, e.g. `disc.head.weight`) holding a NaN or Inf.
    NonFiniteWeights {
        tensor: String,
    },
    LowDLoss {
        steps: u64,
        floor: f64,
        d_loss: f64,
    },
    LogitGap {
        steps: u64,
        limit: f64,
        d_real: f64,
        d_fake: f64,
    },
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::NonFiniteLoss { d_loss, g_loss } => write!(f, "non-finite loss (D loss {d_loss}, G loss {g_loss})"),
            Signal::NonFiniteWeights { tensor } => write!(f, "non-finite weights (first: {tensor})"),
            Signal::LowDLoss { steps, floor, d_loss } => {
                write!(f, "collapsed discriminator: D loss below guard.d_loss_floor = {floor} for {steps} consecutive steps (now {d_loss:.3e})")
            }
            Signal::LogitGap { steps, limit, d_real, d_fake } => write!(
                f,
                "collapsed discriminator: mean D logit on real minus on fake above guard.max_logit_gap = {limit} for {steps} \
                 consecutive steps (now {d_real:.2} - {d_fake:.2} = {:.2})",
                d_real - d_fake
            ),
        }
    }
}

/// What the guard watches of a step: the losses and the mean D logits (or critic values) on real
/// and on generated images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardInput {
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
}

/// Streak counters of the collapse signals.
#[derive(Debug, Clone)]
pub struct Guard {
    cfg: GuardConfig,
    collapse_checks: bool,
    low_loss: u64,
    wide_gap: u64,
}

impl Guard {
    pub fn new(cfg: GuardConfig, loss: GanLoss) -> Self {
        Self { cfg, collapse_checks: loss != GanLoss::Wasserstein && cfg.collapse_steps > 0, low_loss: 0, wide_gap: 0 }
    }

    /// Counts one step's losses; returns the signal when the guard trips. Non-finite losses trip
    /// at once.
    pub fn observe(&mut self, l: impl Into<GuardInput>) -> Option<Signal> {
        let l: GuardInput = l.into();
        if !(l.d_loss.is_finite() && l.g_loss.is_finite() && l.d_real.is_finite() && l.d_fake.is_finite()) {
            return Some(Signal::NonFiniteLoss { d_loss: l.d_loss, g_loss: l.g_loss });
        }
        if !self.collapse_checks {
            return None;
        }
        let c = &self.cfg;
        self.low_loss = if c.d_loss_floor > 0.0 && l.d_loss < c.d_loss_floor { self.low_loss + 1 } else { 0 };
        self.wide_gap = if c.max_logit_gap > 0.0 && l.d_real - l.d_fake > c.max_logit_gap { self.wide_gap + 1 } else { 0 };
        if self.low_loss >= c.collapse_steps {
            return Some(Signal::LowDLoss { steps: self.low_loss, floor: c.d_loss_floor, d_loss: l.d_loss });
        }
        if self.wide_gap >= c.collapse_steps {
            return Some(Signal::LogitGap { steps: self.wide_gap, limit: c.max_logit_gap, d_real: l.d_real, d_fake: l.d_fake });
        }
        None
    }

    /// Whether a collapse signal has held for at least one step (a checkpoint now might capture
    /// the start of a collapse).
    pub fn suspect(&self) -> bool {
        self.low_loss > 0 || self.wide_gap > 0
    }

    /// The streak counters (saved in checkpoints so a resumed run counts on exactly).
    pub fn streaks(&self) -> (u64, u64) {
        (self.low_loss, self.wide_gap)
    }

    pub fn set_streaks(&mut self, (low_loss, wide_gap): (u64, u64)) {
        self.low_loss = low_loss;
        self.wide_gap = wide_gap;
    }
}
