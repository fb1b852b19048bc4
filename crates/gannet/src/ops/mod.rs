//! Tensor kernels GAN training spends its time in.
//!
//! `conv2d` and `conv_transpose2d` take NCHW tensors and PyTorch weight layouts. Their backward
//! passes are built from ops that themselves have backward passes, so second-order gradients
//! (R1, gradient penalty) flow through them.
//!
//! On the CPU both convolutions are im2col/col2im ([`unfold`]/[`fold`]) plus one candle `matmul`
//! (the gemm crate) over the whole batch, except the f32 stride-2 4x4 convolutions and transposed
//! convolutions with padding 1 and at least 16 channels (DCGAN's down- and upsampling), which run
//! as Winograd F(2x2, 2x2) ([`winograd`]: 9 multiplies where im2col does 16). Measured with `examples/conv_bench.rs` (DCGAN-64,
//! batch 64, 2 idle cores, freed buffers reused as in the binary): 132 GFLOP/s forward and 106
//! backward over all layers. One forward and backward of G (0.37 s) and three of D (0.33 s each:
//! real, fake, and the G update) make 1.37 s, nearly all of the 1.4 s train step; the fused
//! normalisation and activation kernels are cheap next to them. The 3-channel layers (G5, D1)
//! are the slowest per FLOP (27 and 24 GFLOP/s backward): tiny GEMM dimensions next to a huge one.

use candle_core::{DType, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};

pub mod batch_norm;
pub mod im2col;
pub mod leaky_relu;
pub mod matmul;
pub mod per_channel;
pub mod pixel_shuffle;
pub mod resample;
pub mod winograd;

pub use im2col::{fold, unfold, Geom};
pub use leaky_relu::{leaky_relu, relu};
pub use matmul::matmul;
pub use pixel_shuffle::{pixel_shuffle, pixel_unshuffle};
pub use resample::{avg_pool2x, sum_pool2x, upsample2x};

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

/// Whether the im2col kernels handle these tensors; other devices and dtypes use candle's
/// built-in convolutions (so the `cuda`/`metal` features keep working).
fn fast_path(x: &Tensor, w: &Tensor) -> bool {
    let (_, _, kh, kw) = w.dims4().unwrap_or((0, 0, 0, 1));
    cpu_float(x) && kh == kw && kh > 0
}

/// Whether gannet's CPU kernels take `x`: an f32 or f64 tensor on the CPU. Anything else goes
/// through candle's own ops, so the `cuda` and `metal` features keep working.
pub(crate) fn cpu_float(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// The elements of a CPU storage under a contiguous layout, as `T`. The custom ops make their
/// inputs contiguous before applying themselves, so anything else is a bug worth naming.
pub(crate) fn cpu_slice<'a, T: candle_core::WithDType>(s: &'a candle_core::CpuStorage, l: &candle_core::Layout, op: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<T>()?[a..b]),
        None => candle_core::bail!("{op}: inputs must be contiguous"),
    }
}

/// How long candle's pool worker spins for new work before it sleeps.
const CANDLE_SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
/// The thread count rayon and candle read.
const RAYON_THREADS: &str = "RAYON_NUM_THREADS";

/// Sets two thread-pool settings in the environment, each unless it is already set:
/// - candle's element-wise pool worker sleeps after 100 spins instead of 25,000. It otherwise
///   spins after every element-wise op and takes a core from rayon's workers, which run the
///   convolutions. Measured on 2 cores, paired alternated runs (docs/speed.md): superres +27%,
///   CycleGAN +24%, pix2pix +15%, DCGAN train steps and generation unchanged within noise.
/// - `RAYON_NUM_THREADS` to the threads rayon would start anyway (the available parallelism).
///   candle asks for the thread count at every matmul, and without the variable it counts the
///   physical cores by parsing /proc/cpuinfo each time (2% of a pix2pix step).
///
/// candle and rayon read these when their pools start, so call this at the program's start,
/// while it is the only thread (setting the environment beside other threads is a data race);
/// the `gannet` binary does.
pub fn configure_thread_pools() {
    if std::env::var_os(CANDLE_SPIN).is_none() {
        std::env::set_var(CANDLE_SPIN, "100");
    }
    // Read (and kept) before the variable is filled in below.
    if requested_threads().is_none() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var(RAYON_THREADS, threads.to_string());
    }
}

/// `RAYON_NUM_THREADS` as the user set it, before [`configure_thread_pools`] filled it in.
static REQUESTED_THREADS: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

/// The thread count the user asked for with `RAYON_NUM_THREADS` (None: not set), also after
/// [`configure_thread_pools`] set the variable (a launcher splits the cores itself when None).
pub fn requested_threads() -> Option<usize> {
    *REQUESTED_THREADS.get_or_init(|| std::env::var(RAYON_THREADS).ok().and_then(|v| v.parse().ok()))
}

/// Multiply-accumulates of every convolution called so far (forward passes only), on any device.
static CONV_MACS: AtomicU64 = AtomicU64::new(0);

/// The convolutions' multiply-accumulates so far: `gannet bench` counts a step's FLOPs as the
/// difference across it, instead of a formula per architecture.
pub fn conv_macs() -> u64 {
    CONV_MACS.load(Ordering::Relaxed)
}

/// Counts the MACs of a convolution over `pixels` (output pixels of a conv, input pixels of a
/// transposed conv: each meets every weight once) with weight `w`.
fn count_macs(pixels: usize, w: &Tensor) {
    CONV_MACS.fetch_add((pixels * w.elem_count()) as u64, Ordering::Relaxed);
}

fn bad(msg: String) -> crate::Error {
    crate::Error::Msg(msg)
}

/// x [N, Cin, H, W], w [Cout, Cin, k, k] -> [N, Cout, H', W'].
///
/// On the CPU: `W[Cout, Cin*k*k] @ unfold(x)[Cin*k*k, N*H'*W']`, one GEMM for the whole batch,
/// then a copy from `[Cout, N, ..]` to `[N, Cout, ..]`. The backward pass is the matmul's plus
/// `fold`, all differentiable. Stride-1 convolutions to fewer channels than they read (an RGB
/// output layer, a patch head) run as the equal transposed convolution instead, whose columns
/// are the smaller side.
pub fn conv2d(x: &Tensor, w: &Tensor, s: ConvSpec) -> crate::Result<Tensor> {
    if !fast_path(x, w) {
        let y = x.conv2d(w, s.padding, s.stride, s.dilation, 1)?;
        count_macs(y.dim(0)? * y.dim(2)? * y.dim(3)?, w);
        return Ok(y);
    }
    let (n, cin, h, wd) = x.dims4()?;
    let (cout, cin_w, k, _) = w.dims4()?;
    if cin != cin_w {
        return Err(bad(format!("conv2d: input has {cin} channels, weight expects {cin_w}")));
    }
    let out = |len| Geom::conv_out(len, k, s.stride, s.padding, s.dilation);
    let (Some(ho), Some(wo)) = (out(h), out(wd)) else {
        return Err(bad(format!("conv2d: kernel {k} (dilation {}) larger than padded {h}x{wd} input", s.dilation)));
    };
    count_macs(n * ho * wo, w);
    if winograd::applies_conv(x, w, s) {
        return winograd::conv(x, w);
    }
    if narrowing_stride_one(cin, cout, k, s) {
        // The same convolution as a transposed one with the kernel flipped and the channel axes
        // swapped: its GEMM writes Cout*k*k rows instead of im2col's Cin*k*k (32 -> 3 channels
        // at 7x7: 147 instead of 1568), the same saving in its backward pass.
        let flipped = w.transpose(0, 1)?.contiguous()?.flip(&[2, 3])?;
        return im2col_transpose(x, &flipped, ConvSpec::new(1, k - 1 - s.padding));
    }
    im2col_conv(x, w, Geom::new(n, cin, (h, wd), k, s, (ho, wo)))
}

/// [`conv2d`]'s CPU kernel: `W[Cout, Cin*kh*kw] @ unfold(x)`, then `[Cout, N, ..]` to NCHW.
fn im2col_conv(x: &Tensor, w: &Tensor, g: Geom) -> crate::Result<Tensor> {
    let cout = w.dim(0)?;
    let cols = unfold(x, g)?;
    let y = matmul(&w.reshape((cout, g.c * g.kh * g.kw))?, &cols)?;
    Ok(y.reshape((cout, g.n, g.ho, g.wo))?.permute((1, 0, 2, 3))?.contiguous()?)
}

/// A convolution with a rectangular kernel (w [Cout, Cin, kh, kw]) and zero padding `pad` =
/// (rows, columns) on each side, stride `stride` and no dilation: Inception's 1x7 and 7x1
/// convolutions. The same im2col kernels as [`conv2d`], so no padded copy of `x` is made.
pub fn conv2d_padded(x: &Tensor, w: &Tensor, stride: usize, pad: (usize, usize)) -> crate::Result<Tensor> {
    let (n, cin, h, wd) = x.dims4()?;
    let (_, cin_w, kh, kw) = w.dims4()?;
    if cin != cin_w {
        return Err(bad(format!("conv2d: input has {cin} channels, weight expects {cin_w}")));
    }
    if stride == 0 || kh == 0 || kw == 0 {
        return Err(bad(format!("conv2d: stride {stride} and kernel {kh}x{kw} must be at least 1")));
    }
    if !cpu_float(x) {
        let xp = x.pad_with_zeros(2, pad.0, pad.0)?.pad_with_zeros(3, pad.1, pad.1)?;
        let y = xp.conv2d(w, 0, stride, 1, 1)?;
        count_macs(y.dim(0)? * y.dim(2)? * y.dim(3)?, w);
        return Ok(y);
    }
    let (Some(ho), Some(wo)) = (Geom::conv_out(h, kh, stride, pad.0, 1), Geom::conv_out(wd, kw, stride, pad.1, 1)) else {
        return Err(bad(format!("conv2d: kernel {kh}x{kw} larger than padded {h}x{wd} input")));
    };
    count_macs(n * ho * wo, w);
    let g = Geom { n, c: cin, h, w: wd, kh, kw, stride, ph: pad.0, pw: pad.1, dil: 1, ho, wo };
    im2col_conv(x, w, g)
}

/// Whether a stride-1 convolution is cheaper as its adjoint form: fewer output than input
/// channels (the columns to build are Cout*k*k instead of Cin*k*k) and a padding the transposed
/// form can express (at most k - 1).
fn narrowing_stride_one(cin: usize, cout: usize, k: usize, s: ConvSpec) -> bool {
    s.stride == 1 && s.dilation == 1 && cout < cin && s.padding < k
}

/// Output size of a transposed convolution (PyTorch's formula), None when negative.
fn conv_t_out(len: usize, k: usize, s: ConvSpec) -> Option<usize> {
    (len.checked_sub(1)? * s.stride + s.dilation * (k - 1) + s.output_padding + 1).checked_sub(2 * s.padding)
}

/// x [N, Cin, H, W], w [Cin, Cout, k, k] -> [N, Cout, H', W'].
///
/// On the CPU: `fold(W[Cin, Cout*k*k]^T @ x[Cin, N*H*W])`: the GEMM spreads each input pixel over
/// the taps, `fold` (col2im) sums overlapping taps into the output. This is exactly the adjoint of
/// `conv2d` with the same spec, which is what a transposed convolution is.
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, s: ConvSpec) -> crate::Result<Tensor> {
    let (n, _, h, wd) = x.dims4()?;
    count_macs(n * h * wd, w);
    if !fast_path(x, w) {
        return Ok(x.conv_transpose2d(w, s.padding, s.output_padding, s.stride, s.dilation)?);
    }
    if winograd::applies_transpose(x, w, s) {
        return winograd::conv_transpose(x, w);
    }
    im2col_transpose(x, w, s)
}

/// [`conv_transpose2d`]'s CPU kernel (uncounted: it also serves [`conv2d`]).
fn im2col_transpose(x: &Tensor, w: &Tensor, s: ConvSpec) -> crate::Result<Tensor> {
    let (n, cin, h, wd) = x.dims4()?;
    let (cin_w, cout, k, _) = w.dims4()?;
    if cin != cin_w {
        return Err(bad(format!("conv_transpose2d: input has {cin} channels, weight expects {cin_w}")));
    }
    let (Some(hout), Some(wout)) = (conv_t_out(h, k, s), conv_t_out(wd, k, s)) else {
        return Err(bad(format!("conv_transpose2d: padding {} too large for {h}x{wd} input", s.padding)));
    };
    let g = Geom::new(n, cout, (hout, wout), k, s, (h, wd));
    // Channels first, then batch, so the whole batch is one GEMM operand.
    let xf = if n == 1 { x.reshape((cin, h * wd))? } else { x.transpose(0, 1)?.contiguous()?.reshape((cin, n * h * wd))? };
    let cols = matmul(&w.reshape((cin, cout * k * k))?.t()?, &xf)?;
    Ok(fold(&cols, g)?)
}
