use crate::progress;
use anyhow::{Context, Result};
use clap::Args;
use gannet::data::{self, Channels, DataSource, Dataset, LoadOptions};
use gannet::metrics::eval_folder;
use gannet::metrics::evaluate::{self, EvalObserver, EvalOptions, Evaluator, Metric};
use gannet::saved::SavedRun;
use gannet::train::{load_dataset, TrainConfig};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("generated").required(true).args(["checkpoint", "images"])))]
#[command(after_help = "Examples:\n  \
    gannet eval --checkpoint runs/default/checkpoints/latest.safetensors --data ../shared/data/mnist -n 2000\n  \
    gannet eval --checkpoint C --metrics cfid,classes -n 5000     # fast: no Inception network\n  \
    gannet eval --images samples/ --data ../shared/data/mnist --metrics fid,kid --json\n  \
    gannet eval --images A/ --data B/ --metrics fid -n 50000      # pytorch-fid's FID of two folders\n  \
    gannet eval --checkpoint runs/cgan-mnist/checkpoints/latest.safetensors --metrics cacc -n 1000\n  \
    gannet eval --checkpoint runs/t2i-emoji/checkpoints/latest.safetensors --classifier emoji-categories.safetensors\n\n\
    Metrics: fid, kid (Inception-v3, as pytorch-fid), pr (precision/recall, k=3), cfid (FID in the\n\
    feature space of a digit classifier gannet trained), classes (histogram of predicted classes),\n\
    cacc (class-conditional models: per class k, the share of class-k images the classifier calls k;\n\
    with --images, a per-class folder from `gannet sample --per-class`).\n\
    Text-to-image checkpoints are scored on their held-out captions: r-precision, category (with\n\
    --classifier from `gannet classifier --data captioned:DIR`) and fid, each beside the real images'.\n\
    Inception runs at about 3 images/s per CPU core: fid/kid/pr with -n 2000 (4000 images) take about\n\
    ten minutes on 2 cores, the classifier metrics seconds. Reference features are cached (--cache-dir), so the\n\
    reference is embedded once per data set and count.\n\n\
    Folders (--images, and a folder --data) are read as pytorch-fid reads them: each image at its own\n\
    size (all images of both sets must share it; IDX data is 28x28), alpha dropped, so the FID equals\n\
    `python -m pytorch_fid A B` when -n is at least the larger folder's count. --resolution N instead\n\
    resizes both sets to NxN as training does (centre crop, alpha composited on white).\n\n\
    Inception weights: --inception FILE, else $GANNET_MODELS/pt_inception-2015-12-05-nofc.pth, else\n\
    pytorch-fid's release file pt_inception-2015-12-05-6726825d.pth in the cache folder, downloaded there\n\
    once (about 91 MiB, SHA-256 checked; $GANNET_INCEPTION_URL names a mirror). Offline: use --inception,\n\
    GANNET_MODELS, or --metrics cfid (no Inception network).")]
pub struct EvalArgs {
    /// A training checkpoint to draw the generated images from.
    #[arg(long)]
    pub(crate) checkpoint: Option<PathBuf>,
    /// A folder of generated PNG/JPEG images (e.g. from `gannet sample --out-dir`).
    #[arg(long)]
    pub(crate) images: Option<PathBuf>,
    /// Reference (real) images: an IDX folder or file, an image folder, or builtin:digits.
    /// Default: the checkpoint's training data; builtin:digits with --images.
    #[arg(long, short)]
    pub(crate) data: Option<String>,
    /// Comma-separated metrics: fid, kid, pr, cfid, classes, cacc.
    /// [default: fid,kid,pr,cfid,classes for grey images (and cacc for conditional models),
    /// fid,kid,pr for colour]
    #[arg(long)]
    pub(crate) metrics: Option<String>,
    /// Images on each side (generated, and reference when it has that many). pytorch-fid scores
    /// every image of a folder: to match it, pass at least the larger folder's count.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub(crate) count: usize,
    /// Seed of the generated latents (the same images as `gannet sample --seed`).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Classifier for cfid/classes: auto (Fashion-MNIST's for a reference path naming fashion,
    /// else MNIST's), builtin:mnist, builtin:fashion-mnist, or a file from `gannet classifier`.
    #[arg(long, default_value = "auto")]
    pub(crate) classifier: String,
    /// Square size both sets are resized to, as for training (centre crop, alpha composited on
    /// white) [default: the checkpoint's; with --images, each set at its own size, read as
    /// pytorch-fid reads folders (IDX data: 28)].
    #[arg(long)]
    pub(crate) resolution: Option<usize>,
    /// Folder of cached reference features [default: $GANNET_CACHE, else ~/.cache/gannet].
    #[arg(long)]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Embed the reference images again instead of using (and writing) the cache.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// FID Inception weights (.pth, zip or legacy format, or .safetensors) [default:
    /// $GANNET_MODELS/pt_inception-2015-12-05-nofc.pth, else pytorch-fid's
    /// pt_inception-2015-12-05-6726825d.pth in the cache folder, downloaded there on first use].
    #[arg(long)]
    pub(crate) inception: Option<PathBuf>,
    /// Print the results as JSON on stdout instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
}

/// Progress bars on stderr, one per stage.
struct Bars {
    bar: Option<ProgressBar>,
}

impl EvalObserver for Bars {
    fn stage(&mut self, name: &str, total: usize) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
        self.bar = Some(progress::bar(total as u64, name));
    }
    fn advance(&mut self, n: usize) {
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
    }
    fn note(&mut self, message: &str) {
        match &self.bar {
            Some(b) => b.println(message),
            None => eprintln!("{message}"),
        }
    }
}

impl Bars {
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
    }
}

/// Loads `spec` (builtin:digits or a path) with the train command's rules for the size.
fn load_reference(spec: &str, resolution: Option<usize>, channels: Channels) -> Result<Dataset> {
    let mut cfg = TrainConfig::default();
    cfg.data.source = spec.to_string();
    cfg.data.resolution = resolution;
    cfg.data.channels = channels;
    load_dataset(&cfg).with_context(|| format!("loading the reference images {spec}"))
}

/// Whether `spec` names a folder of images (not builtin:digits, not IDX data).
fn is_image_folder(spec: &str) -> bool {
    let path = Path::new(spec);
    !spec.starts_with("builtin:") && path.is_dir() && !data::is_idx(path)
}

/// The generated images of `dir`: at their own size as pytorch-fid reads them (`native`), else
/// resized to the reference's size and channels as the training loader does.
fn load_generated(dir: &Path, reference: &Dataset, native: bool) -> Result<Dataset> {
    if native {
        let images = eval_folder::load_as_pytorch_fid(dir)?;
        check_same_size(dir, (images.width(), images.height()), reference)?;
        return Ok(images);
    }
    let opts = LoadOptions::new(reference.height(), if reference.channels() == 1 { Channels::Grey } else { Channels::Rgb });
    Ok(data::load(&DataSource::Path(dir.to_path_buf()), &opts)?)
}

/// Sets scored at their own size must share it: a size difference alone moves FID (each set
/// reaches Inception's 299x299 through a different resize), which is rarely what is meant.
fn check_same_size(dir: &Path, (w, h): (usize, usize), reference: &Dataset) -> Result<()> {
    let (rw, rh) = (reference.width(), reference.height());
    anyhow::ensure!(
        (w, h) == (rw, rh),
        "the generated images in {} are {w}x{h} but the reference images ({}) are {rw}x{rh}. Without --resolution \
         each set is scored at its own size, and a size difference alone moves FID: pass --resolution N to resize \
         both sets to NxN (e.g. --resolution {rw}), or write the samples at {rw}x{rh}",
        dir.display(),
        reference.source()
    );
    Ok(())
}

/// Says that only `count` of a folder's `len` images are scored, unlike pytorch-fid.
fn note_subset(side: &str, source: &str, len: usize, count: usize) -> String {
    format!("the {side} set {source} has {len} images; scoring {count} of them (-n). pytorch-fid scores all: pass -n {len} to match it")
}

pub fn run(args: EvalArgs) -> Result<()> {
    let started = Instant::now();
    anyhow::ensure!(args.count >= 2, "--count must be at least 2 (got {})", args.count);
    let device = gannet::device::parse_device(&args.device)?;
    let saved = match &args.checkpoint {
        Some(c) => Some(SavedRun::load(c, &device).with_context(|| format!("loading the checkpoint {}", c.display()))?),
        None => None,
    };
    if let Some(dir) = &args.images {
        anyhow::ensure!(dir.is_dir(), "{}: not a folder of images", dir.display());
    }
    let ref_spec = match &saved {
        Some(s) => args.data.clone().unwrap_or_else(|| s.config.data.source.clone()),
        None => args.data.clone().unwrap_or_else(|| "builtin:digits".into()),
    };
    // Folders without --resolution are scored at their own size, read as pytorch-fid reads
    // them, so that the FID is pytorch-fid's (a resize to 32x32 moved it from 59.2 to 62.8).
    let native = saved.is_none() && args.resolution.is_none();
    let native_folder = native && is_image_folder(&ref_spec);
    let reference = match &saved {
        Some(s) => {
            let shape = s.image_shape;
            let ch = if shape.channels == 1 { Channels::Grey } else { Channels::Rgb };
            load_reference(&ref_spec, Some(args.resolution.unwrap_or(shape.resolution)), ch)?
        }
        None if native_folder => eval_folder::load_as_pytorch_fid(Path::new(&ref_spec)).with_context(|| format!("loading the reference images {ref_spec}"))?,
        // IDX data and the built-in digits load at their own size, 28, without --resolution.
        None => load_reference(&ref_spec, args.resolution, Channels::Auto)?,
    };
    if let (true, Some(dir)) = (native, &args.images) {
        // Before the reference is embedded (minutes with Inception), from the file headers.
        if let Some(size) = eval_folder::folder_image_size(dir)? {
            check_same_size(dir, size, &reference)?;
        }
    }
    let conditional = saved.as_ref().is_some_and(|s| s.num_classes() > 0);
    let metrics = match &args.metrics {
        Some(m) => Metric::parse_list(m)?,
        None if reference.channels() == 1 => Metric::ALL.into_iter().filter(|&m| m != Metric::Cacc || conditional).collect(),
        None => vec![Metric::Fid, Metric::Kid, Metric::Pr],
    };
    if metrics.contains(&Metric::Cacc) && saved.as_ref().is_some_and(|s| s.num_classes() == 0) {
        anyhow::bail!(
            "the cacc metric needs a class-conditional checkpoint; {} is unconditional",
            args.checkpoint.as_ref().map_or(String::new(), |c| c.display().to_string())
        );
    }
    let cache_dir = (!args.no_cache).then(|| args.cache_dir.clone().unwrap_or_else(evaluate::cache_dir));
    let opts = EvalOptions {
        metrics: metrics.clone(),
        count: args.count,
        seed: args.seed,
        classifier: args.classifier.clone(),
        cache_dir,
        inception_weights: args.inception.clone(),
    };
    let generated_desc = match (&args.checkpoint, &args.images) {
        (Some(c), _) => format!("{} (seed {})", c.display(), args.seed),
        (_, Some(d)) => d.display().to_string(),
        _ => unreachable!("clap requires one of them"),
    };
    eprintln!(
        "evaluating {generated_desc} against {} ({} images, {}x{}x{}): {}",
        reference.source(),
        reference.len(),
        reference.channels(),
        reference.height(),
        reference.width(),
        metrics.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
    );
    let mut bars = Bars { bar: None };
    if native_folder && reference.len() > args.count {
        bars.note(&note_subset("reference", &ref_spec, reference.len(), args.count));
    }
    let key = evaluate::dataset_cache_key(&ref_spec, &reference);
    // Folders read as pytorch-fid reads them (alpha dropped) differ from the training loader's
    // images of the same size: their features are cached apart.
    let key = if native_folder { format!("{key}#as-pytorch-fid") } else { key };
    let evaluator = Evaluator::new(&reference, Some(&key), opts, &device, &mut bars)?;
    let report = match (&saved, &args.images) {
        (Some(s), _) => {
            let gen = s.sampling_generator(&device)?;
            evaluator.evaluate_generator(gen.as_ref(), &mut bars)?
        }
        (None, Some(dir)) => {
            let images = load_generated(dir, &reference, native)?;
            anyhow::ensure!(images.len() >= 2, "{}: has {} images; evaluation needs at least 2", dir.display(), images.len());
            let n = images.len().min(args.count);
            if n < args.count {
                bars.note(&format!("{} holds only {n} images: evaluating those", dir.display()));
            } else if native && images.len() > n {
                bars.note(&note_subset("generated", &dir.display().to_string(), images.len(), n));
            }
            // A per-class folder (`gannet sample --per-class`) is read with its labels; the first
            // n of a fixed shuffle keep every class when n is below the folder's size.
            let idx = evaluate::reference_indices(images.len(), n);
            let labels: Option<Vec<u32>> = images.labels().map(|l| idx.iter().map(|&i| l[i]).collect());
            anyhow::ensure!(
                labels.is_some() || !metrics.contains(&Metric::Cacc),
                "{}: the cacc metric needs one subfolder per class (as `gannet sample --per-class N --out-dir` writes)",
                dir.display()
            );
            evaluator.evaluate_labelled_images(&evaluate::dataset_images01(&images, &idx, &device)?, labels.as_deref(), &mut bars)?
        }
        (None, None) => unreachable!("clap requires one of them"),
    };
    bars.finish();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["generated"] = serde_json::Value::String(generated_desc);
        v["seconds"] = serde_json::json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", generated_desc);
        print!("{}", report.table());
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
