#!/usr/bin/env bash
# Builds the agent's image from the npm package, installed as a user installs it: builds and packs
# this checkout (`npm run build`, `npm pack`; or takes the tarball in MESHCC_TARBALL), installs
# that with `npm install -g` into a build context of its own, and builds Containerfile there with
# docker (CONTAINER_ENGINE=podman for podman) on BASE (default node:20-bookworm-slim; any
# Debian image with Node at /usr/local/bin/node). Its arguments go to the engine's build:
#   deploy/container/build.sh -t your.registry/meshcc:1
#   BASE=node:24-bookworm-slim deploy/container/build.sh -t meshcc:node24
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
engine=${CONTAINER_ENGINE:-docker}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/context" "$work/pack"

tarball=${MESHCC_TARBALL:-}
if [ -z "$tarball" ]; then
  (cd "$repo" && npm run build >&2)
  name=$(cd "$repo" && npm pack --ignore-scripts --json --pack-destination "$work/pack" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].filename))')
  tarball="$work/pack/$name"
fi
npm install -g --prefix "$work/prefix" --prefer-offline --no-audit --no-fund --loglevel=error "$tarball" >/dev/null
mv "$work/prefix/lib/node_modules/meshcc" "$work/context/meshcc"
# What Node never loads: the dependencies' TypeScript sources, declarations and source maps
# (about half of their 80 MB).
find "$work/context/meshcc/node_modules" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \) -delete
cp "$here/Containerfile" "$work/context/Containerfile"
options=()
[ -n "${BASE:-}" ] && options+=(--build-arg "BASE=$BASE")
# podman writes OCI images by default, which have no HEALTHCHECK
[ "$(basename "$engine")" = podman ] && options+=(--format docker)
"$engine" build -f "$work/context/Containerfile" "${options[@]}" "$@" "$work/context"
