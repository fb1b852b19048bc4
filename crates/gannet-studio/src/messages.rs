//! The API's JSON messages: the request bodies and query that the routes (`api`) take and
//! validate, and generate's answer, which the work per request (`render`) builds. A module of
//! their own so that those two do not import each other.

use serde::{Deserialize, Serialize};

fn default_count() -> usize {
    16
}
fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    pub checkpoint: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_count")]
    pub count: usize,
    #[serde(default = "one")]
    pub truncation: f32,
    /// Conditional models: every image of this class (else classes in turn).
    #[serde(default)]
    pub class: Option<usize>,
}

/// `POST /api/prompt`: `count` images of a text prompt from a text-to-image checkpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptRequest {
    pub checkpoint: String,
    pub prompt: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_count")]
    pub count: usize,
}

/// Sample `index` of the batch generated with `seed`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRef {
    pub seed: u64,
    #[serde(default)]
    pub index: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpolateRequest {
    pub checkpoint: String,
    pub a: SampleRef,
    pub b: SampleRef,
    /// 0 = a, 1 = b.
    pub t: f32,
    #[serde(default = "one")]
    pub truncation: f32,
    #[serde(default)]
    pub class: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleMixRequest {
    pub checkpoint: String,
    pub coarse: SampleRef,
    pub fine: SampleRef,
    pub crossover: usize,
    #[serde(default = "one")]
    pub truncation: f32,
    #[serde(default)]
    pub class: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateQuery {
    pub checkpoint: String,
}

/// `POST /api/generate`'s answer: every image and the grid as `data:` URLs, so the page can show,
/// pick and download them without another request.
#[derive(Debug, Serialize)]
pub struct GenerateResponse {
    pub images: Vec<String>,
    pub grid: String,
    /// Images per grid row.
    pub nrow: usize,
    /// The class of every image (conditional models), else null.
    pub labels: Option<Vec<u32>>,
    pub seed: u64,
    pub truncation: f32,
    pub step: u64,
}
