//! The integration tests that switch second-order gradients on (R1 and gradient penalties,
//! StyleGAN2's path length, their gradient checks), one module per file, in one test binary.
//!
//! `gannet::autodiff::enable_second_order` sets `CANDLE_GRAD_DO_NOT_DETACH` for the whole
//! process, and each thread reads it once: every test here may run with second-order paths on,
//! as it did in its own binary beside the file's other tests. The tests that never switch it on
//! are in `tests/suite/`, so that they keep running first-order.

#[path = "../suite/common/mod.rs"]
mod common;

mod augment;
mod ops;
mod progan;
mod resnet;
mod stabilisers;
mod stylegan2;
