//! (Leaky) ReLU as one pass forward and one pass backward.
//!
//! candle's `maximum(x, a * x)` costs two passes forward and, backward, comparison masks, a
//! `where`, and a gradient accumulated from two branches: six passes over an activation-sized
//! tensor and as many fresh buffers. Here the forward is one kernel and the backward is
//! `mask(x) * grad`, a second kernel that is linear in `grad`, so it is its own backward: second
//! order gradients (R1, gradient penalty) flow through it exactly. The slope's kink at 0 gets the
//! negative-side slope, as PyTorch's does.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::cpu_slice;

/// Elements per rayon task: large enough that scheduling is noise.
const CHUNK: usize = 1 << 15;

/// out[i] = x[i] if x[i] > 0 else slope * v[i], with v = x (forward) or v = grad (backward).
fn masked<T: WithDType>(x: &[T], v: &[T], slope: f64) -> Vec<T> {
    let (zero, one, slope) = (T::zero(), T::one(), T::from_f64(slope));
    let n = x.len().min(v.len());
    // Written through `MaybeUninit` (no zero-fill pass over an activation-sized buffer, and no
    // reference to uninitialised `T`s), then marked initialised once every element is.
    let mut out: Vec<T> = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n].par_chunks_mut(CHUNK).zip(x[..n].par_chunks(CHUNK).zip(v[..n].par_chunks(CHUNK))).for_each(|(o, (x, v))| {
        for ((o, &x), &v) in o.iter_mut().zip(x).zip(v) {
            // A select of the factor, then one multiply: vectorises, unlike a branch.
            o.write(v * if x > zero { one } else { slope });
        }
    });
    // SAFETY: the loop above wrote all of the first `n` slots (the chunks of `x` and `v` cover
    // `0..n` exactly, as do those of the spare capacity), and `n <= capacity`.
    unsafe { out.set_len(n) };
    out
}

struct Forward(f64);
struct Backward(f64);

impl CustomOp1 for Forward {
    fn name(&self) -> &'static str {
        "gannet-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let st = match s {
            CpuStorage::F32(_) => {
                let x = cpu_slice::<f32>(s, l, self.name())?;
                CpuStorage::F32(masked(x, x, self.0))
            }
            CpuStorage::F64(_) => {
                let x = cpu_slice::<f64>(s, l, self.name())?;
                CpuStorage::F64(masked(x, x, self.0))
            }
            _ => candle_core::bail!("{}: only f32 and f64 are supported", self.name()),
        };
        Ok((st, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(backward(x, grad, self.0)?))
    }
}

impl CustomOp2 for Backward {
    fn name(&self) -> &'static str {
        "gannet-leaky-relu-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("{}: shapes {:?} and {:?} differ", self.name(), l1.shape(), l2.shape())
        }
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => CpuStorage::F32(masked(cpu_slice(s1, l1, self.name())?, cpu_slice(s2, l2, self.name())?, self.0)),
            (CpuStorage::F64(_), CpuStorage::F64(_)) => CpuStorage::F64(masked(cpu_slice(s1, l1, self.name())?, cpu_slice(s2, l2, self.name())?, self.0)),
            _ => candle_core::bail!("{}: only f32 and f64 of one dtype are supported", self.name()),
        };
        Ok((st, l1.shape().clone()))
    }

    /// Linear in `grad` with the mask of `x`; `x` only selects, so its gradient is zero (an
    /// explicit zero: candle expects every tracked input of a node to receive one).
    fn bwd(&self, x: &Tensor, _grad: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(x.zeros_like()?), Some(backward(x, grad_res, self.0)?)))
    }
}

/// The backward kernel as a tracked op: `mask(x) * grad`. `x` may be the activation's output as
/// well as its input: both are positive at the same places.
pub(crate) fn backward(x: &Tensor, grad: &Tensor, slope: f64) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&grad.contiguous()?, Backward(slope))
}

/// `x` where positive, `slope * x` elsewhere; `slope = 0` is ReLU. CPU tensors of f32/f64 take
/// the fused kernels, anything else candle's ops.
pub fn leaky_relu(x: &Tensor, slope: f64) -> crate::Result<Tensor> {
    if !super::cpu_float(x) {
        return Ok(if slope == 0.0 { x.relu()? } else { x.maximum(&(x * slope)?)? });
    }
    Ok(x.contiguous()?.apply_op1(Forward(slope))?)
}

/// `max(x, 0)` through the fused kernels.
pub fn relu(x: &Tensor) -> crate::Result<Tensor> {
    leaky_relu(x, 0.0)
}
