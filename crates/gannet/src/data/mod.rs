//! Image datasets and the background batch loader.
//!
//! - [`load`] reads a [`DataSource`]: the built-in digits, an IDX folder or file (MNIST
//!   format, optionally gzipped), or a folder of PNG/JPEG images (optionally one subfolder
//!   per class). Every image is resized to a square `resolution` and kept as `u8` NCHW.
//! - [`BatchLoader`] shuffles deterministically by step and prepares [`HostBatch`]es in a
//!   background thread, so a resumed run sees exactly the batches the unbroken run saw.
//!
//! Every data error names the file or folder at fault ([`crate::Error::data`]).

pub mod builtin;
pub mod captions;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod paired;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::{imageops, ImageBuffer, Luma, Pixel};
use rayon::prelude::*;

pub use loader::{epoch_permutation, BatchLoader, HostBatch};
pub use paired::{load_paired, load_unpaired, PairedDataset, Split};

use crate::{Error, Result};

/// Images (`u8`, NCHW) with optional class labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Option<Vec<u32>>,
    class_names: Vec<String>,
    channels: usize,
    height: usize,
    width: usize,
    source: String,
}

impl Dataset {
    /// Builds a dataset from raw parts, checking that the sizes agree.
    pub fn from_parts(
        images: Vec<u8>,
        labels: Option<Vec<u32>>,
        class_names: Vec<String>,
        channels: usize,
        height: usize,
        width: usize,
        source: String,
    ) -> Result<Self> {
        let per = channels * height * width;
        if per == 0 || !images.len().is_multiple_of(per) {
            return Err(Error::data(&source, format!("{} bytes are not a whole number of {channels}x{height}x{width} images", images.len())));
        }
        let n = images.len() / per;
        if let Some(l) = &labels {
            if l.len() != n {
                return Err(Error::data(&source, format!("{} labels for {n} images", l.len())));
            }
            if let Some(&bad) = l.iter().find(|&&x| x as usize >= class_names.len()) {
                return Err(Error::data(&source, format!("label {bad} but only {} classes", class_names.len())));
            }
        }
        Ok(Dataset { images, labels, class_names, channels, height, width, source })
    }

    pub fn len(&self) -> usize {
        self.images.len() / self.image_size()
    }
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
    pub fn channels(&self) -> usize {
        self.channels
    }
    pub fn height(&self) -> usize {
        self.height
    }
    pub fn width(&self) -> usize {
        self.width
    }
    /// Class index per image, when the source had labels.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }
    /// Number of classes; 0 for an unlabelled dataset.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    /// The same data with other class names (e.g. "sneaker" for Fashion-MNIST's class 7, which
    /// IDX files cannot name). There must be one name per class, all different and non-empty.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self> {
        if self.labels.is_none() {
            return Err(Error::data(&self.source, "data.class_names is set, but this dataset has no labels"));
        }
        if names.len() != self.class_names.len() {
            return Err(Error::data(&self.source, format!("data.class_names has {} names, but the data has {} classes", names.len(), self.class_names.len())));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains(['/', '\\']) || !seen.insert(n.as_str())) {
            return Err(Error::data(&self.source, format!("data.class_names: '{bad}' is empty, repeated or contains a path separator")));
        }
        self.class_names = names;
        Ok(self)
    }

    /// Where the data came from (a path, or `builtin:digits-10k`).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// Bytes per image: C*H*W.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// Image `i` as C*H*W bytes. Panics if `i >= len()`.
    pub fn image_u8(&self, i: usize) -> &[u8] {
        let s = self.image_size();
        &self.images[i * s..(i + 1) * s]
    }
    /// All images, N*C*H*W bytes.
    pub fn images_u8(&self) -> &[u8] {
        &self.images
    }

    /// A new dataset of the given images, in the given order (repeats allowed).
    /// Panics if an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_size());
        for &i in indices {
            images.extend_from_slice(self.image_u8(i));
        }
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
        Dataset { images, labels, ..self.clone_meta() }
    }

    fn clone_meta(&self) -> Dataset {
        Dataset {
            images: Vec::new(),
            labels: None,
            class_names: self.class_names.clone(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            source: self.source.clone(),
        }
    }

    /// Selected images as an f32 tensor `[B,C,H,W]` in [-1,1] (for evaluation, sample export).
    pub fn batch_tensor(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let mut data = Vec::with_capacity(indices.len() * self.image_size());
        for &i in indices {
            if i >= self.len() {
                return Err(Error::data(&self.source, format!("image index {i} out of range (len {})", self.len())));
            }
            data.extend(to_unit_f32(self.image_u8(i)));
        }
        let shape = [indices.len(), self.channels, self.height, self.width];
        Ok(Tensor::from_vec(data, &shape[..], device)?)
    }
}

/// Maps bytes to the models' range [-1,1]: `x / 127.5 - 1`.
pub fn to_unit_f32(images: &[u8]) -> Vec<f32> {
    images.iter().map(|&x| x as f32 / 127.5 - 1.0).collect()
}

/// What to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The embedded 10,000 MNIST training digits (works with no files on disk).
    BuiltinDigits,
    /// An IDX folder or file, or a folder of images.
    Path(PathBuf),
    /// The images of a captioned folder ([`captions`]) labelled by their category, e.g. the
    /// emoji's 9 categories: `captioned:DIR` is the training split, `captioned-held-out:DIR`
    /// the held-out one (what text-to-image evaluation trains and tests its category
    /// classifier on).
    Captioned { dir: PathBuf, split: Split },
}

impl DataSource {
    /// The spelling of [`DataSource::BuiltinDigits`] in configs and flags.
    pub const BUILTIN_DIGITS: &'static str = "builtin:digits";

    /// A data setting as configs and flags write it: `builtin:digits` or a path; any other
    /// `builtin:` name is an error naming the one there is.
    pub fn parse(spec: &str) -> crate::Result<Self> {
        if let Some(dir) = spec.strip_prefix("captioned:") {
            Ok(DataSource::Captioned { dir: dir.into(), split: Split::Train })
        } else if let Some(dir) = spec.strip_prefix("captioned-held-out:") {
            Ok(DataSource::Captioned { dir: dir.into(), split: Split::HeldOut })
        } else if spec == Self::BUILTIN_DIGITS {
            Ok(DataSource::BuiltinDigits)
        } else if let Some(other) = spec.strip_prefix("builtin:") {
            Err(crate::Error::Config(format!("unknown built-in dataset '{other}': the only one is '{}'", Self::BUILTIN_DIGITS)))
        } else {
            Ok(DataSource::Path(std::path::PathBuf::from(spec)))
        }
    }
}

/// Number of channels to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    Grey,
    Rgb,
    /// 1 for IDX data and folders whose images are all stored as greyscale, else 3.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Output images are `resolution` x `resolution` (shorter side resized, then centre crop).
    pub resolution: usize,
    pub channels: Channels,
}

impl LoadOptions {
    pub fn new(resolution: usize, channels: Channels) -> Self {
        LoadOptions { resolution, channels }
    }
}

impl Default for LoadOptions {
    /// Native MNIST size, channels from the data.
    fn default() -> Self {
        LoadOptions { resolution: 28, channels: Channels::Auto }
    }
}

/// Loads a dataset: built-in digits, an IDX folder (train split) or file, or an image folder.
pub fn load(source: &DataSource, opts: &LoadOptions) -> Result<Dataset> {
    crate::limits::check_resolution(opts.resolution, "data.resolution")?;
    match source {
        DataSource::BuiltinDigits => builtin::load_digits(opts.resolution, opts.channels),
        DataSource::Path(path) => load_path(path, opts),
        DataSource::Captioned { dir, split } => load_categories(dir, *split, opts.resolution),
    }
}

/// A captioned folder's images labelled by category.
fn load_categories(dir: &Path, split: Split, resolution: usize) -> Result<Dataset> {
    let data = captions::load_captioned(dir, split, resolution)?;
    let labels: Option<Vec<u32>> = data.captions.iter().map(|c| c.category).collect();
    let labels = labels.filter(|_| !data.categories.is_empty()).ok_or_else(|| {
        Error::data(dir, "these captioned images have no categories (the emoji folder has them; elsewhere put the images in one subfolder per category)")
    })?;
    let d = &data.images;
    let source = format!("{} ({split:?} split, by category)", dir.display());
    Dataset::from_parts(d.images_u8().to_vec(), Some(labels), data.categories, d.channels(), d.height(), d.width(), source)
}

fn load_path(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let meta = std::fs::metadata(path).map_err(|e| Error::data(path, format!("cannot open data: {e}")))?;
    if meta.is_file() {
        let labels = sibling_labels(path);
        return load_idx(path, labels.as_deref(), opts);
    }
    if !meta.is_dir() {
        return Err(Error::data(path, "cannot read data: not a regular file (a pipe, socket or device) nor a folder"));
    }
    match find_first(path, &IDX_TRAIN_IMAGES) {
        Some(images) => {
            let labels = find_first(path, &["train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"]);
            load_idx(&images, labels.as_deref(), opts)
        }
        None => folder::load_folder(path, opts.resolution, opts.channels),
    }
}

/// Whether `path` would be read as IDX data (a file, or a folder in MNIST layout).
pub fn is_idx(path: &Path) -> bool {
    path.is_file() || find_first(path, &IDX_TRAIN_IMAGES).is_some()
}

const IDX_TRAIN_IMAGES: [&str; 2] = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"];

fn find_first(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// For `xxx-images-idx3-ubyte[.gz]`, the matching `xxx-labels-idx1-ubyte[.gz]` if it exists.
fn sibling_labels(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    let labels = stem.replace("images-idx3", "labels-idx1");
    if labels == stem {
        return None;
    }
    find_first(images.parent()?, &[&labels, &format!("{labels}.gz")])
}

fn load_idx(images: &Path, labels: Option<&Path>, opts: &LoadOptions) -> Result<Dataset> {
    let imgs = idx::read_images(images)?;
    let labels = labels.map(idx::read_labels).transpose()?;
    let source = images.display().to_string();
    from_idx(imgs, labels, images, source, opts.resolution, opts.channels)
}

/// Turns parsed IDX data into a dataset; `path` names the images in errors.
pub(crate) fn from_idx(imgs: idx::IdxImages, labels: Option<Vec<u8>>, path: &Path, source: String, resolution: usize, channels: Channels) -> Result<Dataset> {
    if let Some(l) = &labels {
        if l.len() != imgs.count {
            return Err(Error::data(path, format!("labels count {} does not match images count {}", l.len(), imgs.count)));
        }
    }
    let planes = if channels == Channels::Rgb { 3 } else { 1 };
    crate::limits::check_memory(
        crate::limits::product(&[imgs.count, planes, resolution, resolution, 2]),
        &format!("{} images at {resolution}x{resolution}", imgs.count),
        "lower data.resolution (--resolution)",
    )?;
    let grey = resize_grey_all(&imgs, resolution);
    let channels = if channels == Channels::Rgb { 3 } else { 1 };
    let images = if channels == 3 { grey_to_rgb_planes(&grey, resolution * resolution) } else { grey };
    let (labels, class_names) = match labels {
        Some(l) => {
            let classes = l.iter().copied().max().map_or(0, |m| m as usize + 1);
            check_every_class_present(&l, classes, path)?;
            let names = (0..classes).map(|c| c.to_string()).collect();
            (Some(l.into_iter().map(u32::from).collect()), names)
        }
        None => (None, Vec::new()),
    };
    Dataset::from_parts(images, labels, class_names, channels, resolution, resolution, source)
}

/// IDX labels are class numbers 0..K-1: a number with no images below it (one stray 200 among
/// digits) would silently make a model with 190 empty classes.
fn check_every_class_present(labels: &[u8], classes: usize, path: &Path) -> Result<()> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    let empty: Vec<usize> = (0..classes).filter(|&c| counts[c] == 0).collect();
    if let Some(&first) = empty.first() {
        let max = classes - 1;
        let at = labels.iter().position(|&l| l as usize == max).unwrap_or(0);
        return Err(Error::data(
            path,
            format!(
                "the labels run up to {max} (first at image {at}), but {} of the classes 0..{max} have no images (first: {first}); \
                 IDX labels must number the classes 0..K-1 with every class present: fix the labels file",
                empty.len()
            ),
        ));
    }
    Ok(())
}

/// Resizes every IDX image (in parallel); a no-op copy at the native square size.
fn resize_grey_all(imgs: &idx::IdxImages, res: usize) -> Vec<u8> {
    let (h, w) = (imgs.height, imgs.width);
    if h == res && w == res {
        return imgs.pixels.clone();
    }
    // Written in place into a buffer of the final size: a collect would grow by doubling, up to
    // twice what the memory check allowed.
    let mut out = vec![0u8; imgs.count * res * res];
    out.par_chunks_mut(res * res).zip(imgs.pixels.par_chunks(h * w)).for_each(|(o, px)| {
        let f: Vec<f32> = px.iter().map(|&x| x as f32 / 255.0).collect();
        let img = ImageBuffer::<Luma<f32>, _>::from_raw(w as u32, h as u32, f).expect("sizes match");
        o.copy_from_slice(&folder::to_u8(centre_square(&img, res).as_raw()));
    });
    out
}

/// Repeats each grey plane three times (CHW).
fn grey_to_rgb_planes(grey: &[u8], plane: usize) -> Vec<u8> {
    grey.chunks(plane).flat_map(|p| p.iter().chain(p).chain(p).copied()).collect()
}

/// Centre-crops the largest square and resizes it to `res` x `res`: the same as resizing the
/// shorter side to `res` and cropping, but without resampling pixels that are then cut off.
pub(crate) fn centre_square<P>(img: &ImageBuffer<P, Vec<f32>>, res: usize) -> ImageBuffer<P, Vec<f32>>
where
    P: Pixel<Subpixel = f32> + 'static,
{
    let (w, h) = img.dimensions();
    let side = w.min(h);
    let square = imageops::crop_imm(img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    if side as usize == res {
        return square;
    }
    // CatmullRom: sharp, and antialiased when shrinking (the image crate widens the kernel).
    imageops::resize(&square, res as u32, res as u32, imageops::FilterType::CatmullRom)
}

/// Where the shared datasets live: `$GANNET_DATA`, else the `shared/data` folder beside the
/// repository (found from the current directory upward, so tests run from a crate folder work).
pub fn data_root() -> PathBuf {
    shared_folder("GANNET_DATA", "data")
}

/// `$var` when set, else the first `shared/NAME` folder beside the current folder or one of its
/// parents, else `../shared/NAME`: where the shared data and model weights are found.
pub(crate) fn shared_folder(var: &str, name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let fallback = PathBuf::from("../shared").join(name);
    let Ok(cwd) = std::env::current_dir() else { return fallback };
    cwd.ancestors().filter_map(|a| a.parent().map(|p| p.join("shared").join(name))).find(|p| p.is_dir()).unwrap_or(fallback)
}
