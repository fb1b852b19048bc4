//! StyleGAN2's residual discriminator: fromRGB at full resolution, then per resolution
//! `lrelu(conv3x3) -> lrelu(conv3x3) -> avgpool` plus a `avgpool -> conv1x1` skip, summed and
//! scaled by 1/sqrt(2) to keep the variance; at 4x4 a minibatch-stddev map, a 3x3 conv and two
//! dense layers. All layers use the equalised learning rate; no normalisation layers, so R1 is
//! the only regulariser it needs.

use crate::nn::{activation::leaky_relu_gain, minibatch_stddev, EqConv2d, EqLinear, EqOptions, ParamPath};
use crate::ops;
use candle_core::Tensor;

/// Group size of the minibatch standard deviation (the paper's 4).
const MBSTD_GROUP: usize = 4;

struct Block {
    conv0: EqConv2d,
    conv1: EqConv2d,
    skip: EqConv2d,
}

impl Block {
    fn new(p: &ParamPath, cin: usize, cout: usize) -> crate::Result<Self> {
        Ok(Self {
            conv0: EqConv2d::new(&p.sub("conv0"), cin, cin, 3, EqOptions::gain(1.0))?,
            conv1: EqConv2d::new(&p.sub("conv1"), cin, cout, 3, EqOptions::gain(1.0))?,
            skip: EqConv2d::new(&p.sub("skip"), cin, cout, 1, EqOptions { bias: None, ..EqOptions::gain(1.0) })?,
        })
    }

    fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let h = leaky_relu_gain(&self.conv0.forward(x)?)?;
        let h = ops::avg_pool2x(&leaky_relu_gain(&self.conv1.forward(&h)?)?)?;
        let skip = self.skip.forward(&ops::avg_pool2x(x)?)?;
        Ok(((h + skip)? * std::f64::consts::FRAC_1_SQRT_2)?)
    }
}

pub struct ResidualDiscriminator {
    from_rgb: EqConv2d,
    blocks: Vec<Block>,
    conv: EqConv2d,
    fc: EqLinear,
    out: EqLinear,
}

impl ResidualDiscriminator {
    pub fn new(p: &ParamPath, resolution: usize, image_channels: usize, channels: impl Fn(usize) -> usize) -> crate::Result<Self> {
        let from_rgb = EqConv2d::new(&p.sub("from_rgb"), image_channels, channels(resolution), 1, EqOptions::gain(1.0))?;
        let mut blocks = Vec::new();
        let mut res = resolution;
        while res > 4 {
            blocks.push(Block::new(&p.sub(format!("b{res}")), channels(res), channels(res / 2))?);
            res /= 2;
        }
        let c4 = channels(4);
        Ok(Self {
            from_rgb,
            blocks,
            conv: EqConv2d::new(&p.sub("b4.conv"), c4 + 1, c4, 3, EqOptions::gain(1.0))?,
            fc: EqLinear::new(&p.sub("b4.fc"), c4 * 16, c4, EqOptions { gain: 1.0, lr_mul: 1.0, bias: Some(0.0) })?,
            out: EqLinear::new(&p.sub("b4.out"), c4, 1, EqOptions { gain: 1.0, lr_mul: 1.0, bias: Some(0.0) })?,
        })
    }

    /// The activations after fromRGB and after every block (for feature losses).
    pub fn features(&self, x: &Tensor) -> crate::Result<Vec<Tensor>> {
        let mut out = vec![leaky_relu_gain(&self.from_rgb.forward(x)?)?];
        for b in &self.blocks {
            out.push(b.forward(out.last().expect("starts with one"))?);
        }
        Ok(out)
    }

    /// Images `[N, C, R, R]` -> logits `[N]`.
    pub fn forward(&self, x: &Tensor) -> crate::Result<Tensor> {
        let mut h = leaky_relu_gain(&self.from_rgb.forward(x)?)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        let h = leaky_relu_gain(&self.conv.forward(&minibatch_stddev(&h, MBSTD_GROUP)?)?)?;
        let h = leaky_relu_gain(&self.fc.forward(&h.flatten_from(1)?)?)?;
        Ok(self.out.forward(&h)?.flatten_all()?)
    }
}
