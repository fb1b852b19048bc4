//! Forward-only pooling and resizing with PyTorch's exact semantics, for the FID network.
//!
//! candle's pools have no padding, so padding is added explicitly: -inf for max pools (so a
//! pad never wins), zeros plus a per-position divisor for `count_include_pad=False` average
//! pools (PyTorch divides by the number of real pixels under the window).

use candle_core::{DType, Device, Tensor};

/// Pads the last two dims of an NCHW tensor by `p` on every side with `value`.
fn pad_const(x: &Tensor, p: usize, value: f32) -> crate::Result<Tensor> {
    if p == 0 {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let side = Tensor::full(value, (n, c, h, p), x.device())?.to_dtype(x.dtype())?;
    let x = Tensor::cat(&[&side, x, &side], 3)?;
    let top = Tensor::full(value, (n, c, p, w + 2 * p), x.device())?.to_dtype(x.dtype())?;
    Ok(Tensor::cat(&[&top, &x, &top], 2)?)
}

/// `F.max_pool2d(x, k, stride, padding)` (floor mode).
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize, padding: usize) -> crate::Result<Tensor> {
    let x = pad_const(x, padding, f32::NEG_INFINITY)?;
    Ok(x.max_pool2d_with_stride(k, stride)?)
}

/// `F.avg_pool2d(x, k, stride, padding, count_include_pad=False)` (floor mode).
pub fn avg_pool2d_exclude_pad(x: &Tensor, k: usize, stride: usize, padding: usize) -> crate::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let avg = pad_const(x, padding, 0.0)?.avg_pool2d_with_stride(k, stride)?;
    if padding == 0 {
        return Ok(avg);
    }
    let (_, _, oh, ow) = avg.dims4()?;
    // candle divided by k*k; rescale each output by k*k / (real pixels in its window).
    let rows = window_counts(h, oh, k, stride, padding);
    let cols = window_counts(w, ow, k, stride, padding);
    let scale: Vec<f32> = rows.iter().flat_map(|&r| cols.iter().map(move |&c| (k * k) as f32 / (r * c) as f32)).collect();
    let scale = Tensor::from_vec(scale, (1, 1, oh, ow), x.device())?.to_dtype(x.dtype())?;
    Ok(avg.broadcast_mul(&scale)?)
}

/// For each output index along one axis: how many input positions its window covers.
fn window_counts(len: usize, out: usize, k: usize, stride: usize, padding: usize) -> Vec<usize> {
    (0..out)
        .map(|o| {
            let start = (o * stride) as isize - padding as isize;
            let end = start + k as isize;
            (end.min(len as isize) - start.max(0)) as usize
        })
        .collect()
}

/// Interpolation matrix [out, len] of 1-D linear resampling with `align_corners=False`
/// (PyTorch: src = (dst + 0.5) * len/out - 0.5, clamped at 0; no antialiasing).
fn linear_weights(len: usize, out: usize) -> Vec<f32> {
    let scale = len as f32 / out as f32;
    let mut m = vec![0f32; out * len];
    for o in 0..out {
        let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(len - 1);
        let i1 = (i0 + 1).min(len - 1);
        let l1 = src - i0 as f32;
        m[o * len + i0] += 1.0 - l1;
        m[o * len + i1] += l1;
    }
    m
}

/// `F.interpolate(x, size=(oh, ow), mode='bilinear', align_corners=False)` on NCHW, done as two
/// separable matrix products (rows then columns).
pub fn resize_bilinear(x: &Tensor, oh: usize, ow: usize) -> crate::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if (h, w) == (oh, ow) {
        return Ok(x.clone());
    }
    let dev: &Device = x.device();
    let ry = Tensor::from_vec(linear_weights(h, oh), (oh, h), dev)?.to_dtype(x.dtype())?;
    let rxt = Tensor::from_vec(linear_weights(w, ow), (ow, w), dev)?.to_dtype(x.dtype())?.t()?;
    let x = x.reshape((n * c, h, w))?;
    let x = x.broadcast_matmul(&rxt.contiguous()?)?; // [nc, h, ow]
    let x = ry.broadcast_matmul(&x)?; // [nc, oh, ow]
    Ok(x.reshape((n, c, oh, ow))?)
}

/// Whether `x` is a float tensor the network can consume.
pub(crate) fn is_float(x: &Tensor) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}
