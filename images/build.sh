#!/usr/bin/env bash
# Builds the two lab images from this checkout, offline: the static release binaries
# first, then `docker build` of images that start FROM scratch.
#
#   images/build.sh [--no-cache] [TAG]   # default tag: dev -> mirrorlab/engine:dev, mirrorlab/arbiter:dev
#
# --no-cache rebuilds every layer (the image tests build from clean).
# Environment: DOCKER (the docker command, default `docker`).
set -euo pipefail
cd "$(dirname "$0")/.."
build_flags=()
if [ "${1:-}" = "--no-cache" ]; then
    build_flags+=(--no-cache)
    shift
fi
tag="${1:-dev}"
docker="${DOCKER:-docker}"

echo "== cargo build --release --bins"
cargo build --release --bins

# The Dockerfiles read the binaries from the target directory of the build context; a
# relocated target directory (CARGO_TARGET_DIR) is not in the context.
bin=target/x86_64-unknown-linux-gnu/release
for b in engine agent mirrorlab-init mirrorlab; do
    if [ ! -x "$bin/$b" ]; then
        echo "images/build.sh: $bin/$b is missing; is CARGO_TARGET_DIR set elsewhere?" >&2
        exit 1
    fi
done

echo "== docker build mirrorlab/engine:$tag"
"$docker" build ${build_flags[@]+"${build_flags[@]}"} -f images/engine/Dockerfile -t "mirrorlab/engine:$tag" .
echo "== docker build mirrorlab/arbiter:$tag"
"$docker" build ${build_flags[@]+"${build_flags[@]}"} -f images/arbiter/Dockerfile -t "mirrorlab/arbiter:$tag" .
"$docker" image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^mirrorlab/(engine|arbiter):$tag " || true
