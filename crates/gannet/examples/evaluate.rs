//! Scores a trained checkpoint's generator against the data it was trained on (classifier FID,
//! which needs no download). `cargo run --example evaluate -- CHECKPOINT`
use gannet::candle_core::Device;
use gannet::metrics::evaluate::{EvalOptions, Evaluator, Metric, Silent};
use gannet::saved::SavedRun;
use gannet::train::load_dataset;

fn main() -> gannet::Result<()> {
    let ckpt = std::env::args().nth(1).expect("CHECKPOINT");
    let saved = SavedRun::load(ckpt.as_ref(), &Device::Cpu)?;
    let data = load_dataset(&saved.config)?;
    let opts = EvalOptions { metrics: vec![Metric::Cfid], count: 500, cache_dir: None, ..Default::default() };
    let evaluator = Evaluator::new(&data, None, opts, &Device::Cpu, &mut Silent)?;
    let report = evaluator.evaluate_generator(saved.sampling_generator(&Device::Cpu)?.as_ref(), &mut Silent)?;
    println!("{}", report.table());
    Ok(())
}
