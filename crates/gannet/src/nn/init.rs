//! Weight initialisers, drawn from the store's seeded RNG so a seed fixes the whole model.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Const(f32),
    /// Normal(mean, std): DCGAN uses N(0, 0.02) for convs and N(1, 0.02) for BatchNorm scales.
    Normal {
        mean: f32,
        std: f32,
    },
    Uniform {
        lo: f32,
        hi: f32,
    },
    /// PyTorch's default for linear/conv weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    FanInUniform {
        fan_in: usize,
    },
}

impl Init {
    /// DCGAN paper initialisation for conv and linear weights.
    pub const DCGAN: Init = Init::Normal { mean: 0.0, std: 0.02 };
    /// DCGAN initialisation of BatchNorm scales.
    pub const DCGAN_BN: Init = Init::Normal { mean: 1.0, std: 0.02 };

    pub fn sample(&self, rng: &mut StdRng, shape: &[usize], device: &Device) -> crate::Result<Tensor> {
        match *self {
            Init::Const(c) => Ok(Tensor::full(c, shape, device)?),
            Init::Normal { mean, std } => Ok(((crate::rng::randn(rng, shape, device)? * std as f64)? + mean as f64)?),
            Init::Uniform { lo, hi } => crate::rng::rand_uniform(rng, shape, lo, hi, device),
            Init::FanInUniform { fan_in } => {
                let b = 1.0 / (fan_in.max(1) as f32).sqrt();
                crate::rng::rand_uniform(rng, shape, -b, b, device)
            }
        }
    }
}
