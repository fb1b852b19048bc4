//! gannet: generative adversarial networks on candle.
//!
//! The crate is laid out the way data flows through a GAN run:
//! - [`data`]: image datasets (IDX, image folders, the built-in digits) and the batch loader.
//! - [`ops`]: fast tensor kernels (convolutions, fused norms) whose backward passes stay
//!   differentiable.
//! - [`nn`]: parameter store and layers (linear, conv, batch norm, spectral norm, ...).
//! - [`models`]: generators and discriminators (MLP, DCGAN, ResNet/SNGAN, ProGAN, StyleGAN2,
//!   BigGAN) and the image-to-image networks.
//! - [`text`]: caption tokenizer and the contrastive text and image encoders (text-to-image).
//! - [`loss`]: adversarial losses; [`optim`]: Adam with saveable state.
//! - [`config`]: every setting of a run, as plain data (GAN, image-to-image, classifier, toys).
//! - [`train`]: the one training engine ([`train::Run`] over a [`train::engine::Task`]) and its
//!   tasks: GANs ([`train::Trainer`]), image-to-image, the metrics' classifier, the 2-D toys.
//! - [`saved`]: trained models loaded to use them (sampling, evaluation, editing, translation).
//! - [`metrics`]: FID/KID (pytorch-fid's Inception), precision/recall, classifier metrics, mode
//!   coverage, L1/PSNR/SSIM.
//! - [`edit`]: truncation, interpolation, style mixing, projection.
//! - [`checkpoint`]: atomic, verified safetensors files and the record every checkpoint holds.
//! - [`limits`]: the memory budget and the bounds on sizes read from configs and files.
//!
//! Train on a folder and sample from the result (see `examples/` for the whole programs):
//!
//! ```no_run
//! use gannet::train::{Quiet, TrainConfig, Trainer};
//! # fn main() -> gannet::Result<()> {
//! let mut cfg = TrainConfig::default();
//! cfg.data.source = "my-pictures/".into();
//! cfg.output.dir = "runs/mine".into();
//! let mut run = Trainer::new(cfg)?;
//! run.run(&mut Quiet, &std::sync::atomic::AtomicBool::new(false))?;
//! let saved = gannet::saved::SavedRun::load(&run.run_dir().latest_checkpoint(), &gannet::candle_core::Device::Cpu)?;
//! let _generator = saved.sampling_generator(&gannet::candle_core::Device::Cpu)?;
//! # Ok(())
//! # }
//! ```

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
pub mod parallel;
pub mod rng;
pub mod saved;
pub mod text;
pub mod train;

pub use candle_core;
pub use error::{Error, Result};
