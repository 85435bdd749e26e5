# Sourced by the project fetchers (test/projects/fetch.sh, bench/fetch-project.sh).
#
# ensure_deb_src PKG: source packages need a deb-src entry. When apt knows no source for PKG,
# write the deb-src twin of this machine's own distribution archive entry (the `deb` entry for
# its release's suite with the main component: same URIs, suite, components and keyring), so
# the sources come from whichever mirror the machine already uses and no package host is
# named in this repository.
ensure_deb_src() {
  if [ -n "$(apt-cache showsrc "$1" 2>/dev/null)" ]; then return 0; fi
  local twin
  if ! twin=$(deb_src_twin); then
    echo "deb-src.sh: found no deb entry for this release's suite with the main component in apt's sources" >&2
    return 1
  fi
  printf '%s\n' "$twin" > /etc/apt/sources.list.d/meshcc-debian-src.sources
  apt-get update -qq
}

# deb_src_twin: prints, in deb822 form, the deb-src twin of the first `deb` entry of apt's sources
# whose suite is this release's codename and whose components include main; fails if none is.
deb_src_twin() {
  local codename f etc=${APT_ETC:-/etc/apt}
  codename=$(. "${OS_RELEASE:-/etc/os-release}" && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || return 1
  local one_line=() deb822=()
  [ -f "$etc/sources.list" ] && one_line+=("$etc/sources.list")
  for f in "$etc"/sources.list.d/*.list; do [ -f "$f" ] && one_line+=("$f"); done
  for f in "$etc"/sources.list.d/*.sources; do [ -f "$f" ] && deb822+=("$f"); done
  { [ ${#one_line[@]} -gt 0 ] && awk -v want="$codename" "$DEB_SRC_ONE_LINE_AWK" "${one_line[@]}"; } ||
    { [ ${#deb822[@]} -gt 0 ] && awk -v want="$codename" "$DEB_SRC_DEB822_AWK" "${deb822[@]}"; }
}

# Shared by both readers: prints the twin of an entry and ends awk with success. mawk (Debian's
# default awk) has no functions beyond POSIX, so both programs stay within them.
DEB_SRC_EMIT_AWK='
function has_word(list, word,   n, i, parts) {
  n = split(list, parts, /[ \t\n]+/)
  for (i = 1; i <= n; i++) if (parts[i] == word) return 1
  return 0
}
function emit(uris, components, signed_by) {
  print "Types: deb-src"
  print "URIs: " uris
  print "Suites: " want
  print "Components: " components
  if (signed_by != "") print "Signed-By: " signed_by
  found = 1
  exit 0
}
'

# One-line form: `deb [option=value ...] URI SUITE COMPONENT...`, # starting a comment.
DEB_SRC_ONE_LINE_AWK="$DEB_SRC_EMIT_AWK"'
{
  line = $0
  sub(/#.*/, "", line)
  if (line !~ /^[ \t]*deb[ \t]/) next
  sub(/^[ \t]*deb[ \t]+/, "", line)
  signed_by = ""
  if (line ~ /^\[/) {
    options = substr(line, 2, index(line, "]") - 2)
    line = substr(line, index(line, "]") + 1)
    n = split(options, opts, /[ \t]+/)
    for (i = 1; i <= n; i++) if (opts[i] ~ /^signed-by=/) signed_by = substr(opts[i], 11)
  }
  n = split(line, words, /[ \t]+/)
  first = (words[1] == "") ? 2 : 1
  if (n < first + 2 || words[first + 1] != want) next
  components = ""
  for (i = first + 2; i <= n; i++) if (words[i] != "") components = components (components == "" ? "" : " ") words[i]
  if (has_word(components, "main")) emit(words[first], components, signed_by)
}
END { if (!found) exit 1 }
'

# deb822 form: stanzas of `Field: value` separated by blank lines; a line starting with a space
# continues the field before it (an inline Signed-By key spans many); # starts a comment line.
DEB_SRC_DEB822_AWK="$DEB_SRC_EMIT_AWK"'
function consider() {
  if (has_word(f["types"], "deb") && has_word(f["suites"], want) && has_word(f["components"], "main") &&
      tolower(f["enabled"]) != "no")
    emit(f["uris"], f["components"], f["signed-by"])
  split("", f)
  key = ""
}
FNR == 1 { consider() }
/^#/ { next }
/^[ \t]*$/ { consider(); next }
/^[ \t]/ { if (key != "") f[key] = f[key] "\n" $0; next }
{
  key = tolower(substr($0, 1, index($0, ":") - 1))
  value = substr($0, index($0, ":") + 1)
  sub(/^[ \t]+/, "", value)
  sub(/[ \t]+$/, "", value)
  f[key] = value
}
END {
  if (!found) consider()
  if (!found) exit 1
}
'
