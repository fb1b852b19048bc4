//! Throughput benchmarks (`gannet bench`): one training step of every architecture, generation
//! and FID feature extraction, on synthetic data.
//!
//! - `train64` / `train32`: one training step at batch 64 — one D update (real + fake) and one G
//!   update — exactly [`gannet::train::GanState::step`], the code [`gannet::train::Trainer`]
//!   runs, with Adam and the non-saturating loss (the DCGAN recipe, no EMA or penalty). Data are random images, which
//!   does not change the work done.
//! - `gen64`: a 64x64 generator forward pass at batch 256 in eval mode.
//! - `sngan`, `biggan`, `stylegan2`, `progan`: one training step of that GAN preset
//!   (`gannet train --preset NAME-fashion`: its networks, loss, penalties, batch, resolution and
//!   EMA), exactly `GanState::step`, at the last steps of the preset's schedule (ProGAN fully
//!   grown), on random images and labels.
//! - `pix2pix`, `cyclegan`, `superres`: one training step of that image-to-image preset
//!   (`gannet train-i2i --preset NAME-emoji`, its networks, batch and resolution), exactly
//!   [`gannet::train::i2i::I2iState::step`], on random images.
//! - `fid`: pool3 features of 50 RGB 64x64 images with the FID Inception network (pytorch-fid's
//!   batch; the images are resized to 299x299 as in every FID).
//!
//! Reported: the median over `reps` timed repetitions (after `warmup` untimed ones), their mean
//! (lazy penalties run every few steps: the mean includes their share), images/s of the median,
//! achieved GFLOP/s and the peak resident memory.
//!
//! DCGAN FLOPs are counted analytically from the convolution shapes; the other rows count the
//! convolutions' multiply-accumulates as they run ([`gannet::ops::conv_macs`]). A forward pass is
//! 2 x MACs; a network pass that is back-propagated counts 3 x its forward FLOPs (forward, input
//! gradient, weight gradient), which the counted rows apply to every pass (the second-order passes
//! of penalties and the dense layers are not counted). A DCGAN train step has one G forward +
//! backward (3 G) and three D passes with backward (real, detached fake, fake for G's loss: 9 D).
//! BatchNorm, activations and Adam are not counted (they are a few percent of the FLOPs).

use gannet::candle_core::{self, Device, Tensor};
use gannet::loss::GanLoss;
use gannet::models::dcgan::DcganConfig;
use gannet::models::{ImageShape, ModelConfig};
use gannet::nn::Mode;
use gannet::rng::{self, Stream};
use gannet::train::{GanState, RealBatch, TrainConfig};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What a benchmark times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// The fixed DCGAN's train step at this resolution.
    DcganTrain(usize),
    /// The fixed DCGAN's 64x64 generator in eval mode.
    DcganGenerate,
    /// A GAN preset's train step; its data's channels and classes (the presets name data on
    /// disk, which the benchmark does not read).
    GanPreset { preset: &'static str, channels: usize, classes: usize },
    /// An image-to-image preset's train step.
    I2iPreset(&'static str),
    /// FID Inception features.
    FidFeatures,
}

/// One benchmark: its name on the command line and what it times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    name: &'static str,
    work: Work,
}

const fn gan(name: &'static str, preset: &'static str) -> Workload {
    // Every GAN preset trains on Fashion-MNIST: grey, 10 classes.
    Workload { name, work: Work::GanPreset { preset, channels: 1, classes: 10 } }
}

impl Workload {
    pub const ALL: [Workload; 11] = [
        Workload { name: "train64", work: Work::DcganTrain(64) },
        Workload { name: "train32", work: Work::DcganTrain(32) },
        Workload { name: "gen64", work: Work::DcganGenerate },
        gan("sngan", "sngan-fashion"),
        gan("biggan", "biggan-fashion"),
        gan("stylegan2", "stylegan2-fashion"),
        gan("progan", "progan-fashion"),
        Workload { name: "pix2pix", work: Work::I2iPreset("pix2pix-emoji") },
        Workload { name: "cyclegan", work: Work::I2iPreset("cyclegan-emoji") },
        Workload { name: "superres", work: Work::I2iPreset("superres-emoji") },
        Workload { name: "fid", work: Work::FidFeatures },
    ];

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn parse(s: &str) -> gannet::Result<Self> {
        Self::ALL.into_iter().find(|w| w.name == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|w| w.name).collect();
            gannet::Error::Config(format!("unknown benchmark '{s}': choose from {}", names.join(", ")))
        })
    }

    /// Whether the step differentiates a gradient (R1, gradient penalty, path length): such rows
    /// need `CANDLE_GRAD_DO_NOT_DETACH` set before the process's first backward pass, which
    /// slows the others ([`gannet::autodiff`]).
    pub fn needs_second_order(&self) -> gannet::Result<bool> {
        Ok(match self.work {
            Work::GanPreset { preset, .. } => gannet::train::presets::find(preset)?.config()?.needs_second_order(),
            _ => false,
        })
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    pub name: String,
    pub batch: usize,
    pub resolution: usize,
    pub reps: usize,
    /// Seconds per repetition (one train step, or one generation batch), in order.
    pub times_s: Vec<f64>,
    pub median_s: f64,
    /// Mean seconds per repetition: includes lazy penalties that run every few steps.
    pub mean_s: f64,
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
    // On a pool thread, as the trainer runs its steps (gannet::nn::on_pool).
    gannet::nn::on_pool(|| run_here(w, opts, device))
}

fn run_here(w: Workload, opts: &BenchOptions, device: &Device) -> gannet::Result<BenchResult> {
    match w.work {
        Work::DcganTrain(resolution) => run_dcgan_train(w, resolution, opts, device),
        Work::DcganGenerate => run_dcgan_generate(w, opts, device),
        Work::GanPreset { preset, channels, classes } => run_gan_preset(w, preset, channels, classes, opts, device),
        Work::I2iPreset(preset) => run_i2i(w, preset, opts, device),
        Work::FidFeatures => run_fid(w, opts, device),
    }
}

/// Times `reps` calls of `once(i)` after `warmup` untimed ones; `once` returns its own duration
/// (so that it can prepare inputs off the clock). Also returns the convolutions' MACs of the last
/// call ([`gannet::ops::conv_macs`]; preparing inputs runs none).
fn timed(opts: &BenchOptions, mut once: impl FnMut(u64) -> gannet::Result<f64>) -> gannet::Result<(Vec<f64>, u64)> {
    let (mut times, mut macs) = (Vec::with_capacity(opts.reps), 0);
    for i in 0..opts.warmup + opts.reps {
        let before = gannet::ops::conv_macs();
        let dt = once(i as u64)?;
        macs = gannet::ops::conv_macs() - before;
        if i >= opts.warmup {
            times.push(dt);
        }
    }
    Ok((times, macs))
}

fn run_dcgan_train(w: Workload, resolution: usize, opts: &BenchOptions, device: &Device) -> gannet::Result<BenchResult> {
    let cfg = dcgan();
    let shape = ImageShape { channels: 3, resolution };
    let mut train_cfg =
        TrainConfig { seed: opts.seed, loss: GanLoss::NonSaturating, model: ModelConfig::Dcgan(cfg.clone()), ema_decay: 0.0, ..TrainConfig::default() };
    train_cfg.schedule.batch_size = 64;
    let (g_macs, d_macs) = dcgan_macs(&cfg, shape);
    let batch = train_cfg.schedule.batch_size as u64;
    let analytic = 2.0 * ((3 * g_macs + 9 * d_macs) * batch) as f64 / 1e9;
    run_gan_step(w, &train_cfg, shape, 0, 0, Some(analytic), device, opts)
}

fn run_dcgan_generate(w: Workload, opts: &BenchOptions, device: &Device) -> gannet::Result<BenchResult> {
    let cfg = dcgan();
    let shape = ImageShape { channels: 3, resolution: 64 };
    let train_cfg = TrainConfig { seed: opts.seed, model: ModelConfig::Dcgan(cfg.clone()), ema_decay: 0.0, ..TrainConfig::default() };
    let state = GanState::new(&train_cfg, shape, device)?;
    let (g_macs, _) = dcgan_macs(&cfg, shape);
    let batch = 256;
    let peak_resettable = reset_peak_rss();
    let (times, _) = timed(opts, |i| {
        let mut r = rng::rng(opts.seed, Stream::Sample, i);
        let z = rng::randn(&mut r, &[batch, cfg.latent_dim], device)?;
        let t = Instant::now();
        let images = state.gan.gen.forward(&z, None, Mode::Eval)?;
        sync(&images)?;
        Ok(t.elapsed().as_secs_f64())
    })?;
    let gflop = 2.0 * g_macs as f64 * batch as f64 / 1e9;
    Ok(result(w, batch, shape.resolution, times, gflop, peak_resettable))
}

/// One training step of a GAN preset on random images (and labels), as `gannet train --preset`
/// runs it, at the end of its schedule.
fn run_gan_preset(w: Workload, preset: &str, channels: usize, classes: usize, opts: &BenchOptions, device: &Device) -> gannet::Result<BenchResult> {
    let mut cfg = gannet::train::presets::find(preset)?.config()?;
    cfg.seed = opts.seed;
    let shape = ImageShape { channels, resolution: cfg.data.resolution.unwrap_or(28) };
    let classes = cfg.model.classes_for(classes)?;
    // The schedule's last steps: fully grown (ProGAN), learning rates as they end.
    let first = cfg.schedule.steps.saturating_sub((opts.warmup + opts.reps) as u64);
    run_gan_step(w, &cfg, shape, classes, first, None, device, opts)
}

/// Times `GanState::step` (what the trainer runs) from generator update `first` on, on random
/// batches drawn off the clock (the loader prepares batches in the background during training).
/// FLOPs: `gflop` where given (an analytic count), else the convolutions' MACs counted as the
/// step ran, every pass back-propagated (forward, input and weight gradients: 3 x 2 x MACs).
#[allow(clippy::too_many_arguments)]
fn run_gan_step(
    w: Workload,
    cfg: &TrainConfig,
    shape: ImageShape,
    classes: usize,
    first: u64,
    gflop: Option<f64>,
    device: &Device,
    opts: &BenchOptions,
) -> gannet::Result<BenchResult> {
    let mut state = GanState::with_classes(cfg, shape, classes, device)?;
    let (batch, d_steps) = (cfg.schedule.batch_size, cfg.schedule.d_steps_per_g as u64);
    let peak_resettable = reset_peak_rss();
    let (times, macs) = timed(opts, |i| {
        let step = first + i;
        // D update j of step s trains on batch s * d_steps + j, as in training.
        let batches: Vec<RealBatch> =
            (0..d_steps).map(|j| random_batch(opts.seed, step * d_steps + j, batch, shape, classes, device)).collect::<gannet::Result<_>>()?;
        let mut batches = batches.into_iter();
        let t = Instant::now();
        let out = state.step(step, |_| batches.next().ok_or_else(|| gannet::Error::Msg("more D steps than batches drawn".into())))?;
        let dt = t.elapsed().as_secs_f64();
        if !out.is_finite() {
            return Err(gannet::Error::Msg(format!("benchmark diverged at step {step}")));
        }
        Ok(dt)
    })?;
    let gflop = gflop.unwrap_or(2.0 * 3.0 * macs as f64 / 1e9);
    Ok(result(w, batch, shape.resolution, times, gflop, peak_resettable))
}

/// Random images in [-1, 1] and, for `classes` > 0, random labels.
fn random_batch(seed: u64, index: u64, batch: usize, shape: ImageShape, classes: usize, device: &Device) -> gannet::Result<RealBatch> {
    let mut r = rng::rng(seed, Stream::Shuffle, index);
    let images = rng::rand_uniform(&mut r, &[batch, shape.channels, shape.resolution, shape.resolution], -1.0, 1.0, device)?;
    let labels = if classes > 0 {
        let l = rng::rand_uniform(&mut r, &[batch], 0.0, classes as f32, device)?.floor()?.clamp(0.0, (classes - 1) as f32)?;
        Some(l.to_dtype(candle_core::DType::U32)?)
    } else {
        None
    };
    Ok(RealBatch { images, labels })
}

/// pool3 features of 50 random RGB 64x64 images, as `gannet eval` embeds generated images.
fn run_fid(w: Workload, opts: &BenchOptions, device: &Device) -> gannet::Result<BenchResult> {
    let inception = gannet::metrics::FidInception::load_default(device)?;
    let (batch, resolution) = (50, 64);
    let peak_resettable = reset_peak_rss();
    let (times, macs) = timed(opts, |i| {
        let mut r = rng::rng(opts.seed, Stream::Sample, i);
        let images = rng::rand_uniform(&mut r, &[batch, 3, resolution, resolution], 0.0, 1.0, device)?;
        let t = Instant::now();
        let f = inception.features(&images)?;
        sync(&f)?;
        Ok(t.elapsed().as_secs_f64())
    })?;
    Ok(result(w, batch, resolution, times, 2.0 * macs as f64 / 1e9, peak_resettable))
}

fn result(w: Workload, batch: usize, resolution: usize, times: Vec<f64>, gflop: f64, peak_rss_per_bench: bool) -> BenchResult {
    let med = median(&times);
    BenchResult {
        name: w.name.to_string(),
        batch,
        resolution,
        reps: times.len(),
        mean_s: times.iter().sum::<f64>() / times.len().max(1) as f64,
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
    let (times, macs) = timed(opts, |step| {
        let mut r = rng::rng(opts.seed, Stream::Latent, step);
        let a = rng::rand_uniform(&mut r, &[batch, 3, res, res], -1.0, 1.0, device)?;
        let b = if cfg.task == Task::Superres { None } else { Some(rng::rand_uniform(&mut r, &[batch, 3, res, res], -1.0, 1.0, device)?) };
        let t = Instant::now();
        let out = state.step(step, &a, b.as_ref())?;
        let dt = t.elapsed().as_secs_f64();
        if !out.d_loss.is_finite() {
            return Err(gannet::Error::Msg(format!("benchmark diverged at step {step}")));
        }
        Ok(dt)
    })?;
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
