//! Turning image tensors into PNG files: single images and sample grids.

use crate::Error;
use candle_core::Tensor;
use image::{DynamicImage, GrayImage, RgbImage};
use std::path::Path;

/// Converts [N, C, H, W] in [-1, 1] to N images (C = 1 grey, C = 3 RGB).
pub fn to_images(batch: &Tensor) -> crate::Result<Vec<DynamicImage>> {
    let (n, c, h, w) = batch.dims4()?;
    if c != 1 && c != 3 {
        return Err(Error::Msg(format!("cannot write images with {c} channels (need 1 or 3)")));
    }
    let bytes = to_u8(batch)?;
    let per = c * h * w;
    Ok((0..n).map(|i| chw_to_image(&bytes[i * per..(i + 1) * per], c, h, w)).collect())
}

/// [-1, 1] floats to bytes, rounding to nearest and clamping.
fn to_u8(batch: &Tensor) -> crate::Result<Vec<u8>> {
    let v = batch.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    Ok(v.iter().map(|x| ((x + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8).collect())
}

fn chw_to_image(chw: &[u8], c: usize, h: usize, w: usize) -> DynamicImage {
    let plane = h * w;
    if c == 1 {
        DynamicImage::ImageLuma8(GrayImage::from_raw(w as u32, h as u32, chw.to_vec()).expect("sized"))
    } else {
        let hwc: Vec<u8> = (0..plane).flat_map(|p| [chw[p], chw[plane + p], chw[2 * plane + p]]).collect();
        DynamicImage::ImageRgb8(RgbImage::from_raw(w as u32, h as u32, hwc).expect("sized"))
    }
}

/// Tiles a batch into one image, `nrow` images per row, with a `pad`-pixel white border.
pub fn grid(batch: &Tensor, nrow: usize, pad: u32) -> crate::Result<DynamicImage> {
    let images = to_images(batch)?;
    let n = images.len().max(1);
    let nrow = nrow.clamp(1, n);
    let rows = n.div_ceil(nrow);
    let (w, h) = (images[0].width(), images[0].height());
    let mut canvas = image::RgbImage::from_pixel(
        nrow as u32 * (w + pad) + pad,
        rows as u32 * (h + pad) + pad,
        image::Rgb([255, 255, 255]),
    );
    for (i, img) in images.iter().enumerate() {
        let (x, y) = ((i % nrow) as u32, (i / nrow) as u32);
        image::imageops::replace(&mut canvas, &img.to_rgb8(), (pad + x * (w + pad)) as i64, (pad + y * (h + pad)) as i64);
    }
    Ok(DynamicImage::ImageRgb8(canvas))
}

/// Encodes a PNG in memory and writes it atomically, so a viewer never sees half a file.
pub fn save_png(img: &DynamicImage, path: &Path) -> crate::Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::Msg(format!("{}: encoding PNG: {e}", path.display())))?;
    crate::checkpoint::write_atomic(path, &bytes)
}

/// Square-ish grid of a batch written as PNG.
pub fn save_grid(batch: &Tensor, path: &Path) -> crate::Result<()> {
    let n = batch.dim(0)?;
    let nrow = (n as f64).sqrt().ceil() as usize;
    save_png(&grid(batch, nrow, 2)?, path)
}
