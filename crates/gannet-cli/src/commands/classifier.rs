use crate::progress;
use anyhow::{Context, Result};
use clap::Args;
use gannet::data::{self, DataSource, Dataset, LoadOptions};
use gannet::metrics::classifier::{Classifier, ClassifierConfig, ClassifierTraining};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet classifier --data ../shared/data/mnist --out classifier-mnist.safetensors\n  \
    gannet classifier --data ../shared/data/fashion-mnist --out fashion.safetensors --steps 3000\n  \
    gannet classifier --data my-labelled-folder --test-data my-test-folder --out mine.safetensors\n\n\
    The test accuracy is measured on the IDX folder's t10k split, on --test-data, or else on a\n\
    held-out tenth of the images, and saved in the file. `gannet eval --classifier FILE` uses it.")]
pub struct ClassifierArgs {
    /// Labelled training images: an IDX folder (MNIST layout: train-* and t10k-* files), an
    /// IDX images file with its labels file beside it, a folder with one subfolder per class,
    /// or builtin:digits.
    #[arg(long, short)]
    data: String,
    /// Labelled test images (same forms as --data). Default: the t10k split of an IDX folder,
    /// else a held-out tenth of --data.
    #[arg(long)]
    test_data: Option<String>,
    /// Where to save the trained classifier.
    #[arg(long, short, default_value = "classifier.safetensors")]
    out: PathBuf,
    /// Training steps (batches).
    #[arg(long, default_value_t = ClassifierTraining::default().steps)]
    steps: usize,
    #[arg(long, default_value_t = ClassifierTraining::default().batch_size)]
    batch_size: usize,
    /// Adam learning rate (decayed by a cosine to 5% of it).
    #[arg(long, default_value_t = ClassifierTraining::default().lr)]
    lr: f64,
    /// Square input size (a multiple of 4).
    #[arg(long, default_value_t = 28)]
    resolution: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn source(spec: &str) -> Result<DataSource> {
    match spec {
        "builtin:digits" => Ok(DataSource::BuiltinDigits),
        s if s.starts_with("builtin:") => anyhow::bail!("unknown built-in dataset '{s}': the only one is builtin:digits"),
        s => Ok(DataSource::Path(PathBuf::from(s))),
    }
}

/// The t10k images file of an IDX folder, if there is one.
fn idx_test_split(dir: &Path) -> Option<PathBuf> {
    ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"].iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Training and test sets, and a description of where the test set came from.
fn load_splits(args: &ClassifierArgs, opts: &LoadOptions) -> Result<(Dataset, Dataset, String)> {
    let train = data::load(&source(&args.data)?, opts).with_context(|| format!("loading training data {}", args.data))?;
    if let Some(t) = &args.test_data {
        let test = data::load(&source(t)?, opts).with_context(|| format!("loading test data {t}"))?;
        return Ok((train, test, t.clone()));
    }
    if let Some(p) = Path::new(&args.data).is_dir().then(|| idx_test_split(Path::new(&args.data))).flatten() {
        let test = data::load(&DataSource::Path(p.clone()), opts).with_context(|| format!("loading test split {}", p.display()))?;
        return Ok((train, test, p.display().to_string()));
    }
    let perm = data::epoch_permutation(train.len(), args.seed, 1_000_000);
    let held = train.len() / 10;
    anyhow::ensure!(held >= 1, "{}: too few images ({}) to hold out a test set; give --test-data", args.data, train.len());
    let test = train.subset(&perm[..held]);
    let rest = train.subset(&perm[held..]);
    Ok((rest, test, format!("a held-out tenth of {} ({held} images)", args.data)))
}

pub fn run(args: ClassifierArgs) -> Result<()> {
    let device = gannet::device::parse_device(&args.device)?;
    let opts = LoadOptions::new(args.resolution, data::Channels::Auto);
    let (train, test, test_desc) = load_splits(&args, &opts)?;
    anyhow::ensure!(train.labels().is_some(), "{}: the images have no labels (IDX needs a labels file; folders need one subfolder per class)", args.data);
    anyhow::ensure!(
        test.labels().is_some() && test.num_classes() <= train.num_classes() && test.channels() == train.channels(),
        "the test set {test_desc} must be labelled with the training set's classes and channels"
    );
    let cfg = ClassifierConfig { resolution: args.resolution, channels: train.channels(), classes: train.num_classes(), ..Default::default() };
    let training = ClassifierTraining { steps: args.steps, batch_size: args.batch_size, lr: args.lr, seed: args.seed };
    eprintln!(
        "training a classifier on {} ({} images, {} classes, {}x{}x{}) for {} steps",
        train.source(),
        train.len(),
        train.num_classes(),
        train.channels(),
        train.height(),
        train.width(),
        args.steps
    );
    let bar = progress::bar(args.steps as u64, "training");
    let mut net = Classifier::train(&train, cfg, &training, &device, &mut |step, _, loss| {
        bar.set_position(step as u64);
        if step % 10 == 0 {
            bar.set_message(format!("loss {loss:.4}"));
        }
    })?;
    bar.finish();
    let acc = net.accuracy(&test)?;
    net.set_test_accuracy(acc);
    net.save(&args.out)?;
    println!("test accuracy {:.2}% on {} ({} images)", acc * 100.0, test_desc, test.len());
    eprintln!("saved {}", args.out.display());
    Ok(())
}
