/* SPDX-License-Identifier: MIT */
/*
 * weft-http: an HTTP/1.1 client session with a connection pool — one
 * session shared by every request, like one aiohttp.ClientSession.
 *
 *     weft_http_session *http = weft_http_session_new(NULL);   // once
 *     weft_http_response *r;
 *     const void *body;
 *     size_t len;
 *     if (weft_http_get(http, "http://127.0.0.1:8080/x", &r) == 0) {
 *         weft_http_response_body(r, &body, &len);   // already read: no wait
 *         printf("%d, %zu bytes\n", weft_http_response_status(r), len);
 *         weft_http_response_free(r);
 *     } else {
 *         fprintf(stderr, "%s\n", weft_errmsg());
 *     }
 *     weft_http_session_free(http);
 *
 * A session belongs to the loop of the task that created it; its calls run
 * in tasks of that loop.  Link with -lweft-http (pkg-config weft-http).
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <weft/net.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ timeouts */

/*
 * Time limits in milliseconds, each counted from the moment its phase
 * starts (`total_ms` from the call).  0 means "the session's value" in a
 * request, and "the default" in the session options; WEFT_NO_TIMEOUT
 * means none; a negative value has expired at once.  Each phase has its
 * own limit, and `total_ms` bounds them all:
 *
 *   pool     waiting for a free connection slot (the limits below are all
 *            in use).  Separate from connect and io, so a queue behind a
 *            busy pool is not mistaken for a slow server.  Default 30 s.
 *   connect  resolving, TCP connect and the TLS handshake.  Default 30 s.
 *   io       each read or write on the socket must make progress within
 *            this (aiohttp's sock_read).  Default 30 s.
 *   total    the whole request: pool wait, connect, sending, and reading
 *            the response to its end (when read with weft_http_fetch or
 *            weft_http_response_body).  Default 300 s (aiohttp's default).
 *
 * An expired limit fails the call with -ETIMEDOUT and weft_errmsg naming
 * the phase ("waiting for a connection slot", "connecting", ...); the
 * connection it interrupted, if any, is closed, never pooled.
 */
typedef struct weft_http_timeouts {
    int64_t pool_ms;
    int64_t connect_ms;
    int64_t io_ms;
    int64_t total_ms;
} weft_http_timeouts;

/* ------------------------------------------------------------ session */

typedef struct weft_http_session weft_http_session;

typedef struct weft_http_session_opts {
    /* Connections open at once, busy or idle, over all hosts.  0 = 100
     * (aiohttp's TCPConnector limit). */
    size_t limit;
    /* Connections open at once to one scheme+host+port.  0 = no limit of
     * its own (aiohttp's default). */
    size_t limit_per_host;
    /* Idle connections kept for reuse, over all hosts.  0 = `limit`. */
    size_t max_idle;
    /* An idle connection is closed after this many milliseconds.  0 = 15 s
     * (aiohttp's keepalive_timeout); WEFT_NO_TIMEOUT = never; negative: at
     * once (no connection is kept idle). */
    int64_t idle_timeout_ms;
    /* Default limits for the session's requests (see above). */
    weft_http_timeouts timeouts;
    /* TLS context for https:// (not owned; must outlive the session).
     * NULL: one with the system CA store, made on the first https request. */
    weft_tls_ctx *tls;
    /* Redirects followed by default: 0 = 10; WEFT_HTTP_NO_REDIRECTS = none. */
    int max_redirects;
    /* Largest response head (status line and fields) in bytes.  0 = 64 KiB. */
    size_t max_head;
    /* Most header fields in one response head; more fail the request with
     * WEFT_EPROTO ("too many header fields").  0 = 128 (or max_head / 4
     * when that is less).  At most max_head / 4 (the shortest field takes 4
     * bytes): more is -EINVAL. */
    size_t max_fields;
    /* Largest body weft_http_response_body buffers.  0 = 64 MiB. */
    size_t max_body;
    /* User-Agent sent unless the request has one.  NULL = "weft/<version>". */
    const char *user_agent;
} weft_http_session_opts;

#define WEFT_HTTP_NO_REDIRECTS (-1)

/*
 * Create a session.  `opts` may be NULL (all defaults).  Host names are
 * resolved with weft_resolve, whose process-wide cache keeps answers for
 * 10 s (weft_resolve_cache_ttl_ms).  Call it in a task: the session belongs
 * to that loop.  Returns NULL with weft_errcode and weft_errmsg set: -EINVAL
 * (bad options; the message names the field, e.g. "opts.max_head"),
 * -ENOMEM, WEFT_ENOTASK (no loop runs on the calling thread).  Does not
 * suspend.
 */
weft_http_session *weft_http_session_new(const weft_http_session_opts *opts);

/*
 * Close the idle connections and free the session.  Responses still open
 * keep their connection until weft_http_response_free, which then closes
 * it; requests still waiting for a slot fail with WEFT_ECLOSED (even one
 * that was granted a slot but has not run yet), as does a request already
 * inside weft_http_send when it next needs the pool (a redirect, a retry);
 * one already sending or reading its head finishes that.  The session's
 * memory goes when the last of these is done; the caller must not use `s`
 * after this call.  NULL is a no-op.  Does not suspend.
 */
void weft_http_session_free(weft_http_session *s);

/* What the pool did so far. */
typedef struct weft_http_stats {
    uint64_t requests;       /* requests sent (each redirect and retry counts) */
    uint64_t opened;         /* connections opened */
    uint64_t reused;         /* requests sent on a pooled connection */
    uint64_t discarded;      /* connections closed before their end of life:
                                errors, timeouts, cancels, unread bodies,
                                stale ones found closed by the server */
    uint64_t closed_idle;    /* idle connections closed by expiry or max_idle */
    uint64_t closed_done;    /* closed at a normal end: the response did not allow
                                keep-alive (Connection: close, HTTP/1.0), or the
                                session was freed with it busy.  Always
                                opened == discarded + closed_idle + closed_done + open */
    uint64_t slot_waits;     /* requests that had to wait for a slot */
    uint64_t retries;        /* idempotent requests retried after a stale connection */
    size_t open;             /* connections open now (busy + idle; not those
                                still connecting, which count towards the limits) */
    size_t idle;             /* idle connections now */
} weft_http_stats;

/* Fill *stats (all zeros for a NULL session; a NULL `stats` is ignored).
 * Does not suspend. */
void weft_http_session_stats(const weft_http_session *s, weft_http_stats *stats);

/* ------------------------------------------------------------ requests */

typedef struct weft_http_header {
    const char *name;
    const char *value;
} weft_http_header;

/*
 * A streaming request body: fill `buf` with up to `len` bytes and return
 * the count, 0 at the end of the body, or a negative error (which fails the
 * request).  It runs in the requesting task and may suspend.
 */
typedef ssize_t (*weft_http_body_fn)(void *arg, void *buf, size_t len);

typedef struct weft_http_request {
    /* "GET" when NULL.  A token: letters, digits and !#$%&'*+-.^_`|~ */
    const char *method;
    /* http:// or https:// URL; the fragment (#...) is not sent. */
    const char *url;
    /* Extra header fields.  Host, Content-Length and Transfer-Encoding are
     * set by weft; a User-Agent here replaces the session's. */
    const weft_http_header *headers;
    size_t nheaders;
    /* The body: a buffer (body, body_len), or a producer (body_fn, body_arg)
     * sent with Content-Length when body_fn_length >= 0, chunked when < 0.
     * A producer's body cannot be replayed: such requests are not retried
     * and not redirected with 307/308. */
    const void *body;
    size_t body_len;
    weft_http_body_fn body_fn;
    void *body_arg;
    int64_t body_fn_length;
    /* Limits for this request; 0 fields take the session's. */
    weft_http_timeouts timeouts;
    /* Redirects to follow: 0 = the session's; WEFT_HTTP_NO_REDIRECTS = none. */
    int max_redirects;
    /* Largest body weft_http_response_body buffers: 0 = the session's. */
    size_t max_body;
} weft_http_request;

typedef struct weft_http_response weft_http_response;

/*
 * Send `req` and read the response head (status and fields), following
 * redirects (301/302/303 turn into GET without body, 307/308 repeat the
 * request; Authorization and Cookie are dropped when the host changes).
 * The body is then read with weft_http_response_body or
 * weft_http_response_read.  The connection comes from the session's pool;
 * an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) that fails
 * on a pooled connection the server had closed is retried once on a new one.
 *
 * On success *out owns the response (free it with weft_http_response_free)
 * and 0 is returned.  Errors, with weft_errmsg saying what and where:
 * -EINVAL (a NULL session, request, URL or `out`; a bad URL, method or
 * header; a bad option, named in weft_errmsg as "req.timeouts.io", ...;
 * with `out` set, *out is NULL after any error), -ETIMEDOUT (a limit: see
 * weft_http_timeouts), -ECANCELED, WEFT_ERESOLVE, -ECONNREFUSED and other
 * socket errors, WEFT_ETLS, WEFT_EPROTO (a bad response: broken status
 * line, conflicting Content-Length and Transfer-Encoding, oversized head),
 * WEFT_EEOF (the server closed before answering), -ELOOP (too many
 * redirects), WEFT_ECLOSED (session freed).  A status of 4xx or 5xx is a
 * response, not an error.  Suspends.
 */
int weft_http_send(weft_http_session *s, const weft_http_request *req, weft_http_response **out);

/* weft_http_send, then read the whole body (weft_http_response_body), under
 * the request's total deadline.  Suspends. */
int weft_http_fetch(weft_http_session *s, const weft_http_request *req,
                    weft_http_response **out);

/* weft_http_fetch of a GET of `url` with no extra fields.  Suspends. */
int weft_http_get(weft_http_session *s, const char *url, weft_http_response **out);

/* ------------------------------------------------------------ responses */

/* The getters below take NULL and answer neutrally: status 0, reason "",
 * version -1, URL "", no header field (NULL; also for a NULL name), count
 * 0, header_at false (with *name and *value set to NULL), content length
 * -1. */

/* The status code (200, 404, ...). */
int weft_http_response_status(const weft_http_response *r);

/* The reason phrase ("OK"; may be ""). */
const char *weft_http_response_reason(const weft_http_response *r);

/* The minor HTTP version of the response: 1 for HTTP/1.1, 0 for HTTP/1.0. */
int weft_http_response_version(const weft_http_response *r);

/* The URL that answered (after redirects).  Valid until the response is freed. */
const char *weft_http_response_url(const weft_http_response *r);

/* The value of the first field called `name` (case-insensitive), or NULL.
 * Valid until the response is freed.  Does not suspend. */
const char *weft_http_response_header(const weft_http_response *r, const char *name);

/* The number of header fields, and the i-th one (in arrival order).
 * Returns false when i is out of range.  `name` and `value` may be NULL. */
size_t weft_http_response_header_count(const weft_http_response *r);
bool weft_http_response_header_at(const weft_http_response *r, size_t i, const char **name,
                                  const char **value);

/* The body's length when the server declared one (Content-Length), else -1. */
int64_t weft_http_response_content_length(const weft_http_response *r);

/*
 * Read the rest of the body into a buffer the response owns: *body (NUL
 * terminated, for convenience) and *len (either may be NULL: the body is
 * read all the same).  Calling it again returns the same buffer.  Errors:
 * -EINVAL for a NULL response, -EMSGSIZE when the body is larger than max_body (the
 * connection is closed), WEFT_EPROTO (bad chunk, body shorter than
 * declared), -ETIMEDOUT, -ECANCELED, socket and TLS errors; after an error
 * the connection is closed.  Once the body is complete the connection goes
 * back to the pool at once.  Suspends.
 */
int weft_http_response_body(weft_http_response *r, const void **body, size_t *len);

/*
 * Read the next bytes of the body (at most `len`): returns the count, 0 at
 * the end of the body (and for `len` 0), or an error as for
 * weft_http_response_body (-EINVAL for a NULL response, or a NULL `buf`
 * with `len` > 0).  Suspends when nothing is buffered.
 */
ssize_t weft_http_response_read(weft_http_response *r, void *buf, size_t len);

/* Free the response.  A body not read to its end means its connection is
 * closed rather than pooled (counted in `discarded`).  NULL is a no-op.
 * Does not suspend. */
void weft_http_response_free(weft_http_response *r);

#ifdef __cplusplus
}
#endif
#endif
