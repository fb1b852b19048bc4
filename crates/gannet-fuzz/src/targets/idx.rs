//! `idx`: IDX (MNIST) files, maybe gzipped. The input is the file: `idx::maybe_gunzip`, then
//! `parse_labels` and `parse_images`; an images file that parses is then loaded as an MNIST
//! folder's training images through `data::load` (the loader's own gunzip, a labels file beside
//! it, the resize to the run's resolution).
//!
//! The structure-aware mutations set header fields to edge values, gzip or gunzip the file, fit
//! the body to the dimensions, and build gzip bombs: a header and many gzip members of 16 MiB of
//! zeros each (a few MB of input that inflate to up to 4 GiB).

use super::{outcome, pick_from, Target};
use crate::mutate::Rng;
use flate2::write::GzEncoder;
use flate2::Compression;
use gannet::data::{idx, Channels, DataSource, LoadOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct Idx {
    work: PathBuf,
}

impl Idx {
    pub fn new(work: &Path) -> Self {
        Idx { work: work.to_path_buf() }
    }
}

const GZ_MAGIC: [u8; 2] = [0x1f, 0x8b];

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

/// One gzip member of 16 MiB of zeros (about 16 KiB).
fn zero_member() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            e.write_all(&zeros).expect("in memory");
        }
        e.finish().expect("in memory")
    })
}

pub fn images_header(count: u32, h: u32, w: u32) -> Vec<u8> {
    [idx::IMAGES_MAGIC, count, h, w].iter().flat_map(|v| v.to_be_bytes()).collect()
}

pub fn labels_header(count: u32) -> Vec<u8> {
    [idx::LABELS_MAGIC, count].iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Small valid files: digits from the built-in set (raw and gzipped), labels, odd shapes.
pub fn seeds() -> Vec<Vec<u8>> {
    let digits = gannet::data::builtin::load_digits(28, Channels::Grey).expect("the built-in digits");
    let mut three = images_header(3, 28, 28);
    three.extend_from_slice(&digits.images_u8()[..3 * 28 * 28]);
    let mut labels = labels_header(3);
    labels.extend(digits.labels().expect("labelled")[..3].iter().map(|&l| l as u8));
    let mut odd = images_header(2, 3, 5);
    odd.extend((0..30u8).map(|i| i * 8));
    vec![gzip(&three), three, labels.clone(), gzip(&labels), odd, images_header(0, 28, 28), labels_header(0)]
}

impl Target for Idx {
    fn run(&mut self, data: &[u8]) -> String {
        let name = Path::new("fuzz-images-idx3-ubyte");
        let raw = match idx::maybe_gunzip(data.to_vec(), name) {
            Ok(r) => r,
            Err(e) => return outcome::<(), _>("gunzip", &Err(e)),
        };
        let labels = idx::parse_labels(&raw, name);
        let images = idx::parse_images(&raw, name);
        let mut out = format!("{} | {}", outcome("labels", &labels), outcome("images", &images));
        if let Ok(l) = &labels {
            assert_eq!(l.len(), be_u32(&raw, 4) as usize, "parse_labels returned another count than the header's");
        }
        let Ok(imgs) = images else { return out };
        assert_eq!(imgs.pixels.len(), imgs.count * imgs.height * imgs.width, "parse_images: pixels do not match the dimensions");
        drop(raw);
        // The loader, as for `data.source = <an MNIST folder>`.
        let dir = self.work.join("mnist");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let gz = data.starts_with(&GZ_MAGIC);
        std::fs::write(dir.join(if gz { "train-images-idx3-ubyte.gz" } else { "train-images-idx3-ubyte" }), data).expect("scratch file");
        let with_labels = pick_from(data, 1, 3);
        if with_labels > 0 {
            // Labels for every image (one more than there are when the input says so).
            let n = imgs.count + (with_labels == 2) as usize;
            let mut l = labels_header(n as u32);
            l.extend((0..n).map(|i| imgs.pixels.get(i).map_or(0, |p| p % 12)));
            std::fs::write(dir.join("train-labels-idx1-ubyte"), l).expect("scratch file");
        }
        // Down-scaling only (or the default 28/32 for small images): the output is no larger
        // than the input, so a big allocation is the loader's, not the request's.
        let side = imgs.height.min(imgs.width).min(64);
        let res = match pick_from(data, 2, 4) {
            0 => side,
            1 => 1 + pick_from(data, 3, side),
            2 if side >= 28 => 28,
            _ if side >= 32 => 32,
            _ => side,
        };
        let channels = [Channels::Grey, Channels::Rgb, Channels::Auto][pick_from(data, 4, 3)];
        let loaded = gannet::data::load(&DataSource::Path(dir), &LoadOptions { resolution: res, channels });
        if let Ok(ds) = &loaded {
            assert_eq!(ds.len(), imgs.count, "data::load returned another number of images than the file holds");
            assert_eq!((ds.height(), ds.width()), (res, res), "data::load ignored the resolution");
        }
        out += &format!(" | {}", outcome("load", &loaded));
        out
    }

    fn mutate(&mut self, d: &mut Vec<u8>, r: &mut Rng, _other: &[u8]) -> bool {
        match r.below(20) {
            0..=5 => {
                // A header field (magic or a dimension) set to an edge value; gzipped files are
                // edited inside.
                let gz = d.starts_with(&GZ_MAGIC);
                let mut raw = if gz { gunzip_small(d).unwrap_or_default() } else { std::mem::take(d) };
                if raw.len() < 16 {
                    raw.resize(16, 0);
                }
                let field = r.below(4);
                let v: u32 = if field == 0 {
                    *r.pick(&[idx::IMAGES_MAGIC, idx::LABELS_MAGIC, 0x0000_0c03, 0x0000_0800, 0x0000_08ff, 0x0000_0d01])
                } else {
                    *r.pick(&[0, 1, 2, 3, 27, 28, 29, 64, 255, 256, 4096, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x100_0001])
                };
                raw[field * 4..field * 4 + 4].copy_from_slice(&v.to_be_bytes());
                *d = if gz { gzip(&raw) } else { raw };
            }
            6..=9 => {
                // Gzip or gunzip.
                if d.starts_with(&GZ_MAGIC) {
                    match gunzip_small(d) {
                        Some(raw) => *d = raw,
                        None => return false,
                    }
                } else {
                    *d = gzip(d);
                }
            }
            10..=13 => {
                // The body fitted to the dimensions (images or labels).
                let gz = d.starts_with(&GZ_MAGIC);
                let mut raw = if gz { gunzip_small(d).unwrap_or_default() } else { std::mem::take(d) };
                if raw.len() < 8 {
                    raw.resize(8, 0);
                }
                let need = if be_u32(&raw, 0) == idx::LABELS_MAGIC {
                    Some(8 + be_u32(&raw, 4) as usize)
                } else if raw.len() >= 16 {
                    (be_u32(&raw, 4) as usize).checked_mul(be_u32(&raw, 8) as usize).and_then(|n| n.checked_mul(be_u32(&raw, 12) as usize)).map(|n| n + 16)
                } else {
                    None
                };
                if let Some(n) = need.filter(|&n| n <= 4 << 20) {
                    let fill = r.next_u64() as u8;
                    raw.resize(n, fill);
                }
                *d = if gz { gzip(&raw) } else { raw };
            }
            14 if !no_bombs() => {
                // A gzip bomb: the header, then 16 MiB members of zeros (1 to 256 of them).
                let members = 1 + r.below(256);
                let side = *r.pick(&[28u32, 1024, 4096, 16384, 65535]);
                let count = ((members as u64 * (16 << 20)) / (side as u64 * side as u64)).max(1) as u32;
                let header = if r.one_in(4) { labels_header(count.saturating_mul(side * side)) } else { images_header(count, side, side) };
                let mut out = gzip(&header);
                for _ in 0..members {
                    out.extend_from_slice(zero_member());
                }
                *d = out;
            }
            _ => return false,
        }
        true
    }

    fn extra_seeds(&mut self) -> Vec<Vec<u8>> {
        seeds()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        vec![
            idx::IMAGES_MAGIC.to_be_bytes().to_vec(),
            idx::LABELS_MAGIC.to_be_bytes().to_vec(),
            28u32.to_be_bytes().to_vec(),
            vec![0x1f, 0x8b, 8, 0],
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff],
        ]
    }

    fn max_len(&self) -> usize {
        // Gzip bombs are up to 256 members of ~16 KiB.
        8 << 20
    }
}

/// `GANNET_FUZZ_NO_BOMBS=1` leaves out the decompression bombs (to look for other bugs while a
/// bomb finding is open: an over-limit allocation ends the run even with --keep-going).
pub fn no_bombs() -> bool {
    std::env::var_os("GANNET_FUZZ_NO_BOMBS").is_some()
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Gunzips (all members) if the result is at most 4 MiB.
fn gunzip_small(d: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(d).take(4 << 20).read_to_end(&mut out).ok()?;
    (out.len() < 4 << 20).then_some(out)
}
