#!/usr/bin/env bash
# Feeds the gannet binary bad input as a careful user or an attacker would, and counts the runs
# that end badly: a panic (exit 101), an abort or a signal (134, 137, 139), or a hang (no exit
# within the time limit). Every probe should end with exit status 1 (or clap's 2 for a malformed
# flag) and a message. Prints one line per probe and a summary; exits 1 if any probe ended badly.
#
# Usage: scripts/probe_bad_input.sh [path/to/gannet]   (default: target/release/gannet)
# Needs: a built binary; GANNET_DATA for the data probes (default ../shared/data).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/gannet}"
LIMIT="${PROBE_TIMEOUT:-60}"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

# A tiny checkpoint to probe the commands that read one.
"$BIN" train --out "$T/run" --steps 2 --batch-size 8 --channels 4 --latent-dim 8 --sample-every 2 --checkpoint-every 2 >/dev/null 2>&1 \
  || { echo "could not train the tiny run the probes need"; exit 2; }
C="$T/run/checkpoints/latest.safetensors"
"$BIN" train --print-config > "$T/base.toml"

bad=0
total=0
probe() {
  local name="$1"; shift
  total=$((total + 1))
  timeout -s KILL "$LIMIT" "$@" >"$T/out" 2>"$T/err" </dev/null
  local rc=$?
  local verdict="ok"
  case "$rc" in
    0) verdict="accepted" ;;
    1|2) verdict="refused" ;;
    101) verdict="PANIC"; bad=$((bad + 1)) ;;
    137) verdict="HANG-or-KILLED"; bad=$((bad + 1)) ;;
    *) verdict="BAD-EXIT"; bad=$((bad + 1)) ;;
  esac
  printf '%-16s %-4s %-44s %s\n' "$verdict" "$rc" "$name" "$(head -c 150 "$T/err" | tr '\n' ' ')"
}
config() {  # config NAME FROM TO: a config file with one line changed
  sed "s|$2|$3|" "$T/base.toml" > "$T/$1.toml"
  echo "$T/$1.toml"
}

mkfifo "$T/fifo" "$T/fifo.png"
mkdir -p "$T/deep/a/b" "$T/fifodir" "$T/trunc"
cp "$T/run/samples/step-000002.png" "$T/deep/a/b/x.png"
ln -s "$T/fifo.png" "$T/fifodir/x.png"
head -c 300 "$T/run/samples/step-000002.png" > "$T/trunc/x.png"

# Sizes from flags.
probe "train --channels 0"            "$BIN" train --channels 0 --out "$T/o1" --steps 1
probe "train --latent-dim 4e9"        "$BIN" train --latent-dim 4000000000 --out "$T/o2" --steps 1
probe "train --latent-dim 0"          "$BIN" train --latent-dim 0 --out "$T/o3" --steps 1
probe "train --resolution 8192"       "$BIN" train --resolution 8192 --out "$T/o4" --steps 1
probe "train --resolution 4096"       "$BIN" train --resolution 4096 --out "$T/o5" --steps 1
probe "train --batch-size 0"          "$BIN" train --batch-size 0 --out "$T/o6" --steps 1
probe "train --batch-size 60000"      "$BIN" train --batch-size 60000 --channels 512 --out "$T/o7" --steps 1
probe "train --channels 1000000"      "$BIN" train --channels 1000000 --out "$T/o8" --steps 1
probe "train --max-memory 1M"         "$BIN" --max-memory 1M train --out "$T/o9" --steps 1
probe "train --lr-g -1"               "$BIN" train --lr-g -1 --out "$T/o10" --steps 1
probe "train --d-steps 0"             "$BIN" train --d-steps 0 --out "$T/o11" --steps 1
# Settings from config files.
probe "config sample_count = 0"       "$BIN" train --config "$(config sc0 'sample_count = 64' 'sample_count = 0')" --out "$T/c1"
probe "config sample_count = 1e9"     "$BIN" train --config "$(config sc1 'sample_count = 64' 'sample_count = 1000000000')" --out "$T/c2"
probe "config beta1 = 1.5"            "$BIN" train --config "$(config b1 'beta1 = 0.5' 'beta1 = 1.5')" --out "$T/c3"
probe "config eps = -1"               "$BIN" train --config "$(config eps 'eps = 0.00000001' 'eps = -1.0')" --out "$T/c4"
probe "config g_channels huge"        "$BIN" train --config "$(config gch 'g_channels = 32' 'g_channels = 100000000')" --out "$T/c5"
probe "config latent_dim huge"        "$BIN" train --config "$(config ld 'latent_dim = 100' 'latent_dim = 4000000000')" --out "$T/c6"
probe "config steps = 0"              "$BIN" train --config "$(config st 'steps = 3000' 'steps = 0')" --out "$T/c7"
probe "config ema_decay = 2"          "$BIN" train --config "$(config ema 'ema_decay = 0.999' 'ema_decay = 2.0')" --out "$T/c8"
probe "config is /dev/zero"           "$BIN" train --config /dev/zero
probe "config is a FIFO"              "$BIN" train --config "$T/fifo"
# Data.
probe "data is /dev/zero"             "$BIN" train --data /dev/zero --out "$T/d1" --steps 1
probe "data is a FIFO"                "$BIN" train --data "$T/fifo" --out "$T/d2" --steps 1
probe "data folder holds a FIFO"      "$BIN" train --data "$T/fifodir" --out "$T/d3" --steps 1
probe "data two folders deep"         "$BIN" train --data "$T/deep" --out "$T/d4" --steps 1
probe "data truncated PNG"            "$BIN" train --data "$T/trunc" --out "$T/d5" --steps 1
# Checkpoints.
probe "sample from /dev/zero"         "$BIN" sample --checkpoint /dev/zero --out "$T/s.png"
probe "sample from a FIFO"            "$BIN" sample --checkpoint "$T/fifo" --out "$T/s.png"
probe "sample from a folder"          "$BIN" sample --checkpoint "$T" --out "$T/s.png"
probe "sample -n 100000000 grid"      "$BIN" sample --checkpoint "$C" -n 100000000 --out "$T/s.png"
probe "sample -n 0"                   "$BIN" sample --checkpoint "$C" -n 0 --out "$T/s.png"
probe "sample --out x.jpg"            "$BIN" sample --checkpoint "$C" --out "$T/s.jpg"
probe "sample --truncation 0"         "$BIN" sample --checkpoint "$C" --truncation 0 --out "$T/s.png"
probe "sample --truncate-z -1"        "$BIN" sample --checkpoint "$C" --truncate-z -1 --out "$T/s.png"
probe "sample --class on uncond."     "$BIN" sample --checkpoint "$C" --class 3 --out "$T/s.png"
probe "sample --per-class 0"          "$BIN" sample --checkpoint "$C" --per-class 0 --out-dir "$T/pc"
probe "interpolate --frames 1"        "$BIN" interpolate --checkpoint "$C" --seeds 1,2 --frames 1 --out "$T/i.png"
probe "interpolate --frames 1e9"      "$BIN" interpolate --checkpoint "$C" --seeds 1,2 --frames 1000000000 --out "$T/i.png"
probe "interpolate --gif-scale 1e6"   "$BIN" interpolate --checkpoint "$C" --seeds 1,2 --gif-scale 1000000 --gif "$T/i.gif"
probe "mix on a DCGAN"                "$BIN" mix --checkpoint "$C" --rows 1,2 --cols 3,4 --out "$T/m.png"
probe "eval -n 0"                     "$BIN" eval --checkpoint "$C" -n 0 --metrics cfid
probe "eval --resolution 0"           "$BIN" eval --checkpoint "$C" --resolution 0 --metrics cfid
probe "classifier --steps 0"          "$BIN" classifier --data builtin:digits --steps 0 --out "$T/cl.safetensors"
probe "classifier --batch-size 0"     "$BIN" classifier --data builtin:digits --batch-size 0 --out "$T/cl.safetensors"
probe "classifier --resolution 3"     "$BIN" classifier --data builtin:digits --resolution 3 --out "$T/cl.safetensors"
probe "classifier --resolution 1e6"   "$BIN" classifier --data builtin:digits --resolution 1000000 --out "$T/cl.safetensors"
probe "translate a GAN checkpoint"    "$BIN" translate --checkpoint "$C" --in "$T/deep" --out "$T/t.png"
probe "upscale a GAN checkpoint"      "$BIN" upscale --checkpoint "$C" --in "$T/deep" --out "$T/u.png"
probe "train --lr-g=-1"               "$BIN" train --lr-g=-1 --out "$T/o12" --steps 1
probe "train --steps 0"               "$BIN" train --out "$T/o13" --steps 0
probe "sample --truncate-z=-1"        "$BIN" sample --checkpoint "$C" --truncate-z=-1 --out "$T/s.png"
probe "bench --reps 0"                "$BIN" bench --reps 0

echo "---"
echo "$total probes, $bad ended badly (panic, abort, signal or hang)"
[ "$bad" -eq 0 ]
