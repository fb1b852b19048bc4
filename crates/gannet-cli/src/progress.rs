//! The training progress bar: step, losses and images/s.

use gannet::train::{Observer, StepStats};
use indicatif::{ProgressBar, ProgressStyle};

pub struct TrainProgress {
    bar: ProgressBar,
    /// What the G loss and the mean D logits on real and generated images are called.
    labels: (&'static str, &'static str, &'static str),
}

impl TrainProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self { bar, labels: ("D(x)", "D(G(z))", "G") }
    }

    /// A bar that names the D outputs and the generator loss it shows (image-to-image training
    /// shows D on real and on translated images and the pixel loss).
    pub fn with_labels(real: &'static str, fake: &'static str, g_loss: &'static str) -> Self {
        let mut p = Self::new();
        p.labels = (real, fake, g_loss);
        p
    }

    pub fn finish(&self) {
        self.bar.finish();
    }
}

impl Observer for TrainProgress {
    fn on_start(&mut self, start: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(start);
        self.bar.reset_eta();
    }

    fn on_step(&mut self, s: &StepStats) {
        self.bar.set_position(s.step);
        let (real, fake, g) = self.labels;
        self.bar.set_message(format!(
            "D {:.3} {g} {:.3} | {real} {:+.2} {fake} {:+.2} | {:.0} img/s",
            s.d_loss, s.g_loss, s.d_real, s.d_fake, s.images_per_s
        ));
    }

    fn on_event(&mut self, message: &str) {
        self.bar.println(message);
    }
}

/// A plain progress bar for a job of `len` units (classifier steps, images embedded).
pub fn bar(len: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} {bar:30.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}
