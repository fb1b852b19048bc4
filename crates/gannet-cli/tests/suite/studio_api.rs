//! The studio's HTTP API, through a real `gannet serve` on a loopback port: listing and switching
//! checkpoints, generate (by seed, matching `gannet sample`), interpolation, translate, the
//! training view, validation (JSON 4xx), path safety, disconnecting clients and 100 concurrent
//! requests; and the hardening: Host names, cross-origin POSTs, content types, timeouts for
//! stalled connections, the connection cap, malformed requests and unloadable checkpoints.

use crate::studio_common;

use gannet::image_io;
use gannet_studio::client::{self, data_url_bytes, Response};
use gannet_studio::loadtest::{self, LoadOptions};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use studio_common::{gannet, tiny_run, Studio};

/// Two tiny runs (unconditional, conditional) trained once for all tests of this file.
struct Fixture {
    root: PathBuf,
    uncond: PathBuf,
    cond: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("studio-api-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let uncond = tiny_run(&root.join("runs").join("uncond"), &[]);
        let cond = tiny_run(&root.join("runs").join("cond"), &["--conditional", "projection"]);
        Fixture { root, uncond, cond }
    })
}

/// A server offering c0 = unconditional, c1 = conditional, the two run folders and `test:invert`.
fn studio() -> Studio {
    let f = fixture();
    Studio::start(&[
        "--checkpoint",
        f.uncond.to_str().unwrap(),
        "--checkpoint",
        f.cond.to_str().unwrap(),
        "--runs",
        f.root.join("runs").to_str().unwrap(),
        "--test-models",
    ])
}

fn post(addr: SocketAddr, path: &str, body: Value) -> Response {
    client::post_json(addr, path, &body).expect("answers")
}

fn get(addr: SocketAddr, path: &str) -> Response {
    client::get(addr, path).expect("answers")
}

fn generate(addr: SocketAddr, body: Value) -> Vec<Vec<u8>> {
    let r = post(addr, "/api/generate", body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["images"].as_array().unwrap().iter().map(|u| data_url_bytes(u.as_str().unwrap()).unwrap()).collect()
}

/// Decoded pixels of a PNG.
fn pixels(png: &[u8]) -> Vec<u8> {
    image::load_from_memory(png).expect("a PNG").to_rgb8().into_raw()
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

/// Asserts a JSON error with this status whose message contains `needle`.
fn assert_error(r: &Response, status: u16, needle: &str) {
    let msg = r.json()["error"].as_str().map(str::to_string);
    assert_eq!(r.status, status, "{}", r.text());
    let msg = msg.unwrap_or_else(|| panic!("not a JSON error: {}", r.text()));
    assert!(msg.contains(needle), "'{msg}' does not say '{needle}'");
}

fn png_text(png: &[u8]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.png");
    std::fs::write(&p, png).unwrap();
    image_io::read_png_text(&p).unwrap()
}

#[test]
fn lists_checkpoints_and_runs_and_switches_between_them() {
    let s = studio();
    let list = get(s.addr, "/api/checkpoints").json();
    let ids = |k: &str| list[k].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(ids("checkpoints"), ["c0", "c1", "run:cond", "run:uncond", "test:invert"]);
    assert_eq!(ids("runs"), ["c0", "c1"], "the run folders of c0 and c1 are listed once");
    let info = get(s.addr, "/api/checkpoints/c0").json();
    assert_eq!(info["kind"], "gan");
    assert_eq!(info["classes"], json!([]));
    let caps = &info["capabilities"];
    assert_eq!((caps["generate"].as_bool(), caps["classes"].as_bool()), (Some(true), Some(false)));
    assert_eq!((caps["style_mixing"].as_bool(), caps["translate"].as_bool()), (Some(false), Some(false)));
    let info = get(s.addr, "/api/checkpoints/c1").json();
    assert_eq!(info["classes"].as_array().unwrap().len(), 10, "{info}");
    assert_eq!(info["capabilities"]["classes"], true);
    let info = get(s.addr, "/api/checkpoints/test:invert").json();
    assert_eq!((info["kind"].as_str(), info["capabilities"]["translate"].as_bool()), (Some("image-to-image"), Some(true)));
    // Switching: the same request on the two checkpoints gives different images.
    let a = generate(s.addr, json!({"checkpoint": "c0", "seed": 3, "count": 2}));
    let b = generate(s.addr, json!({"checkpoint": "c1", "seed": 3, "count": 2, "class": 7}));
    assert_ne!(pixels(&a[0]), pixels(&b[0]));
    let c = generate(s.addr, json!({"checkpoint": "run:uncond", "seed": 3, "count": 2}));
    assert_eq!(pixels(&a[0]), pixels(&c[0]), "c0 and run:uncond are the same file");
}

#[test]
fn generate_returns_pngs_that_differ_by_seed_and_match_gannet_sample() {
    let s = studio();
    let one = generate(s.addr, json!({"checkpoint": "c0", "seed": 1, "count": 4}));
    let again = generate(s.addr, json!({"checkpoint": "c0", "seed": 1, "count": 4}));
    let two = generate(s.addr, json!({"checkpoint": "c0", "seed": 2, "count": 4}));
    assert_eq!(one.len(), 4);
    assert_eq!(one, again, "a seed repeats its images");
    assert_ne!(pixels(&one[0]), pixels(&two[0]), "another seed gives other images");
    assert_ne!(pixels(&one[0]), pixels(&one[1]));
    // The same images as `gannet sample --seed 1`.
    let dir = tempfile::tempdir().unwrap();
    let o =
        gannet().args(["sample", "--checkpoint", fixture().uncond.to_str().unwrap(), "-n", "4", "--seed", "1", "--out-dir"]).arg(dir.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (i, png) in one.iter().enumerate() {
        let sampled = std::fs::read(dir.path().join(format!("{i:05}.png"))).unwrap();
        assert_eq!(pixels(png), pixels(&sampled), "image {i} differs from gannet sample's");
    }
    // Provenance text: synthetic, the checkpoint, the seed.
    let text = png_text(&one[0]);
    let has = |k: &str, v: &str| text.iter().any(|(a, b)| a == k && b.contains(v));
    assert!(has("gannet:source", "synthetic") && has("gannet:seed", "1"), "{text:?}");
    assert!(has("gannet:checkpoint", "latest.safetensors"), "{text:?}");
    // Truncation 0: every latent is zero, so every seed gives the same image.
    let z1 = generate(s.addr, json!({"checkpoint": "c0", "seed": 1, "count": 1, "truncation": 0.0}));
    let z2 = generate(s.addr, json!({"checkpoint": "c0", "seed": 9, "count": 1, "truncation": 0.0}));
    assert_eq!(pixels(&z1[0]), pixels(&z2[0]));
    // Conditional: a class goes into the text chunks; the grid is there too.
    let r = post(s.addr, "/api/generate", json!({"checkpoint": "c1", "seed": 1, "count": 3, "class": 4}));
    assert_eq!(r.json()["labels"], json!([4, 4, 4]));
    let grid = data_url_bytes(r.json()["grid"].as_str().unwrap()).unwrap();
    assert!(png_text(&grid).iter().any(|(k, v)| k == "gannet:class-index" && v == "4"));
}

#[test]
fn interpolation_ends_are_the_two_samples() {
    let s = studio();
    for ckpt in ["c0", "c1"] {
        let a = generate(s.addr, json!({"checkpoint": ckpt, "seed": 5, "count": 8}));
        let b = generate(s.addr, json!({"checkpoint": ckpt, "seed": 6, "count": 8}));
        let frame = |t: f32| {
            let r = post(s.addr, "/api/interpolate", json!({"checkpoint": ckpt, "a": {"seed": 5, "index": 3}, "b": {"seed": 6, "index": 6}, "t": t}));
            assert_eq!((r.status, r.header("content-type")), (200, Some("image/png")), "{}", r.text());
            pixels(&r.body)
        };
        // Batch size can change the float summation order of the convolutions: allow 1 level.
        assert!(max_diff(&frame(0.0), &pixels(&a[3])) <= 1, "{ckpt}: t = 0 is not sample A");
        assert!(max_diff(&frame(1.0), &pixels(&b[6])) <= 1, "{ckpt}: t = 1 is not sample B");
        let (mid, pa, pb) = (frame(0.5), pixels(&a[3]), pixels(&b[6]));
        assert!(max_diff(&pa, &pb) > 20, "{ckpt}: samples A and B are too alike for this test");
        assert!(max_diff(&mid, &pa) > 1 && max_diff(&mid, &pb) > 1, "{ckpt}: the middle frame is an end");
    }
}

#[test]
fn bad_requests_get_clear_json_4xx() {
    let s = studio();
    let g = |body: Value| post(s.addr, "/api/generate", body);
    assert_error(&g(json!({"checkpoint": "c0", "count": 0})), 400, "count must be 1 to 64");
    assert_error(&g(json!({"checkpoint": "c0", "count": 65})), 400, "count must be 1 to 64");
    assert_error(&g(json!({"checkpoint": "c0", "truncation": 3.0})), 400, "truncation must be between 0 and 2");
    assert_error(&g(json!({"checkpoint": "c0", "colour": 1})), 422, "unknown field");
    assert_error(&g(json!({"seed": 1})), 422, "checkpoint");
    assert_error(&g(json!({"checkpoint": "c0", "seed": -1})), 422, "seed");
    assert_error(&g(json!({"checkpoint": "nope"})), 404, "no checkpoint or run with id 'nope'");
    assert_error(&g(json!({"checkpoint": "c0", "class": 1})), 400, "unconditional");
    assert_error(&g(json!({"checkpoint": "c1", "class": 10})), 400, "class 10 is out of range: this model has 10 classes");
    assert_error(&g(json!({"checkpoint": "test:invert"})), 422, "image-to-image model");
    let r = client::request(s.addr, "POST", "/api/generate", Some("application/json"), b"{not json", Duration::from_secs(30)).unwrap();
    assert_error(&r, 400, "");
    let r = client::request(s.addr, "POST", "/api/generate", Some("text/plain"), b"{}", Duration::from_secs(30)).unwrap();
    assert_error(&r, 415, "application/json");
    let i = |t: f32, index: usize| post(s.addr, "/api/interpolate", json!({"checkpoint": "c0", "a": {"seed": 1, "index": index}, "b": {"seed": 2}, "t": t}));
    assert_error(&i(1.5, 0), 400, "t must be between 0");
    assert_error(&i(0.5, 64), 400, "a.index must be below 64");
    let mix = post(s.addr, "/api/style-mix", json!({"checkpoint": "c0", "coarse": {"seed": 1}, "fine": {"seed": 2}, "crossover": 2}));
    assert_error(&mix, 422, "style mixing needs a StyleGAN2 checkpoint");
    // Translate: a GAN says what it is; uploads are bounded and must be images.
    let upload = |id: &str, body: &[u8]| {
        client::request(s.addr, "POST", &format!("/api/translate?checkpoint={id}"), Some("image/png"), body, Duration::from_secs(30)).unwrap()
    };
    let png = small_png(8, 8);
    assert_error(&upload("c0", &png), 422, "this checkpoint is not an image-to-image model");
    assert_error(&upload("test:invert", &vec![0u8; 5 << 20]), 413, "at most 4 MiB");
    assert_error(&upload("test:invert", b"GIF89a not really"), 415, "not a PNG or JPEG");
    assert_error(&upload("test:invert", b""), 400, "no image");
    assert_error(&upload("test:invert", &small_png(1500, 2)), 422, "1500x2");
    let r = client::request(s.addr, "POST", "/api/translate", Some("image/png"), &png, Duration::from_secs(30)).unwrap();
    assert_error(&r, 400, "checkpoint");
    // Unknown routes and methods.
    assert_error(&get(s.addr, "/api/nothing"), 404, "no such page");
    assert_error(&get(s.addr, "/api/generate"), 405, "method");
    assert_error(&get(s.addr, "/api/runs/c9/metrics"), 404, "no checkpoint or run with id 'c9'");
    assert_error(&get(s.addr, "/api/runs/test:invert/metrics"), 404, "no run folder");
}

fn small_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 20) as u8, (y * 20) as u8, 99])));
    image_io::encode_png_with_text(&img, &[]).unwrap()
}

#[test]
fn paths_in_requests_never_reach_the_file_system() {
    let s = studio();
    // Ids are looked up in the server's own list; nothing is joined to a path.
    let secret = fixture().uncond.display().to_string();
    for id in ["../../../../etc/passwd", "/etc/passwd", &secret, "run:..", "run:../runs/uncond", "c0/../c1", "run:uncond/../../cond"] {
        assert_error(&post(s.addr, "/api/generate", json!({"checkpoint": id, "count": 1})), 404, "no checkpoint or run with id");
        let enc = id.replace('/', "%2F");
        assert_error(&get(s.addr, &format!("/api/runs/{enc}/metrics")), 404, "no checkpoint or run with id");
        assert_error(&get(s.addr, &format!("/api/checkpoints/{enc}")), 404, "no checkpoint or run with id");
    }
    assert_error(&post(s.addr, "/api/generate", json!({"checkpoint": "x".repeat(5000)})), 404, "...");
    // Only the three page files are served; nothing is read from a folder.
    for path in
        ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/app.js/../../Cargo.toml", "/assets/app.js", "/etc/passwd", "/api/runs/run:uncond/../../../Cargo.toml"]
    {
        let r = get(s.addr, path);
        assert!(r.status == 404 || r.status == 400, "{path}: {} {}", r.status, r.text());
    }
    assert!(get(s.addr, "/").text().contains("gannet studio"));
    assert_eq!(get(s.addr, "/app.js").header("content-type"), Some("text/javascript; charset=utf-8"));
}

#[test]
fn translate_runs_an_image_to_image_model() {
    let s = studio();
    let png = small_png(16, 12);
    let r = client::request(s.addr, "POST", "/api/translate?checkpoint=test:invert", Some("image/png"), &png, Duration::from_secs(30)).unwrap();
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/png")), "{}", r.text());
    let (input, output) = (pixels(&png), pixels(&r.body));
    assert_eq!(input.iter().map(|v| 255 - v).collect::<Vec<_>>(), output, "the stand-in inverts colours");
    assert!(png_text(&r.body).iter().any(|(k, v)| k == "gannet:source" && v == "synthetic"));
}

#[test]
fn training_view_serves_metrics_and_latest_samples() {
    let s = studio();
    for id in ["run:uncond", "c0"] {
        let csv = get(s.addr, &format!("/api/runs/{id}/metrics"));
        assert_eq!(csv.status, 200, "{}", csv.text());
        assert!(csv.text().starts_with("step,d_loss,g_loss"), "{}", csv.text());
        assert!(csv.text().lines().count() >= 2, "{}", csv.text());
        let png = get(s.addr, &format!("/api/runs/{id}/latest.png"));
        assert_eq!((png.status, png.header("content-type")), (200, Some("image/png")));
        assert!(image::load_from_memory(&png.body).is_ok());
    }
    // A run folder that appears after the server started is listed and followed.
    let runs = tempfile::tempdir().unwrap();
    let s = Studio::start(&["--runs", runs.path().to_str().unwrap()]);
    assert_eq!(get(s.addr, "/api/checkpoints").json()["runs"], json!([]));
    let late = runs.path().join("late");
    std::fs::create_dir_all(late.join("samples")).unwrap();
    std::fs::write(late.join("metrics.csv"), "step,d_loss,g_loss,d_real,d_fake,images_per_s,elapsed_s\n").unwrap();
    let list = get(s.addr, "/api/checkpoints").json();
    assert!(list["runs"].as_array().unwrap().iter().any(|r| r["id"] == "run:late"), "{list}");
    assert!(!list["checkpoints"].as_array().unwrap().iter().any(|r| r["id"] == "run:late"), "no checkpoint yet");
    assert_error(&get(s.addr, "/api/runs/run:late/latest.png"), 404, "no samples/latest.png yet");
    assert_error(&post(s.addr, "/api/generate", json!({"checkpoint": "run:late"})), 404, "no checkpoint yet");
}

#[test]
fn survives_clients_that_disconnect_mid_request() {
    let mut s = studio();
    let body = json!({"checkpoint": "c0", "seed": 1, "count": 64}).to_string();
    for i in 0..30 {
        let mut c = TcpStream::connect(s.addr).unwrap();
        let head = format!("POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
        c.write_all(head.as_bytes()).unwrap();
        match i % 3 {
            0 => c.write_all(body.as_bytes()).unwrap(),        // whole request, gone before the answer
            1 => c.write_all(&body.as_bytes()[..10]).unwrap(), // half a body
            _ => {}                                            // headers only
        }
        drop(c);
    }
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(b"GET /api/checkp").unwrap(); // half a request line
    drop(c);
    let r = post(s.addr, "/api/generate", json!({"checkpoint": "c0", "seed": 2, "count": 4}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.alive());
}

#[test]
fn hundred_concurrent_generate_requests_all_succeed() {
    let s = studio();
    let opts = LoadOptions { checkpoint: "c0".into(), requests: 100, concurrency: 100, count: 16, timeout: Duration::from_secs(90) };
    let t = Instant::now();
    let report = loadtest::run(s.addr, &opts);
    eprintln!("load test (tiny model): {report:?}");
    assert_eq!(report.ok, 100, "{:?}", report.errors);
    assert!(t.elapsed() < Duration::from_secs(60), "100 requests took {:?}", t.elapsed());
}

#[test]
fn a_stylegan2_checkpoint_mixes_styles_in_the_studio() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("studio-sg2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let ckpt = tiny_run(&root.join("sg2"), &["--arch", "stylegan2", "--resolution", "8"]);
    let s = Studio::start(&["--checkpoint", ckpt.to_str().unwrap()]);
    let info = get(s.addr, "/api/checkpoints/c0").json();
    assert_eq!(info["capabilities"]["style_mixing"].as_bool(), Some(true));
    // 4x4: conv + toRGB; 8x8: two convs + toRGB.
    assert_eq!(info["style_layers"].as_u64(), Some(5));
    let mix = |crossover: usize, fine: u64| {
        post(s.addr, "/api/style-mix", json!({"checkpoint": "c0", "coarse": {"seed": 1}, "fine": {"seed": fine}, "crossover": crossover}))
    };
    let (a, b) = (mix(2, 2), mix(2, 3));
    for r in [&a, &b] {
        assert_eq!((r.status, r.header("content-type")), (200, Some("image/png")), "{}", r.text());
    }
    assert_ne!(a.body, b.body, "another fine-style sample changes the mix");
    assert_error(&mix(5, 2), 400, "crossover must be 1 to 4");
    let _ = std::fs::remove_dir_all(&root);
}

fn request_with(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    client::request_with(addr, method, path, headers, body, Duration::from_secs(60)).expect("answers")
}

#[test]
fn only_requests_addressed_to_this_machine_by_a_loopback_name_are_answered() {
    let s = studio();
    let port = s.addr.port();
    let get_as = |host: &str, path: &str| request_with(s.addr, "GET", path, &[("Host", host)], b"");
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        "localhost".into(),
        format!("[::1]:{port}"),
        format!("studio.localhost:{port}"),
    ] {
        let r = get_as(&host, "/api/checkpoints");
        assert_eq!(r.status, 200, "Host: {host}: {}", r.text());
    }
    // DNS rebinding: a page on another name that now resolves to 127.0.0.1 sends its own name.
    let body = json!({"checkpoint": "c0", "count": 1}).to_string();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("0.0.0.0:{port}"),
        format!("user@localhost:{port}"),
    ] {
        assert_error(&get_as(&host, "/api/checkpoints"), 421, "DNS rebinding");
        assert_error(&get_as(&host, "/"), 421, &format!("open http://{}/", s.addr));
        let r = request_with(s.addr, "POST", "/api/generate", &[("Host", &host), ("Content-Type", "application/json")], body.as_bytes());
        assert_error(&r, 421, "localhost");
    }
    assert_error(&get_as("", "/api/checkpoints"), 400, "no Host header");
    // An absolute request target names the server too, and wins over Host.
    assert_error(&request_with(s.addr, "GET", "http://evil.example/api/checkpoints", &[], b""), 421, "evil.example");
}

#[test]
fn posts_from_other_web_pages_are_refused() {
    let s = studio();
    let port = s.addr.port();
    let body = json!({"checkpoint": "c0", "count": 1}).to_string();
    let generate_from = |origin: &str, ct: &str| request_with(s.addr, "POST", "/api/generate", &[("Origin", origin), ("Content-Type", ct)], body.as_bytes());
    let png = small_png(8, 8);
    let upload_from =
        |origin: &str, ct: &str| request_with(s.addr, "POST", "/api/translate?checkpoint=test:invert", &[("Origin", origin), ("Content-Type", ct)], &png);
    let foreign = [
        "http://evil.example".to_string(),
        format!("http://evil.example:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("http://localhost:{port}"),
        "null".into(),
        format!("file://{}", s.addr),
    ];
    for origin in &foreign {
        assert_error(&generate_from(origin, "application/json"), 403, "cross-origin request refused");
        assert_error(&generate_from(origin, "text/plain"), 403, "cross-origin request refused");
        assert_error(&upload_from(origin, "image/png"), 403, "cross-origin request refused");
        assert_error(&upload_from(origin, "text/plain"), 403, "cross-origin request refused");
        // No CORS preflight is granted either.
        let pre = request_with(s.addr, "OPTIONS", "/api/generate", &[("Origin", origin), ("Access-Control-Request-Method", "POST")], b"");
        assert!(pre.status >= 400 && pre.header("access-control-allow-origin").is_none(), "{} {:?}", pre.status, pre.headers);
    }
    // The studio's own page (same scheme, host and port), and clients that send no Origin.
    let own = format!("http://{}", s.addr);
    assert_eq!(generate_from(&own, "application/json").status, 200);
    assert_eq!(upload_from(&own, "image/png").status, 200);
    let r = request_with(
        s.addr,
        "POST",
        "/api/generate",
        &[("Host", &format!("localhost:{port}")), ("Origin", &format!("http://localhost:{port}")), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post(s.addr, "/api/generate", json!({"checkpoint": "c0", "count": 1})).status, 200);
    // A cross-origin GET is answered, but without CORS headers the other page cannot read it.
    let r = request_with(s.addr, "GET", "/api/checkpoints", &[("Origin", "http://evil.example")], b"");
    assert!(r.status == 200 && r.header("access-control-allow-origin").is_none());
}

#[test]
fn uploads_must_be_images_and_json_routes_take_only_json() {
    let s = studio();
    let png = small_png(8, 8);
    let upload = |ct: Option<&str>| client::request(s.addr, "POST", "/api/translate?checkpoint=test:invert", ct, &png, Duration::from_secs(30)).unwrap();
    // The content types a page may send cross-origin without a preflight, and no type at all.
    for ct in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json"),
        None,
    ] {
        assert_error(&upload(ct), 415, "Content-Type image/png, image/jpeg or application/octet-stream");
    }
    for ct in ["image/png", "IMAGE/PNG", "image/jpeg", "application/octet-stream"] {
        let r = upload(Some(ct));
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
    }
    let body = json!({"checkpoint": "c0", "count": 1}).to_string();
    for route in ["/api/generate", "/api/interpolate", "/api/style-mix"] {
        for ct in [Some("text/plain"), Some("multipart/form-data; boundary=x"), Some("application/x-www-form-urlencoded"), None] {
            let r = client::request(s.addr, "POST", route, ct, body.as_bytes(), Duration::from_secs(30)).unwrap();
            assert_error(&r, 415, "application/json");
        }
    }
}

/// Reads until the server closes `c`; panics if it has not within `limit`. Returns what came.
fn read_until_closed(c: &mut TcpStream, limit: Duration) -> Vec<u8> {
    c.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server did not close the connection within {limit:?} ({e}); it sent {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

fn connect_and_send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(bytes).unwrap();
    c
}

#[test]
fn stalled_connections_are_closed_after_the_timeouts() {
    let mut s = Studio::start(&["--test-models", "--header-timeout", "1", "--idle-timeout", "1"]);
    let limit = Duration::from_secs(20);
    let opened = Instant::now();
    let mut silent = connect_and_send(s.addr, b"");
    let mut half_head = connect_and_send(s.addr, b"GET /api/checkpoints HTTP/1.1\r\nHost: 127");
    let mut no_body = connect_and_send(
        s.addr,
        b"POST /api/translate?checkpoint=test:invert HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\n0123",
    );
    // One answered request, then an idle keep-alive connection.
    let mut kept = connect_and_send(s.addr, b"GET /api/checkpoints HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // Slowloris: a head trickled a byte at a time never completes, however steady.
    let mut trickle = connect_and_send(s.addr, b"GET /api/checkpoints HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    let mut writer = trickle.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(100));
            if writer.write_all(b"a").is_err() {
                return true; // closed by the server
            }
        }
        false
    });
    assert!(read_until_closed(&mut silent, limit).is_empty());
    assert!(opened.elapsed() >= Duration::from_millis(900), "closed before the 1 s header timeout: {:?}", opened.elapsed());
    assert!(read_until_closed(&mut half_head, limit).is_empty());
    let answer = String::from_utf8_lossy(&read_until_closed(&mut no_body, limit)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("the request body stopped arriving"), "{answer}");
    let answer = String::from_utf8_lossy(&read_until_closed(&mut kept, limit)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(read_until_closed(&mut trickle, limit).is_empty());
    assert!(trickler.join().unwrap(), "the trickled head was never cut off");
    assert_eq!(get(s.addr, "/api/checkpoints").status, 200);
    assert!(s.alive());
}

#[test]
fn connections_past_the_cap_wait_for_a_free_slot() {
    // With 4 slots held by idle connections, a 5th is accepted only once one of them closes.
    let s = Studio::start(&["--test-models", "--max-connections", "4", "--header-timeout", "120"]);
    let idle: Vec<TcpStream> = (0..4).map(|_| connect_and_send(s.addr, b"")).collect();
    let r = client::request(s.addr, "GET", "/api/checkpoints", None, b"", Duration::from_secs(2));
    assert!(r.is_err(), "a 5th connection was served past the cap of 4: {r:?}");
    drop(idle);
    assert_eq!(get(s.addr, "/api/checkpoints").status, 200);
    // The probe: 210 idle sockets against the default cap of 128. Each is closed at its
    // header timeout, and a real request waits its turn instead of failing.
    let mut s = Studio::start(&["--test-models", "--header-timeout", "1"]);
    let mut idle: Vec<TcpStream> = (0..210).map(|_| connect_and_send(s.addr, b"")).collect();
    let r = client::request(s.addr, "GET", "/api/checkpoints", None, b"", Duration::from_secs(60)).expect("answered after the idle connections");
    assert_eq!(r.status, 200);
    for c in &mut idle {
        assert!(read_until_closed(c, Duration::from_secs(30)).is_empty());
    }
    assert!(s.alive());
}

#[test]
fn malformed_requests_are_answered_or_closed_and_the_server_keeps_serving() {
    let mut s = Studio::start(&["--test-models", "--header-timeout", "2", "--idle-timeout", "2"]);
    let big_header = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20));
    let many_headers = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n", (0..500).map(|i| format!("X-{i}: 1\r\n")).collect::<String>());
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "a".repeat(200_000));
    let huge_chunked = format!(
        "POST /api/translate?checkpoint=test:invert HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n{}",
        format!("100000\r\n{}\r\n", "a".repeat(0x100000)).repeat(5)
    );
    let probes: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\xff garbage\r\n\r\n".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}".to_vec(),
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n\r\n{}".to_vec(),
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec(),
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\n\r\n{}".to_vec(),
        b"GET /api/checkpoints HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n".to_vec(),
        b"GET /api/checkpoints/%ff%00%2e%2e HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        big_header.into_bytes(),
        many_headers.into_bytes(),
        long_path.into_bytes(),
        huge_chunked.into_bytes(),
    ];
    for (i, probe) in probes.iter().enumerate() {
        let mut c = TcpStream::connect(s.addr).unwrap();
        let mut writer = c.try_clone().unwrap();
        let probe = probe.clone();
        // Written from another thread: the server may answer and close before taking it all.
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&probe);
        });
        let answer = read_until_closed(&mut c, Duration::from_secs(30));
        let _ = sender.join();
        let text = String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
        // A 4xx (or hyper's 505 for an unknown HTTP version), or a closed socket; never a 500.
        assert!(answer.is_empty() || text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 505"), "probe {i}: {text}");
        assert!(s.alive(), "probe {i} stopped the server");
    }
    assert_eq!(get(s.addr, "/api/checkpoints").status, 200);
}

#[test]
fn a_checkpoint_that_cannot_be_loaded_is_an_error_answer_and_the_server_keeps_serving() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a checkpoint").unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(&f.uncond).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // Valid checksums, but metadata asking for a model of terabytes: refused before allocating.
    let huge = dir.path().join("huge.safetensors");
    let (tensors, mut meta) = gannet::checkpoint::load(&f.uncond, &gannet::candle_core::Device::Cpu).unwrap();
    for key in ["gannet_format", "crc32", "header_crc32"] {
        meta.remove(key);
    }
    let config = meta["config"]
        .lines()
        .map(|l| if l.starts_with("latent_dim = ") { "latent_dim = 4000000000".to_string() } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(config.contains("latent_dim = 4000000000"));
    meta.insert("config".into(), config);
    gannet::checkpoint::save(&huge, &tensors, &meta).unwrap();
    let mut s = Studio::start(&[
        "--checkpoint",
        f.uncond.to_str().unwrap(),
        "--checkpoint",
        garbage.to_str().unwrap(),
        "--checkpoint",
        truncated.to_str().unwrap(),
        "--checkpoint",
        huge.to_str().unwrap(),
    ]);
    for id in ["c1", "c2", "c3"] {
        for r in [post(s.addr, "/api/generate", json!({"checkpoint": id, "count": 1})), get(s.addr, &format!("/api/checkpoints/{id}"))] {
            assert_error(&r, 500, "cannot load");
        }
    }
    let r = get(s.addr, "/api/checkpoints/c3");
    assert!(String::from_utf8_lossy(&r.body).contains("latent_dim"), "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(generate(s.addr, json!({"checkpoint": "c0", "count": 2})).len(), 2);
    assert!(s.alive());
}
