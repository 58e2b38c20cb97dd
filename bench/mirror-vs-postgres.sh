#!/usr/bin/env bash
# Mirrored durable commits against PostgreSQL with a synchronous standby, in one run.
#
# For each client count: the engine alone and a primary with an active backup (every
# commit synced on both before it is acknowledged: `mirror_bench commits`), then PostgreSQL
# alone and with a synchronous standby (`synchronous_commit = on`, the standby named in
# `synchronous_standby_names`), both driven by pgbench with one small UPDATE per
# transaction. Prints throughput, p99 latency, the lowest 250 ms window of the mirrored run
# against its mean (a stall or a collapse shows there), and the ratios the targets in
# docs/benchmarks.md are stated in.
#
#   bench/mirror-vs-postgres.sh                  # SECONDS=60 CLIENT_COUNTS="16 64"
#   SECONDS_PER_RUN=20 CLIENT_COUNTS=16 bench/mirror-vs-postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-60}
CLIENT_COUNTS=${CLIENT_COUNTS:-"16 64"}

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || ! command -v pgbench >/dev/null; then
  echo "installing postgresql (Debian packages) for the comparison"
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
# PostgreSQL refuses to run as root; its servers run as the `postgres` user the package made.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  for d in standby primary; do [ -d "$work/$d" ] && as_pg "$PG_BIN/pg_ctl" -D "$work/$d" -m immediate stop >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cargo build --release -q -p mirrorlab-tests --example mirror_bench --bins
# The host target directory, or target/<triple>/ when the project's cargo configuration names one.
BENCH=$( (ls -t target/*/release/examples/mirror_bench target/release/examples/mirror_bench 2>/dev/null || true) | head -1)

# --- PostgreSQL: a primary and a streaming standby on loopback --------------------------
primary_port=$(free_port)
standby_port=$(free_port)
mkdir -p "$work/primary" "$work/standby" "$work/run"
chmod 700 "$work/primary" "$work/standby"
if [ "$(id -u)" = 0 ]; then chown postgres "$work/primary" "$work/standby" "$work/run"; fi
as_pg "$PG_BIN/initdb" -D "$work/primary" -U postgres --auth=trust >/dev/null
cat >>"$work/primary/postgresql.conf" <<EOF
port = $primary_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work/run'
fsync = on
synchronous_commit = on
wal_level = replica
max_wal_senders = 4
max_connections = 300
shared_buffers = 256MB
EOF
echo "host replication postgres 127.0.0.1/32 trust" >>"$work/primary/pg_hba.conf"
as_pg "$PG_BIN/pg_ctl" -D "$work/primary" -l "$work/run/primary.log" -w start >/dev/null
as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$work/standby" -R \
  -d "application_name=standby" >/dev/null
sed -i "s/^port = .*/port = $standby_port/" "$work/standby/postgresql.conf"
as_pg "$PG_BIN/pg_ctl" -D "$work/standby" -l "$work/run/standby.log" -w start >/dev/null
psql_p() { psql -h 127.0.0.1 -p "$primary_port" -U postgres -Atqc "$1"; }
pgbench -h 127.0.0.1 -p "$primary_port" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
cat >"$work/update.sql" <<'EOF'
\set aid random(1, 1000000)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
EOF

# Standby synchronous or not (reloaded, then awaited as pg_stat_replication reports it).
set_sync() { # $1 = standby name or ''
  psql_p "ALTER SYSTEM SET synchronous_standby_names = '$1'" && psql_p "SELECT pg_reload_conf()" >/dev/null
  local want=async; [ -n "$1" ] && want=sync
  for _ in $(seq 1 500); do
    [ "$(psql_p "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'")" = "$want" ] && return 0
    sleep 0.02
  done
  echo "the standby never became $want" >&2; exit 1
}
# pgbench for SECONDS_PER_RUN with $1 clients: "tps p99_ms"
pg_run() {
  rm -f "$work"/pglog*
  local tps
  tps=$(cd "$work" && pgbench -h 127.0.0.1 -p "$primary_port" -U postgres -n -c "$1" -j 2 -T "$SECONDS_PER_RUN" \
    -f update.sql -l --log-prefix=pglog postgres 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p')
  # Each log line: client, transaction, latency in microseconds, ...
  local p99
  p99=$(cat "$work"/pglog* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.2f", a[i]/1000}')
  printf '%.0f %s\n' "$tps" "$p99"
}

row() { printf '| %7s | %-34s | %10s | %8s | %10s |\n' "$@"; }
echo
echo "durable commits, ${SECONDS_PER_RUN} s per run (one small write per commit)"
row clients system "commits/s" "p99 ms" "lowest 250 ms"
row ------- ---------------------------------- ---------- -------- ----------
for clients in $CLIENT_COUNTS; do
  "$BENCH" commits "$SECONDS_PER_RUN" "$clients" >"$work/engine-$clients.txt" 2>>"$work/engine.log" ||
    { cat "$work/engine.log" >&2; exit 1; }
  read -r _ e_rate _ e_p99 e_low m_rate _ m_p99 m_low < <(grep '^result' "$work/engine-$clients.txt")
  set_sync ''
  read -r pg_alone pg_alone_p99 < <(pg_run "$clients")
  set_sync standby
  read -r pg_sync pg_sync_p99 < <(pg_run "$clients")
  row "$clients" "engine alone" "$e_rate" "$e_p99" "${e_low}x mean"
  row "$clients" "engine, primary + active backup" "$m_rate" "$m_p99" "${m_low}x mean"
  row "$clients" "PostgreSQL alone" "$pg_alone" "$pg_alone_p99" ""
  row "$clients" "PostgreSQL, synchronous standby" "$pg_sync" "$pg_sync_p99" ""
  python3 - "$clients" "$e_rate" "$e_p99" "$m_rate" "$m_p99" "$m_low" "$pg_sync" <<'EOF'
import sys
c, e, e99, m, m99, low, pg = sys.argv[1], *map(float, sys.argv[2:])
def check(ok): return "met" if ok else "NOT met"
print(f"  {c} clients: mirrored / alone {m / e:.2f}x (target >= 0.7: {check(m / e >= 0.7)}); "
      f"mirrored / PostgreSQL sync {m / pg:.2f}x (target >= 1.0: {check(m / pg >= 1.0)}); "
      f"p99 {m99 / e99:.1f}x alone's (target <= 3: {check(m99 <= 3 * e99)}); "
      f"lowest 250 ms {low:.2f}x the mean (target >= 0.5: {check(low >= 0.5)})")
EOF
  sed -n '/where a mirrored commit/,/^result/p' "$work/engine-$clients.txt" | grep -v '^result'
done
