#!/usr/bin/env bash
# Quality against a PyTorch twin: trains each preset with gannet and with
# scripts/pytorch_gan_twin.py (the same networks, initialisation, loss, optimiser, batch, steps and
# EMA) for several seeds, writes N images of each run as PNGs, scores every folder the same way
# (`gannet eval --images`: FID against N MNIST training images, classifier FID, and for the
# conditional preset the per-class accuracy) and prints, per preset and implementation, each
# seed's scores and their mean and spread.
#
#   scripts/compare_quality.sh [SEEDS="1 2 3"] [PRESETS="dcgan-mnist cgan-mnist"] [N=2000]
#
# Work goes to $OUT (default runs/quality-twins): finished steps are skipped, so an interrupted
# comparison continues where it stopped. Needs target/release/gannet, python3 with torch,
# GANNET_DATA and GANNET_MODELS (the FID Inception weights). Each run takes minutes on 2 cores;
# the FID of N = 2000 images about 5 minutes (the reference features are cached once).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-1 2 3}
PRESETS=${2:-dcgan-mnist cgan-mnist}
N=${3:-2000}
OUT=${OUT:-runs/quality-twins}
GANNET=${GANNET:-target/release/gannet}
: "${GANNET_DATA:?set GANNET_DATA to the folder holding mnist/}"
: "${GANNET_MODELS:?set GANNET_MODELS to the folder holding the FID Inception weights}"
mkdir -p "$OUT"

metrics_for() { case "$1" in cgan-*) echo fid,cfid,cacc ;; *) echo fid,cfid ;; esac; }
classes=10

for preset in $PRESETS; do
  for seed in $SEEDS; do
    g="$OUT/gannet-$preset-$seed"
    t="$OUT/torch-$preset-$seed"
    if [ ! -s "$g/images.done" ]; then
      "$GANNET" train --preset "$preset" --seed "$seed" --out "$g" > "$OUT/gannet-$preset-$seed.log" 2>&1
      rm -rf "$g/images"
      case "$preset" in
        cgan-*) "$GANNET" sample --checkpoint "$g/checkpoints/latest.safetensors" --per-class $((N / classes)) --seed "$seed" --out-dir "$g/images" ;;
        *) "$GANNET" sample --checkpoint "$g/checkpoints/latest.safetensors" --count "$N" --seed "$seed" --out-dir "$g/images" ;;
      esac
      grep -E "^(done|stopped)" "$OUT/gannet-$preset-$seed.log" > "$g/images.done"
    fi
    if [ ! -s "$t/images.done" ]; then
      rm -rf "$t"
      mkdir -p "$t"
      python3 -W ignore scripts/pytorch_gan_twin.py --preset "$preset" --seed "$seed" --count "$N" --out "$t/images" > "$t/train.log" 2>&1
      grep "training time" "$t/train.log" > "$t/images.done"
    fi
    for run in "$g" "$t"; do
      if [ ! -s "$run/scores.json" ]; then
        "$GANNET" eval --images "$run/images" --data "$GANNET_DATA/mnist" --metrics "$(metrics_for "$preset")" -n "$N" --json > "$run/scores.tmp"
        mv "$run/scores.tmp" "$run/scores.json"
      fi
    done
  done
done

python3 - "$OUT" "$PRESETS" "$SEEDS" <<'EOF'
import json, statistics, sys
from pathlib import Path
out, presets, seeds = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
def row(scores):
    r = {"fid": scores["fid"], "cfid": scores["cfid"]}
    if "class_accuracy" in scores:
        r["cacc_min"] = min(scores["class_accuracy"]["accuracy"])
    return r
for preset in presets:
    print(f"\n{preset} (N = images per folder; FID and classifier FID against MNIST training images)")
    for impl in ("gannet", "torch"):
        rows = [row(json.load(open(out / f"{impl}-{preset}-{s}" / "scores.json"))) for s in seeds]
        for s, r in zip(seeds, rows):
            print(f"  {impl:7s} seed {s}: " + "  ".join(f"{k} {v:.4g}" for k, v in r.items()))
        for k in rows[0]:
            v = [r[k] for r in rows]
            print(f"  {impl:7s} {k}: mean {statistics.mean(v):.4g}, range {min(v):.4g}-{max(v):.4g}")
EOF
