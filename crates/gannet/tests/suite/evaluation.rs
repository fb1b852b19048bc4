//! The digit classifier, the class histogram, classifier FID, the evaluator (with its feature
//! cache) and the periodic evaluation during training.

use gannet::candle_core::{Device, Tensor};
use gannet::config::{ClassifierAugment, ClassifierRunConfig, ClassifierWidths};
use gannet::data::{self, Channels, DataSource, Dataset, LoadOptions};
use gannet::metrics::class_histogram::ClassHistogram;
use gannet::metrics::classifier::Classifier;
use gannet::metrics::classifier_fid;
use gannet::metrics::evaluate::{self, EvalObserver, EvalOptions, Evaluator, Metric};
use gannet::models::{dcgan::DcganConfig, ModelConfig};
use gannet::train::{ClassifierTrainer, Quiet, TrainConfig, Trainer};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn data_dir() -> PathBuf {
    data::data_root()
}

fn digits() -> Dataset {
    data::load(&DataSource::BuiltinDigits, &LoadOptions::default()).unwrap()
}

/// The first `n` images of an IDX test split, as a dataset.
fn test_split(set: &str, n: usize) -> Dataset {
    let path = data_dir().join(set).join("t10k-images-idx3-ubyte.gz");
    let d = data::load(&DataSource::Path(path), &LoadOptions::default()).unwrap();
    d.subset(&(0..n).collect::<Vec<_>>())
}

fn images01(d: &Dataset, idx: &[usize]) -> Tensor {
    evaluate::dataset_images01(d, idx, &Device::Cpu).unwrap()
}

#[test]
fn classifier_learns_digits_and_round_trips_through_a_file() {
    // Through the training engine, as `gannet classifier` trains it: the built-in digits, a
    // held-out tenth as the test set.
    let run = tempfile::tempdir().unwrap();
    let mut cfg = ClassifierRunConfig::default();
    (cfg.schedule.steps, cfg.schedule.batch_size, cfg.seed) = (150, 64, 1);
    (cfg.output.dir, cfg.output.log_every) = (run.path().to_path_buf(), 1);
    let t = std::time::Instant::now();
    let mut trainer = ClassifierTrainer::new(cfg).unwrap();
    trainer.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let (net, acc) = trainer.task().export().unwrap();
    let acc_per_class = acc.clone();
    let acc = acc.overall();
    let losses: Vec<f64> =
        std::fs::read_to_string(trainer.run_dir().metrics_csv()).unwrap().lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(losses.len(), 150, "a row per step");
    eprintln!("150 steps: accuracy {acc:.4} in {:?}; loss {:.3} -> {:.3}", t.elapsed(), losses[0], losses[149]);
    // Measured: ~0.93 after 150 steps of 64 (a tenth of the chance level's loss).
    assert!(acc > 0.85, "accuracy {acc}");
    assert!(losses[0] > 2.0 && losses[149] < 0.6, "{} -> {}", losses[0], losses[149]);
    let test = digits().subset(&(0..2000).collect::<Vec<_>>());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.safetensors");
    net.save(&file).unwrap();
    let back = Classifier::load(&file, &Device::Cpu).unwrap();
    assert_eq!(back.test_accuracy(), Some((acc * 1e6).round() / 1e6));
    let per_class: Vec<f64> = acc_per_class.accuracy.iter().map(|a| (a * 1e6).round() / 1e6).collect();
    assert_eq!(back.test_class_accuracy(), Some(per_class.as_slice()));
    // Measured on the held-out tenth of the 10,000 digits, every class counted.
    assert_eq!(acc_per_class.counts.iter().sum::<usize>(), 1000);
    assert_eq!(net.class_accuracy(&digits().subset(&[0, 1, 2])).unwrap().counts.iter().sum::<usize>(), 3);
    assert_eq!(back.class_names(), net.class_names());
    assert_eq!(back.weights_hash().unwrap(), net.weights_hash().unwrap());
    let x = images01(&test, &(0..50).collect::<Vec<_>>());
    assert_eq!(back.predict(&x).unwrap(), net.predict(&x).unwrap());
    let (fa, fb) = (net.features(&x).unwrap(), back.features(&x).unwrap());
    assert_eq!(fa.dims(), &[50, 64]);
    assert_eq!(fa.sub(&fb).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    // A GAN checkpoint (or anything else) is refused with the file's name.
    std::fs::write(dir.path().join("bad.safetensors"), b"nope").unwrap();
    let e = Classifier::load(&dir.path().join("bad.safetensors"), &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("bad.safetensors"), "{e}");
}

#[test]
fn builtin_classifiers_are_accurate_on_the_test_splits() {
    let mnist = Classifier::builtin("mnist", &Device::Cpu).unwrap();
    let acc = mnist.accuracy(&test_split("mnist", 2000)).unwrap();
    assert!(acc > 0.985, "MNIST accuracy {acc}");
    assert!(mnist.test_accuracy().unwrap() >= 0.993, "{:?}", mnist.test_accuracy());
    // Its per-class record (t10k, `gannet classifier --measure`) averages, weighted by the
    // t10k class counts, to the overall accuracy.
    let t10k_counts = [980.0, 1135.0, 1032.0, 1010.0, 982.0, 892.0, 958.0, 1028.0, 974.0, 1009.0];
    let per_class = mnist.test_class_accuracy().expect("per-class accuracy recorded");
    let weighted: f64 = per_class.iter().zip(t10k_counts).map(|(a, n)| a * n).sum::<f64>() / 10_000.0;
    assert!((weighted - mnist.test_accuracy().unwrap()).abs() < 1e-5, "{weighted} vs {:?}", mnist.test_accuracy());
    let fashion = Classifier::builtin("fashion-mnist", &Device::Cpu).unwrap();
    let acc = fashion.accuracy(&test_split("fashion-mnist", 2000)).unwrap();
    assert!(acc > 0.90, "Fashion-MNIST accuracy {acc}");
    assert!(fashion.test_accuracy().unwrap() >= 0.93, "{:?}", fashion.test_accuracy());
    // 1,000 test images per class: the per-class record averages to the overall accuracy.
    let per_class = fashion.test_class_accuracy().expect("per-class accuracy recorded");
    let mean = per_class.iter().sum::<f64>() / per_class.len() as f64;
    assert!((mean - fashion.test_accuracy().unwrap()).abs() < 1e-5, "{per_class:?}");
    // Grey or RGB, any size: images are converted to what the network takes.
    let d = test_split("mnist", 20);
    let x = images01(&d, &(0..20).collect::<Vec<_>>());
    let rgb64 = gannet::metrics::pool::resize_bilinear(&x.repeat((1, 3, 1, 1)).unwrap(), 64, 64).unwrap();
    let same = mnist.predict(&x).unwrap().iter().zip(mnist.predict(&rgb64).unwrap()).filter(|(a, b)| **a == *b).count();
    assert!(same >= 18, "{same}/20 agree after RGB + resize");
    assert!(Classifier::load_spec("builtin:cifar", &Device::Cpu).err().unwrap().to_string().contains("mnist"));
}

#[test]
fn class_histogram_counts_covered_classes_and_kl() {
    let names: Vec<String> = (0..4).map(|i| i.to_string()).collect();
    let h = ClassHistogram::from_predictions(&[0, 0, 1, 1, 2, 2, 3, 3], &names);
    assert_eq!(h.counts, vec![2, 2, 2, 2]);
    assert_eq!(h.covered(1), 4);
    assert!(h.kl_to_uniform().abs() < 1e-12);
    let collapsed = ClassHistogram::from_predictions(&[1; 8], &names);
    assert_eq!(collapsed.covered(1), 1);
    assert!(collapsed.kl_to(&h) > 0.5, "{}", collapsed.kl_to(&h));
    assert!(collapsed.kl_to(&h) > ClassHistogram::from_predictions(&[0, 1, 1, 1, 2, 3, 1, 1], &names).kl_to(&h));
}

#[test]
fn classifier_fid_is_small_for_real_digits_and_large_for_one_class() {
    let clf = Classifier::builtin("mnist", &Device::Cpu).unwrap();
    let d = digits();
    let labels = d.labels().unwrap().to_vec();
    let a = images01(&d, &(0..1000).collect::<Vec<_>>());
    let b = images01(&d, &(1000..2000).collect::<Vec<_>>());
    let ones: Vec<usize> = (2000..10000).filter(|&i| labels[i] == 1).take(1000).collect();
    let c = images01(&d, &ones);
    let same = classifier_fid(&clf, &a, &b).unwrap();
    let collapsed = classifier_fid(&clf, &a, &c).unwrap();
    let noise = Tensor::rand(0f32, 1f32, (1000, 1, 28, 28), &Device::Cpu).unwrap();
    let noisy = classifier_fid(&clf, &a, &noise).unwrap();
    eprintln!("cfid: two real halves {same:.3}, only ones {collapsed:.3}, noise {noisy:.3}");
    assert!(same >= 0.0 && same * 20.0 < collapsed && same * 20.0 < noisy, "{same} {collapsed} {noisy}");
    let h = ClassHistogram::from_predictions(&clf.predict(&c).unwrap(), clf.class_names());
    assert!(h.counts[1] as f64 >= 0.98 * ones.len() as f64, "{h:?}");
}

#[derive(Default)]
struct Notes(Vec<String>);
impl EvalObserver for Notes {
    fn note(&mut self, m: &str) {
        self.0.push(m.to_string());
    }
}

#[test]
fn evaluator_caches_reference_features_and_scores_collapse() {
    let cache = tempfile::tempdir().unwrap();
    let d = digits();
    let opts = EvalOptions {
        metrics: vec![Metric::Cfid, Metric::Classes],
        count: 600,
        seed: 0,
        classifier: "auto".into(),
        cache_dir: Some(cache.path().to_path_buf()),
        inception_weights: None,
    };
    let key = evaluate::dataset_cache_key("builtin:digits", &d);
    let mut notes = Notes::default();
    let ev = Evaluator::new(&d, Some(&key), opts.clone(), &Device::Cpu, &mut notes).unwrap();
    let files: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(notes.0.iter().any(|n| n.contains("cached")), "{:?}", notes.0);

    // Images the reference does not use, from the same distribution: near the reference.
    let rest: Vec<usize> = {
        let used = evaluate::reference_indices(d.len(), 600);
        (0..d.len()).filter(|i| !used.contains(i)).take(600).collect()
    };
    let good = ev.evaluate_images(&images01(&d, &rest), &mut Notes::default()).unwrap();
    let labels = d.labels().unwrap();
    let sevens: Vec<usize> = rest.iter().copied().filter(|&i| labels[i] == 7).collect();
    let bad = ev.evaluate_images(&images01(&d, &sevens), &mut Notes::default()).unwrap();
    let (gc, bc) = (good.classes.as_ref().unwrap(), bad.classes.as_ref().unwrap());
    eprintln!("real: cfid {:?} {}/10 kl {:.4}; sevens: cfid {:?} {}/10", good.cfid, gc.covered, gc.kl_to_reference, bad.cfid, bc.covered);
    assert_eq!(gc.covered, 10);
    assert!(bc.covered <= 3 && bc.generated.counts[7] as f64 >= 0.95 * sevens.len() as f64, "{bc:?}");
    assert!(gc.kl_to_reference < 0.05 && bc.kl_to_reference > 1.0);
    assert!(good.cfid.unwrap() * 10.0 < bad.cfid.unwrap());
    assert_eq!(good.classifier.as_deref(), Some("builtin:mnist"));
    assert!(good.fid.is_none() && good.kid.is_none());
    let table = good.table();
    assert!(table.contains("classifier FID") && table.contains("classes covered") && table.contains("10/10"), "{table}");
    assert_eq!(good.scalars(Metric::Classes)[0], ("classes_covered", 10.0));

    // Second evaluator: the reference comes from the cache and scores the same.
    let mut notes = Notes::default();
    let again = Evaluator::new(&d, Some(&key), opts, &Device::Cpu, &mut notes).unwrap();
    assert!(notes.0.iter().any(|n| n.contains("from the cache")), "{:?}", notes.0);
    assert_eq!(again.evaluate_images(&images01(&d, &rest), &mut Notes::default()).unwrap(), good);
}

/// A stand-in conditional generator that returns real digits: of the asked class when `obey`,
/// else always a 3. Real images make the expected class accuracy known (the classifier's).
struct DigitLookup {
    by_class: Vec<Vec<usize>>,
    data: Dataset,
    obey: bool,
}

impl gannet::models::Generator for DigitLookup {
    fn forward(&self, z: &Tensor, labels: Option<&Tensor>, _mode: gannet::nn::Mode) -> gannet::Result<Tensor> {
        let labels = labels.expect("a conditional generator gets labels").to_vec1::<u32>()?;
        // The latent's first value picks which image of the class, so different seeds differ.
        let z0 = z.narrow(1, 0, 1)?.flatten_all()?.to_vec1::<f32>()?;
        let idx: Vec<usize> = labels
            .iter()
            .zip(&z0)
            .map(|(&l, &v)| {
                let pool = &self.by_class[if self.obey { l as usize } else { 3 }];
                pool[((v.abs() * 1000.0) as usize) % pool.len()]
            })
            .collect();
        self.data.batch_tensor(&idx, z.device())
    }
    fn latent_dim(&self) -> usize {
        4
    }
    fn image_shape(&self) -> gannet::models::ImageShape {
        gannet::models::ImageShape { channels: 1, resolution: 28 }
    }
    fn num_classes(&self) -> usize {
        10
    }
}

#[test]
fn class_accuracy_of_a_conditional_generator() {
    let d = digits();
    let labels = d.labels().unwrap();
    let by_class: Vec<Vec<usize>> = (0..10).map(|c| (0..d.len()).filter(|&i| labels[i] == c).collect()).collect();
    let opts = EvalOptions { metrics: vec![Metric::Cacc, Metric::Classes], count: 500, cache_dir: None, ..EvalOptions::default() };
    let ev = Evaluator::new(&d, None, opts, &Device::Cpu, &mut Notes::default()).unwrap();

    let good = DigitLookup { by_class: by_class.clone(), data: d.clone(), obey: true };
    let r = ev.evaluate_generator(&good, &mut Notes::default()).unwrap();
    let acc = r.class_accuracy.as_ref().unwrap();
    eprintln!("obeying: {:?}", acc.accuracy);
    assert_eq!(acc.counts, vec![50; 10], "classes in turn, 500 images");
    assert!(acc.min() > 0.9 && acc.mean() > 0.97, "{acc:?}");
    // Balanced labels also make the class histogram flat.
    assert_eq!(r.classes.as_ref().unwrap().covered, 10);
    assert_eq!(r.scalars(Metric::Cacc)[0], ("cacc_min", acc.min()));
    assert!(r.table().contains("class accuracy"), "{}", r.table());
    // The built-in classifier's accuracy on real test digits of each class stands beside, and
    // every digit is certified (>= 90% right on real images).
    let real = acc.real_accuracy.as_ref().expect("the built-in MNIST classifier records its per-class accuracy");
    assert!(real.len() == 10 && real.iter().all(|&a| a > 0.98), "{real:?}");
    assert_eq!(acc.min_certified(), Some((acc.min(), 10)));
    assert!(r.table().contains("classifier on real test images") && r.table().contains("certified cacc"), "{}", r.table());

    let bad = DigitLookup { by_class, data: d.clone(), obey: false };
    let acc = ev.evaluate_generator(&bad, &mut Notes::default()).unwrap().class_accuracy.unwrap();
    assert!(acc.accuracy[3] > 0.9 && acc.min() < 0.05, "{acc:?}");

    // Unlabelled images (a folder, an unconditional G) cannot be scored for cacc.
    let err = ev.evaluate_images(&images01(&d, &[0, 1, 2]), &mut Notes::default()).unwrap_err();
    assert!(err.to_string().contains("class-conditional"), "{err}");
}

#[test]
fn metric_lists_parse_and_reject_unknown_names() {
    assert_eq!(Metric::parse_list("fid, cfid,fid").unwrap(), vec![Metric::Fid, Metric::Cfid]);
    let e = Metric::parse_list("fid,inception-score").unwrap_err().to_string();
    assert!(e.contains("inception-score") && e.contains("kid"), "{e}");
    assert!(Metric::parse_list("").is_err());
    assert_eq!(evaluate::resolve_classifier("auto", "/data/fashion-mnist/train.gz"), "builtin:fashion-mnist");
    assert_eq!(evaluate::resolve_classifier("auto", "builtin:digits-10k"), "builtin:mnist");
}

fn tiny_config(dir: &Path, steps: u64) -> TrainConfig {
    let mut cfg =
        TrainConfig { model: ModelConfig::Dcgan(DcganConfig { latent_dim: 8, g_channels: 4, d_channels: 4, ..Default::default() }), ..Default::default() };
    cfg.schedule.steps = steps;
    cfg.schedule.batch_size = 8;
    cfg.output.dir = dir.to_path_buf();
    cfg.output.sample_every = 100;
    cfg.output.checkpoint_every = 2;
    cfg.output.sample_count = 4;
    cfg.eval.every = 2;
    cfg.eval.metrics = vec![Metric::Cfid, Metric::Classes];
    cfg.eval.count = 64;
    cfg.eval.cache = false;
    cfg.data.channels = Channels::Grey;
    cfg
}

#[test]
fn periodic_eval_writes_csv_and_plots_and_survives_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(tiny_config(tmp.path(), 3)).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let csv = std::fs::read_to_string(tmp.path().join("metrics_eval.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,cfid,classes_covered,classes_kl,eval_s");
    // Every 2 steps and at the last one.
    assert_eq!(lines.iter().skip(1).map(|l| l.split(',').next().unwrap()).collect::<Vec<_>>(), ["2", "3"], "{csv}");
    for l in &lines[1..] {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        assert!(v[1].is_finite() && v[1] > 0.0 && (0.0..=10.0).contains(&v[2]), "{l}");
    }
    for svg in ["eval_cfid.svg", "eval_classes.svg"] {
        let text = std::fs::read_to_string(tmp.path().join(svg)).unwrap();
        assert!(text.contains("<svg") && text.contains("during training"), "{svg}");
    }
    // Resuming from the step-3 checkpoint drops rows past step 3 (as from a run that went on
    // after its last checkpoint), then appends 4 and 5.
    let ckpt = tmp.path().join("checkpoints/latest.safetensors");
    let saved = gannet::saved::SavedRun::load(&ckpt, &Device::Cpu).unwrap();
    assert_eq!(saved.step, 3);
    std::fs::write(tmp.path().join("metrics_eval.csv"), format!("{csv}9,1.0,1.0,1.0,1.0\n")).unwrap();
    drop(t); // a run holds its folder's lock while it lives
    let mut t = Trainer::resume(&ckpt, |c| c.schedule.steps = 5).unwrap();
    t.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let csv = std::fs::read_to_string(tmp.path().join("metrics_eval.csv")).unwrap();
    let steps: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(steps, ["2", "3", "4", "5"], "{csv}");
}

#[test]
fn eval_config_is_checked() {
    let mut cfg = TrainConfig::default();
    cfg.eval.every = 10;
    cfg.eval.count = 1;
    assert!(cfg.validate().unwrap_err().to_string().contains("eval.count"));
    let text = "[eval]\nevery = 5\nmetrics = [\"cfid\", \"kid\"]\n";
    let cfg = TrainConfig::from_toml_str(text).unwrap();
    assert_eq!(cfg.eval.metrics, vec![Metric::Cfid, Metric::Kid]);
    assert!(TrainConfig::from_toml_str("[eval]\nmetrics = [\"is\"]\n").is_err());
}

/// Generated images come from variables; if they stayed tracked, every network applied to them
/// would keep all its activations for a backward pass (2,000 images through Inception took
/// 21 GB before this was fixed).
#[test]
fn evaluation_outputs_are_not_tracked_for_backprop() {
    let shape = gannet::models::ImageShape { channels: 1, resolution: 28 };
    let cfg = ModelConfig::Dcgan(DcganConfig { latent_dim: 8, g_channels: 4, d_channels: 4, ..Default::default() });
    let (gen, _params) = gannet::models::build_generator(&cfg, shape, 0, &Device::Cpu).unwrap();
    let z = Tensor::randn(0f32, 1f32, (4, 8), &Device::Cpu).unwrap();
    let tracked = gen.forward(&z, None, gannet::nn::Mode::Eval).unwrap();
    assert!(tracked.track_op(), "the premise: a generator's output is tracked");
    let x = evaluate::generate01(gen.as_ref(), 6, None, 0, &Device::Cpu, &mut evaluate::Silent).unwrap();
    assert!(!x.track_op());
    let clf = Classifier::builtin("mnist", &Device::Cpu).unwrap();
    let x01 = ((tracked + 1.0).unwrap() * 0.5).unwrap();
    assert!(!clf.features(&x01).unwrap().track_op());
    let inception = gannet::metrics::FidInception::load_default(&Device::Cpu).unwrap();
    assert!(!inception.features(&x01.narrow(0, 0, 1).unwrap()).unwrap().track_op());
}

#[test]
fn classifier_training_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |dir: &str| {
        let mut c = ClassifierRunConfig::default();
        (c.schedule.steps, c.schedule.batch_size, c.output.dir) = (12, 32, tmp.path().join(dir));
        // The VGG-style net and augmentation: the shifts and mirrors are drawn from the step.
        c.model = ClassifierWidths { conv1: 8, conv2: 16, hidden: 32, depth: 2 };
        c.augment = ClassifierAugment { shift: 2, flip: true };
        c
    };
    let mut unbroken = ClassifierTrainer::new(cfg("a")).unwrap();
    unbroken.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let mut first = ClassifierTrainer::new(cfg("b")).unwrap();
    for _ in 0..5 {
        first.train_step().unwrap();
    }
    let ckpt = first.save_checkpoint().unwrap();
    drop(first);
    let mut resumed = ClassifierTrainer::resume(&ckpt, |_| {}).unwrap();
    resumed.run(&mut Quiet, &AtomicBool::new(false)).unwrap();
    let (a, b) = (unbroken.task().classifier(), resumed.task().classifier());
    assert_eq!(a.weights_hash().unwrap(), b.weights_hash().unwrap(), "5 + 7 steps must equal 12 unbroken steps bit for bit");
    // Saved and loaded back: the depth travels in the file's config.
    let file = tmp.path().join("deep.safetensors");
    a.save(&file).unwrap();
    let back = Classifier::load(&file, &Device::Cpu).unwrap();
    assert_eq!((back.config().depth, back.weights_hash().unwrap()), (2, a.weights_hash().unwrap()));
    // Files from before `depth` existed read as depth 1.
    let old: gannet::metrics::classifier::ClassifierConfig =
        serde_json::from_str(r#"{"resolution":28,"channels":1,"conv1":16,"conv2":32,"hidden":64,"classes":10}"#).unwrap();
    assert_eq!(old.depth, 1);
}
