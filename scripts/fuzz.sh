#!/usr/bin/env bash
# Fuzzes gannet's parsers and request validation (crates/gannet-fuzz, fuzz/README.md).
#
#   scripts/fuzz.sh SECONDS [TARGET...]       fuzz each target for SECONDS (default: all five:
#                                             idx image checkpoint config studio), FUZZ_JOBS
#                                             (default 2) at a time
#   scripts/fuzz.sh --replay [TARGET] [FILE...]  run the seeds (and saved crashes) once, or FILEs
#
# The fuzzer is the test target `fuzz` of gannet-fuzz, built like the test suite (so after
# `cargo test --workspace` nothing is compiled). Each target's log goes to
# $FUZZ_LOGS (default target/fuzz-logs) and is printed when it ends; crash inputs are written to
# fuzz/crashes/TARGET/ and printed in base64. Exits non-zero if any target crashed.
# Extra fuzzer flags: FUZZ_FLAGS (e.g. "--keep-going --timeout 30 --rss-limit-mb 3072").
set -euo pipefail
cd "$(dirname "$0")/.."
ALL="idx image checkpoint config studio"
JOBS=${FUZZ_JOBS:-2}
LOGS=${FUZZ_LOGS:-${CARGO_TARGET_DIR:-target}/fuzz-logs}
FLAGS=${FUZZ_FLAGS:-}

exe=$(cargo test --workspace --test fuzz --no-run --message-format=json-render-diagnostics \
  | grep -o '"executable":"[^"]*/fuzz-[0-9a-f]*"' | sed 's/"executable":"\(.*\)"/\1/' | tail -1)
if [ -z "$exe" ] || [ ! -x "$exe" ]; then
  echo "fuzz.sh: could not build the fuzzer; run: cargo test --workspace --test fuzz --no-run" >&2
  exit 2
fi
# One thread per fuzzer process: FUZZ_JOBS processes share the cores.
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}

if [ "${1:-}" = "--replay" ]; then
  shift
  target=${1:-all}
  [ $# -gt 0 ] && shift
  args=()
  for f in "$@"; do args+=(--input "$f"); done
  # shellcheck disable=SC2086
  exec "$exe" "$target" ${args[@]+"${args[@]}"} $FLAGS
fi

SECONDS_EACH=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...] | --replay [TARGET] [FILE...]}
shift
targets=${*:-$ALL}
mkdir -p "$LOGS"
echo "fuzz.sh: $SECONDS_EACH s per target, $JOBS at a time: $targets (logs in $LOGS)"
start=$(date +%s)
show() {
  local t=$1
  echo "---- fuzz target $t (exit $(cat "$LOGS/$t.rc"))"
  cat "$LOGS/$t.log"
}
pending=()
for t in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  # shellcheck disable=SC2086
  ( rc=0; "$exe" "$t" --seconds "$SECONDS_EACH" $FLAGS >"$LOGS/$t.log" 2>&1 || rc=$?; echo "$rc" >"$LOGS/$t.rc" ) &
  pending+=("$t")
done
wait
failed=()
for t in "${pending[@]}"; do
  show "$t"
  [ "$(cat "$LOGS/$t.rc")" = 0 ] || failed+=("$t")
done
echo "fuzz.sh: done in $(( $(date +%s) - start )) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: CRASHES in: ${failed[*]} (inputs under fuzz/crashes/, replay with scripts/fuzz.sh --replay TARGET FILE)" >&2
  exit 1
fi
echo "fuzz.sh: no crash"
