//! `gannet train-i2i`, `translate` and `upscale` as a user meets them: tiny runs on 16x16 images,
//! outputs and comparison grids written, scores printed, errors that name what is wrong.

use crate::studio_common;

use std::path::Path;
use std::process::{Command, Output};

fn gannet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gannet")).args(args).env("RAYON_NUM_THREADS", "2").output().expect("runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Paired 16x16 folders a/ and b/ of `n` images (a blob in two colour schemes).
fn paired_folders(root: &Path, n: usize) {
    for d in ["a", "b"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for i in 0..n {
        let (cx, cy) = ((3 + i * 5 % 10) as i32, (3 + i * 7 % 10) as i32);
        let inside = move |x: u32, y: u32| (x as i32 - cx).pow(2) + (y as i32 - cy).pow(2) <= 9;
        for (d, fg, bg) in [("a", [220u8, 40, 40], 255u8), ("b", [30, 60, 200], 240)] {
            let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb(if inside(x, y) { fg } else { [bg; 3] }));
            img.save(root.join(d).join(format!("img{i:03}.png"))).unwrap();
        }
    }
}

/// A tiny config for 16x16 images (the presets' PatchGAN is too deep for them).
fn tiny_config(root: &Path) -> String {
    let p = root.join("tiny.toml");
    std::fs::write(
        &p,
        "[model]\ng_channels = 4\ng_blocks = 1\nd_channels = 4\nd_layers = 1\nscale = 2\n[schedule]\nbatch_size = 4\n[output]\nsample_count = 4\n",
    )
    .unwrap();
    p.display().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pix2pix_trains_resumes_and_translates_with_a_grid_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    paired_folders(root, 40);
    let (a, b, run) = (root.join("a"), root.join("b"), root.join("run"));
    let cfg = tiny_config(root);
    let common = ["--a", s(&a), "--b", s(&b), "--resolution", "16", "--config", &cfg, "--out", s(&run)];
    let o = gannet(&[&["train-i2i", "--task", "pix2pix", "--steps", "3"], &common[..]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let o = gannet(&["train-i2i", "--resume", s(&ckpt), "--steps", "5"]);
    assert!(o.status.success() && text(&o).contains("done at step 5"), "{}", text(&o));
    assert!(run.join("samples/latest.png").exists() && run.join("losses.svg").exists());

    let out = root.join("held");
    let o = gannet(&["translate", "--checkpoint", s(&ckpt), "--held-out", "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("identity (input)") && t.contains("PSNR"), "{t}");
    let grid = image::open(out.join("grid.png")).unwrap();
    assert!(grid.width() > 3 * 16 && grid.height() >= 16, "input | output | target");
    let scores: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    assert!(scores["model"]["psnr"].as_f64().unwrap() > 0.0 && scores["identity"]["l1"].as_f64().unwrap() > 0.0, "{scores}");

    // One file with a target folder; the output carries provenance text chunks.
    let one = root.join("one");
    let o = gannet(&["translate", "--checkpoint", s(&ckpt), "--in", s(&a.join("img007.png")), "--target", s(&b), "--out", s(&one)]);
    assert!(o.status.success(), "{}", text(&o));
    let chunks = gannet::image_io::read_png_text(&one.join("img007.png")).unwrap();
    assert!(chunks.iter().any(|(k, v)| k == "gannet:source" && v == "synthetic"), "{chunks:?}");
    assert!(one.join("grid.png").exists());

    // pix2pix has one direction; super-resolution commands refuse it.
    let o = gannet(&["translate", "--checkpoint", s(&ckpt), "--held-out", "--direction", "b2a", "--out", s(&root.join("x"))]);
    assert!(!o.status.success() && text(&o).contains("only a CycleGAN"), "{}", text(&o));
    let o = gannet(&["upscale", "--checkpoint", s(&ckpt), "--held-out", "--out", s(&root.join("y"))]);
    assert!(!o.status.success() && text(&o).contains("translate"), "{}", text(&o));
}

#[test]
fn superres_trains_and_upscales_against_bicubic() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    paired_folders(root, 40);
    let run = root.join("sr");
    let cfg = tiny_config(root);
    let o = gannet(&["train-i2i", "--task", "superres", "--a", s(&root.join("a")), "--resolution", "16", "--config", &cfg, "--steps", "3", "--out", s(&run)]);
    assert!(o.status.success(), "{}", text(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let out = root.join("up");
    let o = gannet(&["upscale", "--checkpoint", s(&ckpt), "--held-out", "--out", s(&out)]);
    assert!(o.status.success() && text(&o).contains("bicubic"), "{}", text(&o));
    assert!(out.join("grid.png").exists());
    // Plain low-resolution inputs: 8x8 -> 16x16, no scores.
    let plain = root.join("plain");
    let o = gannet(&["upscale", "--checkpoint", s(&ckpt), "--in", s(&root.join("b")), "--out", s(&plain)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(image::open(plain.join("img003.png")).unwrap().width(), 16);
    assert!(!std::fs::read_to_string(plain.join("scores.json")).unwrap().contains("bicubic"));
}

#[test]
fn unmatched_pairs_and_missing_settings_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    paired_folders(root, 4);
    std::fs::remove_file(root.join("b/img002.png")).unwrap();
    let o = gannet(&[
        "train-i2i",
        "--task",
        "pix2pix",
        "--a",
        s(&root.join("a")),
        "--b",
        s(&root.join("b")),
        "--resolution",
        "16",
        "--config",
        &tiny_config(root),
        "--out",
        s(&root.join("r")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("img002") && text(&o).contains("only in this folder"), "{}", text(&o));
    let o = gannet(&["train-i2i", "--task", "cyclegan", "--a", "x"]);
    assert!(text(&o).contains("data.b"), "{}", text(&o));
    let o = gannet(&["train-i2i", "--task", "pix2pix", "--a", "x", "--b", "y", "--resolution", "16"]);
    assert!(text(&o).contains("d_layers"), "{}", text(&o));
    let o = gannet(&["train-i2i", "--help"]);
    let h = text(&o);
    assert!(h.contains("pix2pix-emoji") && h.contains("cyclegan-emoji") && h.contains("superres-emoji") && h.contains("Examples:"), "{h}");
}

/// The studio serves image-to-image checkpoints: an upload comes back translated (pix2pix, the
/// model's size) or upscaled (super-resolution, `scale` times the model's input side).
#[test]
fn the_studio_translates_and_upscales_uploads_with_trained_checkpoints() {
    use gannet_studio::client;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    paired_folders(root, 20);
    let cfg = tiny_config(root);
    let (p2p, sr) = (root.join("p2p"), root.join("sr"));
    let o = gannet(&[
        "train-i2i",
        "--task",
        "pix2pix",
        "--a",
        s(&root.join("a")),
        "--b",
        s(&root.join("b")),
        "--resolution",
        "16",
        "--config",
        &cfg,
        "--steps",
        "2",
        "--out",
        s(&p2p),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = gannet(&["train-i2i", "--task", "superres", "--a", s(&root.join("a")), "--resolution", "16", "--config", &cfg, "--steps", "2", "--out", s(&sr)]);
    assert!(o.status.success(), "{}", text(&o));
    let ck = |run: &Path| run.join("checkpoints/latest.safetensors").display().to_string();
    let studio = studio_common::Studio::start(&["--checkpoint", &ck(&p2p), "--checkpoint", &ck(&sr)]);
    // A 40x30 RGBA upload: any size and pixel type is prepared as the training images were.
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(40, 30, |x, y| image::Rgba([(x * 6) as u8, (y * 8) as u8, 90, 200])))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    for (id, side) in [("c0", 16), ("c1", 16)] {
        let r = client::request(studio.addr, "POST", &format!("/api/translate?checkpoint={id}"), Some("image/png"), &png, std::time::Duration::from_secs(60))
            .unwrap();
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        let out = image::load_from_memory(&r.body).unwrap();
        assert_eq!((out.width(), out.height()), (side, side), "{id}");
    }
    let info = |id: &str| client::request(studio.addr, "GET", &format!("/api/checkpoints/{id}"), None, &[], std::time::Duration::from_secs(30)).unwrap().text();
    let (a, b) = (info("c0"), info("c1"));
    assert!(a.contains("pix2pix") && a.contains("translate"), "{a}");
    assert!(b.contains("superres 2x, 8x8 -> 16x16") && b.contains("upscale"), "{b}");
}
