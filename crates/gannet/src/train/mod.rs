//! Training configuration and loop.
