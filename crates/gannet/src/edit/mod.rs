//! Editing a trained generator: the truncation trick, latent interpolation, style mixing and
//! projection of real images into w. Truncation and interpolation work on every generator (in z);
//! the w-space tools need a style-based one ([`crate::models::StyleGenerator`], StyleGAN2).

pub mod interpolate;
pub mod mixing;
pub mod project;

use crate::models::{Generator, ImageShape, StyleGenerator};
use crate::nn::Mode;
use candle_core::Tensor;

/// The style interface of `gen`, or an error saying which tool needs it.
pub fn style<'a>(gen: &'a dyn Generator, tool: &str) -> crate::Result<&'a dyn StyleGenerator> {
    gen.as_style()
        .ok_or_else(|| crate::Error::Config(format!("{tool} works in StyleGAN2's w space: train with arch = \"stylegan2\" (e.g. --preset stylegan2-fashion)")))
}

/// The truncation trick in w: `w_avg + psi (w - w_avg)`; psi 1 leaves w as it is, 0 gives the
/// mean image. Trades variety for typicality.
pub fn truncate_w(style: &dyn StyleGenerator, w: &Tensor, psi: f64) -> crate::Result<Tensor> {
    let avg = style.w_avg()?.unsqueeze(0)?;
    Ok(w.broadcast_sub(&avg)?.affine(psi, 0.0)?.broadcast_add(&avg)?)
}

/// A generator seen through the truncation trick: StyleGAN2 pulls w towards its tracked mean;
/// the others scale z by `psi` (their latent mean is 0). Sampling, evaluation and the studio can
/// then use it like any generator.
pub struct Truncated<'a> {
    pub gen: &'a dyn Generator,
    pub psi: f64,
}

impl Generator for Truncated<'_> {
    fn forward(&self, z: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        match self.gen.as_style() {
            Some(s) => s.synthesis(&s.broadcast_w(&truncate_w(s, &s.mapping(z)?, self.psi)?)?),
            None => self.gen.forward(&(z * self.psi)?, labels, mode),
        }
    }

    fn latent_dim(&self) -> usize {
        self.gen.latent_dim()
    }

    fn image_shape(&self) -> ImageShape {
        self.gen.image_shape()
    }

    fn num_classes(&self) -> usize {
        self.gen.num_classes()
    }
}
