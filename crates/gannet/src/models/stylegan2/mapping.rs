//! StyleGAN's mapping network: z -> w through a stack of fully connected layers with a 100x
//! smaller learning rate (`lr_mult` 0.01), which keeps w's distribution from drifting faster than
//! the synthesis network can follow. It also tracks the running mean of w, the centre the
//! truncation trick pulls samples towards.

use crate::nn::{activation::leaky_relu_gain, pixel_norm, EqLinear, EqOptions, Init, ParamPath};
use candle_core::{Tensor, Var};

/// Decay of the running mean of w per training forward pass (the paper's 0.995).
const W_AVG_BETA: f64 = 0.995;
const LR_MULT: f64 = 0.01;

pub struct Mapping {
    layers: Vec<EqLinear>,
    w_avg: Var,
}

impl Mapping {
    pub fn new(p: &ParamPath, z_dim: usize, w_dim: usize, depth: usize) -> crate::Result<Self> {
        let layers = (0..depth)
            .map(|i| {
                EqLinear::new(&p.sub(format!("fc{i}")), if i == 0 { z_dim } else { w_dim }, w_dim, EqOptions { gain: 1.0, lr_mul: LR_MULT, bias: Some(0.0) })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self { layers, w_avg: p.buffer("w_avg", &[w_dim], Init::Const(0.0))? })
    }

    /// z [N, z_dim] -> w [N, w_dim]; with `track`, moves the running mean of w towards this
    /// batch's mean (training passes only, so sampling never changes the model).
    pub fn forward(&self, z: &Tensor, track: bool) -> crate::Result<Tensor> {
        // Normalise z's second moment: only its direction matters, not how long it came out.
        let mut x = pixel_norm(z)?;
        for l in &self.layers {
            x = leaky_relu_gain(&l.forward(&x)?)?;
        }
        if track {
            let mut batch_mean = x.detach().mean(0)?;
            if crate::parallel::is_parallel() {
                // The combined batch's mean, so every data-parallel process tracks the same w_avg.
                let mut v: Vec<f64> = batch_mean.to_dtype(candle_core::DType::F64)?.to_vec1()?;
                crate::parallel::mean_f64(&mut v)?;
                batch_mean = Tensor::new(v, x.device())?.to_dtype(x.dtype())?;
            }
            let old = self.w_avg.as_tensor();
            self.w_avg.set(&((old - &batch_mean)? * W_AVG_BETA + &batch_mean)?)?;
        }
        Ok(x)
    }

    pub fn w_avg(&self) -> Tensor {
        self.w_avg.as_tensor().detach()
    }
}
