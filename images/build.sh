#!/usr/bin/env bash
# Builds the two lab images from this checkout, offline: the static release binaries
# first, then `mirrorlab images` from that same build, which builds both images through
# the Docker API from the Dockerfiles compiled into it (images/*/Dockerfile) and the
# binaries beside it. Images start FROM scratch, so no registry is needed.
#
#   images/build.sh [--no-cache] [TAG]
#
# Tags: the workspace version and `latest` always (mirrorlab/engine:latest, ...), and TAG
# when given. --no-cache rebuilds every layer (the image tests build from clean).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
if [ "${1:-}" = "--no-cache" ]; then
    args+=(--no-cache)
    shift
fi
if [ -n "${1:-}" ]; then
    args+=(--tag "$1")
fi

echo "== cargo build --release --bins"
cargo build --release --bins

# `mirrorlab images` takes the binaries from its own directory (and says which one is
# missing, if any), so a relocated target directory (CARGO_TARGET_DIR) works too.
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"

echo "== $bin/mirrorlab images ${args[*]+"${args[*]}"}"
"$bin/mirrorlab" images ${args[@]+"${args[@]}"}
