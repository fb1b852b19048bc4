//! Class accuracy of a conditional generator: for every class k, the share of the images it
//! generates for label k that a classifier ([`super::classifier`]) labels k. A generator that
//! ignores its labels scores about 1/K; the conditional issue asks for >= 90% in every class.
//! The minimum over classes is the headline number, since one class drawn badly is what a user
//! of `gannet sample --class k` notices.

use serde::Serialize;

/// Per-class share of generated images the classifier labels with the class they were made for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassAccuracy {
    pub class_names: Vec<String>,
    /// Images generated for each class.
    pub counts: Vec<usize>,
    /// Of those, the share the classifier put in the same class.
    pub accuracy: Vec<f64>,
    /// The classifier's own accuracy on real test images of each class, where its file records
    /// it ([`super::Classifier::test_class_accuracy`]): a class it cannot tell apart in real
    /// images cannot be judged in generated ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_accuracy: Option<Vec<f64>>,
}

/// The real-image accuracy from which a class's judgement by the classifier is trusted (the
/// quality bar for class-conditional generators is 90% per class as well).
pub const CERTIFIED: f64 = 0.9;

impl ClassAccuracy {
    /// From the labels the images were generated with and the classifier's predictions.
    /// Labels outside `class_names` are ignored.
    pub fn from_predictions(labels: &[u32], predictions: &[usize], class_names: &[String]) -> Self {
        let k = class_names.len();
        let (mut counts, mut hits) = (vec![0usize; k], vec![0usize; k]);
        for (&l, &p) in labels.iter().zip(predictions) {
            let l = l as usize;
            if l < k {
                counts[l] += 1;
                hits[l] += usize::from(p == l);
            }
        }
        let accuracy = hits.iter().zip(&counts).map(|(&h, &n)| if n == 0 { 0.0 } else { h as f64 / n as f64 }).collect();
        Self { class_names: class_names.to_vec(), counts, accuracy, real_accuracy: None }
    }

    /// With the classifier's per-class accuracy on real images beside (one per class).
    pub fn with_real_accuracy(mut self, real: Option<&[f64]>) -> Self {
        self.real_accuracy = real.filter(|r| r.len() == self.accuracy.len()).map(|r| r.to_vec());
        self
    }

    /// Whether the classifier labels real images of class `k` right at least [`CERTIFIED`] of
    /// the time (None when its real accuracy is unknown).
    pub fn certified(&self, k: usize) -> Option<bool> {
        self.real_accuracy.as_ref().map(|r| r[k] >= CERTIFIED)
    }

    /// The worst accuracy over the certified classes, and how many classes are certified; None
    /// when the real accuracies are unknown or no class is certified.
    pub fn min_certified(&self) -> Option<(f64, usize)> {
        let certified: Vec<f64> = (0..self.accuracy.len()).filter(|&k| self.certified(k) == Some(true)).map(|k| self.accuracy[k]).collect();
        let min = certified.iter().copied().reduce(f64::min)?;
        Some((min, certified.len()))
    }

    /// The worst class's accuracy (0 when a class got no images).
    pub fn min(&self) -> f64 {
        self.accuracy.iter().copied().fold(f64::INFINITY, f64::min).min(1.0)
    }

    /// Share of all images labelled with their class (classes weighted by their image counts).
    pub fn overall(&self) -> f64 {
        let hits: f64 = self.accuracy.iter().zip(&self.counts).map(|(&a, &n)| (a * n as f64).round()).sum();
        hits / self.counts.iter().sum::<usize>().max(1) as f64
    }

    /// Mean over classes.
    pub fn mean(&self) -> f64 {
        self.accuracy.iter().sum::<f64>() / self.accuracy.len().max(1) as f64
    }
}

/// `count` labels cycling through `classes` (0, 1, ..., K-1, 0, ...), so every class gets
/// `count / K` images or one more.
pub fn balanced_labels(count: usize, classes: usize) -> Vec<u32> {
    (0..count).map(|i| (i % classes.max(1)) as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_weights_classes_by_count_and_certification_needs_real_accuracy() {
        let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
        // a: 3 of 4 right, b: 0 of 1 -> 3/5 overall, 0.375 mean.
        let a = ClassAccuracy::from_predictions(&[0, 0, 0, 0, 1], &[0, 0, 0, 1, 0], &names);
        assert!((a.overall() - 0.6).abs() < 1e-12 && (a.mean() - 0.375).abs() < 1e-12);
        assert_eq!(a.certified(0), None);
        assert_eq!(a.min_certified(), None);
        let a = a.with_real_accuracy(Some(&[0.95, 0.5]));
        assert_eq!((a.certified(0), a.certified(1)), (Some(true), Some(false)));
        assert_eq!(a.min_certified(), Some((0.75, 1)));
        // A list of the wrong length is not attached.
        assert_eq!(a.with_real_accuracy(Some(&[1.0])).real_accuracy, None);
    }

    #[test]
    fn counts_hits_per_class() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let labels = balanced_labels(6, 3);
        assert_eq!(labels, vec![0, 1, 2, 0, 1, 2]);
        let acc = ClassAccuracy::from_predictions(&labels, &[0, 1, 0, 0, 2, 2], &names);
        assert_eq!(acc.counts, vec![2, 2, 2]);
        assert_eq!(acc.accuracy, vec![1.0, 0.5, 0.5]);
        assert_eq!(acc.min(), 0.5);
        assert!((acc.mean() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_class_without_images_scores_zero() {
        let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let acc = ClassAccuracy::from_predictions(&[0, 0, 7], &[0, 0, 1], &names);
        assert_eq!(acc.counts, vec![2, 0]);
        assert_eq!(acc.min(), 0.0);
    }
}
