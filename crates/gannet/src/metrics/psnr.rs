//! Peak signal-to-noise ratio, per image: `10 log10(1 / MSE)` for images in [0, 1] (peak 1).
//! Identical images (MSE 0) would be infinite; they score [`PSNR_CAP`] so that a mean over images
//! stays finite.

use super::l1::image_rows;
use crate::Result;
use candle_core::Tensor;

/// PSNR given to an image that matches its target exactly.
pub const PSNR_CAP: f64 = 100.0;

/// PSNR in dB from a mean squared error on the [0, 1] scale.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 0.0 {
        return PSNR_CAP;
    }
    (10.0 * (1.0 / mse).log10()).min(PSNR_CAP)
}

/// PSNR of each image of `x` against the same image of `y`, both [N, C, H, W] in [0, 1].
pub fn psnr_per_image(x: &Tensor, y: &Tensor) -> Result<Vec<f64>> {
    let (a, b, n) = image_rows(x, y, "PSNR")?;
    let per = a.len() / n.max(1);
    Ok((0..n)
        .map(|i| {
            let r = i * per..(i + 1) * per;
            let mse = a[r.clone()].iter().zip(&b[r]).map(|(p, q)| (p - q) * (p - q)).sum::<f64>() / per as f64;
            psnr_from_mse(mse)
        })
        .collect())
}
