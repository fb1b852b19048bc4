//! gannet's integration tests, one module per file, in one test binary: one link and one binary
//! on disk instead of one per file (each weighs tens of MB, and CI's disk and 2 cores are small).
//!
//! Tests that would change how these run, or that need what they might change, are binaries of
//! their own:
//! - `tests/second_order/`: the tests that switch second-order gradients on. That sets
//!   `CANDLE_GRAD_DO_NOT_DETACH` for the whole process, and test threads that start their tensor
//!   work after it take candle's and gannet's second-order paths (batch norm's composite form
//!   instead of the fused kernel). No test here switches it on, so they all run first-order.
//! - `tests/second_order_off.rs`: what happens when that variable is absent.

mod common;

mod ada;
mod adam;
mod batch_norm;
mod biggan;
mod checkpoint;
mod conditional;
mod data;
mod edit;
mod engine;
mod evaluation;
mod fid_weights;
mod guard;
mod hardening;
mod image_to_image;
mod losses;
mod metrics;
mod mode_coverage;
mod text_to_image;
mod train;
