use super::{live, Init, ParamPath};
use candle_core::{Tensor, Var};

/// y = x W^T + b, with W of shape [out, in].
pub struct Linear {
    weight: Var,
    bias: Option<Var>,
}

impl Linear {
    pub fn new(p: &ParamPath, in_dim: usize, out_dim: usize, init: Init, bias: bool) -> crate::Result<Self> {
        let weight = p.param("weight", &[out_dim, in_dim], init)?;
        let bias = if bias { Some(p.param("bias", &[out_dim], Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias })
    }

    /// The weight, [out, in] (see [`live`]).
    pub fn weight(&self) -> Tensor {
        live(&self.weight)
    }

    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        self.forward_with(x, &self.weight())
    }

    /// The layer with `weight` [out, in] in place of the stored one (e.g. spectrally normalised).
    pub fn forward_with(&self, x: &Tensor, weight: &Tensor) -> crate::Result<Tensor> {
        let y = crate::ops::matmul(x, &weight.t()?)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&live(b))?,
            None => y,
        })
    }
}
