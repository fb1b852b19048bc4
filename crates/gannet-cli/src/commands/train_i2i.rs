//! `gannet train-i2i`: image-to-image training (pix2pix, CycleGAN, super-resolution).

use anyhow::{Context, Result};
use clap::Args;
use gannet::train::i2i::{presets, I2iConfig, I2iTrainer, Task};
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gannet train-i2i --preset pix2pix-emoji                      # google -> twitter emoji, 64x64\n  \
    gannet train-i2i --preset superres-emoji                     # 4x super-resolution, 16 -> 64\n  \
    gannet train-i2i --preset cyclegan-emoji                     # unpaired google <-> twitter\n  \
    gannet train-i2i --task pix2pix --a photos/ --b sketches/ --out runs/p2p --steps 2000\n  \
    gannet train-i2i --task superres --a my-images/ --resolution 128\n  \
    gannet train-i2i --resume runs/pix2pix-emoji/checkpoints/latest.safetensors --steps 3000\n  \
    gannet train-i2i --preset pix2pix-emoji --print-config > p2p.toml\n\n\
    pix2pix needs paired folders (the same file names in --a and --b); CycleGAN takes any two\n\
    folders; super-resolution learns from box-downscaled copies of --a. 10% of the file names\n\
    (by a hash of the name) are held out of training for `gannet translate --held-out` and\n\
    `gannet upscale --held-out`, which score the model on them.")]
pub struct TrainI2iArgs {
    /// pix2pix, cyclegan or superres (or set by --preset / --config).
    #[arg(long)]
    task: Option<Task>,
    /// A tried configuration (list below); --config and flags override it.
    #[arg(long)]
    preset: Option<String>,
    /// TOML config file laid over the task's defaults (or the preset).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Continue the run saved in this checkpoint (--steps may extend it).
    #[arg(long, conflicts_with_all = ["config", "preset", "task"])]
    resume: Option<PathBuf>,
    /// Domain A: the input images (super-resolution: the high-resolution images).
    #[arg(long)]
    a: Option<String>,
    /// Domain B: the targets (pix2pix: same file names as --a).
    #[arg(long)]
    b: Option<String>,
    /// Square image size (super-resolution: of the high-resolution images) [default: 64].
    #[arg(long)]
    resolution: Option<usize>,
    /// Run folder for config, metrics, grids and checkpoints [default: runs/TASK].
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Generator updates in total (also when resuming).
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Width of the generator(s) (ngf).
    #[arg(long)]
    g_channels: Option<usize>,
    /// Width of the discriminator(s) (ndf).
    #[arg(long)]
    d_channels: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long)]
    device: Option<String>,
    /// Write a comparison grid of held-out images every N steps.
    #[arg(long)]
    sample_every: Option<u64>,
    /// Write a checkpoint every N steps.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Generator learning rate (may be changed on --resume, e.g. after a divergence).
    #[arg(long)]
    lr_g: Option<f64>,
    /// Discriminator learning rate (may be changed on --resume).
    #[arg(long)]
    lr_d: Option<f64>,
    /// Score held-out examples every N steps (and at the end) into metrics_eval.csv: L1, PSNR
    /// and SSIM against targets (pix2pix, superres) or FID (cyclegan); 0 turns it off.
    #[arg(long)]
    eval_every: Option<u64>,
    /// Print the effective config as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

impl TrainI2iArgs {
    /// Flags that may change on resume.
    fn apply_schedule(&self, cfg: &mut I2iConfig) {
        if let Some(v) = self.steps {
            cfg.schedule.steps = v;
        }
        if let Some(v) = self.sample_every {
            cfg.output.sample_every = v;
        }
        if let Some(v) = self.checkpoint_every {
            cfg.output.checkpoint_every = v;
        }
        if let Some(v) = self.eval_every {
            cfg.eval.every = v;
        }
        if let Some(v) = self.lr_g {
            cfg.optim.gen.lr = v;
        }
        if let Some(v) = self.lr_d {
            cfg.optim.disc.lr = v;
        }
        if let Some(v) = &self.device {
            cfg.device = v.clone();
        }
        if let Some(v) = &self.out {
            cfg.output.dir = v.clone();
        }
    }

    /// Every flag laid over a resumed run's config; the engine refuses those that would change
    /// its data, model or seed, naming both values.
    fn apply_resume(&self, cfg: &mut I2iConfig) {
        self.apply(cfg);
    }

    fn apply(&self, cfg: &mut I2iConfig) {
        self.apply_schedule(cfg);
        if let Some(v) = &self.a {
            cfg.data.a = v.clone();
        }
        if let Some(v) = &self.b {
            cfg.data.b = Some(v.clone());
        }
        if let Some(v) = self.resolution {
            cfg.data.resolution = v;
        }
        if let Some(v) = self.batch_size {
            cfg.schedule.batch_size = v;
        }
        if let Some(v) = self.g_channels {
            cfg.model.g_channels = v;
        }
        if let Some(v) = self.d_channels {
            cfg.model.d_channels = v;
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
    }

    /// The config of a fresh run: preset or task defaults, then --config, then flags.
    fn config(&self) -> Result<I2iConfig> {
        let file = match &self.config {
            Some(p) => Some(
                gannet::limits::read_text(p, gannet::limits::MAX_CONFIG_BYTES)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("reading config {}", p.display()))?,
            ),
            None => None,
        };
        let mut cfg = match (&self.preset, &file) {
            (Some(name), _) => presets::find(name)?.with_overrides(file.as_deref()).with_context(|| format!("preset {name}"))?,
            (None, Some(text)) => I2iConfig::from_toml_over_defaults(text, self.task)?,
            (None, None) => {
                I2iConfig::for_task(self.task.ok_or_else(|| anyhow::anyhow!("say what to train: --task pix2pix|cyclegan|superres, or --preset NAME"))?)
            }
        };
        if let Some(t) = self.task {
            anyhow::ensure!(t == cfg.task, "--task {t} contradicts the preset or config, which train {}", cfg.task);
        }
        self.apply(&mut cfg);
        cfg.validate()?;
        Ok(cfg)
    }
}

pub fn run(args: TrainI2iArgs) -> Result<()> {
    let stop = crate::progress::stop_on_ctrl_c()?;
    let mut trainer = match &args.resume {
        Some(ckpt) => I2iTrainer::resume(ckpt, |cfg| args.apply_resume(cfg)).with_context(|| format!("resuming from {}", ckpt.display()))?,
        None => {
            let cfg = args.config()?;
            if args.print_config {
                print!("{}", cfg.to_toml());
                return Ok(());
            }
            I2iTrainer::new(cfg)?
        }
    };
    let cfg = trainer.config();
    let b = cfg.data.b.as_deref().map(|b| format!(" -> {b}")).unwrap_or_default();
    eprintln!(
        "training {} on {}{b} ({} training examples, {}x{}) for {} steps -> {}",
        cfg.task,
        cfg.data.a,
        trainer.train_len(),
        cfg.data.resolution,
        cfg.data.resolution,
        cfg.schedule.steps,
        trainer.run_dir().root().display()
    );
    crate::progress::train_to_end(&mut trainer, &stop)
}

/// The `--help` text that lists the presets.
pub fn presets_help() -> String {
    let mut s = String::from("Presets (--preset NAME; see the README, \"Image-to-image\", for their results):\n");
    let width = presets::ALL.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in presets::ALL {
        s.push_str(&format!("  {:width$}  {}\n", p.name, p.summary));
    }
    s
}
