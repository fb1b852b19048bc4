//! Where a run writes: one directory per run.
//!
//! ```text
//! runs/NAME/config.toml                 the full config of the run
//! runs/NAME/metrics.csv                 one row per log interval
//! runs/NAME/losses.svg                  the loss curves, redrawn with each sample grid
//! runs/NAME/samples/step-000100.png     grids from the fixed latent batch; latest.png too
//! runs/NAME/checkpoints/latest.safetensors
//! runs/NAME/guard.log                   divergence-guard events, when there were any
//! ```

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn create(root: &Path) -> crate::Result<Self> {
        for sub in ["samples", "checkpoints"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| crate::Error::io(format!("creating {}", p.display()), e))?;
        }
        Ok(Self { root: root.to_path_buf() })
    }

    /// [`RunDir::create`] for a new run: refuses a folder that already holds a checkpoint, which
    /// a fresh run would overwrite.
    pub fn create_fresh(root: &Path) -> crate::Result<Self> {
        let run = Self::create(root)?;
        if run.latest_checkpoint().exists() {
            return Err(crate::Error::Config(format!(
                "{} already holds a checkpoint: resume it with --resume {}, or choose another --out",
                run.root().display(),
                run.latest_checkpoint().display()
            )));
        }
        Ok(run)
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
