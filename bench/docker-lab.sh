#!/usr/bin/env bash
# Times the Compose lab with the images already built (images/build.sh), RUNS times, each
# on a fresh project with fresh volumes:
#   - `up -d` until the installer service has exited 0 (`mirrorlab apply` of the
#     phonebook manifest: every member caught up);
#   - failover: with a client committing on mirrora (one connection, one SET after the
#     other), `docker kill` of mirrora's container until (a) mirrorb's /mirror_status
#     answers 200 and (b) a write on mirrorb is accepted (+OK), each polled every 50 ms.
# Prints one line per run, then min / median / max of each measure.
#
#   bench/docker-lab.sh            # RUNS=10 by default
#
# Environment: RUNS, DOCKER_COMPOSE (default `docker compose` where the Docker CLI has it,
# else docker-compose), MIRRORLAB_TAG (default latest).
# The clients speak RESP through bash's /dev/tcp: nothing to install beyond curl.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-10}"
default_compose=docker-compose
if docker compose version >/dev/null 2>&1; then default_compose="docker compose"; fi
read -r -a compose <<<"${DOCKER_COMPOSE:-$default_compose}"
# Docker picks the host ports, so the benchmark never collides with a running lab.
export MIRRORLAB_BIND=127.0.0.1 MIRRORA_SUPERSERVER_PORT= MIRRORA_WEB_PORT= MIRRORB_SUPERSERVER_PORT= MIRRORB_WEB_PORT=
export MIRRORC_SUPERSERVER_PORT= MIRRORC_WEB_PORT=
now_ms() { echo $(($(date +%s%N) / 1000000)); }
host_port() { docker port "$1" "$2/tcp" | head -1 | rev | cut -d: -f1 | rev; }

# One RESP command ("$@") on file descriptor 3; succeeds when the reply is +OK.
resp() {
    local frame="*$#\r\n" a reply
    for a in "$@"; do frame+="\$${#a}\r\n$a\r\n"; done
    printf "$frame" >&3 || return 1
    read -r -t 2 reply <&3 || return 1
    [ "${reply%$'\r'}" = "+OK" ]
}

# Opens a PHONEBOOK session on 127.0.0.1:$1 as file descriptor 3, logged in as the lab's
# admin ($password: the secrets service drew it and printed it once in its log).
session() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    resp AUTH admin "$password" && resp NAMESPACE PHONEBOOK
}

# The committing client: SETs on mirrora until its connection fails (the kill); creates
# the file $2 once its first write is acknowledged.
load() {
    session "$1" || exit 1
    local i=0
    while resp SET "^Load($i)" "x"; do
        [ "$i" = 0 ] && : >"$2"
        i=$((i + 1))
    done
}

# One write on mirrorb, on a new connection each time (the old one may be refused).
write_on() {
    (session "$1" 2>/dev/null && resp SET "^Failover" "$2") 2>/dev/null
}

ups=() statuses=() writes=()
work=$(mktemp -d)
for run in $(seq 1 "$runs"); do
    project="mlbench$$r$run"
    c=("${compose[@]}" -p "$project" -f compose/mirror.yml)
    trap '"${c[@]}" down -v --timeout 5 >/dev/null 2>&1; rm -rf "$work"' EXIT
    start=$(now_ms)
    "${c[@]}" up -d >/dev/null 2>&1
    installer=$("${c[@]}" ps -a -q installer)
    code=$(docker wait "$installer")
    up=$(($(now_ms) - start))
    if [ "$code" != 0 ]; then
        echo "run $run: the installer exited $code" >&2
        docker logs "$installer" >&2
        exit 1
    fi
    password=$(docker logs "$("${c[@]}" ps -a -q secrets)" 2>&1 | sed -n 's/^Admin password[^)]*): //p' | head -1)
    a=$("${c[@]}" ps -a -q mirrora) b=$("${c[@]}" ps -a -q mirrorb)
    a_resp=$(host_port "$a" 1972) b_resp=$(host_port "$b" 1972) b_web=$(host_port "$b" 52773)
    load "$a_resp" "$work/loading$run" &
    loader=$!
    # The kill lands under load: once the client's first write is acknowledged.
    for _ in $(seq 1 200); do
        [ -e "$work/loading$run" ] && break
        sleep 0.05
    done
    if [ ! -e "$work/loading$run" ]; then
        echo "run $run: the client's first write on mirrora was not acknowledged within 10 s" >&2
        exit 1
    fi
    start=$(now_ms)
    docker kill "$a" >/dev/null
    status_ms="" write_ms=""
    while [ -z "$status_ms" ] || [ -z "$write_ms" ]; do
        if [ -z "$status_ms" ] &&
            [ "$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "http://127.0.0.1:$b_web/mirror_status")" = 200 ]; then
            status_ms=$(($(now_ms) - start))
        fi
        if [ -z "$write_ms" ] && write_on "$b_resp" "$run"; then
            write_ms=$(($(now_ms) - start))
        fi
        if [ $(($(now_ms) - start)) -gt 60000 ]; then
            echo "run $run: no failover within 60 s" >&2
            "${c[@]}" logs --tail 30 mirrorb mirrora-agent >&2
            exit 1
        fi
        sleep 0.05
    done
    wait "$loader" 2>/dev/null || true
    echo "run $run: up -> configured ${up} ms; kill -> mirrorb /mirror_status 200 ${status_ms} ms; kill -> write accepted on mirrorb ${write_ms} ms"
    ups+=("$up") statuses+=("$status_ms") writes+=("$write_ms")
    "${c[@]}" down -v --timeout 5 >/dev/null 2>&1
    trap 'rm -rf "$work"' EXIT
done

# min / median (the lower middle for an even count) / max of the arguments, in ms.
summary() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "min %d ms, median %d ms, max %d ms (%d runs)\n", v[1], v[int((NR+1)/2)], v[NR], NR}'; }
echo "up -> configured:                 $(summary "${ups[@]}")"
echo "kill -> mirrorb /mirror_status 200: $(summary "${statuses[@]}")"
echo "kill -> write accepted on mirrorb:  $(summary "${writes[@]}")"
