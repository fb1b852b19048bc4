//! The training progress bar: step, losses and images/s. When stderr is not a terminal (a CI
//! log, nohup, a pipe) the bar cannot redraw, so a plain line is printed every few percent
//! instead.

use gannet::train::engine::Task;
use gannet::train::{Observer, Outcome, Run, StepStats};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub struct TrainProgress {
    bar: ProgressBar,
    /// Plain lines instead of the bar (stderr is not a terminal).
    plain: Option<PlainLines>,
}

/// A progress line every [`PlainLines::PERCENT`] of the run.
struct PlainLines {
    start: u64,
    total: u64,
    next: u64,
    since: Instant,
}

impl PlainLines {
    const PERCENT: u64 = 5;

    fn new(start: u64, total: u64) -> Self {
        let mut p = Self { start, total, next: start, since: Instant::now() };
        p.advance_mark(start);
        p
    }

    /// The next step to report: the next multiple of 5% of the run after `step`.
    fn advance_mark(&mut self, step: u64) {
        let every = (self.total * Self::PERCENT / 100).max(1);
        self.next = (step / every + 1) * every;
    }

    /// The line for `step` when it is due.
    fn line(&mut self, step: u64, msg: &str) -> Option<String> {
        if step < self.next && step != self.total {
            return None;
        }
        self.advance_mark(step);
        let done = step.saturating_sub(self.start);
        let left = self.total.saturating_sub(step);
        let secs = self.since.elapsed().as_secs_f64();
        let eta = if done > 0 { secs / done as f64 * left as f64 } else { 0.0 };
        let pct = step * 100 / self.total.max(1);
        Some(format!("step {step}/{} ({pct}%), {:.0} s elapsed, about {:.0} s left | {msg}", self.total, secs, eta))
    }
}

impl TrainProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let plain = (!std::io::stderr().is_terminal()).then(|| PlainLines::new(0, 0));
        if plain.is_some() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Self { bar, plain }
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
        if let Some(p) = &mut self.plain {
            *p = PlainLines::new(start, total);
        }
    }

    fn on_step(&mut self, s: &StepStats) {
        self.bar.set_position(s.step);
        let msg = format!("{} | {:.0} img/s", s.summary, s.images_per_s);
        if let Some(line) = self.plain.as_mut().and_then(|p| p.line(s.step, &msg)) {
            eprintln!("{line}");
        }
        self.bar.set_message(msg);
    }

    fn on_event(&mut self, message: &str) {
        if self.plain.is_some() {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
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

/// The flag a run polls between steps: the first Ctrl-C (or SIGTERM, which is what `kill` and
/// mpirun send) raises it (the run saves a checkpoint and stops), a second one exits at once.
pub fn stop_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(crate::launch::EXIT_INTERRUPTED);
        }
    })
    .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
    Ok(stop)
}

/// Trains `trainer` to its last step, or until `stop` is raised, under a progress bar.
pub fn train<T: Task>(trainer: &mut Run<T>, stop: &AtomicBool) -> gannet::Result<Outcome> {
    let mut progress = TrainProgress::new();
    let result = trainer.run(&mut progress, stop);
    progress.finish();
    result
}

/// [`train`], then [`finish_run`]: says where the samples and checkpoint are, or exits with
/// [`crate::launch::EXIT_INTERRUPTED`] after a stop.
pub fn train_to_end<T: Task>(trainer: &mut Run<T>, stop: &AtomicBool) -> anyhow::Result<()> {
    let outcome = train(trainer, stop)?;
    let rd = trainer.run_dir();
    finish_run(outcome, trainer.step(), &rd.latest_grid(), &rd.latest_checkpoint());
    Ok(())
}

/// Prints how a run ended; a stopped run exits with [`crate::launch::EXIT_INTERRUPTED`] so scripts can tell
/// it from a finished one.
pub fn finish_run(outcome: gannet::train::Outcome, step: u64, grid: &std::path::Path, checkpoint: &std::path::Path) {
    let leader = crate::launch::is_leader();
    match outcome {
        gannet::train::Outcome::Finished if leader => eprintln!("done at step {step}: samples {}, checkpoint {}", grid.display(), checkpoint.display()),
        gannet::train::Outcome::Finished => {}
        gannet::train::Outcome::Stopped { step, checkpoint } => {
            if leader {
                eprintln!("stopped at step {step}, checkpoint saved: {} (continue with --resume {})", checkpoint.display(), checkpoint.display());
            }
            crate::launch::exit(crate::launch::EXIT_INTERRUPTED);
        }
    }
}
