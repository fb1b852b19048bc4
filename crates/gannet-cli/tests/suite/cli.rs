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
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("transformer") && e.contains("`dcgan`") && e.contains("`stylegan2`"), "{e}");
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
        "train",
        "--out",
        out.to_str().unwrap(),
        "--steps",
        steps,
        "--batch-size",
        "8",
        "--channels",
        "4",
        "--latent-dim",
        "8",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
    ])
}

/// The binary switches second-order gradients on only for configs that need them; a penalised
/// run must still get them (the trainer checks and fails loudly when it does not).
#[test]
fn penalised_training_gets_second_order_gradients() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["r1", "wgan-gp"] {
        let o = gannet(&["train", "--print-config", "--steps", "2", "--batch-size", "8", "--channels", "4", "--latent-dim", "8"]);
        let toml = String::from_utf8(o.stdout).unwrap().replace("kind = \"none\"", &format!("kind = \"{kind}\""));
        assert!(toml.contains(&format!("kind = \"{kind}\"")), "{toml}");
        let file = tmp.path().join(format!("{kind}.toml"));
        std::fs::write(&file, &toml).unwrap();
        let run = tmp.path().join(kind);
        let o = gannet(&["train", "--config", file.to_str().unwrap(), "--out", run.to_str().unwrap()]);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        assert!(run.join("checkpoints/latest.safetensors").exists(), "{kind}");
    }
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

#[test]
fn sample_no_ema_uses_the_trained_generator() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = tiny_train(&run, "3");
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let sample = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = vec!["sample", "--checkpoint", ckpt.to_str().unwrap(), "--out", out.to_str().unwrap(), "-n", "4"];
        args.extend_from_slice(extra);
        let o = gannet(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out).unwrap()
    };
    // The EMA shadow lags the trained generator, so the same latents give different images.
    assert_ne!(sample("ema.png", &[]), sample("raw.png", &["--no-ema"]));
}

#[test]
fn bench_reports_every_requested_workload_as_json() {
    // A DCGAN row, a preset whose lazy R1 and path length need second-order gradients (timed in
    // a child process beside the other rows) and the FID network's features.
    let o = gannet(&["bench", "--only", "train32,stylegan2,fid", "--reps", "1", "--warmup", "0", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["train32", "fid", "stylegan2"], "{v}");
    for r in v["results"].as_array().unwrap() {
        assert!(r["img_per_s"].as_f64().unwrap() > 0.0 && r["gflop"].as_f64().unwrap() > 0.0 && r["mean_s"].as_f64().is_some(), "{r}");
    }
    let (sg2, fid) = (&v["results"][2], &v["results"][1]);
    assert_eq!((sg2["batch"].as_u64(), sg2["resolution"].as_u64()), (Some(32), Some(32)), "the preset's batch and resolution: {sg2}");
    // Inception-v3 at 299x299 is 5.7 GMAC per image.
    let per_image = fid["gflop"].as_f64().unwrap() / 50.0;
    assert!((11.0..12.0).contains(&per_image), "{per_image} GFLOP per image");
    let o = gannet(&["bench", "--only", "train128"]);
    assert!(!o.status.success() && stderr(&o).contains("train64") && stderr(&o).contains("cyclegan"), "{}", stderr(&o));
    // An image-to-image preset's step: its batch, the MACs counted as the step ran, the CPU named.
    let o = gannet(&["bench", "--only", "superres", "--reps", "1", "--warmup", "0", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = &v["results"][0];
    assert_eq!((row["name"].as_str(), row["batch"].as_u64(), row["resolution"].as_u64()), (Some("superres"), Some(8), Some(64)), "{v}");
    assert!(row["gflop"].as_f64().unwrap() > 1.0 && row["img_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(!v["cpu"].as_str().unwrap().is_empty() && v["kernels"].as_str().unwrap().contains("gemm"), "{v}");
}

#[test]
fn eval_and_classifier_explain_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let o = gannet(&["eval"]);
    assert!(!o.status.success() && stderr(&o).contains("--checkpoint") && stderr(&o).contains("--images"), "{}", stderr(&o));
    let o = gannet(&["eval", "--images", "/nonexistent/samples"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/samples"), "{}", stderr(&o));
    let o = gannet(&["eval", "--checkpoint", "/nonexistent/latest.safetensors"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/latest.safetensors"), "{}", stderr(&o));
    let dir = tmp.path().to_str().unwrap();
    let o = gannet(&["eval", "--images", dir, "--metrics", "fid,is"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'is'") && stderr(&o).contains("cfid"), "{}", stderr(&o));
    let o = gannet(&["eval", "--images", dir, "-n", "1"]);
    assert!(stderr(&o).contains("--count"), "{}", stderr(&o));
    let o = gannet(&["eval", "--images", dir, "--data", "/nonexistent/mnist"]);
    assert!(stderr(&o).contains("/nonexistent/mnist") && !stderr(&o).contains("panicked"), "{}", stderr(&o));
    let o = gannet(&["eval", "--images", dir, "--classifier", "/nonexistent/clf.safetensors", "--metrics", "cfid"]);
    assert!(stderr(&o).contains("/nonexistent/clf.safetensors"), "{}", stderr(&o));
    let o = gannet(&["classifier", "--data", "/nonexistent/labelled"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/labelled"), "{}", stderr(&o));
}

/// Writes digits `range` of the built-in set as PNGs into `dir`; returns their labels.
fn write_digits(dir: &Path, range: std::ops::Range<usize>) -> Vec<u32> {
    use gannet::data::{self, DataSource, LoadOptions};
    let d = data::load(&DataSource::BuiltinDigits, &LoadOptions::default()).unwrap();
    let idx: Vec<usize> = range.collect();
    let t = d.batch_tensor(&idx, &gannet::candle_core::Device::Cpu).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (i, img) in gannet::image_io::to_images(&t).unwrap().iter().enumerate() {
        gannet::image_io::save_png(img, &dir.join(format!("{i:03}.png"))).unwrap();
    }
    idx.iter().map(|&i| d.labels().unwrap()[i]).collect()
}

fn json_number(text: &str, key: &str) -> f64 {
    let at = text.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("no {key} in {text}"));
    let rest = &text[at + key.len() + 3..];
    rest.trim_start().split([',', '\n', '}']).next().unwrap().trim().parse().unwrap()
}

#[test]
fn eval_scores_a_folder_of_pngs_and_caches_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (real, other, cache) = (tmp.path().join("real"), tmp.path().join("other"), tmp.path().join("cache"));
    let labels = write_digits(&real, 0..6);
    write_digits(&other, 100..106);
    let args = |images: &Path| {
        vec![
            "eval".to_string(),
            "--images".into(),
            images.display().to_string(),
            "--data".into(),
            real.display().to_string(),
            "--metrics".into(),
            "fid,cfid,classes".into(),
            "-n".into(),
            "6".into(),
            "--json".into(),
            "--cache-dir".into(),
            cache.display().to_string(),
        ]
    };
    let run = |images: &Path| {
        let a = args(images);
        gannet(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // The reference against itself: both distances are zero (up to rounding).
    let o = run(&real);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let (fid, cfid) = (json_number(&out, "fid"), json_number(&out, "cfid"));
    assert!(fid.abs() < 0.01 && cfid.abs() < 1e-3, "{out}");
    let mut distinct = labels.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(json_number(&out, "covered") as usize, distinct.len(), "{out}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2, "Inception and classifier features cached");
    // Other digits: positive distances; the reference now comes from the cache.
    let o = run(&other);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("from the cache"), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(json_number(&out, "fid") > 1.0 && json_number(&out, "cfid") > 1.0, "{out}");
}

#[test]
fn eval_a_checkpoint_with_classifier_metrics_prints_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = tiny_train(&run, "2");
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let o = gannet(&["eval", "--checkpoint", ckpt.to_str().unwrap(), "--metrics", "cfid,classes", "-n", "40", "--no-cache"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    // The reference defaults to the run's data (the built-in digits).
    assert!(out.contains("40 generated vs 40 reference images (builtin:digits-10k)"), "{out}");
    assert!(out.contains("classifier FID") && out.contains("classes covered") && out.contains("builtin:mnist"), "{out}");
}

#[test]
fn train_with_eval_every_writes_metrics_eval_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = gannet(&["train", "--print-config", "--eval-every", "2", "--eval-metrics", "cfid,classes"]);
    let toml = String::from_utf8(o.stdout).unwrap();
    assert!(toml.contains("[eval]") && toml.contains("every = 2") && toml.contains("\"classes\""), "{toml}");
    let o = gannet(&["train", "--eval-metrics", "cfid,bogus", "--print-config"]);
    assert!(!o.status.success() && stderr(&o).contains("bogus"), "{}", stderr(&o));
    // The reference features are cached in GANNET_CACHE (here a scratch folder).
    let o = Command::new(env!("CARGO_BIN_EXE_gannet"))
        .args([
            "train",
            "--out",
            run.to_str().unwrap(),
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--channels",
            "4",
            "--latent-dim",
            "8",
            "--eval-every",
            "1",
            "--eval-metrics",
            "cfid",
            "--eval-count",
            "16",
        ])
        .env("GANNET_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(run.join("metrics_eval.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("step,cfid,eval_s\n1,") && run.join("eval_cfid.svg").exists(), "{csv}");
    assert_eq!(std::fs::read_dir(tmp.path().join("cache")).unwrap().count(), 1);
}

fn tiny_conditional_train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--channels",
        "4",
        "--latent-dim",
        "8",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
    ];
    args.extend_from_slice(extra);
    gannet(&args)
}

const NAMES: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

#[test]
fn conditional_sampling_by_class_index_and_name() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let names = NAMES.join(",");
    let o = tiny_conditional_train(&run, &["--conditional", "acgan", "--class-names", &names]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let ck = ckpt.to_str().unwrap();
    let sample = |extra: &[&str]| {
        let mut a = vec!["sample", "--checkpoint", ck];
        a.extend_from_slice(extra);
        gannet(&a)
    };
    // --class 7 and --class-name seven give the same images (same seed).
    let (a, b) = (tmp.path().join("a.png"), tmp.path().join("b.png"));
    let o = sample(&["--class", "7", "-n", "4", "--out", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("seven"), "{}", stderr(&o));
    let o = sample(&["--class-name", "seven", "-n", "4", "--out", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(&a).unwrap().to_rgb8(), image::open(&b).unwrap().to_rgb8());
    let text = gannet::image_io::read_png_text(&a).unwrap();
    assert!(text.contains(&("gannet:class".to_string(), "seven".to_string())), "{text:?}");
    // Another class gives other images.
    let c = tmp.path().join("c.png");
    assert!(sample(&["--class", "3", "-n", "4", "--out", c.to_str().unwrap()]).status.success());
    assert_ne!(image::open(&a).unwrap().to_rgb8(), image::open(&c).unwrap().to_rgb8());
    // Without --class the grid has one class per row: 10 rows of ceil(20/10) = 2.
    let g = tmp.path().join("g.png");
    assert!(sample(&["-n", "20", "--out", g.to_str().unwrap()]).status.success());
    let img = image::open(&g).unwrap();
    assert_eq!((img.width(), img.height()), (2 * 30 + 2, 10 * 30 + 2));

    // Errors: an unknown name lists the valid ones; an index out of range says the range.
    let o = sample(&["--class-name", "sneaker", "--out", g.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("sneaker") && e.contains("7 = seven") && e.contains("0 = zero"), "{e}");
    let o = sample(&["--class", "10", "--out", g.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("--class 10") && e.contains("10 classes") && e.contains("0 to 9"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn class_options_on_an_unconditional_checkpoint_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = tiny_conditional_train(&run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let out = tmp.path().join("x.png");
    for extra in [&["--class", "1", "--out"][..], &["--class-name", "1", "--out"], &["--per-class", "2", "--out-dir"]] {
        let mut a = vec!["sample", "--checkpoint", ckpt.to_str().unwrap()];
        a.extend_from_slice(extra);
        a.push(out.to_str().unwrap());
        let o = gannet(&a);
        assert_eq!(o.status.code(), Some(1), "{extra:?}");
        let e = stderr(&o);
        assert!(e.contains("unconditional") && e.contains("cgan-mnist"), "{e}");
    }
    let o = gannet(&["eval", "--checkpoint", ckpt.to_str().unwrap(), "--metrics", "cacc", "-n", "20", "--no-cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("class-conditional"), "{}", stderr(&o));
}

#[test]
fn per_class_export_reads_back_with_the_same_labels_and_says_it_is_synthetic() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // Names whose alphabetical order is not the label order.
    let names = NAMES.join(",");
    let o = tiny_conditional_train(&run, &["--conditional", "projection", "--class-names", &names]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let dir = tmp.path().join("synthetic");
    let o = gannet(&["sample", "--checkpoint", ckpt.to_str().unwrap(), "--per-class", "3", "--out-dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in NAMES {
        assert!(dir.join(name).join("00002.png").exists() && !dir.join(name).join("00003.png").exists(), "{name}");
    }
    let ds = gannet::data::load(&gannet::data::DataSource::Path(dir.clone()), &gannet::data::LoadOptions::default()).unwrap();
    assert_eq!(ds.class_names(), NAMES);
    let want: Vec<u32> = (0..10).flat_map(|c| [c; 3]).collect();
    assert_eq!(ds.labels().unwrap(), want.as_slice());
    let text = gannet::image_io::read_png_text(&dir.join("seven/00001.png")).unwrap();
    let get = |k: &str| text.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("gannet:source"), Some("synthetic"));
    assert_eq!(get("gannet:class"), Some("seven"));
    assert_eq!(get("gannet:class-index"), Some("7"));
    assert_eq!(get("gannet:step"), Some("2"));
    assert!(get("gannet:checkpoint").unwrap().ends_with("latest.safetensors"));
    assert!(get("Software").unwrap().starts_with("gannet"));
    // The export scores per class (labels from the subfolders); so does the checkpoint itself.
    for args in [
        vec!["eval", "--images", dir.to_str().unwrap(), "--metrics", "cacc", "-n", "30", "--no-cache"],
        vec!["eval", "--checkpoint", ckpt.to_str().unwrap(), "--metrics", "cacc", "-n", "30", "--no-cache"],
    ] {
        let o = gannet(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(out.contains("class accuracy") && out.contains("labelled as the class"), "{out}");
    }
    // A model trained on the export sees the same classes (the round trip a user makes).
    let o = gannet(&["train", "--data", dir.to_str().unwrap(), "--conditional", "projection", "--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --per-class needs --out-dir.
    let o = gannet(&["sample", "--checkpoint", ckpt.to_str().unwrap(), "--per-class", "3", "--out", "x.png"]);
    assert!(!o.status.success());
}

#[test]
fn presets_are_listed_and_used() {
    let o = gannet(&["train", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for p in ["dcgan-mnist", "cgan-mnist", "cgan-fashion", "sngan-fashion", "wgan-gp-fashion", "r1-fashion", "wgan-gp-emoji"] {
        assert!(out.contains(p), "{p} missing from train --help:\n{out}");
    }
    let o = gannet(&["train", "--preset", "cgan-fashion", "--steps", "9", "--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = String::from_utf8_lossy(&o.stdout);
    assert!(toml.contains("steps = 9") && toml.contains("conditional = \"acgan\"") && toml.contains("sneaker"), "{toml}");
    let o = gannet(&["train", "--preset", "cgan-mnist", "--conditional", "projection", "--print-config"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("conditional = \"projection\""));
    let o = gannet(&["train", "--preset", "magic"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wgan-gp-emoji"), "{}", stderr(&o));
}

// ---- bad input: exit status 1 with a message naming the setting, never a panic (101), an abort
// (134) or a hang; progress that a log file can follow.

/// Exit status 1 (an error the user can fix) and the message contains every `needle`.
fn refused(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "expected '{n}' in: {e}");
    }
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
    for (from, to, setting) in
        [("sample_count = 64", "sample_count = 0", "output.sample_count"), ("beta1 = 0.5", "beta1 = 1.5", "beta1"), ("eps = 0.00000001", "eps = -1.0", "eps")]
    {
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

/// Waits (up to a minute) until `path` has at least `lines` lines.
fn wait_for_lines(path: &Path, lines: usize) {
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(path).map_or(0, |s| s.lines().count()) < lines {
        assert!(t0.elapsed().as_secs() < 60, "{} never reached {lines} lines", path.display());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_saves_and_exits_130_and_a_live_run_keeps_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let args = ["train", "--out", run.to_str().unwrap(), "--steps", "1000000", "--batch-size", "8", "--channels", "4", "--latent-dim", "8"];
    let child = Command::new(env!("CARGO_BIN_EXE_gannet")).args(args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // A header and two rows: it is training.
    wait_for_lines(&run.join("metrics.csv"), 3);

    let second = gannet(&args);
    assert_eq!(second.status.code(), Some(1));
    assert!(stderr(&second).contains("in use by another gannet process"), "{}", stderr(&second));

    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("stopped at step") && err.contains("checkpoint saved") && !err.contains("done at step"), "{err}");
    let ckpt = run.join("checkpoints/latest.safetensors");
    assert!(ckpt.exists());

    // The stopped run resumes; a flag that would change its data is refused, naming both values.
    let o = gannet(&["train", "--resume", ckpt.to_str().unwrap(), "--data", "/no/such/pictures"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("data.source") && stderr(&o).contains("builtin:digits") && stderr(&o).contains("/no/such/pictures"), "{}", stderr(&o));
    let o = gannet(&["train", "--resume", ckpt.to_str().unwrap(), "--steps", "1"]);
    assert!(!o.status.success() && stderr(&o).contains("nothing left to train"), "{}", stderr(&o));
}

#[test]
fn classifier_trains_in_a_run_folder_resumes_and_saves_the_network() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, run) = (tmp.path().join("digits.safetensors"), tmp.path().join("run"));
    let args = |steps: &str| {
        vec![
            "classifier",
            "--data",
            "builtin:digits",
            "--steps",
            steps,
            "--batch-size",
            "32",
            "--out",
            out.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let o = gannet(&args("20").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("test accuracy"), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(out.exists() && run.join("metrics.csv").exists() && run.join("checkpoints/latest.safetensors").exists());
    // The same folder again is another run: refused; --resume goes on from step 20.
    let o = gannet(&args("20").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success() && stderr(&o).contains("already holds a checkpoint"), "{}", stderr(&o));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let o = gannet(&["classifier", "--resume", ckpt.to_str().unwrap(), "--steps", "30", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().last().unwrap().split(',').next(), Some("30"), "{rows}");
    // The saved network measured again on labelled images: a line per class; without test
    // images the error names the flag.
    let o = gannet(&["classifier", "--measure", out.to_str().unwrap(), "--test-data", "builtin:digits"]);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout.contains("on builtin:digits (10000 images)"), "{stdout}");
    let counts: usize = stdout.lines().skip(2).map(|l| l.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap()).sum();
    assert_eq!(counts, 10_000, "{stdout}");
    let o = gannet(&["classifier", "--measure", out.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("--test-data"), "{}", stderr(&o));
    // --class-names renames the saved classes (checked against the data's count) for the table.
    let names = "zero,one,two,three,four,five,six,seven,eight,nine";
    let o = gannet(&["classifier", "--measure", out.to_str().unwrap(), "--test-data", "builtin:digits", "--class-names", names]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gannet(&["classifier", "--measure", out.to_str().unwrap(), "--test-data", "builtin:digits"]);
    assert!(String::from_utf8_lossy(&o.stdout).lines().nth(9).unwrap().trim_start().starts_with("seven "), "{}", String::from_utf8_lossy(&o.stdout));
    let o = gannet(&["classifier", "--measure", out.to_str().unwrap(), "--test-data", "builtin:digits", "--class-names", "a,b"]);
    assert!(!o.status.success() && stderr(&o).contains("2 names") && stderr(&o).contains("10 classes"), "{}", stderr(&o));
}

/// `--device cuda` on a build (or machine) without CUDA: a clear error naming the fix, before the
/// run folder exists. (scripts/check_cuda_build.sh checks the same for a CUDA build without a GPU.)
#[test]
fn an_unusable_gpu_is_refused_before_the_run_folder_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = gannet(&["train", "--device", "cuda", "--steps", "1", "--batch-size", "8", "--channels", "4", "--latent-dim", "8", "--out", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    let hint = if cfg!(feature = "cuda") { "needs an NVIDIA driver" } else { "built without CUDA support" };
    assert!(err.contains("device 'cuda'") && err.contains(hint) && err.contains("--device cpu"), "{err}");
    assert!(!out.exists(), "the refused run made {}", out.display());
}

/// `--launch` on a build without MPI says how to get one instead of starting mpirun.
#[cfg(not(feature = "mpi"))]
#[test]
fn launch_without_mpi_support_names_the_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = gannet(&["train", "--launch", "2", "--steps", "1", "--out", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("--features mpi") && err.contains("libopenmpi-dev"), "{err}");
    assert!(!out.exists());
}
