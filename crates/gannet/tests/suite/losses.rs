//! Loss values on hand-computed inputs, gradients against central finite differences, and BCE
//! stability for extreme logits.

use candle_core::{Device, Tensor, Var};
use gannet::loss::{bce_with_logits, GanLoss};

const REAL: [f64; 2] = [0.0, 2.0];
const FAKE: [f64; 2] = [-1.0, 0.5];

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

fn scalar(x: &Tensor) -> f64 {
    x.to_dtype(candle_core::DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
}

#[test]
fn bce_known_values() {
    // softplus(x) = ln(1 + e^x); BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x).
    // ln 2 = 0.6931471805599453, ln(1 + e^-2) = 0.1269280110429726 -> mean 0.4100375958014589.
    close(scalar(&bce_with_logits(&t(&REAL), 1.0).unwrap()), 0.4100375958014589, 1e-12, "bce real");
    // ln(1 + e^-1) = 0.3132616875182228, ln(1 + e^0.5) = 0.9740769841801067 -> 0.6436693358491647.
    close(scalar(&bce_with_logits(&t(&FAKE), 0.0).unwrap()), 0.6436693358491647, 1e-12, "bce fake");
    // Soft target 0.25 at x = 0: ln 2 - 0 = ln 2 (the x t term vanishes).
    close(scalar(&bce_with_logits(&t(&[0.0]), 0.25).unwrap()), std::f64::consts::LN_2, 1e-12, "bce 0");
}

#[test]
fn gan_losses_known_values() {
    let (r, f) = (t(&REAL), t(&FAKE));
    // (loss, D value, G value), worked out by hand from REAL = [0, 2], FAKE = [-1, 0.5]:
    let expected = [
        // D = 0.4100375958014589 + 0.6436693358491647; G = mean(ln(1+e^1), ln(1+e^-0.5))
        //   = (1.3132616875182228 + 0.4740769841801067) / 2.
        (GanLoss::NonSaturating, 1.0537069316506236, 0.8936693358491647),
        // G = -BCE(fake, 0).
        (GanLoss::Minimax, 1.0537069316506236, -0.6436693358491647),
        // D = mean(relu(1-0), relu(1-2)) + mean(relu(1-1), relu(1+0.5)) = 0.5 + 0.75; G = -(-0.25).
        (GanLoss::Hinge, 1.25, 0.25),
        // D = mean(f) - mean(r) = -0.25 - 1; G = 0.25.
        (GanLoss::Wasserstein, -1.25, 0.25),
        // D = 0.5 mean(1, 1) + 0.5 mean(1, 0.25) = 0.5 + 0.3125; G = 0.5 mean(4, 0.25) = 1.0625.
        (GanLoss::LeastSquares, 0.8125, 1.0625),
    ];
    for (loss, d, g) in expected {
        let dl = loss.d_loss(&r, &f).unwrap();
        assert_eq!(dl.rank(), 0, "{loss}: d_loss is a scalar");
        close(scalar(&dl), d, 1e-12, &format!("{loss} d"));
        close(scalar(&loss.g_loss(&f).unwrap()), g, 1e-12, &format!("{loss} g"));
    }
}

/// Central finite-difference gradient of `f` at `x`.
fn fd_grad(f: &dyn Fn(&Tensor) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[i] += h;
            down[i] -= h;
            (f(&t(&up)) - f(&t(&down))) / (2.0 * h)
        })
        .collect()
}

fn autodiff_grad(f: &dyn Fn(&Tensor) -> Tensor, x: &[f64]) -> Vec<f64> {
    let v = Var::new(x, &Device::Cpu).unwrap();
    let grads = f(v.as_tensor()).backward().unwrap();
    grads.get(v.as_tensor()).unwrap().to_vec1::<f64>().unwrap()
}

fn check_grad(what: &str, f: &dyn Fn(&Tensor) -> Tensor, x: &[f64]) {
    let numeric = fd_grad(&|x| scalar(&f(x)), x);
    let analytic = autodiff_grad(f, x);
    for (i, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
        close(*a, *n, 1e-6, &format!("{what} grad[{i}]"));
    }
}

#[test]
fn gradients_match_finite_differences() {
    // Away from the hinge kinks at ±1 and with mixed signs.
    let real = [0.3, -1.7, 2.2, 0.05];
    let fake = [-0.4, 1.3, -2.5, 0.6];
    for loss in GanLoss::ALL {
        let f_t = t(&fake);
        check_grad(&format!("{loss} d/d real"), &|r| loss.d_loss(r, &f_t).unwrap(), &real);
        let r_t = t(&real);
        check_grad(&format!("{loss} d/d fake"), &|f| loss.d_loss(&r_t, f).unwrap(), &fake);
        check_grad(&format!("{loss} g/d fake"), &|f| loss.g_loss(f).unwrap(), &fake);
    }
    for target in [0.0, 0.3, 1.0] {
        check_grad(&format!("bce t={target}"), &|x| bce_with_logits(x, target).unwrap(), &real);
    }
}

#[test]
fn bce_gradient_at_zero_is_sigmoid_minus_target() {
    // The max/abs kinks sit at 0; the exact gradient there is sigmoid(0) - t = 0.5 - t.
    for target in [0.0, 1.0, 0.25] {
        let g = autodiff_grad(&|x| bce_with_logits(x, target).unwrap(), &[0.0]);
        close(g[0], 0.5 - target, 1e-12, "grad at 0");
    }
}

#[test]
fn bce_is_stable_for_extreme_logits() {
    for dtype in [candle_core::DType::F32, candle_core::DType::F64] {
        let v = Var::from_tensor(&t(&[1000.0, -1000.0]).to_dtype(dtype).unwrap()).unwrap();
        for (target, value, grad) in [(1.0, 500.0, [0.0, -0.5]), (0.0, 500.0, [0.5, 0.0])] {
            // Per element: BCE(1000, 1) = 0 and BCE(-1000, 1) = 1000; mean 500. Gradient
            // (sigmoid(x) - t) / 2 saturates to 0 or ±0.5 exactly, with no NaN.
            let l = bce_with_logits(v.as_tensor(), target).unwrap();
            close(scalar(&l), value, 1e-9, "extreme value");
            let g = l.backward().unwrap().get(v.as_tensor()).unwrap().to_dtype(candle_core::DType::F64).unwrap();
            let g = g.to_vec1::<f64>().unwrap();
            assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
            close(g[0], grad[0], 1e-9, "extreme grad 0");
            close(g[1], grad[1], 1e-9, "extreme grad 1");
        }
    }
}

#[test]
fn names_parse_and_display() {
    for loss in GanLoss::ALL {
        assert_eq!(loss.to_string().parse::<GanLoss>().unwrap(), loss);
        let json = serde_json::to_string(&loss).unwrap();
        assert_eq!(json, format!("\"{loss}\""));
    }
    assert_eq!("least-squares".parse::<GanLoss>().unwrap(), GanLoss::LeastSquares);
    let err = "lsgan".parse::<GanLoss>().unwrap_err().to_string();
    assert!(err.contains("lsgan") && err.contains("non-saturating") && err.contains("least-squares"), "{err}");
}
