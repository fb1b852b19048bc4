//! Stabilisers: gradient penalties (R1, WGAN-GP) with lazy regularisation, and the EMA generator.

use crate::common;

use common::{load, run};
use gannet::candle_core::{DType, Device, Tensor, Var};
use gannet::models::{dcgan::DcganConfig, ModelConfig};
use gannet::saved::SavedRun;
use gannet::train::penalty::{self, PenaltyKind};
use gannet::train::{Quiet, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// A tiny smooth D in f64: D(x) = tanh(x W1^T + b1) . w2, x [N, 3].
struct TinyD {
    w1: Var,
    b1: Var,
    w2: Var,
}

impl TinyD {
    fn new() -> Self {
        let dev = Device::Cpu;
        let w1 = Tensor::new(&[[0.3f64, -0.7, 0.5], [0.9, 0.2, -0.4], [-0.6, 0.8, 0.1], [0.25, -0.35, 0.45]], &dev).unwrap();
        let b1 = Tensor::new(&[0.1f64, -0.2, 0.05, 0.0], &dev).unwrap();
        let w2 = Tensor::new(&[[0.7f64], [-1.1], [0.4], [0.9]], &dev).unwrap();
        Self { w1: Var::from_tensor(&w1).unwrap(), b1: Var::from_tensor(&b1).unwrap(), w2: Var::from_tensor(&w2).unwrap() }
    }
    fn forward(&self, x: &Tensor) -> gannet::Result<Tensor> {
        let h = x.matmul(&self.w1.as_tensor().t()?)?.broadcast_add(self.b1.as_tensor())?.tanh()?;
        Ok(h.matmul(self.w2.as_tensor())?.flatten_all()?)
    }
    fn vars(&self) -> [&Var; 3] {
        [&self.w1, &self.b1, &self.w2]
    }
}

fn inputs() -> (Tensor, Tensor) {
    let dev = Device::Cpu;
    let real = Tensor::new(&[[0.5f64, -1.0, 0.3], [1.2, 0.4, -0.8]], &dev).unwrap();
    let fake = Tensor::new(&[[-0.3f64, 0.6, 0.9], [0.1, -0.5, 0.2]], &dev).unwrap();
    (real, fake)
}

fn penalty_value(d: &TinyD, kind: PenaltyKind) -> Tensor {
    let (real, fake) = inputs();
    let f = |x: &Tensor| d.forward(x);
    match kind {
        PenaltyKind::R1 => penalty::r1(&f, &real).unwrap(),
        PenaltyKind::WganGp => {
            let eps = Tensor::new(&[0.3f64, 0.8], &Device::Cpu).unwrap();
            penalty::wgan_gp(&f, &real, &fake, &eps).unwrap()
        }
        PenaltyKind::None => unreachable!(),
    }
}

fn check_against_finite_differences(kind: PenaltyKind) {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().expect("second order on this fresh test thread");
    let d = TinyD::new();
    let p = penalty_value(&d, kind);
    assert!(p.to_scalar::<f64>().unwrap() > 0.0);
    let grads = p.backward().unwrap();
    let h = 1e-6;
    let mut checked = 0;
    for var in d.vars() {
        let g = grads.get(var.as_tensor()).expect("penalty reaches every weight").flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let base = var.as_tensor().detach().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for i in 0..base.len() {
            let at = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap()).unwrap();
                let r = penalty_value(&d, kind).to_scalar::<f64>().unwrap();
                var.set(&Tensor::from_vec(base.clone(), var.dims(), &Device::Cpu).unwrap()).unwrap();
                r
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "{kind:?}: d/dw[{i}] autodiff {} vs finite difference {fd}", g[i]);
            checked += 1;
        }
    }
    assert_eq!(checked, 12 + 4 + 4);
}

#[test]
fn r1_gradient_wrt_weights_matches_finite_differences() {
    check_against_finite_differences(PenaltyKind::R1);
}

#[test]
fn wgan_gp_gradient_wrt_weights_matches_finite_differences() {
    check_against_finite_differences(PenaltyKind::WganGp);
}

#[test]
fn r1_value_is_the_mean_squared_input_gradient() {
    gannet::autodiff::enable_second_order();
    // D(x) = sum(a * x) per sample has input gradient a: R1 = ||a||^2.
    let a = Tensor::new(&[[1.0f64, -2.0, 3.0]], &Device::Cpu).unwrap();
    let f = |x: &Tensor| -> gannet::Result<Tensor> { Ok(x.broadcast_mul(&a)?.sum(1)?) };
    let (real, fake) = inputs();
    let r1 = penalty::r1(&f, &real).unwrap().to_scalar::<f64>().unwrap();
    assert!((r1 - 14.0).abs() < 1e-12, "{r1}");
    let eps = Tensor::new(&[0.5f64, 0.5], &Device::Cpu).unwrap();
    let gp = penalty::wgan_gp(&f, &real, &fake, &eps).unwrap().to_scalar::<f64>().unwrap();
    assert!((gp - (14f64.sqrt() - 1.0).powi(2)).abs() < 1e-9, "{gp}");
}

#[test]
fn lazy_regularisation_applies_every_k_steps_scaled_by_k() {
    let mut c = gannet::train::PenaltyConfig { kind: PenaltyKind::R1, weight: 10.0, every: 4, ..Default::default() };
    assert!(c.applies_at(0) && !c.applies_at(1) && !c.applies_at(3) && c.applies_at(4));
    assert_eq!(c.scale(), 10.0 / 2.0 * 4.0);
    c.kind = PenaltyKind::WganGp;
    assert_eq!(c.scale(), 40.0);
    c.kind = PenaltyKind::None;
    assert!(!c.applies_at(0));
}

#[test]
fn penalty_config_parses_from_toml() {
    let cfg = TrainConfig::from_toml_str("[penalty]\nkind = \"wgan-gp\"\nweight = 5.0\nevery = 2\n").unwrap();
    assert_eq!(cfg.penalty.kind, PenaltyKind::WganGp);
    assert_eq!((cfg.penalty.weight, cfg.penalty.every), (5.0, 2));
    assert!(TrainConfig::from_toml_str("[penalty]\nkind = \"r2\"\n").is_err());
    let again = TrainConfig::from_toml_str(&cfg.to_toml()).unwrap();
    assert_eq!(again, cfg);
}

fn tiny_config(dir: &Path, steps: u64) -> TrainConfig {
    common::tiny_config(dir, steps, 4, 5)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
}

fn assert_same(a: &SavedRun, b: &SavedRun) {
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (k, t) in &a.tensors {
        assert_eq!(max_diff(t, &b.tensors[k]), 0.0, "tensor {k} differs");
    }
}

/// Penalised runs, with lazy regularisation, resume bit for bit, and the penalty changes D.
fn penalised_run_resumes_exactly(kind: PenaltyKind) {
    gannet::autodiff::enable_second_order();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |d: &str, steps| {
        let mut c = tiny_config(&tmp.path().join(d), steps);
        c.penalty = gannet::train::PenaltyConfig { kind, weight: 1.0, every: 2, ..Default::default() };
        c.schedule.d_steps_per_g = 2;
        c
    };
    let full = run(cfg("full", 4));
    let half = run(cfg("half", 2));
    let mut resumed = Trainer::resume(&half.run_dir().latest_checkpoint(), |c| c.schedule.steps = 4).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_same(&load(&full), &load(&resumed));
    let mut plain = cfg("plain", 4);
    plain.penalty.kind = PenaltyKind::None;
    let plain = load(&run(plain));
    let w = "disc.from_image.weight";
    assert!(max_diff(&plain.tensors[w], &load(&full).tensors[w]) > 0.0, "the penalty must change D");
}

#[test]
fn r1_run_resumes_bit_for_bit() {
    penalised_run_resumes_exactly(PenaltyKind::R1);
}

#[test]
fn wgan_gp_run_resumes_bit_for_bit() {
    penalised_run_resumes_exactly(PenaltyKind::WganGp);
}

#[test]
fn ema_after_one_step_is_the_decayed_average() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(tmp.path(), 1);
    cfg.ema_decay = 0.9;
    let mut t = Trainer::new(cfg).unwrap();
    // Copies: a store's tensors share storage with its variables, which updates overwrite.
    let snapshot = |m: std::collections::BTreeMap<String, Tensor>| -> std::collections::BTreeMap<String, Tensor> {
        m.into_iter().map(|(k, v)| (k, v.copy().unwrap())).collect()
    };
    let before = snapshot(t.gan().gen_params.tensors());
    let ema0 = t.ema().unwrap().tensors();
    for (k, v) in &before {
        assert_eq!(max_diff(v, &ema0[k]), 0.0, "EMA starts as a copy of G ({k})");
    }
    t.train_step().unwrap();
    let after = t.gan().gen_params.tensors();
    let ema1 = t.ema().unwrap().tensors();
    // The ramp-up: the first update uses min(0.9, 1/10).
    let d = t.ema().unwrap().decay_at(0);
    assert_eq!(d, 0.1);
    assert_eq!(t.ema().unwrap().decay_at(1_000_000), 0.9);
    let trainable: Vec<String> = t.gan().gen_params.trainable().into_iter().map(|(n, _)| n).collect();
    for (k, e) in &ema1 {
        let expect = if trainable.contains(k) { ((&before[k] * d).unwrap() + (&after[k] * (1.0 - d)).unwrap()).unwrap() } else { after[k].clone() };
        assert!(max_diff(e, &expect) < 1e-7, "{k}");
    }
    assert!(max_diff(&ema1["stem.weight"], &after["stem.weight"]) > 0.0, "EMA must lag G");
}

#[test]
fn ema_is_checkpointed_and_resumes_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |d: &str, steps| {
        let mut c = tiny_config(&tmp.path().join(d), steps);
        c.ema_decay = 0.95;
        c
    };
    let full = run(cfg("full", 4));
    let half = run(cfg("half", 2));
    let mut resumed = Trainer::resume(&half.run_dir().latest_checkpoint(), |c| c.schedule.steps = 4).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let (a, b) = (load(&full), load(&resumed));
    assert!(a.has_ema() && a.tensors.contains_key("gen_ema.stem.weight"));
    assert_same(&a, &b);
    // Sampling uses the shadow generator.
    let g = a.sampling_generator(&Device::Cpu).unwrap();
    let z = Tensor::zeros((2, 8), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(g.forward(&z, None, gannet::nn::Mode::Eval).unwrap().dims(), &[2, 1, 28, 28]);
    // ema_decay = 0: no shadow in the checkpoint.
    let mut off = cfg("off", 2);
    off.ema_decay = 0.0;
    assert!(!load(&run(off)).has_ema());
    let mut bad = cfg("bad", 2);
    bad.ema_decay = 1.0;
    assert!(Trainer::new(bad).err().unwrap().to_string().contains("ema_decay"));
}

#[test]
fn spectral_norm_sigma_converges_and_normalised_weight_has_norm_one() {
    use gannet::nn::{Mode, ParamStore, SpectralNorm};
    let dev = Device::Cpu;
    let store = ParamStore::new(3, &dev);
    let sn = SpectralNorm::new(&store.root(), 3).unwrap();
    // Singular values 5, 2, 1 (orthogonal-ish factors); the largest is 5.
    let w = Tensor::new(&[[5.0f32, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], &dev).unwrap();
    let mut sigma = 0.0;
    for _ in 0..50 {
        sigma = sn.normalise(&w, Mode::Train).unwrap().1.to_scalar::<f32>().unwrap();
    }
    assert!((sigma - 5.0).abs() < 1e-3, "sigma {sigma}");
    let (wn, _) = sn.normalise(&w, Mode::Eval).unwrap();
    let top = wn.to_vec2::<f32>().unwrap()[0][0];
    assert!((top - 1.0).abs() < 1e-3, "normalised spectral norm {top}");
}

#[test]
fn spectral_norm_dcgan_run_resumes_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |d: &str, steps| {
        let mut c = tiny_config(&tmp.path().join(d), steps);
        c.model = ModelConfig::Dcgan(DcganConfig { latent_dim: 8, g_channels: 4, d_channels: 4, spectral_norm: true, ..Default::default() });
        c
    };
    let full = run(cfg("full", 4));
    let half = run(cfg("half", 2));
    let mut resumed = Trainer::resume(&half.run_dir().latest_checkpoint(), |c| c.schedule.steps = 4).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let a = load(&full);
    assert!(a.tensors.contains_key("disc.from_image.sn_u") && !a.tensors.keys().any(|k| k.starts_with("disc.") && k.contains(".bn.")));
    assert_same(&a, &load(&resumed));
}
