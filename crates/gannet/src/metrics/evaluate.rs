//! Several metrics at once: generated images (from a generator or a folder) against a reference
//! set, as `gannet eval` and the periodic evaluation during training run them.
//!
//! An [`Evaluator`] embeds the reference images once (Inception-v3 pool3 features for FID, KID
//! and precision/recall; the classifier's features and predictions for classifier FID and the
//! class histogram) and then scores any number of generated sets against them. Reference
//! features are cached on disk (see [`cache_dir`]) under a name that holds the data set's path,
//! size, channels and modification time, the number of images and the network's weights hash,
//! so a real set is embedded once per setting. The reference images are the first `count` of a
//! fixed seeded shuffle of the data set; generated images are drawn with the latents
//! `gannet sample --seed S` uses, so `eval` scores exactly the images `sample` writes.

use super::class_accuracy::{balanced_labels, ClassAccuracy, CERTIFIED};
use super::class_histogram::ClassHistogram;
use super::classifier::Classifier;
use super::fid::{cache_file, frechet_distance, FeatureStats};
use super::inception::FidInception;
use super::inception_weights::WeightsLookup;
use super::kid::{kid, KidOptions, KidResult};
use super::precision_recall::{precision_recall, PrecisionRecall};
use crate::data::{self, Dataset};
use crate::models::Generator;
use crate::nn::Mode;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

// In `support`, which inception and inception_weights use too; their paths here still work.
pub use super::support::{cache_dir, EvalObserver, Silent};

/// One metric `gannet eval --metrics` and `[eval] metrics` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Frechet Inception Distance.
    Fid,
    /// Kernel Inception Distance (mean and std over subsets).
    Kid,
    /// Improved precision and recall (k = 3) in Inception feature space.
    Pr,
    /// Frechet distance in the classifier's feature space.
    Cfid,
    /// Histogram of the classifier's predicted classes: classes covered, KL to the reference.
    Classes,
    /// Conditional generators: per class k, the share of class-k images the classifier labels k.
    Cacc,
}

impl Metric {
    pub const ALL: [Metric; 6] = [Metric::Fid, Metric::Kid, Metric::Pr, Metric::Cfid, Metric::Classes, Metric::Cacc];

    pub fn name(&self) -> &'static str {
        match self {
            Metric::Fid => "fid",
            Metric::Kid => "kid",
            Metric::Pr => "pr",
            Metric::Cfid => "cfid",
            Metric::Classes => "classes",
            Metric::Cacc => "cacc",
        }
    }

    /// Whether it needs the Inception network (slow on a CPU: about a second per image).
    pub fn needs_inception(&self) -> bool {
        matches!(self, Metric::Fid | Metric::Kid | Metric::Pr)
    }

    pub fn needs_classifier(&self) -> bool {
        matches!(self, Metric::Cfid | Metric::Classes | Metric::Cacc)
    }

    /// A comma-separated list such as `fid,kid,cfid` (duplicates dropped, order kept).
    pub fn parse_list(text: &str) -> Result<Vec<Metric>> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let m: Metric = part.parse()?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        if out.is_empty() {
            return Err(Error::Config(format!("no metrics given; choose from {}", Self::names())));
        }
        Ok(out)
    }

    /// Names of the numbers it produces (see [`EvalReport::scalars`]).
    pub fn scalar_names(&self) -> &'static [&'static str] {
        match self {
            Metric::Fid => &["fid"],
            Metric::Kid => &["kid", "kid_std"],
            Metric::Pr => &["precision", "recall"],
            Metric::Cfid => &["cfid"],
            Metric::Classes => &["classes_covered", "classes_kl"],
            Metric::Cacc => &["cacc_min", "cacc_mean"],
        }
    }

    fn names() -> String {
        Self::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s.to_ascii_lowercase())
            .ok_or_else(|| Error::Config(format!("unknown metric '{s}': choose from {}", Self::names())))
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to compute and where to cache.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    pub metrics: Vec<Metric>,
    /// Images of each side (the reference uses fewer if it has fewer).
    pub count: usize,
    /// Seed of the generated latents (as `gannet sample --seed`).
    pub seed: u64,
    /// `builtin:mnist`, `builtin:fashion-mnist`, a classifier file, or `auto` (see
    /// [`resolve_classifier`]). Only loaded for the classifier metrics.
    pub classifier: String,
    /// Folder of cached reference features; None disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// The FID Inception weights file; None: the lookup of [`WeightsLookup::from_env`] (the shared
    /// file in [`super::models_dir`], else pytorch-fid's release file, downloaded once).
    pub inception_weights: Option<PathBuf>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            metrics: vec![Metric::Fid, Metric::Kid, Metric::Pr, Metric::Cfid, Metric::Classes],
            count: 1000,
            seed: 0,
            classifier: "auto".into(),
            cache_dir: Some(cache_dir()),
            inception_weights: None,
        }
    }
}

/// `auto` picks the built-in Fashion-MNIST classifier when the reference's source names
/// fashion(-mnist), else the MNIST digit one; anything else is returned unchanged.
pub fn resolve_classifier(spec: &str, reference_source: &str) -> String {
    if spec != "auto" {
        return spec.to_string();
    }
    if reference_source.to_ascii_lowercase().contains("fashion") {
        "builtin:fashion-mnist".into()
    } else {
        "builtin:mnist".into()
    }
}

/// The cache key of a data set loaded from `source` at its size: the canonical path (or the
/// built-in name), resolution, channels and the path's modification time (so an edited data set
/// is embedded again).
pub fn dataset_cache_key(source: &str, dataset: &Dataset) -> String {
    let path = Path::new(source);
    let (full, mtime) = match std::fs::canonicalize(path) {
        Ok(full) => {
            let mtime =
                std::fs::metadata(&full).and_then(|m| m.modified()).ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
            (full.display().to_string(), mtime)
        }
        Err(_) => (source.to_string(), 0),
    };
    format!("{full}#{}x{}x{}#{mtime}", dataset.channels(), dataset.height(), dataset.width())
}

/// Images `indices` of `dataset` as f32 [N, C, H, W] in [0, 1].
pub fn dataset_images01(dataset: &Dataset, indices: &[usize], device: &Device) -> Result<Tensor> {
    Ok(((dataset.batch_tensor(indices, device)? + 1.0)? * 0.5)?)
}

/// The reference images used for `count`: the first `count` of a fixed shuffle (all if fewer).
pub fn reference_indices(len: usize, count: usize) -> Vec<usize> {
    let mut perm = data::epoch_permutation(len, 0, 0);
    perm.truncate(count.min(len));
    perm
}

/// Generates `count` images in [0, 1]; see [`generate`].
pub fn generate01(gen: &dyn Generator, count: usize, labels: Option<&[u32]>, seed: u64, device: &Device, obs: &mut dyn EvalObserver) -> Result<Tensor> {
    super::to_unit_range(&generate(gen, count, labels, seed, device, obs)?)
}

/// The latents [count, latent_dim] that [`generate`] feeds G for `seed`: row i is image i's, and
/// it does not depend on `count` (rows are drawn in order from one stream), so a viewer can
/// re-create, truncate or interpolate any sample that `gannet sample --seed` wrote.
pub fn sample_latents(seed: u64, count: usize, latent_dim: usize, device: &Device) -> Result<Tensor> {
    rng::randn(&mut rng::rng(seed, Stream::Sample, 0), &[count, latent_dim], device)
}

/// [`sample_latents`] drawn from the truncated normal: values beyond `threshold` are redrawn
/// (BigGAN's truncation trick; `gannet sample --truncate-z`). The same seed and threshold give
/// the same latents.
pub fn sample_latents_truncated(seed: u64, count: usize, latent_dim: usize, threshold: f32, device: &Device) -> Result<Tensor> {
    rng::randn_truncated(&mut rng::rng(seed, Stream::Sample, 0), &[count, latent_dim], threshold, device)
}

/// Generates `count` images in G's range [-1, 1] with latents from `seed` (the images
/// `gannet sample --seed` writes), G in eval mode; `labels` (one per image) for a conditional G.
pub fn generate(gen: &dyn Generator, count: usize, labels: Option<&[u32]>, seed: u64, device: &Device, obs: &mut dyn EvalObserver) -> Result<Tensor> {
    generate_from(gen, &sample_latents(seed, count, gen.latent_dim(), device)?, labels, obs)
}

/// The images of latents `z` [count, latent_dim], in chunks of 256, G in eval mode.
pub fn generate_from(gen: &dyn Generator, z: &Tensor, labels: Option<&[u32]>, obs: &mut dyn EvalObserver) -> Result<Tensor> {
    const CHUNK: usize = 256;
    let count = z.dim(0)?;
    if let Some(l) = labels.filter(|l| l.len() != count) {
        return Err(Error::Msg(format!("{} labels for {count} images", l.len())));
    }
    if count == 0 {
        return Err(Error::Msg("asked to generate 0 images".into()));
    }
    let mut out = Vec::new();
    obs.stage("generating", count);
    let mut done = 0;
    while done < count {
        let n = CHUNK.min(count - done);
        let l = labels.map(|l| Tensor::from_slice(&l[done..done + n], n, z.device())).transpose()?;
        // Detached: G's weights are variables, and a tracked output would make every later op
        // (the whole Inception network) keep its activations alive for a backward pass.
        // On a pool thread, as training steps run (nn::on_pool).
        let zs = z.narrow(0, done, n)?;
        out.push(crate::nn::on_pool(|| gen.forward(&zs, l.as_ref(), Mode::Eval))?.detach());
        done += n;
        obs.advance(n);
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// Class histograms of the generated and the reference images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    pub generated: ClassHistogram,
    pub reference: ClassHistogram,
    /// Classes predicted for at least one generated image.
    pub covered: usize,
    /// KL(generated class shares || reference class shares), nats.
    pub kl_to_reference: f64,
}

/// The scores of one generated set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub reference: String,
    pub reference_count: usize,
    pub generated_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<KidResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision_recall: Option<PrecisionRecall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cfid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_accuracy: Option<ClassAccuracy>,
    /// The classifier used by cfid/classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<String>,
}

impl EvalReport {
    /// The named numbers `metric` produced, e.g. `[("precision", ..), ("recall", ..)]`.
    pub fn scalars(&self, metric: Metric) -> Vec<(&'static str, f64)> {
        match metric {
            Metric::Fid => self.fid.map(|v| vec![("fid", v)]).unwrap_or_default(),
            Metric::Kid => self.kid.map(|k| vec![("kid", k.mean), ("kid_std", k.std)]).unwrap_or_default(),
            Metric::Pr => self.precision_recall.map(|p| vec![("precision", p.precision), ("recall", p.recall)]).unwrap_or_default(),
            Metric::Cfid => self.cfid.map(|v| vec![("cfid", v)]).unwrap_or_default(),
            Metric::Classes => {
                self.classes.as_ref().map(|c| vec![("classes_covered", c.covered as f64), ("classes_kl", c.kl_to_reference)]).unwrap_or_default()
            }
            Metric::Cacc => self.class_accuracy.as_ref().map(|a| vec![("cacc_min", a.min()), ("cacc_mean", a.mean())]).unwrap_or_default(),
        }
    }

    /// A plain-text table: one line per number, then the class histogram if computed.
    pub fn table(&self) -> String {
        let mut s = format!("{} generated vs {} reference images ({})\n", self.generated_count, self.reference_count, self.reference);
        let row = |s: &mut String, name: &str, value: String, note: &str| {
            s.push_str(&format!("  {name:<16} {value:>12}  {note}\n"));
        };
        if let Some(v) = self.fid {
            row(&mut s, "FID", format!("{v:.3}"), "Inception-v3 pool3, lower is better");
        }
        if let Some(k) = self.kid {
            row(&mut s, "KID", format!("{:.5}", k.mean), &format!("+- {:.5} (std over subsets), lower is better", k.std));
        }
        if let Some(p) = self.precision_recall {
            row(&mut s, "precision", format!("{:.4}", p.precision), "share of generated images on the real manifold (k=3)");
            row(&mut s, "recall", format!("{:.4}", p.recall), "share of real images on the generated manifold (k=3)");
        }
        let clf = self.classifier.as_deref().unwrap_or("");
        if let Some(v) = self.cfid {
            row(&mut s, "classifier FID", format!("{v:.4}"), &format!("in the feature space of {clf}"));
        }
        if let Some(c) = &self.classes {
            row(&mut s, "classes covered", format!("{}/{}", c.covered, c.generated.counts.len()), "classes predicted at least once");
            row(&mut s, "class KL", format!("{:.4}", c.kl_to_reference), "KL(generated || reference class shares), nats");
            s.push_str("  class      generated   reference\n");
            let (g, r) = (c.generated.shares(), c.reference.shares());
            for (i, name) in c.generated.class_names.iter().enumerate() {
                s.push_str(&format!("  {name:<9} {:>6} {:>5.1}%      {:>5.1}%\n", c.generated.counts[i], 100.0 * g[i], 100.0 * r[i]));
            }
        }
        if let Some(a) = &self.class_accuracy {
            row(&mut s, "class accuracy", format!("{:.4}", a.min()), &format!("worst class; mean {:.4} (share of class-k images labelled k)", a.mean()));
            if let Some((min, n)) = a.min_certified() {
                let note = format!("worst of the {n} classes the classifier labels right >= {:.0}% of the time in real images", 100.0 * CERTIFIED);
                row(&mut s, "certified cacc", format!("{min:.4}"), &note);
            }
            // The classifier's own accuracy on real images of each class, where its file has it.
            let real = a.real_accuracy.as_deref();
            let real_header = if real.is_some() { "   classifier on real test images" } else { "" };
            s.push_str(&format!("  class      images   labelled as the class{real_header}\n"));
            for (i, name) in a.class_names.iter().enumerate() {
                s.push_str(&format!("  {name:<9} {:>7}   {:>6.1}%", a.counts[i], 100.0 * a.accuracy[i]));
                if let Some(r) = real {
                    let mark = if a.certified(i) == Some(false) { "  (not certified)" } else { "" };
                    s.push_str(&format!("                  {:>6.1}%{mark}", 100.0 * r[i]));
                }
                s.push('\n');
            }
        }
        s
    }
}

/// Reference features, embedded once, and the networks to embed generated images with.
pub struct Evaluator {
    opts: EvalOptions,
    device: Device,
    reference: String,
    reference_count: usize,
    inception: Option<FidInception>,
    classifier: Option<(String, Classifier)>,
    real_inception: Option<Tensor>,
    real_inception_stats: Option<FeatureStats>,
    real_classifier_stats: Option<FeatureStats>,
    real_hist: Option<ClassHistogram>,
}

/// Images per Inception forward pass (and per progress update).
const INCEPTION_BATCH: usize = 16;

impl Evaluator {
    /// Loads the networks the metrics need and embeds the reference images of `dataset` (or
    /// reads them from the cache when `cache_key` is given, see [`dataset_cache_key`]).
    pub fn new(dataset: &Dataset, cache_key: Option<&str>, opts: EvalOptions, device: &Device, obs: &mut dyn EvalObserver) -> Result<Self> {
        if opts.count < 2 {
            return Err(Error::Config(format!("evaluation needs at least 2 images per side, got count {}", opts.count)));
        }
        if dataset.len() < 2 {
            return Err(Error::data(dataset.source(), format!("has {} images; evaluation needs at least 2", dataset.len())));
        }
        if opts.metrics.is_empty() {
            return Err(Error::Config("no metrics to compute".into()));
        }
        let indices = reference_indices(dataset.len(), opts.count);
        let real = dataset_images01(dataset, &indices, device)?;
        let n = indices.len();
        let cache_dir = opts.cache_dir.clone();
        let cache = |kind: &str, hash: u32| -> Option<PathBuf> { Some(cache_file(cache_dir.as_ref()?, kind, cache_key?, n, hash)) };
        let mut me = Self {
            device: device.clone(),
            reference: dataset.source().to_string(),
            reference_count: n,
            inception: None,
            classifier: None,
            real_inception: None,
            real_inception_stats: None,
            real_classifier_stats: None,
            real_hist: None,
            opts,
        };
        if me.opts.metrics.iter().any(Metric::needs_inception) {
            // The release file, when it must be downloaded, goes to the features' cache folder
            // (the default one when that cache is off: a download is not worth repeating).
            let weights_cache = me.opts.cache_dir.clone().unwrap_or_else(self::cache_dir);
            let weights = WeightsLookup::from_env(me.opts.inception_weights.clone(), weights_cache).resolve(obs)?;
            let inc = FidInception::load(&weights, device)?;
            let path = cache("inception", inc.weights_hash());
            let feats = cached_features(path.as_deref(), obs, |obs| embed_inception(&inc, &real, "reference", obs))?;
            me.real_inception_stats = Some(FeatureStats::from_features(&feats)?);
            me.real_inception = Some(feats);
            me.inception = Some(inc);
        }
        if me.opts.metrics.iter().any(Metric::needs_classifier) {
            let spec = resolve_classifier(&me.opts.classifier, dataset.source());
            let clf = Classifier::load_spec(&spec, device)?;
            let path = cache("classifier", clf.weights_hash()?);
            let feats = cached_features(path.as_deref(), obs, |_| clf.features(&real))?;
            me.real_classifier_stats = Some(FeatureStats::from_features(&feats)?);
            me.real_hist = Some(ClassHistogram::from_predictions(&clf.predict(&real)?, clf.class_names()));
            me.classifier = Some((spec, clf));
        }
        Ok(me)
    }

    pub fn options(&self) -> &EvalOptions {
        &self.opts
    }

    /// Number of reference images embedded.
    pub fn reference_count(&self) -> usize {
        self.reference_count
    }

    /// Generates `count` images with `gen` (latent seed from the options) and scores them. A
    /// conditional G gets the classes in turn, so every class has the same share.
    pub fn evaluate_generator(&self, gen: &dyn Generator, obs: &mut dyn EvalObserver) -> Result<EvalReport> {
        let labels = (gen.num_classes() > 0).then(|| balanced_labels(self.opts.count, gen.num_classes()));
        let fake = generate01(gen, self.opts.count, labels.as_deref(), self.opts.seed, &self.device, obs)?;
        self.evaluate_labelled_images(&fake, labels.as_deref(), obs)
    }

    /// Scores generated images in [0, 1], [N, 1|3, H, W] (N >= 2).
    pub fn evaluate_images(&self, fake01: &Tensor, obs: &mut dyn EvalObserver) -> Result<EvalReport> {
        self.evaluate_labelled_images(fake01, None, obs)
    }

    /// Scores generated images with the labels they were generated for (needed by `cacc`).
    pub fn evaluate_labelled_images(&self, fake01: &Tensor, labels: Option<&[u32]>, obs: &mut dyn EvalObserver) -> Result<EvalReport> {
        let fake01 = &fake01.detach();
        let n = fake01.dim(0)?;
        if n < 2 {
            return Err(Error::Msg(format!("evaluation needs at least 2 generated images, got {n}")));
        }
        let has = |m: Metric| self.opts.metrics.contains(&m);
        let mut r = EvalReport {
            reference: self.reference.clone(),
            reference_count: self.reference_count,
            generated_count: n,
            fid: None,
            kid: None,
            precision_recall: None,
            cfid: None,
            classes: None,
            class_accuracy: None,
            classifier: None,
        };
        if let (Some(inc), Some(real), Some(real_stats)) = (&self.inception, &self.real_inception, &self.real_inception_stats) {
            let fake = embed_inception(inc, fake01, "generated", obs)?;
            if has(Metric::Fid) {
                r.fid = Some(frechet_distance(real_stats, &FeatureStats::from_features(&fake)?)?);
            }
            if has(Metric::Kid) {
                r.kid = Some(kid(real, &fake, KidOptions { subset_size: 1000.min(n).min(self.reference_count), ..KidOptions::default() })?);
            }
            if has(Metric::Pr) {
                r.precision_recall = Some(precision_recall(real, &fake, 3.min(n - 1).min(self.reference_count - 1))?);
            }
        }
        if let (Some((spec, clf)), Some(real_stats), Some(real_hist)) = (&self.classifier, &self.real_classifier_stats, &self.real_hist) {
            r.classifier = Some(spec.clone());
            if has(Metric::Cfid) {
                r.cfid = Some(frechet_distance(real_stats, &FeatureStats::from_features(&clf.features(fake01)?)?)?);
            }
            if has(Metric::Classes) {
                let hist = ClassHistogram::from_predictions(&clf.predict(fake01)?, clf.class_names());
                r.classes =
                    Some(ClassReport { covered: hist.covered(1), kl_to_reference: hist.kl_to(real_hist), generated: hist, reference: real_hist.clone() });
            }
            if has(Metric::Cacc) {
                r.class_accuracy = Some(class_accuracy(clf, spec, fake01, labels)?);
            }
        }
        Ok(r)
    }
}

/// [`ClassAccuracy`] of images generated for `labels`, which must be the classifier's classes.
fn class_accuracy(clf: &Classifier, spec: &str, fake01: &Tensor, labels: Option<&[u32]>) -> Result<ClassAccuracy> {
    let labels = labels.ok_or_else(|| Error::Config("the cacc metric needs a class-conditional checkpoint (images generated for known labels)".into()))?;
    let k = clf.num_classes();
    if let Some(&l) = labels.iter().find(|&&l| l as usize >= k) {
        return Err(Error::Config(format!("cacc: the generator's label {l} is not a class of the classifier {spec} ({k} classes)")));
    }
    Ok(ClassAccuracy::from_predictions(labels, &clf.predict(fake01)?, clf.class_names()).with_real_accuracy(clf.test_class_accuracy()))
}

/// Inception features of `images01` in batches, reporting progress.
fn embed_inception(inc: &FidInception, images01: &Tensor, what: &str, obs: &mut dyn EvalObserver) -> Result<Tensor> {
    let n = images01.dim(0)?;
    obs.stage(&format!("Inception: {what}"), n);
    let mut out = Vec::with_capacity(n.div_ceil(INCEPTION_BATCH));
    for start in (0..n).step_by(INCEPTION_BATCH) {
        let len = INCEPTION_BATCH.min(n - start);
        out.push(inc.features(&images01.narrow(0, start, len)?)?);
        obs.advance(len);
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// Features read from `path` when it holds them, else computed and (if `path`) saved there. An
/// unreadable cache file is reported and replaced, never fatal.
fn cached_features(path: Option<&Path>, obs: &mut dyn EvalObserver, compute: impl FnOnce(&mut dyn EvalObserver) -> Result<Tensor>) -> Result<Tensor> {
    if let Some(p) = path.filter(|p| p.exists()) {
        match candle_core::safetensors::load(p, &Device::Cpu).map(|mut m| m.remove("features")) {
            Ok(Some(t)) if t.rank() == 2 => {
                obs.note(&format!("reference features from the cache: {}", p.display()));
                return Ok(t.to_dtype(DType::F32)?);
            }
            _ => obs.note(&format!("ignoring an unreadable cache file {}", p.display())),
        }
    }
    let feats = compute(obs)?;
    if let Some(p) = path {
        save_features(p, &feats)?;
        obs.note(&format!("cached the reference features in {}", p.display()));
    }
    Ok(feats)
}

/// Writes `features` to `path` via a temporary file and a rename.
fn save_features(path: &Path, features: &Tensor) -> Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating the cache folder {}", dir.display()), e))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let feats = features.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    candle_core::safetensors::save(&std::collections::HashMap::from([("features".to_string(), feats)]), &tmp)
        .map_err(|e| Error::Msg(format!("writing the cache file {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming {} to {}", tmp.display(), path.display()), e))
}
