//! Image-to-image translation: paired data and the held-out split, pixel shuffle, instance norm,
//! the networks' shapes, L1/PSNR/SSIM against hand-computed values, and tiny pix2pix,
//! super-resolution and CycleGAN runs (learning, exact resume).

use gannet::candle_core::{DType, Device, Tensor, Var};
use gannet::data::{load_paired, load_unpaired, paired, Channels, Split};
use gannet::metrics::{l1_per_image, psnr_per_image, ssim_per_image};
use gannet::models::patchgan::{PatchGan, PatchGanConfig};
use gannet::models::resnet_translator::{ResnetTranslator, ResnetTranslatorConfig, Upsample};
use gannet::models::srgan::{SrConfig, SrGenerator};
use gannet::models::unet::{UnetConfig, UnetGenerator};
use gannet::models::{ImageShape, Translator};
use gannet::nn::{InstanceNorm, ParamStore};
use gannet::ops::{pixel_shuffle, pixel_unshuffle};
use gannet::saved::{Direction, SavedI2i};
use gannet::train::i2i::{eval, I2iConfig, I2iTrainer, Task};
use gannet::train::Quiet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

const CPU: Device = Device::Cpu;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    let mut r = gannet::rng::rng(seed, gannet::rng::Stream::Sample, 0);
    gannet::rng::randn(&mut r, shape, &CPU).unwrap()
}

fn vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Writes an RGB PNG of `size` x `size` from a function of (x, y, channel).
fn png(path: &Path, size: u32, f: impl Fn(u32, u32, usize) -> u8) {
    let img = image::RgbImage::from_fn(size, size, |x, y| image::Rgb([f(x, y, 0), f(x, y, 1), f(x, y, 2)]));
    img.save(path).unwrap();
}

/// Paired folders a/ and b/ of `n` 16x16 images: A is a coloured blob at a place that depends on
/// the image, B the same blob in other colours (a layout-preserving translation).
fn paired_folders(root: &Path, n: usize) {
    for d in ["a", "b"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for i in 0..n {
        let (cx, cy, r) = ((3 + i * 5 % 10) as i32, (3 + i * 7 % 10) as i32, 3 + (i % 3) as i32);
        let inside = move |x: u32, y: u32| (x as i32 - cx).pow(2) + (y as i32 - cy).pow(2) <= r * r;
        let name = format!("img{i:03}.png");
        png(&root.join("a").join(&name), 16, |x, y, c| if inside(x, y) { [220, 40, 40][c] } else { 255 });
        png(&root.join("b").join(&name), 16, |x, y, c| if inside(x, y) { [30, 60, 200][c] } else { 240 });
    }
}

fn tiny(task: Task, root: &Path, out: &str, steps: u64) -> I2iConfig {
    let mut cfg = I2iConfig::for_task(task);
    cfg.data.a = root.join("a").display().to_string();
    cfg.data.b = Some(root.join("b").display().to_string());
    cfg.data.resolution = 16;
    cfg.model.g_channels = 4;
    cfg.model.g_blocks = 1;
    cfg.model.d_channels = 4;
    cfg.model.d_layers = 1;
    cfg.schedule.steps = steps;
    cfg.schedule.batch_size = 4;
    cfg.schedule.pool_size = 6;
    cfg.schedule.lr_decay_start = 3;
    cfg.schedule.lr_decay_steps = 20;
    cfg.optim.gen.lr = 2e-3;
    cfg.optim.disc.lr = 2e-3;
    cfg.output.dir = root.join(out);
    cfg.output.sample_every = 5;
    cfg.output.checkpoint_every = 5;
    cfg.output.log_every = 1;
    cfg.output.sample_count = 4;
    cfg
}

fn train(cfg: I2iConfig) -> I2iTrainer {
    let mut t = I2iTrainer::new(cfg).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    t
}

// ---------------------------------------------------------------- data

#[test]
fn pairing_lists_the_unmatched_names_of_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 4);
    std::fs::rename(tmp.path().join("a/img001.png"), tmp.path().join("a/only-in-a.png")).unwrap();
    png(&tmp.path().join("b/only-in-b.png"), 16, |_, _, _| 0);
    let e = paired::pair_files(&tmp.path().join("a"), &tmp.path().join("b")).unwrap_err().to_string();
    assert!(e.contains("only-in-a") && e.contains("only-in-b") && e.contains("img001"), "{e}");
    assert!(e.contains(&tmp.path().join("a").display().to_string()), "the error names the folder: {e}");
    // The same stem with another extension pairs.
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 3);
    let jpg = tmp.path().join("b/img000.jpg");
    image::open(tmp.path().join("b/img000.png")).unwrap().save(&jpg).unwrap();
    std::fs::remove_file(tmp.path().join("b/img000.png")).unwrap();
    assert_eq!(paired::pair_files(&tmp.path().join("a"), &tmp.path().join("b")).unwrap().len(), 3);
}

#[test]
fn held_out_split_is_deterministic_disjoint_and_about_a_tenth() {
    let names: Vec<String> = (0..5000).map(|i| format!("emoji_{i:04x}")).collect();
    let held: Vec<&String> = names.iter().filter(|n| paired::is_held_out(n)).collect();
    assert!((400..600).contains(&held.len()), "{} of 5000 held out", held.len());
    for n in &names {
        assert_ne!(Split::Train.contains(n), Split::HeldOut.contains(n));
        assert!(Split::All.contains(n));
    }
    // Fixed forever: the split does not depend on the platform or the run.
    assert_eq!(held.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>(), ["emoji_0002", "emoji_0008", "emoji_000b"]);

    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 60);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let train = load_paired(&a, &b, Split::Train, 16, Channels::Rgb).unwrap();
    let held = load_paired(&a, &b, Split::HeldOut, 16, Channels::Rgb).unwrap();
    let again = load_paired(&a, &b, Split::HeldOut, 16, Channels::Rgb).unwrap();
    assert_eq!(held.names, again.names);
    assert_eq!(held.a.images_u8(), again.a.images_u8());
    assert_eq!(train.len() + held.len(), 60);
    assert!(held.names.iter().all(|n| !train.names.contains(n)));
    assert!(!held.is_empty());
    // Unpaired loading of one folder splits the same way.
    let (_, names) = load_unpaired(&a, Split::HeldOut, 16, Channels::Rgb).unwrap();
    assert_eq!(names, held.names);
    // The stacked dataset holds A's channels then B's.
    let s = train.stacked().unwrap();
    assert_eq!(s.channels(), 6);
    assert_eq!(&s.image_u8(0)[..768], train.a.image_u8(0));
    assert_eq!(&s.image_u8(0)[768..], train.b.image_u8(0));
}

// ---------------------------------------------------------------- ops and layers

#[test]
fn pixel_shuffle_matches_the_definition_and_its_gradient_is_the_inverse() {
    let (n, c, r, h, w) = (2, 3, 2, 3, 4);
    let x = randn(&[n, c * r * r, h, w], 1);
    let y = pixel_shuffle(&x, r).unwrap();
    assert_eq!(y.dims(), &[n, c, h * r, w * r]);
    let (xv, yv) = (vec(&x), vec(&y));
    for b in 0..n {
        for ch in 0..c {
            for i in 0..h * r {
                for j in 0..w * r {
                    let src = ((b * c * r * r + ch * r * r + (i % r) * r + j % r) * h + i / r) * w + j / r;
                    let dst = ((b * c + ch) * h * r + i) * w * r + j;
                    assert_eq!(yv[dst], xv[src]);
                }
            }
        }
    }
    assert_eq!(vec(&pixel_unshuffle(&y, r).unwrap()), xv);
    // d/dx sum(weights * shuffle(x)) = unshuffle(weights).
    let v = Var::from_tensor(&x).unwrap();
    let wts = randn(&[n, c, h * r, w * r], 2);
    let loss = (pixel_shuffle(v.as_tensor(), r).unwrap() * &wts).unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    assert_eq!(vec(g.get(v.as_tensor()).unwrap()), vec(&pixel_unshuffle(&wts, r).unwrap()));
    assert!(pixel_shuffle(&randn(&[1, 3, 2, 2], 3), 2).is_err());
}

#[test]
fn instance_norm_matches_a_plain_reference() {
    let store = ParamStore::new(0, &CPU);
    let norm = InstanceNorm::new(&store.root().sub("n"), 3, true).unwrap();
    let x = (randn(&[2, 3, 5, 4], 4) * 3.0).unwrap().affine(1.0, 2.0).unwrap();
    let y = vec(&norm.forward(&x).unwrap());
    // The reference: each of the 6 (image, channel) planes of 20 pixels by its own mean and
    // biased variance.
    let xv: Vec<f64> = vec(&x).iter().map(|&v| v as f64).collect();
    let want: Vec<f64> = xv
        .chunks(20)
        .flat_map(|p| {
            let mean = p.iter().sum::<f64>() / 20.0;
            let var = p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 20.0;
            p.iter().map(move |v| (v - mean) / (var + 1e-5).sqrt())
        })
        .collect();
    for (i, w) in want.iter().enumerate() {
        assert!((y[i] as f64 - w).abs() < 1e-4, "plane {} pixel {}", i / 20, i % 20);
    }
    // The fused leaky ReLU (no affine parameters): the same reference through the activation.
    let plain = InstanceNorm::new(&store.root().sub("plain"), 3, false).unwrap();
    let leaky = vec(&plain.forward_act(&x, Some(0.2)).unwrap());
    for (i, &t) in want.iter().enumerate() {
        let w = if t > 0.0 { t } else { 0.2 * t };
        assert!((leaky[i] as f64 - w).abs() < 1e-4, "leaky: plane {} pixel {}", i / 20, i % 20);
    }
    // Gradients reach the input and the affine parameters.
    let v = Var::from_tensor(&x).unwrap();
    let g = (norm.forward(v.as_tensor()).unwrap() * randn(&[2, 3, 5, 4], 5)).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(g.get(v.as_tensor()).is_some());
    assert_eq!(store.trainable().iter().filter(|(_, p)| g.get(p.as_tensor()).is_some()).count(), 2);
    assert!(norm.forward(&randn(&[1, 3, 1, 1], 6)).is_err(), "one pixel cannot be normalised");
}

#[test]
fn network_shapes() {
    let store = ParamStore::new(0, &CPU);
    let p = store.root();
    let x = randn(&[2, 3, 32, 32], 7);
    let unet = UnetGenerator::new(&p.sub("u"), &UnetConfig { channels: 4 }, ImageShape { channels: 3, resolution: 32 }, 3).unwrap();
    let y = unet.forward(&x).unwrap();
    assert_eq!(y.dims(), &[2, 3, 32, 32]);
    assert!(vec(&y).iter().all(|v| v.abs() <= 1.0));
    assert!(UnetGenerator::new(&p.sub("bad"), &UnetConfig { channels: 4 }, ImageShape { channels: 3, resolution: 24 }, 3).is_err());
    for (layers, side) in [(1, 14), (2, 6), (3, 2)] {
        let d = PatchGan::new(&p.sub(format!("d{layers}")), &PatchGanConfig { channels: 4, layers }, 6).unwrap();
        assert_eq!(d.forward_pair(&x, &x).unwrap().dims(), &[2, 1, side, side], "{layers} layers");
    }
    for upsample in [Upsample::Transposed, Upsample::Resize] {
        let q = p.sub(format!("{upsample:?}"));
        let res = ResnetTranslator::new(&q.sub("r"), &ResnetTranslatorConfig { channels: 4, blocks: 2, residual: false, upsample }, 3, 3).unwrap();
        assert_eq!(res.forward(&x).unwrap().dims(), &[2, 3, 32, 32]);
        // Residual: the untrained generator is the identity (up to the clamp at +-0.999), and it
        // refuses to change the number of channels.
        let cfg = ResnetTranslatorConfig { channels: 4, blocks: 2, residual: true, upsample };
        let img = x.tanh().unwrap();
        let out = ResnetTranslator::new(&q.sub("rr"), &cfg, 3, 3).unwrap().forward(&img).unwrap();
        let worst = vec(&out).iter().zip(vec(&img)).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1.1e-3, "{upsample:?}: residual generator at init differs from the identity by {worst}");
        assert!(ResnetTranslator::new(&q.sub("r13"), &cfg, 1, 3).is_err());
    }
    let sr = SrGenerator::new(&p.sub("s"), &SrConfig { channels: 4, blocks: 1, scale: 4 }, 3).unwrap();
    assert_eq!(sr.scale(), 4);
    assert_eq!(sr.forward(&randn(&[2, 3, 8, 8], 8)).unwrap().dims(), &[2, 3, 32, 32]);
}

/// Largest minus smallest value of the untrained generator's output over the middle of a
/// 128x128 constant image, far from the zero padding's reach: every layer before the upsampling
/// then sees a constant interior, so what varies there comes from the upsampling itself.
fn interior_spread(upsample: Upsample) -> f32 {
    let store = ParamStore::new(3, &CPU);
    let cfg = ResnetTranslatorConfig { channels: 4, blocks: 1, residual: false, upsample };
    let g = ResnetTranslator::new(&store.root(), &cfg, 1, 1).unwrap();
    let flat = Tensor::full(0.3f32, (1, 1, 128, 128), &CPU).unwrap();
    let mid = g.forward(&flat).unwrap().narrow(2, 48, 32).unwrap().narrow(3, 48, 32).unwrap();
    let v = vec(&mid);
    v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
}

#[test]
fn resize_upsampling_has_no_checkerboard_where_transposed_convs_do() {
    let (transposed, resize) = (interior_spread(Upsample::Transposed), interior_spread(Upsample::Resize));
    assert!(transposed > 1e-3, "transposed convs: spread {transposed}");
    assert!(resize < 1e-5, "resize and conv: spread {resize}");
}

// ---------------------------------------------------------------- metrics

#[test]
fn l1_psnr_and_ssim_against_hand_computed_values() {
    let full = |v: f32| Tensor::full(v, (1, 3, 16, 16), &CPU).unwrap();
    // |0.5 - 0.3| = 0.2 everywhere: L1 0.2, MSE 0.04, PSNR = 10 log10(1 / 0.04) = 13.9794 dB.
    let (x, y) = (full(0.5), full(0.3));
    assert!((l1_per_image(&x, &y).unwrap()[0] - 0.2).abs() < 1e-6);
    assert!((psnr_per_image(&x, &y).unwrap()[0] - 13.979_400).abs() < 1e-4);
    // Constant images: the variances and the covariance are 0, so
    // SSIM = (2 * 0.5 * 0.3 + C1) / (0.25 + 0.09 + C1) with C1 = 1e-4: 0.882_747.
    let c1 = 1e-4;
    let want = (2.0 * 0.5 * 0.3 + c1) / (0.25 + 0.09 + c1);
    assert!((ssim_per_image(&x, &y).unwrap()[0] - want).abs() < 1e-5);
    // Identical images: SSIM 1, PSNR at its cap, L1 0.
    let z = ((randn(&[2, 3, 16, 16], 9).tanh().unwrap() + 1.0).unwrap() * 0.5).unwrap();
    assert!(ssim_per_image(&z, &z).unwrap().iter().all(|s| (s - 1.0).abs() < 1e-9));
    assert_eq!(psnr_per_image(&z, &z).unwrap(), vec![100.0, 100.0]);
    // Half the pixels off by 0.1, the rest exact: MSE 0.005, PSNR 23.0103 dB.
    let mut v = vec![0.5f32; 3 * 16 * 16];
    for p in v.iter_mut().step_by(2) {
        *p = 0.6;
    }
    let half = Tensor::from_vec(v, (1, 3, 16, 16), &CPU).unwrap();
    assert!((psnr_per_image(&half, &x).unwrap()[0] - 23.010_300).abs() < 1e-4);
    assert!((l1_per_image(&half, &x).unwrap()[0] - 0.05).abs() < 1e-6);
    // A structure change scores lower than a brightness change of the same size.
    let noise = ((&z + (randn(&[2, 3, 16, 16], 10) * 0.1).unwrap()).unwrap()).clamp(0f32, 1f32).unwrap();
    let shifted = (&z * 0.9).unwrap();
    assert!(ssim_per_image(&z, &noise).unwrap()[0] < ssim_per_image(&z, &shifted).unwrap()[0]);
    assert!(ssim_per_image(&full(0.1).narrow(2, 0, 8).unwrap(), &full(0.1).narrow(2, 0, 8).unwrap()).is_err());
}

#[test]
fn bicubic_baseline_is_aligned_with_the_box_downscale() {
    // A smooth image: box-downscaled 4x and upscaled back, bicubic must beat nearest, and on a
    // linear ramp it must be exact away from the borders (pixel centres line up).
    let ramp: Vec<f32> = (0..64 * 64).map(|i| ((i % 64) as f32 / 63.0) * 1.6 - 0.8).collect();
    let x = Tensor::from_vec(ramp, (1, 1, 64, 64), &CPU).unwrap();
    let lr = gannet::train::i2i::downscale(&x, 4).unwrap();
    let bic = gannet::image_io::resize_bicubic(&lr, 4).unwrap();
    let near = gannet::image_io::upscale_nearest(&lr, 4).unwrap();
    let err = |y: &Tensor| (y - &x).unwrap().abs().unwrap().narrow(3, 8, 48).unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(err(&bic) < 1e-4, "bicubic off a linear ramp by {}", err(&bic));
    assert!(err(&near) > 0.01);
}

#[test]
fn bicubic_baseline_keeps_constants_and_sizes() {
    let x = Tensor::full(0.25f32, (2, 3, 4, 4), &CPU).unwrap();
    let y = gannet::image_io::resize_bicubic(&x, 4).unwrap();
    assert_eq!(y.dims(), &[2, 3, 16, 16]);
    assert!(vec(&y).iter().all(|v| (v - 0.25).abs() < 1e-5));
}

// ---------------------------------------------------------------- training

/// Mean L1 of the A->B generator's outputs on the run's held-out images against their targets
/// (for CycleGAN, the B images of the same names: the test data is paired).
fn held_out_l1(cfg: &I2iConfig, t: &I2iTrainer) -> f64 {
    let h = gannet::train::i2i::HeldOut::load(cfg, None, &CPU).unwrap();
    let targets = match h.targets {
        Some(t) => t,
        None => {
            let p = load_paired(Path::new(&cfg.data.a), Path::new(cfg.data.b.as_ref().unwrap()), Split::HeldOut, 16, Channels::Rgb).unwrap();
            p.b.batch_tensor(&(0..p.len()).collect::<Vec<_>>(), &CPU).unwrap()
        }
    };
    let out = eval::translate_all(t.nets().generator(Direction::AToB).unwrap(), &h.inputs).unwrap();
    eval::paired_scores(&out, &targets).unwrap().l1
}

#[test]
fn tiny_pix2pix_learns_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 60);
    let cfg = tiny(Task::Pix2pix, tmp.path(), "p2p", 30);
    let before = held_out_l1(&cfg, &I2iTrainer::new(tiny(Task::Pix2pix, tmp.path(), "p2p-init", 0)).unwrap());
    let t = train(cfg.clone());
    let after = held_out_l1(&cfg, &t);
    assert!(after < 0.7 * before, "held-out L1 {before:.4} -> {after:.4}");
    assert!(t.run_dir().latest_grid().exists() && t.run_dir().loss_plot().exists());
    let csv = std::fs::read_to_string(t.run_dir().metrics_csv()).unwrap();
    assert_eq!(csv.lines().count(), 31, "a header and a row per step");

    // 10 steps, then 10 more from the checkpoint == 20 unbroken steps.
    let unbroken = train(tiny(Task::Pix2pix, tmp.path(), "p2p-20", 20));
    let first = train(tiny(Task::Pix2pix, tmp.path(), "p2p-10", 10));
    let mut resumed = I2iTrainer::resume(&first.run_dir().latest_checkpoint(), |c| c.schedule.steps = 20).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_same_weights(&unbroken, &resumed);
}

fn assert_same_weights(a: &I2iTrainer, b: &I2iTrainer) {
    assert_eq!(a.step(), b.step());
    for (store_a, store_b) in [(&a.nets().gen_params, &b.nets().gen_params), (&a.nets().disc_params, &b.nets().disc_params)] {
        for ((name, x), (_, y)) in store_a.tensors().iter().zip(store_b.tensors().iter()) {
            let d = (x - y).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
            assert!(d == 0.0, "{name} differs by {d}: a resumed run must repeat the unbroken one bit for bit");
        }
    }
}

#[test]
fn tiny_superres_beats_its_start_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 60);
    let mut cfg = tiny(Task::Superres, tmp.path(), "sr", 30);
    cfg.model.scale = 2;
    cfg.data.b = None;
    let start = I2iTrainer::new({
        let mut c = cfg.clone();
        c.output.dir = tmp.path().join("sr-init");
        c
    })
    .unwrap();
    let before = held_out_l1(&cfg, &start);
    let t = train(cfg.clone());
    let after = held_out_l1(&cfg, &t);
    assert!(after < before, "held-out L1 {before:.4} -> {after:.4}");
    let saved = SavedI2i::load(&t.run_dir().latest_checkpoint(), &CPU).unwrap();
    assert_eq!((saved.step, saved.config.task), (30, Task::Superres));
    let g = saved.nets(&CPU).unwrap();
    let x = randn(&[1, 3, 8, 8], 11);
    let mine = t.nets().generator(Direction::AToB).unwrap().forward(&x).unwrap();
    assert_eq!(vec(&g.generator(Direction::AToB).unwrap().forward(&x).unwrap()), vec(&mine));
    assert!(g.generator(Direction::BToA).is_err(), "super-resolution has no b2a");
}

#[test]
fn tiny_cyclegan_learns_and_resumes_exactly_with_its_pools() {
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 60);
    let mut cfg = tiny(Task::Cyclegan, tmp.path(), "cg", 24);
    cfg.model.g_channels = 2;
    let before = held_out_l1(
        &cfg,
        &I2iTrainer::new({
            let mut c = cfg.clone();
            c.output.dir = tmp.path().join("cg-init");
            c
        })
        .unwrap(),
    );
    let t = train(cfg.clone());
    let after = held_out_l1(&cfg, &t);
    assert!(after < before, "held-out L1 {before:.4} -> {after:.4}");
    // Pools fill up (6 images) and are saved; the lr decays linearly after step 3.
    let saved = SavedI2i::load(&t.run_dir().latest_checkpoint(), &CPU).unwrap();
    assert_eq!(saved.tensors["pool_a"].dims(), &[6, 3, 16, 16]);
    assert!((t.state().opt_gen.lr() - 2e-3 * (1.0 - 21.0 / 21.0)).abs() < 1e-12, "step 23 is the last decay step");
    assert!(saved.nets(&CPU).unwrap().generator(Direction::BToA).is_ok());

    let short = |out: &str, steps| {
        let mut c = tiny(Task::Cyclegan, tmp.path(), out, steps);
        c.model.g_channels = 2;
        c
    };
    let unbroken = train(short("cg-12", 12));
    let first = train(short("cg-6", 6));
    let mut resumed = I2iTrainer::resume(&first.run_dir().latest_checkpoint(), |c| c.schedule.steps = 12).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_same_weights(&unbroken, &resumed);
}

#[test]
fn config_errors_name_the_setting() {
    let mut cfg = I2iConfig::for_task(Task::Pix2pix);
    assert!(cfg.validate().unwrap_err().to_string().contains("data.a"));
    cfg.data.a = "x".into();
    assert!(cfg.validate().unwrap_err().to_string().contains("data.b"));
    let e = I2iConfig::from_toml_over_defaults("[data]\na = \"x\"", None).unwrap_err().to_string();
    assert!(e.contains("task"), "{e}");
    let c = I2iConfig::from_toml_over_defaults("task = \"cyclegan\"\n[schedule]\nsteps = 7", None).unwrap();
    assert_eq!((c.schedule.steps, c.loss, c.weights.cycle), (7, gannet::loss::GanLoss::LeastSquares, 10.0));
    let p = gannet::train::i2i::presets::find("pix2pix-emoji").unwrap().with_overrides(None).unwrap();
    assert_eq!((p.task, p.weights.l1, p.data.resolution), (Task::Pix2pix, 100.0, 64));
    assert!(gannet::train::i2i::presets::find("nope").unwrap_err().to_string().contains("cyclegan-emoji"));
}

// ---------------------------------------------------------------- the engine's services

#[test]
fn tiny_superres_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 40);
    let sr = |out: &str, steps: u64| {
        let mut c = tiny(Task::Superres, tmp.path(), out, steps);
        c.model.scale = 2;
        c.data.b = None;
        c
    };
    let unbroken = train(sr("sr-10", 10));
    let first = train(sr("sr-5", 5));
    let ckpt = first.run_dir().latest_checkpoint();
    drop(first);
    let mut resumed = I2iTrainer::resume(&ckpt, |c| c.schedule.steps = 10).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    assert_same_weights(&unbroken, &resumed);
}

#[test]
fn the_divergence_guard_watches_image_to_image_runs() {
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 40);
    // Any D loss counts as collapsed: the guard trips after collapse_steps steps.
    let mut cfg = tiny(Task::Pix2pix, tmp.path(), "guarded", 12);
    cfg.guard.collapse_steps = 3;
    cfg.guard.d_loss_floor = 1e9;
    let err = I2iTrainer::new(cfg.clone()).unwrap().run(&mut Quiet, &AtomicBool::new(false)).expect_err("the guard stops it").to_string();
    assert!(err.contains("training diverged at step 3") && err.contains("guard.d_loss_floor"), "{err}");
    assert!(err.contains("gannet train-i2i"), "the advice names the right command: {err}");
    // With rollback on it rolls back (halving the learning rates) until its rollbacks are used up.
    cfg.output.dir = tmp.path().join("rolled");
    cfg.guard.rollback = true;
    cfg.guard.max_rollbacks = 2;
    let mut t = I2iTrainer::new(cfg).unwrap();
    let err = t.run(&mut Quiet, &AtomicBool::new(false)).expect_err("rollbacks run out").to_string();
    assert!(err.contains("after 2 rollbacks"), "{err}");
    assert_eq!(t.rollbacks(), 2);
    let log = std::fs::read_to_string(t.run_dir().guard_log()).unwrap();
    assert_eq!(log.matches("rolled back to the initial weights").count(), 2, "{log}");
    assert!(log.contains("G 5e-4"), "halved twice from 2e-3: {log}");
}

#[test]
fn periodic_evaluation_scores_held_out_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    paired_folders(tmp.path(), 60);
    let mut cfg = tiny(Task::Pix2pix, tmp.path(), "eval", 3);
    cfg.eval.every = 2;
    cfg.eval.count = 4;
    let t = train(cfg);
    let csv = std::fs::read_to_string(t.run_dir().metrics_eval_csv()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,l1,psnr,ssim,eval_s");
    assert_eq!(lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect::<Vec<_>>(), ["2", "3"], "every 2 steps and at the end: {csv}");
    for l in &lines[1..] {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        assert!((0.0..=1.0).contains(&v[1]) && v[2] > 0.0 && (-1.0..=1.0).contains(&v[3]), "{l}");
    }
    assert!(t.run_dir().root().join("eval_psnr.svg").exists());
}
