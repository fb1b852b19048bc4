//! `gannet sample --prompt`: images from a text-to-image checkpoint, as a grid or single PNGs,
//! and interpolations between two prompts (`--prompt-to`).

use super::sample::SampleArgs;
use crate::progress;
use anyhow::{bail, Context, Result};
use gannet::image_io;
use gannet::saved::{SavedT2i, KIND_T2I};

/// Whether `gannet sample` is asked for text-to-image: a prompt, or a text-to-image checkpoint.
pub fn is_text_to_image(args: &SampleArgs) -> bool {
    !args.prompt.is_empty() || gannet::checkpoint::kind(&args.checkpoint).as_deref() == Some(KIND_T2I)
}

pub fn run(args: &SampleArgs) -> Result<()> {
    let kind = gannet::checkpoint::kind(&args.checkpoint);
    if kind.is_some() && kind.as_deref() != Some(KIND_T2I) {
        bail!("--prompt needs a text-to-image checkpoint (gannet train --preset t2i-emoji); {} is not one", args.checkpoint.display());
    }
    if args.prompt.is_empty() {
        bail!("{} is a text-to-image model: say what to draw with --prompt \"red heart\"", args.checkpoint.display());
    }
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!(args.out.is_some() || args.out_dir.is_some(), "say where to write: --out grid.png or --out-dir DIR");
    if let Some(out) = &args.out {
        image_io::ensure_png_path(out)?;
    }
    let device = gannet::device::parse_device(&args.device)?;
    let saved = SavedT2i::load(&args.checkpoint, &device).with_context(|| format!("loading {}", args.checkpoint.display()))?;
    let nets = &saved.nets;
    let prompts: Vec<&str> = args.prompt.iter().map(String::as_str).collect();
    // Every prompt is checked (unknown words, empty) before anything is generated.
    for p in &prompts {
        nets.vocab.encode_prompt(p).with_context(|| format!("prompt \"{p}\""))?;
    }
    let res = nets.image_shape().resolution;
    let (rows, cols) = match &args.prompt_to {
        Some(_) if prompts.len() > 1 => bail!("--prompt-to interpolates from one --prompt; {} were given", prompts.len()),
        Some(_) => (args.count, args.frames),
        None if prompts.len() > 1 => (prompts.len(), args.count),
        None => {
            let cols = (args.count as f64).sqrt().ceil() as usize;
            (args.count.div_ceil(cols), cols)
        }
    };
    let total = match &args.prompt_to {
        Some(_) => rows.checked_mul(cols).context("--count x --frames is too large")?,
        None => prompts.len().checked_mul(args.count).context("--count is too large")?,
    };
    if args.out.is_some() {
        image_io::check_grid_size(total, cols, res, res, 2)?;
    }
    // All images are generated at once (a generous 64 activations per output value).
    gannet::limits::check_memory(
        gannet::limits::product(&[total, 3, res, res, 64 * 4]),
        &format!("generating {total} images at once"),
        "draw fewer images (-n)",
    )?;
    let mut text = image_io::provenance_text(&args.checkpoint, saved.step, None);
    text.push(("Prompt", args.prompt.join(" | ") + &args.prompt_to.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default()));
    let images = match &args.prompt_to {
        Some(to) => nets.interpolate_prompts(prompts[0], to, args.frames, args.count, args.seed, &device)?,
        None => nets.generate_prompts(&prompts, args.count, args.seed, &device)?,
    };
    if let Some(out) = &args.out {
        image_io::save_png_with_text(&image_io::grid(&images, cols, 2)?, out, &text)?;
        let what = match &args.prompt_to {
            Some(to) => format!("{rows} rows of {cols} frames from \"{}\" to \"{to}\"", prompts[0]),
            None => format!("{total} images of {}", prompts.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ")),
        };
        eprintln!("wrote {what} as a grid to {}", out.display());
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let bar = progress::bar(total as u64, "writing");
        for (i, img) in image_io::to_images(&images)?.iter().enumerate() {
            image_io::save_png_with_text(img, &dir.join(format!("{i:05}.png")), &text)?;
            bar.set_position(i as u64 + 1);
        }
        bar.finish_and_clear();
        eprintln!("wrote {total} PNGs to {}", dir.display());
    }
    Ok(())
}
