//! Where a run writes: one directory per run.
//!
//! ```text
//! runs/NAME/config.toml                 the full config of the run
//! runs/NAME/metrics.csv                 one row per log interval
//! runs/NAME/losses.svg                  the loss curves, redrawn with each sample grid
//! runs/NAME/samples/step-000100.png     sample grids; latest.png too
//! runs/NAME/checkpoints/latest.safetensors
//! runs/NAME/guard.log                   divergence-guard events, when there were any
//! runs/NAME/.lock                       held by the process training in the folder
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

/// An exclusive lock on a run folder, released when dropped or when the process dies (an OS
/// file lock, so a killed trainer never leaves the folder locked).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunDir {
    /// The folder's paths, creating nothing (for readers of a run).
    pub fn at(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }

    fn create(root: &Path) -> crate::Result<(Self, RunLock)> {
        for sub in ["samples", "checkpoints"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| crate::Error::io(format!("creating {}", p.display()), e))?;
        }
        let run = Self { root: root.to_path_buf() };
        let lock = run.lock()?;
        run.remove_temp_files()?;
        Ok((run, lock))
    }

    /// The folder of a new run, locked: refuses a folder that already holds a checkpoint, which
    /// a fresh run would overwrite, or that another process is training in.
    pub fn create_fresh(root: &Path) -> crate::Result<(Self, RunLock)> {
        let (run, lock) = Self::create(root)?;
        if run.latest_checkpoint().exists() {
            return Err(crate::Error::Config(format!(
                "{} already holds a checkpoint: resume it with --resume {}, or choose another --out",
                run.root().display(),
                run.latest_checkpoint().display()
            )));
        }
        Ok((run, lock))
    }

    /// The folder a resumed run goes on in, locked: refuses a folder that holds a checkpoint of
    /// another run (other than `resumed`, whose run id is `run_id`).
    pub fn open_for_resume(root: &Path, resumed: &Path, run_id: &str) -> crate::Result<(Self, RunLock)> {
        let (run, lock) = Self::create(root)?;
        let theirs = run.latest_checkpoint();
        let same_file = match (theirs.canonicalize(), resumed.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if theirs.exists() && !same_file {
            let other = super::Record::run_meta_of(&theirs);
            let same_run = other.as_ref().is_some_and(|o| !run_id.is_empty() && o.run_id == run_id);
            if !same_run {
                let step = other.map_or(String::new(), |o| format!(" (at step {})", o.step));
                return Err(crate::Error::Config(format!(
                    "{} holds the checkpoint of another run{step}, which resuming {} there would replace; \
                     resume into a new folder with --out, or into the run's own folder",
                    run.root().display(),
                    resumed.display()
                )));
            }
        }
        Ok((run, lock))
    }

    /// Locks the folder for this process, or says which process holds it.
    pub fn lock(&self) -> crate::Result<RunLock> {
        let path = self.root.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| crate::Error::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let who = if holder.is_empty() { String::new() } else { format!(" (process {holder})") };
                return Err(crate::Error::Config(format!(
                    "{} is in use by another gannet process{who}: two runs cannot share a folder; \
                     wait for it to finish, stop it, or choose another --out",
                    self.root.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(crate::Error::io(format!("locking {}", path.display()), e)),
        }
        // Who holds it, for the message above; the lock itself is the OS's.
        let _ = file.set_len(0).and_then(|()| write!(file, "{}", std::process::id()));
        Ok(RunLock { _file: file })
    }

    /// Removes the temp files of atomic writes (`.NAME.tmp-PID`) that a killed process left.
    /// Only called under the lock, so no live writer owns them.
    fn remove_temp_files(&self) -> crate::Result<()> {
        for dir in [self.root.clone(), self.root.join("checkpoints"), self.root.join("samples")] {
            let entries = std::fs::read_dir(&dir).map_err(|e| crate::Error::io(format!("reading {}", dir.display()), e))?;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if crate::checkpoint::is_temp_file(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    /// Periodic evaluation: one row per evaluation.
    pub fn metrics_eval_csv(&self) -> PathBuf {
        self.root.join("metrics_eval.csv")
    }
    pub fn loss_plot(&self) -> PathBuf {
        self.root.join("losses.svg")
    }
    pub fn sample_grid(&self, step: u64) -> PathBuf {
        self.root.join("samples").join(format!("step-{step:06}.png"))
    }
    pub fn latest_grid(&self) -> PathBuf {
        self.root.join("samples").join("latest.png")
    }
    /// Events of the divergence guard (what fired, rollbacks), appended as they happen.
    pub fn guard_log(&self) -> PathBuf {
        self.root.join("guard.log")
    }
    pub fn latest_checkpoint(&self) -> PathBuf {
        self.root.join("checkpoints").join("latest.safetensors")
    }
}
