use crate::progress;
use anyhow::{bail, Context, Result};
use clap::Args;
use gannet::image_io;
use gannet::metrics::evaluate;
use gannet::rng::{self, Stream};
use gannet::saved::SavedRun;
use std::path::PathBuf;

/// The class label of image `i` (None for an unconditional model).
type LabelOf = Box<dyn Fn(usize) -> Option<u32>>;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet sample --checkpoint runs/default/checkpoints/latest.safetensors --out grid.png\n  \
    gannet sample --checkpoint C --count 100 --seed 7 --out-dir samples/   # 100 single PNGs\n  \
    gannet sample --checkpoint C --class 7 --out sevens.png                # conditional models\n  \
    gannet sample --checkpoint C --class-name sneaker -n 16 --out sneakers.png\n  \
    gannet sample --checkpoint C --per-class 500 --out-dir synthetic/      # labelled image folder\n  \
    gannet sample --checkpoint runs/t2i-emoji/checkpoints/latest.safetensors --prompt \"red heart\" -n 16 --out hearts.png\n  \
    gannet sample --checkpoint T --prompt \"cat face\" --prompt-to \"dog face\" -n 4 --out walk.png  # text interpolation\n\n\
    A conditional model's grid without --class shows one class per row. --per-class writes one\n\
    subfolder per class name, which `gannet train --data synthetic/` reads back with the same labels.\n\
    Every PNG carries text chunks saying it is synthetic and naming the checkpoint and step.")]
pub struct SampleArgs {
    /// A training checkpoint (checkpoints/latest.safetensors of a run).
    #[arg(long)]
    pub(crate) checkpoint: PathBuf,
    /// Write one grid PNG here.
    #[arg(long, short, conflicts_with = "out_dir")]
    pub(crate) out: Option<PathBuf>,
    /// Write one PNG per image into this folder instead.
    #[arg(long)]
    pub(crate) out_dir: Option<PathBuf>,
    /// Number of images.
    #[arg(long, short = 'n', default_value_t = 64)]
    pub(crate) count: usize,
    /// Conditional models: generate only this class (its index, 0-based).
    #[arg(long, conflicts_with_all = ["class_name", "per_class"])]
    class: Option<usize>,
    /// Conditional models: generate only the class with this name (names come from the checkpoint).
    #[arg(long, conflicts_with = "per_class")]
    class_name: Option<String>,
    /// Conditional models: N images of every class into --out-dir, one subfolder per class name
    /// (a labelled dataset, e.g. for augmentation).
    #[arg(long, requires = "out_dir", conflicts_with_all = ["out", "count"], value_name = "N")]
    per_class: Option<usize>,
    /// Truncation psi in (0, 1] (1 = off): fewer odd images, less variety. StyleGAN2 pulls w
    /// towards its tracked mean; other models scale z.
    #[arg(long, default_value_t = 1.0)]
    truncation: f64,
    /// BigGAN's truncation trick: draw latents from the normal truncated at this threshold
    /// (values beyond it redrawn), e.g. 0.5; fewer odd images, less variety. Any model.
    #[arg(long, value_name = "THRESHOLD")]
    truncate_z: Option<f32>,
    /// Seed for the latents: the same seed gives the same images.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Sample from the trained generator, not its EMA shadow (the default when the run kept one).
    #[arg(long)]
    no_ema: bool,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Text-to-image models: what to draw, e.g. "red heart" (repeat for one grid row per
    /// prompt; --count draws of each).
    #[arg(long, short = 'p', conflicts_with_all = ["class", "class_name", "per_class"])]
    pub(crate) prompt: Vec<String>,
    /// Text-to-image models: interpolate from --prompt to this prompt (--frames columns, one
    /// row per draw).
    #[arg(long, requires = "prompt", value_name = "PROMPT")]
    pub(crate) prompt_to: Option<String>,
    /// Columns of a --prompt-to interpolation.
    #[arg(long, default_value_t = 8, requires = "prompt_to")]
    pub(crate) frames: usize,
}

/// What to generate: a class per image (conditional models) or none.
enum Plan {
    Unconditional,
    /// Every image of one class.
    OneClass(usize),
    /// The grid/folder of a conditional model without --class: classes in turn.
    AllClasses,
    /// `n` images of each class, into per-class subfolders.
    PerClass(usize),
}

/// Images generated (and, with --out-dir, written) at a time: memory stays bounded however
/// many images are asked for.
const CHUNK: usize = 256;

pub fn run(args: SampleArgs) -> Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!(args.per_class != Some(0), "--per-class must be at least 1");
    anyhow::ensure!(args.out.is_some() || args.out_dir.is_some(), "say where to write: --out grid.png or --out-dir DIR");
    anyhow::ensure!(args.truncation > 0.0 && args.truncation <= 1.0, "--truncation must be in (0, 1], got {}", args.truncation);
    if let Some(out) = &args.out {
        image_io::ensure_png_path(out)?;
    }
    let device = gannet::device::parse_device(&args.device)?;
    let saved = SavedRun::load(&args.checkpoint, &device)?;
    let plan = plan(&args, &saved)?;
    // The EMA shadow generator (gen_ema.*) when the run kept one: it gives cleaner samples.
    let gen = saved.generator(&device, saved.has_ema() && !args.no_ema).with_context(|| format!("loading {}", args.checkpoint.display()))?;
    let names = &saved.class_names;
    let k = saved.num_classes();
    // Images in all, images per grid row, and the class of image i.
    let (total, nrow, label_of): (usize, Option<usize>, LabelOf) = match plan {
        Plan::Unconditional => (args.count, None, Box::new(|_| None)),
        Plan::OneClass(c) => (args.count, None, Box::new(move |_| Some(c as u32))),
        Plan::AllClasses if args.out.is_some() => {
            let cols = args.count.div_ceil(k);
            (cols.checked_mul(k).context("--count is too large")?, Some(cols), Box::new(move |i| Some((i / cols) as u32)))
        }
        Plan::AllClasses => (args.count, None, Box::new(move |i| Some((i % k) as u32))),
        Plan::PerClass(n) => (n.checked_mul(k).context("--per-class is too large")?, None, Box::new(move |i| Some((i / n) as u32))),
    };
    let shape = gen.image_shape();
    let nrow = nrow.unwrap_or_else(|| (total as f64).sqrt().ceil() as usize);
    // A grid needs every image at once; a folder only one chunk.
    let held = if args.out.is_some() { total } else { total.min(CHUNK) };
    if args.out.is_some() {
        image_io::check_grid_size(total, nrow, shape.resolution, shape.resolution, 2)?;
    }
    let per_image = saved.config.model.step_bytes_per_image(shape).map(|b| b / 8);
    let fix = if args.out.is_some() { "draw fewer images (-n), or write single images with --out-dir" } else { "use a smaller model" };
    gannet::limits::check_memory(per_image.and_then(|b| b.checked_mul(held as u64)), &format!("generating {held} images at once"), fix)?;
    let truncated = gannet::edit::Truncated { gen: gen.as_ref(), psi: args.truncation };
    let text_for = |label: Option<u32>| image_io::provenance_text(&args.checkpoint, saved.step, label.map(|c| (c as usize, names[c as usize].as_str())));
    // One latent stream drawn chunk by chunk gives the same latents as drawing them at once.
    let mut stream = rng::rng(args.seed, Stream::Sample, 0);
    let dim = gen.latent_dim();
    let mut generate = |from: usize, n: usize| -> Result<gannet::candle_core::Tensor> {
        let z = match args.truncate_z {
            Some(t) => rng::randn_truncated(&mut stream, &[n, dim], t, &device)?,
            None => rng::randn(&mut stream, &[n, dim], &device)?,
        };
        let labels: Option<Vec<u32>> = (from..from + n).map(&label_of).collect();
        Ok(evaluate::generate_from(&truncated, &z, labels.as_deref(), &mut evaluate::Silent)?)
    };
    if let Some(out) = &args.out {
        let all = generate(0, total)?;
        let one_class = match plan {
            Plan::OneClass(c) => Some(c as u32),
            _ => None,
        };
        image_io::save_png_with_text(&image_io::grid(&all, nrow, 2)?, out, &text_for(one_class))?;
        let what = match plan {
            Plan::OneClass(c) => format!(" of class {c} ({})", names[c]),
            Plan::AllClasses => format!(", one class per row ({nrow} per class)"),
            _ => String::new(),
        };
        eprintln!("wrote {total} images{what} as a grid to {}", out.display());
    }
    if let Some(dir) = &args.out_dir {
        let path_of = |i: usize| -> PathBuf {
            match plan {
                Plan::PerClass(n) => dir.join(&names[i / n]).join(format!("{:05}.png", i % n)),
                _ => dir.join(format!("{i:05}.png")),
            }
        };
        let subdirs: Vec<PathBuf> = match plan {
            Plan::PerClass(_) => names.iter().map(|n| dir.join(n)).collect(),
            _ => vec![dir.clone()],
        };
        for d in &subdirs {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let bar = progress::bar(total as u64, "writing");
        let mut done = 0;
        while done < total {
            let n = CHUNK.min(total - done);
            for (j, img) in image_io::to_images(&generate(done, n)?)?.iter().enumerate() {
                image_io::save_png_with_text(img, &path_of(done + j), &text_for(label_of(done + j)))?;
            }
            done += n;
            bar.set_position(done as u64);
        }
        bar.finish_and_clear();
        if let Plan::PerClass(n) = plan {
            // The class order, so the folder loader gives every image the label the model used.
            let order = dir.join(gannet::data::folder::CLASS_ORDER_FILE);
            std::fs::write(&order, names.join("\n") + "\n").with_context(|| format!("writing {}", order.display()))?;
            eprintln!("wrote {n} PNGs for each of {k} classes to {} (one subfolder per class, order in classes.txt)", dir.display());
        } else {
            eprintln!("wrote {total} PNGs to {}", dir.display());
        }
    }
    Ok(())
}

/// Checks the class options against the checkpoint.
fn plan(args: &SampleArgs, saved: &SavedRun) -> Result<Plan> {
    let k = saved.num_classes();
    let wants_class = args.class.is_some() || args.class_name.is_some() || args.per_class.is_some();
    if k == 0 {
        if wants_class {
            bail!(
                "{} is an unconditional model (model.conditional = \"none\"): --class, --class-name and --per-class need a \
                 class-conditional one, e.g. `gannet train --preset cgan-mnist` or `--conditional projection`",
                args.checkpoint.display()
            );
        }
        return Ok(Plan::Unconditional);
    }
    let names = &saved.class_names;
    if let Some(c) = args.class {
        if c >= k {
            bail!("--class {c} is out of range: this model has {k} classes, 0 to {} ({})", k - 1, list(names));
        }
        return Ok(Plan::OneClass(c));
    }
    if let Some(name) = &args.class_name {
        return match names.iter().position(|n| n == name) {
            Some(c) => Ok(Plan::OneClass(c)),
            None => bail!("no class named '{name}' in this model; its classes are: {}", list(names)),
        };
    }
    if let Some(n) = args.per_class {
        return Ok(Plan::PerClass(n));
    }
    Ok(Plan::AllClasses)
}

/// "0 = t-shirt, 1 = trouser, ..." style list of class names.
fn list(names: &[String]) -> String {
    names.iter().enumerate().map(|(i, n)| if *n == i.to_string() { n.clone() } else { format!("{i} = {n}") }).collect::<Vec<_>>().join(", ")
}
