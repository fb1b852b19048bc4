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
}

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
        Self { class_names: class_names.to_vec(), counts, accuracy }
    }

    /// The worst class's accuracy (0 when a class got no images).
    pub fn min(&self) -> f64 {
        self.accuracy.iter().copied().fold(f64::INFINITY, f64::min).min(1.0)
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
