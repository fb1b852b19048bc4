//! Image folders read for evaluation the way pytorch-fid reads them, so that
//! `gannet eval --images A --data B` gives pytorch-fid's FID on the same folders.
//!
//! pytorch-fid (`ImagePathDataset`) does `Image.open(path).convert('RGB')`, `ToTensor()` and,
//! inside the network, a bilinear resize to 299x299. Here, likewise:
//! - images keep their own size: no crop and no resize before Inception's (a resize to 32x32
//!   first, as the training loader would do, moved FID 59.2 to 62.8 on 28x28 digits). Every image
//!   of a folder must have the same size;
//! - alpha is dropped, as `convert('RGB')` drops it; the training loader composites on white
//!   instead, which changes FID for images with transparency;
//! - a folder whose images are all grey stays one plane (Inception repeats it to RGB, as
//!   `convert('RGB')` does); with any colour image every image is RGB;
//! - 8 bits per channel (16-bit images are scaled to 8 bits; PIL clips 16-bit grey instead).
//!
//! Layouts are the training loader's ([`crate::data::folder`]): images at the top level, or one
//! subfolder per class (labels for `cacc`).

use crate::data::{folder, Dataset};
use crate::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One decoded image: RGB bytes (row-major HWC), its size and whether it has colour channels.
struct Decoded {
    width: usize,
    height: usize,
    colour: bool,
    rgb: Vec<u8>,
}

/// Loads every image under `root` at its own size, as pytorch-fid reads it (see the module
/// documentation). Errors when the images differ in size.
pub fn load_as_pytorch_fid(root: &Path) -> Result<Dataset> {
    let (files, labels, class_names) = folder::scan(root)?;
    if let Some((w, h)) = folder_image_size(root)? {
        crate::limits::check_memory(
            crate::limits::product(&[files.len(), 3 * 2, w, h]),
            &format!("{} images of {w}x{h}", files.len()),
            "score fewer or smaller images, or pass --resolution N to resize them",
        )?;
    }
    let decoded: Vec<Decoded> = files.par_iter().map(|f| decode(f)).collect::<Result<_>>()?;
    let (width, height) =
        one_size(root, files.iter().zip(decoded.iter().map(|d| (d.width, d.height))))?.ok_or_else(|| Error::data(root, "no PNG or JPEG images found"))?;
    let channels = if decoded.iter().any(|d| d.colour) { 3 } else { 1 };
    let mut images = Vec::with_capacity(decoded.len() * channels * width * height);
    for d in &decoded {
        push_planes(&mut images, &d.rgb, channels);
    }
    Dataset::from_parts(images, labels, class_names, channels, height, width, root.display().to_string())
}

/// The size (width, height) shared by the images under `root`, read from the file headers only:
/// a quick check before anything slow. Errors only when the sizes differ; None when the folder
/// cannot be listed or has no readable image (loading it reports why).
pub fn folder_image_size(root: &Path) -> Result<Option<(usize, usize)>> {
    let Ok((files, _, _)) = folder::scan(root) else { return Ok(None) };
    let sizes: Vec<(&PathBuf, (usize, usize))> = files
        .par_iter()
        // Regular files only: opening a FIFO would block until something writes to it.
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.is_file()))
        .filter_map(|f| {
            let (w, h) = image::ImageReader::open(f).ok()?.with_guessed_format().ok()?.into_dimensions().ok()?;
            Some((f, (w as usize, h as usize)))
        })
        .collect();
    one_size(root, sizes.into_iter())
}

/// The one size of `sizes` (None if empty); an error naming each size, its count and an example
/// file when there are several.
fn one_size<'a>(root: &Path, sizes: impl Iterator<Item = (&'a PathBuf, (usize, usize))>) -> Result<Option<(usize, usize)>> {
    let mut groups: BTreeMap<(usize, usize), (usize, &PathBuf)> = BTreeMap::new();
    for (file, size) in sizes {
        groups.entry(size).or_insert((0, file)).0 += 1;
    }
    if groups.len() <= 1 {
        return Ok(groups.keys().next().copied());
    }
    let list: Vec<String> =
        groups.iter().map(|((w, h), (n, f))| format!("{w}x{h} ({n} images, e.g. {})", f.file_name().unwrap_or_default().to_string_lossy())).collect();
    Err(Error::data(
        root,
        format!(
            "images of different sizes: {}. Without --resolution a folder is scored at its own size, as pytorch-fid \
             scores it, so all its images must share one; pass --resolution N to resize every image to NxN first",
            list.join(", ")
        ),
    ))
}

fn decode(path: &Path) -> Result<Decoded> {
    let bytes = crate::limits::read_file(path, crate::limits::MAX_IMAGE_FILE_BYTES).map_err(|e| Error::data(path, format!("image: {e}")))?;
    // The training loader's decoder: format from the content (as PIL), files cut short and
    // oversized images refused.
    let img = folder::decode_image_bytes(&bytes, path)?;
    // to_rgb8 keeps the colour channels as stored and drops alpha: PIL's convert('RGB').
    Ok(Decoded { width: img.width() as usize, height: img.height() as usize, colour: img.color().has_color(), rgb: img.to_rgb8().into_raw() })
}

/// Appends one HWC RGB image as CHW with `channels` planes; a grey image (R = G = B) gives its
/// one plane for `channels` 1.
fn push_planes(out: &mut Vec<u8>, rgb: &[u8], channels: usize) {
    for c in 0..channels {
        out.extend(rgb.chunks_exact(3).map(|p| p[c]));
    }
}
