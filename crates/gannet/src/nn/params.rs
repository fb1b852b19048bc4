//! The parameter store: every trainable weight and every buffer (e.g. BatchNorm running stats)
//! of a model, by dotted name, created with a seeded initialiser.
//!
//! Models take a [`ParamPath`] and ask it for their tensors; the store then hands the trainable
//! ones to the optimiser and all of them to the checkpoint writer.

use super::init::Init;
use crate::rng::{self, Stream};
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

thread_local! {
    static FROZEN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the layers' parameters read as constants ([`live`] detaches them): gradients
/// still flow through the layers to their inputs, but none is computed for the weights. The G
/// update runs D this way, since D's weight gradients would be thrown away (about a third of D's
/// backward work).
pub fn frozen<R>(f: impl FnOnce() -> R) -> R {
    with_frozen(true, f)
}

/// Runs `f` with this thread's frozen flag set to `on`, restoring the outer value after (also
/// when `f` panics).
fn with_frozen<R>(on: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FROZEN.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FROZEN.with(|c| c.replace(on)));
    f()
}

/// Runs `f` on a thread of rayon's pool and waits for it, with the layers' per-thread state
/// ([`frozen`]) reset for it and restored after.
///
/// The kernels fork their work with rayon. Forked from the program's main thread, every one of a
/// step's hundreds of parallel ops is a hand-off: the job goes to the pool's queue, a sleeping
/// worker is woken, and the main thread sleeps until the last part is done. Forked from a pool
/// thread, the same op is a local join whose parts the other workers steal while the forking
/// thread works on its own. A whole train step run here was 7-23% faster on 2 cores (docs/speed.md).
///
/// The reset matters when several trainers share the pool (tests, a library user's threads): a
/// worker waiting for a stolen part of one step's op may run another step's whole job meanwhile,
/// on the same thread, which must not see the first step's frozen discriminator.
///
/// `f` must not wait for other work sent to the pool (with one thread it would wait forever).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let clean = || with_frozen(false, f);
    match rayon::current_thread_index() {
        Some(_) => clean(),
        None => rayon::scope(|_| clean()),
    }
}

/// A parameter's value for a forward pass: the variable, or inside [`frozen`] a detached copy.
pub fn live(v: &Var) -> Tensor {
    if FROZEN.with(Cell::get) {
        v.as_tensor().detach()
    } else {
        v.as_tensor().clone()
    }
}

/// Whether the optimiser updates an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Trainable,
    /// Updated by the forward pass (running statistics), saved in checkpoints, never by Adam.
    Buffer,
}

#[derive(Clone)]
struct Entry {
    var: Var,
    role: Role,
}

struct Inner {
    entries: BTreeMap<String, Entry>,
    rng: StdRng,
    /// Bytes of every tensor created so far, checked against the memory budget before each new
    /// one is allocated (a config or checkpoint asking for a terabyte model is an error, not an
    /// abort).
    bytes: u64,
}

/// Shared handle to a model's tensors. Cloning shares the same store.
#[derive(Clone)]
pub struct ParamStore {
    inner: Arc<Mutex<Inner>>,
    device: Device,
}

impl ParamStore {
    /// A new store whose initial values are drawn from `seed`.
    pub fn new(seed: u64, device: &Device) -> Self {
        let inner = Inner { entries: BTreeMap::new(), rng: rng::rng(seed, Stream::Init, 0), bytes: 0 };
        Self { inner: Arc::new(Mutex::new(inner)), device: device.clone() }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The root path; models hang their sub-paths off it.
    pub fn root(&self) -> ParamPath {
        ParamPath { store: self.clone(), prefix: String::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("parameter store poisoned")
    }

    /// Creates (or returns the existing) entry `name`.
    fn get_or_init(&self, name: &str, shape: &[usize], init: Init, role: Role) -> crate::Result<Var> {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.get(name) {
            if e.var.dims() != shape {
                return Err(crate::Error::Msg(format!("parameter {name}: requested shape {shape:?} but it exists with {:?}", e.var.dims())));
            }
            return Ok(e.var.clone());
        }
        let need = crate::limits::product(shape).and_then(|n| n.checked_mul(4)).and_then(|b| b.checked_add(inner.bytes));
        crate::limits::check_memory(
            need,
            &format!("the model's parameters (up to {name} {shape:?})"),
            "use a smaller model: lower the widths (--channels), model.latent_dim or the resolution",
        )?;
        inner.bytes = need.unwrap_or(u64::MAX);
        let t = init.sample(&mut inner.rng, shape, &self.device)?;
        let var = Var::from_tensor(&t)?;
        inner.entries.insert(name.to_string(), Entry { var: var.clone(), role });
        Ok(var)
    }

    /// Trainable variables in name order (stable, so optimiser state lines up across runs).
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.filtered(Some(Role::Trainable))
    }

    /// The name of the first weight or buffer holding a NaN or Inf, if any (a diverged run).
    pub fn first_non_finite(&self) -> crate::Result<Option<String>> {
        for (name, var) in self.all() {
            // Any NaN or Inf makes the sum NaN or Inf (so does an f32 overflow of the sum, at
            // weights around 1e35, which are diverged anyway).
            let sum = var.as_tensor().sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !sum.is_finite() {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Every entry, trainable and buffer, in name order.
    pub fn all(&self) -> Vec<(String, Var)> {
        self.filtered(None)
    }

    fn filtered(&self, role: Option<Role>) -> Vec<(String, Var)> {
        self.lock().entries.iter().filter(|(_, e)| role.is_none_or(|r| e.role == r)).map(|(k, e)| (k.clone(), e.var.clone())).collect()
    }

    /// Current values by name, for saving.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.lock().entries.iter().map(|(k, e)| (k.clone(), e.var.as_tensor().clone())).collect()
    }

    /// Overwrites every entry from `values`; a missing or mis-shaped tensor is an error naming it.
    pub fn load(&self, values: &BTreeMap<String, Tensor>) -> crate::Result<()> {
        let inner = self.lock();
        for (name, e) in inner.entries.iter() {
            let t = values.get(name).ok_or_else(|| crate::Error::Msg(format!("missing tensor '{name}'")))?;
            if t.dims() != e.var.dims() {
                return Err(crate::Error::Msg(format!("tensor '{name}' has shape {:?}, the model expects {:?}", t.dims(), e.var.dims())));
            }
            e.var.set(&t.to_device(&self.device)?.to_dtype(e.var.dtype())?)?;
        }
        Ok(())
    }

    /// Number of trainable scalars.
    pub fn num_trainable(&self) -> usize {
        self.trainable().iter().map(|(_, v)| v.elem_count()).sum()
    }
}

/// A position in the store's name tree, e.g. `gen.block1.conv`.
#[derive(Clone)]
pub struct ParamPath {
    store: ParamStore,
    prefix: String,
}

impl ParamPath {
    pub fn sub(&self, name: impl std::fmt::Display) -> ParamPath {
        let prefix = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) };
        ParamPath { store: self.store.clone(), prefix }
    }

    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// A trainable tensor.
    pub fn param(&self, name: &str, shape: &[usize], init: Init) -> crate::Result<Var> {
        self.store.get_or_init(&self.full(name), shape, init, Role::Trainable)
    }

    /// A non-trainable tensor saved with the model.
    pub fn buffer(&self, name: &str, shape: &[usize], init: Init) -> crate::Result<Var> {
        self.store.get_or_init(&self.full(name), shape, init, Role::Buffer)
    }

    pub fn device(&self) -> &Device {
        self.store.device()
    }

    pub fn dtype(&self) -> DType {
        DType::F32
    }
}

/// The checkpoint name (`prefix.name`) of the first weight or buffer holding a NaN or Inf among
/// `stores`, each named by the prefix its tensors carry in checkpoints.
pub fn first_non_finite_in<'a>(stores: impl IntoIterator<Item = (&'a str, &'a ParamStore)>) -> crate::Result<Option<String>> {
    for (prefix, store) in stores {
        if let Some(name) = store.first_non_finite()? {
            return Ok(Some(format!("{prefix}.{name}")));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod frozen_tests {
    use super::*;
    use crate::nn::{BatchNorm, Conv2d, Linear, Mode};
    use crate::ops::ConvSpec;

    /// Inside `frozen` the weights get no gradient, the input gets exactly the same one, and the
    /// flag is restored afterwards (also when the closure fails).
    #[test]
    fn frozen_layers_pass_gradients_to_inputs_only() {
        let store = ParamStore::new(3, &Device::Cpu);
        let p = store.root();
        let conv = Conv2d::new(&p.sub("conv"), 2, 3, 3, ConvSpec::new(1, 1), Init::Normal { mean: 0.0, std: 0.5 }, true).unwrap();
        let bn = BatchNorm::new(&p.sub("bn"), 3, Init::Const(1.0)).unwrap();
        let lin = Linear::new(&p.sub("lin"), 3 * 4 * 4, 1, Init::Normal { mean: 0.0, std: 0.5 }, true).unwrap();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 2, 4, 4), &Device::Cpu).unwrap()).unwrap();
        let net = || -> crate::Result<Tensor> {
            let h = bn.forward_act(&conv.forward(&x)?, Mode::Train, Some(0.2))?;
            Ok(lin.forward(&h.flatten_from(1)?)?.sum_all()?)
        };
        let free = net().unwrap().backward().unwrap();
        let held = frozen(net).unwrap().backward().unwrap();
        for (name, var) in store.trainable() {
            assert!(free.get(var.as_tensor()).is_some(), "{name} has a gradient when not frozen");
            assert!(held.get(var.as_tensor()).is_none(), "{name} has a gradient inside frozen");
        }
        let (a, b) = (free.get(&x).unwrap(), held.get(&x).unwrap());
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0, "the input gradient does not depend on freezing");
        let failed: crate::Result<()> = frozen(|| Err(crate::Error::Msg("boom".into())));
        assert!(failed.is_err());
        assert!(!FROZEN.with(Cell::get), "the flag is restored");
    }
}
