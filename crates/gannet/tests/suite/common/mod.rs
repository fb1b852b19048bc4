//! Helpers shared by the tests that train tiny models: a tiny DCGAN run, running it to the end,
//! resuming it, and reading its checkpoint back. Each test file uses a subset.
#![allow(dead_code)]

use gannet::candle_core::Device;
use gannet::models::{dcgan::DcganConfig, ModelConfig};
use gannet::saved::SavedRun;
use gannet::train::{Quiet, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// A DCGAN with 4 channels and an 8-d latent, writing a grid and a checkpoint every 2 steps and a
/// log row every step into `dir`.
pub fn tiny_config(dir: &Path, steps: u64, batch_size: usize, seed: u64) -> TrainConfig {
    let mut cfg = TrainConfig {
        model: ModelConfig::Dcgan(DcganConfig { latent_dim: 8, g_channels: 4, d_channels: 4, ..Default::default() }),
        seed,
        ..Default::default()
    };
    cfg.schedule.steps = steps;
    cfg.schedule.batch_size = batch_size;
    cfg.output.dir = dir.to_path_buf();
    cfg.output.sample_every = 2;
    cfg.output.checkpoint_every = 2;
    cfg.output.log_every = 1;
    cfg.output.sample_count = 4;
    cfg
}

/// Trains a fresh run to its last step.
pub fn run(cfg: TrainConfig) -> Trainer {
    let mut t = Trainer::new(cfg).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    t
}

/// Resumes the run in `ckpt` and trains it to `steps`.
pub fn resume(ckpt: &Path, steps: u64) -> Trainer {
    let mut t = Trainer::resume(ckpt, |c| c.schedule.steps = steps).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    t
}

/// The run's latest checkpoint, read back.
pub fn load(t: &Trainer) -> SavedRun {
    SavedRun::load(&t.run_dir().latest_checkpoint(), &Device::Cpu).unwrap()
}

/// A folder of `per_class` built-in digits of each of `digits`, one subfolder per class.
pub fn digit_folder(dir: &Path, digits: &[(u32, &str)], per_class: usize) {
    let all = gannet::data::load(&gannet::data::DataSource::BuiltinDigits, &gannet::data::LoadOptions::default()).unwrap();
    let labels = all.labels().unwrap();
    for &(digit, name) in digits {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let idx: Vec<usize> = (0..all.len()).filter(|&i| labels[i] == digit).take(per_class).collect();
        let t = all.batch_tensor(&idx, &Device::Cpu).unwrap();
        for (i, img) in gannet::image_io::to_images(&t).unwrap().iter().enumerate() {
            gannet::image_io::save_png(img, &sub.join(format!("{i:03}.png"))).unwrap();
        }
    }
}
