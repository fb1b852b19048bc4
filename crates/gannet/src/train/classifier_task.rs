//! Training the metrics' image classifier ([`Classifier`]) as an engine task (`gannet
//! classifier`): cross-entropy on batches of the labelled training set, Adam with a cosine
//! decay, test accuracy as periodic evaluation, resumable checkpoints. [`ClassifierTask::export`]
//! gives the trained network with its measured test accuracy, ready to save as a classifier file.

use super::augment;
use super::engine::{self, Losses, Record, Run, Saved, Schedule, TaskConfig};
use super::guard::GuardInput;
use crate::checkpoint;
use crate::config::{ClassifierAugment, ClassifierRunConfig, GuardConfig};
use crate::data::{self, BatchLoader, Channels, DataSource, Dataset, LoadOptions};
use crate::loss::cross_entropy;
use crate::metrics::classifier::{Classifier, ClassifierConfig};
use crate::metrics::ClassAccuracy;
use crate::optim::{Adam, AdamConfig};
use crate::rng::{self, Stream};
use candle_core::{DType, Device, Tensor, D};
use rand::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checkpoint kind of classifier training runs.
pub const KIND_CLASSIFIER_RUN: &str = "classifier-run";

/// A classifier training run (`gannet classifier`).
pub type ClassifierTrainer = Run<ClassifierTask>;

/// Cross-entropy and accuracy on one training batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassLosses {
    pub loss: f64,
    pub accuracy: f64,
}

impl Losses for ClassLosses {
    const COLUMNS: &'static [&'static str] = &["loss", "accuracy"];
    const PLOTTED: &'static [&'static str] = &["loss"];
    fn values(&self) -> Vec<f64> {
        vec![self.loss, self.accuracy]
    }
    /// Only a non-finite loss trips the guard (there is no adversarial game to collapse).
    fn guard_input(&self) -> GuardInput {
        GuardInput { d_loss: self.loss, g_loss: 0.0, d_real: 0.0, d_fake: 0.0 }
    }
    fn summary(&self) -> String {
        format!("loss {:.4} | batch accuracy {:.1}%", self.loss, self.accuracy * 100.0)
    }
}

impl TaskConfig for ClassifierRunConfig {
    const FIXED_ON_RESUME: &'static [&'static str] = &["data", "model", "seed", "schedule.batch_size"];
    fn schedule(&self) -> Schedule {
        Schedule {
            dir: self.output.dir.clone(),
            steps: self.schedule.steps,
            log_every: self.output.log_every,
            sample_every: u64::MAX,
            checkpoint_every: self.output.checkpoint_every,
            eval_every: self.eval_every,
            // A well-trained classifier's loss goes to ~0: only NaN/Inf is a divergence here.
            guard: GuardConfig { collapse_steps: 0, ..GuardConfig::default() },
            loss: crate::loss::GanLoss::NonSaturating,
        }
    }
    fn validate(&self) -> crate::Result<()> {
        ClassifierRunConfig::validate(self)
    }
    fn device(&self) -> &str {
        &self.device
    }
    fn scale_learning_rates(&mut self, factor: f64) {
        self.schedule.lr *= factor;
    }
    fn learning_rates(&self) -> (f64, f64) {
        (self.schedule.lr, self.schedule.lr)
    }
}

/// The network, its optimiser and the training and test sets.
/// The run's random shifts and mirrors of a batch in [-1, 1] (-1 the background), drawn from
/// the seed and the step.
fn augment(x: &Tensor, aug: &ClassifierAugment, seed: u64, step: u64) -> crate::Result<Tensor> {
    if aug.shift == 0 && !aug.flip {
        return Ok(x.clone());
    }
    let n = x.dim(0)?;
    let mut r = rng::rng(seed, Stream::Augment, step);
    let mut x = x.clone();
    if aug.flip {
        let mirror: Vec<f32> = (0..n).map(|_| if r.random_bool(0.5) { 1.0 } else { 0.0 }).collect();
        let m = Tensor::from_vec(mirror, (n, 1, 1, 1), x.device())?.to_dtype(x.dtype())?;
        let keep = m.affine(-1.0, 1.0)?;
        x = (x.broadcast_mul(&keep)? + x.flip(&[3])?.broadcast_mul(&m)?)?;
    }
    if aug.shift > 0 {
        let s = aug.shift as i64;
        let shifts: Vec<(i64, i64)> = (0..n).map(|_| (r.random_range(-s..=s), r.random_range(-s..=s))).collect();
        // `translate` fills with zeros: shift in [0, 2] so that the background fills in.
        x = (augment::translate(&(x + 1.0)?, &shifts)? - 1.0)?;
    }
    Ok(x)
}

pub struct ClassifierTask {
    cfg: ClassifierRunConfig,
    net: Classifier,
    opt: Adam,
    loader: BatchLoader,
    device: Device,
    test: Dataset,
    test_source: String,
    /// The training set in a few words.
    train_desc: String,
}

impl engine::Task for ClassifierTask {
    type Config = ClassifierRunConfig;
    type Losses = ClassLosses;
    const KIND: &'static str = KIND_CLASSIFIER_RUN;
    const COMMAND: &'static str = "gannet classifier";
    const LOWER_LR: &'static str = "--lr ..";

    fn build(cfg: &ClassifierRunConfig, saved: Option<&Record>, device: &Device) -> crate::Result<Self> {
        let (train, test, test_source) = load_splits(cfg)?;
        let net_cfg = ClassifierConfig {
            resolution: cfg.data.resolution,
            channels: train.channels(),
            conv1: cfg.model.conv1,
            conv2: cfg.model.conv2,
            hidden: cfg.model.hidden,
            classes: train.num_classes(),
            depth: cfg.model.depth,
        };
        let mut net = Classifier::new(net_cfg, train.class_names().to_vec(), cfg.seed, device)?;
        net.set_trained_on(train.source());
        let adam = AdamConfig { lr: cfg.schedule.lr, beta1: 0.9, beta2: 0.999, ..AdamConfig::default() };
        let mut opt = Adam::new(net.params().trainable(), adam)?;
        let step = match saved {
            Some(r) => {
                let fit = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the classifier: {e}"));
                net.params().load(&checkpoint::strip_prefix("net", &r.tensors)).map_err(fit)?;
                opt.load_state(&checkpoint::strip_prefix("opt", &r.tensors))?;
                r.run.step
            }
            None => 0,
        };
        let train_desc =
            format!("{} ({} images, {} classes, {}x{}x{})", train.source(), train.len(), train.num_classes(), train.channels(), train.height(), train.width());
        let loader = BatchLoader::new(Arc::new(train), cfg.schedule.batch_size, cfg.seed, step)?;
        Ok(Self { cfg: cfg.clone(), net, opt, loader, device: device.clone(), test, test_source, train_desc })
    }

    fn step(&mut self, step: u64) -> crate::Result<ClassLosses> {
        self.opt.set_lr(self.cfg.lr_at(step));
        let (x, labels) = self.loader.next_batch()?.to_tensors(&self.device)?;
        let labels = labels.ok_or_else(|| crate::Error::Msg("the training batch has no labels".into()))?;
        let x = augment(&x, &self.cfg.augment, self.cfg.seed, step)?;
        let logits = self.net.logits_m11(&x)?;
        let loss = cross_entropy(&logits, &labels)?;
        self.opt.step(&loss.backward()?)?;
        let right = logits.argmax(D::Minus1)?.eq(&labels)?.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>()?;
        Ok(ClassLosses { loss: loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, accuracy: right })
    }

    fn images_per_step(&self) -> usize {
        self.cfg.schedule.batch_size
    }

    fn non_finite_tensor(&self) -> crate::Result<Option<String>> {
        crate::nn::params::first_non_finite_in([("net", self.net.params())])
    }

    fn sample_grid(&mut self, _step: u64) -> crate::Result<Option<image::DynamicImage>> {
        Ok(None)
    }

    fn save(&self, _step: u64) -> crate::Result<Saved> {
        let mut tensors = BTreeMap::new();
        tensors.extend(checkpoint::prefixed("net", self.net.params().tensors()));
        tensors.extend(checkpoint::prefixed("opt", self.opt.state()));
        Ok(Saved { tensors, meta: serde_json::json!({ "class_names": self.net.class_names() }) })
    }

    fn evaluate(&mut self, _step: u64) -> crate::Result<Vec<f64>> {
        Ok(vec![self.net.accuracy(&self.test)?])
    }

    fn eval_columns(&self) -> Vec<(String, Vec<String>)> {
        vec![("accuracy".into(), vec!["test_accuracy".into()])]
    }

    fn eval_note(&self) -> String {
        format!(" (on {}, {} images)", self.test_source, self.test.len())
    }
}

impl ClassifierTask {
    /// The training set's size and classes, and where the test set came from.
    pub fn describe(&self) -> String {
        format!("{}; test set {} ({} images)", self.train_desc, self.test_source, self.test.len())
    }

    /// The trained network with its test accuracy (overall and per class) measured now, ready
    /// to save as a classifier file; also returns that accuracy.
    pub fn export(&self) -> crate::Result<(Classifier, ClassAccuracy)> {
        let accuracy = self.net.class_accuracy(&self.test)?;
        let mut net = Classifier::new(self.net.config().clone(), self.net.class_names().to_vec(), self.cfg.seed, &self.device)?;
        net.params().load(&self.net.params().tensors())?;
        net.set_trained_on(self.net.trained_on());
        net.set_test_result(&accuracy)?;
        Ok((net, accuracy))
    }

    pub fn classifier(&self) -> &Classifier {
        &self.net
    }
}

/// The t10k images file of an IDX folder, if there is one.
fn idx_test_split(dir: &Path) -> Option<PathBuf> {
    ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"].iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// A labelled test set to measure a trained classifier on (`gannet classifier --measure`):
/// `test` when given, else the t10k split of the IDX folder `data`; images loaded at
/// `resolution`. Also says where the images came from. Training images are refused as a test
/// set: accuracy on them says little.
pub fn load_test_set(data: Option<&str>, test: Option<&str>, resolution: usize) -> crate::Result<(Dataset, String)> {
    let opts = LoadOptions::new(resolution, Channels::Auto);
    given_or_t10k(test, data, &opts)?.ok_or_else(|| match data {
        Some(d) => crate::Error::Config(format!("{d} has no t10k test split: give the labelled test images with --test-data (data.test)")),
        None => crate::Error::Config("measuring a classifier needs labelled test images: give --test-data (or --data IDX-FOLDER with a t10k split)".into()),
    })
}

/// The test set `test` when given, else the t10k split of the IDX folder `data` if it has one,
/// and where it came from.
fn given_or_t10k(test: Option<&str>, data: Option<&str>, opts: &LoadOptions) -> crate::Result<Option<(Dataset, String)>> {
    if let Some(t) = test {
        return Ok(Some((data::load(&DataSource::parse(t)?, opts)?, t.to_string())));
    }
    match data.and_then(|d| idx_test_split(Path::new(d))) {
        Some(p) => Ok(Some((data::load(&DataSource::Path(p.clone()), opts)?, p.display().to_string()))),
        None => Ok(None),
    }
}

/// Training and test sets, and where the test set came from: `data.test`, else the t10k split
/// of an IDX folder, else a held-out tenth of the training images (drawn from the seed).
fn load_splits(cfg: &ClassifierRunConfig) -> crate::Result<(Dataset, Dataset, String)> {
    let opts = LoadOptions::new(cfg.data.resolution, Channels::Auto);
    let spec = &cfg.data.source;
    let mut train = data::load(&DataSource::parse(spec)?, &opts)?;
    if let Some(names) = &cfg.data.class_names {
        train = train.with_class_names(names.clone())?;
    }
    if train.labels().is_none() || train.num_classes() < 2 {
        return Err(crate::Error::data(
            train.source(),
            "a classifier needs labelled images of at least 2 classes (IDX needs a labels file; folders need one subfolder per class)",
        ));
    }
    let (train, test, desc) = if let Some((test, desc)) = given_or_t10k(cfg.data.test.as_deref(), Some(spec), &opts)? {
        (train, test, desc)
    } else {
        let perm = data::epoch_permutation(train.len(), cfg.seed, 1_000_000);
        let held = train.len() / 10;
        if held == 0 {
            return Err(crate::Error::data(train.source(), format!("too few images ({}) to hold out a test set; give data.test (--test-data)", train.len())));
        }
        let (test, rest) = (train.subset(&perm[..held]), train.subset(&perm[held..]));
        (rest, test, format!("a held-out tenth of {spec}"))
    };
    if test.labels().is_none() || test.num_classes() > train.num_classes() || test.channels() != train.channels() {
        return Err(crate::Error::data(test.source(), format!("the test set {desc} must be labelled with the training set's classes and channels")));
    }
    Ok((train, test, desc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: usize, seed: u64) -> Tensor {
        let mut r = rng::rng(seed, Stream::Sample, 0);
        rng::rand_uniform(&mut r, &[n, 1, 8, 8], -1.0, 1.0, &Device::Cpu).unwrap()
    }

    fn plane(x: &Tensor, i: usize) -> Vec<f32> {
        x.get(i).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Image `x` shifted by (dy, dx) with -1 (the background) filling in.
    fn shifted(x: &[f32], dy: i64, dx: i64) -> Vec<f32> {
        (0..64i64)
            .map(|p| {
                let (r, c) = (p / 8 - dy, p % 8 - dx);
                if (0..8).contains(&r) && (0..8).contains(&c) {
                    x[(r * 8 + c) as usize]
                } else {
                    -1.0
                }
            })
            .collect()
    }

    #[test]
    fn augmentation_shifts_with_background_and_mirrors_whole_images() {
        let x = images(32, 1);
        let none = augment(&x, &ClassifierAugment::default(), 0, 0).unwrap();
        assert_eq!(plane(&none, 3), plane(&x, 3));
        let moved = augment(&x, &ClassifierAugment { shift: 2, flip: false }, 0, 5).unwrap();
        let mut unshifted = 0;
        for i in 0..32 {
            let (a, b) = (plane(&x, i), plane(&moved, i));
            let hit = (-2..=2).flat_map(|dy| (-2..=2).map(move |dx| (dy, dx))).find(|&(dy, dx)| shifted(&a, dy, dx) == b);
            let (dy, dx) = hit.unwrap_or_else(|| panic!("image {i} is not a shift of at most 2 pixels"));
            unshifted += usize::from(dy == 0 && dx == 0);
        }
        assert!(unshifted < 8, "{unshifted} of 32 images did not move");
        let mirrored = augment(&x, &ClassifierAugment { shift: 0, flip: true }, 0, 5).unwrap();
        let mut flips = 0;
        for i in 0..32 {
            let (a, b) = (plane(&x, i), plane(&mirrored, i));
            let mirror: Vec<f32> = (0..64).map(|p| a[p / 8 * 8 + 7 - p % 8]).collect();
            assert!(b == a || b == mirror, "image {i} is neither itself nor its mirror");
            flips += usize::from(b == mirror);
        }
        assert!((6..=26).contains(&flips), "{flips} of 32 mirrored");
        // Drawn from the seed and the step: the same again, another step differs.
        let again = augment(&x, &ClassifierAugment { shift: 2, flip: true }, 0, 5).unwrap();
        let other = augment(&x, &ClassifierAugment { shift: 2, flip: true }, 0, 6).unwrap();
        let all = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(all(&again), all(&augment(&x, &ClassifierAugment { shift: 2, flip: true }, 0, 5).unwrap()));
        assert_ne!(all(&again), all(&other));
    }
}
