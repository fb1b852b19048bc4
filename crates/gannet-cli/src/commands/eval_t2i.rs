//! `gannet eval` of a text-to-image checkpoint: one generated image per held-out caption (the
//! captions no training step saw), scored beside the real image of each caption.

use super::eval::EvalArgs;
use anyhow::{bail, Context, Result};
use gannet::data::captions::load_captioned;
use gannet::data::Split;
use gannet::metrics::classifier::Classifier;
use gannet::metrics::inception::FidInception;
use gannet::metrics::text_image::{self, TextImageEvalOptions, TextImageScores, Versus};
use gannet::saved::SavedT2i;
use std::path::Path;
use std::time::Instant;

const METRICS: [&str; 3] = ["r-precision", "category", "fid"];

/// Whether `gannet eval` is given a text-to-image checkpoint.
pub fn is_text_to_image(args: &EvalArgs) -> bool {
    args.checkpoint.as_deref().and_then(gannet::checkpoint::kind).as_deref() == Some(gannet::saved::KIND_T2I)
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let started = Instant::now();
    let ckpt = args.checkpoint.as_deref().context("a text-to-image evaluation needs --checkpoint")?;
    let metrics: Vec<String> = match &args.metrics {
        Some(m) => m.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None => METRICS.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(bad) = metrics.iter().find(|m| !METRICS.contains(&m.as_str())) {
        bail!("--metrics {bad}: a text-to-image checkpoint is scored with {}", METRICS.join(", "));
    }
    let device = gannet::device::parse_device(&args.device)?;
    let saved = SavedT2i::load(ckpt, &device).with_context(|| format!("loading the checkpoint {}", ckpt.display()))?;
    let source = args.data.clone().unwrap_or_else(|| saved.config.data.source.clone());
    let held = load_captioned(Path::new(&source), Split::HeldOut, saved.config.data.resolution)
        .with_context(|| format!("loading the held-out captions of {source}"))?;
    let wants_category = metrics.iter().any(|m| m == "category");
    let classifier = match (wants_category, args.classifier.as_str()) {
        (false, _) => None,
        (true, "auto") if args.metrics.is_none() => {
            eprintln!(
                "category accuracy skipped: give --classifier FILE, trained with `gannet classifier --data captioned:{source} \
                 --test-data captioned-held-out:{source} --resolution {} --out FILE`",
                saved.config.data.resolution
            );
            None
        }
        (true, "auto") => bail!("--metrics category needs --classifier FILE (from `gannet classifier --data captioned:{source}`)"),
        (true, file) => Some(Classifier::load(Path::new(file), &device).with_context(|| format!("loading the classifier {file}"))?),
    };
    let inception = if metrics.iter().any(|m| m == "fid") {
        Some(match &args.inception {
            Some(p) => FidInception::load(p, &device)?,
            None => FidInception::load_default(&device)?,
        })
    } else {
        None
    };
    eprintln!("evaluating {} (step {}) on {} held-out captions of {source}: {}", ckpt.display(), saved.step, held.len().min(args.count), metrics.join(", "));
    let opts = TextImageEvalOptions { seed: args.seed, count: args.count, classifier: classifier.as_ref(), inception: inception.as_ref() };
    let scores = text_image::evaluate(&saved.nets, &held, &opts, &device)?;
    if args.json {
        let mut v = serde_json::to_value(&scores)?;
        v["checkpoint"] = serde_json::Value::String(ckpt.display().to_string());
        v["seconds"] = serde_json::json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", table(&scores));
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn table(s: &TextImageScores) -> String {
    let row = |name: &str, v: &Versus, chance: &str| {
        format!("{name:<18} {:>9.1}% {:>9.1}% {:>9.1}% {:>9.2}  {chance}\n", v.generated * 100.0, v.real * 100.0, v.chance * 100.0, v.generated / v.real)
    };
    let mut out = format!("held-out captions: {}\n{:<18} {:>10} {:>10} {:>10} {:>9}\n", s.captions, "metric", "generated", "real", "chance", "gen/real");
    out += &row("R-precision", &s.r_precision, "(1 true caption among 100)");
    if let Some(c) = &s.category_accuracy {
        out += &row("category accuracy", c, "(chance: the most common category)");
    }
    if let Some(c) = &s.category_balanced {
        out += &row("  per category", c, "(mean of the categories' accuracies; chance: 1 / categories)");
    }
    if let Some(f) = s.fid {
        out += &format!("{:<18} {f:>10.2}  (generated vs real held-out images, Inception pool3)\n", "FID");
    }
    out
}
