#!/bin/bash
# SPDX-License-Identifier: MIT
# Every public function declared in the given headers must be called (or
# named with its parenthesis, for the few that take no argument to get
# wrong) in the bad-argument test program, so a new function cannot be
# added without its NULL and out-of-range checks.
#   check_bad_args.sh <test.c> <header>...
set -eu
test_src=$1
shift
# Declarations start in column 0 with a type; typedefs, macros and
# comments do not count.
names=$(cat "$@" | awk '/^#/ {next} /^[A-Za-z_]/ && !/^typedef/ {print}' |
        grep -oE '\bweft_[a-z0-9_]+\(' | tr -d '(' | sort -u)
[ -n "$names" ] || { echo "no public functions found in $*"; exit 1; }
missing=0
for n in $names; do
    if ! grep -qE "\b$n\(" "$test_src"; then
        echo "not covered by $(basename "$test_src"): $n"
        missing=$((missing + 1))
    fi
done
# Constructors (..._new, weft_spawn_named) must be seen failing: each
# returns NULL with weft_errcode set (RETURNS_NULL checks both).
for n in $(echo "$names" | grep -E '_new$|^weft_spawn_named$'); do
    if ! tr '\n' ' ' <"$test_src" | grep -qE "RETURNS_NULL\([^;]*\b$n\("; then
        echo "constructor never checked with RETURNS_NULL in $(basename "$test_src"): $n"
        missing=$((missing + 1))
    fi
done
echo "$(echo "$names" | wc -l) public functions, $missing not covered"
[ "$missing" -eq 0 ]
