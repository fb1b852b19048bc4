//! Gradient penalties on the discriminator: R1 (Mescheder et al. 2018) and WGAN-GP
//! (Gulrajani et al. 2017), with lazy regularisation (StyleGAN2: apply every k D-steps, scaled
//! by k so the average strength is unchanged).
//!
//! Both penalties differentiate D's output with respect to its *input*, keep that gradient in
//! the autodiff graph ([`crate::autodiff::grad_of`]), and are then differentiated again with
//! respect to D's weights. That needs second-order gradients, which candle only gives when
//! `CANDLE_GRAD_DO_NOT_DETACH` is set on the thread; the trainer checks this with
//! [`crate::autodiff::ensure_second_order`] before it builds any penalty.

use crate::autodiff;
pub use crate::config::{PenaltyConfig, PenaltyKind};
use crate::rng::{self, Stream};
use candle_core::{Tensor, Var};

/// The unweighted drift term `mean(logits^2)` of D's logits on real images (the caller
/// multiplies it by [`PenaltyConfig::drift`]).
pub fn drift(real_logits: &Tensor) -> crate::Result<Tensor> {
    Ok(real_logits.sqr()?.mean_all()?)
}

/// Per-sample squared norm of `g` [N, ...] -> [N].
fn sq_norm_per_sample(g: &Tensor) -> crate::Result<Tensor> {
    Ok(g.flatten_from(1)?.sqr()?.sum(1)?)
}

/// Unweighted R1 term `E ||grad_x D(x)||^2` for inputs `x` (a leaf the graph tracks) and D's
/// logits on them, `logits = D(x)`. Reusing the logits of the loss's forward pass saves a
/// forward and does not touch BatchNorm statistics twice.
pub fn r1_from_logits(logits: &Tensor, x: &Var) -> crate::Result<Tensor> {
    let g = autodiff::grad_of(&logits.sum_all()?, x.as_tensor())?;
    Ok(sq_norm_per_sample(&g)?.mean_all()?)
}

/// Unweighted R1 term for a discriminator given as a function of its input.
pub fn r1(d: &dyn Fn(&Tensor) -> crate::Result<Tensor>, real: &Tensor) -> crate::Result<Tensor> {
    let x = Var::from_tensor(&real.detach())?;
    let logits = d(x.as_tensor())?;
    r1_from_logits(&logits, &x)
}

/// Unweighted WGAN-GP term `E (||grad D(x_hat)|| - 1)^2` with `x_hat = eps*real + (1-eps)*fake`,
/// `eps` `[N]` in [0, 1) per sample. Both inputs are detached: the penalty trains D only.
pub fn wgan_gp(d: &dyn Fn(&Tensor) -> crate::Result<Tensor>, real: &Tensor, fake: &Tensor, eps: &Tensor) -> crate::Result<Tensor> {
    let n = real.dim(0)?;
    let mut shape = vec![n];
    shape.extend(std::iter::repeat_n(1, real.rank() - 1));
    let e = eps.to_dtype(real.dtype())?.reshape(shape)?;
    let (real, fake) = (real.detach(), fake.detach());
    let mix = (real.broadcast_mul(&e)? + fake.broadcast_mul(&e.affine(-1.0, 1.0)?)?)?;
    let x = Var::from_tensor(&mix)?;
    let logits = d(x.as_tensor())?;
    let g = autodiff::grad_of(&logits.sum_all()?, x.as_tensor())?;
    // A tiny epsilon keeps the square root differentiable where the gradient is exactly zero.
    let norm = (sq_norm_per_sample(&g)? + 1e-12)?.sqrt()?;
    Ok((norm - 1.0)?.sqr()?.mean_all()?)
}

/// The interpolation weights of WGAN-GP for discriminator update `d_step`: drawn from
/// [`Stream::Penalty`] indexed by that step, so a resumed run draws the same numbers.
pub fn interpolation_weights(seed: u64, d_step: u64, n: usize, device: &candle_core::Device) -> crate::Result<Tensor> {
    let mut r = rng::rng(seed, Stream::Penalty, d_step);
    // Drawn for the global batch: a data-parallel process uses its images' weights.
    let shard = crate::parallel::Shard::of_local(n);
    shard.narrow(&rng::rand_uniform(&mut r, &[shard.global], 0.0, 1.0, device)?)
}
