//! Evaluation metrics: linear algebra with known answers, pools/resize against PyTorch's
//! semantics, KID / precision-recall sanity, and the FID Inception + FID against pytorch-fid.
//!
//! Reference numbers (`REF_*`) come from `scripts/fid_reference.py`, which loads the shared
//! weights into pytorch-fid's own `InceptionV3([3], resize_input=True, normalize_input=True)`:
//!   python scripts/fid_reference.py 50     (and 200 for the ignored test)
//! run with torch 2.15.0 (CPU), pytorch-fid 0.3.0, numpy 2.4.6, scipy 1.17.1 on
//! MNIST/Fashion-MNIST t10k from shared/data. "pytorch-fid" FID is its
//! calculate_frechet_distance (scipy sqrtm); the script's eigenvalue-based value agreed to 1e-6
//! relative, so the constants below are pytorch-fid's.

use candle_core::{DType, Device, Tensor};
use gannet::metrics::{self, fid, linalg, pool, FeatureStats, FidInception, KidOptions};
use std::io::Read;
use std::path::PathBuf;

/// pool3 features (dims 0..8) of MNIST t10k images 0..4.
const REF_FEATURES: [[f32; 8]; 4] = [
    [0.223840, 0.178597, 0.065076, 0.021705, 0.258421, 0.086604, 0.343503, 0.228166],
    [0.236707, 0.104350, 0.048682, 0.033165, 0.135020, 0.169438, 0.642721, 0.210965],
    [0.163346, 0.049646, 0.037410, 0.006222, 0.329470, 0.028864, 0.413172, 0.114083],
    [0.015858, 0.036318, 0.008009, 0.038488, 0.109829, 0.016943, 0.479710, 0.206414],
];
/// N=200: FID(MNIST[:200], MNIST[200:400]) and FID(MNIST[:200], Fashion[:200]).
const REF_FID_200: (f64, f64) = (33.824072, 221.390361);
/// N=50: same pairs. (The script's eigenvalue FIDs: 69.844198, 251.356277.)
const REF_FID_50: (f64, f64) = (69.844185, 251.356256);

fn data_dir() -> PathBuf {
    std::env::var_os("GANNET_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// First `count` images of a gzipped IDX3 file as [count, 1, H, W] in [0, 1].
fn read_idx(rel: &str, count: usize) -> Tensor {
    let path = data_dir().join(rel);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(f).read_to_end(&mut raw).unwrap();
    let be = |i: usize| u32::from_be_bytes(raw[i..i + 4].try_into().unwrap()) as usize;
    assert_eq!(be(0), 2051, "{} is not an IDX3 image file", path.display());
    let (h, w) = (be(8), be(12));
    let px: Vec<f32> = raw[16..16 + count * h * w].iter().map(|&b| b as f32 / 255.0).collect();
    Tensor::from_vec(px, (count, 1, h, w), &Device::Cpu).unwrap()
}

fn inception() -> FidInception {
    FidInception::load_default(&Device::Cpu).expect("shared FID Inception weights")
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ---- linear algebra ------------------------------------------------------------------------

#[test]
fn trace_sqrt_of_diagonal_and_identical_matrices() {
    let s1 = [4.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0];
    let s2 = [1.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 7.0];
    // sqrt(4*1) + sqrt(9*4) + sqrt(0*7)
    assert!(close(linalg::trace_sqrt_product(&s1, &s2, 3).unwrap(), 8.0, 1e-12));
    // tr sqrt(S S) = tr S
    let s = [2.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
    assert!(close(linalg::trace_sqrt_product(&s, &s, 3).unwrap(), 6.0, 1e-10));
}

#[test]
fn trace_sqrt_of_non_commuting_2x2() {
    // For 2x2 X = S1 S2 with eigenvalues l1, l2 >= 0: tr sqrt X = sqrt(tr X + 2 sqrt(det X)).
    let s1 = [2.0, 1.0, 1.0, 1.0];
    let s2 = [1.0, -0.5, -0.5, 3.0];
    let x: [f64; 4] = [2.0 - 0.5, -1.0 + 3.0, 1.0 - 0.5, -0.5 + 3.0];
    let want = (x[0] + x[3] + 2.0 * (x[0] * x[3] - x[1] * x[2]).sqrt()).sqrt();
    let got = linalg::trace_sqrt_product(&s1, &s2, 2).unwrap();
    assert!(close(got, want, 1e-12), "{got} vs {want}");
    // Symmetric in its arguments.
    assert!(close(linalg::trace_sqrt_product(&s2, &s1, 2).unwrap(), want, 1e-12));
}

#[test]
fn trace_sqrt_of_singular_rotated_matrices() {
    // S1 = Q D1 Q^T, S2 = Q D2 Q^T share eigenvectors: tr sqrt(S1 S2) = sum sqrt(d1 d2).
    let n = 5;
    let v: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7 + 0.3).cos()).collect();
    let vv: f64 = v.iter().map(|x| x * x).sum();
    let q = |i: usize, j: usize| (i == j) as u8 as f64 - 2.0 * v[i] * v[j] / vv;
    let build = |d: &[f64]| -> Vec<f64> { (0..n * n).map(|ij| (0..n).map(|k| q(ij / n, k) * d[k] * q(ij % n, k)).sum()).collect() };
    let (d1, d2) = ([3.0, 0.0, 1.0, 0.0, 2.0], [1.0, 5.0, 4.0, 0.0, 0.5]);
    let want: f64 = d1.iter().zip(&d2).map(|(a, b): (&f64, &f64)| (a * b).sqrt()).sum();
    let got = linalg::trace_sqrt_product(&build(&d1), &build(&d2), n).unwrap();
    assert!(close(got, want, 1e-10), "{got} vs {want}");
}

#[test]
fn symmetric_eigenvalues_match_known_spectrum() {
    let mut ev = linalg::symmetric_eigenvalues(&[2.0, 1.0, 1.0, 2.0], 2);
    ev.sort_by(f64::total_cmp);
    assert!(close(ev[0], 1.0, 1e-12) && close(ev[1], 3.0, 1e-12), "{ev:?}");
}

#[test]
fn eigenvalues_of_reflected_diagonal_matrix() {
    // [[2,1],[1,2]] -> 1, 3 ; diag stays diag; 4x4 with known spectrum via a Householder.
    let mut ev = linalg::symmetric_eigenvalues(&[2.0, 1.0, 1.0, 2.0], 2);
    ev.sort_by(f64::total_cmp);
    assert!((ev[0] - 1.0).abs() < 1e-12 && (ev[1] - 3.0).abs() < 1e-12, "{ev:?}");
    let n = 6;
    let lam = [5.0, -1.0, 0.0, 2.5, 2.5, 1e-3];
    let v: Vec<f64> = (0..n).map(|i| (i as f64 + 1.0).sin()).collect();
    let vv: f64 = v.iter().map(|x| x * x).sum();
    let h = |i: usize, j: usize| (i == j) as u8 as f64 - 2.0 * v[i] * v[j] / vv;
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|k| h(i, k) * lam[k] * h(j, k)).sum();
        }
    }
    let mut ev = linalg::symmetric_eigenvalues(&a, n);
    ev.sort_by(f64::total_cmp);
    let mut want = lam.to_vec();
    want.sort_by(f64::total_cmp);
    for (g, w) in ev.iter().zip(&want) {
        assert!((g - w).abs() < 1e-10, "{ev:?} vs {want:?}");
    }
}

#[test]
fn pivoted_cholesky_reconstructs_singular_matrix() {
    // Rank-2 3x3 PSD matrix.
    let b = [1.0, 2.0, 0.5, -1.0, 3.0, 1.0]; // 3x2
    let s: Vec<f64> = (0..9).map(|idx| (0..2).map(|k| b[(idx / 3) * 2 + k] * b[(idx % 3) * 2 + k]).sum()).collect();
    let (l, r) = linalg::pivoted_cholesky(&s, 3, 1e-12);
    assert_eq!(r, 2);
    for idx in 0..9 {
        let rec: f64 = (0..r).map(|k| l[(idx / 3) * r + k] * l[(idx % 3) * r + k]).sum();
        assert!((rec - s[idx]).abs() < 1e-12);
    }
}

// ---- FID statistics ---------------------------------------------------------------------

#[test]
fn fid_of_one_dimensional_gaussians() {
    // FID of 1-D Gaussians = (m1 - m2)^2 + (s1 - s2)^2.
    let a = FeatureStats { mean: vec![1.0], cov: vec![4.0], n: 10 };
    let b = FeatureStats { mean: vec![-2.0], cov: vec![9.0], n: 10 };
    assert!(close(metrics::frechet_distance(&a, &b).unwrap(), 9.0 + 1.0, 1e-12));
    assert!(close(metrics::frechet_distance(&a, &a).unwrap(), 0.0, 1e-12));
}

#[test]
fn feature_stats_are_mean_and_unbiased_covariance() {
    let f = Tensor::new(&[[1f32, 2.0], [3.0, 0.0], [5.0, 4.0]], &Device::Cpu).unwrap();
    let s = FeatureStats::from_features(&f).unwrap();
    assert_eq!(s.mean, vec![3.0, 2.0]);
    // np.cov(rowvar=False): [[4, 2], [2, 4]]
    assert_eq!(s.cov, vec![4.0, 2.0, 2.0, 4.0]);
    assert_eq!(s.n, 3);
}

#[test]
fn feature_stats_round_trip_and_cache_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = FeatureStats { mean: vec![0.5, -1.0], cov: vec![1.0, 0.1, 0.1, 2.0], n: 7 };
    let p = FeatureStats::cache_path(dir.path(), "/data/mnist", 1000, 0xdeadbeef);
    let name = p.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("fidstats-mnist-") && name.ends_with("-n1000-mdeadbeef.safetensors"), "{name}");
    assert_ne!(p, FeatureStats::cache_path(dir.path(), "/other/mnist", 1000, 0xdeadbeef));
    let loaded = FeatureStats::load_or_compute(&p, || Ok(s.clone())).unwrap();
    assert_eq!(loaded, s);
    let again = FeatureStats::load_or_compute(&p, || panic!("must come from the cache")).unwrap();
    assert_eq!(again, s);
}

// ---- pools and resize ---------------------------------------------------------------------

#[test]
fn resize_matches_pytorch_bilinear_align_corners_false() {
    // F.interpolate([[0,1],[2,3]], size=4, bilinear, align_corners=False): per axis
    // src = (o + 0.5) / 2 - 0.5 clamped at 0 -> weights give [0, .25, .75, 1] along a row.
    let x = Tensor::new(&[[[[0f32, 1.0], [2.0, 3.0]]]], &Device::Cpu).unwrap();
    let y = pool::resize_bilinear(&x, 4, 4).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let row = [0.0, 0.25, 0.75, 1.0];
    let col = [0.0, 0.5, 1.5, 2.0];
    for i in 0..4 {
        for j in 0..4 {
            assert!((y[i * 4 + j] - (col[i] + row[j])).abs() < 1e-6, "{y:?}");
        }
    }
}

#[test]
fn avg_pool_excludes_padding_and_max_pool_pads_with_minus_infinity() {
    let x = Tensor::new(&[[[[1f32, 2.0], [3.0, 4.0]]]], &Device::Cpu).unwrap();
    // Every 3x3 window with padding 1 covers all four pixels: mean 2.5 everywhere.
    let a = pool::avg_pool2d_exclude_pad(&x, 3, 1, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(a.iter().all(|v| (v - 2.5).abs() < 1e-6), "{a:?}");
    let neg = x.neg().unwrap();
    let m = pool::max_pool2d(&neg, 3, 1, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(m, vec![-1.0; 4]);
}

/// The parallel f32 pools against the portable path (padded copy + candle's pools), which f64
/// images take, on odd sizes, strides and paddings.
#[test]
fn cpu_pools_match_the_portable_path() {
    let x64 = Tensor::randn(0f64, 1.0, (2, 3, 7, 6), &Device::Cpu).unwrap();
    let x32 = x64.to_dtype(DType::F32).unwrap();
    for (k, stride, padding) in [(3, 1, 1), (3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 1, 0)] {
        type PoolFn = fn(&Tensor, usize, usize, usize) -> gannet::Result<Tensor>;
        let pools: [(&str, PoolFn); 2] = [("max", pool::max_pool2d), ("avg", pool::avg_pool2d_exclude_pad)];
        for (name, f) in pools {
            let fast = f(&x32, k, stride, padding).unwrap();
            let portable = f(&x64, k, stride, padding).unwrap();
            assert_eq!(fast.dims(), portable.dims(), "{name} k{k} s{stride} p{padding}");
            let d = (fast.to_dtype(DType::F64).unwrap() - portable).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(d < 1e-6, "{name} k{k} s{stride} p{padding}: {d}");
        }
    }
    assert!(pool::max_pool2d(&x32, 9, 1, 0).is_err(), "a window larger than the image");
    assert!(pool::avg_pool2d_exclude_pad(&x32, 3, 0, 1).is_err(), "stride 0");
}

// ---- KID, precision/recall ----------------------------------------------------------------

fn gaussian(n: usize, d: usize, shift: f32, seed: u64) -> Tensor {
    let mut rng = gannet::rng::rng(seed, gannet::rng::Stream::Sample, 0);
    (gannet::rng::randn(&mut rng, &[n, d], &Device::Cpu).unwrap() + shift as f64).unwrap()
}

#[test]
fn kid_is_near_zero_for_one_distribution_and_grows_with_shift() {
    let a = gaussian(300, 16, 0.0, 1);
    let b = gaussian(300, 16, 0.0, 2);
    let c = gaussian(300, 16, 1.0, 3);
    let opts = KidOptions { subsets: 20, subset_size: 100, seed: 7 };
    let same = metrics::kid(&a, &b, opts).unwrap();
    let diff = metrics::kid(&a, &c, opts).unwrap();
    assert!(same.mean.abs() < 0.05, "{same:?}");
    assert!(diff.mean > 10.0 * same.mean.abs().max(0.01), "{same:?} {diff:?}");
    assert_eq!(metrics::kid(&a, &c, opts).unwrap(), diff, "seeded");
}

#[test]
fn precision_recall_of_identical_and_disjoint_sets() {
    let a = gaussian(200, 8, 0.0, 4);
    let pr = metrics::precision_recall(&a, &a, 3).unwrap();
    assert_eq!((pr.precision, pr.recall), (1.0, 1.0));
    let far = gaussian(200, 8, 100.0, 5);
    let pr = metrics::precision_recall(&a, &far, 3).unwrap();
    assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
    // A generator covering half of the real modes: full precision, about half the recall.
    let real = Tensor::cat(&[gaussian(100, 8, 0.0, 6), gaussian(100, 8, 50.0, 7)], 0).unwrap();
    let fake = gaussian(100, 8, 0.0, 8);
    let pr = metrics::precision_recall(&real, &fake, 3).unwrap();
    // (k=3 balls in 8-d with 100 samples do not cover all of a Gaussian, hence not 1.0.)
    assert!(pr.precision > 0.7 && pr.recall > 0.3 && pr.recall <= 0.5, "{pr:?}");
}

// ---- the network against pytorch-fid ------------------------------------------------------

#[test]
fn missing_tensor_error_names_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("partial.safetensors");
    let mut m = std::collections::HashMap::new();
    m.insert("Conv2d_1a_3x3.conv.weight".to_string(), Tensor::zeros((32, 3, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap());
    candle_core::safetensors::save(&m, &p).unwrap();
    let err = FidInception::load(&p, &Device::Cpu).err().expect("must fail").to_string();
    assert!(err.contains("partial.safetensors") && err.contains("Conv2d_1a_3x3.bn.weight"), "{err}");
}

#[test]
fn features_match_pytorch_fid_and_safetensors_loads_the_same() {
    let net = inception();
    let x = read_idx("mnist/t10k-images-idx3-ubyte.gz", 4);
    let t = std::time::Instant::now();
    let f = net.features(&x).unwrap();
    eprintln!("4 images: {:?}", t.elapsed());
    assert_eq!(f.dims(), &[4, 2048]);
    let f = f.to_vec2::<f32>().unwrap();
    for (got, want) in f.iter().zip(REF_FEATURES.iter()) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{:?} vs {want:?}", &got[..8]);
        }
    }
    // The same weights as safetensors give the same network.
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("inception.safetensors");
    let pth = metrics::models_dir().join(metrics::inception::WEIGHTS_FILE);
    let all: std::collections::HashMap<_, _> = candle_core::pickle::read_all(&pth).unwrap().into_iter().collect();
    candle_core::safetensors::save(&all, &st).unwrap();
    let g = FidInception::load(&st, &Device::Cpu).unwrap().features(&x.narrow(0, 0, 1).unwrap()).unwrap();
    let g = g.to_vec2::<f32>().unwrap();
    assert!(g[0].iter().zip(&f[0]).all(|(a, b)| (a - b).abs() < 1e-6));
}

fn fid_against_reference(n: usize, want: (f64, f64)) {
    let net = inception();
    let mnist = read_idx("mnist/t10k-images-idx3-ubyte.gz", 2 * n);
    let fashion = read_idx("fashion-mnist/t10k-images-idx3-ubyte.gz", n);
    let t = std::time::Instant::now();
    let fm = net.features(&mnist).unwrap();
    let ff = net.features(&fashion).unwrap();
    eprintln!("{} images: {:?}", 3 * n, t.elapsed());
    let a = fm.narrow(0, 0, n).unwrap();
    let same = fid::fid_from_features(&a, &fm.narrow(0, n, n).unwrap()).unwrap();
    let other = fid::fid_from_features(&a, &ff).unwrap();
    eprintln!("FID N={n}: MNIST/MNIST {same} (pytorch-fid {}), MNIST/Fashion {other} (pytorch-fid {})", want.0, want.1);
    assert!((same - want.0).abs() < 0.01 * want.0, "{same} vs {}", want.0);
    assert!((other - want.1).abs() < 0.01 * want.1, "{other} vs {}", want.1);
}

// Measured on the 2 shared CPU cores: N=200 took 572 s for the 600 forwards (Rust got
// 33.824154 / 221.390446, i.e. within 3e-6 relative of pytorch-fid); hence N=50 by default,
// which took 97 s for its 150 forwards on an idle machine (69.844276 / 251.356344).
#[test]
fn fid_matches_pytorch_fid_n50() {
    fid_against_reference(50, REF_FID_50);
}

#[test]
#[ignore = "600 Inception forwards: ~10 min on 2 shared CPU cores"]
fn fid_matches_pytorch_fid_n200() {
    fid_against_reference(200, REF_FID_200);
}
