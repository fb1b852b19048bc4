//! gannet: generative adversarial networks on candle.
//!
//! The crate is laid out the way data flows through a GAN run:
//! - [`data`]: image datasets (IDX, image folders) and the background batch loader.
//! - [`ops`]: fast tensor kernels (convolutions) whose backward passes stay differentiable.
//! - [`nn`]: parameter store and layers (linear, conv, batch norm, init).
//! - [`models`]: generators and discriminators (MLP GAN, DCGAN).
//! - [`loss`]: adversarial losses.
//! - [`optim`]: Adam with saveable state.
//! - [`train`]: configuration, the training loop, logging, sample grids.
//! - [`checkpoint`]: atomic, verified safetensors checkpoints.
//! - [`limits`]: the memory budget and the bounds on sizes read from configs and files.

pub mod autodiff;
pub mod buffer_cache;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod edit;
pub mod error;
pub mod image_io;
pub mod limits;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod saved;
pub mod train;

pub use candle_core;
pub use error::{Error, Result};
