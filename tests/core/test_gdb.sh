#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/weft-gdb.py: `weft tasks` and `weft bt` on a stopped gdb_target, live and from a core dump.
#
# usage: test_gdb.sh <gdb_target program> <weft-gdb.py>
set -u

prog=${1:?usage: test_gdb.sh PROGRAM WEFT-GDB.PY}
script=${2:?usage: test_gdb.sh PROGRAM WEFT-GDB.PY}

if [ ! -x "$prog" ] || [ ! -r "$script" ]; then
    echo "missing $prog or $script"
    exit 1
fi
prog=$(cd "$(dirname "$prog")" && pwd)/$(basename "$prog")
if ! command -v gdb >/dev/null 2>&1; then
    echo "gdb not found: skipped"
    exit 77
fi
if ! gdb -nx -batch -ex 'python print("py-ok")' 2>/dev/null | grep -q py-ok; then
    echo "gdb has no Python support: skipped"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail=0
check() { # check <output file> <description> <fixed string>
    if grep -qF -- "$3" "$1"; then
        echo "ok: $2"
    else
        echo "FAIL: $2: '$3' not found"
        fail=1
    fi
}

# ---- live process, stopped at the breakpoint
timeout 50 gdb -nx -batch \
    -ex 'set debuginfod enabled off' \
    -ex 'set pagination off' \
    -ex "source $script" \
    -ex 'break gdb_target_break' \
    -ex 'run' \
    -ex 'echo ==== weft tasks\n' \
    -ex 'weft tasks' \
    -ex 'echo ==== weft bt 1\n' \
    -ex 'weft bt 1' \
    -ex 'echo ==== weft bt 0\n' \
    -ex 'weft bt 0' \
    -ex 'kill' \
    "$prog" >"$tmp/live.out" 2>&1
echo "---- gdb (live):"
cat "$tmp/live.out"

if grep -q 'ptrace: Operation not permitted\|Could not trace the inferior\|Cannot create process' "$tmp/live.out"; then
    echo "gdb cannot trace processes here: skipped"
    exit 77
fi

out=$tmp/live.out
check "$out" "breakpoint reached" "gdb_target_break"
check "$out" "tasks listed" "4 live task(s)"
sed -n '/^==== weft tasks/,/^==== weft bt 1/p' "$out" >"$tmp/tasks"
check "$tmp/tasks" "main listed as running" "main"
check "$tmp/tasks" "sleeper listed, sleeping" "gdb_sleeper"
check "$tmp/tasks" "reader listed" "gdb_reader"
check "$tmp/tasks" "joiner listed" "gdb_joiner"
check "$tmp/tasks" "wait: sleep" "sleep"
check "$tmp/tasks" "wait: fd" "readable"
check "$tmp/tasks" "wait: join" "join task 'gdb_sleeper'"
if ! grep -E '^\*  *0 .* main +running' "$tmp/tasks" >/dev/null; then
    echo "FAIL: main is not marked as the running task 0"
    fail=1
fi
sed -n '/^==== weft bt 1/,/^==== weft bt 0/p' "$out" >"$tmp/bt1"
check "$tmp/bt1" "bt 1 names the task" "'gdb_sleeper'"
check "$tmp/bt1" "bt 1 shows the task's own function" "gdb_target_nap"
check "$tmp/bt1" "bt 1 shows the task body" "sleeper"
check "$tmp/bt1" "bt 1 shows the sleep" "weft_sleep"
check "$tmp/bt1" "bt 1 has source lines" "gdb_target.c:"
sed -n '/^==== weft bt 0/,$p' "$out" >"$tmp/bt0"
check "$tmp/bt0" "bt of the running task refers to bt" "running now"

# ---- a core dump written by the kernel at the same point (`gdb_target abort`).
# gdb's own generate-core-file is no use here: it cannot read the stacks'
# mapping (its guard regions fail the read) and leaves the stacks out.
core=
{ (cd "$tmp" && ulimit -c unlimited 2>/dev/null && exec "$prog" abort) >/dev/null 2>&1; } 2>/dev/null
rc=$?
if [ "$rc" -le 128 ]; then
    echo "FAIL: gdb_target abort did not die of a signal (exit status $rc)"
    fail=1
fi
for f in "$tmp"/core "$tmp"/core.*; do
    [ -s "$f" ] && core=$f && break
done
if [ -n "$core" ]; then
    timeout 50 gdb -nx -batch \
        -ex 'set debuginfod enabled off' \
        -ex "source $script" \
        -ex 'echo ==== weft tasks\n' \
        -ex 'weft tasks' \
        -ex 'echo ==== weft bt 1\n' \
        -ex 'weft bt 1' \
        "$prog" "$core" >"$tmp/core.out" 2>&1
    echo "---- gdb (core):"
    cat "$tmp/core.out"
    check "$tmp/core.out" "core: tasks listed" "4 live task(s)"
    check "$tmp/core.out" "core: joiner listed" "join task 'gdb_sleeper'"
    check "$tmp/core.out" "core: bt 1 shows the task's own function" "gdb_target_nap"
else
    echo "note: no core file in $tmp (core_pattern '$(cat /proc/sys/kernel/core_pattern 2>/dev/null)'" \
         "or the core size limit): core dump check skipped"
fi

if [ "$fail" -ne 0 ]; then
    echo "test_gdb: FAILED"
    exit 1
fi
echo "test_gdb: all checks passed"
