use crate::bench::{self, BenchOptions, BenchResult, Workload};
use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
#[command(after_help = "Benchmarks (synthetic data; each a training step unless said otherwise):\n  \
    train64    DCGAN (nz 100, ngf = ndf = 64, RGB) at 64x64, batch 64: D update + G update\n  \
    train32    the same at 32x32\n  \
    gen64      the same DCGAN's generator forward at 64x64, batch 256\n  \
    sngan      sngan-fashion: spectral-norm D, hinge loss\n  \
    biggan     biggan-fashion: class-conditional BigGAN, 32x32\n  \
    stylegan2  stylegan2-fashion: with its lazy R1 and path-length steps (see the mean)\n  \
    progan     progan-fashion fully grown (32x32), WGAN-GP\n  \
    pix2pix    pix2pix-emoji\n  \
    cyclegan   cyclegan-emoji\n  \
    superres   superres-emoji\n  \
    fid        FID Inception features of 50 RGB 64x64 images (needs the weights, GANNET_MODELS)\n\n\
    Presets run as `gannet train --preset` / `train-i2i --preset` would: their networks, losses,\n\
    penalties and batch. Rows whose penalties need second-order gradients (stylegan2, progan) run\n\
    in a child process when other rows are timed too, so that they do not slow the others.\n\n\
    Twins: scripts/compare_pytorch.sh alternates rows with PyTorch doing the same work.\n\n\
    Examples:\n  gannet bench\n  gannet bench --only train64 --reps 10 --json\n  gannet bench --only stylegan2 --reps 16")]
pub struct BenchArgs {
    /// Timed repetitions per benchmark (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Untimed warm-up repetitions.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Run only these benchmarks (repeatable or comma-separated; names below).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let workloads =
        if args.only.is_empty() { Workload::ALL.to_vec() } else { args.only.iter().map(|s| Workload::parse(s)).collect::<gannet::Result<Vec<_>>>()? };
    let mut here = Vec::new();
    let mut second_order = Vec::new();
    for w in workloads {
        if w.needs_second_order()? {
            second_order.push(w);
        } else {
            here.push(w);
        }
    }
    // Second-order gradients must be switched on before the first backward pass, and they would
    // slow every other row: alone, these rows run here with it on; beside others, in a child.
    let child = if here.is_empty() {
        gannet::autodiff::enable_second_order();
        here = std::mem::take(&mut second_order);
        None
    } else {
        (!second_order.is_empty()).then_some(second_order)
    };
    let device = gannet::device::parse_device(&args.device)?;
    let opts = BenchOptions { reps: args.reps, warmup: args.warmup, ..Default::default() };
    if !args.json {
        println!("CPU: {}; {} threads; {}", bench::cpu_model(), rayon::current_num_threads(), bench::kernel_path());
        println!("{:<9} {:>6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10}", "bench", "batch", "median s", "mean s", "img/s", "GFLOP/s", "GFLOP", "peak MiB");
    }
    let mut results = Vec::new();
    for w in here {
        let r = bench::run(w, &opts, &device)?;
        print_row(&r, args.json);
        results.push(r);
    }
    if let Some(rows) = child {
        for r in run_in_child(&rows, &args)? {
            print_row(&r, args.json);
            results.push(r);
        }
    }
    if args.json {
        println!("{}", bench::results_json(&results, &args.device)?);
    }
    Ok(())
}

fn print_row(r: &BenchResult, json: bool) {
    if !json {
        let peak = r.peak_rss_mib.map_or("?".to_string(), |m| format!("{m:.0}"));
        println!(
            "{:<9} {:>6} {:>10.4} {:>10.4} {:>10.1} {:>10.1} {:>9.2} {:>10}",
            r.name, r.batch, r.median_s, r.mean_s, r.img_per_s, r.gflop_per_s, r.gflop, peak
        );
    }
}

/// Runs `rows` in a child `gannet bench` with second-order gradients on, and reads its results.
fn run_in_child(rows: &[Workload], args: &BenchArgs) -> Result<Vec<BenchResult>> {
    let exe = std::env::current_exe().context("finding the gannet binary to run the second-order rows")?;
    let names: Vec<&str> = rows.iter().map(|w| w.name()).collect();
    let out = std::process::Command::new(&exe)
        .args(["bench", "--json", "--only", &names.join(","), "--reps", &args.reps.to_string(), "--warmup", &args.warmup.to_string()])
        .args(["--device", &args.device])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {} bench for {}", exe.display(), names.join(",")))?;
    anyhow::ensure!(out.status.success(), "the benchmark of {} failed ({})", names.join(","), out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading the second-order rows' JSON")?;
    serde_json::from_value(v["results"].clone()).context("reading the second-order rows' results")
}
