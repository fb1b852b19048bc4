//! Tensor kernels GAN training spends its time in.
//!
//! `conv2d` and `conv_transpose2d` take NCHW tensors and PyTorch weight layouts. Their backward
//! passes are built from ops that themselves have backward passes, so second-order gradients
//! (R1, gradient penalty) flow through them.

use candle_core::Tensor;

/// Stride, padding, output padding and dilation of a square-kernel convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub stride: usize,
    pub padding: usize,
    /// Only for transposed convolutions: extra rows/columns on one side of the output.
    pub output_padding: usize,
    pub dilation: usize,
}

impl ConvSpec {
    pub const fn new(stride: usize, padding: usize) -> Self {
        Self { stride, padding, output_padding: 0, dilation: 1 }
    }
}

impl Default for ConvSpec {
    fn default() -> Self {
        Self::new(1, 0)
    }
}

/// x [N, Cin, H, W], w [Cout, Cin, k, k] -> [N, Cout, H', W'].
pub fn conv2d(x: &Tensor, w: &Tensor, s: ConvSpec) -> crate::Result<Tensor> {
    Ok(x.conv2d(w, s.padding, s.stride, s.dilation, 1)?)
}

/// x [N, Cin, H, W], w [Cin, Cout, k, k] -> [N, Cout, H', W'].
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, s: ConvSpec) -> crate::Result<Tensor> {
    Ok(x.conv_transpose2d(w, s.padding, s.output_padding, s.stride, s.dilation)?)
}
