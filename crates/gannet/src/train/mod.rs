//! Training: the run configuration, the alternating D/G loop, and what a run writes to disk.

pub mod config;
pub mod metrics_log;
pub mod run_dir;
pub mod trainer;

pub use config::{DataConfig, OptimConfig, OutputConfig, ScheduleConfig, TrainConfig};
pub use trainer::{gan_step, load_dataset, StepBatch, StepLosses, Observer, Quiet, SavedRun, StepStats, Trainer};
