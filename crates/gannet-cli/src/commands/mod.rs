pub mod bench;
pub mod classifier;
pub mod eval;
pub mod sample;
pub mod serve;
pub mod train;
