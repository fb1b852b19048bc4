pub mod bench;
pub mod sample;
pub mod train;
