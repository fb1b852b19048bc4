//! Deterministic random streams.
//!
//! Every random draw in a run comes from a stream named by (run seed, purpose, step). A resumed
//! run therefore draws exactly what the unbroken run drew, without saving any RNG state.

use candle_core::{Device, Tensor};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// What a stream is used for; each purpose gets independent numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Init = 1,
    Shuffle = 2,
    Latent = 3,
    FixedLatent = 4,
    Sample = 5,
    Augment = 6,
    Penalty = 7,
    /// CycleGAN's history pool of generated images (which to keep, which to return).
    Pool = 8,
    /// Per-step draws inside a network: StyleGAN2's style mixing, layer noise, path-length batch.
    Network = 9,
}

/// Mixes seed, purpose and index into one 64-bit seed (splitmix64 finaliser).
pub fn mix(seed: u64, stream: Stream, index: u64) -> u64 {
    let mut z = seed.wrapping_add((stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn rng(seed: u64, stream: Stream, index: u64) -> StdRng {
    StdRng::seed_from_u64(mix(seed, stream, index))
}

/// Standard normal samples as an f32 tensor of the given shape.
/// Normal draws of `shape` for this data-parallel process: drawn for the combined batch
/// (dimension 0 times the number of processes) and sliced, so each process draws what the
/// one-process run draws for the same images, and all leave `rng` in the same state.
pub fn randn_shard(rng: &mut StdRng, shape: &[usize], device: &Device) -> crate::Result<Tensor> {
    let shard = crate::parallel::Shard::of_local(shape[0]);
    if shard.global == shape[0] {
        return randn(rng, shape, device);
    }
    let mut global = shape.to_vec();
    global[0] = shard.global;
    shard.narrow(&randn(rng, &global, device)?)
}

pub fn randn(rng: &mut StdRng, shape: &[usize], device: &Device) -> crate::Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    Ok(Tensor::from_vec(v, shape, device)?)
}

/// Uniform samples in [lo, hi) as an f32 tensor.
pub fn rand_uniform(rng: &mut StdRng, shape: &[usize], lo: f32, hi: f32, device: &Device) -> crate::Result<Tensor> {
    use rand::Rng;
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Ok(Tensor::from_vec(v, shape, device)?)
}

/// Standard normal samples truncated to `[-threshold, threshold]`, as an f32 tensor: every draw
/// with `|z| > threshold` is thrown away and drawn again (rejection sampling), so the values
/// follow the normal density restricted to the interval, and the same `rng` state gives the same
/// tensor. This is BigGAN's truncation trick (Brock et al. 2019): smaller thresholds trade
/// variety for fidelity. Rejection costs about `1 / P(|z| <= threshold)` draws a value, e.g. 1.5
/// at 1.0 and 13 at 0.1; thresholds below 1e-3 (some 1250 draws a value) are refused, as is any
/// threshold that is not a positive finite number.
pub fn randn_truncated(rng: &mut StdRng, shape: &[usize], threshold: f32, device: &Device) -> crate::Result<Tensor> {
    if !(threshold.is_finite() && threshold >= 1e-3) {
        return Err(crate::Error::Config(format!(
            "the truncation threshold must be a finite number of at least 0.001 (1.0 and 0.5 are usual), got {threshold}"
        )));
    }
    let n: usize = shape.iter().product();
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let z: f32 = StandardNormal.sample(rng);
        if z.abs() <= threshold {
            v.push(z);
        }
    }
    Ok(Tensor::from_vec(v, shape, device)?)
}
