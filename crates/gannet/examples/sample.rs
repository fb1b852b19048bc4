//! Draws a grid of 16 images from a trained checkpoint.
//! `cargo run --example sample -- runs/example/checkpoints/latest.safetensors grid.png`
use gannet::candle_core::Device;
use gannet::{image_io, metrics::evaluate, nn::Mode, saved::SavedRun};

fn main() -> gannet::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ckpt, out) = (args.first().expect("CHECKPOINT [OUT.png]"), args.get(1).map_or("grid.png", String::as_str));
    let saved = SavedRun::load(ckpt.as_ref(), &Device::Cpu)?;
    let gen = saved.sampling_generator(&Device::Cpu)?;
    let z = evaluate::sample_latents(7, 16, saved.config.model.latent_dim(), &Device::Cpu)?;
    let images = gen.forward(&z, None, Mode::Eval)?;
    image_io::save_png(&image_io::grid(&images, 4, 2)?, out.as_ref())?;
    println!("wrote {out}");
    Ok(())
}
