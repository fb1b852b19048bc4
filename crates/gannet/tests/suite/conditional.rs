//! Class-conditional models: label dependence, projection gradients, the AC-GAN loss, tiny
//! conditional runs that learn and resume exactly, presets, and labelled folders.

use crate::common;

use common::{digit_folder, run};
use gannet::candle_core::{DType, Device, Tensor, D};
use gannet::data::{self, DataSource, LoadOptions};
use gannet::models::{self, conditional, dcgan::DcganConfig, mlp::MlpConfig, AcganClassLoss, Conditioning, ImageShape, ModelConfig};
use gannet::nn::Mode;
use gannet::saved::SavedRun;
use gannet::train::{presets, Quiet, TrainConfig, Trainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

const DEV: Device = Device::Cpu;
const SHAPE: ImageShape = ImageShape { channels: 1, resolution: 28 };

fn dcgan(cond: Conditioning) -> ModelConfig {
    ModelConfig::Dcgan(DcganConfig { latent_dim: 8, g_channels: 4, d_channels: 4, conditional: cond, ..Default::default() })
}

fn labels(v: &[u32]) -> Tensor {
    Tensor::new(v, &DEV).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn conditional_generator_output_depends_on_the_label() {
    let z = Tensor::randn(0f32, 1.0, (2, 8), &DEV).unwrap();
    let z = Tensor::cat(&[&z, &z], 0).unwrap();
    let y = labels(&[0, 1, 2, 2]);
    // DCGAN: class BatchNorm tables start at zero (the conditional G starts as its unconditional
    // twin), so give them values first.
    let (gen, params) = models::build_generator_with_classes(&dcgan(Conditioning::Projection), SHAPE, 3, 1, &DEV).unwrap();
    assert_eq!(gen.num_classes(), 3);
    let mut tables = 0;
    for (name, var) in params.all() {
        if name.contains("class_gain") || name.contains("class_bias") {
            var.set(&Tensor::randn(0f32, 0.5, var.dims(), &DEV).unwrap()).unwrap();
            tables += 1;
        }
    }
    assert_eq!(tables, 2 * 2, "stem_bn and one up block, gain and bias each");
    let x = gen.forward(&z, Some(&y), Mode::Eval).unwrap();
    // Same latent, different class: different image; same latent, same class: same image.
    assert!(max_abs_diff(&x.get(0).unwrap(), &x.get(2).unwrap()) > 1e-3);
    assert!(max_abs_diff(&x.get(1).unwrap(), &x.get(3).unwrap()) > 1e-3, "label 1 vs 2");
    let again = gen.forward(&z, Some(&labels(&[2, 1, 2, 2])), Mode::Eval).unwrap();
    assert_eq!(max_abs_diff(&again.get(0).unwrap(), &x.get(2).unwrap()), 0.0);
    // A conditional G refuses to run without labels.
    let err = gen.forward(&z, None, Mode::Eval).expect_err("needs labels").to_string();
    assert!(err.contains("label"), "{err}");

    // MLP: the one-hot label is part of the input, so labels matter from the start.
    let mlp = ModelConfig::Mlp(MlpConfig { latent_dim: 8, hidden: 16, layers: 1, conditional: Conditioning::Acgan, ..Default::default() });
    let (gen, _) = models::build_generator_with_classes(&mlp, SHAPE, 3, 1, &DEV).unwrap();
    let x = gen.forward(&z, Some(&y), Mode::Eval).unwrap();
    assert!(max_abs_diff(&x.get(0).unwrap(), &x.get(2).unwrap()) > 1e-4);

    // An unconditional G ignores labels.
    let (gen, _) = models::build_generator_with_classes(&dcgan(Conditioning::None), SHAPE, 3, 1, &DEV).unwrap();
    let a = gen.forward(&z, Some(&y), Mode::Eval).unwrap();
    let b = gen.forward(&z, None, Mode::Eval).unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

#[test]
fn a_conditional_model_needs_classes() {
    let err = models::build(&dcgan(Conditioning::Acgan), SHAPE, 0, &DEV).err().expect("no classes").to_string();
    assert!(err.contains("acgan") && err.contains("labels"), "{err}");
}

#[test]
fn projection_gradient_reaches_the_class_embedding() {
    let gan = models::build_with_classes(&dcgan(Conditioning::Projection), SHAPE, 4, 3, &DEV).unwrap();
    let x = Tensor::randn(0f32, 1.0, (3, 1, 28, 28), &DEV).unwrap();
    let (logits, classes) = gan.disc.forward_with_classes(&x, Some(&labels(&[0, 2, 2])), Mode::Train).unwrap();
    assert_eq!(logits.dims(), &[3]);
    assert!(classes.is_none(), "projection D has no class logits");
    let grads = logits.sum_all().unwrap().backward().unwrap();
    let embed = gan.disc_params.trainable().into_iter().find(|(n, _)| n == "class_embed.weight").expect("embedding").1;
    let g = grads.get(embed.as_tensor()).expect("gradient reaches the embedding");
    let row_norm = g.abs().unwrap().sum(D::Minus1).unwrap().to_vec1::<f32>().unwrap();
    // Rows of labels in the batch get gradient; the others none.
    assert!(row_norm[0] > 0.0 && row_norm[2] > 0.0, "{row_norm:?}");
    assert_eq!((row_norm[1], row_norm[3]), (0.0, 0.0), "{row_norm:?}");
    // The labels change D's output.
    let other = gan.disc.forward(&x, Some(&labels(&[1, 2, 2])), Mode::Eval).unwrap();
    let same = gan.disc.forward(&x, Some(&labels(&[0, 2, 2])), Mode::Eval).unwrap();
    let d = (other - same).unwrap().to_vec1::<f32>().unwrap();
    assert!(d[0].abs() > 0.0 && d[1] == 0.0 && d[2] == 0.0, "{d:?}");
}

#[test]
fn acgan_discriminator_has_class_logits() {
    let gan = models::build_with_classes(&dcgan(Conditioning::Acgan), SHAPE, 5, 3, &DEV).unwrap();
    let x = Tensor::randn(0f32, 1.0, (3, 1, 28, 28), &DEV).unwrap();
    let (logits, classes) = gan.disc.forward_with_classes(&x, Some(&labels(&[0, 1, 4])), Mode::Train).unwrap();
    assert_eq!(logits.dims(), &[3]);
    assert_eq!(classes.expect("class logits").dims(), &[3, 5]);
}

#[test]
fn cross_entropy_matches_hand_computed_values_and_gradient() {
    // Row 0: logits (0, ln 3), label 1 -> p = 3/4. Row 1: (2, 2), label 0 -> p = 1/2.
    let logits = Tensor::new(&[[0f64, 3f64.ln()], [2.0, 2.0]], &DEV).unwrap();
    let var = gannet::candle_core::Var::from_tensor(&logits).unwrap();
    let y = labels(&[1, 0]);
    let ce = gannet::loss::cross_entropy(var.as_tensor(), &y).unwrap();
    let want = -(0.75f64.ln() + 0.5f64.ln()) / 2.0;
    assert!((ce.to_scalar::<f64>().unwrap() - want).abs() < 1e-12);
    // d CE / d logits = (softmax - one_hot) / N.
    let g = ce.backward().unwrap().get(var.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
    let want_g = [[0.25 / 2.0, -0.25 / 2.0], [-0.5 / 2.0, 0.5 / 2.0]];
    for (r, w) in g.iter().zip(want_g) {
        for (a, b) in r.iter().zip(w) {
            assert!((a - b).abs() < 1e-12, "{g:?}");
        }
    }
    // Stable for huge logits.
    let big = Tensor::new(&[[1000f64, -1000.0]], &DEV).unwrap();
    assert!(gannet::loss::cross_entropy(&big, &labels(&[1])).unwrap().to_scalar::<f64>().unwrap() > 1999.0);
    assert_eq!(conditional::accuracy(&logits, &y).unwrap(), 1.0);
}

fn tiny_conditional(data: &Path, out: &Path, cond: Conditioning, steps: u64) -> TrainConfig {
    let mut cfg = TrainConfig::default();
    cfg.data.source = data.display().to_string();
    cfg.data.resolution = Some(28);
    cfg.model = ModelConfig::Dcgan(DcganConfig { latent_dim: 8, g_channels: 8, d_channels: 8, conditional: cond, ..Default::default() });
    cfg.schedule.steps = steps;
    cfg.schedule.batch_size = 16;
    cfg.output.dir = out.to_path_buf();
    cfg.output.sample_every = 1000;
    cfg.output.checkpoint_every = 1000;
    cfg.output.log_every = 1;
    cfg.output.sample_count = 6;
    cfg.ema_decay = 0.0;
    cfg.seed = 5;
    cfg
}

/// 32 images of class `c` from G (eval mode), flattened: [32, 784].
fn generated(t: &Trainer, c: u32) -> Tensor {
    let z = Tensor::randn(0f32, 1.0, (32, 8), &DEV).unwrap();
    let y = Tensor::full(c, 32, &DEV).unwrap();
    t.gan().gen.forward(&z, Some(&y), Mode::Eval).unwrap().flatten_from(1).unwrap()
}

fn data_mean(ds: &data::Dataset, c: u32) -> Tensor {
    let idx: Vec<usize> = (0..ds.len()).filter(|&i| ds.labels().unwrap()[i] == c).collect();
    ds.batch_tensor(&idx, &DEV).unwrap().mean(0).unwrap().flatten_all().unwrap()
}

/// A tiny conditional run on ones and zeros: returns the trainer and the fraction of G's images
/// of each class that are nearer the data's mean image of that class than of the other.
fn tiny_two_class_run(cond: Conditioning, steps: u64, lr: f64) -> (Trainer, f64, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    digit_folder(&data_dir, &[(0, "zero"), (1, "one")], 48);
    let mut cfg = tiny_conditional(&data_dir, &tmp.path().join("run"), cond, steps);
    (cfg.optim.gen.lr, cfg.optim.disc.lr) = (lr, lr);
    let t = run(cfg);
    let ds = t.dataset();
    assert_eq!(ds.class_names(), ["one", "zero"], "sorted subfolders");
    let means = [data_mean(ds, 0), data_mean(ds, 1)];
    let mut right = 0;
    for c in 0..2u32 {
        let g = generated(&t, c);
        let d: Vec<Vec<f32>> = means.iter().map(|m| g.broadcast_sub(m).unwrap().sqr().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap()).collect();
        right += (0..32).filter(|&i| d[c as usize][i] < d[1 - c as usize][i]).count();
    }
    // The grid has one class per row: 2 rows of 6/2 = 3 images.
    let grid = image::open(t.run_dir().latest_grid()).unwrap();
    assert_eq!((grid.width(), grid.height()), (3 * 30 + 2, 2 * 30 + 2));
    (t, right as f64 / 64.0, tmp)
}

/// Fraction of the run's real images whose AC-GAN class logits pick their label.
fn acgan_accuracy(t: &Trainer) -> f64 {
    let ds = t.dataset();
    let idx: Vec<usize> = (0..ds.len()).collect();
    let x = ds.batch_tensor(&idx, &DEV).unwrap();
    let y = Tensor::from_slice(ds.labels().unwrap(), ds.len(), &DEV).unwrap();
    // Train mode: D's BatchNorm running statistics mix real and fake batches.
    let (_, classes) = t.gan().disc.forward_with_classes(&x, Some(&y), Mode::Train).unwrap();
    conditional::accuracy(&classes.unwrap(), &y).unwrap()
}

#[test]
fn a_tiny_acgan_run_learns_the_classes() {
    // Measured: after 100 steps 0.92 of G's images were on their class's side, after 150 all;
    // an unconditional G (or one that ignores labels) scores 0.5.
    let (t, g_acc, _tmp) = tiny_two_class_run(Conditioning::Acgan, 150, 1e-3);
    let d_acc = acgan_accuracy(&t);
    assert!(d_acc > 0.9, "AC-GAN D labels {d_acc} of the real images correctly");
    assert!(g_acc > 0.8, "only {g_acc} of G's images are nearer their class's mean image");
    // The class loss went down: D's reported loss (adversarial + class cross-entropy) ends
    // below where it started.
    let csv = std::fs::read_to_string(t.run_dir().metrics_csv()).unwrap();
    let d: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    assert!(mean(&d[d.len() - 20..]) < mean(&d[..5]), "D loss first {:?}, last {:?}", &d[..5], &d[d.len() - 20..]);
}

/// D's loss in the first step of a tiny AC-GAN run (weights as initialised, so runs that differ
/// only in `acgan_class_loss` see the same logits).
fn first_d_loss(class_loss: Option<AcganClassLoss>) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    digit_folder(&data_dir, &[(0, "zero"), (1, "one")], 16);
    let mut cfg = tiny_conditional(&data_dir, &tmp.path().join("run"), Conditioning::Acgan, 1);
    cfg.acgan_class_loss = class_loss;
    let t = run(cfg);
    let csv = std::fs::read_to_string(t.run_dir().metrics_csv()).unwrap();
    csv.lines().nth(1).unwrap().split(',').nth(1).unwrap().parse().unwrap()
}

#[test]
fn acgan_class_loss_decides_whether_d_learns_the_fakes_classes() {
    let real = first_d_loss(None);
    assert_eq!(real, first_d_loss(Some(AcganClassLoss::Real)), "real is the default");
    // The difference is the cross-entropy of the fakes' class logits: near ln 2 for two classes
    // at initialisation (logits near 0).
    let extra = first_d_loss(Some(AcganClassLoss::RealAndFake)) - real;
    assert!((extra - std::f64::consts::LN_2).abs() < 0.3, "real-and-fake adds {extra} to D's loss");
    // Refused where it would do nothing.
    let mut cfg = tiny_conditional(Path::new("x"), Path::new("y"), Conditioning::Projection, 1);
    cfg.acgan_class_loss = Some(AcganClassLoss::RealAndFake);
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("acgan_class_loss") && err.contains("projection"), "{err}");
}

#[test]
fn conditional_runs_resume_bit_for_bit_and_keep_class_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    digit_folder(&data_dir, &[(3, "three"), (7, "seven")], 16);
    for cond in [Conditioning::Projection, Conditioning::Acgan] {
        let (a, b) = (tmp.path().join(format!("a-{cond}")), tmp.path().join(format!("b-{cond}")));
        let mut cfg = tiny_conditional(&data_dir, &a, cond, 4);
        cfg.ema_decay = 0.9;
        let full = run(cfg.clone());
        cfg.output.dir = b.clone();
        cfg.schedule.steps = 2;
        let half = run(cfg);
        let mut resumed = Trainer::resume(&half.run_dir().latest_checkpoint(), |c| c.schedule.steps = 4).unwrap();
        resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
        let sa = SavedRun::load(&full.run_dir().latest_checkpoint(), &DEV).unwrap();
        let sb = SavedRun::load(&resumed.run_dir().latest_checkpoint(), &DEV).unwrap();
        assert_eq!(sa.tensors.keys().collect::<Vec<_>>(), sb.tensors.keys().collect::<Vec<_>>());
        assert!(sa.tensors.keys().any(|k| k.contains("class_")), "conditional tensors are saved");
        for (name, ta) in &sa.tensors {
            assert_eq!(max_abs_diff(&ta.to_dtype(DType::F32).unwrap(), &sb.tensors[name].to_dtype(DType::F32).unwrap()), 0.0, "{cond}: {name}");
        }
        assert_eq!(sb.class_names, ["seven", "three"]);
        assert_eq!(sb.num_classes(), 2);
        // The checkpoint's generator samples by class.
        let gen = sb.sampling_generator(&DEV).unwrap();
        let x = gen.forward(&Tensor::zeros((2, 8), DType::F32, &DEV).unwrap(), Some(&labels(&[0, 1])), Mode::Eval).unwrap();
        assert_eq!(x.dims(), &[2, 1, 28, 28]);
    }
}

#[test]
fn a_conditional_model_on_unlabelled_data_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let labelled = tmp.path().join("labelled");
    digit_folder(&labelled, &[(1, "one")], 4);
    // The same images without class subfolders.
    let flat = labelled.join("one");
    let err = Trainer::new(tiny_conditional(&flat, &tmp.path().join("run"), Conditioning::Projection, 1)).err().expect("no labels").to_string();
    assert!(err.contains("needs class labels") && err.contains("projection") && err.contains("one"), "{err}");
}

#[test]
fn class_names_from_the_config_replace_the_datas() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_conditional(Path::new("x"), tmp.path(), Conditioning::Projection, 1);
    cfg.data.source = "builtin:digits".into();
    cfg.data.class_names = Some(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"].map(String::from).to_vec());
    let ds = gannet::train::load_dataset(&cfg).unwrap();
    assert_eq!(ds.class_names()[7], "seven");
    cfg.data.class_names = Some(vec!["a".into(), "b".into()]);
    let err = gannet::train::load_dataset(&cfg).unwrap_err().to_string();
    assert!(err.contains("2 names") && err.contains("10 classes"), "{err}");
}

#[test]
fn every_preset_parses_validates_and_takes_overrides() {
    assert!(presets::ALL.len() >= 7);
    for p in presets::ALL {
        let cfg = p.config().unwrap_or_else(|e| panic!("{}: {e}", p.name));
        cfg.validate().unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert!(!cfg.data.source.contains("${"), "{}: data path not resolved", p.name);
        assert!(cfg.output.dir.ends_with(p.name), "{}: output dir {}", p.name, cfg.output.dir.display());
    }
    let cgan = presets::find("cgan-fashion").unwrap().config().unwrap();
    assert!(cgan.model.conditioning().is_conditional());
    assert_eq!(cgan.data.class_names.as_ref().unwrap()[7], "sneaker");
    // A config file's keys win over the preset's; the rest stays.
    let over = presets::find("wgan-gp-fashion").unwrap().with_overrides(Some("[schedule]\nsteps = 7\n[model]\narch = \"dcgan\"\ng_channels = 16\n")).unwrap();
    assert_eq!((over.schedule.steps, over.schedule.d_steps_per_g), (7, 5));
    match &over.model {
        ModelConfig::Dcgan(c) => assert_eq!((c.g_channels, c.d_channels, c.d_batch_norm), (16, 32, false)),
        other => panic!("{other:?}"),
    }
    // Another architecture replaces the model table.
    let mlp = presets::find("cgan-mnist").unwrap().with_overrides(Some("[model]\narch = \"mlp\"\n")).unwrap();
    assert_eq!(mlp.model.name(), "mlp");
    let err = presets::find("nope").unwrap_err().to_string();
    assert!(err.contains("cgan-mnist") && err.contains("wgan-gp-emoji"), "{err}");
}

#[test]
fn a_class_order_file_fixes_folder_labels() {
    let tmp = tempfile::tempdir().unwrap();
    digit_folder(tmp.path(), &[(0, "zero"), (1, "one"), (2, "two")], 2);
    let load = || data::load(&DataSource::Path(tmp.path().to_path_buf()), &LoadOptions::default());
    assert_eq!(load().unwrap().class_names(), ["one", "two", "zero"]);
    std::fs::write(tmp.path().join("classes.txt"), "zero\none\ntwo\n").unwrap();
    let ds = load().unwrap();
    assert_eq!(ds.class_names(), ["zero", "one", "two"]);
    assert_eq!(ds.labels().unwrap(), [0, 0, 1, 1, 2, 2]);
    std::fs::write(tmp.path().join("classes.txt"), "zero\none\n").unwrap();
    let err = load().unwrap_err().to_string();
    assert!(err.contains("classes.txt") && err.contains("two"), "{err}");
}

#[test]
fn png_text_chunks_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.png");
    let img = gannet::image_io::to_images(&Tensor::zeros((1, 3, 4, 5), DType::F32, &DEV).unwrap()).unwrap().remove(0);
    let ckpt = tmp.path().join("runs/über/latest.safetensors");
    let text = gannet::image_io::provenance_text(&ckpt, 42, Some((7, "sneaker")));
    gannet::image_io::save_png_with_text(&img, &path, &text).unwrap();
    let back = gannet::image_io::read_png_text(&path).unwrap();
    let get = |k: &str| back.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("gannet:source").as_deref(), Some("synthetic"));
    assert_eq!(get("gannet:step").as_deref(), Some("42"));
    assert_eq!(get("gannet:class").as_deref(), Some("sneaker"));
    assert_eq!(get("gannet:checkpoint"), Some(ckpt.display().to_string()));
    assert!(get("Software").unwrap().starts_with("gannet"));
    let decoded = image::open(&path).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (5, 4));
    assert!(gannet::image_io::save_png_with_text(&img, &path, &[("", "x".into())]).is_err());
}
