//! What the evaluation (`evaluate`), the Inception network (`inception`) and its weights lookup
//! (`inception_weights`) share: progress reports, the cache folder and the shared weights file's
//! name. A module below all three, so that none of them imports another that imports it back.

use std::path::PathBuf;

/// Progress reports of long stages (embedding images, generating); every method is optional.
pub trait EvalObserver {
    /// A stage of `total` units (images) starts.
    fn stage(&mut self, _name: &str, _total: usize) {}
    /// `n` more units of the current stage are done.
    fn advance(&mut self, _n: usize) {}
    /// Something worth telling the user (e.g. that cached features were used).
    fn note(&mut self, _message: &str) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl EvalObserver for Silent {}

/// File name of the shared weights (see `shared/models/README.md`); pytorch-fid's release file
/// is `inception_weights::RELEASE_FILE`.
pub const WEIGHTS_FILE: &str = "pt_inception-2015-12-05-nofc.pth";

/// The cache of reference features: `$GANNET_CACHE`, else `$XDG_CACHE_HOME/gannet`, else
/// `~/.cache/gannet`, else `.gannet-cache` in the current folder.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = env("GANNET_CACHE") {
        return d;
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return d.join("gannet");
    }
    match env("HOME") {
        Some(h) => h.join(".cache").join("gannet"),
        None => PathBuf::from(".gannet-cache"),
    }
}
