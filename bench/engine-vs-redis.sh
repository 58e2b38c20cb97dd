#!/usr/bin/env bash
# Engine vs redis-server, side by side in one run on this machine, with redis-benchmark as
# the load generator for both. Prints the figures recorded in docs/benchmarks.md.
#
#   bench/engine-vs-redis.sh            # full run (about 3 minutes)
#   REQUESTS=200000 bench/engine-vs-redis.sh   # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-2000000}
DURABLE_REQUESTS=${DURABLE_REQUESTS:-100000}
KEYSPACE=${KEYSPACE:-100000}

cargo build --release -q -p mirrorlab-engine --bin engine --example recovery_bench
ENGINE=target/x86_64-unknown-linux-gnu/release/engine
work=$(mktemp -d)
# Servers are started inside $( ), a subshell: their PIDs go to a file the trap reads.
cleanup() { if [ -f "$work/pids" ]; then xargs -r kill <"$work/pids"; fi; rm -rf "$work"; }
trap cleanup EXIT
. bench/redis-peer.sh


start_engine() { # $1 = durability (buffered|always)
  local port web; port=$(free_port); web=$(free_port); mkdir -p "$work/engine-$1"
  printf 'config:\n  journal:\n    durability: %s\n' "$1" > "$work/engine-$1.merge.yaml"
  "$ENGINE" start --data-dir "$work/engine-$1" --superserver-port "$port" --web-port "$web" --merge "$work/engine-$1.merge.yaml" --log-level warn >/dev/null 2>&1 &
  echo $! >>"$work/pids"; wait_port "$port"; echo "$port"
}
row() { printf '| %-48s | %12s | %12s | %6s |\n' "$1" "$2" "$3" "$(python3 -c "print(f'{$2/$3:.2f}')")"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); redis $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/')"
printf '| %-48s | %12s | %12s | %6s |\n' "workload (requests/s)" "engine" "redis" "ratio"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..50})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "--------"

r=$(start_redis everysec); e=$(start_engine buffered)
common=(-c 16 -P 32 -d 64 -r "$KEYSPACE" -n "$REQUESTS")
row "SET, 16 clients, pipeline 32, 64 B, random keys" "$(rps -p "$e" -t set "${common[@]}")" "$(rps -p "$r" -t set "${common[@]}")"
row "GET, 16 clients, pipeline 32, random keys" "$(rps -p "$e" -t get "${common[@]}")" "$(rps -p "$r" -t get "${common[@]}")"

ra=$(start_redis always); ea=$(start_engine always)
# Group commit must scale with the writers waiting on it: the same load at 16, 64, 256.
for clients in 16 64 256; do
  durable=(-c "$clients" -d 64 -r "$KEYSPACE" -n "$DURABLE_REQUESTS")
  row "SET, $clients clients, no pipeline, every write synced" "$(rps -p "$ea" -t set "${durable[@]}")" "$(rps -p "$ra" -t set "${durable[@]}")"
done

echo
target/x86_64-unknown-linux-gnu/release/examples/recovery_bench 2000000
