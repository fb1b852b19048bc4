//! `gannet train` for text-to-image runs: a text-to-image preset (`--preset t2i-emoji`), a
//! config file with `kind = "text-to-image"`, or `--resume` of such a run. The flags that mean
//! something for it are applied; the GAN-only ones are refused by name.

use super::train::TrainArgs;
use anyhow::{bail, Context, Result};
use gannet::config::T2iConfig;
use gannet::saved::KIND_T2I;
use gannet::train::engine::TaskConfig;
use gannet::train::T2iTrainer;

/// Whether these flags ask for a text-to-image run.
pub fn is_text_to_image(args: &TrainArgs) -> Result<bool> {
    if let Some(p) = &args.preset {
        return Ok(gannet::train::presets::is_text_to_image(p));
    }
    if let Some(ckpt) = &args.resume {
        return Ok(gannet::checkpoint::kind(ckpt).as_deref() == Some(KIND_T2I));
    }
    if let Some(p) = &args.config {
        return Ok(T2iConfig::is_t2i_toml(&read_config(p)?));
    }
    Ok(false)
}

fn read_config(p: &std::path::Path) -> Result<String> {
    gannet::limits::read_text(p, gannet::limits::MAX_CONFIG_BYTES).map_err(anyhow::Error::msg).with_context(|| format!("reading config {}", p.display()))
}

/// Flags of `gannet train` that a text-to-image run has no use for.
fn refuse_gan_flags(args: &TrainArgs) -> Result<()> {
    let given = [
        ("--arch", args.arch.is_some()),
        ("--conditional", args.conditional.is_some()),
        ("--class-names", args.class_names.is_some()),
        ("--d-steps", args.d_steps.is_some()),
        ("--eval-metrics", args.eval_metrics.is_some()),
        ("--eval-count", args.eval_count.is_some()),
        ("--launch", args.launch.is_some()),
    ];
    let bad: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if !bad.is_empty() {
        bail!("{} not used by text-to-image training (its settings are in the preset; see --print-config)", bad.join(", "));
    }
    Ok(())
}

/// Flags that may change on resume.
fn apply_schedule(args: &TrainArgs, cfg: &mut T2iConfig) {
    if let Some(v) = args.lr_g {
        cfg.schedule.lr_g = v;
    }
    if let Some(v) = args.lr_d {
        cfg.schedule.lr_d = v;
    }
    if let Some(v) = args.steps {
        cfg.schedule.steps = v;
    }
    if let Some(v) = args.sample_every {
        cfg.output.sample_every = v;
    }
    if let Some(v) = args.checkpoint_every {
        cfg.output.checkpoint_every = v;
    }
    if let Some(v) = args.eval_every {
        cfg.output.eval_every = v;
    }
    if let Some(v) = &args.device {
        cfg.device = v.clone();
    }
    if let Some(v) = &args.out {
        cfg.output.dir = v.clone();
    }
}

/// Every flag (the engine refuses, on resume, those that would change the data or model).
fn apply(args: &TrainArgs, cfg: &mut T2iConfig) {
    apply_schedule(args, cfg);
    if let Some(v) = &args.data {
        cfg.data.source = v.clone();
    }
    if let Some(v) = args.resolution {
        cfg.data.resolution = v;
    }
    if let Some(v) = args.batch_size {
        cfg.schedule.batch_size = v;
    }
    if let Some(v) = args.loss {
        cfg.loss.gan = v;
    }
    if let Some(v) = args.latent_dim {
        cfg.model.latent_dim = v;
    }
    if let Some(v) = args.channels {
        (cfg.model.g_channels, cfg.model.d_channels) = (v, v);
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
}

fn fresh_config(args: &TrainArgs) -> Result<T2iConfig> {
    let file = args.config.as_deref().map(read_config).transpose()?;
    let mut cfg = match &args.preset {
        Some(name) => gannet::train::presets::find(name)?.t2i_with_overrides(file.as_deref()).with_context(|| format!("preset {name}"))?,
        None => T2iConfig::from_toml(file.as_deref().unwrap_or_default())?,
    };
    apply(args, &mut cfg);
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: &TrainArgs) -> Result<()> {
    refuse_gan_flags(args)?;
    let stop = crate::progress::stop_on_ctrl_c()?;
    let mut trainer = match &args.resume {
        Some(ckpt) => T2iTrainer::resume(ckpt, |cfg| apply(args, cfg)).with_context(|| format!("resuming from {}", ckpt.display()))?,
        None => {
            let cfg = fresh_config(args)?;
            if args.print_config {
                print!("{}", cfg.to_toml());
                return Ok(());
            }
            T2iTrainer::new(cfg)?
        }
    };
    let cfg = trainer.config();
    eprintln!(
        "training text-to-image on {} ({} captioned training images, {} words, {}x{}) for {} steps ({} of them pretraining the encoders) -> {}",
        cfg.data.source,
        trainer.task().train_len(),
        trainer.task().vocab().words().len(),
        cfg.data.resolution,
        cfg.data.resolution,
        cfg.schedule.steps,
        cfg.schedule.pretrain_steps,
        trainer.run_dir().root().display()
    );
    crate::progress::train_to_end(&mut trainer, &stop)
}
