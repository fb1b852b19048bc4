//! A text-to-image checkpoint loaded to use it: the vocabulary, the contrastive encoders and the
//! generator ([`T2iNets`]), for `gannet sample --prompt`, `gannet eval` and the studio. The
//! training task builds the same bundle, so what trains is what is loaded.

use crate::checkpoint::{self, record::Record};
use crate::config::T2iConfig;
use crate::models::text_gan::TextGenerator;
use crate::models::ImageShape;
use crate::nn::{Mode, ParamStore};
use crate::rng::{self, Stream};
use crate::text::{ImageEncoder, TextEncoder, Tokens, Vocab};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The checkpoint kind of text-to-image runs.
pub const KIND_T2I: &str = "t2i";
/// The command that trains them (named in errors).
pub const T2I_COMMAND: &str = "gannet train --preset t2i-emoji";

/// What a text-to-image checkpoint keeps besides tensors: the vocabulary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct T2iMeta {
    pub vocab: Vocab,
}

/// The networks a text-to-image model uses after training.
pub struct T2iNets {
    pub vocab: Vocab,
    pub text: TextEncoder,
    pub image: ImageEncoder,
    /// Both encoders' weights (`text.*`, `image.*`).
    pub enc_params: ParamStore,
    pub gen: TextGenerator,
    pub gen_params: ParamStore,
}

impl T2iNets {
    /// Fresh networks for `cfg` and `vocab` (weights drawn from the seed).
    pub fn build(cfg: &T2iConfig, vocab: Vocab, device: &Device) -> crate::Result<Self> {
        let shape = ImageShape { channels: 3, resolution: cfg.data.resolution };
        crate::limits::check_memory(
            crate::limits::product(&[vocab.len(), cfg.text.word_dim, 4]),
            &format!("a vocabulary of {} words", vocab.len()),
            "use fewer distinct caption words or a smaller text.word_dim",
        )?;
        let enc_params = ParamStore::new(rng::mix(cfg.seed, Stream::Init, 3), device);
        let root = enc_params.root();
        let text = TextEncoder::new(&root.sub("text"), vocab.len(), &cfg.text)?;
        let image = ImageEncoder::new(&root.sub("image"), shape.channels, shape.resolution, &cfg.text)?;
        let gen_params = ParamStore::new(rng::mix(cfg.seed, Stream::Init, 1), device);
        let gen = TextGenerator::new(&gen_params.root(), &cfg.model, cfg.text.embed_dim, shape)?;
        Ok(Self { vocab, text, image, enc_params, gen, gen_params })
    }

    /// Loads `enc.*` and `gen.*` of a checkpoint's tensors.
    pub fn load(&self, tensors: &std::collections::BTreeMap<String, Tensor>) -> crate::Result<()> {
        let on = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the model: {e}"));
        self.enc_params.load(&checkpoint::strip_prefix("enc", tensors)).map_err(on)?;
        self.gen_params.load(&checkpoint::strip_prefix("gen", tensors)).map_err(on)
    }

    /// Sentence embeddings `[N, E]` of captions given as token ids.
    pub fn embed_ids(&self, ids: &[&[u32]], device: &Device) -> crate::Result<Tensor> {
        self.text.forward(&Tokens::new(ids, device)?)
    }

    /// Sentence embeddings of user prompts: unknown words or an empty prompt are errors.
    pub fn embed_prompts(&self, prompts: &[&str], device: &Device) -> crate::Result<Tensor> {
        let ids = prompts.iter().map(|p| self.vocab.encode_prompt(p)).collect::<crate::Result<Vec<_>>>()?;
        let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        self.embed_ids(&refs, device)
    }

    /// One image per sentence embedding (row of `text`), the noise and conditioning draws from
    /// `seed` and `index` (the same arguments give the same images).
    pub fn generate(&self, text: &Tensor, seed: u64, index: u64) -> crate::Result<Tensor> {
        let n = text.dim(0)?;
        let mut r = rng::rng(seed, Stream::Sample, index);
        let z = rng::randn(&mut r, &[n, self.gen.latent_dim()], text.device())?;
        let eps = rng::randn(&mut r, &[n, self.gen.cond_dim()], text.device())?;
        self.generate_with(text, &z, &eps)
    }

    /// Images from sentence embeddings with given noise `z` and conditioning draws `eps`.
    pub fn generate_with(&self, text: &Tensor, z: &Tensor, eps: &Tensor) -> crate::Result<Tensor> {
        let code = self.gen.condition(text, eps)?.code;
        self.gen.forward(z, &code, Mode::Eval)
    }

    /// `count` draws of each prompt, row by row: the same `count` noise draws for every prompt
    /// (draw j of each row shares its noise), so rows differ only by the text.
    pub fn generate_prompts(&self, prompts: &[&str], count: usize, seed: u64, device: &Device) -> crate::Result<Tensor> {
        let text = self.embed_prompts(prompts, device)?.detach();
        let (z, eps) = self.draws(count, seed, device)?;
        self.generate_rows(&text, &z, &eps)
    }

    /// A grid's images, row by row: every sentence embedding (row of `text`, `[R, E]`) with every
    /// noise draw (rows of `z` and `eps`, `[C, ..]`), so draw j of each row shares its noise.
    pub fn generate_rows(&self, text: &Tensor, z: &Tensor, eps: &Tensor) -> crate::Result<Tensor> {
        let (rows, cols) = (text.dim(0)?, z.dim(0)?);
        let text = text.unsqueeze(1)?.repeat((1, cols, 1))?.reshape((rows * cols, ()))?;
        let z = z.unsqueeze(0)?.repeat((rows, 1, 1))?.reshape((rows * cols, ()))?;
        let eps = eps.unsqueeze(0)?.repeat((rows, 1, 1))?.reshape((rows * cols, ()))?;
        self.generate_with(&text, &z, &eps)
    }

    /// `count` rows of `frames` images each, walking the sentence embedding from prompt `from`
    /// to prompt `to` in equal steps; each row keeps one noise draw.
    pub fn interpolate_prompts(&self, from: &str, to: &str, frames: usize, count: usize, seed: u64, device: &Device) -> crate::Result<Tensor> {
        if frames < 2 {
            return Err(crate::Error::Msg(format!("an interpolation needs at least 2 frames, got {frames}")));
        }
        let ends = self.embed_prompts(&[from, to], device)?.detach();
        let (a, b) = (ends.get(0)?, ends.get(1)?);
        let steps: Vec<Tensor> = (0..frames)
            .map(|k| {
                let t = k as f64 / (frames - 1) as f64;
                Ok(((&a * (1.0 - t))? + (&b * t)?)?)
            })
            .collect::<crate::Result<_>>()?;
        let path = Tensor::stack(&steps, 0)?;
        let (z, eps) = self.draws(count, seed, device)?;
        let text = path.unsqueeze(0)?.repeat((count, 1, 1))?.reshape((count * frames, ()))?;
        let z = z.unsqueeze(1)?.repeat((1, frames, 1))?.reshape((count * frames, ()))?;
        let eps = eps.unsqueeze(1)?.repeat((1, frames, 1))?.reshape((count * frames, ()))?;
        self.generate_with(&text, &z, &eps)
    }

    /// `count` noise and conditioning draws from `seed`.
    fn draws(&self, count: usize, seed: u64, device: &Device) -> crate::Result<(Tensor, Tensor)> {
        let mut r = rng::rng(seed, Stream::Sample, 0);
        let z = rng::randn(&mut r, &[count, self.gen.latent_dim()], device)?;
        let eps = rng::randn(&mut r, &[count, self.gen.cond_dim()], device)?;
        Ok((z, eps))
    }

    pub fn image_shape(&self) -> ImageShape {
        self.gen.image_shape()
    }
}

impl crate::metrics::text_image::TextImageModel for T2iNets {
    fn embed_captions(&self, captions: &[&str], device: &Device) -> crate::Result<Tensor> {
        let ids: Vec<Vec<u32>> = captions.iter().map(|c| self.vocab.encode(c)).collect();
        self.embed_ids(&ids.iter().map(Vec::as_slice).collect::<Vec<_>>(), device)
    }
    fn embed_images(&self, images: &Tensor) -> crate::Result<Tensor> {
        self.image.forward(images)
    }
    fn generate(&self, text: &Tensor, seed: u64, index: u64) -> crate::Result<Tensor> {
        T2iNets::generate(self, text, seed, index)
    }
}

/// A text-to-image checkpoint read back.
pub struct SavedT2i {
    pub config: T2iConfig,
    pub step: u64,
    pub nets: T2iNets,
}

impl SavedT2i {
    pub fn load(path: &Path, device: &Device) -> crate::Result<Self> {
        let record = Record::read(path, KIND_T2I, T2I_COMMAND, device)?;
        let err = |m: String| crate::Error::checkpoint(path, m);
        let config: T2iConfig = toml::from_str(&record.config).map_err(|e| err(format!("bad config: {e}")))?;
        // Checksummed but not trusted: a crafted config must not size the networks.
        config.validate().map_err(|e| err(format!("its saved config is not valid: {e}")))?;
        let meta: T2iMeta = record.task_meta(path)?;
        let nets = T2iNets::build(&config, meta.vocab, device)?;
        nets.load(&record.tensors).map_err(|e| err(e.to_string()))?;
        Ok(Self { config, step: record.run.step, nets })
    }
}
