#!/bin/sh
# SPDX-License-Identifier: MIT
# Fuzz the HTTP/1.1 parser with libFuzzer for [seconds] (default 60):
#   fuzz/run.sh [seconds]
# Builds build-fuzz/fuzz_http_parser (clang, ASan+UBSan), copies the seed
# corpus to build-fuzz/corpus/http_parser (fuzz/corpus is never written) and
# fails on any crash, leak, sanitizer report or invariant failure.
# Needs: clang and libclang_rt.fuzzer (Debian: clang-14, libclang-rt-14-dev).
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build-fuzz
CC=${CC:-clang}
mkdir -p "$out/corpus/http_parser" "$out/artifacts"
"$CC" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Werror -I "$root/include" \
    "$root/src/http/parser.c" "$root/fuzz/fuzz_http_parser.c" -o "$out/fuzz_http_parser"
cp "$root"/fuzz/corpus/http_parser/* "$out/corpus/http_parser/"
cd "$out"
# The seed corpus comes after the working one: new finds land in the first.
exec ./fuzz_http_parser -max_total_time="$secs" -dict="$root/fuzz/http.dict" \
    -artifact_prefix="$out/artifacts/" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    "$out/corpus/http_parser"
