//! Folders of PNG/JPEG images.
//!
//! Layouts:
//! - only image files at the root: one unlabelled set;
//! - only subfolders holding images: one class per subfolder (sorted names), labelled;
//! - both at once is refused ("mixed label layout"): guessing would silently drop data.
//!
//! Classes are numbered in sorted subfolder order, unless the root holds a `classes.txt` with one
//! class (subfolder) name per line: then that order gives the labels, so a labelled folder written
//! by `gannet sample --per-class` reads back with the labels the model used ("10" would otherwise
//! sort before "2", "ankle-boot" before "t-shirt").
//!
//! Hidden entries (starting with '.') and files that are not PNG/JPEG are skipped.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, Rgb};
use rayon::prelude::*;

use super::{centre_square, Channels, Dataset};
use crate::{Error, Result};

/// One decoded image, already composited, cropped and resized: RGB, row-major HWC.
struct Decoded {
    rgb: Vec<u8>,
    stored_grey: bool,
}

/// Loads every image under `root`, resized to `resolution` x `resolution`.
pub fn load_folder(root: &Path, resolution: usize, channels: Channels) -> Result<Dataset> {
    let (files, labels, class_names) = scan(root)?;
    load_files(&files, labels, class_names, resolution, channels, root.display().to_string())
}

/// Loads `files` in the given order (decoded in parallel), resized to `resolution` x
/// `resolution`; `source` names the data set in errors and caches.
pub fn load_files(
    files: &[PathBuf],
    labels: Option<Vec<u32>>,
    class_names: Vec<String>,
    resolution: usize,
    channels: Channels,
    source: String,
) -> Result<Dataset> {
    crate::limits::check_resolution(resolution, "data.resolution")?;
    crate::limits::check_memory(
        crate::limits::product(&[files.len(), 3, resolution, resolution]),
        &format!("{} images at {resolution}x{resolution}", files.len()),
        "lower data.resolution (--resolution) or use fewer images",
    )?;
    let decoded: Vec<Decoded> = files.par_iter().map(|f| decode(f, resolution)).collect::<Result<_>>()?;
    let channels = match channels {
        Channels::Grey => 1,
        Channels::Rgb => 3,
        Channels::Auto if decoded.iter().all(|d| d.stored_grey) => 1,
        Channels::Auto => 3,
    };
    let plane = resolution * resolution;
    let mut images = Vec::with_capacity(decoded.len() * channels * plane);
    for d in &decoded {
        push_chw(&mut images, &d.rgb, channels);
    }
    Dataset::from_parts(images, labels, class_names, channels, resolution, resolution, source)
}

/// The PNG/JPEG files directly inside `dir` (not in subfolders), sorted by name; hidden files
/// are skipped.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(list(dir)?.0)
}

/// Image files in load order, their labels (class layout only) and the class names.
pub type Scan = (Vec<PathBuf>, Option<Vec<u32>>, Vec<String>);

/// The image files under `root` in load order, with labels and class names for the class
/// layout (see the module documentation).
pub fn scan(root: &Path) -> Result<Scan> {
    let (root_files, subdirs) = list(root)?;
    let mut classes = Vec::new();
    for dir in subdirs {
        let (files, _) = list(&dir)?;
        if !files.is_empty() {
            classes.push((dir, files));
        }
    }
    match (root_files.is_empty(), classes.is_empty()) {
        (true, true) => Err(Error::data(root, no_images_message(root))),
        (false, false) => Err(Error::data(
            root,
            format!(
                "mixed label layout: {} image files at the top level and {} class subfolders with images; \
                 put every image in a class subfolder, or none",
                root_files.len(),
                classes.len()
            ),
        )),
        (false, true) => Ok((root_files, None, Vec::new())),
        (true, false) => {
            let classes = order_classes(root, classes)?;
            let mut files = Vec::new();
            let mut labels = Vec::new();
            let mut names = Vec::new();
            for (label, (dir, class_files)) in classes.into_iter().enumerate() {
                names.push(dir.file_name().unwrap_or_default().to_string_lossy().into_owned());
                labels.extend(std::iter::repeat_n(label as u32, class_files.len()));
                files.extend(class_files);
            }
            Ok((files, Some(labels), names))
        }
    }
}

/// Why a folder gave no images, and where the images are if they sit deeper than gannet reads
/// (the folder itself, or one subfolder level for classes).
fn no_images_message(root: &Path) -> String {
    let base = "no PNG or JPEG images in this folder or its subfolders (gannet reads DIR/*.png, or DIR/CLASS/*.png for labelled data)";
    match find_deeper_image(root, 4) {
        Some(found) => {
            let parent = found.parent().and_then(|p| p.parent()).unwrap_or(root);
            format!("{base}; images sit deeper, e.g. {}: point --data (data.source) at {} instead", found.display(), parent.display())
        }
        None => base.to_string(),
    }
}

/// The first image file (in sorted order) 2 to `depth` folder levels below `root`.
fn find_deeper_image(root: &Path, depth: usize) -> Option<PathBuf> {
    fn walk(dir: &Path, level: usize, depth: usize) -> Option<PathBuf> {
        let (files, dirs) = list(dir).ok()?;
        if level >= 2 {
            if let Some(f) = files.into_iter().next() {
                return Some(f);
            }
        }
        if level >= depth {
            return None;
        }
        dirs.iter().find_map(|d| walk(d, level + 1, depth))
    }
    walk(root, 0, depth)
}

/// The file that fixes the order (and so the labels) of class subfolders.
pub const CLASS_ORDER_FILE: &str = "classes.txt";

/// Orders the class subfolders by `classes.txt` when the root has one; it must name every class
/// subfolder exactly once (blank lines are ignored).
fn order_classes(root: &Path, classes: Vec<(PathBuf, Vec<PathBuf>)>) -> Result<Vec<(PathBuf, Vec<PathBuf>)>> {
    let file = root.join(CLASS_ORDER_FILE);
    if !file.is_file() {
        return Ok(classes);
    }
    let text = crate::limits::read_text(&file, crate::limits::MAX_CONFIG_BYTES).map_err(|e| Error::data(&file, e))?;
    let names: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut by_name: std::collections::BTreeMap<String, (PathBuf, Vec<PathBuf>)> =
        classes.into_iter().map(|(dir, files)| (dir.file_name().unwrap_or_default().to_string_lossy().into_owned(), (dir, files))).collect();
    let mut ordered = Vec::with_capacity(names.len());
    for name in &names {
        match by_name.remove(*name) {
            Some(c) => ordered.push(c),
            None => return Err(Error::data(&file, format!("names '{name}', which is not a class subfolder with images (or is listed twice)"))),
        }
    }
    if !by_name.is_empty() {
        let rest: Vec<&String> = by_name.keys().collect();
        return Err(Error::data(&file, format!("does not list the class subfolders {rest:?}; list every class, one per line")));
    }
    Ok(ordered)
}

/// Sorted image files and sorted non-hidden subfolders directly inside `dir`.
fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::data(dir, format!("cannot read folder: {e}")))?;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::data(dir, format!("cannot read folder entry: {e}")))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            dirs.push(path);
        } else if is_image_name(&path) {
            files.push(path);
        }
    }
    // Sorted so that indices, labels and therefore shuffles do not depend on the file system.
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// Whether the extension is png, jpg or jpeg, in any case.
pub fn is_image_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")).unwrap_or(false)
}

fn decode(path: &Path, resolution: usize) -> Result<Decoded> {
    let bytes = crate::limits::read_file(path, crate::limits::MAX_IMAGE_FILE_BYTES).map_err(|e| Error::data(path, format!("image: {e}")))?;
    let img = decode_image_bytes(&bytes, path)?;
    let stored_grey = !img.color().has_color();
    let rgb = centre_square(&on_white(&img), resolution);
    Ok(Decoded { rgb: to_u8(rgb.as_raw()), stored_grey })
}

/// Decodes one image file's bytes (PNG, JPEG or GIF, told by the content, not the name, so a
/// mislabelled JPEG still loads). Refused: files cut short (decoders would fill the missing part
/// with grey and train on it), images over [`crate::limits::MAX_IMAGE_PIXELS`] pixels, and empty
/// images. `path` names the file in errors.
pub fn decode_image_bytes(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::data(path, format!("cannot read image: {e}")))?;
    let format = reader.format();
    if let Some(why) = format.and_then(|f| truncated(bytes, f)) {
        return Err(Error::data(path, format!("the image file is cut short ({why}): re-copy or re-export it")));
    }
    if let Some(why) = (format == Some(image::ImageFormat::Png)).then(|| png_problem(bytes)).flatten() {
        return Err(Error::data(path, format!("not a valid PNG: {why}")));
    }
    let (w, h) = reader.into_dimensions().map_err(|e| Error::data(path, format!("cannot decode image: {e}")))?;
    if w == 0 || h == 0 {
        return Err(Error::data(path, "image has zero width or height"));
    }
    if (w as u64) * (h as u64) > crate::limits::MAX_IMAGE_PIXELS {
        return Err(Error::data(
            path,
            format!("the image is {w}x{h}, more than the {} pixels gannet decodes: shrink it first", crate::limits::MAX_IMAGE_PIXELS),
        ));
    }
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::data(path, format!("cannot read image: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(crate::limits::MAX_IMAGE_PIXELS * 16);
    reader.limits(limits);
    reader.decode().map_err(|e| Error::data(path, format!("cannot decode image: {e}")))
}

/// Why a file of `format` is incomplete, when its end marker is missing. The PNG decoder finds
/// a cut-short file itself; JPEG and GIF decoders do not.
fn truncated(bytes: &[u8], format: image::ImageFormat) -> Option<&'static str> {
    match format {
        image::ImageFormat::Jpeg => {
            // The end-of-image marker must follow the last start-of-scan: inside entropy-coded
            // data 0xFF is always escaped, so neither marker can appear there by accident, and
            // an EOI earlier in the file (an EXIF thumbnail's) comes before the image's scans.
            let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
            let last_eoi = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
            match (last_sos, last_eoi) {
                (Some(s), Some(e)) if e > s => None,
                _ => Some("no JPEG end-of-image marker after the image data"),
            }
        }
        image::ImageFormat::Gif if !bytes.ends_with(&[0x3B]) => Some("no GIF trailer byte"),
        _ => None,
    }
}

/// What is wrong with a PNG's chunk layout that the `png` decoder does not report but trips
/// over: a palette (PLTE) whose length is not 1 to 256 RGB triples makes it index past the
/// palette and panic (found by fuzzing, png 0.18).
fn png_problem(bytes: &[u8]) -> Option<String> {
    let mut at = 8; // after the signature
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let kind = &bytes[at + 4..at + 8];
        if kind == b"PLTE" && (len == 0 || !len.is_multiple_of(3) || len > 3 * 256) {
            return Some(format!("its palette chunk has {len} bytes, not 1 to 256 RGB entries"));
        }
        if kind == b"IDAT" || kind == b"IEND" {
            return None;
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    None
}

/// One already decoded image as the loaders would prepare it (composited on white, centre-cropped
/// and resized to `resolution`, `channels` 1 or 3): a [1, C, R, R] tensor in [-1, 1]. For images
/// that arrive in memory, e.g. an upload to the studio.
pub fn image_tensor(img: &DynamicImage, resolution: usize, channels: usize, device: &candle_core::Device) -> Result<candle_core::Tensor> {
    if img.width() == 0 || img.height() == 0 || resolution == 0 {
        return Err(Error::Msg("an empty image or a zero resolution".into()));
    }
    let rgb = to_u8(centre_square(&on_white(img), resolution).as_raw());
    let mut chw = Vec::with_capacity(resolution * resolution * channels);
    push_chw(&mut chw, &rgb, channels);
    Ok(candle_core::Tensor::from_vec(super::to_unit_f32(&chw), (1, channels, resolution, resolution), device)?)
}

/// Composites any pixel type (grey, grey+alpha, RGB, RGBA, 8 or 16 bit) onto white, in f32
/// so 16-bit images keep their precision until the final rounding.
fn on_white(img: &DynamicImage) -> ImageBuffer<Rgb<f32>, Vec<f32>> {
    let rgba = img.to_rgba32f();
    let (w, h) = rgba.dimensions();
    let mut out = ImageBuffer::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3].clamp(0.0, 1.0);
        *o = Rgb([0, 1, 2].map(|c| p[c] * a + (1.0 - a)));
    }
    out
}

/// [0,1] floats to bytes, clamping the small overshoot a sharp resize filter can produce.
pub(crate) fn to_u8(values: &[f32]) -> Vec<u8> {
    values.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}

/// Appends one HWC RGB image as CHW with `channels` planes (1: ITU-R 601 luma).
fn push_chw(out: &mut Vec<u8>, rgb: &[u8], channels: usize) {
    let pixels = rgb.chunks_exact(3);
    if channels == 1 {
        out.extend(pixels.map(|p| {
            let y = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
            y.round().clamp(0.0, 255.0) as u8
        }));
    } else {
        for c in 0..3 {
            out.extend(rgb.chunks_exact(3).map(|p| p[c]));
        }
    }
}
