#!/usr/bin/env bash
# Same-run comparison of gannet and PyTorch on DCGAN-64 (train step at batch 64, generation at
# batch 256), alternating the two so that machine load affects both alike. Prints each run's
# img/s and the median ratio gannet / PyTorch.
#
#   scripts/compare_pytorch.sh [ROUNDS=3] [REPS=3]
#
# Needs: target/release/gannet (cargo build --release -p gannet-cli) and python3 with torch.
# Thread counts: PyTorch uses --threads $THREADS (default 2); gannet uses rayon's default (all
# cores), set RAYON_NUM_THREADS to pin it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
REPS=${2:-3}
THREADS=${THREADS:-2}
GANNET=${GANNET:-target/release/gannet}
out=$(mktemp -d)
for i in $(seq 1 "$ROUNDS"); do
  "$GANNET" bench --only train64,gen64 --reps "$REPS" --warmup 1 --json > "$out/gannet_$i.json"
  python3 -W ignore scripts/pytorch_dcgan_bench.py --threads "$THREADS" --reps "$REPS" --warmup 1 > "$out/torch_$i.json"
  echo "round $i done" >&2
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, n + 1):
    g = json.load(open(f"{d}/gannet_{i}.json"))
    t = json.load(open(f"{d}/torch_{i}.json"))
    rows.append((g["train_img_per_s"], t["train_img_per_s"], g["gen_img_per_s"], t["gen_img_per_s"]))
    print(f"round {i}: train gannet {rows[-1][0]:.1f} torch {rows[-1][1]:.1f} img/s | "
          f"gen gannet {rows[-1][2]:.1f} torch {rows[-1][3]:.1f} img/s")
med = lambda xs: statistics.median(xs)
for name, gi, ti in (("train64 (batch 64)", 0, 1), ("gen64 (batch 256)", 2, 3)):
    ratios = [r[gi] / r[ti] for r in rows]
    print(f"{name}: gannet {med([r[gi] for r in rows]):.1f} img/s, pytorch {med([r[ti] for r in rows]):.1f} img/s, "
          f"median ratio gannet/pytorch {med(ratios):.3f}")
print(f"torch {t['torch']}, threads {t['threads']}; gannet threads {g['threads']}")
PY
