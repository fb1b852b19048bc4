//! Adam (Kingma & Ba), matching `torch.optim.Adam`: bias-corrected moments and L2 weight decay
//! added to the gradient. Its moments and step counts can be saved and restored, so a resumed
//! run takes exactly the steps an unbroken run would have taken.
//!
//! As in PyTorch, every parameter counts its own steps (the `t` of its bias correction): a
//! parameter that gets no gradient in an update (a Progressive GAN layer before its stage fades
//! in) keeps its count, so its first real update is bias-corrected like a fresh Adam's. With one
//! shared count such a layer would start at t = 5000 with zero moments, and its first update would
//! be about `lr / sqrt(1 - beta2)` per weight: 10x the learning rate for beta2 = 0.99.

use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use std::collections::BTreeMap;

/// In a config file every field is optional (`[optim.disc] lr = 4e-4` keeps the other defaults)
/// and unknown fields are errors.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    /// The DCGAN paper's settings: lr 2e-4 and beta1 0.5 (0.9 made training oscillate).
    fn default() -> Self {
        Self { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamConfig {
    /// Rejects settings Adam cannot run with, naming `optim.{name}.*`: the betas are decay
    /// rates in [0, 1) (1 or more never forgets, and the bias correction divides by zero),
    /// eps is a small positive guard against dividing by zero.
    pub fn validate(&self, name: &str) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("optim.{name}.lr must be a positive number, got {}", self.lr));
        }
        for (key, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(format!("optim.{name}.{key} must be in [0, 1), got {v} (usual: beta1 0.5 or 0, beta2 0.999 or 0.99)"));
            }
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return bad(format!("optim.{name}.eps must be a small positive number (e.g. 1e-8), got {}", self.eps));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("optim.{name}.weight_decay must be 0 or positive, got {}", self.weight_decay));
        }
        Ok(())
    }
}

struct Slot {
    name: String,
    var: Var,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// Updates this parameter got a gradient in.
    steps: u64,
}

pub struct Adam {
    slots: Vec<Slot>,
    cfg: AdamConfig,
    steps: u64,
}

/// Name of the step counter in [`Adam::state`].
const STEP_KEY: &str = "step";

impl Adam {
    pub fn new(params: Vec<(String, Var)>, cfg: AdamConfig) -> crate::Result<Self> {
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Slot { name, exp_avg: zeros.clone(), exp_avg_sq: zeros, var, steps: 0 })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self { slots, cfg, steps: 0 })
    }

    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    pub fn lr(&self) -> f64 {
        self.cfg.lr
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// Number of updates taken (calls to [`Adam::step`], whichever parameters got gradients).
    /// The parameters this optimiser updates.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.slots.iter().map(|s| &s.var)
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The step count of parameter `name` (the `t` of its bias correction), if Adam holds it.
    pub fn param_steps(&self, name: &str) -> Option<u64> {
        self.slots.iter().find(|s| s.name == name).map(|s| s.steps)
    }

    /// One update from `grads`. Parameters without a gradient keep their value, moments and step
    /// count.
    pub fn step(&mut self, grads: &GradStore) -> crate::Result<()> {
        self.steps += 1;
        let c = self.cfg;
        for slot in self.slots.iter_mut() {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            slot.steps += 1;
            // f64 powers as PyTorch's `beta ** step`; no i32 overflow on very long runs.
            let t = slot.steps as f64;
            let bc1 = 1.0 - c.beta1.powf(t);
            let bc2 = 1.0 - c.beta2.powf(t);
            // Detached copies: the update itself must not grow the autodiff graph.
            let p = slot.var.as_tensor().detach();
            let mut g = g.detach();
            if c.weight_decay != 0.0 {
                g = (g + (&p * c.weight_decay)?)?;
            }
            slot.exp_avg = ((&slot.exp_avg * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            slot.exp_avg_sq = ((&slot.exp_avg_sq * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            // Same order of operations as PyTorch: denom = sqrt(v)/sqrt(bc2) + eps.
            let denom = ((slot.exp_avg_sq.sqrt()? / bc2.sqrt())? + c.eps)?;
            let update = ((&slot.exp_avg / &denom)? * (c.lr / bc1))?;
            slot.var.set(&(p - update)?)?;
        }
        Ok(())
    }

    /// Moments by `"{param}.exp_avg"` / `"{param}.exp_avg_sq"`, each parameter's step count
    /// under `"{param}.step"` and the number of updates under `"step"`, counts as exact f64
    /// scalars (f64 holds every integer up to 2^53).
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for s in &self.slots {
            out.insert(format!("{}.exp_avg", s.name), s.exp_avg.clone());
            out.insert(format!("{}.exp_avg_sq", s.name), s.exp_avg_sq.clone());
            out.insert(format!("{}.{STEP_KEY}", s.name), count_tensor(s.steps));
        }
        out.insert(STEP_KEY.to_string(), count_tensor(self.steps));
        out
    }

    /// Restores what [`Adam::state`] saved; a missing or mis-shaped entry is an error naming it,
    /// and nothing is changed unless every entry is valid. State saved before step counts were
    /// per parameter (no `"{param}.step"` entries) gives every parameter the global count, which
    /// is what that version used for all of them.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> crate::Result<()> {
        let steps = read_count(state, STEP_KEY)?;
        let mut loaded = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let m = moment(state, &format!("{}.exp_avg", s.name), &s.var)?;
            let v = moment(state, &format!("{}.exp_avg_sq", s.name), &s.var)?;
            let key = format!("{}.{STEP_KEY}", s.name);
            let t = if state.contains_key(&key) { read_count(state, &key)? } else { steps };
            loaded.push((m, v, t));
        }
        for (s, (m, v, t)) in self.slots.iter_mut().zip(loaded) {
            s.exp_avg = m;
            s.exp_avg_sq = v;
            s.steps = t;
        }
        self.steps = steps;
        Ok(())
    }
}

fn state_err(msg: String) -> crate::Error {
    crate::Error::Msg(format!("optimiser state: {msg}"))
}

/// A step count as a saved scalar.
fn count_tensor(n: u64) -> Tensor {
    Tensor::new(n as f64, &Device::Cpu).expect("a scalar tensor on the CPU")
}

/// The step count saved under `key`.
fn read_count(state: &BTreeMap<String, Tensor>, key: &str) -> crate::Result<u64> {
    let t = state.get(key).ok_or_else(|| state_err(format!("missing entry '{key}'")))?;
    if t.elem_count() != 1 {
        return Err(state_err(format!("entry '{key}' has shape {:?}, expected a scalar", t.dims())));
    }
    let v = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0];
    if !(v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53)) {
        return Err(state_err(format!("entry '{key}' is {v}, not a step count")));
    }
    Ok(v as u64)
}

/// A moment tensor from `state`, checked against its parameter and moved to its device/dtype.
fn moment(state: &BTreeMap<String, Tensor>, key: &str, var: &Var) -> crate::Result<Tensor> {
    let t = state.get(key).ok_or_else(|| state_err(format!("missing entry '{key}'")))?;
    if t.dims() != var.dims() {
        return Err(state_err(format!("entry '{key}' has shape {:?}, the parameter has {:?}", t.dims(), var.dims())));
    }
    // A fresh copy so later in-place use of `state` cannot alias the optimiser's moments.
    Ok(t.to_device(var.device())?.to_dtype(var.dtype())?.detach())
}
