use super::edit_io::{seed_latents, GeneratorSource};
use anyhow::{Context, Result};
use clap::Args;
use gannet::candle_core::Tensor;
use gannet::edit::interpolate::{path_images, Method, Space};
use gannet::image_io;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet interpolate --checkpoint C --seeds 1,2 --out path.png                 # 8 frames, slerp in z\n  \
    gannet interpolate --checkpoint C --seeds 1,2,3,1 --space w --method lerp --frames 16 --gif loop.gif\n  \
    gannet interpolate --checkpoint C --seeds 4,9 --frames-dir frames/           # one PNG per frame\n\n\
    Each seed stands for the first image `gannet sample --seed S` makes. The path visits the seeds in\n\
    order; every leg has --frames frames. w space needs a StyleGAN2 checkpoint.")]
pub struct InterpolateArgs {
    /// The latents to visit, as `gannet sample` seeds (at least 2).
    #[arg(long, value_delimiter = ',', required = true)]
    seeds: Vec<u64>,
    /// Frames per leg, both ends included.
    #[arg(long, default_value_t = 8)]
    frames: usize,
    /// z (any model) or w (StyleGAN2).
    #[arg(long, default_value = "z")]
    space: Space,
    /// slerp (spherical) or lerp (straight line).
    #[arg(long, default_value = "slerp")]
    method: Method,
    /// Truncation psi (1 = off): StyleGAN2 pulls w towards its mean, other models scale z.
    #[arg(long, default_value_t = 1.0)]
    truncation: f64,
    /// Class-conditional models: the class of every frame (0-based index).
    #[arg(long)]
    class: Option<u32>,
    /// A grid PNG, one leg per row.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// An animated GIF of the path.
    #[arg(long)]
    gif: Option<PathBuf>,
    /// One PNG per frame in this folder.
    #[arg(long)]
    frames_dir: Option<PathBuf>,
    /// Magnification of the GIF (nearest neighbour): small images are hard to see.
    #[arg(long, default_value_t = 4)]
    gif_scale: usize,
    #[command(flatten)]
    source: GeneratorSource,
}

/// Frames per leg, latents on a path and GIF magnification at most: beyond them the output is
/// no longer something to look at, and the memory grows with each.
const MAX_FRAMES: usize = 1000;
const MAX_SEEDS: usize = 256;
const MAX_GIF_SCALE: usize = 32;

pub fn run(args: InterpolateArgs) -> Result<()> {
    anyhow::ensure!(
        args.out.is_some() || args.gif.is_some() || args.frames_dir.is_some(),
        "say where to write: --out grid.png, --gif path.gif or --frames-dir DIR"
    );
    anyhow::ensure!(args.seeds.len() >= 2, "--seeds needs at least 2 seeds, e.g. --seeds 1,2");
    anyhow::ensure!(
        (2..=MAX_FRAMES).contains(&args.frames),
        "--frames must be between 2 and {MAX_FRAMES} (frames per leg, both ends included), got {}",
        args.frames
    );
    anyhow::ensure!(args.seeds.len() <= MAX_SEEDS, "--seeds lists {} latents; at most {MAX_SEEDS}", args.seeds.len());
    anyhow::ensure!((1..=MAX_GIF_SCALE).contains(&args.gif_scale), "--gif-scale must be between 1 and {MAX_GIF_SCALE}, got {}", args.gif_scale);
    if let Some(out) = &args.out {
        image_io::ensure_png_path(out)?;
    }
    let (saved, gen, device) = args.source.load()?;
    let frames = (args.seeds.len() - 1) * (args.frames - 1) + 1;
    let shape = gen.image_shape();
    let per_image = saved.config.model.step_bytes_per_image(shape).map(|b| b / 8 + (shape.numel() * args.gif_scale * args.gif_scale) as u64);
    gannet::limits::check_memory(per_image.and_then(|b| b.checked_mul(frames as u64)), &format!("{frames} frames"), "use fewer --frames or --seeds")?;
    let k = saved.num_classes();
    match args.class {
        None if k > 0 => {
            anyhow::bail!("{} is class-conditional: say which class every frame shows with --class (0 to {})", args.source.checkpoint.display(), k - 1)
        }
        Some(_) if k == 0 => anyhow::bail!("--class needs a class-conditional model; {} is unconditional", args.source.checkpoint.display()),
        Some(c) if c as usize >= k => anyhow::bail!("--class {c} is out of range: the model has {k} classes"),
        _ => {}
    }
    let z = seed_latents(&args.seeds, gen.latent_dim(), &device)?;
    let images = path_images(gen.as_ref(), &z, args.frames, args.space, args.method, args.truncation, args.class)?.clamp(-1f32, 1f32)?;
    let text = image_io::provenance_text(&args.source.checkpoint, saved.step, None);
    if let Some(out) = &args.out {
        // One leg per row: pad the path with the last frame to whole rows.
        let n = images.dim(0)?;
        let rows = (n - 1).div_ceil(args.frames - 1);
        let mut all = vec![images.clone()];
        let pad = rows * args.frames - n;
        if pad > 0 {
            all.push(images.narrow(0, n - 1, 1)?.repeat((pad, 1, 1, 1))?);
        }
        image_io::save_png_with_text(&image_io::grid(&Tensor::cat(&all, 0)?, args.frames, 2)?, out, &text)?;
        eprintln!("wrote {n} frames ({} space, {:?}) to {}", if args.space == Space::W { "w" } else { "z" }, args.method, out.display());
    }
    if let Some(dir) = &args.frames_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, img) in image_io::to_images(&images)?.iter().enumerate() {
            image_io::save_png_with_text(img, &dir.join(format!("frame-{i:04}.png")), &text)?;
        }
        eprintln!("wrote {} frames to {}", images.dim(0)?, dir.display());
    }
    if let Some(gif) = &args.gif {
        image_io::save_gif(&image_io::upscale_nearest(&images, args.gif_scale.max(1))?, gif, 8)?;
        eprintln!("wrote an animated GIF of {} frames to {}", images.dim(0)?, gif.display());
    }
    Ok(())
}
