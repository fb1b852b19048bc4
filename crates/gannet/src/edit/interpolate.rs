//! Latent interpolation: frames on the path between latents, in z (any generator) or in w
//! (StyleGAN2), linear or spherical.

use super::{style, truncate_w};
use crate::models::Generator;
use crate::nn::Mode;
use candle_core::Tensor;

/// Where the path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Space {
    /// The input latent: Gaussian, so spherical interpolation keeps frames typical.
    Z,
    /// StyleGAN2's intermediate latent: its paths are "perceptually shorter" (smoother edits).
    W,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Lerp,
    /// Along the great circle (norm interpolated linearly): a Gaussian z's length stays typical,
    /// where a straight line passes through the unlikely short latents near 0.
    Slerp,
}

impl std::str::FromStr for Space {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "z" => Ok(Space::Z),
            "w" => Ok(Space::W),
            _ => Err(crate::Error::Config(format!("unknown latent space '{s}': use z or w"))),
        }
    }
}

impl std::str::FromStr for Method {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "lerp" => Ok(Method::Lerp),
            "slerp" => Ok(Method::Slerp),
            _ => Err(crate::Error::Config(format!("unknown interpolation '{s}': use lerp or slerp"))),
        }
    }
}

/// Row-wise interpolation between `a` and `b` [N, D] at `t` in [0, 1].
pub fn interpolate_rows(a: &Tensor, b: &Tensor, t: f64, method: Method) -> crate::Result<Tensor> {
    match method {
        Method::Lerp => Ok(((a * (1.0 - t))? + (b * t)?)?),
        Method::Slerp => slerp(a, b, t),
    }
}

fn slerp(a: &Tensor, b: &Tensor, t: f64) -> crate::Result<Tensor> {
    let (av, bv) = (a.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?, b.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?);
    let rows: Vec<f32> = av.iter().zip(&bv).flat_map(|(x, y)| slerp_row(x, y, t)).map(|v| v as f32).collect();
    Ok(Tensor::from_vec(rows, a.dims(), a.device())?)
}

/// Spherical interpolation of directions with the norm interpolated linearly; falls back to a
/// straight line when the two are (anti)parallel or zero.
fn slerp_row(x: &[f64], y: &[f64], t: f64) -> Vec<f64> {
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let (nx, ny) = (norm(x), norm(y));
    let lerp = || x.iter().zip(y).map(|(a, b)| a * (1.0 - t) + b * t).collect();
    if nx == 0.0 || ny == 0.0 {
        return lerp();
    }
    let cos = (x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>() / (nx * ny)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.sin().abs() < 1e-6 {
        return lerp();
    }
    let (wa, wb) = (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin());
    let len = nx * (1.0 - t) + ny * t;
    let dir: Vec<f64> = x.iter().zip(y).map(|(a, b)| wa * a / nx + wb * b / ny).collect();
    let nd = norm(&dir).max(1e-12);
    dir.iter().map(|d| d / nd * len).collect()
}

/// `frames` images per leg along the path through `latents` [K, latent_dim] (K >= 2, K-1 legs,
/// both ends included once), G in eval mode; `psi` truncates (1 = off); `class` is every frame's
/// label for a class-conditional G.
pub fn path_images(gen: &dyn Generator, latents: &Tensor, frames: usize, space: Space, method: Method, psi: f64, class: Option<u32>) -> crate::Result<Tensor> {
    let k = latents.dim(0)?;
    if k < 2 || frames < 2 {
        return Err(crate::Error::Config(format!("interpolation needs at least 2 latents and 2 frames per leg (got {k} and {frames})")));
    }
    let points = match space {
        Space::Z => latents.clone(),
        Space::W => style(gen, "interpolation in w")?.mapping(latents)?,
    };
    let mut rows = Vec::new();
    for leg in 0..k - 1 {
        let (a, b) = (points.narrow(0, leg, 1)?, points.narrow(0, leg + 1, 1)?);
        let first = if leg == 0 { 0 } else { 1 };
        for f in first..frames {
            rows.push(interpolate_rows(&a, &b, f as f64 / (frames - 1) as f64, method)?);
        }
    }
    let path = Tensor::cat(&rows, 0)?;
    match space {
        Space::Z => {
            let labels = class.map(|c| Tensor::full(c, path.dim(0)?, path.device())).transpose()?;
            super::Truncated { gen, psi }.forward(&path, labels.as_ref(), Mode::Eval)
        }
        Space::W => {
            let s = style(gen, "interpolation in w")?;
            s.synthesis(&s.broadcast_w(&truncate_w(s, &path, psi)?)?)
        }
    }
}
