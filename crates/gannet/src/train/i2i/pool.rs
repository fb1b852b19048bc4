//! CycleGAN's history of generated images (Shrivastava et al. 2017): the discriminator trains on
//! a mix of the newest fakes and older ones, so it does not forget what earlier generators did
//! and the two networks oscillate less.
//!
//! As CycleGAN's `ImagePool`: until the pool holds `size` images every fake is stored and used;
//! after that each fake is, with probability 1/2, swapped with a random stored one (the stored
//! one is used) or used as it is. The coin flips come from the run's `Pool` stream indexed by the
//! step, and the stored images go into checkpoints, so a resumed run picks what the unbroken run
//! picked.

use crate::rng::{self, Stream};
use candle_core::Tensor;
use rand::Rng;

pub struct ImagePool {
    size: usize,
    images: Vec<Tensor>,
}

impl ImagePool {
    pub fn new(size: usize) -> Self {
        Self { size, images: Vec::new() }
    }

    /// The images to show the discriminator for `fakes` [N, C, H, W] at `step`; `which` keeps the
    /// draws of two pools apart.
    pub fn query(&mut self, fakes: &Tensor, seed: u64, step: u64, which: u64) -> crate::Result<Tensor> {
        let fakes = fakes.detach();
        if self.size == 0 {
            return Ok(fakes);
        }
        let mut r = rng::rng(seed, Stream::Pool, step.wrapping_mul(2).wrapping_add(which));
        let mut out = Vec::with_capacity(fakes.dim(0)?);
        for i in 0..fakes.dim(0)? {
            let img = fakes.narrow(0, i, 1)?;
            if self.images.len() < self.size {
                self.images.push(img.clone());
                out.push(img);
            } else if r.random_bool(0.5) {
                let j = r.random_range(0..self.size as u64) as usize;
                out.push(std::mem::replace(&mut self.images[j], img));
            } else {
                out.push(img);
            }
        }
        Ok(Tensor::cat(&out, 0)?)
    }

    /// The stored images as one tensor [n, C, H, W] (None while empty), for checkpoints.
    pub fn tensor(&self) -> crate::Result<Option<Tensor>> {
        if self.images.is_empty() {
            return Ok(None);
        }
        Ok(Some(Tensor::cat(&self.images, 0)?))
    }

    /// Restores what [`ImagePool::tensor`] saved.
    pub fn load(&mut self, saved: Option<&Tensor>) -> crate::Result<()> {
        self.images.clear();
        if let Some(t) = saved {
            for i in 0..t.dim(0)? {
                self.images.push(t.narrow(0, i, 1)?.contiguous()?);
            }
        }
        Ok(())
    }
}
