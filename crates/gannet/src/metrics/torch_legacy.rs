//! Tensors of a state dict that `torch.save` wrote in PyTorch's legacy format (the default before
//! PyTorch 1.6, later `_use_new_zipfile_serialization=False`). pytorch-fid's release weights
//! `pt_inception-2015-12-05-6726825d.pth` date from then, and candle's `.pth` reader only knows
//! the zip format.
//!
//! The layout (torch/serialization.py, `_legacy_save`): five pickles in a row, then the raw
//! storages.
//! 1. the magic number 0x1950a86a20f9469cfc6c; 2. the format version 1001; 3. system info (byte
//!    order, type sizes);
//! 4. the object: here a dict whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset,
//!    size, stride, ...)` calls, each storage a persistent id
//!    `('storage', torch.FloatStorage, key, location, numel, view)`;
//! 5. the storage keys in the order their data follows; then per key an i64 element count and
//!    the elements (little-endian).
//!
//! The pickles are read with candle's pickle machine, which knows the opcodes torch writes at
//! pickle protocol 2, except the magic number (a 10-byte integer it cannot hold), which is
//! compared byte for byte. Files written with another pickle protocol are refused.

use crate::{Error, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

/// `pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)`: how every legacy file starts.
const MAGIC: [u8; 15] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
/// The only legacy format version there is.
const FORMAT_VERSION: i64 = 1001;

/// Whether `head` (the first bytes of a file) starts like a legacy `torch.save` file.
pub fn is_legacy(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// The tensors of the legacy `.pth` file `path` (a state dict) by name. Entries that are not
/// tensors (e.g. `_metadata`) and tensors of types candle lacks (complex, int8, int16) are
/// skipped.
pub fn read_all(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = crate::limits::read_file(path, 4 << 30).map_err(|e| Error::checkpoint(path, e))?;
    read_bytes(&bytes).map_err(|m| Error::checkpoint(path, format!("legacy PyTorch file: {m}")))
}

/// [`read_all`] on the file's bytes; errors are plain messages, for the caller to place.
pub fn read_bytes(bytes: &[u8]) -> std::result::Result<Vec<(String, Tensor)>, String> {
    if !is_legacy(bytes) {
        return Err("does not start with torch's legacy magic number at pickle protocol 2".into());
    }
    let mut r = Cursor::new(bytes);
    r.set_position(MAGIC.len() as u64);
    match unpickle(&mut r, "format version")? {
        Object::Int(v) if v as i64 == FORMAT_VERSION => {}
        other => return Err(format!("unknown format version {other:?} (want {FORMAT_VERSION})")),
    }
    check_little_endian(unpickle(&mut r, "system info")?)?;
    let refs = tensor_refs(unpickle(&mut r, "state dict")?)?;
    let keys = storage_keys(unpickle(&mut r, "storage keys")?)?;
    let storages = storage_spans(&mut r, &keys, &refs)?;
    refs.iter().filter_map(|t| Some((t, t.storage.kind.dtype?))).map(|(t, dtype)| Ok((t.name.clone(), t.build(bytes, &storages, dtype)?))).collect()
}

fn unpickle(r: &mut Cursor<&[u8]>, what: &str) -> std::result::Result<Object, String> {
    let mut stack = Stack::empty();
    stack.read_loop(r).and_then(|_| stack.finalize()).map_err(|e| format!("reading the {what} pickle: {e}"))
}

fn check_little_endian(info: Object) -> std::result::Result<(), String> {
    let Object::Dict(entries) = info else { return Err(format!("system info is not a dict: {info:?}")) };
    let little = entries.iter().find(|(k, _)| *k == Object::Unicode("little_endian".into())).map(|(_, v)| v);
    match little {
        Some(Object::Bool(true)) => Ok(()),
        _ => Err("written on a big-endian machine; only little-endian files are read".into()),
    }
}

/// Element size and candle type of a torch storage class (`FloatStorage`, ...). Types candle
/// cannot hold keep their size, so that their data can be stepped over.
#[derive(Debug, Clone, Copy)]
struct StorageKind {
    size: usize,
    dtype: Option<DType>,
}

fn storage_kind(class: &str) -> Option<StorageKind> {
    let (size, dtype) = match class {
        "FloatStorage" => (4, Some(DType::F32)),
        "DoubleStorage" => (8, Some(DType::F64)),
        "HalfStorage" => (2, Some(DType::F16)),
        "BFloat16Storage" => (2, Some(DType::BF16)),
        "LongStorage" => (8, Some(DType::I64)),
        "IntStorage" => (4, Some(DType::I32)),
        "ByteStorage" | "BoolStorage" => (1, Some(DType::U8)),
        "ShortStorage" => (2, None),
        "CharStorage" => (1, None),
        "ComplexFloatStorage" => (8, None),
        "ComplexDoubleStorage" => (16, None),
        _ => return None,
    };
    Some(StorageKind { size, dtype })
}

struct StorageRef {
    key: String,
    kind: StorageKind,
}

/// One tensor of the dict: where its elements are in which storage.
struct TensorRef {
    name: String,
    storage: StorageRef,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// The tensors of the top-level dict, in file order.
fn tensor_refs(obj: Object) -> std::result::Result<Vec<TensorRef>, String> {
    let Object::Dict(entries) = obj else { return Err("the saved object is not a dict (a state dict is expected)".into()) };
    let mut out = Vec::new();
    for (key, value) in entries {
        let Object::Unicode(name) = key else { continue };
        if let Some(args) = rebuild_args(value) {
            out.push(tensor_ref(name, args)?);
        }
    }
    Ok(out)
}

/// The arguments of `_rebuild_tensor_v2` (also inside `_rebuild_parameter`); None for a value
/// that is not a tensor.
fn rebuild_args(value: Object) -> Option<Vec<Object>> {
    let Object::Reduce { callable, args } = value else { return None };
    let Object::Class { module_name, class_name } = *callable else { return None };
    let Object::Tuple(mut args) = *args else { return None };
    match (module_name.as_str(), class_name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2") => Some(args),
        ("torch._utils", "_rebuild_parameter") if !args.is_empty() => rebuild_args(args.swap_remove(0)),
        _ => None,
    }
}

fn tensor_ref(name: String, args: Vec<Object>) -> std::result::Result<TensorRef, String> {
    let bad = |what: &str| format!("tensor `{name}`: unexpected {what}");
    let mut args = args.into_iter();
    let (Some(storage), Some(offset), Some(shape), Some(stride)) = (args.next(), args.next(), args.next(), args.next()) else {
        return Err(bad("arguments of _rebuild_tensor_v2"));
    };
    let Object::PersistentLoad(id) = storage else { return Err(bad("storage")) };
    let storage = storage_ref(*id).map_err(|m| format!("tensor `{name}`: {m}"))?;
    let offset = usize_of(&offset).ok_or_else(|| bad("storage offset"))?;
    let shape = usizes(&shape).ok_or_else(|| bad("size"))?;
    let stride = usizes(&stride).ok_or_else(|| bad("stride"))?;
    if shape.len() != stride.len() {
        return Err(bad("stride rank"));
    }
    Ok(TensorRef { name, storage, offset, shape, stride })
}

/// `('storage', torch.FloatStorage, key, location, numel, view_metadata)`.
fn storage_ref(id: Object) -> std::result::Result<StorageRef, String> {
    let Object::Tuple(parts) = id else { return Err(format!("storage id is not a tuple: {id:?}")) };
    match parts.as_slice() {
        [Object::Unicode(tag), Object::Class { class_name, .. }, Object::Unicode(key), _, _, view] if tag == "storage" => {
            // Storage views (a storage inside another) existed only in PyTorch < 1.0 files.
            if *view != Object::None {
                return Err("storage views (PyTorch < 1.0 files) are not supported".into());
            }
            let kind = storage_kind(class_name).ok_or_else(|| format!("unknown storage type {class_name}"))?;
            Ok(StorageRef { key: key.clone(), kind })
        }
        _ => Err(format!("unexpected storage id {parts:?}")),
    }
}

fn usize_of(o: &Object) -> Option<usize> {
    match o {
        Object::Int(v) => usize::try_from(*v).ok(),
        Object::Long(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

fn usizes(o: &Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(v) => v.iter().map(usize_of).collect(),
        _ => None,
    }
}

fn storage_keys(obj: Object) -> std::result::Result<Vec<String>, String> {
    let Object::List(items) = obj else { return Err(format!("storage keys are not a list: {obj:?}")) };
    items
        .into_iter()
        .map(|k| match k {
            Object::Unicode(s) => Ok(s),
            other => Err(format!("storage key {other:?} is not a string")),
        })
        .collect()
}

/// Where each storage's elements lie in the file: (first byte, element count).
type Spans = HashMap<String, (usize, usize)>;

/// Steps over the storages after the pickles, recording their byte ranges.
fn storage_spans(r: &mut Cursor<&[u8]>, keys: &[String], refs: &[TensorRef]) -> std::result::Result<Spans, String> {
    let kinds: HashMap<&str, StorageKind> = refs.iter().map(|t| (t.storage.key.as_str(), t.storage.kind)).collect();
    let len = r.get_ref().len();
    let mut spans = HashMap::new();
    for key in keys {
        // Every storage the file holds belongs to a tensor of the dict; without its type the
        // data of the ones after it could not be found.
        let kind = kinds.get(key.as_str()).ok_or_else(|| format!("storage {key} belongs to no tensor of the dict"))?;
        let mut n = [0u8; 8];
        r.read_exact(&mut n).map_err(|_| format!("the file ends before storage {key} (truncated?)"))?;
        let numel = usize::try_from(i64::from_le_bytes(n)).map_err(|_| format!("storage {key}: negative size"))?;
        let start = r.position() as usize;
        let end = numel.checked_mul(kind.size).and_then(|b| b.checked_add(start)).filter(|&e| e <= len);
        let end = end.ok_or_else(|| format!("storage {key} ({numel} elements) runs past the end of the file (truncated?)"))?;
        spans.insert(key.clone(), (start, numel));
        r.set_position(end as u64);
    }
    Ok(spans)
}

impl TensorRef {
    /// Copies the tensor's elements out of its storage (any strides) into a CPU tensor.
    fn build(&self, bytes: &[u8], spans: &Spans, dtype: DType) -> std::result::Result<Tensor, String> {
        let &(start, numel) = spans.get(&self.storage.key).ok_or_else(|| format!("tensor `{}`: its storage is missing", self.name))?;
        let size = self.storage.kind.size;
        let count: usize = self.shape.iter().product();
        let last = self.offset + self.shape.iter().zip(&self.stride).map(|(&n, &s)| n.saturating_sub(1) * s).sum::<usize>();
        if count > 0 && last >= numel {
            return Err(format!("tensor `{}` reaches element {last} of a storage of {numel}", self.name));
        }
        let storage = &bytes[start..start + numel * size];
        let data = if is_contiguous(&self.shape, &self.stride) {
            storage[self.offset * size..(self.offset + count) * size].to_vec()
        } else {
            gather(storage, size, self.offset, &self.shape, &self.stride)
        };
        Tensor::from_raw_buffer(&data, dtype, &self.shape, &Device::Cpu).map_err(|e| format!("tensor `{}`: {e}", self.name))
    }
}

/// Row-major without gaps (dimensions of size 1 may have any stride).
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    let mut want = 1;
    for (&n, &s) in shape.iter().zip(stride).rev() {
        if n != 1 && s != want {
            return false;
        }
        want *= n;
    }
    true
}

/// The elements of a strided view, in row-major order of `shape`.
fn gather(storage: &[u8], size: usize, offset: usize, shape: &[usize], stride: &[usize]) -> Vec<u8> {
    let count: usize = shape.iter().product();
    let mut out = Vec::with_capacity(count * size);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..count {
        let at = offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(&storage[at * size..(at + 1) * size]);
        // Odometer step: the last dimension fastest.
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}
