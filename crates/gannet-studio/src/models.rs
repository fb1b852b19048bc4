//! The models the studio runs, what each can do, and the per-worker cache of loaded ones.
//!
//! A checkpoint is either a GAN (latent -> image: generate, truncation, interpolation, classes,
//! and style mixing for style-based generators, `Generator::as_style`) or an image-to-image model
//! (image -> image: translate or upscale, see [`ImageToImage`]) or a text-to-image model (a
//! prompt -> images). The page shows only the tools a
//! model's [`Capabilities`] allow, so a new kind of model needs no page changes.

use crate::catalog::{Entry, Source};
use crate::error::{ApiError, ApiResult};
use gannet::candle_core::Device;
use gannet::models::Generator;
use gannet::saved::SavedRun;
use image::DynamicImage;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What the page may offer for a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Images from latents (seed, count).
    pub generate: bool,
    /// The truncation trick, psi (see `gannet::edit::Truncated`).
    pub truncation: bool,
    /// A frame between two samples, for a slider.
    pub interpolate: bool,
    /// The model takes a class label; `classes` in the info lists them.
    pub classes: bool,
    /// Coarse styles from one sample and fine ones from another (StyleGAN2).
    pub style_mixing: bool,
    /// An uploaded image mapped to another of the same size (pix2pix, CycleGAN).
    pub translate: bool,
    /// An uploaded image made larger (super-resolution).
    pub upscale: bool,
    /// Images from a text prompt (text-to-image).
    pub prompt: bool,
}

/// What an image-to-image model does with an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "task")]
pub enum ImageTask {
    /// Same size out (pix2pix, CycleGAN).
    Translate,
    /// `factor` times larger out (super-resolution).
    Upscale { factor: u32 },
}

/// A checkpoint that maps an uploaded image to a new one (pix2pix, CycleGAN, super-resolution).
/// Implement it for such a model and return it from [`load_image_to_image`]; the server does the
/// rest: upload limits, decoding, the worker queue, PNG provenance text, and the page's translate
/// panel.
pub trait ImageToImage {
    fn task(&self) -> ImageTask;
    /// One line for the page, e.g. "pix2pix edges -> shoes, 256x256".
    fn describe(&self) -> String;
    /// The training step of the checkpoint (goes into the PNG's provenance text).
    fn step(&self) -> u64;
    /// The largest input side it accepts (the server also caps uploads at [`crate::MAX_UPLOAD_SIDE`]).
    fn max_input_side(&self) -> u32;
    /// The output for one decoded input image.
    fn translate(&self, input: &DynamicImage) -> gannet::Result<DynamicImage>;
}

/// Loads `path` as an image-to-image model (a `gannet train-i2i` checkpoint: pix2pix, CycleGAN
/// A->B, or super-resolution), or answers `None` when it is not one (then it is read as a GAN
/// training checkpoint).
pub fn load_image_to_image(path: &Path, device: &Device) -> Option<gannet::Result<Box<dyn ImageToImage>>> {
    if gannet::checkpoint::kind(path).as_deref() != Some(gannet::saved::KIND_I2I) {
        return None;
    }
    Some(I2iModel::load(path, device).map(|m| Box::new(m) as Box<dyn ImageToImage>))
}

/// A `train-i2i` checkpoint's A->B generator, as `gannet translate` / `gannet upscale` run it.
struct I2iModel {
    nets: gannet::saved::I2iNets,
    task: gannet::train::i2i::Task,
    step: u64,
    /// The generator's input side (the training resolution; a quarter of it for 4x upscaling).
    input_side: usize,
    scale: usize,
    channels: usize,
    device: Device,
}

impl I2iModel {
    fn load(path: &Path, device: &Device) -> gannet::Result<Self> {
        use gannet::saved::SavedI2i;
        use gannet::train::i2i::Task;
        let saved = SavedI2i::load(path, device)?;
        let nets = saved.nets(device)?;
        let task = saved.config.task;
        let scale = if task == Task::Superres { saved.config.model.scale } else { 1 };
        let input_side = saved.config.data.resolution / scale;
        Ok(Self { nets, task, step: saved.step, input_side, scale, channels: saved.channels, device: device.clone() })
    }
}

impl ImageToImage for I2iModel {
    fn task(&self) -> ImageTask {
        match self.task {
            gannet::train::i2i::Task::Superres => ImageTask::Upscale { factor: self.scale as u32 },
            _ => ImageTask::Translate,
        }
    }

    fn describe(&self) -> String {
        let side = self.input_side * self.scale;
        match self.task() {
            ImageTask::Upscale { factor } => format!("{} {factor}x, {}x{} -> {side}x{side}", self.task.name(), self.input_side, self.input_side),
            ImageTask::Translate => format!("{} A->B, {side}x{side}", self.task.name()),
        }
    }

    fn step(&self) -> u64 {
        self.step
    }

    fn max_input_side(&self) -> u32 {
        crate::MAX_UPLOAD_SIDE
    }

    /// The upload is prepared as the training images were (on white, centre square, resized to
    /// the generator's input side), so any size works; the output has the model's size.
    fn translate(&self, input: &DynamicImage) -> gannet::Result<DynamicImage> {
        let x = gannet::data::folder::image_tensor(input, self.input_side, self.channels, &self.device)?;
        let g = self.nets.generator(gannet::saved::Direction::AToB)?;
        let y = gannet::train::i2i::eval::translate_all(g, &x)?.clamp(-1f32, 1f32)?;
        gannet::image_io::to_images(&y)?.pop().ok_or_else(|| gannet::Error::Msg("the model gave no image".into()))
    }
}

/// A GAN generator ready to sample.
pub struct GanModel {
    pub gen: Box<dyn Generator>,
    pub checkpoint: PathBuf,
    pub step: u64,
    pub arch: String,
    /// Class names of a conditional model; empty for an unconditional one.
    pub class_names: Vec<String>,
    /// Whether the EMA shadow generator is the one loaded.
    pub ema: bool,
}

impl GanModel {
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// e.g. "dcgan GAN, 10 classes, EMA generator".
    fn describe(&self) -> String {
        let mut d = format!("{} GAN", self.arch);
        if self.num_classes() > 0 {
            d += &format!(", {} classes", self.num_classes());
        }
        if self.ema {
            d += ", EMA generator";
        }
        d
    }
}

/// A text-to-image checkpoint: its vocabulary, encoders and generator.
pub struct TextToImageModel {
    pub nets: gannet::saved::T2iNets,
    pub checkpoint: PathBuf,
    pub step: u64,
}

impl TextToImageModel {
    fn describe(&self) -> String {
        format!("text-to-image GAN, {} known words", self.nets.vocab.words().len())
    }
}

pub enum StudioModel {
    Gan(GanModel),
    ImageToImage(Box<dyn ImageToImage>),
    TextToImage(Box<TextToImageModel>),
}

/// `GET /api/checkpoints/{id}`: what the page needs to show a model's tools.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub label: String,
    /// "gan" or "image-to-image".
    pub kind: &'static str,
    pub description: String,
    pub step: u64,
    /// Channels and square side of the generated images (GANs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<gannet::models::ImageShape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent_dim: Option<usize>,
    pub classes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style_layers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_task: Option<ImageTask>,
    pub capabilities: Capabilities,
}

impl StudioModel {
    pub fn capabilities(&self) -> Capabilities {
        match self {
            StudioModel::Gan(g) => Capabilities {
                generate: true,
                truncation: true,
                interpolate: true,
                classes: g.num_classes() > 0,
                style_mixing: g.gen.as_style().is_some(),
                ..Default::default()
            },
            StudioModel::ImageToImage(m) => match m.task() {
                ImageTask::Translate => Capabilities { translate: true, ..Default::default() },
                ImageTask::Upscale { .. } => Capabilities { upscale: true, ..Default::default() },
            },
            StudioModel::TextToImage(_) => Capabilities { prompt: true, ..Default::default() },
        }
    }

    pub fn info(&self, entry: &Entry) -> ModelInfo {
        let (id, label, capabilities) = (entry.id.clone(), entry.label.clone(), self.capabilities());
        match self {
            StudioModel::Gan(g) => ModelInfo {
                id,
                label,
                kind: "gan",
                description: g.describe(),
                step: g.step,
                image: Some(g.gen.image_shape()),
                latent_dim: Some(g.gen.latent_dim()),
                classes: g.class_names.clone(),
                style_layers: g.gen.as_style().map(|s| s.num_ws()),
                image_task: None,
                capabilities,
            },
            StudioModel::ImageToImage(m) => ModelInfo {
                id,
                label,
                kind: "image-to-image",
                description: m.describe(),
                step: m.step(),
                image: None,
                latent_dim: None,
                classes: Vec::new(),
                style_layers: None,
                image_task: Some(m.task()),
                capabilities,
            },
            StudioModel::TextToImage(t) => ModelInfo {
                id,
                label,
                kind: "text-to-image",
                description: t.describe(),
                step: t.step,
                image: Some(t.nets.image_shape()),
                latent_dim: None,
                classes: Vec::new(),
                style_layers: None,
                image_task: None,
                capabilities,
            },
        }
    }

    /// The GAN, or a 422 naming what this model is instead.
    pub fn gan(&self, what: &str) -> ApiResult<&GanModel> {
        match self {
            StudioModel::Gan(g) => Ok(g),
            StudioModel::ImageToImage(m) => Err(ApiError::unsupported(format!(
                "this checkpoint is an image-to-image model ({}), not a GAN: {what} needs a GAN checkpoint; upload an image to translate instead",
                m.describe()
            ))),
            StudioModel::TextToImage(_) => {
                Err(ApiError::unsupported(format!("this checkpoint is a text-to-image model: {what} needs a GAN checkpoint; type a prompt instead")))
            }
        }
    }

    /// The text-to-image model, or a 422 naming what this model is instead.
    pub fn text_to_image(&self) -> ApiResult<&TextToImageModel> {
        match self {
            StudioModel::TextToImage(t) => Ok(t),
            _ => Err(ApiError::unsupported(
                "a prompt needs a text-to-image checkpoint (gannet train --preset t2i-emoji); this one draws from noise or from an image",
            )),
        }
    }
}

/// Reads a model from its source on `device`.
pub fn load(source: &Source, device: &Device) -> ApiResult<StudioModel> {
    let path = match source {
        Source::TestInvert => return Ok(StudioModel::ImageToImage(Box::new(InvertColors))),
        Source::File(p) => p,
    };
    let failed = |e: gannet::Error| ApiError::internal(format!("cannot load {}: {e}", path.display()));
    if let Some(i2i) = load_image_to_image(path, device) {
        return Ok(StudioModel::ImageToImage(i2i.map_err(failed)?));
    }
    if gannet::checkpoint::kind(path).as_deref() == Some(gannet::saved::KIND_T2I) {
        let saved = gannet::saved::SavedT2i::load(path, device).map_err(failed)?;
        return Ok(StudioModel::TextToImage(Box::new(TextToImageModel { nets: saved.nets, checkpoint: path.clone(), step: saved.step })));
    }
    let saved = SavedRun::load(path, device).map_err(failed)?;
    let gen = saved.sampling_generator(device).map_err(failed)?;
    Ok(StudioModel::Gan(GanModel {
        gen,
        checkpoint: path.clone(),
        step: saved.step,
        arch: saved.config.model.name().to_string(),
        class_names: if saved.num_classes() > 0 { saved.class_names.clone() } else { Vec::new() },
        ema: saved.has_ema(),
    }))
}

/// Loaded models of one worker thread, reloaded when the checkpoint file changes (a running
/// training replaces `latest.safetensors`).
pub struct ModelCache {
    device: Device,
    models: HashMap<Source, (Option<FileStamp>, StudioModel)>,
}

/// Models kept per worker; past that the cache starts over (switching among a few is the use).
const CACHED_MODELS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(source: &Source) -> ApiResult<Option<FileStamp>> {
    match source {
        Source::TestInvert => Ok(None),
        Source::File(p) => {
            let m = std::fs::metadata(p).map_err(|e| ApiError::internal(format!("cannot read {}: {e}", p.display())))?;
            Ok(Some(FileStamp { modified: m.modified().ok(), len: m.len() }))
        }
    }
}

impl ModelCache {
    pub fn new(device: Device) -> Self {
        Self { device, models: HashMap::new() }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The model of `entry`, loading it on first use or after its file changed.
    pub fn get(&mut self, entry: &Entry) -> ApiResult<&StudioModel> {
        let source = entry
            .source
            .as_ref()
            .ok_or_else(|| ApiError::not_found(format!("'{}' is a run folder with no checkpoint yet (checkpoints/latest.safetensors)", entry.id)))?;
        let now = stamp(source)?;
        let fresh = matches!(self.models.get(source), Some((s, _)) if *s == now);
        if !fresh {
            if self.models.len() >= CACHED_MODELS {
                self.models.clear();
            }
            let model = load(source, &self.device)?;
            self.models.insert(source.clone(), (now, model));
        }
        Ok(&self.models[source].1)
    }

    /// Drops every model (after a panic in a job, a model may be half-used).
    pub fn clear(&mut self) {
        self.models.clear();
    }
}

/// The stand-in image-to-image model of `--test-models`: inverts the colours. It lets the tests
/// (and the lead wiring real models) drive the whole translate path: upload, limits, worker,
/// PNG out.
pub struct InvertColors;

impl ImageToImage for InvertColors {
    fn task(&self) -> ImageTask {
        ImageTask::Translate
    }
    fn describe(&self) -> String {
        "test stand-in: inverts colours".into()
    }
    fn step(&self) -> u64 {
        0
    }
    fn max_input_side(&self) -> u32 {
        crate::MAX_UPLOAD_SIDE
    }
    fn translate(&self, input: &DynamicImage) -> gannet::Result<DynamicImage> {
        let mut out = DynamicImage::ImageRgb8(input.to_rgb8());
        out.invert();
        Ok(out)
    }
}
