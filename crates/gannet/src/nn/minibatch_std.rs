//! Minibatch standard deviation (Karras et al. 2018): one extra feature map telling D how varied
//! the images of its batch are, so a generator that makes the same image over and over (mode
//! collapse) is easy to spot.

use candle_core::Tensor;

/// x [N, C, H, W] -> [N, C+1, H, W]. The batch is split into groups of `group` images (the largest
/// divisor of N not above `group`); image i belongs to group member `i % (N/group)`'s statistics:
/// the standard deviation over the group of each feature and pixel, averaged to one number, is
/// appended as a constant map.
pub fn minibatch_stddev(x: &Tensor, group: usize) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let g = (1..=group.min(n).max(1)).rev().find(|g| n % g == 0).unwrap_or(1);
    let y = x.reshape((g, n / g, c, h, w))?;
    let centred = y.broadcast_sub(&y.mean_keepdim(0)?)?;
    let std = (centred.sqr()?.mean(0)? + 1e-8)?.sqrt()?; // [N/g, C, H, W]
    let per_member = std.flatten_from(1)?.mean(1)?; // [N/g]
    let map = per_member.reshape((n / g, 1, 1, 1))?.repeat((g, 1, h, w))?;
    Ok(Tensor::cat(&[x, &map], 1)?)
}
