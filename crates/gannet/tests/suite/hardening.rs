//! Bad input, as a careful user or an attacker would give it: every case is an error that names
//! the setting or file, never a panic, an abort, a hang or a silently wrong result.
//! (No test here lowers the memory budget: it is process-wide, and the other tests in this
//! binary run in parallel. The requests below exceed any machine's memory.)

use crate::common;

use gannet::candle_core::{Device, Tensor};
use gannet::checkpoint;
use gannet::data::{self, Channels, DataSource, LoadOptions};
use gannet::models::{self, dcgan::DcganConfig, ImageShape, ModelConfig};
use gannet::saved::SavedRun;
use gannet::train::{TrainConfig, Trainer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn err<T>(r: gannet::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

// ---- memory -------------------------------------------------------------------------------

#[test]
fn a_model_too_large_for_memory_is_refused_before_allocating() {
    let cfg = ModelConfig::Dcgan(DcganConfig { latent_dim: 16384, g_channels: 1024, d_channels: 1024, ..Default::default() });
    let shape = ImageShape { channels: 3, resolution: 4096 };
    let e = match models::build(&cfg, shape, 0, &Device::Cpu) {
        Ok(_) => panic!("a terabyte model was built"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("parameters") && e.contains("--max-memory") && e.contains("--channels"), "{e}");
}

#[test]
fn a_data_set_too_large_for_memory_names_the_resolution() {
    let e = err(data::load(&DataSource::BuiltinDigits, &LoadOptions::new(4096, Channels::Auto)));
    assert!(e.contains("10000 images at 4096x4096") && e.contains("data.resolution"), "{e}");
    let e = err(data::load(&DataSource::BuiltinDigits, &LoadOptions::new(8192, Channels::Auto)));
    assert!(e.contains("data.resolution must be between 1 and 4096"), "{e}");
}

#[test]
fn a_batch_too_large_for_memory_names_the_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config(&dir.path().join("run"), 1, 65_536, 0);
    cfg.model = ModelConfig::Dcgan(DcganConfig { g_channels: 512, d_channels: 512, ..Default::default() });
    cfg.data.resolution = Some(64);
    let e = err(Trainer::new(cfg));
    assert!(e.contains("training step of 65536 images") && e.contains("schedule.batch_size"), "{e}");
}

// ---- settings -----------------------------------------------------------------------------

fn invalid(edit: impl FnOnce(&mut TrainConfig)) -> String {
    let mut cfg = TrainConfig::default();
    edit(&mut cfg);
    err(cfg.validate())
}

#[test]
fn every_numeric_setting_is_checked() {
    let dcgan = |c: &mut TrainConfig| match &mut c.model {
        ModelConfig::Dcgan(d) => d.clone(),
        _ => unreachable!("the default is a DCGAN"),
    };
    // An edit that makes the config invalid, and the setting the error must name.
    type Case = (Box<dyn FnOnce(&mut TrainConfig)>, &'static str);
    let cases: Vec<Case> = vec![
        (Box::new(|c| c.optim.gen.beta1 = 1.5), "optim.gen.beta1"),
        (Box::new(|c| c.optim.disc.beta2 = -0.1), "optim.disc.beta2"),
        (Box::new(|c| c.optim.gen.eps = -1.0), "optim.gen.eps"),
        (Box::new(|c| c.optim.disc.eps = f64::NAN), "optim.disc.eps"),
        (Box::new(|c| c.optim.gen.weight_decay = -1.0), "optim.gen.weight_decay"),
        (Box::new(|c| c.output.sample_count = 0), "output.sample_count"),
        (Box::new(|c| c.schedule.steps = 0), "schedule.steps"),
        (Box::new(|c| c.output.sample_count = 100_000), "output.sample_count"),
        (Box::new(|c| c.schedule.batch_size = 10_000_000), "schedule.batch_size"),
        (Box::new(|c| c.data.resolution = Some(8192)), "data.resolution"),
        (Box::new(|c| c.data.resolution = Some(0)), "data.resolution"),
        (Box::new(move |c| c.model = ModelConfig::Dcgan(DcganConfig { g_channels: 0, ..dcgan(c) })), "model.g_channels"),
        (Box::new(move |c| c.model = ModelConfig::Dcgan(DcganConfig { d_channels: 1 << 20, ..dcgan(c) })), "model.d_channels"),
        (Box::new(|c| c.model.set_latent_dim(4_000_000_000)), "model.latent_dim"),
        (Box::new(|c| c.model.set_width(0)), "model.g_channels"),
    ];
    for (edit, setting) in cases {
        let e = invalid(edit);
        assert!(e.contains(setting), "expected an error naming {setting}, got: {e}");
    }
    assert!(TrainConfig::default().validate().is_ok());
}

#[test]
fn image_to_image_settings_are_checked() {
    use gannet::config::{I2iConfig, Task};
    let base = || {
        let mut c = I2iConfig::for_task(Task::Cyclegan);
        c.data.a = "a".into();
        c.data.b = Some("b".into());
        c
    };
    assert!(base().validate().is_ok());
    let mut c = base();
    c.optim.disc.beta1 = 1.0;
    assert!(err(c.validate()).contains("optim.disc.beta1"));
    let mut c = base();
    c.model.g_channels = 0;
    assert!(err(c.validate()).contains("model.g_channels"));
    let mut c = base();
    c.output.sample_count = 0;
    assert!(err(c.validate()).contains("output.sample_count"));
    let mut c = base();
    c.data.resolution = 100_000;
    assert!(err(c.validate()).contains("data.resolution"));
}

#[test]
fn a_grid_of_no_images_or_too_many_is_an_error() {
    let empty = Tensor::zeros((0, 1, 8, 8), gannet::candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(err(gannet::image_io::grid(&empty, 4, 2)).contains("0 images"));
    assert!(err(gannet::image_io::check_grid_size(100_000_000, 10_000, 28, 28, 2)).contains("more than"));
    assert!(err(gannet::image_io::ensure_png_path(Path::new("x.jpg"))).contains(".png"));
    assert!(gannet::image_io::ensure_png_path(Path::new("x.PNG")).is_ok());
}

// ---- checkpoints --------------------------------------------------------------------------

/// A checkpoint of a tiny trained run, its tensors and metadata (without the gannet keys
/// `checkpoint::save` adds), to tamper with and save again with valid checksums.
fn tiny_checkpoint(dir: &Path) -> (PathBuf, BTreeMap<String, Tensor>, BTreeMap<String, String>) {
    let t = common::run(common::tiny_config(&dir.join("run"), 2, 4, 0));
    let path = t.run_dir().latest_checkpoint();
    let (tensors, mut meta) = checkpoint::load(&path, &Device::Cpu).unwrap();
    for key in ["gannet_format", "crc32", "header_crc32"] {
        meta.remove(key);
    }
    (path, tensors, meta)
}

#[test]
fn crafted_checkpoint_metadata_cannot_size_a_huge_model() {
    let dir = tempfile::tempdir().unwrap();
    let (_, tensors, mut meta) = tiny_checkpoint(dir.path());
    let config = meta["config"].replace("latent_dim = 8", "latent_dim = 4000000000");
    assert_ne!(config, meta["config"]);
    meta.insert("config".into(), config);
    let bad = dir.path().join("huge.safetensors");
    checkpoint::save(&bad, &tensors, &meta).unwrap();
    let e = err(SavedRun::load(&bad, &Device::Cpu));
    assert!(e.contains("model.latent_dim") && e.contains("huge.safetensors"), "{e}");

    let (_, tensors, mut meta) = tiny_checkpoint(&dir.path().join("2"));
    let mut task: serde_json::Value = serde_json::from_str(&meta["task"]).unwrap();
    task["image_shape"]["resolution"] = 1_000_000.into();
    meta.insert("task".into(), task.to_string());
    checkpoint::save(&bad, &tensors, &meta).unwrap();
    assert!(err(SavedRun::load(&bad, &Device::Cpu)).contains("resolution"));
}

#[test]
fn a_checkpoint_of_nan_weights_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut tensors, meta) = tiny_checkpoint(dir.path());
    let name = tensors.keys().find(|k| k.starts_with("gen.")).unwrap().clone();
    let t = &tensors[&name];
    let nan = Tensor::full(f32::NAN, t.dims(), &Device::Cpu).unwrap();
    tensors.insert(name.clone(), nan);
    let bad = dir.path().join("nan.safetensors");
    checkpoint::save(&bad, &tensors, &meta).unwrap();
    let e = err(SavedRun::load(&bad, &Device::Cpu));
    assert!(e.contains(&name) && e.contains("NaN"), "{e}");
}

#[test]
fn special_files_are_refused_at_once() {
    let e = err(checkpoint::load(Path::new("/dev/zero"), &Device::Cpu));
    assert!(e.contains("not a regular file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.safetensors");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if made {
        // Opening a FIFO for reading blocks until a writer comes: the check must not open it.
        assert!(err(checkpoint::load(&fifo, &Device::Cpu)).contains("not a regular file"));
        assert!(err(data::load(&DataSource::Path(fifo.clone()), &LoadOptions::default())).contains("not a regular file"));
        assert!(err(TrainConfig::from_file(&fifo)).contains("not a regular file"));
    }
    assert!(err(data::load(&DataSource::Path("/dev/zero".into()), &LoadOptions::default())).contains("not a regular file"));
}

// ---- data ---------------------------------------------------------------------------------

fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

#[test]
fn a_stray_idx_label_is_an_error_not_a_larger_model() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&images, idx(0x803, &[3, 2, 2], &[0; 12])).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx(0x801, &[3], &[0, 1, 200])).unwrap();
    let e = err(data::load(&DataSource::Path(dir.path().into()), &LoadOptions::default()));
    assert!(e.contains("labels run up to 200") && e.contains("no images"), "{e}");
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx(0x801, &[3], &[0, 1, 1])).unwrap();
    let ok = data::load(&DataSource::Path(dir.path().into()), &LoadOptions::default()).unwrap();
    assert_eq!(ok.num_classes(), 2);
}

fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, 128]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
    bytes
}

#[test]
fn truncated_images_of_every_format_are_refused() {
    for (format, name) in [(image::ImageFormat::Jpeg, "a.jpg"), (image::ImageFormat::Png, "a.png"), (image::ImageFormat::Gif, "a.png")] {
        let dir = tempfile::tempdir().unwrap();
        let bytes = encoded(format);
        std::fs::write(dir.path().join(name), &bytes).unwrap();
        let whole = data::load(&DataSource::Path(dir.path().into()), &LoadOptions::new(16, Channels::Auto));
        assert!(whole.is_ok(), "{format:?}: {:?}", whole.err());
        std::fs::write(dir.path().join(name), &bytes[..bytes.len() * 2 / 3]).unwrap();
        let e = err(data::load(&DataSource::Path(dir.path().into()), &LoadOptions::new(16, Channels::Auto)));
        assert!(e.contains(name), "{format:?}: {e}");
    }
}

#[test]
fn images_nested_too_deep_are_pointed_at() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("export").join("cats");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("1.png"), encoded(image::ImageFormat::Png)).unwrap();
    let e = err(data::load(&DataSource::Path(dir.path().into()), &LoadOptions::new(16, Channels::Auto)));
    assert!(e.contains("deeper") && e.contains(&dir.path().join("export").display().to_string()), "{e}");
}
