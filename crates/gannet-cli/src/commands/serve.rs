use anyhow::{Context, Result};
use clap::Args;
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
    It listens on 127.0.0.1 only: it has no login, so do not expose it.")]
pub struct ServeArgs {
    /// A checkpoint to offer (repeatable; the page switches between them).
    #[arg(long)]
    checkpoint: Vec<PathBuf>,
    /// Offer every run folder under DIR: DIR/*/checkpoints/latest.safetensors and DIR/*/metrics.csv
    /// (listed again on each page load, so new runs appear). Default: ./runs when no --checkpoint.
    #[arg(long, value_name = "DIR")]
    runs: Option<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
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
        port: args.port,
        workers: args.workers,
        queue: args.queue,
        device: gannet::device::parse_device(&args.device)?,
        test_models: args.test_models,
    };
    let server = Server::bind(&opts)?;
    let addr = server.local_addr()?;
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
            report.ok, report.requests, report.wall_s, report.requests_per_s, report.images_per_s, report.latency_p50_ms, report.latency_p95_ms, report.latency_max_ms
        );
    }
    anyhow::ensure!(report.failed == 0, "{} requests failed, e.g. {:?}", report.failed, report.errors);
    Ok(())
}
