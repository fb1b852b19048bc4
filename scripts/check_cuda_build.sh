#!/usr/bin/env bash
# Builds gannet with CUDA and NCCL (features `cuda`, `nccl`) on a machine with neither a GPU nor a
# system CUDA, so that GPU code cannot rot unseen (CI runs this). What it takes, measured in
# ../shared/notes/cuda-without-a-gpu.md:
#   - the CUDA 13 compiler from PyPI wheels in a venv (the CUDA 12 wheels hold only ptxas);
#   - stand-ins for the driver libraries the link needs (libcuda, cuBLAS(Lt), cuRAND, NVRTC,
#     NCCL): shared libraries with the real sonames whose every function, named from cudarc's
#     bindings, returns an error code; no wheel ships a libcuda stub.
# Then checks what a user without a GPU meets: `--device cuda` fails with a clear message before
# the run folder exists, and `--device cpu` trains.
#
#   scripts/check_cuda_build.sh            # work files in target/cuda-check, build in target/cuda
#
# Cold, on 2 cores: ~15 min (most of it nvcc building candle's kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${CUDA_CHECK_DIR:-$PWD/target/cuda-check}"
export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-$PWD/target/cuda}"
mkdir -p "$WORK"

# 1. nvcc 13.4 from PyPI (Debian's gcc 12 is its host compiler).
VENV="$WORK/venv"
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q nvidia-cuda-nvcc==13.4.92 nvidia-nvvm==13.4.92 nvidia-cuda-crt==13.4.92 nvidia-cuda-runtime==13.4.92 nvidia-cuda-cccl
CUDA_HOME="$(echo "$VENV"/lib/python3*/site-packages/nvidia/cu13)"
export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH"
nvcc --version | tail -1

# 2. Stand-in libraries: every function of cudarc's bindings returns 34
#    (CUDA_ERROR_STUB_LIBRARY for the driver; an error for the others).
CUDARC="$(cargo metadata --format-version 1 --features gannet-cli/nccl 2>/dev/null | python3 -c '
import json, sys
pkgs = json.load(sys.stdin)["packages"]
print(next(p["manifest_path"] for p in pkgs if p["name"] == "cudarc").rsplit("/", 1)[0])')"
STUBS="$WORK/stubs"
mkdir -p "$STUBS/lib64"
for entry in cuda:libcuda.so.1:driver cublas:libcublas.so.13:cublas cublasLt:libcublasLt.so.13:cublaslt \
             curand:libcurand.so.10:curand nvrtc:libnvrtc.so.13:nvrtc nccl:libnccl.so.2:nccl; do
  IFS=: read -r name soname module <<<"$entry"
  grep -ohE 'pub unsafe fn [A-Za-z0-9_]+\(' "$CUDARC/src/$module/sys/mod.rs" | sed -E 's/pub unsafe fn ([A-Za-z0-9_]+)\(/int \1(void) { return 34; }/' | sort -u >"$STUBS/$name.c"
  gcc -shared -fPIC -Wl,-soname,"$soname" -o "$STUBS/lib64/$soname" "$STUBS/$name.c"
  ln -sf "$soname" "$STUBS/lib64/lib$name.so"
done
# The real CUDA runtime (candle's kernels link it) comes with its wheel.
ln -sf "$CUDA_HOME/lib/libcudart.so.13" "$STUBS/lib64/libcudart.so"

# 3. The build: no nvidia-smi to ask for the compute capability; cudarc 0.19 knows CUDA <= 13.4.
export CUDA_ROOT="$STUBS" CUDA_COMPUTE_CAP=90 CUDARC_CUDA_VERSION=13040 CUDAFORGE_THREADS=2
cargo build -p gannet-cli --features cuda,nccl 2>&1 | tail -3
GANNET="$CARGO_TARGET_DIR/debug/gannet"

# 4. What a user without a GPU meets.
export LD_LIBRARY_PATH="$STUBS/lib64:$CUDA_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
RUN="$WORK/run"
rm -rf "$RUN"
if "$GANNET" train --device cuda --steps 1 --batch-size 8 --channels 4 --latent-dim 8 --out "$RUN" 2>"$WORK/cuda.err"; then
  echo "FAIL: --device cuda trained without a GPU" >&2
  exit 1
fi
grep -q "needs an NVIDIA driver" "$WORK/cuda.err" || { echo "FAIL: unclear --device cuda error:" >&2; cat "$WORK/cuda.err" >&2; exit 1; }
[ ! -e "$RUN" ] || { echo "FAIL: the refused run left $RUN" >&2; exit 1; }
echo "--device cuda without a GPU: $(head -1 "$WORK/cuda.err")"
"$GANNET" train --device cpu --steps 2 --batch-size 8 --channels 4 --latent-dim 8 --out "$RUN" 2>/dev/null
test -s "$RUN/checkpoints/latest.safetensors"
echo "CUDA + NCCL build OK; --device cpu trains with it"
