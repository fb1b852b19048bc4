//! Image-to-image translation: pix2pix (paired), CycleGAN (unpaired) and 4x super-resolution,
//! trained by `gannet train-i2i` and used by `gannet translate` / `gannet upscale`.
//!
//! - [`config`]: the task, data folders, network sizes, loss weights and schedule (TOML).
//! - [`nets`]: the networks of each task, from [`crate::models`] (U-Net, ResNet translator, SR
//!   generator, PatchGAN).
//! - [`step`]: one generator and one discriminator update per task.
//! - [`pool`]: CycleGAN's history pool of generated images.
//! - [`task`]: the engine's task (data, grids, checkpoints, evaluation) and [`I2iTrainer`].
//! - [`presets`]: the tried configurations (`gannet train-i2i --preset NAME`).
//! - [`eval`]: L1 / PSNR / SSIM against targets, the identity and bicubic baselines, FID.

pub mod config;
pub mod eval;
pub mod nets;
pub mod pool;
pub mod presets;
pub mod step;
pub mod task;

pub use config::{I2iConfig, I2iEvalConfig, Task};
pub use nets::{Direction, I2iNets};
pub use step::{downscale, I2iLosses, I2iState};
pub use task::{comparison_grid, HeldOut, I2iTask, I2iTrainer, SavedI2i, KIND_I2I};
