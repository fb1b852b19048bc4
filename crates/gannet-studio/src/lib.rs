//! The gannet studio: a local web page to generate images from gannet checkpoints, interpolate
//! between samples, translate uploads with image-to-image models, and follow a training run.
//!
//! `gannet serve` is a thin wrapper over [`Server`]. The pieces:
//! - [`catalog`]: the checkpoints and run folders on offer, each under an id (requests never name
//!   a path);
//! - [`models`]: what a checkpoint can do ([`models::Capabilities`]), the [`models::ImageToImage`]
//!   trait new model kinds implement (style mixing comes with `Generator::as_style`);
//! - [`pool`]: the worker threads that run the models, behind a bounded queue;
//! - [`api`] and [`render`]: routes, validation, and the work per request; [`messages`]: the
//!   request and response bodies both use;
//! - [`guard`]: which requests are answered at all (Host names, cross-origin POSTs);
//! - [`http`]: connections: how many at once, and the timeouts that close stalled ones;
//! - [`client`]: a minimal HTTP/1.1 client for the tests and the load test ([`loadtest`]).

pub mod api;
mod assets;
pub mod catalog;
pub mod client;
pub mod error;
pub mod guard;
pub mod http;
pub mod latent;
pub mod loadtest;
pub mod messages;
pub mod models;
pub mod pool;
pub mod render;

use anyhow::Context;
use gannet::candle_core::Device;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Images per generate request at most.
pub const MAX_COUNT: usize = 64;
/// Upload (request body) size at most.
pub const MAX_UPLOAD_BYTES: usize = 4 << 20;
/// Width and height of an uploaded image at most.
pub const MAX_UPLOAD_SIDE: u32 = 1024;

#[derive(Debug, Clone)]
pub struct StudioOptions {
    pub checkpoints: Vec<PathBuf>,
    pub runs: Option<PathBuf>,
    /// The address to listen on (`--host`; normally 127.0.0.1). A name is also a Host name the
    /// studio answers to (see [`guard`]).
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Threads running models.
    pub workers: usize,
    /// Requests that may wait for a worker before the server answers 503.
    pub queue: usize,
    pub device: Device,
    /// Adds the stand-in image-to-image model `test:invert` (for tests).
    pub test_models: bool,
    /// Connections at once and the timeouts for stalled clients.
    pub limits: http::Limits,
}

/// A bound, not yet running, studio server.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: http::Limits,
}

impl Server {
    /// Checks the options, starts the model workers and binds `host:port` (127.0.0.1 unless
    /// `--host` says otherwise: the studio has no authentication).
    pub fn bind(opts: &StudioOptions) -> anyhow::Result<Self> {
        for c in &opts.checkpoints {
            anyhow::ensure!(c.is_file(), "no checkpoint file at {}", c.display());
        }
        if let Some(r) = &opts.runs {
            anyhow::ensure!(r.is_dir(), "--runs {}: no such folder", r.display());
        }
        anyhow::ensure!(opts.limits.max_connections > 0, "--max-connections must be at least 1");
        // Two runtime threads are plenty: they only parse HTTP and wait for the workers.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("studio-http").enable_io().enable_time().build()?;
        let host = opts.host.trim_start_matches('[').trim_end_matches(']');
        let listener = runtime.block_on(tokio::net::TcpListener::bind((host, opts.port))).with_context(|| {
            format!(
                "cannot listen on {host} port {} (is another server using the port? pick one with --port, or --port 0 for any free one; --host must be an address or name of this machine)",
                opts.port
            )
        })?;
        let catalog = catalog::Catalog::new(opts.checkpoints.clone(), opts.runs.clone(), opts.test_models);
        let pool = pool::Pool::start(opts.workers, opts.queue, opts.device.clone()).context("starting the model workers")?;
        let allowed = Arc::new(guard::Allowed::new(host, listener.local_addr()?));
        // The outer layer runs first: a request from elsewhere is refused before its body is read.
        let app = api::router(Arc::new(api::AppState { catalog, pool }))
            .layer(axum::middleware::from_fn_with_state(opts.limits.idle_timeout, http::read_body))
            .layer(axum::middleware::from_fn_with_state(allowed, guard::check));
        Ok(Self { runtime, listener, app, limits: opts.limits })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until the process ends.
    pub fn run(self) -> anyhow::Result<()> {
        let Self { runtime, listener, app, limits } = self;
        runtime.block_on(http::serve(listener, app, limits));
        anyhow::bail!("the HTTP server stopped")
    }
}
