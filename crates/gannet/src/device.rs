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
                None => 0,
            };
            Device::new_cuda(ordinal).map_err(|e| crate::Error::Config(format!("device '{s}': {e} (build with `--features cuda` on a machine with CUDA)")))
        }
        other => Err(crate::Error::Config(format!("unknown device '{other}': use cpu, cuda, cuda:N or metal"))),
    }
}

fn metal_err(e: String) -> crate::Error {
    crate::Error::Config(format!("device 'metal': {e} (build with `--features metal` on macOS)"))
}
