//! Pixelwise feature-vector normalisation (Karras et al. 2018, 4.2): every pixel's feature vector
//! is scaled to unit root mean square over the channels, `x / sqrt(mean_c(x^2) + eps)`. ProGAN's
//! generator uses it after every convolution instead of BatchNorm, to stop the magnitudes in G
//! and D escalating against each other; StyleGAN normalises its latents with it.

use candle_core::Tensor;

/// Epsilon inside the square root, as in the paper.
pub const PIXEL_NORM_EPS: f64 = 1e-8;

/// x [N, C] or [N, C, H, W] -> the same shape, normalised over dimension 1.
pub fn pixel_norm(x: &Tensor) -> crate::Result<Tensor> {
    if x.rank() < 2 {
        return Err(crate::Error::Msg(format!("pixel_norm needs [N, C, ...], got shape {:?}", x.dims())));
    }
    let rms = (x.sqr()?.mean_keepdim(1)? + PIXEL_NORM_EPS)?.sqrt()?;
    Ok(x.broadcast_div(&rms)?)
}
