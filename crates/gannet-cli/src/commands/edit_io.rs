//! What the editing commands (`interpolate`, `mix`, `project`) share: loading the generator of a
//! checkpoint and turning `gannet sample` seeds into latents.

use anyhow::{Context, Result};
use gannet::candle_core::{Device, Tensor};
use gannet::metrics::evaluate;
use gannet::models::Generator;
use gannet::train::SavedRun;
use std::path::Path;

/// The checkpoint and the generator to edit with: the EMA shadow unless `no_ema` or the run kept none.
pub fn load_generator(checkpoint: &Path, no_ema: bool, device: &Device) -> Result<(SavedRun, Box<dyn Generator>)> {
    let saved = SavedRun::load(checkpoint, device)?;
    let gen = saved.generator(device, saved.has_ema() && !no_ema).with_context(|| format!("loading {}", checkpoint.display()))?;
    Ok((saved, gen))
}

/// One latent per seed: the first image `gannet sample --seed S` draws, [K, latent_dim].
pub fn seed_latents(seeds: &[u64], latent_dim: usize, device: &Device) -> Result<Tensor> {
    anyhow::ensure!(!seeds.is_empty(), "give at least one seed");
    let rows = seeds.iter().map(|&s| evaluate::sample_latents(s, 1, latent_dim, device)).collect::<gannet::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&rows, 0)?)
}
