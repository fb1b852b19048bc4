//! A small CNN image classifier that gannet trains itself, for the class-based metrics of
//! generated images: the class histogram ([`super::class_histogram`]), the "classifier FID"
//! ([`super::classifier_fid()`]) and checking that class-conditional samples are of the requested
//! class ([`Classifier::predict`]).
//!
//! Architecture (inputs in [0, 1], mapped to [-1, 1] like the GANs' images):
//! `conv3x3(C->c1) relu maxpool2 | conv3x3(c1->c2) relu maxpool2 | linear(c2*R/4*R/4 -> hidden)
//! relu | linear(hidden -> classes)`; with `depth` 2 each stage has a second conv3x3 (same
//! width) and ReLU before its pooling, a VGG-style net. The `hidden`-d activations after the first linear layer are
//! the [`Classifier::features`]. Trained (`train::classifier_task`, `gannet classifier`) with Adam
//! and cross-entropy, learning rate decayed by a cosine to 5% at the end. Saved as a gannet checkpoint (kind `classifier`) with the config,
//! class names and measured test accuracy (overall and per class) in the metadata.

use super::class_accuracy::ClassAccuracy;
use super::pool::resize_bilinear;
use crate::checkpoint;
use crate::data::Dataset;
use crate::nn::{Conv2d, Init, Linear, ParamStore};
use crate::ops::ConvSpec;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Checkpoint metadata keys.
const META_KIND: &str = "gannet_kind";
const KIND: &str = "classifier";
const META_CONFIG: &str = "classifier_config";
const META_CLASSES: &str = "class_names";
const META_ACCURACY: &str = "test_accuracy";
/// JSON list: the test accuracy of each class, in class order.
const META_CLASS_ACCURACY: &str = "test_accuracy_per_class";
const META_TRAINED_ON: &str = "trained_on";

/// Images per forward pass when predicting or embedding.
const EVAL_BATCH: usize = 500;

/// Sizes of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Square input size; images of other sizes are resized (bilinear) first. Multiple of 4.
    pub resolution: usize,
    /// Input channels (1 grey, 3 RGB); other inputs are converted (RGB -> mean grey, grey -> RGB).
    pub channels: usize,
    pub conv1: usize,
    pub conv2: usize,
    /// Width of the penultimate layer: the dimension of [`Classifier::features`].
    pub hidden: usize,
    pub classes: usize,
    /// Convolutions per stage (1 or 2); files from before it existed have 1.
    #[serde(default = "one")]
    pub depth: usize,
}

fn one() -> usize {
    1
}

impl Default for ClassifierConfig {
    /// 28x28 grey digits, 10 classes: about 105k parameters (420 KB as f32).
    fn default() -> Self {
        Self { resolution: 28, channels: 1, conv1: 16, conv2: 32, hidden: 64, classes: 10, depth: 1 }
    }
}

/// The trained network with its class names.
pub struct Classifier {
    cfg: ClassifierConfig,
    params: ParamStore,
    conv1: Conv2d,
    conv2: Conv2d,
    /// The second conv of each stage when `depth` is 2.
    conv1b: Option<Conv2d>,
    conv2b: Option<Conv2d>,
    fc1: Linear,
    fc2: Linear,
    class_names: Vec<String>,
    /// Test accuracy measured after training, when known (saved in the file).
    test_accuracy: Option<f64>,
    /// The same per class, when known (files from before it was kept have none).
    test_class_accuracy: Option<Vec<f64>>,
    /// What it was trained on (saved in the file).
    trained_on: String,
    device: Device,
}

/// The built-in classifiers' names, for [`Classifier::builtin`].
pub const BUILTIN: [&str; 2] = ["mnist", "fashion-mnist"];

impl Classifier {
    /// A freshly initialised network (PyTorch's default init), weights drawn from `seed`.
    pub fn new(cfg: ClassifierConfig, class_names: Vec<String>, seed: u64, device: &Device) -> Result<Self> {
        if cfg.resolution == 0
            || !cfg.resolution.is_multiple_of(4)
            || !(cfg.channels == 1 || cfg.channels == 3)
            || cfg.classes < 2
            || !(1..=2).contains(&cfg.depth)
        {
            return Err(Error::Config(format!(
                "classifier needs a resolution that is a positive multiple of 4, 1 or 3 channels, >= 2 classes and depth 1 or 2, got {cfg:?}"
            )));
        }
        if class_names.len() != cfg.classes {
            return Err(Error::Config(format!("{} class names for {} classes", class_names.len(), cfg.classes)));
        }
        let params = ParamStore::new(crate::rng::mix(seed, crate::rng::Stream::Init, 3), device);
        let p = params.root();
        let fan = |c: usize, k: usize| Init::FanInUniform { fan_in: c * k * k };
        let conv1 = Conv2d::new(&p.sub("conv1"), cfg.channels, cfg.conv1, 3, ConvSpec::new(1, 1), fan(cfg.channels, 3), true)?;
        let conv2 = Conv2d::new(&p.sub("conv2"), cfg.conv1, cfg.conv2, 3, ConvSpec::new(1, 1), fan(cfg.conv1, 3), true)?;
        let second = |name: &str, c: usize| -> Result<Option<Conv2d>> {
            Ok(if cfg.depth == 2 { Some(Conv2d::new(&p.sub(name), c, c, 3, ConvSpec::new(1, 1), fan(c, 3), true)?) } else { None })
        };
        let (conv1b, conv2b) = (second("conv1b", cfg.conv1)?, second("conv2b", cfg.conv2)?);
        let flat = cfg.conv2 * (cfg.resolution / 4) * (cfg.resolution / 4);
        let fc1 = Linear::new(&p.sub("fc1"), flat, cfg.hidden, Init::FanInUniform { fan_in: flat }, true)?;
        let fc2 = Linear::new(&p.sub("fc2"), cfg.hidden, cfg.classes, Init::FanInUniform { fan_in: cfg.hidden }, true)?;
        Ok(Self {
            cfg,
            params,
            conv1,
            conv2,
            conv1b,
            conv2b,
            fc1,
            fc2,
            class_names,
            test_accuracy: None,
            test_class_accuracy: None,
            trained_on: String::new(),
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ClassifierConfig {
        &self.cfg
    }
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }
    /// Renames the classes (label order unchanged), e.g. with names checked by
    /// [`crate::data::Dataset::with_class_names`].
    pub fn set_class_names(&mut self, names: &[String]) -> Result<()> {
        if names.len() != self.cfg.classes {
            return Err(Error::Config(format!("{} class names for a classifier of {} classes", names.len(), self.cfg.classes)));
        }
        self.class_names = names.to_vec();
        Ok(())
    }
    pub fn num_classes(&self) -> usize {
        self.cfg.classes
    }
    /// Dimension of [`Classifier::features`].
    pub fn feature_dim(&self) -> usize {
        self.cfg.hidden
    }
    /// Test accuracy recorded when it was trained (None for an untrained network).
    pub fn test_accuracy(&self) -> Option<f64> {
        self.test_accuracy
    }

    /// Test accuracy of each class on real images, recorded with [`Classifier::set_test_result`]:
    /// how far the classifier can be trusted to judge generated images of that class.
    pub fn test_class_accuracy(&self) -> Option<&[f64]> {
        self.test_class_accuracy.as_deref()
    }
    /// The data set it was trained on, as recorded in the file.
    pub fn trained_on(&self) -> &str {
        &self.trained_on
    }

    /// CRC32 of the weights (name, shape and f32 bytes of every tensor, in name order), for
    /// keying cached feature statistics.
    pub fn weights_hash(&self) -> Result<u32> {
        let mut h = crc32fast::Hasher::new();
        for (name, t) in self.params.tensors() {
            h.update(format!("{name}{:?}", t.dims()).as_bytes());
            for v in t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()? {
                h.update(&v.to_le_bytes());
            }
        }
        Ok(h.finalize())
    }

    /// Penultimate activations and logits of inputs already in [-1, 1] at the network's size.
    fn forward_m11(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let stage = |x: &Tensor, conv: &Conv2d, second: &Option<Conv2d>| -> Result<Tensor> {
            let mut h = conv.forward(x)?.relu()?;
            if let Some(c) = second {
                h = c.forward(&h)?.relu()?;
            }
            Ok(h.max_pool2d(2)?)
        };
        let h = stage(x, &self.conv1, &self.conv1b)?;
        let h = stage(&h, &self.conv2, &self.conv2b)?;
        let feat = self.fc1.forward(&h.flatten_from(1)?)?.relu()?;
        let logits = self.fc2.forward(&feat)?;
        Ok((feat, logits))
    }

    /// Converts images in [0, 1], [N, 1|3, H, W], to the network's input: channels, size, [-1, 1].
    fn prepare01(&self, images01: &Tensor) -> Result<Tensor> {
        let (_, c, h, w) = images01.dims4()?;
        if !(c == 1 || c == 3) || !super::pool::is_float(images01) {
            return Err(Error::Msg(format!("the classifier wants float images [N, 1|3, H, W] in [0, 1], got {:?} {:?}", images01.dims(), images01.dtype())));
        }
        let mut x = images01.to_dtype(DType::F32)?.to_device(&self.device)?;
        if c != self.cfg.channels {
            x = if c == 3 { x.mean_keepdim(1)? } else { x.repeat((1, 3, 1, 1))? };
        }
        let r = self.cfg.resolution;
        if (h, w) != (r, r) {
            x = resize_bilinear(&x, r, r)?;
        }
        Ok(x.affine(2.0, -1.0)?)
    }

    /// Applies `f` to the network's (features, logits) of batches of `images01`, concatenated.
    fn batched(&self, images01: &Tensor, f: impl Fn(Tensor, Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let n = images01.dim(0)?;
        let mut out = Vec::with_capacity(n.div_ceil(EVAL_BATCH));
        for start in (0..n).step_by(EVAL_BATCH) {
            // Detached: the weights are variables; tracked outputs would keep every batch's
            // activations alive until the concatenation is dropped.
            let x = self.prepare01(&images01.narrow(0, start, EVAL_BATCH.min(n - start))?.detach())?;
            let (feat, logits) = self.forward_m11(&x)?;
            out.push(f(feat.detach(), logits.detach())?);
        }
        if out.is_empty() {
            return Err(Error::Msg("the classifier got no images".into()));
        }
        Ok(Tensor::cat(&out, 0)?)
    }

    /// Penultimate-layer features [N, hidden] of images in [0, 1] (any size, grey or RGB).
    pub fn features(&self, images01: &Tensor) -> Result<Tensor> {
        self.batched(images01, |feat, _| Ok(feat))
    }

    /// Class probabilities [N, classes] (softmax of the logits).
    pub fn probabilities(&self, images01: &Tensor) -> Result<Tensor> {
        self.batched(images01, |_, logits| Ok(log_softmax(&logits)?.exp()?))
    }

    /// The most likely class of each image in [0, 1].
    pub fn predict(&self, images01: &Tensor) -> Result<Vec<usize>> {
        let idx = self.batched(images01, |_, logits| Ok(logits.argmax(D::Minus1)?))?;
        Ok(idx.to_vec1::<u32>()?.into_iter().map(|i| i as usize).collect())
    }

    /// Share of `dataset`'s images whose predicted class is their label.
    pub fn accuracy(&self, dataset: &Dataset) -> Result<f64> {
        Ok(self.class_accuracy(dataset)?.overall())
    }

    /// For each class, the share of `dataset`'s images of that class predicted as it. The
    /// data set's labels must be this classifier's classes (its class names are not compared:
    /// an IDX file has none).
    pub fn class_accuracy(&self, dataset: &Dataset) -> Result<ClassAccuracy> {
        let labels = dataset.labels().ok_or_else(|| Error::data(dataset.source(), "has no labels, so accuracy cannot be measured"))?;
        if let Some(&l) = labels.iter().find(|&&l| l as usize >= self.num_classes()) {
            return Err(Error::data(dataset.source(), format!("has label {l}, but the classifier knows {} classes", self.num_classes())));
        }
        let mut pred = Vec::with_capacity(dataset.len());
        for start in (0..dataset.len()).step_by(EVAL_BATCH) {
            let idx: Vec<usize> = (start..(start + EVAL_BATCH).min(dataset.len())).collect();
            let x = ((dataset.batch_tensor(&idx, &self.device)? + 1.0)? * 0.5)?;
            pred.extend(self.predict(&x)?);
        }
        Ok(ClassAccuracy::from_predictions(labels, &pred, &self.class_names))
    }

    /// The weights and buffers (training updates them; `train::classifier_task`).
    pub(crate) fn params(&self) -> &ParamStore {
        &self.params
    }

    /// Logits of a batch already in the network's input form ([-1, 1], its size and channels).
    pub(crate) fn logits_m11(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_m11(x)?.1)
    }

    /// Names the data the network was trained on (saved in the file).
    pub(crate) fn set_trained_on(&mut self, source: &str) {
        self.trained_on = source.to_string();
    }

    /// Records the accuracy measured on real test images, overall and per class (saved with
    /// the weights).
    pub fn set_test_result(&mut self, result: &ClassAccuracy) -> Result<()> {
        if result.accuracy.len() != self.num_classes() {
            return Err(Error::Msg(format!("{} per-class accuracies for a classifier of {} classes", result.accuracy.len(), self.num_classes())));
        }
        self.test_accuracy = Some(result.overall());
        self.test_class_accuracy = Some(result.accuracy.clone());
        Ok(())
    }

    /// Saves weights, config, class names and test accuracy as a gannet checkpoint.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut meta = BTreeMap::new();
        meta.insert(META_KIND.to_string(), KIND.to_string());
        meta.insert(META_CONFIG.to_string(), serde_json::to_string(&self.cfg).expect("plain struct"));
        meta.insert(META_CLASSES.to_string(), serde_json::to_string(&self.class_names).expect("strings"));
        meta.insert(META_TRAINED_ON.to_string(), self.trained_on.clone());
        if let Some(a) = self.test_accuracy {
            meta.insert(META_ACCURACY.to_string(), format!("{a:.6}"));
        }
        if let Some(a) = &self.test_class_accuracy {
            let rounded: Vec<f64> = a.iter().map(|v| (v * 1e6).round() / 1e6).collect();
            meta.insert(META_CLASS_ACCURACY.to_string(), serde_json::to_string(&rounded).expect("numbers"));
        }
        checkpoint::save(path, &self.params.tensors(), &meta)
    }

    /// Loads a classifier written by [`Classifier::save`].
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let (tensors, meta) = checkpoint::load(path, device)?;
        Self::from_parts(path, tensors, meta, device)
    }

    /// One of the classifiers built into gannet ([`BUILTIN`]): `mnist` (digits) or
    /// `fashion-mnist`, both 28x28 grey, trained by `gannet classifier` (see `assets/README.md`).
    pub fn builtin(name: &str, device: &Device) -> Result<Self> {
        let bytes: &[u8] = match name {
            "mnist" => builtin_files::MNIST,
            "fashion-mnist" => builtin_files::FASHION_MNIST,
            other => return Err(Error::Config(format!("unknown built-in classifier '{other}': the built-in ones are {}", BUILTIN.join(", ")))),
        };
        let path = Path::new("builtin:classifier").join(name);
        let (tensors, meta) = checkpoint::load_bytes(bytes, &path, device)?;
        Self::from_parts(&path, tensors, meta, device)
    }

    /// `builtin:NAME` (see [`Classifier::builtin`]) or a path to a saved classifier.
    pub fn load_spec(spec: &str, device: &Device) -> Result<Self> {
        match spec.strip_prefix("builtin:") {
            Some(name) => Self::builtin(name, device),
            None => Self::load(Path::new(spec), device),
        }
    }

    fn from_parts(path: &Path, tensors: BTreeMap<String, Tensor>, meta: BTreeMap<String, String>, device: &Device) -> Result<Self> {
        let err = |m: String| Error::checkpoint(path, m);
        let get = |k: &str| meta.get(k).ok_or_else(|| err(format!("metadata has no '{k}': not a gannet classifier")));
        if get(META_KIND)? != KIND {
            return Err(err(format!("is a '{}' checkpoint, not a classifier", get(META_KIND)?)));
        }
        let cfg: ClassifierConfig = serde_json::from_str(get(META_CONFIG)?).map_err(|e| err(format!("bad {META_CONFIG}: {e}")))?;
        let names: Vec<String> = serde_json::from_str(get(META_CLASSES)?).map_err(|e| err(format!("bad {META_CLASSES}: {e}")))?;
        let mut net = Self::new(cfg, names, 0, device).map_err(|e| err(e.to_string()))?;
        net.params.load(&tensors).map_err(|e| err(format!("weights do not fit the classifier: {e}")))?;
        net.test_accuracy = meta.get(META_ACCURACY).and_then(|s| s.parse().ok());
        net.test_class_accuracy = match meta.get(META_CLASS_ACCURACY) {
            None => None,
            Some(s) => {
                let v: Vec<f64> = serde_json::from_str(s).map_err(|e| err(format!("bad {META_CLASS_ACCURACY}: {e}")))?;
                if v.len() != net.num_classes() {
                    return Err(err(format!("{META_CLASS_ACCURACY} has {} entries for {} classes", v.len(), net.num_classes())));
                }
                Some(v)
            }
        };
        net.trained_on = meta.get(META_TRAINED_ON).cloned().unwrap_or_default();
        Ok(net)
    }
}

/// Log-softmax over the last dimension, stable (the max is subtracted first).
fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

/// The classifiers in `assets/`, embedded so that evaluation works with no files on disk.
mod builtin_files {
    pub const MNIST: &[u8] = include_bytes!("../../../../assets/classifier-mnist.safetensors");
    pub const FASHION_MNIST: &[u8] = include_bytes!("../../../../assets/classifier-fashion-mnist.safetensors");
}
