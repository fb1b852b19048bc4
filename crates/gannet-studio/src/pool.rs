//! The model workers: a few threads that run all tensor work, fed by a bounded queue.
//!
//! candle's CPU work is synchronous and already spreads one batch over the cores, so running it on
//! the async runtime would stall every other connection, and running one job per request at once
//! would only thrash. Instead handlers put a job in a bounded queue and await its answer; a full
//! queue answers 503 at once. Each worker keeps its own loaded models (a model never moves
//! between threads, so model types need not be `Send`). A job whose client has gone away (the
//! answer channel is closed) is skipped, and a panicking job answers 500 and leaves the worker
//! alive.

use crate::error::{ApiError, ApiResult};
use crate::models::ModelCache;
use gannet::candle_core::Device;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut ModelCache) + Send>;

#[derive(Clone)]
pub struct Pool {
    queue: SyncSender<Job>,
    capacity: usize,
}

impl Pool {
    /// Starts `workers` threads that run models on `device`, with room for `queue` waiting jobs.
    pub fn start(workers: usize, queue: usize, device: Device) -> anyhow::Result<Self> {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let (rx, device) = (rx.clone(), device.clone());
            std::thread::Builder::new().name(format!("studio-worker-{i}")).spawn(move || work(&rx, ModelCache::new(device)))?;
        }
        Ok(Self { queue: tx, capacity: queue })
    }

    /// Runs `f` on a worker and waits for its answer without blocking the async runtime.
    pub async fn run<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut ModelCache) -> ApiResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |cache| {
            if tx.is_closed() {
                return; // the client disconnected while the job waited
            }
            let answer = catch_unwind(AssertUnwindSafe(|| f(cache))).unwrap_or_else(|panic| {
                cache.clear();
                Err(ApiError::internal(format!("the model worker failed: {}", panic_text(&panic))))
            });
            let _ = tx.send(answer);
        });
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => ApiError::busy(format!("the studio is busy ({} requests waiting); try again shortly", self.capacity)),
            TrySendError::Disconnected(_) => ApiError::internal("the model workers have stopped"),
        })?;
        rx.await.map_err(|_| ApiError::internal("the model worker dropped the request"))?
    }
}

fn work(rx: &Mutex<Receiver<Job>>, mut cache: ModelCache) {
    loop {
        // The lock is held only while waiting for the next job, not while running it.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut cache),
            Err(_) => return, // the server is shutting down
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "panic".into())
}
