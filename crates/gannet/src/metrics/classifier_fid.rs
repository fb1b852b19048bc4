//! "Classifier FID": the Frechet distance between Gaussians fitted to real and generated images'
//! features in the penultimate layer of a classifier trained on the real data
//! ([`super::classifier::Classifier::features`]) instead of Inception-v3's pool3. For digits it
//! is cheap (a 64-d feature, a tiny CNN) and sensitive to what makes a digit a digit, so it suits
//! periodic evaluation during training; its values are not comparable with Inception FID.

use super::classifier::Classifier;
use super::fid::{frechet_distance, FeatureStats};
use crate::Result;
use candle_core::Tensor;

/// Feature statistics of images in [0, 1] in the classifier's feature space.
pub fn classifier_stats(classifier: &Classifier, images01: &Tensor) -> Result<FeatureStats> {
    FeatureStats::from_features(&classifier.features(images01)?)
}

/// Classifier FID between real and generated images in [0, 1].
pub fn classifier_fid(classifier: &Classifier, real01: &Tensor, fake01: &Tensor) -> Result<f64> {
    frechet_distance(&classifier_stats(classifier, real01)?, &classifier_stats(classifier, fake01)?)
}
