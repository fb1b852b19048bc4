use super::edit_io::GeneratorSource;
use super::i2i_io;
use crate::progress;
use anyhow::{Context, Result};
use clap::Args;
use gannet::candle_core::Tensor;
use gannet::data::{self, DataSource, LoadOptions};
use gannet::edit::{project, style};
use gannet::image_io;
use gannet::metrics::{evaluate, psnr, to_unit_range};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("targets").required(true).args(["images", "data"])))]
#[command(after_help = "Examples:\n  \
    gannet project --checkpoint runs/stylegan2-fashion/checkpoints/latest.safetensors --images photo.png --out proj/\n  \
    gannet project --checkpoint C --data ../shared/data/fashion-mnist/t10k-images-idx3-ubyte.gz -n 16 --out proj/\n  \
    gannet project --checkpoint C --images shirts/ --w-plus --steps 500 --out proj/\n\n\
    Finds the StyleGAN2 w whose image matches each target (Adam on w, pixel MSE plus a feature loss\n\
    on the run's discriminator activations) and writes: one PNG per reconstruction, comparison.png\n\
    (each target beside its reconstruction), ws.safetensors (the w's, [N, num_ws, w_dim]) and\n\
    report.json with the PSNR of every image. --data takes held-out images, e.g. a test split.")]
pub struct ProjectArgs {
    /// An image file or a folder of images to project.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Or a dataset (IDX file or folder, image folder): the first -n images of a fixed shuffle.
    #[arg(long)]
    data: Option<String>,
    /// Images taken from --data.
    #[arg(long, short = 'n', default_value_t = 16)]
    count: usize,
    /// Optimisation steps.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Peak learning rate of Adam on w.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Optimise one w per synthesis layer (W+): closer fits, less typical w's.
    #[arg(long)]
    w_plus: bool,
    /// Weight of the discriminator-feature loss (0 = pixel MSE only).
    #[arg(long, default_value_t = 1.0)]
    feature_weight: f64,
    /// Output folder.
    #[arg(long, short)]
    out: PathBuf,
    #[command(flatten)]
    source: GeneratorSource,
}

pub fn run(args: ProjectArgs) -> Result<()> {
    let (saved, gen, device) = args.source.load()?;
    let style = style(gen.as_ref(), "gannet project")?;
    let shape = saved.image_shape;
    let (targets, names) = match (&args.images, &args.data) {
        (Some(path), _) => i2i_io::read_images(path, shape.resolution, shape.channels, &device)?,
        (None, Some(source)) => dataset_targets(source, args.count, shape, &device)?,
        (None, None) => unreachable!("clap requires --images or --data"),
    };
    let gan = saved.gan(&device)?;
    let features = |x: &Tensor| gan.disc.features(x);
    let opts = project::ProjectOptions { steps: args.steps, lr: args.lr, w_plus: args.w_plus, feature_weight: args.feature_weight };
    let bar = progress::bar(args.steps as u64, "projecting");
    let result = project::project(style, &features, &targets, opts, &mut |t, loss| {
        bar.set_position(t as u64);
        bar.set_message(format!("loss {loss:.4}"));
    })?;
    bar.finish();
    let scores = psnr::psnr_per_image(&to_unit_range(&result.images)?, &to_unit_range(&targets)?)?;
    write_outputs(&args, &saved, &targets, &result, &names, &scores)?;
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    eprintln!(
        "projected {} images in {} steps: mean PSNR {mean:.2} dB (min {:.2}); outputs in {}",
        scores.len(),
        args.steps,
        scores.iter().cloned().fold(f64::INFINITY, f64::min),
        args.out.display()
    );
    Ok(())
}

/// The first `count` images of a fixed shuffle of `source` (the ones `gannet eval` uses as reference).
fn dataset_targets(source: &str, count: usize, shape: gannet::models::ImageShape, device: &gannet::candle_core::Device) -> Result<(Tensor, Vec<String>)> {
    let channels = if shape.channels == 1 { data::Channels::Grey } else { data::Channels::Rgb };
    let ds = data::load(&DataSource::Path(PathBuf::from(source)), &LoadOptions { resolution: shape.resolution, channels })?;
    let idx = evaluate::reference_indices(ds.len(), count);
    Ok((ds.batch_tensor(&idx, device)?, idx.iter().map(|i| format!("image-{i:05}")).collect()))
}

fn write_outputs(
    args: &ProjectArgs,
    saved: &gannet::saved::SavedRun,
    targets: &Tensor,
    result: &project::Projection,
    names: &[String],
    scores: &[f64],
) -> Result<()> {
    let dir = &args.out;
    i2i_io::write_outputs(dir, &result.images, names, &args.source.checkpoint, saved.step)?;
    let comparison = image_io::comparison_grid(&[targets.clone(), result.images.clone()], 8, 2)?;
    image_io::save_png(&comparison, &dir.join("comparison.png"))?;
    let mut tensors = BTreeMap::new();
    tensors.insert("ws".to_string(), result.ws.clone());
    gannet::checkpoint::save(&dir.join("ws.safetensors"), &tensors, &BTreeMap::new())?;
    let per_image: Vec<_> = names.iter().zip(scores).map(|(n, p)| serde_json::json!({"name": n, "psnr_db": p})).collect();
    let report = serde_json::json!({
        "checkpoint": args.source.checkpoint.display().to_string(),
        "step": saved.step,
        "steps": args.steps,
        "w_plus": args.w_plus,
        "feature_weight": args.feature_weight,
        "mean_psnr_db": scores.iter().sum::<f64>() / scores.len() as f64,
        "final_loss": result.losses.last(),
        "images": per_image,
    });
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", path.display()))
}
