//! Style mixing grids (Karras et al. 2019, fig. 3): the coarse layers' w from one latent, the
//! rest from another. The first `cutoff` synthesis layers set pose and shape, the later ones
//! texture and colour.

use super::{broadcast_w, truncate_w};
use crate::models::StyleGenerator;
use candle_core::Tensor;

/// ws whose layers `< cutoff` come from `coarse` and the others from `fine` (both [N, w_dim]).
pub fn mix_ws(style: &dyn StyleGenerator, coarse: &Tensor, fine: &Tensor, cutoff: usize) -> crate::Result<Tensor> {
    let l = style.num_ws();
    if cutoff == 0 || cutoff >= l {
        return Err(crate::Error::Config(format!("the mixing cutoff must be between 1 and {} (the model has {l} w's), got {cutoff}", l - 1)));
    }
    let (a, b) = (broadcast_w(style, coarse)?, broadcast_w(style, fine)?);
    Ok(Tensor::cat(&[a.narrow(1, 0, cutoff)?, b.narrow(1, cutoff, l - cutoff)?], 1)?)
}

/// The images of a mixing grid, row by row, `(rows + 1) x (cols + 1)`: a blank corner, the
/// `cols` latents' own images along the top (the fine styles), the `rows` latents' own images down
/// the left (the coarse styles), and every mix in between. `psi` truncates every w (1 = off).
pub fn mixing_grid(style: &dyn StyleGenerator, rows: &Tensor, cols: &Tensor, cutoff: usize, psi: f64) -> crate::Result<Tensor> {
    let wr = truncate_w(style, &style.mapping(rows)?, psi)?;
    let wc = truncate_w(style, &style.mapping(cols)?, psi)?;
    let (nr, nc) = (wr.dim(0)?, wc.dim(0)?);
    let own_r = style.synthesis(&broadcast_w(style, &wr)?)?;
    let own_c = style.synthesis(&broadcast_w(style, &wc)?)?;
    // A white corner tile (images are in [-1, 1]).
    let corner = own_c.narrow(0, 0, 1)?.ones_like()?;
    let mut tiles = vec![corner, own_c];
    for r in 0..nr {
        let coarse = wr.narrow(0, r, 1)?.repeat((nc, 1))?;
        tiles.push(own_r.narrow(0, r, 1)?);
        tiles.push(style.synthesis(&mix_ws(style, &coarse, &wc, cutoff)?)?);
    }
    Ok(Tensor::cat(&tiles, 0)?)
}
