//! `gannet`: train generative adversarial networks and use them, from the command line.
//! The work is done by the `gannet` library; this crate only parses flags and reports progress.

mod commands;
mod progress;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gannet",
    version,
    about = "Train GANs on your images and generate new ones",
    long_about = "Train generative adversarial networks on your own images and generate new ones.\n\n\
        Quick start:\n  \
        gannet train                          # DCGAN on 10k built-in MNIST digits, ~minutes on a laptop CPU\n  \
        gannet train --data path/to/images    # any folder of PNG/JPEG (subfolders = classes)\n  \
        gannet sample --checkpoint runs/default/checkpoints/latest.safetensors --out grid.png\n\n\
        A run writes config.toml, metrics.csv, losses.svg, samples/*.png and checkpoints/ to its --out folder."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a GAN (DCGAN on built-in digits unless told otherwise).
    Train(commands::train::TrainArgs),
    /// Generate images from a checkpoint: one grid or many single PNGs.
    Sample(commands::sample::SampleArgs),
    /// Time DCGAN train steps and generation (img/s, GFLOP/s, peak memory).
    Bench(commands::bench::BenchArgs),
}

fn main() {
    // Must precede any tensor work: candle reads it once per thread (see gannet::autodiff).
    gannet::autodiff::enable_second_order();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("GANNET_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // The train help lists the presets, which live in the library.
    let command = Cli::command().mut_subcommand("train", |c| {
        let examples = c.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        c.after_help(format!("{examples}\n\n{}", commands::train::presets_help()))
    });
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Train(a) => commands::train::run(a),
        Command::Sample(a) => commands::sample::run(a),
        Command::Bench(a) => commands::bench::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
