#!/usr/bin/env bash
# ECP: an application server in front of a data server, side by side with the data server
# itself in one run, redis-benchmark as the load for both. Prints the figures recorded in
# docs/benchmarks.md ("ECP").
#
#   bench/ecp.sh                      # full run (about 2 minutes)
#   REQUESTS=20000 bench/ecp.sh       # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-200000}
DURABLE_REQUESTS=${DURABLE_REQUESTS:-50000}
KEYSPACE=${KEYSPACE:-100000}

cargo build --release -q -p mirrorlab-engine --bin engine
ENGINE=target/x86_64-unknown-linux-gnu/release/engine
work=$(mktemp -d)
cleanup() { if [ -f "$work/pids" ]; then xargs -r kill <"$work/pids"; fi; rm -rf "$work"; }
trap cleanup EXIT
. bench/redis-peer.sh

start() { # $1 = name, $2 = merge file text; prints the superserver port
  local port web; port=$(free_port); web=$(free_port); mkdir -p "$work/$1"
  printf '%b' "$2" > "$work/$1.merge.yaml"
  "$ENGINE" start --data-dir "$work/$1" --superserver-port "$port" --web-port "$web" --merge "$work/$1.merge.yaml" --log-level warn >/dev/null 2>&1 &
  echo $! >>"$work/pids"; wait_port "$port"; echo "$port"
}
row() { printf '| %-52s | %12s | %12s | %6s |\n' "$1" "$2" "$3" "$(python3 -c "print(f'{$2/$3:.2f}')")"; }

# The data server writes every change durably; the application server maps redis-benchmark's
# keys (^key(n)) in its USER namespace to the data server's USER database.
ds=$(start ds 'config:\n  journal:\n    durability: always\n')
app=$(start app "actions:\n  create_ecp_server:\n    - { name: DS, address: \"127.0.0.1:$ds\", mirror: false }\n  create_database:\n    - { name: REMOTE, server: DS, path: USER }\n  create_mapping:\n    - { namespace: USER, global: \"key*\", database: REMOTE }\n")
for _ in $(seq 1 500); do
  redis-cli -p "$app" GET "key:1" >/dev/null 2>&1 && break; sleep 0.02
done

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
printf '| %-52s | %12s | %12s | %6s |\n' "workload (requests/s)" "app server" "data server" "ratio"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "--------"
# Warm: every key of the keyspace exists.
redis-benchmark -p "$ds" -t set -c 16 -P 32 -d 64 -r "$KEYSPACE" -n "$((KEYSPACE * 4))" -q >/dev/null
get=(-t get -c 16 -P 32 -r "$KEYSPACE" -n "$REQUESTS")
row "GET, 16 clients, pipeline 32, 100k warmed keys" "$(rps -p "$app" "${get[@]}")" "$(rps -p "$ds" "${get[@]}")"
get1=(-t get -c 16 -r "$KEYSPACE" -n "$REQUESTS")
row "GET, 16 clients, no pipeline" "$(rps -p "$app" "${get1[@]}")" "$(rps -p "$ds" "${get1[@]}")"
set=(-t set -c 16 -d 64 -r "$KEYSPACE" -n "$DURABLE_REQUESTS")
row "SET, 16 clients, no pipeline, durable (fsync)" "$(rps -p "$app" "${set[@]}")" "$(rps -p "$ds" "${set[@]}")"
