//! Spectral normalisation (Miyato et al. 2018): a layer uses `W / sigma(W)`, with `sigma` the
//! largest singular value of `W` reshaped to `[out, rest]`, estimated by power iteration.
//!
//! One power-iteration step runs per training forward pass; the left singular vector estimate `u`
//! is a buffer of the parameter store, so it is saved in checkpoints and a resumed run continues
//! the same iteration bit for bit. Gradients flow through `sigma = u^T W v` with `u`, `v` held
//! constant, as in the paper and PyTorch.

use super::{Init, Mode, ParamPath};
use candle_core::{Tensor, Var, D};

const EPS: f64 = 1e-12;

pub struct SpectralNorm {
    u: Var,
}

fn normalize(v: &Tensor) -> crate::Result<Tensor> {
    let n = (v.sqr()?.sum_all()?.sqrt()? + EPS)?;
    Ok(v.broadcast_div(&n)?)
}

impl SpectralNorm {
    /// For a weight whose first dimension is `out` (conv weights [out, in, k, k], linear [out, in]).
    pub fn new(p: &ParamPath, out: usize) -> crate::Result<Self> {
        let u = p.buffer("sn_u", &[out], Init::Normal { mean: 0.0, std: 1.0 })?;
        Ok(Self { u })
    }

    /// The current estimate of `u`.
    pub fn u(&self) -> &Tensor {
        self.u.as_tensor()
    }

    /// `(W / sigma, sigma)`; in training mode one power-iteration step updates `u` first.
    pub fn normalise(&self, weight: &Tensor, mode: Mode) -> crate::Result<(Tensor, Tensor)> {
        let out = weight.dim(0)?;
        let w = weight.reshape((out, ()))?;
        let wd = w.detach();
        let mut u = normalize(&self.u.as_tensor().detach().to_dtype(w.dtype())?)?;
        let v = normalize(&wd.t()?.matmul(&u.unsqueeze(1)?)?.squeeze(1)?)?;
        if mode == Mode::Train {
            u = normalize(&wd.matmul(&v.unsqueeze(1)?)?.squeeze(1)?)?;
            self.u.set(&u.to_dtype(self.u.dtype())?)?;
        }
        // sigma = u^T W v, differentiable in W only.
        let sigma = w.matmul(&v.unsqueeze(1)?)?.squeeze(1)?.mul(&u)?.sum(D::Minus1)?;
        let wn = weight.broadcast_div(&sigma)?;
        Ok((wn, sigma))
    }
}

/// A convolution whose weight is optionally spectrally normalised (`sn_u` buffer next to it).
pub struct SnConv2d {
    conv: super::Conv2d,
    sn: Option<SpectralNorm>,
}

impl SnConv2d {
    /// `bias`: a per-channel bias (not normalised). `sn`: normalise the weight.
    #[allow(clippy::too_many_arguments)]
    pub fn new(p: &ParamPath, cin: usize, cout: usize, k: usize, spec: crate::ops::ConvSpec, init: Init, bias: bool, sn: bool) -> crate::Result<Self> {
        let conv = super::Conv2d::new(p, cin, cout, k, spec, init, bias)?;
        let sn = if sn { Some(SpectralNorm::new(p, cout)?) } else { None };
        Ok(Self { conv, sn })
    }

    /// The stored (not normalised) weight, [out, in, k, k].
    pub fn weight(&self) -> Tensor {
        self.conv.weight()
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        match &self.sn {
            None => self.conv.forward(x),
            Some(sn) => self.conv.forward_with(x, &sn.normalise(&self.conv.weight(), mode)?.0),
        }
    }
}

/// A linear layer whose weight is optionally spectrally normalised.
pub struct SnLinear {
    linear: super::Linear,
    sn: Option<SpectralNorm>,
}

impl SnLinear {
    pub fn new(p: &ParamPath, din: usize, dout: usize, init: Init, bias: bool, sn: bool) -> crate::Result<Self> {
        let linear = super::Linear::new(p, din, dout, init, bias)?;
        let sn = if sn { Some(SpectralNorm::new(p, dout)?) } else { None };
        Ok(Self { linear, sn })
    }

    /// The stored (not normalised) weight, [out, in].
    pub fn weight(&self) -> Tensor {
        self.linear.weight()
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> crate::Result<Tensor> {
        match &self.sn {
            None => self.linear.forward(x),
            Some(sn) => self.linear.forward_with(x, &sn.normalise(&self.linear.weight(), mode)?.0),
        }
    }
}
