//! metrics.csv and its picture.
//!
//! Rows are appended as training goes; on resume, rows after the checkpoint's step are dropped
//! first, so the file always describes exactly the run that the weights came from.

use plotters::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const COLUMNS: [&str; 7] = ["step", "d_loss", "g_loss", "d_real", "d_fake", "images_per_s", "elapsed_s"];

/// One row: losses and discriminator outputs averaged over a log interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub step: u64,
    pub d_loss: f64,
    pub g_loss: f64,
    /// Mean D logit on real and on generated images.
    pub d_real: f64,
    pub d_fake: f64,
    pub images_per_s: f64,
    pub elapsed_s: f64,
}

impl Row {
    fn to_csv(&self) -> String {
        format!("{},{:.6},{:.6},{:.6},{:.6},{:.2},{:.2}", self.step, self.d_loss, self.g_loss, self.d_real, self.d_fake, self.images_per_s, self.elapsed_s)
    }

    fn parse(line: &str) -> Option<Row> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != COLUMNS.len() {
            return None;
        }
        let n = |i: usize| f[i].trim().parse::<f64>().ok();
        Some(Row { step: f[0].trim().parse().ok()?, d_loss: n(1)?, g_loss: n(2)?, d_real: n(3)?, d_fake: n(4)?, images_per_s: n(5)?, elapsed_s: n(6)? })
    }
}

pub struct MetricsLog {
    path: PathBuf,
    rows: Vec<Row>,
}

impl MetricsLog {
    /// Opens (or starts) the log, keeping only rows up to `up_to_step`.
    pub fn open(path: &Path, up_to_step: u64) -> crate::Result<Self> {
        let rows = match std::fs::read_to_string(path) {
            Ok(text) => text.lines().skip(1).filter_map(Row::parse).filter(|r| r.step <= up_to_step).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(crate::Error::io(format!("reading {}", path.display()), e)),
        };
        let log = Self { path: path.to_path_buf(), rows };
        log.rewrite()?;
        Ok(log)
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    fn rewrite(&self) -> crate::Result<()> {
        let mut text = COLUMNS.join(",") + "\n";
        for r in &self.rows {
            text.push_str(&r.to_csv());
            text.push('\n');
        }
        crate::checkpoint::write_atomic(&self.path, text.as_bytes())
    }

    pub fn append(&mut self, row: Row) -> crate::Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).map_err(|e| crate::Error::io(format!("opening {}", self.path.display()), e))?;
        writeln!(f, "{}", row.to_csv()).map_err(|e| crate::Error::io(format!("writing {}", self.path.display()), e))?;
        self.rows.push(row);
        Ok(())
    }

    /// Draws D and G loss against step as an SVG.
    pub fn plot(&self, path: &Path) -> crate::Result<()> {
        let series = [
            ("D loss", RGBColor(214, 39, 40), self.rows.iter().map(|r| (r.step as f64, r.d_loss)).collect::<Vec<_>>()),
            ("G loss", RGBColor(31, 119, 180), self.rows.iter().map(|r| (r.step as f64, r.g_loss)).collect()),
        ];
        let svg = plot_lines("Losses", "step", &series)?;
        crate::checkpoint::write_atomic(path, svg.as_bytes())
    }
}

/// A line chart of named series as SVG text.
pub fn plot_lines(title: &str, x_label: &str, series: &[(&str, RGBColor, Vec<(f64, f64)>)]) -> crate::Result<String> {
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
