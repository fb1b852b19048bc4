//! A loopback load test: many clients at once asking for generated batches (`gannet serve
//! --load-test N`, and the API test that asserts 100 concurrent requests all succeed).

use crate::client;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub checkpoint: String,
    /// Requests in all.
    pub requests: usize,
    /// Clients sending at the same time (each sends its next request when the last is answered).
    pub concurrency: usize,
    /// Images per request.
    pub count: usize,
    /// Bound on each request.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub requests: usize,
    pub concurrency: usize,
    pub images_per_request: usize,
    pub ok: usize,
    pub failed: usize,
    /// The first few failures, as "status: message" or the I/O error.
    pub errors: Vec<String>,
    pub wall_s: f64,
    pub requests_per_s: f64,
    pub images_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_max_ms: f64,
}

/// Sends `opts.requests` generate requests from `opts.concurrency` threads, all starting
/// together; request i uses seed i, so no two are alike.
pub fn run(addr: SocketAddr, opts: &LoadOptions) -> LoadReport {
    let next = Arc::new(AtomicUsize::new(0));
    let clients = opts.concurrency.max(1);
    let start = Arc::new(Barrier::new(clients + 1));
    let results = Arc::new(Mutex::new(Vec::<(f64, Result<(), String>)>::new()));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (next, start, results, opts) = (next.clone(), start.clone(), results.clone(), opts.clone());
            std::thread::spawn(move || {
                start.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= opts.requests {
                        break;
                    }
                    let t = Instant::now();
                    let outcome = one_request(addr, &opts, i as u64);
                    results.lock().unwrap().push((t.elapsed().as_secs_f64() * 1e3, outcome));
                }
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    for t in threads {
        let _ = t.join();
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let results = results.lock().unwrap();
    report(opts, wall_s, &results)
}

fn one_request(addr: SocketAddr, opts: &LoadOptions, seed: u64) -> Result<(), String> {
    let body = serde_json::json!({ "checkpoint": opts.checkpoint, "seed": seed, "count": opts.count });
    let r = client::request(addr, "POST", "/api/generate", Some("application/json"), body.to_string().as_bytes(), opts.timeout).map_err(|e| e.to_string())?;
    let images = r.json()["images"].as_array().map_or(0, |a| a.len());
    match (r.status, images == opts.count) {
        (200, true) => Ok(()),
        (200, false) => Err(format!("200 with {images} images, expected {}", opts.count)),
        (s, _) => Err(format!("{s}: {}", r.json()["error"].as_str().unwrap_or(&r.text()))),
    }
}

fn report(opts: &LoadOptions, wall_s: f64, results: &[(f64, Result<(), String>)]) -> LoadReport {
    let mut ms: Vec<f64> = results.iter().map(|(t, _)| *t).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms.get(((ms.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    LoadReport {
        requests: opts.requests,
        concurrency: opts.concurrency,
        images_per_request: opts.count,
        ok,
        failed: results.len() - ok,
        errors: results.iter().filter_map(|(_, r)| r.clone().err()).take(5).collect(),
        wall_s,
        requests_per_s: ok as f64 / wall_s,
        images_per_s: (ok * opts.count) as f64 / wall_s,
        latency_p50_ms: pct(0.5),
        latency_p95_ms: pct(0.95),
        latency_max_ms: ms.last().copied().unwrap_or(0.0),
    }
}
