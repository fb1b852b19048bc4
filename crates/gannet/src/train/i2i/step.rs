//! One training step of each task: a generator update and a discriminator update on one batch.
//!
//! - pix2pix (as the paper's code): D on (input, target) vs (input, G(input)) with its loss
//!   halved, then G on the adversarial loss + `l1` * |G(input) - target|.
//! - CycleGAN (as the paper's code): both Gs on the adversarial losses of both directions +
//!   `cycle` * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|) + `cycle * identity` *
//!   (|G_AB(b) - b| + |G_BA(a) - a|), then both Ds on real images vs fakes from the history pools.
//! - Super-resolution: D on high-res images vs G(downscaled), then G on the pixel loss +
//!   `adversarial` * the adversarial loss.

use super::pool::ImagePool;
use crate::config::i2i::{I2iConfig, PixelLoss, Task};
use crate::models::patchgan::PatchGan;
use crate::models::resnet_translator::ResnetTranslator;
use crate::models::srgan::SrGenerator;
use crate::models::unet::UnetGenerator;
use crate::models::Translator;
use crate::nn;
use crate::ops::avg_pool2x;
use crate::optim::Adam;
use crate::saved::{I2iNets, Nets};
use candle_core::{Device, Tensor};

/// What one step measured (means over the batch).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct I2iLosses {
    pub d_loss: f64,
    /// The generator's adversarial term (unweighted).
    pub g_adv: f64,
    /// The generator's pixel term (unweighted): L1 (pix2pix), cycle + identity L1 (CycleGAN),
    /// pixel loss (super-resolution).
    pub g_pixel: f64,
    /// Mean D logit on real and on generated images.
    pub d_real: f64,
    pub d_fake: f64,
    /// The factor on both base learning rates at this step (the linear decay).
    pub lr_factor: f64,
}

/// Networks, optimisers and pools: everything a step changes.
pub struct I2iState {
    cfg: I2iConfig,
    pub nets: I2iNets,
    pub opt_gen: Adam,
    pub opt_disc: Adam,
    pub pool_a: ImagePool,
    pub pool_b: ImagePool,
}

fn scalar(t: &Tensor) -> crate::Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

fn l1(x: &Tensor, y: &Tensor) -> crate::Result<Tensor> {
    Ok((x - y)?.abs()?.mean_all()?)
}

/// Downscales [N, C, H, W] by `scale` (a power of two) with a box filter: the average of each
/// `scale x scale` square, the low-resolution inputs super-resolution learns from.
pub fn downscale(x: &Tensor, scale: usize) -> crate::Result<Tensor> {
    let mut y = x.clone();
    for _ in 0..scale.trailing_zeros() {
        y = avg_pool2x(&y)?;
    }
    Ok(y)
}

impl I2iState {
    pub fn new(cfg: &I2iConfig, channels: usize, device: &Device) -> crate::Result<Self> {
        let nets = I2iNets::build(cfg, channels, device)?;
        let opt_gen = Adam::new(nets.gen_params.trainable(), cfg.optim.gen)?;
        let opt_disc = Adam::new(nets.disc_params.trainable(), cfg.optim.disc)?;
        let pool = || ImagePool::new(if cfg.task == Task::Cyclegan { cfg.schedule.pool_size } else { 0 });
        Ok(Self { cfg: cfg.clone(), nets, opt_gen, opt_disc, pool_a: pool(), pool_b: pool() })
    }

    /// Step `step` (0-based) on `a` (inputs, or high-res images) and `b` (targets, or the other
    /// domain), both [N, C, H, W] in [-1, 1].
    pub fn step(&mut self, step: u64, a: &Tensor, b: Option<&Tensor>) -> crate::Result<I2iLosses> {
        let f = self.cfg.schedule.lr_factor(step);
        self.opt_gen.set_lr(self.cfg.optim.gen.lr * f);
        self.opt_disc.set_lr(self.cfg.optim.disc.lr * f);
        let need_b = || b.ok_or_else(|| crate::Error::Msg(format!("{} needs a batch of both domains", self.cfg.task)));
        let up = Update { cfg: &self.cfg, opt_gen: &mut self.opt_gen, opt_disc: &mut self.opt_disc };
        let losses = match &self.nets.nets {
            Nets::Pix2pix { g, d } => pix2pix(up, g, d, a, need_b()?),
            Nets::Cyclegan { g_ab, g_ba, d_a, d_b } => cyclegan(up, [g_ab, g_ba], [d_a, d_b], [&mut self.pool_a, &mut self.pool_b], step, a, need_b()?),
            Nets::Superres { g, d } => superres(up, g, d, a),
        }?;
        Ok(I2iLosses { lr_factor: f, ..losses })
    }
}

/// What a step updates besides the networks: the optimisers, under the run's config.
struct Update<'a> {
    cfg: &'a I2iConfig,
    opt_gen: &'a mut Adam,
    opt_disc: &'a mut Adam,
}

fn pix2pix(up: Update, g: &UnetGenerator, d: &PatchGan, a: &Tensor, b: &Tensor) -> crate::Result<I2iLosses> {
    let loss = up.cfg.loss;
    let fake = g.forward(a)?;
    let real_logits = d.forward_pair(a, b)?;
    let fake_logits = d.forward_pair(a, &fake.detach())?;
    let d_loss = (loss.d_loss(&real_logits, &fake_logits)? * 0.5)?;
    up.opt_disc.step(&d_loss.backward()?)?;
    // D's weights as constants in G's update, as in the GAN step (nn::frozen).
    let g_adv = loss.g_loss(&nn::frozen(|| d.forward_pair(a, &fake))?)?;
    let g_l1 = l1(&fake, b)?;
    let w = &up.cfg.weights;
    let g_total = ((&g_adv * w.adversarial)? + (&g_l1 * w.l1)?)?;
    up.opt_gen.step(&g_total.backward()?)?;
    Ok(I2iLosses {
        d_loss: scalar(&d_loss)?,
        g_adv: scalar(&g_adv)?,
        g_pixel: scalar(&g_l1)?,
        d_real: scalar(&real_logits.mean_all()?)?,
        d_fake: scalar(&fake_logits.mean_all()?)?,
        lr_factor: 1.0,
    })
}

/// CycleGAN's update: generators A->B and B->A, discriminators of A and B, pools of A and B.
fn cyclegan(
    up: Update,
    [g_ab, g_ba]: [&ResnetTranslator; 2],
    [d_a, d_b]: [&PatchGan; 2],
    [pool_a, pool_b]: [&mut ImagePool; 2],
    step: u64,
    a: &Tensor,
    b: &Tensor,
) -> crate::Result<I2iLosses> {
    let (loss, w) = (up.cfg.loss, &up.cfg.weights);
    let fake_b = g_ab.forward(a)?;
    let fake_a = g_ba.forward(b)?;
    let cycle = (l1(&g_ba.forward(&fake_b)?, a)? + l1(&g_ab.forward(&fake_a)?, b)?)?;
    let g_adv = (loss.g_loss(&nn::frozen(|| d_b.forward(&fake_b))?)? + loss.g_loss(&nn::frozen(|| d_a.forward(&fake_a))?)?)?;
    let mut g_total = ((&g_adv * w.adversarial)? + (&cycle * w.cycle)?)?;
    let mut pixel = cycle;
    if w.identity > 0.0 {
        let idt = (l1(&g_ab.forward(b)?, b)? + l1(&g_ba.forward(a)?, a)?)?;
        g_total = (g_total + (&idt * (w.cycle * w.identity))?)?;
        pixel = (pixel + idt)?;
    }
    up.opt_gen.step(&g_total.backward()?)?;
    let seed = up.cfg.seed;
    let pooled_b = pool_b.query(&fake_b, seed, step, 0)?;
    let pooled_a = pool_a.query(&fake_a, seed, step, 1)?;
    let (real_a, fake_a_logits) = (d_a.forward(a)?, d_a.forward(&pooled_a)?);
    let (real_b, fake_b_logits) = (d_b.forward(b)?, d_b.forward(&pooled_b)?);
    let d_loss = (loss.d_loss(&real_a, &fake_a_logits)? + loss.d_loss(&real_b, &fake_b_logits)?)?;
    up.opt_disc.step(&d_loss.backward()?)?;
    let mean2 = |x: &Tensor, y: &Tensor| -> crate::Result<f64> { Ok((scalar(&x.mean_all()?)? + scalar(&y.mean_all()?)?) / 2.0) };
    Ok(I2iLosses {
        d_loss: scalar(&d_loss)?,
        g_adv: scalar(&g_adv)?,
        g_pixel: scalar(&pixel)?,
        d_real: mean2(&real_a, &real_b)?,
        d_fake: mean2(&fake_a_logits, &fake_b_logits)?,
        lr_factor: 1.0,
    })
}

fn superres(up: Update, g: &SrGenerator, d: &PatchGan, hr: &Tensor) -> crate::Result<I2iLosses> {
    let (loss, w) = (up.cfg.loss, &up.cfg.weights);
    let lr_images = downscale(hr, up.cfg.model.scale)?;
    let sr = g.forward(&lr_images)?;
    let real_logits = d.forward(hr)?;
    let fake_logits = d.forward(&sr.detach())?;
    let d_loss = loss.d_loss(&real_logits, &fake_logits)?;
    up.opt_disc.step(&d_loss.backward()?)?;
    let pixel = match w.pixel {
        PixelLoss::L1 => l1(&sr, hr)?,
        PixelLoss::Mse => (&sr - hr)?.sqr()?.mean_all()?,
    };
    let g_adv = loss.g_loss(&nn::frozen(|| d.forward(&sr))?)?;
    let g_total = (&pixel + (&g_adv * w.adversarial)?)?;
    up.opt_gen.step(&g_total.backward()?)?;
    Ok(I2iLosses {
        d_loss: scalar(&d_loss)?,
        g_adv: scalar(&g_adv)?,
        g_pixel: scalar(&pixel)?,
        d_real: scalar(&real_logits.mean_all()?)?,
        d_fake: scalar(&fake_logits.mean_all()?)?,
        lr_factor: 1.0,
    })
}
