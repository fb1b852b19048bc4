//! Where the FID Inception weights come from, decided at run time, in this order:
//! 1. a file the user names (`gannet eval --inception FILE`, [`super::EvalOptions::inception_weights`]);
//! 2. `pt_inception-2015-12-05-nofc.pth` in [`super::models_dir`] (`$GANNET_MODELS`: the shared
//!    developer/CI copy; tests use it);
//! 3. pytorch-fid's release file `pt_inception-2015-12-05-6726825d.pth` in the cache folder
//!    (`$GANNET_CACHE`, else `~/.cache/gannet`, the folder of the cached reference features);
//! 4. that file downloaded from pytorch-fid's release ([`RELEASE_URL`], or `$GANNET_INCEPTION_URL`
//!    for a mirror) into the cache: streamed to a temporary file, its SHA-256 checked, then
//!    renamed into place, so the cache never holds a partial or foreign file.
//!
//! Both files hold the same network (TF's 2015-12-05 Inception in pytorch-fid's layout); the
//! release file adds the unused classifier (`fc.*`) and is in PyTorch's legacy format
//! ([`super::torch_legacy`]).

use super::support::{EvalObserver, WEIGHTS_FILE};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// pytorch-fid's release file name; the part after the last '-' starts its SHA-256 (torch.hub's
/// convention, which pytorch-fid's own download checks).
pub const RELEASE_FILE: &str = "pt_inception-2015-12-05-6726825d.pth";
/// Where pytorch-fid downloads it from (`pytorch_fid.inception.FID_WEIGHTS_URL`).
pub const RELEASE_URL: &str = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";
/// The release file's full SHA-256 (95,628,359 bytes), as published by several projects that pin
/// it; its first 8 hex digits are the ones in the file name.
pub const RELEASE_SHA256: &str = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2";
/// Environment variable that replaces [`RELEASE_URL`] (a mirror, or a local server in tests).
pub const URL_ENV: &str = "GANNET_INCEPTION_URL";
/// No real weights file is near this size; a server sending more is sending something else.
const MAX_BYTES: u64 = 512 << 20;

/// The places [`WeightsLookup::resolve`] tries, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsLookup {
    /// A file the user named: used as it is; missing is an error (no fallback to a download).
    pub explicit: Option<PathBuf>,
    /// The folder that may hold the shared `pt_inception-2015-12-05-nofc.pth`.
    pub models_dir: Option<PathBuf>,
    /// The folder that holds (or receives) the release file.
    pub cache_dir: PathBuf,
    /// Where the release file is downloaded from.
    pub url: String,
}

impl WeightsLookup {
    /// The lookup `gannet eval` makes: `explicit`, then [`super::models_dir`], then `cache_dir`
    /// and the download from `$GANNET_INCEPTION_URL` or [`RELEASE_URL`].
    pub fn from_env(explicit: Option<PathBuf>, cache_dir: PathBuf) -> Self {
        let url = std::env::var(URL_ENV).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| RELEASE_URL.to_string());
        Self { explicit, models_dir: Some(super::models_dir()), cache_dir, url }
    }

    /// The weights file to load: the first place that has one, else the downloaded release file.
    pub fn resolve(&self, obs: &mut dyn EvalObserver) -> Result<PathBuf> {
        if let Some(p) = &self.explicit {
            if p.is_file() {
                return Ok(p.clone());
            }
            return Err(Error::Config(format!("--inception {}: no such file", p.display())));
        }
        if let Some(p) = self.shared_file().filter(|p| p.is_file()) {
            return Ok(p);
        }
        let cached = self.cache_dir.join(RELEASE_FILE);
        if cached.is_file() {
            return Ok(cached);
        }
        eprintln!("FID Inception weights: downloading pytorch-fid's {RELEASE_FILE} (about 91 MiB, once) from {} to {}", self.url, cached.display());
        match download_verified(&self.url, &cached, RELEASE_SHA256, obs) {
            Ok(()) => Ok(cached),
            Err(DownloadError::Checksum { got }) => Err(Error::Msg(format!(
                "the file downloaded from {} is not pytorch-fid's {RELEASE_FILE}: its SHA-256 is {got}, expected \
                 {RELEASE_SHA256}; nothing was kept in {}. {}",
                self.url,
                self.cache_dir.display(),
                self.alternatives()
            ))),
            Err(DownloadError::Local(e)) => Err(e),
            Err(DownloadError::Network(why)) => Err(Error::Msg(format!(
                "the FID Inception weights are not on this machine and downloading them from {} failed ({why}). {}",
                self.url,
                self.alternatives()
            ))),
        }
    }

    fn shared_file(&self) -> Option<PathBuf> {
        self.models_dir.as_ref().map(|d| d.join(WEIGHTS_FILE))
    }

    /// What a user without the download can do instead.
    fn alternatives(&self) -> String {
        let looked = self.shared_file().map_or_else(String::new, |p| format!(" (looked for {})", p.display()));
        format!(
            "fid, kid and pr need these weights; any of these works:\n  \
             - pass --inception FILE (pytorch-fid's {RELEASE_FILE}, or a .pth/.safetensors with its tensor names);\n  \
             - set GANNET_MODELS to a folder holding {WEIGHTS_FILE}{looked};\n  \
             - download {RELEASE_URL} yourself into {}/ (or set {URL_ENV} to a mirror);\n  \
             - use --metrics cfid (classifier FID: no Inception network needed).",
            self.cache_dir.display()
        )
    }
}

/// Why a download did not produce the file.
#[derive(Debug)]
pub enum DownloadError {
    /// No connection, an HTTP error status, or the transfer broke off.
    Network(String),
    /// The bytes arrived but are not the expected file (hex SHA-256 of what arrived).
    Checksum { got: String },
    /// Writing the file here failed.
    Local(Error),
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownloadError::Network(m) => write!(f, "download failed: {m}"),
            DownloadError::Checksum { got } => write!(f, "downloaded file has SHA-256 {got}"),
            DownloadError::Local(e) => write!(f, "{e}"),
        }
    }
}

/// Downloads `url` to `dest` if the SHA-256 (lower-case hex) of the bytes starts with
/// `sha256_prefix` (a full hash, or torch.hub's 8-digit prefix). The bytes go to a temporary
/// file beside `dest`, renamed into place only once verified; on any failure nothing is left.
/// Progress goes to `obs` in MiB.
pub fn download_verified(url: &str, dest: &Path, sha256_prefix: &str, obs: &mut dyn EvalObserver) -> std::result::Result<(), DownloadError> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DownloadError::Local(Error::io(format!("creating the cache folder {}", dir.display()), e)))?;
    let name = dest.file_name().map_or_else(|| "download".into(), |n| n.to_string_lossy().into_owned());
    let tmp = TempFile(dir.join(format!(".{name}.part-{}", std::process::id())));
    let got = fetch(url, &tmp.0, &name, obs)?;
    if !got.starts_with(&sha256_prefix.to_ascii_lowercase()) {
        return Err(DownloadError::Checksum { got });
    }
    std::fs::rename(&tmp.0, dest).map_err(|e| DownloadError::Local(Error::io(format!("renaming {} to {}", tmp.0.display(), dest.display()), e)))?;
    Ok(())
}

/// A path removed when dropped (if it still exists): the partial download on every early return.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams `url` into `path`, hashing as it goes; returns the hex SHA-256.
fn fetch(url: &str, path: &Path, name: &str, obs: &mut dyn EvalObserver) -> std::result::Result<String, DownloadError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled transfer fails instead of hanging; a slow one still finishes.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| DownloadError::Network(e.to_string()))?;
    let total = response.body().content_length();
    let mut body = response.into_body().into_with_config().limit(MAX_BYTES).reader();
    let local = |e: std::io::Error| DownloadError::Local(Error::io(format!("writing {}", path.display()), e));
    let mut file = std::fs::File::create(path).map_err(local)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut reported) = (0u64, 0u64);
    obs.stage(&format!("downloading {name} (MiB)"), total.map_or(0, |t| t.div_ceil(1 << 20)) as usize);
    loop {
        let n = body.read(&mut buf).map_err(|e| DownloadError::Network(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(local)?;
        done += n as u64;
        let mib = done >> 20;
        obs.advance((mib - reported) as usize);
        reported = mib;
    }
    file.sync_all().map_err(local)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
