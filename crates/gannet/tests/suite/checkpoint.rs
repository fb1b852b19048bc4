//! Checkpoint roundtrip, corruption detection with clear errors, and atomic replacement.

use candle_core::{DType, Device, Tensor};
use gannet::checkpoint::{self, load, save};
use std::collections::BTreeMap;
use std::path::Path;

fn sample_tensors() -> BTreeMap<String, Tensor> {
    let dev = Device::Cpu;
    let mut m = BTreeMap::new();
    m.insert("gen.weight".to_string(), Tensor::new(&[[1.5f32, -2.0, 0.25], [3.0, 4.0, -0.5]], &dev).unwrap());
    m.insert("data.labels".to_string(), Tensor::new(&[7u32, 0, 4_000_000_000, 1], &dev).unwrap());
    m.insert("opt.step".to_string(), Tensor::new(123456789.0f64, &dev).unwrap());
    m
}

fn sample_meta() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("epoch".to_string(), "3".to_string());
    m.insert("config".to_string(), "loss = \"hinge\"".to_string());
    m
}

fn write_sample(path: &Path) {
    save(path, &sample_tensors(), &sample_meta()).unwrap();
}

fn load_err(path: &Path) -> String {
    let msg = load(path, &Device::Cpu).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "error should name the path: {msg}");
    msg
}

/// Length of the JSON header, i.e. the data region starts at 8 + this.
fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn roundtrip_keeps_values_dtypes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/ck.safetensors");
    write_sample(&path);
    let (tensors, meta) = load(&path, &Device::Cpu).unwrap();
    let want = sample_tensors();
    assert_eq!(tensors.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    assert_eq!(tensors["gen.weight"].dtype(), DType::F32);
    assert_eq!(tensors["gen.weight"].to_vec2::<f32>().unwrap(), want["gen.weight"].to_vec2::<f32>().unwrap());
    assert_eq!(tensors["data.labels"].dtype(), DType::U32);
    assert_eq!(tensors["data.labels"].to_vec1::<u32>().unwrap(), vec![7, 0, 4_000_000_000, 1]);
    assert_eq!(tensors["opt.step"].to_scalar::<f64>().unwrap(), 123456789.0);
    for (k, v) in sample_meta() {
        assert_eq!(meta[&k], v);
    }
    assert_eq!(meta["gannet_format"], checkpoint::FORMAT_VERSION.to_string());
    assert!(meta.contains_key("crc32"));
}

#[test]
fn missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let msg = load_err(&dir.path().join("nope.safetensors"));
    assert!(msg.contains("not found"), "{msg}");
}

#[test]
fn garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.safetensors");
    std::fs::write(&path, b"this is a text file, certainly not a checkpoint").unwrap();
    let msg = load_err(&path);
    assert!(msg.contains("not a safetensors checkpoint"), "{msg}");
    std::fs::write(&path, b"abc").unwrap();
    assert!(load_err(&path).contains("not a safetensors checkpoint"));
}

#[test]
fn truncated_file_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    write_sample(&path);
    let bytes = std::fs::read(&path).unwrap();
    // Cut inside the data region and inside the header.
    for keep in [bytes.len() - 1, bytes.len() - 10, 8 + header_len(&bytes), 40] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let msg = load_err(&path);
        assert!(msg.contains("truncated"), "keep {keep}: {msg}");
    }
}

#[test]
fn flipped_byte_in_data_region_is_a_checksum_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    write_sample(&path);
    let bytes = std::fs::read(&path).unwrap();
    for i in 8 + header_len(&bytes)..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        std::fs::write(&path, &b).unwrap();
        let msg = load_err(&path);
        assert!(msg.contains("checkpoint is corrupted: checksum mismatch"), "byte {i}: {msg}");
    }
}

#[test]
fn flipped_byte_in_header_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    write_sample(&path);
    let bytes = std::fs::read(&path).unwrap();

    // A changed tensor name still parses: only the header checksum can catch it.
    let header = std::str::from_utf8(&bytes[8..8 + header_len(&bytes)]).unwrap();
    let at = 8 + header.find("gen.weight").unwrap();
    let mut b = bytes.clone();
    b[at] ^= 0x01; // 'g' -> 'f'
    std::fs::write(&path, &b).unwrap();
    let msg = load_err(&path);
    assert!(msg.contains("corrupted") && msg.contains("checksum mismatch"), "{msg}");

    // Every single-bit flip anywhere in the length prefix or header is refused.
    for i in 0..8 + header_len(&bytes) {
        for bit in [0x01u8, 0x20] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            std::fs::write(&path, &b).unwrap();
            assert!(load(&path, &Device::Cpu).is_err(), "flip {bit:#x} at byte {i} went unnoticed");
        }
    }
}

#[test]
fn foreign_or_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.safetensors");
    // A valid safetensors file without gannet metadata.
    candle_core::safetensors::save(&sample_tensors().into_iter().collect::<std::collections::HashMap<_, _>>(), &path).unwrap();
    let msg = load_err(&path);
    assert!(msg.contains("missing metadata"), "{msg}");

    // A file from a future format version.
    let meta = std::collections::HashMap::from([("gannet_format".to_string(), "99".to_string())]);
    let bytes = safetensors::serialize(sample_tensors(), Some(meta)).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let msg = load_err(&path);
    assert!(msg.contains("newer gannet") && msg.contains("99"), "{msg}");
}

#[test]
fn reserved_metadata_keys_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = sample_meta();
    meta.insert("crc32".into(), "0".into());
    let err = save(&dir.path().join("ck.safetensors"), &sample_tensors(), &meta).unwrap_err().to_string();
    assert!(err.contains("reserved"), "{err}");
}

#[test]
fn successful_save_leaves_no_temp_files_and_replaces_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    write_sample(&path);
    let mut newer = sample_tensors();
    newer.insert("extra".into(), Tensor::new(&[9f32], &Device::Cpu).unwrap());
    save(&path, &newer, &sample_meta()).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ck.safetensors")]);
    assert!(load(&path, &Device::Cpu).unwrap().0.contains_key("extra"));
}

#[test]
fn failed_save_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    write_sample(&path);
    let before = std::fs::read(&path).unwrap();

    // Occupy the temp path with a directory, so the write fails before any rename.
    let tmp = dir.path().join(format!(".ck.safetensors.tmp-{}", std::process::id()));
    std::fs::create_dir(&tmp).unwrap();
    let mut newer = sample_tensors();
    newer.insert("extra".into(), Tensor::new(&[9f32], &Device::Cpu).unwrap());
    assert!(save(&path, &newer, &sample_meta()).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let (tensors, _) = load(&path, &Device::Cpu).unwrap();
    assert!(!tensors.contains_key("extra"));

    // The same through write_atomic, used for config and CSV snapshots.
    let text = dir.path().join("config.toml");
    checkpoint::write_atomic(&text, b"old").unwrap();
    std::fs::create_dir(dir.path().join(format!(".config.toml.tmp-{}", std::process::id()))).unwrap();
    assert!(checkpoint::write_atomic(&text, b"new").is_err());
    assert_eq!(std::fs::read(&text).unwrap(), b"old");
}

#[test]
fn prefix_helpers_split_a_training_checkpoint() {
    let t = |v: f32| Tensor::new(&[v], &Device::Cpu).unwrap();
    let gen = BTreeMap::from([("w".to_string(), t(1.0))]);
    let disc = BTreeMap::from([("w".to_string(), t(2.0)), ("b".to_string(), t(3.0))]);
    let mut all = checkpoint::prefixed("gen", gen);
    all.extend(checkpoint::prefixed("disc", disc));
    assert_eq!(all.keys().cloned().collect::<Vec<_>>(), vec!["disc.b", "disc.w", "gen.w"]);
    let back = checkpoint::strip_prefix("disc", &all);
    assert_eq!(back.keys().cloned().collect::<Vec<_>>(), vec!["b", "w"]);
    assert_eq!(back["w"].to_vec1::<f32>().unwrap(), vec![2.0]);
    // "gen" must not match "generator.*" style names sharing the first letters.
    assert!(checkpoint::strip_prefix("ge", &all).is_empty());
}
