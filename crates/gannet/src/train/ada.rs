//! Adaptive discriminator augmentation, ADA (Karras et al. 2020, "Training Generative
//! Adversarial Networks with Limited Data"): D sees each image augmented with probability `p`,
//! and `p` follows an overfitting signal instead of being tuned by hand.
//!
//! The signal is `r_t = E[sign(D(real))]` over the last `interval` D updates: near 0 when D cannot
//! tell training images from generated ones, near 1 when it has memorised the training set. Every
//! `interval` D updates `p` moves by `sign(r_t - target) * images / speed_images` (so it can go
//! from 0 to 1 in `speed_images` images), clamped to [0, 1]. The augmentations are the DiffAugment
//! families of [`super::augment`] (`augment = ...`, all three when none is set); gannet applies
//! the whole pipeline to an image with probability `p` (the paper draws each transform
//! separately). `p` and the running sums are saved in checkpoints, so a resumed run continues
//! with the same probability.

use super::augment;
use crate::config::AugmentPolicy;
pub use crate::config::{AdaConfig, AdaState};
use crate::rng::{self, Stream};
use candle_core::Tensor;
use rand::Rng;

/// `x` with each image replaced, with probability `p`, by its augmentation number `index`
/// (`augment::augment(x, policy, seed, index)`); which images are drawn from the same seed and
/// index, so a resumed run repeats them.
pub fn augment_with_probability(x: &Tensor, policy: AugmentPolicy, p: f64, seed: u64, index: u64) -> crate::Result<Tensor> {
    if p <= 0.0 || !policy.is_active() {
        return Ok(x.clone());
    }
    let n = x.dim(0)?;
    let shard = crate::parallel::Shard::of_local(n);
    let mut r = rng::rng(seed, Stream::Augment, index | (1 << 62));
    let chosen: Vec<f32> = (0..shard.global).map(|_| f32::from(r.random::<f64>() < p)).collect();
    let chosen = shard.slice(&chosen).to_vec();
    let mask = Tensor::from_vec(chosen, (n, 1, 1, 1), x.device())?.to_dtype(x.dtype())?;
    let aug = augment::augment(x, policy, seed, index)?;
    Ok((x + (aug - x)?.broadcast_mul(&mask)?)?)
}
