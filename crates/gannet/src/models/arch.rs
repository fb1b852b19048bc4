//! What each architecture's config knows about itself: its latent and width settings, its
//! conditioning, the bounds on its sizes, a memory estimate and how to build its networks.
//! [`super::ModelConfig`] picks the variant once ([`super::ModelConfig::arch`]) and asks here.

use super::biggan::{BigganConfig, BigganDiscriminator, BigganGenerator};
use super::dcgan::{DcganConfig, DcganDiscriminator, DcganGenerator};
use super::mlp::{MlpConfig, MlpDiscriminator, MlpGenerator};
use super::progan::{ProganConfig, ProganDiscriminator, ProganGenerator};
use super::resnet::{ResnetConfig, ResnetDiscriminator, ResnetGenerator};
use super::stylegan2::{Stylegan2Config, Stylegan2Discriminator, Stylegan2Generator};
use super::{Conditioning, Discriminator, Generator, ImageShape};
use crate::limits::{MAX_RESOLUTION, MAX_WIDTH as W};
use crate::nn::ParamStore;

/// One architecture's facts and builders.
pub trait Architecture {
    /// `arch = "..."` in a config.
    fn name(&self) -> &'static str;
    fn latent_dim(&self) -> usize;
    fn set_latent_dim(&mut self, v: usize);
    /// Sets the width of both networks (the CLI's `--channels`).
    fn set_width(&mut self, v: usize);
    /// Whether and how the model uses class labels (unconditional unless said otherwise).
    fn conditioning(&self) -> Conditioning {
        Conditioning::None
    }
    /// Sets the conditioning; by default only `none` is available.
    fn set_conditioning(&mut self, cond: Conditioning) -> crate::Result<()> {
        if cond.is_conditional() {
            return Err(crate::Error::Config(format!(
                "arch = \"{}\" has no conditional version yet: use arch = \"dcgan\" or \"mlp\" with conditional = \"{cond}\"",
                self.name()
            )));
        }
        Ok(())
    }
    /// Whether training differentiates a gradient (a path-length penalty).
    fn needs_second_order(&self) -> bool {
        false
    }
    /// Every width and depth with its setting name and largest sane value.
    fn sizes(&self) -> Vec<(&'static str, usize, usize)>;
    /// Activation elements of one image in G and D up to resolution `r_max` (an estimate, for
    /// refusing impossible requests; None on overflow).
    fn activation_elems(&self, r_max: u64) -> Option<u64>;
    /// The generator, its weights drawn into `params`, for `classes` classes (0: unconditional).
    fn generator(&self, params: &ParamStore, shape: ImageShape, classes: usize, seed: u64) -> crate::Result<Box<dyn Generator>>;
    fn discriminator(&self, params: &ParamStore, shape: ImageShape, classes: usize) -> crate::Result<Box<dyn Discriminator>>;
}

/// Sum over the resolutions 4, 8, ..., `r_max` of `channels(r)` x r x r.
fn pyramid(r_max: u64, channels: impl Fn(u64) -> u64) -> Option<u64> {
    let (mut elems, mut r) = (0u64, 4u64);
    while r <= r_max.max(4) {
        elems = elems.checked_add(channels(r).checked_mul(r * r)?)?;
        r *= 2;
    }
    Some(elems)
}

/// Conv models whose widths grow towards low resolutions (up to 16x the base).
fn widening(base: usize, r_max: u64) -> Option<u64> {
    pyramid(r_max, |r| base as u64 * (r_max / r).clamp(1, 16))
}

impl Architecture for MlpConfig {
    fn name(&self) -> &'static str {
        "mlp"
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
    fn set_latent_dim(&mut self, v: usize) {
        self.latent_dim = v;
    }
    fn set_width(&mut self, v: usize) {
        self.hidden = v;
    }
    fn conditioning(&self) -> Conditioning {
        self.conditional
    }
    fn set_conditioning(&mut self, cond: Conditioning) -> crate::Result<()> {
        self.conditional = cond;
        Ok(())
    }
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![("model.latent_dim", self.latent_dim, W), ("model.hidden", self.hidden, W), ("model.layers", self.layers, 64)]
    }
    fn activation_elems(&self, _r_max: u64) -> Option<u64> {
        (self.hidden as u64).checked_mul(self.layers as u64 + 1)
    }
    fn generator(&self, params: &ParamStore, shape: ImageShape, classes: usize, _seed: u64) -> crate::Result<Box<dyn Generator>> {
        Ok(Box::new(MlpGenerator::new(&params.root(), self, shape, classes)?))
    }
    fn discriminator(&self, params: &ParamStore, shape: ImageShape, classes: usize) -> crate::Result<Box<dyn Discriminator>> {
        Ok(Box::new(MlpDiscriminator::new(&params.root(), self, shape, classes)?))
    }
}

impl Architecture for DcganConfig {
    fn name(&self) -> &'static str {
        "dcgan"
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
    fn set_latent_dim(&mut self, v: usize) {
        self.latent_dim = v;
    }
    fn set_width(&mut self, v: usize) {
        (self.g_channels, self.d_channels) = (v, v);
    }
    fn conditioning(&self) -> Conditioning {
        self.conditional
    }
    fn set_conditioning(&mut self, cond: Conditioning) -> crate::Result<()> {
        self.conditional = cond;
        Ok(())
    }
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![("model.latent_dim", self.latent_dim, W), ("model.g_channels", self.g_channels, W / 16), ("model.d_channels", self.d_channels, W / 16)]
    }
    fn activation_elems(&self, r_max: u64) -> Option<u64> {
        widening(self.g_channels.max(self.d_channels), r_max)
    }
    fn generator(&self, params: &ParamStore, shape: ImageShape, classes: usize, _seed: u64) -> crate::Result<Box<dyn Generator>> {
        Ok(Box::new(DcganGenerator::new(&params.root(), self, shape, classes)?))
    }
    fn discriminator(&self, params: &ParamStore, shape: ImageShape, classes: usize) -> crate::Result<Box<dyn Discriminator>> {
        Ok(Box::new(DcganDiscriminator::new(&params.root(), self, shape, classes)?))
    }
}

impl Architecture for ResnetConfig {
    fn name(&self) -> &'static str {
        "resnet"
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
    fn set_latent_dim(&mut self, v: usize) {
        self.latent_dim = v;
    }
    fn set_width(&mut self, v: usize) {
        (self.g_channels, self.d_channels) = (v, v);
    }
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![("model.latent_dim", self.latent_dim, W), ("model.g_channels", self.g_channels, W / 16), ("model.d_channels", self.d_channels, W / 16)]
    }
    fn activation_elems(&self, r_max: u64) -> Option<u64> {
        widening(self.g_channels.max(self.d_channels), r_max)
    }
    fn generator(&self, params: &ParamStore, shape: ImageShape, _classes: usize, _seed: u64) -> crate::Result<Box<dyn Generator>> {
        Ok(Box::new(ResnetGenerator::new(&params.root(), self, shape)?))
    }
    fn discriminator(&self, params: &ParamStore, shape: ImageShape, _classes: usize) -> crate::Result<Box<dyn Discriminator>> {
        Ok(Box::new(ResnetDiscriminator::new(&params.root(), self, shape)?))
    }
}

impl Architecture for Stylegan2Config {
    fn name(&self) -> &'static str {
        "stylegan2"
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
    fn set_latent_dim(&mut self, v: usize) {
        self.latent_dim = v;
    }
    fn set_width(&mut self, v: usize) {
        self.max_channels = v;
    }
    fn needs_second_order(&self) -> bool {
        self.pl_weight > 0.0
    }
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![
            ("model.latent_dim", self.latent_dim, W),
            ("model.w_dim", self.w_dim, W),
            ("model.mapping_layers", self.mapping_layers, 64),
            ("model.channel_base", self.channel_base, W * MAX_RESOLUTION),
            ("model.max_channels", self.max_channels, W),
        ]
    }
    fn activation_elems(&self, r_max: u64) -> Option<u64> {
        pyramid(r_max, |r| self.channels(r as usize) as u64)
    }
    fn generator(&self, params: &ParamStore, shape: ImageShape, _classes: usize, seed: u64) -> crate::Result<Box<dyn Generator>> {
        Ok(Box::new(Stylegan2Generator::new(&params.root(), self, shape, seed)?))
    }
    fn discriminator(&self, params: &ParamStore, shape: ImageShape, _classes: usize) -> crate::Result<Box<dyn Discriminator>> {
        Ok(Box::new(Stylegan2Discriminator::new(&params.root(), self, shape)?))
    }
}

impl Architecture for ProganConfig {
    fn name(&self) -> &'static str {
        "progan"
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
    fn set_latent_dim(&mut self, v: usize) {
        self.latent_dim = v;
    }
    fn set_width(&mut self, v: usize) {
        self.max_channels = v;
    }
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![("model.latent_dim", self.latent_dim, W), ("model.max_channels", self.max_channels, W), ("model.min_channels", self.min_channels, W)]
    }
    fn activation_elems(&self, r_max: u64) -> Option<u64> {
        pyramid(r_max, |_| self.max_channels as u64)
    }
    fn generator(&self, params: &ParamStore, shape: ImageShape, _classes: usize, _seed: u64) -> crate::Result<Box<dyn Generator>> {
        Ok(Box::new(ProganGenerator::new(&params.root(), self, shape)?))
    }
    fn discriminator(&self, params: &ParamStore, shape: ImageShape, _classes: usize) -> crate::Result<Box<dyn Discriminator>> {
        Ok(Box::new(ProganDiscriminator::new(&params.root(), self, shape)?))
    }
}

impl Architecture for BigganConfig {
    fn name(&self) -> &'static str {
        "biggan"
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
    fn set_latent_dim(&mut self, v: usize) {
        self.latent_dim = v;
    }
    fn set_width(&mut self, v: usize) {
        (self.g_channels, self.d_channels) = (v, v);
    }
    /// Conditional BatchNorm in G and a projection D, always.
    fn conditioning(&self) -> Conditioning {
        Conditioning::Projection
    }
    fn set_conditioning(&mut self, cond: Conditioning) -> crate::Result<()> {
        if cond == Conditioning::Projection {
            return Ok(());
        }
        Err(crate::Error::Config(format!(
            "arch = \"biggan\" is always class-conditional with a projection discriminator (conditional \
             BatchNorm in G): conditional = \"{cond}\" is not available, use \"projection\" or leave it out"
        )))
    }
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        vec![
            ("model.latent_dim", self.latent_dim, W),
            ("model.shared_dim", self.shared_dim, W),
            ("model.g_channels", self.g_channels, W / 16),
            ("model.d_channels", self.d_channels, W / 16),
        ]
    }
    fn activation_elems(&self, r_max: u64) -> Option<u64> {
        widening(self.g_channels.max(self.d_channels), r_max)
    }
    fn generator(&self, params: &ParamStore, shape: ImageShape, classes: usize, _seed: u64) -> crate::Result<Box<dyn Generator>> {
        Ok(Box::new(BigganGenerator::new(&params.root(), self, shape, classes)?))
    }
    fn discriminator(&self, params: &ParamStore, shape: ImageShape, classes: usize) -> crate::Result<Box<dyn Discriminator>> {
        Ok(Box::new(BigganDiscriminator::new(&params.root(), self, shape, classes)?))
    }
}
