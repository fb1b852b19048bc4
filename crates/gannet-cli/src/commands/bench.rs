use crate::bench::{self, BenchOptions, Workload};
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
#[command(after_help = "Benchmarks (DCGAN, nz 100, ngf = ndf = 64, 3 channels, synthetic data):\n  \
    train64   one train step (D update + G update) at 64x64, batch 64\n  \
    train32   the same at 32x32\n  \
    gen64     generator forward at 64x64, batch 256\n\
    Image-to-image (one train step of the preset, its networks and batch, random images):\n  \
    pix2pix   pix2pix-emoji\n  \
    cyclegan  cyclegan-emoji\n  \
    superres  superres-emoji\n\n\
    Twins: scripts/compare_pytorch.sh alternates these with PyTorch doing the same work.\n\n\
    Examples:\n  gannet bench\n  gannet bench --only train64 --reps 10 --json")]
pub struct BenchArgs {
    /// Timed repetitions per benchmark (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Untimed warm-up repetitions.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Run only these benchmarks: train64, train32, gen64, pix2pix, cyclegan, superres
    /// (repeatable or comma-separated).
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
    let device = gannet::device::parse_device(&args.device)?;
    let workloads =
        if args.only.is_empty() { Workload::ALL.to_vec() } else { args.only.iter().map(|s| Workload::parse(s)).collect::<gannet::Result<Vec<_>>>()? };
    let opts = BenchOptions { reps: args.reps, warmup: args.warmup, ..Default::default() };
    let mut results = Vec::new();
    if !args.json {
        println!("CPU: {}; {} threads; {}", bench::cpu_model(), rayon::current_num_threads(), bench::kernel_path());
        println!("{:<8} {:>6} {:>10} {:>10} {:>10} {:>9} {:>10}", "bench", "batch", "median s", "img/s", "GFLOP/s", "GFLOP", "peak MiB");
    }
    for w in workloads {
        let r = bench::run(w, &opts, &device)?;
        if !args.json {
            let peak = r.peak_rss_mib.map_or("?".to_string(), |m| format!("{m:.0}"));
            println!("{:<8} {:>6} {:>10.4} {:>10.1} {:>10.1} {:>9.2} {:>10}", r.name, r.batch, r.median_s, r.img_per_s, r.gflop_per_s, r.gflop, peak);
        }
        results.push(r);
    }
    if args.json {
        println!("{}", bench::results_json(&results, &args.device)?);
    }
    Ok(())
}
