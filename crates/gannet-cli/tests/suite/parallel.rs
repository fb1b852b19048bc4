//! Data-parallel training over MPI (built with `--features mpi`; needs OpenMPI's `mpirun`):
//! `gannet train --launch 2` must train the weights one process trains on the combined batch,
//! and checkpoints must resume under any number of processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn gannet(args: &[&str]) -> Output {
    // One thread per process keeps the two ranks from fighting over CI's two cores.
    Command::new(env!("CARGO_BIN_EXE_gannet")).args(args).env("RAYON_NUM_THREADS", "1").output().expect("runs")
}

fn ok(args: &[&str]) -> String {
    let o = gannet(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "gannet {args:?} failed:\n{err}");
    err
}

/// A tiny DCGAN run (batch norm in both networks) in `out`, plus `extra` flags.
fn dcgan(out: &Path, steps: u64, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> =
        ["train", "--batch-size", "8", "--channels", "4", "--latent-dim", "8", "--sample-every", "2", "--checkpoint-every", "2", "--seed", "3"]
            .map(String::from)
            .to_vec();
    a.extend(["--steps".into(), steps.to_string(), "--out".into(), out.display().to_string()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(args: &[String]) -> String {
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The networks' weights and buffers (`gen.*`, `disc.*`, `gen_ema.*`) of a run's checkpoint.
fn weights(run: &Path) -> BTreeMap<String, Vec<f32>> {
    let path = run.join("checkpoints/latest.safetensors");
    let rec = gannet::checkpoint::record::Record::read(&path, "train", "gannet train", &gannet::candle_core::Device::Cpu).unwrap();
    rec.tensors
        .iter()
        .filter(|(k, _)| k.starts_with("gen") || k.starts_with("disc"))
        .map(|(k, t)| (k.clone(), t.flatten_all().unwrap().to_dtype(gannet::candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// The largest absolute difference between two runs' weights (same names required).
fn max_diff(a: &Path, b: &Path) -> f32 {
    let (wa, wb) = (weights(a), weights(b));
    assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
    wa.iter().flat_map(|(k, va)| va.iter().zip(&wb[k]).map(|(x, y)| (x - y).abs())).fold(0.0, f32::max)
}

/// Float tolerance: the runs differ only in the order of sums (the mean of two half-batch means,
/// batch norm sums combined over processes). Measured on an AMD EPYC: largest difference 2.9e-6
/// for the DCGAN (learning rate 2e-4), against 1.4e-3 with per-process batch norm statistics;
/// other CPUs pick other kernels and round differently, hence the margin.
const TOL: f32 = 5e-5;
/// The same for StyleGAN2 (learning rate 2.5e-3, weights of order 1 under equalised learning
/// rates, 4 steps): measured 3.1e-5; a missing synchronisation (w_avg, noise drawn per process)
/// gave 8e-3.
const TOL_STYLEGAN2: f32 = 2e-4;

#[test]
fn two_processes_train_the_weights_one_process_trains_on_the_combined_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two, unsynced) = (tmp.path().join("one"), tmp.path().join("two"), tmp.path().join("unsynced"));
    run(&dcgan(&one, 3, &[]));
    let log = run(&dcgan(&two, 3, &["--launch", "2"]));
    assert!(log.contains("data-parallel: 2 processes (mpi), batch 8 = 2 x 4"), "{log}");
    // Rank 0 alone writes and reports: one "done" line, one metrics row per step.
    assert_eq!(log.matches("done at step 3").count(), 1, "{log}");
    let d = max_diff(&one, &two);
    eprintln!("DCGAN, 2 processes vs 1: largest weight difference {d:e}");
    assert!(d < TOL, "2 processes vs 1: weights differ by {d}");
    // The logged losses are the combined batch's (columns up to images_per_s).
    let losses = |run: &Path| -> Vec<Vec<f64>> {
        let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        text.lines().skip(1).map(|l| l.split(',').take(5).map(|v| v.parse().unwrap()).collect()).collect()
    };
    let (l1, l2) = (losses(&one), losses(&two));
    assert!(!l1.is_empty() && l1.len() == l2.len(), "{l1:?} vs {l2:?}");
    for (a, b) in l1.iter().flatten().zip(l2.iter().flatten()) {
        assert!((a - b).abs() < 1e-4, "logged losses differ: {l1:?} vs {l2:?}");
    }
    // Per-process batch norm statistics train something else: the synchronisation is real.
    let cfg = tmp.path().join("unsynced.toml");
    std::fs::write(&cfg, "[parallel]\nsync_batch_norm = false\n").unwrap();
    run(&dcgan(&unsynced, 3, &["--launch", "2", "--config", cfg.to_str().unwrap()]));
    let d = max_diff(&one, &unsynced);
    eprintln!("DCGAN, unsynchronised batch norm: largest weight difference {d:e}");
    assert!(d > 10.0 * TOL, "unsynchronised batch norm should differ from the combined batch, differs by {d}");
}

#[test]
fn stylegan2_in_two_processes_equals_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path, extra: &[&str]| {
        let mut a: Vec<String> = [
            "train",
            "--arch",
            "stylegan2",
            "--resolution",
            "32",
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--sample-every",
            "4",
            "--checkpoint-every",
            "4",
            "--seed",
            "5",
        ]
        .map(String::from)
        .to_vec();
        a.extend(["--out".into(), out.display().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The architecture's default size (that of the stylegan2-fashion preset: 64 channels, 4
    // mapping layers, 32x32). R1 (second-order gradients) every other step; style mixing, path
    // length and minibatch standard deviation are on in the defaults.
    let cfg = tmp.path().join("r1.toml");
    std::fs::write(&cfg, "[penalty]\nkind = \"r1\"\nweight = 1.0\nevery = 2\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    run(&args(&one, &["--config", cfg]));
    run(&args(&two, &["--config", cfg, "--launch", "2"]));
    let d = max_diff(&one, &two);
    eprintln!("StyleGAN2, 2 processes vs 1: largest weight difference {d:e}");
    assert!(d < TOL_STYLEGAN2, "StyleGAN2, 2 processes vs 1: weights differ by {d}");
}

#[test]
fn checkpoints_resume_under_another_number_of_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let unbroken = tmp.path().join("unbroken");
    run(&dcgan(&unbroken, 4, &[]));
    for (first, then) in [(&["--launch", "2"][..], &[][..]), (&[][..], &["--launch", "2"][..])] {
        let dir = tmp.path().join(format!("from-{}", first.len()));
        run(&dcgan(&dir, 2, first));
        let ckpt = dir.join("checkpoints/latest.safetensors").display().to_string();
        let mut resume = vec!["train", "--resume", &ckpt, "--steps", "4"];
        resume.extend(then);
        ok(&resume);
        let d = max_diff(&unbroken, &dir);
        assert!(d < TOL, "{first:?} then {then:?}: weights differ from the unbroken run by {d}");
    }
}

#[test]
fn a_batch_that_does_not_split_over_the_processes_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // Batch 8 over 3 processes.
    let a = dcgan(&out, 2, &["--launch", "3"]);
    let o = gannet(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("does not split evenly over 3 processes"), "{err}");
    assert!(!out.join("checkpoints").exists(), "a refused run leaves no checkpoint");
}

/// `mpirun` called directly (the multi-machine way) with a task that does not train
/// data-parallel: refused with the reason, on every process, instead of N copies training alone.
#[test]
fn tasks_without_data_parallel_training_refuse_to_run_under_mpirun() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clf.safetensors");
    let mut cmd = Command::new("mpirun");
    cmd.args(["-np", "2", "--oversubscribe", "--bind-to", "none"]);
    if std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")) {
        cmd.arg("--allow-run-as-root");
    }
    let o = cmd
        .args([
            "-x",
            "RAYON_NUM_THREADS=1",
            env!("CARGO_BIN_EXE_gannet"),
            "classifier",
            "--data",
            "builtin:digits",
            "--steps",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("mpirun runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("available for `gannet train` only"), "{err}");
    assert!(!out.exists());
}

/// `gannet` as the leader of a new process group (as a terminal runs it), its stderr going to a
/// file (a pipe nobody reads while it runs would fill up and stall the run).
struct Group {
    child: std::process::Child,
    stderr: std::path::PathBuf,
}

fn spawn_group(args: &[&str], stderr: std::path::PathBuf) -> Group {
    use std::os::unix::process::CommandExt;
    let file = std::fs::File::create(&stderr).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gannet"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    Group { child, stderr }
}

impl Group {
    /// Waits at most `secs` seconds: a run that hangs (a process left waiting in a collective)
    /// fails the test instead of stalling CI. Returns the exit code and stderr.
    fn wait_at_most(mut self, secs: u64) -> (Option<i32>, String) {
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed().as_secs() > secs {
                let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", self.child.id())]).status();
                let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                panic!("the run did not end within {secs} s: a process hung; its stderr:\n{err}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        (status.code(), std::fs::read_to_string(&self.stderr).unwrap())
    }
}

#[test]
fn a_divergence_rolls_back_and_stops_every_process_together() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let cfg = tmp.path().join("guard.toml");
    std::fs::write(&cfg, "[guard]\nrollback = true\nmax_rollbacks = 2\n").unwrap();
    run(&dcgan(&dir, 2, &["--launch", "2", "--config", cfg.to_str().unwrap()]));
    let ckpt = dir.join("checkpoints/latest.safetensors").display().to_string();
    // Absurd learning rates: non-finite weights at once, rollback, again, then the stop.
    let group = spawn_group(&["train", "--resume", &ckpt, "--steps", "10", "--lr-d", "1e30", "--lr-g", "1e30", "--launch", "2"], tmp.path().join("err"));
    let (code, err) = group.wait_at_most(120);
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(err.contains("training diverged") && err.contains("after 2 rollbacks"), "{err}");
    let log = std::fs::read_to_string(dir.join("guard.log")).unwrap();
    assert_eq!(log.matches("rolled back to").count(), 2, "{log}");
}

#[test]
fn ctrl_c_stops_every_process_with_a_checkpoint_and_status_130() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let args = dcgan(&dir, 1_000_000, &["--launch", "2"]);
    let group = spawn_group(&args.iter().map(String::as_str).collect::<Vec<_>>(), tmp.path().join("err"));
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(dir.join("metrics.csv")).map_or(0, |s| s.lines().count()) < 3 {
        assert!(t0.elapsed().as_secs() < 60, "the run never logged two rows");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // What a terminal's Ctrl-C does: SIGINT to the whole foreground group (gannet, mpirun, ranks).
    assert!(Command::new("kill").args(["-s", "INT", "--", &format!("-{}", group.child.id())]).status().unwrap().success());
    let (code, err) = group.wait_at_most(60);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("stopped at step") && err.contains("checkpoint saved"), "{err}");
    // The checkpoint resumes (in one process).
    let ckpt = dir.join("checkpoints/latest.safetensors");
    let step = gannet::checkpoint::record::Record::read(&ckpt, "train", "gannet train", &gannet::candle_core::Device::Cpu).unwrap().run.step;
    ok(&["train", "--resume", ckpt.to_str().unwrap(), "--steps", &(step + 1).to_string()]);
}

/// Minibatch standard deviation groups images of the combined batch: a process holding part of a
/// group is refused with the batch size to use (12 over 2 processes: groups of 4, 6 each).
#[test]
fn processes_must_hold_whole_minibatch_std_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = gannet(&[
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
        "1",
        "--batch-size",
        "12",
        "--launch",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("minibatch standard deviation groups 4 images") && err.contains("multiple of 8"), "{err}");
}
