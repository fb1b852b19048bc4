//! `[parallel]`: data-parallel settings (see [`crate::parallel`]). They change nothing for a
//! single process.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParallelConfig {
    /// Batch norm statistics over the combined batch of all processes (true, the default: the
    /// run trains like one process on the combined batch), or over each process's slice.
    pub sync_batch_norm: bool,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        Self { sync_batch_norm: true }
    }
}
