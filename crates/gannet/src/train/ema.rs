//! Exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al.
//! 2019): a shadow generator whose weights trail the trained one, `ema = decay*ema +
//! (1-decay)*gen` after every generator update. It usually gives visibly cleaner samples, so
//! sample grids and `gannet sample` use it when a run has one.
//!
//! The decay ramps up as `min(decay, (1 + t) / (10 + t))` after `t` updates (as TensorFlow's
//! `ExponentialMovingAverage` with `num_updates`): early in training G changes fast, and a shadow
//! averaging over ~1/(1-decay) steps of it is a blur of different networks. Measured on the
//! default digits run (2000 steps, decay 0.999): without the ramp the shadow's digits were
//! visibly blurrier than the trained G's.
//!
//! Buffers (BatchNorm running statistics) are copied, not averaged: they describe the trained
//! generator's activations, and the shadow's are close to those.

use crate::models::{self, Generator, ImageShape, ModelConfig};
use crate::nn::ParamStore;
use candle_core::{Device, Tensor};
use std::collections::{BTreeMap, BTreeSet};

pub struct Ema {
    pub gen: Box<dyn Generator>,
    pub params: ParamStore,
    decay: f64,
}

impl Ema {
    /// A shadow generator initialised to a copy of `source`'s current weights (`classes`: the
    /// dataset's class count, used by conditional models).
    pub fn new(cfg: &ModelConfig, shape: ImageShape, classes: usize, seed: u64, device: &Device, source: &ParamStore, decay: f64) -> crate::Result<Self> {
        let (gen, params) = models::build_generator_with_classes(cfg, shape, classes, seed, device)?;
        params.load(&source.tensors())?;
        Ok(Self { gen, params, decay })
    }

    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// The decay used for update number `t` (counting from 0).
    pub fn decay_at(&self, t: u64) -> f64 {
        self.decay.min((1.0 + t as f64) / (10.0 + t as f64))
    }

    /// Update number `t`: `ema = d*ema + (1-d)*source` with `d = decay_at(t)` for trainable
    /// tensors; buffers are copied.
    pub fn update(&self, source: &ParamStore, t: u64) -> crate::Result<()> {
        let decay = self.decay_at(t);
        let src = source.tensors();
        let trainable: BTreeSet<String> = self.params.trainable().into_iter().map(|(n, _)| n).collect();
        for (name, var) in self.params.all() {
            let s = src.get(&name).ok_or_else(|| crate::Error::Msg(format!("EMA: generator has no tensor '{name}'")))?.detach();
            let new = if trainable.contains(&name) { ((var.as_tensor().detach() * decay)? + (s * (1.0 - decay))?)? } else { s };
            var.set(&new)?;
        }
        Ok(())
    }

    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.params.tensors()
    }
}
