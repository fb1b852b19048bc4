//! Layers the project owns, built on [`crate::ops`] and the [`ParamStore`].

pub mod activation;
pub mod batch_norm;
pub mod class_batch_norm;
pub mod conv;
pub mod embedding;
pub mod equalized;
pub mod init;
pub mod instance_norm;
pub mod linear;
pub mod minibatch_std;
pub mod params;
pub mod pixel_norm;
pub mod spectral_norm;

pub use activation::Activation;
pub use batch_norm::BatchNorm;
pub use class_batch_norm::ClassBatchNorm;
pub use conv::{Conv2d, ConvTranspose2d};
pub use embedding::{one_hot, Embedding};
pub use equalized::{EqConv2d, EqLinear, EqOptions};
pub use init::Init;
pub use instance_norm::InstanceNorm;
pub use linear::Linear;
pub use minibatch_std::minibatch_stddev;
pub use params::on_pool;
pub use params::{frozen, live, ParamPath, ParamStore, Role};
pub use pixel_norm::pixel_norm;
pub use spectral_norm::{SnConv2d, SnLinear, SpectralNorm};

/// Whether a forward pass trains (batch statistics, running stats updated) or evaluates.
/// An enum rather than a bool so call sites read `Mode::Eval`, not `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}
