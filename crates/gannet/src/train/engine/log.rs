//! `metrics.csv` and its picture, `losses.svg`, for any task: `step`, the task's loss columns,
//! `images_per_s`, `elapsed_s`. Each row averages the steps of one log interval.
//!
//! On resume, rows after the checkpoint's step are dropped first, so the file always describes
//! exactly the run the weights came from.

use super::Losses;
use plotters::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct MetricsLog<L: Losses> {
    /// The CSV file (None: rows are kept in memory only, as data-parallel processes other than
    /// the writer do).
    path: Option<PathBuf>,
    /// One row per log interval: the step, then the values of [`MetricsLog::columns`] after it.
    rows: Vec<Vec<f64>>,
    /// Steps not yet written: the task's values and images/s.
    pending: Vec<(L, f64)>,
}

impl<L: Losses> MetricsLog<L> {
    /// Every column of the file.
    pub fn columns() -> Vec<&'static str> {
        let mut c = vec!["step"];
        c.extend_from_slice(L::COLUMNS);
        c.extend(["images_per_s", "elapsed_s"]);
        c
    }

    /// Opens (or starts) the log, keeping only rows up to `up_to_step`.
    pub fn open(path: &Path, up_to_step: u64) -> crate::Result<Self> {
        let width = Self::columns().len();
        let rows = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .skip(1)
                .filter_map(|l| l.split(',').map(|f| f.trim().parse::<f64>().ok()).collect::<Option<Vec<f64>>>())
                .filter(|r| r.len() == width && r[0] <= up_to_step as f64)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(crate::Error::io(format!("reading {}", path.display()), e)),
        };
        let mut text = Self::columns().join(",") + "\n";
        for r in &rows {
            text.push_str(&line(r));
        }
        crate::checkpoint::write_atomic(path, text.as_bytes())?;
        Ok(Self { path: Some(path.to_path_buf()), rows, pending: Vec::new() })
    }

    /// A log that keeps its rows in memory and writes no file.
    pub fn in_memory() -> Self {
        Self { path: None, rows: Vec::new(), pending: Vec::new() }
    }

    /// The rows written so far (each starts with its step).
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }

    /// Keeps one step's losses for the next row.
    pub fn push(&mut self, losses: L, images_per_s: f64) {
        self.pending.push((losses, images_per_s));
    }

    /// Appends the mean of the steps since the last row as the row of `step`.
    pub fn flush(&mut self, step: u64, elapsed_s: f64) -> crate::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let n = self.pending.len() as f64;
        let mut row = vec![step as f64];
        let mut sums = vec![0.0; L::COLUMNS.len() + 1];
        for (l, ips) in &self.pending {
            for (s, v) in sums.iter_mut().zip(l.values().into_iter().chain([*ips])) {
                *s += v;
            }
        }
        row.extend(sums.into_iter().map(|s| s / n));
        row.push(elapsed_s);
        self.pending.clear();
        if let Some(path) = &self.path {
            let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(|e| crate::Error::io(format!("opening {}", path.display()), e))?;
            f.write_all(line(&row).as_bytes()).map_err(|e| crate::Error::io(format!("writing {}", path.display()), e))?;
        }
        self.rows.push(row);
        Ok(())
    }

    /// Draws the task's plotted columns against step as an SVG.
    pub fn plot(&self, path: &Path) -> crate::Result<()> {
        const COLORS: [RGBColor; 4] = [RGBColor(214, 39, 40), RGBColor(31, 119, 180), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];
        let columns = Self::columns();
        let series: Vec<Series> = L::PLOTTED
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let col = columns.iter().position(|c| c == name)?;
                Some((*name, COLORS[i % COLORS.len()], self.rows.iter().map(|r| (r[0], r[col])).collect()))
            })
            .collect();
        let svg = plot_lines("Losses", "step", &series)?;
        crate::checkpoint::write_atomic(path, svg.as_bytes())
    }
}

/// A CSV line: the step as an integer, losses with 6 decimals, images/s and seconds with 2.
fn line(r: &[f64]) -> String {
    let last = r.len().saturating_sub(2);
    let fields: Vec<String> = r
        .iter()
        .enumerate()
        .map(|(i, v)| match i {
            0 => format!("{v}"),
            i if i >= last => format!("{v:.2}"),
            _ => format!("{v:.6}"),
        })
        .collect();
    fields.join(",") + "\n"
}

/// One line of a chart: its name, colour and (x, y) points.
pub type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// A line chart of named series as SVG text.
pub fn plot_lines(title: &str, x_label: &str, series: &[Series]) -> crate::Result<String> {
    let points = series.iter().flat_map(|s| s.2.iter()).filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 450)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| crate::Error::Msg(format!("drawing chart: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
            .map_err(|e| err(&e))?;
        chart.configure_mesh().x_desc(x_label).draw().map_err(|e| err(&e))?;
        for (name, color, pts) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(pts.iter().copied().filter(|p| p.1.is_finite()), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
