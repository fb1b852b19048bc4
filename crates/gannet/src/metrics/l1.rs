//! Mean absolute error between images, per image: the pixel metric pix2pix trains on, here on
//! the [0, 1] scale (so 0.05 means an average error of 5% of the range per channel value).

use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// Checks that two batches match and returns them as per-image f64 rows.
pub(crate) fn image_rows(x: &Tensor, y: &Tensor, what: &str) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    if x.dims() != y.dims() || x.rank() != 4 {
        return Err(Error::Msg(format!("{what}: images must be two [N, C, H, W] batches of one shape, got {:?} and {:?}", x.dims(), y.dims())));
    }
    let n = x.dim(0)?;
    let flat = |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?) };
    Ok((flat(x)?, flat(y)?, n))
}

/// Mean |x - y| of each image; `x` and `y` are [N, C, H, W] in [0, 1].
pub fn l1_per_image(x: &Tensor, y: &Tensor) -> Result<Vec<f64>> {
    let (a, b, n) = image_rows(x, y, "L1")?;
    let per = a.len() / n.max(1);
    Ok((0..n)
        .map(|i| {
            let r = i * per..(i + 1) * per;
            a[r.clone()].iter().zip(&b[r]).map(|(p, q)| (p - q).abs()).sum::<f64>() / per as f64
        })
        .collect())
}
