//! IDX files (the MNIST format): a big-endian header, then raw unsigned bytes.
//!
//! Files may be gzipped; gzip is recognised by its `1f 8b` header rather than the file name,
//! so a renamed file still loads. Every error names the file it is about.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Magic of an IDX file of unsigned bytes with 3 dimensions (images N x H x W).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of unsigned bytes with 1 dimension (labels N).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Greyscale images read from an IDX file, row-major `count x height x width`.
#[derive(Debug, Clone)]
pub struct IdxImages {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

/// Reads a file and gunzips it if it starts with the gzip header.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    if let Ok(meta) = std::fs::metadata(path) {
        let what = format!("the IDX file {} ({})", path.display(), crate::limits::human(meta.len()));
        crate::limits::check_memory(meta.len().checked_mul(COPIES), &what, "use a smaller file")?;
    }
    let raw = crate::limits::read_file(path, MAX_BYTES).map_err(|e| Error::data(path, e))?;
    maybe_gunzip(raw, path)
}

/// Copies of an IDX file's data alive at once while it becomes a data set (the file's bytes, the
/// parsed images, the data set, and a resize's output).
const COPIES: u64 = 4;

/// Largest IDX file, before or after gunzipping.
const MAX_BYTES: u64 = crate::limits::MAX_IDX_BYTES;

/// Gunzips `raw` when it has the gzip header; `path` only names the source in errors.
///
/// A small gzip file can expand a thousandfold, so the IDX header is decompressed first and the
/// size it promises is checked against the cap and the memory budget before the body is read
/// into a buffer of exactly that size (no doubling growth, no reading past what is promised).
pub fn maybe_gunzip(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let corrupt = |e: std::io::Error| Error::data(path, format!("corrupt or truncated gzip data: {e}"));
    let mut dec = flate2::read::MultiGzDecoder::new(raw.as_slice());
    let mut magic = [0u8; 4];
    dec.read_exact(&mut magic).map_err(corrupt)?;
    let ndim = magic[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(Error::data(path, format!("not an IDX file: magic 0x{:08x} (1 to 4 dimensions expected)", u32::from_be_bytes(magic))));
    }
    let mut dims = vec![0u8; 4 * ndim];
    dec.read_exact(&mut dims).map_err(corrupt)?;
    let body = dims.chunks_exact(4).try_fold(1u64, |acc, d| acc.checked_mul(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64));
    let total = body.and_then(|b| b.checked_add(4 + 4 * ndim as u64)).filter(|&t| t <= MAX_BYTES);
    let what = format!("the IDX file {}", path.display());
    let Some(total) = total else {
        return Err(Error::data(
            path,
            format!("the IDX header promises more than {}, more than gannet reads for an IDX file", crate::limits::human(MAX_BYTES)),
        ));
    };
    crate::limits::check_memory(total.checked_mul(COPIES), &what, "use a smaller file")?;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&dims);
    // A body shorter than promised is reported by the parser ("truncated IDX file").
    dec.take(total - out.len() as u64).read_to_end(&mut out).map_err(corrupt)?;
    Ok(out)
}

/// Reads an IDX images file (magic 0x00000803).
pub fn read_images(path: &Path) -> Result<IdxImages> {
    parse_images(&read_maybe_gz(path)?, path)
}

/// Reads an IDX labels file (magic 0x00000801).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    parse_labels(&read_maybe_gz(path)?, path)
}

/// Parses the bytes of an (already gunzipped) IDX images file.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let dims = header(bytes, IMAGES_MAGIC, 3, path)?;
    let (count, height, width) = (dims[0], dims[1], dims[2]);
    if height == 0 || width == 0 {
        return Err(Error::data(path, format!("IDX images have zero size {height}x{width}")));
    }
    let pixels = body(bytes, 16, &dims, path)?;
    Ok(IdxImages { count, height, width, pixels })
}

/// Parses the bytes of an (already gunzipped) IDX labels file.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let dims = header(bytes, LABELS_MAGIC, 1, path)?;
    body(bytes, 8, &dims, path)
}

/// Checks the magic number and returns the dimension sizes.
fn header(bytes: &[u8], magic: u32, ndim: usize, path: &Path) -> Result<Vec<usize>> {
    let header_len = 4 + 4 * ndim;
    if bytes.len() < header_len {
        return Err(Error::data(path, format!("not an IDX file: {} bytes, shorter than the {header_len}-byte header", bytes.len())));
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(Error::data(path, format!("not an IDX file of the expected kind: magic 0x{found:08x}, expected 0x{magic:08x}")));
    }
    Ok((0..ndim).map(|d| be_u32(bytes, 4 + 4 * d) as usize).collect())
}

/// Returns exactly the data bytes the dimensions promise; a short file is an error
/// (it would otherwise silently yield fewer or shifted images).
fn body(bytes: &[u8], offset: usize, dims: &[usize], path: &Path) -> Result<Vec<u8>> {
    let need = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| Error::data(path, format!("IDX dimensions {dims:?} overflow")))?;
    let have = bytes.len() - offset;
    if have < need {
        return Err(Error::data(path, format!("truncated IDX file: dimensions {dims:?} need {need} data bytes, found {have}")));
    }
    Ok(bytes[offset..offset + need].to_vec())
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
