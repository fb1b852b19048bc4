//! Data-parallel runs: `gannet train --launch N` starts N copies of itself under `mpirun`; each
//! copy finds itself started by MPI ([`init`]) and trains its slice of every batch (see
//! `gannet::parallel`). Rank 0 prints progress and writes the run folder; the other ranks stay
//! quiet unless they fail.

use anyhow::{bail, Context, Result};
use std::process::Command;
#[cfg(feature = "mpi")]
use std::sync::Mutex;

pub const EXIT_INTERRUPTED: i32 = 130;

/// The MPI job this process joined, kept until it exits.
#[cfg(feature = "mpi")]
static SESSION: Mutex<Option<gannet::parallel::mpi::MpiSession>> = Mutex::new(None);

/// Joins the MPI job when `mpirun` started this process (before any other thread starts).
pub fn init() -> Result<()> {
    if !gannet::parallel::launched_by_mpi() {
        return Ok(());
    }
    #[cfg(feature = "mpi")]
    {
        let session = gannet::parallel::mpi::init_from_env()?;
        *SESSION.lock().unwrap_or_else(|e| e.into_inner()) = Some(session);
        // A panic ends the whole job: the other processes may be waiting for this one.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            exit(101);
        }));
        Ok(())
    }
    #[cfg(not(feature = "mpi"))]
    bail!(
        "this gannet was started by mpirun with several processes but was built without MPI support: \
         build it with `cargo build --release -p gannet-cli --features mpi` (needs an MPI library, e.g. \
         Debian's libopenmpi-dev and libclang-dev), or run it without mpirun"
    )
}

/// True on the process that prints progress: rank 0, or the only process.
pub fn is_leader() -> bool {
    gannet::parallel::is_writer()
}

/// Ends the process with `code`. Under MPI a success or a stop finalises MPI first (mpirun
/// expects it); an error aborts the whole job, since the other processes may be waiting for this
/// one in a collective.
pub fn exit(code: i32) -> ! {
    #[cfg(feature = "mpi")]
    if let Some(s) = SESSION.lock().unwrap_or_else(|e| e.into_inner()).take() {
        if code != 0 && code != EXIT_INTERRUPTED {
            s.abort(code);
        }
        drop(s);
    }
    std::process::exit(code)
}

/// Finalises MPI when this process joined a job (the end of a successful `main`).
pub fn finalize() {
    #[cfg(feature = "mpi")]
    drop(SESSION.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// Runs this same command line under `mpirun -np N` (without `--launch`), each process with
/// `cores / N` threads unless RAYON_NUM_THREADS says otherwise, and returns its exit status.
pub fn relaunch(processes: usize) -> Result<i32> {
    if gannet::parallel::launched_by_mpi() {
        bail!("--launch starts mpirun itself; under mpirun, leave --launch out");
    }
    if processes == 0 {
        bail!("--launch needs at least 1 process");
    }
    if !cfg!(feature = "mpi") {
        bail!(
            "--launch needs a gannet built with MPI support: `cargo build --release -p gannet-cli --features mpi` \
             (needs OpenMPI, e.g. Debian's libopenmpi-dev openmpi-bin libclang-dev; see the README, \"Data-parallel training\")"
        );
    }
    let exe = std::env::current_exe().context("finding the gannet executable to launch")?;
    let args = without_launch(std::env::args().skip(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = gannet::ops::requested_threads().unwrap_or((cores / processes).max(1));
    let mut cmd = Command::new("mpirun");
    cmd.arg("-np").arg(processes.to_string()).arg("--oversubscribe");
    // One thread per process and a core for each: pin each to its core. Otherwise let the OS
    // place the threads (OpenMPI refuses to bind more processes than cores).
    cmd.args(["--bind-to", if threads == 1 && processes <= cores { "core" } else { "none" }]);
    if is_root() {
        // OpenMPI refuses to run as root unless asked (containers and CI run as root).
        cmd.arg("--allow-run-as-root");
    }
    cmd.args(["-x", &format!("RAYON_NUM_THREADS={threads}")]);
    for var in ["GANNET_DATA", "GANNET_MODELS", "GANNET_MAX_MEMORY", "GANNET_LOG"] {
        if std::env::var_os(var).is_some() {
            cmd.args(["-x", var]);
        }
    }
    cmd.arg(exe).args(args);
    // Ctrl-C reaches mpirun and the processes too (one process group): this one waits for them
    // to save their checkpoint and stop. mpirun then exits with 1; a stop is reported as 130, as
    // a one-process run reports it.
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)).map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
    eprintln!("launching {processes} processes x {threads} threads: mpirun -np {processes} gannet ...");
    let status = cmd.status().map_err(|e| {
        anyhow::anyhow!(
            "starting mpirun: {e}; --launch needs OpenMPI's mpirun on the PATH (Debian: apt-get install openmpi-bin) \
             and a gannet built with --features mpi"
        )
    })?;
    let code = status.code().unwrap_or(1);
    if code != 0 && interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(code)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0")))
        .unwrap_or(false)
}

/// The arguments with `--launch N` / `--launch=N` removed.
fn without_launch(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for a in args {
        if skip_next {
            skip_next = false;
        } else if a == "--launch" {
            skip_next = true;
        } else if !a.starts_with("--launch=") {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn launch_flags_are_removed_in_both_spellings() {
        let args = ["train", "--launch", "2", "--steps", "3", "--launch=4", "--out", "x"].map(String::from);
        assert_eq!(super::without_launch(args.into_iter()), ["train", "--steps", "3", "--out", "x"]);
    }
}
