//! Text-to-image metrics built on the contrastive encoders.
//!
//! R-precision (Xu et al. 2018, AttnGAN): for each image, its true caption and `others` captions
//! drawn at random are ranked by the cosine similarity of their text embeddings to the image's
//! embedding; the score is the fraction of images whose true caption ranks first. The other
//! captions are drawn from captions of other groups (another emoji, not the same emoji in
//! another style or skin tone), so a near-copy of the true caption never competes with it.
//! Chance is `1 / (others + 1)`; the real images of the same captions give the ceiling.

use super::classifier::Classifier;
use super::inception::FidInception;
use crate::data::captions::CaptionedImages;
use crate::rng::{self, Stream};
use candle_core::{Device, Tensor};
use rand::seq::index::sample;
use serde::Serialize;

/// Captions competing with the true one in R-precision (AttnGAN's 99, for 1-in-100).
pub const R_PRECISION_OTHERS: usize = 99;

/// R-precision of images (embeddings `[N, E]`, image i showing caption `truth[i]`) against the
/// caption pool (embeddings `[M, E]`, group of each in `groups`), with `others` other captions
/// per image drawn from `seed`. Errors when a caption has fewer than `others` captions of other
/// groups to compete with.
pub fn r_precision(images: &Tensor, captions: &Tensor, truth: &[usize], groups: &[String], others: usize, seed: u64) -> crate::Result<f64> {
    let sims: Vec<Vec<f32>> = crate::text::similarity(images, captions)?.to_vec2()?;
    if sims.len() != truth.len() || groups.len() != captions.dim(0)? {
        return Err(crate::Error::Msg("r_precision: one true caption per image and one group per caption".into()));
    }
    if sims.is_empty() {
        return Err(crate::Error::Msg("r_precision: no images".into()));
    }
    let mut rng = rng::rng(seed, Stream::Sample, 0);
    let mut right = 0usize;
    for (row, &t) in sims.iter().zip(truth) {
        let pool: Vec<usize> = (0..groups.len()).filter(|&j| groups[j] != groups[t]).collect();
        if pool.len() < others {
            return Err(crate::Error::Msg(format!(
                "R-precision needs {others} captions of other groups per image; only {} here: evaluate on more captions",
                pool.len()
            )));
        }
        let drawn = sample(&mut rng, pool.len(), others);
        if drawn.iter().all(|k| row[pool[k]] < row[t]) {
            right += 1;
        }
    }
    Ok(right as f64 / sims.len() as f64)
}

/// Images embedded, generated or scored at a time.
const CHUNK: usize = 64;

/// What the text-to-image metrics need of a model (`saved::T2iNets` is one).
pub trait TextImageModel {
    /// Sentence embeddings `[M, E]` of data captions (words the model never saw count as
    /// unknown, not as errors).
    fn embed_captions(&self, captions: &[&str], device: &Device) -> crate::Result<Tensor>;
    /// Embeddings `[N, E]` of images in [-1, 1], in the same space.
    fn embed_images(&self, images: &Tensor) -> crate::Result<Tensor>;
    /// One image in [-1, 1] per sentence embedding (row of `text`), drawn from `seed` and `index`.
    fn generate(&self, text: &Tensor, seed: u64, index: u64) -> crate::Result<Tensor>;
}

/// Sentence embeddings `[M, E]` of every caption of `data`.
pub fn embed_captions(nets: &dyn TextImageModel, data: &CaptionedImages, device: &Device) -> crate::Result<Tensor> {
    let texts: Vec<&str> = data.captions.iter().map(|c| c.text.as_str()).collect();
    let mut out = Vec::new();
    for chunk in texts.chunks(256) {
        out.push(nets.embed_captions(chunk, device)?.detach());
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// One generated image (in [-1, 1]) per sentence embedding of the first `count` rows of `texts`,
/// drawn from `seed`.
pub fn generate_for(nets: &dyn TextImageModel, texts: &Tensor, count: usize, seed: u64) -> crate::Result<Tensor> {
    let mut out = Vec::new();
    for start in (0..count).step_by(CHUNK) {
        let n = CHUNK.min(count - start);
        out.push(nets.generate(&texts.narrow(0, start, n)?, seed, start as u64)?.detach());
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// Image embeddings `[N, E]` of images in [-1, 1].
pub fn embed_images(nets: &dyn TextImageModel, images: &Tensor) -> crate::Result<Tensor> {
    let n = images.dim(0)?;
    let mut out = Vec::new();
    for start in (0..n).step_by(CHUNK) {
        out.push(nets.embed_images(&images.narrow(0, start, CHUNK.min(n - start))?)?.detach());
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// A score of generated images beside the same score of the real images of the same captions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Versus {
    pub generated: f64,
    pub real: f64,
    /// What guessing gives.
    pub chance: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TextImageScores {
    /// Captions scored (one generated and one real image each).
    pub captions: usize,
    pub r_precision: Versus,
    /// Share of images a category classifier puts in their caption's category; chance is the
    /// share of the most common category.
    pub category_accuracy: Option<Versus>,
    /// The mean over categories of that share within each category (every category counts the
    /// same, however many images it has); chance is 1 / categories.
    pub category_balanced: Option<Versus>,
    /// FID of the generated images against the real ones (Inception pool3).
    pub fid: Option<f64>,
}

/// What [`evaluate`] scores besides R-precision.
pub struct TextImageEvalOptions<'a> {
    pub seed: u64,
    /// Captions scored (the first of `held`; all when fewer).
    pub count: usize,
    /// A classifier of the data's categories (`gannet classifier --data captioned:DIR`).
    pub classifier: Option<&'a Classifier>,
    pub inception: Option<&'a FidInception>,
}

/// Scores one generated image per caption of `held` (captions never trained on) against the
/// real image of each: R-precision, category accuracy, FID.
pub fn evaluate(nets: &dyn TextImageModel, held: &CaptionedImages, opts: &TextImageEvalOptions, device: &Device) -> crate::Result<TextImageScores> {
    let n = held.len().min(opts.count);
    let texts = embed_captions(nets, held, device)?;
    let generated = generate_for(nets, &texts, n, opts.seed)?;
    let real = held.images.batch_tensor(&(0..n).collect::<Vec<_>>(), device)?;
    let groups: Vec<String> = held.captions.iter().map(|c| c.group.clone()).collect();
    let truth: Vec<usize> = (0..n).collect();
    let r = |images: &Tensor| r_precision(&embed_images(nets, images)?, &texts, &truth, &groups, R_PRECISION_OTHERS, opts.seed);
    let r_precision = Versus { generated: r(&generated)?, real: r(&real)?, chance: 1.0 / (R_PRECISION_OTHERS + 1) as f64 };
    let (category_accuracy, category_balanced) = match opts.classifier {
        Some(c) => {
            let (plain, balanced) = category_accuracy(c, held, n, &generated, &real)?;
            (Some(plain), Some(balanced))
        }
        None => (None, None),
    };
    let fid = match opts.inception {
        Some(inc) => {
            let g = inc.features(&((generated + 1.0)? * 0.5)?)?;
            let r = inc.features(&((real + 1.0)? * 0.5)?)?;
            Some(super::fid::fid_from_features(&g, &r)?)
        }
        None => None,
    };
    Ok(TextImageScores { captions: n, r_precision, category_accuracy, category_balanced, fid })
}

/// Category accuracy of generated and real images, plain and balanced over categories.
fn category_accuracy(classifier: &Classifier, held: &CaptionedImages, n: usize, generated: &Tensor, real: &Tensor) -> crate::Result<(Versus, Versus)> {
    if classifier.class_names() != held.categories.as_slice() {
        return Err(crate::Error::Msg(format!(
            "the classifier's classes ({}) are not the data's categories ({}): train it with `gannet classifier --data captioned:DIR`",
            classifier.class_names().join(", "),
            if held.categories.is_empty() { "none".into() } else { held.categories.join(", ") }
        )));
    }
    let k = held.categories.len();
    let truth: Vec<usize> = held.captions[..n].iter().map(|c| c.category.map_or(usize::MAX, |k| k as usize)).collect();
    let mut counts = vec![0usize; k];
    for &t in truth.iter().filter(|&&t| t < k) {
        counts[t] += 1;
    }
    // (plain, balanced) accuracy of one set of images.
    let score = |images: &Tensor| -> crate::Result<(f64, f64)> {
        let predicted = classifier.predict(&((images + 1.0)? * 0.5)?)?;
        let mut right = vec![0usize; k];
        for (&p, &t) in predicted.iter().zip(&truth) {
            if p == t && t < k {
                right[t] += 1;
            }
        }
        let present: Vec<usize> = (0..k).filter(|&c| counts[c] > 0).collect();
        let balanced = present.iter().map(|&c| right[c] as f64 / counts[c] as f64).sum::<f64>() / present.len().max(1) as f64;
        Ok((right.iter().sum::<usize>() as f64 / n as f64, balanced))
    };
    let ((g, gb), (r, rb)) = (score(generated)?, score(real)?);
    let majority = counts.iter().copied().max().unwrap_or(0) as f64 / n as f64;
    let present = counts.iter().filter(|&&c| c > 0).count().max(1) as f64;
    Ok((Versus { generated: g, real: r, chance: majority }, Versus { generated: gb, real: rb, chance: 1.0 / present }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn r_precision_counts_images_whose_caption_ranks_first() {
        let d = Device::Cpu;
        // Captions along 4 axes (one group each); image 0 points at caption 0, image 1 at caption
        // 3 although its truth is caption 1.
        let caps = Tensor::from_vec(vec![1f32, 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.], (4, 4), &d).unwrap();
        let imgs = Tensor::from_vec(vec![0.9f32, 0.1, 0., 0., 0., 0.2, 0., 0.9], (2, 4), &d).unwrap();
        let groups: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(r_precision(&imgs, &caps, &[0, 1], &groups, 3, 0).unwrap(), 0.5);
        // Same group as the truth never competes: with caption 3 in group "b", image 1 wins.
        let groups: Vec<String> = ["a", "b", "c", "b"].map(String::from).to_vec();
        assert_eq!(r_precision(&imgs, &caps, &[0, 1], &groups, 2, 0).unwrap(), 1.0);
        assert!(r_precision(&imgs, &caps, &[0, 1], &groups, 3, 0).is_err());
    }
}
