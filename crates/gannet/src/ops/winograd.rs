//! Winograd F(2x2, 2x2) for the stride-2 4x4 transposed convolution with padding 1 (DCGAN's
//! upsampling layer): 9 multiplies per 2x2 output block of each phase instead of 16.
//!
//! A stride-2 transposed convolution splits into four *phases*, one per output parity
//! `(a, b)`: output row `2m + a` reads input rows `m - 1, m` (a = 0, taps 3 and 1) or `m, m + 1`
//! (a = 1, taps 2 and 0), the same for columns. Each phase is a 2x2 correlation, and
//! F(2, 2) computes two outputs of a 2-tap correlation from 3 inputs with 3 multiplies:
//!
//! ```text
//! V = [d0 - d1, d1, d2 - d1]      U = [g0, g0 + g1, g1]      y0 = M0 + M1, y1 = M1 + M2
//! ```
//!
//! (M = V * U element-wise, summed over input channels). Nested over rows and columns, every
//! 2x2 output block of a phase is 9 products: 9 GEMMs `V[xi] [tiles, Cin] @ U[xi] [Cin, Cout]`
//! per phase. The transforms only add and subtract (coefficients 0 and +-1), which keeps the
//! rounding error small, though not identical to a direct sum's: tests compare with a tolerance.
//!
//! The stride-2 convolution (D's downsampling layer) splits over the input's phases instead, and
//! its four phases add up in the transformed domain: 9 GEMMs of depth 4 x Cin (see below).
//!
//! [`conv_transpose2d`](super::conv_transpose2d) and [`conv2d`](super::conv2d) take these paths
//! for f32 on the CPU when the layer has at least [`MIN_CHANNELS`] channels (an RGB layer's GEMMs
//! would be 3 wide). Each is the other's input gradient (Winograd again when the shape allows,
//! else im2col); weight gradients are the im2col kernels' (input times the output gradient's
//! columns). All are built from differentiable ops, so gradient penalties flow through them.

use super::{cpu_slice, im2col_conv, matmul, unfold, ConvSpec, Geom};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Fewest channels worth the transforms (the GEMMs' width; for the convolution also their depth
/// over 4): measured, 3 output channels run 3x slower than im2col, 64 faster.
pub const MIN_CHANNELS: usize = 16;

const SPEC: ConvSpec = ConvSpec::new(2, 1);

/// Whether the Winograd kernel computes `conv_transpose2d(x, w, s)`; empty inputs go to the im2col
/// path, which explains what is wrong with them.
pub(crate) fn applies_transpose(x: &Tensor, w: &Tensor, s: ConvSpec) -> bool {
    let (Ok((_, cin, h, wd)), Ok((_, cout, kh, kw))) = (x.dims4(), w.dims4()) else { return false };
    x.device().is_cpu()
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && s == SPEC
        && (kh, kw) == (4, 4)
        && cin >= 1
        && h >= 1
        && wd >= 1
        && cout >= MIN_CHANNELS
}

/// `conv_transpose2d(x, w, stride 2, padding 1)` for a 4x4 kernel, by Winograd F(2x2, 2x2).
pub(crate) fn conv_transpose(x: &Tensor, w: &Tensor) -> crate::Result<Tensor> {
    Ok(x.contiguous()?.apply_op2(&w.contiguous()?, ConvT)?)
}

struct ConvT;

impl CustomOp2 for ConvT {
    fn name(&self) -> &'static str {
        "gannet-winograd-conv-transpose"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sw: &CpuStorage, lw: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, cin, h, wd) = lx.shape().dims4()?;
        let (cin_w, cout, kh, kw) = lw.shape().dims4()?;
        if cin != cin_w || (kh, kw) != (4, 4) || cin == 0 || h == 0 || wd == 0 {
            candle_core::bail!("{}: input {:?} and weight {:?} do not fit (4x4 kernels, non-empty input)", self.name(), lx.shape(), lw.shape())
        }
        let y = conv_transpose_k4s2(cpu_slice::<f32>(sx, lx, self.name())?, cpu_slice::<f32>(sw, lw, self.name())?, n, cin, cout, h, wd);
        Ok((CpuStorage::F32(y), (n, cout, 2 * h, 2 * wd).into()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, cin, h, wd) = x.dims4()?;
        let cout = w.dim(1)?;
        // The output gradient seen as the input of the adjoint stride-2 convolution.
        let g = Geom::new(n, cout, (2 * h, 2 * wd), 4, SPEC, (h, wd));
        let dx = if !x.track_op() {
            None
        } else if applies_conv(grad, w, SPEC) {
            // The adjoint is a stride-2 convolution with the same weight, [Cin, Cout, 4, 4] read
            // as [out, in, 4, 4]: Winograd too when it has the channels.
            Some(conv(grad, w).map_err(to_candle)?)
        } else {
            Some(im2col_conv(grad, w, g).map_err(to_candle)?)
        };
        let dw = if w.track_op() {
            let xf = x.transpose(0, 1)?.contiguous()?.reshape((cin, n * h * wd))?;
            let cols = unfold(grad, g)?;
            Some(matmul(&xf, &cols.t()?).map_err(to_candle)?.reshape((cin, cout, 4, 4))?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

/// Input row (or column) offset of a phase's 3-pixel window relative to `2 * tile`, and the
/// kernel taps `(g0, g1)` it correlates with.
const PHASES: [(isize, [usize; 2]); 2] = [(-1, [3, 1]), (0, [2, 0])];

/// Tiles (2x2 output blocks of each phase) transformed and multiplied at a time.
const TILES_PER_CHUNK: usize = 512;

/// `y = conv_transpose2d(x, w)` with kernel 4, stride 2, padding 1: x [n, cin, h, wd] and
/// w [cin, cout, 4, 4] row-major, y [n, cout, 2h, 2wd].
fn conv_transpose_k4s2(x: &[f32], w: &[f32], n: usize, cin: usize, cout: usize, h: usize, wd: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * cin * h * wd);
    assert_eq!(w.len(), cin * cout * 16);
    let u = kernel_transform(w, cin, cout);
    let tiles = h.div_ceil(2) * wd.div_ceil(2);
    // Images per chunk: enough tiles for efficient GEMMs, few enough that the transformed input
    // (9x the chunk's pixels) stays near the caches (256-512 measured best, docs/speed.md).
    let chunk = (TILES_PER_CHUNK / tiles).clamp(1, n.max(1));
    let (oh, ow) = (2 * h, 2 * wd);
    let mut y = vec![0f32; n * cout * oh * ow];
    for (chunk_index, ys) in y.chunks_mut(chunk * cout * oh * ow).enumerate() {
        let imgs = ys.len() / (cout * oh * ow);
        let xs = &x[chunk_index * chunk * cin * h * wd..][..imgs * cin * h * wd];
        let t = imgs * tiles;
        let v = input_transform(xs, imgs, cin, h, wd);
        let m = products(&v, &u, 36, t, cin, cout);
        output_transform(&m, ys, imgs, cout, h, wd);
    }
    y
}

/// `G g G^T` with `G = [[1, 0], [1, 1], [0, 1]]` for a 2x2 kernel `[g00, g01, g10, g11]`: entry
/// `3a + b` is the sum of the taps in its mask (bit 0: g00, 1: g01, 2: g10, 3: g11). Rows of `G g`
/// are `g0, g0 + g1, g1`, and each row `[r0, r1]` becomes `[r0, r0 + r1, r1]`.
const G_SANDWICH: [u8; 9] = [0b0001, 0b0011, 0b0010, 0b0101, 0b1111, 0b1010, 0b0100, 0b1100, 0b1000];

/// The 36 transformed 2x2 kernels of a 4x4 kernel: for each of the four phases (`phases` gives
/// each axis' taps) the 9 entries of [`G_SANDWICH`], stored as planes `U[plane(p, xi)][ci][co]`.
/// `taps(ci, co)` is where that pair's 16 taps (row-major 4x4) start in `w`.
///
/// One task per input channel: it gathers row ci of the 16 tap planes, then writes row ci of
/// each of the 36 planes as a sum of 1-4 of those rows (vector adds over `cout`). Done per tap
/// pair instead, the transform took 18% of a pix2pix step (small images, many channels).
fn transform_kernels(
    w: &[f32],
    (cin, cout): (usize, usize),
    taps: impl Fn(usize, usize) -> usize + Sync,
    phases: &[(isize, [usize; 2]); 2],
    plane: impl Fn(usize, usize) -> usize + Sync,
) -> Vec<f32> {
    let mut u = vec![0f32; 36 * cin * cout];
    let up = SendPtr(u.as_mut_ptr());
    (0..cin).into_par_iter().for_each_init(
        || vec![0f32; 16 * cout],
        |rows, ci| {
            for co in 0..cout {
                for (tap, &v) in w[taps(ci, co)..][..16].iter().enumerate() {
                    rows[tap * cout + co] = v;
                }
            }
            let row = |tap: usize| &rows[tap * cout..][..cout];
            for p in 0..4 {
                let (ky, kx) = (phases[p / 2].1, phases[p % 2].1);
                let g = [row(ky[0] * 4 + kx[0]), row(ky[0] * 4 + kx[1]), row(ky[1] * 4 + kx[0]), row(ky[1] * 4 + kx[1])];
                for (xi, &mask) in G_SANDWICH.iter().enumerate() {
                    // Safety: row ci of every plane is written by this task only, and it lies
                    // inside u (plane < 36, ci < cin).
                    let dst = unsafe { std::slice::from_raw_parts_mut(up.get().add((plane(p, xi) * cin + ci) * cout), cout) };
                    let mut terms = (0..4).filter(|b| mask >> b & 1 == 1).map(|b| g[b]);
                    dst.copy_from_slice(terms.next().expect("every entry has a tap"));
                    for t in terms {
                        dst.iter_mut().zip(t).for_each(|(d, &v)| *d += v);
                    }
                }
            }
        },
    );
    u
}

/// `U[p][xi][ci][co]`: each phase's 2x2 kernel transformed (w [cin, cout, 4, 4]).
fn kernel_transform(w: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    transform_kernels(w, (cin, cout), |ci, co| (ci * cout + co) * 16, &PHASES, |p, xi| p * 9 + xi)
}

/// `V[p][xi][t][ci]` for the chunk's tiles `t = (img, ty, tx)`: each phase's 3x3 window under
/// `B^T = [[1, -1, 0], [0, 1, 0], [0, -1, 1]]` on both sides (zeros outside the image), computed
/// on channel vectors of a channels-last copy of the input.
fn input_transform(x: &[f32], imgs: usize, cin: usize, h: usize, wd: usize) -> Vec<f32> {
    let (th, tw) = (h.div_ceil(2), wd.div_ceil(2));
    let tiles = th * tw;
    let t_all = imgs * tiles;
    // Channels last, with a zero border of one pixel: every window is inside.
    let (hp, wp) = (2 * th + 2, 2 * tw + 2);
    let xt = channels_last_padded(x, imgs, cin, (h, wd), (hp, wp));
    let mut v = vec![0f32; 36 * t_all * cin];
    let vp = SendPtr(v.as_mut_ptr());
    (0..4 * imgs * th).into_par_iter().for_each(|job| {
        let p = job / (imgs * th);
        let (img, ty) = ((job / th) % imgs, job % th);
        // Window rows start at 2ty + offset, +1 for the border.
        let (r0, c_off) = ((2 * ty as isize + PHASES[p / 2].0 + 1) as usize, (PHASES[p % 2].0 + 1) as usize);
        let base = &xt[img * hp * wp * cin..][..hp * wp * cin];
        for tx in 0..tw {
            let c0 = 2 * tx + c_off;
            let t = img * tiles + ty * tw + tx;
            let d: [[&[f32]; 3]; 3] = std::array::from_fn(|i| std::array::from_fn(|j| &base[((r0 + i) * wp + c0 + j) * cin..][..cin]));
            // Safety: row t of phase p's 9 matrices is written by this task only.
            let out: [&mut [f32]; 9] = std::array::from_fn(|xi| unsafe { std::slice::from_raw_parts_mut(vp.get().add(((p * 9 + xi) * t_all + t) * cin), cin) });
            window_transform(&d, out);
        }
    });
    v
}

/// A gannet error inside a candle op's backward pass.
fn to_candle(e: crate::Error) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// A buffer's base pointer shared by tasks that write disjoint parts of it. Closures call
/// [`SendPtr::get`] so that they capture the whole wrapper (a use of `.0` would capture the raw
/// pointer alone, which is not `Send`).
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// Safety: the buffer outlives the parallel loop, and each task writes only its own elements
// (stated where each task takes its slices).
unsafe impl Send for SendPtr {}
// Safety: as for Send; the pointer itself is never written.
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Channels-last copy of `imgs` images [cin, h, wd] into [hp, wp] frames with one zero row above
/// and one zero column left (and zeros after): [imgs, hp, wp, cin].
fn channels_last_padded(x: &[f32], imgs: usize, cin: usize, (h, wd): (usize, usize), (hp, wp): (usize, usize)) -> Vec<f32> {
    let mut xt = vec![0f32; imgs * hp * wp * cin];
    xt.par_chunks_mut(hp * wp * cin).enumerate().for_each(|(img, o)| {
        let src = &x[img * cin * h * wd..][..cin * h * wd];
        // Blocks of 16 channels x 16 pixels of a row: reads and writes both run along lines.
        for c0 in (0..cin).step_by(16) {
            let c1 = (c0 + 16).min(cin);
            for r in 0..h {
                for x0 in (0..wd).step_by(16) {
                    let x1 = (x0 + 16).min(wd);
                    for ci in c0..c1 {
                        let line = &src[(ci * h + r) * wd..][..wd];
                        for c in x0..x1 {
                            o[((r + 1) * wp + c + 1) * cin + ci] = line[c];
                        }
                    }
                }
            }
        }
    });
    xt
}

/// `B^T d B` with `B^T = [[1, -1, 0], [0, 1, 0], [0, -1, 1]]` for a 3x3 window of channel
/// vectors `d[i][j]`, into the 9 outputs `out[3a + b]`.
fn window_transform(d: &[[&[f32]; 3]; 3], out: [&mut [f32]; 9]) {
    let [v00, v01, v02, v10, v11, v12, v20, v21, v22] = out;
    let (d00, d01, d02, d10, d11, d12, d20, d21, d22) = (d[0][0], d[0][1], d[0][2], d[1][0], d[1][1], d[1][2], d[2][0], d[2][1], d[2][2]);
    for k in 0..v00.len() {
        // Rows first (per column), then columns.
        let (a0, a1, a2) = (d00[k] - d10[k], d10[k], d20[k] - d10[k]);
        let (b0, b1, b2) = (d01[k] - d11[k], d11[k], d21[k] - d11[k]);
        let (c0, c1, c2) = (d02[k] - d12[k], d12[k], d22[k] - d12[k]);
        v00[k] = a0 - b0;
        v01[k] = b0;
        v02[k] = c0 - b0;
        v10[k] = a1 - b1;
        v11[k] = b1;
        v12[k] = c1 - b1;
        v20[k] = a2 - b2;
        v21[k] = b2;
        v22[k] = c2 - b2;
    }
}

/// `A^T M A` with `A^T = [[1, 1, 0], [0, 1, 1]]` for the 9 product vectors of one tile, into
/// `blk` = the 2x2 block's four channel vectors, row by row.
fn block_transform(ms: &[&[f32]; 9], blk: &mut [f32]) {
    let cout = ms[0].len();
    let (y00, rest) = blk.split_at_mut(cout);
    let (y01, rest) = rest.split_at_mut(cout);
    let (y10, y11) = rest.split_at_mut(cout);
    for k in 0..cout {
        let q = |i: usize, j: usize| ms[i * 3 + j][k];
        let (o00, o10) = (q(0, 0) + q(1, 0), q(1, 0) + q(2, 0));
        let (o01, o11) = (q(0, 1) + q(1, 1), q(1, 1) + q(2, 1));
        let (o02, o12) = (q(0, 2) + q(1, 2), q(1, 2) + q(2, 2));
        y00[k] = o00 + o01;
        y01[k] = o01 + o02;
        y10[k] = o10 + o11;
        y11[k] = o11 + o12;
    }
}

/// `c [m, n] = a [m, k] @ b [k, n]`, all row-major, on the calling core.
fn gemm_rows(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // Safety: row-major operands of the stated sizes (the lengths are checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// [imgs, eh, ew, c] (cropped to oh x ow) -> [imgs, c, oh, ow], in blocks of 16 channels x 16
/// pixels.
fn channels_last_to_nchw(src: &[f32], (eh, ew): (usize, usize), y: &mut [f32], (oh, ow): (usize, usize), c: usize) {
    y.par_chunks_mut(c * oh * ow).enumerate().for_each(|(img, yi)| {
        let src = &src[img * eh * ew * c..][..eh * ew * c];
        for k0 in (0..c).step_by(16) {
            let k1 = (k0 + 16).min(c);
            for oy in 0..oh {
                for x0 in (0..ow).step_by(16) {
                    let x1 = (x0 + 16).min(ow);
                    for k in k0..k1 {
                        let line = &mut yi[(k * oh + oy) * ow..][..ow];
                        for ox in x0..x1 {
                            line[ox] = src[(oy * ew + ox) * c + k];
                        }
                    }
                }
            }
        }
    });
}

/// `M[q] = V[q] @ U[q]` for the `count` matrices `V[q]` [t, depth] and `U[q]` [depth, cout], all
/// row-major and back to back: independent GEMMs, one core each. The convolution's 9 products
/// are split by rows into more tasks, so that no core waits long on another's last GEMM.
fn products(v: &[f32], u: &[f32], count: usize, t: usize, depth: usize, cout: usize) -> Vec<f32> {
    let parts = (8 * rayon::current_num_threads()).div_ceil(count).clamp(1, t.max(1));
    let rows = t.div_ceil(parts);
    let mut m = vec![0f32; count * t * cout];
    m.par_chunks_mut(t * cout).enumerate().for_each(|(q, mq)| {
        mq.par_chunks_mut(rows * cout).enumerate().for_each(|(part, mp)| {
            let r = mp.len() / cout;
            gemm_rows(&v[(q * t + part * rows) * depth..][..r * depth], &u[q * depth * cout..][..depth * cout], mp, r, depth, cout)
        })
    });
    m
}

/// Each phase's 2x2 output blocks from its 9 products (`A^T = [[1, 1, 0], [0, 1, 1]]` on both
/// sides), into a channels-last buffer, then to `y` [imgs, cout, 2h, 2wd].
fn output_transform(m: &[f32], y: &mut [f32], imgs: usize, cout: usize, h: usize, wd: usize) {
    let (th, tw) = (h.div_ceil(2), wd.div_ceil(2));
    let tiles = th * tw;
    let t_all = imgs * tiles;
    let (oh, ow) = (2 * h, 2 * wd);
    // [img][oy][ox][co] over the tiles' full extent (odd sizes: two rows/columns more).
    let (eh, ew) = (4 * th, 4 * tw);
    let mut yt = vec![0f32; imgs * eh * ew * cout];
    // One task per tile row of an image: its four output rows 4ty..4ty+3, all four phases.
    yt.par_chunks_mut(4 * ew * cout).enumerate().for_each(|(job, rows)| {
        let (img, ty) = (job / th, job % th);
        let mut blk = vec![0f32; 4 * cout];
        for p in 0..4 {
            let (a, b) = (p / 2, p % 2);
            for tx in 0..tw {
                let t = img * tiles + ty * tw + tx;
                let ms: [&[f32]; 9] = std::array::from_fn(|xi| &m[((p * 9 + xi) * t_all + t) * cout..][..cout]);
                block_transform(&ms, &mut blk);
                for (bi, out) in blk.chunks(cout).enumerate() {
                    let (i, j) = (bi / 2, bi % 2);
                    // Output pixel (2(2ty+i)+a, 2(2tx+j)+b): row 2i+a of this tile row.
                    rows[((2 * i + a) * ew + 2 * (2 * tx + j) + b) * cout..][..cout].copy_from_slice(out);
                }
            }
        }
    });
    channels_last_to_nchw(&yt, (eh, ew), y, (oh, ow), cout);
}

// ------------------------------------------------------------------ stride-2 convolution
//
// y[o] = x[2o - 1] w0 + x[2o] w1 + x[2o + 1] w2 + x[2o + 2] w3 splits over the input's phases:
// the even pixels correlate with (w1, w3) from 2o, the odd ones with (w0, w2) from 2o - 1. Each is
// a 2-tap correlation of a subsampled input, so F(2, 2) applies to each, and the four 2-D phases
// add up in the transformed domain: 9 GEMMs `V[xi] [tiles, 4 Cin] @ U[xi] [4 Cin, Cout]`.

/// Input row (column) of a phase's window start relative to `4 * tile` (windows step 2 pixels),
/// and the taps `(g0, g1)`: even pixels, then odd ones.
const CONV_PHASES: [(isize, [usize; 2]); 2] = [(0, [1, 3]), (-1, [0, 2])];

/// Whether the Winograd kernel computes `conv2d(x, w, s)`: f32 on the CPU, 4x4 kernel, stride 2,
/// padding 1, even sizes, and at least 16 channels on each side (D's first, RGB layer is not).
pub(crate) fn applies_conv(x: &Tensor, w: &Tensor, s: ConvSpec) -> bool {
    let (Ok((_, _, h, wd)), Ok((cout, cin, kh, kw))) = (x.dims4(), w.dims4()) else { return false };
    x.device().is_cpu()
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && s == SPEC
        && (kh, kw) == (4, 4)
        && h.is_multiple_of(2)
        && wd.is_multiple_of(2)
        && h >= 2
        && wd >= 2
        && cin >= MIN_CHANNELS
        && cout >= MIN_CHANNELS
}

/// `conv2d(x, w, stride 2, padding 1)` for a 4x4 kernel and even sizes, by Winograd F(2x2, 2x2).
pub(crate) fn conv(x: &Tensor, w: &Tensor) -> crate::Result<Tensor> {
    Ok(x.contiguous()?.apply_op2(&w.contiguous()?, Conv)?)
}

struct Conv;

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "gannet-winograd-conv"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sw: &CpuStorage, lw: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, cin, h, wd) = lx.shape().dims4()?;
        let (cout, cin_w, _, _) = lw.shape().dims4()?;
        if cin != cin_w || !h.is_multiple_of(2) || !wd.is_multiple_of(2) {
            candle_core::bail!("{}: input {:?} and weight {:?} do not fit (even sizes only)", self.name(), lx.shape(), lw.shape())
        }
        let y = conv_k4s2(cpu_slice::<f32>(sx, lx, self.name())?, cpu_slice::<f32>(sw, lw, self.name())?, n, cin, cout, h, wd);
        Ok((CpuStorage::F32(y), (n, cout, h / 2, wd / 2).into()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, cin, h, wd) = x.dims4()?;
        let cout = w.dim(0)?;
        // The input gradient is the adjoint, the transposed convolution with the same weight.
        let dx = if x.track_op() {
            let dx = if applies_transpose(grad, w, SPEC) { conv_transpose(grad, w) } else { super::im2col_transpose(grad, w, SPEC) };
            Some(dx.map_err(to_candle)?)
        } else {
            None
        };
        let dw = if w.track_op() {
            let g = Geom::new(n, cin, (h, wd), 4, SPEC, (h / 2, wd / 2));
            let gf = grad.transpose(0, 1)?.contiguous()?.reshape((cout, n * (h / 2) * (wd / 2)))?;
            Some(matmul(&gf, &unfold(x, g)?.t()?).map_err(to_candle)?.reshape((cout, cin, 4, 4))?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

/// `y = conv2d(x, w)`, kernel 4, stride 2, padding 1: x [n, cin, h, wd] (even h, wd) and
/// w [cout, cin, 4, 4] row-major, y [n, cout, h/2, wd/2].
fn conv_k4s2(x: &[f32], w: &[f32], n: usize, cin: usize, cout: usize, h: usize, wd: usize) -> Vec<f32> {
    assert!(h.is_multiple_of(2) && wd.is_multiple_of(2) && x.len() == n * cin * h * wd && w.len() == cout * cin * 16);
    let u = conv_kernel_transform(w, cin, cout);
    let (ho, wo) = (h / 2, wd / 2);
    let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
    let tiles = th * tw;
    let chunk = (TILES_PER_CHUNK / tiles).clamp(1, n.max(1));
    let mut y = vec![0f32; n * cout * ho * wo];
    for (chunk_index, ys) in y.chunks_mut(chunk * cout * ho * wo).enumerate() {
        let imgs = ys.len() / (cout * ho * wo);
        let xs = &x[chunk_index * chunk * cin * h * wd..][..imgs * cin * h * wd];
        // Windows reach from row -1 to row 4 * th: one zero row above, enough below.
        let (hp, wp) = (4 * th + 2, 4 * tw + 2);
        let xt = channels_last_padded(xs, imgs, cin, (h, wd), (hp, wp));
        let v = conv_input_transform(&xt, imgs, cin, (th, tw), (hp, wp));
        let t = imgs * tiles;
        let m = products(&v, &u, 9, t, 4 * cin, cout);
        let (eh, ew) = (2 * th, 2 * tw);
        let mut yt = vec![0f32; imgs * eh * ew * cout];
        yt.par_chunks_mut(eh * ew * cout).enumerate().for_each(|(img, yi)| {
            let mut blk = vec![0f32; 4 * cout];
            for ty in 0..th {
                for tx in 0..tw {
                    let t0 = img * tiles + ty * tw + tx;
                    let ms: [&[f32]; 9] = std::array::from_fn(|xi| &m[(xi * t + t0) * cout..][..cout]);
                    block_transform(&ms, &mut blk);
                    for (bi, out) in blk.chunks(cout).enumerate() {
                        let (i, j) = (bi / 2, bi % 2);
                        yi[((2 * ty + i) * ew + 2 * tx + j) * cout..][..cout].copy_from_slice(out);
                    }
                }
            }
        });
        channels_last_to_nchw(&yt, (eh, ew), ys, (ho, wo), cout);
    }
    y
}

/// `U[xi][p][ci][co]` for the convolution's four input phases (w [cout, cin, 4, 4]).
fn conv_kernel_transform(w: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    transform_kernels(w, (cin, cout), |ci, co| (co * cin + ci) * 16, &CONV_PHASES, |p, xi| xi * 4 + p)
}

/// `V[xi][t][p][ci]`: for every tile and input phase, the 3x3 window (stride 2 in the image)
/// under B^T on both sides.
fn conv_input_transform(xt: &[f32], imgs: usize, cin: usize, (th, tw): (usize, usize), (hp, wp): (usize, usize)) -> Vec<f32> {
    let t_all = imgs * th * tw;
    let k = 4 * cin;
    let mut v = vec![0f32; 9 * t_all * k];
    let vp = SendPtr(v.as_mut_ptr());
    (0..imgs * th).into_par_iter().for_each(|job| {
        let (img, ty) = (job / th, job % th);
        let base = &xt[img * hp * wp * cin..][..hp * wp * cin];
        for tx in 0..tw {
            let t = (img * th + ty) * tw + tx;
            for p in 0..4 {
                // +1: the zero border.
                let r0 = (4 * ty as isize + CONV_PHASES[p / 2].0 + 1) as usize;
                let c0 = (4 * tx as isize + CONV_PHASES[p % 2].0 + 1) as usize;
                let d: [[&[f32]; 3]; 3] = std::array::from_fn(|i| std::array::from_fn(|j| &base[((r0 + 2 * i) * wp + c0 + 2 * j) * cin..][..cin]));
                // Safety: tile t's entries of every V matrix are written by this task only.
                let out: [&mut [f32]; 9] =
                    std::array::from_fn(|xi| unsafe { std::slice::from_raw_parts_mut(vp.get().add((xi * t_all + t) * k + p * cin), cin) });
                window_transform(&d, out);
            }
        }
    });
    v
}
