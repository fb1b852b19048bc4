//! The fuzz targets. Each turns one input (bytes) into a call of gannet's code and says what
//! happened; errors are fine, panics, hangs and huge allocations are crashes.

use crate::mutate::Rng;
use std::path::Path;

pub mod checkpoint;
pub mod config;
pub mod idx;
pub mod image;
pub mod studio;
pub mod tiny;

pub trait Target {
    /// Runs one input; returns its outcome in a few words (an error message, or what worked).
    fn run(&mut self, data: &[u8]) -> String;
    /// A mutation that knows the format (e.g. re-saves a checkpoint with valid checksums);
    /// false when it does not apply (then a generic one is used).
    fn mutate(&mut self, _data: &mut Vec<u8>, _rng: &mut Rng, _other: &[u8]) -> bool {
        false
    }
    /// Out of 10 mutations, how many try [`Target::mutate`] first.
    fn custom_share(&self) -> usize {
        3
    }
    /// Valid inputs built at start with the library itself (besides the committed seeds).
    fn extra_seeds(&mut self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// Tokens of the format, for the generic mutations.
    fn dictionary(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// Inputs are cut to this length.
    fn max_len(&self) -> usize {
        64 << 10
    }
}

pub const NAMES: [&str; 5] = ["idx", "image", "checkpoint", "config", "studio"];

/// The target called `name`; `work` is a scratch folder for its files.
pub fn make(name: &str, work: &Path) -> Result<Box<dyn Target>, String> {
    Ok(match name {
        "idx" => Box::new(idx::Idx::new(work)),
        "image" => Box::new(image::ImageEntry::new(work)),
        "checkpoint" => Box::new(checkpoint::Checkpoint::new(work)?),
        "config" => Box::new(config::Config::new()),
        "studio" => Box::new(studio::Studio::new(work)?),
        _ => return Err(format!("no target '{name}'; targets: {}", NAMES.join(", "))),
    })
}

/// An outcome line from a result: "ok ..." or "error: ..." (the first line).
pub fn outcome<T, E: std::fmt::Display>(stage: &str, r: &Result<T, E>) -> String {
    match r {
        Ok(_) => format!("{stage}: ok"),
        Err(e) => format!("{stage}: {}", e.to_string().lines().next().unwrap_or("")),
    }
}

/// A number in `0..n` fixed by the input (so a saved input replays the same way).
pub fn pick_from(data: &[u8], salt: u32, n: usize) -> usize {
    let mut h = crc32fast::Hasher::new_with_initial(salt);
    h.update(data);
    h.finalize() as usize % n.max(1)
}
