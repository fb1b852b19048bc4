//! Bounds on what user input may make gannet allocate or read.
//!
//! Every size that comes from outside (a config, a flag, a checkpoint's metadata, a file) is
//! checked here before gannet allocates for it, so an impossible request is an error that names
//! the setting and the fix instead of an abort ("memory allocation of ... bytes failed") or a
//! machine brought to a halt.
//!
//! The memory budget is, in order: [`set_max_memory`] (the CLI's `--max-memory`), the
//! `GANNET_MAX_MEMORY` environment variable, the memory the OS reports as available
//! (`MemAvailable` in /proc/meminfo), or 8 GiB where the OS says nothing.

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest square image side a model, a data set or an evaluation may use.
pub const MAX_RESOLUTION: usize = 4096;
/// Largest latent width, channel width or hidden width of a model.
pub const MAX_WIDTH: usize = 16384;
/// Most classes a conditional model may have.
pub const MAX_CLASSES: usize = 100_000;
/// Largest config file read (a config is a few kilobytes).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest single image file read from a data folder.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;
/// Largest decoded image (width x height pixels) accepted from a file.
pub const MAX_IMAGE_PIXELS: u64 = 40 << 20;
/// Largest IDX file after gunzipping (MNIST's training images are 47 MB).
pub const MAX_IDX_BYTES: u64 = 8 << 30;
/// Fallback budget when the OS does not say how much memory is available.
const FALLBACK_BUDGET: u64 = 8 << 30;

/// 0 = not set.
static MAX_MEMORY: AtomicU64 = AtomicU64::new(0);

/// Caps the memory gannet plans for (the CLI's `--max-memory`), overriding `GANNET_MAX_MEMORY`
/// and the OS's figure. 0 removes the cap.
pub fn set_max_memory(bytes: u64) {
    MAX_MEMORY.store(bytes, Ordering::Relaxed);
}

/// How much memory a request may plan for, and where that figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub source: &'static str,
}

/// The memory budget now (see the module docs for the order of sources).
pub fn budget() -> Budget {
    let set = MAX_MEMORY.load(Ordering::Relaxed);
    if set > 0 {
        return Budget { bytes: set, source: "--max-memory" };
    }
    if let Some(b) = std::env::var("GANNET_MAX_MEMORY").ok().and_then(|s| parse_size(&s).ok()) {
        return Budget { bytes: b, source: "GANNET_MAX_MEMORY" };
    }
    match available_memory() {
        Some(b) => Budget { bytes: b, source: "memory available on this machine" },
        None => Budget { bytes: FALLBACK_BUDGET, source: "default budget (the OS did not say how much memory is free)" },
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes (Linux only).
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Parses a size such as `4G`, `512M`, `1.5GiB` or `1000000` (bytes). Units are powers of 1024.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("'{text}' is not a size: use e.g. 4G, 512M or a number of bytes"))?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (use K, M, G or T)")),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{text}' is not a usable size"));
    }
    Ok(bytes as u64)
}

/// `bytes` for people: "3.2 GiB".
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Fails when `need` bytes (None: more than a u64 holds) exceed the budget. `what` says what
/// needs the memory, `fix` which setting to change.
pub fn check_memory(need: Option<u64>, what: &str, fix: &str) -> Result<()> {
    let b = budget();
    match need {
        Some(n) if n <= b.bytes => Ok(()),
        _ => {
            let need = need.map_or_else(|| "more memory than a 64-bit machine has".to_string(), human);
            Err(Error::Config(format!(
                "{what} needs about {need}, but the budget is {} ({}): {fix}, or raise the budget with --max-memory \
                 (or GANNET_MAX_MEMORY) if the machine really has that much",
                human(b.bytes),
                b.source
            )))
        }
    }
}

/// The product of `factors`, or None on overflow.
pub fn product(factors: &[usize]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f as u64))
}

/// Reads a regular file of at most `max_bytes` (a FIFO, a device such as /dev/zero or a folder
/// is refused at once, instead of hanging or reading forever). The error is a sentence without
/// the path: callers wrap it in their own error, which names the file.
pub fn read_file(path: &Path, max_bytes: u64) -> std::result::Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_string(),
        _ => format!("cannot read: {e}"),
    })?;
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a folder" } else { "not a regular file (a pipe, socket or device)" };
        return Err(format!("cannot read: this is {kind}"));
    }
    if meta.len() > max_bytes {
        return Err(format!("the file is {}, more than the {} gannet reads for this kind of file", human(meta.len()), human(max_bytes)));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take`: the file may grow between the size check and the read.
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("the file grew past the {} gannet reads for this kind of file", human(max_bytes)));
    }
    Ok(bytes)
}

/// [`read_file`] of a UTF-8 text file.
pub fn read_text(path: &Path, max_bytes: u64) -> std::result::Result<String, String> {
    String::from_utf8(read_file(path, max_bytes)?).map_err(|_| "the file is not UTF-8 text".to_string())
}

/// Checks a square image side read from a config, a flag or a file.
pub fn check_resolution(resolution: usize, setting: &str) -> Result<()> {
    if resolution == 0 || resolution > MAX_RESOLUTION {
        return Err(Error::Config(format!("{setting} must be between 1 and {MAX_RESOLUTION}, got {resolution}")));
    }
    Ok(())
}

/// Checks a width (latent, channels, hidden units) read from a config, a flag or a checkpoint.
pub fn check_width(value: usize, setting: &str) -> Result<()> {
    if value == 0 || value > MAX_WIDTH {
        return Err(Error::Config(format!("{setting} must be between 1 and {MAX_WIDTH}, got {value}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "G", "4X", "-1G", "0", "1e999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn special_files_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_file(Path::new("/dev/zero"), 1 << 20).unwrap_err().contains("not a regular file"));
        assert!(read_file(dir.path(), 1 << 20).unwrap_err().contains("folder"));
        let f = dir.path().join("x");
        std::fs::write(&f, vec![7u8; 100]).unwrap();
        assert_eq!(read_file(&f, 100).unwrap().len(), 100);
        assert!(read_file(&f, 99).unwrap_err().contains("more than"));
    }

    #[test]
    fn the_budget_refuses_what_it_cannot_hold() {
        assert!(check_memory(Some(1), "one byte", "fix").is_ok());
        let e = check_memory(None, "a huge model", "use a smaller model").unwrap_err().to_string();
        assert!(e.contains("a huge model") && e.contains("use a smaller model") && e.contains("--max-memory"), "{e}");
        assert_eq!(product(&[usize::MAX, 3]), None);
    }
}
