//! Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 between feature sets with
//! the kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets, as clean-fid and
//! torch-fidelity compute it (defaults: 100 subsets of 1000, capped at the smaller set's size).

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::{rngs::StdRng, SeedableRng};

#[derive(Debug, Clone, Copy)]
pub struct KidOptions {
    pub subsets: usize,
    pub subset_size: usize,
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self { subsets: 100, subset_size: 1000, seed: 0 }
    }
}

/// Mean and standard deviation of the per-subset MMD^2 estimates.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KidResult {
    pub mean: f64,
    pub std: f64,
}

/// (a.b^T / d + 1)^3 for row sets a [m, d], b [m', d].
fn poly_kernel(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = a.dim(1)? as f64;
    Ok(((a.matmul(&b.t()?)? / d)? + 1.0)?.powf(3.0)?)
}

/// Sum of the off-diagonal entries of a square matrix.
fn off_diagonal_sum(k: &Tensor) -> Result<f64> {
    let total = k.sum_all()?.to_scalar::<f64>()?;
    let n = k.dim(0)?;
    let diag: f64 = k.flatten_all()?.to_vec1::<f64>()?.iter().step_by(n + 1).sum();
    Ok(total - diag)
}

/// Unbiased MMD^2 of two equally sized samples x, y [m, d].
pub fn mmd2_unbiased(x: &Tensor, y: &Tensor) -> Result<f64> {
    let m = x.dim(0)? as f64;
    let kxx = off_diagonal_sum(&poly_kernel(x, x)?)?;
    let kyy = off_diagonal_sum(&poly_kernel(y, y)?)?;
    let kxy = poly_kernel(x, y)?.sum_all()?.to_scalar::<f64>()?;
    Ok((kxx + kyy) / (m * (m - 1.0)) - 2.0 * kxy / (m * m))
}

/// KID between real and generated features [N, d], [M, d].
pub fn kid(real: &Tensor, fake: &Tensor, opts: KidOptions) -> Result<KidResult> {
    let (n, d) = real.dims2()?;
    let (m, d2) = fake.dims2()?;
    if d != d2 || n < 2 || m < 2 || opts.subsets == 0 {
        return Err(Error::Msg(format!("KID needs [N>=2, d] feature sets and >= 1 subset, got {:?} and {:?}", real.dims(), fake.dims())));
    }
    let size = opts.subset_size.min(n).min(m).max(2);
    let real = real.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let fake = fake.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut vals = Vec::with_capacity(opts.subsets);
    for _ in 0..opts.subsets {
        let pick = |rng: &mut StdRng, total: usize| -> Result<Tensor> {
            let idx: Vec<u32> = rand::seq::index::sample(rng, total, size).into_iter().map(|i| i as u32).collect();
            Ok(Tensor::from_vec(idx, size, &Device::Cpu)?)
        };
        let x = real.index_select(&pick(&mut rng, n)?, 0)?;
        let y = fake.index_select(&pick(&mut rng, m)?, 0)?;
        vals.push(mmd2_unbiased(&x, &y)?);
    }
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / vals.len() as f64;
    Ok(KidResult { mean, std: var.sqrt() })
}
