//! A GAN checkpoint (`gannet train`) loaded to use it: its config, networks and EMA generator,
//! for sampling, evaluation, editing and the studio. Training resumes through the engine
//! (`train::Trainer::resume`), which reads the same record.

use crate::checkpoint::{self, record::Record};
use crate::config::{AdaState, TrainConfig};
use crate::models::{self, Gan, ImageShape};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The checkpoint kind of GAN training runs.
pub const KIND_TRAIN: &str = "train";
/// Checkpoint prefix of the EMA shadow generator's tensors.
pub(crate) const EMA_PREFIX: &str = "gen_ema";

/// What a GAN checkpoint keeps besides tensors and the run's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GanMeta {
    pub image_shape: ImageShape,
    pub class_names: Vec<String>,
    /// ADA's probability and running signal (p = 0 in checkpoints from before ADA).
    #[serde(default)]
    pub ada: AdaState,
}

/// A training checkpoint read back: config, step, image shape, class names and tensors.
pub struct SavedRun {
    pub config: TrainConfig,
    pub step: u64,
    pub elapsed_s: f64,
    pub image_shape: ImageShape,
    pub class_names: Vec<String>,
    pub tensors: BTreeMap<String, Tensor>,
    /// Rollbacks the divergence guard had done (0 in checkpoints from before the guard).
    pub rollbacks: u32,
    /// The guard's collapse-signal streaks (low D loss, wide logit gap) at the checkpoint.
    pub guard_streaks: (u64, u64),
    /// ADA's state (p = 0 in checkpoints from before ADA).
    pub ada: AdaState,
}

impl SavedRun {
    pub fn load(path: &Path, device: &Device) -> crate::Result<Self> {
        let record = Record::read(path, KIND_TRAIN, "gannet train", device)?;
        let err = |m: String| crate::Error::checkpoint(path, m);
        let config = TrainConfig::from_toml_str(&record.config).map_err(|e| err(e.to_string()))?;
        // The metadata is checksummed but not trusted: a crafted file must not make gannet
        // allocate terabytes or build a model it cannot run.
        config.validate().map_err(|e| err(format!("its saved config is not valid: {e}")))?;
        let meta: GanMeta = record.task_meta(path)?;
        if !matches!(meta.image_shape.channels, 1 | 3) {
            return Err(err(format!("bad image_shape: {} channels (gannet makes 1 or 3)", meta.image_shape.channels)));
        }
        crate::limits::check_resolution(meta.image_shape.resolution, "the image_shape resolution").map_err(|e| err(e.to_string()))?;
        if meta.class_names.len() > crate::limits::MAX_CLASSES {
            return Err(err(format!("bad class_names: {} classes", meta.class_names.len())));
        }
        let run = record.run;
        Ok(Self {
            config,
            step: run.step,
            elapsed_s: run.elapsed_s,
            image_shape: meta.image_shape,
            class_names: meta.class_names,
            tensors: record.tensors,
            rollbacks: run.rollbacks,
            guard_streaks: run.guard_streaks,
            ada: meta.ada,
        })
    }

    /// Classes the networks were built for: the checkpoint's class names for a conditional
    /// model, 0 for an unconditional one.
    pub fn num_classes(&self) -> usize {
        if self.config.model.conditioning().is_conditional() {
            self.class_names.len()
        } else {
            0
        }
    }

    /// Builds the networks on `device` and loads their weights (for sampling).
    pub fn gan(&self, device: &Device) -> crate::Result<Gan> {
        let gan = models::build_with_classes(&self.config.model, self.image_shape, self.num_classes(), self.config.seed, device)?;
        self.load_weights(&gan)?;
        gan.gen.set_step(self.step);
        gan.disc.set_step(self.step);
        Ok(gan)
    }

    /// The generator to sample from on `device`: the EMA shadow (`gen_ema.*`) when the checkpoint
    /// has one, else the trained generator.
    pub fn sampling_generator(&self, device: &Device) -> crate::Result<Box<dyn crate::models::Generator>> {
        self.generator(device, self.has_ema())
    }

    /// The EMA shadow generator (`ema` true; an error when the run kept none) or the trained one.
    pub fn generator(&self, device: &Device, ema: bool) -> crate::Result<Box<dyn crate::models::Generator>> {
        let (gen, params) = models::build_generator_with_classes(&self.config.model, self.image_shape, self.num_classes(), self.config.seed, device)?;
        let src = checkpoint::strip_prefix(if ema { EMA_PREFIX } else { "gen" }, &self.tensors);
        if ema && src.is_empty() {
            return Err(crate::Error::Msg("the checkpoint has no EMA generator (its run had ema_decay = 0)".into()));
        }
        params.load(&src).map_err(|e| crate::Error::Msg(format!("checkpoint does not fit the model: {e}")))?;
        gen.set_step(self.step);
        Ok(gen)
    }

    /// Whether the checkpoint holds an EMA generator.
    pub fn has_ema(&self) -> bool {
        !checkpoint::strip_prefix(EMA_PREFIX, &self.tensors).is_empty()
    }

    fn load_weights(&self, gan: &Gan) -> crate::Result<()> {
        load_weights(&self.tensors, gan)
    }
}

pub(crate) fn load_weights(tensors: &BTreeMap<String, Tensor>, gan: &Gan) -> crate::Result<()> {
    let on = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the model: {e}"));
    gan.gen_params.load(&checkpoint::strip_prefix("gen", tensors)).map_err(on)?;
    gan.disc_params.load(&checkpoint::strip_prefix("disc", tensors)).map_err(on)?;
    Ok(())
}
