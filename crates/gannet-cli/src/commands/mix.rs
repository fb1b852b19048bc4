use super::edit_io::{seed_latents, GeneratorSource};
use anyhow::Result;
use clap::Args;
use gannet::edit::{mixing, style};
use gannet::image_io;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet mix --checkpoint runs/stylegan2-fashion/checkpoints/latest.safetensors --rows 1,2,3 --cols 4,5,6,7 --out mix.png\n  \
    gannet mix --checkpoint C --rows 1,2 --cols 3,4 --cutoff 2 --truncation 0.7 --out coarse.png\n\n\
    A StyleGAN2 style-mixing grid: the top row shows the --cols seeds' images, the left column the\n\
    --rows seeds'; each cell takes the first --cutoff synthesis layers' w (coarse: shape, pose) from\n\
    its row and the rest (fine: texture, shading) from its column. Seeds are `gannet sample` seeds.")]
pub struct MixArgs {
    /// Seeds of the images that give the coarse styles (one row each).
    #[arg(long, value_delimiter = ',', required = true)]
    rows: Vec<u64>,
    /// Seeds of the images that give the fine styles (one column each).
    #[arg(long, value_delimiter = ',', required = true)]
    cols: Vec<u64>,
    /// Layers taken from the row image [default: the 4x4 and 8x8 layers].
    #[arg(long)]
    cutoff: Option<usize>,
    /// Truncation psi (1 = off).
    #[arg(long, default_value_t = 1.0)]
    truncation: f64,
    /// The grid PNG.
    #[arg(long, short)]
    out: PathBuf,
    #[command(flatten)]
    source: GeneratorSource,
}

/// w's of the 4x4 block (conv, toRGB) and the 8x8 block (two convs, toRGB).
const COARSE_LAYERS: usize = 5;

pub fn run(args: MixArgs) -> Result<()> {
    let (saved, gen, device) = args.source.load()?;
    let style = style(gen.as_ref(), "gannet mix")?;
    let cutoff = args.cutoff.unwrap_or(COARSE_LAYERS.min(style.num_ws() - 1));
    let rows = seed_latents(&args.rows, gen.latent_dim(), &device)?;
    let cols = seed_latents(&args.cols, gen.latent_dim(), &device)?;
    let images = mixing::mixing_grid(style, &rows, &cols, cutoff, args.truncation)?.clamp(-1f32, 1f32)?;
    let grid = image_io::grid(&images, args.cols.len() + 1, 2)?;
    image_io::save_png_with_text(&grid, &args.out, &image_io::provenance_text(&args.source.checkpoint, saved.step, None))?;
    eprintln!(
        "wrote a {}x{} style-mixing grid (layers 0..{cutoff} of {} from the rows) to {}",
        args.rows.len(),
        args.cols.len(),
        style.num_ws(),
        args.out.display()
    );
    Ok(())
}
