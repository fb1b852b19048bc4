//! Style mixing grids (Karras et al. 2019, fig. 3): the coarse layers' w from one latent, the
//! rest from another. The first `cutoff` synthesis layers set pose and shape, the later ones
//! texture and colour. The mixing itself is [`StyleGenerator::mix_ws`], which StyleGAN2's
//! style-mixing regularisation uses in training too.

use super::truncate_w;
use crate::models::StyleGenerator;
use candle_core::Tensor;

/// The images of a mixing grid, row by row, `(rows + 1) x (cols + 1)`: a blank corner, the
/// `cols` latents' own images along the top (the fine styles), the `rows` latents' own images down
/// the left (the coarse styles), and every mix in between. `psi` truncates every w (1 = off).
pub fn mixing_grid(style: &dyn StyleGenerator, rows: &Tensor, cols: &Tensor, cutoff: usize, psi: f64) -> crate::Result<Tensor> {
    let wr = truncate_w(style, &style.mapping(rows)?, psi)?;
    let wc = truncate_w(style, &style.mapping(cols)?, psi)?;
    let (nr, nc) = (wr.dim(0)?, wc.dim(0)?);
    let own_r = style.synthesis(&style.broadcast_w(&wr)?)?;
    let own_c = style.synthesis(&style.broadcast_w(&wc)?)?;
    // A white corner tile (images are in [-1, 1]).
    let corner = own_c.narrow(0, 0, 1)?.ones_like()?;
    let mut tiles = vec![corner, own_c];
    for r in 0..nr {
        let coarse = wr.narrow(0, r, 1)?.repeat((nc, 1))?;
        tiles.push(own_r.narrow(0, r, 1)?);
        tiles.push(style.synthesis(&style.mix_ws(&coarse, &wc, cutoff)?)?);
    }
    Ok(Tensor::cat(&tiles, 0)?)
}
