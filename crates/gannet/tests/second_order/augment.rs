//! DiffAugment: each op's effect on known inputs, gradients through the ops, determinism,
//! config parsing, and exact resume of an augmented run.

use crate::common;

use common::{load, run};
use gannet::candle_core::{DType, Device, Tensor, Var};
use gannet::models::{dcgan::DcganConfig, ModelConfig};
use gannet::train::augment::{self, AugmentParams, AugmentPolicy, Role};
use gannet::train::{PenaltyKind, Quiet, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn img(n: usize, c: usize, h: usize, w: usize) -> Tensor {
    let v: Vec<f32> = (0..n * c * h * w).map(|i| (i as f32 * 0.37).sin()).collect();
    Tensor::from_vec(v, (n, c, h, w), &Device::Cpu).unwrap()
}

fn vec4(t: &Tensor) -> Vec<Vec<Vec<Vec<f32>>>> {
    let (n, c, _, _) = t.dims4().unwrap();
    (0..n).map(|i| (0..c).map(|j| t.get(i).unwrap().get(j).unwrap().to_vec2::<f32>().unwrap()).collect()).collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn policy_parses_prints_and_rejects_unknown_names() {
    assert_eq!(AugmentPolicy::parse("color,translation,cutout").unwrap(), AugmentPolicy::ALL);
    assert_eq!(AugmentPolicy::parse(" cutout , colour ").unwrap(), AugmentPolicy { color: true, translation: false, cutout: true });
    assert_eq!(AugmentPolicy::parse("none").unwrap(), AugmentPolicy::NONE);
    assert_eq!(AugmentPolicy::parse("").unwrap(), AugmentPolicy::NONE);
    assert_eq!(AugmentPolicy::ALL.to_string(), "color,translation,cutout");
    assert_eq!(AugmentPolicy::NONE.to_string(), "none");
    let e = AugmentPolicy::parse("color,flip").unwrap_err().to_string();
    assert!(e.contains("flip") && e.contains("translation"), "{e}");
    assert!(AugmentPolicy::parse("color,color").is_err());
    let cfg = TrainConfig::from_toml_str("augment = \"translation,cutout\"\n").unwrap();
    assert_eq!(cfg.augment, AugmentPolicy { color: false, translation: true, cutout: true });
    assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml()).unwrap(), cfg);
    assert_eq!(TrainConfig::default().augment, AugmentPolicy::NONE);
    let e = TrainConfig::from_toml_str("augment = \"zoom\"\n").unwrap_err().to_string();
    assert!(e.contains("zoom"), "{e}");
}

#[test]
fn sizes_follow_the_paper() {
    assert_eq!((augment::max_shift(28), augment::max_shift(32), augment::max_shift(64)), (4, 4, 8));
    assert_eq!((augment::cutout_size(28), augment::cutout_size(32), augment::cutout_size(64)), (14, 16, 32));
}

#[test]
fn colour_ops_on_known_inputs() {
    let dev = Device::Cpu;
    // Two images, 3 channels, 1x2 pixels.
    let x = Tensor::new(&[[[[0.0f32, 0.6]], [[0.3, 0.0]], [[-0.3, 0.3]]], [[[1.0, 1.0]], [[1.0, 1.0]], [[1.0, 1.0]]]], &dev).unwrap();
    let b = augment::brightness(&x, &[0.25, -0.5]).unwrap();
    assert!(max_diff(&b, &(&x + 0.0).unwrap().broadcast_add(&Tensor::new(&[0.25f32, -0.5], &dev).unwrap().reshape((2, 1, 1, 1)).unwrap()).unwrap()) < 1e-7);
    // Saturation 0 turns an image grey: every channel equals the channel mean.
    let s = vec4(&augment::saturation(&x, &[0.0, 2.0]).unwrap());
    assert!((s[0][0][0][0] - 0.0).abs() < 1e-6 && (s[0][1][0][0] - 0.0).abs() < 1e-6 && (s[0][2][0][1] - 0.3).abs() < 1e-6, "{s:?}");
    // A grey image is unchanged by saturation.
    assert!(s[1].iter().flatten().flatten().all(|v| (v - 1.0).abs() < 1e-6));
    // Contrast c scales the distance to the image mean (0.15 for image 0).
    let c = vec4(&augment::contrast(&x, &[0.5, 1.5]).unwrap());
    assert!((c[0][0][0][1] - (0.15 + (0.6 - 0.15) * 0.5)).abs() < 1e-6, "{c:?}");
    assert!(c[1].iter().flatten().flatten().all(|v| (v - 1.0).abs() < 1e-6));
}

#[test]
// The (channel, row, column) indices are the coordinates the expected values are computed from.
#[allow(clippy::needless_range_loop)]
fn translation_shifts_per_image_and_pads_with_zeros() {
    let x = img(2, 2, 5, 6);
    let y = augment::translate(&x, &[(1, -2), (0, 0)]).unwrap();
    let (xv, yv) = (vec4(&x), vec4(&y));
    for ch in 0..2 {
        for r in 0..5 {
            for c in 0..6 {
                let (sr, sc) = (r as i64 - 1, c as i64 + 2);
                let expect = if (0..5).contains(&sr) && (0..6).contains(&sc) { xv[0][ch][sr as usize][sc as usize] } else { 0.0 };
                assert_eq!(yv[0][ch][r][c], expect, "ch {ch} ({r},{c})");
            }
        }
    }
    assert_eq!(yv[1], xv[1], "a zero shift leaves image 1 alone");
}

#[test]
// The (channel, row, column) indices are the coordinates the expected values are computed from.
#[allow(clippy::needless_range_loop)]
fn cutout_zeroes_one_clipped_square_per_image() {
    let x = Tensor::ones((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let y = vec4(&augment::cutout(&x, &[(4, 4), (0, 7)], 4).unwrap());
    for ch in 0..3 {
        for r in 0..8 {
            for c in 0..8 {
                let in0 = (2..6).contains(&r) && (2..6).contains(&c);
                let in1 = r < 2 && c >= 5;
                assert_eq!(y[0][ch][r][c], if in0 { 0.0 } else { 1.0 });
                assert_eq!(y[1][ch][r][c], if in1 { 0.0 } else { 1.0 });
            }
        }
    }
}

#[test]
fn full_policy_keeps_shape_and_is_a_pure_function_of_seed_and_index() {
    let x = img(4, 3, 16, 16);
    let a = augment::augment(&x, AugmentPolicy::ALL, 7, 11).unwrap();
    assert_eq!(a.dims(), x.dims());
    assert_eq!(max_diff(&a, &augment::augment(&x, AugmentPolicy::ALL, 7, 11).unwrap()), 0.0);
    assert!(max_diff(&a, &augment::augment(&x, AugmentPolicy::ALL, 7, 12).unwrap()) > 0.0);
    assert!(max_diff(&a, &augment::augment(&x, AugmentPolicy::ALL, 8, 11).unwrap()) > 0.0);
    assert_eq!(max_diff(&x, &augment::augment(&x, AugmentPolicy::NONE, 7, 11).unwrap()), 0.0);
    // Each batch of a D update has its own index.
    let ids = [
        augment::stream_index(3, Role::Real),
        augment::stream_index(3, Role::Fake),
        augment::stream_index(3, Role::GenFake),
        augment::stream_index(4, Role::Real),
    ];
    assert_eq!(ids, [9, 10, 11, 12]);
    // Parameters lie in their ranges, and images differ in their draws.
    let mut r = gannet::rng::rng(1, gannet::rng::Stream::Augment, 0);
    let p = AugmentParams::draw(AugmentPolicy::ALL, 64, 32, 32, &mut r);
    assert!(p.brightness.iter().all(|b| (-0.5..0.5).contains(b)));
    assert!(p.saturation.iter().all(|s| (0.0..2.0).contains(s)));
    assert!(p.contrast.iter().all(|c| (0.5..1.5).contains(c)));
    assert!(p.shifts.iter().all(|&(dy, dx)| dy.abs() <= 4 && dx.abs() <= 4));
    assert!(p.shifts.iter().any(|s| *s != p.shifts[0]));
    assert!(p.cutouts.iter().all(|&(cy, cx)| (0..32).contains(&cy) && (0..32).contains(&cx)));
}

/// f(x) = sum(augment(x) * w) for a fixed weight w: its gradient w.r.t. x must match central
/// differences (the ops are exact in f64).
#[test]
fn gradients_flow_to_the_input_and_match_finite_differences() {
    let dev = Device::Cpu;
    let (n, c, h, w) = (2, 3, 6, 6);
    let base: Vec<f64> = (0..n * c * h * w).map(|i| (i as f64 * 0.53).cos()).collect();
    let wt = Tensor::from_vec((0..n * c * h * w).map(|i| (i as f64 * 0.71).sin()).collect::<Vec<_>>(), (n, c, h, w), &dev).unwrap();
    let mut r = gannet::rng::rng(3, gannet::rng::Stream::Augment, 5);
    let params = AugmentParams::draw(AugmentPolicy::ALL, n, h, w, &mut r);
    let f = |x: &Tensor| augment::apply(x, &params).unwrap().mul(&wt).unwrap().sum_all().unwrap();
    let x = Var::from_vec(base.clone(), (n, c, h, w), &dev).unwrap();
    let g = f(x.as_tensor()).backward().unwrap().get(x.as_tensor()).expect("gradient reaches x").flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert!(g.iter().any(|v| *v != 0.0));
    let eps = 1e-6;
    for i in (0..base.len()).step_by(7) {
        let at = |d: f64| {
            let mut v = base.clone();
            v[i] += d;
            f(&Tensor::from_vec(v, (n, c, h, w), &dev).unwrap()).to_scalar::<f64>().unwrap()
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps);
        assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "d/dx[{i}]: autodiff {} vs finite difference {fd}", g[i]);
    }
}

fn tiny_config(dir: &Path, steps: u64) -> TrainConfig {
    let mut cfg = common::tiny_config(dir, steps, 4, 9);
    cfg.augment = AugmentPolicy::ALL;
    cfg
}

/// An augmented run (with R1 through the augmentation, two D steps per G step) resumes bit for
/// bit, and the augmentation changes training.
#[test]
fn augmented_run_with_r1_resumes_bit_for_bit() {
    gannet::autodiff::enable_second_order();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |d: &str, steps| {
        let mut c = tiny_config(&tmp.path().join(d), steps);
        c.penalty = gannet::train::PenaltyConfig { kind: PenaltyKind::R1, weight: 1.0, every: 1, ..Default::default() };
        c.schedule.d_steps_per_g = 2;
        c
    };
    let full = run(cfg("full", 4));
    let half = run(cfg("half", 2));
    let mut resumed = Trainer::resume(&half.run_dir().latest_checkpoint(), |c| c.schedule.steps = 4).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let (a, b) = (load(&full), load(&resumed));
    for (k, t) in &a.tensors {
        assert_eq!(max_diff(t, &b.tensors[k]), 0.0, "tensor {k} differs");
    }
    assert_eq!(a.config.augment, AugmentPolicy::ALL);
    let mut plain = cfg("plain", 4);
    plain.augment = AugmentPolicy::NONE;
    let plain = load(&run(plain));
    for w in ["disc.from_image.weight", "gen.stem.weight"] {
        assert!(max_diff(&plain.tensors[w], &a.tensors[w]) > 0.0, "augmentation must change {w}");
    }
}

#[test]
fn wgan_gp_with_augmentation_trains() {
    gannet::autodiff::enable_second_order();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = tiny_config(tmp.path(), 2);
    c.loss = gannet::loss::GanLoss::Wasserstein;
    c.penalty = gannet::train::PenaltyConfig { kind: PenaltyKind::WganGp, weight: 10.0, every: 1, ..Default::default() };
    let t = run(c);
    assert_eq!(t.step(), 2);
}

/// R1 through the augmentation needs the gradient of the augmentation's backward pass:
/// p(a) = ||grad_x D(aug(x))||^2 with D(y) = sum(tanh(y * a)); d p / d a against central
/// differences.
#[test]
fn second_order_gradients_pass_through_the_augmentation() {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let dev = Device::Cpu;
    let (n, c, h, w) = (2, 3, 6, 6);
    let x = Tensor::from_vec((0..n * c * h * w).map(|i| (i as f64 * 0.53).cos()).collect::<Vec<_>>(), (n, c, h, w), &dev).unwrap();
    let mut r = gannet::rng::rng(4, gannet::rng::Stream::Augment, 2);
    let params = AugmentParams::draw(AugmentPolicy::ALL, n, h, w, &mut r);
    let penalty = |a: &Tensor| {
        let leaf = Var::from_tensor(&x).unwrap();
        let y = augment::apply(leaf.as_tensor(), &params).unwrap();
        let d = y.broadcast_mul(a).unwrap().tanh().unwrap().sum_all().unwrap();
        let g = gannet::autodiff::grad_of(&d, leaf.as_tensor()).unwrap();
        g.sqr().unwrap().sum_all().unwrap()
    };
    let base = vec![0.7f64, -1.3, 0.4];
    let a = Var::from_vec(base.clone(), (1, 3, 1, 1), &dev).unwrap();
    let g = penalty(a.as_tensor()).backward().unwrap().get(a.as_tensor()).expect("penalty reaches a").flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for i in 0..3 {
        let at = |d: f64| {
            let mut v = base.clone();
            v[i] += d;
            penalty(&Tensor::from_vec(v, (1, 3, 1, 1), &dev).unwrap()).to_scalar::<f64>().unwrap()
        };
        let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert!((fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()), "d/da[{i}]: autodiff {} vs finite difference {fd}", g[i]);
    }
}

/// Timing of the full policy on a DCGAN-sized batch (run with --ignored --nocapture).
#[test]
#[ignore]
fn time_full_policy() {
    for (c, s) in [(1, 28), (3, 32), (3, 64)] {
        let x = img(64, c, s, s);
        let v = Var::from_tensor(&x).unwrap();
        let w = img(64, c, s, s);
        let t0 = std::time::Instant::now();
        let reps = 20;
        for i in 0..reps {
            let y = augment::augment(v.as_tensor(), AugmentPolicy::ALL, 1, i).unwrap();
            // A weighted sum, so the gradient arriving at the augmentation is a dense tensor
            // as in training (sum_all's own is a broadcast view, slow to consume).
            y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        }
        println!("64x{c}x{s}x{s}: forward+backward {:.2} ms", t0.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
}

#[test]
fn fused_colour_equals_the_three_ops_in_a_row() {
    for c in [1, 3] {
        let x = img(5, c, 4, 3);
        let b = [0.1f32, -0.4, 0.3, 0.0, 0.49];
        let s = [0.0f32, 1.9, 1.0, 0.5, 0.2];
        let k = [0.5f32, 1.4, 1.0, 0.8, 1.2];
        let seq = augment::contrast(&augment::saturation(&augment::brightness(&x, &b).unwrap(), &s).unwrap(), &k).unwrap();
        let fused = augment::color(&x, &b, &s, &k).unwrap();
        assert!(max_diff(&seq, &fused) < 1e-5, "C={c}: {}", max_diff(&seq, &fused));
    }
}

/// DiffAugment's share of a training step: DCGAN width 32, batch 64, 32x32x3, with and without
/// the full policy, alternating (run with --ignored --nocapture).
#[test]
#[ignore]
fn time_step_overhead() {
    use gannet::models::ImageShape;
    use gannet::train::{GanState, RealBatch};
    let dev = Device::Cpu;
    let shape = ImageShape { channels: 3, resolution: 32 };
    let model = ModelConfig::Dcgan(DcganConfig { g_channels: 32, d_channels: 32, ..Default::default() });
    let mut states: Vec<(&str, GanState)> = [("color,translation,cutout", AugmentPolicy::ALL), ("no augment", AugmentPolicy::NONE)]
        .into_iter()
        .map(|(n, augment)| (n, GanState::new(&TrainConfig { model: model.clone(), augment, ema_decay: 0.0, ..TrainConfig::default() }, shape, &dev).unwrap()))
        .collect();
    let mut times = vec![Vec::new(); states.len()];
    for round in 0..10u64 {
        for (i, (_, st)) in states.iter_mut().enumerate() {
            let mut next = Some(RealBatch { images: Tensor::rand(-1f32, 1.0, (64, 3, 32, 32), &dev).unwrap(), labels: None });
            let t = std::time::Instant::now();
            st.step(round, |_| Ok(next.take().unwrap())).unwrap();
            if round > 0 {
                times[i].push(t.elapsed().as_secs_f64());
            }
        }
    }
    for ((name, _), mut t) in states.iter().zip(times) {
        t.sort_by(|a, b| a.total_cmp(b));
        println!("{name:<26} median {:7.1} ms/step  min {:7.1} ms", t[t.len() / 2] * 1e3, t[0] * 1e3);
    }
}
