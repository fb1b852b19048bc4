//! Scoring translations: L1 / PSNR / SSIM of outputs against known targets (paired tasks, with
//! the identity and bicubic baselines) and FID against the target domain (unpaired tasks).

use crate::metrics::{fid::fid_from_features, l1_per_image, psnr_per_image, ssim_per_image, to_unit_range as to01, FidInception};
use crate::models::Translator;
use candle_core::Tensor;
use serde::Serialize;

/// Means over `n` images, on the [0, 1] scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedScores {
    pub n: usize,
    pub l1: f64,
    pub psnr: f64,
    pub ssim: f64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Mean L1, PSNR and SSIM of `outputs` against `targets`, both [N, C, H, W] in [-1, 1]
/// (outputs are clamped to the range first, as a written image would be).
pub fn paired_scores(outputs: &Tensor, targets: &Tensor) -> crate::Result<PairedScores> {
    let (x, y) = (to01(outputs)?, to01(targets)?);
    Ok(PairedScores { n: x.dim(0)?, l1: mean(&l1_per_image(&x, &y)?), psnr: mean(&psnr_per_image(&x, &y)?), ssim: mean(&ssim_per_image(&x, &y)?) })
}

/// `g` applied to `inputs` in chunks of 64 (memory), detached.
pub fn translate_all(g: &dyn Translator, inputs: &Tensor) -> crate::Result<Tensor> {
    const CHUNK: usize = 64;
    let n = inputs.dim(0)?;
    let mut out = Vec::with_capacity(n.div_ceil(CHUNK));
    for start in (0..n).step_by(CHUNK) {
        out.push(g.forward(&inputs.narrow(0, start, CHUNK.min(n - start))?)?.detach());
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// FID between two sets of images in [-1, 1], with pytorch-fid's Inception network.
pub fn fid(net: &FidInception, x: &Tensor, y: &Tensor) -> crate::Result<f64> {
    fid_from_features(&net.features(&to01(x)?)?, &net.features(&to01(y)?)?)
}
