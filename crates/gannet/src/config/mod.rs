//! Every setting of a run, as the TOML files, presets, flags and checkpoints hold them: plain
//! data with defaults and validation, no training code. Training ([`crate::train`]) and loading
//! a trained model ([`crate::saved`]) both build on these types.
//!
//! - [`train`]: [`TrainConfig`], a GAN run (`gannet train`): data, model, loss, schedule, output.
//! - [`i2i`]: [`I2iConfig`], an image-to-image run (`gannet train-i2i`).
//! - [`classifier`]: [`ClassifierRunConfig`], training the metrics' classifier (`gannet classifier`).
//! - [`t2i`]: [`T2iConfig`], a text-to-image run (`gannet train --preset t2i-emoji`).
//! - [`toy`]: [`ToyConfig`], the 2-D mode-coverage benchmark runs.
//! - the stabilisers' settings: [`augment`], [`ada`], [`penalty`], [`guard`]; [`eval`], metrics
//!   during training.

pub mod ada;
pub mod augment;
pub mod classifier;
pub mod eval;
pub mod guard;
pub mod i2i;
pub mod parallel;
pub mod penalty;
pub mod t2i;
pub mod toy;
pub mod train;

pub use ada::{AdaConfig, AdaState};
pub use augment::AugmentPolicy;
pub use classifier::{ClassifierAugment, ClassifierRunConfig, ClassifierWidths};
pub use eval::EvalConfig;
pub use guard::GuardConfig;
pub use i2i::{I2iConfig, I2iEvalConfig, Task};
pub use parallel::ParallelConfig;
pub use penalty::{PenaltyConfig, PenaltyKind};
pub use t2i::T2iConfig;
pub use toy::ToyConfig;
pub use train::{DataConfig, OptimConfig, OutputConfig, ScheduleConfig, TrainConfig};

/// Lays `over` onto `base`, table by table. A `[model]` table naming another `arch` replaces the
/// base's model table whole, since the architectures' settings differ.
pub fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                let other_arch = key == "model" && o.get("arch").is_some_and(|a| Some(a) != b.get("arch"));
                if other_arch {
                    *b = o;
                } else {
                    merge(b, o);
                }
            }
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}
