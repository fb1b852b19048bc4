use anyhow::{Context, Result};
use clap::Args;
use gannet_studio::http::Limits;
use gannet_studio::loadtest::{self, LoadOptions};
use gannet_studio::{Server, StudioOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet serve --checkpoint runs/default/checkpoints/latest.safetensors   # then open http://127.0.0.1:8080/\n  \
    gannet serve --runs runs                       # every run folder: its checkpoint and its training curves\n  \
    gannet serve --checkpoint A --checkpoint B --port 9000\n  \
    gannet serve --checkpoint C --load-test 100    # 100 concurrent generate requests over loopback, then exit\n\n\
    The page generates batches (seed, count, truncation, class), interpolates between two samples\n\
    with a slider, translates uploads with image-to-image checkpoints, downloads PNGs that say\n\
    they are synthetic, and follows a running training (metrics.csv curves, latest samples).\n\
    It listens on 127.0.0.1 unless --host says otherwise. It has NO LOGIN: anyone who can reach\n\
    the address can use it, so do not expose it. It answers only requests addressed to localhost,\n\
    a loopback address or the --host name, and refuses POSTs from other web pages.")]
pub struct ServeArgs {
    /// A checkpoint to offer (repeatable; the page switches between them).
    #[arg(long)]
    checkpoint: Vec<PathBuf>,
    /// Offer every run folder under DIR: DIR/*/checkpoints/latest.safetensors and DIR/*/metrics.csv
    /// (listed again on each page load, so new runs appear). Default: ./runs when no --checkpoint.
    #[arg(long, value_name = "DIR")]
    runs: Option<PathBuf>,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address or name to listen on. WARNING: the studio has no authentication; anything other
    /// than a loopback address lets every machine that reaches it use it. The name given here is
    /// also a Host name the studio answers to (besides localhost and loopback addresses).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: String,
    /// Seconds a connection has to send a whole request head (from opening or from its last
    /// answer); slower or idle connections are closed.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a client may stall mid-request body, or leave an answer unread, before the
    /// connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().idle_timeout.as_secs_f64())]
    idle_timeout: f64,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Threads that run the models.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Requests that may wait for a worker; more get 503 "busy".
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Measure instead of serving: start the server, send N generate requests from N concurrent
    /// loopback clients to the first checkpoint, print the throughput and exit.
    #[arg(long, value_name = "N")]
    load_test: Option<usize>,
    /// Images per load-test request.
    #[arg(long, default_value_t = 16, requires = "load_test")]
    load_images: usize,
    /// Print the load-test report as JSON.
    #[arg(long, requires = "load_test")]
    json: bool,
    /// Also offer built-in stand-in models for tests (`test:invert`, an image-to-image model).
    #[arg(long, hide = true)]
    test_models: bool,
}

/// A timeout flag's seconds as a duration (positive and finite).
fn seconds(flag: &str, secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs).ok().filter(|d| !d.is_zero()).with_context(|| format!("{flag} must be a positive number of seconds, not {secs}"))
}

pub fn run(args: ServeArgs) -> Result<()> {
    let runs = match (&args.runs, args.checkpoint.is_empty()) {
        (Some(r), _) => Some(r.clone()),
        (None, true) if PathBuf::from("runs").is_dir() => Some(PathBuf::from("runs")),
        (None, true) if !args.test_models => anyhow::bail!("nothing to serve: give --checkpoint FILE (repeatable) or --runs DIR"),
        (None, _) => None,
    };
    let opts = StudioOptions {
        checkpoints: args.checkpoint.clone(),
        runs,
        host: args.host.clone(),
        port: args.port,
        workers: args.workers,
        queue: args.queue,
        device: gannet::device::parse_device(&args.device)?,
        test_models: args.test_models,
        limits: Limits {
            header_timeout: seconds("--header-timeout", args.header_timeout)?,
            idle_timeout: seconds("--idle-timeout", args.idle_timeout)?,
            max_connections: args.max_connections,
        },
    };
    let server = Server::bind(&opts)?;
    let addr = server.local_addr()?;
    if !addr.ip().is_loopback() {
        eprintln!("warning: the studio listens on {addr}, not on loopback; it has no login, so anyone who can reach this address can use it");
    }
    let Some(n) = args.load_test else {
        // Tests read this line to find the port.
        eprintln!("gannet studio: http://{addr}/  (Ctrl-C stops it)");
        return server.run();
    };
    anyhow::ensure!(n > 0, "--load-test needs at least 1 request");
    anyhow::ensure!(!args.checkpoint.is_empty(), "--load-test needs a --checkpoint to generate from");
    std::thread::spawn(move || server.run());
    let load = LoadOptions { checkpoint: "c0".into(), requests: n, concurrency: n, count: args.load_images, timeout: Duration::from_secs(600) };
    eprintln!("load test: {n} concurrent clients, {} images each, against {}", args.load_images, args.checkpoint[0].display());
    // Untimed requests first load the model into the workers, so the numbers are about serving.
    let warm = LoadOptions { requests: 2 * args.workers, concurrency: args.workers, ..load.clone() };
    let w = loadtest::run(addr, &warm);
    anyhow::ensure!(w.failed == 0, "the warm-up requests failed: {:?}", w.errors);
    let report = loadtest::run(addr, &load);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("writing the report")?);
    } else {
        println!(
            "{} of {} requests OK in {:.2} s: {:.1} requests/s, {:.0} images/s; latency p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            report.ok,
            report.requests,
            report.wall_s,
            report.requests_per_s,
            report.images_per_s,
            report.latency_p50_ms,
            report.latency_p95_ms,
            report.latency_max_ms
        );
    }
    anyhow::ensure!(report.failed == 0, "{} requests failed, e.g. {:?}", report.failed, report.errors);
    Ok(())
}
