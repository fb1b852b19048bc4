//! A small random source and the generic mutations (libFuzzer's usual set: bit flips,
//! interesting values, arithmetic, block delete/insert/copy, splicing with another input,
//! dictionary tokens) plus one for text formats: replacing a number with an edge-case number.

/// splitmix64: fast, seedable, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A small size, skewed towards 1: most block mutations touch a few bytes.
    pub fn small_len(&mut self, max: usize) -> usize {
        let max = max.max(1);
        match self.below(4) {
            0 | 1 => 1 + self.below(4.min(max)),
            2 => 1 + self.below(32.min(max)),
            _ => 1 + self.below(max),
        }
    }
}

const INTERESTING_8: [u8; 9] = [0, 1, 2, 0x10, 0x20, 0x40, 0x7f, 0x80, 0xff];
const INTERESTING_16: [u16; 8] = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff];
const INTERESTING_32: [u32; 12] = [0, 1, 2, 3, 16, 28, 0x100, 0x7fff, 0xffff, 0x1_0000, 0x7fff_ffff, 0xffff_ffff];
const INTERESTING_64: [u64; 6] = [0, 1, 0xffff_ffff, 0x1_0000_0000, i64::MAX as u64, u64::MAX];

/// Numbers that break parsers and size arithmetic, as text.
pub const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "8",
    "16",
    "31",
    "32",
    "33",
    "64",
    "255",
    "256",
    "1024",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "0.0",
    "-0.0",
    "0.5",
    "1.5",
    "1e-320",
    "1e38",
    "3.5e38",
    "1e308",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "-inf",
    "+inf",
    "1_000",
    "0x10",
    "0o7",
    "0b1",
];

/// Applies one random generic mutation. `other` is another input of the corpus (for splicing);
/// `dict` holds tokens of the input format.
pub fn mutate_bytes(d: &mut Vec<u8>, r: &mut Rng, other: &[u8], dict: &[Vec<u8>], max_len: usize) {
    if d.is_empty() {
        insert_bytes(d, r, other, dict);
        return;
    }
    match r.below(16) {
        0 => {
            let i = r.below(d.len());
            d[i] ^= 1 << r.below(8);
        }
        1 => {
            let i = r.below(d.len());
            d[i] = r.next_u64() as u8;
        }
        2 => {
            let i = r.below(d.len());
            d[i] = *r.pick(&INTERESTING_8);
        }
        3 => {
            let v = *r.pick(&INTERESTING_16);
            let b = if r.one_in(2) { v.to_le_bytes() } else { v.to_be_bytes() };
            overwrite_at_random(d, r, &b);
        }
        4 => {
            let v = *r.pick(&INTERESTING_32);
            let b = if r.one_in(2) { v.to_le_bytes() } else { v.to_be_bytes() };
            overwrite_at_random(d, r, &b);
        }
        5 => {
            let v = *r.pick(&INTERESTING_64);
            overwrite_at_random(d, r, &v.to_le_bytes());
        }
        6 => {
            let i = r.below(d.len());
            let delta = 1 + r.below(35) as u8;
            d[i] = if r.one_in(2) { d[i].wrapping_add(delta) } else { d[i].wrapping_sub(delta) };
        }
        7 if d.len() >= 4 => {
            let i = r.below(d.len() - 3);
            let be = r.one_in(2);
            let raw = [d[i], d[i + 1], d[i + 2], d[i + 3]];
            let v = if be { u32::from_be_bytes(raw) } else { u32::from_le_bytes(raw) };
            let delta = 1 + r.below(35) as u32;
            let v = if r.one_in(2) { v.wrapping_add(delta) } else { v.wrapping_sub(delta) };
            d[i..i + 4].copy_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
        }
        8 | 9 => {
            let n = r.small_len(d.len());
            let i = r.below(d.len() - n + 1);
            d.drain(i..i + n);
        }
        10 => insert_bytes(d, r, other, dict),
        11 => {
            // Copy a block of the input over or into another place.
            let n = r.small_len(d.len());
            let from = r.below(d.len() - n + 1);
            let block = d[from..from + n].to_vec();
            if r.one_in(2) {
                overwrite_at_random(d, r, &block);
            } else {
                let at = r.below(d.len() + 1);
                d.splice(at..at, block);
            }
        }
        12 if !other.is_empty() => {
            // Splice: a block of another input, or this one's head with the other's tail.
            if r.one_in(2) {
                let cut_a = r.below(d.len() + 1);
                let cut_b = r.below(other.len() + 1);
                d.truncate(cut_a);
                d.extend_from_slice(&other[cut_b..]);
            } else {
                let n = r.small_len(other.len());
                let from = r.below(other.len() - n + 1);
                let block = other[from..from + n].to_vec();
                overwrite_at_random(d, r, &block);
            }
        }
        13 if !dict.is_empty() => {
            let tok = r.pick(dict).clone();
            if r.one_in(2) {
                overwrite_at_random(d, r, &tok);
            } else {
                let at = r.below(d.len() + 1);
                d.splice(at..at, tok);
            }
        }
        14 => replace_number(d, r),
        15 => {
            let n = r.below(d.len());
            d.truncate(n);
        }
        _ => {
            let i = r.below(d.len());
            d[i] = r.next_u64() as u8;
        }
    }
    d.truncate(max_len);
}

fn overwrite_at_random(d: &mut Vec<u8>, r: &mut Rng, b: &[u8]) {
    if d.len() < b.len() {
        d.resize(b.len(), 0);
    }
    let i = r.below(d.len() - b.len() + 1);
    d[i..i + b.len()].copy_from_slice(b);
}

fn insert_bytes(d: &mut Vec<u8>, r: &mut Rng, other: &[u8], dict: &[Vec<u8>]) {
    let at = r.below(d.len() + 1);
    let block: Vec<u8> = match r.below(4) {
        0 if !dict.is_empty() => r.pick(dict).clone(),
        1 if !other.is_empty() => {
            let n = r.small_len(other.len());
            let from = r.below(other.len() - n + 1);
            other[from..from + n].to_vec()
        }
        2 => vec![r.next_u64() as u8; r.small_len(128)],
        _ => (0..r.small_len(16)).map(|_| r.next_u64() as u8).collect(),
    };
    d.splice(at..at, block);
}

/// Replaces a run of ASCII digits (with its sign, point and exponent) by an edge-case number;
/// inserts one when the input has no digits.
pub fn replace_number(d: &mut Vec<u8>, r: &mut Rng) {
    let starts: Vec<usize> = (0..d.len()).filter(|&i| d[i].is_ascii_digit() && (i == 0 || !d[i - 1].is_ascii_digit())).collect();
    // Half the time 0, 1 or -1: sizes and divisors break there.
    let new = if r.one_in(2) { r.pick(&["0", "1", "-1"]).as_bytes().to_vec() } else { r.pick(INTERESTING_NUMBERS).as_bytes().to_vec() };
    if starts.is_empty() {
        let at = r.below(d.len() + 1);
        d.splice(at..at, new);
        return;
    }
    let mut s = *r.pick(&starts);
    if s > 0 && (d[s - 1] == b'-' || d[s - 1] == b'+') {
        s -= 1;
    }
    let mut e = s + 1;
    while e < d.len() && (d[e].is_ascii_digit() || matches!(d[e], b'.' | b'e' | b'E' | b'_' | b'-' | b'+')) {
        e += 1;
    }
    d.splice(s..e, new);
}

/// Replaces `text[range]`-like spans for text formats: one whole line removed, duplicated or
/// swapped with a line of `other`.
pub fn mutate_lines(d: &mut Vec<u8>, r: &mut Rng, other: &[u8]) {
    let mut lines: Vec<Vec<u8>> = d.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let theirs: Vec<&[u8]> = other.split(|&b| b == b'\n').collect();
    let i = r.below(lines.len());
    match r.below(4) {
        0 if lines.len() > 1 => {
            lines.remove(i);
        }
        1 => {
            let l = lines[i].clone();
            lines.insert(r.below(lines.len() + 1), l);
        }
        _ => {
            let l = r.pick(&theirs).to_vec();
            lines.insert(r.below(lines.len() + 1), l);
        }
    }
    *d = lines.join(&b'\n');
}
