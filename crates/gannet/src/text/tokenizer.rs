//! Words of captions and prompts as token ids.
//!
//! A caption is lower-cased and split at every character that is not a letter or a digit, so
//! "Woman technologist: medium-light skin tone" reads as `woman technologist medium light skin
//! tone`. The vocabulary is the set of words of the training captions; id 0 pads a batch of
//! shorter captions and id 1 stands for a word the vocabulary lacks (held-out captions may have
//! such words; a user's prompt may not, see [`Vocab::encode_prompt`]).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Pads a caption to the length of the longest one in its batch.
pub const PAD: u32 = 0;
/// A word outside the vocabulary.
pub const UNKNOWN: u32 = 1;
/// Words read of one caption; more is an error for a prompt and cut for a data caption.
pub const MAX_WORDS: usize = 32;

/// The words of `text`: lower case, split at anything that is not a letter or digit.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The training captions' words, each with its id (2, 3, ... in sorted order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Vocab {
    words: Vec<String>,
    ids: BTreeMap<String, u32>,
}

impl From<Vec<String>> for Vocab {
    fn from(words: Vec<String>) -> Self {
        Self::from_words(words)
    }
}

impl From<Vocab> for Vec<String> {
    fn from(v: Vocab) -> Self {
        v.words
    }
}

impl Vocab {
    /// Every word of `captions`, in sorted order (so the ids do not depend on caption order).
    pub fn build<'a>(captions: impl IntoIterator<Item = &'a str>) -> crate::Result<Self> {
        let set: BTreeSet<String> = captions.into_iter().flat_map(words).collect();
        if set.is_empty() {
            return Err(crate::Error::Msg("the captions have no words: a text-to-image model needs captions to learn from".into()));
        }
        Ok(Self::from_words(set.into_iter().collect()))
    }

    /// A vocabulary of `words` as saved in a checkpoint.
    pub fn from_words(words: Vec<String>) -> Self {
        let ids = words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32 + 2)).collect();
        Self { words, ids }
    }

    /// The words, in id order (id = index + 2).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Number of ids, the two special ones included.
    pub fn len(&self) -> usize {
        self.words.len() + 2
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ids of a data caption: unknown words become [`UNKNOWN`], words past [`MAX_WORDS`] are
    /// dropped, an empty caption is one [`UNKNOWN`] (the loaders refuse empty captions first).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = words(text).iter().take(MAX_WORDS).map(|w| self.ids.get(w).copied().unwrap_or(UNKNOWN)).collect();
        if ids.is_empty() {
            ids.push(UNKNOWN);
        }
        ids
    }

    /// The ids of a user's prompt. An empty prompt, a prompt of more than [`MAX_WORDS`] words,
    /// or one with words the model never saw is an error; the last names the words and a few
    /// the model knows that are spelled alike.
    pub fn encode_prompt(&self, prompt: &str) -> crate::Result<Vec<u32>> {
        let ws = words(prompt);
        if ws.is_empty() {
            return Err(crate::Error::Msg("the prompt is empty: describe the image in words, e.g. \"red heart\"".into()));
        }
        if ws.len() > MAX_WORDS {
            return Err(crate::Error::Msg(format!("the prompt has {} words; this model reads at most {MAX_WORDS}", ws.len())));
        }
        let unknown: Vec<&String> = ws.iter().filter(|w| !self.ids.contains_key(*w)).collect();
        if !unknown.is_empty() {
            let hints: Vec<String> = unknown.iter().filter_map(|w| self.similar(w).map(|s| format!("'{w}' -> '{s}'?"))).collect();
            let list = unknown.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(", ");
            let hint = if hints.is_empty() { String::new() } else { format!(" (did you mean: {})", hints.join(", ")) };
            return Err(crate::Error::Msg(format!(
                "the prompt has words this model never saw in its {} training words: {list}{hint}; use other words",
                self.words.len()
            )));
        }
        Ok(ws.iter().map(|w| self.ids[w]).collect())
    }

    /// A known word close to `word` (same first letter, edit distance at most 2), if any.
    fn similar(&self, word: &str) -> Option<&str> {
        let first = word.chars().next()?;
        self.words.iter().filter(|w| w.starts_with(first)).map(|w| (edit_distance(w, word), w)).filter(|(d, _)| *d <= 2).min().map(|(_, w)| w.as_str())
    }
}

/// Levenshtein distance, for the "did you mean" of an unknown word.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A batch of id lists padded with [`PAD`] to the longest: `(ids [N, T] as u32, lengths)`.
pub fn pad_batch(captions: &[&[u32]]) -> (Vec<u32>, usize) {
    let t = captions.iter().map(|c| c.len()).max().unwrap_or(1).max(1);
    let mut out = vec![PAD; captions.len() * t];
    for (row, c) in out.chunks_exact_mut(t).zip(captions) {
        row[..c.len()].copy_from_slice(c);
    }
    (out, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_at_punctuation_and_lower_case() {
        assert_eq!(words("Woman technologist: medium-light skin tone"), ["woman", "technologist", "medium", "light", "skin", "tone"]);
        assert_eq!(words("  flag: Finland!! "), ["flag", "finland"]);
        assert!(words(" ,.: ").is_empty());
    }

    #[test]
    fn ids_are_stable_and_unknown_words_are_named() {
        let v = Vocab::build(["red heart", "blue heart", "grinning face"]).unwrap();
        assert_eq!(v.len(), 2 + 5);
        assert_eq!(v.encode("Red HEART"), v.encode_prompt("red heart").unwrap());
        assert_eq!(v.encode("purple heart"), vec![UNKNOWN, v.encode("heart")[0]]);
        let e = v.encode_prompt("purple hearts").unwrap_err().to_string();
        assert!(e.contains("'purple'") && e.contains("'hearts' -> 'heart'?"), "{e}");
        assert!(v.encode_prompt("  !! ").unwrap_err().to_string().contains("empty"));
        let long = vec!["red"; MAX_WORDS + 1].join(" ");
        assert!(v.encode_prompt(&long).is_err());
        let back: Vocab = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn batches_pad_to_the_longest() {
        let (ids, t) = pad_batch(&[&[5, 6, 7], &[8]]);
        assert_eq!((ids, t), (vec![5, 6, 7, 8, PAD, PAD], 3));
    }
}
