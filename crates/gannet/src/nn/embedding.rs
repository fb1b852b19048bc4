//! Class labels as vectors: one-hot encoding and a learned embedding table.
//!
//! Labels are `u32` tensors of shape `[N]` (what the data loader yields). The embedding is a
//! one-hot matrix product rather than an index lookup: the classes are few (tens), and the
//! product is differentiable on every backend, including second-order gradients for penalties.

use super::{live, Init, ParamPath};
use candle_core::{DType, Tensor, Var};

/// `[N]` class indices to an `[N, classes]` matrix of 0/1 in `dtype`. An index `>= classes`
/// gives an all-zero row, so callers check ranges where labels come from users.
pub fn one_hot(labels: &Tensor, classes: usize, dtype: DType) -> crate::Result<Tensor> {
    let labels = labels.flatten_all()?.to_dtype(DType::U32)?;
    let ids = Tensor::arange(0u32, classes as u32, labels.device())?.unsqueeze(0)?;
    Ok(labels.unsqueeze(1)?.broadcast_eq(&ids)?.to_dtype(dtype)?)
}

/// A `[classes, dim]` table; `forward(labels)` gives the rows of the labels, `[N, dim]`.
pub struct Embedding {
    weight: Var,
    classes: usize,
}

impl Embedding {
    pub fn new(p: &ParamPath, name: &str, classes: usize, dim: usize, init: Init) -> crate::Result<Self> {
        if classes == 0 {
            return Err(crate::Error::Config("a class embedding needs at least one class".into()));
        }
        Ok(Self { weight: p.param(name, &[classes, dim], init)?, classes })
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The table, [classes, dim] (see [`live`]).
    pub fn weight(&self) -> Tensor {
        live(&self.weight)
    }

    pub fn forward(&self, labels: &Tensor) -> crate::Result<Tensor> {
        let w = self.weight();
        Ok(one_hot(labels, self.classes, w.dtype())?.matmul(&w)?)
    }
}
