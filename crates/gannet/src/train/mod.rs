//! Training: the engine that runs every task, and the tasks. Their settings are in
//! [`crate::config`]; loading a trained model to use it is [`crate::saved`].
//!
//! - [`engine`]: [`Run`], the one training loop (run folder, logs, grids, checkpoints, the
//!   divergence guard, periodic evaluation, stopping), generic over a [`engine::Task`].
//! - [`gan_task`]: GAN training on images ([`Trainer`]); [`step`] is its update rule.
//! - [`i2i`]: image-to-image tasks (pix2pix, CycleGAN, super-resolution).
//! - [`classifier_task`]: the metrics' image classifier as an engine task (`gannet classifier`).
//! - [`t2i_task`]: text-to-image: contrastive encoders, then the text-conditional GAN.
//! - [`toy`]: the MLP GAN on the 2-D mode-coverage benchmarks (in memory, no run folder).
//! - The stabilisers the GAN step uses: [`augment`], [`ada`], [`penalty`], [`ema`], [`guard`].

pub mod ada;
pub mod augment;
pub mod classifier_task;
pub mod ema;
pub mod engine;
pub mod gan_task;
pub mod guard;
pub mod i2i;
pub mod penalty;
pub mod presets;
pub mod step;
pub mod t2i_task;
pub mod toy;

pub use crate::config::{
    AdaConfig, AdaState, AugmentPolicy, DataConfig, EvalConfig, GuardConfig, OptimConfig, OutputConfig, PenaltyConfig, PenaltyKind, ScheduleConfig, TrainConfig,
};
pub use classifier_task::{ClassifierTask, ClassifierTrainer};
pub use ema::Ema;
pub use engine::{Observer, Outcome, Quiet, Run, RunDir, StepStats};
pub use gan_task::{load_dataset, GanTask, Trainer};
pub use guard::Signal;
pub use presets::Preset;
pub use step::{GanState, RealBatch, StepLosses};
pub use t2i_task::{T2iTask, T2iTrainer};
