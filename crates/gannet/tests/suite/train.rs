//! The training loop end to end on tiny models: exact resume, run outputs, divergence.

use crate::common;

use common::{resume, run};
use gannet::models::ModelConfig;
use gannet::saved::SavedRun;
use gannet::train::{Quiet, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn tiny_config(dir: &Path, steps: u64) -> TrainConfig {
    common::tiny_config(dir, steps, 8, 11)
}

fn assert_same_tensors(a: &SavedRun, b: &SavedRun) {
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (name, ta) in &a.tensors {
        let tb = &b.tensors[name];
        let diff = (ta.to_dtype(gannet::candle_core::DType::F64).unwrap() - tb.to_dtype(gannet::candle_core::DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert_eq!(diff, 0.0, "tensor {name} differs by {diff}");
    }
}

#[test]
fn resumed_run_equals_unbroken_run_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let full = run(tiny_config(&a, 6));
    let half = run(tiny_config(&b, 3));
    assert_eq!(half.step(), 3);
    let resumed = resume(&half.run_dir().latest_checkpoint(), 6);
    assert_eq!(resumed.step(), 6);
    let dev = gannet::candle_core::Device::Cpu;
    let sa = SavedRun::load(&full.run_dir().latest_checkpoint(), &dev).unwrap();
    let sb = SavedRun::load(&resumed.run_dir().latest_checkpoint(), &dev).unwrap();
    assert_eq!(sa.step, 6);
    assert_same_tensors(&sa, &sb);
    // The metrics of the resumed run line up with the unbroken one, step for step.
    let csv = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    let losses = |t: String| t.lines().skip(1).map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",")).collect::<Vec<_>>();
    assert_eq!(losses(csv(&a)), losses(csv(&b)));
}

#[test]
fn a_run_writes_config_metrics_samples_plot_and_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let t = run(tiny_config(tmp.path(), 4));
    let rd = t.run_dir();
    for p in [rd.config(), rd.metrics_csv(), rd.loss_plot(), rd.latest_grid(), rd.sample_grid(2), rd.sample_grid(4), rd.latest_checkpoint()] {
        assert!(p.exists(), "{} missing", p.display());
    }
    let csv = std::fs::read_to_string(rd.metrics_csv()).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "header + one row per step:\n{csv}");
    let grid = image::open(rd.latest_grid()).unwrap();
    // 4 images of 28x28 in a 2x2 grid with 2-pixel borders.
    assert_eq!((grid.width(), grid.height()), (2 * 30 + 2, 2 * 30 + 2));
    let svg = std::fs::read_to_string(rd.loss_plot()).unwrap();
    assert!(svg.contains("<svg") && svg.contains("polyline"), "loss plot has no lines");
    let cfg = TrainConfig::from_file(&rd.config()).unwrap();
    assert_eq!(&cfg, t.config());
}

#[test]
fn a_new_run_refuses_to_overwrite_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    run(tiny_config(tmp.path(), 2));
    let err = Trainer::new(tiny_config(tmp.path(), 2)).err().expect("must refuse").to_string();
    assert!(err.contains("already holds a checkpoint") && err.contains("--resume"), "{err}");
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: u64| {
        let mut c = tiny_config(&tmp.path().join(name), 2);
        c.seed = seed;
        let t = run(c);
        SavedRun::load(&t.run_dir().latest_checkpoint(), &gannet::candle_core::Device::Cpu).unwrap()
    };
    let (a, b, c) = (run("a", 1), run("b", 1), run("c", 2));
    assert_same_tensors(&a, &b);
    let w = "gen.stem.weight";
    let d = (&a.tensors[w] - &c.tensors[w]).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(d > 0.0);
}

#[test]
fn divergence_is_reported_with_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(tmp.path(), 50);
    cfg.model = ModelConfig::Mlp(gannet::models::mlp::MlpConfig { latent_dim: 4, hidden: 16, layers: 1, tanh_output: true, ..Default::default() });
    cfg.loss = gannet::loss::GanLoss::Wasserstein;
    cfg.optim.disc.lr = 1e30;
    cfg.optim.gen.lr = 1e30;
    let mut t = Trainer::new(cfg).unwrap();
    let err = t.run(&mut Quiet, &AtomicBool::new(false)).expect_err("must diverge").to_string();
    // tests/suite/guard.rs checks the message in detail (with and without a checkpoint on disk).
    assert!(err.contains("diverged") && err.contains("checkpoint") && err.contains("rollback"), "{err}");
}

#[test]
fn a_stop_request_saves_a_checkpoint_that_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(tiny_config(tmp.path(), 100)).unwrap();
    t.train_step().unwrap();
    t.run(&mut Quiet, &AtomicBool::new(true)).unwrap();
    let saved = SavedRun::load(&t.run_dir().latest_checkpoint(), &gannet::candle_core::Device::Cpu).unwrap();
    assert_eq!(saved.step, 1);
}

#[test]
fn invalid_settings_are_rejected_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(tmp.path(), 2);
    cfg.schedule.batch_size = 0;
    assert!(Trainer::new(cfg).err().unwrap().to_string().contains("batch_size"));
    let mut cfg = tiny_config(tmp.path(), 2);
    cfg.data.resolution = Some(30);
    assert!(Trainer::new(cfg).err().unwrap().to_string().contains("30x30"));
    let err = TrainConfig::from_toml_str("[schedule]\nstepz = 3\n").unwrap_err().to_string();
    assert!(err.contains("stepz"), "{err}");
}
