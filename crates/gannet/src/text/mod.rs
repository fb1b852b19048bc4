//! Text for text-to-image: the tokenizer over caption words and the contrastively trained text
//! and image encoders.

pub mod encoder;
pub mod tokenizer;

pub use encoder::{contrastive_loss, similarity, EncoderConfig, ImageEncoder, TextEncoder, Tokens};
pub use tokenizer::{Vocab, MAX_WORDS};
