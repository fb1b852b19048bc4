//! Image-to-image translation: pix2pix (paired), CycleGAN (unpaired) and 4x super-resolution,
//! trained by `gannet train-i2i` and used by `gannet translate` / `gannet upscale`.
//!
//! The settings are [`crate::config::i2i`]; the networks of each task, and loading them from a
//! checkpoint, are [`crate::saved::i2i_nets`] and [`crate::saved::i2i`].
//!
//! - [`step`]: one generator and one discriminator update per task.
//! - [`pool`]: CycleGAN's history pool of generated images.
//! - [`task`]: the engine's task (data, grids, checkpoints, evaluation) and [`I2iTrainer`].
//! - [`presets`]: the tried configurations (`gannet train-i2i --preset NAME`).
//! - [`eval`]: L1 / PSNR / SSIM against targets, the identity and bicubic baselines, FID.

pub mod eval;
pub mod pool;
pub mod presets;
pub mod step;
pub mod task;

pub use crate::config::{I2iConfig, I2iEvalConfig, Task};
pub use step::{downscale, I2iLosses, I2iState};
pub use task::{comparison_grid, HeldOut, I2iTask, I2iTrainer};
