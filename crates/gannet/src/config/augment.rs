//! `augment = "color,translation,cutout"`: which DiffAugment families are on (the augmentations
//! themselves are `train::augment`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Which augmentations are on; written in configs as a comma-separated list,
/// `augment = "color,translation,cutout"` (`"none"` or `""` = off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AugmentPolicy {
    pub color: bool,
    pub translation: bool,
    pub cutout: bool,
}

const NAMES: [&str; 3] = ["color", "translation", "cutout"];

impl AugmentPolicy {
    pub const NONE: AugmentPolicy = AugmentPolicy { color: false, translation: false, cutout: false };
    /// The policy the DiffAugment paper recommends for most data: all three.
    pub const ALL: AugmentPolicy = AugmentPolicy { color: true, translation: true, cutout: true };

    pub fn is_active(&self) -> bool {
        self.color || self.translation || self.cutout
    }

    /// Parses `"color,translation,cutout"` (any subset, any order, spaces allowed; `colour` is
    /// accepted too). `""` and `"none"` give no augmentation.
    pub fn parse(s: &str) -> crate::Result<Self> {
        let mut p = AugmentPolicy::NONE;
        let s = s.trim();
        if s.is_empty() || s == "none" {
            return Ok(p);
        }
        for part in s.split(',').map(str::trim) {
            let flag = match part {
                "color" | "colour" => &mut p.color,
                "translation" => &mut p.translation,
                "cutout" => &mut p.cutout,
                other => {
                    return Err(crate::Error::Config(format!(
                        "augment: unknown augmentation '{other}'; valid: {} (comma-separated), or none",
                        NAMES.join(", ")
                    )))
                }
            };
            if *flag {
                return Err(crate::Error::Config(format!("augment: '{part}' is listed twice")));
            }
            *flag = true;
        }
        Ok(p)
    }
}

impl fmt::Display for AugmentPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<&str> = NAMES.iter().zip([self.color, self.translation, self.cutout]).filter(|(_, on)| *on).map(|(n, _)| *n).collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

impl std::str::FromStr for AugmentPolicy {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Self::parse(s)
    }
}

impl Serialize for AugmentPolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for AugmentPolicy {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let s = String::deserialize(d)?;
        AugmentPolicy::parse(&s).map_err(serde::de::Error::custom)
    }
}
