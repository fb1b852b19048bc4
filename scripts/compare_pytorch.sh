#!/usr/bin/env bash
# Same-run comparison of gannet and PyTorch, row by row, alternating the two so that machine load
# affects both alike. Prints each round's img/s and, per row, the median ratio gannet / PyTorch,
# with the CPU model (a ratio means little without it).
#
#   scripts/compare_pytorch.sh [ROUNDS=3] [REPS=3] [ROWS=train64,gen64]
#
# Rows (`gannet bench --help`): train64 and gen64 against scripts/pytorch_dcgan_bench.py
# (DCGAN-64, nz 100, 64 channels), train32 against the same at --resolution 32; pix2pix, cyclegan and superres (one train step of the
# *-emoji preset) against scripts/pytorch_i2i_bench.py reading the same preset file; fid (Inception
# features of 50 RGB 64x64 images) against scripts/pytorch_fid_bench.py (pytorch-fid's network,
# needs `pip install pytorch-fid` and GANNET_MODELS). The GAN preset rows (sngan, biggan,
# stylegan2, progan) have no twins.
#
# Needs: target/release/gannet (cargo build --release -p gannet-cli) and python3 with torch.
# Thread counts: PyTorch uses --threads $THREADS (default 2); gannet uses rayon's default (all
# cores), set RAYON_NUM_THREADS to pin it. Time on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
REPS=${2:-3}
ROWS=${3:-train64,gen64}
THREADS=${THREADS:-2}
GANNET=${GANNET:-target/release/gannet}
out=$(mktemp -d)
IFS=',' read -r -a rows <<< "$ROWS"

twin() {
  case "$1" in
    train64|gen64) python3 -W ignore scripts/pytorch_dcgan_bench.py --threads "$THREADS" --reps "$REPS" --warmup 1 ;;
    train32) python3 -W ignore scripts/pytorch_dcgan_bench.py --resolution 32 --threads "$THREADS" --reps "$REPS" --warmup 1 ;;
    pix2pix|cyclegan|superres)
      python3 -W ignore scripts/pytorch_i2i_bench.py --task "$1" --preset "crates/gannet/presets/i2i/$1-emoji.toml" \
        --threads "$THREADS" --reps "$REPS" --warmup 1 ;;
    fid) python3 -W ignore scripts/pytorch_fid_bench.py --threads "$THREADS" --reps "$REPS" --warmup 1 ;;
    *) echo "unknown row '$1' (rows with twins: train64, train32, gen64, pix2pix, cyclegan, superres, fid)" >&2; exit 2 ;;
  esac
}

for i in $(seq 1 "$ROUNDS"); do
  for row in "${rows[@]}"; do
    "$GANNET" bench --only "$row" --reps "$REPS" --warmup 1 --json > "$out/gannet_${row}_$i.json"
    twin "$row" > "$out/torch_${row}_$i.json"
  done
  echo "round $i done" >&2
done

python3 - "$out" "$ROUNDS" "$ROWS" <<'PY'
import json, statistics, sys
d, n, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
# Which field of the twin's JSON holds the row's img/s.
torch_key = {"train64": "train_img_per_s", "gen64": "gen_img_per_s", "fid": "fid_img_per_s"}
med = statistics.median
g = t = None
for row in rows:
    pairs = []
    for i in range(1, n + 1):
        g = json.load(open(f"{d}/gannet_{row}_{i}.json"))
        t = json.load(open(f"{d}/torch_{row}_{i}.json"))
        gi = next(r["img_per_s"] for r in g["results"] if r["name"] == row)
        ti = t[torch_key.get(row, "train_img_per_s")]
        pairs.append((gi, ti))
        print(f"{row} round {i}: gannet {gi:.2f} img/s, pytorch {ti:.2f} img/s")
    print(f"{row}: gannet {med([p[0] for p in pairs]):.2f} img/s, pytorch {med([p[1] for p in pairs]):.2f} img/s, "
          f"median ratio gannet/pytorch {med([p[0] / p[1] for p in pairs]):.3f}")
print(f"CPU: {g['cpu']}; torch {t['torch']}, threads {t['threads']}; gannet threads {g['threads']}; {g['kernels']}")
PY
