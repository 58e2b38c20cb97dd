#!/usr/bin/env bash
# Does the engine stay fast as data grows? Engine vs redis-server side by side in one run:
# for each key count, both servers get the same N keys (engine/examples/load_keys.rs,
# `SET key:<12 digits>` with 64-byte values, pipelined), then redis-benchmark drives GETs of
# uniformly random keys among them (every GET a hit) and we read each server's resident
# memory (VmRSS) after the run. Prints the table recorded in docs/benchmarks.md.
#
#   bench/keyspace-growth.sh                         # 100k, 1M and 10M keys
#   SIZES="100000 1000000" bench/keyspace-growth.sh  # fewer
#   ENGINE_MERGE=file.yaml bench/keyspace-growth.sh  # engine settings (a merge file's config:)
#   SERVERS=engine bench/keyspace-growth.sh          # one server only
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100000 1000000 10000000"}
REQUESTS=${REQUESTS:-2000000}
VALUE_BYTES=${VALUE_BYTES:-64}
SERVERS=${SERVERS:-"engine redis"}

cargo build --release -q -p mirrorlab-engine --bin engine --example load_keys
ENGINE=target/x86_64-unknown-linux-gnu/release/engine
LOAD=target/x86_64-unknown-linux-gnu/release/examples/load_keys
work=$(mktemp -d)
cleanup() { if [ -f "$work/pids" ]; then xargs -r kill <"$work/pids" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
. bench/redis-peer.sh

rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
# The process listening on port $1 (the servers are started in the background of this shell).
start_engine_bg() { # $1 = port, $2 = web port, $3 = dir
  local merge="$work/engine.merge.yaml"
  if [ -n "${ENGINE_MERGE:-}" ]; then cp "$ENGINE_MERGE" "$merge"; else printf 'config:\n  journal:\n    durability: buffered\n' >"$merge"; fi
  "$ENGINE" start --data-dir "$3" --superserver-port "$1" --web-port "$2" --merge "$merge" --log-level warn >/dev/null 2>&1 &
  echo $! >>"$work/pids"; echo $! >"$work/engine.pid"
}
start_redis_bg() { # $1 = port, $2 = dir
  redis-server --port "$1" --dir "$2" --appendonly yes --appendfsync everysec --save '' --daemonize no >/dev/null &
  echo $! >>"$work/pids"; echo $! >"$work/redis.pid"
}
# redis-benchmark --csv -> "rps p99_ms"
get_run() { # $1 = port, $2 = keys
  redis-benchmark -p "$1" -t get -c 16 -P 32 -r "$2" -n "$REQUESTS" --csv 2>/dev/null |
    python3 -c 'import csv,sys; rows=[r for r in csv.reader(sys.stdin) if r and r[0]=="GET"]; r=rows[-1]; print(f"{float(r[1]):.0f} {float(r[6]):.3f}")'
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); redis $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/')"
echo "GET: redis-benchmark -t get -c 16 -P 32 -r <keys> -n $REQUESTS; values $VALUE_BYTES B"
printf '| %10s | %-6s | %9s | %12s | %8s | %9s | %9s |\n' keys server "load s" "GET/s" "p99 ms" "RSS MiB" "B/key"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ -------- ----------- -------------- ---------- ----------- -----------
for n in $SIZES; do
  for server in $SERVERS; do
    port=$(free_port); dir="$work/$server-$n"; mkdir -p "$dir"
    if [ "$server" = engine ]; then start_engine_bg "$port" "$(free_port)" "$dir"; else start_redis_bg "$port" "$dir"; fi
    pid=$(cat "$work/$server.pid"); wait_port "$port"
    base=$(rss_kib "$pid")
    load=$("$LOAD" "$port" "$n" "$VALUE_BYTES" | sed -E 's/.* in ([0-9.]+) s.*/\1/')
    read -r rps p99 < <(get_run "$port" "$n")
    rss=$(rss_kib "$pid")
    printf '| %10s | %-6s | %9s | %12s | %8s | %9s | %9s |\n' "$n" "$server" "$load" "$rps" "$p99" \
      "$((rss / 1024))" "$(python3 -c "print(round(($rss-$base)*1024/$n))")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
  done
done
