//! The MPI world (feature `mpi`): OpenMPI or any MPI the `mpi` crate builds against.
//!
//! `gannet` calls [`init_from_env`] first thing when `mpirun` started it, and keeps the returned
//! [`MpiSession`] until it exits: dropping it finalises MPI, which `mpirun` expects of every
//! process.

use super::Collective;
use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::CommunicatorCollectives;
use mpi::Threading;
use std::sync::Mutex;

/// Keeps MPI initialised; finalises it when dropped (at the end of `main`).
pub struct MpiSession {
    universe: mpi::environment::Universe,
}

impl MpiSession {
    /// Ends every process of the job with `code`: for an error on one process, where the others
    /// may be waiting in a collective and a clean finalise would wait with them.
    pub fn abort(&self, code: i32) -> ! {
        self.universe.world().abort(code)
    }
}

/// MPI_COMM_WORLD behind a lock: MPI is initialised at `Threading::Serialized`, so calls from
/// different threads must not overlap.
struct MpiWorld {
    comm: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
    local_rank: usize,
    /// NCCL over the same processes, made on the first GPU tensor summed.
    #[cfg(feature = "nccl")]
    nccl: std::sync::OnceLock<super::nccl::Nccl>,
}

// SAFETY: the communicator is a handle to MPI_COMM_WORLD, valid until MPI_Finalize (the session
// outlives training). MPI was initialised with at least `Threading::Serialized` (checked in
// `init_from_env`), which allows calls from any thread as long as they do not overlap; every call
// goes through the mutex.
unsafe impl Send for MpiWorld {}
// SAFETY: as for `Send`: all access is serialised by the mutex.
unsafe impl Sync for MpiWorld {}

impl MpiWorld {
    /// `buf` replaced by its element-wise sum over all processes (MPI has no in-place form in
    /// the bindings, hence the copy sent).
    fn sum<T: mpi::datatype::Equivalence + Clone>(&self, buf: &mut [T]) -> crate::Result<()> {
        let send = buf.to_vec();
        lock(&self.comm).all_reduce_into(&send[..], buf, SystemOperation::sum());
        Ok(())
    }
}

fn lock(m: &Mutex<SimpleCommunicator>) -> std::sync::MutexGuard<'_, SimpleCommunicator> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn sum_f32(&self, buf: &mut [f32]) -> crate::Result<()> {
        self.sum(buf)
    }
    fn sum_f64(&self, buf: &mut [f64]) -> crate::Result<()> {
        self.sum(buf)
    }
    fn backend(&self) -> &'static str {
        "mpi"
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
    #[cfg(feature = "nccl")]
    fn sum_tensor(&self, t: &candle_core::Tensor) -> crate::Result<candle_core::Tensor> {
        if !t.device().is_cuda() {
            return super::sum_through_host(self, t);
        }
        let comm = lock(&self.comm);
        if self.nccl.get().is_none() {
            let nccl = super::nccl::Nccl::new(&comm, t)?;
            let _ = self.nccl.set(nccl);
        }
        self.nccl.get().expect("set above").sum(t)
    }
}

/// This process's index on its machine, as OpenMPI (`OMPI_COMM_WORLD_LOCAL_RANK`) or MPICH
/// (`MPI_LOCALRANKID`) tell it; the global rank when neither does.
fn local_rank(rank: usize) -> usize {
    ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"].iter().find_map(|k| std::env::var(k).ok()?.parse().ok()).unwrap_or(rank)
}

/// Initialises MPI and makes MPI_COMM_WORLD gannet's [`super::world`]. Errors when MPI cannot
/// give the thread support gannet needs.
pub fn init_from_env() -> crate::Result<MpiSession> {
    let (universe, threading) =
        mpi::initialize_with_threading(Threading::Serialized).ok_or_else(|| crate::Error::Msg("MPI was already initialised in this process".into()))?;
    if threading < Threading::Serialized {
        return Err(crate::Error::Msg(format!("this MPI library offers thread support {threading:?}; gannet needs Serialized (OpenMPI 4 and MPICH have it)")));
    }
    let comm = universe.world();
    let (rank, size) = (comm.rank() as usize, comm.size() as usize);
    super::set_world(Box::new(MpiWorld {
        comm: Mutex::new(comm),
        rank,
        size,
        local_rank: local_rank(rank),
        #[cfg(feature = "nccl")]
        nccl: std::sync::OnceLock::new(),
    }))?;
    Ok(MpiSession { universe })
}
