//! `gannet translate`: apply a pix2pix or CycleGAN checkpoint to images, write the outputs and a
//! comparison grid, and score them against targets when there are any.

use super::i2i_io::{read_images, read_targets, score_table, write_grid, write_json, write_outputs};
use anyhow::{Context, Result};
use clap::Args;
use gannet::candle_core::Tensor;
use gannet::data::{load_paired, load_unpaired, Split};
use gannet::metrics::FidInception;
use gannet::saved::{Direction, SavedI2i};
use gannet::train::i2i::{eval, Task};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet translate --checkpoint runs/pix2pix-emoji/checkpoints/latest.safetensors --held-out --out out/p2p\n  \
    gannet translate --checkpoint C --in my-drawings/ --out translated/\n  \
    gannet translate --checkpoint C --in a/x.png --target b/ --out one/      # score against b/x.png\n  \
    gannet translate --checkpoint runs/cyclegan-emoji/checkpoints/latest.safetensors --held-out --fid --out out/cg\n  \
    gannet translate --checkpoint C --direction b2a --held-out --out out/cg-b2a   # CycleGAN only\n\n\
    Writes OUT/NAME.png for every input and OUT/grid.png (input | output | target). With targets\n\
    (--held-out of a paired run, or --target) it prints L1, PSNR and SSIM of the outputs and of the\n\
    identity baseline (output = input) and writes OUT/scores.json. --fid adds the FID of the\n\
    outputs and of the inputs against the target domain (Inception-v3 at 299x299: ~0.2-1 s per\n\
    image on a CPU).")]
pub struct TranslateArgs {
    /// A checkpoint of `gannet train-i2i --task pix2pix|cyclegan`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// An image or a folder of images to translate.
    #[arg(long = "in", value_name = "DIR_OR_FILE", required_unless_present = "held_out", conflicts_with = "held_out")]
    input: Option<PathBuf>,
    /// Translate the held-out 10% of the checkpoint's own data (with their targets).
    #[arg(long)]
    held_out: bool,
    /// Targets for --in: a folder with images of the same file names.
    #[arg(long, requires = "input")]
    target: Option<PathBuf>,
    /// Folder for the outputs, grid.png and scores.json.
    #[arg(long)]
    out: PathBuf,
    /// a2b, or b2a (CycleGAN only).
    #[arg(long, default_value = "a2b")]
    direction: Direction,
    /// Also compute the FID of the outputs and of the inputs against the target-domain images.
    #[arg(long)]
    fid: bool,
    /// Examples in grid.png.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Inputs, their names, paired targets (if known) and the target domain's images (for FID).
struct Inputs {
    images: Tensor,
    names: Vec<String>,
    targets: Option<Tensor>,
    domain: Option<Tensor>,
}

/// The held-out split of the checkpoint's data in `dir`: paired by name when both folders have
/// every name (pix2pix always; CycleGAN on paired data such as the emoji), else unpaired.
fn held_out(saved: &SavedI2i, dir: Direction, device: &gannet::candle_core::Device) -> Result<Inputs> {
    let cfg = &saved.config;
    let b = cfg.data.b.as_deref().context("the checkpoint's run has no domain B")?;
    let (src, dst) = match dir {
        Direction::AToB => (Path::new(&cfg.data.a), Path::new(b)),
        Direction::BToA => (Path::new(b), Path::new(&cfg.data.a)),
    };
    let (r, ch) = (cfg.data.resolution, cfg.data.channels);
    let all = |n: usize| (0..n).collect::<Vec<usize>>();
    if let Ok(p) = load_paired(src, dst, Split::HeldOut, r, ch) {
        let targets = p.b.batch_tensor(&all(p.len()), device)?;
        return Ok(Inputs { images: p.a.batch_tensor(&all(p.len()), device)?, names: p.names, targets: Some(targets.clone()), domain: Some(targets) });
    }
    anyhow::ensure!(cfg.task == Task::Cyclegan, "pix2pix data must be paired");
    let (a, names) = load_unpaired(src, Split::HeldOut, r, ch)?;
    let (d, _) = load_unpaired(dst, Split::HeldOut, r, ch)?;
    Ok(Inputs { images: a.batch_tensor(&all(a.len()), device)?, names, targets: None, domain: Some(d.batch_tensor(&all(d.len()), device)?) })
}

pub fn run(args: TranslateArgs) -> Result<()> {
    let device = gannet::device::parse_device(&args.device)?;
    let saved = SavedI2i::load(&args.checkpoint, &device)?;
    anyhow::ensure!(saved.config.task != Task::Superres, "{} is a super-resolution model: use `gannet upscale`", args.checkpoint.display());
    let nets = saved.nets(&device).with_context(|| format!("loading {}", args.checkpoint.display()))?;
    let g = nets.generator(args.direction)?;
    let (r, ch) = (saved.config.data.resolution, saved.channels);
    let inputs = match &args.input {
        Some(path) => {
            let (images, names) = read_images(path, r, ch, &device)?;
            let targets = args.target.as_deref().map(|t| read_targets(t, &names, r, ch, &device)).transpose()?;
            Inputs { images, names, domain: targets.clone(), targets }
        }
        None => held_out(&saved, args.direction, &device)?,
    };
    let t0 = Instant::now();
    let outputs = eval::translate_all(g, &inputs.images)?;
    let n = inputs.names.len();
    eprintln!("translated {n} images in {:.1} s", t0.elapsed().as_secs_f64());
    write_outputs(&args.out, &outputs, &inputs.names, &args.checkpoint, saved.step)?;
    let mut cols = vec![&inputs.images, &outputs];
    cols.extend(inputs.targets.as_ref());
    let grid = args.out.join("grid.png");
    write_grid(&grid, &cols, args.grid)?;
    let mut report = serde_json::json!({ "checkpoint": args.checkpoint.display().to_string(), "step": saved.step, "task": saved.config.task.name(), "n": n });
    if let Some(t) = &inputs.targets {
        let model = eval::paired_scores(&outputs, t)?;
        let identity = eval::paired_scores(&inputs.images, t)?;
        print!("{}", score_table(&[("model", model), ("identity (input)", identity)]));
        report["model"] = serde_json::to_value(model)?;
        report["identity"] = serde_json::to_value(identity)?;
    }
    if args.fid {
        let domain = inputs.domain.as_ref().context("--fid needs target-domain images: use --held-out or --target")?;
        let t0 = Instant::now();
        let net = FidInception::load_default(&device)?;
        let fid_out = eval::fid(&net, &outputs, domain)?;
        let fid_in = eval::fid(&net, &inputs.images, domain)?;
        println!("FID to the target domain (N = {n} vs {}): outputs {fid_out:.2}, inputs {fid_in:.2} ({:.0} s)", domain.dim(0)?, t0.elapsed().as_secs_f64());
        report["fid_outputs"] = fid_out.into();
        report["fid_inputs"] = fid_in.into();
        report["fid_reference_n"] = domain.dim(0)?.into();
    }
    write_json(&args.out.join("scores.json"), &report)?;
    eprintln!("wrote {n} images, {} and scores.json to {}", grid.display(), args.out.display());
    Ok(())
}
