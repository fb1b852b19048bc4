//! The training engine's ownership of a run folder, on tiny DCGAN runs: one process per folder,
//! one run per folder, resumes that cannot silently change the model or its data, leftover temp
//! files removed, and stopping on request with a checkpoint.

use crate::common::{run, tiny_config};
use gannet::candle_core::{Device, Var};
use gannet::nn::{frozen, live, on_pool};
use gannet::train::{Outcome, Quiet, Trainer};
use std::sync::atomic::AtomicBool;

#[test]
fn a_second_trainer_on_a_live_runs_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Trainer::new(tiny_config(tmp.path(), 2, 8, 0)).unwrap();
    let err = Trainer::new(tiny_config(tmp.path(), 2, 8, 1)).err().expect("the folder is locked").to_string();
    assert!(err.contains("in use by another gannet process") && err.contains(&std::process::id().to_string()), "{err}");
    // The lock goes with the run: once it is dropped the folder is free again.
    drop(first);
    Trainer::new(tiny_config(tmp.path(), 2, 8, 1)).unwrap();
}

#[test]
fn resuming_into_another_runs_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let ta = run(tiny_config(&a, 2, 8, 0));
    let tb = run(tiny_config(&b, 2, 8, 1));
    assert_ne!(ta.run_id(), tb.run_id());
    let ckpt_a = ta.run_dir().latest_checkpoint();
    let before = std::fs::read(tb.run_dir().latest_checkpoint()).unwrap();
    drop((ta, tb));
    let err = Trainer::resume(&ckpt_a, |c| {
        c.schedule.steps = 4;
        c.output.dir = b.clone();
    })
    .err()
    .expect("b holds another run")
    .to_string();
    assert!(err.contains("holds the checkpoint of another run") && err.contains("at step 2"), "{err}");
    assert_eq!(std::fs::read(b.join("checkpoints/latest.safetensors")).unwrap(), before, "b's checkpoint is untouched");
    // Into a fresh folder, or back into its own, the run goes on, keeping its identity.
    let moved = Trainer::resume(&ckpt_a, |c| {
        c.schedule.steps = 4;
        c.output.dir = tmp.path().join("c");
    })
    .unwrap();
    let id = moved.run_id().to_string();
    drop(moved);
    let own = Trainer::resume(&ckpt_a, |c| c.schedule.steps = 4).unwrap();
    assert_eq!(own.run_id(), id);
}

#[test]
fn a_resume_that_changes_the_data_or_the_model_names_both_values() {
    let tmp = tempfile::tempdir().unwrap();
    let t = run(tiny_config(tmp.path(), 2, 8, 0));
    let ckpt = t.run_dir().latest_checkpoint();
    drop(t);
    let err = |adjust: &dyn Fn(&mut gannet::train::TrainConfig)| {
        Trainer::resume(&ckpt, |c| {
            c.schedule.steps = 4;
            adjust(c);
        })
        .err()
        .expect("a conflicting resume is refused")
        .to_string()
    };
    let e = err(&|c| c.data.source = "/elsewhere/pictures".into());
    assert!(e.contains("data.source") && e.contains("builtin:digits") && e.contains("/elsewhere/pictures"), "{e}");
    let e = err(&|c| c.model.set_width(8));
    assert!(e.contains("cannot change model.") && e.contains('4') && e.contains('8'), "{e}");
    let e = err(&|c| c.seed = 9);
    assert!(e.contains("cannot change seed: the checkpoint has 0, this command asks for 9"), "{e}");
    // Settings that do not touch the model may change.
    let mut t = Trainer::resume(&ckpt, |c| {
        c.schedule.steps = 4;
        c.optim.gen.lr = 1e-4;
        c.output.sample_every = 3;
    })
    .unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(t.step(), 4);
}

#[test]
fn a_resume_with_no_steps_left_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let t = run(tiny_config(tmp.path(), 4, 8, 0));
    let ckpt = t.run_dir().latest_checkpoint();
    drop(t);
    for steps in [2, 4] {
        let e = Trainer::resume(&ckpt, |c| c.schedule.steps = steps).err().expect("nothing to train").to_string();
        assert!(e.contains("is at step 4") && e.contains(&format!("set to {steps} steps")) && e.contains("--steps above 4"), "{e}");
    }
}

#[test]
fn temp_files_of_a_killed_writer_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let t = run(tiny_config(tmp.path(), 2, 8, 0));
    let ckpt = t.run_dir().latest_checkpoint();
    drop(t);
    let litter = [tmp.path().join("checkpoints/.latest.safetensors.tmp-4242"), tmp.path().join(".metrics.csv.tmp-4242")];
    for l in &litter {
        std::fs::write(l, b"half a checkpoint").unwrap();
    }
    let _t = Trainer::resume(&ckpt, |c| c.schedule.steps = 4).unwrap();
    for l in &litter {
        assert!(!l.exists(), "{} left behind", l.display());
    }
}

#[test]
fn a_raised_stop_flag_saves_and_reports_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(tiny_config(tmp.path(), 6, 8, 0)).unwrap();
    t.train_step().unwrap();
    let outcome = t.run(&mut Quiet, &AtomicBool::new(true)).unwrap();
    let ckpt = t.run_dir().latest_checkpoint();
    assert_eq!(outcome, Outcome::Stopped { step: 1, checkpoint: ckpt.clone() });
    drop(t);
    let mut t = Trainer::resume(&ckpt, |_| {}).unwrap();
    assert_eq!(t.step(), 1);
    assert_eq!(t.run(&mut Quiet, &AtomicBool::new(false)).unwrap(), Outcome::Finished);
    assert_eq!(t.step(), 6);
}

#[test]
fn a_run_that_cannot_start_leaves_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("typo");
    let mut cfg = tiny_config(&dir, 2, 8, 0);
    cfg.data.source = tmp.path().join("no-such-pictures").display().to_string();
    let e = Trainer::new(cfg).err().expect("no data").to_string();
    assert!(e.contains("no-such-pictures"), "{e}");
    assert!(!dir.exists(), "an empty run folder was left behind");
}

/// Steps run on the thread pool (`on_pool`), where a worker waiting inside one step's frozen
/// discriminator pass may run another trainer's whole step: that step must start unfrozen, and
/// the first one must find its frozen scope again afterwards.
#[test]
fn a_pool_job_does_not_inherit_a_frozen_scope() {
    let v = Var::new(&[1f32], &Device::Cpu).unwrap();
    let (inside, after) = on_pool(|| {
        frozen(|| {
            let inside = on_pool(|| live(&v).is_variable());
            (inside, live(&v).is_variable())
        })
    });
    assert!(inside, "a job started inside a frozen scope saw its weights detached");
    assert!(!after, "the frozen scope was lost after the job");
}
