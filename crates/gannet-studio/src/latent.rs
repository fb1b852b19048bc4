//! Latent vectors: the ones `gannet sample --seed` uses, and spherical interpolation.
//! (Truncation is the library's `gannet::edit::Truncated`: w towards its mean for StyleGAN2,
//! z scaled for the others.)

use gannet::candle_core::{Device, Tensor};
use gannet::metrics::evaluate;

/// Sample `index` of a batch drawn with `seed`: row `index` of the latents `gannet sample --seed`
/// feeds G (the row does not depend on the batch size).
pub fn of_sample(seed: u64, index: usize, latent_dim: usize) -> gannet::Result<Vec<f32>> {
    let z = evaluate::sample_latents(seed, index + 1, latent_dim, &Device::Cpu)?;
    Ok(z.get(index)?.to_vec1::<f32>()?)
}

/// Spherical interpolation from `a` (t = 0) to `b` (t = 1). Gaussian latents live near a sphere,
/// and a straight line between two of them passes through the low-norm middle that G rarely saw;
/// slerp keeps the norm. The ends are exactly `a` and `b`; near-parallel vectors fall back to a
/// straight line.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let (t, dot, na, nb) = (t as f64, dot(a, b), dot(a, a).sqrt(), dot(b, b).sqrt());
    let cos = if na > 0.0 && nb > 0.0 { (dot / (na * nb)).clamp(-1.0, 1.0) } else { 1.0 };
    let omega = cos.acos();
    let (wa, wb) = if omega.sin().abs() < 1e-6 { (1.0 - t, t) } else { (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin()) };
    a.iter().zip(b).map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Rows of equal length as a [rows, dim] tensor.
pub fn to_tensor(rows: &[Vec<f32>], device: &Device) -> gannet::Result<Tensor> {
    let dim = rows.first().map_or(0, |r| r.len());
    Ok(Tensor::from_vec(rows.concat(), (rows.len(), dim), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slerp_ends_are_exact_and_the_middle_keeps_the_norm() {
        let a = of_sample(1, 3, 64).unwrap();
        let b = of_sample(2, 0, 64).unwrap();
        assert_eq!(slerp(&a, &b, 0.0), a);
        assert_eq!(slerp(&a, &b, 1.0), b);
        let norm = |v: &[f32]| dot(v, v).sqrt();
        let mid = norm(&slerp(&a, &b, 0.5));
        let (na, nb) = (norm(&a), norm(&b));
        assert!(mid > 0.9 * na.min(nb) && mid < 1.1 * na.max(nb), "{mid} vs {na}, {nb}");
        assert_eq!(slerp(&a, &a, 0.3).len(), 64);
    }

    #[test]
    fn a_sample_latent_does_not_depend_on_the_batch_size() {
        let batch = evaluate::sample_latents(7, 10, 16, &Device::Cpu).unwrap();
        assert_eq!(batch.get(4).unwrap().to_vec1::<f32>().unwrap(), of_sample(7, 4, 16).unwrap());
    }
}
