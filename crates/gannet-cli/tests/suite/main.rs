//! The command line's integration tests, one module per file, in one test binary: one link and one
//! binary on disk instead of one per file. Each test runs `gannet` as a child process, so they
//! share no state here.
//!
//! `studio_browser.rs` stays a binary of its own (it drives chromium and skips without it); it
//! shares `studio_common` with the studio tests here.

#[path = "../studio_common/mod.rs"]
mod studio_common;

mod cli;
mod edit_cli;
mod eval_cli;
mod image_to_image_cli;
#[cfg(feature = "mpi")]
mod parallel;
mod studio_api;
mod text_to_image_cli;
