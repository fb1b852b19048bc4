//! Metrics computed during training (`[eval]` in the config): every `eval.every` steps, and at
//! the last step, the sampling generator (the EMA one when kept) makes `eval.count` images from a
//! fixed latent batch; they are scored against the training data with
//! [`crate::metrics::evaluate`], one row is appended to `metrics_eval.csv`, and each metric is
//! drawn against step in `eval_METRIC.svg`. Off by default (`every = 0`). The default metric,
//! classifier FID with 1000 images, costs about a second on a CPU; Inception metrics (fid, kid,
//! pr) cost about a second per image there, so keep `count` small with them.

use super::metrics_log::plot_lines;
use super::run_dir::RunDir;
use crate::data::Dataset;
use crate::metrics::evaluate::{self, EvalOptions, Evaluator, Metric, Silent};
use crate::models::Generator;
use candle_core::Device;
use plotters::style::RGBColor;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every N generator steps (and at the last step); 0 turns it off.
    pub every: u64,
    /// Any of fid, kid, pr, cfid, classes (see `gannet eval --help`).
    pub metrics: Vec<Metric>,
    /// Generated and reference images per evaluation.
    pub count: usize,
    /// Classifier of cfid/classes: auto, builtin:mnist, builtin:fashion-mnist or a file.
    pub classifier: String,
    /// Cache the reference features in the gannet cache folder ($GANNET_CACHE, ~/.cache/gannet).
    pub cache: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { every: 0, metrics: vec![Metric::Cfid], count: 1000, classifier: "auto".into(), cache: true }
    }
}

impl EvalConfig {
    pub fn validate(&self) -> crate::Result<()> {
        if self.every > 0 && (self.count < 2 || self.metrics.is_empty()) {
            return Err(crate::Error::Config(format!(
                "eval.count must be at least 2 and eval.metrics not empty when eval.every > 0 (got count {}, {} metrics)",
                self.count,
                self.metrics.len()
            )));
        }
        Ok(())
    }
}

/// The evaluator of a run and its CSV.
pub struct PeriodicEval {
    every: u64,
    last_step: u64,
    seed: u64,
    metrics: Vec<Metric>,
    evaluator: Evaluator,
    csv: PathBuf,
    columns: Vec<String>,
    rows: Vec<(u64, Vec<f64>)>,
    run: RunDir,
}

fn fmt_row(step: u64, values: &[f64]) -> String {
    std::iter::once(step.to_string()).chain(values.iter().map(|v| format!("{v:.6}"))).collect::<Vec<_>>().join(",")
}

impl PeriodicEval {
    /// None when `cfg.every` is 0. Embeds the reference (training) images; keeps the CSV rows
    /// up to `up_to_step` (a resumed run drops what the checkpoint had not reached).
    // Independent pieces of the trainer's state, passed once per run: a struct would only repeat them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &EvalConfig,
        dataset: &Dataset,
        source: &str,
        seed: u64,
        last_step: u64,
        up_to_step: u64,
        run: &RunDir,
        device: &Device,
    ) -> crate::Result<Option<Self>> {
        if cfg.every == 0 {
            return Ok(None);
        }
        cfg.validate()?;
        let opts = EvalOptions {
            metrics: cfg.metrics.clone(),
            count: cfg.count,
            seed,
            classifier: cfg.classifier.clone(),
            cache_dir: cfg.cache.then(evaluate::cache_dir),
            inception_weights: None,
        };
        let key = evaluate::dataset_cache_key(source, dataset);
        let evaluator = Evaluator::new(dataset, Some(&key), opts, device, &mut Silent)?;
        let mut columns = vec!["step".to_string()];
        columns.extend(cfg.metrics.iter().flat_map(|m| m.scalar_names().iter().map(|s| s.to_string())));
        columns.push("eval_s".into());
        let csv = run.root().join("metrics_eval.csv");
        let rows = match std::fs::read_to_string(&csv) {
            // Rows of another column layout (the metrics changed) are dropped.
            Ok(text) if text.lines().next() == Some(columns.join(",").as_str()) => text
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    let step: u64 = f.first()?.parse().ok()?;
                    let vals: Option<Vec<f64>> = f[1..].iter().map(|v| v.parse().ok()).collect();
                    vals.filter(|v| v.len() + 1 == columns.len()).map(|v| (step, v))
                })
                .filter(|(s, _)| *s <= up_to_step)
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(crate::Error::io(format!("reading {}", csv.display()), e)),
        };
        let me = Self { every: cfg.every, last_step, seed, metrics: cfg.metrics.clone(), evaluator, csv, columns, rows, run: run.clone() };
        me.rewrite()?;
        Ok(Some(me))
    }

    /// Drops rows after `step` (a rollback to an earlier checkpoint) and rewrites the CSV.
    pub fn truncate(&mut self, step: u64) -> crate::Result<()> {
        self.rows.retain(|(s, _)| *s <= step);
        self.rewrite()
    }

    fn rewrite(&self) -> crate::Result<()> {
        let mut text = self.columns.join(",") + "\n";
        for (s, v) in &self.rows {
            text.push_str(&fmt_row(*s, v));
            text.push('\n');
        }
        crate::checkpoint::write_atomic(&self.csv, text.as_bytes())
    }

    /// Path of the CSV.
    pub fn csv_path(&self) -> &std::path::Path {
        &self.csv
    }

    /// Evaluates when `step` is due; returns a one-line summary then.
    pub fn after_step(&mut self, step: u64, gen: &dyn Generator) -> crate::Result<Option<String>> {
        if !(step.is_multiple_of(self.every) || step == self.last_step) || self.rows.last().is_some_and(|r| r.0 >= step) {
            return Ok(None);
        }
        let t0 = Instant::now();
        let report = self.evaluator.evaluate_generator(gen, &mut Silent)?;
        let mut values = Vec::new();
        for m in &self.metrics {
            let s = report.scalars(*m);
            values.extend(s.iter().map(|p| p.1));
        }
        values.push(t0.elapsed().as_secs_f64());
        let line = fmt_row(step, &values);
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.csv).map_err(|e| crate::Error::io(format!("opening {}", self.csv.display()), e))?;
        writeln!(f, "{line}").map_err(|e| crate::Error::io(format!("writing {}", self.csv.display()), e))?;
        self.rows.push((step, values));
        self.plot()?;
        let summary: Vec<String> =
            self.columns[1..self.columns.len() - 1].iter().zip(&self.rows.last().expect("just pushed").1).map(|(c, v)| format!("{c} {v:.4}")).collect();
        Ok(Some(format!("step {step}: {} ({} images, seed {})", summary.join(", "), self.evaluator.reference_count(), self.seed)))
    }

    /// One SVG per metric: its numbers against step (KID's std is left out).
    fn plot(&self) -> crate::Result<()> {
        const COLORS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];
        let mut col = 0;
        for m in &self.metrics {
            let names = m.scalar_names();
            let mut series = Vec::new();
            for (i, name) in names.iter().enumerate() {
                if *name != "kid_std" {
                    let pts = self.rows.iter().map(|(s, v)| (*s as f64, v[col + i])).collect();
                    series.push((*name, COLORS[i % 2], pts));
                }
            }
            col += names.len();
            let svg = plot_lines(&format!("{} during training", m.name()), "step", &series)?;
            crate::checkpoint::write_atomic(&self.run.root().join(format!("eval_{}.svg", m.name())), svg.as_bytes())?;
        }
        Ok(())
    }
}
