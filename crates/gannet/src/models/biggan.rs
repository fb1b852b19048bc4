//! BigGAN (Brock et al. 2019) at small scale, `arch = "biggan"`: a class-conditional ResNet GAN
//! with a hierarchical latent, conditional BatchNorm fed by a shared class embedding,
//! self-attention, spectral normalisation in both networks, a projection discriminator and
//! orthogonal regularisation of G.
//!
//! **G.** The latent `z` is split into `blocks + 1` equal chunks. The first chunk goes through a
//! linear layer to a 4x4 map; block `i` gets `concat(chunk_{i+1}, shared(y))`, where `shared` is
//! one class embedding for all blocks, and each of its conditional BatchNorms turns that vector
//! into a per-channel gain `1 + W_g c` and bias `W_b c` (linear, no bias of their own). A block is
//! `CBN -> ReLU -> upsample x2 -> conv3x3 -> CBN -> ReLU -> conv3x3`, shortcut
//! `upsample x2 -> conv1x1`. A [`SelfAttention`] block follows the block whose output has side
//! `attention_resolution`. Then BN -> ReLU -> conv3x3 -> tanh. Every conv and linear of G
//! (projections included) is spectrally normalised unless `spectral_norm_g = false`; the
//! power-iteration vectors are buffers, so checkpoints hold them and resumed runs continue them.
//!
//! **D.** SNGAN's residual blocks (shared with [`super::resnet`]), a [`SelfAttention`] block on
//! the first map of side `attention_resolution`, ReLU, a sum over positions, and
//! `D(x, y) = head(h) + <embed(y), h>` (the projection discriminator of [`super::conditional`]).
//! Every conv and the head are spectrally normalised (the class embedding is not, as in the
//! project's other projection discriminators).
//!
//! **Orthogonal regularisation** (BigGAN's relaxed variant): G's loss gains
//! `orthogonal_weight * sum_W ||W W^T ⊙ (1 - I)||_F^2`, W each conv and linear weight of G reshaped
//! to `[out, in*k*k]`, the stored weight before spectral normalisation (as BigGAN's code does).
//! Included: the first linear layer, every block conv and shortcut, the CBN gain/bias
//! projections, the attention 1x1 convs and the output conv. Excluded: the shared class
//! embedding, whose rows are per-class codes rather than a linear map (BigGAN's code blacklists
//! it too), and every 1-D tensor (biases, BatchNorm scales, the attention gain). BigGAN's code
//! applies the term as a gradient, `2 beta (W W^T ⊙ (1 - I)) W`, which is the gradient of
//! `beta / 2` times the sum above: its `1e-4` is our `5e-5`.
//!
//! **Simplifications for small images.** Widths are constant (`g_channels`, `d_channels`), as
//! in BigGAN's own 32x32 architecture; weights are Xavier-initialised like the SNGAN models
//! rather than orthogonally; attention downsamples with 2x2 average pooling where SAGAN and BigGAN
//! max-pool, because candle's `max_pool2d` backward pass gives wrong gradients. The conditional
//! BatchNorms keep [`BatchNorm`]'s own affine (scale 1, shift 0 at the start) in front of the
//! class-dependent one; it only adds a class-independent part the projections could learn too.

use super::conditional::{projection, require_labels};
use super::resnet::{conv_init, d_blocks, xavier, DBlock, GAIN, ONE, SAME3};
use super::{Discriminator, Generator, ImageShape};
use crate::nn::{self, BatchNorm, Embedding, Init, Mode, ParamPath, SnConv2d, SnLinear};
use crate::ops;
use candle_core::{Tensor, Var, D};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BigganConfig {
    /// Width of z; split into one chunk for the first layer and one per G block, so it must be a
    /// multiple of `blocks + 1` (4 at 32x32: 120 splits for 16, 32 and 64 px).
    pub latent_dim: usize,
    /// Width of the class embedding shared by every conditional BatchNorm of G.
    pub shared_dim: usize,
    /// Channels of every generator block.
    pub g_channels: usize,
    /// Channels of every discriminator block.
    pub d_channels: usize,
    /// Side of the feature maps that get self-attention, in G and D; 0 = none.
    pub attention_resolution: usize,
    /// Spectral normalisation of G's layers (D always has it).
    pub spectral_norm_g: bool,
    /// Weight of the orthogonal regularisation of G's weights; 0 = off.
    pub orthogonal_weight: f64,
}

impl Default for BigganConfig {
    fn default() -> Self {
        Self { latent_dim: 120, shared_dim: 32, g_channels: 64, d_channels: 64, attention_resolution: 16, spectral_norm_g: true, orthogonal_weight: 1e-4 }
    }
}

/// G's up-blocks for a resolution `4 * 2^k`, k >= 2.
fn g_blocks_for(r: usize) -> crate::Result<usize> {
    if r.is_multiple_of(4) && (r / 4).is_power_of_two() && r / 4 >= 4 {
        return Ok((r / 4).trailing_zeros() as usize);
    }
    Err(crate::Error::Config(format!("arch = \"biggan\" cannot make {r}x{r} images: data.resolution must be 4*2^k with k >= 2 (16, 32, 64, 128)")))
}

/// Width of each latent chunk: `latent_dim / (blocks + 1)`, or an error naming the setting.
fn chunk_width(cfg: &BigganConfig, blocks: usize, r: usize) -> crate::Result<usize> {
    let chunks = blocks + 1;
    if cfg.latent_dim == 0 || !cfg.latent_dim.is_multiple_of(chunks) {
        let hint = cfg.latent_dim.div_ceil(chunks).max(1) * chunks;
        return Err(crate::Error::Config(format!(
            "model.latent_dim = {} cannot be split into {chunks} equal chunks (one for G's first layer and one \
             for each of the {blocks} blocks of the {r}x{r} BigGAN): use a multiple of {chunks}, e.g. {hint}",
            cfg.latent_dim
        )));
    }
    Ok(cfg.latent_dim / chunks)
}

/// Checks `attention_resolution`: 0 or a side both networks have a feature map of, i.e. 8, 16,
/// ... up to half the image (G's maps run from 8 to the image size, D's from half of it to 8).
fn check_attention(cfg: &BigganConfig, r: usize) -> crate::Result<()> {
    let sides: Vec<usize> = (3..).map(|k| 1usize << k).take_while(|&s| s <= r / 2).collect();
    let a = cfg.attention_resolution;
    if a == 0 || sides.contains(&a) {
        return Ok(());
    }
    let list: Vec<String> = sides.iter().map(|s| s.to_string()).collect();
    Err(crate::Error::Config(format!(
        "model.attention_resolution = {a} is not a feature-map size of the {r}x{r} BigGAN: use 0 (no attention) or one of {}",
        list.join(", ")
    )))
}

/// Softmax over the last dimension, shifted by the (constant) row maximum for stability.
fn softmax_last(x: &Tensor) -> crate::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// SAGAN's self-attention block (Zhang et al. 2019) as BigGAN uses it:
/// `theta = W_theta x` (C/8 channels), `phi = pool(W_phi x)` (C/8), `g = pool(W_g x)` (C/2);
/// every position attends over the pooled positions, `beta = softmax(theta^T phi)`;
/// `o = W_o (g beta^T)` (back to C) and the output is `x + gamma * o`. `gamma` starts at 0, so the
/// block starts as the identity and the network learns how much non-local evidence to use.
/// The 1x1 convs have no bias and are optionally spectrally normalised. Pooling is 2x2 average
/// pooling (max pooling in the papers): candle's `max_pool2d` has a wrong backward pass.
pub struct SelfAttention {
    theta: SnConv2d,
    phi: SnConv2d,
    g: SnConv2d,
    o: SnConv2d,
    gamma: Var,
}

impl SelfAttention {
    /// For `channels`-channel maps; key and value widths are C/8 and C/2 (at least 1).
    pub fn new(p: &ParamPath, channels: usize, sn: bool) -> crate::Result<Self> {
        let (ck, cv) = ((channels / 8).max(1), (channels / 2).max(1));
        let conv = |name: &str, i: usize, o: usize| SnConv2d::new(&p.sub(name), i, o, 1, ONE, conv_init(i, o, 1, 1.0), false, sn);
        Ok(Self {
            theta: conv("theta", channels, ck)?,
            phi: conv("phi", channels, ck)?,
            g: conv("g", channels, cv)?,
            o: conv("o", cv, channels)?,
            gamma: p.param("gamma", &[1], Init::Const(0.0))?,
        })
    }

    /// The learned residual weight, `[1]`.
    pub fn gamma(&self) -> &Tensor {
        self.gamma.as_tensor()
    }

    fn weights(&self) -> [Tensor; 4] {
        [self.theta.weight(), self.phi.weight(), self.g.weight(), self.o.weight()]
    }

    /// x [N, C, H, W] with even H and W -> the same shape.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        let (n, _, h, w) = x.dims4()?;
        let flat = |t: Tensor| -> crate::Result<Tensor> {
            let c = t.dim(1)?;
            let hw = t.dim(2)? * t.dim(3)?;
            Ok(t.reshape((n, c, hw))?)
        };
        let theta = flat(self.theta.forward(x, mode)?)?;
        let phi = flat(ops::avg_pool2x(&self.phi.forward(x, mode)?)?)?;
        let g = flat(ops::avg_pool2x(&self.g.forward(x, mode)?)?)?;
        // [N, HW, HW/4]: row p holds how much position p attends to each pooled position.
        let beta = softmax_last(&theta.transpose(1, 2)?.contiguous()?.matmul(&phi)?)?;
        let attended = g.matmul(&beta.transpose(1, 2)?.contiguous()?)?.reshape((n, g.dim(1)?, h, w))?;
        let o = self.o.forward(&attended, mode)?;
        Ok((x + o.broadcast_mul(&nn::live(&self.gamma))?)?)
    }
}

/// BigGAN's orthogonal penalty, `sum_W ||W W^T ⊙ (1 - I)||_F^2` with every weight reshaped to
/// [out, rest] (unweighted): the squared cosines-times-norms between different output filters.
/// Zero exactly when each weight's rows are mutually orthogonal, whatever their lengths.
pub fn orthogonal_penalty(weights: &[&Tensor]) -> crate::Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for w in weights {
        let out = w.dim(0)?;
        let w = w.reshape((out, ()))?;
        let gram = w.matmul(&w.t()?)?;
        let off_diag = (Tensor::ones((out, out), w.dtype(), w.device())? - Tensor::eye(out, w.dtype(), w.device())?)?;
        let term = (gram * off_diag)?.sqr()?.sum_all()?;
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    total.ok_or_else(|| crate::Error::Msg("the orthogonal penalty needs at least one weight".into()))
}

/// Conditional BatchNorm: `bn(x) * (1 + W_g c) + W_b c`, c the block's conditioning vector.
struct CondBatchNorm {
    bn: BatchNorm,
    gain: SnLinear,
    bias: SnLinear,
}

impl CondBatchNorm {
    fn new(p: &ParamPath, channels: usize, cond_dim: usize, sn: bool) -> crate::Result<Self> {
        let proj = |name: &str| SnLinear::new(&p.sub(name), cond_dim, channels, xavier(cond_dim, channels, 1.0), false, sn);
        Ok(Self { bn: BatchNorm::new(p, channels, Init::Const(1.0))?, gain: proj("gain_proj")?, bias: proj("bias_proj")? })
    }

    fn forward(&self, x: &Tensor, cond: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        let gain = (self.gain.forward(cond, mode)? + 1.0)?;
        ops::per_channel::affine(&self.bn.forward(x, mode)?, Some(&gain), Some(&self.bias.forward(cond, mode)?))
    }

    fn weights(&self) -> [Tensor; 2] {
        [self.gain.weight(), self.bias.weight()]
    }
}

struct GBlock {
    bn1: CondBatchNorm,
    conv1: SnConv2d,
    bn2: CondBatchNorm,
    conv2: SnConv2d,
    shortcut: SnConv2d,
}

impl GBlock {
    fn new(p: &ParamPath, ch: usize, cond_dim: usize, sn: bool) -> crate::Result<Self> {
        let conv = |name: &str, k: usize, spec, gain| SnConv2d::new(&p.sub(name), ch, ch, k, spec, conv_init(ch, ch, k, gain), true, sn);
        Ok(Self {
            bn1: CondBatchNorm::new(&p.sub("bn1"), ch, cond_dim, sn)?,
            conv1: conv("conv1", 3, SAME3, GAIN)?,
            bn2: CondBatchNorm::new(&p.sub("bn2"), ch, cond_dim, sn)?,
            conv2: conv("conv2", 3, SAME3, GAIN)?,
            shortcut: conv("shortcut", 1, ONE, 1.0)?,
        })
    }

    fn forward(&self, x: &Tensor, cond: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        let h = ops::upsample2x(&ops::relu(&self.bn1.forward(x, cond, mode)?)?)?;
        let h = self.conv1.forward(&h, mode)?;
        let h = self.conv2.forward(&ops::relu(&self.bn2.forward(&h, cond, mode)?)?, mode)?;
        let sc = self.shortcut.forward(&ops::upsample2x(x)?, mode)?;
        Ok((h + sc)?)
    }

    fn weights(&self) -> Vec<Tensor> {
        let mut w = vec![self.conv1.weight(), self.conv2.weight(), self.shortcut.weight()];
        w.extend(self.bn1.weights());
        w.extend(self.bn2.weights());
        w
    }
}

pub struct BigganGenerator {
    shared: Embedding,
    fc: SnLinear,
    blocks: Vec<GBlock>,
    /// Self-attention and the index of the block it follows.
    attention: Option<(usize, SelfAttention)>,
    out_bn: BatchNorm,
    to_image: SnConv2d,
    cfg: BigganConfig,
    shape: ImageShape,
    classes: usize,
    chunk: usize,
}

impl BigganGenerator {
    /// G for `classes` classes (at least 1: BigGAN is always class-conditional).
    pub fn new(p: &ParamPath, cfg: &BigganConfig, shape: ImageShape, classes: usize) -> crate::Result<Self> {
        let n_blocks = g_blocks_for(shape.resolution)?;
        let chunk = chunk_width(cfg, n_blocks, shape.resolution)?;
        check_attention(cfg, shape.resolution)?;
        if classes == 0 {
            return Err(crate::Error::Config("arch = \"biggan\" is class-conditional and needs a labelled dataset".into()));
        }
        let (ch, sn) = (cfg.g_channels, cfg.spectral_norm_g);
        let shared = Embedding::new(&p.sub("shared"), "weight", classes, cfg.shared_dim, Init::Normal { mean: 0.0, std: 1.0 })?;
        let fc = SnLinear::new(&p.sub("fc"), chunk, 16 * ch, xavier(chunk, 16 * ch, 1.0), true, sn)?;
        let cond_dim = chunk + cfg.shared_dim;
        let mut blocks = Vec::with_capacity(n_blocks);
        let mut attention = None;
        for i in 0..n_blocks {
            blocks.push(GBlock::new(&p.sub(format!("block{i}")), ch, cond_dim, sn)?);
            if 8 << i == cfg.attention_resolution {
                attention = Some((i, SelfAttention::new(&p.sub("attention"), ch, sn)?));
            }
        }
        let out_bn = BatchNorm::new(&p.sub("out_bn"), ch, Init::Const(1.0))?;
        let to_image = SnConv2d::new(&p.sub("to_image"), ch, shape.channels, 3, SAME3, conv_init(ch, shape.channels, 3, 1.0), true, sn)?;
        Ok(Self { shared, fc, blocks, attention, out_bn, to_image, cfg: cfg.clone(), shape, classes, chunk })
    }

    /// The weights the orthogonal regularisation covers (stored, before spectral normalisation);
    /// see the module docs for what is left out and why.
    pub fn orthogonal_weights(&self) -> Vec<Tensor> {
        let mut w = vec![self.fc.weight()];
        for b in &self.blocks {
            w.extend(b.weights());
        }
        if let Some((_, a)) = &self.attention {
            w.extend(a.weights());
        }
        w.push(self.to_image.weight());
        w
    }

    /// Width of each latent chunk.
    pub fn chunk_width(&self) -> usize {
        self.chunk
    }

    /// The self-attention block, when there is one.
    pub fn attention(&self) -> Option<&SelfAttention> {
        self.attention.as_ref().map(|(_, a)| a)
    }
}

impl Generator for BigganGenerator {
    fn forward(&self, z: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let labels = require_labels(labels, "BigGAN generator")?;
        let (n, d) = z.dims2()?;
        if d != self.cfg.latent_dim {
            return Err(crate::Error::Msg(format!("the BigGAN generator takes latents of width {}, got {d}", self.cfg.latent_dim)));
        }
        let chunk = |i: usize| z.narrow(1, i * self.chunk, self.chunk);
        let shared = self.shared.forward(labels)?;
        let mut h = self.fc.forward(&chunk(0)?, mode)?.reshape((n, self.cfg.g_channels, 4, 4))?;
        for (i, block) in self.blocks.iter().enumerate() {
            let cond = Tensor::cat(&[&chunk(i + 1)?, &shared], 1)?;
            h = block.forward(&h, &cond, mode)?;
            if let Some((_, attn)) = self.attention.as_ref().filter(|(at, _)| *at == i) {
                h = attn.forward(&h, mode)?;
            }
        }
        let h = ops::relu(&self.out_bn.forward(&h, mode)?)?;
        Ok(self.to_image.forward(&h, mode)?.tanh()?)
    }

    fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    fn image_shape(&self) -> ImageShape {
        self.shape
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn regularisation(&self, _step: u64, _batch_size: usize) -> crate::Result<Option<Tensor>> {
        if self.cfg.orthogonal_weight <= 0.0 {
            return Ok(None);
        }
        let weights = self.orthogonal_weights();
        Ok(Some((orthogonal_penalty(&weights.iter().collect::<Vec<_>>())? * self.cfg.orthogonal_weight)?))
    }
}

pub struct BigganDiscriminator {
    blocks: Vec<DBlock>,
    /// Self-attention and the index of the block it follows.
    attention: Option<(usize, SelfAttention)>,
    head: SnLinear,
    class_embed: Embedding,
}

impl BigganDiscriminator {
    pub fn new(p: &ParamPath, cfg: &BigganConfig, shape: ImageShape, classes: usize) -> crate::Result<Self> {
        g_blocks_for(shape.resolution)?;
        check_attention(cfg, shape.resolution)?;
        if classes == 0 {
            return Err(crate::Error::Config("arch = \"biggan\" is class-conditional and needs a labelled dataset".into()));
        }
        let ch = cfg.d_channels;
        let planned = d_blocks(p, shape, ch, true)?;
        // The first block whose output has the attention side (check_attention made sure one has).
        let at = planned.iter().position(|(_, side)| *side == cfg.attention_resolution);
        let attention = match at {
            Some(i) => Some((i, SelfAttention::new(&p.sub("attention"), ch, true)?)),
            None => None,
        };
        let blocks = planned.into_iter().map(|(b, _)| b).collect();
        let head = SnLinear::new(&p.sub("head"), ch, 1, xavier(ch, 1, 1.0), true, true)?;
        let class_embed = Embedding::new(&p.sub("class_embed"), "weight", classes, ch, xavier(classes, ch, 1.0))?;
        Ok(Self { blocks, attention, head, class_embed })
    }
}

impl Discriminator for BigganDiscriminator {
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        let labels = require_labels(labels, "BigGAN discriminator")?;
        let mut h = x.clone();
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h, mode)?;
            if let Some((_, attn)) = self.attention.as_ref().filter(|(at, _)| *at == i) {
                h = attn.forward(&h, mode)?;
            }
        }
        // Global sum pooling: [N, C, H, W] -> [N, C].
        let pooled = ops::relu(&h)?.sum((2, 3))?;
        let logits = self.head.forward(&pooled, mode)?.flatten_all()?;
        Ok((logits + projection(&self.class_embed, &pooled, labels)?)?)
    }
}
