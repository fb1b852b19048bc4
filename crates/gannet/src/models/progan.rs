//! Progressive GAN (Karras et al. 2018), `arch = "progan"`.
//!
//! Training starts at 4x4 (or `start_resolution`) and doubles the resolution of both networks in
//! stages; a new stage is faded in smoothly by blending the new layers' output with the old
//! layers' (weight `alpha` going 0 -> 1), then trained stable. The [`GrowthSchedule`] is a pure
//! function of the generator-update index that [`Generator::set_step`] hands the networks, so a
//! run resumed mid-fade sees exactly the networks the unbroken run had. Networks that were never
//! told a step are fully grown (what a sampler of a finished run wants).
//!
//! Every layer of every stage exists from the start (built for the full resolution); a stage
//! only decides which are used, so checkpoints always hold the same tensors.
//!
//! G: pixel-norm the latent; 4x4 block `dense(latent -> C*4*4) -> lrelu -> PN -> conv3x3 -> lrelu
//! -> PN`; one block per doubling `upsample -> conv3x3 -> lrelu -> PN -> conv3x3 -> lrelu -> PN`;
//! a 1x1 toRGB per resolution with a linear output. While stage k fades in the image is
//! `lerp(upsample(toRGB_{k-1}(h_{k-1})), toRGB_k(h_k), alpha)`. The image at the stage's
//! resolution is nearest-upsampled to the full resolution, so G always returns [N, C, R, R] and
//! the trainer, grids and metrics need not know about growth. The output is not squashed (no
//! tanh, as in the paper): grids and metrics clamp to [-1, 1] themselves.
//!
//! D mirrors G: the full-resolution input is 2x2-average-pooled down to the stage's resolution
//! (exact on G's nearest-upsampled images; ProGAN's downscaled reals on real ones), then
//! `fromRGB(1x1) -> lrelu` and one block `conv3x3 -> lrelu -> conv3x3 -> lrelu -> avgpool` per
//! halving down to 4x4, fading in as `lerp(fromRGB_{k-1}(avgpool(x)), block_k(fromRGB_k(x)),
//! alpha)`. The 4x4 block is minibatch standard deviation -> conv3x3 -> lrelu -> dense(C*4*4 -> C)
//! -> lrelu -> dense(C -> 1).
//!
//! Every layer uses the equalised learning rate ([`crate::nn::equalized`]): N(0, 1) weights
//! scaled by `gain/sqrt(fan_in)` at run time, gain sqrt(2) except toRGB and D's last layer
//! (gain 1); zero biases. Widths: `max_channels` at 4x4 and 8x8, halved at every further doubling,
//! never below `min_channels`. Pair with `loss = "wasserstein"`, `[penalty] kind = "wgan-gp"`,
//! `drift = 0.001` and Adam(beta1 0, beta2 0.99), as the paper (see the `progan-fashion` preset).

use super::{Discriminator, Generator, ImageShape};
use crate::nn::equalized::GAIN_RELU;
use crate::nn::{minibatch_stddev, pixel_norm, Activation, EqConv2d, EqLinear, EqOptions, Mode, ParamPath};
use crate::ops;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProganConfig {
    pub latent_dim: usize,
    /// Channels at 4x4 and 8x8 (both networks); halved at every further doubling.
    pub max_channels: usize,
    /// The fewest channels any resolution gets.
    pub min_channels: usize,
    /// Generator updates each resolution trains after its fade-in (and the first one alone).
    pub stable_steps: u64,
    /// Generator updates over which a new resolution fades in (alpha 0 -> 1).
    pub fade_steps: u64,
    /// Resolution training starts at: 4 (the paper) or a larger power of two up to the data's.
    pub start_resolution: usize,
    /// Largest group of the minibatch standard deviation (4 in the paper); 0 turns it off.
    pub mbstd_group: usize,
}

impl Default for ProganConfig {
    fn default() -> Self {
        Self { latent_dim: 128, max_channels: 128, min_channels: 32, stable_steps: 600, fade_steps: 600, start_resolution: 4, mbstd_group: 4 }
    }
}

const LRELU: Activation = Activation::LeakyRelu(0.2);

fn lrelu(x: &Tensor) -> crate::Result<Tensor> {
    LRELU.forward(x)
}

/// `a + (b - a) * t`: exactly `a` at `t = 0` and `b` at `t = 1`.
fn lerp(a: &Tensor, b: &Tensor, t: f64) -> crate::Result<Tensor> {
    Ok((a + ((b - a)? * t)?)?)
}

fn repeat(mut x: Tensor, times: usize, f: fn(&Tensor) -> crate::Result<Tensor>) -> crate::Result<Tensor> {
    for _ in 0..times {
        x = f(&x)?;
    }
    Ok(x)
}

impl ProganConfig {
    /// The last stage for `resolution` (stage k works at 4*2^k), with every setting checked.
    fn last_stage(&self, resolution: usize) -> crate::Result<usize> {
        if !(resolution >= 8 && resolution.is_power_of_two()) {
            return Err(crate::Error::Config(format!(
                "arch = \"progan\" cannot make {resolution}x{resolution} images: data.resolution must be a power of two \
                 of at least 8 (e.g. 16, 32, 64)"
            )));
        }
        let s = self.start_resolution;
        if !(s >= 4 && s.is_power_of_two() && s <= resolution) {
            return Err(crate::Error::Config(format!("model.start_resolution must be a power of two from 4 to the data's resolution ({resolution}), got {s}")));
        }
        if self.min_channels == 0 || self.min_channels > self.max_channels {
            return Err(crate::Error::Config(format!(
                "model.min_channels must be from 1 to model.max_channels ({}), got {}",
                self.max_channels, self.min_channels
            )));
        }
        Ok(stage_of(resolution))
    }

    /// The growth schedule for images of `resolution`.
    pub fn schedule(&self, resolution: usize) -> crate::Result<GrowthSchedule> {
        let last_stage = self.last_stage(resolution)?;
        Ok(GrowthSchedule { first_stage: stage_of(self.start_resolution), last_stage, stable_steps: self.stable_steps, fade_steps: self.fade_steps })
    }

    /// Feature maps at stage `k`.
    pub fn channels(&self, k: usize) -> usize {
        let halvings = k.saturating_sub(1).min(usize::BITS as usize - 1);
        (self.max_channels >> halvings).max(self.min_channels)
    }
}

/// The stage working at `resolution` (a power of two >= 4).
fn stage_of(resolution: usize) -> usize {
    (resolution.trailing_zeros() - 2) as usize
}

/// Which stage is in use and how far it has faded in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Stage k works at 4*2^k pixels.
    pub stage: usize,
    /// Weight of the newest stage's layers against the previous stage's: 0 -> 1 during its
    /// fade-in, 1 once stable (and always 1 for the first stage).
    pub alpha: f64,
}

impl Growth {
    pub fn resolution(&self) -> usize {
        4 << self.stage
    }
}

/// When each stage fades in: `first_stage` stable for `stable_steps`, then for every later stage
/// `fade_steps` of fade-in followed by `stable_steps` stable; after the last stage's, fully grown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowthSchedule {
    pub first_stage: usize,
    pub last_stage: usize,
    pub stable_steps: u64,
    pub fade_steps: u64,
}

impl GrowthSchedule {
    /// The networks at generator update `step` (a pure function of it).
    pub fn growth_at(&self, step: u64) -> Growth {
        let mut t = step;
        if t < self.stable_steps {
            return Growth { stage: self.first_stage, alpha: 1.0 };
        }
        t -= self.stable_steps;
        for stage in self.first_stage + 1..=self.last_stage {
            if t < self.fade_steps {
                return Growth { stage, alpha: t as f64 / self.fade_steps as f64 };
            }
            t -= self.fade_steps;
            if t < self.stable_steps {
                return Growth { stage, alpha: 1.0 };
            }
            t -= self.stable_steps;
        }
        Growth { stage: self.last_stage, alpha: 1.0 }
    }

    /// The first step at which the last stage has fully faded in.
    pub fn fully_grown_at(&self) -> u64 {
        let stages = (self.last_stage - self.first_stage) as u64;
        if stages == 0 {
            return 0;
        }
        self.stable_steps + stages * self.fade_steps + stages.saturating_sub(1) * self.stable_steps
    }
}

/// The step both networks read their growth from; unset (u64::MAX) means fully grown.
struct StepCell(AtomicU64);

impl StepCell {
    fn new() -> Self {
        Self(AtomicU64::new(u64::MAX))
    }
    fn set(&self, step: u64) {
        self.0.store(step, Ordering::Relaxed)
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn conv3(p: &ParamPath, cin: usize, cout: usize) -> crate::Result<EqConv2d> {
    EqConv2d::new(p, cin, cout, 3, EqOptions::gain(GAIN_RELU))
}

/// G's block for stage k >= 1: doubles the resolution.
struct GBlock {
    conv1: EqConv2d,
    conv2: EqConv2d,
}

impl GBlock {
    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let h = pixel_norm(&lrelu(&self.conv1.forward(&ops::upsample2x(x)?)?)?)?;
        pixel_norm(&lrelu(&self.conv2.forward(&h)?)?)
    }
}

pub struct ProganGenerator {
    fc: EqLinear,
    conv0: EqConv2d,
    /// `blocks[k - 1]` grows stage k-1's maps to stage k's.
    blocks: Vec<GBlock>,
    /// One per stage.
    to_rgb: Vec<EqConv2d>,
    schedule: GrowthSchedule,
    step: StepCell,
    cfg: ProganConfig,
    shape: ImageShape,
}

impl ProganGenerator {
    pub fn new(p: &ParamPath, cfg: &ProganConfig, shape: ImageShape) -> crate::Result<Self> {
        let schedule = cfg.schedule(shape.resolution)?;
        let c0 = cfg.channels(0);
        let fc = EqLinear::new(&p.sub("fc"), cfg.latent_dim, c0 * 16, EqOptions::gain(GAIN_RELU))?;
        let conv0 = conv3(&p.sub("conv0"), c0, c0)?;
        let blocks = (1..=schedule.last_stage)
            .map(|k| {
                let b = p.sub(format!("block{k}"));
                let (cin, cout) = (cfg.channels(k - 1), cfg.channels(k));
                Ok(GBlock { conv1: conv3(&b.sub("conv1"), cin, cout)?, conv2: conv3(&b.sub("conv2"), cout, cout)? })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let to_rgb = (0..=schedule.last_stage)
            .map(|k| EqConv2d::new(&p.sub(format!("to_rgb{k}")), cfg.channels(k), shape.channels, 1, EqOptions::gain(1.0)))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self { fc, conv0, blocks, to_rgb, schedule, step: StepCell::new(), cfg: cfg.clone(), shape })
    }

    /// The stage and fade the next forward pass uses.
    pub fn growth(&self) -> Growth {
        self.schedule.growth_at(self.step.get())
    }

    pub fn schedule(&self) -> GrowthSchedule {
        self.schedule
    }

    /// The 4x4 maps of stage 0: [N, C0, 4, 4].
    fn base(&self, z: &Tensor) -> crate::Result<Tensor> {
        let n = z.dim(0)?;
        let h = lrelu(&self.fc.forward(&pixel_norm(z)?)?)?.reshape((n, self.cfg.channels(0), 4, 4))?;
        let h = pixel_norm(&h)?;
        pixel_norm(&lrelu(&self.conv0.forward(&h)?)?)
    }

    /// The image at the growth's resolution, [N, C, 4*2^k, 4*2^k].
    fn image_at(&self, z: &Tensor, g: Growth) -> crate::Result<Tensor> {
        let top = g.stage;
        let mut h = self.base(z)?;
        for block in &self.blocks[..top.saturating_sub(1)] {
            h = block.forward(&h)?;
        }
        if top == 0 {
            return self.to_rgb[0].forward(&h);
        }
        // The previous stage's image, upsampled: all of the output at alpha = 0, so the new
        // layers are not even run (and get no gradient) before their fade-in starts.
        let old = || -> crate::Result<Tensor> { ops::upsample2x(&self.to_rgb[top - 1].forward(&h)?) };
        if g.alpha <= 0.0 {
            return old();
        }
        let new = self.to_rgb[top].forward(&self.blocks[top - 1].forward(&h)?)?;
        if g.alpha >= 1.0 {
            return Ok(new);
        }
        lerp(&old()?, &new, g.alpha)
    }
}

impl Generator for ProganGenerator {
    fn forward(&self, z: &Tensor, _labels: Option<&Tensor>, _mode: Mode) -> crate::Result<Tensor> {
        let g = self.growth();
        let img = self.image_at(z, g)?;
        repeat(img, self.schedule.last_stage - g.stage, ops::upsample2x)
    }

    fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    fn image_shape(&self) -> ImageShape {
        self.shape
    }

    fn set_step(&self, step: u64) {
        self.step.set(step);
    }
}

/// D's block for stage k >= 1: halves the resolution.
struct DBlock {
    conv1: EqConv2d,
    conv2: EqConv2d,
}

impl DBlock {
    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let h = lrelu(&self.conv1.forward(x)?)?;
        ops::avg_pool2x(&lrelu(&self.conv2.forward(&h)?)?)
    }
}

pub struct ProganDiscriminator {
    /// One per stage.
    from_rgb: Vec<EqConv2d>,
    /// `blocks[k - 1]` takes stage k's maps to stage k-1's.
    blocks: Vec<DBlock>,
    final_conv: EqConv2d,
    final_fc: EqLinear,
    out: EqLinear,
    schedule: GrowthSchedule,
    step: StepCell,
    mbstd_group: usize,
    shape: ImageShape,
}

impl ProganDiscriminator {
    pub fn new(p: &ParamPath, cfg: &ProganConfig, shape: ImageShape) -> crate::Result<Self> {
        let schedule = cfg.schedule(shape.resolution)?;
        let from_rgb = (0..=schedule.last_stage)
            .map(|k| EqConv2d::new(&p.sub(format!("from_rgb{k}")), shape.channels, cfg.channels(k), 1, EqOptions::gain(GAIN_RELU)))
            .collect::<crate::Result<Vec<_>>>()?;
        let blocks = (1..=schedule.last_stage)
            .map(|k| {
                let b = p.sub(format!("block{k}"));
                let (cin, cout) = (cfg.channels(k), cfg.channels(k - 1));
                Ok(DBlock { conv1: conv3(&b.sub("conv1"), cin, cin)?, conv2: conv3(&b.sub("conv2"), cin, cout)? })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let c0 = cfg.channels(0);
        let extra = usize::from(cfg.mbstd_group > 0);
        let f = p.sub("final");
        let final_conv = conv3(&f.sub("conv"), c0 + extra, c0)?;
        let final_fc = EqLinear::new(&f.sub("fc"), c0 * 16, c0, EqOptions::gain(GAIN_RELU))?;
        let out = EqLinear::new(&f.sub("out"), c0, 1, EqOptions::gain(1.0))?;
        Ok(Self { from_rgb, blocks, final_conv, final_fc, out, schedule, step: StepCell::new(), mbstd_group: cfg.mbstd_group, shape })
    }

    pub fn growth(&self) -> Growth {
        self.schedule.growth_at(self.step.get())
    }

    /// `fromRGB` of stage k and its activation.
    fn input_layer(&self, k: usize, x: &Tensor) -> crate::Result<Tensor> {
        lrelu(&self.from_rgb[k].forward(x)?)
    }

    /// Stage k's input (`x` pooled to 4*2^k pixels) to the 4x4 maps [N, C0, 4, 4].
    fn features(&self, x: &Tensor, g: Growth) -> crate::Result<Tensor> {
        let top = g.stage;
        let mut h = if top == 0 {
            self.input_layer(0, x)?
        } else {
            // The previous stage's path on the pooled image; the whole input at alpha = 0.
            let old = || self.input_layer(top - 1, &ops::avg_pool2x(x)?);
            if g.alpha <= 0.0 {
                old()?
            } else {
                let new = self.blocks[top - 1].forward(&self.input_layer(top, x)?)?;
                if g.alpha >= 1.0 {
                    new
                } else {
                    lerp(&old()?, &new, g.alpha)?
                }
            }
        };
        for block in self.blocks[..top.saturating_sub(1)].iter().rev() {
            h = block.forward(&h)?;
        }
        Ok(h)
    }

    /// The 4x4 block: [N, C0, 4, 4] -> logits [N].
    fn head(&self, h: &Tensor) -> crate::Result<Tensor> {
        let h = if self.mbstd_group > 0 { minibatch_stddev(h, self.mbstd_group)? } else { h.clone() };
        let h = lrelu(&self.final_conv.forward(&h)?)?;
        let h = lrelu(&self.final_fc.forward(&h.flatten_from(1)?)?)?;
        Ok(self.out.forward(&h)?.flatten_all()?)
    }
}

impl Discriminator for ProganDiscriminator {
    fn set_step(&self, step: u64) {
        self.step.set(step);
    }

    fn forward(&self, x: &Tensor, _labels: Option<&Tensor>, _mode: Mode) -> crate::Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        let r = self.shape.resolution;
        if (c, h, w) != (self.shape.channels, r, r) {
            return Err(crate::Error::Msg(format!("the ProGAN discriminator was built for [N, {}, {r}, {r}] images, got {:?}", self.shape.channels, x.dims())));
        }
        let g = self.growth();
        let x = repeat(x.clone(), self.schedule.last_stage - g.stage, ops::avg_pool2x)?;
        self.head(&self.features(&x, g)?)
    }
}
