/* SPDX-License-Identifier: MIT */
/* Shared inside the networking layer (part of the core library). */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/core-internal.h"
#include "weft/net.h"

/* Parse a numeric IPv4/IPv6 host ("[::1]" too) into *a with `port`;
 * false when `host` is not numeric. */
bool weft__addr_numeric(const char *host, uint16_t port, weft_addr *a);

/* ------------------------------------------------------------ streams */

typedef struct ssl_st SSL;

struct weft_stream {
    int fd;
    bool is_socket;         /* send/recv with MSG_NOSIGNAL, else read/write */
    bool broken;            /* a TLS failure: only close is left */
    bool drained;           /* the last read emptied the socket: wait before the next */
    char *buf;              /* read buffer: bytes [start, end) are buffered */
    size_t cap, start, end;
    SSL *ssl;               /* NULL until weft_stream_start_tls */
    weft_tls_ctx *tls;      /* a reference, for ALPN callbacks */
    int io_errno;           /* the last socket error seen by the TLS BIO */
    char alpn[48];          /* the protocol ALPN agreed on, or "" */
    char tls_key[160];      /* client: the session cache key (server name|address) */
};

/* TLS transfers for the stream (tls.c): like read(2)/write(2) on a
 * non-blocking fd, but suspending until `deadline`.  Return bytes, 0 at end
 * of stream (read), or a negative error with the message set. */
ssize_t weft__tls_read(weft_stream *s, void *buf, size_t len, int64_t deadline);
ssize_t weft__tls_write(weft_stream *s, const void *buf, size_t len, int64_t deadline);
int weft__tls_shutdown(weft_stream *s, int64_t deadline);
void weft__tls_free(weft_stream *s);

#endif
