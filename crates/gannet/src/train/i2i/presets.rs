//! Tried image-to-image configurations: `gannet train-i2i --preset pix2pix-emoji`. Each is a TOML
//! file in `crates/gannet/presets/i2i/`, embedded in the binary and laid over its task's
//! defaults; `${GANNET_DATA}` stands for [`crate::data::data_root`]. A `--config` file and flags
//! override a preset.

use crate::config::I2iConfig;

#[derive(Debug, Clone, Copy)]
pub struct I2iPreset {
    pub name: &'static str,
    pub summary: &'static str,
    pub toml: &'static str,
}

macro_rules! preset {
    ($name:literal, $summary:literal) => {
        I2iPreset { name: $name, summary: $summary, toml: include_str!(concat!("../../../presets/i2i/", $name, ".toml")) }
    };
}

pub const ALL: &[I2iPreset] = &[
    preset!("pix2pix-emoji", "pix2pix google -> twitter emoji, 64x64 (U-Net ngf 16, 70x70 PatchGAN, L1 x100)"),
    preset!(
        "cyclegan-emoji",
        "CycleGAN google <-> twitter emoji, 64x64 (residual ResNet G ngf 32, 70x70 PatchGAN, LSGAN, pool 50, lr decay), about an hour on 2 CPU cores"
    ),
    preset!("superres-emoji", "4x super-resolution of the google emoji, 16x16 -> 64x64"),
];

/// The preset called `name`, or an error listing the valid names.
pub fn find(name: &str) -> crate::Result<&'static I2iPreset> {
    ALL.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|p| p.name).collect();
        crate::Error::Config(format!("unknown image-to-image preset '{name}'; presets: {}", names.join(", ")))
    })
}

impl I2iPreset {
    /// The preset over its task's defaults, with the keys of `overrides` (a config file) on top.
    pub fn with_overrides(&self, overrides: Option<&str>) -> crate::Result<I2iConfig> {
        let root = crate::data::data_root();
        let mut table: toml::Table = toml::from_str(&self.toml.replace("${GANNET_DATA}", &root.display().to_string()))
            .map_err(|e| crate::Error::Config(format!("preset {}: {e}", self.name)))?;
        if let Some(text) = overrides {
            let over: toml::Table = toml::from_str(text).map_err(|e| crate::Error::Config(e.to_string()))?;
            crate::config::merge(&mut table, over);
        }
        I2iConfig::from_toml_over_defaults(&toml::to_string(&table).expect("a table serialises"), None)
            .map_err(|e| crate::Error::Config(format!("preset {}: {e}", self.name)))
    }
}
