//! The matrix product of the convolutions and linear layers, with a backward pass that computes
//! only the gradients something needs and splits long reductions across the cores.
//!
//! - candle's `matmul` backward computes both operands' gradients whenever the product is in the
//!   graph, although one of them often leads nowhere: the weights of D while G is updated
//!   ([`crate::nn::frozen`] reads them as constants), the columns of a first layer whose input is
//!   data, a latent code. Each is a GEMM as large as the forward one, added into a fresh zero
//!   buffer and thrown away. Here an operand that does not track gets no gradient.
//! - A weight gradient sums over every pixel of the batch (`grad[Cout, N*H*W] @
//!   cols^T[N*H*W, Cin*k*k]`): a long reduction into a small matrix. gemm parallelises over the
//!   output's blocks, so such a product leaves cores idle; [`product`] splits the reduction
//!   instead, one part per core, and adds the parts (36 -> 87 GFLOP/s for DCGAN's first D layer
//!   on 2 cores, docs/speed.md).
//!
//! The backward pass is built from candle ops, so second-order gradients still flow through it.

use super::cpu_float;
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// Shortest reduction part worth a task of its own.
const MIN_PART: usize = 1024;

/// `a @ b` for 2-D `a` [m, k] and `b` [k, n]; see the module docs.
pub fn matmul(a: &Tensor, b: &Tensor) -> crate::Result<Tensor> {
    let tracks = a.track_op() || b.track_op();
    if tracks && a.rank() == 2 && b.rank() == 2 && cpu_float(a) && a.dtype() == b.dtype() && b.device().is_cpu() {
        return Ok(a.apply_op2(b, Product)?);
    }
    Ok(a.matmul(b)?)
}

struct Product;

impl CustomOp2 for Product {
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
        let ga = if a.track_op() { Some(product(grad, &b.t()?)?) } else { None };
        let gb = if b.track_op() { Some(product(&a.t()?, grad)?) } else { None };
        Ok((ga, gb))
    }
}

/// `a @ b` with a reduction at least as long as the result's sides split into one part per
/// core (halves, recursively), computed side by side and added in a fixed order: deterministic.
pub fn product(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    split_product(a, b, rayon::current_num_threads())
}

fn split_product(a: &Tensor, b: &Tensor, parts: usize) -> candle_core::Result<Tensor> {
    let ((m, l), n) = (a.dims2()?, b.dim(1)?);
    if parts < 2 || l < 2 * MIN_PART || l < m.max(n) {
        return a.matmul(b);
    }
    let (h, left) = (l / 2, parts / 2);
    let (x, y) = rayon::join(
        || split_product(&a.narrow(1, 0, h)?, &b.narrow(0, 0, h)?, left),
        || split_product(&a.narrow(1, h, l - h)?, &b.narrow(0, h, l - h)?, parts - left),
    );
    x? + y?
}
