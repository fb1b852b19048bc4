//! Its own test binary (own process) so no other test has switched second-order gradients on:
//! a penalty configured on a thread where they are off must fail loudly, not train silently.

use gannet::candle_core::{Device, Tensor, Var};
use gannet::models::{mlp::MlpConfig, ModelConfig};
use gannet::train::{penalty::PenaltyKind, PenaltyConfig, TrainConfig, Trainer};

#[test]
fn a_penalty_without_second_order_gradients_fails_loudly() {
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_some() {
        eprintln!("skipped: CANDLE_GRAD_DO_NOT_DETACH is set in the environment");
        return;
    }
    // A backward pass before enabling fixes this thread's setting to "detach".
    let x = Var::from_tensor(&Tensor::new(&[2.0f32], &Device::Cpu).unwrap()).unwrap();
    x.as_tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap();
    assert!(!gannet::autodiff::second_order_works().unwrap());
    let err = gannet::autodiff::ensure_second_order().unwrap_err().to_string();
    assert!(err.contains("CANDLE_GRAD_DO_NOT_DETACH"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = TrainConfig {
        model: ModelConfig::Mlp(MlpConfig { latent_dim: 4, hidden: 8, layers: 1, tanh_output: true, ..Default::default() }),
        ..Default::default()
    };
    cfg.schedule.batch_size = 4;
    cfg.schedule.steps = 1;
    cfg.output.dir = tmp.path().to_path_buf();
    cfg.penalty = PenaltyConfig { kind: PenaltyKind::R1, weight: 1.0, every: 1, ..Default::default() };
    let mut t = Trainer::new(cfg).unwrap();
    let err = t.train_step().expect_err("must refuse").to_string();
    assert!(err.contains("second-order"), "{err}");
}
