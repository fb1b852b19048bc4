//! Optimisers with saveable state.

pub mod adam;

pub use adam::{Adam, AdamConfig};
