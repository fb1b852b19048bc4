//! `metrics_eval.csv` and one chart per metric (`eval_NAME.svg`): what periodic evaluation
//! measured, for any task. The task computes the numbers ([`super::Task::evaluate`]); this file
//! keeps them. On resume, rows after the checkpoint's step are dropped, and rows of another
//! column layout (the metrics changed) too.

use super::log::plot_lines;
use super::RunDir;
use plotters::style::RGBColor;
use std::io::Write;
use std::path::PathBuf;

pub struct EvalLog {
    csv: PathBuf,
    run: RunDir,
    /// (chart name, its columns), as the task gave them.
    groups: Vec<(String, Vec<String>)>,
    columns: Vec<String>,
    rows: Vec<(u64, Vec<f64>)>,
}

fn fmt_row(step: u64, values: &[f64]) -> String {
    std::iter::once(step.to_string()).chain(values.iter().map(|v| format!("{v:.6}"))).collect::<Vec<_>>().join(",")
}

impl EvalLog {
    /// Opens (or starts) the run's `metrics_eval.csv`, keeping rows up to `up_to_step`.
    pub fn open(run: &RunDir, groups: Vec<(String, Vec<String>)>, up_to_step: u64) -> crate::Result<Self> {
        let mut columns = vec!["step".to_string()];
        columns.extend(groups.iter().flat_map(|g| g.1.iter().cloned()));
        columns.push("eval_s".into());
        let csv = run.metrics_eval_csv();
        let rows = match std::fs::read_to_string(&csv) {
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
        let me = Self { csv, run: run.clone(), groups, columns, rows };
        me.rewrite()?;
        Ok(me)
    }

    /// Whether `step` was evaluated already.
    pub fn has(&self, step: u64) -> bool {
        self.rows.last().is_some_and(|r| r.0 >= step)
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

    /// Appends the row of `step` (the task's values, then the seconds it took), redraws the
    /// charts and returns a one-line summary.
    pub fn append(&mut self, step: u64, mut values: Vec<f64>, seconds: f64) -> crate::Result<String> {
        if values.len() + 2 != self.columns.len() {
            return Err(crate::Error::Msg(format!("evaluation gave {} values for {} columns", values.len(), self.columns.len() - 2)));
        }
        values.push(seconds);
        let line = fmt_row(step, &values);
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.csv).map_err(|e| crate::Error::io(format!("opening {}", self.csv.display()), e))?;
        writeln!(f, "{line}").map_err(|e| crate::Error::io(format!("writing {}", self.csv.display()), e))?;
        let summary: Vec<String> = self.columns[1..self.columns.len() - 1].iter().zip(&values).map(|(c, v)| format!("{c} {v:.4}")).collect();
        self.rows.push((step, values));
        self.plot()?;
        Ok(summary.join(", "))
    }

    /// One SVG per group: its numbers against step (standard deviations left out).
    fn plot(&self) -> crate::Result<()> {
        const COLORS: [RGBColor; 3] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44)];
        let mut col = 0;
        for (name, cols) in &self.groups {
            let mut series = Vec::new();
            for (i, c) in cols.iter().enumerate() {
                if !c.ends_with("_std") {
                    let pts = self.rows.iter().map(|(s, v)| (*s as f64, v[col + i])).collect();
                    series.push((c.as_str(), COLORS[i % COLORS.len()], pts));
                }
            }
            col += cols.len();
            let svg = plot_lines(&format!("{name} during training"), "step", &series)?;
            crate::checkpoint::write_atomic(&self.run.root().join(format!("eval_{name}.svg")), svg.as_bytes())?;
        }
        Ok(())
    }
}
