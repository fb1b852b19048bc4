use anyhow::{Context, Result};
use clap::Args;
use gannet::config::ClassifierRunConfig;
use gannet::metrics::{ClassAccuracy, Classifier};
use gannet::train::classifier_task::load_test_set;
use gannet::train::ClassifierTrainer;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet classifier --data ../shared/data/mnist --out classifier-mnist.safetensors\n  \
    gannet classifier --data ../shared/data/fashion-mnist --out fashion.safetensors --steps 3000\n  \
    gannet classifier --data ../shared/data/fashion-mnist --width 32 --depth 2 --shift 2 --flip --steps 6000\n  \
    gannet classifier --data my-labelled-folder --test-data my-test-folder --out mine.safetensors\n  \
    gannet classifier --resume runs/classifier-mine/checkpoints/latest.safetensors --steps 4000 --out mine.safetensors\n  \
    gannet classifier --measure mine.safetensors --test-data my-test-folder\n\n\
    Training runs in a run folder (--run-dir: config.toml, metrics.csv, losses.svg, checkpoints/),\n\
    so Ctrl-C saves and --resume continues. The test accuracy is measured on the IDX folder's t10k\n\
    split, on --test-data, or else on a held-out tenth of the images, and saved in the --out file,\n\
    overall and per class. `gannet eval --classifier FILE` uses it: its class-accuracy table shows\n\
    how well the classifier labels real images of each class beside its verdict on generated ones.")]
pub struct ClassifierArgs {
    /// Labelled training images: an IDX folder (MNIST layout: train-* and t10k-* files), an
    /// IDX images file with its labels file beside it, a folder with one subfolder per class,
    /// or builtin:digits.
    #[arg(long, short, required_unless_present_any = ["resume", "measure"])]
    data: Option<String>,
    /// Labelled test images (same forms as --data). Default: the t10k split of an IDX folder,
    /// else a held-out tenth of --data.
    #[arg(long)]
    test_data: Option<String>,
    /// Where to save the trained classifier.
    #[arg(long, short, default_value = "classifier.safetensors")]
    out: PathBuf,
    /// The training run's folder [default: runs/classifier-NAME, NAME from --out].
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Continue the training run saved in this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Names for the classes in label order, replacing the data's own ("0".."9" for IDX data),
    /// e.g. t-shirt,trouser,...; saved in the classifier (with --measure: renames it).
    #[arg(long, value_delimiter = ',')]
    class_names: Option<Vec<String>>,
    /// Train nothing: measure this saved classifier on labelled test images (--test-data, or the
    /// t10k split of an IDX folder given as --data), print its accuracy per class and record it
    /// in the file.
    #[arg(long, conflicts_with = "resume")]
    measure: Option<PathBuf>,
    /// Training steps (batches) [default: 2000].
    #[arg(long)]
    steps: Option<u64>,
    /// [default: 128]
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate, decayed by a cosine to 5% of it [default: 0.002].
    #[arg(long)]
    lr: Option<f64>,
    /// Square input size, a multiple of 4 [default: 28].
    #[arg(long)]
    resolution: Option<usize>,
    /// Channels of the first stage; the second has twice as many and the features four times
    /// [default: 16].
    #[arg(long)]
    width: Option<usize>,
    /// Convolutions per stage: 1, or 2 for a VGG-style net (more accurate, about 3x the work)
    /// [default: 1].
    #[arg(long)]
    depth: Option<usize>,
    /// Shift each training image by up to N pixels each way (augmentation) [default: 0].
    #[arg(long)]
    shift: Option<usize>,
    /// Mirror half of the training images left-right (augmentation; for clothes, not digits).
    #[arg(long)]
    flip: bool,
    #[arg(long)]
    seed: Option<u64>,
    /// Test accuracy every N steps (and at the end) into the run's metrics_eval.csv.
    #[arg(long)]
    eval_every: Option<u64>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long)]
    device: Option<String>,
}

impl ClassifierArgs {
    fn apply(&self, cfg: &mut ClassifierRunConfig) {
        if let Some(v) = &self.data {
            cfg.data.source = v.clone();
        }
        if let Some(v) = &self.test_data {
            cfg.data.test = Some(v.clone());
        }
        if let Some(v) = &self.class_names {
            cfg.data.class_names = Some(v.clone());
        }
        if let Some(v) = &self.run_dir {
            cfg.output.dir = v.clone();
        }
        if let Some(v) = self.steps {
            cfg.schedule.steps = v;
        }
        if let Some(v) = self.batch_size {
            cfg.schedule.batch_size = v;
        }
        if let Some(v) = self.lr {
            cfg.schedule.lr = v;
        }
        if let Some(v) = self.resolution {
            cfg.data.resolution = v;
        }
        if let Some(c) = self.width {
            (cfg.model.conv1, cfg.model.conv2, cfg.model.hidden) = (c, 2 * c, 4 * c);
        }
        if let Some(v) = self.depth {
            cfg.model.depth = v;
        }
        if let Some(v) = self.shift {
            cfg.augment.shift = v;
        }
        if self.flip {
            cfg.augment.flip = true;
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
        if let Some(v) = self.eval_every {
            cfg.eval_every = v;
        }
        if let Some(v) = &self.device {
            cfg.device = v.clone();
        }
    }
}

pub fn run(args: ClassifierArgs) -> Result<()> {
    if let Some(file) = &args.measure {
        return measure(file, &args);
    }
    let stop = crate::progress::stop_on_ctrl_c()?;
    let mut trainer = match &args.resume {
        Some(ckpt) => ClassifierTrainer::resume(ckpt, |cfg| args.apply(cfg)).with_context(|| format!("resuming from {}", ckpt.display()))?,
        None => {
            let mut cfg = ClassifierRunConfig::default();
            // One run folder per output file, so that another --out is another run.
            let stem = args.out.file_stem().map_or("classifier".into(), |s| s.to_string_lossy().into_owned());
            cfg.output.dir = PathBuf::from("runs").join(format!("classifier-{stem}"));
            args.apply(&mut cfg);
            ClassifierTrainer::new(cfg)?
        }
    };
    eprintln!("training a classifier on {} for {} steps -> {}", trainer.task().describe(), trainer.config().schedule.steps, trainer.run_dir().root().display());
    let outcome = crate::progress::train(&mut trainer, &stop)?;
    if outcome != gannet::train::Outcome::Finished {
        // Saved and stopped: exits with status 130, exporting nothing.
        let rd = trainer.run_dir();
        crate::progress::finish_run(outcome, trainer.step(), &rd.latest_grid(), &rd.latest_checkpoint());
    }
    let (net, accuracy) = trainer.task().export()?;
    net.save(&args.out)?;
    println!("test accuracy {:.2}% ({})", accuracy.overall() * 100.0, trainer.task().describe());
    print!("{}", per_class_table(&accuracy));
    eprintln!("saved {} (run folder {})", args.out.display(), trainer.run_dir().root().display());
    Ok(())
}

/// `--measure FILE`: the saved classifier's accuracy per class on real test images, printed and
/// written into the file (its weights unchanged).
fn measure(file: &Path, args: &ClassifierArgs) -> Result<()> {
    let device = gannet::device::parse_device(args.device.as_deref().unwrap_or("cpu"))?;
    let mut net = Classifier::load(file, &device)?;
    let (mut test, source) = load_test_set(args.data.as_deref(), args.test_data.as_deref(), net.config().resolution)?;
    if let Some(names) = &args.class_names {
        test = test.with_class_names(names.clone())?;
        net.set_class_names(test.class_names()).with_context(|| format!("renaming the classes of {}", file.display()))?;
    }
    let accuracy = net.class_accuracy(&test).with_context(|| format!("measuring {} on {source}", file.display()))?;
    net.set_test_result(&accuracy)?;
    net.save(file)?;
    println!("test accuracy {:.2}% on {source} ({} images)", accuracy.overall() * 100.0, test.len());
    print!("{}", per_class_table(&accuracy));
    eprintln!("recorded in {}", file.display());
    Ok(())
}

/// One line per class: its test images and the share labelled right.
fn per_class_table(a: &ClassAccuracy) -> String {
    let mut s = String::from("  class        images   accuracy\n");
    for (i, name) in a.class_names.iter().enumerate() {
        s.push_str(&format!("  {name:<12} {:>6}   {:>6.2}%\n", a.counts[i], 100.0 * a.accuracy[i]));
    }
    s
}
