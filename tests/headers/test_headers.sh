#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every public header compiles alone, strictly: as the first and only include
# of a C11 and a C17 translation unit (no _GNU_SOURCE, -pedantic) and of a
# C++17 one, warnings as errors.  A header that needs another one first, a
# POSIX type that a plain -std=c11 does not declare, or C that C++ rejects
# fails here, naming the header and the mode.
#   test_headers.sh <C compiler> <C++ compiler or ""> <include dir>...
# The headers are the include dirs' weft.h and weft/*.h (the build's include
# dir holds the generated weft/version.h).  Exit 77 (skipped) only for the
# C++ half when no C++ compiler is given, after the C half passed.
set -uo pipefail
cc=$1 cxx=$2
shift 2
incs=() headers=()
for d in "$@"; do
  incs+=("-I$d")
  for h in "$d"/weft.h "$d"/weft/*.h; do
    [[ -f "$h" ]] && headers+=("${h#"$d"/}")
  done
done
[[ ${#headers[@]} -gt 0 ]] || { echo "no public headers found in $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check <header> <label> <compiler and flags...>
  local h=$1 label=$2
  shift 2
  printf '#include <%s>\n' "$h" > "$tmp/t.src"
  if ! "$@" "${incs[@]}" -fsyntax-only "$tmp/t.src" > "$tmp/out" 2>&1; then
    echo "FAIL: <$h> alone under $label:" >&2
    sed 's/^/    /' "$tmp/out" >&2
    fail=1
  fi
}
for h in "${headers[@]}"; do
  for std in c11 c17; do
    check "$h" "-std=$std" "$cc" -x c -std=$std -Wall -Wextra -pedantic -Werror
  done
  if [[ -n "$cxx" ]]; then
    check "$h" "C++17" "$cxx" -x c++ -std=c++17 -Wall -Wextra -pedantic -Werror
  fi
done
(( fail )) && exit 1
echo "headers: ${#headers[@]} public headers compile alone as C11 and C17${cxx:+ and C++17}"
if [[ -z "$cxx" ]]; then
  echo "SKIPPED: the C++17 half (no C++ compiler; tools/deps test installs g++)"
  exit 77
fi
