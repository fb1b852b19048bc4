//! Shared by the studio tests: tiny checkpoints from `gannet train`, and a `gannet serve` child
//! process on a free port that is killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn gannet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gannet"))
}

/// Trains a tiny DCGAN for 30 steps on the built-in digits into `run` (a run folder with
/// metrics.csv, samples/latest.png and checkpoints/latest.safetensors; under a second) and
/// returns its checkpoint. The high learning rate makes its images differ clearly by latent
/// (at the default rate a few steps leave every image the same flat grey).
pub fn tiny_run(run: &Path, extra: &[&str]) -> PathBuf {
    let o = gannet()
        .args(["train", "--out", run.to_str().unwrap(), "--steps", "30", "--batch-size", "8", "--channels", "4", "--latent-dim", "8"])
        .args(["--sample-every", "30", "--checkpoint-every", "30", "--lr-g", "0.02", "--lr-d", "0.02"])
        .args(extra)
        .output()
        .expect("runs gannet train");
    assert!(o.status.success(), "gannet train failed: {}", String::from_utf8_lossy(&o.stderr));
    run.join("checkpoints").join("latest.safetensors")
}

pub struct Studio {
    child: Child,
    pub addr: SocketAddr,
}

impl Studio {
    /// `gannet serve --port 0 ARGS`, once it says where it listens.
    pub fn start(args: &[&str]) -> Studio {
        let mut child = gannet().args(["serve", "--port", "0"]).args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("starts gannet serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the address line, then keeps draining stderr so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("gannet studio: http://") {
                    let _ = tx.send(Ok(rest.split('/').next().unwrap().to_string()));
                } else if line.starts_with("error") {
                    let _ = tx.send(Err(line));
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(a)) => a.parse().expect("an address"),
            Ok(Err(e)) => {
                let _ = child.kill();
                panic!("gannet serve failed: {e}")
            }
            Err(_) => {
                let _ = child.kill();
                panic!("gannet serve did not say where it listens within 60 s")
            }
        };
        Studio { child, addr }
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("waits").is_none()
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
