pub mod sample;
pub mod train;
