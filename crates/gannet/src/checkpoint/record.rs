//! The one checkpoint record every task writes and reads: a kind, the run's config (TOML), the
//! engine's metadata ([`RunMeta`]), the task's metadata (JSON) and the tensors, in one verified
//! safetensors file (this module's parent).
//!
//! Metadata keys: `gannet_kind`, `config`, `run` (JSON), `task` (JSON). Checkpoints written
//! before the record existed kept each field under a key of its own (`step`, `elapsed_s`,
//! `guard_rollbacks`, `image_shape`, ...); [`Record::read`] still reads them.

use super::META_KIND;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const META_CONFIG: &str = "config";
const META_RUN: &str = "run";
const META_TASK: &str = "task";

/// What the engine keeps of a run in each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    /// Steps done.
    pub step: u64,
    /// Seconds trained, across resumes.
    pub elapsed_s: f64,
    /// Chosen when the run started and kept by every checkpoint of it: tells a folder's own run
    /// from another one (empty in checkpoints from before run ids).
    pub run_id: String,
    /// Rollbacks the divergence guard has done.
    pub rollbacks: u32,
    /// The guard's collapse-signal streaks (low D loss, wide logit gap).
    pub guard_streaks: (u64, u64),
}

/// A checkpoint read back.
pub struct Record {
    pub kind: String,
    /// The run's config, as TOML.
    pub config: String,
    pub run: RunMeta,
    /// The task's own metadata.
    pub task: serde_json::Value,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Record {
    /// Writes a checkpoint of kind `kind` atomically.
    pub fn write(path: &Path, kind: &str, config: &str, run: &RunMeta, tensors: &BTreeMap<String, Tensor>, task: &serde_json::Value) -> crate::Result<()> {
        let mut meta = BTreeMap::new();
        meta.insert(META_KIND.to_string(), kind.to_string());
        meta.insert(META_CONFIG.to_string(), config.to_string());
        meta.insert(META_RUN.to_string(), serde_json::to_string(run).expect("plain struct"));
        meta.insert(META_TASK.to_string(), task.to_string());
        super::save(path, tensors, &meta)
    }

    /// Reads and verifies the checkpoint at `path`, which must be of kind `kind` (`command`
    /// names what trains that kind, for the error).
    pub fn read(path: &Path, kind: &str, command: &str, device: &Device) -> crate::Result<Self> {
        let (tensors, meta) = super::load(path, device)?;
        Self::from_parts(path, kind, command, tensors, meta)
    }

    /// [`Record::read`] of a checkpoint already loaded.
    pub fn from_parts(path: &Path, kind: &str, command: &str, tensors: BTreeMap<String, Tensor>, mut meta: BTreeMap<String, String>) -> crate::Result<Self> {
        let err = |m: String| crate::Error::checkpoint(path, m);
        let found = meta.remove(META_KIND).ok_or_else(|| err(format!("metadata has no '{META_KIND}': not a gannet checkpoint")))?;
        if found != kind {
            let what = match found.as_str() {
                "train" => "a GAN training checkpoint (gannet train)",
                "i2i" => "an image-to-image checkpoint (gannet train-i2i)",
                "classifier" => "a classifier (gannet classifier)",
                _ => "another kind of checkpoint",
            };
            return Err(err(format!("is {what} ('{found}'), not a '{kind}' checkpoint of {command}")));
        }
        let config = meta.remove(META_CONFIG).ok_or_else(|| err(format!("metadata has no '{META_CONFIG}': not a gannet checkpoint")))?;
        let (run, task) = match (meta.remove(META_RUN), meta.remove(META_TASK)) {
            (Some(run), Some(task)) => (
                serde_json::from_str(&run).map_err(|e| err(format!("bad '{META_RUN}' metadata: {e}")))?,
                serde_json::from_str(&task).map_err(|e| err(format!("bad '{META_TASK}' metadata: {e}")))?,
            ),
            _ => legacy(meta).map_err(err)?,
        };
        Ok(Self { kind: found, config, run, task, tensors })
    }

    /// The engine's metadata of the checkpoint at `path`, read from its header alone (no tensors
    /// loaded, nothing verified); None when it has none or cannot be read.
    pub fn run_meta_of(path: &Path) -> Option<RunMeta> {
        serde_json::from_str(super::metadata(path).ok()?.get(META_RUN)?).ok()
    }

    /// The task's metadata as `M`.
    pub fn task_meta<M: serde::de::DeserializeOwned>(&self, path: &Path) -> crate::Result<M> {
        serde_json::from_value(self.task.clone()).map_err(|e| crate::Error::checkpoint(path, format!("bad task metadata: {e}")))
    }
}

/// The record of a checkpoint from before [`Record`]: one metadata key per field. The engine's
/// fields are read by name; every other key goes into the task's metadata, parsed as JSON where
/// it is JSON (image shapes, class names) and kept as a string otherwise.
fn legacy(mut meta: BTreeMap<String, String>) -> Result<(RunMeta, serde_json::Value), String> {
    let mut run = RunMeta::default();
    let step = meta.remove("step").ok_or("metadata has no 'step': not a gannet training checkpoint")?;
    run.step = step.parse().map_err(|_| format!("bad step '{step}' in metadata"))?;
    run.elapsed_s = meta.remove("elapsed_s").and_then(|s| s.parse().ok()).unwrap_or(0.0);
    if let Some(s) = meta.remove("guard_rollbacks") {
        run.rollbacks = s.parse().map_err(|_| format!("bad guard_rollbacks '{s}' in metadata"))?;
    }
    if let Some(s) = meta.remove("guard_streaks") {
        run.guard_streaks =
            s.split_once(',').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))).ok_or(format!("bad guard_streaks '{s}' in metadata"))?;
    }
    let task = meta
        .into_iter()
        .filter(|(k, _)| !k.starts_with("gannet_") && !k.contains("crc"))
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
            (k, value)
        })
        .collect();
    Ok((run, serde_json::Value::Object(task)))
}
