//! The FID feature network: Inception-v3 with the TF 2015-12-05 weights, in pytorch-fid's FID
//! variant (`fid_inception_v3`), returning the 2048-d pool3 features.
//!
//! Differences from torchvision's Inception3 that pytorch-fid makes to match the TF graph, and
//! that we reproduce: average pools in Mixed_5*/6b-e/7b exclude padding from the mean, and
//! Mixed_7c's pool branch uses a 3x3 max pool. BatchNorm (eps 0.001, eval mode) becomes a
//! per-channel scale and shift at load time, applied with the ReLU in one pass after each
//! convolution: y = relu(conv(x, w) * s + (beta - mean*s)), s = gamma/sqrt(var+eps).

use super::inception_weights::WeightsLookup;
use super::pool::{avg_pool2d_exclude_pad, is_float, max_pool2d, resize_bilinear};
use super::support::{cache_dir, Silent};
use super::torch_legacy;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

// In `support`, which inception_weights uses too; its path here still works.
pub use super::support::WEIGHTS_FILE;

/// Largest weights file read (the real ones are 87-96 MB).
const MAX_WEIGHTS_BYTES: u64 = 1 << 30;
/// Side of the network's input images.
pub const INPUT_SIZE: usize = 299;
/// Dimension of the pool3 features.
pub const FEATURE_DIM: usize = 2048;
const BN_EPS: f64 = 0.001;

/// Convolution padding: "same" (k/2 on each side, per axis) or none.
#[derive(Clone, Copy)]
enum Pad {
    Same,
    Valid,
}

/// BasicConv2d: conv (no bias) + BN + ReLU, the BN (eval mode) as a per-channel scale and shift
/// applied with the ReLU in one pass.
struct Unit {
    w: Tensor,
    scale: Tensor,
    shift: Tensor,
    stride: usize,
    pad: (usize, usize),
}

impl Unit {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = crate::ops::conv2d_padded(x, &self.w, self.stride, self.pad)?;
        crate::ops::per_channel::affine_relu(&y, &self.scale, &self.shift, 0.0)
    }
}

/// Looks tensors up by name, failing with the file and the missing name.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    device: Device,
}

impl Weights {
    fn get(&self, name: &str) -> Result<Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| Error::checkpoint(&self.path, format!("FID Inception weights lack tensor `{name}`")))?;
        Ok(t.to_dtype(DType::F32)?.to_device(&self.device)?)
    }

    fn unit(&self, name: &str, stride: usize, pad: Pad) -> Result<Unit> {
        let w = self.get(&format!("{name}.conv.weight"))?;
        let gamma = self.get(&format!("{name}.bn.weight"))?;
        let beta = self.get(&format!("{name}.bn.bias"))?;
        let mean = self.get(&format!("{name}.bn.running_mean"))?;
        let var = self.get(&format!("{name}.bn.running_var"))?;
        let (cout, _, kh, kw) = w.dims4().map_err(|e| Error::checkpoint(&self.path, format!("{name}.conv.weight: {e}")))?;
        let scale = gamma.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        let shift = (beta - mean.mul(&scale)?)?;
        if scale.dims1()? != cout {
            return Err(Error::checkpoint(&self.path, format!("{name}.bn has {} channels for {cout} filters", scale.dims1()?)));
        }
        let pad = match pad {
            Pad::Same => (kh / 2, kw / 2),
            Pad::Valid => (0, 0),
        };
        Ok(Unit { w, scale, shift, stride, pad })
    }
}

/// Pool used in a block's pool branch.
#[derive(Clone, Copy)]
enum PoolKind {
    AvgExcludePad,
    Max,
}

fn pool3x3_s1(x: &Tensor, kind: PoolKind) -> Result<Tensor> {
    match kind {
        PoolKind::AvgExcludePad => avg_pool2d_exclude_pad(x, 3, 1, 1),
        PoolKind::Max => max_pool2d(x, 3, 1, 1),
    }
}

fn chain(units: &[Unit], x: &Tensor) -> Result<Tensor> {
    let mut y = x.clone();
    for u in units {
        y = u.forward(&y)?;
    }
    Ok(y)
}

fn units(w: &Weights, block: &str, names: &[(&str, usize, Pad)]) -> Result<Vec<Unit>> {
    names.iter().map(|(n, s, p)| w.unit(&format!("{block}.{n}"), *s, *p)).collect()
}

/// The eleven mixed blocks. Each holds its branches as unit chains.
enum Block {
    /// FIDInceptionA (Mixed_5b-d): 1x1 | 1x1,5x5 | 1x1,3x3,3x3 | avgpool,1x1.
    A { b1: Vec<Unit>, b5: Vec<Unit>, b3: Vec<Unit>, bp: Vec<Unit> },
    /// InceptionB (Mixed_6a): 3x3/2 | 1x1,3x3,3x3/2 | maxpool/2.
    B { b3: Vec<Unit>, b3d: Vec<Unit> },
    /// FIDInceptionC (Mixed_6b-e): 1x1 | 1x1,1x7,7x1 | 1x1,7x1,1x7,7x1,1x7 | avgpool,1x1.
    C { b1: Vec<Unit>, b7: Vec<Unit>, b7d: Vec<Unit>, bp: Vec<Unit> },
    /// InceptionD (Mixed_7a): 1x1,3x3/2 | 1x1,1x7,7x1,3x3/2 | maxpool/2.
    D { b3: Vec<Unit>, b7: Vec<Unit> },
    /// FIDInceptionE_1/E_2 (Mixed_7b/7c): 1x1 | 1x1,(1x3|3x1) | 1x1,3x3,(1x3|3x1) | pool,1x1.
    E { b1: Vec<Unit>, b3: Vec<Unit>, b3ab: [Unit; 2], b3d: Vec<Unit>, b3dab: [Unit; 2], bp: Vec<Unit>, pool: PoolKind },
}

fn two(mut v: Vec<Unit>) -> [Unit; 2] {
    let b = v.pop().expect("two units");
    let a = v.pop().expect("two units");
    [a, b]
}

impl Block {
    fn load_a(w: &Weights, n: &str) -> Result<Self> {
        use Pad::Same as S;
        Ok(Block::A {
            b1: units(w, n, &[("branch1x1", 1, S)])?,
            b5: units(w, n, &[("branch5x5_1", 1, S), ("branch5x5_2", 1, S)])?,
            b3: units(w, n, &[("branch3x3dbl_1", 1, S), ("branch3x3dbl_2", 1, S), ("branch3x3dbl_3", 1, S)])?,
            bp: units(w, n, &[("branch_pool", 1, S)])?,
        })
    }

    fn load_b(w: &Weights, n: &str) -> Result<Self> {
        use Pad::{Same as S, Valid as V};
        Ok(Block::B {
            b3: units(w, n, &[("branch3x3", 2, V)])?,
            b3d: units(w, n, &[("branch3x3dbl_1", 1, S), ("branch3x3dbl_2", 1, S), ("branch3x3dbl_3", 2, V)])?,
        })
    }

    fn load_c(w: &Weights, n: &str) -> Result<Self> {
        use Pad::Same as S;
        let dbl: Vec<(String, usize, Pad)> = (1..=5).map(|i| (format!("branch7x7dbl_{i}"), 1, S)).collect();
        let dbl: Vec<(&str, usize, Pad)> = dbl.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        Ok(Block::C {
            b1: units(w, n, &[("branch1x1", 1, S)])?,
            b7: units(w, n, &[("branch7x7_1", 1, S), ("branch7x7_2", 1, S), ("branch7x7_3", 1, S)])?,
            b7d: units(w, n, &dbl)?,
            bp: units(w, n, &[("branch_pool", 1, S)])?,
        })
    }

    fn load_d(w: &Weights, n: &str) -> Result<Self> {
        use Pad::{Same as S, Valid as V};
        Ok(Block::D {
            b3: units(w, n, &[("branch3x3_1", 1, S), ("branch3x3_2", 2, V)])?,
            b7: units(w, n, &[("branch7x7x3_1", 1, S), ("branch7x7x3_2", 1, S), ("branch7x7x3_3", 1, S), ("branch7x7x3_4", 2, V)])?,
        })
    }

    fn load_e(w: &Weights, n: &str, pool: PoolKind) -> Result<Self> {
        use Pad::Same as S;
        Ok(Block::E {
            b1: units(w, n, &[("branch1x1", 1, S)])?,
            b3: units(w, n, &[("branch3x3_1", 1, S)])?,
            b3ab: two(units(w, n, &[("branch3x3_2a", 1, S), ("branch3x3_2b", 1, S)])?),
            b3d: units(w, n, &[("branch3x3dbl_1", 1, S), ("branch3x3dbl_2", 1, S)])?,
            b3dab: two(units(w, n, &[("branch3x3dbl_3a", 1, S), ("branch3x3dbl_3b", 1, S)])?),
            bp: units(w, n, &[("branch_pool", 1, S)])?,
            pool,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let parts = match self {
            Block::A { b1, b5, b3, bp } | Block::C { b1, b7: b5, b7d: b3, bp } => {
                let p = pool3x3_s1(x, PoolKind::AvgExcludePad)?;
                vec![chain(b1, x)?, chain(b5, x)?, chain(b3, x)?, chain(bp, &p)?]
            }
            Block::B { b3: a, b3d: b } | Block::D { b3: a, b7: b } => {
                vec![chain(a, x)?, chain(b, x)?, max_pool2d(x, 3, 2, 0)?]
            }
            Block::E { b1, b3, b3ab, b3d, b3dab, bp, pool } => {
                let t = chain(b3, x)?;
                let t = Tensor::cat(&[b3ab[0].forward(&t)?, b3ab[1].forward(&t)?], 1)?;
                let u = chain(b3d, x)?;
                let u = Tensor::cat(&[b3dab[0].forward(&u)?, b3dab[1].forward(&u)?], 1)?;
                let p = pool3x3_s1(x, *pool)?;
                vec![chain(b1, x)?, t, u, chain(bp, &p)?]
            }
        };
        Ok(Tensor::cat(&parts, 1)?)
    }
}

/// pytorch-fid's `InceptionV3([3], resize_input=True, normalize_input=True)`, eval mode.
pub struct FidInception {
    stem1: Vec<Unit>,
    stem2: Vec<Unit>,
    blocks: Vec<Block>,
    device: Device,
    batch_size: usize,
    hash: u32,
}

impl FidInception {
    /// The weights [`WeightsLookup`] finds: the shared file in [`super::models_dir`], else
    /// pytorch-fid's release file in the cache ([`cache_dir`]), downloaded there on first use.
    pub fn load_default(device: &Device) -> Result<Self> {
        let path = WeightsLookup::from_env(None, cache_dir()).resolve(&mut Silent)?;
        Self::load(path, device)
    }

    /// Loads a `.pth` (PyTorch state dict, zip or legacy format) or `.safetensors` file with
    /// torchvision names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`,
    /// ...); other entries (pytorch-fid's `fc.*`, `num_batches_tracked`) are ignored.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = crate::limits::read_file(path, MAX_WEIGHTS_BYTES).map_err(|e| Error::checkpoint(path, format!("FID Inception weights: {e}")))?;
        let hash = crc32fast::hash(&bytes);
        let tensors = read_tensors(path, &bytes)?;
        drop(bytes);
        let w = Weights { path: path.to_path_buf(), tensors, device: device.clone() };
        Self::from_weights(&w, hash)
    }

    fn from_weights(w: &Weights, hash: u32) -> Result<Self> {
        use Pad::{Same as S, Valid as V};
        let stem1 = vec![w.unit("Conv2d_1a_3x3", 2, V)?, w.unit("Conv2d_2a_3x3", 1, V)?, w.unit("Conv2d_2b_3x3", 1, S)?];
        let stem2 = vec![w.unit("Conv2d_3b_1x1", 1, V)?, w.unit("Conv2d_4a_3x3", 1, V)?];
        let blocks = vec![
            Block::load_a(w, "Mixed_5b")?,
            Block::load_a(w, "Mixed_5c")?,
            Block::load_a(w, "Mixed_5d")?,
            Block::load_b(w, "Mixed_6a")?,
            Block::load_c(w, "Mixed_6b")?,
            Block::load_c(w, "Mixed_6c")?,
            Block::load_c(w, "Mixed_6d")?,
            Block::load_c(w, "Mixed_6e")?,
            Block::load_d(w, "Mixed_7a")?,
            Block::load_e(w, "Mixed_7b", PoolKind::AvgExcludePad)?,
            Block::load_e(w, "Mixed_7c", PoolKind::Max)?,
        ];
        Ok(Self { stem1, stem2, blocks, device: w.device.clone(), batch_size: 16, hash })
    }

    /// Images per forward pass (memory vs. overhead); default 16.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// CRC32 of the weights file, for keying cached statistics.
    pub fn weights_hash(&self) -> u32 {
        self.hash
    }

    /// pool3 features [N, 2048] of images in [0, 1], NCHW, 1 (grey) or 3 (RGB) channels, any size.
    pub fn features(&self, images01: &Tensor) -> Result<Tensor> {
        let (n, c, _, _) = images01.dims4()?;
        if !(c == 1 || c == 3) || !is_float(images01) {
            return Err(Error::Msg(format!("FID Inception wants float images [N, 1|3, H, W] in [0, 1], got {:?} {:?}", images01.dims(), images01.dtype())));
        }
        let mut out = Vec::with_capacity(n.div_ceil(self.batch_size));
        for start in (0..n).step_by(self.batch_size) {
            let len = self.batch_size.min(n - start);
            let batch = images01.narrow(0, start, len)?;
            // On a pool thread, as training steps run (nn::on_pool).
            out.push(crate::nn::on_pool(|| self.forward01(&batch))?);
        }
        Ok(Tensor::cat(&out, 0)?)
    }

    /// One batch: resize to 299 (bilinear, align_corners=False), grey -> RGB, [0,1] -> [-1,1].
    fn forward01(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.detach().to_dtype(DType::F32)?.to_device(&self.device)?;
        // Resizing before the channel repeat does a third of the work and gives the same result.
        let x = resize_bilinear(&x, INPUT_SIZE, INPUT_SIZE)?;
        let x = if x.dim(1)? == 1 { x.repeat((1, 3, 1, 1))? } else { x };
        self.forward_raw(&((x * 2.0)? - 1.0)?)
    }

    /// The bare network: [N, 3, 299, 299] in [-1, 1] -> [N, 2048].
    pub fn forward_raw(&self, x: &Tensor) -> Result<Tensor> {
        let x = max_pool2d(&chain(&self.stem1, x)?, 3, 2, 0)?;
        let mut x = max_pool2d(&chain(&self.stem2, &x)?, 3, 2, 0)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        Ok(x.mean(D::Minus1)?.mean(D::Minus1)?)
    }
}

/// The tensors of a weights file: safetensors by its extension, `.pth` files by their first
/// bytes (a zip archive, or torch's legacy format as in pytorch-fid's release file).
fn read_tensors(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let ctx = |e: candle_core::Error| Error::checkpoint(path, format!("reading FID Inception weights: {e}"));
    if ext == "safetensors" {
        return candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(ctx);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(candle_core::pickle::read_all(path).map_err(ctx)?.into_iter().collect());
    }
    if torch_legacy::is_legacy(bytes) {
        let tensors =
            torch_legacy::read_bytes(bytes).map_err(|m| Error::checkpoint(path, format!("reading FID Inception weights (legacy PyTorch format): {m}")))?;
        return Ok(tensors.into_iter().collect());
    }
    Err(Error::checkpoint(path, "FID Inception weights must be a PyTorch .pth (zip or legacy torch.save format) or a .safetensors file"))
}
