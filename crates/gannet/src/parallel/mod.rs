//! Data-parallel training: one process per device, each training on its slice of every batch,
//! gradients averaged over all processes before every optimiser step, so every process holds the
//! same weights and optimiser state at all times.
//!
//! The processes talk through a [`Collective`]: MPI for CPU processes on one machine or many
//! (feature `mpi`, module `parallel::mpi`), with NCCL summing the gradients of GPU processes in device
//! memory (feature `nccl`), and nothing at all for a single process ([`Single`]). There is one
//! world per process, set once at start-up by the program (`gannet` does it when it finds itself
//! started by `mpirun`) and read by the training code through [`world`].
//!
//! What keeps an N-process run equal to one process training on the combined batch:
//! - **Data:** every process computes the same global batch order (a function of the seed and the
//!   step) and loads only its slice of each batch ([`Shard`]).
//! - **Randomness:** every per-image draw (latents, augmentation, interpolation weights) is made
//!   for the whole global batch and sliced, so process `r` uses exactly the draws that images
//!   `r * b .. (r + 1) * b` of the one-process run use. A run is reproducible for any number of
//!   processes, and a checkpoint resumes under any number of processes.
//! - **Gradients:** each process's loss is the mean over its slice; the mean of those gradients over
//!   processes is the gradient of the mean over the combined batch ([`average_gradients`]).
//! - **Batch norm:** synchronised by default (statistics over the combined batch, `[parallel]
//!   sync_batch_norm`), or per process.
//! - **Effective batch and learning rate:** `schedule.batch_size` is the combined batch and must be
//!   a multiple of the number of processes; the learning rates apply to it unchanged, so an
//!   N-process run trains like the one-process run of the same config (the "linear scaling rule"
//!   is for users who raise the batch; gannet does not change learning rates behind their back).

#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "nccl")]
mod nccl;

use candle_core::{backprop::GradStore, DType, Tensor, Var};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The operations data-parallel training needs from a communication library. Every process must
/// make the same calls in the same order (they are collective): a process that skips one leaves
/// the others waiting.
pub trait Collective: Send + Sync {
    /// This process's index, 0 .. [`Collective::size`].
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Replaces `buf` by its element-wise sum over all processes.
    fn sum_f32(&self, buf: &mut [f32]) -> crate::Result<()>;
    /// Replaces `buf` by its element-wise sum over all processes.
    fn sum_f64(&self, buf: &mut [f64]) -> crate::Result<()>;
    /// The library, for messages (`mpi`, `single`).
    fn backend(&self) -> &'static str;
    /// This process's index among those on its machine (which GPU it drives).
    fn local_rank(&self) -> usize {
        self.rank()
    }
    /// `t` (f32) summed over all processes. By default through host memory with
    /// [`Collective::sum_f32`]; a backend that can reduce device memory (NCCL) overrides it.
    fn sum_tensor(&self, t: &Tensor) -> crate::Result<Tensor> {
        sum_through_host(self, t)
    }
}

/// `t` summed over all processes through host memory with [`Collective::sum_f32`]: the default
/// of [`Collective::sum_tensor`], and what a device backend falls back to for host tensors.
pub fn sum_through_host<C: Collective + ?Sized>(c: &C, t: &Tensor) -> crate::Result<Tensor> {
    let mut v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    c.sum_f32(&mut v)?;
    Ok(Tensor::from_vec(v, t.shape(), t.device())?.to_dtype(t.dtype())?)
}

/// One process: every collective is the identity.
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _: &mut [f32]) -> crate::Result<()> {
        Ok(())
    }
    fn sum_f64(&self, _: &mut [f64]) -> crate::Result<()> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "single"
    }
}

static WORLD: OnceLock<Box<dyn Collective>> = OnceLock::new();
static SYNC_BATCH_NORM: AtomicBool = AtomicBool::new(true);

/// The processes this one trains with ([`Single`] unless [`set_world`] was called).
pub fn world() -> &'static dyn Collective {
    WORLD.get().map(|b| b.as_ref()).unwrap_or(&Single)
}

/// Sets the world once, before training starts; a second call is an error.
pub fn set_world(world: Box<dyn Collective>) -> crate::Result<()> {
    WORLD.set(world).map_err(|_| crate::Error::Msg("the data-parallel world was already set".into()))
}

/// True when more than one process trains.
pub fn is_parallel() -> bool {
    world().size() > 1
}

/// True when this process writes the run folder (logs, grids, checkpoints): rank 0.
pub fn is_writer() -> bool {
    world().rank() == 0
}

/// Whether batch norm layers use statistics over all processes' slices (the default).
pub fn set_sync_batch_norm(on: bool) {
    SYNC_BATCH_NORM.store(on, Ordering::Relaxed);
}

/// True when batch norm must combine its statistics over processes: more than one process and
/// `[parallel] sync_batch_norm` on.
pub fn sync_batch_norm() -> bool {
    is_parallel() && SYNC_BATCH_NORM.load(Ordering::Relaxed)
}

/// This process's slice of a global batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Images in the combined batch.
    pub global: usize,
    /// The images of this process: `rank * global / size ..`.
    pub range: Range<usize>,
}

impl Shard {
    /// The whole batch, for one process.
    pub fn whole(n: usize) -> Self {
        Self { global: n, range: 0..n }
    }

    /// This process's slice of a combined batch of `global` images; an error naming
    /// `schedule.batch_size` when it does not split evenly.
    pub fn of(global: usize) -> crate::Result<Self> {
        let size = world().size();
        if global == 0 || !global.is_multiple_of(size) {
            return Err(crate::Error::Config(format!(
                "schedule.batch_size (--batch-size) {global} does not split evenly over {size} processes: use a multiple of {size}"
            )));
        }
        Ok(Self::of_local(global / size))
    }

    /// The shard a process holding `local` images of a batch is part of (all processes hold the
    /// same number).
    pub fn of_local(local: usize) -> Self {
        let w = world();
        Self { global: local * w.size(), range: w.rank() * local..(w.rank() + 1) * local }
    }

    /// This process's rows of `t`, a tensor over the global batch (dimension 0).
    pub fn narrow(&self, t: &Tensor) -> crate::Result<Tensor> {
        if self.range.len() == self.global {
            return Ok(t.clone());
        }
        Ok(t.narrow(0, self.range.start, self.range.len())?)
    }

    /// This process's entries of a per-image list over the global batch.
    pub fn slice<'a, T>(&self, v: &'a [T]) -> &'a [T] {
        &v[self.range.clone()]
    }
}

/// Replaces the gradient of every var in `vars` by its mean over all processes (no-op for one
/// process). Every process holds gradients for the same vars, since all run the same graph; the
/// gradients travel as one flat buffer, one collective per call.
pub fn average_gradients<'a>(grads: &mut GradStore, vars: impl IntoIterator<Item = &'a Var>) -> crate::Result<()> {
    let w = world();
    if w.size() == 1 {
        return Ok(());
    }
    let mut present = Vec::new();
    let mut flat = Vec::new();
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            if g.dtype() != DType::F32 {
                return Err(crate::Error::Msg(format!("data-parallel training averages f32 gradients, got {:?}", g.dtype())));
            }
            flat.push(g.flatten_all()?);
            present.push((var, g.shape().clone()));
        }
    }
    if flat.is_empty() {
        return Ok(());
    }
    let mean = (w.sum_tensor(&Tensor::cat(&flat, 0)?)? / w.size() as f64)?;
    let mut at = 0;
    for (var, shape) in present {
        let n = shape.elem_count();
        grads.insert(var.as_tensor(), mean.narrow(0, at, n)?.reshape(shape)?);
        at += n;
    }
    Ok(())
}

/// `result` if every process succeeded; otherwise an error on every process (its own, or one
/// saying that another process failed), so that all stop together instead of some waiting
/// forever in a collective.
pub fn agree<T>(result: crate::Result<T>) -> crate::Result<T> {
    if any(result.is_err())? && result.is_ok() {
        return Err(crate::Error::Msg("another data-parallel process failed (rank 0 prints why)".into()));
    }
    result
}

/// True when this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`) with more
/// than one process, read from the variables OpenMPI and MPICH (PMI) set.
pub fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"].iter().any(|k| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > 1))
}

/// `values` averaged over all processes, in place.
pub fn mean_f64(values: &mut [f64]) -> crate::Result<()> {
    let w = world();
    w.sum_f64(values)?;
    let n = w.size() as f64;
    values.iter_mut().for_each(|v| *v /= n);
    Ok(())
}

/// True on every process when `flag` is true on any of them (a stop request, a divergence), so
/// that all act on it at the same step.
pub fn any(flag: bool) -> crate::Result<bool> {
    let mut v = [f64::from(u8::from(flag))];
    world().sum_f64(&mut v)?;
    Ok(v[0] > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_holds_the_whole_batch_and_collectives_are_identities() {
        let s = Shard::of(6).unwrap();
        assert_eq!(s, Shard::whole(6));
        let mut v = [1.5, -2.0];
        mean_f64(&mut v).unwrap();
        assert_eq!(v, [1.5, -2.0]);
        assert!(any(true).unwrap() && !any(false).unwrap());
        assert!(!sync_batch_norm(), "one process has nothing to synchronise");
        assert!(Shard::of(0).is_err());
    }
}
