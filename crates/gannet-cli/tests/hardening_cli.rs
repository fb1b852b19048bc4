//! Bad input at the command line: exit status 1 with a message naming the setting, never a
//! panic (101), an abort (134) or a hang; progress that a log file can follow.

use std::path::Path;
use std::process::{Command, Output};

fn gannet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gannet")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status 1 (an error the user can fix) and the message contains every `needle`.
fn refused(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "expected '{n}' in: {e}");
    }
}

fn tiny_train(out: &Path, steps: &str) -> Output {
    gannet(&[
        "train", "--out", out.to_str().unwrap(), "--steps", steps, "--batch-size", "8", "--channels", "4", "--latent-dim", "8",
        "--sample-every", "2", "--checkpoint-every", "2",
    ])
}

#[test]
fn bad_sizes_from_flags_and_configs_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out = out.to_str().unwrap();
    refused(&gannet(&["train", "--channels", "0", "--out", out, "--steps", "1"]), &["model.g_channels"]);
    refused(&gannet(&["train", "--latent-dim", "4000000000", "--out", out, "--steps", "1"]), &["model.latent_dim"]);
    refused(&gannet(&["train", "--resolution", "8192", "--out", out, "--steps", "1"]), &["data.resolution"]);
    let o = gannet(&["train", "--print-config"]);
    let toml = String::from_utf8(o.stdout).unwrap();
    for (from, to, setting) in [
        ("sample_count = 64", "sample_count = 0", "output.sample_count"),
        ("beta1 = 0.5", "beta1 = 1.5", "beta1"),
        ("eps = 0.00000001", "eps = -1.0", "eps"),
    ] {
        assert!(toml.contains(from), "{from} not in the printed config");
        let file = tmp.path().join("bad.toml");
        std::fs::write(&file, toml.replacen(from, to, 1)).unwrap();
        refused(&gannet(&["train", "--config", file.to_str().unwrap(), "--out", out]), &[setting]);
    }
}

#[test]
fn the_memory_budget_refuses_what_does_not_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = gannet(&["--max-memory", "1M", "train", "--out", out.to_str().unwrap(), "--steps", "1"]);
    refused(&o, &["--max-memory", "1.0 MiB"]);
    // A malformed flag value is a usage error (clap's exit status 2) that shows the format.
    let o = gannet(&["train", "--max-memory", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("4G"), "{}", stderr(&o));
}

#[test]
fn sampling_is_bounded_and_writes_what_its_name_says() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = tiny_train(&run, "2");
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    // A grid of a hundred million images is refused before anything is generated.
    let grid = tmp.path().join("grid.png");
    refused(&gannet(&["sample", "--checkpoint", ckpt, "-n", "100000000", "--out", grid.to_str().unwrap()]), &["grid"]);
    assert!(!grid.exists());
    // PNG bytes under a .jpg name would mislead every program that trusts the name.
    let jpg = tmp.path().join("grid.jpg");
    refused(&gannet(&["sample", "--checkpoint", ckpt, "--out", jpg.to_str().unwrap()]), &[".png"]);
    assert!(!jpg.exists());
    // Single images are generated and written a chunk at a time: the images after the first
    // chunk are those of a run that asked for fewer.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let o = gannet(&["sample", "--checkpoint", ckpt, "-n", "300", "--seed", "3", "--out-dir", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&a).unwrap().count(), 300);
    let o = gannet(&["sample", "--checkpoint", ckpt, "-n", "260", "--seed", "3", "--out-dir", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for i in [0, 255, 256, 259] {
        let name = format!("{i:05}.png");
        assert_eq!(std::fs::read(a.join(&name)).unwrap(), std::fs::read(b.join(&name)).unwrap(), "{name}");
    }
}

#[test]
fn special_files_are_refused_without_hanging() {
    refused(&gannet(&["sample", "--checkpoint", "/dev/zero", "--out", "x.png"]), &["/dev/zero", "not a regular file"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    refused(&gannet(&["train", "--data", "/dev/zero", "--steps", "1", "--out", out.to_str().unwrap()]), &["/dev/zero"]);
    refused(&gannet(&["train", "--config", "/dev/zero"]), &["/dev/zero", "not a regular file"]);
}

#[test]
fn progress_reaches_a_log_file_every_few_percent() {
    let tmp = tempfile::tempdir().unwrap();
    // stderr is a pipe here, as in a CI log or under nohup: no terminal to redraw a bar on.
    let o = tiny_train(&tmp.path().join("run"), "40");
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("step ") && l.contains("%), ")).collect();
    assert!(lines.len() >= 15, "expected a line every 5% of 40 steps, got:\n{e}");
    assert!(lines.iter().any(|l| l.contains("step 20/40 (50%)") && l.contains("img/s")), "{e}");
    assert!(lines.last().unwrap().contains("step 40/40 (100%)"), "{e}");
}
