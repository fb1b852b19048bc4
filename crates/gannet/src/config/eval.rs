//! `[eval]` in the config: metrics computed during training: every `eval.every` steps, and at
//! the last step, the sampling generator (the EMA one when kept) makes `eval.count` images from a
//! fixed latent batch; they are scored against the training data with
//! [`crate::metrics::evaluate`], one row is appended to `metrics_eval.csv`
//! (`train::engine::EvalLog`), and each metric is
//! drawn against step in `eval_METRIC.svg`. Off by default (`every = 0`). The default metric,
//! classifier FID with 1000 images, costs about a second on a CPU; Inception metrics (fid, kid,
//! pr) cost about a second per image there, so keep `count` small with them.

use crate::metrics::evaluate::Metric;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every N generator steps (and at the last step); 0 turns it off.
    pub every: u64,
    /// Any of fid, kid, pr, cfid, classes (see `gannet eval --help`).
    pub metrics: Vec<Metric>,
    /// Generated and reference images per evaluation.
    pub count: usize,
    /// Classifier of cfid/classes: auto, builtin:mnist, builtin:fashion-mnist or a file.
    pub classifier: String,
    /// Cache the reference features in the gannet cache folder ($GANNET_CACHE, ~/.cache/gannet).
    pub cache: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { every: 0, metrics: vec![Metric::Cfid], count: 1000, classifier: "auto".into(), cache: true }
    }
}

impl EvalConfig {
    pub fn validate(&self) -> crate::Result<()> {
        if self.every > 0 && (self.count < 2 || self.metrics.is_empty()) {
            return Err(crate::Error::Config(format!(
                "eval.count must be at least 2 and eval.metrics not empty when eval.every > 0 (got count {}, {} metrics)",
                self.count,
                self.metrics.len()
            )));
        }
        Ok(())
    }
}
