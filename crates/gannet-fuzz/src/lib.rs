//! Fuzz targets for gannet's parsers and request validation (issue #18, part 6), and the small
//! time-bounded mutation fuzzer that runs them on stable Rust. See `fuzz/README.md`.
//!
//! Targets: `idx` (IDX files, gzip), `image` (one image-folder entry), `checkpoint` (checkpoint
//! files and the metadata that builds a model), `config` (training and image-to-image TOML),
//! `studio` (the studio's HTTP API with real tiny models).

pub mod alloc;
pub mod mutate;
pub mod runner;
pub mod targets;
