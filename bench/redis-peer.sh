# Sourced by the benchmarks that compare with redis-server: installs the Redis packages
# when missing and defines the helpers. Needs $work (a scratch directory whose `pids`
# file the caller's cleanup kills).

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "installing redis-server and redis-tools (Debian packages) for the comparison"
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Polls (a bounded number of times) until the server on $1 answers PING.
wait_port() { for _ in $(seq 1 500); do redis-cli -p "$1" PING >/dev/null 2>&1 && return 0; sleep 0.02; done; echo "port $1 never answered" >&2; exit 1; }
start_redis() { # $1 = appendfsync policy; prints the port
  local port; port=$(free_port); mkdir -p "$work/redis-$1"
  redis-server --port "$port" --dir "$work/redis-$1" --appendonly yes --appendfsync "$1" --save '' --daemonize no >/dev/null &
  echo $! >>"$work/pids"; wait_port "$port"; echo "$port"
}
# redis-benchmark -q output ("SET: 123456.79 requests per second, p50=...") -> 123456.79
rps() { redis-benchmark "$@" -q | tr '\r' '\n' | grep 'requests per second' | tail -1 | sed -E 's/^[A-Z]+: ([0-9.]+) requests per second.*/\1/'; }
