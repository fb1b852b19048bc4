//! Class histogram of generated images: how often a classifier ([`super::classifier`]) assigns
//! each class. On MNIST this is the usual mode-coverage measure of a GAN (e.g. VEEGAN, PacGAN on
//! stacked MNIST): the number of classes that appear at all, and the KL divergence between the
//! generated class distribution and the reference one (0 when the shares match).

use serde::Serialize;

/// Counts of predicted classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassHistogram {
    pub class_names: Vec<String>,
    pub counts: Vec<usize>,
}

impl ClassHistogram {
    /// Counts `predictions` (class indices < `class_names.len()`; larger ones are ignored).
    pub fn from_predictions(predictions: &[usize], class_names: &[String]) -> Self {
        let mut counts = vec![0usize; class_names.len()];
        for &p in predictions {
            if let Some(c) = counts.get_mut(p) {
                *c += 1;
            }
        }
        Self { class_names: class_names.to_vec(), counts }
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Share of each class (all 0 for an empty histogram).
    pub fn shares(&self) -> Vec<f64> {
        let t = self.total().max(1) as f64;
        self.counts.iter().map(|&c| c as f64 / t).collect()
    }

    /// Classes predicted at least `min_count` times.
    pub fn covered(&self, min_count: usize) -> usize {
        self.counts.iter().filter(|&&c| c >= min_count.max(1)).count()
    }

    /// KL(generated || reference) in nats, with `reference` shares (e.g. the classifier's
    /// histogram of real images). Both are smoothed by adding half a count to every class, so a
    /// missing class gives a large but finite value.
    pub fn kl_to(&self, reference: &ClassHistogram) -> f64 {
        let smooth = |h: &ClassHistogram| -> Vec<f64> {
            let t = h.total() as f64 + 0.5 * h.counts.len() as f64;
            h.counts.iter().map(|&c| (c as f64 + 0.5) / t).collect()
        };
        let (p, q) = (smooth(self), smooth(reference));
        p.iter().zip(&q).map(|(&pi, &qi)| pi * (pi / qi).ln()).sum()
    }

    /// KL(generated || uniform) in nats: ln K minus the entropy of the (smoothed) shares.
    pub fn kl_to_uniform(&self) -> f64 {
        let uniform = ClassHistogram { class_names: self.class_names.clone(), counts: vec![1; self.counts.len()] };
        self.kl_to(&uniform)
    }
}
