//! Sample-quality metrics, one per file (as stylegan2-ada-pytorch's `metrics/`):
//! - [`inception`]: the FID Inception-v3 feature network (pytorch-fid's variant), pool3 features.
//! - [`fid`]: feature statistics (cacheable) and the Frechet distance.
//! - [`kid`]: kernel inception distance (unbiased MMD^2, cubic polynomial kernel, subsets).
//! - [`precision_recall`]: improved precision and recall (Kynkäänniemi et al. 2019).
//! - [`mode_coverage`]: modes covered / high-quality share on the 8-ring and 25-grid 2-D toys.
//!
//! Helpers shared by them: [`pool`] (pooling with padding, bilinear resize; forward only) and
//! [`linalg`] (the f64 symmetric eigenvalue code the Frechet distance needs).

pub mod fid;
pub mod inception;
pub mod kid;
pub mod linalg;
pub mod mode_coverage;
pub mod pool;
pub mod precision_recall;

pub use fid::{frechet_distance, FeatureStats};
pub use inception::FidInception;
pub use kid::{kid, KidOptions, KidResult};
pub use precision_recall::{precision_recall, PrecisionRecall};

use std::path::PathBuf;

/// Directory of the feature-network weights: `$GANNET_MODELS`, else `../shared/models` relative
/// to the repository root (where the shared developer/CI copy lives).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("GANNET_MODELS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models"),
    }
}
