//! Training: the run configuration, the alternating D/G loop, and what a run writes to disk.

pub mod ada;
pub mod augment;
pub mod config;
pub mod ema;
pub mod guard;
pub mod i2i;
pub mod metrics_log;
pub mod penalty;
pub mod periodic_eval;
pub mod presets;
pub mod run_dir;
pub mod step;
pub mod trainer;

pub use ada::{AdaConfig, AdaState};
pub use augment::AugmentPolicy;
pub use config::{DataConfig, OptimConfig, OutputConfig, ScheduleConfig, TrainConfig};
pub use ema::Ema;
pub use guard::{GuardConfig, Signal};
pub use penalty::{PenaltyConfig, PenaltyKind};
pub use periodic_eval::EvalConfig;
pub use presets::Preset;
pub use step::{GanState, RealBatch, StepLosses};
pub use trainer::{load_dataset, Observer, Quiet, SavedRun, StepStats, Trainer};
