//! `gannet upscale`: apply a super-resolution checkpoint, write the outputs and a comparison
//! grid, and score it and bicubic upscaling against the originals when they are known.

use super::i2i_io::{read_images, score_table, write_grid, write_json, write_outputs};
use anyhow::{Context, Result};
use clap::Args;
use gannet::data::{load_unpaired, Split};
use gannet::image_io::resize_bicubic;
use gannet::saved::SavedI2i;
use gannet::train::i2i::{downscale, eval, Task};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet upscale --checkpoint runs/superres-emoji/checkpoints/latest.safetensors --held-out --out out/sr\n  \
    gannet upscale --checkpoint C --in small/ --out big/                   # 16x16 -> 64x64\n  \
    gannet upscale --checkpoint C --in photos/ --as-targets --out sr-test/  # downscale, upscale, score\n\n\
    Writes OUT/NAME.png for every input and OUT/grid.png (input | bicubic | output | original).\n\
    With originals (--held-out, or --as-targets: the --in images are high-resolution and are\n\
    box-downscaled first, as in training) it prints L1, PSNR and SSIM of the model and of bicubic\n\
    upscaling and writes OUT/scores.json.")]
pub struct UpscaleArgs {
    /// A checkpoint of `gannet train-i2i --task superres`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// An image or a folder of images to upscale.
    #[arg(long = "in", value_name = "DIR_OR_FILE", required_unless_present = "held_out", conflicts_with = "held_out")]
    input: Option<PathBuf>,
    /// Upscale box-downscaled copies of the held-out 10% of the checkpoint's data, and score them.
    #[arg(long)]
    held_out: bool,
    /// The --in images are high-resolution originals: downscale them, upscale, and score.
    #[arg(long, requires = "input")]
    as_targets: bool,
    /// Size the --in images are read at (square) [default: the model's input size, or with
    /// --as-targets its output size].
    #[arg(long)]
    resolution: Option<usize>,
    /// Folder for the outputs, grid.png and scores.json.
    #[arg(long)]
    out: PathBuf,
    /// Examples in grid.png.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(args: UpscaleArgs) -> Result<()> {
    let device = gannet::device::parse_device(&args.device)?;
    let saved = SavedI2i::load(&args.checkpoint, &device)?;
    let cfg = &saved.config;
    anyhow::ensure!(cfg.task == Task::Superres, "{} is a {} model: use `gannet translate`", args.checkpoint.display(), cfg.task);
    let nets = saved.nets(&device).with_context(|| format!("loading {}", args.checkpoint.display()))?;
    let g = nets.generator(gannet::saved::Direction::AToB)?;
    let scale = cfg.model.scale;
    // (low-res inputs, originals when known, names)
    let (inputs, targets, names) = match &args.input {
        Some(path) if args.as_targets => {
            let (hr, names) = read_images(path, args.resolution.unwrap_or(cfg.data.resolution), saved.channels, &device)?;
            (downscale(&hr, scale)?, Some(hr), names)
        }
        Some(path) => {
            let (lr, names) = read_images(path, args.resolution.unwrap_or(cfg.data.resolution / scale), saved.channels, &device)?;
            (lr, None, names)
        }
        None => {
            let (ds, names) = load_unpaired(Path::new(&cfg.data.a), Split::HeldOut, cfg.data.resolution, cfg.data.channels)?;
            let hr = ds.batch_tensor(&(0..ds.len()).collect::<Vec<_>>(), &device)?;
            (downscale(&hr, scale)?, Some(hr), names)
        }
    };
    let outputs = eval::translate_all(g, &inputs)?;
    let bicubic = resize_bicubic(&inputs, scale)?;
    write_outputs(&args.out, &outputs, &names, &args.checkpoint, saved.step)?;
    let shown_in = gannet::image_io::upscale_nearest(&inputs, scale)?;
    let mut cols = vec![&shown_in, &bicubic, &outputs];
    cols.extend(targets.as_ref());
    let grid = args.out.join("grid.png");
    write_grid(&grid, &cols, args.grid)?;
    let mut report = serde_json::json!({ "checkpoint": args.checkpoint.display().to_string(), "step": saved.step, "n": names.len(), "scale": scale });
    if let Some(t) = &targets {
        let model = eval::paired_scores(&outputs, t)?;
        let bic = eval::paired_scores(&bicubic, t)?;
        print!("{}", score_table(&[("model", model), ("bicubic", bic)]));
        report["model"] = serde_json::to_value(model)?;
        report["bicubic"] = serde_json::to_value(bic)?;
    }
    write_json(&args.out.join("scores.json"), &report)?;
    eprintln!("wrote {} images, {} and scores.json to {}", names.len(), grid.display(), args.out.display());
    Ok(())
}
