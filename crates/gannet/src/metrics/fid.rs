//! Frechet Inception Distance: Gaussian statistics of features and the distance between two.
//!
//! FID = ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2), everything in f64. Statistics of a
//! real data set are the expensive part, so they can be saved and reloaded ([`FeatureStats::save`],
//! keyed by [`FeatureStats::cache_path`]).

use super::linalg::trace_sqrt_product;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Mean and (unbiased, like `np.cov`) covariance of N feature vectors of dimension d.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    pub mean: Vec<f64>,
    /// d x d, row-major.
    pub cov: Vec<f64>,
    pub n: usize,
}

impl FeatureStats {
    /// Statistics of features [N, d] (N >= 2).
    pub fn from_features(features: &Tensor) -> Result<Self> {
        let (n, _d) = features.dims2()?;
        if n < 2 {
            return Err(Error::Msg(format!("feature statistics need at least 2 samples, got {n}")));
        }
        let x = features.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
        let mean_t = x.mean_keepdim(0)?;
        let centred = x.broadcast_sub(&mean_t)?;
        let cov = (centred.t()?.matmul(&centred)? / (n as f64 - 1.0))?;
        Ok(Self { mean: mean_t.flatten_all()?.to_vec1()?, cov: cov.flatten_all()?.to_vec1()?, n })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Writes mean, cov and n to a safetensors file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let d = self.dim();
        let ctx = |e: candle_core::Error| Error::checkpoint(path, format!("saving feature statistics: {e}"));
        let mut m = HashMap::new();
        m.insert("mean".to_string(), Tensor::from_slice(&self.mean, d, &Device::Cpu).map_err(ctx)?);
        m.insert("cov".to_string(), Tensor::from_slice(&self.cov, (d, d), &Device::Cpu).map_err(ctx)?);
        m.insert("n".to_string(), Tensor::new(&[self.n as i64], &Device::Cpu).map_err(ctx)?);
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        // Write then rename, so an interrupted run never leaves a truncated cache behind.
        let tmp = path.with_extension("safetensors.tmp");
        candle_core::safetensors::save(&m, &tmp).map_err(ctx)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming {} to {}", tmp.display(), path.display()), e))
    }

    /// Reads statistics written by [`FeatureStats::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let ctx = |e: candle_core::Error| Error::checkpoint(path, format!("loading feature statistics: {e}"));
        let m = candle_core::safetensors::load(path, &Device::Cpu).map_err(ctx)?;
        let get = |k: &str| m.get(k).ok_or_else(|| Error::checkpoint(path, format!("feature statistics lack `{k}`")));
        let mean: Vec<f64> = get("mean")?.to_dtype(DType::F64).and_then(|t| t.to_vec1()).map_err(ctx)?;
        let cov: Vec<f64> = get("cov")?.to_dtype(DType::F64).and_then(|t| t.flatten_all()?.to_vec1()).map_err(ctx)?;
        let n = get("n")?.to_dtype(DType::I64).and_then(|t| t.to_vec1::<i64>()).map_err(ctx)?;
        if cov.len() != mean.len() * mean.len() || n.len() != 1 {
            return Err(Error::checkpoint(path, "feature statistics have inconsistent shapes"));
        }
        Ok(Self { mean, cov, n: n[0] as usize })
    }

    /// Cache file for the statistics of the first `count` images of `dataset`, under the network
    /// with weights hash `model_hash` ([`super::FidInception::weights_hash`]). The name keeps a
    /// readable stem of the data set and a hash of its full path.
    pub fn cache_path(cache_dir: impl AsRef<Path>, dataset: impl AsRef<Path>, count: usize, model_hash: u32) -> PathBuf {
        cache_file(cache_dir, "fidstats", dataset, count, model_hash)
    }

    /// Loads `path` if it exists; otherwise computes with `compute` and saves to `path`.
    pub fn load_or_compute(path: impl AsRef<Path>, compute: impl FnOnce() -> Result<Self>) -> Result<Self> {
        let path = path.as_ref();
        if path.exists() {
            return Self::load(path);
        }
        let s = compute()?;
        s.save(path)?;
        Ok(s)
    }
}

/// Cache file `KIND-STEM-PATHHASH-nCOUNT-mMODELHASH.safetensors` for something computed from the
/// first `count` images of `dataset` with a network whose weights hash to `model_hash`; `kind`
/// names what is cached (`fidstats` for [`FeatureStats`]).
pub fn cache_file(cache_dir: impl AsRef<Path>, kind: &str, dataset: impl AsRef<Path>, count: usize, model_hash: u32) -> PathBuf {
    let dataset = dataset.as_ref();
    let full = std::fs::canonicalize(dataset).unwrap_or_else(|_| dataset.to_path_buf());
    let stem: String =
        full.file_name().map(|s| s.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()).unwrap_or_default();
    let key = crc32fast::hash(full.to_string_lossy().as_bytes());
    cache_dir.as_ref().join(format!("{kind}-{stem}-{key:08x}-n{count}-m{model_hash:08x}.safetensors"))
}

/// Frechet distance between two Gaussians given by their statistics.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    let d = a.dim();
    if b.dim() != d || a.cov.len() != d * d || b.cov.len() != d * d {
        return Err(Error::Msg(format!("FID of statistics of different dimensions ({d} vs {})", b.dim())));
    }
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y) * (x - y)).sum();
    let trace = |c: &[f64]| (0..d).map(|i| c[i * d + i]).sum::<f64>();
    let cross = trace_sqrt_product(&a.cov, &b.cov, d)?;
    Ok(mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * cross)
}

/// FID between two feature sets [N, d] and [M, d].
pub fn fid_from_features(a: &Tensor, b: &Tensor) -> Result<f64> {
    frechet_distance(&FeatureStats::from_features(a)?, &FeatureStats::from_features(b)?)
}
