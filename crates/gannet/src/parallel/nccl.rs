//! NCCL for gradients that live on the GPU (feature `nccl`, which brings `cuda` and `mpi`).
//!
//! The processes still form an MPI job: MPI starts them, carries NCCL's unique id from rank 0 to
//! the others, and does the small host-side collectives (losses, the stop flag). The gradient
//! buffer, the one large collective of every step, is summed by NCCL in device memory, without a
//! round trip through the host. The communicator is made on the first GPU tensor summed: every
//! process reaches that point together (the first gradient averaging).
//!
//! Compiled in CI without a GPU (`scripts/check_cuda_build.sh`); not yet run on one.

use candle_core::cuda_backend::cudarc::nccl::safe::{Comm, Id, ReduceOp};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, Device, Layout, Shape, Tensor};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Root};

/// One NCCL communicator over all processes, on the GPU of this process's tensors.
pub(super) struct Nccl {
    comm: Comm,
}

// SAFETY: the communicator is used only through `&self` from the training thread, serialised by
// the mutex around the MPI world that owns it; NCCL communicators may be used from any thread as
// long as calls on one communicator do not overlap.
unsafe impl Send for Nccl {}
// SAFETY: as for `Send`.
unsafe impl Sync for Nccl {}

impl Nccl {
    /// Rank 0 draws NCCL's unique id and MPI broadcasts it; then every process joins with the
    /// stream of the device `like` lives on.
    pub(super) fn new(world: &SimpleCommunicator, like: &Tensor) -> crate::Result<Self> {
        let Device::Cuda(device) = like.device() else {
            return Err(crate::Error::Msg("NCCL sums GPU tensors only".into()));
        };
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let mut id = if rank == 0 { *Id::new().map_err(|e| nccl_error("creating the NCCL id", e))?.internal() } else { [0; 128] };
        world.process_at_rank(0).broadcast_into(&mut id[..]);
        let comm = Comm::from_rank(device.cuda_stream(), rank, size, Id::uninit(id)).map_err(|e| nccl_error("joining the NCCL communicator", e))?;
        Ok(Self { comm })
    }

    /// `t` (f32, on this communicator's GPU) summed over all processes.
    pub(super) fn sum(&self, t: &Tensor) -> crate::Result<Tensor> {
        Ok(t.contiguous()?.apply_op1_no_bwd(&AllReduce { comm: &self.comm })?)
    }
}

fn nccl_error(what: &str, e: impl std::fmt::Debug) -> crate::Error {
    crate::Error::Msg(format!("{what}: {e:?}"))
}

/// The sum over processes as a tensor op: reads the input's device buffer, writes a new one.
struct AllReduce<'a> {
    comm: &'a Comm,
}

impl CustomOp1 for AllReduce<'_> {
    fn name(&self) -> &'static str {
        "gannet-nccl-all-reduce"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("NCCL sums GPU tensors; CPU tensors are summed over MPI")
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("gannet-nccl-all-reduce: the input must be contiguous") };
        let src = storage.as_cuda_slice::<f32>()?.slice(start..end);
        let device = storage.device.clone();
        let mut dst = device.alloc_zeros::<f32>(end - start)?;
        self.comm.all_reduce(&src, &mut dst, &ReduceOp::Sum).map_err(|e| candle_core::Error::Msg(format!("NCCL all-reduce: {e:?}")))?;
        Ok((CudaStorage::wrap_cuda_slice(dst, device), layout.shape().clone()))
    }
}
