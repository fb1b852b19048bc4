//! Adam against hand-computed steps, state save/load, weight decay, params without gradients.

use candle_core::{Device, Tensor, Var};
use gannet::optim::{Adam, AdamConfig};
use std::collections::BTreeMap;

fn var(v: &[f32]) -> Var {
    Var::new(v, &Device::Cpu).unwrap()
}

fn vals(t: &Tensor) -> Vec<f32> {
    t.to_vec1::<f32>().unwrap()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((*g as f64 - w).abs() <= tol, "{what}[{i}]: {g} vs {w}");
    }
}

/// Gradients of 0.5 * sum(p^2), i.e. g = p.
fn half_sq_grads(p: &Var) -> candle_core::backprop::GradStore {
    (p.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap().backward().unwrap()
}

const CFG: AdamConfig = AdamConfig { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };

#[test]
fn default_is_dcgan() {
    let c = AdamConfig::default();
    assert_eq!((c.lr, c.beta1, c.beta2, c.eps, c.weight_decay), (2e-4, 0.5, 0.999, 1e-8, 0.0));
}

#[test]
fn one_and_two_steps_match_hand_arithmetic() {
    let p = var(&[1.0, -2.0]);
    let mut opt = Adam::new(vec![("w".into(), p.clone())], CFG).unwrap();

    // Step 1, g = p = [1, -2]:
    //   m = 0.1 g = [0.1, -0.2];  v = 0.001 g^2 = [0.001, 0.004]
    //   bias corrections 1 - 0.9 = 0.1 and 1 - 0.999 = 0.001 give m^ = g, v^ = g^2, so
    //   p -= 0.1 * g / (|g| + 1e-8) = 0.1 sign(g):  p = [0.9, -1.9].
    opt.step(&half_sq_grads(&p)).unwrap();
    assert_eq!(opt.steps(), 1);
    assert_close(&vals(p.as_tensor()), &[0.9, -1.9], 1e-6, "p after 1");
    let s = opt.state();
    assert_close(&vals(&s["w.exp_avg"]), &[0.1, -0.2], 1e-7, "m after 1");
    assert_close(&vals(&s["w.exp_avg_sq"]), &[0.001, 0.004], 1e-9, "v after 1");

    // Step 2, g = p = [0.9, -1.9]:
    //   m = 0.9 [0.1, -0.2] + 0.1 [0.9, -1.9] = [0.18, -0.37]
    //   v = 0.999 [0.001, 0.004] + 0.001 [0.81, 3.61] = [0.001809, 0.007606]
    //   bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999
    //   p0 -= (0.1 / 0.19) * 0.18 / (sqrt(0.001809) / sqrt(0.001999) + 1e-8)
    //       = 0.9 - 0.526315789 * 0.18 / 0.951289898 = 0.9 - 0.0995877703 = 0.8004122297
    //   p1 -= (0.1 / 0.19) * -0.37 / (sqrt(0.007606) / sqrt(0.001999) + 1e-8)
    //       = -1.9 + 0.526315789 * 0.37 / 1.950615917 = -1.9 + 0.0998335134 = -1.8001664866
    opt.step(&half_sq_grads(&p)).unwrap();
    assert_eq!(opt.steps(), 2);
    assert_close(&vals(p.as_tensor()), &[0.8004122297, -1.8001664866], 2e-6, "p after 2");
    let s = opt.state();
    assert_close(&vals(&s["w.exp_avg"]), &[0.18, -0.37], 1e-6, "m after 2");
    assert_close(&vals(&s["w.exp_avg_sq"]), &[0.001809, 0.007606], 1e-8, "v after 2");
    assert_eq!(s["step"].to_scalar::<f64>().unwrap(), 2.0);
}

#[test]
fn weight_decay_is_added_to_the_gradient() {
    // Loss 0 * sum(p): the gradient is 0, so all movement comes from wd * p = [0.1, -0.2].
    let p = var(&[1.0, -2.0]);
    let cfg = AdamConfig { weight_decay: 0.1, ..CFG };
    let mut opt = Adam::new(vec![("w".into(), p.clone())], cfg).unwrap();
    let zeros = p.as_tensor().zeros_like().unwrap();
    let grads = (p.as_tensor() * zeros).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(grads.get(p.as_tensor()).unwrap()), vec![0.0, 0.0]);
    opt.step(&grads).unwrap();
    // m = 0.1 * [0.1, -0.2]; first step moves by lr * sign(g) = 0.1 towards zero.
    assert_close(&vals(&opt.state()["w.exp_avg"]), &[0.01, -0.02], 1e-8, "m");
    assert_close(&vals(p.as_tensor()), &[0.9, -1.9], 1e-6, "p");
}

#[test]
fn params_without_gradient_are_skipped() {
    let used = var(&[1.0, -2.0]);
    let unused = var(&[3.0]);
    let params = vec![("a".into(), used.clone()), ("b".into(), unused.clone())];
    let mut opt = Adam::new(params, CFG).unwrap();
    opt.step(&half_sq_grads(&used)).unwrap();
    assert_eq!(vals(unused.as_tensor()), vec![3.0]);
    let s = opt.state();
    assert_eq!(vals(&s["b.exp_avg"]), vec![0.0]);
    assert_eq!(vals(&s["b.exp_avg_sq"]), vec![0.0]);
    assert_close(&vals(used.as_tensor()), &[0.9, -1.9], 1e-6, "used param moved");
}

#[test]
fn set_lr_changes_the_step_size() {
    let p = var(&[1.0]);
    let mut opt = Adam::new(vec![("w".into(), p.clone())], CFG).unwrap();
    opt.set_lr(0.01);
    assert_eq!(opt.lr(), 0.01);
    opt.step(&half_sq_grads(&p)).unwrap();
    assert_close(&vals(p.as_tensor()), &[0.99], 1e-6, "p");
}

#[test]
fn saved_state_resumes_bit_exactly() {
    let start = [0.3f32, -1.2, 2.5];
    let a = var(&start);
    let mut opt_a = Adam::new(vec![("w".into(), a.clone())], CFG).unwrap();
    for _ in 0..3 {
        opt_a.step(&half_sq_grads(&a)).unwrap();
    }
    // A fresh optimiser on a copy of the current weights, restored from the saved state.
    let b = Var::from_tensor(&a.as_tensor().copy().unwrap()).unwrap();
    let mut opt_b = Adam::new(vec![("w".into(), b.clone())], CFG).unwrap();
    opt_b.load_state(&opt_a.state()).unwrap();
    assert_eq!(opt_b.steps(), 3);

    opt_a.step(&half_sq_grads(&a)).unwrap();
    opt_b.step(&half_sq_grads(&b)).unwrap();
    let (va, vb) = (vals(a.as_tensor()), vals(b.as_tensor()));
    assert_eq!(va.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), vb.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    for key in ["w.exp_avg", "w.exp_avg_sq"] {
        assert_eq!(vals(&opt_a.state()[key]), vals(&opt_b.state()[key]), "{key}");
    }
}

#[test]
fn load_state_names_missing_and_misshaped_entries() {
    let p = var(&[1.0, 2.0]);
    let mut opt = Adam::new(vec![("w".into(), p)], CFG).unwrap();
    let good = opt.state();

    let mut missing = good.clone();
    missing.remove("w.exp_avg_sq");
    let err = opt.load_state(&missing).unwrap_err().to_string();
    assert!(err.contains("w.exp_avg_sq") && err.contains("missing"), "{err}");

    let mut bad_shape: BTreeMap<String, Tensor> = good.clone();
    bad_shape.insert("w.exp_avg".into(), Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap());
    let err = opt.load_state(&bad_shape).unwrap_err().to_string();
    assert!(err.contains("w.exp_avg") && err.contains("shape"), "{err}");

    let mut no_step = good;
    no_step.remove("step");
    let err = opt.load_state(&no_step).unwrap_err().to_string();
    assert!(err.contains("step"), "{err}");
}

/// The bits of a parameter's values, for exact comparisons.
fn bits(v: &Var) -> Vec<u32> {
    vals(v.as_tensor()).iter().map(|x| x.to_bits()).collect()
}

/// ProGAN's settings: beta1 0, beta2 0.99, where a shared step count hurts most.
const PROGAN: AdamConfig = AdamConfig { lr: 1e-3, beta1: 0.0, beta2: 0.99, eps: 1e-8, weight_decay: 0.0 };

#[test]
fn a_parameter_first_trained_late_takes_a_fresh_adams_first_step() {
    let early = var(&[1.0, -2.0]);
    let late = var(&[0.5, -0.25, 4.0]);
    let params = vec![("early".into(), early.clone()), ("late".into(), late.clone())];
    let mut opt = Adam::new(params, PROGAN).unwrap();
    for _ in 0..50 {
        opt.step(&half_sq_grads(&early)).unwrap();
    }
    assert_eq!((opt.steps(), opt.param_steps("early"), opt.param_steps("late")), (50, Some(50), Some(0)));
    // A fresh Adam on a copy of `late`, and the shared one, each take `late`'s first step.
    let copy = var(&[0.5, -0.25, 4.0]);
    let mut fresh = Adam::new(vec![("late".into(), copy.clone())], PROGAN).unwrap();
    fresh.step(&half_sq_grads(&copy)).unwrap();
    opt.step(&half_sq_grads(&late)).unwrap();
    assert_eq!(bits(&late), bits(&copy));
    // That first step is lr * sign(g): with a shared t = 51 (v = 0.01 g^2, bias correction
    // 1 - 0.99^51 = 0.40) it would be lr * sqrt(0.40 / 0.01), about 6.3 lr.
    assert_close(&vals(late.as_tensor()), &[0.499, -0.249, 3.999], 1e-6, "late after its first step");
    assert_eq!((opt.steps(), opt.param_steps("early"), opt.param_steps("late")), (51, Some(50), Some(1)));
}

#[test]
fn per_parameter_step_counts_are_saved_and_restored() {
    let (a, b) = (var(&[1.0, -2.0]), var(&[0.5]));
    let params = |a: &Var, b: &Var| vec![("a".into(), a.clone()), ("b".into(), b.clone())];
    let mut opt = Adam::new(params(&a, &b), PROGAN).unwrap();
    for _ in 0..3 {
        opt.step(&half_sq_grads(&a)).unwrap();
    }
    opt.step(&half_sq_grads(&b)).unwrap();
    let state = opt.state();
    let count = |k: &str| state[k].to_scalar::<f64>().unwrap();
    assert_eq!((count("step"), count("a.step"), count("b.step")), (4.0, 3.0, 1.0));

    let (a2, b2) = (Var::from_tensor(&a.as_tensor().copy().unwrap()).unwrap(), Var::from_tensor(&b.as_tensor().copy().unwrap()).unwrap());
    let mut restored = Adam::new(params(&a2, &b2), PROGAN).unwrap();
    restored.load_state(&state).unwrap();
    assert_eq!((restored.steps(), restored.param_steps("a"), restored.param_steps("b")), (4, Some(3), Some(1)));
    for (o, x, y) in [(&mut opt, &a, &b), (&mut restored, &a2, &b2)] {
        o.step(&half_sq_grads(x)).unwrap();
        o.step(&half_sq_grads(y)).unwrap();
    }
    assert_eq!((bits(&a), bits(&b)), (bits(&a2), bits(&b2)));
}

#[test]
fn state_without_per_parameter_counts_loads_with_the_global_count() {
    let p = var(&[1.0, -2.0]);
    let mut opt = Adam::new(vec![("w".into(), p.clone())], CFG).unwrap();
    for _ in 0..2 {
        opt.step(&half_sq_grads(&p)).unwrap();
    }
    // The format before per-parameter counts: moments and one "step".
    let mut old = opt.state();
    assert!(old.remove("w.step").is_some());
    let q = Var::from_tensor(&p.as_tensor().copy().unwrap()).unwrap();
    let mut loaded = Adam::new(vec![("w".into(), q.clone())], CFG).unwrap();
    loaded.load_state(&old).unwrap();
    assert_eq!(loaded.param_steps("w"), Some(2));
    opt.step(&half_sq_grads(&p)).unwrap();
    loaded.step(&half_sq_grads(&q)).unwrap();
    assert_eq!(bits(&p), bits(&q));
    // A present but broken per-parameter count is still an error naming it.
    let mut bad = opt.state();
    bad.insert("w.step".into(), Tensor::new(1.5f64, &Device::Cpu).unwrap());
    let err = loaded.load_state(&bad).unwrap_err().to_string();
    assert!(err.contains("w.step"), "{err}");
}
