//! Projection of real images into StyleGAN2's w space (after Karras et al. 2020, sec. 5): find
//! the w whose image matches a target, by gradient descent on w with the generator frozen.
//!
//! The loss is the pixel MSE plus a feature loss: the MSE between the trained discriminator's
//! activations (every resolution) of the image and of the target. The paper uses LPIPS (VGG
//! features), which gannet does not ship; the run's own D has learnt exactly the features that
//! tell this data's images apart, and it comes with every checkpoint. Adam on w, starting from
//! the tracked mean w, with the paper's learning-rate ramps (up over the first 5% of the steps,
//! cosine down over the last 25%). `w_plus` optimises one w per layer (closer fits, less
//! "on-manifold" than one w for all layers).

use crate::models::StyleGenerator;
use crate::optim::{Adam, AdamConfig};
use candle_core::{Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectOptions {
    pub steps: usize,
    pub lr: f64,
    /// One w per synthesis layer instead of one for all.
    pub w_plus: bool,
    /// Weight of the feature loss against the pixel MSE (0 = pixels only).
    pub feature_weight: f64,
}

impl Default for ProjectOptions {
    fn default() -> Self {
        Self { steps: 300, lr: 0.1, w_plus: false, feature_weight: 1.0 }
    }
}

/// What projection found.
pub struct Projection {
    /// [N, num_ws, w_dim]: regenerate with `style.synthesis(&ws)`.
    pub ws: Tensor,
    /// The regenerated images, [N, C, H, W] in [-1, 1] (clamped).
    pub images: Tensor,
    /// Loss after each step.
    pub losses: Vec<f64>,
}

/// Feature maps of an image batch whose distances make the feature loss.
pub type Features<'a> = &'a dyn Fn(&Tensor) -> crate::Result<Vec<Tensor>>;

/// Learning rate at step `t` of `steps`: ramp up over 5%, cosine down over the last 25%.
pub fn lr_at(t: usize, steps: usize, lr: f64) -> f64 {
    let x = t as f64 / steps.max(1) as f64;
    let down = ((1.0 - x) / 0.25).min(1.0);
    let down = 0.5 - 0.5 * (down * std::f64::consts::PI).cos();
    lr * down * (x / 0.05).min(1.0)
}

/// Projects `targets` [N, C, H, W] in [-1, 1] (each image on its own: the loss is a sum over
/// images and Adam works per coordinate); `progress(step, loss)` after every step.
pub fn project(
    style: &dyn StyleGenerator,
    features: Features,
    targets: &Tensor,
    opts: ProjectOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> crate::Result<Projection> {
    if opts.steps == 0 {
        return Err(crate::Error::Config("projection needs at least 1 step".into()));
    }
    let n = targets.dim(0)?;
    let avg = style.w_avg()?.unsqueeze(0)?.repeat((n, 1))?;
    let start = if opts.w_plus { style.broadcast_w(&avg)? } else { avg };
    let w = Var::from_tensor(&start.detach())?;
    let target_feats: Vec<Tensor> = features(targets)?.into_iter().map(|f| f.detach()).collect();
    let mut adam = Adam::new(vec![("w".into(), w.clone())], AdamConfig { lr: opts.lr, beta1: 0.9, beta2: 0.999, ..Default::default() })?;
    let ws_of = |w: &Tensor| if opts.w_plus { Ok(w.clone()) } else { style.broadcast_w(w) };
    let mut losses = Vec::with_capacity(opts.steps);
    for t in 0..opts.steps {
        let img = style.synthesis(&ws_of(w.as_tensor())?)?;
        let mut loss = (&img - targets)?.sqr()?.sum_all()?.affine(1.0 / (img.elem_count() / n) as f64, 0.0)?;
        if opts.feature_weight > 0.0 {
            for (f, tf) in features(&img)?.iter().zip(&target_feats) {
                let per_image = (f.elem_count() / n) as f64;
                loss = (loss + (f - tf)?.sqr()?.sum_all()?.affine(opts.feature_weight / per_image, 0.0)?)?;
            }
        }
        adam.set_lr(lr_at(t, opts.steps, opts.lr));
        adam.step(&loss.backward()?)?;
        let v = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? / n as f64;
        losses.push(v);
        progress(t + 1, v);
    }
    let ws = ws_of(w.as_tensor())?.detach();
    let images = style.synthesis(&ws)?.detach().clamp(-1f32, 1f32)?;
    Ok(Projection { ws, images, losses })
}
