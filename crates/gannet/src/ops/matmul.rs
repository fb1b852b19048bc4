//! A matrix product whose backward pass computes only the gradients something needs.
//!
//! candle's `matmul` backward computes both operands' gradients whenever the product is in the
//! graph, although one of them often leads nowhere: the weights of D while G is updated
//! ([`crate::nn::frozen`] reads them as constants), the columns of a first layer whose input is
//! data, a latent code. Each such gradient is a GEMM as large as the forward one, added into a
//! fresh zero buffer and thrown away. Here, when exactly one operand tracks gradients, the product
//! is a custom op whose backward pass computes that operand's gradient alone, with the same candle
//! ops (so its values are bit for bit those of `matmul`, and second-order gradients still flow).

use super::cpu_float;
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// `a @ b` for 2-D `a` [m, k] and `b` [k, n]; see the module docs.
pub fn matmul(a: &Tensor, b: &Tensor) -> crate::Result<Tensor> {
    let one_tracks = a.track_op() != b.track_op();
    if one_tracks && a.rank() == 2 && b.rank() == 2 && cpu_float(a) && a.dtype() == b.dtype() && b.device().is_cpu() {
        return Ok(a.apply_op2(b, OneSided)?);
    }
    Ok(a.matmul(b)?)
}

struct OneSided;

impl CustomOp2 for OneSided {
    fn name(&self) -> &'static str {
        "gannet-matmul"
    }

    fn cpu_fwd(&self, sa: &CpuStorage, la: &Layout, sb: &CpuStorage, lb: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let ((m, k), (k2, n)) = (la.shape().dims2()?, lb.shape().dims2()?);
        if k != k2 {
            candle_core::bail!("{}: shapes {:?} and {:?} do not multiply", self.name(), la.shape(), lb.shape())
        }
        // candle's own CPU product on the same layouts: the same GEMM call as `Tensor::matmul`.
        Ok((sa.matmul(sb, (1, m, n, k), la, lb)?, (m, n).into()))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let ga = if a.track_op() { Some(grad.matmul(&b.t()?)?) } else { None };
        let gb = if b.track_op() { Some(a.t()?.matmul(grad)?) } else { None };
        Ok((ga, gb))
    }
}
