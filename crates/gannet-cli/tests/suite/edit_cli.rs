//! The editing commands end to end on a tiny StyleGAN2 trained from the command line:
//! interpolate (grid, GIF, frames), mix, project, sample --truncation, and their errors.

use std::path::Path;
use std::process::{Command, Output};

fn gannet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gannet")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = gannet(args);
    assert!(o.status.success(), "gannet {args:?}: {}", stderr(&o));
    stderr(&o)
}

fn tiny_stylegan2(out: &Path) -> String {
    ok(&[
        "train",
        "--arch",
        "stylegan2",
        "--resolution",
        "8",
        "--channels",
        "8",
        "--latent-dim",
        "8",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    out.join("checkpoints/latest.safetensors").display().to_string()
}

#[test]
fn edits_of_a_stylegan2_checkpoint_run_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tiny_stylegan2(&tmp.path().join("run"));
    let p = |name: &str| tmp.path().join(name).display().to_string();

    let msg = ok(&[
        "interpolate",
        "--checkpoint",
        &ckpt,
        "--seeds",
        "1,2,3",
        "--space",
        "w",
        "--frames",
        "4",
        "--out",
        &p("path.png"),
        "--gif",
        &p("path.gif"),
        "--frames-dir",
        &p("frames"),
    ]);
    assert!(msg.contains("7 frames"), "{msg}");
    let grid = image::open(p("path.png")).unwrap();
    // Two legs of 4 frames, 8x8 images 2 px apart.
    assert_eq!((grid.width(), grid.height()), (4 * 10 + 2, 2 * 10 + 2));
    assert_eq!(std::fs::read_dir(p("frames")).unwrap().count(), 7);
    let gif = image::open(p("path.gif")).unwrap();
    assert_eq!(gif.width(), 8 * 4, "GIF magnified 4x");

    ok(&["mix", "--checkpoint", &ckpt, "--rows", "1,2", "--cols", "3,4,5", "--cutoff", "2", "--out", &p("mix.png")]);
    let mix = image::open(p("mix.png")).unwrap();
    assert_eq!((mix.width(), mix.height()), (4 * 10 + 2, 3 * 10 + 2));
    let o = gannet(&["mix", "--checkpoint", &ckpt, "--rows", "1", "--cols", "2", "--cutoff", "99", "--out", &p("bad.png")]);
    assert!(!o.status.success() && stderr(&o).contains("cutoff"), "{}", stderr(&o));

    ok(&["sample", "--checkpoint", &ckpt, "-n", "3", "--truncation", "0.5", "--out-dir", &p("targets")]);
    let msg = ok(&["project", "--checkpoint", &ckpt, "--images", &p("targets"), "--steps", "20", "--out", &p("proj")]);
    assert!(msg.contains("mean PSNR"), "{msg}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p("proj/report.json")).unwrap()).unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 3);
    assert!(report["mean_psnr_db"].as_f64().unwrap() > 5.0);
    for f in ["comparison.png", "ws.safetensors", "00000.png"] {
        assert!(tmp.path().join("proj").join(f).exists(), "{f}");
    }
    let o = gannet(&["sample", "--checkpoint", &ckpt, "--truncation", "0", "--out", &p("t.png")]);
    assert!(!o.status.success() && stderr(&o).contains("--truncation"));
    // BigGAN-style truncation: latents redrawn beyond the threshold; the same seed, the same images.
    ok(&["sample", "--checkpoint", &ckpt, "-n", "4", "--truncate-z", "0.5", "--out", &p("tz1.png")]);
    ok(&["sample", "--checkpoint", &ckpt, "-n", "4", "--truncate-z", "0.5", "--out", &p("tz2.png")]);
    ok(&["sample", "--checkpoint", &ckpt, "-n", "4", "--out", &p("plain.png")]);
    let read = |f: &str| image::open(p(f)).unwrap().to_luma8().into_raw();
    assert_eq!(read("tz1.png"), read("tz2.png"));
    assert_ne!(read("tz1.png"), read("plain.png"));
    let o = gannet(&["sample", "--checkpoint", &ckpt, "--truncate-z", "0", "--out", &p("t.png")]);
    assert!(!o.status.success() && stderr(&o).contains("threshold"), "{}", stderr(&o));
}

#[test]
fn w_space_edits_of_a_dcgan_say_they_need_stylegan2() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("dc");
    ok(&["train", "--steps", "1", "--batch-size", "4", "--channels", "4", "--latent-dim", "8", "--out", run.to_str().unwrap()]);
    let ckpt = run.join("checkpoints/latest.safetensors").display().to_string();
    let out = tmp.path().join("m.png").display().to_string();
    for args in [
        vec!["mix", "--checkpoint", &ckpt, "--rows", "1", "--cols", "2", "--out", &out],
        vec!["interpolate", "--checkpoint", &ckpt, "--seeds", "1,2", "--space", "w", "--out", &out],
    ] {
        let o = gannet(&args);
        assert!(!o.status.success() && stderr(&o).contains("stylegan2"), "{args:?}: {}", stderr(&o));
    }
    // Interpolation in z works for any generator.
    ok(&["interpolate", "--checkpoint", &ckpt, "--seeds", "1,2", "--frames", "3", "--out", &out]);
}
