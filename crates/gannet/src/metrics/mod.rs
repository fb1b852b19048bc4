//! Sample-quality metrics, one per file (as stylegan2-ada-pytorch's `metrics/`):
//! - [`inception`]: the FID Inception-v3 feature network (pytorch-fid's variant), pool3 features;
//!   [`inception_weights`] finds (or downloads) its weights, [`torch_legacy`] reads pytorch-fid's
//!   release file.
//! - [`fid`]: feature statistics (cacheable) and the Frechet distance.
//! - [`kid`](mod@kid): kernel inception distance (unbiased MMD^2, cubic polynomial kernel, subsets).
//! - [`precision_recall`](mod@precision_recall): improved precision and recall (Kynkäänniemi et al. 2019).
//! - [`mode_coverage`]: modes covered / high-quality share on the 8-ring and 25-grid 2-D toys.
//! - [`classifier`]: a small CNN digit (or any labelled set) classifier that gannet trains.
//! - [`class_histogram`]: predicted-class counts of generated images (mode coverage on MNIST).
//! - [`class_accuracy`]: per class, the share of a conditional G's class-k images labelled k.
//! - [`classifier_fid`](mod@classifier_fid): the Frechet distance in the classifier's feature space.
//! - [`l1`], [`psnr`], [`ssim`]: per-image distances of outputs to known targets (image-to-image
//!   translation and super-resolution).
//!
//! [`evaluate`] runs several of them on generated vs reference images (`gannet eval`, periodic
//! evaluation during training), caching the reference features; [`eval_folder`] reads image
//! folders for it as pytorch-fid does.
//!
//! Helpers shared by them: [`pool`] (pooling with padding, bilinear resize; forward only),
//! [`linalg`] (the f64 symmetric eigenvalue code the Frechet distance needs) and [`support`]
//! (progress reports, the cache folder, the shared Inception weights file's name).

pub mod class_accuracy;
pub mod class_histogram;
pub mod classifier;
pub mod classifier_fid;
pub mod eval_folder;
pub mod evaluate;
pub mod fid;
pub mod inception;
pub mod inception_weights;
pub mod kid;
pub mod l1;
pub mod linalg;
pub mod mode_coverage;
pub mod pool;
pub mod precision_recall;
pub mod psnr;
pub mod ssim;
pub mod support;
pub mod text_image;
pub mod torch_legacy;

pub use class_accuracy::ClassAccuracy;
pub use class_histogram::ClassHistogram;
pub use classifier::Classifier;
pub use classifier_fid::classifier_fid;
pub use evaluate::{EvalOptions, EvalReport, Evaluator, Metric};
pub use fid::{frechet_distance, FeatureStats};
pub use inception::FidInception;
pub use kid::{kid, KidOptions, KidResult};
pub use l1::l1_per_image;
pub use precision_recall::{precision_recall, PrecisionRecall};
pub use psnr::psnr_per_image;
pub use ssim::ssim_per_image;

use candle_core::Tensor;
use std::path::PathBuf;

/// Images in G's range [-1, 1] on the [0, 1] scale the metrics use, clamped first as a written
/// image would be.
pub fn to_unit_range(x: &Tensor) -> crate::Result<Tensor> {
    Ok(((x.clamp(-1f32, 1f32)? + 1.0)? * 0.5)?)
}

/// Directory of the shared feature-network weights: `$GANNET_MODELS`, else a `shared/models`
/// folder beside the current folder or one of its parents (where the developer/CI copy lives;
/// found at run time, as [`crate::data::data_root`] finds `shared/data`), else
/// `../shared/models`. Users without it get pytorch-fid's release file instead (see
/// [`inception_weights`]).
pub fn models_dir() -> PathBuf {
    crate::data::shared_folder("GANNET_MODELS", "models")
}
