//! What the API answers when something goes wrong: an HTTP status and `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error a handler returns. 4xx messages say what to change; 5xx ones what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// The request is well formed but the chosen checkpoint cannot do it (e.g. translate on a GAN).
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    /// The worker queue is full: the client should retry later.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

/// Errors from the library while running a model are the server's fault, not the client's.
impl From<gannet::Error> for ApiError {
    fn from(e: gannet::Error) -> Self {
        Self::internal(e.to_string())
    }
}

impl From<gannet::candle_core::Error> for ApiError {
    fn from(e: gannet::candle_core::Error) -> Self {
        Self::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("{self}");
        }
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// Turns an axum extractor's rejection (bad JSON, a body over the limit, a bad query string) into
/// the API's JSON error, keeping axum's status and its explanation.
pub fn rejected(status: StatusCode, text: String) -> ApiError {
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("the request body is too large: at most {} MiB", crate::MAX_UPLOAD_BYTES >> 20),
        _ => text,
    };
    ApiError::new(status, message)
}

pub type ApiResult<T> = Result<T, ApiError>;
