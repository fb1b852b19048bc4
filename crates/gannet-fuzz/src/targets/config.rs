//! `config`: TOML run configurations. The input is a config file's text, read as
//! - a training config (`TrainConfig::from_toml_str`, `validate`), whose `to_toml` must read
//!   back the same; a config that validates and has small sizes is then built (G, D, Adam, EMA)
//!   and trained for one step on random images, since `validate` promises a runnable config;
//! - the overrides of a preset (`Preset::with_overrides`), as `gannet train --preset P --config F`;
//! - an image-to-image config (`I2iConfig::from_toml_str`, `from_toml_over_defaults`, `validate`).

use super::{outcome, pick_from, Target};
use crate::mutate::{mutate_lines, replace_number, Rng, INTERESTING_NUMBERS};
use gannet::candle_core::{Device, Tensor};
use gannet::data::Channels;
use gannet::models::{ImageShape, ModelConfig};
use gannet::train::i2i::{I2iConfig, Task};
use gannet::train::{GanState, RealBatch, TrainConfig};

pub struct Config {
    keys: Vec<(String, String)>,
    words: Vec<String>,
}

const ARCHS: [&str; 6] = ["mlp", "dcgan", "resnet", "stylegan2", "progan", "biggan"];
const TASKS: [Task; 3] = [Task::Pix2pix, Task::Cyclegan, Task::Superres];

/// Every config the library writes by default: each architecture's training config and each
/// image-to-image task's.
pub fn default_configs() -> Vec<String> {
    let mut out = Vec::new();
    for a in ARCHS {
        let model = ModelConfig::for_arch(a).expect("a known architecture");
        out.push(TrainConfig { model, ..Default::default() }.to_toml());
    }
    for t in TASKS {
        out.push(I2iConfig::for_task(t).to_toml());
    }
    out
}

/// (section, key) of every setting in `texts`, and every string value and enum word.
pub fn collect(texts: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    fn walk(t: &toml::Table, section: &str, keys: &mut Vec<(String, String)>, words: &mut Vec<String>) {
        for (k, v) in t {
            match v {
                toml::Value::Table(sub) => {
                    let s = if section.is_empty() { k.clone() } else { format!("{section}.{k}") };
                    walk(sub, &s, keys, words);
                }
                toml::Value::String(s) => {
                    keys.push((section.to_string(), k.clone()));
                    words.push(format!("{s:?}"));
                }
                _ => keys.push((section.to_string(), k.clone())),
            }
        }
    }
    let (mut keys, mut words) = (Vec::new(), Vec::new());
    for text in texts {
        if let Ok(t) = toml::from_str::<toml::Table>(text) {
            walk(&t, "", &mut keys, &mut words);
        }
    }
    keys.sort();
    keys.dedup();
    words.sort();
    words.dedup();
    (keys, words)
}

/// Enum values and other words the configs take.
const WORDS: &[&str] = &[
    "\"none\"",
    "\"acgan\"",
    "\"projection\"",
    "\"concat\"",
    "\"grey\"",
    "\"rgb\"",
    "\"auto\"",
    "\"r1\"",
    "\"wgan-gp\"",
    "\"hinge\"",
    "\"wgan\"",
    "\"non-saturating\"",
    "\"least-squares\"",
    "\"color,translation,cutout\"",
    "\"color\"",
    "\"cutout\"",
    "\"translation\"",
    "\"l1\"",
    "\"mse\"",
    "\"pix2pix\"",
    "\"cyclegan\"",
    "\"superres\"",
    "\"cpu\"",
    "\"cuda:7\"",
    "\"metal\"",
    "\"builtin:digits\"",
    "\"builtin:other\"",
    "\"\"",
    "true",
    "false",
    "[]",
    "[\"a\", \"a\"]",
    "{}",
    "[[1]]",
    "1979-05-27T07:32:00Z",
    "\"fid\"",
    "\"kid\"",
    "\"precision-recall\"",
    "\"warn\"",
    "\"stop\"",
    "\"rollback\"",
];

impl Config {
    pub fn new() -> Self {
        let mut texts = default_configs();
        texts.extend(gannet::train::presets::ALL.iter().map(|p| p.toml.to_string()));
        texts.extend(gannet::train::i2i::presets::ALL.iter().map(|p| p.toml.to_string()));
        let (keys, mut words) = collect(&texts);
        words.extend(WORDS.iter().map(|w| w.to_string()));
        words.sort();
        words.dedup();
        Config { keys, words }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for Config {
    fn run(&mut self, data: &[u8]) -> String {
        let text = String::from_utf8_lossy(data);
        let mut out = Vec::new();
        out.push(train(&text, data));
        let preset = gannet::train::presets::ALL[pick_from(data, 11, gannet::train::presets::ALL.len())];
        let p = preset.with_overrides(Some(&text));
        out.push(outcome("preset", &p));
        if let Ok(c) = &p {
            out.push(outcome("preset validate", &c.validate()));
        }
        out.push(i2i(&text, data));
        out.join(" | ")
    }

    fn mutate(&mut self, d: &mut Vec<u8>, r: &mut Rng, other: &[u8]) -> bool {
        mutate_toml(d, r, other, &self.keys, &self.words);
        true
    }

    fn custom_share(&self) -> usize {
        5
    }

    fn extra_seeds(&mut self) -> Vec<Vec<u8>> {
        let mut seeds: Vec<Vec<u8>> = default_configs().into_iter().map(String::into_bytes).collect();
        seeds.extend(gannet::train::presets::ALL.iter().map(|p| p.toml.as_bytes().to_vec()));
        seeds.extend(gannet::train::i2i::presets::ALL.iter().map(|p| p.toml.as_bytes().to_vec()));
        // Small networks of every architecture (built and trained one step by the target).
        seeds.extend(super::tiny::tiny_train_tomls(std::path::Path::new("runs")).into_iter().map(String::into_bytes));
        // Short image-to-image overrides (laid over a task's defaults).
        for t in ["pix2pix", "cyclegan", "superres"] {
            seeds.push(format!("task = \"{t}\"\n\n[data]\nresolution = 64\n\n[model]\nscale = 4\nd_layers = 2\n").into_bytes());
        }
        seeds.push(Vec::new());
        seeds
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        let mut d: Vec<Vec<u8>> = self.keys.iter().map(|(_, k)| format!("{k} = ").into_bytes()).collect();
        d.extend(self.keys.iter().filter(|(s, _)| !s.is_empty()).map(|(s, _)| format!("\n[{s}]\n").into_bytes()));
        d.extend(self.words.iter().map(|w| w.clone().into_bytes()));
        d.extend(["=", "\n", "[", "]", "{", "}", ",", "\"", "'''", "\"\"\"", "#", ".", "[[", "]]"].map(|s| s.as_bytes().to_vec()));
        d.sort();
        d.dedup();
        d
    }

    fn max_len(&self) -> usize {
        16 << 10
    }
}

fn train(text: &str, data: &[u8]) -> String {
    let cfg = match TrainConfig::from_toml_str(text) {
        Ok(c) => c,
        Err(e) => return format!("train: {}", first_line(&e.to_string())),
    };
    let v = cfg.validate();
    // What `gannet train` writes into the run folder and the checkpoint must read back the same.
    let t = cfg.to_toml();
    let back = TrainConfig::from_toml_str(&t).unwrap_or_else(|e| panic!("TrainConfig::to_toml does not read back: {e}\n--- to_toml:\n{t}"));
    assert_eq!(back.to_toml(), t, "TrainConfig::to_toml is not stable across a round trip");
    assert_eq!(back.validate().is_ok(), v.is_ok(), "a round trip through to_toml changes whether the config validates");
    let mut out = outcome("train validate", &v);
    if v.is_ok() {
        out += &format!(" | {}", build_and_step(&cfg, data));
    }
    out
}

/// Whether the config's networks are small enough to build in a fuzz iteration (sizes a user
/// may legitimately set large are skipped, not reported).
fn small(cfg: &TrainConfig) -> bool {
    let Ok(toml::Value::Table(model)) = toml::Value::try_from(&cfg.model) else { return false };
    let sizes_ok = model.iter().all(|(k, v)| match v.as_integer() {
        None => true,
        Some(n) if k.contains("steps") || k.contains("every") => n >= 0,
        Some(n) if k == "channel_base" => n <= 8192,
        Some(n) if k.contains("layers") || k.contains("group") => n <= 8,
        Some(n) => n <= 128,
    });
    sizes_ok && cfg.data.resolution.unwrap_or(28) <= 32 && cfg.schedule.d_steps_per_g <= 4
}

/// Builds what `gannet train` builds from a validated config and runs one training step on
/// random images (on a fresh thread: second-order gradients must be switched on before a
/// thread's first backward pass).
fn build_and_step(cfg: &TrainConfig, data: &[u8]) -> String {
    if !small(cfg) {
        return "build: skipped (large sizes)".into();
    }
    let channels = match cfg.data.channels {
        Channels::Rgb => 3,
        Channels::Grey | Channels::Auto => 1,
    };
    let shape = ImageShape { channels, resolution: cfg.data.resolution.unwrap_or(28) };
    let classes = match cfg.model.classes_for(1 + pick_from(data, 12, 10)) {
        Ok(c) => c,
        Err(e) => return format!("build: {}", first_line(&e.to_string())),
    };
    // A batch of at most 2 (the config's batch size also sizes StyleGAN2's path-length batch).
    let batch = cfg.schedule.batch_size.min(2);
    let mut cfg = cfg.clone();
    cfg.schedule.batch_size = batch;
    let cfg = &cfg;
    std::thread::scope(|s| {
        s.spawn(|| -> String {
            let device = Device::Cpu;
            let mut state = match GanState::with_classes(cfg, shape, classes, &device) {
                Ok(s) => s,
                Err(e) => return format!("build: {}", first_line(&e.to_string())),
            };
            let step = state.step(0, |i| {
                let images = Tensor::rand(-1f32, 1f32, (batch, shape.channels, shape.resolution, shape.resolution), &device)?;
                let labels = (classes > 0)
                    .then(|| Tensor::from_vec((0..batch as u32).map(|j| (j + i as u32) % classes as u32).collect::<Vec<u32>>(), batch, &device))
                    .transpose()?;
                Ok(RealBatch { images, labels })
            });
            let sample = match classes {
                0 => state.latents(0, 1).and_then(|z| state.sampling_generator().forward(&z, None, gannet::nn::Mode::Eval)),
                k => state.latents(0, 1).and_then(|z| {
                    let label = Tensor::from_vec(vec![(k - 1) as u32], 1, &device)?;
                    state.sampling_generator().forward(&z, Some(&label), gannet::nn::Mode::Eval)
                }),
            };
            format!("{} | {}", outcome("step", &step), outcome("sample", &sample))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn i2i(text: &str, data: &[u8]) -> String {
    let mut out = Vec::new();
    match I2iConfig::from_toml_str(text) {
        Ok(cfg) => {
            let v = cfg.validate();
            let t = cfg.to_toml();
            let back = I2iConfig::from_toml_str(&t).unwrap_or_else(|e| panic!("I2iConfig::to_toml does not read back: {e}\n--- to_toml:\n{t}"));
            assert_eq!(back.to_toml(), t, "I2iConfig::to_toml is not stable across a round trip");
            out.push(outcome("i2i validate", &v));
        }
        Err(e) => out.push(format!("i2i: {}", first_line(&e.to_string()))),
    }
    let preset = gannet::train::i2i::presets::ALL[pick_from(data, 14, gannet::train::i2i::presets::ALL.len())];
    let p = preset.with_overrides(Some(text));
    out.push(outcome("i2i preset", &p));
    if let Ok(cfg) = p {
        out.push(outcome("i2i preset validate", &cfg.validate()));
    }
    let task = TASKS[pick_from(data, 13, 3)];
    let over = I2iConfig::from_toml_over_defaults(text, Some(task));
    out.push(outcome("i2i over defaults", &over));
    if let Ok(cfg) = over {
        out.push(outcome("i2i over validate", &cfg.validate()));
    }
    out.join(" | ")
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// TOML-aware mutations: a number replaced by an edge case, a line removed, repeated or taken
/// from another config, a known setting set to an odd value, an enum word swapped.
pub fn mutate_toml(d: &mut Vec<u8>, r: &mut Rng, other: &[u8], keys: &[(String, String)], words: &[String]) {
    let value = |r: &mut Rng| -> String {
        match r.below(3) {
            0 => r.pick(INTERESTING_NUMBERS).to_string(),
            1 if !words.is_empty() => r.pick(words).clone(),
            _ => r.pick(&["1", "0", "-1", "0.0", "2.5e-3", "1e-9", "0.999", "1.0", "28", "64", "4", "\"x\"", "true"]).to_string(),
        }
    };
    match r.below(6) {
        0 => replace_number(d, r),
        1 => mutate_lines(d, r, other),
        2 | 3 if !keys.is_empty() => {
            // `key = value` under its section (appended: a later section header starts it).
            let (section, key) = r.pick(keys).clone();
            let v = value(r);
            let line = if section.is_empty() || r.one_in(5) {
                format!("{key} = {v}\n")
            } else if r.one_in(3) {
                format!("{section}.{key} = {v}\n")
            } else {
                format!("\n[{section}]\n{key} = {v}\n")
            };
            if !line.starts_with('\n') {
                // Top-level and dotted keys must come before the first table.
                let mut t = line.into_bytes();
                t.extend_from_slice(d);
                *d = t;
            } else {
                d.extend_from_slice(line.as_bytes());
            }
        }
        4 => {
            // The value of a random `key = value` line.
            let text = String::from_utf8_lossy(d).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            let with_value: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains('=')).collect();
            if with_value.is_empty() {
                return;
            }
            let i = *r.pick(&with_value);
            let key = lines[i].split('=').next().unwrap_or("").trim_end().to_string();
            let v = value(r);
            let mut new: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            new[i] = format!("{key} = {v}");
            *d = new.join("\n").into_bytes();
        }
        _ => {
            // An enum word swapped for another.
            if words.is_empty() {
                return;
            }
            let text = String::from_utf8_lossy(d).into_owned();
            let present: Vec<&String> = words.iter().filter(|w| w.starts_with('"') && text.contains(w.as_str())).collect();
            if let Some(&w) = present.get(r.below(present.len().max(1))) {
                let new = r.pick(words).clone();
                *d = text.replacen(w.as_str(), &new, 1).into_bytes();
            }
        }
    }
}
