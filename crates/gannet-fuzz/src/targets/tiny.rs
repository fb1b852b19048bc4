//! Tiny networks of every architecture as training configs (TOML): seeds of the `config` target
//! as they are, and of the `checkpoint` target once trained one step. A module of their own so
//! that those two targets do not import each other.

use std::path::Path;

/// A training config of tiny networks on the built-in digits, as TOML.
pub fn train_toml(out: &Path, name: &str, resolution: Option<usize>, model: &str) -> String {
    let res = resolution.map_or(String::new(), |r| format!("resolution = {r}\n"));
    format!(
        "seed = 1\nema_decay = 0.9\n\n[data]\nsource = \"builtin:digits\"\n{res}\n[model]\n{model}\n\n[schedule]\nsteps = 1\nbatch_size = 4\n\n\
         [output]\ndir = {:?}\nsample_count = 4\n",
        out.join(name).display().to_string()
    )
}

/// Tiny networks of every architecture: (name, resolution, `[model]` table).
pub const TINY_MODELS: [(&str, Option<usize>, &str); 7] = [
    ("dcgan-acgan", Some(16), "arch = \"dcgan\"\nlatent_dim = 8\ng_channels = 4\nd_channels = 4\nconditional = \"acgan\""),
    ("dcgan", Some(16), "arch = \"dcgan\"\nlatent_dim = 4\ng_channels = 2\nd_channels = 2"),
    ("stylegan2", Some(8), "arch = \"stylegan2\"\nlatent_dim = 8\nw_dim = 8\nmapping_layers = 1\nchannel_base = 32\nmax_channels = 4"),
    ("mlp", Some(8), "arch = \"mlp\"\nlatent_dim = 4\nhidden = 8\nlayers = 2\nconditional = \"projection\""),
    ("resnet", Some(16), "arch = \"resnet\"\nlatent_dim = 4\ng_channels = 2\nd_channels = 2"),
    ("progan", Some(8), "arch = \"progan\"\nlatent_dim = 4\nmax_channels = 4\nmin_channels = 2\nstart_resolution = 4"),
    ("biggan", Some(16), "arch = \"biggan\"\nlatent_dim = 6\nshared_dim = 4\ng_channels = 2\nd_channels = 2\nattention_resolution = 8"),
];

/// Training configs of tiny networks of every architecture, writing into `runs/<arch>`.
pub fn tiny_train_tomls(runs: &Path) -> Vec<String> {
    TINY_MODELS.iter().map(|(name, res, model)| train_toml(runs, name, *res, model)).collect()
}
