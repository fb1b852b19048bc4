//! Trains a small DCGAN on a folder of images (subfolders = classes), or on the built-in digits.
//! `cargo run --example train_folder -- [FOLDER] [OUT]`
use gannet::train::{Quiet, TrainConfig, Trainer};
use std::sync::atomic::AtomicBool;

fn main() -> gannet::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut cfg = TrainConfig::default();
    cfg.data.source = args.next().unwrap_or_else(|| "builtin:digits".into());
    cfg.output.dir = args.next().unwrap_or_else(|| "runs/example".into()).into();
    (cfg.schedule.steps, cfg.schedule.batch_size) = (20, 16);
    cfg.model.set_width(8);
    let mut run = Trainer::new(cfg)?;
    run.run(&mut Quiet, &AtomicBool::new(false))?;
    println!("step {}: checkpoint {}", run.step(), run.run_dir().latest_checkpoint().display());
    Ok(())
}
