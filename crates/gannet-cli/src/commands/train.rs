use anyhow::{Context, Result};
use clap::Args;
use gannet::loss::GanLoss;
use gannet::models::{Conditioning, ModelConfig};
use gannet::train::{TrainConfig, Trainer};
use std::path::PathBuf;

/// `--eval-metrics fid,cfid`, checked when the flags are parsed.
#[derive(Debug, Clone)]
pub(crate) struct MetricList(Vec<gannet::metrics::Metric>);

impl std::str::FromStr for MetricList {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        gannet::metrics::Metric::parse_list(s).map(MetricList).map_err(|e| e.to_string())
    }
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    gannet train                                   # built-in digits, DCGAN, 3000 steps\n  \
    gannet train --data ../shared/data/fashion-mnist --out runs/fashion\n  \
    gannet train --data ~/pictures/cats --resolution 64 --steps 20000\n  \
    gannet train --config my.toml --steps 500      # flags override the file\n  \
    gannet train --preset cgan-mnist               # a tried configuration (list below)\n  \
    gannet train --preset cgan-fashion --steps 500 --out runs/quick\n  \
    gannet train --resume runs/default/checkpoints/latest.safetensors --steps 4000\n  \
    gannet train --print-config > my.toml          # every setting with its default\n\n\
    Ctrl-C saves a checkpoint before stopping; --resume continues exactly where it stopped.")]
pub struct TrainArgs {
    /// TOML config file; flags given on the command line override its values.
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Start from a named, tried configuration (see the list below); --config and flags
    /// override its settings.
    #[arg(long)]
    pub(crate) preset: Option<String>,
    /// Continue the run saved in this checkpoint (its config is reused; --steps may extend it).
    #[arg(long, conflicts_with_all = ["config", "preset"])]
    pub(crate) resume: Option<PathBuf>,
    /// Training data: an IDX directory (MNIST layout), an IDX file, or a folder of PNG/JPEG
    /// images (subfolders = classes). Default: 10k MNIST digits built into gannet.
    #[arg(long, short)]
    pub(crate) data: Option<String>,
    /// Square image size the data is resized/cropped to (default 28 for IDX, 32 for folders).
    #[arg(long)]
    pub(crate) resolution: Option<usize>,
    /// Run directory for config, metrics, samples and checkpoints [default: runs/default].
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    /// Architecture: dcgan, resnet (SNGAN-style, spectral norm in D), progan (Progressive GAN) or mlp.
    #[arg(long)]
    pub(crate) arch: Option<String>,
    /// Class conditioning: none, projection (projection discriminator) or acgan (auxiliary
    /// classifier). Needs labelled data; the classes come from the dataset.
    #[arg(long)]
    pub(crate) conditional: Option<Conditioning>,
    /// Names of the classes in label order, comma-separated (e.g. for IDX data, whose classes
    /// are otherwise named 0, 1, ...). Used by `gannet sample --class-name`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) class_names: Option<Vec<String>>,
    /// Generator updates to train for (in total, also when resuming).
    #[arg(long)]
    pub(crate) steps: Option<u64>,
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Discriminator updates per generator update.
    #[arg(long)]
    pub(crate) d_steps: Option<usize>,
    /// Loss: non-saturating, minimax, hinge, wasserstein, least-squares.
    #[arg(long)]
    pub(crate) loss: Option<GanLoss>,
    /// Generator learning rate (may be changed on --resume, e.g. after a divergence).
    #[arg(long)]
    pub(crate) lr_g: Option<f64>,
    /// Discriminator learning rate (may be changed on --resume).
    #[arg(long)]
    pub(crate) lr_d: Option<f64>,
    #[arg(long)]
    pub(crate) latent_dim: Option<usize>,
    /// Width of the networks (DCGAN ngf = ndf; ResNet block channels of G and D; MLP hidden units).
    #[arg(long)]
    pub(crate) channels: Option<usize>,
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long)]
    pub(crate) device: Option<String>,
    /// Write a sample grid every N steps.
    #[arg(long)]
    pub(crate) sample_every: Option<u64>,
    /// Write a checkpoint every N steps.
    #[arg(long)]
    pub(crate) checkpoint_every: Option<u64>,
    /// Compute metrics every N steps (and at the end) into metrics_eval.csv and eval_*.svg;
    /// 0 turns it off. See --eval-metrics.
    #[arg(long)]
    pub(crate) eval_every: Option<u64>,
    /// Metrics of --eval-every, comma-separated: cfid (default, fast), classes, fid, kid, pr.
    #[arg(long)]
    pub(crate) eval_metrics: Option<MetricList>,
    /// Generated (and reference) images per evaluation [default: 1000].
    #[arg(long)]
    pub(crate) eval_count: Option<usize>,
    /// Print the effective config as TOML and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Data-parallel training in N processes on this machine: starts `mpirun -np N` with this
    /// command (needs OpenMPI and a gannet built with --features mpi). --batch-size is the
    /// combined batch (a multiple of N); each process gets cores / N threads. On several
    /// machines call mpirun yourself (see the README).
    #[arg(long, value_name = "N")]
    pub(crate) launch: Option<usize>,
}

impl TrainArgs {
    /// Flags that may change on resume: they do not alter the model.
    fn apply_schedule(&self, cfg: &mut TrainConfig) {
        if let Some(v) = self.lr_g {
            cfg.optim.gen.lr = v;
        }
        if let Some(v) = self.lr_d {
            cfg.optim.disc.lr = v;
        }
        if let Some(v) = self.steps {
            cfg.schedule.steps = v;
        }
        if let Some(v) = self.sample_every {
            cfg.output.sample_every = v;
        }
        if let Some(v) = self.checkpoint_every {
            cfg.output.checkpoint_every = v;
        }
        if let Some(v) = &self.device {
            cfg.device = v.clone();
        }
        if let Some(v) = &self.out {
            cfg.output.dir = v.clone();
        }
        if let Some(v) = self.eval_every {
            cfg.eval.every = v;
        }
        if let Some(v) = &self.eval_metrics {
            cfg.eval.metrics = v.0.clone();
        }
        if let Some(v) = self.eval_count {
            cfg.eval.count = v;
        }
    }

    /// Every flag laid over a resumed run's config; the engine refuses those that would change
    /// its data, model or seed, naming both values. `--arch` naming the run's own architecture
    /// keeps its widths.
    fn apply_resume(&self, cfg: &mut TrainConfig) -> gannet::Result<()> {
        let same_arch = self.arch.as_deref().is_some_and(|a| ModelConfig::for_arch(a).is_ok_and(|m| m.name() == cfg.model.name()));
        let arch = if same_arch { None } else { self.arch.clone() };
        TrainArgs { arch, ..self.clone() }.apply(cfg).map_err(|e| gannet::Error::Config(format!("{e:#}")))
    }

    fn apply(&self, cfg: &mut TrainConfig) -> Result<()> {
        self.apply_schedule(cfg);
        if let Some(v) = &self.data {
            cfg.data.source = v.clone();
        }
        if let Some(v) = self.resolution {
            cfg.data.resolution = Some(v);
        }
        if let Some(a) = &self.arch {
            cfg.model = ModelConfig::for_arch(a)?;
        }
        if let Some(c) = self.conditional {
            cfg.model.set_conditioning(c)?;
        }
        if let Some(names) = &self.class_names {
            cfg.data.class_names = Some(names.clone());
        }
        self.apply_model_sizes(&mut cfg.model);
        if let Some(v) = self.batch_size {
            cfg.schedule.batch_size = v;
        }
        if let Some(v) = self.d_steps {
            cfg.schedule.d_steps_per_g = v;
        }
        if let Some(v) = self.loss {
            cfg.loss = v;
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
        Ok(())
    }

    fn apply_model_sizes(&self, model: &mut ModelConfig) {
        if let Some(v) = self.latent_dim {
            model.set_latent_dim(v);
        }
        if let Some(v) = self.channels {
            model.set_width(v);
        }
    }
}

/// The config of a fresh run: preset or file or defaults, then the flags.
fn fresh_config(args: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = match (&args.preset, &args.config) {
        (Some(name), file) => {
            let text = match file {
                Some(p) => Some(
                    gannet::limits::read_text(p, gannet::limits::MAX_CONFIG_BYTES)
                        .map_err(anyhow::Error::msg)
                        .with_context(|| format!("reading config {}", p.display()))?,
                ),
                None => None,
            };
            gannet::train::presets::find(name)?.with_overrides(text.as_deref()).with_context(|| match file {
                Some(p) => format!("preset {name} with {}", p.display()),
                None => format!("preset {name}"),
            })?
        }
        (None, Some(p)) => TrainConfig::from_file(p)?,
        (None, None) => TrainConfig::default(),
    };
    args.apply(&mut cfg)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Whether the checkpoint's run needs second-order gradients (read from its header alone; an
/// unreadable file is reported by the resume itself).
fn checkpoint_needs_second_order(ckpt: &std::path::Path) -> bool {
    let meta = gannet::checkpoint::metadata(ckpt).unwrap_or_default();
    meta.get("config").and_then(|t| TrainConfig::from_toml_str(t).ok()).is_some_and(|c| c.needs_second_order())
}

/// How a run starts: a new config, or a checkpoint to continue.
enum Start {
    Fresh(Box<TrainConfig>),
    Resume(std::path::PathBuf),
}

pub fn run(args: TrainArgs) -> Result<()> {
    if let Some(n) = args.launch.filter(|_| !args.print_config) {
        let code = crate::launch::relaunch(n)?;
        if code != 0 {
            std::process::exit(code);
        }
        return Ok(());
    }
    let start = match &args.resume {
        Some(ckpt) => Start::Resume(ckpt.clone()),
        None => Start::Fresh(Box::new(fresh_config(&args)?)),
    };
    if let (Start::Fresh(cfg), true) = (&start, args.print_config) {
        print!("{}", cfg.to_toml());
        return Ok(());
    }
    // Settled while this is the only thread: before data loading and the Ctrl-C handler start
    // theirs (see gannet::autodiff).
    let second_order = match &start {
        Start::Fresh(cfg) => cfg.needs_second_order(),
        Start::Resume(ckpt) => checkpoint_needs_second_order(ckpt),
    };
    if second_order {
        gannet::autodiff::enable_second_order();
    }
    let stop = crate::progress::stop_on_ctrl_c()?;
    let mut trainer = match start {
        Start::Fresh(cfg) => Trainer::new(*cfg)?,
        Start::Resume(ckpt) => Trainer::resume_with(&ckpt, |cfg| args.apply_resume(cfg)).with_context(|| format!("resuming from {}", ckpt.display()))?,
    };
    let cfg = trainer.config();
    let leader = crate::launch::is_leader();
    if leader {
        if gannet::parallel::is_parallel() {
            let w = gannet::parallel::world();
            eprintln!(
                "data-parallel: {} processes ({}), batch {} = {} x {}",
                w.size(),
                w.backend(),
                cfg.schedule.batch_size,
                w.size(),
                cfg.schedule.batch_size / w.size()
            );
        }
        eprintln!(
            "training {} on {} ({} images, {}x{}x{}) for {} steps -> {}",
            cfg.model.name(),
            trainer.dataset().source(),
            trainer.dataset().len(),
            trainer.dataset().channels(),
            trainer.dataset().height(),
            trainer.dataset().width(),
            cfg.schedule.steps,
            trainer.run_dir().root().display()
        );
    }
    let result = if leader { crate::progress::train(&mut trainer, &stop) } else { trainer.run(&mut gannet::train::Quiet, &stop) };
    let rd = trainer.run_dir();
    crate::progress::finish_run(result?, trainer.step(), &rd.latest_grid(), &rd.latest_checkpoint());
    Ok(())
}

/// The `--help` text that lists the presets (appended to the examples by `main`).
pub fn presets_help() -> String {
    let mut s = String::from("Presets (--preset NAME; see the README for their results):\n");
    let width = gannet::train::presets::ALL.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in gannet::train::presets::ALL {
        s.push_str(&format!("  {:width$}  {}\n", p.name, p.summary));
    }
    s.push_str("Text-to-image presets (gannet sample --prompt \"...\" afterwards):\n");
    for p in gannet::train::presets::TEXT_TO_IMAGE {
        s.push_str(&format!("  {:width$}  {}\n", p.name, p.summary));
    }
    s
}
