//! Images with captions, for text-to-image training.
//!
//! Three layouts are read ([`load_captioned`]):
//! - the emoji folder (`emoji.json` of npm emoji-datasource beside `google/` and `twitter/`):
//!   every emoji and skin-tone variant in each drawing style, captioned with its name, its skin
//!   tones and the style as a word of its own, e.g. "father christmas: medium skin tone, twitter";
//!   its category ("Smileys & Emotion", ...) is kept for the category metric. The 5 `Component`
//!   emoji (skin-tone swatches, hair parts) are left out;
//! - a folder with `captions.jsonl`: one `{"file": "relative/path.png", "text": "..."}` per line;
//! - any image folder where each `name.png` has `name.txt` beside it. Images in class
//!   subfolders get the subfolder as their category.
//!
//! The held-out split works on caption *groups* (an emoji with all its variants and styles; a
//! file otherwise), by the name hash of [`super::paired::is_held_out`], so no held-out caption
//! was seen in training in any style.

use super::{folder, Channels, Dataset, Split};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Largest caption file read (`emoji.json` is ~1.5 MB).
const MAX_CAPTION_FILE_BYTES: u64 = 64 << 20;

/// The metadata file that marks the emoji layout.
pub const EMOJI_JSON: &str = "emoji.json";
/// The caption file of the JSON-lines layout.
pub const CAPTIONS_JSONL: &str = "captions.jsonl";
/// The drawing styles of the emoji layout (its subfolders), each a word of the captions.
pub const EMOJI_STYLES: [&str; 2] = ["google", "twitter"];

/// One image's caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caption {
    pub text: String,
    /// What the held-out split and the R-precision's "other caption" draw go by: the emoji's
    /// name (all its variants and styles), else the file's path.
    pub group: String,
    /// Index into [`CaptionedImages::categories`], when the layout has categories.
    pub category: Option<u32>,
}

/// Images and their captions: `images` is labelled with each image's own index, so the batch
/// loader's labels are the indices into `captions`.
pub struct CaptionedImages {
    pub images: Dataset,
    pub captions: Vec<Caption>,
    /// Category names (empty when the layout has none).
    pub categories: Vec<String>,
}

impl CaptionedImages {
    pub fn len(&self) -> usize {
        self.captions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.captions.is_empty()
    }
    /// The caption of image `i`.
    pub fn caption(&self, i: usize) -> &Caption {
        &self.captions[i]
    }
}

/// What a layout lists before the images are decoded: (file, caption) pairs and category names.
type Listing = (Vec<(PathBuf, Caption)>, Vec<String>);

/// Reads the captioned images under `dir` (see the module documentation), the `split` of
/// them, resized to `resolution` (RGB, alpha composited on white).
pub fn load_captioned(dir: &Path, split: Split, resolution: usize) -> Result<CaptionedImages> {
    let (listed, categories) = list_captioned(dir)?;
    let total = listed.len();
    let (files, captions): (Vec<PathBuf>, Vec<Caption>) = listed.into_iter().filter(|(_, c)| split.contains(&c.group)).unzip();
    if files.is_empty() {
        return Err(Error::data(dir, format!("none of the {total} captioned images is in the {split:?} split; add images")));
    }
    let labels = (0..files.len() as u32).collect();
    let names = captions.iter().map(|c| c.text.clone()).collect();
    let images = folder::load_files(&files, Some(labels), names, resolution, Channels::Rgb, dir.display().to_string())?;
    Ok(CaptionedImages { images, captions, categories })
}

/// The (file, caption) pairs of `dir` in a fixed order, and the category names.
pub fn list_captioned(dir: &Path) -> Result<Listing> {
    if !dir.is_dir() {
        return Err(Error::data(dir, "captioned images must be a folder (with emoji.json, captions.jsonl, or name.txt beside each name.png)"));
    }
    if dir.join(EMOJI_JSON).is_file() {
        list_emoji(dir)
    } else if dir.join(CAPTIONS_JSONL).is_file() {
        list_jsonl(dir)
    } else {
        list_txt(dir)
    }
}

#[derive(Deserialize)]
struct EmojiEntry {
    name: Option<String>,
    image: String,
    category: String,
    #[serde(default)]
    skin_variations: Option<std::collections::BTreeMap<String, EmojiVariant>>,
}

#[derive(Deserialize)]
struct EmojiVariant {
    image: String,
}

/// Skin-tone modifier code points and their CLDR names.
const TONES: [(&str, &str); 5] = [
    ("1F3FB", "light skin tone"),
    ("1F3FC", "medium-light skin tone"),
    ("1F3FD", "medium skin tone"),
    ("1F3FE", "medium-dark skin tone"),
    ("1F3FF", "dark skin tone"),
];

/// "medium skin tone" for "1F3FD"; "light skin tone, dark skin tone" for "1F3FB-1F3FF".
fn tone_names(key: &str) -> Option<String> {
    let names: Option<Vec<&str>> = key.split('-').map(|k| TONES.iter().find(|(c, _)| c.eq_ignore_ascii_case(k)).map(|(_, n)| *n)).collect();
    let mut names = names?;
    names.dedup();
    Some(names.join(", "))
}

fn list_emoji(dir: &Path) -> Result<Listing> {
    let path = dir.join(EMOJI_JSON);
    let text = crate::limits::read_text(&path, MAX_CAPTION_FILE_BYTES).map_err(|e| Error::data(&path, e))?;
    let entries: Vec<EmojiEntry> = serde_json::from_str(&text).map_err(|e| Error::data(&path, format!("not emoji-datasource metadata: {e}")))?;
    let mut categories: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.category != "Component") {
        // An emoji without a name of words (none in emoji.json today) cannot be captioned.
        let Some(name) = e.name.as_deref().map(str::to_lowercase).filter(|n| !crate::text::tokenizer::words(n).is_empty()) else { continue };
        let category = match categories.iter().position(|c| c == &e.category) {
            Some(i) => i,
            None => {
                categories.push(e.category.clone());
                categories.len() - 1
            }
        } as u32;
        let mut variants = vec![(e.image.clone(), name.clone())];
        for (key, v) in e.skin_variations.iter().flatten() {
            if let Some(tones) = tone_names(key) {
                variants.push((v.image.clone(), format!("{name}: {tones}")));
            }
        }
        for style in EMOJI_STYLES {
            for (image, text) in &variants {
                let file = dir.join(style).join(image);
                if file.is_file() {
                    out.push((file, Caption { text: format!("{text}, {style}"), group: name.clone(), category: Some(category) }));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(Error::data(dir, format!("{EMOJI_JSON} names no image found in {}", EMOJI_STYLES.map(|s| format!("{s}/")).join(" or "))));
    }
    Ok((out, categories))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlLine {
    file: String,
    text: String,
}

fn list_jsonl(dir: &Path) -> Result<Listing> {
    let path = dir.join(CAPTIONS_JSONL);
    let text = crate::limits::read_text(&path, MAX_CAPTION_FILE_BYTES).map_err(|e| Error::data(&path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |m: String| Error::data(&path, format!("line {}: {m}", i + 1));
        let l: JsonlLine = serde_json::from_str(line).map_err(|e| at(format!("{e}; each line must be {{\"file\": \"name.png\", \"text\": \"a caption\"}}")))?;
        let rel = Path::new(&l.file);
        if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(at(format!("file '{}' must be a path inside {}", l.file, dir.display())));
        }
        let file = dir.join(rel);
        if !file.is_file() {
            return Err(at(format!("file '{}' does not exist", file.display())));
        }
        if crate::text::tokenizer::words(&l.text).is_empty() {
            return Err(at(format!("the caption of '{}' is empty: write what the image shows", l.file)));
        }
        out.push((file, Caption { text: l.text, group: l.file, category: None }));
    }
    if out.is_empty() {
        return Err(Error::data(&path, "has no captions: write one {\"file\": ..., \"text\": ...} line per image"));
    }
    Ok((out, Vec::new()))
}

fn list_txt(dir: &Path) -> Result<Listing> {
    let (files, labels, class_names) = folder::scan(dir)?;
    let missing: Vec<&PathBuf> = files.iter().filter(|f| !f.with_extension("txt").is_file()).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(3).map(|f| f.display().to_string()).collect();
        return Err(Error::data(
            dir,
            format!(
                "{} of {} images have no caption ({}{}): put name.txt beside each name.png, or list them in {CAPTIONS_JSONL}",
                missing.len(),
                files.len(),
                shown.join(", "),
                if missing.len() > 3 { ", ..." } else { "" }
            ),
        ));
    }
    let mut out = Vec::with_capacity(files.len());
    for (i, f) in files.into_iter().enumerate() {
        let txt = f.with_extension("txt");
        let text = crate::limits::read_text(&txt, crate::limits::MAX_CONFIG_BYTES).map_err(|e| Error::data(&txt, e))?;
        let text = text.trim().to_string();
        if crate::text::tokenizer::words(&text).is_empty() {
            return Err(Error::data(&txt, "the caption is empty: write what the image shows"));
        }
        let group = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
        out.push((f, Caption { text, group, category: labels.as_ref().map(|l| l[i]) }));
    }
    Ok((out, class_names))
}
