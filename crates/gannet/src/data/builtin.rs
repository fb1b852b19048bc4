//! The built-in digits: the first 10,000 MNIST training images, embedded in the binary so
//! that `gannet train` works with no data on disk. See `assets/README.md` for provenance.

use std::path::Path;

use super::{from_idx, Channels, Dataset};
use crate::Result;

const IMAGES_GZ: &[u8] = include_bytes!("../../../../assets/digits-10k-images-idx3-ubyte.gz");
const LABELS_GZ: &[u8] = include_bytes!("../../../../assets/digits-10k-labels-idx1-ubyte.gz");

/// Name used as the dataset source and in error messages.
pub const SOURCE: &str = "builtin:digits-10k";

/// The embedded digits, parsed with the same IDX code as files on disk.
pub fn load_digits(resolution: usize, channels: Channels) -> Result<Dataset> {
    let name = Path::new(SOURCE);
    let images = super::idx::parse_images(&super::idx::maybe_gunzip(IMAGES_GZ.to_vec(), name)?, name)?;
    let labels = super::idx::parse_labels(&super::idx::maybe_gunzip(LABELS_GZ.to_vec(), name)?, name)?;
    from_idx(images, Some(labels), name, SOURCE.to_string(), resolution, channels)
}
