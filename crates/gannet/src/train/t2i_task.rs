//! Text-to-image training as an engine task (`gannet train --preset t2i-emoji`).
//!
//! Two phases in one run, told apart by the step:
//! 1. the first `schedule.pretrain_steps` train the text and image encoders contrastively on the
//!    training pairs ([`crate::text::contrastive_loss`]);
//! 2. the rest train the text-conditional GAN ([`crate::models::text_gan`]) with the encoders
//!    frozen: D matching-aware (real image and its caption: real; generated image, or real image
//!    with another image's caption: fake), G against D plus conditioning augmentation's KL term
//!    and the matching loss of its images to their captions.
//!
//! Every batch is the loader's batch of the step and every draw is indexed by the step, so a
//! resumed run repeats the unbroken one bit for bit.

use super::engine::{self, Losses, Record, Run, Saved, Schedule, TaskConfig};
use super::guard::GuardInput;
use crate::checkpoint;
use crate::config::T2iConfig;
use crate::data::captions::{load_captioned, CaptionedImages};
use crate::data::{BatchLoader, Split};
use crate::metrics::text_image::{self, TextImageEvalOptions, R_PRECISION_OTHERS};
use crate::models::text_gan::{matching_aware_d_loss, TextDiscriminator};
use crate::models::ImageShape;
use crate::nn::{frozen, Mode, ParamStore};
use crate::optim::{Adam, AdamConfig};
use crate::rng::{self, Stream};
use crate::saved::t2i::{T2iMeta, T2iNets, KIND_T2I, T2I_COMMAND};
use crate::text::{contrastive_loss, Tokens, Vocab};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A text-to-image training run.
pub type T2iTrainer = Run<T2iTask>;

/// Rows (captions) and columns (draws) of the sample grid.
const GRID: usize = 8;
/// Held-out captions scored by periodic evaluation (all when fewer).
const EVAL_CAPTIONS: usize = 500;

/// One step's numbers; the columns of the phase not running are 0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct T2iLosses {
    /// Contrastive loss of the encoders (pretraining).
    pub encoder_loss: f64,
    /// Fraction of the batch's images whose own caption scores highest (pretraining).
    pub encoder_accuracy: f64,
    pub d_loss: f64,
    pub g_loss: f64,
    /// Mean D logit on real images with their captions.
    pub d_real: f64,
    /// Mean D logit on generated images.
    pub d_fake: f64,
    /// Mean D logit on real images with another image's caption.
    pub d_wrong: f64,
    /// Conditioning augmentation's KL term.
    pub kl: f64,
    /// Contrastive loss of generated images against their captions.
    pub match_loss: f64,
    pretraining: bool,
}

impl Losses for T2iLosses {
    const COLUMNS: &'static [&'static str] = &["encoder_loss", "encoder_accuracy", "d_loss", "g_loss", "d_real", "d_fake", "d_wrong", "kl", "match_loss"];
    const PLOTTED: &'static [&'static str] = &["encoder_loss", "d_loss", "g_loss", "match_loss"];
    fn values(&self) -> Vec<f64> {
        vec![self.encoder_loss, self.encoder_accuracy, self.d_loss, self.g_loss, self.d_real, self.d_fake, self.d_wrong, self.kl, self.match_loss]
    }
    fn guard_input(&self) -> GuardInput {
        if self.pretraining {
            // The encoders' loss is only checked for NaN/Inf: a low contrastive loss is success,
            // not a collapsed discriminator.
            let finite = if self.encoder_loss.is_finite() { 1.0 } else { self.encoder_loss };
            return GuardInput { d_loss: finite, g_loss: 0.0, d_real: 0.0, d_fake: 0.0 };
        }
        GuardInput { d_loss: self.d_loss, g_loss: self.g_loss, d_real: self.d_real, d_fake: self.d_fake }
    }
    fn summary(&self) -> String {
        if self.pretraining {
            format!("encoders: loss {:.3} | batch matching {:.0}%", self.encoder_loss, self.encoder_accuracy * 100.0)
        } else {
            format!(
                "D {:.3} G {:.3} | D(x,t) {:+.2} D(G) {:+.2} D(x,wrong t) {:+.2} | match {:.3}",
                self.d_loss, self.g_loss, self.d_real, self.d_fake, self.d_wrong, self.match_loss
            )
        }
    }
}

impl TaskConfig for T2iConfig {
    const FIXED_ON_RESUME: &'static [&'static str] = &["kind", "data", "text", "model", "seed", "schedule.batch_size", "schedule.pretrain_steps", "loss.gan"];
    fn schedule(&self) -> Schedule {
        Schedule {
            dir: self.output.dir.clone(),
            steps: self.schedule.steps,
            log_every: self.output.log_every,
            sample_every: self.output.sample_every,
            checkpoint_every: self.output.checkpoint_every,
            eval_every: self.output.eval_every,
            guard: self.guard,
            loss: self.loss.gan,
        }
    }
    fn validate(&self) -> crate::Result<()> {
        T2iConfig::validate(self)
    }
    fn device(&self) -> &str {
        &self.device
    }
    fn scale_learning_rates(&mut self, factor: f64) {
        self.schedule.lr_g *= factor;
        self.schedule.lr_d *= factor;
        self.schedule.lr_encoders *= factor;
    }
    fn learning_rates(&self) -> (f64, f64) {
        (self.schedule.lr_g, self.schedule.lr_d)
    }
}

pub struct T2iTask {
    cfg: T2iConfig,
    nets: T2iNets,
    disc: TextDiscriminator,
    disc_params: ParamStore,
    opt_enc: Adam,
    opt_gen: Adam,
    opt_disc: Adam,
    /// Token ids of each training image's caption (the loader's labels index it).
    tokens: Vec<Vec<u32>>,
    loader: BatchLoader,
    /// The held-out captions and images, loaded at the first evaluation.
    held_out: Option<CaptionedImages>,
    device: Device,
}

impl engine::Task for T2iTask {
    type Config = T2iConfig;
    type Losses = T2iLosses;
    const KIND: &'static str = KIND_T2I;
    const COMMAND: &'static str = T2I_COMMAND;
    const LOWER_LR: &'static str = "a lower schedule.lr_g and schedule.lr_d in --config";

    fn build(cfg: &T2iConfig, saved: Option<&Record>, device: &Device) -> crate::Result<Self> {
        let saved_vocab = match saved {
            Some(r) => Some(r.task_meta::<T2iMeta>(Path::new(&cfg.output.dir))?.vocab),
            None => None,
        };
        let train = load_captioned(Path::new(&cfg.data.source), Split::Train, cfg.data.resolution)?;
        let vocab = match saved_vocab {
            Some(v) => v,
            None => Vocab::build(train.captions.iter().map(|c| c.text.as_str()))?,
        };
        let tokens = train.captions.iter().map(|c| vocab.encode(&c.text)).collect();
        let nets = T2iNets::build(cfg, vocab, device)?;
        let shape = ImageShape { channels: 3, resolution: cfg.data.resolution };
        let disc_params = ParamStore::new(rng::mix(cfg.seed, Stream::Init, 2), device);
        let disc = TextDiscriminator::new(&disc_params.root(), &cfg.model, cfg.text.embed_dim, shape)?;
        let s = &cfg.schedule;
        let adam = |lr: f64, betas: (f64, f64)| AdamConfig { lr, beta1: betas.0, beta2: betas.1, ..AdamConfig::default() };
        let mut opt_enc = Adam::new(nets.enc_params.trainable(), adam(s.lr_encoders, (0.9, 0.999)))?;
        let mut opt_gen = Adam::new(nets.gen_params.trainable(), adam(s.lr_g, s.betas))?;
        let mut opt_disc = Adam::new(disc_params.trainable(), adam(s.lr_d, s.betas))?;
        let step = match saved {
            Some(r) => {
                let fit = |e: crate::Error| crate::Error::Msg(format!("checkpoint does not fit the text-to-image model: {e}"));
                nets.load(&r.tensors).map_err(fit)?;
                disc_params.load(&checkpoint::strip_prefix("disc", &r.tensors)).map_err(fit)?;
                opt_enc.load_state(&checkpoint::strip_prefix("opt_enc", &r.tensors))?;
                opt_gen.load_state(&checkpoint::strip_prefix("opt_gen", &r.tensors))?;
                opt_disc.load_state(&checkpoint::strip_prefix("opt_disc", &r.tensors))?;
                r.run.step
            }
            None => 0,
        };
        let loader = BatchLoader::new(Arc::new(train.images), s.batch_size, cfg.seed, step)?;
        Ok(Self { cfg: cfg.clone(), nets, disc, disc_params, opt_enc, opt_gen, opt_disc, tokens, loader, held_out: None, device: device.clone() })
    }

    fn step(&mut self, step: u64) -> crate::Result<T2iLosses> {
        let batch = self.loader.next_batch()?;
        let (real, _) = batch.to_tensors(&self.device)?;
        let indices: Vec<usize> = batch.labels.as_deref().unwrap_or_default().iter().map(|&i| i as usize).collect();
        let tokens = Tokens::new(&self.ids(&indices), &self.device)?;
        if step < self.cfg.schedule.pretrain_steps {
            self.pretrain_step(&real, &tokens)
        } else {
            self.gan_step(step, &real, &tokens)
        }
    }

    fn images_per_step(&self) -> usize {
        self.cfg.schedule.batch_size
    }

    fn non_finite_tensor(&self) -> crate::Result<Option<String>> {
        crate::nn::params::first_non_finite_in([("enc", &self.nets.enc_params), ("gen", &self.nets.gen_params), ("disc", &self.disc_params)])
    }

    /// 8 training captions (rows) x 8 draws (columns), the same draws every time.
    fn sample_grid(&mut self, step: u64) -> crate::Result<Option<image::DynamicImage>> {
        if step <= self.cfg.schedule.pretrain_steps {
            return Ok(None);
        }
        let n = self.tokens.len();
        let rows: Vec<usize> = (0..GRID).map(|i| i * n / GRID).collect();
        let text = self.nets.embed_ids(&self.ids(&rows), &self.device)?.detach();
        let mut r = rng::rng(self.cfg.seed, Stream::FixedLatent, 0);
        let z = rng::randn(&mut r, &[GRID, self.nets.gen.latent_dim()], &self.device)?;
        let eps = rng::randn(&mut r, &[GRID, self.nets.gen.cond_dim()], &self.device)?;
        let images = self.nets.generate_rows(&text, &z, &eps)?;
        crate::image_io::grid(&images, GRID, 2).map(Some)
    }

    fn save(&self, _step: u64) -> crate::Result<Saved> {
        let mut tensors = BTreeMap::new();
        tensors.extend(checkpoint::prefixed("enc", self.nets.enc_params.tensors()));
        tensors.extend(checkpoint::prefixed("gen", self.nets.gen_params.tensors()));
        tensors.extend(checkpoint::prefixed("disc", self.disc_params.tensors()));
        tensors.extend(checkpoint::prefixed("opt_enc", self.opt_enc.state()));
        tensors.extend(checkpoint::prefixed("opt_gen", self.opt_gen.state()));
        tensors.extend(checkpoint::prefixed("opt_disc", self.opt_disc.state()));
        let meta = T2iMeta { vocab: self.nets.vocab.clone() };
        Ok(Saved { tensors, meta: serde_json::to_value(meta).expect("plain struct") })
    }

    /// R-precision of one generated image per held-out caption (and of the real images): what
    /// `gannet eval -n 500 --metrics r-precision --seed SEED` reports for the checkpoint.
    fn evaluate(&mut self, _step: u64) -> crate::Result<Vec<f64>> {
        if self.held_out.is_none() {
            self.held_out = Some(load_captioned(Path::new(&self.cfg.data.source), Split::HeldOut, self.cfg.data.resolution)?);
        }
        let held = self.held_out.as_ref().expect("loaded above");
        let opts = TextImageEvalOptions { seed: self.cfg.seed, count: EVAL_CAPTIONS, classifier: None, inception: None };
        let r = text_image::evaluate(&self.nets, held, &opts, &self.device)?.r_precision;
        Ok(vec![r.generated, r.real])
    }

    fn eval_columns(&self) -> Vec<(String, Vec<String>)> {
        vec![("r_precision".into(), vec!["r_precision_generated".into(), "r_precision_real".into()])]
    }

    fn eval_note(&self) -> String {
        let n = self.held_out.as_ref().map_or(0, |h| h.len().min(EVAL_CAPTIONS));
        format!(" (held-out captions: {n}, 1 in {} is chance)", R_PRECISION_OTHERS + 1)
    }
}

impl T2iTask {
    fn pretrain_step(&mut self, real: &Tensor, tokens: &Tokens) -> crate::Result<T2iLosses> {
        let text = self.nets.text.forward(tokens)?;
        let image = self.nets.image.forward(real)?;
        let (loss, accuracy) = contrastive_loss(&image, &text, self.cfg.text.temperature)?;
        self.opt_enc.step(&loss.backward()?)?;
        Ok(T2iLosses { encoder_loss: scalar(&loss)?, encoder_accuracy: accuracy, pretraining: true, ..T2iLosses::default() })
    }

    fn gan_step(&mut self, step: u64, real: &Tensor, tokens: &Tokens) -> crate::Result<T2iLosses> {
        let n = real.dim(0)?;
        let (gen, loss) = (&self.nets.gen, self.cfg.loss.gan);
        // The encoders are frozen after pretraining: the embeddings are constants here.
        let text = frozen(|| self.nets.text.forward(tokens))?.detach();
        // Each image paired with the next image's caption: a mismatched pair.
        let wrong = Tensor::cat(&[text.narrow(0, 1, n - 1)?, text.narrow(0, 0, 1)?], 0)?;
        let mut r = rng::rng(self.cfg.seed, Stream::Latent, step);
        let z = rng::randn(&mut r, &[n, gen.latent_dim()], &self.device)?;
        let eps = rng::randn(&mut r, &[n, gen.cond_dim()], &self.device)?;
        let cond = gen.condition(&text, &eps)?;
        let fake = gen.forward(&z, &cond.code, Mode::Train)?;

        let d_real = self.disc.forward(real, &text, Mode::Train)?;
        let d_fake = self.disc.forward(&fake.detach(), &text, Mode::Train)?;
        let d_wrong = self.disc.forward(real, &wrong, Mode::Train)?;
        let d_loss = matching_aware_d_loss(loss, &d_real, &d_fake, &d_wrong)?;
        self.opt_disc.step(&d_loss.backward()?)?;

        let (adv, image) = frozen(|| -> crate::Result<_> { Ok((self.disc.forward(&fake, &text, Mode::Train)?, self.nets.image.forward(&fake)?)) })?;
        let g_adv = loss.g_loss(&adv)?;
        let kl = cond.kl()?;
        let (matching, _) = contrastive_loss(&image, &text, self.cfg.text.temperature)?;
        let g_loss = ((&g_adv + (&kl * self.cfg.loss.kl_weight)?)? + (&matching * self.cfg.loss.match_weight)?)?;
        self.opt_gen.step(&g_loss.backward()?)?;
        Ok(T2iLosses {
            d_loss: scalar(&d_loss)?,
            g_loss: scalar(&g_adv)?,
            d_real: scalar(&d_real.mean_all()?)?,
            d_fake: scalar(&d_fake.mean_all()?)?,
            d_wrong: scalar(&d_wrong.mean_all()?)?,
            kl: scalar(&kl)?,
            match_loss: scalar(&matching)?,
            ..T2iLosses::default()
        })
    }

    /// Token ids of the captions of training images `indices`.
    fn ids(&self, indices: &[usize]) -> Vec<&[u32]> {
        indices.iter().map(|&i| self.tokens[i].as_slice()).collect()
    }

    /// The training captions and images.
    pub fn train_len(&self) -> usize {
        self.tokens.len()
    }

    pub fn vocab(&self) -> &Vocab {
        &self.nets.vocab
    }
}

fn scalar(t: &Tensor) -> crate::Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}
