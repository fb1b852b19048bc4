//! The page: plain HTML, JS and CSS compiled into the binary (no build step, no files to find).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// One of the embedded files, by its fixed name.
pub fn page(name: &'static str) -> Response {
    let (body, kind) = match name {
        "index.html" => (INDEX_HTML, "text/html; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => unreachable!("only the router names assets"),
    };
    // no-cache: a rebuilt server's page is picked up at once.
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
