//! The text encoder and the image encoder that are trained together, contrastively, on the
//! training pairs (a small CLIP; AttnGAN calls its version DAMSM).
//!
//! - [`TextEncoder`]: word embeddings, a one-layer GRU over the words, the mean of its states
//!   over the caption's words, a linear map to the joint space.
//! - [`ImageEncoder`]: strided 4x4 convolutions with LeakyReLU down to a small map, a linear map
//!   to the joint space.
//!
//! [`contrastive_loss`] pulls each image towards its own caption and away from the other
//! captions of the batch (and the reverse). After pretraining, the text encoder gives the GAN
//! its sentence embedding, and the pair scores generated images for R-precision.

use crate::nn::{live, Activation, Conv2d, Init, Linear, ParamPath};
use crate::ops::ConvSpec;
use candle_core::{DType, Device, Tensor, Var, D};
use serde::{Deserialize, Serialize};

/// Sizes of the two encoders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    /// Width of a word embedding.
    pub word_dim: usize,
    /// Width of the GRU's state.
    pub hidden: usize,
    /// Width of the joint text-image space: the sentence embedding the GAN is conditioned on.
    pub embed_dim: usize,
    /// Channels of the image encoder's first conv (doubling at each halving of the map).
    pub image_channels: usize,
    /// Softmax temperature of the contrastive loss (CLIP learns it; fixed here, 0.1 is common).
    pub temperature: f64,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self { word_dim: 64, hidden: 128, embed_dim: 128, image_channels: 32, temperature: 0.1 }
    }
}

/// A batch of tokenised captions on a device: ids `[N, T]` (u32, padded) and the mask `[N, T]`
/// (f32, 1 on words).
pub struct Tokens {
    pub ids: Tensor,
    pub mask: Tensor,
}

impl Tokens {
    /// Pads `captions` (token ids) into one batch.
    pub fn new(captions: &[&[u32]], device: &Device) -> crate::Result<Self> {
        let (ids, t) = super::tokenizer::pad_batch(captions);
        let mask: Vec<f32> = ids.iter().map(|&i| f32::from(u8::from(i != super::tokenizer::PAD))).collect();
        let n = captions.len();
        Ok(Self { ids: Tensor::from_vec(ids, (n, t), device)?, mask: Tensor::from_vec(mask, (n, t), device)? })
    }

    pub fn len(&self) -> usize {
        self.ids.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn sigmoid(x: &Tensor) -> crate::Result<Tensor> {
    Ok((x.neg()?.exp()? + 1.0)?.recip()?)
}

/// Words to a sentence embedding `[N, embed_dim]`.
pub struct TextEncoder {
    words: Var,
    input: Linear,
    recurrent: Linear,
    out: Linear,
    hidden: usize,
}

impl TextEncoder {
    pub fn new(p: &ParamPath, vocab: usize, cfg: &EncoderConfig) -> crate::Result<Self> {
        let h = cfg.hidden;
        let fan = |n: usize| Init::FanInUniform { fan_in: n };
        Ok(Self {
            words: p.param("words", &[vocab, cfg.word_dim], Init::Normal { mean: 0.0, std: 1.0 })?,
            input: Linear::new(&p.sub("gru_input"), cfg.word_dim, 3 * h, fan(h), true)?,
            recurrent: Linear::new(&p.sub("gru_recurrent"), h, 3 * h, fan(h), true)?,
            out: Linear::new(&p.sub("out"), h, cfg.embed_dim, fan(h), true)?,
            hidden: h,
        })
    }

    pub fn forward(&self, tokens: &Tokens) -> crate::Result<Tensor> {
        let (n, t) = tokens.ids.dims2()?;
        let h_dim = self.hidden;
        let emb = live(&self.words).index_select(&tokens.ids.flatten_all()?, 0)?;
        // The input half of every gate for all words at once: [N, T, 3H].
        let gx = self.input.forward(&emb)?.reshape((n, t, 3 * h_dim))?;
        let mut h = Tensor::zeros((n, h_dim), DType::F32, tokens.ids.device())?;
        let mut sum = h.clone();
        for step in 0..t {
            let x = gx.narrow(1, step, 1)?.squeeze(1)?;
            let gh = self.recurrent.forward(&h)?;
            let r = sigmoid(&(x.narrow(1, 0, h_dim)? + gh.narrow(1, 0, h_dim)?)?)?;
            let z = sigmoid(&(x.narrow(1, h_dim, h_dim)? + gh.narrow(1, h_dim, h_dim)?)?)?;
            let cand = (x.narrow(1, 2 * h_dim, h_dim)? + (r * gh.narrow(1, 2 * h_dim, h_dim)?)?)?.tanh()?;
            let next = (&cand + (z * (&h - &cand)?)?)?;
            // Padding leaves the state as it was and adds nothing to the mean.
            let m = tokens.mask.narrow(1, step, 1)?;
            h = (&h + (next - &h)?.broadcast_mul(&m)?)?;
            sum = (sum + h.broadcast_mul(&m)?)?;
        }
        let count = tokens.mask.sum_keepdim(1)?.clamp(1.0, f64::MAX)?;
        self.out.forward(&sum.broadcast_div(&count)?)
    }
}

/// Images `[N, 3, R, R]` in [-1, 1] to embeddings `[N, embed_dim]`.
pub struct ImageEncoder {
    convs: Vec<Conv2d>,
    out: Linear,
}

const LRELU: Activation = Activation::LeakyRelu(0.2);

impl ImageEncoder {
    /// Halves the map with 4x4 stride-2 convs while it is even and larger than 4.
    pub fn new(p: &ParamPath, channels: usize, resolution: usize, cfg: &EncoderConfig) -> crate::Result<Self> {
        let (mut size, mut cin, mut cout) = (resolution, channels, cfg.image_channels);
        let mut convs = Vec::new();
        while size > 4 && size.is_multiple_of(2) {
            let fan_in = cin * 16;
            convs.push(Conv2d::new(&p.sub(format!("conv{}", convs.len())), cin, cout, 4, ConvSpec::new(2, 1), Init::FanInUniform { fan_in }, true)?);
            (size, cin, cout) = (size / 2, cout, cout * 2);
        }
        let flat = cin * size * size;
        Ok(Self { convs, out: Linear::new(&p.sub("out"), flat, cfg.embed_dim, Init::FanInUniform { fan_in: flat }, true)? })
    }

    pub fn forward(&self, images: &Tensor) -> crate::Result<Tensor> {
        let mut h = images.clone();
        for c in &self.convs {
            h = LRELU.forward(&c.forward(&h)?)?;
        }
        self.out.forward(&h.flatten_from(1)?)
    }
}

/// Rows scaled to unit length.
pub fn normalise(x: &Tensor) -> crate::Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-8, f64::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}

/// Cosine similarities `[N, M]` between image embeddings `[N, E]` and text embeddings `[M, E]`.
pub fn similarity(images: &Tensor, texts: &Tensor) -> crate::Result<Tensor> {
    Ok(normalise(images)?.matmul(&normalise(texts)?.t()?)?)
}

/// The symmetric InfoNCE loss of matching pairs (row i of both is one pair) and the fraction of
/// images whose own caption scores highest among the batch's.
pub fn contrastive_loss(images: &Tensor, texts: &Tensor, temperature: f64) -> crate::Result<(Tensor, f64)> {
    let logits = (similarity(images, texts)? / temperature)?;
    let n = logits.dim(0)?;
    let own = Tensor::arange(0u32, n as u32, logits.device())?;
    let i2t = crate::loss::cross_entropy(&logits, &own)?;
    let t2i = crate::loss::cross_entropy(&logits.t()?.contiguous()?, &own)?;
    let right = logits.argmax(D::Minus1)?.eq(&own)?.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>()?;
    Ok((((i2t + t2i)? * 0.5)?, right))
}
