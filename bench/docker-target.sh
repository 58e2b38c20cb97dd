#!/usr/bin/env bash
# Times the installer's docker target with the images already built (images/build.sh),
# RUNS times, each on a fresh lab (its own name, network and volumes), `down --wipe` after:
#   - `mirrorlab up` then `verify` of manifests/phonebook.yaml, to a verified lab;
#   - failover: `mirrorlab kill mirrora` (SIGKILL of the primary's engine container; its
#     agent container stays up) until mirrorb's /mirror_status answers 200, polled every
#     50 ms. The time includes the `mirrorlab kill` command itself.
# Prints one line per run, then min / median / max of each measure.
#
#   bench/docker-target.sh          # RUNS=5 by default
#
# Environment: RUNS, MIRRORLAB_IMAGE_TAG (the images' tag, default latest).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5}"
cargo build --release -q -p mirrorlab-installer --bins
bin=target/x86_64-unknown-linux-gnu/release/mirrorlab
work=$(mktemp -d)
ml() { "$bin" --lab-dir "$work/labs" "$@"; }
cleanup() {
    ml down --wipe >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }
host_port() { docker port "$1" "$2/tcp" | head -1 | rev | cut -d: -f1 | rev; }

ups=() failovers=()
for run in $(seq 1 "$runs"); do
    lab="mlbench$$r$run"
    sed "s/^lab: phonebook\$/lab: $lab/" manifests/phonebook.yaml >"$work/pb.yaml"
    start=$(now_ms)
    ml up "$work/pb.yaml" --target docker >/dev/null 2>"$work/up.err" || {
        cat "$work/up.err" >&2
        exit 1
    }
    ml verify "$work/pb.yaml" --target docker >/dev/null
    up=$(($(now_ms) - start))
    b_web=$(host_port "mirrorlab-$lab-mirrorb" 52773)
    start=$(now_ms)
    ml kill mirrora >/dev/null
    failover=""
    while [ -z "$failover" ]; do
        if [ "$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "http://127.0.0.1:$b_web/mirror_status")" = 200 ]; then
            failover=$(($(now_ms) - start))
        elif [ $(($(now_ms) - start)) -gt 60000 ]; then
            echo "run $run: no failover within 60 s" >&2
            docker logs --tail 30 "mirrorlab-$lab-mirrorb" >&2
            exit 1
        else
            sleep 0.05
        fi
    done
    echo "run $run: up + verify ${up} ms; mirrorlab kill mirrora -> mirrorb /mirror_status 200 ${failover} ms"
    ups+=("$up") failovers+=("$failover")
    ml down --wipe >/dev/null
done

# min / median (the lower middle for an even count) / max of the arguments, in ms.
summary() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "min %d ms, median %d ms, max %d ms (%d runs)\n", v[1], v[int((NR+1)/2)], v[NR], NR}'; }
echo "up + verify:                              $(summary "${ups[@]}")"
echo "kill mirrora -> mirrorb /mirror_status 200: $(summary "${failovers[@]}")"
