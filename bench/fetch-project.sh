#!/usr/bin/env bash
# Fetches a real project for bench/mesh-build from Debian's archive (bookworm) into
# $MESHCC_PROJECTS/NAME (default .cache/projects/NAME). Idempotent: a finished fetch leaves
# .meshcc-fetched in the tree and is not repeated. Prints progress on stderr, the tree on stdout.
#
#   bench/fetch-project.sh git    git 2.39 (the upstream tarball of Debian's source package):
#                                 plain Makefile, no configure step; 496 C compile units, each
#                                 reading ~300 headers (115 KB of gzip'd -E output for
#                                 builtin/commit.c); about 1.6 min wall, 3 CPU-min at -j2 on 2 cores
#   bench/fetch-project.sh zlib   zlib 1.2.13: ./configure + make, 30 units (a quick smoke run)
#   bench/fetch-project.sh linux  Linux 6.1 (Debian's upstream tarball, 137 MB): make tinyconfig,
#                                 ~460 units reading hundreds of headers each; about 2.5 min at -j2
#
# Build dependencies (installed with apt-get when missing): make, gcc, for git zlib1g-dev, for
# linux flex, bison and bc.
# The bench builds git with NO_CURL NO_OPENSSL NO_EXPAT NO_GETTEXT NO_TCLTK NO_PERL NO_PYTHON,
# so none of git's optional libraries is needed.
set -euo pipefail
source "$(dirname "$0")/../test/projects/deb-src.sh"
name=${1:-git}
dest=${MESHCC_PROJECTS:-$(cd "$(dirname "$0")/.." && pwd)/.cache/projects}
say() { echo "fetch-project: $*" >&2; }

case "$name" in
  git) pkg=git; debs=(make gcc zlib1g-dev); need=(/usr/bin/make /usr/bin/gcc /usr/include/zlib.h) ;;
  zlib) pkg=zlib; debs=(make gcc); need=(/usr/bin/make /usr/bin/gcc) ;;
  linux) pkg=linux; debs=(make gcc flex bison bc); need=(/usr/bin/make /usr/bin/gcc /usr/bin/flex /usr/bin/bison /usr/bin/bc) ;;
  *) say "unknown project '$name' (known: git, zlib, linux)"; exit 2 ;;
esac

missing=0
for f in "${need[@]}"; do [ -e "$f" ] || missing=1; done
if [ "$missing" = 1 ]; then
  say "installing build dependencies: ${debs[*]}"
  apt-get install -y -qq "${debs[@]}" >&2
fi

mkdir -p "$dest"
tree="$dest/$name"
# zlib may already be there from test/projects/fetch.sh, which marks nothing: its zlib.h suffices.
if [ -f "$tree/.meshcc-fetched" ] || { [ "$name" = zlib ] && [ -f "$tree/zlib.h" ]; }; then
  say "$name already in $tree"
  echo "$tree"
  exit 0
fi

ensure_deb_src "$pkg"

dl="$dest/$name-dl"
rm -rf "$dl" && mkdir -p "$dl"
say "downloading Debian's source package '$pkg'"
(cd "$dl" && apt-get source --download-only "$pkg" >/dev/null 2>&1)
orig=$(ls "$dl"/"${pkg}"_*.orig.tar.* | head -n1)
say "extracting $(basename "$orig")"
rm -rf "$tree" && mkdir -p "$tree"
tar -xf "$orig" -C "$tree" --strip-components=1
rm -rf "$dl"
touch "$tree/.meshcc-fetched"
say "$name ready in $tree"
echo "$tree"
