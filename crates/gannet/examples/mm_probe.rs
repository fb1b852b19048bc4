use candle_core::{Device, Tensor};
use std::time::Instant;
#[global_allocator]
static ALLOC: gannet::buffer_cache::BufferCache<std::alloc::System> = gannet::buffer_cache::BufferCache::new(std::alloc::System);
fn t(name: &str, f: impl Fn() -> Tensor) {
    f();
    let mut v: Vec<f64> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    println!("{name:<40} {:.2} ms", v[7]);
}
fn main() {
    let d = Device::Cpu;
    let (m, k, n) = (128, 1152, 1024);
    let w = Tensor::randn(0f32, 1., (m, k), &d).unwrap();
    let cols = Tensor::randn(0f32, 1., (k, n), &d).unwrap();
    let dy = Tensor::randn(0f32, 1., (m, n), &d).unwrap();
    t("fwd W@cols", || w.matmul(&cols).unwrap());
    t("dW = dY @ cols^T (view)", || dy.matmul(&cols.t().unwrap()).unwrap());
    t("dW = dY @ cols^T (contig)", || {
        let c = cols.t().unwrap().contiguous().unwrap();
        dy.matmul(&c).unwrap()
    });
    t("dcols = W^T @ dY (view)", || w.t().unwrap().matmul(&dy).unwrap());
    t("dcols = W^T @ dY (contig)", || {
        let wt = w.t().unwrap().contiguous().unwrap();
        wt.matmul(&dy).unwrap()
    });
    t("zeros_like(cols)+add", || cols.zeros_like().unwrap().add(&cols).unwrap());
}
