//! `unfold` (im2col) and `fold` (col2im) as candle custom ops.
//!
//! Both ops share one geometry: an image batch `[N, C, H, W]` and a column matrix
//! `[C*k*k, N*Ho*Wo]` whose row `(c, ki, kj)` holds, for every output position `(n, oh, ow)` of a
//! convolution, the input pixel that kernel tap `(ki, kj)` of channel `c` reads (zero in the
//! padding). Putting the batch in the columns lets a single GEMM do a whole layer.
//!
//! `fold` is the adjoint (transpose) of `unfold`: it scatter-adds every column entry back onto the
//! pixel it was read from. So each op's backward pass is the other op applied to the incoming
//! gradient, which keeps gradients of gradients (R1, gradient penalty) in the graph.
//!
//! Both kernels are deterministic: `unfold` only copies, and `fold` gives each `(n, c)` image plane
//! to one rayon task, which sums its contributions in a fixed order.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Geometry of one convolution, seen from the image side and the column side. Kernels and
/// padding may differ per axis (Inception's 1x7 and 7x1 convolutions); stride and dilation are the
/// same on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geom {
    pub n: usize,
    pub c: usize,
    /// Image height and width.
    pub h: usize,
    pub w: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    /// Zero padding above and below, left and right.
    pub ph: usize,
    pub pw: usize,
    pub dil: usize,
    /// Convolution output height and width (the column side). Stored rather than derived because
    /// a transposed convolution's output padding makes the image larger than the formula implies.
    pub ho: usize,
    pub wo: usize,
}

impl Geom {
    /// The geometry of a `k`x`k` convolution with `spec` over `n` images of `c` channels and
    /// `image` = (h, w) pixels whose output (column side) is `out` = (ho, wo).
    pub fn new(n: usize, c: usize, image: (usize, usize), k: usize, spec: super::ConvSpec, out: (usize, usize)) -> Self {
        let (h, w) = image;
        let (ho, wo) = out;
        Self { n, c, h, w, kh: k, kw: k, stride: spec.stride, ph: spec.padding, pw: spec.padding, dil: spec.dilation, ho, wo }
    }

    /// Output size of a convolution over `len` pixels, or None when the kernel does not fit.
    pub fn conv_out(len: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
        let span = dil * (k - 1) + 1;
        (len + 2 * pad).checked_sub(span).map(|r| r / stride + 1)
    }

    fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn cols(&self) -> usize {
        self.n * self.ho * self.wo
    }

    fn col_shape(&self) -> Shape {
        (self.rows(), self.cols()).into()
    }

    fn img_shape(&self) -> Shape {
        (self.n, self.c, self.h, self.w).into()
    }

    /// Image row read by output row `o` at kernel row `t`, if inside the image.
    #[inline]
    fn src_row(&self, o: usize, t: usize) -> Option<usize> {
        (o * self.stride + t * self.dil).checked_sub(self.ph).filter(|&i| i < self.h)
    }

    /// Range of output columns `ow` whose input column for kernel column `t` lies inside the
    /// image, so the inner loops need no bounds tests.
    fn valid_cols(&self, t: usize) -> (usize, usize) {
        let off = t * self.dil;
        // ow * stride + off >= pad
        let lo = if off >= self.pw { 0 } else { (self.pw - off).div_ceil(self.stride) };
        // ow * stride + off - pad <= w - 1
        let hi = if self.w + self.pw > off { (self.w + self.pw - off - 1) / self.stride + 1 } else { 0 };
        (lo.min(self.wo), hi.min(self.wo).max(lo.min(self.wo)))
    }

    /// Column-matrix row of channel `c`, kernel tap (`ki`, `kj`).
    #[inline]
    fn row(&self, c: usize, ki: usize, kj: usize) -> usize {
        (c * self.kh + ki) * self.kw + kj
    }
}

impl Geom {
    /// The up/down-sampling layer of DCGAN-style networks: kernel 4, stride 2, padding 1, image
    /// exactly twice the column side.
    fn is_k4_s2_p1(&self) -> bool {
        (self.kh, self.kw, self.stride, self.ph, self.pw, self.dil) == (4, 4, 2, 1, 1, 1) && self.h == 2 * self.ho && self.w == 2 * self.wo
    }
}

/// [`fold_kernel`] for [`Geom::is_k4_s2_p1`], gathering instead of scattering. Image row
/// `2m + a` is read by taps `ki` in {1, 3} at column rows `m`, `m - 1` (a = 0) or {0, 2} at rows
/// `m + 1`, `m` (a = 1), and columns likewise; so each output row is built from contiguous
/// source rows as its even and odd pixels (vectorisable adds), then interleaved, and every image
/// pixel is written once instead of accumulated over 16 strided passes. Fixed order: deterministic.
fn fold_k4_s2_p1<T: WithDType>(g: &Geom, cols: &[T]) -> Vec<T> {
    let (l, plane, ncols, wo) = (g.ho * g.wo, g.h * g.w, g.cols(), g.wo);
    let mut out = vec![T::zero(); g.n * g.c * plane];
    out.par_chunks_mut(plane).enumerate().for_each(|(p, dst_plane)| {
        let (n, c) = (p / g.c, p % g.c);
        let (mut even, mut odd) = (vec![T::zero(); wo], vec![T::zero(); wo]);
        let src = |ki: usize, kj: usize, oh: usize| &cols[g.row(c, ki, kj) * ncols + n * l + oh * wo..][..wo];
        for (ih, dst) in dst_plane.chunks_mut(g.w).enumerate() {
            let m = ih / 2;
            // (tap row, column row) pairs reading image row ih.
            let rows = if ih % 2 == 0 { [(1, Some(m)), (3, m.checked_sub(1))] } else { [(0, Some(m + 1).filter(|&r| r < g.ho)), (2, Some(m))] };
            even.fill(T::zero());
            odd.fill(T::zero());
            for (ki, oh) in rows {
                let Some(oh) = oh else { continue };
                // Even pixel 2q: taps kj = 1 at q and kj = 3 at q - 1; odd 2q + 1: kj = 0 at q + 1, kj = 2 at q.
                for (e, &v) in even.iter_mut().zip(src(ki, 1, oh)) {
                    *e += v;
                }
                for (e, &v) in even[1..].iter_mut().zip(src(ki, 3, oh)) {
                    *e += v;
                }
                for (o, &v) in odd.iter_mut().zip(&src(ki, 0, oh)[1..]) {
                    *o += v;
                }
                for (o, &v) in odd.iter_mut().zip(src(ki, 2, oh)) {
                    *o += v;
                }
            }
            for ((pair, &e), &o) in dst.chunks_exact_mut(2).zip(&even).zip(&odd) {
                pair[0] = e;
                pair[1] = o;
            }
        }
    });
    out
}

/// im2col: one rayon task per column-matrix row `(c, ki, kj)`; only copies, so exact.
fn unfold_kernel<T: WithDType>(g: &Geom, img: &[T]) -> Vec<T> {
    let (l, plane) = (g.ho * g.wo, g.h * g.w);
    let mut out = vec![T::zero(); g.rows() * g.cols()];
    out.par_chunks_mut(g.cols()).enumerate().for_each(|(r, row)| {
        let (c, ki, kj) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
        let (lo, hi) = g.valid_cols(kj);
        if lo == hi {
            return; // this tap reads only padding: the row stays zero
        }
        let iw0 = lo * g.stride + kj * g.dil - g.pw;
        for n in 0..g.n {
            let src_plane = &img[(n * g.c + c) * plane..][..plane];
            for oh in 0..g.ho {
                let Some(ih) = g.src_row(oh, ki) else {
                    continue;
                };
                let src = &src_plane[ih * g.w..][..g.w];
                let dst = &mut row[n * l + oh * g.wo..][..g.wo];
                if g.stride == 1 {
                    dst[lo..hi].copy_from_slice(&src[iw0..iw0 + (hi - lo)]);
                } else {
                    // Zipped iterators instead of indexing: no per-element bounds checks.
                    let taps = src[iw0..].iter().step_by(g.stride);
                    for (d, &v) in dst[lo..hi].iter_mut().zip(taps) {
                        *d = v;
                    }
                }
            }
        }
    });
    out
}

/// col2im: one rayon task per image plane `(n, c)`, summing taps in a fixed order, so the result
/// does not depend on scheduling.
fn fold_kernel<T: WithDType>(g: &Geom, cols: &[T]) -> Vec<T> {
    if g.is_k4_s2_p1() {
        return fold_k4_s2_p1(g, cols);
    }
    let (l, plane, ncols) = (g.ho * g.wo, g.h * g.w, g.cols());
    let mut out = vec![T::zero(); g.n * g.c * plane];
    out.par_chunks_mut(plane).enumerate().for_each(|(p, dst_plane)| {
        let (n, c) = (p / g.c, p % g.c);
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let src_row = &cols[g.row(c, ki, kj) * ncols + n * l..][..l];
                let (lo, hi) = g.valid_cols(kj);
                if lo == hi {
                    continue;
                }
                let iw0 = lo * g.stride + kj * g.dil - g.pw;
                for oh in 0..g.ho {
                    let Some(ih) = g.src_row(oh, ki) else {
                        continue;
                    };
                    let dst = &mut dst_plane[ih * g.w..][..g.w];
                    let src = &src_row[oh * g.wo..][..g.wo];
                    let taps = dst[iw0..].iter_mut().step_by(g.stride);
                    for (d, &v) in taps.zip(&src[lo..hi]) {
                        *d += v;
                    }
                }
            }
        }
    });
    out
}

/// Runs `kernel` on a contiguous f32 or f64 storage.
fn run_cpu(
    name: &'static str,
    s: &CpuStorage,
    l: &Layout,
    expect: Shape,
    out: Shape,
    kernel32: impl Fn(&[f32]) -> Vec<f32>,
    kernel64: impl Fn(&[f64]) -> Vec<f64>,
) -> Result<(CpuStorage, Shape)> {
    if l.shape() != &expect {
        candle_core::bail!("{name}: input shape {:?}, geometry expects {:?}", l.shape(), expect)
    }
    let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("{name}: input must be contiguous") };
    let st = match s {
        CpuStorage::F32(v) => CpuStorage::F32(kernel32(&v[a..b])),
        CpuStorage::F64(v) => CpuStorage::F64(kernel64(&v[a..b])),
        _ => candle_core::bail!("{name}: only f32 and f64 are supported"),
    };
    Ok((st, out))
}

struct Unfold(Geom);
struct Fold(Geom);

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "gannet-unfold"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        run_cpu(self.name(), s, l, g.img_shape(), g.col_shape(), |x| unfold_kernel(g, x), |x| unfold_kernel(g, x))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        fold(grad_res, self.0).map(Some)
    }
}

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "gannet-fold"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        run_cpu(self.name(), s, l, g.col_shape(), g.img_shape(), |x| fold_kernel(g, x), |x| fold_kernel(g, x))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        unfold(grad_res, self.0).map(Some)
    }
}

fn check_dtype(t: &Tensor, op: &str) -> Result<()> {
    match t.dtype() {
        DType::F32 | DType::F64 => Ok(()),
        d => candle_core::bail!("{op}: only f32 and f64 are supported, got {d:?}"),
    }
}

/// im2col: image `[N, C, H, W]` -> columns `[C*kh*kw, N*Ho*Wo]`. CPU only.
pub fn unfold(img: &Tensor, g: Geom) -> Result<Tensor> {
    check_dtype(img, "unfold")?;
    img.contiguous()?.apply_op1(Unfold(g))
}

/// col2im, the adjoint of [`unfold`]: columns `[C*kh*kw, N*Ho*Wo]` -> image `[N, C, H, W]`,
/// overlapping taps summed. CPU only.
pub fn fold(cols: &Tensor, g: Geom) -> Result<Tensor> {
    check_dtype(cols, "fold")?;
    cols.contiguous()?.apply_op1(Fold(g))
}
