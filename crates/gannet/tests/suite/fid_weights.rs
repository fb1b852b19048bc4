//! The FID Inception weights beyond the shared folder: pytorch-fid's release file (PyTorch's
//! legacy format), the run-time lookup, and the verified download against a local HTTP server
//! (no network needed). No Inception forward passes: these run in well under a second.

use candle_core::{DType, Tensor};
use gannet::metrics::evaluate::Silent;
use gannet::metrics::inception::WEIGHTS_FILE;
use gannet::metrics::inception_weights::{download_verified, WeightsLookup, RELEASE_FILE, RELEASE_SHA256, RELEASE_URL};
use gannet::metrics::{self, torch_legacy, FidInception};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

// ---- PyTorch's legacy format -----------------------------------------------------------------

/// `scripts/make_legacy_pth_fixture.py` wrote the fixture with torch 2.15.0's
/// `torch.save(sd, f, _use_new_zipfile_serialization=False)`; the values are the script's.
#[test]
fn legacy_torch_file_reads_as_torch_wrote_it() {
    let t: HashMap<String, Tensor> = torch_legacy::read_all(&fixture("legacy_state_dict.pth")).unwrap().into_iter().collect();
    let mut names: Vec<&str> = t.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        ["base", "base_t", "bias", "double", "fc.bias", "fc.weight", "half", "num_batches_tracked", "row", "running_mean", "running_var", "weight"],
        "every tensor, and not the dict's _metadata"
    );
    let v = |k: &str| t[k].to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(v("weight"), [1.0, 1.0]);
    assert_eq!(v("bias"), [0.0, 0.0]);
    assert_eq!(v("running_var"), [1.0, 1.0]);
    assert_eq!((t["num_batches_tracked"].dtype(), t["num_batches_tracked"].to_scalar::<i64>().unwrap()), (DType::I64, 7));
    // Three tensors on one storage: the whole, its transpose (non-contiguous), a row (offset 4).
    assert_eq!(t["base"].dims(), [3, 4]);
    assert_eq!(v("base"), (0..12).map(|x| x as f32).collect::<Vec<_>>());
    assert_eq!(t["base_t"].dims(), [4, 3]);
    assert_eq!(t["base_t"].to_vec2::<f32>().unwrap()[1], [1.0, 5.0, 9.0]);
    assert_eq!(v("row"), [4.0, 5.0, 6.0, 7.0]);
    assert_eq!((t["double"].dtype(), t["double"].to_vec1::<f64>().unwrap()), (DType::F64, vec![1.5, -2.25]));
    assert_eq!((t["half"].dtype(), v("half")), (DType::F16, vec![0.5, -1.0]));
    assert_eq!(t["fc.weight"].to_vec2::<f32>().unwrap(), [[-0.625, -0.375, -0.125], [0.125, 0.375, 0.625]]);
    assert_eq!(v("fc.bias"), [0.25, -0.75]);
}

#[test]
fn damaged_or_foreign_files_are_refused_with_a_reason() {
    let bytes = std::fs::read(fixture("legacy_state_dict.pth")).unwrap();
    // Cut inside the storages that follow the pickles.
    for cut in [4, 10, 100] {
        let e = torch_legacy::read_bytes(&bytes[..bytes.len() - cut]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
    let e = torch_legacy::read_bytes(b"PK\x03\x04 a zip archive").unwrap_err();
    assert!(e.contains("magic number"), "{e}");
    // The Inception loader recognises the legacy format (and then names what is missing) ...
    let e = FidInception::load(fixture("legacy_state_dict.pth"), &candle_core::Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("Conv2d_1a_3x3.conv.weight"), "{e}");
    // ... and says which formats it reads when a file is none of them.
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.pth");
    std::fs::write(&junk, b"<html>rate limited</html>").unwrap();
    let e = FidInception::load(&junk, &candle_core::Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("junk.pth") && e.contains("legacy") && e.contains("safetensors"), "{e}");
}

/// A legacy copy of the shared weights in the release file's layout (pytorch-fid's
/// `model.state_dict()`: 566 entries with `fc.*` and `num_batches_tracked`), made by
/// `python scripts/make_legacy_pth_fixture.py --full FILE`, gives the shared file's features.
/// 95 MB, so not committed: set GANNET_LEGACY_INCEPTION=FILE to run it.
#[test]
#[ignore = "needs GANNET_LEGACY_INCEPTION (a 95 MB file made by scripts/make_legacy_pth_fixture.py --full)"]
fn release_layout_in_legacy_format_gives_the_shared_features() {
    let legacy = std::env::var_os("GANNET_LEGACY_INCEPTION").expect("GANNET_LEGACY_INCEPTION");
    let dev = candle_core::Device::Cpu;
    let x = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &dev).unwrap();
    let a = FidInception::load(metrics::models_dir().join(WEIGHTS_FILE), &dev).unwrap().features(&x).unwrap();
    let b = FidInception::load(legacy, &dev).unwrap().features(&x).unwrap();
    let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(diff, 0.0);
}

// ---- where the weights come from -------------------------------------------------------------

#[test]
fn release_constants_agree_with_torch_hub_naming() {
    assert!(RELEASE_URL.ends_with(&format!("/{RELEASE_FILE}")));
    // torch.hub: the part of the name after the last '-' starts the file's SHA-256.
    let prefix = RELEASE_FILE.rsplit('-').next().unwrap().trim_end_matches(".pth");
    assert_eq!(prefix, "6726825d");
    assert!(RELEASE_SHA256.starts_with(prefix) && RELEASE_SHA256.len() == 64);
}

/// Tests use the shared file through GANNET_MODELS (or the shared folder beside the checkout):
/// no download, nothing written to the cache.
#[test]
fn the_default_lookup_finds_the_shared_file() {
    let cache = tempfile::tempdir().unwrap();
    let lookup = WeightsLookup::from_env(None, cache.path().to_path_buf());
    assert_eq!(lookup.models_dir.as_deref(), Some(metrics::models_dir().as_path()));
    let found = lookup.resolve(&mut Silent).unwrap();
    assert_eq!(found, metrics::models_dir().join(WEIGHTS_FILE));
    assert!(entries(cache.path()).is_empty());
}

/// A URL where nothing listens (a port just freed).
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/{RELEASE_FILE}", listener.local_addr().unwrap())
}

fn lookup(cache: &Path, url: String) -> WeightsLookup {
    WeightsLookup { explicit: None, models_dir: None, cache_dir: cache.to_path_buf(), url }
}

#[test]
fn the_lookup_takes_the_first_place_that_has_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let (models, cache) = (tmp.path().join("models"), tmp.path().join("cache"));
    std::fs::create_dir_all(&models).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    // Nothing is downloaded in this test: the URL is dead, so a download attempt would fail.
    let l = WeightsLookup { models_dir: Some(models.clone()), ..lookup(&cache, dead_url()) };
    // A named file that is missing is an error, not a reason to look elsewhere.
    let missing = tmp.path().join("mine.pth");
    let e = WeightsLookup { explicit: Some(missing.clone()), ..l.clone() }.resolve(&mut Silent).unwrap_err().to_string();
    assert!(e.contains("--inception") && e.contains("mine.pth"), "{e}");
    std::fs::write(&missing, b"x").unwrap();
    assert_eq!(WeightsLookup { explicit: Some(missing.clone()), ..l.clone() }.resolve(&mut Silent).unwrap(), missing);
    // The cached release file, then the shared file before it.
    std::fs::write(cache.join(RELEASE_FILE), b"x").unwrap();
    assert_eq!(l.resolve(&mut Silent).unwrap(), cache.join(RELEASE_FILE));
    std::fs::write(models.join(WEIGHTS_FILE), b"x").unwrap();
    assert_eq!(l.resolve(&mut Silent).unwrap(), models.join(WEIGHTS_FILE));
}

// ---- the download, against a local server ----------------------------------------------------

/// Serves one HTTP request on 127.0.0.1 with `status` and `body`, then stops (or gives up after
/// 30 s without a request). Returns the URL.
fn serve_once(status: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{RELEASE_FILE}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                        head.push(byte[0]);
                    }
                    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = s.write_all(reply.as_bytes()).and_then(|_| s.write_all(&body));
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return,
            }
        }
    });
    url
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_verified_download_is_renamed_into_place() {
    let tmp = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let dest = tmp.path().join("cache/weights-xxxxxxxx.pth");
    // The full hash, and torch.hub's 8-digit prefix, both verify.
    for expected in [sha256_hex(&body), sha256_hex(&body)[..8].to_string()] {
        let url = serve_once("200 OK", body.clone());
        download_verified(&url, &dest, &expected, &mut Silent).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert_eq!(entries(&tmp.path().join("cache")), ["weights-xxxxxxxx.pth"], "no partial file left");
    }
}

#[test]
fn a_download_with_the_wrong_checksum_leaves_nothing_in_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let url = serve_once("200 OK", b"<html>a login page, not weights</html>".to_vec());
    let e = lookup(&cache, url.clone()).resolve(&mut Silent).unwrap_err().to_string();
    assert!(e.contains(&url) && e.contains("SHA-256") && e.contains(RELEASE_SHA256), "{e}");
    assert!(e.contains(&sha256_hex(b"<html>a login page, not weights</html>")), "{e}");
    assert!(e.contains("--inception") && e.contains("GANNET_MODELS") && e.contains("--metrics cfid"), "{e}");
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
}

#[test]
fn offline_the_error_says_what_to_do_instead() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for url in [dead_url(), serve_once("404 Not Found", b"gone".to_vec())] {
        let e = lookup(&cache, url.clone()).resolve(&mut Silent).unwrap_err().to_string();
        assert!(e.contains(&url) && e.contains("failed"), "{e}");
        assert!(e.contains("--inception") && e.contains("GANNET_MODELS") && e.contains("--metrics cfid"), "{e}");
        assert!(e.contains(RELEASE_URL), "names the file to fetch by hand: {e}");
        assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
    }
}
