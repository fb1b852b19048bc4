//! Named, tried training configurations: `gannet train --preset cgan-mnist`.
//!
//! Each preset is a TOML file in `crates/gannet/presets/`, embedded in the binary. A preset is
//! the base layer of a config: a `--config` file given with it overrides the keys it sets, and
//! command-line flags override both. `${GANNET_DATA}` in a preset stands for
//! [`crate::data::data_root`], the shared data folder. The README lists the presets with the
//! results of their runs.

use crate::config::TrainConfig;

/// One preset: its name, a one-line summary, and its TOML.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub summary: &'static str,
    pub toml: &'static str,
}

macro_rules! preset {
    ($name:literal, $summary:literal) => {
        Preset { name: $name, summary: $summary, toml: include_str!(concat!("../../presets/", $name, ".toml")) }
    };
}

/// Every preset, in the order `--help` lists them.
pub const ALL: &[Preset] = &[
    preset!("dcgan-mnist", "DCGAN on MNIST (60k digits), unconditional"),
    preset!("cgan-mnist", "class-conditional DCGAN (AC-GAN) on MNIST (sample --class 7)"),
    preset!("cgan-fashion", "class-conditional DCGAN (AC-GAN) on Fashion-MNIST (sample --class-name sneaker)"),
    preset!("sngan-fashion", "spectral-norm D + hinge loss on Fashion-MNIST"),
    preset!("biggan-fashion", "class-conditional BigGAN (CBN, self-attention, SN G and D, ortho reg.) on Fashion-MNIST, 32x32"),
    preset!("wgan-gp-fashion", "WGAN-GP (lambda 10, 5 critic steps, no BatchNorm in D) on Fashion-MNIST"),
    preset!("r1-fashion", "non-saturating loss + lazy R1 penalty (gamma 1) on Fashion-MNIST"),
    preset!("wgan-gp-emoji", "WGAN-GP on the Noto emoji, 32x32 RGB"),
    preset!("stylegan2-fashion", "StyleGAN2 (mapping, modulated convs, style mixing, path length, lazy R1) on Fashion-MNIST 32x32"),
    preset!("progan-fashion", "Progressive GAN (4x4 -> 32x32 growth, WGAN-GP + drift) on Fashion-MNIST"),
];

/// Text-to-image presets (a [`crate::config::T2iConfig`] each; `gannet train` runs them too).
pub const TEXT_TO_IMAGE: &[Preset] =
    &[preset!("t2i-emoji", "text-to-image on the emoji's names (contrastive text encoder + matching-aware DCGAN), 32x32; sample --prompt \"red heart\"")];

/// Whether `name` is a text-to-image preset.
pub fn is_text_to_image(name: &str) -> bool {
    TEXT_TO_IMAGE.iter().any(|p| p.name == name)
}

/// The preset called `name`, or an error listing the valid names.
pub fn find(name: &str) -> crate::Result<&'static Preset> {
    ALL.iter().chain(TEXT_TO_IMAGE).find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().chain(TEXT_TO_IMAGE).map(|p| p.name).collect();
        crate::Error::Config(format!("unknown preset '{name}'; presets: {}", names.join(", ")))
    })
}

impl Preset {
    /// The preset's TOML with `${GANNET_DATA}` replaced by the data folder.
    pub fn resolved_toml(&self) -> String {
        let root = crate::data::data_root();
        self.toml.replace("${GANNET_DATA}", &root.display().to_string())
    }

    /// The preset as a config.
    pub fn config(&self) -> crate::Result<TrainConfig> {
        self.with_overrides(None)
    }

    /// The preset with the keys of `overrides` (a config file's TOML) laid over it.
    pub fn with_overrides(&self, overrides: Option<&str>) -> crate::Result<TrainConfig> {
        TrainConfig::from_toml_str(&self.merged(overrides)?).map_err(|e| crate::Error::Config(format!("preset {}: {e}", self.name)))
    }

    /// A text-to-image preset with the keys of `overrides` laid over it.
    pub fn t2i_with_overrides(&self, overrides: Option<&str>) -> crate::Result<crate::config::T2iConfig> {
        toml::from_str(&self.merged(overrides)?).map_err(|e| crate::Error::Config(format!("preset {}: {e}", self.name)))
    }

    /// The preset's TOML with `overrides` merged in.
    fn merged(&self, overrides: Option<&str>) -> crate::Result<String> {
        let ctx = |e: toml::de::Error| crate::Error::Config(format!("preset {}: {e}", self.name));
        let mut base: toml::Table = toml::from_str(&self.resolved_toml()).map_err(ctx)?;
        if let Some(text) = overrides {
            let over: toml::Table = toml::from_str(text).map_err(|e| crate::Error::Config(e.to_string()))?;
            crate::config::merge(&mut base, over);
        }
        Ok(toml::to_string(&base).expect("a table serialises"))
    }
}
