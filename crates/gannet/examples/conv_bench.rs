//! GFLOP/s of the DCGAN-64 convolution layers: gannet's im2col kernels vs candle's built-ins.
//!
//! cargo run --release -p gannet --example conv_bench -- [--reps 5] [--batch 64] [--no-candle]
//!     [--only D2] [--breakdown]   (layers whose name starts with D2)
//!     [--net cyclegan]            (the cyclegan-emoji preset's G at 32 channels, 64x64, instead)
//!
//! Forward FLOPs are 2 * N * Cout * Ho * Wo * Cin * k * k; the backward pass (input and weight
//! gradients) is counted as twice that. Times are medians over `--reps` runs after one warm-up.

use candle_core::{Device, Tensor, Var};
use gannet::ops::{self, ConvSpec};
use std::time::Instant;

// As in the `gannet` binary: freed buffers go back to the next step's requests instead of to the
// kernel, otherwise page faults on fresh buffers dominate the backward timings.
#[global_allocator]
static ALLOC: gannet::buffer_cache::BufferCache<std::alloc::System> = gannet::buffer_cache::BufferCache::new(std::alloc::System);

#[derive(Clone, Copy)]
struct Layer {
    name: &'static str,
    transposed: bool,
    cin: usize,
    cout: usize,
    k: usize,
    /// Input spatial size.
    hw: usize,
    spec: ConvSpec,
}

fn layers(net: &str) -> Vec<Layer> {
    let s2 = ConvSpec::new(2, 1);
    let s1 = ConvSpec::new(1, 0);
    let t = |name, cin, cout, hw, spec| Layer { name, transposed: true, cin, cout, k: 4, hw, spec };
    let c = |name, cin, cout, hw, spec| Layer { name, transposed: false, cin, cout, k: 4, hw, spec };
    if net == "cyclegan" {
        let k = |k, l: Layer| Layer { k, ..l };
        return vec![
            k(7, c("stem conv7 3->32 64", 3, 32, 64, ConvSpec::new(1, 3))),
            k(3, c("down0 conv3 32->64 64->32", 32, 64, 64, s2)),
            k(3, c("down1 conv3 64->128 32->16", 64, 128, 32, s2)),
            k(3, c("block conv3 128->128 16", 128, 128, 16, ConvSpec::new(1, 1))),
            t("up0 convT 128->64 16->32", 128, 64, 16, s2),
            t("up1 convT 64->32 32->64", 64, 32, 32, s2),
            k(7, c("to_image conv7 32->3 64", 32, 3, 64, ConvSpec::new(1, 3))),
            c("D conv0 3->32 64->32", 3, 32, 64, s2),
            c("D conv1 32->64 32->16", 32, 64, 32, s2),
            c("D conv2 64->128 16->15", 64, 128, 16, ConvSpec::new(1, 1)),
            c("D head 128->1 15->14", 128, 1, 15, ConvSpec::new(1, 1)),
        ];
    }
    vec![
        t("G1 convT 100->512 1->4", 100, 512, 1, s1),
        t("G2 convT 512->256 4->8", 512, 256, 4, s2),
        t("G3 convT 256->128 8->16", 256, 128, 8, s2),
        t("G4 convT 128->64 16->32", 128, 64, 16, s2),
        t("G5 convT 64->3 32->64", 64, 3, 32, s2),
        c("D1 conv 3->64 64->32", 3, 64, 64, s2),
        c("D2 conv 64->128 32->16", 64, 128, 32, s2),
        c("D3 conv 128->256 16->8", 128, 256, 16, s2),
        c("D4 conv 256->512 8->4", 256, 512, 8, s2),
        c("D5 conv 512->1 4->1", 512, 1, 4, s1),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `f` over `reps` runs, after one warm-up run.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

struct Setup {
    x: Var,
    w: Var,
    r: Tensor,
}

fn setup(l: Layer, batch: usize) -> Setup {
    let dev = Device::Cpu;
    let x = Var::randn(0f32, 1., (batch, l.cin, l.hw, l.hw), &dev).unwrap();
    let wd = if l.transposed { (l.cin, l.cout, l.k, l.k) } else { (l.cout, l.cin, l.k, l.k) };
    let w = Var::randn(0f32, 0.02, wd, &dev).unwrap();
    let y = forward(l, &x, &w, true);
    let r = Tensor::randn(0f32, 1., y.shape(), &dev).unwrap();
    Setup { x, w, r }
}

fn forward(l: Layer, x: &Tensor, w: &Tensor, fast: bool) -> Tensor {
    let s = l.spec;
    match (l.transposed, fast) {
        (true, true) => ops::conv_transpose2d(x, w, s).unwrap(),
        (false, true) => ops::conv2d(x, w, s).unwrap(),
        (true, false) => x.conv_transpose2d(w, s.padding, s.output_padding, s.stride, s.dilation).unwrap(),
        (false, false) => x.conv2d(w, s.padding, s.stride, s.dilation, 1).unwrap(),
    }
}

/// Forward FLOPs: each output-input pair of a (transposed) conv is one multiply-add per tap.
fn flops(l: Layer, batch: usize, y: &Tensor) -> f64 {
    let (_, _, ho, wo) = y.dims4().unwrap();
    let pixels = if l.transposed { l.hw * l.hw } else { ho * wo };
    2.0 * (batch * pixels * l.cin * l.cout * l.k * l.k) as f64
}

/// (forward seconds, backward-only seconds)
fn measure(l: Layer, st: &Setup, fast: bool, reps: usize) -> (f64, f64) {
    let fwd = time(reps, || {
        forward(l, &st.x, &st.w, fast);
    });
    let both = time(reps, || {
        let y = forward(l, &st.x, &st.w, fast);
        let g = y.mul(&st.r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(&st.w).is_some());
    });
    (fwd, (both - fwd).max(1e-9))
}

/// Forward pass split into its stages (ms): where the time goes besides the GEMM.
fn breakdown(l: Layer, st: &Setup, reps: usize) -> String {
    let (x, w, s) = (st.x.as_tensor(), st.w.as_tensor(), l.spec);
    let (n, cin, h, wd) = x.dims4().unwrap();
    let ms = |t: f64| t * 1e3;
    if l.transposed {
        let (_, cout, k, _) = w.dims4().unwrap();
        let xf = || x.transpose(0, 1).unwrap().contiguous().unwrap().reshape((cin, n * h * wd)).unwrap();
        let t_copy = time(reps, || {
            xf();
        });
        let (xf, wf) = (xf(), w.reshape((cin, cout * k * k)).unwrap());
        let t_mm = time(reps, || {
            wf.t().unwrap().matmul(&xf).unwrap();
        });
        let cols = wf.t().unwrap().matmul(&xf).unwrap();
        let y = forward(l, x, w, true);
        let (_, _, ho, wo) = y.dims4().unwrap();
        let g = ops::Geom::new(n, cout, (ho, wo), k, s, (h, wd));
        let t_fold = time(reps, || {
            ops::fold(&cols, g).unwrap();
        });
        format!("x transpose copy {:.1}, gemm {:.1}, fold {:.1}", ms(t_copy), ms(t_mm), ms(t_fold))
    } else {
        let (cout, _, k, _) = w.dims4().unwrap();
        let y = forward(l, x, w, true);
        let (_, _, ho, wo) = y.dims4().unwrap();
        let g = ops::Geom::new(n, cin, (h, wd), k, s, (ho, wo));
        let t_unfold = time(reps, || {
            ops::unfold(x, g).unwrap();
        });
        let (cols, wf) = (ops::unfold(x, g).unwrap(), w.reshape((cout, cin * k * k)).unwrap());
        let t_mm = time(reps, || {
            wf.matmul(&cols).unwrap();
        });
        let ym = wf.matmul(&cols).unwrap();
        let t_perm = time(reps, || {
            ym.reshape((cout, n, ho, wo)).unwrap().permute((1, 0, 2, 3)).unwrap().contiguous().unwrap();
        });
        format!("unfold {:.1}, gemm {:.1}, output permute copy {:.1}", ms(t_unfold), ms(t_mm), ms(t_perm))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| args.iter().position(|a| a == name).map_or(default, |i| args[i + 1].parse().unwrap());
    let (reps, batch) = (arg("--reps", 5), arg("--batch", 64));
    let candle = !args.iter().any(|a| a == "--no-candle");
    println!("batch {batch}, {reps} reps, rayon threads {}; GFLOP/s (ms)", rayon::current_num_threads());
    println!("{:<26} {:>18} {:>18} {:>18} {:>18}", "layer", "gannet fwd", "gannet bwd", "candle fwd", "candle bwd");
    let mut tot = [0f64; 4];
    let mut total_flops = 0.0;
    let only = args.iter().position(|a| a == "--only").map(|i| args[i + 1].clone());
    let net = args.iter().position(|a| a == "--net").map_or("dcgan".to_string(), |i| args[i + 1].clone());
    for l in layers(&net).into_iter().filter(|l| only.as_ref().is_none_or(|o| l.name.starts_with(o.as_str()))) {
        let st = setup(l, batch);
        let f = flops(l, batch, &forward(l, &st.x, &st.w, true));
        total_flops += f;
        let (gf, gb) = measure(l, &st, true, reps);
        let cell = |t: f64, fl: f64| format!("{:7.1} ({:7.1})", fl / t / 1e9, t * 1e3);
        let mut line = format!("{:<26} {:>18} {:>18}", l.name, cell(gf, f), cell(gb, 2.0 * f));
        tot[0] += gf;
        tot[1] += gb;
        if candle {
            let (cf, cb) = measure(l, &st, false, reps.min(3));
            line += &format!(" {:>18} {:>18}", cell(cf, f), cell(cb, 2.0 * f));
            tot[2] += cf;
            tot[3] += cb;
        }
        println!("{line}");
        if args.iter().any(|a| a == "--breakdown") {
            println!("    forward stages (ms): {}", breakdown(l, &st, reps));
        }
    }
    let cell = |t: f64, fl: f64| format!("{:7.1} ({:7.1})", fl / t / 1e9, t * 1e3);
    let mut line = format!("{:<26} {:>18} {:>18}", "all layers", cell(tot[0], total_flops), cell(tot[1], 2.0 * total_flops));
    if candle {
        line += &format!(" {:>18} {:>18}", cell(tot[2], total_flops), cell(tot[3], 2.0 * total_flops));
    }
    println!("{line}");
}
