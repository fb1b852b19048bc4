//! Class-conditional batch normalisation (de Vries et al. 2017; Miyato & Koyama 2018's
//! generator): a [`BatchNorm`] followed by a per-class scale and shift,
//! `y = bn(x) * (1 + gain[label]) + bias[label]`.
//!
//! The class tables start at zero, so a conditional network begins as its unconditional twin and
//! learns how each class departs from the shared affine transform. With no classes it is exactly
//! a [`BatchNorm`] (same parameter names), so unconditional checkpoints are unchanged.

use super::{BatchNorm, Embedding, Init, Mode, ParamPath};
use crate::ops;
use candle_core::Tensor;

pub struct ClassBatchNorm {
    bn: BatchNorm,
    /// (gain, bias) tables of shape [classes, channels], when conditional.
    class: Option<(Embedding, Embedding)>,
}

impl ClassBatchNorm {
    /// `classes = 0`: a plain BatchNorm.
    pub fn new(p: &ParamPath, channels: usize, weight_init: Init, classes: usize) -> crate::Result<Self> {
        let bn = BatchNorm::new(p, channels, weight_init)?;
        let class = if classes > 0 {
            Some((Embedding::new(p, "class_gain", classes, channels, Init::Const(0.0))?, Embedding::new(p, "class_bias", classes, channels, Init::Const(0.0))?))
        } else {
            None
        };
        Ok(Self { bn, class })
    }

    pub fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> crate::Result<Tensor> {
        self.forward_act(x, labels, mode, None)
    }

    /// [`ClassBatchNorm::forward`] followed by a (leaky) ReLU of slope `relu_slope`; fused into
    /// the normalisation when there are no classes (see [`BatchNorm::forward_act`]).
    pub fn forward_act(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode, relu_slope: Option<f64>) -> crate::Result<Tensor> {
        let Some((gain, bias)) = &self.class else { return self.bn.forward_act(x, mode, relu_slope) };
        let y = self.bn.forward(x, mode)?;
        let labels = labels.ok_or_else(|| crate::Error::Msg("a class-conditional generator needs a label for every latent".into()))?;
        let g = (gain.forward(labels)? + 1.0)?;
        let y = ops::per_channel::affine(&y, Some(&g), Some(&bias.forward(labels)?))?;
        match relu_slope {
            Some(slope) => ops::leaky_relu(&y, slope),
            None => Ok(y),
        }
    }
}
