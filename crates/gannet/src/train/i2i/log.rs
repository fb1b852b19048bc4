//! The run's `metrics.csv` for image-to-image training and its chart (`losses.svg`, drawn with
//! [`crate::train::metrics_log::plot_lines`]). As the GAN trainer's log: rows after a resumed
//! checkpoint's step are dropped first, so the file describes exactly the run the weights are from.

use crate::train::metrics_log::plot_lines;
use plotters::style::RGBColor;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const COLUMNS: [&str; 9] = ["step", "d_loss", "g_adv", "g_pixel", "d_real", "d_fake", "lr_factor", "images_per_s", "elapsed_s"];

pub struct I2iLog {
    path: PathBuf,
    /// One row per log interval; `row[0]` is the step.
    rows: Vec<Vec<f64>>,
}

impl I2iLog {
    /// Opens (or starts) the log at `path`, keeping the rows up to `up_to_step`.
    pub fn open(path: &Path, up_to_step: u64) -> crate::Result<Self> {
        let rows = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .skip(1)
                .filter_map(|l| l.split(',').map(|f| f.trim().parse::<f64>().ok()).collect::<Option<Vec<f64>>>())
                .filter(|r| r.len() == COLUMNS.len() && r[0] <= up_to_step as f64)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(crate::Error::io(format!("reading {}", path.display()), e)),
        };
        let log = Self { path: path.to_path_buf(), rows };
        let mut text = COLUMNS.join(",") + "\n";
        for r in &log.rows {
            text.push_str(&Self::line(r));
        }
        crate::checkpoint::write_atomic(&log.path, text.as_bytes())?;
        Ok(log)
    }

    fn line(r: &[f64]) -> String {
        let fields: Vec<String> = r.iter().enumerate().map(|(i, v)| if i == 0 { format!("{v}") } else { format!("{v:.6}") }).collect();
        fields.join(",") + "\n"
    }

    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }

    /// Appends a row of [`COLUMNS`] values.
    pub fn append(&mut self, row: Vec<f64>) -> crate::Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).map_err(|e| crate::Error::io(format!("opening {}", self.path.display()), e))?;
        f.write_all(Self::line(&row).as_bytes()).map_err(|e| crate::Error::io(format!("writing {}", self.path.display()), e))?;
        self.rows.push(row);
        Ok(())
    }

    /// D loss, G's adversarial term and G's pixel term against the step.
    pub fn plot(&self, path: &Path) -> crate::Result<()> {
        let col = |i: usize| self.rows.iter().map(|r| (r[0], r[i])).collect::<Vec<_>>();
        let series = [
            ("D loss", RGBColor(214, 39, 40), col(1)),
            ("G adversarial", RGBColor(31, 119, 180), col(2)),
            ("G pixel (L1 / cycle)", RGBColor(44, 160, 44), col(3)),
        ];
        let svg = plot_lines("Losses", "step", &series)?;
        crate::checkpoint::write_atomic(path, svg.as_bytes())
    }
}
