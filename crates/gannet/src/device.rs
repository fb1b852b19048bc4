//! Choosing where tensors live: `cpu`, `cuda[:N]`, `metal`.

use candle_core::Device;

pub fn parse_device(spec: &str) -> crate::Result<Device> {
    let spec = spec.trim();
    match spec {
        "cpu" => Ok(Device::Cpu),
        "metal" => Device::new_metal(0).map_err(|e| metal_err(e.to_string())),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n.parse::<usize>().map_err(|_| crate::Error::Config(format!("device '{s}': expected cuda or cuda:N")))?,
                // Data-parallel processes on one machine take one GPU each.
                None => crate::parallel::world().local_rank(),
            };
            Device::new_cuda(ordinal).map_err(|e| crate::Error::Config(cuda_error(s, ordinal, &e)))
        }
        other => Err(crate::Error::Config(format!("unknown device '{other}': use cpu, cuda, cuda:N or metal"))),
    }
}

/// Why `cuda:ordinal` could not be opened, and what to do: a build without CUDA needs
/// rebuilding; a build with it needs a working driver and GPU.
fn cuda_error(spec: &str, ordinal: usize, e: &candle_core::Error) -> String {
    // The first line only: candle appends a backtrace when RUST_BACKTRACE is set.
    let reason = e.to_string();
    let reason = reason.lines().next().unwrap_or_default();
    if cfg!(feature = "cuda") {
        format!(
            "device '{spec}': GPU {ordinal} cannot be used: {reason}. This gannet has CUDA support; it needs an NVIDIA driver \
             (libcuda.so.1) and a GPU (check with `nvidia-smi`), or use --device cpu"
        )
    } else {
        format!("device '{spec}': this gannet was built without CUDA support: rebuild with `cargo build --release -p gannet-cli --features cuda` on a machine with the CUDA toolkit, or use --device cpu")
    }
}

fn metal_err(e: String) -> crate::Error {
    crate::Error::Config(format!("device 'metal': {e} (build with `--features metal` on macOS)"))
}
