//! `image`: one entry of an image folder. The input is the file (PNG, JPEG, GIF or anything):
//! it is decoded, composited on white, centre-cropped and resized by `folder::load_files`, as
//! `gannet train` does for every file of a folder data set (resolution and channels picked from
//! the input).
//!
//! The structure-aware mutations work on PNG chunks (a chunk's data changed and its CRC fixed,
//! header fields set to edge values, the pixel data decompressed, changed and compressed again)
//! and build small PNGs that claim large images of zeros (decompression bombs).

use super::{outcome, pick_from, Target};
use crate::mutate::{mutate_bytes, Rng};
use flate2::write::ZlibEncoder;
use flate2::Compression;
use gannet::data::{folder, Channels};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub struct ImageEntry {
    work: PathBuf,
}

impl ImageEntry {
    pub fn new(work: &Path) -> Self {
        ImageEntry { work: work.to_path_buf() }
    }
}

const PNG_SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// Small images of every pixel layout the loader handles, in each format it reads.
pub fn seeds() -> Vec<Vec<u8>> {
    use image::{DynamicImage, ImageFormat};
    let enc = |img: &DynamicImage, f: ImageFormat| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, f).expect("encodes");
        out.into_inner()
    };
    let grad =
        |w: u32, h: u32| image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([(x * 40) as u8, (y * 50) as u8, ((x + y) * 20) as u8, (255 - x * 30) as u8]));
    let rgba = DynamicImage::ImageRgba8(grad(6, 4));
    let mut out = vec![
        enc(&rgba, ImageFormat::Png),
        enc(&DynamicImage::ImageRgb8(rgba.to_rgb8()), ImageFormat::Png),
        enc(&DynamicImage::ImageLuma8(rgba.to_luma8()), ImageFormat::Png),
        enc(&DynamicImage::ImageLumaA8(rgba.to_luma_alpha8()), ImageFormat::Png),
        enc(&DynamicImage::ImageRgba16(rgba.to_rgba16()), ImageFormat::Png),
        enc(&DynamicImage::ImageLuma16(rgba.to_luma16()), ImageFormat::Png),
        enc(&DynamicImage::ImageRgb8(rgba.to_rgb8()), ImageFormat::Jpeg),
        enc(&DynamicImage::ImageLuma8(rgba.to_luma8()), ImageFormat::Jpeg),
        enc(&rgba, ImageFormat::Gif),
    ];
    // Palette and 1-bit grey PNGs (the image crate writes neither).
    let mut pal = Vec::new();
    {
        let mut e = png::Encoder::new(&mut pal, 5, 3);
        e.set_color(png::ColorType::Indexed);
        e.set_depth(png::BitDepth::Four);
        e.set_palette(vec![0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]);
        e.set_trns(vec![255, 128, 0]);
        let mut w = e.write_header().expect("png header");
        w.write_image_data(&[0x01, 0x20, 0x00, 0x12, 0x00, 0x20, 0x10, 0x21, 0x00]).expect("png data");
    }
    out.push(pal);
    let mut bits = Vec::new();
    {
        let mut e = png::Encoder::new(&mut bits, 9, 2);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::One);
        let mut w = e.write_header().expect("png header");
        w.write_image_data(&[0b1010_1010, 0b1000_0000, 0b0101_0101, 0]).expect("png data");
    }
    out.push(bits);
    out
}

impl Target for ImageEntry {
    fn run(&mut self, data: &[u8]) -> String {
        let path = self.work.join("entry.png");
        std::fs::write(&path, data).expect("scratch file");
        let res = [1, 2, 7, 16, 28, 32, 64][pick_from(data, 5, 7)];
        let channels = [Channels::Grey, Channels::Rgb, Channels::Auto][pick_from(data, 6, 3)];
        let r = folder::load_files(&[path], None, Vec::new(), res, channels, "fuzz".into());
        if let Ok(ds) = &r {
            assert_eq!((ds.len(), ds.height(), ds.width()), (1, res, res), "load_files: wrong number or size of images");
        }
        outcome("load", &r)
    }

    fn mutate(&mut self, d: &mut Vec<u8>, r: &mut Rng, other: &[u8]) -> bool {
        mutate_image(d, r, other)
    }

    fn custom_share(&self) -> usize {
        5
    }

    fn extra_seeds(&mut self) -> Vec<Vec<u8>> {
        seeds()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        let mut d: Vec<Vec<u8>> =
            [b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS", b"gAMA", b"sBIT", b"iCCP", b"tEXt", b"zTXt", b"acTL", b"fcTL", b"fdAT", b"eXIf", b"cHRM", b"sRGB"]
                .iter()
                .map(|t| t.to_vec())
                .collect();
        d.push(PNG_SIG.to_vec());
        // JPEG markers: SOI, SOF0, SOF2 (progressive), DHT, DQT, SOS, EOI, APP0, DRI.
        for m in [0xd8u8, 0xc0, 0xc2, 0xc4, 0xdb, 0xda, 0xd9, 0xe0, 0xdd] {
            d.push(vec![0xff, m]);
        }
        d.extend([b"GIF89a".to_vec(), b"NETSCAPE2.0".to_vec(), vec![0x21, 0xf9, 0x04], vec![0x2c]]);
        d
    }

    fn max_len(&self) -> usize {
        1 << 20
    }
}

/// The image mutations, for the studio's uploads too: a PNG bomb now and then, else PNG chunk
/// edits (false for other formats).
pub fn mutate_image(d: &mut Vec<u8>, r: &mut Rng, other: &[u8]) -> bool {
    if r.one_in(150) && !super::idx::no_bombs() {
        *d = png_bomb(r);
        return true;
    }
    let Some(mut chunks) = png_chunks(d) else { return false };
    if chunks.is_empty() {
        return false;
    }
    match r.below(8) {
        0 | 1 => {
            // One chunk's data mutated, its CRC fixed.
            let i = r.below(chunks.len());
            mutate_bytes(&mut chunks[i].1, r, other, &[], 1 << 20);
        }
        2 | 3 => {
            // IHDR: width, height, bit depth, colour type, interlace.
            let Some(h) = chunks.iter_mut().find(|c| &c.0 == b"IHDR") else { return false };
            if h.1.len() < 13 {
                h.1.resize(13, 0);
            }
            match r.below(5) {
                0 | 1 => {
                    let at = 4 * r.below(2);
                    let v = *r.pick(&[0u32, 1, 2, 3, 255, 1024, 16384, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]);
                    h.1[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
                2 => h.1[8] = *r.pick(&[0, 1, 2, 4, 8, 16, 3, 32]),
                3 => h.1[9] = *r.pick(&[0, 2, 3, 4, 6, 1, 5, 7]),
                _ => h.1[12] = *r.pick(&[0, 1, 2]),
            }
        }
        4 | 5 => {
            // The pixel data: inflated, mutated, deflated again (a valid zlib stream).
            let idat: Vec<u8> = chunks.iter().filter(|c| &c.0 == b"IDAT").flat_map(|c| c.1.clone()).collect();
            let mut raw = Vec::new();
            if flate2::read::ZlibDecoder::new(idat.as_slice()).take(16 << 20).read_to_end(&mut raw).is_err() && raw.is_empty() {
                return false;
            }
            for _ in 0..1 + r.below(4) {
                mutate_bytes(&mut raw, r, other, &[], 1 << 20);
            }
            let mut e = ZlibEncoder::new(Vec::new(), Compression::fast());
            e.write_all(&raw).expect("in memory");
            let z = e.finish().expect("in memory");
            chunks.retain(|c| &c.0 != b"IDAT");
            let at = chunks.iter().position(|c| &c.0 == b"IEND").unwrap_or(chunks.len());
            chunks.insert(at, (*b"IDAT", z));
        }
        6 => {
            // A chunk dropped or repeated.
            let i = r.below(chunks.len());
            if r.one_in(2) {
                chunks.remove(i);
            } else {
                let c = chunks[i].clone();
                chunks.insert(r.below(chunks.len() + 1), c);
            }
        }
        _ => {
            // Only the CRCs fixed (after generic mutations broke them).
        }
    }
    *d = png_bytes(&chunks);
    true
}

type Chunk = ([u8; 4], Vec<u8>);

/// The chunks of a PNG (type, data), CRCs ignored; `None` when it is not one.
fn png_chunks(d: &[u8]) -> Option<Vec<Chunk>> {
    if !d.starts_with(&PNG_SIG) {
        return None;
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= d.len() {
        let len = u32::from_be_bytes(d[at..at + 4].try_into().unwrap()) as usize;
        let ty: [u8; 4] = d[at + 4..at + 8].try_into().unwrap();
        let end = (at + 8).saturating_add(len).min(d.len());
        out.push((ty, d[at + 8..end].to_vec()));
        at = end + 4;
    }
    Some(out)
}

fn png_bytes(chunks: &[Chunk]) -> Vec<u8> {
    let mut out = PNG_SIG.to_vec();
    for (ty, data) in chunks {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(ty);
        out.extend_from_slice(data);
        let mut h = crc32fast::Hasher::new();
        h.update(ty);
        h.update(data);
        out.extend_from_slice(&h.finalize().to_be_bytes());
    }
    out
}

/// A PNG of zeros with large dimensions: small on disk, hundreds of MB decoded (cached: the
/// big ones take a second to compress).
fn png_bomb(r: &mut Rng) -> Vec<u8> {
    type Cache = std::collections::HashMap<u64, Vec<u8>>;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    let key = r.next_u64();
    let mut pick = Rng::new(key % 512);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache.get_or_insert_with(Default::default).entry(key % 512).or_insert_with(|| make_png_bomb(&mut pick)).clone()
}

fn make_png_bomb(r: &mut Rng) -> Vec<u8> {
    // (colour type, bit depth, bytes per pixel x 8)
    let (ct, depth, bits) = *r.pick(&[(0u8, 8u8, 8u64), (0, 16, 16), (2, 8, 24), (6, 8, 32), (4, 8, 16), (0, 1, 1)]);
    let side = |r: &mut Rng| *r.pick(&[1u32, 64, 4096, 8192, 16384, 20000, 32768]);
    let (w, h) = (side(r), side(r));
    let row = 1 + (w as u64 * bits).div_ceil(8);
    let total = row * h as u64;
    if total > 600 << 20 {
        return png_bytes(&[(*b"IHDR", ihdr(w, h, depth, ct)), (*b"IEND", Vec::new())]);
    }
    let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    let mut left = total;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        e.write_all(&zeros[..n]).expect("in memory");
        left -= n as u64;
    }
    let z = e.finish().expect("in memory");
    png_bytes(&[(*b"IHDR", ihdr(w, h, depth, ct)), (*b"IDAT", z), (*b"IEND", Vec::new())])
}

fn ihdr(w: u32, h: u32, depth: u8, ct: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(13);
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[depth, ct, 0, 0, 0]);
    v
}
