//! Throughput benchmarks (`gannet bench`): DCGAN train steps and generation on synthetic data.
//!
//! - `train64` / `train32`: one training step at batch 64 — one D update (real + fake) and one G
//!   update — exactly [`gannet::train::GanState::step`], the code [`gannet::train::Trainer`]
//!   runs, with Adam and the non-saturating loss (the DCGAN recipe, no EMA or penalty). Data are random images, which
//!   does not change the work done.
//! - `gen64`: a 64x64 generator forward pass at batch 256 in eval mode.
//! - `pix2pix`, `cyclegan`, `superres`: one training step of that image-to-image preset
//!   (`gannet train-i2i --preset NAME-emoji`, its networks, batch and resolution), exactly
//!   [`gannet::train::i2i::I2iState::step`], on random images.
//!
//! Reported: the median over `reps` timed repetitions (after `warmup` untimed ones), images/s,
//! achieved GFLOP/s and the peak resident memory.
//!
//! DCGAN FLOPs are counted analytically from the convolution shapes (the image-to-image rows count
//! the convolutions' MACs as they run, [`gannet::ops::conv_macs`], times 3 for the backward): a forward pass is 2 x MACs; a
//! network pass that is back-propagated counts 3 x its forward FLOPs (forward, input gradient,
//! weight gradient). A train step has one G forward + backward (3 G) and three D passes with
//! backward (real, detached fake, fake for G's loss: 9 D). BatchNorm, activations and Adam are not
//! counted (they are a few percent of the FLOPs).

use gannet::candle_core::{self, Device, Tensor};
use gannet::loss::GanLoss;
use gannet::models::dcgan::DcganConfig;
use gannet::models::{ImageShape, ModelConfig};
use gannet::nn::Mode;
use gannet::rng::{self, Stream};
use gannet::train::{GanState, RealBatch, TrainConfig};
use serde::Serialize;
use std::time::Instant;

/// What to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Train64,
    Train32,
    Gen64,
    Pix2pix,
    Cyclegan,
    Superres,
}

impl Workload {
    pub const ALL: [Workload; 6] = [Workload::Train64, Workload::Train32, Workload::Gen64, Workload::Pix2pix, Workload::Cyclegan, Workload::Superres];

    pub fn name(&self) -> &'static str {
        match self {
            Workload::Train64 => "train64",
            Workload::Train32 => "train32",
            Workload::Gen64 => "gen64",
            Workload::Pix2pix => "pix2pix",
            Workload::Cyclegan => "cyclegan",
            Workload::Superres => "superres",
        }
    }

    pub fn parse(s: &str) -> gannet::Result<Self> {
        Self::ALL.into_iter().find(|w| w.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|w| w.name()).collect();
            gannet::Error::Config(format!("unknown benchmark '{s}': choose from {}", names.join(", ")))
        })
    }

    /// The image-to-image preset a workload times, if it is one.
    fn i2i_preset(&self) -> Option<&'static str> {
        match self {
            Workload::Pix2pix => Some("pix2pix-emoji"),
            Workload::Cyclegan => Some("cyclegan-emoji"),
            Workload::Superres => Some("superres-emoji"),
            _ => None,
        }
    }

    fn resolution(&self) -> usize {
        match self {
            Workload::Train32 => 32,
            _ => 64,
        }
    }

    /// Batch 64 for training, 256 for generation.
    pub fn batch(&self) -> usize {
        match self {
            Workload::Gen64 => 256,
            _ => 64,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    pub reps: usize,
    pub warmup: usize,
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self { reps: 5, warmup: 2, seed: 0 }
    }
}

/// One benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub name: String,
    pub batch: usize,
    pub resolution: usize,
    pub reps: usize,
    /// Seconds per repetition (one train step, or one generation batch), in order.
    pub times_s: Vec<f64>,
    pub median_s: f64,
    pub img_per_s: f64,
    /// Analytic FLOPs of one repetition, in GFLOP.
    pub gflop: f64,
    /// gflop / median_s.
    pub gflop_per_s: f64,
    /// Peak resident memory (VmHWM) during this benchmark, in MiB; the process-wide peak where
    /// the kernel does not let it be reset.
    pub peak_rss_mib: Option<f64>,
    /// Whether the peak was reset before this benchmark (else it is the process-wide peak).
    pub peak_rss_per_bench: bool,
    pub threads: usize,
}

/// The DCGAN both benchmarks use: nz 100, ngf = ndf = 64, 3 channels.
fn dcgan() -> DcganConfig {
    DcganConfig { latent_dim: 100, g_channels: 64, d_channels: 64, ..DcganConfig::default() }
}

/// Multiply-accumulates of one DCGAN generator and discriminator forward pass for one image.
pub fn dcgan_macs(cfg: &DcganConfig, shape: ImageShape) -> (u64, u64) {
    let r = shape.resolution as u64;
    let base = if r.is_multiple_of(4) && (r / 4).is_power_of_two() { 4 } else { 7 };
    let doublings = (r / base).trailing_zeros() as u64;
    let (nz, ngf, ndf, nc) = (cfg.latent_dim as u64, cfg.g_channels as u64, cfg.d_channels as u64, shape.channels as u64);
    // G: stem nz -> ngf*2^(d-1) on base x base, then k4 s2 transposed convs; a transposed conv
    // does in_pixels * cin * cout * k^2 MACs.
    let gch = |i: u64| ngf << (doublings - 1 - i);
    let mut g = nz * gch(0) * base * base;
    let mut side = base;
    for i in 1..doublings {
        g += side * side * gch(i - 1) * gch(i) * 16;
        side *= 2;
    }
    g += side * side * gch(doublings - 1) * nc * 16;
    // D: k4 s2 convs do out_pixels * cin * cout * k^2 MACs; the head is a base x base conv.
    let dch = |i: u64| ndf << i;
    let mut side = r / 2;
    let mut d = side * side * nc * dch(0) * 16;
    for i in 1..doublings {
        side /= 2;
        d += side * side * dch(i - 1) * dch(i) * 16;
    }
    d += dch(doublings - 1) * base * base;
    (g, d)
}

/// Peak resident memory of this process in MiB (VmHWM), if /proc is there.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets VmHWM to the current RSS (Linux: `5` into clear_refs); false where not allowed.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Runs one benchmark on `device`.
pub fn run(w: Workload, opts: &BenchOptions, device: &Device) -> gannet::Result<BenchResult> {
    if opts.reps == 0 {
        return Err(gannet::Error::Config("--reps must be at least 1".into()));
    }
    if let Some(preset) = w.i2i_preset() {
        return run_i2i(w, preset, opts, device);
    }
    let cfg = dcgan();
    let shape = ImageShape { channels: 3, resolution: w.resolution() };
    let train_cfg =
        TrainConfig { seed: opts.seed, loss: GanLoss::NonSaturating, model: ModelConfig::Dcgan(cfg.clone()), ema_decay: 0.0, ..TrainConfig::default() };
    let mut state = GanState::new(&train_cfg, shape, device)?;
    let (g_macs, d_macs) = dcgan_macs(&cfg, shape);
    let batch = w.batch();
    let peak_resettable = reset_peak_rss();
    let mut times = Vec::with_capacity(opts.reps);
    let gflop;
    match w {
        Workload::Train64 | Workload::Train32 => {
            gflop = 2.0 * (3 * g_macs + 9 * d_macs) as f64 * batch as f64 / 1e9;
            for i in 0..opts.warmup + opts.reps {
                let step = i as u64;
                // Data are drawn before the clock starts: the loader prepares batches in the
                // background during training, so they are not part of a step's cost.
                let mut r = rng::rng(opts.seed, Stream::Latent, step);
                let images = rng::rand_uniform(&mut r, &[batch, 3, shape.resolution, shape.resolution], -1.0, 1.0, device)?;
                let mut next = Some(RealBatch { images, labels: None });
                let t = Instant::now();
                let out = state.step(step, |_| next.take().ok_or_else(|| gannet::Error::Msg("one D step per G step".into())))?;
                let dt = t.elapsed().as_secs_f64();
                if !out.is_finite() {
                    return Err(gannet::Error::Msg(format!("benchmark diverged at step {step}")));
                }
                if i >= opts.warmup {
                    times.push(dt);
                }
            }
        }
        Workload::Gen64 => {
            gflop = 2.0 * g_macs as f64 * batch as f64 / 1e9;
            for i in 0..opts.warmup + opts.reps {
                let mut r = rng::rng(opts.seed, Stream::Sample, i as u64);
                let z = rng::randn(&mut r, &[batch, cfg.latent_dim], device)?;
                let t = Instant::now();
                let images = state.gan.gen.forward(&z, None, Mode::Eval)?;
                sync(&images)?;
                let dt = t.elapsed().as_secs_f64();
                if i >= opts.warmup {
                    times.push(dt);
                }
            }
        }
        Workload::Pix2pix | Workload::Cyclegan | Workload::Superres => unreachable!("image-to-image workloads are timed by run_i2i"),
    }
    Ok(result(w, batch, shape.resolution, times, gflop, peak_resettable))
}

fn result(w: Workload, batch: usize, resolution: usize, times: Vec<f64>, gflop: f64, peak_rss_per_bench: bool) -> BenchResult {
    let med = median(&times);
    BenchResult {
        name: w.name().to_string(),
        batch,
        resolution,
        reps: times.len(),
        times_s: times,
        median_s: med,
        img_per_s: batch as f64 / med,
        gflop,
        gflop_per_s: gflop / med,
        peak_rss_mib: peak_rss_mib(),
        peak_rss_per_bench,
        threads: rayon::current_num_threads(),
    }
}

/// One training step of an image-to-image preset on random images (both domains, or the
/// high-resolution images for super-resolution), as `gannet train-i2i --preset` runs it.
fn run_i2i(w: Workload, preset: &str, opts: &BenchOptions, device: &Device) -> gannet::Result<BenchResult> {
    use gannet::train::i2i::{presets, I2iState, Task};
    let mut cfg = presets::find(preset)?.with_overrides(None)?;
    cfg.seed = opts.seed;
    let (batch, res) = (cfg.schedule.batch_size, cfg.data.resolution);
    let mut state = I2iState::new(&cfg, 3, device)?;
    let peak_resettable = reset_peak_rss();
    let (mut times, mut macs) = (Vec::with_capacity(opts.reps), 0);
    for i in 0..opts.warmup + opts.reps {
        let step = i as u64;
        let mut r = rng::rng(opts.seed, Stream::Latent, step);
        let a = rng::rand_uniform(&mut r, &[batch, 3, res, res], -1.0, 1.0, device)?;
        let b = if cfg.task == Task::Superres { None } else { Some(rng::rand_uniform(&mut r, &[batch, 3, res, res], -1.0, 1.0, device)?) };
        let before = gannet::ops::conv_macs();
        let t = Instant::now();
        let out = state.step(step, &a, b.as_ref())?;
        let dt = t.elapsed().as_secs_f64();
        macs = gannet::ops::conv_macs() - before;
        if !out.d_loss.is_finite() {
            return Err(gannet::Error::Msg(format!("benchmark diverged at step {step}")));
        }
        if i >= opts.warmup {
            times.push(dt);
        }
    }
    // Every pass of these steps is back-propagated: forward, input and weight gradients.
    let gflop = 2.0 * 3.0 * macs as f64 / 1e9;
    Ok(result(w, batch, res, times, gflop, peak_resettable))
}

/// The CPU's model name (Linux), for the benchmark's header: ratios mean little without it.
/// Virtual machines often name only the vendor line ("AMD EPYC"), so the family and model
/// numbers follow it.
pub fn cpu_model() -> String {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return std::env::consts::ARCH.to_string() };
    let field = |key: &str| info.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == key)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim());
    match (field("model name"), field("cpu family"), field("model")) {
        (Some(name), Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        (Some(name), _, _) => name.to_string(),
        _ => std::env::consts::ARCH.to_string(),
    }
}

/// The GEMM kernels the CPU gets: the gemm crate picks its micro-kernels from the CPU's features
/// at run time (gannet builds it without its AVX-512 kernels, docs/speed.md).
pub fn kernel_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "gemm f32 AVX2+FMA micro-kernels, gannet im2col/col2im + fused norm kernels";
        }
        "gemm f32 SSE micro-kernels, gannet im2col/col2im + fused norm kernels"
    }
    #[cfg(not(target_arch = "x86_64"))]
    "gemm f32 portable/NEON micro-kernels, gannet im2col/col2im + fused norm kernels"
}

/// Waits for the device to finish (reads one value back).
fn sync(t: &Tensor) -> gannet::Result<()> {
    let _ = t.flatten_all()?.get(0)?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    Ok(())
}

/// `{"framework": "gannet", "device": .., "threads": .., "results": [..]}` plus, for easy
/// comparison with `scripts/pytorch_dcgan_bench.py`, `train_img_per_s` (train64) and
/// `gen_img_per_s` (gen64) where those ran.
pub fn results_json(results: &[BenchResult], device: &str) -> gannet::Result<String> {
    let find = |n: &str| results.iter().find(|r| r.name == n).map(|r| r.img_per_s);
    let v = serde_json::json!({
        "framework": "gannet",
        "device": device,
        "cpu": cpu_model(),
        "kernels": kernel_path(),
        "threads": rayon::current_num_threads(),
        "train_img_per_s": find("train64"),
        "train32_img_per_s": find("train32"),
        "gen_img_per_s": find("gen64"),
        "results": results,
    });
    serde_json::to_string(&v).map_err(|e| gannet::Error::Msg(e.to_string()))
}
