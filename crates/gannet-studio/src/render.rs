//! The work a model worker does for each request: latents in, PNG files (with gannet's
//! provenance text chunks) out. Requests arrive here already validated (by `api`).

use crate::error::{ApiError, ApiResult};
use crate::latent;
use crate::messages::{GenerateRequest, InterpolateRequest, PromptRequest, SampleRef, StyleMixRequest};
use crate::models::{GanModel, ImageToImage, TextToImageModel};
use gannet::candle_core::{Device, Tensor};
use gannet::image_io;
use gannet::nn::Mode;
use image::DynamicImage;
use std::io::Cursor;

// Its path here still works.
pub use crate::messages::GenerateResponse;

/// A batch of `count` images from `seed`: the images `gannet sample --seed` makes (at psi = 1),
/// latents scaled by psi. A conditional model without a class gets classes in turn (image i has
/// class i mod classes), as `gannet sample --out-dir` does.
pub fn generate(model: &GanModel, req: &GenerateRequest, device: &Device) -> ApiResult<GenerateResponse> {
    let dim = model.gen.latent_dim();
    let z = gannet::metrics::evaluate::sample_latents(req.seed, req.count, dim, device)?;
    let labels = labels_for(model, req.class, req.count);
    let x = forward(model, &z, labels.as_deref(), req.truncation, device)?;
    let images = image_io::to_images(&x)?;
    let extra = [("gannet:seed", req.seed.to_string()), ("gannet:truncation", req.truncation.to_string())];
    let urls = images.iter().enumerate().map(|(i, img)| png_url(img, &text(model, labels.as_ref().map(|l| l[i]), &extra))).collect::<ApiResult<Vec<_>>>()?;
    let nrow = (req.count as f64).sqrt().ceil() as usize;
    let grid = image_io::grid(&x, nrow, 2)?;
    Ok(GenerateResponse {
        images: urls,
        grid: png_url(&grid, &text(model, req.class.map(|c| c as u32), &extra))?,
        nrow,
        labels,
        seed: req.seed,
        truncation: req.truncation,
        step: model.step,
    })
}

/// `count` images of `req.prompt` from a text-to-image model: the images `gannet sample
/// --prompt P --seed S` makes. Unknown words or an empty prompt are a 400 naming them.
pub fn prompt(model: &TextToImageModel, req: &PromptRequest, device: &Device) -> ApiResult<GenerateResponse> {
    let x = model.nets.generate_prompts(&[req.prompt.as_str()], req.count, req.seed, device).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut text = image_io::provenance_text(&model.checkpoint, model.step, None);
    text.extend([("Prompt", req.prompt.clone()), ("gannet:seed", req.seed.to_string())]);
    let urls = image_io::to_images(&x)?.iter().map(|img| png_url(img, &text)).collect::<ApiResult<Vec<_>>>()?;
    let nrow = (req.count as f64).sqrt().ceil() as usize;
    let grid = png_url(&image_io::grid(&x, nrow, 2)?, &text)?;
    Ok(GenerateResponse { images: urls, grid, nrow, labels: None, seed: req.seed, truncation: 1.0, step: model.step })
}

/// One frame between samples `a` and `b` at position `t`: slerp of their latents, then truncation.
/// Without a chosen class a conditional model keeps `a`'s class up to the middle and `b`'s after,
/// so both ends are exactly the two samples of the grid.
pub fn interpolate(model: &GanModel, req: &InterpolateRequest, device: &Device) -> ApiResult<Vec<u8>> {
    let dim = model.gen.latent_dim();
    let (za, zb) = (latent::of_sample(req.a.seed, req.a.index, dim)?, latent::of_sample(req.b.seed, req.b.index, dim)?);
    let z = latent::to_tensor(&[latent::slerp(&za, &zb, req.t)], device)?;
    let end = if req.t < 0.5 { &req.a } else { &req.b };
    let label = sample_label(model, req.class, end);
    let x = forward(model, &z, label.map(|l| vec![l]).as_deref(), req.truncation, device)?;
    let note = format!("seed {} #{} -> seed {} #{} at t = {}", req.a.seed, req.a.index, req.b.seed, req.b.index, req.t);
    let extra = [("gannet:interpolation", note), ("gannet:truncation", req.truncation.to_string())];
    png_bytes(&image_io::to_images(&x)?[0], &text(model, label, &extra))
}

/// Coarse styles from one sample and fine ones from another, for style-based generators
/// (StyleGAN2; see [`gannet::edit::mixing`]).
pub fn style_mix(model: &GanModel, req: &StyleMixRequest, device: &Device) -> ApiResult<Vec<u8>> {
    let style = model.gen.as_style().ok_or_else(|| {
        ApiError::unsupported(format!("style mixing needs a StyleGAN2 checkpoint; this is a {} GAN, whose generator has no per-layer styles", model.arch))
    })?;
    if req.crossover == 0 || req.crossover >= style.num_ws() {
        return Err(ApiError::bad_request(format!("crossover must be 1 to {} for this model", style.num_ws() - 1)));
    }
    let dim = model.gen.latent_dim();
    let z = |s: &SampleRef| -> ApiResult<Tensor> { Ok(latent::to_tensor(&[latent::of_sample(s.seed, s.index, dim)?], device)?) };
    let label = sample_label(model, req.class, &req.coarse);
    let w = |s: &SampleRef| -> ApiResult<Tensor> { Ok(gannet::edit::truncate_w(style, &style.mapping(&z(s)?)?, req.truncation as f64)?) };
    let (coarse, fine) = (w(&req.coarse)?, w(&req.fine)?);
    let x = style.synthesis(&style.mix_ws(&coarse, &fine, req.crossover)?)?.detach();
    let note = format!("coarse seed {} #{}, fine seed {} #{}, crossover {}", req.coarse.seed, req.coarse.index, req.fine.seed, req.fine.index, req.crossover);
    png_bytes(&image_io::to_images(&x)?[0], &text(model, label, &[("gannet:style-mix", note)]))
}

/// An uploaded image through an image-to-image model.
pub fn translate(model: &dyn ImageToImage, checkpoint: &std::path::Path, upload: &[u8]) -> ApiResult<Vec<u8>> {
    let input = decode_upload(upload, model.max_input_side().min(crate::MAX_UPLOAD_SIDE))?;
    let output = model.translate(&input)?;
    png_bytes(&output, &image_io::provenance_text(checkpoint, model.step(), None))
}

/// Decodes a PNG or JPEG upload after checking its size from the header, so a small file that
/// claims a huge image is refused before anything is allocated for it.
pub fn decode_upload(bytes: &[u8], max_side: u32) -> ApiResult<DynamicImage> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("no image: send the PNG or JPEG file as the request body"));
    }
    let reader =
        || image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| ApiError::bad_request(format!("cannot read the upload: {e}")));
    if !matches!(reader()?.format(), Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)) {
        return Err(ApiError::new(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, "the upload is not a PNG or JPEG image"));
    }
    let (w, h) = reader()?.into_dimensions().map_err(|e| ApiError::bad_request(format!("cannot read the image header: {e}")))?;
    if w > max_side || h > max_side {
        return Err(ApiError::unsupported(format!("the image is {w}x{h}; this model takes at most {max_side}x{max_side}")));
    }
    // The data loader's decoder: it also refuses files cut short and malformed palettes (one of
    // which panics inside the png crate).
    gannet::data::folder::decode_image_bytes(bytes, std::path::Path::new("the upload"))
        .map_err(|e| ApiError::bad_request(format!("cannot decode the image: {e}")))
}

/// A conditional model's labels for a batch: the chosen class, or classes in turn.
fn labels_for(model: &GanModel, class: Option<usize>, count: usize) -> Option<Vec<u32>> {
    let k = model.num_classes();
    (k > 0).then(|| (0..count).map(|i| class.unwrap_or(i % k) as u32).collect())
}

/// The class sample `s` had in its batch (see [`labels_for`]).
fn sample_label(model: &GanModel, class: Option<usize>, s: &SampleRef) -> Option<u32> {
    let k = model.num_classes();
    (k > 0).then(|| class.unwrap_or(s.index % k) as u32)
}

/// G in eval mode through the truncation trick (`psi` 1 = off): StyleGAN2 pulls w towards its
/// tracked mean, the other generators scale z.
fn forward(model: &GanModel, z: &Tensor, labels: Option<&[u32]>, psi: f32, device: &Device) -> ApiResult<Tensor> {
    let labels = labels.map(|l| Tensor::from_slice(l, l.len(), device)).transpose()?;
    use gannet::models::Generator;
    let gen = gannet::edit::Truncated { gen: model.gen.as_ref(), psi: psi as f64 };
    Ok(gen.forward(z, labels.as_ref(), Mode::Eval)?.detach())
}

/// gannet's provenance chunks (synthetic, checkpoint, step, class) plus the request's settings.
fn text(model: &GanModel, label: Option<u32>, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let class = label.map(|c| (c as usize, model.class_names[c as usize].as_str()));
    let mut t = image_io::provenance_text(&model.checkpoint, model.step, class);
    t.extend_from_slice(extra);
    t
}

fn png_bytes(img: &DynamicImage, text: &[(&str, String)]) -> ApiResult<Vec<u8>> {
    Ok(image_io::encode_png_with_text(img, text)?)
}

fn png_url(img: &DynamicImage, text: &[(&str, String)]) -> ApiResult<String> {
    Ok(format!("data:image/png;base64,{}", base64(&png_bytes(img, text)?)))
}

/// Standard base64 with padding (for `data:` URLs; small enough not to need a crate).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() { ABC[(n >> shift & 63) as usize] as char } else { '=' });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, coded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn uploads_are_checked_before_decoding() {
        assert_eq!(decode_upload(b"", 64).unwrap_err().status, 400);
        assert_eq!(decode_upload(b"hello, not an image", 64).unwrap_err().status, 415);
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(80, 20));
        let png = png_bytes(&img, &[]).unwrap();
        let e = decode_upload(&png, 64).unwrap_err();
        assert_eq!(e.status, 422);
        assert!(e.message.contains("80x20"), "{}", e.message);
        assert_eq!(decode_upload(&png, 80).unwrap().width(), 80);
    }
}
