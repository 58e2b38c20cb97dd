#!/usr/bin/env bash
# What a lab's durability costs: the phonebook lab (primary, backup, DR async, arbiter) with
# `durability: always` (the default for a lab with a mirror: a write is acknowledged once it
# is synced on the primary and on the backup) and with `durability: buffered`, driven by
# redis-benchmark on the primary with keys in a mirrored database; redis-server with
# `appendfsync always` and `everysec` in the same run, as the peer. Prints the rows recorded
# in docs/benchmarks.md.
#
#   bench/lab-durability.sh                     # REQUESTS=100000 per row
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-16}

cargo build --release -q --bins
BIN=target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d)
cleanup() {
  for lab in always buffered; do "$BIN/mirrorlab" --lab-dir "$work/labs-$lab" down --wipe >/dev/null 2>&1 || true; done
  if [ -f "$work/pids" ]; then xargs -r kill <"$work/pids"; fi
  rm -rf "$work"
}
trap cleanup EXIT
. bench/redis-peer.sh

# The phonebook lab with the given durability. redis-benchmark's connections use the USER
# namespace: on every member it maps `key*` (the keys redis-benchmark writes) to the
# mirrored COMPANY database, so every SET is mirrored. Prints the primary's superserver port.
# The lab's engines have users: the API and redis-benchmark log in as admin with the
# password `up` drew (the lab directory's admin.password).
password() { cat "$work/labs-$1/phonebook/admin.password"; }
start_lab() { # $1 = always|buffered
  sed -e "s/^durability: always.*/durability: $1/" manifests/phonebook.yaml >"$work/lab-$1.yaml"
  grep -q "^durability: $1" "$work/lab-$1.yaml" || { echo "the phonebook manifest has no durability line" >&2; exit 1; }
  "$BIN/mirrorlab" --lab-dir "$work/labs-$1" up "$work/lab-$1.yaml" >"$work/up-$1.log" 2>&1 || { cat "$work/up-$1.log" >&2; exit 1; }
  local status; status=$("$BIN/mirrorlab" --lab-dir "$work/labs-$1" --json status)
  for web in $(python3 -c 'import json,sys; print(" ".join(str(m["web_port"]) for m in json.load(sys.stdin)["members"]))' <<<"$status"); do
    curl -sf -u "admin:$(password "$1")" -X PUT "http://127.0.0.1:$web/api/namespaces/USER/mappings" -H 'Content-Type: application/json' \
      -d '{"global": "key*", "database": "COMPANY"}' >/dev/null
  done
  python3 -c 'import json,sys; print(next(m["superserver_port"] for m in json.load(sys.stdin)["members"] if m["status"]=="primary"))' <<<"$status"
}
row() { printf '| %-44s | %12s | %12s | %12s | %14s |\n' "$1" "$2" "$3" "$4" "$5"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); redis $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/')"
la=$(start_lab always); lb=$(start_lab buffered); ra=$(start_redis always); re=$(start_redis everysec)
row "SET requests/s (64 B, random keys)" "lab always" "lab buffered" "redis always" "redis everysec"
row "--------------------------------------------" "------------" "------------" "------------" "--------------"
plain=(-t set -c "$CLIENTS" -d 64 -r 100000 -n "$REQUESTS")
as_a=(--user admin -a "$(password always)"); as_b=(--user admin -a "$(password buffered)")
row "$CLIENTS clients, no pipeline" "$(rps -p "$la" "${as_a[@]}" "${plain[@]}")" "$(rps -p "$lb" "${as_b[@]}" "${plain[@]}")" "$(rps -p "$ra" "${plain[@]}")" "$(rps -p "$re" "${plain[@]}")"
piped=("${plain[@]}" -P 32)
row "$CLIENTS clients, pipeline 32" "$(rps -p "$la" "${as_a[@]}" "${piped[@]}")" "$(rps -p "$lb" "${as_b[@]}" "${piped[@]}")" "$(rps -p "$ra" "${piped[@]}")" "$(rps -p "$re" "${piped[@]}")"
