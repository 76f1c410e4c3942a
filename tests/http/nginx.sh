#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A throwaway nginx for the weft-http tests (a CTest fixture).
#
#   nginx.sh start <dir> <port>    start it on 127.0.0.1:<port> (and TLS on <port>+1)
#   nginx.sh stop  <dir> <port>    stop it and remove everything it made
#
# Its prefix (config, pid, logs, temp dirs, html) lives in a fresh mode-755
# directory under /tmp, because nginx's workers drop to an unprivileged user
# when started as root and must be able to reach html/ (every directory on
# the path must be searchable).  <dir> only remembers that prefix (file
# `prefix`) and gets a copy of the TLS test CA (`ca.pem`) for the tests.
#
# Served on <port>:
#   /1k, /64k        1024 and 65536 bytes of the repeating bytes 0x21..0x7e
#   /chunked         /1k again, sent chunked (SSI drops the length)
#   /nginx_status    stub_status ("accepts" = TCP connections accepted)
#   /redirect        302 to /1k;  /loop: 302 to /loop
# and on <port>+1 the same over TLS, with a localhost certificate signed by a
# CA made here with the `openssl` command (skipped without it).
# worker_processes 1, keepalive_requests 100000, keepalive_timeout 65s.
#
# Without nginx ($NGINX, /usr/sbin/nginx or nginx on PATH), start prints SKIPPED and
# exits 0 (the tests then skip themselves); a port already in use fails.
set -euo pipefail

usage() { echo "usage: $0 start|stop <dir> <port>" >&2; exit 2; }
[[ $# -eq 3 ]] || usage
CMD="$1" DIR="$2" PORT="$3"
[[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65535 )) || usage
TLS_PORT=$((PORT + 1))

# Whether something accepts connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
    local prefix="" pid
    [[ -f "$DIR/prefix" ]] && prefix="$(cat "$DIR/prefix")"
    if [[ -n "$prefix" && -f "$prefix/nginx.pid" ]]; then
        pid="$(cat "$prefix/nginx.pid")"
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -QUIT "$pid" 2>/dev/null; then
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                sleep 0.2
            fi
        fi
    fi
    case "$prefix" in
        /tmp/weft-http-nginx.*) rm -rf -- "$prefix" ;;
    esac
    rm -rf -- "$DIR"
}

case "$CMD" in
stop)
    stop
    echo "nginx stopped" >&2
    exit 0
    ;;
start) ;;
*) usage ;;
esac

NGINX="${NGINX:-/usr/sbin/nginx}"
[[ -x "$NGINX" ]] || NGINX="$(command -v nginx 2>/dev/null || true)"
if [[ -z "$NGINX" || ! -x "$NGINX" ]]; then
    echo "SKIPPED: nginx is not installed (apt-get install nginx)"
    rm -rf -- "$DIR"
    mkdir -p -- "$DIR"
    echo "no nginx" >"$DIR/skipped"
    exit 0
fi

# A previous run that was not stopped: stop it first.
[[ -f "$DIR/prefix" ]] && stop
for p in "$PORT" "$TLS_PORT"; do
    if port_busy "$p"; then
        echo "nginx.sh: 127.0.0.1:$p is already in use; pick another port" >&2
        exit 1
    fi
done

mkdir -p -- "$DIR"
PREFIX="$(mktemp -d /tmp/weft-http-nginx.XXXXXX)"
echo "$PREFIX" >"$DIR/prefix"
chmod 755 "$PREFIX"
mkdir -p "$PREFIX"/{html,logs,tmp}
chmod 755 "$PREFIX/html"
trap 'echo "nginx.sh: start failed; see above" >&2; stop' ERR

# The bodies: 94 printable bytes 0x21..0x7e, repeated.
pat=""
for i in $(seq 33 126); do pat+="$(printf "\\$(printf %03o "$i")")"; done
big=""
for _ in $(seq 1 700); do big+="$pat"; done
printf '%s' "${big:0:1024}" >"$PREFIX/html/1k"
printf '%s' "${big:0:65536}" >"$PREFIX/html/64k"
chmod 644 "$PREFIX"/html/*
[[ "$(stat -c %s "$PREFIX/html/64k")" == 65536 ]]

# TLS on PORT+1 when the openssl command is there.
TLS_SERVER=""
if command -v openssl >/dev/null 2>&1; then
    (
        cd "$PREFIX"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 \
            -subj "/CN=weft nginx test CA" -keyout ca.key -out ca.pem \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=localhost" -keyout server.key -out server.csr
        printf '%s\n' "basicConstraints=critical,CA:FALSE" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:localhost,IP:127.0.0.1" >leaf.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 3 \
            -extfile leaf.ext -out server.pem
    ) >"$PREFIX/logs/openssl.log" 2>&1
    chmod 644 "$PREFIX"/*.pem "$PREFIX"/*.key
    cp "$PREFIX/ca.pem" "$DIR/ca.pem"
    TLS_SERVER="
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $PREFIX/server.pem;
        ssl_certificate_key $PREFIX/server.key;
        include $PREFIX/locations.conf;
    }"
fi

cat >"$PREFIX/locations.conf" <<CONF
root $PREFIX/html;
location = /1k  { }
location = /64k { }
location = /chunked {
    ssi on;
    ssi_types *;
    alias $PREFIX/html/1k;
}
location = /nginx_status { stub_status; }
location = /redirect { return 302 /1k; }
location = /loop { return 302 /loop; }
CONF

cat >"$PREFIX/nginx.conf" <<CONF
worker_processes 1;
daemon on;
master_process on;
pid $PREFIX/nginx.pid;
error_log $PREFIX/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path $PREFIX/tmp/body;
    proxy_temp_path       $PREFIX/tmp/proxy;
    fastcgi_temp_path     $PREFIX/tmp/fastcgi;
    uwsgi_temp_path       $PREFIX/tmp/uwsgi;
    scgi_temp_path        $PREFIX/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;
        include $PREFIX/locations.conf;
    }$TLS_SERVER
}
CONF
chmod 644 "$PREFIX/nginx.conf" "$PREFIX/locations.conf"

"$NGINX" -p "$PREFIX" -c "$PREFIX/nginx.conf" -e "$PREFIX/logs/error.log" -t -q
"$NGINX" -p "$PREFIX" -c "$PREFIX/nginx.conf" -e "$PREFIX/logs/error.log"
trap - ERR

# Wait until it answers.
for _ in $(seq 1 50); do
    if port_busy "$PORT"; then
        echo "nginx up on 127.0.0.1:$PORT${TLS_SERVER:+ (TLS on $TLS_PORT)}, prefix $PREFIX" >&2
        exit 0
    fi
    sleep 0.1
done
echo "nginx.sh: nginx did not answer on 127.0.0.1:$PORT; its log:" >&2
cat "$PREFIX/logs/error.log" >&2 || true
stop
exit 1
