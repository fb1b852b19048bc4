//! The networks of each task, built from an [`I2iConfig`]: generators in one parameter store
//! (`gen.*` in checkpoints; CycleGAN's two under `ab.` and `ba.`), discriminators in another.

use crate::config::{I2iConfig, Task};
use crate::models::patchgan::{PatchGan, PatchGanConfig};
use crate::models::resnet_translator::{ResnetTranslator, ResnetTranslatorConfig};
use crate::models::srgan::{SrConfig, SrGenerator};
use crate::models::unet::{UnetConfig, UnetGenerator};
use crate::models::{ImageShape, Translator};
use crate::nn::ParamStore;
use crate::rng::{self, Stream};
use candle_core::Device;

/// Which way to translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AToB,
    BToA,
}

impl std::str::FromStr for Direction {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "a2b" => Ok(Direction::AToB),
            "b2a" => Ok(Direction::BToA),
            other => Err(crate::Error::Config(format!("unknown direction '{other}': use a2b or b2a"))),
        }
    }
}

// One value per run, built once and never copied around: boxing the big variant would only add
// indirection to every use.
#[allow(clippy::large_enum_variant)]
pub enum Nets {
    Pix2pix { g: UnetGenerator, d: PatchGan },
    Cyclegan { g_ab: ResnetTranslator, g_ba: ResnetTranslator, d_a: PatchGan, d_b: PatchGan },
    Superres { g: SrGenerator, d: PatchGan },
}

pub struct I2iNets {
    pub nets: Nets,
    pub gen_params: ParamStore,
    pub disc_params: ParamStore,
}

impl I2iNets {
    /// Fresh networks for images of `channels` channels; weights drawn from the config's seed.
    pub fn build(cfg: &I2iConfig, channels: usize, device: &Device) -> crate::Result<Self> {
        let gen_params = ParamStore::new(rng::mix(cfg.seed, Stream::Init, 1), device);
        let disc_params = ParamStore::new(rng::mix(cfg.seed, Stream::Init, 2), device);
        let (g, d) = (gen_params.root(), disc_params.root());
        let m = &cfg.model;
        let pcfg = PatchGanConfig { channels: m.d_channels, layers: m.d_layers };
        let nets = match cfg.task {
            Task::Pix2pix => {
                let shape = ImageShape { channels, resolution: cfg.data.resolution };
                let g = UnetGenerator::new(&g, &UnetConfig { channels: m.g_channels }, shape, channels)?;
                // Conditional: D sees the input and the output stacked.
                Nets::Pix2pix { g, d: PatchGan::new(&d, &pcfg, 2 * channels)? }
            }
            Task::Cyclegan => {
                let rcfg = ResnetTranslatorConfig { channels: m.g_channels, blocks: m.g_blocks, residual: m.g_residual, upsample: m.g_upsample };
                Nets::Cyclegan {
                    g_ab: ResnetTranslator::new(&g.sub("ab"), &rcfg, channels, channels)?,
                    g_ba: ResnetTranslator::new(&g.sub("ba"), &rcfg, channels, channels)?,
                    d_a: PatchGan::new(&d.sub("a"), &pcfg, channels)?,
                    d_b: PatchGan::new(&d.sub("b"), &pcfg, channels)?,
                }
            }
            Task::Superres => {
                let scfg = SrConfig { channels: m.g_channels, blocks: m.g_blocks, scale: m.scale };
                Nets::Superres { g: SrGenerator::new(&g, &scfg, channels)?, d: PatchGan::new(&d, &pcfg, channels)? }
            }
        };
        Ok(Self { nets, gen_params, disc_params })
    }

    /// The generator for `dir`; only CycleGAN has a B -> A one.
    pub fn generator(&self, dir: Direction) -> crate::Result<&dyn Translator> {
        match (&self.nets, dir) {
            (Nets::Pix2pix { g, .. }, Direction::AToB) => Ok(g),
            (Nets::Superres { g, .. }, Direction::AToB) => Ok(g),
            (Nets::Cyclegan { g_ab, .. }, Direction::AToB) => Ok(g_ab),
            (Nets::Cyclegan { g_ba, .. }, Direction::BToA) => Ok(g_ba),
            (_, Direction::BToA) => Err(crate::Error::Config("only a CycleGAN translates both ways: pix2pix and super-resolution models are a2b only".into())),
        }
    }
}
