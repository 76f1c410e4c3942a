#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make install` works for users: install into a temporary prefix, then build
# and run an example through pkg-config and through find_package(weft).
#   test_install.sh <build dir> <source dir>
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib64/pkgconfig"
# shellcheck disable=SC2046
cc -o "$tmp/app-pc" "$src/examples/avoid_blocking_sleep.c" $(pkg-config --cflags --libs weft)
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib64" "$tmp/app-pc" | grep -q "100 tasks"
# shellcheck disable=SC2046
cc -o "$tmp/http-pc" "$src/examples/conn_pool.c" $(pkg-config --cflags --libs weft-http)
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib64" "$tmp/http-pc" | grep -q "one shared session"

# The installed weft.pc, headers and library name one version.
cat > "$tmp/version.c" <<'C'
#include <stdio.h>
#include <weft.h>
int main(void) { printf("%s %s\n", WEFT_VERSION, weft_version_string()); return 0; }
C
# shellcheck disable=SC2046
cc -o "$tmp/version" "$tmp/version.c" $(pkg-config --cflags --libs weft)
v=$(pkg-config --modversion weft)
got=$(LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib64" "$tmp/version")
[[ "$got" == "$v $v" ]] || { echo "version: weft.pc says $v, headers and library say $got" >&2; exit 1; }

mkdir "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(weft REQUIRED)
add_executable(app "$src/examples/avoid_blocking_sleep.c")
target_link_libraries(app weft::weft_static)
add_executable(http "$src/examples/conn_pool.c")
target_link_libraries(http weft::weft-http_static)
CMAKE
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
"$tmp/consumer/build/app" | grep -q "100 tasks"
"$tmp/consumer/build/http" | grep -q "one shared session"
echo "install: pkg-config (weft, weft-http) and find_package(weft) consumers built and ran"
