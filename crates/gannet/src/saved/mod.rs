//! Trained models loaded to use them: sampling, evaluation, editing, translation and the studio
//! read checkpoints through here, never through the training code. A checkpoint is one
//! [`crate::checkpoint::record::Record`]; the engine (`train::engine`) writes and resumes it.

pub mod gan;
pub mod i2i;
pub mod i2i_nets;
pub mod t2i;

pub use gan::{SavedRun, KIND_TRAIN};
pub use i2i::{SavedI2i, KIND_I2I};
pub use i2i_nets::{Direction, I2iNets, Nets};
pub use t2i::{SavedT2i, T2iNets, KIND_T2I};
