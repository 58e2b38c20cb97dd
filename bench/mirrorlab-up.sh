#!/usr/bin/env bash
# The installer's two performance targets (docs/benchmarks.md):
#  1. `mirrorlab up manifests/phonebook.yaml` on the local target, to a verified lab whose
#     members are caught up (up waits for that; verify must then pass): target <= 5 s;
#  2. copying a 1 GiB database file to a joining member: target >= 200 MB/s.
#
#   bench/mirrorlab-up.sh            # RUNS=5 up/down cycles, SIZE_MIB=1024
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZE_MIB=${SIZE_MIB:-1024}

cargo build --release -q -p mirrorlab-engine -p mirrorlab-installer --bins --example copy_bench
BIN=target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d)
cleanup() { "$BIN/mirrorlab" --lab-dir "$work/labs" down --wipe >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== mirrorlab up manifests/phonebook.yaml (then verify), $RUNS runs"
for i in $(seq 1 "$RUNS"); do
  start=$(date +%s%N)
  "$BIN/mirrorlab" --lab-dir "$work/labs" up manifests/phonebook.yaml >/dev/null 2>"$work/up.err" || { cat "$work/up.err"; exit 1; }
  "$BIN/mirrorlab" --lab-dir "$work/labs" verify manifests/phonebook.yaml >/dev/null
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'run %d: up + verify in %d.%03d s\n' "$i" $((ms / 1000)) $((ms % 1000))
  "$BIN/mirrorlab" --lab-dir "$work/labs" down --wipe >/dev/null
done

echo "== copy of a ${SIZE_MIB} MiB database file to a member"
"$BIN/examples/copy_bench" "$SIZE_MIB" "$work"
