//! Adam (Kingma & Ba), matching `torch.optim.Adam`: bias-corrected moments and L2 weight decay
//! added to the gradient. Its moments and step count can be saved and restored, so a resumed
//! run takes exactly the steps an unbroken run would have taken.

use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use std::collections::BTreeMap;

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
        Self {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

struct Slot {
    name: String,
    var: Var,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
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
                Ok(Slot {
                    name,
                    exp_avg: zeros.clone(),
                    exp_avg_sq: zeros,
                    var,
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            cfg,
            steps: 0,
        })
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

    /// Number of steps taken (the `t` of the bias correction).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update from `grads`. Parameters without a gradient keep their value and moments.
    /// Unlike PyTorch, which counts steps per parameter, the step count is shared (one `step`
    /// entry in the saved state); the two agree whenever every parameter gets a gradient each
    /// step, as every parameter of a GAN's generator or discriminator does.
    pub fn step(&mut self, grads: &GradStore) -> crate::Result<()> {
        self.steps += 1;
        let c = self.cfg;
        // f64 powers as PyTorch's `beta ** step`; no i32 overflow on very long runs.
        let t = self.steps as f64;
        let bc1 = 1.0 - c.beta1.powf(t);
        let bc2 = 1.0 - c.beta2.powf(t);
        for slot in self.slots.iter_mut() {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
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

    /// Moments by `"{param}.exp_avg"` / `"{param}.exp_avg_sq"`, and the step count as an exact
    /// f64 scalar under `"step"` (f64 holds every integer up to 2^53).
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for s in &self.slots {
            out.insert(format!("{}.exp_avg", s.name), s.exp_avg.clone());
            out.insert(format!("{}.exp_avg_sq", s.name), s.exp_avg_sq.clone());
        }
        let step =
            Tensor::new(self.steps as f64, &Device::Cpu).expect("a scalar tensor on the CPU");
        out.insert(STEP_KEY.to_string(), step);
        out
    }

    /// Restores what [`Adam::state`] saved; a missing or mis-shaped entry is an error naming it,
    /// and nothing is changed unless every entry is valid.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> crate::Result<()> {
        let steps = read_steps(state)?;
        let mut moments = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let m = moment(state, &format!("{}.exp_avg", s.name), &s.var)?;
            let v = moment(state, &format!("{}.exp_avg_sq", s.name), &s.var)?;
            moments.push((m, v));
        }
        for (s, (m, v)) in self.slots.iter_mut().zip(moments) {
            s.exp_avg = m;
            s.exp_avg_sq = v;
        }
        self.steps = steps;
        Ok(())
    }
}

fn state_err(msg: String) -> crate::Error {
    crate::Error::Msg(format!("optimiser state: {msg}"))
}

fn read_steps(state: &BTreeMap<String, Tensor>) -> crate::Result<u64> {
    let t = state
        .get(STEP_KEY)
        .ok_or_else(|| state_err(format!("missing entry '{STEP_KEY}'")))?;
    if t.elem_count() != 1 {
        return Err(state_err(format!(
            "entry '{STEP_KEY}' has shape {:?}, expected a scalar",
            t.dims()
        )));
    }
    let v = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0];
    if !(v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53)) {
        return Err(state_err(format!(
            "entry '{STEP_KEY}' is {v}, not a step count"
        )));
    }
    Ok(v as u64)
}

/// A moment tensor from `state`, checked against its parameter and moved to its device/dtype.
fn moment(state: &BTreeMap<String, Tensor>, key: &str, var: &Var) -> crate::Result<Tensor> {
    let t = state
        .get(key)
        .ok_or_else(|| state_err(format!("missing entry '{key}'")))?;
    if t.dims() != var.dims() {
        return Err(state_err(format!(
            "entry '{key}' has shape {:?}, the parameter has {:?}",
            t.dims(),
            var.dims()
        )));
    }
    // A fresh copy so later in-place use of `state` cannot alias the optimiser's moments.
    Ok(t.to_device(var.device())?.to_dtype(var.dtype())?.detach())
}
