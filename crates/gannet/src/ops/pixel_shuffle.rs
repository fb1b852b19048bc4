//! Sub-pixel convolution's rearrangement (Shi et al. 2016): `pixel_shuffle` moves channel groups
//! of `r*r` into `r x r` spatial blocks, `pixel_unshuffle` undoes it.
//!
//! Both are one reshape, one permute and one reshape, all of which candle differentiates, so
//! the backward pass of each is the other (a permutation's adjoint is its inverse) without a
//! custom op. Layout as PyTorch's `nn.PixelShuffle`: output `(n, c, h*r + i, w*r + j)` is input
//! channel `c*r*r + i*r + j` at `(h, w)`.

use candle_core::Tensor;

/// [N, C*r*r, H, W] -> [N, C, H*r, W*r].
pub fn pixel_shuffle(x: &Tensor, r: usize) -> crate::Result<Tensor> {
    let (n, crr, h, w) = x.dims4()?;
    if r == 0 || !crr.is_multiple_of(r * r) {
        return Err(crate::Error::Msg(format!("pixel_shuffle by {r}: {crr} channels are not a multiple of {}", r * r)));
    }
    let c = crr / (r * r);
    Ok(x.reshape(vec![n, c, r, r, h, w])?.permute(vec![0, 1, 4, 2, 5, 3])?.contiguous()?.reshape((n, c, h * r, w * r))?)
}

/// [N, C, H*r, W*r] -> [N, C*r*r, H, W], the inverse of [`pixel_shuffle`].
pub fn pixel_unshuffle(x: &Tensor, r: usize) -> crate::Result<Tensor> {
    let (n, c, hr, wr) = x.dims4()?;
    if r == 0 || !hr.is_multiple_of(r) || !wr.is_multiple_of(r) {
        return Err(crate::Error::Msg(format!("pixel_unshuffle by {r}: size {hr}x{wr} is not a multiple of {r}")));
    }
    let (h, w) = (hr / r, wr / r);
    Ok(x.reshape(vec![n, c, h, r, w, r])?.permute(vec![0, 1, 3, 5, 2, 4])?.contiguous()?.reshape((n, c * r * r, h, w))?)
}
