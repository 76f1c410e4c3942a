/* SPDX-License-Identifier: MIT */
/*
 * Networking: name resolution, TCP and Unix sockets, a buffered stream with
 * deadlines on every call (asyncio's StreamReader/StreamWriter), and TLS
 * through OpenSSL on the same stream.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ addresses */

/* One socket address (IPv4, IPv6 or Unix). */
typedef struct weft_addr {
    struct sockaddr_storage storage;
    socklen_t len;
} weft_addr;

/*
 * Resolve `host` (a name or a numeric IPv4/IPv6 address) and `port` into at
 * most `max` addresses for TCP, IPv6 and IPv4 interleaved in the resolver's
 * order of preference.  `family` is AF_UNSPEC, AF_INET or AF_INET6.
 * Numeric hosts are answered at once; names go through getaddrinfo on the
 * default thread pool (weft_to_thread) and their answers are kept in a
 * process-wide cache for weft_resolve_cache_ttl_ms (10 s by default,
 * aiohttp's ttl_dns_cache).  Returns the number of addresses (>= 1), or
 * WEFT_ERESOLVE (weft_errmsg names the host and the resolver's reason),
 * -EINVAL, -ETIMEDOUT at `deadline` (the lookup thread finishes on its own),
 * -ECANCELED, WEFT_ENOTASK.  Suspends (only for names not in the cache).
 */
int weft_resolve(const char *host, uint16_t port, int family, weft_addr *out, size_t max,
                 int64_t deadline);

/* Set the TTL of the resolver cache in milliseconds (0 or negative disables
 * caching; entries already cached expire by the new TTL).  Thread-safe. */
void weft_resolve_cache_ttl_ms(int64_t ttl_ms);

/* Empty the resolver cache.  Thread-safe. */
void weft_resolve_cache_clear(void);

/*
 * Concurrent lookups of one name by tasks of the same loop share one
 * getaddrinfo: the first task resolves, the others wait for its answer
 * (with their own deadlines; if the first gives up, the next one resolves).
 * These process-wide counters tell what happened.  Thread-safe.
 */
typedef struct weft_resolve_stats {
    uint64_t lookups;     /* getaddrinfo calls started */
    uint64_t cache_hits;  /* answers from the cache */
    uint64_t joined;      /* lookups that waited for another task's answer */
} weft_resolve_stats;
void weft_resolve_stats_get(weft_resolve_stats *stats); /* NULL: ignored */

/* Format `addr` as "1.2.3.4:80", "[::1]:80" or the Unix path into `buf`
 * (truncated to `len` - 1 bytes; "" for a NULL addr; nothing written when
 * `len` is 0).  Returns buf.  Does not suspend. */
char *weft_addr_format(const weft_addr *addr, char *buf, size_t len);

/* ------------------------------------------------------------ TCP and Unix */

typedef struct weft_connect_opts {
    /* Delay before the next address is tried while earlier attempts are
     * still pending (Happy Eyeballs, RFC 8305).  0 = 250 ms; < 0 = try the
     * addresses strictly one after another. */
    int64_t stagger_ms;
    /* AF_UNSPEC (0, default), AF_INET or AF_INET6. */
    int family;
    /* Leave Nagle's algorithm on (TCP_NODELAY is set by default). */
    bool nagle;
} weft_connect_opts;

/*
 * Connect a TCP socket to `host`:`port`: resolve (weft_resolve), then try
 * every address, starting the next one when an attempt fails or has not
 * finished after the stagger delay; the first connection to succeed wins and
 * the others are closed.  `opts` may be NULL.  Returns a connected,
 * non-blocking, close-on-exec fd (close it with weft_close), or the error of
 * the last attempt (-ECONNREFUSED, -ENETUNREACH, ...) with weft_errmsg naming
 * each address tried, WEFT_ERESOLVE, -ETIMEDOUT at `deadline`, -ECANCELED.
 * Suspends.
 */
int weft_tcp_connect(const char *host, uint16_t port, const weft_connect_opts *opts,
                     int64_t deadline);

/* Connect to one address (TCP or Unix).  Same results as weft_tcp_connect.
 * Suspends. */
int weft_connect_addr(const weft_addr *addr, int64_t deadline);

/* weft_tcp_connect's race over addresses the caller resolved: `n` (1 to
 * 16) TCP addresses tried in order with the stagger of `opts` (may be NULL;
 * its family is ignored).  Same results.  Suspends. */
int weft_connect_addrs(const weft_addr *addrs, size_t n, const weft_connect_opts *opts,
                       int64_t deadline);

/*
 * A listening TCP socket on `host`:`port` (host NULL or "" = every IPv4
 * address, "::" = IPv6 and IPv4; port 0 = any free port, see weft_local_port),
 * with SO_REUSEADDR, non-blocking and close-on-exec.  `backlog` <= 0 means
 * SOMAXCONN.  Returns the fd or -errno (weft_errmsg names the address).
 * Resolves numeric hosts only ("localhost" is accepted too).  Does not suspend.
 */
int weft_tcp_listen(const char *host, uint16_t port, int backlog);

/* A listening Unix socket at `path` (an existing socket file is replaced).
 * Returns the fd or -errno.  Does not suspend. */
int weft_unix_listen(const char *path, int backlog);

/* Connect to the Unix socket at `path`.  Returns the fd or -errno.
 * Suspends. */
int weft_unix_connect(const char *path, int64_t deadline);

/*
 * Accept one connection on `listen_fd`; `peer` (may be NULL) receives its
 * address.  The new fd is non-blocking and close-on-exec, with TCP_NODELAY
 * for TCP.  Returns it, or -ETIMEDOUT, -ECANCELED, -EMFILE, ...  Suspends.
 */
int weft_accept(int listen_fd, weft_addr *peer, int64_t deadline);

/* The local port of a bound socket (e.g. after listening on port 0), or
 * -errno.  Does not suspend. */
int weft_local_port(int fd);

/* ------------------------------------------------------------ TLS contexts */

typedef struct weft_tls_ctx weft_tls_ctx;

typedef struct weft_tls_opts {
    /* Trust these CAs (a PEM file and/or a hashed directory) instead of the
     * system store. */
    const char *ca_file;
    const char *ca_path;
    /* Certificate chain and private key (PEM): required for a server,
     * optional for a client (client certificates). */
    const char *cert_file;
    const char *key_file;
    /* ALPN protocols in preference order, comma-separated: "h2,http/1.1". */
    const char *alpn;
    /* Client only: do not verify the server's certificate or name.  Off by
     * default; for tests against throwaway servers only. */
    bool insecure_skip_verify;
} weft_tls_opts;

/*
 * A client TLS context: TLS 1.2 or newer, the server's certificate verified
 * against the system CA store (or opts->ca_file / ca_path) and its name
 * checked.  `opts` may be NULL.  Share one context among many connections.
 * Returns NULL on failure with weft_errmsg naming the file or the OpenSSL
 * reason.  Does not suspend; thread-safe.
 */
weft_tls_ctx *weft_tls_client_new(const weft_tls_opts *opts);

/* A server TLS context with opts->cert_file and opts->key_file (required).
 * Returns NULL on failure with weft_errmsg set.  Does not suspend. */
weft_tls_ctx *weft_tls_server_new(const weft_tls_opts *opts);

/* Release a context.  Streams already using it keep it alive.  NULL is a
 * no-op.  Does not suspend. */
void weft_tls_ctx_free(weft_tls_ctx *ctx);

/* ------------------------------------------------------------ streams */

typedef struct weft_stream weft_stream;

/*
 * A buffered stream over a connected, non-blocking socket `fd`.  The stream
 * owns the fd from now on (weft_stream_close closes it), also when this
 * call fails.  `read_buffer` is the initial size of the read buffer
 * (0 = 16 KiB); the buffer grows only as far as a call's `max` asks.
 * Returns NULL with weft_errcode and weft_errmsg set: -EBADF for a negative
 * fd, -EINVAL for a read_buffer above 1 GiB, -ENOMEM.  Does not suspend.
 */
weft_stream *weft_stream_new(int fd, size_t read_buffer);

/*
 * Run the TLS handshake on `s` with `ctx`, as a client (server_name is sent
 * as SNI and is the name the certificate must match; NULL skips both, which
 * only a context with insecure_skip_verify allows) or as a server (ctx from
 * weft_tls_server_new; server_name ignored).  Bytes already buffered are
 * refused (-EINVAL).  After it, every stream call goes through TLS.
 * Returns 0, or WEFT_ETLS with weft_errmsg giving OpenSSL's reason (e.g.
 * "certificate verify failed: self-signed certificate"), -ETIMEDOUT,
 * -ECANCELED, -ECONNRESET, WEFT_EEOF.  On failure the stream can only be
 * closed.  Suspends.
 */
int weft_stream_start_tls(weft_stream *s, weft_tls_ctx *ctx, const char *server_name,
                          int64_t deadline);

/* The ALPN protocol agreed in the handshake ("http/1.1"), or NULL (also
 * for a NULL stream).  Valid while the stream is open.  Does not suspend.
 * The getters below answer false (and weft_stream_fd -EBADF) for NULL. */
const char *weft_stream_alpn(const weft_stream *s);

/* Whether the stream runs TLS. */
bool weft_stream_is_tls(const weft_stream *s);

/* Whether the TLS handshake resumed an earlier session.  A client context
 * keeps the sessions servers hand out (up to 64, by server name and
 * address) and offers one when it connects to the same server again: an
 * abbreviated handshake, no certificate chain to verify.  Does not suspend. */
bool weft_stream_tls_resumed(const weft_stream *s);

/* The stream's socket (still owned by the stream). */
int weft_stream_fd(const weft_stream *s);

/*
 * Read what is available, at least 1 byte and at most `max`: buffered bytes
 * first, else one read from the socket.  Returns the count, 0 at end of
 * stream, or -ETIMEDOUT, -ECANCELED, -ECONNRESET, WEFT_ETLS, ...  Suspends
 * when nothing is buffered.
 */
ssize_t weft_stream_read_some(weft_stream *s, void *buf, size_t max, int64_t deadline);

/* Read exactly `len` bytes.  Returns len, or WEFT_EEOF when the stream ends
 * first (the bytes read stay consumed), or an error as above (-EINVAL for
 * `len` above SSIZE_MAX).  Suspends. */
ssize_t weft_stream_read_exact(weft_stream *s, void *buf, size_t len, int64_t deadline);

/*
 * Read up to and including the first `delim` (`delim_len` bytes), copying at
 * most `max` bytes into `buf`.  Returns the length including the delimiter,
 * -EMSGSIZE when `max` bytes arrived without it (nothing is consumed: the
 * bytes stay buffered), WEFT_EEOF when the stream ends first, or an error as
 * above.  Suspends.
 */
ssize_t weft_stream_read_until(weft_stream *s, const void *delim, size_t delim_len, void *buf,
                               size_t max, int64_t deadline);

/*
 * Zero-copy reading.  weft_stream_fill reads more bytes into the buffer
 * (growing it to hold up to `max` buffered bytes) and returns how many
 * arrived: > 0, 0 at end of stream, -EMSGSIZE when `max` bytes are already
 * buffered, or an error.  It suspends only when the socket has nothing.
 * weft_stream_peek returns the buffered bytes (and their count in *len),
 * valid until the next call on the stream; weft_stream_consume drops the
 * first `n` of them (all of them when fewer are buffered).  Neither
 * suspends.  For a NULL stream, peek returns NULL with *len 0 (`len` may be
 * NULL) and consume does nothing.  Every other stream call fails with
 * -EINVAL for a NULL stream, or a NULL buffer with a length above 0.
 */
ssize_t weft_stream_fill(weft_stream *s, size_t max, int64_t deadline);
const void *weft_stream_peek(const weft_stream *s, size_t *len);
void weft_stream_consume(weft_stream *s, size_t n);

/* Write all `len` bytes.  Returns len, or -EPIPE / -ECONNRESET when the
 * peer is gone (never SIGPIPE), -ETIMEDOUT, -ECANCELED, WEFT_ETLS.  After a
 * timeout or cancel some bytes may have been sent.  Suspends. */
ssize_t weft_stream_write_all(weft_stream *s, const void *buf, size_t len, int64_t deadline);

/* Write every byte of `iovcnt` buffers (one writev(2) per try on plain TCP).
 * Returns the total or an error as for weft_stream_write_all.  Suspends. */
ssize_t weft_stream_writev(weft_stream *s, const struct iovec *iov, int iovcnt,
                           int64_t deadline);

/*
 * End the writing half: TLS close_notify (when TLS), then shutdown(SHUT_WR).
 * Reading goes on until the peer closes.  Returns 0 or -errno.  Suspends
 * (TLS only, to send the alert).
 */
int weft_stream_shutdown(weft_stream *s, int64_t deadline);

/* Close the socket (weft_close) and free the stream and its buffer.  Does
 * not send close_notify: call weft_stream_shutdown first for a graceful TLS
 * close.  NULL is a no-op.  Does not suspend. */
void weft_stream_close(weft_stream *s);

#ifdef __cplusplus
}
#endif
#endif
