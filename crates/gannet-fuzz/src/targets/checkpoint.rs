//! `checkpoint`: checkpoint files. The input is the file: `checkpoint::load_bytes` (framing,
//! safetensors header, format version, both CRCs), then what turns a checkpoint's metadata into
//! a model: the studio's loader (`gannet_studio::models::load`: a training checkpoint's
//! `SavedRun` and its sampling generator, or an image-to-image model) with one image made or
//! translated, and `SavedRun::gan` (G and D) or `SavedI2i::nets`.
//!
//! Random bytes rarely survive the CRCs, so the structure-aware mutation reads a checkpoint,
//! changes its metadata (the config TOML, image shape, class names, step, ...) or its tensors
//! (dropped, reshaped, another dtype, renamed, NaN), and writes it again with `checkpoint::save`,
//! checksums and all. The seeds are tiny checkpoints of every architecture and image-to-image
//! task, written by the library at start.

use super::config::{default_configs, mutate_toml};
use super::tiny::{train_toml, TINY_MODELS};
use super::{outcome, Target};
use crate::mutate::{mutate_bytes, Rng, INTERESTING_NUMBERS};
use gannet::candle_core::{DType, Device, Tensor};
use gannet::checkpoint;
use gannet::models::Generator;
use gannet::nn::Mode;
use gannet::saved::SavedI2i;
use gannet::saved::SavedRun;
use gannet::train::i2i::{I2iConfig, I2iTrainer};
use gannet::train::{TrainConfig, Trainer};
use gannet_studio::catalog::Source;
use gannet_studio::models::StudioModel;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Checkpoint {
    work: PathBuf,
    seeds: Vec<Vec<u8>>,
    keys: Vec<(String, String)>,
    words: Vec<String>,
}

const RESERVED: [&str; 3] = ["gannet_format", "crc32", "header_crc32"];
const META_KEYS: [&str; 11] =
    ["gannet_kind", "config", "step", "elapsed_s", "image_shape", "class_names", "guard_rollbacks", "guard_streaks", "ada", "channels", "gannet_format"];

fn i2i_toml(out: &Path, task: &str, a: &Path, b: &Path) -> String {
    format!(
        "task = \"{task}\"\n\n[data]\na = {:?}\nb = {:?}\nresolution = 16\n\n[model]\ng_channels = 2\ng_blocks = 1\nd_channels = 2\nd_layers = 1\nscale = 2\n\n\
         [schedule]\nsteps = 1\nbatch_size = 2\npool_size = 2\n\n[output]\ndir = {:?}\nsample_count = 2\n",
        a.display().to_string(),
        b.display().to_string(),
        out.join(task).display().to_string()
    )
}

/// Tiny checkpoints of every architecture (`train-<arch>`) and image-to-image task
/// (`i2i-<task>`), written by the trainers into `work`; those that fail are reported and left out.
pub fn tiny_checkpoints(work: &Path) -> Vec<(String, PathBuf)> {
    let runs = work.join("runs");
    let mut out = Vec::new();
    for (name, res, model) in TINY_MODELS {
        let made = TrainConfig::from_toml_str(&train_toml(&runs, name, res, model)).and_then(Trainer::new).and_then(|mut t| t.save_checkpoint());
        match made {
            Ok(p) => out.push((format!("train-{name}"), p)),
            Err(e) => eprintln!("fuzz: no seed checkpoint for {name}: {e}"),
        }
    }
    // Image-to-image: 40 16x16 image pairs (a tenth, by name, are held out).
    let (a, b) = (work.join("i2i/a"), work.join("i2i/b"));
    for (dir, shift) in [(&a, 0u32), (&b, 7)] {
        std::fs::create_dir_all(dir).expect("scratch folder");
        for i in 0..40u32 {
            let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, ((i + shift) * 30) as u8]));
            img.save(dir.join(format!("{i}.png"))).expect("scratch image");
        }
    }
    for task in ["pix2pix", "cyclegan", "superres"] {
        let made = I2iConfig::from_toml_over_defaults(&i2i_toml(&runs, task, &a, &b), None).and_then(I2iTrainer::new).and_then(|mut t| t.save_checkpoint());
        match made {
            Ok(p) => out.push((format!("i2i-{task}"), p)),
            Err(e) => eprintln!("fuzz: no seed checkpoint for {task}: {e}"),
        }
    }
    out
}

impl Checkpoint {
    pub fn new(work: &Path) -> Result<Self, String> {
        let seeds: Vec<Vec<u8>> = tiny_checkpoints(work).into_iter().filter_map(|(_, p)| std::fs::read(p).ok()).collect();
        if seeds.is_empty() {
            return Err("no tiny checkpoint could be made".into());
        }
        let mut texts = default_configs();
        texts.extend(gannet::train::presets::ALL.iter().map(|p| p.toml.to_string()));
        let (keys, words) = super::config::collect(&texts);
        Ok(Checkpoint { work: work.to_path_buf(), seeds, keys, words })
    }
}

/// One batch of two images from a loaded GAN (and a style mix for StyleGAN2).
fn sample(gen: &dyn Generator, classes: usize) -> gannet::Result<()> {
    let dev = Device::Cpu;
    let z = Tensor::randn(0f32, 1f32, (2, gen.latent_dim()), &dev)?;
    let labels = (classes > 0).then(|| Tensor::from_vec(vec![0u32, (classes - 1) as u32], 2, &dev)).transpose()?;
    let x = gen.forward(&z, labels.as_ref(), Mode::Eval)?;
    let s = gen.image_shape();
    assert_eq!(x.dims(), &[2, s.channels, s.resolution, s.resolution], "the generator's output does not have its image_shape");
    gannet::image_io::to_images(&x)?;
    if let Some(style) = gen.as_style() {
        let w = style.mapping(&z)?;
        if style.num_ws() > 1 {
            style.synthesis(&style.mix_ws(&w, &w, 1)?)?;
        }
    }
    Ok(())
}

impl Target for Checkpoint {
    fn run(&mut self, data: &[u8]) -> String {
        let path = self.work.join("fuzz.safetensors");
        let dev = Device::Cpu;
        let loaded = checkpoint::load_bytes(data, &path, &dev);
        let mut out = vec![outcome("load_bytes", &loaded)];
        if loaded.is_err() {
            return out.remove(0);
        }
        drop(loaded);
        std::fs::write(&path, data).expect("scratch file");
        let kind = checkpoint::kind(&path);
        // What the studio (and `gannet sample` / `translate`) does with a checkpoint.
        match gannet_studio::models::load(&Source::File(path.clone()), &dev) {
            Ok(StudioModel::Gan(g)) => out.push(outcome("studio gan", &sample(g.gen.as_ref(), g.num_classes()))),
            Ok(StudioModel::ImageToImage(m)) => {
                let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([(x * 50) as u8, (y * 80) as u8, 9])));
                out.push(outcome("studio translate", &m.translate(&img)));
            }
            Ok(StudioModel::TextToImage(t)) => {
                let prompt = t.nets.vocab.words().first().cloned().unwrap_or_default();
                out.push(outcome("studio prompt", &t.nets.generate_prompts(&[prompt.as_str()], 2, 0, &dev).map(|_| ())));
            }
            Err(e) => out.push(format!("studio: {}", e.message.lines().next().unwrap_or(""))),
        }
        // G and D as a resumed run builds them.
        if kind.as_deref() == Some(gannet::saved::KIND_I2I) {
            out.push(outcome("i2i nets", &SavedI2i::load(&path, &dev).and_then(|s| s.nets(&dev).map(|_| ()))));
        } else {
            out.push(outcome("saved run gan", &SavedRun::load(&path, &dev).and_then(|s| s.gan(&dev).map(|_| ()))));
        }
        out.join(" | ")
    }

    fn mutate(&mut self, d: &mut Vec<u8>, r: &mut Rng, other: &[u8]) -> bool {
        let dev = Device::Cpu;
        let path = self.work.join("mutate.safetensors");
        let (mut tensors, meta) = match checkpoint::load_bytes(d, &path, &dev) {
            Ok(x) => x,
            // A broken file: start again from a valid one now and then.
            Err(_) if r.one_in(4) => match checkpoint::load_bytes(&self.seeds[r.below(self.seeds.len())], &path, &dev) {
                Ok(x) => x,
                Err(_) => return false,
            },
            Err(_) => return false,
        };
        let mut meta: BTreeMap<String, String> = meta.into_iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())).collect();
        let names: Vec<String> = tensors.keys().cloned().collect();
        match r.below(12) {
            0..=3 => {
                // The config TOML.
                let cfg = meta.entry("config".into()).or_default();
                let mut b = cfg.clone().into_bytes();
                let theirs = checkpoint::load_bytes(other, &path, &dev).ok().and_then(|(_, m)| m.get("config").cloned()).unwrap_or_default();
                for _ in 0..1 + r.below(3) {
                    mutate_toml(&mut b, r, theirs.as_bytes(), &self.keys, &self.words);
                }
                *cfg = String::from_utf8_lossy(&b).into_owned();
            }
            4..=6 => {
                // Another metadata value: a number swapped, or bytes mutated.
                let key = r.pick(&META_KEYS).to_string();
                if key == "gannet_format" {
                    return false;
                }
                let v = meta.entry(key).or_default();
                let mut b = v.clone().into_bytes();
                if r.one_in(2) {
                    crate::mutate::replace_number(&mut b, r);
                } else {
                    let dict: Vec<Vec<u8>> = ["[", "]", "{", "}", ",", "\"", "null", "\"channels\":", "\"resolution\":", "\"p\":", "train", "i2i"]
                        .iter()
                        .map(|s| s.as_bytes().to_vec())
                        .chain(INTERESTING_NUMBERS.iter().map(|s| s.as_bytes().to_vec()))
                        .collect();
                    mutate_bytes(&mut b, r, &[], &dict, 4096);
                }
                *v = String::from_utf8_lossy(&b).into_owned();
            }
            7 => {
                // A metadata key dropped.
                let keys: Vec<String> = meta.keys().cloned().collect();
                if keys.is_empty() {
                    return false;
                }
                meta.remove(r.pick(&keys));
            }
            8 if !names.is_empty() => {
                tensors.remove(r.pick(&names));
            }
            9 if !names.is_empty() => {
                // A tensor of another shape or dtype (zeros, or its values converted).
                let name = r.pick(&names).clone();
                let t = &tensors[&name];
                let new = if r.one_in(2) {
                    let dtype = *r.pick(&[DType::F64, DType::U8, DType::U32, DType::I64]);
                    t.to_dtype(dtype)
                } else {
                    let mut dims = t.dims().to_vec();
                    match r.below(4) {
                        0 => dims.push(1),
                        1 => {
                            dims.pop();
                        }
                        _ if !dims.is_empty() => {
                            let i = r.below(dims.len());
                            dims[i] = [0, 1, dims[i] + 1, dims[i].saturating_sub(1), dims[i] * 2][r.below(5)];
                        }
                        _ => dims.push(2),
                    }
                    Tensor::zeros(dims, t.dtype(), &dev)
                };
                match new {
                    Ok(t) => {
                        tensors.insert(name, t);
                    }
                    Err(_) => return false,
                }
            }
            10 if !names.is_empty() => {
                // A tensor renamed (to another prefix or a neighbour's name).
                let name = r.pick(&names).clone();
                let t = tensors.remove(&name).expect("present");
                let new = match r.below(3) {
                    0 => name.replacen("gen", "disc", 1),
                    1 => r.pick(&names).clone(),
                    _ => format!("{name}.x"),
                };
                tensors.insert(new, t);
            }
            _ if !names.is_empty() => {
                // NaN and Inf in a float tensor.
                let name = r.pick(&names).clone();
                let t = &tensors[&name];
                if t.dtype() != DType::F32 || t.elem_count() == 0 {
                    return false;
                }
                let mut v = t.flatten_all().and_then(|f| f.to_vec1::<f32>()).unwrap_or_default();
                let i = r.below(v.len());
                v[i] = *r.pick(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, 0.0]);
                match Tensor::from_vec(v, t.dims(), &dev) {
                    Ok(t) => {
                        tensors.insert(name, t);
                    }
                    Err(_) => return false,
                }
            }
            _ => return false,
        }
        if checkpoint::save(&path, &tensors, &meta).is_err() {
            return false;
        }
        match std::fs::read(&path) {
            Ok(b) => {
                *d = b;
                true
            }
            Err(_) => false,
        }
    }

    fn custom_share(&self) -> usize {
        6
    }

    fn extra_seeds(&mut self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        [
            "__metadata__",
            "\"dtype\":\"F32\"",
            "\"dtype\":\"F16\"",
            "\"dtype\":\"BF16\"",
            "\"dtype\":\"U8\"",
            "\"dtype\":\"I64\"",
            "\"dtype\":\"F8_E4M3\"",
            "\"shape\":[",
            "\"data_offsets\":[",
            "{",
            "}",
            "[",
            "]",
            ",",
            "\"",
            ":",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain(META_KEYS.iter().map(|k| format!("\"{k}\"").into_bytes()))
        .collect()
    }

    fn max_len(&self) -> usize {
        2 << 20
    }
}
