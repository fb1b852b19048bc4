//! Minibatch standard deviation (Karras et al. 2018, 3): one extra feature map telling the
//! discriminator how varied its batch is, so a generator that collapses to a few images is easy
//! to spot. The batch is split into groups of `G` consecutive images (image `n` is in group
//! `n / G`); for each group the standard deviation of every feature and pixel over the group's
//! images is averaged into one number, which becomes a constant map appended to each of the
//! group's images.
//!
//! The reference code groups images `n mod N/G` instead; on shuffled batches of i.i.d. latents
//! the two are the same in distribution. Consecutive groups let data-parallel processes, each
//! holding a consecutive slice of the batch, hold whole groups, so an N-process run computes
//! what one process computes on the combined batch.

use candle_core::Tensor;

/// Epsilon inside the square root of the variance, as in the reference code.
pub const MBSTD_EPS: f64 = 1e-8;

/// The group size used for a batch of `n`: the largest size `<= min(max_group, n)` dividing `n`
/// (ProGAN uses `max_group = 4`; the reference requires `n` divisible by it, gannet falls back to
/// a smaller group, at worst 1, rather than refuse an odd batch).
pub fn group_size(max_group: usize, n: usize) -> usize {
    (1..=max_group.min(n).max(1)).rev().find(|g| n.is_multiple_of(*g)).unwrap_or(1)
}

/// x [N, C, H, W] -> [N, C + 1, H, W], the last channel the group's mean standard deviation.
/// With a group of 1 the standard deviation is `sqrt(eps)`, a constant.
pub fn minibatch_stddev(x: &Tensor, max_group: usize) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    // The group size of the combined batch, so that data-parallel processes group as one
    // process does; each process must then hold whole groups.
    let global = crate::parallel::Shard::of_local(n).global;
    let g = group_size(max_group, global);
    if !n.is_multiple_of(g) {
        return Err(crate::Error::Config(format!(
            "minibatch standard deviation groups {g} images of the combined batch of {global}, and each of the {} processes holds {n}: \
             use a schedule.batch_size (--batch-size) that is a multiple of {}",
            global / n,
            g * (global / n)
        )));
    }
    let m = n / g;
    let y = x.reshape((m, g, c, h, w))?;
    let centred = y.broadcast_sub(&y.mean_keepdim(1)?)?;
    // Biased variance over the group, as the reference.
    let std = (centred.sqr()?.mean(1)? + MBSTD_EPS)?.sqrt()?; // [M, C, H, W]
    let s = std.flatten_from(1)?.mean(1)?; // [M]
    let map = s.reshape((m, 1, 1, 1, 1))?.broadcast_as((m, g, 1, h, w))?.contiguous()?.reshape((n, 1, h, w))?;
    Ok(Tensor::cat(&[x, &map], 1)?)
}
