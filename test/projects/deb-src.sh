# Sourced by the project fetchers (test/projects/fetch.sh, bench/fetch-project.sh).
# ensure_deb_src PKG: source packages need a deb-src entry; add Debian's own (bookworm)
# when apt knows no source for PKG.
ensure_deb_src() {
  if [ -n "$(apt-cache showsrc "$1" 2>/dev/null)" ]; then return 0; fi
  cat > /etc/apt/sources.list.d/meshcc-debian-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
}
