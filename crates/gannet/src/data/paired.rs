//! Two-folder datasets for image-to-image translation.
//!
//! - Paired ([`load_paired`]): folder A and folder B hold the same file names (stems, so
//!   `x.png` pairs with `x.jpg`), e.g. the same emoji in two drawing styles. Every name must be in
//!   both folders; otherwise the error lists the unmatched names of each side.
//! - Unpaired ([`load_unpaired`]): any names; each folder is a set of its own (CycleGAN).
//!
//! The held-out split ([`Split`]) puts a file in the evaluation 10% when a hash of its name
//! (64-bit FNV-1a of the stem) is 0 mod 10: it depends on nothing but the name, so it is the same
//! on every machine, in both folders of a pair, and when files are added or removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{folder, Channels, Dataset};
use crate::{Error, Result};

/// Which part of a folder to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// The ~90% of names not held out: what training sees.
    Train,
    /// The ~10% held out for evaluation.
    HeldOut,
    /// Every file.
    All,
}

impl Split {
    /// Whether a file whose stem is `name` belongs to this split.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Split::Train => !is_held_out(name),
            Split::HeldOut => is_held_out(name),
            Split::All => true,
        }
    }
}

/// 64-bit FNV-1a: simple, fixed forever (unlike std's hasher), good enough to spread names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Whether the file stem `name` is in the held-out 10%.
pub fn is_held_out(name: &str) -> bool {
    fnv1a(name.as_bytes()).is_multiple_of(10)
}

/// The stem of an image file: the pairing key and the name outputs are written under.
pub fn stem(path: &Path) -> String {
    path.file_stem().unwrap_or_default().to_string_lossy().into_owned()
}

/// Image files of `dir` by stem; two files with one stem (`x.png`, `x.jpg`) are an error.
fn files_by_stem(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for f in folder::image_files(dir)? {
        if let Some(old) = out.insert(stem(&f), f.clone()) {
            return Err(Error::data(dir, format!("two images share the name {}: {} and {}", stem(&f), old.display(), f.display())));
        }
    }
    if out.is_empty() {
        return Err(Error::data(dir, "no PNG or JPEG images in this folder"));
    }
    Ok(out)
}

/// At most 20 names of a list, for error messages.
fn some_names(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(20).map(|s| s.as_str()).collect();
    let more = if names.len() > 20 { format!(" and {} more", names.len() - 20) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// Matching (stem, file in A, file in B), sorted by stem; an error listing the unmatched names
/// of both sides unless every name is in both folders.
pub fn pair_files(dir_a: &Path, dir_b: &Path) -> Result<Vec<(String, PathBuf, PathBuf)>> {
    let a = files_by_stem(dir_a)?;
    let mut b = files_by_stem(dir_b)?;
    let only_a: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    if !only_a.is_empty() || !only_b.is_empty() {
        let mut msg = format!("paired folders must hold the same file names (stems), but they differ; compared with {}:", dir_b.display());
        if !only_a.is_empty() {
            msg.push_str(&format!(" {} only in this folder: {};", only_a.len(), some_names(&only_a)));
        }
        if !only_b.is_empty() {
            msg.push_str(&format!(" {} only in {}: {};", only_b.len(), dir_b.display(), some_names(&only_b)));
        }
        return Err(Error::data(dir_a, msg.trim_end_matches(';').to_string()));
    }
    Ok(a.into_iter()
        .map(|(name, fa)| {
            let fb = b.remove(&name).expect("checked above");
            (name, fa, fb)
        })
        .collect())
}

/// Images of two folders with the same names, in name order: `a.image_u8(i)` and
/// `b.image_u8(i)` are the two versions of `names[i]`.
#[derive(Debug, Clone)]
pub struct PairedDataset {
    pub a: Dataset,
    pub b: Dataset,
    pub names: Vec<String>,
}

impl PairedDataset {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// One dataset whose images are A's channels followed by B's (2C channels), so the
    /// deterministic batch loader shuffles the pairs together; split a batch with
    /// `narrow(1, 0, C)` and `narrow(1, C, C)`.
    pub fn stacked(&self) -> Result<Dataset> {
        let (sa, sb) = (self.a.image_size(), self.b.image_size());
        if sa != sb || self.a.channels() != self.b.channels() || self.a.len() != self.b.len() {
            return Err(Error::data(self.a.source(), format!("paired images differ in size or number from those of {}", self.b.source())));
        }
        let mut images = Vec::with_capacity(2 * self.a.images_u8().len());
        for i in 0..self.a.len() {
            images.extend_from_slice(self.a.image_u8(i));
            images.extend_from_slice(self.b.image_u8(i));
        }
        let source = format!("{} + {}", self.a.source(), self.b.source());
        Dataset::from_parts(images, None, Vec::new(), 2 * self.a.channels(), self.a.height(), self.a.width(), source)
    }
}

/// Loads the `split` of two paired folders at `resolution` x `resolution`.
pub fn load_paired(dir_a: &Path, dir_b: &Path, split: Split, resolution: usize, channels: Channels) -> Result<PairedDataset> {
    let pairs: Vec<_> = pair_files(dir_a, dir_b)?.into_iter().filter(|(n, _, _)| split.contains(n)).collect();
    if pairs.is_empty() {
        return Err(Error::data(dir_a, format!("no image pairs in the {split:?} split")));
    }
    let fa: Vec<PathBuf> = pairs.iter().map(|p| p.1.clone()).collect();
    let fb: Vec<PathBuf> = pairs.iter().map(|p| p.2.clone()).collect();
    let a = folder::load_files(&fa, None, Vec::new(), resolution, channels, dir_a.display().to_string())?;
    // B gets A's channel count, so a grey and a colour folder still stack.
    let ch_b = if a.channels() == 1 { Channels::Grey } else { Channels::Rgb };
    let b = folder::load_files(&fb, None, Vec::new(), resolution, ch_b, dir_b.display().to_string())?;
    Ok(PairedDataset { a, b, names: pairs.into_iter().map(|p| p.0).collect() })
}

/// Loads the `split` of one folder (an unpaired domain, or a super-resolution set) with the
/// stems of its files, in name order.
pub fn load_unpaired(dir: &Path, split: Split, resolution: usize, channels: Channels) -> Result<(Dataset, Vec<String>)> {
    let files: Vec<(String, PathBuf)> = files_by_stem(dir)?.into_iter().filter(|(n, _)| split.contains(n)).collect();
    if files.is_empty() {
        return Err(Error::data(dir, format!("no images in the {split:?} split")));
    }
    let paths: Vec<PathBuf> = files.iter().map(|f| f.1.clone()).collect();
    let ds = folder::load_files(&paths, None, Vec::new(), resolution, channels, dir.display().to_string())?;
    Ok((ds, files.into_iter().map(|f| f.0).collect()))
}

/// The images a command reads: `path` itself when it is a file, else the image files directly
/// inside it, sorted.
pub fn input_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::data(path, format!("cannot open: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let files = folder::image_files(path)?;
    if files.is_empty() {
        return Err(Error::data(path, "no PNG or JPEG images in this folder"));
    }
    Ok(files)
}
