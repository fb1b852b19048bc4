//! BatchNorm: normalisation in train mode, running statistics, eval mode, and gradients.

use candle_core::{Device, Tensor, Var};
use gannet::nn::{BatchNorm, Init, Mode, ParamStore};

fn setup(channels: usize) -> (ParamStore, BatchNorm) {
    let store = ParamStore::new(0, &Device::Cpu);
    let bn = BatchNorm::new(&store.root().sub("bn"), channels, Init::Const(1.0)).unwrap();
    (store, bn)
}

fn set(store: &ParamStore, name: &str, v: &[f32]) {
    let var = store.all().into_iter().find(|(n, _)| n == name).unwrap().1;
    var.set(&Tensor::new(v, &Device::Cpu).unwrap()).unwrap();
}

fn get(store: &ParamStore, name: &str) -> Vec<f32> {
    store.tensors()[name].to_vec1::<f32>().unwrap()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((*g as f64 - w).abs() <= tol, "{what}[{i}]: {g} vs {w}");
    }
}

/// Deterministic, channel-dependent test data: channel c has mean about 3c - 2 and scale c + 1.
fn data(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let inner: usize = shape[2..].iter().product();
    let c = shape[1];
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let ch = (i / inner) % c;
            let wobble = ((i * 7919) % 13) as f32 / 6.0 - 1.0;
            (3 * ch) as f32 - 2.0 + (ch as f32 + 1.0) * wobble
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Per-channel mean and biased variance of a [N, C, ...] tensor.
fn channel_moments(y: &Tensor) -> (Vec<f32>, Vec<f32>) {
    let c = y.dim(1).unwrap();
    let flat = y.transpose(0, 1).unwrap().contiguous().unwrap().reshape((c, ())).unwrap();
    let mean = flat.mean_keepdim(1).unwrap();
    let var = flat.broadcast_sub(&mean).unwrap().sqr().unwrap().mean(1).unwrap();
    (mean.flatten_all().unwrap().to_vec1().unwrap(), var.to_vec1().unwrap())
}

#[test]
fn train_mode_normalises_each_channel() {
    for shape in [vec![4, 3, 2, 2], vec![8, 3]] {
        let (_, bn) = setup(3);
        let y = bn.forward(&data(&shape), Mode::Train).unwrap();
        assert_eq!(y.dims(), shape.as_slice());
        let (mean, var) = channel_moments(&y);
        assert_close(&mean, &[0.0; 3], 1e-5, "mean");
        // var / (var + eps) with eps = 1e-5 and channel variances of order 1 or more.
        assert_close(&var, &[1.0; 3], 1e-4, "var");
    }
}

#[test]
fn running_stats_follow_momentum_with_unbiased_variance() {
    // [N=4, C=2]: channel 0 = [1, 2, 3, 4], channel 1 = [0, 0, 2, 2].
    let (store, bn) = setup(2);
    let x = Tensor::new(&[[1f32, 0.0], [2.0, 0.0], [3.0, 2.0], [4.0, 2.0]], &Device::Cpu).unwrap();
    bn.forward(&x, Mode::Train).unwrap();
    // Means 2.5 and 1; unbiased variances (2.25+0.25+0.25+2.25)/3 = 5/3 and (1+1+1+1)/3 = 4/3.
    // running_mean = 0.9 * 0 + 0.1 * [2.5, 1] = [0.25, 0.1]
    // running_var  = 0.9 * 1 + 0.1 * [5/3, 4/3] = [1.0666667, 1.0333333]
    assert_close(&get(&store, "bn.running_mean"), &[0.25, 0.1], 1e-7, "running mean");
    assert_close(&get(&store, "bn.running_var"), &[0.9 + 0.5 / 3.0, 0.9 + 0.4 / 3.0], 1e-6, "running var");

    // [N=2, C=1, H=1, W=2]: values 1, 3, 5, 7 -> mean 4, unbiased var (9+1+1+9)/3 = 20/3.
    let (store, bn) = setup(1);
    let x = Tensor::new(&[1f32, 3.0, 5.0, 7.0], &Device::Cpu).unwrap().reshape((2, 1, 1, 2)).unwrap();
    bn.forward(&x, Mode::Train).unwrap();
    assert_close(&get(&store, "bn.running_mean"), &[0.4], 1e-7, "4-D running mean");
    assert_close(&get(&store, "bn.running_var"), &[0.9 + 2.0 / 3.0], 1e-6, "4-D running var");
}

#[test]
fn eval_mode_uses_running_stats_and_leaves_them_alone() {
    let (store, bn) = setup(2);
    set(&store, "bn.running_mean", &[1.0, -2.0]);
    set(&store, "bn.running_var", &[4.0, 0.25]);
    set(&store, "bn.weight", &[2.0, 1.0]);
    set(&store, "bn.bias", &[0.5, 0.0]);
    let x = Tensor::new(&[[3f32, -2.0], [1.0, -1.5]], &Device::Cpu).unwrap();
    let y = bn.forward(&x, Mode::Eval).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    // y = (x - rm) / sqrt(rv + 1e-5) * w + b:
    //   (3 - 1) / sqrt(4.00001) * 2 + 0.5 = 2.4999975,  (-2 + 2) / ... = 0
    //   (1 - 1) / ... * 2 + 0.5 = 0.5,                  (-1.5 + 2) / sqrt(0.25001) = 0.99998
    let want = [2.0 / 4.00001f64.sqrt() * 2.0 + 0.5, 0.0, 0.5, 0.5 / 0.25001f64.sqrt()];
    assert_close(&y, &want, 1e-6, "eval output");
    assert_eq!(get(&store, "bn.running_mean"), vec![1.0, -2.0]);
    assert_eq!(get(&store, "bn.running_var"), vec![4.0, 0.25]);
}

/// sum(y * r) for fixed, uneven weights r, so every output contributes differently.
fn weighted_sum(y: &Tensor) -> Tensor {
    let n = y.elem_count();
    let r: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect();
    let r = Tensor::from_vec(r, y.dims(), &Device::Cpu).unwrap();
    (y * r).unwrap().sum_all().unwrap()
}

fn loss_at(bn: &BatchNorm, x: &Tensor) -> f64 {
    weighted_sum(&bn.forward(x, Mode::Train).unwrap()).to_scalar::<f32>().unwrap() as f64
}

#[test]
fn train_mode_gradients_match_finite_differences() {
    let shape = [3, 2, 2, 1];
    let (store, bn) = setup(2);
    set(&store, "bn.weight", &[1.5, -0.7]);
    set(&store, "bn.bias", &[0.2, 0.3]);
    let x0 = data(&shape);
    let x = Var::from_tensor(&x0).unwrap();
    let grads = weighted_sum(&bn.forward(x.as_tensor(), Mode::Train).unwrap()).backward().unwrap();
    let dx = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let weight = store.trainable().into_iter().find(|(n, _)| n == "bn.weight").unwrap().1;
    let dw = grads.get(weight.as_tensor()).unwrap().to_vec1::<f32>().unwrap();

    // Central differences in f32: h = 1e-2 keeps round-off (~1e-6 / h) and truncation (~h^2)
    // both well below the tolerance.
    let h = 1e-2f32;
    let xs = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for i in 0..xs.len() {
        let at = |d: f32| {
            let mut v = xs.clone();
            v[i] += d;
            loss_at(&bn, &Tensor::from_vec(v, &shape, &Device::Cpu).unwrap())
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
        assert!((dx[i] as f64 - numeric).abs() < 2e-3, "dx[{i}]: {} vs {numeric}", dx[i]);
    }
    let w0 = [1.5f32, -0.7];
    for c in 0..2 {
        let at = |d: f32| {
            let mut w = w0;
            w[c] += d;
            set(&store, "bn.weight", &w);
            loss_at(&bn, &x0)
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
        assert!((dw[c] as f64 - numeric).abs() < 2e-3, "dw[{c}]: {} vs {numeric}", dw[c]);
    }
    // The input gradient of a batch-normalised output sums to zero per channel (shift invariance).
    let per_channel: f32 = dx.iter().enumerate().filter(|(i, _)| (i / 2) % 2 == 0).map(|(_, g)| g).sum();
    assert!(per_channel.abs() < 1e-4, "{per_channel}");
}

#[test]
fn wrong_channel_count_is_an_error() {
    let (_, bn) = setup(3);
    let err = bn.forward(&data(&[4, 2]), Mode::Train).unwrap_err().to_string();
    assert!(err.contains("3 channels"), "{err}");
}

/// The fused CPU kernels against the composite (candle ops) form: output, batch statistics and
/// the gradients of x, weight and bias, on 4-D and 2-D inputs, f32 and f64, without and with a
/// fused (leaky) ReLU.
#[test]
fn fused_kernels_match_the_composite_form() {
    use candle_core::DType;
    use gannet::ops::batch_norm::{composite, fused};
    let cases = [(vec![3, 4, 5, 2], DType::F64, 1e-10), (vec![6, 3], DType::F64, 1e-10), (vec![4, 8, 3, 3], DType::F32, 1e-4)];
    for ((shape, dt, tol), act) in cases.into_iter().flat_map(|c| [None, Some(0.0), Some(0.2)].map(|a| (c.clone(), a))) {
        let c = shape[1];
        let x = Var::from_tensor(&data(&shape).to_dtype(dt).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::arange(1.0, 1.0 + c as f64, &Device::Cpu).unwrap().to_dtype(dt).unwrap()).unwrap();
        let b = Var::from_tensor(&(Tensor::arange(0.0, c as f64, &Device::Cpu).unwrap() * -0.5).unwrap().to_dtype(dt).unwrap()).unwrap();
        let r = (data(&shape) * 0.1).unwrap().cos().unwrap().to_dtype(dt).unwrap();
        let what = format!("{shape:?} {dt:?} relu slope {act:?}");
        let (f, k) = (fused(&x, &w, &b, 1e-5, act).unwrap(), composite(&x, &w, &b, 1e-5, act).unwrap());
        let v = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let close = |got: &Tensor, want: &Tensor, name: &str| {
            let (got, want) = (v(got), v(want));
            assert_eq!(got.len(), want.len(), "{name} {what}");
            let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= tol * scale, "{name} {what}[{i}]: fused {g}, composite {w}");
            }
        };
        close(&f.y, &k.y, "y");
        close(&f.mean, &k.mean, "mean");
        close(&f.var, &k.var, "var");
        let grads = |y: &Tensor| y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let (gf, gk) = (grads(&f.y), grads(&k.y));
        for (var, name) in [(&x, "dx"), (&w, "dweight"), (&b, "dbias")] {
            close(gf.get(var).unwrap(), gk.get(var).unwrap(), name);
        }
    }
}
