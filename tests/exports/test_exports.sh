#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A library exports exactly the functions its public headers declare, each
# under a version node of its export map, and the map lists each by name (no
# wildcard): a new public function is exported on purpose, and an internal
# one never leaks.  On a mismatch it says which name to add or remove where.
#   test_exports.sh <gcc> <nm> <library.so> <export map> <include dir> <header>...
# <header> is relative to <include dir> (weft.h, weft/task.h, ...); run it
# from the source dir with relative map and include paths so that its
# messages name the files as a developer opens them.  The
# declarations come from gcc -aux-info, one header alone at a time.
set -uo pipefail
gcc=$1 nm=$2 lib=$3 map=$4 incdir=$5
shift 5
libname=$(basename "$lib")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
say() { echo "$*" >&2; bad=1; }

# name -> "weft/x.h:line" for every extern function the headers declare.
declare -A decl=()
for h in "$@"; do
  printf '#include <%s>\n' "$h" > "$tmp/one.c"
  if ! "$gcc" -std=gnu11 -I"$incdir" -fsyntax-only -aux-info "$tmp/one.aux" "$tmp/one.c" 2> "$tmp/err"; then
    cat "$tmp/err" >&2
    echo "FAIL: $h does not compile alone" >&2
    exit 1
  fi
  # /* <incdir>/weft/task.h:42:NC */ extern weft_task *weft_spawn_named (...);
  while read -r name line; do
    [[ -n "${decl[$name]:-}" ]] || decl[$name]="$h:$line"
  done < <(sed -nE "s|^/\\* ${incdir//./\\.}/${h//./\\.}:([0-9]+):[A-Z]+ \\*/ extern ([^(]*[ *])?([A-Za-z_][A-Za-z_0-9]*) \\(.*|\\3 \\1|p" "$tmp/one.aux")
done

# The map: its version nodes, and the names in its global: lists.
declare -A listed=()
nodes=$(sed -nE 's/^([A-Za-z_][A-Za-z_0-9.]*)[[:space:]]*\{.*/\1/p' "$map")
[[ -n "$nodes" ]] || say "$map: no version node (NODE { global: ...; local: *; };)"
section=""
while read -r tok; do
  case "$tok" in
    global:) section=global ;;
    local:) section=local ;;
    *\;*)
      name=${tok%%;*}
      [[ -z "$name" ]] && continue
      if [[ "$section" == global ]]; then
        if [[ "$name" == *[*?[]* ]]; then
          say "$map: wildcard '$name' in global: (list each exported function by name)"
        else
          listed[$name]=1
        fi
      fi ;;
  esac
done < <(perl -0pe 's{/\*.*?\*/}{ }gs; s/[{}]/ /g' "$map" | tr -s ' \t' '\n' | grep -v '^$')

# The library's dynamic symbols: name and version.
declare -A exported=()
while read -r _ type sym; do
  name=${sym%%@*} ver=${sym#*@}; ver=${ver#@}
  [[ "$sym" == *@* ]] || ver=""
  # the version nodes themselves are absolute symbols
  [[ "$type" == A ]] && grep -qxF "$name" <<< "$nodes" && continue
  exported[$name]=1
  if [[ -z "$ver" ]] || ! grep -qxF "$ver" <<< "$nodes"; then
    say "$libname exports $name ($type) without a version node of $map (got '${ver:-none}')"
  fi
done < <("$nm" -D --defined-only "$lib" | awk 'NF == 3')

for name in $(printf '%s\n' "${!decl[@]}" | sort); do
  where=${decl[$name]}
  [[ -n "${exported[$name]:-}" ]] && continue
  if [[ -n "${listed[$name]:-}" ]]; then
    say "$name: declared in include/${where%:*} (line ${where##*:}) and listed in $map, but $libname does not define it: implement it in this library, or remove the declaration and the map line"
  else
    say "$name: declared in include/${where%:*} (line ${where##*:}) but $libname does not export it: add the line '    $name;' to $map, in the global: list under /* ${where%:*} */"
  fi
done
for name in $(printf '%s\n' "${!exported[@]}" | sort); do
  [[ -n "${decl[$name]:-}" ]] && continue
  how="not listed in $map: it has a wildcard or the library a second map"
  [[ -n "${listed[$name]:-}" ]] && how="listed in $map"
  if [[ "$name" == weft__* ]]; then
    say "$name: $libname exports it ($how), but weft__ names are internal: remove '    $name;' from $map"
  else
    say "$name: $libname exports it ($how) but none of its public headers declares it: declare it with its contract in the header of its concept, or remove '    $name;' from $map"
  fi
done
for name in $(printf '%s\n' "${!listed[@]}" | sort); do
  [[ -n "${decl[$name]:-}" || -n "${exported[$name]:-}" ]] && continue
  say "$name: $map lists it, but no public header declares it and $libname does not define it: remove '    $name;' from $map"
done

(( bad )) && { echo "FAIL: $libname's exports, $map and the headers disagree (see above)" >&2; exit 1; }
echo "exports: $libname exports the ${#decl[@]} functions its headers declare, by name, versioned (${nodes//$'\n'/ })"
