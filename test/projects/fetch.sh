#!/usr/bin/env bash
# Fetches the real C and C++ projects the tests build, from Debian's archive, into
# $MESHCC_PROJECTS (default .cache/projects): zlib's source package (C, make), libogg's
# (C, autotools), pixman's (C, meson) and googletest's source tree from its binary package
# (C++, CMake). Idempotent.
set -euo pipefail
source "$(dirname "$0")/deb-src.sh"
dest=${MESHCC_PROJECTS:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/projects}
mkdir -p "$dest"
cd "$dest"

# fetch_upstream PKG: the upstream tarball of Debian's source package PKG, unpacked into PKG/
# (only the tarball is used, so a mirror without the Debian diff does not matter).
fetch_upstream() {
  local pkg=$1
  ensure_deb_src "$pkg"
  rm -rf "$pkg-dl" && mkdir "$pkg-dl"
  (cd "$pkg-dl" && apt-get source --download-only "$pkg" >/dev/null 2>&1) || true
  rm -rf "$pkg" && mkdir "$pkg"
  tar -xf "$pkg-dl/${pkg}"_*.orig.tar.* -C "$pkg" --strip-components=1
  rm -rf "$pkg-dl"
}

[ -f zlib/zlib.h ] || fetch_upstream zlib
[ -f libogg/configure ] || fetch_upstream libogg
[ -f pixman/meson.build ] || fetch_upstream pixman

if [ ! -f googletest/CMakeLists.txt ]; then
  rm -rf gtest-dl && mkdir gtest-dl
  (cd gtest-dl && apt-get download googletest >/dev/null 2>&1)
  dpkg-deb -x gtest-dl/googletest_*.deb gtest-dl/root
  rm -rf googletest && mv gtest-dl/root/usr/src/googletest googletest
  rm -rf gtest-dl
fi
echo "$dest"
