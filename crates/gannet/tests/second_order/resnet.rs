//! The SNGAN-style ResNet G and D: resampling ops (values, first- and second-order gradients),
//! shapes at 28/32/64 px, and tiny training runs that resume bit for bit.

use crate::common;

use common::{load, run};
use gannet::candle_core::{DType, Device, Tensor, Var};
use gannet::models::resnet::ResnetConfig;
use gannet::models::{self, ImageShape, ModelConfig};
use gannet::nn::Mode;
use gannet::ops::{avg_pool2x, upsample2x};
use gannet::train::{PenaltyConfig, PenaltyKind, Quiet, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
}

fn ramp(shape: (usize, usize, usize, usize), k: f64) -> Tensor {
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    Tensor::from_vec((0..n).map(|i| (i as f64 * k).sin()).collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
}

#[test]
fn resampling_matches_candle_and_pool_undoes_upsample() {
    let x = ramp((2, 3, 4, 6), 0.37).to_dtype(DType::F32).unwrap();
    let up = upsample2x(&x).unwrap();
    assert_eq!(up.dims(), &[2, 3, 8, 12]);
    assert_eq!(max_diff(&up, &x.upsample_nearest2d(8, 12).unwrap()), 0.0);
    assert!(max_diff(&avg_pool2x(&up).unwrap(), &x) < 1e-7);
    let y = ramp((2, 3, 8, 6), 0.11).to_dtype(DType::F32).unwrap();
    assert!(max_diff(&avg_pool2x(&y).unwrap(), &y.avg_pool2d(2).unwrap()) < 1e-6);
    assert!(avg_pool2x(&ramp((1, 1, 5, 4), 0.1)).is_err());
}

#[test]
fn upsample_gradient_adds_to_other_uses_of_its_input() {
    // f(x) = sum(up(x) * w) + sum(x * v): df/dx = pool-sum of w + v. (candle's own
    // upsample_nearest2d backward overwrote the v part.)
    let x = Var::from_tensor(&ramp((1, 2, 2, 3), 0.3)).unwrap();
    let w = ramp((1, 2, 4, 6), 0.7);
    let v = ramp((1, 2, 2, 3), 1.3);
    let f = (upsample2x(x.as_tensor()).unwrap().mul(&w).unwrap().sum_all().unwrap() + x.as_tensor().mul(&v).unwrap().sum_all().unwrap()).unwrap();
    let g = f.backward().unwrap().get(x.as_tensor()).unwrap().clone();
    let expect = ((avg_pool2x(&w).unwrap() * 4.0).unwrap() + &v).unwrap();
    assert!(max_diff(&g, &expect) < 1e-12, "{}", max_diff(&g, &expect));
}

/// p(a) = ||grad_x D(x)||^2 for D(x) = sum(pool(tanh(up(x) * a)) * b): the R1 shape of
/// computation through both resampling ops; dp/da against central differences.
#[test]
fn second_order_gradients_pass_through_the_resampling() {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let x = ramp((2, 2, 3, 3), 0.41);
    let b = ramp((1, 2, 3, 3), 0.9);
    let penalty = |a: &Tensor| {
        let leaf = Var::from_tensor(&x).unwrap();
        let h = upsample2x(leaf.as_tensor()).unwrap().broadcast_mul(a).unwrap().tanh().unwrap();
        let d = avg_pool2x(&h).unwrap().broadcast_mul(&b).unwrap().sum_all().unwrap();
        let g = gannet::autodiff::grad_of(&d, leaf.as_tensor()).unwrap();
        g.sqr().unwrap().sum_all().unwrap()
    };
    let base = vec![0.8f64, -0.6];
    let a = Var::from_vec(base.clone(), (1, 2, 1, 1), &Device::Cpu).unwrap();
    let g = penalty(a.as_tensor()).backward().unwrap().get(a.as_tensor()).expect("reaches a").flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for i in 0..2 {
        let at = |d: f64| {
            let mut v = base.clone();
            v[i] += d;
            penalty(&Tensor::from_vec(v, (1, 2, 1, 1), &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap()
        };
        let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "d/da[{i}]: autodiff {} vs finite difference {fd}", g[i]);
    }
}

fn small() -> ResnetConfig {
    ResnetConfig { latent_dim: 8, g_channels: 4, d_channels: 4, spectral_norm: true }
}

#[test]
fn shapes_at_28_32_and_64_pixels() {
    let dev = Device::Cpu;
    for (channels, resolution, d_blocks) in [(1, 28, 3), (3, 32, 3), (3, 64, 4)] {
        let shape = ImageShape { channels, resolution };
        let gan = models::build(&ModelConfig::Resnet(small()), shape, 1, &dev).unwrap();
        let z = Tensor::randn(0f32, 1.0, (3, 8), &dev).unwrap();
        let img = gan.gen.forward(&z, None, Mode::Train).unwrap();
        assert_eq!(img.dims(), &[3, channels, resolution, resolution]);
        let logits = gan.disc.forward(&img, None, Mode::Train).unwrap();
        assert_eq!(logits.dims(), &[3]);
        let names: Vec<String> = gan.disc_params.all().into_iter().map(|(n, _)| n).collect();
        assert!(
            names.contains(&format!("block{}.conv2.sn_u", d_blocks - 1)) && !names.contains(&format!("block{d_blocks}.conv1.weight")),
            "{resolution}: {names:?}"
        );
        assert!(names.contains(&"head.sn_u".to_string()) && !names.iter().any(|n| n.contains("bn")));
        // The last D block keeps its size: identity shortcut.
        assert!(!names.contains(&format!("block{}.shortcut.weight", d_blocks - 1)));
        let gnames: Vec<String> = gan.gen_params.all().into_iter().map(|(n, _)| n).collect();
        let up_blocks = gnames.iter().filter(|n| n.ends_with("conv1.weight")).count();
        assert_eq!(up_blocks, if resolution == 28 { 2 } else { (resolution / 4).trailing_zeros() as usize });
    }
    let err = models::build(&ModelConfig::Resnet(small()), ImageShape { channels: 1, resolution: 30 }, 1, &dev).err().unwrap().to_string();
    assert!(err.contains("30x30"), "{err}");
    let off = ResnetConfig { spectral_norm: false, ..small() };
    let gan = models::build(&ModelConfig::Resnet(off), ImageShape { channels: 1, resolution: 28 }, 1, &dev).unwrap();
    assert!(!gan.disc_params.all().iter().any(|(n, _)| n.ends_with("sn_u")));
}

#[test]
fn resnet_config_parses_from_toml() {
    let cfg = TrainConfig::from_toml_str("[model]\narch = \"resnet\"\ng_channels = 16\n").unwrap();
    assert_eq!(cfg.model, ModelConfig::Resnet(ResnetConfig { g_channels: 16, ..Default::default() }));
    assert_eq!(cfg.model.name(), "resnet");
    assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml()).unwrap(), cfg);
}

fn tiny_config(dir: &Path, steps: u64) -> TrainConfig {
    let mut cfg = common::tiny_config(dir, steps, 4, 3);
    cfg.model = ModelConfig::Resnet(small());
    cfg.loss = gannet::loss::GanLoss::Hinge;
    cfg
}

/// A tiny ResNet run with R1 (second order through the blocks) and EMA trains and resumes bit
/// for bit.
#[test]
fn resnet_run_with_r1_trains_and_resumes_bit_for_bit() {
    gannet::autodiff::enable_second_order();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |d: &str, steps| {
        let mut c = tiny_config(&tmp.path().join(d), steps);
        c.loss = gannet::loss::GanLoss::NonSaturating;
        c.penalty = PenaltyConfig { kind: PenaltyKind::R1, weight: 1.0, every: 1, ..Default::default() };
        c
    };
    let full = run(cfg("full", 4));
    let half = run(cfg("half", 2));
    let mut resumed = Trainer::resume(&half.run_dir().latest_checkpoint(), |c| c.schedule.steps = 4).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let (a, b) = (load(&full), load(&resumed));
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (k, t) in &a.tensors {
        assert_eq!(max_diff(t, &b.tensors[k]), 0.0, "tensor {k} differs");
    }
    // It trained: every trainable weight moved from its initial value.
    let init = models::build(&a.config.model, a.image_shape, a.config.seed, &Device::Cpu).unwrap();
    for (prefix, store) in [("gen", &init.gen_params), ("disc", &init.disc_params)] {
        for (name, var) in store.trainable() {
            let k = format!("{prefix}.{name}");
            assert!(max_diff(var.as_tensor(), &a.tensors[&k]) > 0.0, "{k} did not change");
        }
    }
    let csv = std::fs::read_to_string(full.run_dir().metrics_csv()).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    // Sampling from the checkpoint works (EMA generator).
    let g = a.sampling_generator(&Device::Cpu).unwrap();
    let z = Tensor::zeros((2, 8), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(g.forward(&z, None, Mode::Eval).unwrap().dims(), &[2, 1, 28, 28]);
}

#[test]
fn resnet_with_wgan_gp_and_augmentation_runs() {
    gannet::autodiff::enable_second_order();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = tiny_config(tmp.path(), 2);
    c.loss = gannet::loss::GanLoss::Wasserstein;
    c.penalty = PenaltyConfig { kind: PenaltyKind::WganGp, weight: 10.0, every: 1, ..Default::default() };
    c.schedule.d_steps_per_g = 2;
    c.augment = gannet::train::AugmentPolicy::ALL;
    let t = run(c);
    assert_eq!(t.step(), 2);
}

/// Times GanState::step (batch 64, 28x28x1, non-saturating loss, no EMA) for DCGAN and ResNet
/// widths, with and without DiffAugment: `cargo test -p gannet --test second_order resnet::time_ -- --ignored
/// --nocapture`. Configurations alternate within each round; medians over the rounds.
#[test]
#[ignore]
fn time_train_steps() {
    use gannet::models::dcgan::DcganConfig;
    use gannet::train::{AugmentPolicy, GanState, RealBatch};
    let dev = Device::Cpu;
    let shape = ImageShape { channels: 1, resolution: 28 };
    let mk = |model: ModelConfig, augment: AugmentPolicy| {
        let cfg = TrainConfig { model, augment, ema_decay: 0.0, ..TrainConfig::default() };
        GanState::new(&cfg, shape, &dev).unwrap()
    };
    let dc = |c| ModelConfig::Dcgan(DcganConfig { g_channels: c, d_channels: c, ..Default::default() });
    let rn = |c| ModelConfig::Resnet(ResnetConfig { g_channels: c, d_channels: c, ..Default::default() });
    let mut states = [
        ("dcgan-32", mk(dc(32), AugmentPolicy::NONE)),
        ("dcgan-32 + augment", mk(dc(32), AugmentPolicy::ALL)),
        ("resnet-32", mk(rn(32), AugmentPolicy::NONE)),
        ("resnet-64", mk(rn(64), AugmentPolicy::NONE)),
    ];
    let rounds = 7;
    let mut times = vec![Vec::new(); states.len()];
    for round in 0..rounds + 1 {
        for (i, (_, st)) in states.iter_mut().enumerate() {
            let images = Tensor::rand(-1f32, 1.0, (64, 1, 28, 28), &dev).unwrap();
            let mut next = Some(RealBatch { images, labels: None });
            let t = std::time::Instant::now();
            st.step(round, |_| Ok(next.take().unwrap())).unwrap();
            if round > 0 {
                times[i].push(t.elapsed().as_secs_f64());
            }
        }
    }
    for ((name, _), mut t) in states.iter().zip(times) {
        t.sort_by(|a, b| a.total_cmp(b));
        println!("{name:<20} median {:7.1} ms/step  min {:7.1} ms  ({} rounds)", t[t.len() / 2] * 1e3, t[0] * 1e3, t.len());
    }
}
