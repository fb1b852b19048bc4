//! `gannet`: train generative adversarial networks and use them, from the command line.
//! The work is done by the `gannet` library; this crate only parses flags and reports progress.

mod bench;
mod commands;
mod launch;
mod progress;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

// candle allocates a fresh buffer for every op result. glibc's malloc returns large blocks to the
// kernel on free, so each step faulted in (and zeroed) gigabytes of new pages: 31% of a DCGAN
// train step's CPU time in `perf`. jemalloc keeps freed pages for reuse, and the buffer cache on
// top hands a step's freed blocks straight to the next step's requests of the same size, which
// jemalloc's purging still left to the kernel: 4.3 -> 2.6 s per step (see docs/speed.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: gannet::buffer_cache::BufferCache<tikv_jemallocator::Jemalloc> = gannet::buffer_cache::BufferCache::new(tikv_jemallocator::Jemalloc);

/// jemalloc's `malloc_conf` (measured in docs/speed.md, "Allocator"):
/// - keep freed pages a minute before returning them, which covers the gap between two train
///   steps (the default 10 s purge still left 6% of the time in page faults);
/// - `oversize_threshold:0`: no separate arena for blocks over 8 MiB, which jemalloc purges at
///   once on free; a batch's activations and im2col buffers are that big;
/// - `thp:always`: transparent huge pages for the heap, so a fresh buffer costs one fault per
///   2 MiB instead of one per 4 KiB (in a VM each fault and TLB shootdown is expensive).
///
/// Together 2.5-3x faster default training than the decay setting alone on the 2-core VM.
#[cfg(not(target_env = "msvc"))]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &u8 = &b"dirty_decay_ms:60000,muzzy_decay_ms:60000,oversize_threshold:0,thp:always\0"[0];

#[derive(Parser)]
#[command(
    name = "gannet",
    version,
    about = "Train GANs on your images and generate new ones",
    long_about = "Train generative adversarial networks on your own images and generate new ones.\n\n\
        Quick start:\n  \
        gannet train                          # DCGAN on 10k built-in MNIST digits, ~minutes on a laptop CPU\n  \
        gannet train --data path/to/images    # any folder of PNG/JPEG (subfolders = classes)\n  \
        gannet sample --checkpoint runs/default/checkpoints/latest.safetensors --out grid.png\n  \
        gannet eval --checkpoint runs/default/checkpoints/latest.safetensors --data ../shared/data/mnist\n  \
        gannet train-i2i --preset pix2pix-emoji   # image-to-image: pix2pix, CycleGAN, super-resolution\n\n\
        A run writes config.toml, metrics.csv, losses.svg, samples/*.png and checkpoints/ to its --out folder."
)]
struct Cli {
    /// Memory gannet may plan for, e.g. 4G or 512M [default: $GANNET_MAX_MEMORY, else what the
    /// machine has free]. Requests beyond it (a model, batch, grid or data set too large) are
    /// refused with the setting to change, before anything is allocated.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_memory)]
    max_memory: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    gannet::limits::parse_size(text)
}

#[derive(Subcommand)]
enum Command {
    /// Train a GAN (DCGAN on built-in digits unless told otherwise).
    Train(commands::train::TrainArgs),
    /// Generate images from a checkpoint: one grid or many single PNGs.
    Sample(commands::sample::SampleArgs),
    /// Time DCGAN train steps and generation (img/s, GFLOP/s, peak memory).
    Bench(commands::bench::BenchArgs),
    /// Score generated images (a checkpoint or a folder) against real ones: FID, KID,
    /// precision/recall, classifier FID, class histogram.
    Eval(commands::eval::EvalArgs),
    /// Train a small CNN classifier on labelled images (for the class metrics of `gannet eval`).
    Classifier(commands::classifier::ClassifierArgs),
    /// The studio: a local web page to generate, interpolate, translate and follow training.
    Serve(commands::serve::ServeArgs),
    /// Train an image-to-image model: pix2pix (paired), CycleGAN (unpaired) or 4x super-resolution.
    TrainI2i(commands::train_i2i::TrainI2iArgs),
    /// Translate images with a pix2pix or CycleGAN checkpoint; scores against targets when known.
    Translate(commands::translate::TranslateArgs),
    /// Upscale images with a super-resolution checkpoint; scores it and bicubic when originals are known.
    Upscale(commands::upscale::UpscaleArgs),
    /// Frames along a path between latents (z, or StyleGAN2's w): a grid, an animated GIF or PNGs.
    Interpolate(commands::interpolate::InterpolateArgs),
    /// A StyleGAN2 style-mixing grid: coarse styles from one image, fine styles from another.
    Mix(commands::mix::MixArgs),
    /// Project real images into StyleGAN2's w space and regenerate them (reports PSNR).
    Project(commands::project::ProjectArgs),
}

fn main() {
    // Before any other thread starts: candle reads its pool settings once.
    gannet::ops::configure_thread_pools();
    // Second-order gradients are switched on by the trainer, only for configs that need them
    // (penalties, path length): keeping every gradient in the graph costs memory and time, and
    // turns off the fused kernels whose backward is not differentiable (see gannet::autodiff).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("GANNET_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // The train help lists the presets, which live in the library.
    let command = Cli::command().mut_subcommand("train", |c| {
        let examples = c.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        c.after_help(format!("{examples}\n\n{}", commands::train::presets_help()))
    });
    let command = command.mut_subcommand("train-i2i", |c| {
        let examples = c.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        c.after_help(format!("{examples}\n\n{}", commands::train_i2i::presets_help()))
    });
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    if let Some(bytes) = cli.max_memory {
        gannet::limits::set_max_memory(bytes);
    }
    // Under mpirun: join the job while this is still the only thread.
    if let Err(e) = launch::init() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    let result = match cli.command {
        // Text-to-image runs and checkpoints go to their own modules.
        Command::Train(a) => match commands::train_t2i::is_text_to_image(&a) {
            Ok(true) => commands::train_t2i::run(&a),
            Ok(false) => commands::train::run(a),
            Err(e) => Err(e),
        },
        Command::Sample(a) if commands::sample_t2i::is_text_to_image(&a) => commands::sample_t2i::run(&a),
        Command::Sample(a) => commands::sample::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Eval(a) if commands::eval_t2i::is_text_to_image(&a) => commands::eval_t2i::run(&a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Classifier(a) => commands::classifier::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::TrainI2i(a) => commands::train_i2i::run(a),
        Command::Translate(a) => commands::translate::run(a),
        Command::Upscale(a) => commands::upscale::run(a),
        Command::Interpolate(a) => commands::interpolate::run(a),
        Command::Mix(a) => commands::mix::run(a),
        Command::Project(a) => commands::project::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        launch::exit(1);
    }
    launch::finalize();
}
