/* SPDX-License-Identifier: MIT */
/* Shared inside weft-http.  Built on weft's public API only. */
#ifndef WEFT_HTTP_INTERNAL_H
#define WEFT_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/http.h"
#include "weft/sync.h"
#include "weft/time.h"

/* A parsed http(s) URL. */
typedef struct weft__url {
    bool tls;
    uint16_t port;
    char host[256];         /* name or address, IPv6 without brackets */
    char authority[264];    /* Host field: host[:port], brackets kept */
    char *target;           /* path and query, "/" at least; malloc'd */
} weft__url;

/* Parse `url` (absolute), or resolve it against `base` when base is not
 * NULL (a redirect's Location: absolute, scheme-relative, absolute-path or
 * relative).  Returns 0 or -EINVAL with weft_errmsg saying what is wrong.
 * Free with weft__url_free. */
int weft__url_parse(weft__url *u, const char *url, const weft__url *base);
void weft__url_free(weft__url *u);

/* Write "scheme://authority" + target into buf (for messages and
 * weft_http_response_url).  Returns a malloc'd string or NULL. */
char *weft__url_format(const weft__url *u);

/* ------------------------------------------------------------ the pool */

typedef struct weft__http_host weft__http_host;

/* A connection: busy (held by one request/response) or idle in the pool. */
typedef struct weft__http_conn {
    weft_stream *stream;
    weft__http_host *host;
    struct weft__http_conn *prev, *next;         /* the host's idle list */
    struct weft__http_conn *lru_prev, *lru_next; /* the session's idle list, oldest first */
    int64_t idle_since;
    uint64_t uses;          /* requests sent on it */
} weft__http_conn;

/* One origin: scheme + host + port. */
struct weft__http_host {
    weft__http_host *next;
    bool tls;
    uint16_t port;
    char name[256];
    size_t open;            /* its connections, busy and idle (and connecting) */
    weft__http_conn *idle;  /* most recently used first */
};

/* A request waiting for a connection slot. */
typedef struct weft__http_waiter {
    struct weft__http_waiter *prev, *next;
    weft__http_host *host;
    bool fresh;             /* wants a new connection, not an idle one */
    weft_event granted;     /* set when a slot or connection was handed over */
    bool has_slot;          /* a slot to open a connection was reserved for it */
    weft__http_conn *conn;  /* or an idle connection was handed to it */
} weft__http_waiter;

struct weft_http_session {
    weft_http_session_opts opts;    /* defaults filled in */
    weft_tls_ctx *tls;              /* opts.tls or our own */
    bool own_tls;
    bool closing;                   /* freed by the user; gone when busy == 0 */
    size_t open, idle, busy;
    weft__http_host *hosts;
    weft__http_conn *lru_head, *lru_tail;
    weft__http_waiter *wait_head, *wait_tail;
    weft_timer idle_timer;
    weft_http_stats stats;
};

/* The origin record for `u` (created on first use); NULL on ENOMEM. */
weft__http_host *weft__http_host_get(weft_http_session *s, const weft__url *u);

/* Option checks shared by the session and its requests: -EINVAL with a
 * message naming `fn` and the field (`prefix` + "timeouts.pool", ...). */
int weft__http_timeout_check(const char *fn, const char *field, int64_t ms);
int weft__http_timeouts_check(const char *fn, const char *prefix, const weft_http_timeouts *t);

/*
 * Get a connection to `h`: an idle one (*conn set, reuse counted), or a
 * reserved slot to open one (*conn NULL; call weft__http_conn_open or
 * weft__http_slot_release).  `fresh` skips idle connections.  Waits for a
 * slot until `deadline`.  Returns 0, -ETIMEDOUT, -ECANCELED, WEFT_ECLOSED.
 */
int weft__http_acquire(weft_http_session *s, weft__http_host *h, bool fresh, int64_t deadline,
                       weft__http_conn **conn);

/* Open a connection in a reserved slot (connect, TLS).  On failure the slot
 * is given back.  Returns 0 with *conn set, or an error with the message. */
int weft__http_conn_open(weft_http_session *s, weft__http_host *h, int64_t deadline,
                         weft__http_conn **conn);

/* Give back a reserved slot that was not used. */
void weft__http_slot_release(weft_http_session *s, weft__http_host *h);

/* What becomes of a busy connection that is done with. */
typedef enum weft__http_fate {
    WEFT__HTTP_POOL,        /* back to the pool */
    WEFT__HTTP_END,         /* closed: the message ended it (Connection: close, HTTP/1.0) */
    WEFT__HTTP_DISCARD,     /* closed early: error, timeout, cancel, unread body */
} weft__http_fate;

void weft__http_release(weft_http_session *s, weft__http_conn *c, weft__http_fate fate);

#endif
