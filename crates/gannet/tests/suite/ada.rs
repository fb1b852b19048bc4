//! ADA: the probability follows sign(D(real)), images are augmented with probability p, and p is
//! checkpointed so a resumed run repeats the unbroken one.

use crate::common;

use gannet::candle_core::{Device, Tensor};
use gannet::train::ada::{augment_with_probability, AdaConfig, AdaState};
use gannet::train::augment::{self, AugmentPolicy};

fn batch() -> Tensor {
    gannet::rng::rand_uniform(&mut gannet::rng::rng(1, gannet::rng::Stream::Sample, 0), &[16, 1, 8, 8], -1.0, 1.0, &Device::Cpu).unwrap()
}

/// Which images of `y` differ from `x`.
fn changed(x: &Tensor, y: &Tensor) -> Vec<bool> {
    let d = (x - y).unwrap().abs().unwrap().flatten_from(1).unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap();
    d.iter().map(|v| *v > 1e-6).collect()
}

#[test]
fn probability_zero_is_identity_one_is_the_full_augmentation() {
    let x = batch();
    let p0 = augment_with_probability(&x, AugmentPolicy::ALL, 0.0, 3, 5).unwrap();
    assert!(changed(&x, &p0).iter().all(|c| !c));
    let p1 = augment_with_probability(&x, AugmentPolicy::ALL, 1.0, 3, 5).unwrap();
    let full = augment::augment(&x, AugmentPolicy::ALL, 3, 5).unwrap();
    assert!(changed(&full, &p1).iter().all(|c| !c));
}

#[test]
fn half_probability_augments_some_images_deterministically() {
    let x = batch();
    let a = augment_with_probability(&x, AugmentPolicy::ALL, 0.5, 3, 5).unwrap();
    let b = augment_with_probability(&x, AugmentPolicy::ALL, 0.5, 3, 5).unwrap();
    let which = changed(&x, &a);
    let k = which.iter().filter(|c| **c).count();
    assert!((2..=14).contains(&k), "{k} of 16 augmented at p = 0.5");
    assert_eq!(which, changed(&x, &b));
}

#[test]
fn p_rises_while_d_is_confident_on_reals_and_falls_back() {
    let cfg = AdaConfig { target: 0.6, interval: 2, speed_images: 40.0 };
    let mut s = AdaState::default();
    let confident = Tensor::new(&[1.0f32, 2.0, 0.5, 3.0], &Device::Cpu).unwrap();
    s.observe(&cfg, &confident, 0).unwrap();
    assert_eq!(s.p, 0.0, "p only moves at the end of an interval");
    s.observe(&cfg, &confident, 1).unwrap();
    // r_t = 1 > 0.6: p += 8 images / 40.
    assert!((s.p - 0.2).abs() < 1e-12, "p = {}", s.p);
    let unsure = Tensor::new(&[1.0f32, -2.0, -0.5, 3.0], &Device::Cpu).unwrap();
    s.observe(&cfg, &unsure, 2).unwrap();
    s.observe(&cfg, &unsure, 3).unwrap();
    assert!(s.p.abs() < 1e-12, "r_t = 0 < 0.6 brings p back down: {}", s.p);
    s.observe(&cfg, &unsure, 4).unwrap();
    s.observe(&cfg, &unsure, 5).unwrap();
    assert_eq!(s.p, 0.0, "clamped at 0");
}

#[test]
fn a_run_with_ada_raises_p_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = |dir: &std::path::Path, steps| {
        let mut c = common::tiny_config(dir, steps, 8, 2);
        // A low target: D on reals is above it from the start, so p must rise.
        c.ada = AdaConfig { target: 0.01, interval: 1, speed_images: 64.0 };
        c
    };
    let full = common::run(config(&tmp.path().join("a"), 6));
    let half = common::run(config(&tmp.path().join("b"), 4));
    let resumed = common::resume(&half.run_dir().latest_checkpoint(), 6);
    let (a, b) = (common::load(&full), common::load(&resumed));
    assert!(a.ada.p > 0.0, "p stayed 0");
    assert_eq!(a.ada, b.ada);
    for (name, t) in &a.tensors {
        let d = (t - &b.tensors[name])
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_dtype(gannet::candle_core::DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert_eq!(d, 0.0, "{name} differs");
    }
}

#[test]
fn bad_ada_settings_are_errors_naming_them() {
    let mut c = gannet::train::TrainConfig::default();
    c.ada.target = 1.5;
    assert!(c.validate().unwrap_err().to_string().contains("ada.target"));
}
