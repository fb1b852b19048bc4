//! DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").
//!
//! The discriminator only ever sees augmented images: real and generated ones alike, in the D
//! update and in the G update. Because every augmentation is built from differentiable tensor
//! ops, the generator still gets gradients through them, and D cannot simply memorise the (small)
//! training set. Three families, each a per-image random transform:
//!
//! * `color`: brightness `x + (b - 0.5)`, saturation `(x - mean_c) * 2s + mean_c` (mean over
//!   channels), contrast `(x - mean) * (c + 0.5) + mean` (mean over the whole image), with
//!   `b, s, c ~ U[0, 1)` per image.
//! * `translation`: shifts by up to 1/8 of the image size (rounded) in each direction, an integer
//!   number of pixels drawn per image and axis; pixels shifted in are zero. A gather of the
//!   shifted pixel indices times a validity mask: linear in `x`, so its backward (and that
//!   backward's backward, for R1) are a scatter-add and a gather again.
//! * `cutout`: zeroes one square of half the image size (rounded) per image, at a centre drawn
//!   uniformly; squares near the border are clipped.
//!
//! Randomness: augmentation `index` of a run draws from `rng(seed, Stream::Augment, index)`, the
//! parameters in the order colour, translation, cutout, so the same seed and index give the same
//! augmentation and a resumed run repeats the unbroken one. [`stream_index`] numbers the three
//! batches D sees per D update.

pub use crate::config::AugmentPolicy;
use crate::parallel::Shard;
use crate::rng::{self, Stream};
use candle_core::{Tensor, D};
use rand::rngs::StdRng;
use rand::Rng;

/// Which of the batches D sees in one step an augmentation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The real batch of a D update.
    Real = 0,
    /// The generated batch of a D update.
    Fake = 1,
    /// The generated batch of the G update (after the last D update of the step).
    GenFake = 2,
}

/// The [`Stream::Augment`] index for `role` in D update `d_step` (counted over the whole run;
/// the G update uses the last D update's index): every batch gets its own draws.
pub fn stream_index(d_step: u64, role: Role) -> u64 {
    d_step * 3 + role as u64
}

/// Maximum translation in pixels for an image side: 1/8 of it, rounded.
pub fn max_shift(side: usize) -> usize {
    (side + 4) / 8
}

/// Side of the cutout square for an image side: half of it, rounded.
pub fn cutout_size(side: usize) -> usize {
    side.div_ceil(2)
}

/// Per-image random parameters of one augmentation of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentParams {
    /// Brightness offsets in [-0.5, 0.5).
    pub brightness: Vec<f32>,
    /// Saturation factors in [0, 2).
    pub saturation: Vec<f32>,
    /// Contrast factors in [0.5, 1.5).
    pub contrast: Vec<f32>,
    /// (dy, dx) shifts in pixels; content moves down/right for positive values.
    pub shifts: Vec<(i64, i64)>,
    /// (cy, cx) centres of the cutout squares.
    pub cutouts: Vec<(i64, i64)>,
}

impl AugmentParams {
    /// Draws the parameters for `n` images of `h` x `w` pixels, in the fixed order colour
    /// (brightness, saturation, contrast), translation (dy, dx), cutout (cy, cx); disabled
    /// augmentations draw nothing.
    pub fn draw(policy: AugmentPolicy, n: usize, h: usize, w: usize, r: &mut StdRng) -> Self {
        let uniform = |lo: f32, r: &mut StdRng| (0..n).map(|_| lo + r.random::<f32>()).collect::<Vec<_>>();
        let (mut brightness, mut saturation, mut contrast) = (Vec::new(), Vec::new(), Vec::new());
        if policy.color {
            brightness = uniform(-0.5, r);
            saturation = uniform(0.0, r).into_iter().map(|s| 2.0 * s).collect();
            contrast = uniform(0.5, r);
        }
        let mut shifts = Vec::new();
        if policy.translation {
            let (sy, sx) = (max_shift(h) as i64, max_shift(w) as i64);
            let dy: Vec<i64> = (0..n).map(|_| r.random_range(-sy..=sy)).collect();
            let dx: Vec<i64> = (0..n).map(|_| r.random_range(-sx..=sx)).collect();
            shifts = dy.into_iter().zip(dx).collect();
        }
        let mut cutouts = Vec::new();
        if policy.cutout {
            let cy: Vec<i64> = (0..n).map(|_| r.random_range(0..h as i64)).collect();
            let cx: Vec<i64> = (0..n).map(|_| r.random_range(0..w as i64)).collect();
            cutouts = cy.into_iter().zip(cx).collect();
        }
        Self { brightness, saturation, contrast, shifts, cutouts }
    }

    /// The parameters of the images in `shard` (draws are made for the global batch, so a
    /// data-parallel process augments its images as the one-process run does).
    pub fn shard(&self, shard: &Shard) -> Self {
        let s = |v: &Vec<f32>| if v.is_empty() { Vec::new() } else { shard.slice(v).to_vec() };
        let p = |v: &Vec<(i64, i64)>| if v.is_empty() { Vec::new() } else { shard.slice(v).to_vec() };
        Self {
            brightness: s(&self.brightness),
            saturation: s(&self.saturation),
            contrast: s(&self.contrast),
            shifts: p(&self.shifts),
            cutouts: p(&self.cutouts),
        }
    }
}

/// A per-image scalar as a [N, 1, 1, 1] tensor of `x`'s dtype and device.
fn per_image(x: &Tensor, v: &[f32]) -> crate::Result<Tensor> {
    Ok(Tensor::from_slice(v, (v.len(), 1, 1, 1), x.device())?.to_dtype(x.dtype())?)
}

fn check(x: &Tensor, n: usize, what: &str) -> crate::Result<(usize, usize, usize, usize)> {
    let dims = x.dims4()?;
    if dims.0 != n {
        return Err(crate::Error::Msg(format!("augment {what}: {n} parameters for a batch of {}", dims.0)));
    }
    Ok(dims)
}

/// `x + b` per image.
pub fn brightness(x: &Tensor, offsets: &[f32]) -> crate::Result<Tensor> {
    check(x, offsets.len(), "brightness")?;
    Ok(x.broadcast_add(&per_image(x, offsets)?)?)
}

/// `(x - m) * s + m` per image, `m` the mean over channels at each pixel.
pub fn saturation(x: &Tensor, factors: &[f32]) -> crate::Result<Tensor> {
    check(x, factors.len(), "saturation")?;
    let m = x.mean_keepdim(1)?;
    Ok(x.broadcast_sub(&m)?.broadcast_mul(&per_image(x, factors)?)?.broadcast_add(&m)?)
}

/// `(x - m) * c + m` per image, `m` the mean of the whole image.
pub fn contrast(x: &Tensor, factors: &[f32]) -> crate::Result<Tensor> {
    let (n, ..) = check(x, factors.len(), "contrast")?;
    let m = x.reshape((n, ()))?.mean_keepdim(D::Minus1)?.reshape((n, 1, 1, 1))?;
    Ok(x.broadcast_sub(&m)?.broadcast_mul(&per_image(x, factors)?)?.broadcast_add(&m)?)
}

/// Brightness, saturation and contrast in one pass: the same result as [`brightness`], then
/// [`saturation`], then [`contrast`], computed as `y = k S x + (1 - k) mean(x) + b` per image,
/// with `S = s I + (1 - s)/C 11^T` mixing the channels (a batched [C, C] matmul) and `mean` over
/// the whole image. (S's rows and columns sum to one, so the image mean after brightness and
/// saturation is `mean(x) + b`, which is where the contrast pulls towards.) About 4x faster than
/// the three ops in a row, whose channel means are strided reductions.
pub fn color(x: &Tensor, brightness: &[f32], saturation: &[f32], contrast: &[f32]) -> crate::Result<Tensor> {
    let (n, c, h, w) = check(x, brightness.len(), "color")?;
    if saturation.len() != n || contrast.len() != n {
        return Err(crate::Error::Msg(format!("augment color: parameter counts differ from the batch size {n}")));
    }
    let mut mix = Vec::with_capacity(n * c * c);
    let mut offset_scale = Vec::with_capacity(n);
    for i in 0..n {
        let (s, k) = (saturation[i], contrast[i]);
        for r in 0..c {
            for col in 0..c {
                let sij = if r == col { s } else { 0.0 } + (1.0 - s) / c as f32;
                mix.push(k * sij);
            }
        }
        offset_scale.push(1.0 - k);
    }
    let dev = x.device();
    let mix = Tensor::from_vec(mix, (n, c, c), dev)?.to_dtype(x.dtype())?;
    let x3 = x.contiguous()?.reshape((n, c, h * w))?;
    let mean = x3.reshape((n, c * h * w))?.mean_keepdim(1)?.reshape((n, 1, 1))?;
    let scale = Tensor::from_vec(offset_scale, (n, 1, 1), dev)?.to_dtype(x.dtype())?;
    let b = Tensor::from_slice(brightness, (n, 1, 1), dev)?.to_dtype(x.dtype())?;
    let offset = (mean.mul(&scale)? + b)?;
    Ok(mix.matmul(&x3)?.broadcast_add(&offset)?.reshape((n, c, h, w))?)
}

/// Shifts image `i` by `shifts[i] = (dy, dx)` pixels (output pixel (r, c) is input pixel
/// (r - dy, c - dx)), filling with zeros.
pub fn translate(x: &Tensor, shifts: &[(i64, i64)]) -> crate::Result<Tensor> {
    let (n, c, h, w) = check(x, shifts.len(), "translation")?;
    let mut idx = Vec::with_capacity(n * h * w);
    let mut mask = Vec::with_capacity(n * h * w);
    for &(dy, dx) in shifts {
        for r in 0..h as i64 {
            for col in 0..w as i64 {
                let (sr, sc) = (r - dy, col - dx);
                let inside = (0..h as i64).contains(&sr) && (0..w as i64).contains(&sc);
                idx.push(if inside { (sr * w as i64 + sc) as u32 } else { 0 });
                mask.push(if inside { 1f32 } else { 0.0 });
            }
        }
    }
    let dev = x.device();
    let idx = Tensor::from_vec(idx, (n, 1, h * w), dev)?.broadcast_as((n, c, h * w))?.contiguous()?;
    let mask = full_mask(mask, x)?;
    let moved = x.contiguous()?.reshape((n, c, h * w))?.gather(&idx, 2)?.reshape((n, c, h, w))?;
    Ok(moved.mul(&mask)?)
}

/// Zeroes, in image `i`, the `size` x `size` square centred at `centres[i] = (cy, cx)`
/// (rows `cy - size/2 .. cy - size/2 + size`, clipped to the image).
pub fn cutout(x: &Tensor, centres: &[(i64, i64)], size: usize) -> crate::Result<Tensor> {
    let (n, _, h, w) = check(x, centres.len(), "cutout")?;
    let half = (size / 2) as i64;
    let mut mask = vec![1f32; n * h * w];
    for (i, &(cy, cx)) in centres.iter().enumerate() {
        let rows = (cy - half).max(0)..(cy - half + size as i64).min(h as i64);
        for r in rows {
            let cols = (cx - half).max(0)..(cx - half + size as i64).min(w as i64);
            for col in cols {
                mask[(i * h + r as usize) * w + col as usize] = 0.0;
            }
        }
    }
    Ok(x.contiguous()?.mul(&full_mask(mask, x)?)?)
}

/// A per-pixel mask [N*H*W] expanded over the channels to `x`'s full shape and dtype. Expanded
/// and contiguous on purpose: candle multiplies by a mask broadcast over the channel dimension
/// (a middle dimension) element by element through strided indexing, which made the backward
/// pass of cutout about 4x slower.
fn full_mask(mask: Vec<f32>, x: &Tensor) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let m = Tensor::from_vec(mask, (n, 1, h, w), x.device())?.to_dtype(x.dtype())?;
    Ok(m.broadcast_as((n, c, h, w))?.contiguous()?)
}

/// Applies `params` to `x` [N, C, H, W] in the order colour, translation, cutout.
pub fn apply(x: &Tensor, params: &AugmentParams) -> crate::Result<Tensor> {
    let mut y = x.clone();
    if !params.brightness.is_empty() {
        y = color(&y, &params.brightness, &params.saturation, &params.contrast)?;
    }
    if !params.shifts.is_empty() {
        y = translate(&y, &params.shifts)?;
    }
    if !params.cutouts.is_empty() {
        let side = y.dim(2)?.min(y.dim(3)?);
        y = cutout(&y, &params.cutouts, cutout_size(side))?;
    }
    Ok(y)
}

/// Augmentation number `index` of the run seeded `seed`: draws from
/// `rng(seed, Stream::Augment, index)` and applies `policy` to `x` (returned unchanged when the
/// policy is empty). Under data-parallel training `x` is this process's slice of the batch.
pub fn augment(x: &Tensor, policy: AugmentPolicy, seed: u64, index: u64) -> crate::Result<Tensor> {
    if !policy.is_active() {
        return Ok(x.clone());
    }
    let (n, _, h, w) = x.dims4()?;
    let shard = Shard::of_local(n);
    let mut r = rng::rng(seed, Stream::Augment, index);
    let params = AugmentParams::draw(policy, shard.global, h, w, &mut r).shard(&shard);
    apply(x, &params)
}
