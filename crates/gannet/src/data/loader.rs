//! Deterministic, background-prepared training batches.
//!
//! The batch for step `s` depends only on (seed, s): epoch = s / batches_per_epoch, and the
//! epoch's order is a Fisher-Yates shuffle drawn from `rng(seed, Shuffle, epoch)`. A loader
//! started at step k therefore yields exactly what a loader started at 0 yields from its k-th
//! batch on, which keeps resumed training bit-exact without saving loader state.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::{Device, Tensor};
use rand::Rng;

use super::{to_unit_f32, Dataset};
use crate::parallel::Shard;
use crate::rng::{rng, Stream};
use crate::{Error, Result};

/// Batches prepared ahead of the training loop.
const QUEUE_DEPTH: usize = 4;

/// One batch on the host: images `[B,C,H,W]` in [-1,1], labels when the dataset has them.
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub step: u64,
    pub images: Vec<f32>,
    pub labels: Option<Vec<u32>>,
    pub shape: [usize; 4],
}

impl HostBatch {
    /// Images as an f32 tensor `[B,C,H,W]`, labels as a u32 tensor `[B]`.
    pub fn to_tensors(&self, device: &Device) -> Result<(Tensor, Option<Tensor>)> {
        let images = Tensor::from_slice(&self.images, &self.shape[..], device)?;
        let labels = match &self.labels {
            Some(l) => Some(Tensor::from_slice(l, l.len(), device)?),
            None => None,
        };
        Ok((images, labels))
    }
}

/// The order of the dataset's images in `epoch`: a Fisher-Yates shuffle of 0..len.
pub fn epoch_permutation(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut r = rng(seed, Stream::Shuffle, epoch);
    let mut perm: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        // Drawn as u64 so the sequence does not depend on the platform's usize.
        let j = r.random_range(0..=i as u64) as usize;
        perm.swap(i, j);
    }
    perm
}

/// Produces [`HostBatch`]es for consecutive steps in a background thread.
pub struct BatchLoader {
    receiver: Option<Receiver<HostBatch>>,
    worker: Option<JoinHandle<()>>,
    batches_per_epoch: u64,
}

impl BatchLoader {
    /// Starts preparing batches from `start_step` on. The last partial batch of each epoch is
    /// dropped so every batch has `batch_size` images.
    pub fn new(dataset: Arc<Dataset>, batch_size: usize, seed: u64, start_step: u64) -> Result<Self> {
        Self::sharded(dataset, batch_size, seed, start_step, Shard::whole(batch_size))
    }

    /// As [`BatchLoader::new`], yielding only the images of `shard` of each batch (a
    /// data-parallel process's slice; the batch order is the same in every process).
    pub fn sharded(dataset: Arc<Dataset>, batch_size: usize, seed: u64, start_step: u64, shard: Shard) -> Result<Self> {
        if batch_size == 0 || batch_size > dataset.len() {
            return Err(Error::data(dataset.source(), format!("batch size {batch_size} must be between 1 and the dataset size {}", dataset.len())));
        }
        if shard.global != batch_size || shard.range.end > batch_size {
            return Err(Error::Msg(format!("a shard {:?} of {} images does not fit batches of {batch_size}", shard.range, shard.global)));
        }
        let batches_per_epoch = (dataset.len() / batch_size) as u64;
        let (sender, receiver) = sync_channel(QUEUE_DEPTH);
        let worker = std::thread::Builder::new()
            .name("gannet-batch-loader".into())
            .spawn(move || {
                let mut producer = Producer::new(dataset, batch_size, seed, shard.range);
                // Ends when the loader (and so the receiver) is dropped: send fails.
                for step in start_step.. {
                    if sender.send(producer.batch(step)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("starting the batch loader thread", e))?;
        Ok(BatchLoader { receiver: Some(receiver), worker: Some(worker), batches_per_epoch })
    }

    /// Number of full batches in one pass over the dataset.
    pub fn batches_per_epoch(&self) -> u64 {
        self.batches_per_epoch
    }

    /// The next batch, waiting for the background thread if it is behind.
    pub fn next_batch(&mut self) -> Result<HostBatch> {
        let receiver = self.receiver.as_ref().expect("receiver lives until drop");
        receiver.recv().map_err(|_| Error::Msg("batch loader thread stopped unexpectedly (it panicked)".into()))
    }
}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        // Dropping the receiver first makes the worker's pending send fail, so join cannot hang.
        drop(self.receiver.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Builds batches on the worker thread, keeping the current epoch's permutation.
struct Producer {
    dataset: Arc<Dataset>,
    batch_size: usize,
    seed: u64,
    batches_per_epoch: u64,
    epoch: Option<(u64, Vec<usize>)>,
    /// The positions of each batch this loader yields.
    shard: std::ops::Range<usize>,
}

impl Producer {
    fn new(dataset: Arc<Dataset>, batch_size: usize, seed: u64, shard: std::ops::Range<usize>) -> Self {
        let batches_per_epoch = (dataset.len() / batch_size) as u64;
        Producer { dataset, batch_size, seed, batches_per_epoch, epoch: None, shard }
    }

    fn batch(&mut self, step: u64) -> HostBatch {
        let epoch = step / self.batches_per_epoch;
        let position = (step % self.batches_per_epoch) as usize;
        if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
            self.epoch = Some((epoch, epoch_permutation(self.dataset.len(), self.seed, epoch)));
        }
        let perm = &self.epoch.as_ref().expect("set above").1;
        let indices = &perm[position * self.batch_size..(position + 1) * self.batch_size];
        gather(&self.dataset, &indices[self.shard.clone()], step)
    }
}

fn gather(ds: &Dataset, indices: &[usize], step: u64) -> HostBatch {
    let mut images = Vec::with_capacity(indices.len() * ds.image_size());
    for &i in indices {
        images.extend(to_unit_f32(ds.image_u8(i)));
    }
    let labels = ds.labels().map(|l| indices.iter().map(|&i| l[i]).collect());
    HostBatch { step, images, labels, shape: [indices.len(), ds.channels(), ds.height(), ds.width()] }
}
