//! Structural similarity (Wang et al. 2004), per image, as the paper's reference code computes
//! it: local means, variances and covariance under an 11x11 Gaussian window (sigma 1.5), only
//! where the window fits inside the image ("valid"), C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with
//! L = 1 for images in [0, 1]; the SSIM map is averaged over positions and channels.

use super::l1::image_rows;
use crate::{Error, Result};
use candle_core::Tensor;

const WINDOW: usize = 11;
const SIGMA: f64 = 1.5;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// The normalised 1-D Gaussian; the 2-D window is its outer product.
fn gaussian() -> [f64; WINDOW] {
    let mut g = [0.0; WINDOW];
    let mid = (WINDOW / 2) as f64;
    for (i, v) in g.iter_mut().enumerate() {
        *v = (-((i as f64 - mid).powi(2)) / (2.0 * SIGMA * SIGMA)).exp();
    }
    let s: f64 = g.iter().sum();
    g.map(|v| v / s)
}

/// Valid separable filtering of one h x w plane with the window: (h-10) x (w-10).
fn filter(plane: &[f64], h: usize, w: usize, g: &[f64; WINDOW]) -> Vec<f64> {
    let (ho, wo) = (h + 1 - WINDOW, w + 1 - WINDOW);
    let mut rows = vec![0.0; h * wo];
    for y in 0..h {
        for x in 0..wo {
            rows[y * wo + x] = (0..WINDOW).map(|k| g[k] * plane[y * w + x + k]).sum();
        }
    }
    let mut out = vec![0.0; ho * wo];
    for y in 0..ho {
        for x in 0..wo {
            out[y * wo + x] = (0..WINDOW).map(|k| g[k] * rows[(y + k) * wo + x]).sum();
        }
    }
    out
}

/// Mean SSIM of one channel plane.
fn plane_ssim(a: &[f64], b: &[f64], h: usize, w: usize, g: &[f64; WINDOW]) -> f64 {
    let prod = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(x, y)| x * y).collect::<Vec<f64>>();
    let (mu_a, mu_b) = (filter(a, h, w, g), filter(b, h, w, g));
    let (aa, bb, ab) = (filter(&prod(a, a), h, w, g), filter(&prod(b, b), h, w, g), filter(&prod(a, b), h, w, g));
    let n = mu_a.len();
    (0..n)
        .map(|i| {
            let (ma, mb) = (mu_a[i], mu_b[i]);
            let (va, vb, cov) = (aa[i] - ma * ma, bb[i] - mb * mb, ab[i] - ma * mb);
            ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2))
        })
        .sum::<f64>()
        / n as f64
}

/// SSIM of each image of `x` against the same image of `y`, both [N, C, H, W] in [0, 1] with
/// H, W >= 11.
pub fn ssim_per_image(x: &Tensor, y: &Tensor) -> Result<Vec<f64>> {
    let (a, b, n) = image_rows(x, y, "SSIM")?;
    let (_, c, h, w) = x.dims4()?;
    if h < WINDOW || w < WINDOW {
        return Err(Error::Msg(format!("SSIM needs images of at least {WINDOW}x{WINDOW}, got {h}x{w}")));
    }
    let g = gaussian();
    let plane = h * w;
    Ok((0..n)
        .map(|i| {
            (0..c)
                .map(|ch| {
                    let r = (i * c + ch) * plane..(i * c + ch + 1) * plane;
                    plane_ssim(&a[r.clone()], &b[r], h, w, &g)
                })
                .sum::<f64>()
                / c as f64
        })
        .collect())
}
