//! Improved precision and recall (Kynkäänniemi et al. 2019).
//!
//! Each set's manifold is the union of balls around its samples, each ball's radius the
//! distance to the sample's k-th nearest neighbour in the same set (k = 3 in the paper).
//! Precision: share of generated samples inside the real manifold; recall: share of real
//! samples inside the generated manifold.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// Rows per block of the pairwise-distance computation (bounds memory to rows x N).
const BLOCK: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PrecisionRecall {
    pub precision: f64,
    pub recall: f64,
}

/// Squared Euclidean distances [a rows, b rows] via |a|^2 + |b|^2 - 2 a.b (clamped at 0).
fn sq_distances(a: &Tensor, b: &Tensor) -> Result<Vec<Vec<f64>>> {
    let an = a.sqr()?.sum_keepdim(1)?;
    let bn = b.sqr()?.sum_keepdim(1)?.t()?;
    let d = an.broadcast_add(&bn)?.sub(&(a.matmul(&b.t()?)? * 2.0)?)?;
    Ok(d.clamp(0.0, f64::INFINITY)?.to_vec2::<f64>()?)
}

/// Squared distance from each row of `x` to its k-th nearest other row.
pub fn knn_radii_sq(x: &Tensor, k: usize) -> Result<Vec<f64>> {
    let n = x.dim(0)?;
    if k == 0 || k >= n {
        return Err(Error::Msg(format!("k-NN radii need 0 < k < N, got k={k}, N={n}")));
    }
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(BLOCK) {
        let rows = x.narrow(0, start, BLOCK.min(n - start))?;
        for mut row in sq_distances(&rows, x)? {
            // Index k, not k-1: the sample itself is at distance 0 and sorts first.
            let (_, kth, _) = row.select_nth_unstable_by(k, f64::total_cmp);
            out.push(*kth);
        }
    }
    Ok(out)
}

/// Share of rows of `probe` within the radius of at least one row of `manifold`.
fn coverage(manifold: &Tensor, radii_sq: &[f64], probe: &Tensor) -> Result<f64> {
    let n = probe.dim(0)?;
    let mut inside = 0usize;
    for start in (0..n).step_by(BLOCK) {
        let rows = probe.narrow(0, start, BLOCK.min(n - start))?;
        inside += sq_distances(&rows, manifold)?.iter().filter(|d| d.iter().zip(radii_sq).any(|(di, ri)| di <= ri)).count();
    }
    Ok(inside as f64 / n as f64)
}

/// Improved precision and recall of `fake` against `real`, features [N, d], [M, d].
pub fn precision_recall(real: &Tensor, fake: &Tensor, k: usize) -> Result<PrecisionRecall> {
    if real.rank() != 2 || fake.rank() != 2 || real.dim(1)? != fake.dim(1)? {
        return Err(Error::Msg(format!("precision/recall need [N, d] and [M, d], got {:?} and {:?}", real.dims(), fake.dims())));
    }
    let real = real.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let fake = fake.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let precision = coverage(&real, &knn_radii_sq(&real, k)?, &fake)?;
    let recall = coverage(&fake, &knn_radii_sq(&fake, k)?, &real)?;
    Ok(PrecisionRecall { precision, recall })
}
