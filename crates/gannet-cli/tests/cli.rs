//! The `gannet` binary as a user meets it: help, errors, a tiny train + sample round trip.

use std::path::Path;
use std::process::{Command, Output};

fn gannet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gannet")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_teaches_with_examples() {
    let o = gannet(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("train") && out.contains("sample") && out.contains("Quick start"), "{out}");
    let o = gannet(&["train", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Examples:") && out.contains("--resume") && out.contains("--data"), "{out}");
}

#[test]
fn missing_data_folder_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-folder");
    let out = tmp.path().join("run");
    let o = gannet(&["train", "--data", missing.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("no-such-folder") && e.starts_with("error:"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn bad_flags_and_values_are_explained() {
    let o = gannet(&["train", "--loss", "magic"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("hinge"), "{}", stderr(&o));
    let o = gannet(&["train", "--arch", "transformer", "--print-config"]);
    assert!(stderr(&o).contains("dcgan, resnet or mlp"), "{}", stderr(&o));
    let o = gannet(&["sample", "--checkpoint", "/nonexistent/latest.safetensors", "--out", "x.png"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/latest.safetensors"), "{}", stderr(&o));
}

#[test]
fn a_corrupted_checkpoint_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("latest.safetensors");
    std::fs::write(&bad, b"definitely not a checkpoint").unwrap();
    let o = gannet(&["sample", "--checkpoint", bad.to_str().unwrap(), "--out", "x.png"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("latest.safetensors"), "{}", stderr(&o));
}

#[test]
fn print_config_round_trips_through_a_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let o = gannet(&["train", "--print-config", "--steps", "7", "--loss", "hinge"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = String::from_utf8(o.stdout).unwrap();
    assert!(toml.contains("steps = 7") && toml.contains("loss = \"hinge\""), "{toml}");
    let file = tmp.path().join("c.toml");
    std::fs::write(&file, &toml).unwrap();
    let o = gannet(&["train", "--config", file.to_str().unwrap(), "--print-config"]);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), toml);
}

fn tiny_train(out: &Path, steps: &str) -> Output {
    gannet(&[
        "train", "--out", out.to_str().unwrap(), "--steps", steps, "--batch-size", "8", "--channels", "4",
        "--latent-dim", "8", "--sample-every", "2", "--checkpoint-every", "2",
    ])
}

#[test]
fn train_resume_and_sample_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = tiny_train(&run, "2");
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    assert!(ckpt.exists());
    // Training again into the same folder without --resume is refused.
    let o = tiny_train(&run, "2");
    assert!(!o.status.success() && stderr(&o).contains("--resume"));
    let o = gannet(&["train", "--resume", ckpt.to_str().unwrap(), "--steps", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("samples/step-000004.png").exists());

    let grid = tmp.path().join("grid.png");
    let o = gannet(&["sample", "--checkpoint", ckpt.to_str().unwrap(), "--out", grid.to_str().unwrap(), "-n", "9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&grid).unwrap();
    assert_eq!((img.width(), img.height()), (3 * 30 + 2, 3 * 30 + 2));

    let dir = tmp.path().join("singles");
    let o = gannet(&["sample", "--checkpoint", ckpt.to_str().unwrap(), "--out-dir", dir.to_str().unwrap(), "-n", "3", "--seed", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = image::open(dir.join("00000.png")).unwrap();
    assert_eq!((first.width(), first.height()), (28, 28));
    assert!(dir.join("00002.png").exists() && !dir.join("00003.png").exists());
    // Same seed, same images.
    let dir2 = tmp.path().join("singles2");
    gannet(&["sample", "--checkpoint", ckpt.to_str().unwrap(), "--out-dir", dir2.to_str().unwrap(), "-n", "3", "--seed", "5"]);
    assert_eq!(std::fs::read(dir.join("00001.png")).unwrap(), std::fs::read(dir2.join("00001.png")).unwrap());
}
