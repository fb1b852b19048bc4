//! The checkpoints and run folders the studio offers, each under an id.
//!
//! Requests name a checkpoint or run only by id; the id is looked up in a list the server built
//! from its own command line and directory listings, so nothing a client sends is ever joined to
//! a path. `--runs DIR` is listed again on every lookup, so a training started after the server
//! shows up (and its checkpoint, once written).

use serde::Serialize;
use std::path::{Path, PathBuf};

/// Run folders listed from `--runs` at most (a guard against a huge directory).
const MAX_RUNS: usize = 500;
/// Ids longer than this are refused before any lookup.
pub const MAX_ID_LEN: usize = 200;

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A checkpoint file.
    File(PathBuf),
    /// A built-in stand-in model for tests (`gannet serve --test-models`).
    TestInvert,
}

/// One thing the page can pick: a checkpoint, a run folder to follow, or both.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    /// What the page shows.
    pub label: String,
    #[serde(skip)]
    pub source: Option<Source>,
    #[serde(skip)]
    pub run_dir: Option<PathBuf>,
    /// Whether generate/translate can use it.
    pub has_checkpoint: bool,
    /// Whether the training view can follow it (metrics.csv or samples/ exist).
    pub has_run: bool,
    /// The run folder, as the training view names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_label: Option<String>,
}

impl Entry {
    fn new(id: String, label: String, source: Option<Source>, run_dir: Option<PathBuf>) -> Self {
        let run_label = run_dir.as_ref().map(|d| d.display().to_string());
        Self { has_checkpoint: source.is_some(), has_run: run_dir.is_some(), run_label, id, label, source, run_dir }
    }

    /// The checkpoint file, for provenance text (the test model has none).
    pub fn checkpoint_path(&self) -> PathBuf {
        match &self.source {
            Some(Source::File(p)) => p.clone(),
            _ => PathBuf::from(&self.label),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Catalog {
    checkpoints: Vec<PathBuf>,
    runs_dir: Option<PathBuf>,
    test_models: bool,
}

impl Catalog {
    pub fn new(checkpoints: Vec<PathBuf>, runs_dir: Option<PathBuf>, test_models: bool) -> Self {
        Self { checkpoints, runs_dir, test_models }
    }

    /// Everything on offer now: `--checkpoint` files as `c0`, `c1`, ... in command-line order,
    /// then the run folders of `--runs` as `run:NAME`, sorted by name.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .checkpoints
            .iter()
            .enumerate()
            .map(|(i, p)| Entry::new(format!("c{i}"), p.display().to_string(), Some(Source::File(p.clone())), run_of_checkpoint(p)))
            .collect();
        if let Some(dir) = &self.runs_dir {
            out.extend(scan_runs(dir));
        }
        if self.test_models {
            out.push(Entry::new("test:invert".into(), "test: invert colours (image-to-image stand-in)".into(), Some(Source::TestInvert), None));
        }
        out
    }

    /// The entry with this id, if the server offers one.
    pub fn find(&self, id: &str) -> Option<Entry> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return None;
        }
        self.entries().into_iter().find(|e| e.id == id)
    }
}

/// The run folder a checkpoint was written into (`RUN/checkpoints/latest.safetensors`), when it
/// looks like one.
fn run_of_checkpoint(path: &Path) -> Option<PathBuf> {
    let parent = path.parent()?;
    if parent.file_name()? != "checkpoints" {
        return None;
    }
    let run = parent.parent()?;
    is_run_dir(run).then(|| run.to_path_buf())
}

fn is_run_dir(dir: &Path) -> bool {
    dir.join("metrics.csv").is_file() || dir.join("samples").is_dir()
}

/// Names that are shown and used in ids as they are: no hidden folders, no odd characters.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+@".contains(c))
}

/// The sub-folders of `dir` that are runs (have a checkpoint, metrics or samples).
fn scan_runs(dir: &Path) -> Vec<Entry> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut runs: Vec<(String, PathBuf)> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, path)| plain_name(name) && path.is_dir())
        .take(MAX_RUNS)
        .collect();
    runs.sort();
    runs.into_iter()
        .filter_map(|(name, path)| {
            let ckpt = path.join("checkpoints").join("latest.safetensors");
            let source = ckpt.is_file().then_some(Source::File(ckpt));
            let run = is_run_dir(&path).then(|| path.clone());
            if source.is_none() && run.is_none() {
                return None;
            }
            Some(Entry::new(format!("run:{name}"), format!("{}/{name}", dir.display()), source, run))
        })
        .collect()
}
