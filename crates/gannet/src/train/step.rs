//! One training step, free of data loading and bookkeeping: `d_steps_per_g` discriminator updates,
//! each on a fresh real batch and fresh latents, then one generator update that reuses the last
//! fake batch (as PyTorch's DCGAN example does, saving a generator forward pass).
//!
//! [`GanState`] owns what a step changes (networks, optimizers, the EMA shadow). The trainer feeds
//! it batches from the data loader; `gannet bench` feeds it synthetic ones, so the benchmark times
//! exactly the code training runs.

use super::ada::{self, AdaState};
use super::augment::{self, Role};
use super::ema::Ema;
use super::penalty::{self, PenaltyKind};
use crate::config::TrainConfig;
use crate::models::{self, Gan, Generator, ImageShape};
use crate::nn::{self, Mode};
use crate::optim::Adam;
use crate::parallel::{self, Shard};
use crate::rng::{self, Stream};
use candle_core::{Device, Tensor, Var};

/// A batch of real images and, for conditional models, their class indices.
pub struct RealBatch {
    pub images: Tensor,
    pub labels: Option<Tensor>,
}

/// Losses and mean D logits of one step (D values averaged over its D updates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
}

impl From<&StepLosses> for super::guard::GuardInput {
    fn from(l: &StepLosses) -> Self {
        Self { d_loss: l.d_loss, g_loss: l.g_loss, d_real: l.d_real, d_fake: l.d_fake }
    }
}

impl StepLosses {
    pub fn is_finite(&self) -> bool {
        self.d_loss.is_finite() && self.g_loss.is_finite()
    }
}

/// The trainable state of a run and the update rule applied to it.
pub struct GanState {
    cfg: TrainConfig,
    device: Device,
    pub gan: Gan,
    pub opt_gen: Adam,
    pub opt_disc: Adam,
    /// The EMA shadow generator, when `ema_decay > 0`.
    pub ema: Option<Ema>,
    /// ADA's augmentation probability and signal (stays at p = 0 when `[ada]` is off).
    pub ada: AdaState,
    /// The thread on which second-order gradients were last verified (penalties only).
    second_order_checked: Option<std::thread::ThreadId>,
}

impl GanState {
    /// Fresh networks, optimizers and EMA shadow for `cfg` on images of `shape` (unconditional
    /// models; see [`GanState::with_classes`]).
    pub fn new(cfg: &TrainConfig, shape: ImageShape, device: &Device) -> crate::Result<Self> {
        Self::with_classes(cfg, shape, 0, device)
    }

    /// As [`GanState::new`], for data with `classes` classes (conditional models need > 0).
    pub fn with_classes(cfg: &TrainConfig, shape: ImageShape, classes: usize, device: &Device) -> crate::Result<Self> {
        let gan = models::build_with_classes(&cfg.model, shape, classes, cfg.seed, device)?;
        let opt_gen = Adam::new(gan.gen_params.trainable(), cfg.optim.gen)?;
        let opt_disc = Adam::new(gan.disc_params.trainable(), cfg.optim.disc)?;
        let ema = if cfg.ema_decay > 0.0 { Some(Ema::new(&cfg.model, shape, classes, cfg.seed, device, &gan.gen_params, cfg.ema_decay)?) } else { None };
        Ok(Self { cfg: cfg.clone(), device: device.clone(), gan, opt_gen, opt_disc, ema, ada: AdaState::default(), second_order_checked: None })
    }

    /// The generator samples should come from: the EMA shadow when there is one.
    pub fn sampling_generator(&self) -> &dyn Generator {
        match &self.ema {
            Some(e) => e.gen.as_ref(),
            None => self.gan.gen.as_ref(),
        }
    }

    /// Latents for D update `batch_index`: a pure function of the seed and the index, so a resumed
    /// run draws what the unbroken run drew.
    pub fn latents(&self, batch_index: u64, n: usize) -> crate::Result<Tensor> {
        let mut r = rng::rng(self.cfg.seed, Stream::Latent, batch_index);
        rng::randn(&mut r, &[n, self.cfg.model.latent_dim()], &self.device)
    }

    /// Generator update number `step` (counting from 0) and the D updates before it; D update `j`
    /// of this step trains on `next_real(batch_index)` with `batch_index = step * d_steps + j`.
    pub fn step(&mut self, step: u64, mut next_real: impl FnMut(u64) -> crate::Result<RealBatch>) -> crate::Result<StepLosses> {
        let loss = self.cfg.loss;
        let d_steps = self.cfg.schedule.d_steps_per_g;
        self.set_step(step);
        let (mut d_loss_v, mut d_real_v, mut d_fake_v) = (0.0, 0.0, 0.0);
        let mut last_fake = None;
        for j in 0..d_steps {
            let batch_index = step * d_steps as u64 + j as u64;
            let RealBatch { images: real, labels } = next_real(batch_index)?;
            // Drawn for the combined batch; this process takes its images' latents.
            let shard = Shard::of_local(real.dim(0)?);
            let z = shard.narrow(&self.latents(batch_index, shard.global)?)?;
            let fake = self.gan.gen.forward(&z, labels.as_ref(), Mode::Train)?;
            let with_penalty = self.cfg.penalty.applies_at(batch_index);
            // R1 differentiates D's logits on the real batch w.r.t. the batch: make it a leaf.
            let real_leaf = if with_penalty && self.cfg.penalty.kind == PenaltyKind::R1 {
                self.check_second_order()?;
                Some(Var::from_tensor(&real)?)
            } else {
                None
            };
            let real_in = real_leaf.as_ref().map(|v| v.as_tensor()).unwrap_or(&real);
            // What D sees (DiffAugment, when on): R1 differentiates through the augmentation.
            let real_seen = self.augment(real_in, batch_index, Role::Real)?;
            let fake_seen = self.augment(&fake.detach(), batch_index, Role::Fake)?;
            let (real_logits, real_classes) = self.gan.disc.forward_with_classes(&real_seen, labels.as_ref(), Mode::Train)?;
            let (fake_logits, fake_classes) = self.gan.disc.forward_with_classes(&fake_seen, labels.as_ref(), Mode::Train)?;
            if self.cfg.ada.is_active() {
                self.ada.observe(&self.cfg.ada, &real_logits, batch_index)?;
            }
            let fake_classes = fake_classes.filter(|_| self.cfg.acgan_class_loss().on_fakes());
            let d_loss = with_class_loss(loss.d_loss(&real_logits, &fake_logits)?, &[real_classes, fake_classes], labels.as_ref())?;
            let mut d_total = if with_penalty {
                let pen = self.d_penalty(batch_index, &real_seen, &fake_seen, labels.as_ref(), &real_logits, real_leaf.as_ref())?;
                (&d_loss + (pen * self.cfg.penalty.scale())?)?
            } else {
                d_loss.clone()
            };
            if self.cfg.penalty.drift > 0.0 {
                d_total = (d_total + (penalty::drift(&real_logits)? * self.cfg.penalty.drift)?)?;
            }
            let mut grads = d_total.backward()?;
            parallel::average_gradients(&mut grads, self.opt_disc.vars())?;
            self.opt_disc.step(&grads)?;
            d_loss_v += scalar(&d_loss)? / d_steps as f64;
            d_real_v += scalar(&real_logits.mean_all()?)? / d_steps as f64;
            d_fake_v += scalar(&fake_logits.mean_all()?)? / d_steps as f64;
            last_fake = Some((fake, labels));
        }
        let (fake, labels) = last_fake.expect("validated: d_steps_per_g >= 1");
        let fake_seen = self.augment(&fake, (step + 1) * d_steps as u64 - 1, Role::GenFake)?;
        // D's weights as constants: their gradients here would be discarded.
        let (g_logits, g_classes) = nn::frozen(|| self.gan.disc.forward_with_classes(&fake_seen, labels.as_ref(), Mode::Train))?;
        let g_loss = with_class_loss(loss.g_loss(&g_logits)?, &[g_classes], labels.as_ref())?;
        if self.cfg.model.needs_second_order() {
            self.check_second_order()?;
        }
        let g_total = match self.gan.gen.regularisation(step, self.cfg.schedule.batch_size)? {
            Some(reg) => (&g_loss + reg)?,
            None => g_loss.clone(),
        };
        let mut grads = g_total.backward()?;
        parallel::average_gradients(&mut grads, self.opt_gen.vars())?;
        self.opt_gen.step(&grads)?;
        if let Some(ema) = &self.ema {
            ema.update(&self.gan.gen_params, step)?;
        }
        // Means over the combined batch: every data-parallel process logs and guards the same values.
        let mut v = [d_loss_v, scalar(&g_loss)?, d_real_v, d_fake_v];
        parallel::mean_f64(&mut v)?;
        Ok(StepLosses { d_loss: v[0], g_loss: v[1], d_real: v[2], d_fake: v[3] })
    }

    /// Tells every network (G, D, the EMA shadow) that generator update `step` comes next.
    pub fn set_step(&self, step: u64) {
        self.gan.gen.set_step(step);
        self.gan.disc.set_step(step);
        if let Some(e) = &self.ema {
            e.gen.set_step(step);
        }
    }

    /// The checkpoint name (`gen.*`, `disc.*`, `gen_ema.*`) of the first weight or buffer holding
    /// a NaN or Inf, if any.
    pub fn non_finite_tensor(&self) -> crate::Result<Option<String>> {
        let ema = self.ema.as_ref().map(|e| ("gen_ema", &e.params));
        crate::nn::params::first_non_finite_in([("gen", &self.gan.gen_params), ("disc", &self.gan.disc_params)].into_iter().chain(ema))
    }

    /// `x` as D sees it in D update `d_step` for `role`: DiffAugment'ed when `augment` is on,
    /// each image with probability p under ADA.
    fn augment(&self, x: &Tensor, d_step: u64, role: Role) -> crate::Result<Tensor> {
        let index = augment::stream_index(d_step, role);
        if self.cfg.ada.is_active() {
            return ada::augment_with_probability(x, self.cfg.ada.policy(self.cfg.augment), self.ada.p, self.cfg.seed, index);
        }
        augment::augment(x, self.cfg.augment, self.cfg.seed, index)
    }

    /// Fails loudly (once per thread) when second-order gradients are off, since a penalty would
    /// then silently not reach D's weights.
    fn check_second_order(&mut self) -> crate::Result<()> {
        let me = std::thread::current().id();
        if self.second_order_checked != Some(me) {
            crate::autodiff::ensure_second_order()?;
            self.second_order_checked = Some(me);
        }
        Ok(())
    }

    /// The unweighted gradient penalty for D update `d_step` (the caller scales it).
    fn d_penalty(
        &mut self,
        d_step: u64,
        real: &Tensor,
        fake: &Tensor,
        labels: Option<&Tensor>,
        real_logits: &Tensor,
        real_leaf: Option<&Var>,
    ) -> crate::Result<Tensor> {
        self.check_second_order()?;
        match self.cfg.penalty.kind {
            PenaltyKind::None => Ok(Tensor::new(0f32, &self.device)?),
            PenaltyKind::R1 => {
                let leaf = real_leaf.expect("R1 makes the real batch a leaf");
                penalty::r1_from_logits(real_logits, leaf)
            }
            PenaltyKind::WganGp => {
                let eps = penalty::interpolation_weights(self.cfg.seed, d_step, real.dim(0)?, &self.device)?;
                let disc = &self.gan.disc;
                penalty::wgan_gp(&|x| disc.forward(x, labels, Mode::Train), real, fake, &eps)
            }
        }
    }
}

/// AC-GAN: adds the cross-entropy of every set of class logits against the batch's labels to
/// `adversarial` (D: real images, and fake ones when `acgan_class_loss` says so; G: fake
/// images). Other models have no class logits.
fn with_class_loss(adversarial: Tensor, class_logits: &[Option<Tensor>], labels: Option<&Tensor>) -> crate::Result<Tensor> {
    let mut total = adversarial;
    for logits in class_logits.iter().flatten() {
        let labels = labels.ok_or_else(|| crate::Error::Msg("an AC-GAN discriminator needs labelled batches".into()))?;
        total = (total + crate::loss::cross_entropy(logits, labels)?)?;
    }
    Ok(total)
}

fn scalar(t: &Tensor) -> crate::Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}
