#!/usr/bin/env bash
# Times the Compose lab with the images already built (images/build.sh):
#   - `docker-compose up -d` until the configure service has exited 0 (a configured,
#     verified mirror), RUNS times, each on a fresh project and fresh volumes;
#   - failover: `docker kill` of the primary container until mirrorb's /mirror_status
#     answers 200 (curl polling every 50 ms), once per run.
#
#   bench/docker-lab.sh            # RUNS=5 by default
#
# Environment: RUNS, DOCKER_COMPOSE (default docker-compose), MIRRORLAB_TAG (default dev).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5}"
compose=(${DOCKER_COMPOSE:-docker-compose})
# Docker picks the host ports, so the benchmark never collides with a running lab.
export MIRRORLAB_BIND=127.0.0.1 MIRRORA_SUPERSERVER_PORT= MIRRORA_WEB_PORT= MIRRORB_SUPERSERVER_PORT= MIRRORB_WEB_PORT=
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

for run in $(seq 1 "$runs"); do
    project="mlbench$$r$run"
    c=("${compose[@]}" -p "$project" -f compose/mirror.yml)
    trap '"${c[@]}" down -v --timeout 5 >/dev/null 2>&1' EXIT
    start=$(now_ms)
    "${c[@]}" up -d >/dev/null 2>&1
    code=$(docker wait "$("${c[@]}" ps -q configure)")
    configured=$(( $(now_ms) - start ))
    if [ "$code" != 0 ]; then
        echo "run $run: configure exited $code" >&2
        docker logs "$("${c[@]}" ps -q configure)" >&2
        exit 1
    fi
    b_web=$(docker port "$("${c[@]}" ps -q mirrorb)" 52773/tcp | head -1 | cut -d: -f2)
    start=$(now_ms)
    docker kill "$("${c[@]}" ps -q mirrora)" >/dev/null
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$b_web/mirror_status")" = 200 ]; do
        sleep 0.05
    done
    failover=$(( $(now_ms) - start ))
    echo "run $run: up -> configured ${configured} ms; kill primary -> mirrorb /mirror_status 200 ${failover} ms"
    "${c[@]}" down -v --timeout 5 >/dev/null 2>&1
    trap - EXIT
done
