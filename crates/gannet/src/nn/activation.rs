use candle_core::Tensor;

/// The activations GANs use, built from differentiable candle ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f64),
    Tanh,
    Sigmoid,
    Identity,
}

impl Activation {
    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        Ok(match *self {
            Activation::Relu => x.relu()?,
            // max(x, a x) for 0 < a < 1; differentiable everywhere but at 0.
            Activation::LeakyRelu(a) => x.maximum(&(x * a)?)?,
            Activation::Tanh => x.tanh()?,
            // 1/(1+e^-x) written with tanh, which is stable for large |x| and has a backward.
            Activation::Sigmoid => ((x * 0.5)?.tanh()? * 0.5)?.affine(1.0, 0.5)?,
            Activation::Identity => x.clone(),
        })
    }
}
