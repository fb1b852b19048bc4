//! Text-to-image: caption loading (emoji, name.txt, captions.jsonl) and its errors, the
//! encoders' shapes and padding, contrastive training, the matching-aware loss, and a tiny run
//! that resumes bit for bit.

use gannet::candle_core::{DType, Device, Tensor, Var};
use gannet::config::T2iConfig;
use gannet::data::captions::{list_captioned, load_captioned};
use gannet::data::Split;
use gannet::loss::{bce_with_logits, GanLoss};
use gannet::models::text_gan::{matching_aware_d_loss, TextDiscriminator, TextGanConfig};
use gannet::models::ImageShape;
use gannet::nn::ParamStore;
use gannet::optim::{Adam, AdamConfig};
use gannet::text::{contrastive_loss, EncoderConfig, ImageEncoder, TextEncoder, Tokens, Vocab};
use gannet::train::{Quiet, T2iTrainer};
use std::path::Path;
use std::sync::atomic::AtomicBool;

const NAMES: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// `n` built-in digits as PNGs in `dir`, each with a `.txt` caption naming the digit and its index
/// ("a handwritten seven, number 12").
fn caption_folder(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let all = gannet::data::load(&gannet::data::DataSource::BuiltinDigits, &gannet::data::LoadOptions::default()).unwrap();
    let idx: Vec<usize> = (0..n).collect();
    let images = gannet::image_io::to_images(&all.batch_tensor(&idx, &Device::Cpu).unwrap()).unwrap();
    for (i, img) in images.iter().enumerate() {
        gannet::image_io::save_png(img, &dir.join(format!("d{i:03}.png"))).unwrap();
        let digit = NAMES[all.labels().unwrap()[i] as usize];
        std::fs::write(dir.join(format!("d{i:03}.txt")), format!("a handwritten {digit}, number {i}\n")).unwrap();
    }
}

fn err<T>(r: gannet::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn name_txt_and_jsonl_folders_load_with_their_captions_and_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("txt");
    caption_folder(&dir, 30);
    let all = load_captioned(&dir, Split::All, 16).unwrap();
    assert_eq!((all.len(), all.images.channels(), all.images.height()), (30, 3, 16));
    assert!(all.caption(7).text.ends_with("number 7"), "{:?}", all.caption(7));
    // The loader's labels are the caption indices.
    assert_eq!(all.images.labels().unwrap()[7], 7);
    let train = load_captioned(&dir, Split::Train, 16).unwrap();
    let held = load_captioned(&dir, Split::HeldOut, 16).unwrap();
    assert_eq!(train.len() + held.len(), 30);
    assert!(held.captions.iter().all(|h| train.captions.iter().all(|t| t.group != h.group)));

    // captions.jsonl names files anywhere inside the folder.
    let j = tmp.path().join("jsonl");
    std::fs::create_dir_all(j.join("sub")).unwrap();
    std::fs::copy(dir.join("d000.png"), j.join("sub/a.png")).unwrap();
    std::fs::copy(dir.join("d001.png"), j.join("b.png")).unwrap();
    std::fs::write(j.join("captions.jsonl"), "{\"file\": \"sub/a.png\", \"text\": \"Red Heart\"}\n\n{\"file\": \"b.png\", \"text\": \"blue star\"}\n").unwrap();
    let (listed, categories) = list_captioned(&j).unwrap();
    assert_eq!(listed.iter().map(|(_, c)| c.text.as_str()).collect::<Vec<_>>(), ["Red Heart", "blue star"]);
    assert!(categories.is_empty());

    // Errors name the file and the fix.
    std::fs::remove_file(dir.join("d003.txt")).unwrap();
    let e = err(list_captioned(&dir));
    assert!(e.contains("1 of 30 images have no caption") && e.contains("d003.png") && e.contains("name.txt"), "{e}");
    std::fs::write(dir.join("d003.txt"), " ;-) \n").unwrap();
    let e = err(list_captioned(&dir));
    assert!(e.contains("d003.txt") && e.contains("empty"), "{e}");
    std::fs::write(j.join("captions.jsonl"), "{\"file\": \"b.png\", \"text\": \"\"}\n").unwrap();
    assert!(err(list_captioned(&j)).contains("line 1: the caption of 'b.png' is empty"));
    std::fs::write(j.join("captions.jsonl"), "{\"file\": \"nope.png\", \"text\": \"x\"}\n").unwrap();
    assert!(err(list_captioned(&j)).contains("does not exist"));
    std::fs::write(j.join("captions.jsonl"), "{\"file\": \"../b.png\", \"text\": \"x\"}\n").unwrap();
    assert!(err(list_captioned(&j)).contains("must be a path inside"));
    std::fs::write(j.join("captions.jsonl"), "not json\n").unwrap();
    assert!(err(list_captioned(&j)).contains("line 1"));
    assert!(err(list_captioned(&tmp.path().join("missing"))).contains("must be a folder"));
}

#[test]
fn the_emoji_folder_gives_named_captions_in_two_styles_held_out_by_emoji() {
    let dir = gannet::data::data_root().join("emoji");
    let (listed, categories) = list_captioned(&dir).unwrap();
    // 1,906 emoji and their skin-tone variants, each in both styles (Component emoji left out).
    assert!(listed.len() > 7000, "{}", listed.len());
    assert_eq!(categories.len(), 9, "{categories:?}");
    assert!(!categories.iter().any(|c| c == "Component"));
    let texts: Vec<&str> = listed.iter().map(|(_, c)| c.text.as_str()).collect();
    assert!(texts.contains(&"grinning face, google") && texts.contains(&"grinning face, twitter"));
    assert!(texts.iter().any(|t| t.ends_with(": medium skin tone, twitter")), "skin tones are named");
    // Every variant and style of an emoji is on the same side of the split.
    let held: std::collections::BTreeSet<&str> = listed.iter().filter(|(_, c)| Split::HeldOut.contains(&c.group)).map(|(_, c)| c.group.as_str()).collect();
    assert!(held.len() > 100 && held.len() < 300, "{}", held.len());
    assert!(listed.iter().filter(|(_, c)| held.contains(c.group.as_str())).all(|(_, c)| !Split::Train.contains(&c.group)));
}

#[test]
fn the_text_encoder_ignores_padding_and_both_encoders_give_embeddings() {
    let d = Device::Cpu;
    let cfg = EncoderConfig { word_dim: 6, hidden: 5, embed_dim: 7, image_channels: 4, temperature: 0.1 };
    let store = ParamStore::new(1, &d);
    let text = TextEncoder::new(&store.root().sub("t"), 12, &cfg).unwrap();
    let short: &[u32] = &[3, 4];
    let long: &[u32] = &[5, 6, 7, 8, 9];
    let batch = text.forward(&Tokens::new(&[short, long], &d).unwrap()).unwrap();
    assert_eq!(batch.dims(), [2, 7]);
    let alone = text.forward(&Tokens::new(&[short], &d).unwrap()).unwrap();
    let diff = (batch.get(0).unwrap() - alone.get(0).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-6, "a padded caption embeds as it does alone: {diff}");
    for res in [32, 28] {
        let image = ImageEncoder::new(&store.root().sub(format!("i{res}")), 3, res, &cfg).unwrap();
        assert_eq!(image.forward(&Tensor::zeros((3, 3, res, res), DType::F32, &d).unwrap()).unwrap().dims(), [3, 7]);
    }
}

#[test]
fn contrastive_training_matches_each_image_to_its_caption() {
    let d = Device::Cpu;
    let cfg = EncoderConfig { word_dim: 8, hidden: 16, embed_dim: 8, image_channels: 4, temperature: 0.1 };
    let vocab = Vocab::build(["red heart", "blue heart", "red star", "blue star"]).unwrap();
    let store = ParamStore::new(2, &d);
    let text = TextEncoder::new(&store.root().sub("text"), vocab.len(), &cfg).unwrap();
    let image = ImageEncoder::new(&store.root().sub("image"), 3, 8, &cfg).unwrap();
    // Images: a colour (red/blue) and a shape signal (top or bottom half lit).
    let mut px = Vec::new();
    for (r, top) in [(1.0f32, true), (-1.0, true), (1.0, false), (-1.0, false)] {
        for c in 0..3 {
            for y in 0..8 {
                for _ in 0..8 {
                    let lit = (y < 4) == top;
                    px.push(if c == 0 {
                        r
                    } else if lit {
                        0.8
                    } else {
                        -0.8
                    });
                }
            }
        }
    }
    let images = Tensor::from_vec(px, (4, 3, 8, 8), &d).unwrap();
    let ids: Vec<Vec<u32>> = ["red heart", "blue heart", "red star", "blue star"].iter().map(|c| vocab.encode(c)).collect();
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let tokens = Tokens::new(&refs, &d).unwrap();
    let mut opt = Adam::new(store.trainable(), AdamConfig { lr: 1e-2, beta1: 0.9, ..AdamConfig::default() }).unwrap();
    let step = |opt: &mut Adam| {
        let (loss, acc) = contrastive_loss(&image.forward(&images).unwrap(), &text.forward(&tokens).unwrap(), cfg.temperature).unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        (loss.to_scalar::<f32>().unwrap(), acc)
    };
    let (first, _) = step(&mut opt);
    let mut last = (first, 0.0);
    for _ in 0..60 {
        last = step(&mut opt);
    }
    assert!(last.0 < first * 0.2, "loss {first} -> {}", last.0);
    assert_eq!(last.1, 1.0, "every image picks its own caption");
}

#[test]
fn the_matching_aware_loss_counts_mismatched_pairs_as_fake_and_d_learns_them() {
    let d = Device::Cpu;
    let logits = |v: &[f32]| Tensor::new(v, &d).unwrap();
    let (real, fake, wrong) = (logits(&[2.0, 1.0]), logits(&[-1.0, 0.5]), logits(&[0.3, -2.0]));
    let got = matching_aware_d_loss(GanLoss::NonSaturating, &real, &fake, &wrong).unwrap().to_scalar::<f32>().unwrap();
    let want = bce_with_logits(&real, 1.0).unwrap().to_scalar::<f32>().unwrap()
        + 0.5 * (bce_with_logits(&fake, 0.0).unwrap().to_scalar::<f32>().unwrap() + bce_with_logits(&wrong, 0.0).unwrap().to_scalar::<f32>().unwrap());
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    // Minimising it pushes the mismatched logits down.
    let w = Var::from_tensor(&wrong).unwrap();
    let g = matching_aware_d_loss(GanLoss::NonSaturating, &real, &fake, w.as_tensor()).unwrap().backward().unwrap();
    assert!(g.get(w.as_tensor()).unwrap().to_vec1::<f32>().unwrap().iter().all(|&x| x > 0.0));

    // A D trained only on matching (the same images as real and as mismatched) learns to tell
    // each image's caption from the other's.
    let store = ParamStore::new(3, &d);
    let cfg = TextGanConfig { latent_dim: 4, cond_dim: 4, g_channels: 4, d_channels: 8, spectral_norm: false };
    let disc = TextDiscriminator::new(&store.root(), &cfg, 4, ImageShape { channels: 3, resolution: 16 }).unwrap();
    let mut r = gannet::rng::rng(0, gannet::rng::Stream::Latent, 0);
    let x = gannet::rng::randn(&mut r, &[4, 3, 16, 16], &d).unwrap();
    let t = gannet::rng::randn(&mut r, &[4, 4], &d).unwrap();
    let other = Tensor::cat(&[t.narrow(0, 1, 3).unwrap(), t.narrow(0, 0, 1).unwrap()], 0).unwrap();
    let mut opt = Adam::new(store.trainable(), AdamConfig { lr: 2e-3, ..AdamConfig::default() }).unwrap();
    let mode = gannet::nn::Mode::Train;
    for _ in 0..40 {
        let (dr, dw) = (disc.forward(&x, &t, mode).unwrap(), disc.forward(&x, &other, mode).unwrap());
        let loss = matching_aware_d_loss(GanLoss::NonSaturating, &dr, &dw.zeros_like().unwrap().affine(1.0, -10.0).unwrap(), &dw).unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
    }
    let eval = gannet::nn::Mode::Eval;
    let (dr, dw) = (disc.forward(&x, &t, eval).unwrap().to_vec1::<f32>().unwrap(), disc.forward(&x, &other, eval).unwrap().to_vec1::<f32>().unwrap());
    assert!(dr.iter().zip(&dw).all(|(a, b)| a > b), "own caption {dr:?} above another's {dw:?}");
}

/// A text-to-image run small enough for a test: 28x28 digits with captions, 3 pretraining steps.
fn tiny_t2i(data: &Path, out: &Path, steps: u64) -> T2iConfig {
    let mut cfg = T2iConfig::default();
    cfg.data.source = data.display().to_string();
    cfg.data.resolution = 28;
    cfg.text = EncoderConfig { word_dim: 8, hidden: 8, embed_dim: 8, image_channels: 4, temperature: 0.1 };
    cfg.model = TextGanConfig { latent_dim: 4, cond_dim: 4, g_channels: 4, d_channels: 4, spectral_norm: false };
    cfg.schedule.steps = steps;
    cfg.schedule.pretrain_steps = 3;
    cfg.schedule.batch_size = 8;
    cfg.output.dir = out.to_path_buf();
    cfg.output.sample_every = 4;
    cfg.output.checkpoint_every = 4;
    cfg.output.log_every = 1;
    cfg.output.eval_every = 0;
    cfg
}

#[test]
fn a_tiny_text_to_image_run_trains_samples_prompts_and_resumes_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    caption_folder(&data, 40);
    let stop = AtomicBool::new(false);
    let mut whole = T2iTrainer::new(tiny_t2i(&data, &tmp.path().join("whole"), 8)).unwrap();
    whole.run(&mut Quiet, &stop).unwrap();
    let mut first = T2iTrainer::new(tiny_t2i(&data, &tmp.path().join("split"), 4)).unwrap();
    first.run(&mut Quiet, &stop).unwrap();
    let mut rest = T2iTrainer::resume(&first.run_dir().latest_checkpoint(), |c| c.schedule.steps = 8).unwrap();
    rest.run(&mut Quiet, &stop).unwrap();

    let read = |t: &T2iTrainer| gannet::checkpoint::load(&t.run_dir().latest_checkpoint(), &Device::Cpu).unwrap().0;
    let (a, b) = (read(&whole), read(&rest));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a.keys().any(|k| k.starts_with("enc.text.")) && a.keys().any(|k| k.starts_with("disc.")) && a.keys().any(|k| k.starts_with("opt_gen.")));
    for (k, v) in &a {
        let as_f64 = |t: &Tensor| t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
        let (x, y) = (as_f64(v), as_f64(&b[k]));
        assert!(x == y, "{k} differs after the resume");
    }
    let log = std::fs::read_to_string(whole.run_dir().root().join("metrics.csv")).unwrap();
    assert!(log.lines().nth(1).unwrap().split(',').nth(1).unwrap().parse::<f64>().unwrap() > 0.0, "step 1 is pretraining: {log}");
    assert!(whole.run_dir().latest_grid().is_file());

    // The saved model draws prompts and refuses words it never saw.
    let saved = gannet::saved::SavedT2i::load(&whole.run_dir().latest_checkpoint(), &Device::Cpu).unwrap();
    let images = saved.nets.generate_prompts(&["a handwritten seven", "number 3"], 3, 0, &Device::Cpu).unwrap();
    assert_eq!(images.dims(), [6, 3, 28, 28]);
    let walk = saved.nets.interpolate_prompts("seven", "two", 4, 2, 0, &Device::Cpu).unwrap();
    assert_eq!(walk.dims(), [8, 3, 28, 28]);
    let e = err(saved.nets.embed_prompts(&["a purple seven"], &Device::Cpu));
    assert!(e.contains("'purple'"), "{e}");
    assert!(err(saved.nets.embed_prompts(&[" "], &Device::Cpu)).contains("empty"));
    // A resume may not change what the encoders learned from.
    let e = err(T2iTrainer::resume(&whole.run_dir().latest_checkpoint(), |c| {
        c.schedule.steps = 10;
        c.text.hidden = 16;
    }));
    assert!(e.contains("text.hidden"), "{e}");
}
