//! `studio`: requests to the studio's API, served by its real router (`api::router`) with its
//! model workers and tiny real checkpoints of every architecture, without a socket. The input is
//! an HTTP request as text:
//!
//! ```text
//! POST /api/generate
//! content-type: application/json
//!
//! {"checkpoint": "c0", "seed": 3, "count": 4}
//! ```
//!
//! (request line, header lines, an empty line, the body: JSON, or the image of a translate).
//! Besides panics, an answer 500 (a server error, other than 503 busy) to a client's request is
//! a crash: the validation let through something that failed later. A 200 answer must be
//! readable (the JSON parses, the PNG decodes).

use super::checkpoint::tiny_checkpoints;
use super::Target;
use crate::mutate::Rng;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gannet::candle_core::Device;
use gannet_studio::api::{router, AppState};
use gannet_studio::catalog::Catalog;
use gannet_studio::pool::Pool;
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

pub struct Studio {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
}

impl Studio {
    pub fn new(work: &Path) -> Result<Self, String> {
        let made = tiny_checkpoints(work);
        // `c0`: a conditional DCGAN given as --checkpoint; the others through --runs (ids
        // `run:NAME`), and `test:invert`.
        let c0 = made.iter().find(|(n, _)| n == "train-dcgan-acgan").map(|(_, p)| p.clone()).ok_or("no DCGAN checkpoint")?;
        std::fs::write(work.join("runs/dcgan/metrics.csv"), "step,d_loss,g_loss\n1,0.5,0.7\n").ok();
        let catalog = Catalog::new(vec![c0], Some(work.join("runs")), true);
        let pool = Pool::start(1, 4, Device::Cpu).map_err(|e| e.to_string())?;
        let app = router(Arc::new(AppState { catalog, pool }));
        let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| e.to_string())?;
        Ok(Studio { rt, app })
    }
}

/// The request of an input; `Err` for text that is no HTTP request.
fn request(data: &[u8]) -> Result<Request<Body>, String> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).map_err(|_| "head is not UTF-8")?;
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let (method, uri) = first.split_once(' ').ok_or("no request line")?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut b = Request::builder().method(method).uri(uri.trim());
    for l in lines {
        let (k, v) = l.split_once(':').ok_or("bad header line")?;
        b = b.header(k.trim(), v.trim());
    }
    b.body(Body::from(body.to_vec())).map_err(|e| e.to_string())
}

fn json_request(method: &str, uri: &str, body: &str) -> Vec<u8> {
    format!("{method} {uri}\ncontent-type: application/json\n\n{body}").into_bytes()
}

fn upload(uri: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("POST {uri}\ncontent-type: application/octet-stream\n\n").into_bytes();
    v.extend_from_slice(body);
    v
}

const ROUTES: [&str; 8] =
    ["/api/generate", "/api/interpolate", "/api/style-mix", "/api/translate", "/api/checkpoints/", "/api/checkpoints", "/api/runs/", "/api/"];

pub fn seeds() -> Vec<Vec<u8>> {
    let images = super::image::seeds();
    let mut out = vec![
        json_request("POST", "/api/generate", r#"{"checkpoint": "c0", "seed": 3, "count": 4, "truncation": 0.7, "class": 2}"#),
        json_request("POST", "/api/generate", r#"{"checkpoint": "run:stylegan2"}"#),
        json_request("POST", "/api/generate", r#"{"checkpoint": "run:biggan", "count": 3, "class": 1}"#),
        json_request("POST", "/api/generate", r#"{"checkpoint": "run:progan", "seed": 18446744073709551615, "count": 1, "truncation": 0}"#),
        json_request("POST", "/api/generate", r#"{"checkpoint": "run:mlp", "count": 2}"#),
        json_request("POST", "/api/generate", r#"{"checkpoint": "run:resnet", "count": 2, "truncation": 2}"#),
        json_request("POST", "/api/interpolate", r#"{"checkpoint": "run:dcgan", "a": {"seed": 1, "index": 0}, "b": {"seed": 2, "index": 3}, "t": 0.25}"#),
        json_request("POST", "/api/interpolate", r#"{"checkpoint": "c0", "a": {"seed": 1}, "b": {"seed": 1, "index": 63}, "t": 1, "class": 0}"#),
        json_request(
            "POST",
            "/api/style-mix",
            r#"{"checkpoint": "run:stylegan2", "coarse": {"seed": 1}, "fine": {"seed": 2, "index": 1}, "crossover": 1, "truncation": 0.5}"#,
        ),
        json_request("POST", "/api/style-mix", r#"{"checkpoint": "c0", "coarse": {"seed": 1}, "fine": {"seed": 2}, "crossover": 2}"#),
        b"GET /api/checkpoints\n\n".to_vec(),
        b"GET /api/checkpoints/run:stylegan2\n\n".to_vec(),
        b"GET /api/checkpoints/run:superres\n\n".to_vec(),
        b"GET /api/runs/run:dcgan/metrics\n\n".to_vec(),
        b"GET /api/runs/run:dcgan/latest.png\n\n".to_vec(),
    ];
    out.push(upload("/api/translate?checkpoint=test:invert", &images[0]));
    out.push(upload("/api/translate?checkpoint=run:pix2pix", &images[1]));
    out.push(upload("/api/translate?checkpoint=run:cyclegan", &images[6]));
    out.push(upload("/api/translate?checkpoint=run:superres", &images[2]));
    out.push(upload("/api/translate?checkpoint=c0", &images[3]));
    out.push(upload("/api/translate?checkpoint=test:invert", &images[9]));
    out.push(upload("/api/translate?checkpoint=run:pix2pix", &images[10]));
    out
}

impl Target for Studio {
    fn run(&mut self, data: &[u8]) -> String {
        let req = match request(data) {
            Ok(r) => r,
            Err(e) => return format!("not a request: {e}"),
        };
        let what = format!("{} {}", req.method(), req.uri());
        let app = self.app.clone();
        let (status, ctype, body) = self.rt.block_on(async move {
            let resp = app.oneshot(req).await.expect("the router is infallible");
            let status = resp.status();
            let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let body = axum::body::to_bytes(resp.into_body(), 256 << 20).await.expect("the body is in memory");
            (status, ctype, body)
        });
        let text = String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            panic!("the studio answered {status} to a client's request `{what}`: {text}");
        }
        if status == StatusCode::OK {
            if ctype.starts_with("application/json") {
                serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("`{what}` answered 200 with JSON that does not parse: {e}"));
            } else if ctype == "image/png" {
                image::load_from_memory(&body).unwrap_or_else(|e| panic!("`{what}` answered 200 with a PNG that does not decode: {e}"));
            }
        }
        let error = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_default();
        // The route (when it is one of the API's) and the error without the echoed JSON path.
        let path = what.split(['?', ' ']).nth(1).unwrap_or("");
        let route = ROUTES.iter().find(|r| path.starts_with(*r)).unwrap_or(&"other");
        let error = match error.split_once("target type: ") {
            Some((head, tail)) => match tail.split_once(": ") {
                Some((field, rest)) if !field.contains(' ') => format!("{head}target type: <field>: {rest}"),
                _ => error.clone(),
            },
            None => error,
        };
        // Up to the first echoed value (ids and JSON are quoted in the messages).
        let error = error.split(['\'', '`', '"']).next().unwrap_or("");
        format!("{route} {status} {error}")
    }

    fn mutate(&mut self, d: &mut Vec<u8>, r: &mut Rng, _other: &[u8]) -> bool {
        // A JSON value swapped for an edge case, or a field dropped/added.
        let Some(i) = d.windows(2).position(|w| w == b"\n\n") else { return false };
        if d.starts_with(b"POST /api/translate") {
            // The upload: the image target's mutations.
            let mut body = d[i + 2..].to_vec();
            if !super::image::mutate_image(&mut body, r, _other) {
                return false;
            }
            d.truncate(i + 2);
            d.extend_from_slice(&body);
            return true;
        }
        let body = &d[i + 2..];
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
        let Some(obj) = v.as_object_mut() else { return false };
        const FIELDS: [&str; 12] = ["checkpoint", "seed", "count", "truncation", "class", "a", "b", "t", "coarse", "fine", "crossover", "index"];
        let values = || -> Vec<serde_json::Value> {
            use serde_json::json;
            vec![
                json!(0),
                json!(1),
                json!(-1),
                json!(2),
                json!(63),
                json!(64),
                json!(65),
                json!(9),
                json!(10),
                json!(1e300),
                json!(-0.0),
                json!(0.5),
                json!(2.0000001),
                json!(u64::MAX),
                json!(i64::MIN),
                json!(4294967296u64),
                json!(null),
                json!(""),
                json!("c0"),
                json!("run:stylegan2"),
                json!("test:invert"),
                json!("run:pix2pix"),
                json!([1]),
                json!({"seed": 1, "index": 64}),
                json!({"seed": 1}),
                json!({}),
                json!(true),
                json!("x".repeat(300)),
            ]
        };
        let field = r.pick(&FIELDS).to_string();
        match r.below(4) {
            0 => {
                obj.remove(&field);
            }
            _ => {
                let vals = values();
                let new = r.pick(&vals).clone();
                if let Some(inner) = obj.get_mut(&field).and_then(|x| x.as_object_mut()).filter(|_| r.one_in(2)) {
                    inner.insert(if r.one_in(2) { "seed".into() } else { "index".into() }, new);
                } else {
                    obj.insert(field, new);
                }
            }
        }
        let mut out = d[..i + 2].to_vec();
        out.extend(serde_json::to_vec(&v).expect("a JSON value"));
        *d = out;
        true
    }

    fn custom_share(&self) -> usize {
        6
    }

    fn extra_seeds(&mut self) -> Vec<Vec<u8>> {
        seeds()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        [
            "\"checkpoint\"",
            "\"seed\"",
            "\"count\"",
            "\"truncation\"",
            "\"class\"",
            "\"index\"",
            "\"crossover\"",
            "\"coarse\"",
            "\"fine\"",
            "\"a\"",
            "\"b\"",
            "\"t\"",
            "\"c0\"",
            "\"run:stylegan2\"",
            "\"run:pix2pix\"",
            "\"test:invert\"",
            "/api/generate",
            "/api/interpolate",
            "/api/style-mix",
            "/api/translate?checkpoint=",
            "/api/checkpoints/",
            "/api/runs/",
            "content-type: application/json\n",
            "content-length: 0\n",
            "null",
            "true",
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\n\n",
            "%00",
            "%2F",
            "..",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
    }

    fn max_len(&self) -> usize {
        256 << 10
    }
}
