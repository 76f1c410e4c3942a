#!/bin/sh
# SPDX-License-Identifier: MIT
# Fuzz with libFuzzer: the HTTP/1.1 parser for [parser-seconds] (default 60),
# then the whole HTTP client for [client-seconds] (default 60):
#   fuzz/run.sh [parser-seconds] [client-seconds]
# A time of 0 skips that fuzzer.
# Builds build-fuzz/fuzz_http_parser (clang, ASan+UBSan) and
# build-fuzz/fuzz_http_client (weft and weft-http built with clang, ASan+UBSan
# and libFuzzer's coverage in build-fuzz/lib), copies each seed corpus to
# build-fuzz/corpus/<name> (fuzz/corpus is never written) and fails on any
# crash, leak, sanitizer report or invariant failure.
# Needs: clang, libclang_rt.fuzzer (Debian: clang-14, libclang-rt-14-dev),
# cmake and OpenSSL's headers.
set -eu
psecs=${1:-60}
csecs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build-fuzz
CC=${CC:-clang}
mkdir -p "$out/corpus/http_parser" "$out/corpus/http_client" "$out/artifacts"

# Run one fuzzer for $2 seconds on its working corpus; the seed corpus comes
# after the working one, so new finds land in the first.
fuzz() {
    name=$1 secs=$2
    shift 2
    cp "$root"/fuzz/corpus/$name/* "$out/corpus/$name/"
    (cd "$out" && ./fuzz_$name -max_total_time="$secs" -artifact_prefix="$out/artifacts/" \
        -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "$@" "$out/corpus/$name")
}

if [ "$psecs" != 0 ]; then
    "$CC" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Wall -Wextra -Werror -I "$root/include" \
        "$root/src/http/parser.c" "$root/fuzz/fuzz_http_parser.c" -o "$out/fuzz_http_parser"
    fuzz http_parser "$psecs" -dict="$root/fuzz/http.dict"
fi

if [ "$csecs" != 0 ]; then
    # The libraries with the sanitizers weft supports (its stack switches
    # are annotated for ASan) and libFuzzer's coverage, without its main.
    cmake -S "$root" -B "$out/lib" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DWEFT_SANITIZE=address,undefined -DWEFT_TESTS=OFF -DWEFT_BENCH=OFF \
        -DWEFT_EXAMPLES=OFF -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
    cmake --build "$out/lib" -j"${JOBS:-2}" --target weft_static weft-http_static >/dev/null
    "$CC" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Wall -Wextra -Werror -I "$root/include" "$root/fuzz/fuzz_http_client.c" \
        "$out/lib/libweft-http.a" "$out/lib/libweft.a" -lssl -lcrypto -lpthread \
        -o "$out/fuzz_http_client"
    cat "$root/fuzz/http.dict" "$root/fuzz/http_client.dict" >"$out/http_client.dict"
    fuzz http_client "$csecs" -dict="$out/http_client.dict"
fi
