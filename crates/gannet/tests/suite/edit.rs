//! Editing tools: interpolation paths, truncation, style mixing grids and projection into w.

use gannet::candle_core::{Device, Tensor};
use gannet::edit::interpolate::{interpolate_rows, path_images, Method, Space};
use gannet::edit::{self, mixing, project, Truncated};
use gannet::models::stylegan2::Stylegan2Config;
use gannet::models::{self, Generator, ImageShape, ModelConfig};
use gannet::nn::Mode;
use gannet::rng;

fn generator() -> Box<dyn Generator> {
    let cfg = Stylegan2Config { latent_dim: 8, w_dim: 8, mapping_layers: 2, channel_base: 64, max_channels: 8, ..Default::default() };
    let (g, _) = models::build_generator(&ModelConfig::Stylegan2(cfg), ImageShape { channels: 1, resolution: 8 }, 7, &Device::Cpu).unwrap();
    // Give w_avg a value, as training would.
    g.forward(&z(32, 9), None, Mode::Train).unwrap();
    g
}

fn z(n: usize, seed: u64) -> Tensor {
    rng::randn(&mut rng::rng(seed, rng::Stream::Sample, 0), &[n, 8], &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn norms(x: &Tensor) -> Vec<f32> {
    x.sqr().unwrap().sum(1).unwrap().sqrt().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn slerp_keeps_the_ends_and_interpolates_the_norm() {
    let (a, b) = (z(3, 1), (z(3, 2) * 2.0).unwrap());
    for m in [Method::Lerp, Method::Slerp] {
        assert!(max_diff(&interpolate_rows(&a, &b, 0.0, m).unwrap(), &a) < 1e-5);
        assert!(max_diff(&interpolate_rows(&a, &b, 1.0, m).unwrap(), &b) < 1e-5);
    }
    let mid = interpolate_rows(&a, &b, 0.5, Method::Slerp).unwrap();
    let (na, nb, nm) = (norms(&a), norms(&b), norms(&mid));
    for i in 0..3 {
        assert!((nm[i] - (na[i] + nb[i]) / 2.0).abs() < 1e-4, "slerp keeps a typical length");
    }
    // A straight line through nearly opposite latents passes close to 0; slerp does not.
    let opposite = (&a * -1.0).unwrap();
    assert!(norms(&interpolate_rows(&a, &opposite, 0.5, Method::Lerp).unwrap())[0] < 1e-5);
}

#[test]
fn a_path_visits_every_latent_with_the_frames_asked_for() {
    let g = generator();
    let zs = z(3, 4);
    for space in [Space::Z, Space::W] {
        let frames = path_images(g.as_ref(), &zs, 5, space, Method::Slerp, 1.0, None).unwrap();
        assert_eq!(frames.dim(0).unwrap(), 5 + 4);
        let own = g.forward(&zs, None, Mode::Eval).unwrap();
        for (frame, k) in [(0, 0), (4, 1), (8, 2)] {
            assert!(max_diff(&frames.narrow(0, frame, 1).unwrap(), &own.narrow(0, k, 1).unwrap()) < 1e-4, "{space:?} frame {frame}");
        }
    }
    assert!(path_images(g.as_ref(), &zs.narrow(0, 0, 1).unwrap(), 5, Space::Z, Method::Lerp, 1.0, None).is_err());
}

#[test]
fn truncation_zero_gives_the_mean_image_and_one_changes_nothing() {
    let g = generator();
    let zs = z(4, 5);
    let mean = Truncated { gen: g.as_ref(), psi: 0.0 }.forward(&zs, None, Mode::Eval).unwrap();
    for i in 1..4 {
        assert!(max_diff(&mean.narrow(0, 0, 1).unwrap(), &mean.narrow(0, i, 1).unwrap()) < 1e-5);
    }
    let s = g.as_style().unwrap();
    let avg = s.synthesis(&s.broadcast_w(&s.w_avg().unwrap().unsqueeze(0).unwrap()).unwrap()).unwrap();
    assert!(max_diff(&mean.narrow(0, 0, 1).unwrap(), &avg) < 1e-5);
    let same = Truncated { gen: g.as_ref(), psi: 1.0 }.forward(&zs, None, Mode::Eval).unwrap();
    assert!(max_diff(&same, &g.forward(&zs, None, Mode::Eval).unwrap()) < 1e-5);
}

#[test]
fn mixing_grid_has_the_sources_on_its_edges_and_mixes_inside() {
    let g = generator();
    let s = g.as_style().unwrap();
    let (rows, cols) = (z(2, 6), z(3, 7));
    let grid = mixing::mixing_grid(s, &rows, &cols, 2, 1.0).unwrap();
    assert_eq!(grid.dim(0).unwrap(), 3 * 4);
    let own_c = g.forward(&cols, None, Mode::Eval).unwrap();
    let own_r = g.forward(&rows, None, Mode::Eval).unwrap();
    assert!(max_diff(&grid.narrow(0, 1, 3).unwrap(), &own_c) < 1e-5, "top row: the column images");
    assert!(max_diff(&grid.narrow(0, 4, 1).unwrap(), &own_r.narrow(0, 0, 1).unwrap()) < 1e-5, "left column: the row images");
    let cell = grid.narrow(0, 5, 1).unwrap();
    assert!(max_diff(&cell, &own_r.narrow(0, 0, 1).unwrap()) > 1e-4 && max_diff(&cell, &own_c.narrow(0, 0, 1).unwrap()) > 1e-4);
    assert!(mixing::mixing_grid(s, &rows, &cols, s.num_ws(), 1.0).is_err(), "a cutoff past the last layer mixes nothing");
}

#[test]
fn projection_recovers_an_image_the_generator_can_make() {
    let g = generator();
    let s = g.as_style().unwrap();
    let target = g.forward(&z(2, 8), None, Mode::Eval).unwrap().detach();
    let no_features = |_: &Tensor| Ok(Vec::new());
    let opts = project::ProjectOptions { steps: 150, lr: 0.1, w_plus: false, feature_weight: 0.0 };
    let r = project::project(s, &no_features, &target, opts, &mut |_, _| {}).unwrap();
    let (first, last) = (r.losses[0], *r.losses.last().unwrap());
    assert!(last < first * 0.2, "loss {first} -> {last}");
    assert_eq!(r.ws.dims(), &[2, s.num_ws(), 8]);
    // The w's found regenerate the returned images.
    assert!(max_diff(&s.synthesis(&r.ws).unwrap().clamp(-1f32, 1f32).unwrap(), &r.images) < 1e-5);
    assert_eq!(project::lr_at(0, 100, 0.1), 0.0);
    assert!((project::lr_at(50, 100, 0.1) - 0.1).abs() < 1e-12);
}

#[test]
fn w_space_tools_refuse_a_generator_without_styles() {
    let (dc, _) = models::build_generator(&ModelConfig::default(), ImageShape { channels: 1, resolution: 28 }, 1, &Device::Cpu).unwrap();
    let err = edit::style(dc.as_ref(), "gannet mix").err().unwrap().to_string();
    assert!(err.contains("stylegan2"), "{err}");
    let zs = rng::randn(&mut rng::rng(1, rng::Stream::Sample, 0), &[2, dc.latent_dim()], &Device::Cpu).unwrap();
    assert!(path_images(dc.as_ref(), &zs, 3, Space::W, Method::Lerp, 1.0, None).is_err());
    assert_eq!(path_images(dc.as_ref(), &zs, 3, Space::Z, Method::Lerp, 1.0, None).unwrap().dim(0).unwrap(), 3);
}
