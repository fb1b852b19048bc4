//! What the editing commands (`interpolate`, `mix`, `project`) share: loading the generator of a
//! checkpoint and turning `gannet sample` seeds into latents.

use anyhow::{Context, Result};
use gannet::candle_core::{Device, Tensor};
use gannet::metrics::evaluate;
use gannet::models::Generator;
use gannet::saved::SavedRun;
use std::path::PathBuf;

/// Where the edited images come from: a checkpoint's generator on a device.
#[derive(clap::Args, Debug)]
pub struct GeneratorSource {
    /// A training checkpoint (checkpoints/latest.safetensors of a run).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Use the trained generator, not its EMA shadow (the default when the run kept one).
    #[arg(long)]
    pub no_ema: bool,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl GeneratorSource {
    /// The checkpoint, the generator to edit with and the device.
    pub fn load(&self) -> Result<(SavedRun, Box<dyn Generator>, Device)> {
        let device = gannet::device::parse_device(&self.device)?;
        let saved = SavedRun::load(&self.checkpoint, &device)?;
        let gen = saved.generator(&device, saved.has_ema() && !self.no_ema).with_context(|| format!("loading {}", self.checkpoint.display()))?;
        Ok((saved, gen, device))
    }
}

/// One latent per seed: the first image `gannet sample --seed S` draws, [K, latent_dim].
pub fn seed_latents(seeds: &[u64], latent_dim: usize, device: &Device) -> Result<Tensor> {
    anyhow::ensure!(!seeds.is_empty(), "give at least one seed");
    let rows = seeds.iter().map(|&s| evaluate::sample_latents(s, 1, latent_dim, device)).collect::<gannet::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&rows, 0)?)
}
