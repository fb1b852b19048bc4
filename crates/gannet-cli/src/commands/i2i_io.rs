//! What `gannet translate` and `gannet upscale` share: reading input images, writing the outputs
//! (one PNG per input, with provenance text chunks) and the comparison grid, and reporting scores.

use anyhow::{Context, Result};
use gannet::candle_core::{Device, Tensor};
use gannet::data::{folder, paired, Channels};
use gannet::image_io;
use gannet::train::i2i::eval::PairedScores;
use std::path::Path;

/// Images of `path` (a file or a folder's images) at `resolution`, in [-1, 1], with their stems.
pub fn read_images(path: &Path, resolution: usize, channels: usize, device: &Device) -> Result<(Tensor, Vec<String>)> {
    let files = paired::input_files(path)?;
    let ch = if channels == 1 { Channels::Grey } else { Channels::Rgb };
    let ds = folder::load_files(&files, None, Vec::new(), resolution, ch, path.display().to_string())?;
    let idx: Vec<usize> = (0..ds.len()).collect();
    Ok((ds.batch_tensor(&idx, device)?, files.iter().map(|f| paired::stem(f)).collect()))
}

/// The targets of `names` from `dir` (same stems), or an error naming the missing ones.
pub fn read_targets(dir: &Path, names: &[String], resolution: usize, channels: usize, device: &Device) -> Result<Tensor> {
    let files = folder::image_files(dir)?;
    let by_stem: std::collections::BTreeMap<String, std::path::PathBuf> = files.into_iter().map(|f| (paired::stem(&f), f)).collect();
    let missing: Vec<&String> = names.iter().filter(|n| !by_stem.contains_key(*n)).collect();
    anyhow::ensure!(missing.is_empty(), "{}: no target for {} input(s): {:?}", dir.display(), missing.len(), missing.iter().take(20).collect::<Vec<_>>());
    let picked: Vec<std::path::PathBuf> = names.iter().map(|n| by_stem[n].clone()).collect();
    let ch = if channels == 1 { Channels::Grey } else { Channels::Rgb };
    let ds = folder::load_files(&picked, None, Vec::new(), resolution, ch, dir.display().to_string())?;
    let idx: Vec<usize> = (0..ds.len()).collect();
    Ok(ds.batch_tensor(&idx, device)?)
}

/// One PNG per output image, `DIR/NAME.png`, marked as synthetic and naming the checkpoint.
pub fn write_outputs(dir: &Path, outputs: &Tensor, names: &[String], checkpoint: &Path, step: u64) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = image_io::provenance_text(checkpoint, step, None);
    for (img, name) in image_io::to_images(&outputs.clamp(-1f32, 1f32)?)?.iter().zip(names) {
        image_io::save_png_with_text(img, &dir.join(format!("{name}.png")), &text)?;
    }
    Ok(())
}

/// `count` examples spread evenly over the set (names sort related images together, e.g. all the
/// flags) as a comparison grid at `path`.
pub fn write_grid(path: &Path, columns: &[&Tensor], count: usize) -> Result<()> {
    let total = columns[0].dim(0)?;
    let n = total.min(count.max(1));
    let idx: Vec<u32> = (0..n).map(|i| (i * total / n) as u32).collect();
    let idx = Tensor::new(idx.as_slice(), columns[0].device())?;
    let cols = columns.iter().map(|c| Ok(c.index_select(&idx, 0)?.clamp(-1f32, 1f32)?)).collect::<Result<Vec<_>>>()?;
    image_io::save_png(&image_io::comparison_grid(&cols, 4, 2)?, path)?;
    Ok(())
}

/// A table of paired scores, one line per method.
pub fn score_table(rows: &[(&str, PairedScores)]) -> String {
    let mut s = format!("{:<22} {:>5} {:>8} {:>9} {:>7}\n", "", "N", "L1", "PSNR dB", "SSIM");
    for (name, r) in rows {
        s.push_str(&format!("{name:<22} {:>5} {:>8.4} {:>9.2} {:>7.4}\n", r.n, r.l1, r.psnr, r.ssim));
    }
    s
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n").with_context(|| format!("writing {}", path.display()))
}
