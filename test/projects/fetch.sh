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

if [ ! -f zlib/zlib.h ]; then
  ensure_deb_src zlib
  rm -rf zlib-dl && mkdir zlib-dl
  (cd zlib-dl && apt-get source --download-only zlib >/dev/null 2>&1)
  rm -rf zlib && mkdir zlib
  tar -xf zlib-dl/zlib_*.orig.tar.* -C zlib --strip-components=1
  rm -rf zlib-dl
fi

if [ ! -f libogg/configure ]; then
  ensure_deb_src libogg
  rm -rf libogg-dl && mkdir libogg-dl
  (cd libogg-dl && apt-get source --download-only libogg >/dev/null 2>&1)
  rm -rf libogg && mkdir libogg
  tar -xf libogg-dl/libogg_*.orig.tar.* -C libogg --strip-components=1
  rm -rf libogg-dl
fi

if [ ! -f pixman/meson.build ]; then
  ensure_deb_src pixman
  rm -rf pixman-dl && mkdir pixman-dl
  # only the upstream tarball is used (the mirror may lack the Debian diff)
  (cd pixman-dl && apt-get source --download-only pixman >/dev/null 2>&1) || true
  rm -rf pixman && mkdir pixman
  tar -xf pixman-dl/pixman_*.orig.tar.* -C pixman --strip-components=1
  rm -rf pixman-dl
fi

if [ ! -f googletest/CMakeLists.txt ]; then
  rm -rf gtest-dl && mkdir gtest-dl
  (cd gtest-dl && apt-get download googletest >/dev/null 2>&1)
  dpkg-deb -x gtest-dl/googletest_*.deb gtest-dl/root
  rm -rf googletest && mv gtest-dl/root/usr/src/googletest googletest
  rm -rf gtest-dl
fi
echo "$dest"
