//! Turning image tensors into PNG files: single images and sample grids, optionally with PNG
//! text chunks that record where an image came from ([`save_png_with_text`], [`read_png_text`]).

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
    let (n, _, h, w) = batch.dims4()?;
    if n == 0 {
        return Err(Error::Msg("cannot draw a grid of 0 images".into()));
    }
    let nrow = nrow.clamp(1, n);
    check_grid_size(n, nrow, w, h, pad)?;
    let images = to_images(batch)?;
    let rows = n.div_ceil(nrow);
    let (w, h) = (images[0].width(), images[0].height());
    let mut canvas = image::RgbImage::from_pixel(nrow as u32 * (w + pad) + pad, rows as u32 * (h + pad) + pad, image::Rgb([255, 255, 255]));
    for (i, img) in images.iter().enumerate() {
        let (x, y) = ((i % nrow) as u32, (i / nrow) as u32);
        image::imageops::replace(&mut canvas, &img.to_rgb8(), (pad + x * (w + pad)) as i64, (pad + y * (h + pad)) as i64);
    }
    Ok(DynamicImage::ImageRgb8(canvas))
}

/// Refuses a grid of `n` images of `w` x `h`, `nrow` a row, that would exceed
/// [`MAX_GRID_SIDE`], before anything is generated for it.
pub fn check_grid_size(n: usize, nrow: usize, w: usize, h: usize, pad: u32) -> crate::Result<()> {
    let nrow = nrow.clamp(1, n.max(1));
    let side = |count: usize, len: usize| (count as u64).saturating_mul(len as u64 + pad as u64).saturating_add(pad as u64);
    let (gw, gh) = (side(nrow, w), side(n.div_ceil(nrow), h));
    if gw > MAX_GRID_SIDE || gh > MAX_GRID_SIDE {
        return Err(Error::Msg(format!(
            "a grid of {n} images of {w}x{h} would be {gw}x{gh} pixels, more than {MAX_GRID_SIDE} a side: draw fewer images, or write single images"
        )));
    }
    Ok(())
}

/// Largest width or height of a sample grid (PNG viewers and memory both give up beyond).
pub const MAX_GRID_SIDE: u64 = 32_768;

/// Refuses an output path whose extension says another format than the PNG gannet writes (a
/// `.jpg` holding PNG bytes would mislead every program that trusts the name).
pub fn ensure_png_path(path: &Path) -> crate::Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(()),
        Some(e) => Err(Error::Msg(format!("{}: gannet writes PNG images, not .{e}: name the file .png", path.display()))),
        None => Err(Error::Msg(format!("{}: name the output file .png (gannet writes PNG images)", path.display()))),
    }
}

/// Encodes a PNG in memory and writes it atomically, so a viewer never sees half a file.
pub fn save_png(img: &DynamicImage, path: &Path) -> crate::Result<()> {
    ensure_png_path(path)?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| Error::Msg(format!("{}: encoding PNG: {e}", path.display())))?;
    crate::checkpoint::write_atomic(path, &bytes)
}

/// Square-ish grid of a batch written as PNG.
pub fn save_grid(batch: &Tensor, path: &Path) -> crate::Result<()> {
    let n = batch.dim(0)?;
    let nrow = (n as f64).sqrt().ceil() as usize;
    save_png(&grid(batch, nrow, 2)?, path)
}

/// Keywords of the text chunks gannet writes into generated images.
pub mod text_keys {
    /// `"gannet <version>"` (a keyword the PNG specification defines).
    pub const SOFTWARE: &str = "Software";
    /// A human-readable note that the image is synthetic (PNG-defined keyword).
    pub const COMMENT: &str = "Comment";
    /// "synthetic": the image was generated, it is not real data.
    pub const SOURCE: &str = "gannet:source";
    /// The checkpoint the generator came from, its training step, and the class of the image.
    pub const CHECKPOINT: &str = "gannet:checkpoint";
    pub const STEP: &str = "gannet:step";
    pub const CLASS: &str = "gannet:class";
    pub const CLASS_INDEX: &str = "gannet:class-index";
}

/// Encodes `img` (grey or RGB, 8 bit) as PNG with the given text chunks and writes it atomically.
/// Values that Latin-1 cannot hold go into iTXt (UTF-8) chunks, the rest into tEXt. Keywords must
/// be 1-79 Latin-1 characters.
pub fn save_png_with_text(img: &DynamicImage, path: &Path, text: &[(&str, String)]) -> crate::Result<()> {
    ensure_png_path(path)?;
    let bytes = encode_png_with_text(img, text).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
    crate::checkpoint::write_atomic(path, &bytes)
}

/// The PNG file [`save_png_with_text`] writes, in memory (for a server that sends it).
pub fn encode_png_with_text(img: &DynamicImage, text: &[(&str, String)]) -> crate::Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::Msg(format!("encoding PNG: {e}"));
    let (color, data) = match img {
        DynamicImage::ImageLuma8(g) => (png::ColorType::Grayscale, g.as_raw().clone()),
        other => (png::ColorType::Rgb, other.to_rgb8().into_raw()),
    };
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, img.width(), img.height());
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        for (key, value) in text {
            if key.is_empty() || key.len() > 79 || !key.chars().all(|c| (' '..='~').contains(&c)) {
                return Err(Error::Msg(format!("PNG text keyword '{key}' must be 1-79 printable ASCII characters")));
            }
            if value.chars().all(|c| (c as u32) < 256) {
                enc.add_text_chunk(key.to_string(), value.clone()).map_err(|e| err(&e))?;
            } else {
                enc.add_itxt_chunk(key.to_string(), value.clone()).map_err(|e| err(&e))?;
            }
        }
        let mut writer = enc.write_header().map_err(|e| err(&e))?;
        writer.write_image_data(&data).map_err(|e| err(&e))?;
        writer.finish().map_err(|e| err(&e))?;
    }
    Ok(bytes)
}

/// The text chunks (tEXt, zTXt and iTXt) of a PNG file, as (keyword, text) in file order by kind.
pub fn read_png_text(path: &Path) -> crate::Result<Vec<(String, String)>> {
    let err = |e: &dyn std::fmt::Display| Error::data(path, format!("reading PNG text: {e}"));
    let file = std::fs::File::open(path).map_err(|e| Error::data(path, format!("cannot open: {e}")))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().map_err(|e| err(&e))?;
    // Text chunks may also follow the image data: decode the image so they are read too.
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    reader.next_frame(&mut buf).map_err(|e| err(&e))?;
    reader.finish().map_err(|e| err(&e))?;
    let info = reader.info();
    let mut out: Vec<(String, String)> = info.uncompressed_latin1_text.iter().map(|t| (t.keyword.clone(), t.text.clone())).collect();
    for t in &info.compressed_latin1_text {
        out.push((t.keyword.clone(), t.get_text().map_err(|e| err(&e))?));
    }
    for t in &info.utf8_text {
        out.push((t.keyword.clone(), t.get_text().map_err(|e| err(&e))?));
    }
    Ok(out)
}

/// The text chunks gannet writes into a generated image: software, a comment and `gannet:source`
/// saying it is synthetic, and the checkpoint and step it came from. `class` adds the class name
/// and index.
pub fn provenance_text(checkpoint: &Path, step: u64, class: Option<(usize, &str)>) -> Vec<(&'static str, String)> {
    let mut t = vec![
        (text_keys::SOFTWARE, format!("gannet {}", env!("CARGO_PKG_VERSION"))),
        (text_keys::COMMENT, "synthetic image generated by a GAN (gannet); not a real photograph or scan".to_string()),
        (text_keys::SOURCE, "synthetic".to_string()),
        (text_keys::CHECKPOINT, checkpoint.display().to_string()),
        (text_keys::STEP, step.to_string()),
    ];
    if let Some((index, name)) = class {
        t.push((text_keys::CLASS, name.to_string()));
        t.push((text_keys::CLASS_INDEX, index.to_string()));
    }
    t
}

/// [N, C, h, w] -> [N, C, h*scale, w*scale], every pixel repeated (for showing small inputs
/// beside large outputs).
pub fn upscale_nearest(batch: &Tensor, scale: usize) -> crate::Result<Tensor> {
    let (n, c, h, w) = batch.dims4()?;
    Ok(batch.reshape((n, c, h, 1, w, 1))?.broadcast_as((n, c, h, scale, w, scale))?.contiguous()?.reshape((n, c, h * scale, w * scale))?)
}

/// Bicubic upscaling by `scale` ([N, C, h, w] in [-1, 1] -> [N, C, h*scale, w*scale]), the
/// baseline super-resolution must beat: the `image` crate's Catmull-Rom filter (bicubic with
/// a = -0.5) on f32 planes, image by image. The crate clamps f32 pixels to [0, 1], so values are
/// mapped there and back (the clamp only trims the filter's overshoot, as writing a PNG would).
pub fn resize_bicubic(batch: &Tensor, scale: usize) -> crate::Result<Tensor> {
    use image::{imageops, ImageBuffer, Luma};
    let (n, c, h, w) = batch.dims4()?;
    let (ho, wo) = (h * scale, w * scale);
    let v = ((batch.to_dtype(candle_core::DType::F32)? + 1.0)? * 0.5)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for plane in v.chunks(h * w) {
        let img = ImageBuffer::<Luma<f32>, _>::from_raw(w as u32, h as u32, plane.to_vec()).expect("sized");
        out.extend(imageops::resize(&img, wo as u32, ho as u32, imageops::FilterType::CatmullRom).into_raw());
    }
    Ok(Tensor::from_vec(out, (n, c, ho, wo), batch.device())?.affine(2.0, -1.0)?)
}

/// A grid of examples side by side: `columns` are batches of one shape [N, C, H, W] in [-1, 1]
/// (e.g. input, output, target); each example's images sit next to each other as a group,
/// `groups_per_row` groups per row, groups `3 * pad` apart and images `pad` apart, on white.
pub fn comparison_grid(columns: &[Tensor], groups_per_row: usize, pad: u32) -> crate::Result<DynamicImage> {
    let cols: Vec<Vec<DynamicImage>> = columns.iter().map(to_images).collect::<crate::Result<_>>()?;
    let Some(first) = cols.first().and_then(|c| c.first()) else {
        return Err(Error::Msg("comparison grid of no images".into()));
    };
    let (w, h) = (first.width(), first.height());
    let n = cols[0].len();
    if cols.iter().any(|c| c.len() != n || c.iter().any(|i| i.width() != w || i.height() != h)) {
        return Err(Error::Msg("comparison grid: every column needs the same number of images of one size".into()));
    }
    let k = cols.len() as u32;
    let per_row = groups_per_row.clamp(1, n.max(1)) as u32;
    let rows = (n as u32).div_ceil(per_row);
    let group_w = k * w + (k - 1) * pad;
    let gap = 3 * pad;
    let mut canvas = RgbImage::from_pixel(per_row * group_w + (per_row + 1) * gap, rows * (h + pad) + pad + 2 * pad, image::Rgb([255, 255, 255]));
    for i in 0..n {
        let (gx, gy) = (i as u32 % per_row, i as u32 / per_row);
        for (j, col) in cols.iter().enumerate() {
            let x = gap + gx * (group_w + gap) + j as u32 * (w + pad);
            let y = 2 * pad + gy * (h + pad);
            image::imageops::replace(&mut canvas, &col[i].to_rgb8(), x as i64, y as i64);
        }
    }
    Ok(DynamicImage::ImageRgb8(canvas))
}

/// Writes `frames` [N, C, H, W] in [-1, 1] as an animated GIF that loops, `fps` frames a second.
pub fn save_gif(frames: &Tensor, path: &Path, fps: u32) -> crate::Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let file = std::fs::File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let mut enc = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    enc.set_repeat(Repeat::Infinite).map_err(|e| Error::Msg(format!("writing {}: {e}", path.display())))?;
    let delay = image::Delay::from_numer_denom_ms(1000, fps.max(1));
    for img in to_images(frames)? {
        let frame = image::Frame::from_parts(img.to_rgba8(), 0, 0, delay);
        enc.encode_frame(frame).map_err(|e| Error::Msg(format!("writing {}: {e}", path.display())))?;
    }
    Ok(())
}
