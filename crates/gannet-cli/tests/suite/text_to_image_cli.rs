//! Text-to-image from the command line and the studio, on a tiny run over captioned digits:
//! `train --config` (kind = "text-to-image") and `--resume`, `sample --prompt` and
//! `--prompt-to`, the category classifier (`classifier --data captioned:DIR`), `eval`, the
//! studio's prompt box, and the errors for unknown words, empty prompts and GAN-only flags.

use crate::studio_common::{gannet, Studio};
use gannet_studio::client::{self, data_url_bytes};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

const NAMES: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

fn run(args: &[&str]) -> Output {
    gannet().args(args).env("GANNET_DATA", data_root()).output().expect("runs gannet")
}

fn data_root() -> PathBuf {
    std::env::var_os("GANNET_DATA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "gannet {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "gannet {args:?} should fail");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Fixture {
    root: PathBuf,
    data: PathBuf,
    ckpt: PathBuf,
}

/// 1,100 built-in digits in one subfolder per digit name (the categories), each with a caption
/// ("a handwritten seven, number 12"), and a tiny text-to-image run trained on them from a
/// config file.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("t2i-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data = root.join("digits");
        let all = gannet::data::load(&gannet::data::DataSource::BuiltinDigits, &gannet::data::LoadOptions::default()).unwrap();
        let idx: Vec<usize> = (0..1100).collect();
        let images = gannet::image_io::to_images(&all.batch_tensor(&idx, &gannet::candle_core::Device::Cpu).unwrap()).unwrap();
        for (i, img) in images.iter().enumerate() {
            let name = NAMES[all.labels().unwrap()[i] as usize];
            let dir = data.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            gannet::image_io::save_png(img, &dir.join(format!("d{i:04}.png"))).unwrap();
            std::fs::write(dir.join(format!("d{i:04}.txt")), format!("a handwritten {name}, number {i}")).unwrap();
        }
        let cfg = root.join("t2i.toml");
        std::fs::write(
            &cfg,
            format!(
                "kind = \"text-to-image\"\n[data]\nsource = \"{}\"\nresolution = 28\n[text]\nword_dim = 8\nhidden = 8\nembed_dim = 8\nimage_channels = 4\n\
                 [model]\nlatent_dim = 4\ncond_dim = 4\ng_channels = 4\nd_channels = 4\n[schedule]\nsteps = 6\npretrain_steps = 3\nbatch_size = 8\n\
                 [output]\nsample_every = 6\ncheckpoint_every = 6\neval_every = 0\n",
                data.display()
            ),
        )
        .unwrap();
        let out = root.join("run");
        let msg = ok(&["train", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(msg.contains("training text-to-image") && msg.contains("3 of them pretraining"), "{msg}");
        Fixture { root, data, ckpt: out.join("checkpoints/latest.safetensors") }
    })
}

#[test]
fn prompts_make_grids_and_interpolations_and_bad_prompts_are_named() {
    let f = fixture();
    let ckpt = f.ckpt.to_str().unwrap();
    let grid = f.root.join("sevens.png");
    let msg = ok(&["sample", "--checkpoint", ckpt, "--prompt", "a handwritten seven", "-n", "4", "--out", grid.to_str().unwrap()]);
    assert!(msg.contains("4 images of \"a handwritten seven\""), "{msg}");
    let text = gannet::image_io::read_png_text(&grid).unwrap();
    assert!(text.iter().any(|(k, v)| k == "Prompt" && v == "a handwritten seven"), "{text:?}");
    let img = image::open(&grid).unwrap();
    assert_eq!((img.width(), img.height()), (2 + 2 * 30, 2 + 2 * 30));

    let walk = f.root.join("walk.png");
    ok(&["sample", "--checkpoint", ckpt, "--prompt", "seven", "--prompt-to", "two", "-n", "2", "--frames", "5", "--out", walk.to_str().unwrap()]);
    let img = image::open(&walk).unwrap();
    assert_eq!((img.width(), img.height()), (2 + 5 * 30, 2 + 2 * 30));

    let e = fails(&["sample", "--checkpoint", ckpt, "--prompt", "a purple sevem", "--out", grid.to_str().unwrap()]);
    assert!(e.contains("'purple'") && e.contains("'sevem' -> 'seven'?"), "{e}");
    let e = fails(&["sample", "--checkpoint", ckpt, "--prompt", " , ", "--out", grid.to_str().unwrap()]);
    assert!(e.contains("empty"), "{e}");
    let e = fails(&["sample", "--checkpoint", ckpt, "--out", grid.to_str().unwrap()]);
    assert!(e.contains("--prompt"), "{e}");
}

#[test]
fn a_text_to_image_run_resumes_and_is_evaluated_with_its_category_classifier() {
    let f = fixture();
    // Resume from a copy, so the other tests keep the 6-step checkpoint.
    let copy = f.root.join("resumed");
    std::fs::create_dir_all(copy.join("checkpoints")).unwrap();
    std::fs::copy(&f.ckpt, copy.join("checkpoints/latest.safetensors")).unwrap();
    let resumed = copy.join("checkpoints/latest.safetensors");
    let (resumed, out) = (resumed.to_str().unwrap(), copy.to_str().unwrap());
    let e = fails(&["train", "--resume", resumed, "--out", out, "--steps", "8", "--seed", "5"]);
    assert!(e.contains("cannot change seed"), "{e}");
    ok(&["train", "--resume", resumed, "--out", out, "--steps", "8"]);
    assert!(std::fs::read_to_string(copy.join("metrics.csv")).unwrap().lines().last().unwrap().starts_with("8,"));

    let data = f.data.to_str().unwrap();
    let classifier = f.root.join("digit-names.safetensors");
    let msg = ok(&[
        "classifier",
        "--data",
        &format!("captioned:{data}"),
        "--test-data",
        &format!("captioned-held-out:{data}"),
        "--resolution",
        "28",
        "--steps",
        "30",
        "--out",
        classifier.to_str().unwrap(),
        "--run-dir",
        f.root.join("classifier-run").to_str().unwrap(),
    ]);
    assert!(msg.contains("10 classes"), "{msg}");
    let out =
        run(&["eval", "--checkpoint", f.ckpt.to_str().unwrap(), "--metrics", "r-precision,category", "--classifier", classifier.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = v["captions"].as_u64().unwrap();
    assert!(n > 80 && n < 150, "about a tenth of 1,100 captions are held out: {n}");
    for key in ["r_precision", "category_accuracy", "category_balanced"] {
        for side in ["generated", "real"] {
            let x = v[key][side].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{key}.{side} = {x}");
        }
    }
    assert!((v["r_precision"]["chance"].as_f64().unwrap() - 0.01).abs() < 1e-9);
    let e = fails(&["eval", "--checkpoint", f.ckpt.to_str().unwrap(), "--metrics", "category"]);
    assert!(e.contains("--classifier"), "{e}");
    let e = fails(&["eval", "--checkpoint", f.ckpt.to_str().unwrap(), "--metrics", "cfid"]);
    assert!(e.contains("r-precision, category, fid"), "{e}");
}

#[test]
fn the_preset_is_listed_and_gan_only_flags_are_refused() {
    let help = ok(&["train", "--help"]);
    let o = run(&["train", "--help"]);
    let help = help + &String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("t2i-emoji"), "{help}");
    let o = run(&["train", "--preset", "t2i-emoji", "--print-config"]);
    assert!(o.status.success());
    let toml = String::from_utf8_lossy(&o.stdout);
    assert!(toml.contains("kind = \"text-to-image\"") && toml.contains("pretrain_steps"), "{toml}");
    let e = fails(&["train", "--preset", "t2i-emoji", "--arch", "dcgan", "--conditional", "acgan"]);
    assert!(e.contains("--arch, --conditional not used by text-to-image"), "{e}");
}

#[test]
fn the_studio_draws_prompts_and_names_unknown_words() {
    let f = fixture();
    let s = Studio::start(&["--checkpoint", f.ckpt.to_str().unwrap()]);
    let info = client::get(s.addr, "/api/checkpoints/c0").unwrap().json();
    assert_eq!(info["kind"].as_str(), Some("text-to-image"));
    assert_eq!(info["capabilities"]["prompt"].as_bool(), Some(true));
    assert_eq!(info["capabilities"]["generate"].as_bool(), Some(false));
    let r = client::post_json(s.addr, "/api/prompt", &json!({"checkpoint": "c0", "prompt": "a handwritten three", "count": 3, "seed": 2})).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let images = r.json()["images"].as_array().unwrap().iter().map(|u| data_url_bytes(u.as_str().unwrap()).unwrap()).collect::<Vec<_>>();
    assert_eq!(images.len(), 3);
    assert_eq!(image::load_from_memory(&images[0]).unwrap().width(), 28);
    let r = client::post_json(s.addr, "/api/prompt", &json!({"checkpoint": "c0", "prompt": "a handwritten dragon"})).unwrap();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("'dragon'"), "{}", r.text());
    let r = client::post_json(s.addr, "/api/generate", &json!({"checkpoint": "c0"})).unwrap();
    assert_eq!(r.status, 422, "{}", r.text());
    let page = client::get(s.addr, "/").unwrap().text();
    assert!(page.contains("id=\"prompt-panel\""));
}
