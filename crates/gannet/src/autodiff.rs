//! Second-order gradients (R1, gradient penalty) in candle.
//!
//! candle detaches every intermediate gradient unless `CANDLE_GRAD_DO_NOT_DETACH` is set, and it
//! reads that variable once per thread, at the thread's first `backward`. Without it a gradient
//! penalty silently contributes nothing to the weights' gradients. So a program calls
//! [`enable_second_order`] at its start, while it is the only thread, when its run needs it
//! (`TrainConfig::needs_second_order`; the `gannet` binary does this before it loads data or
//! installs its Ctrl-C handler). The library never sets the environment itself: it checks with
//! [`ensure_second_order`] where a penalty is built, so a wrong setup fails loudly.

use candle_core::{Device, Tensor, Var};
use std::sync::Once;

const VAR: &str = "CANDLE_GRAD_DO_NOT_DETACH";
static ENABLE: Once = Once::new();

/// Sets the environment variable for this process. Call it at the program's start, before any
/// other thread exists (a test calls it first thing, before its tensor work): setting the
/// environment while other threads may read it is a data race, and threads that already ran a
/// backward pass keep their old setting.
pub fn enable_second_order() {
    ENABLE.call_once(|| {
        // Sound only while no other thread reads the environment: the contract above.
        std::env::set_var(VAR, "1");
    });
}

thread_local! {
    static SECOND_ORDER: bool = std::env::var(VAR).is_ok_and(|s| !s.is_empty() && s != "0");
}

/// Whether candle keeps gradients in the graph on this thread, read as candle reads it: once per
/// thread. Kernels whose backward pass is not itself differentiable step aside when it does. Read
/// once, so a run never mixes the two forms (a resumed run must match an unbroken one bit for bit).
pub fn second_order_enabled() -> bool {
    SECOND_ORDER.with(|on| *on)
}

/// Checks on this thread that a gradient of a gradient is non-zero: with u = 2x,
/// d/dx (d/dx u^3) = 48x. The inner op matters: candle detaches the gradient flowing *into* each
/// node, so for plain x^3 the first derivative 3x^2 still tracks x even with detaching on; through
/// u = 2x it only does so when second order is really enabled.
pub fn second_order_works() -> crate::Result<bool> {
    let x = Var::new(&[1.0f32], &Device::Cpu)?;
    let y = x.as_tensor().affine(2.0, 0.0)?.powf(3.0)?.sum_all()?;
    let g = y.backward()?;
    let dx = g.get(x.as_tensor()).expect("x takes part in y").sum_all()?;
    let gg = dx.backward()?;
    Ok(match gg.get(x.as_tensor()) {
        Some(t) => (t.to_vec1::<f32>()?[0] - 48.0).abs() < 1e-3,
        None => false,
    })
}

/// Fails with an explanation when second-order gradients would be silently wrong on this thread:
/// candle detaches, or gannet's first-order-only kernels were chosen here before the switch.
pub fn ensure_second_order() -> crate::Result<()> {
    if second_order_works()? && second_order_enabled() {
        Ok(())
    } else {
        Err(crate::Error::Msg(format!(
            "second-order gradients are disabled on this thread: set {VAR}=1 before the first \
             backward pass (gannet::autodiff::enable_second_order at start-up)"
        )))
    }
}

/// Gradient of `y` (a scalar) with respect to `x`, kept in the graph so it can be differentiated
/// again. `x` must be a variable or a tensor tracked by the graph.
pub fn grad_of(y: &Tensor, x: &Tensor) -> crate::Result<Tensor> {
    let grads = y.backward()?;
    grads.get(x).cloned().ok_or_else(|| crate::Error::Msg("grad_of: the output does not depend on the input".into()))
}
