//! Progressive GAN: the growth schedule, shapes at every stage, continuity of the fade-in,
//! pixel norm, minibatch stddev, equalised learning rate, the drift term, WGAN-GP through its D,
//! and training through growth boundaries with exact resume.

use crate::common;

use common::{load, run};
use gannet::candle_core::{DType, Device, Tensor, Var};
use gannet::models::progan::{Growth, ProganConfig, ProganDiscriminator, ProganGenerator};
use gannet::models::{self, Discriminator, Generator, ImageShape, ModelConfig};
use gannet::nn::equalized::{EqConv2d, EqLinear, EqOptions};
use gannet::nn::{minibatch_std, minibatch_stddev, pixel_norm, Mode, ParamStore};
use gannet::optim::AdamConfig;
use gannet::saved::SavedRun;
use gannet::train::penalty::{self, PenaltyKind};
use gannet::train::{presets, GanState, PenaltyConfig, Quiet, RealBatch, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

const SHAPE: ImageShape = ImageShape { channels: 1, resolution: 16 };

/// 16x16 images (stages 4, 8, 16), 8 -> 4 channels, an 8-d latent.
fn small(stable: u64, fade: u64) -> ProganConfig {
    ProganConfig { latent_dim: 8, max_channels: 8, min_channels: 4, stable_steps: stable, fade_steps: fade, ..Default::default() }
}

fn nets(cfg: &ProganConfig) -> (ProganGenerator, ProganDiscriminator) {
    let dev = Device::Cpu;
    let g = ProganGenerator::new(&ParamStore::new(1, &dev).root(), cfg, SHAPE).unwrap();
    let d = ProganDiscriminator::new(&ParamStore::new(2, &dev).root(), cfg, SHAPE).unwrap();
    (g, d)
}

fn randn(seed: u64, shape: &[usize]) -> Tensor {
    let mut r = gannet::rng::rng(seed, gannet::rng::Stream::Latent, 0);
    gannet::rng::randn(&mut r, shape, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
}

fn max_abs(a: &Tensor) -> f64 {
    a.to_dtype(DType::F64).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
}

fn growth(stage: usize, alpha: f64) -> Growth {
    Growth { stage, alpha }
}

#[test]
fn growth_schedule_at_its_boundaries() {
    let s = small(2, 4).schedule(16).unwrap();
    assert_eq!((s.first_stage, s.last_stage), (0, 2));
    let want = [
        (0, growth(0, 1.0)),
        (1, growth(0, 1.0)),
        (2, growth(1, 0.0)),
        (3, growth(1, 0.25)),
        (5, growth(1, 0.75)),
        (6, growth(1, 1.0)),
        (7, growth(1, 1.0)),
        (8, growth(2, 0.0)),
        (11, growth(2, 0.75)),
        (12, growth(2, 1.0)),
        (1_000_000, growth(2, 1.0)),
        (u64::MAX, growth(2, 1.0)),
    ];
    for (step, g) in want {
        assert_eq!(s.growth_at(step), g, "step {step}");
    }
    assert_eq!(s.fully_grown_at(), 12);
    assert_eq!(s.growth_at(8).resolution(), 16);
    // Starting at 8x8 skips the 4x4 stage.
    let s8 = ProganConfig { start_resolution: 8, ..small(2, 4) }.schedule(16).unwrap();
    assert_eq!((s8.growth_at(0), s8.growth_at(1), s8.growth_at(2), s8.growth_at(6)), (growth(1, 1.0), growth(1, 1.0), growth(2, 0.0), growth(2, 1.0)));
    assert_eq!(s8.fully_grown_at(), 6);
    // Without stable or fade steps the networks jump straight to the full size.
    assert_eq!(small(0, 0).schedule(16).unwrap().growth_at(0), growth(2, 1.0));
}

#[test]
fn bad_resolutions_and_settings_are_rejected_by_name() {
    let dev = Device::Cpu;
    let build = |cfg: ProganConfig, r: usize| {
        models::build(&ModelConfig::Progan(cfg), ImageShape { channels: 1, resolution: r }, 1, &dev).err().expect("must be refused").to_string()
    };
    for r in [4, 12, 28] {
        let err = build(small(1, 1), r);
        assert!(err.contains("data.resolution") && err.contains(&format!("{r}x{r}")), "{err}");
    }
    let err = build(ProganConfig { start_resolution: 32, ..small(1, 1) }, 16);
    assert!(err.contains("model.start_resolution"), "{err}");
    let err = build(ProganConfig { start_resolution: 6, ..small(1, 1) }, 16);
    assert!(err.contains("model.start_resolution"), "{err}");
    let err = build(ProganConfig { min_channels: 16, ..small(1, 1) }, 16);
    assert!(err.contains("model.min_channels"), "{err}");
    let mut m = ModelConfig::Progan(small(1, 1));
    let err = m.set_conditioning(gannet::models::Conditioning::Projection).unwrap_err().to_string();
    assert!(err.contains("progan") && err.contains("conditional"), "{err}");
    let cfg = TrainConfig::from_toml_str("[model]\narch = \"progan\"\nfade_steps = 7\n").unwrap();
    assert_eq!(cfg.model, ModelConfig::Progan(ProganConfig { fade_steps: 7, ..Default::default() }));
    assert!(TrainConfig::from_toml_str("[model]\narch = \"progan\"\nfade_step = 7\n").is_err());
}

#[test]
fn channels_halve_after_8x8_down_to_the_minimum() {
    let c = ProganConfig { max_channels: 64, min_channels: 16, ..Default::default() };
    assert_eq!((0..6).map(|k| c.channels(k)).collect::<Vec<_>>(), [64, 64, 32, 16, 16, 16]);
}

#[test]
fn g_is_always_full_resolution_and_d_gives_one_logit_at_every_stage() {
    let cfg = small(1, 2);
    let (g, d) = nets(&cfg);
    // Never told a step: fully grown.
    assert_eq!((g.growth(), d.growth()), (growth(2, 1.0), growth(2, 1.0)));
    let z = randn(3, &[3, 8]);
    let x = randn(4, &[3, 1, 16, 16]);
    let mut seen = Vec::new();
    for step in 0..8 {
        g.set_step(step);
        d.set_step(step);
        assert_eq!(g.growth(), d.growth());
        seen.push(g.growth());
        let img = g.forward(&z, None, Mode::Train).unwrap();
        assert_eq!(img.dims(), [3, 1, 16, 16], "step {step}");
        assert_eq!(d.forward(&img, None, Mode::Train).unwrap().dims(), [3], "step {step}");
        assert_eq!(d.forward(&x, None, Mode::Train).unwrap().dims(), [3], "step {step}");
    }
    assert!(seen.contains(&growth(1, 0.5)) && seen.contains(&growth(2, 0.5)) && seen.contains(&growth(2, 1.0)), "{seen:?}");
    // At 4x4, G's image is made of 4x4 blocks of equal pixels.
    g.set_step(0);
    let img = g.forward(&z, None, Mode::Eval).unwrap();
    let blocks =
        gannet::ops::upsample2x(&gannet::ops::upsample2x(&gannet::ops::avg_pool2x(&gannet::ops::avg_pool2x(&img).unwrap()).unwrap()).unwrap()).unwrap();
    assert!(max_diff(&img, &blocks) < 1e-6);
    // D refuses images of another size.
    assert!(d.forward(&randn(5, &[2, 1, 8, 8]), None, Mode::Train).unwrap_err().to_string().contains("16"));
}

#[test]
fn every_stage_has_all_its_layers_from_the_start() {
    let gan = models::build(&ModelConfig::Progan(small(1, 1)), SHAPE, 1, &Device::Cpu).unwrap();
    let names = |s: &ParamStore| s.all().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    let g = names(&gan.gen_params);
    for n in ["fc.weight", "conv0.weight", "block1.conv1.weight", "block2.conv2.bias", "to_rgb0.weight", "to_rgb1.weight", "to_rgb2.weight"] {
        assert!(g.contains(&n.to_string()), "G lacks {n}: {g:?}");
    }
    let d = names(&gan.disc_params);
    for n in ["from_rgb0.weight", "from_rgb2.weight", "block1.conv1.weight", "block2.conv2.weight", "final.conv.weight", "final.fc.weight", "final.out.weight"]
    {
        assert!(d.contains(&n.to_string()), "D lacks {n}: {d:?}");
    }
    // Minibatch stddev adds one input channel to D's last conv (8 channels at 4x4).
    let w = gan.disc_params.tensors()["final.conv.weight"].clone();
    assert_eq!(w.dims(), [8, 9, 3, 3]);
}

/// G at the first step of stage k's fade-in makes exactly the image of fully faded-in stage k-1,
/// upsampled; and mid-fade it is the blend of the two ends.
#[test]
fn g_fade_in_starts_where_the_previous_stage_ended_and_blends_linearly() {
    let cfg = small(2, 4);
    let s = cfg.schedule(16).unwrap();
    let (g, _) = nets(&cfg);
    let z = randn(7, &[4, 8]);
    let at = |step: u64| {
        g.set_step(step);
        g.forward(&z, None, Mode::Eval).unwrap()
    };
    for (fade_start, stage) in [(2u64, 1usize), (8, 2)] {
        assert_eq!((s.growth_at(fade_start), s.growth_at(fade_start - 1)), (growth(stage, 0.0), growth(stage - 1, 1.0)));
        let (before, start) = (at(fade_start - 1), at(fade_start));
        assert_eq!(max_diff(&before, &start), 0.0, "stage {stage}");
        let (quarter, end) = (at(fade_start + 1), at(fade_start + 4));
        assert_eq!(s.growth_at(fade_start + 1).alpha, 0.25);
        assert!(max_diff(&start, &end) > 1e-3, "stage {stage}: the new layers must change the image");
        let blend = ((&start * 0.75).unwrap() + (&end * 0.25).unwrap()).unwrap();
        assert!(max_diff(&quarter, &blend) < 1e-5, "stage {stage}: {}", max_diff(&quarter, &blend));
    }
}

/// D's logits at the first step of a fade-in are those of the previous stage, and move away from
/// them gradually.
#[test]
fn d_fade_in_starts_where_the_previous_stage_ended() {
    let cfg = small(2, 1000);
    let (_, d) = nets(&cfg);
    let x = randn(9, &[4, 1, 16, 16]);
    let at = |step: u64| {
        d.set_step(step);
        d.forward(&x, None, Mode::Train).unwrap()
    };
    for (fade_start, stage) in [(2u64, 1usize), (1004, 2)] {
        let (before, start) = (at(fade_start - 1), at(fade_start));
        assert_eq!(d.growth(), growth(stage, 0.0));
        assert!(max_diff(&before, &start) < 1e-6, "stage {stage}: {}", max_diff(&before, &start));
        let (tiny, end) = (at(fade_start + 1), at(fade_start + 1000));
        assert_eq!(d.growth(), growth(stage, 1.0));
        let jump = max_diff(&start, &end);
        assert!(jump > 1e-4, "stage {stage}: the new layers must change the logits");
        // alpha = 0.001: at most about a thousandth of the way (D is smooth away from kinks).
        assert!(max_diff(&start, &tiny) < 0.01 * jump, "stage {stage}: {} vs {jump}", max_diff(&start, &tiny));
    }
}

#[test]
fn pixel_norm_on_hand_computed_inputs() {
    let dev = Device::Cpu;
    // One pixel with features (3, 4): rms = sqrt(12.5).
    let x = Tensor::new(&[3f32, 4.0], &dev).unwrap().reshape((1, 2, 1, 1)).unwrap();
    let y = pixel_norm(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let r = 12.5f32.sqrt();
    assert!((y[0] - 3.0 / r).abs() < 1e-6 && (y[1] - 4.0 / r).abs() < 1e-6, "{y:?}");
    // Per pixel and per sample: [N, C] rows are normalised separately.
    let z = Tensor::new(&[[2f32, -2.0], [0.5, 0.5]], &dev).unwrap();
    let y = pixel_norm(&z).unwrap().to_vec2::<f32>().unwrap();
    assert!((y[0][0] - 1.0).abs() < 1e-6 && (y[0][1] + 1.0).abs() < 1e-6 && (y[1][0] - 1.0).abs() < 1e-6, "{y:?}");
    // Two pixels of one image, each its own rms.
    let x = Tensor::new(&[1f32, 6.0, 1.0, 8.0], &dev).unwrap().reshape((1, 2, 1, 2)).unwrap();
    let y = pixel_norm(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let want = [1.0 / 1f32.sqrt(), 6.0 / 50f32.sqrt(), 1.0 / 1f32.sqrt(), 8.0 / 50f32.sqrt()];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{y:?} vs {want:?}");
    }
}

#[test]
fn minibatch_stddev_on_hand_computed_inputs() {
    assert_eq!([(4, 8), (4, 4), (4, 6), (4, 5), (4, 3), (4, 1), (2, 4)].map(|(g, n)| minibatch_std::group_size(g, n)), [4, 4, 3, 1, 3, 1, 2]);
    let dev = Device::Cpu;
    // N = 4, one 1x1 feature: groups of 2 are images {0, 1} and {2, 3} (image n in group n / 2).
    let x = Tensor::new(&[0f32, 10.0, 2.0, 16.0], &dev).unwrap().reshape((4, 1, 1, 1)).unwrap();
    let y = minibatch_stddev(&x, 2).unwrap();
    assert_eq!(y.dims(), [4, 2, 1, 1]);
    let v = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    // Std of {0, 10} is 5, of {2, 16} is 7 (biased); the input channel is kept.
    let want = [0.0, 5.0, 10.0, 5.0, 2.0, 7.0, 16.0, 7.0];
    for (a, b) in v.iter().zip(want) {
        assert!((a - b).abs() < 1e-4, "{v:?} vs {want:?}");
    }
    // One group of 4 over a 2-channel, 1x2 image: the std of each feature and pixel, averaged,
    // fills the extra map of every image.
    let x = Tensor::arange(0f32, 16.0, &dev).unwrap().reshape((4, 2, 1, 2)).unwrap();
    let y = minibatch_stddev(&x, 4).unwrap();
    assert_eq!(y.dims(), [4, 3, 1, 2]);
    // Every feature steps by 4 from image to image: values a, a+4, a+8, a+12, std = 4 sqrt(1.25).
    let extra = y.narrow(1, 2, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let s = 4.0 * 1.25f32.sqrt();
    assert!(extra.iter().all(|e| (e - s).abs() < 1e-4), "{extra:?} vs {s}");
}

#[test]
fn equalised_layers_scale_n01_weights_at_run_time() {
    let dev = Device::Cpu;
    let store = ParamStore::new(3, &dev);
    let lin = EqLinear::new(&store.root().sub("lin"), 50, 40, EqOptions::gain(2f64.sqrt())).unwrap();
    assert!((lin.scale() - (2.0f64 / 50.0).sqrt()).abs() < 1e-12);
    // Stored weights are N(0, 1): 2000 draws.
    let w = lin.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    let std = (w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt();
    assert!(mean.abs() < 0.1 && (std - 1.0).abs() < 0.1, "mean {mean} std {std}");
    // The forward pass uses scale * W, and the bias starts at 0.
    let x = randn(11, &[3, 50]);
    let want = x.matmul(&(lin.weight() * lin.scale()).unwrap().t().unwrap()).unwrap();
    assert!(max_diff(&lin.forward(&x).unwrap(), &want) < 1e-5);
    assert_eq!(max_abs(&store.tensors()["lin.bias"]), 0.0);

    let conv = EqConv2d::new(&store.root().sub("conv"), 3, 5, 3, EqOptions::gain(1.0)).unwrap();
    assert!((conv.scale() - 1.0 / 27f64.sqrt()).abs() < 1e-12);
    let x = randn(12, &[2, 3, 6, 6]);
    let want = gannet::ops::conv2d(&x, &(conv.weight() * conv.scale()).unwrap(), gannet::ops::ConvSpec::new(1, 1)).unwrap();
    let got = conv.forward(&x).unwrap();
    assert_eq!(got.dims(), [2, 5, 6, 6]);
    assert!(max_diff(&got, &want) < 1e-5);

    // A learning-rate multiplier: stored N(0, 1/lr_mul) weights and bias/lr_mul, scaled back at
    // run time, so the initial layer is the same but Adam moves it lr_mul times as fast.
    let slow = EqLinear::new(&store.root().sub("slow"), 16, 8, EqOptions { gain: 1.0, lr_mul: 0.01, bias: Some(0.5) }).unwrap();
    assert!((slow.scale() - 0.01 / 4.0).abs() < 1e-12);
    assert!((store.tensors()["slow.bias"].to_vec1::<f32>().unwrap()[0] - 50.0).abs() < 1e-4);
    let y = slow.forward(&Tensor::zeros((1, 16), DType::F32, &dev).unwrap()).unwrap();
    assert!(y.to_vec2::<f32>().unwrap()[0].iter().all(|v| (v - 0.5).abs() < 1e-6));
    assert!(EqConv2d::new(&store.root().sub("even"), 3, 5, 2, EqOptions::default()).is_err());
}

#[test]
fn the_drift_term_is_the_mean_squared_real_logit_and_is_validated() {
    let l = Tensor::new(&[1f32, -2.0, 3.0], &Device::Cpu).unwrap();
    assert!((penalty::drift(&l).unwrap().to_scalar::<f32>().unwrap() - 14.0 / 3.0).abs() < 1e-6);
    let cfg = TrainConfig::from_toml_str("[penalty]\nkind = \"wgan-gp\"\ndrift = 0.001\n").unwrap();
    assert_eq!(cfg.penalty.drift, 0.001);
    cfg.validate().unwrap();
    assert_eq!(TrainConfig::default().penalty.drift, 0.0);
    let mut bad = cfg.clone();
    bad.penalty.drift = -1.0;
    assert!(bad.validate().unwrap_err().to_string().contains("penalty.drift"));
}

/// A tiny ProGAN run on 16x16 digits: WGAN-GP with drift, Adam(1e-3, 0, 0.99), EMA.
fn progan_run(dir: &Path, steps: u64) -> TrainConfig {
    let mut c = common::tiny_config(dir, steps, 4, 3);
    c.model = ModelConfig::Progan(small(2, 3));
    c.data.resolution = Some(16);
    c.loss = gannet::loss::GanLoss::Wasserstein;
    c.penalty = PenaltyConfig { kind: PenaltyKind::WganGp, weight: 10.0, drift: 0.001, ..Default::default() };
    let adam = AdamConfig { lr: 1e-3, beta1: 0.0, beta2: 0.99, ..Default::default() };
    c.optim.gen = adam;
    c.optim.disc = adam;
    c
}

#[test]
fn the_drift_term_changes_d() {
    gannet::autodiff::enable_second_order();
    let dev = Device::Cpu;
    let step_d = |drift: f64| {
        let mut c = progan_run(Path::new("unused"), 1);
        c.penalty.drift = drift;
        let mut s = GanState::new(&c, SHAPE, &dev).unwrap();
        s.step(0, |_| Ok(RealBatch { images: randn(20, &[4, 1, 16, 16]).tanh().unwrap(), labels: None })).unwrap();
        s.gan.disc_params.tensors()["final.out.weight"].clone()
    };
    assert!(max_diff(&step_d(0.0), &step_d(1.0)) > 0.0, "drift must reach D's weights");
}

fn assert_same(a: &SavedRun, b: &SavedRun) {
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (k, t) in &a.tensors {
        assert_eq!(max_diff(t, &b.tensors[k]), 0.0, "tensor {k} differs");
    }
}

/// Through both growth boundaries (stable 2, fade 3: stage 1 fades in at steps 2-4, stage 2 at
/// 7-9): finite losses, the growing layers trained when their stage came; and a run stopped in
/// the middle of stage 2's fade-in and resumed equals the unbroken run bit for bit.
#[test]
fn training_grows_through_every_stage_and_resumes_mid_fade_bit_for_bit() {
    gannet::autodiff::enable_second_order();
    let tmp = tempfile::tempdir().unwrap();
    let full = run(progan_run(&tmp.path().join("full"), 11));
    let csv = std::fs::read_to_string(full.run_dir().metrics_csv()).unwrap();
    assert_eq!(csv.lines().count(), 1 + 11);
    for line in csv.lines().skip(1) {
        assert!(line.split(',').take(5).all(|v| v.parse::<f64>().unwrap().is_finite()), "{line}");
    }
    let saved = load(&full);
    assert_eq!(saved.step, 11);
    // The networks loaded for sampling are the fully grown ones of step 11.
    let g = saved.sampling_generator(&Device::Cpu).unwrap();
    assert_eq!(g.forward(&randn(1, &[2, 8]), None, Mode::Eval).unwrap().dims(), [2, 1, 16, 16]);
    // The last stage's layers were trained (G's optimiser counted steps for them).
    assert!(full.state().opt_gen.param_steps("to_rgb2.weight").unwrap() >= 3);
    assert!(full.state().opt_gen.param_steps("to_rgb0.weight").unwrap() < 11);
    let adam_t = |s: &SavedRun, k: &str| s.tensors[k].to_scalar::<f64>().unwrap();
    // Stage 2's toRGB got gradients at steps 8, 9 (fade) and 10 (stable) only: at step 7 its
    // alpha is 0 and the new layers are not run.
    assert_eq!(adam_t(&saved, "opt_gen.to_rgb2.weight.step"), 3.0);

    let half = run(progan_run(&tmp.path().join("half"), 8));
    assert_eq!(half.state().gan.gen.as_ref().image_shape(), SHAPE);
    let mut resumed = Trainer::resume(&half.run_dir().latest_checkpoint(), |c| c.schedule.steps = 11).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_same(&saved, &load(&resumed));
}

/// WGAN-GP differentiates D's input gradient again with respect to D's weights, back through the
/// minibatch stddev, the average pooling and both fade-in paths: autodiff agrees with finite
/// differences on the output layer (which no kink follows), and reaches every layer in use.
#[test]
fn wgan_gp_through_the_progan_d_matches_finite_differences() {
    gannet::autodiff::enable_second_order();
    gannet::autodiff::ensure_second_order().unwrap();
    let cfg = small(2, 4);
    let store = ParamStore::new(5, &Device::Cpu);
    let d = ProganDiscriminator::new(&store.root(), &cfg, SHAPE).unwrap();
    d.set_step(10); // stage 2, alpha 0.5: both paths of the fade-in are in use.
    assert_eq!(d.growth(), growth(2, 0.5));
    let real = randn(30, &[4, 1, 16, 16]).tanh().unwrap();
    let fake = randn(31, &[4, 1, 16, 16]).tanh().unwrap();
    let eps = Tensor::new(&[0.2f32, 0.5, 0.7, 0.9], &Device::Cpu).unwrap();
    let value = || penalty::wgan_gp(&|x| d.forward(x, None, Mode::Train), &real, &fake, &eps).unwrap();
    let p = value();
    assert!(p.to_scalar::<f32>().unwrap().is_finite());
    let grads = p.backward().unwrap();
    let vars: std::collections::BTreeMap<String, Var> = store.trainable().into_iter().collect();
    for name in ["from_rgb2.weight", "from_rgb1.weight", "block2.conv1.weight", "block1.conv2.weight", "final.conv.weight", "final.fc.weight"] {
        let g = grads.get(vars[name].as_tensor()).unwrap_or_else(|| panic!("no penalty gradient for {name}"));
        assert!(max_abs(g) > 0.0, "zero penalty gradient for {name}");
    }
    assert!(grads.get(vars["from_rgb0.weight"].as_tensor()).is_none(), "the 4x4 fromRGB is not in use at stage 2");
    let w = &vars["final.out.weight"];
    let g = grads.get(w.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let base = w.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let h = 1e-2f32;
    for i in 0..base.len() {
        let at = |delta: f32| {
            let mut v = base.clone();
            v[i] += delta;
            w.set(&Tensor::from_vec(v, w.dims(), &Device::Cpu).unwrap()).unwrap();
            value().to_scalar::<f32>().unwrap() as f64
        };
        let fd = (at(h) - at(-h)) / (2.0 * h as f64);
        w.set(&Tensor::from_vec(base.clone(), w.dims(), &Device::Cpu).unwrap()).unwrap();
        assert!((fd - g[i] as f64).abs() < 2e-2 * (1.0 + fd.abs()), "d/dw[{i}]: autodiff {} vs finite difference {fd}", g[i]);
    }
}

#[test]
fn the_progan_preset_grows_to_32x32_within_its_run() {
    let cfg = presets::find("progan-fashion").unwrap().config().unwrap();
    cfg.validate().unwrap();
    let ModelConfig::Progan(m) = &cfg.model else { panic!("{:?}", cfg.model) };
    let s = m.schedule(32).unwrap();
    assert_eq!(s.last_stage, 3);
    let grown = s.fully_grown_at();
    assert!((1000..=4000).contains(&grown) && grown < cfg.schedule.steps, "fully grown at {grown} of {}", cfg.schedule.steps);
    assert_eq!((cfg.penalty.kind, cfg.penalty.weight, cfg.penalty.drift), (PenaltyKind::WganGp, 10.0, 0.001));
    assert_eq!((cfg.optim.disc.beta1, cfg.optim.disc.beta2, cfg.optim.gen.lr), (0.0, 0.99, 1e-3));
    models::build(&cfg.model, ImageShape { channels: 1, resolution: 32 }, 0, &Device::Cpu).unwrap();
}
