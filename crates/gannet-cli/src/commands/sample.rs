use anyhow::{Context, Result};
use clap::Args;
use gannet::nn::Mode;
use gannet::rng::{self, Stream};
use gannet::train::SavedRun;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet sample --checkpoint runs/default/checkpoints/latest.safetensors --out grid.png\n  \
    gannet sample --checkpoint C --count 100 --seed 7 --out-dir samples/   # 100 single PNGs")]
pub struct SampleArgs {
    /// A training checkpoint (checkpoints/latest.safetensors of a run).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Write one grid PNG here.
    #[arg(long, short, conflicts_with = "out_dir")]
    out: Option<PathBuf>,
    /// Write one PNG per image into this folder instead.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Number of images.
    #[arg(long, short = 'n', default_value_t = 64)]
    count: usize,
    /// Seed for the latents: the same seed gives the same images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sample from the trained generator, not its EMA shadow (the default when the run kept one).
    #[arg(long)]
    no_ema: bool,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Generates in chunks so a large --count does not need memory for all images at once.
const CHUNK: usize = 256;

pub fn run(args: SampleArgs) -> Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!(args.out.is_some() || args.out_dir.is_some(), "say where to write: --out grid.png or --out-dir DIR");
    let device = gannet::device::parse_device(&args.device)?;
    let saved = SavedRun::load(&args.checkpoint, &device)?;
    // The EMA shadow generator (gen_ema.*) when the run kept one: it gives cleaner samples.
    let gen = saved.generator(&device, saved.has_ema() && !args.no_ema).with_context(|| format!("loading {}", args.checkpoint.display()))?;
    let latent = saved.config.model.latent_dim();
    let mut r = rng::rng(args.seed, Stream::Sample, 0);
    let mut images = Vec::new();
    let mut done = 0;
    while done < args.count {
        let n = CHUNK.min(args.count - done);
        let z = rng::randn(&mut r, &[n, latent], &device)?;
        images.push(gen.forward(&z, None, Mode::Eval)?);
        done += n;
    }
    let all = gannet::candle_core::Tensor::cat(&images, 0)?;
    if let Some(out) = &args.out {
        gannet::image_io::save_grid(&all, out)?;
        eprintln!("wrote {} images as a grid to {}", args.count, out.display());
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, img) in gannet::image_io::to_images(&all)?.iter().enumerate() {
            gannet::image_io::save_png(img, &dir.join(format!("{i:05}.png")))?;
        }
        eprintln!("wrote {} PNGs to {}", args.count, dir.display());
    }
    Ok(())
}
