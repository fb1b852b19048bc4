//! The HTTP API the page uses: routes, request bodies, their limits, and the handlers.
//!
//! ```text
//! GET  /api/checkpoints            checkpoints and run folders on offer (ids)
//! GET  /api/checkpoints/{id}       a model's kind, sizes, classes and capabilities
//! POST /api/generate               {checkpoint, seed, count, truncation, class?} -> images as data: URLs
//! POST /api/prompt                {checkpoint, prompt, seed, count} -> images as data: URLs (text-to-image)
//! POST /api/interpolate            {checkpoint, a: {seed, index}, b: {..}, t, truncation, class?} -> PNG
//! POST /api/style-mix              {checkpoint, coarse, fine, crossover, truncation, class?} -> PNG
//! POST /api/translate?checkpoint=  the image file as the body (Content-Type image/* or
//!                                  application/octet-stream) -> PNG (image-to-image models)
//! GET  /api/runs/{id}/metrics      the run's metrics.csv
//! GET  /api/runs/{id}/latest.png   the run's latest sample grid
//! ```
//! Every error is `{"error": "..."}` with a 4xx status for the client's mistakes. JSON bodies must
//! say `Content-Type: application/json` (else 415): with the image types of translate, these are
//! content types a web page cannot send to another origin without a CORS preflight (see `guard`).

use crate::catalog::{Catalog, Entry};
use crate::error::{rejected, ApiError, ApiResult};
use crate::messages::GenerateResponse;
use crate::models::{GanModel, StudioModel};
use crate::pool::Pool;
use crate::render;
use crate::{assets, MAX_COUNT, MAX_UPLOAD_BYTES};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gannet::candle_core::Device;
use std::sync::Arc;

// The request types live in `messages`, which `render` uses too; their paths here still work.
pub use crate::messages::{GenerateRequest, InterpolateRequest, PromptRequest, SampleRef, StyleMixRequest, TranslateQuery};

pub struct AppState {
    pub catalog: Catalog,
    pub pool: Pool,
}

type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { assets::page("index.html") }))
        .route("/app.js", get(|| async { assets::page("app.js") }))
        .route("/style.css", get(|| async { assets::page("style.css") }))
        .route("/api/checkpoints", get(list))
        .route("/api/checkpoints/{id}", get(info))
        .route("/api/generate", post(generate))
        .route("/api/prompt", post(prompt))
        .route("/api/interpolate", post(interpolate))
        .route("/api/style-mix", post(style_mix))
        .route("/api/translate", post(translate))
        .route("/api/runs/{id}/metrics", get(run_metrics))
        .route("/api/runs/{id}/latest.png", get(run_latest))
        .fallback(|| async { ApiError::not_found("no such page or API route (the API is under /api/, see the studio docs)") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this route does not take that method") })
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .with_state(state)
}

fn check_truncation(psi: f32) -> ApiResult<()> {
    if !(0.0..=2.0).contains(&psi) {
        return Err(ApiError::bad_request(format!("truncation must be between 0 and 2 (1 = none), not {psi}")));
    }
    Ok(())
}

fn check_sample(name: &str, s: &SampleRef) -> ApiResult<()> {
    if s.index >= MAX_COUNT {
        return Err(ApiError::bad_request(format!("{name}.index must be below {MAX_COUNT} (a sample of a generated batch), not {}", s.index)));
    }
    Ok(())
}

impl GenerateRequest {
    fn validate(&self) -> ApiResult<()> {
        if self.count == 0 || self.count > MAX_COUNT {
            return Err(ApiError::bad_request(format!("count must be 1 to {MAX_COUNT}, not {}", self.count)));
        }
        check_truncation(self.truncation)
    }
}

impl PromptRequest {
    fn validate(&self) -> ApiResult<()> {
        if self.count == 0 || self.count > MAX_COUNT {
            return Err(ApiError::bad_request(format!("count must be 1 to {MAX_COUNT}, not {}", self.count)));
        }
        if self.prompt.len() > 1000 {
            return Err(ApiError::bad_request(format!("the prompt has {} bytes; at most 1000", self.prompt.len())));
        }
        Ok(())
    }
}

impl InterpolateRequest {
    fn validate(&self) -> ApiResult<()> {
        if !(0.0..=1.0).contains(&self.t) {
            return Err(ApiError::bad_request(format!("t must be between 0 (sample a) and 1 (sample b), not {}", self.t)));
        }
        check_sample("a", &self.a)?;
        check_sample("b", &self.b)?;
        check_truncation(self.truncation)
    }
}

impl StyleMixRequest {
    fn validate(&self) -> ApiResult<()> {
        check_sample("coarse", &self.coarse)?;
        check_sample("fine", &self.fine)?;
        check_truncation(self.truncation)
    }
}

/// A conditional model's class must exist; an unconditional one takes none.
fn check_class(model: &StudioModel, class: Option<usize>) -> ApiResult<()> {
    let (Some(c), StudioModel::Gan(g)) = (class, model) else { return Ok(()) };
    match g.num_classes() {
        0 => Err(ApiError::bad_request("this checkpoint is an unconditional model: it takes no class")),
        k if c >= k => Err(ApiError::bad_request(format!("class {c} is out of range: this model has {k} classes, 0 to {}", k - 1))),
        _ => Ok(()),
    }
}

fn body<T>(r: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    r.map(|Json(t)| t).map_err(|e| rejected(e.status(), e.body_text()))
}

/// The id in a route's path; a malformed one (e.g. bad percent-encoding) is a JSON 400 too.
fn path_id(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    p.map(|Path(id)| id).map_err(|e| rejected(StatusCode::BAD_REQUEST, format!("{} (ids are listed by GET /api/checkpoints)", e.body_text())))
}

/// The catalog entry for a client-sent id (the only way a request selects a file).
fn entry(state: &AppState, id: &str) -> ApiResult<Entry> {
    state.catalog.find(id).ok_or_else(|| ApiError::not_found(format!("no checkpoint or run with id '{}'; GET /api/checkpoints lists them", clip(id))))
}

/// Echoes at most 60 characters of client input in messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

fn png(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], bytes).into_response()
}

async fn list(State(state): Shared) -> Json<serde_json::Value> {
    let entries = state.catalog.entries();
    let checkpoints: Vec<&Entry> = entries.iter().filter(|e| e.has_checkpoint).collect();
    // A run folder reached twice (a --checkpoint inside --runs) is listed once.
    let mut seen = std::collections::HashSet::new();
    let runs: Vec<&Entry> = entries.iter().filter(|e| e.run_dir.as_ref().is_some_and(|d| seen.insert(d.clone()))).collect();
    Json(serde_json::json!({
        "checkpoints": checkpoints,
        "runs": runs,
        "limits": { "max_count": MAX_COUNT, "max_upload_bytes": MAX_UPLOAD_BYTES, "max_upload_side": crate::MAX_UPLOAD_SIDE },
    }))
}

async fn info(State(state): Shared, id: Result<Path<String>, PathRejection>) -> ApiResult<Json<crate::models::ModelInfo>> {
    let entry = entry(&state, &path_id(id)?)?;
    state.pool.run(move |cache| Ok(Json(cache.get(&entry)?.info(&entry)))).await
}

async fn generate(State(state): Shared, req: Result<Json<GenerateRequest>, JsonRejection>) -> ApiResult<Json<GenerateResponse>> {
    let req = body(req)?;
    req.validate()?;
    let checkpoint = req.checkpoint.clone();
    on_model(&state, &checkpoint, move |model, device| {
        check_class(model, req.class)?;
        render::generate(model.gan("generating")?, &req, device).map(Json)
    })
    .await
}

async fn prompt(State(state): Shared, req: Result<Json<PromptRequest>, JsonRejection>) -> ApiResult<Json<GenerateResponse>> {
    let req = body(req)?;
    req.validate()?;
    let checkpoint = req.checkpoint.clone();
    on_model(&state, &checkpoint, move |model, device| render::prompt(model.text_to_image()?, &req, device).map(Json)).await
}

async fn interpolate(State(state): Shared, req: Result<Json<InterpolateRequest>, JsonRejection>) -> ApiResult<Response> {
    let req = body(req)?;
    req.validate()?;
    let (checkpoint, class) = (req.checkpoint.clone(), req.class);
    gan_png(&state, &checkpoint, class, "interpolation", move |gan, device| render::interpolate(gan, &req, device)).await
}

async fn style_mix(State(state): Shared, req: Result<Json<StyleMixRequest>, JsonRejection>) -> ApiResult<Response> {
    let req = body(req)?;
    req.validate()?;
    let (checkpoint, class) = (req.checkpoint.clone(), req.class);
    gan_png(&state, &checkpoint, class, "style mixing", move |gan, device| render::style_mix(gan, &req, device)).await
}

/// One PNG rendered on a model worker from the GAN `checkpoint` names, after checking `class`
/// against it; `what` names the feature in the error for a model that is not a GAN.
async fn gan_png<F>(state: &AppState, checkpoint: &str, class: Option<usize>, what: &'static str, render: F) -> ApiResult<Response>
where
    F: FnOnce(&GanModel, &Device) -> ApiResult<Vec<u8>> + Send + 'static,
{
    let bytes = on_model(state, checkpoint, move |model, device| {
        check_class(model, class)?;
        render(model.gan(what)?, device)
    })
    .await?;
    Ok(png(bytes))
}

/// `work` on a model worker with the model `checkpoint` names and the worker's device.
async fn on_model<T, F>(state: &AppState, checkpoint: &str, work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&StudioModel, &Device) -> ApiResult<T> + Send + 'static,
{
    let entry = entry(state, checkpoint)?;
    state
        .pool
        .run(move |cache| {
            let device = cache.device().clone();
            work(cache.get(&entry)?, &device)
        })
        .await
}

/// An upload must say it is an image. Form and text types are refused: a web page on another
/// origin may POST those without a CORS preflight, and the studio serves only its own page.
fn check_upload_type(headers: &HeaderMap) -> ApiResult<()> {
    let given = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = given.as_deref().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence.starts_with("image/") || essence == "application/octet-stream" {
        return Ok(());
    }
    let said = given.map_or("none".to_string(), |g| format!("'{}'", clip(&g)));
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("send the image file itself as the body with Content-Type image/png, image/jpeg or application/octet-stream (this request's Content-Type: {said}; form and text uploads are refused)"),
    ))
}

async fn translate(
    State(state): Shared,
    query: Result<Query<TranslateQuery>, QueryRejection>,
    headers: HeaderMap,
    upload: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let Query(query) = query
        .map_err(|e| rejected(StatusCode::BAD_REQUEST, format!("{} (use POST /api/translate?checkpoint=ID with the image as the body)", e.body_text())))?;
    check_upload_type(&headers)?;
    let upload = upload.map_err(|e| rejected(e.status(), e.body_text()))?;
    let entry = entry(&state, &query.checkpoint)?;
    let bytes = state
        .pool
        .run(move |cache| {
            let checkpoint = entry.checkpoint_path();
            match cache.get(&entry)? {
                StudioModel::ImageToImage(m) => render::translate(m.as_ref(), &checkpoint, &upload),
                StudioModel::Gan(g) => Err(ApiError::unsupported(format!(
                    "this checkpoint is not an image-to-image model: it is a {} GAN that makes images from noise, so it cannot translate or upscale an upload; pick a pix2pix, CycleGAN or super-resolution checkpoint",
                    g.arch
                ))),
                StudioModel::TextToImage(_) => Err(ApiError::unsupported(
                    "this checkpoint is a text-to-image model: it draws from a prompt, it cannot translate or upscale an upload; pick a pix2pix, CycleGAN or super-resolution checkpoint",
                )),
            }
        })
        .await?;
    Ok(png(bytes))
}

/// Bigger metrics files are refused (a 3000-step run's is ~30 KiB).
const MAX_METRICS_BYTES: u64 = 8 << 20;

/// Reads a file of a run folder; the file name is the server's, never the client's.
fn run_file(state: &AppState, id: &str, name: &[&str], limit: u64) -> ApiResult<Vec<u8>> {
    let entry = entry(state, id)?;
    let dir = entry.run_dir.ok_or_else(|| ApiError::not_found(format!("'{}' has no run folder to follow", clip(id))))?;
    let path = name.iter().fold(dir, |p, n| p.join(n));
    if std::fs::metadata(&path).is_err() {
        return Err(ApiError::not_found(format!("the run has no {} yet", name.join("/"))));
    }
    // Regular files only, capped: a FIFO or device in a run folder must not hang a worker.
    gannet::limits::read_file(&path, limit).map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))
}

async fn run_metrics(State(state): Shared, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    let csv = run_file(&state, &path_id(id)?, &["metrics.csv"], MAX_METRICS_BYTES)?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], csv)
        .into_response())
}

async fn run_latest(State(state): Shared, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    Ok(png(run_file(&state, &path_id(id)?, &["samples", "latest.png"], MAX_UPLOAD_BYTES as u64 * 4)?))
}
