//! An image-to-image checkpoint (`gannet train-i2i`) loaded to use it: config and networks, for
//! `gannet translate` / `upscale` and the studio.

use super::i2i_nets::I2iNets;
use crate::checkpoint::{self, record::Record};
use crate::config::I2iConfig;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The checkpoint kind of `gannet train-i2i` runs.
pub const KIND_I2I: &str = "i2i";

/// What an image-to-image checkpoint keeps besides tensors and the run's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct I2iMeta {
    /// Channels of one image.
    pub channels: usize,
}

/// An image-to-image checkpoint read back.
pub struct SavedI2i {
    pub config: I2iConfig,
    pub step: u64,
    pub elapsed_s: f64,
    /// Channels of one image.
    pub channels: usize,
    pub tensors: BTreeMap<String, Tensor>,
}

impl SavedI2i {
    pub fn load(path: &Path, device: &Device) -> crate::Result<Self> {
        let record = Record::read(path, KIND_I2I, "gannet train-i2i", device)?;
        let err = |m: String| crate::Error::checkpoint(path, m);
        let config = I2iConfig::from_toml_str(&record.config).map_err(|e| err(e.to_string()))?;
        // Checksummed but not trusted: a crafted config must not size the networks.
        config.validate().map_err(|e| err(format!("its saved config is not valid: {e}")))?;
        let meta: I2iMeta = record.task_meta(path)?;
        if !matches!(meta.channels, 1 | 3) {
            return Err(err(format!("bad channels in metadata: {} (gannet makes 1 or 3)", meta.channels)));
        }
        Ok(Self { config, step: record.run.step, elapsed_s: record.run.elapsed_s, channels: meta.channels, tensors: record.tensors })
    }

    /// The networks with the saved weights, on `device` (for translating).
    pub fn nets(&self, device: &Device) -> crate::Result<I2iNets> {
        let nets = I2iNets::build(&self.config, self.channels, device)?;
        load_weights(&self.tensors, &nets)?;
        Ok(nets)
    }
}

pub(crate) fn load_weights(tensors: &BTreeMap<String, Tensor>, nets: &I2iNets) -> crate::Result<()> {
    let on = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the model: {e}"));
    nets.gen_params.load(&checkpoint::strip_prefix("gen", tensors)).map_err(on)?;
    nets.disc_params.load(&checkpoint::strip_prefix("disc", tensors)).map_err(on)
}
