//! The divergence guard: signals, stopping with the last good checkpoint, rollback with lower
//! learning rates, and TTUR (separate learning rates reach the optimizers).

use gannet::candle_core::Device;
use gannet::loss::GanLoss;
use gannet::models::{dcgan::DcganConfig, mlp::MlpConfig, ModelConfig};
use gannet::saved::SavedRun;
use gannet::train::guard::{Guard, GuardConfig, Signal};
use gannet::train::{Observer, Quiet, StepLosses, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn losses(d_loss: f64, d_real: f64, d_fake: f64) -> StepLosses {
    StepLosses { d_loss, g_loss: 1.0, d_real, d_fake }
}

#[test]
fn guard_signals_trip_after_their_streaks() {
    let cfg = GuardConfig { collapse_steps: 3, d_loss_floor: 0.01, max_logit_gap: 20.0, ..Default::default() };
    let mut g = Guard::new(cfg, GanLoss::NonSaturating);
    assert_eq!(g.observe(&losses(0.005, 1.0, -1.0)), None);
    assert!(g.suspect());
    assert_eq!(g.observe(&losses(0.005, 1.0, -1.0)), None);
    // A healthy step resets the streak.
    assert_eq!(g.observe(&losses(0.5, 1.0, -1.0)), None);
    assert!(!g.suspect());
    for _ in 0..2 {
        assert_eq!(g.observe(&losses(0.001, 1.0, -1.0)), None);
    }
    match g.observe(&losses(0.001, 1.0, -1.0)) {
        Some(Signal::LowDLoss { steps: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
    let mut g = Guard::new(cfg, GanLoss::Hinge);
    for _ in 0..2 {
        assert_eq!(g.observe(&losses(0.5, 12.0, -9.0)), None);
    }
    let s = g.observe(&losses(0.5, 12.0, -9.0)).expect("gap of 21 for 3 steps");
    assert!(matches!(s, Signal::LogitGap { steps: 3, .. }) && s.to_string().contains("max_logit_gap"), "{s}");
    // NaN trips at once, for every loss.
    let mut g = Guard::new(cfg, GanLoss::Wasserstein);
    assert!(matches!(g.observe(&losses(f64::NAN, 0.0, 0.0)), Some(Signal::NonFiniteLoss { .. })));
    assert!(matches!(g.observe(&StepLosses { g_loss: f64::INFINITY, ..losses(0.1, 0.0, 0.0) }), Some(Signal::NonFiniteLoss { .. })));
    // Collapse checks are off for the Wasserstein critic, and with collapse_steps = 0.
    for _ in 0..10 {
        assert_eq!(g.observe(&losses(-1e4, 500.0, -500.0)), None);
    }
    let mut off = Guard::new(GuardConfig { collapse_steps: 0, ..cfg }, GanLoss::NonSaturating);
    for _ in 0..10 {
        assert_eq!(off.observe(&losses(0.0, 100.0, -100.0)), None);
    }
}

#[test]
fn guard_config_parses_and_validates() {
    let cfg = TrainConfig::from_toml_str("[guard]\nrollback = true\nlr_factor = 0.25\ncollapse_steps = 50\n").unwrap();
    assert!(cfg.guard.rollback && cfg.guard.lr_factor == 0.25 && cfg.guard.collapse_steps == 50);
    assert_eq!(cfg.guard.max_rollbacks, 3);
    assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml()).unwrap(), cfg);
    let mut bad = cfg.clone();
    bad.guard.lr_factor = 1.5;
    assert!(bad.validate().unwrap_err().to_string().contains("guard.lr_factor"));
    assert!(TrainConfig::from_toml_str("[guard]\nrollbacks = 2\n").is_err());
}

/// An MLP on the built-in digits with the Wasserstein loss: an absurd learning rate makes it
/// produce NaN within a step or two.
fn mlp_config(dir: &Path, steps: u64) -> TrainConfig {
    let mut cfg = TrainConfig {
        model: ModelConfig::Mlp(MlpConfig { latent_dim: 4, hidden: 16, layers: 1, tanh_output: true, ..Default::default() }),
        ..Default::default()
    };
    cfg.loss = GanLoss::Wasserstein;
    cfg.schedule.steps = steps;
    cfg.schedule.batch_size = 8;
    cfg.output.dir = dir.to_path_buf();
    cfg.output.sample_every = 100;
    cfg.output.checkpoint_every = 2;
    cfg.output.log_every = 1;
    cfg.output.sample_count = 4;
    cfg.seed = 2;
    cfg.optim.gen.lr = 1e-3;
    cfg.optim.disc.lr = 1e-3;
    cfg
}

/// Records the observer's events.
#[derive(Default)]
struct Events(Vec<String>);
impl Observer for Events {
    fn on_event(&mut self, m: &str) {
        self.0.push(m.to_string());
    }
}

const ABSURD: f64 = 1e30;

#[test]
fn without_rollback_a_divergence_stops_naming_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(mlp_config(tmp.path(), 4)).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let ckpt = t.run_dir().latest_checkpoint();
    let before = std::fs::read(&ckpt).unwrap();
    let mut t = Trainer::resume(&ckpt, |c| {
        c.schedule.steps = 10;
        c.optim.disc.lr = ABSURD;
        c.optim.gen.lr = ABSURD;
    })
    .unwrap();
    let mut events = Events::default();
    let err = t.run(&mut events, &AtomicBool::new(false)).expect_err("must diverge").to_string();
    assert!(err.contains("diverged at step 5") || err.contains("diverged at step 6"), "{err}");
    assert!(err.contains("non-finite") && err.contains(&ckpt.display().to_string()) && err.contains("(step 4)"), "{err}");
    // The checkpoint on disk is the good one, untouched.
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
    assert_eq!(SavedRun::load(&ckpt, &Device::Cpu).unwrap().step, 4);
    let log = std::fs::read_to_string(t.run_dir().guard_log()).unwrap();
    assert!(log.contains("stopped") && log.contains("non-finite"), "{log}");
    assert!(events.0.iter().any(|e| e.contains("diverged")));
}

#[test]
fn divergence_before_the_first_checkpoint_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = mlp_config(tmp.path(), 50);
    cfg.optim.disc.lr = ABSURD;
    cfg.optim.gen.lr = ABSURD;
    cfg.output.checkpoint_every = 40;
    let mut t = Trainer::new(cfg).unwrap();
    let err = t.run(&mut Quiet, &AtomicBool::new(false)).expect_err("must diverge").to_string();
    assert!(err.contains("diverged") && err.contains("no checkpoint had been written yet") && err.contains("step 40"), "{err}");
    assert!(!t.run_dir().latest_checkpoint().exists());
}

#[test]
fn with_rollback_the_run_continues_from_the_checkpoint_with_lower_learning_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(mlp_config(tmp.path(), 4)).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let ckpt = t.run_dir().latest_checkpoint();
    // An absurd rate, and a factor that brings it back to 1e-3 after one rollback.
    let factor = 1e-33;
    let mut t = Trainer::resume(&ckpt, |c| {
        c.schedule.steps = 8;
        c.optim.disc.lr = ABSURD;
        c.optim.gen.lr = ABSURD * 2.0;
        c.guard.rollback = true;
        c.guard.lr_factor = factor;
    })
    .unwrap();
    let mut events = Events::default();
    t.run(&mut events, &AtomicBool::new(false)).unwrap();
    assert_eq!(t.step(), 8);
    assert_eq!(t.rollbacks(), 1);
    let (lr_d, lr_g) = (ABSURD * factor, ABSURD * 2.0 * factor);
    assert_eq!(t.state().opt_disc.config().lr, lr_d);
    assert_eq!(t.state().opt_gen.config().lr, lr_g);
    let ev = events.0.iter().find(|e| e.contains("rolled back")).expect("a rollback event");
    assert!(ev.contains("(step 4)") && ev.contains("non-finite"), "{ev}");
    let log = std::fs::read_to_string(t.run_dir().guard_log()).unwrap();
    assert!(log.contains("rolled back") && log.contains("rollback 1 of 3"), "{log}");
    // The metrics describe the continued run: one row per step, no diverged rows.
    let csv = std::fs::read_to_string(t.run_dir().metrics_csv()).unwrap();
    let steps: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(steps, ["1", "2", "3", "4", "5", "6", "7", "8"], "{csv}");
    assert!(!csv.to_lowercase().contains("nan"), "{csv}");
    // The final checkpoint carries the lowered rates and the rollback count into a resume.
    let saved = SavedRun::load(&ckpt, &Device::Cpu).unwrap();
    assert_eq!((saved.step, saved.rollbacks), (8, 1));
    assert_eq!((saved.config.optim.disc.lr, saved.config.optim.gen.lr), (lr_d, lr_g));
    let resumed = Trainer::resume(&ckpt, |c| c.schedule.steps = 10).unwrap();
    assert_eq!(resumed.state().opt_disc.config().lr, lr_d);
    assert_eq!(resumed.state().opt_gen.config().lr, lr_g);
    assert_eq!(resumed.rollbacks(), 1);
    assert_eq!(TrainConfig::from_file(&t.run_dir().config()).unwrap().optim.gen.lr, lr_g);
}

#[test]
fn rollback_before_any_checkpoint_restarts_from_the_initial_weights_and_gives_up_after_max() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = mlp_config(&tmp.path().join("a"), 3);
    cfg.optim.disc.lr = ABSURD;
    cfg.optim.gen.lr = ABSURD;
    cfg.output.checkpoint_every = 100;
    cfg.guard.rollback = true;
    cfg.guard.lr_factor = 1e-33;
    let mut t = Trainer::new(cfg.clone()).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!((t.step(), t.rollbacks()), (3, 1));
    assert!(std::fs::read_to_string(t.run_dir().guard_log()).unwrap().contains("initial weights"));
    // A factor that keeps the rate absurd: every rollback diverges again until max_rollbacks.
    cfg.output.dir = tmp.path().join("b");
    cfg.guard.lr_factor = 0.5;
    cfg.guard.max_rollbacks = 2;
    let mut t = Trainer::new(cfg).unwrap();
    let err = t.run(&mut Quiet, &AtomicBool::new(false)).expect_err("gives up").to_string();
    assert!(err.contains("after 2 rollbacks") && err.contains("max_rollbacks = 2"), "{err}");
    assert_eq!(t.state().opt_gen.config().lr, ABSURD * 0.25);
}

/// A collapse signal (here forced with a floor no D loss gets under... above: every step
/// counts as "collapsed") trips after collapse_steps steps, and checkpoints are not written
/// while a signal holds.
#[test]
fn collapse_signal_trips_and_holds_back_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg =
        TrainConfig { model: ModelConfig::Dcgan(DcganConfig { latent_dim: 8, g_channels: 4, d_channels: 4, ..Default::default() }), ..Default::default() };
    cfg.schedule.steps = 10;
    cfg.schedule.batch_size = 4;
    cfg.output.dir = tmp.path().to_path_buf();
    cfg.output.sample_every = 100;
    cfg.output.checkpoint_every = 1;
    cfg.output.sample_count = 4;
    cfg.guard.d_loss_floor = 1e9;
    cfg.guard.collapse_steps = 3;
    let mut t = Trainer::new(cfg).unwrap();
    let mut events = Events::default();
    let err = t.run(&mut events, &AtomicBool::new(false)).expect_err("trips").to_string();
    assert!(err.contains("diverged at step 3") && err.contains("collapsed discriminator") && err.contains("d_loss_floor"), "{err}");
    assert!(err.contains("no checkpoint had been written yet"), "{err}");
    assert_eq!(events.0.iter().filter(|e| e.contains("checkpoint skipped")).count(), 2, "{:?}", events.0);
    assert!(!t.run_dir().latest_checkpoint().exists());
}

/// The collapse streaks travel in checkpoints: a run stopped mid-streak and resumed trips at the
/// step the unbroken run trips at.
#[test]
fn collapse_streaks_survive_a_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = mlp_config(tmp.path(), 2);
    cfg.loss = GanLoss::NonSaturating;
    cfg.guard.d_loss_floor = 1e9;
    cfg.guard.collapse_steps = 5;
    let mut t = Trainer::new(cfg).unwrap();
    // The end-of-run checkpoint is written even mid-streak (the run is over, nothing to roll back).
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let ckpt = t.run_dir().latest_checkpoint();
    assert_eq!(SavedRun::load(&ckpt, &Device::Cpu).unwrap().guard_streaks, (2, 0));
    let mut t = Trainer::resume(&ckpt, |c| c.schedule.steps = 10).unwrap();
    let err = t.run(&mut Quiet, &AtomicBool::new(false)).err().unwrap().to_string();
    assert!(err.contains("diverged at step 5") && err.contains("for 5 consecutive steps"), "{err}");
}

/// TTUR: separate learning rates from the config reach the two optimizers; d_steps_per_g
/// D updates per G update.
#[test]
fn separate_learning_rates_and_d_steps_reach_the_optimizers() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = TrainConfig::from_toml_str(&format!(
        "[optim.gen]\nlr = 1e-4\n[optim.disc]\nlr = 4e-4\nbeta1 = 0.0\n[schedule]\nsteps = 2\nbatch_size = 4\nd_steps_per_g = 3\n\
         [output]\ndir = \"{}\"\nsample_every = 100\nsample_count = 4\n[model]\narch = \"mlp\"\nlatent_dim = 4\nhidden = 8\nlayers = 1\n",
        tmp.path().display()
    ))
    .unwrap();
    let mut t = Trainer::new(cfg).unwrap();
    let (g, d) = (t.state().opt_gen.config(), t.state().opt_disc.config());
    assert_eq!((g.lr, d.lr, g.beta1, d.beta1), (1e-4, 4e-4, 0.5, 0.0));
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!((t.state().opt_gen.steps(), t.state().opt_disc.steps()), (2, 6));
}

#[test]
fn a_learning_rate_alone_is_a_valid_optimizer_section() {
    let cfg = TrainConfig::from_toml_str("[optim.disc]\nlr = 4e-4\n").unwrap();
    assert_eq!(cfg.optim.disc.lr, 4e-4);
    assert_eq!(cfg.optim.disc.beta1, cfg.optim.gen.beta1);
    let err = TrainConfig::from_toml_str("[optim.gen]\nlearning_rate = 1e-3\n").unwrap_err().to_string();
    assert!(err.contains("learning_rate"), "{err}");
}
