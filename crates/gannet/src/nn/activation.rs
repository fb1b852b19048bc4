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
            Activation::Relu => crate::ops::relu(x)?,
            Activation::LeakyRelu(a) => crate::ops::leaky_relu(x, a)?,
            Activation::Tanh => x.tanh()?,
            // 1/(1+e^-x) written with tanh, which is stable for large |x| and has a backward.
            Activation::Sigmoid => ((x * 0.5)?.tanh()? * 0.5)?.affine(1.0, 0.5)?,
            Activation::Identity => x.clone(),
        })
    }
}

/// Leaky ReLU (slope 0.2) times sqrt(2): StyleGAN's activation with its gain applied after it
/// (its equalised layers use gain 1), which keeps activations' magnitude from layer to layer.
pub fn leaky_relu_gain(x: &Tensor) -> crate::Result<Tensor> {
    Ok((Activation::LeakyRelu(0.2).forward(x)? * std::f64::consts::SQRT_2)?)
}
