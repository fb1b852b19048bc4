//! Atomic, verified checkpoints.
//!
//! A checkpoint is one safetensors file: named tensors plus string metadata. gannet adds
//! `gannet_format` (a version), `crc32` (of the data region, every byte after the 8-byte length
//! and the JSON header) and `header_crc32` (of the header's content: tensor names, dtypes,
//! shapes, offsets and the other metadata), so a truncated file or any flipped byte is reported
//! instead of silently loading wrong weights. Files are written to a temp file and renamed over
//! the target, so a crash leaves the previous checkpoint intact.

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorInfo, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

pub mod record;

/// Version written by this build; files with a larger number are refused.
pub const FORMAT_VERSION: u32 = 1;
const KEY_FORMAT: &str = "gannet_format";
const KEY_CRC: &str = "crc32";
const KEY_HEADER_CRC: &str = "header_crc32";
/// Bytes of the little-endian header length that starts every safetensors file.
const LEN_BYTES: usize = 8;

/// A tensor already copied to host bytes, so serialising twice copies no device memory twice.
struct HostTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn le_bytes<T: candle_core::WithDType, const N: usize>(t: &Tensor, f: fn(T) -> [u8; N]) -> crate::Result<Vec<u8>> {
    Ok(t.flatten_all()?.to_vec1::<T>()?.into_iter().flat_map(f).collect())
}

fn to_host(name: &str, t: &Tensor) -> crate::Result<HostTensor> {
    let bytes = match t.dtype() {
        DType::U8 => t.flatten_all()?.to_vec1::<u8>()?,
        DType::U32 => le_bytes::<u32, 4>(t, u32::to_le_bytes)?,
        DType::I64 => le_bytes::<i64, 8>(t, i64::to_le_bytes)?,
        DType::F32 => le_bytes::<f32, 4>(t, f32::to_le_bytes)?,
        DType::F64 => le_bytes::<f64, 8>(t, f64::to_le_bytes)?,
        other => return Err(crate::Error::Msg(format!("checkpoint: tensor '{name}' has unsupported dtype {other:?}"))),
    };
    Ok(HostTensor { dtype: t.dtype().into(), shape: t.dims().to_vec(), bytes })
}

/// CRC of the header's meaning (not its bytes, whose key order is unspecified): every tensor's
/// name, dtype, shape and offsets in name order, then the metadata except this CRC itself.
fn header_crc(tensors: &HashMap<String, &TensorInfo>, metadata: &HashMap<String, String>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let sorted: BTreeMap<_, _> = tensors.iter().collect();
    for (name, info) in sorted {
        let line = format!("{name}\0{:?}\0{:?}\0{:?}\n", info.dtype, info.shape, info.data_offsets);
        h.update(line.as_bytes());
    }
    let meta: BTreeMap<_, _> = metadata.iter().filter(|(k, _)| k.as_str() != KEY_HEADER_CRC).collect();
    for (k, v) in meta {
        h.update(format!("{k}\0{v}\n").as_bytes());
    }
    h.finalize()
}

fn data_region(bytes: &[u8]) -> &[u8] {
    let n = u64::from_le_bytes(bytes[..LEN_BYTES].try_into().expect("8 bytes")) as usize;
    &bytes[LEN_BYTES + n..]
}

/// Serialises to bytes with the gannet metadata (format, data CRC, header CRC) filled in.
fn encode(path: &Path, tensors: &BTreeMap<String, Tensor>, metadata: &BTreeMap<String, String>) -> crate::Result<Vec<u8>> {
    let host = tensors.iter().map(|(k, t)| Ok((k.clone(), to_host(k, t)?))).collect::<crate::Result<Vec<_>>>()?;
    let st_err = |e: SafeTensorError| crate::Error::checkpoint(path, format!("cannot serialise: {e}"));
    let mut meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    meta.insert(KEY_FORMAT.into(), FORMAT_VERSION.to_string());
    let views = || host.iter().map(|(k, t)| (k.as_str(), t));
    // The data region does not depend on the metadata, so hash it from a first serialisation.
    let first = safetensors::serialize(views(), Some(meta.clone())).map_err(st_err)?;
    meta.insert(KEY_CRC.into(), format!("{:08x}", crc32fast::hash(data_region(&first))));
    let parsed = SafeTensors::read_metadata(&first).map_err(st_err)?.1;
    meta.insert(KEY_HEADER_CRC.into(), format!("{:08x}", header_crc(&parsed.tensors(), &meta)));
    safetensors::serialize(views(), Some(meta)).map_err(st_err)
}

/// Writes `tensors` and `metadata` to `path` atomically (see [`write_atomic`]).
pub fn save(path: &Path, tensors: &BTreeMap<String, Tensor>, metadata: &BTreeMap<String, String>) -> crate::Result<()> {
    for key in [KEY_FORMAT, KEY_CRC, KEY_HEADER_CRC] {
        if metadata.contains_key(key) {
            return Err(crate::Error::checkpoint(path, format!("metadata key '{key}' is reserved")));
        }
    }
    write_atomic(path, &encode(path, tensors, metadata)?)
}

/// What [`write_atomic`]'s temp files (`.NAME.tmp-PID`) carry in their names.
const TEMP_MARK: &str = ".tmp-";

/// Whether a file name is one of [`write_atomic`]'s temp files, left behind when a process was
/// killed mid-write.
pub fn is_temp_file(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARK)
}

/// Replaces `path` with `bytes` so that a reader sees either the old or the new file, never a
/// partial one: write a temp file in the same directory, fsync it, rename it over the target,
/// then fsync the directory so the rename itself survives a power cut.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let name = path.file_name().ok_or_else(|| crate::Error::checkpoint(path, "path has no file name"))?.to_string_lossy();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(format!(".{name}{TEMP_MARK}{}", std::process::id()));
    let result = write_and_sync(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| crate::Error::io(format!("renaming {} to {}", tmp.display(), path.display()), e)));
    if result.is_err() {
        // Best effort: a failed write must not leave litter; the target was never touched.
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_dir(&dir);
    Ok(())
}

fn write_and_sync(tmp: &Path, bytes: &[u8]) -> crate::Result<()> {
    let ctx = || format!("writing {}", tmp.display());
    let mut f = std::fs::File::create(tmp).map_err(|e| crate::Error::io(ctx(), e))?;
    f.write_all(bytes).map_err(|e| crate::Error::io(ctx(), e))?;
    f.sync_all().map_err(|e| crate::Error::io(ctx(), e))
}

/// Not every platform can open or fsync a directory; the rename is already done then.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The metadata key naming what wrote a checkpoint (`train`, `i2i`, ...).
pub const META_KIND: &str = "gannet_kind";

/// The kind a checkpoint's metadata names, without loading its tensors (only the header is
/// read); `None` when the file cannot be read or is not a gannet checkpoint.
pub fn kind(path: &Path) -> Option<String> {
    metadata(path).ok()?.remove(META_KIND)
}

/// A checkpoint's string metadata, read from its header alone (no tensors are loaded, nothing
/// is verified): for telling what a file is before deciding to load it.
pub fn metadata(path: &Path) -> std::io::Result<HashMap<String, String>> {
    let header = read_header(path)?;
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut parsed: HashMap<String, serde_json::Value> = serde_json::from_slice(&header).map_err(|e| bad(e.to_string()))?;
    let meta = parsed.remove("__metadata__").ok_or_else(|| bad("no metadata".into()))?;
    serde_json::from_value(meta).map_err(|e| bad(e.to_string()))
}

/// The JSON header of a safetensors file, read without its data region.
fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    if !std::fs::metadata(path)?.is_file() {
        return Err(bad("not a regular file"));
    }
    let mut f = std::fs::File::open(path)?;
    let mut len = [0u8; LEN_BYTES];
    f.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return Err(bad("header too large"));
    }
    let mut header = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut header)?;
    Ok(header)
}

/// Largest safetensors header accepted (gannet's are a few hundred kilobytes at most).
const MAX_HEADER_BYTES: u64 = 100_000_000;
/// Largest checkpoint file read (the memory budget applies as well).
pub const MAX_CHECKPOINT_BYTES: u64 = 64 << 30;

/// Reads and verifies a checkpoint; every failure is a checkpoint error naming `path`.
pub fn load(path: &Path, device: &Device) -> crate::Result<(BTreeMap<String, Tensor>, BTreeMap<String, String>)> {
    let err = |m: String| crate::Error::checkpoint(path, m);
    // The bytes and the tensors made from them are in memory together.
    if let Ok(meta) = std::fs::metadata(path) {
        let what = format!("loading the checkpoint {} ({})", path.display(), crate::limits::human(meta.len()));
        crate::limits::check_memory(meta.len().checked_mul(2), &what, "load it on a machine with more memory")?;
    }
    let bytes = crate::limits::read_file(path, MAX_CHECKPOINT_BYTES).map_err(err)?;
    load_bytes(&bytes, path, device)
}

/// [`load`] of a checkpoint already in memory (e.g. embedded with `include_bytes!`); `path`
/// only names it in errors.
pub fn load_bytes(bytes: &[u8], path: &Path, device: &Device) -> crate::Result<(BTreeMap<String, Tensor>, BTreeMap<String, String>)> {
    let err = |m: String| crate::Error::checkpoint(path, m);
    check_framing(bytes).map_err(err)?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| err(describe(e)))?;
    let (_, parsed) = SafeTensors::read_metadata(bytes).map_err(|e| err(describe(e)))?;
    let meta = parsed.metadata().clone().ok_or_else(|| err("missing metadata: not a gannet checkpoint".into()))?;
    verify(bytes, &parsed.tensors(), &meta).map_err(err)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let t = candle_core::safetensors::Load::load(&view, device).map_err(|e| err(format!("cannot load tensor '{name}': {e}")))?;
        check_finite(&name, &t).map_err(err)?;
        tensors.insert(name, t);
    }
    Ok((tensors, meta.into_iter().collect()))
}

/// Refuses a tensor holding NaN or infinity: weights like that draw blank images and score
/// finite-looking metrics, so loading them would be silently wrong. The checksums cannot catch
/// them (a diverged run writes them faithfully).
fn check_finite(name: &str, t: &Tensor) -> Result<(), String> {
    let bad = match t.dtype() {
        DType::F32 => t.flatten_all().and_then(|f| f.to_vec1::<f32>()).map(|v| v.iter().filter(|x| !x.is_finite()).count()),
        DType::F64 => t.flatten_all().and_then(|f| f.to_vec1::<f64>()).map(|v| v.iter().filter(|x| !x.is_finite()).count()),
        _ => Ok(0),
    }
    .map_err(|e| format!("cannot read tensor '{name}': {e}"))?;
    if bad > 0 {
        return Err(format!(
            "tensor '{name}' holds {bad} NaN or infinite values of {}: the run had diverged when this checkpoint was \
             written; use an earlier checkpoint, or retrain with the divergence guard ([guard]) on",
            t.elem_count()
        ));
    }
    Ok(())
}

/// Length checks that give a clearer message than the parser for short or foreign files.
fn check_framing(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < LEN_BYTES {
        return Err(format!("not a safetensors checkpoint: only {} bytes (truncated or empty)", bytes.len()));
    }
    let n = u64::from_le_bytes(bytes[..LEN_BYTES].try_into().expect("8 bytes"));
    if n > 100_000_000 || bytes.get(LEN_BYTES) != Some(&b'{') {
        return Err("not a safetensors checkpoint: the file does not start with a safetensors header".into());
    }
    if LEN_BYTES as u64 + n > bytes.len() as u64 {
        return Err(format!("truncated: the header claims {n} bytes but the file has {}", bytes.len()));
    }
    Ok(())
}

fn describe(e: SafeTensorError) -> String {
    match e {
        SafeTensorError::MetadataIncompleteBuffer => "truncated or corrupted: the data region does not match the sizes in the header".into(),
        e => format!("checkpoint is corrupted: unreadable safetensors header ({e})"),
    }
}

/// Checks the format version and both CRCs.
fn verify(bytes: &[u8], tensors: &HashMap<String, &TensorInfo>, meta: &HashMap<String, String>) -> Result<(), String> {
    let get = |k: &str| meta.get(k).ok_or_else(|| format!("missing metadata '{k}': not a gannet checkpoint"));
    let version: u32 = get(KEY_FORMAT)?.parse().map_err(|_| format!("checkpoint is corrupted: bad '{KEY_FORMAT}' value {:?}", meta[KEY_FORMAT]))?;
    if version > FORMAT_VERSION {
        return Err(format!("written by a newer gannet (format {version}; this build reads up to {FORMAT_VERSION}): upgrade gannet"));
    }
    let header = format!("{:08x}", header_crc(tensors, meta));
    if get(KEY_HEADER_CRC)? != &header {
        return Err(format!("checkpoint is corrupted: checksum mismatch in the header (stored {}, computed {header})", meta[KEY_HEADER_CRC]));
    }
    let data = format!("{:08x}", crc32fast::hash(data_region(bytes)));
    if get(KEY_CRC)? != &data {
        return Err(format!("checkpoint is corrupted: checksum mismatch (stored {}, computed {data})", meta[KEY_CRC]));
    }
    Ok(())
}

/// `name` -> `prefix.name`, to store several models' tensors in one file.
pub fn prefixed(prefix: &str, map: BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    map.into_iter().map(|(k, t)| (format!("{prefix}.{k}"), t)).collect()
}

/// The entries under `prefix.`, with the prefix removed.
pub fn strip_prefix(prefix: &str, map: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    let p = format!("{prefix}.");
    map.iter().filter_map(|(k, t)| k.strip_prefix(&p).map(|rest| (rest.to_string(), t.clone()))).collect()
}
