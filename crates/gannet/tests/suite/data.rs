//! Data module tests: real datasets from GANNET_DATA, the built-in digits, broken inputs made
//! in temp folders, and the batch loader's determinism.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gannet::data::{self, BatchLoader, Channels, DataSource, Dataset, LoadOptions};
use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

fn shared(rel: &str) -> PathBuf {
    let p = data::data_root().join(rel);
    assert!(p.exists(), "{} is missing: set GANNET_DATA to the shared data folder (see ../shared/data/README.md)", p.display());
    p
}

fn opts(resolution: usize, channels: Channels) -> LoadOptions {
    LoadOptions { resolution, channels }
}

fn load_path(p: &Path, o: &LoadOptions) -> gannet::Result<Dataset> {
    data::load(&DataSource::Path(p.to_path_buf()), o)
}

fn err_text(r: gannet::Result<Dataset>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images(n: u32, h: u32, w: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x803, n, h, w] {
        v.extend(x.to_be_bytes());
    }
    v.extend(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x801, labels.len() as u32] {
        v.extend(x.to_be_bytes());
    }
    v.extend(labels);
    v
}

// ---------- real data ----------

#[test]
fn mnist_train_from_shared_data() {
    let ds = load_path(&shared("mnist"), &opts(28, Channels::Auto)).unwrap();
    assert_eq!((ds.len(), ds.channels(), ds.height(), ds.width()), (60000, 1, 28, 28));
    let labels = ds.labels().unwrap();
    assert_eq!(labels.iter().copied().collect::<HashSet<_>>(), (0..10).collect());
    assert_eq!(ds.class_names(), (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
    assert_eq!(labels[0], 5); // the well-known first MNIST training label
}

#[test]
fn mnist_single_file_finds_its_labels_and_resizes_to_rgb() {
    let ds = load_path(&shared("mnist/t10k-images-idx3-ubyte.gz"), &opts(32, Channels::Rgb)).unwrap();
    assert_eq!((ds.len(), ds.channels(), ds.height(), ds.width()), (10000, 3, 32, 32));
    assert_eq!(ds.num_classes(), 10);
    let img = ds.image_u8(0);
    assert_eq!(&img[..1024], &img[1024..2048], "grey replicated to every channel");
}

#[test]
fn emoji_google_at_32() {
    let ds = load_path(&shared("emoji/google"), &opts(32, Channels::Auto)).unwrap();
    assert_eq!((ds.len(), ds.channels(), ds.height(), ds.width()), (3786, 3, 32, 32));
    assert!(ds.labels().is_none());
    // Transparent corners are composited on white.
    let corner = [0, 1024, 2048].map(|c| ds.image_u8(0)[c]);
    assert_eq!(corner, [255, 255, 255]);
}

#[test]
fn builtin_digits_plausible() {
    let ds = data::load(&DataSource::BuiltinDigits, &LoadOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.channels(), ds.height(), ds.width()), (10000, 1, 28, 28));
    assert_eq!(ds.num_classes(), 10);
    assert_eq!(ds.source(), "builtin:digits-10k");
    let px = ds.images_u8();
    let mean = px.iter().map(|&x| x as f64).sum::<f64>() / px.len() as f64;
    assert!((25.0..40.0).contains(&mean), "MNIST mean is about 33, got {mean}");
    let zeros = px.iter().filter(|&&x| x == 0).count() as f64 / px.len() as f64;
    assert!(zeros > 0.7, "MNIST is mostly black background, got {zeros}");
    let counts = (0..10).map(|c| ds.labels().unwrap().iter().filter(|&&l| l == c).count());
    assert!(counts.into_iter().all(|n| (800..1300).contains(&n)));
}

#[test]
fn builtin_digits_match_mnist_train() {
    let builtin = data::load(&DataSource::BuiltinDigits, &LoadOptions::default()).unwrap();
    let mnist = load_path(&shared("mnist"), &LoadOptions::default()).unwrap();
    assert_eq!(builtin.images_u8(), &mnist.images_u8()[..10000 * 784]);
    assert_eq!(builtin.labels().unwrap(), &mnist.labels().unwrap()[..10000]);
}

#[test]
fn builtin_digits_resize_and_rgb() {
    let ds = data::load(&DataSource::BuiltinDigits, &opts(64, Channels::Rgb)).unwrap();
    assert_eq!((ds.len(), ds.channels(), ds.height(), ds.width()), (10000, 3, 64, 64));
    let t = ds.batch_tensor(&[0, 5, 9], &candle_core::Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[3, 3, 64, 64]);
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
}

// ---------- broken IDX ----------

#[test]
fn idx_truncated_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("short-images-idx3-ubyte.gz");
    std::fs::write(&p, gz(&idx_images(3, 2, 2, &[0; 11]))).unwrap();
    let e = err_text(load_path(&p, &opts(2, Channels::Auto)));
    assert!(e.contains("short-images-idx3-ubyte.gz") && e.contains("truncated"), "{e}");
}

#[test]
fn idx_wrong_magic_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.idx");
    let mut bytes = idx_images(1, 2, 2, &[0; 4]);
    bytes[3] = 0x02;
    std::fs::write(&p, bytes).unwrap();
    let e = err_text(load_path(&p, &opts(2, Channels::Auto)));
    assert!(e.contains("bad.idx") && e.contains("magic"), "{e}");
}

#[test]
fn idx_garbage_and_broken_gzip_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("garbage.gz");
    std::fs::write(&p, b"this is not an IDX file at all").unwrap();
    let e = err_text(load_path(&p, &opts(2, Channels::Auto)));
    assert!(e.contains("garbage.gz") && e.contains("magic"), "{e}");
    let mut z = gz(&idx_images(1, 2, 2, &[0; 4]));
    z.truncate(z.len() / 2);
    std::fs::write(&p, z).unwrap();
    let e = err_text(load_path(&p, &opts(2, Channels::Auto)));
    assert!(e.contains("garbage.gz") && e.contains("gzip"), "{e}");
}

#[test]
fn idx_label_count_mismatch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), idx_images(2, 2, 2, &[7; 8])).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte.gz"), gz(&idx_labels(&[1, 2, 3]))).unwrap();
    let e = err_text(load_path(dir.path(), &opts(2, Channels::Auto)));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("labels count 3"), "{e}");
}

#[test]
fn idx_folder_without_gzip_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), idx_images(2, 2, 2, &[0, 1, 2, 3, 4, 5, 6, 7])).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 0])).unwrap();
    let ds = load_path(dir.path(), &opts(2, Channels::Auto)).unwrap();
    assert_eq!(ds.image_u8(1), &[4, 5, 6, 7]);
    assert_eq!(ds.labels().unwrap(), &[1, 0]);
    assert_eq!(ds.num_classes(), 2);
}

// ---------- image folders ----------

#[test]
fn corrupt_png_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    RgbImage::new(4, 4).save(dir.path().join("good.png")).unwrap();
    std::fs::write(dir.path().join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let e = err_text(load_path(dir.path(), &opts(4, Channels::Auto)));
    assert!(e.contains("broken.png"), "{e}");
}

#[test]
fn empty_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"no images here").unwrap();
    std::fs::write(dir.path().join(".hidden.png"), b"skipped").unwrap();
    let e = err_text(load_path(dir.path(), &opts(4, Channels::Auto)));
    assert!(e.contains(&dir.path().display().to_string()) && e.contains("no PNG or JPEG"), "{e}");
}

#[test]
fn missing_path_is_an_error() {
    let e = err_text(load_path(Path::new("/nonexistent/gannet-data"), &opts(4, Channels::Auto)));
    assert!(e.contains("/nonexistent/gannet-data"), "{e}");
}

#[test]
fn mixed_layout_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    RgbImage::new(4, 4).save(dir.path().join("top.png")).unwrap();
    std::fs::create_dir(dir.path().join("cats")).unwrap();
    RgbImage::new(4, 4).save(dir.path().join("cats/a.png")).unwrap();
    let e = err_text(load_path(dir.path(), &opts(4, Channels::Auto)));
    assert!(e.contains("mixed label layout") && e.contains(&dir.path().display().to_string()), "{e}");
}

#[test]
fn transparent_rgba_is_composited_on_white() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 0]));
    img.put_pixel(0, 0, Rgba([255, 0, 0, 255]));
    img.put_pixel(1, 0, Rgba([0, 0, 0, 128]));
    img.save(dir.path().join("a.PNG")).unwrap();
    let ds = load_path(dir.path(), &opts(8, Channels::Auto)).unwrap();
    assert_eq!(ds.channels(), 3);
    let px = |c: usize, x: usize, y: usize| ds.image_u8(0)[c * 64 + y * 8 + x];
    assert_eq!([px(0, 5, 5), px(1, 5, 5), px(2, 5, 5)], [255, 255, 255]);
    assert_eq!([px(0, 0, 0), px(1, 0, 0), px(2, 0, 0)], [255, 0, 0]);
    assert_eq!(px(1, 1, 0), 127); // half black over white
}

#[test]
fn sixteen_bit_grey_alpha_on_white() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = image::ImageBuffer::<image::LumaA<u16>, Vec<u16>>::from_pixel(4, 4, image::LumaA([0, 0]));
    img.put_pixel(0, 0, image::LumaA([0, 65535]));
    img.put_pixel(1, 0, image::LumaA([0, 32768]));
    image::DynamicImage::ImageLumaA16(img).save(dir.path().join("deep.png")).unwrap();
    let ds = load_path(dir.path(), &opts(4, Channels::Auto)).unwrap();
    assert_eq!(ds.channels(), 1, "grey+alpha counts as grey");
    assert_eq!(&ds.image_u8(0)[..4], &[0, 127, 255, 255]);
}

#[test]
fn grey_jpeg_loads_as_one_channel() {
    let dir = tempfile::tempdir().unwrap();
    GrayImage::from_pixel(16, 16, Luma([200])).save(dir.path().join("g.jpeg")).unwrap();
    let ds = load_path(dir.path(), &opts(8, Channels::Auto)).unwrap();
    assert_eq!((ds.len(), ds.channels(), ds.height()), (1, 1, 8));
    assert!(ds.image_u8(0).iter().all(|&x| x.abs_diff(200) <= 3));
    let rgb = load_path(dir.path(), &opts(8, Channels::Rgb)).unwrap();
    assert_eq!(rgb.channels(), 3);
}

#[test]
fn non_square_is_centre_cropped() {
    let dir = tempfile::tempdir().unwrap();
    // 30 wide x 10 high: left third red, middle green, right blue. The crop keeps the middle.
    let img = RgbImage::from_fn(30, 10, |x, _| match x / 10 {
        0 => Rgb([255, 0, 0]),
        1 => Rgb([0, 255, 0]),
        _ => Rgb([0, 0, 255]),
    });
    img.save(dir.path().join("wide.png")).unwrap();
    let ds = load_path(dir.path(), &opts(5, Channels::Auto)).unwrap();
    assert_eq!((ds.channels(), ds.height(), ds.width()), (3, 5, 5));
    let im = ds.image_u8(0);
    assert!(im[..25].iter().all(|&r| r < 10), "no red left: {:?}", &im[..25]);
    assert!(im[25..50].iter().all(|&g| g > 245));
}

#[test]
fn class_subfolders_give_labels() {
    let dir = tempfile::tempdir().unwrap();
    for (class, n) in [("zebra", 2), ("ant", 3)] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for i in 0..n {
            GrayImage::from_pixel(4, 4, Luma([i * 10])).save(dir.path().join(format!("{class}/{i}.png"))).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let ds = load_path(dir.path(), &opts(4, Channels::Auto)).unwrap();
    assert_eq!(ds.class_names(), &["ant".to_string(), "zebra".to_string()]);
    assert_eq!(ds.labels().unwrap(), &[0, 0, 0, 1, 1]);
    assert_eq!(ds.channels(), 1);
    let sub = ds.subset(&[4, 0]);
    assert_eq!(sub.labels().unwrap(), &[1, 0]);
    assert_eq!(sub.image_u8(0), ds.image_u8(4));
}

// ---------- loader ----------

/// 103 tiny images whose label is their own index, so batches say which images they hold.
fn indexed(n: usize) -> Arc<Dataset> {
    let images = (0..n).flat_map(|i| [i as u8, 255 - i as u8]).collect();
    let names = (0..n).map(|i| i.to_string()).collect();
    Arc::new(Dataset::from_parts(images, Some((0..n as u32).collect()), names, 1, 1, 2, "test".into()).unwrap())
}

fn take(loader: &mut BatchLoader, n: usize) -> Vec<gannet::data::HostBatch> {
    (0..n).map(|_| loader.next_batch().unwrap()).collect()
}

#[test]
fn loader_is_deterministic_and_resumes_exactly() {
    let ds = indexed(103);
    let full = take(&mut BatchLoader::new(ds.clone(), 10, 7, 0).unwrap(), 35);
    let again = take(&mut BatchLoader::new(ds.clone(), 10, 7, 0).unwrap(), 35);
    let resumed = take(&mut BatchLoader::new(ds.clone(), 10, 7, 13).unwrap(), 22);
    let key = |b: &gannet::data::HostBatch| (b.step, b.images.clone(), b.labels.clone());
    assert_eq!(full.iter().map(key).collect::<Vec<_>>(), again.iter().map(key).collect::<Vec<_>>());
    assert_eq!(full[13..].iter().map(key).collect::<Vec<_>>(), resumed.iter().map(key).collect::<Vec<_>>());
    let other = take(&mut BatchLoader::new(ds, 10, 8, 0).unwrap(), 1);
    assert_ne!(other[0].labels, full[0].labels, "another seed shuffles differently");
}

#[test]
fn loader_covers_each_image_once_per_epoch() {
    let ds = indexed(103);
    let mut loader = BatchLoader::new(ds, 10, 3, 0).unwrap();
    assert_eq!(loader.batches_per_epoch(), 10);
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let ids: Vec<u32> = take(&mut loader, 10).into_iter().flat_map(|b| b.labels.unwrap()).collect();
        let set: HashSet<u32> = ids.iter().copied().collect();
        assert_eq!(set.len(), 100, "no repeats within an epoch");
        epochs.push(ids);
    }
    assert_ne!(epochs[0], epochs[1], "each epoch is reshuffled");
}

#[test]
fn loader_batch_shapes_and_range() {
    let ds = Arc::new(data::load(&DataSource::BuiltinDigits, &LoadOptions::default()).unwrap());
    let mut loader = BatchLoader::new(ds.clone(), 64, 1, 0).unwrap();
    let b = loader.next_batch().unwrap();
    assert_eq!((b.step, b.shape), (0, [64, 1, 28, 28]));
    assert!(b.images.iter().all(|x| (-1.0..=1.0).contains(x)));
    assert!(b.images.contains(&-1.0) && b.images.contains(&1.0));
    let (x, y) = b.to_tensors(&candle_core::Device::Cpu).unwrap();
    assert_eq!(x.dims(), &[64, 1, 28, 28]);
    assert_eq!(y.unwrap().dtype(), candle_core::DType::U32);
    assert_eq!(loader.next_batch().unwrap().step, 1);
    drop(loader); // must not hang with a full queue
    assert!(BatchLoader::new(ds.clone(), 0, 1, 0).is_err());
    assert!(BatchLoader::new(ds, 10001, 1, 0).is_err());
}

#[test]
fn epoch_permutation_is_a_permutation() {
    let p = data::epoch_permutation(1000, 42, 3);
    let mut s = p.clone();
    s.sort();
    assert_eq!(s, (0..1000).collect::<Vec<_>>());
    assert_eq!(p, data::epoch_permutation(1000, 42, 3));
    assert_ne!(p, data::epoch_permutation(1000, 42, 4));
}
