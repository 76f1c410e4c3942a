/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 requests and responses over the session's pool.  A request takes
 * a connection (or a slot to open one), writes the head and body, and reads
 * the response head; the body is then read through the response, and the
 * connection goes back to the pool the moment the body is complete.  Any
 * error, timeout or cancel closes the connection it interrupted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-internal.h"
#include "parser.h"
#include "weft/error.h"
#include "weft/task.h"

#define STACK_FIELDS 128 /* up to this many field slots live on the stack */
#define DRAIN_MAX (64 * 1024) /* unread body bytes read to keep a connection */
#define INLINE_BODY_MAX (16 * 1024) /* bodies up to this share the response's allocation */
#define PREALLOC_MAX (1024 * 1024) /* most body buffer allocated before its bytes come */

struct weft_http_response {
    weft_http_session *session;
    weft__http_conn *conn;          /* NULL once released */
    int status;
    int version_minor;
    const char *reason;
    weft__url where;                /* the URL that answered */
    char *url;                      /* formatted on demand */
    size_t nfields;
    const char **names, **values;
    weft__http_framing framing;
    uint64_t remaining;             /* LENGTH: body bytes left */
    int64_t content_length;
    weft__http_chunked chunked;
    bool keep_alive;
    bool done;                      /* body complete */
    int failed;                     /* sticky error */
    int64_t io_ms, total_deadline;
    size_t max_body;
    char *body;
    size_t body_len;
    bool body_inline;               /* body is part of this allocation */
    bool body_complete;
};

/* ------------------------------------------------------------ deadlines */

typedef struct limits {
    int64_t pool_ms, connect_ms, io_ms; /* relative, WEFT_NO_TIMEOUT = none */
    int64_t total_deadline;
} limits;

static int64_t pick(int64_t req, int64_t sess)
{
    return req ? req : sess;
}

/* The deadline of a phase limited to `ms` from now, within the total. */
static int64_t until(int64_t ms, int64_t total_deadline)
{
    int64_t d = weft_deadline_ms(ms);
    return d < total_deadline ? d : total_deadline;
}

/* ------------------------------------------------------------ requests */

static bool idempotent(const char *m)
{
    static const char *const ok[] = { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

static bool header_is(const char *name, const char *want) { return strcasecmp(name, want) == 0; }

/* A growing buffer for the request head. */
typedef struct strbuf {
    char *p;
    size_t len, cap;
    char local[1024];
    bool oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n + 256;
        char *p = b->p == b->local ? malloc(cap) : realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        if (b->p == b->local)
            memcpy(p, b->local, b->len);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_free(strbuf *b)
{
    if (b->p != b->local)
        free(b->p);
}

/* What one round trip sends: the original request, or a redirect of it. */
typedef struct round {
    const char *method;
    const weft_http_request *req;
    bool with_body;
    bool same_origin;   /* as the original URL: credentials may go along */
} round;

static int build_head(weft_http_session *s, const round *rd, const weft__url *u, strbuf *b)
{
    const weft_http_request *req = rd->req;
    sb_str(b, rd->method);
    sb_add(b, " ", 1);
    sb_str(b, u->target);
    sb_add(b, " HTTP/1.1\r\nHost: ", 17);
    sb_str(b, u->authority);
    sb_add(b, "\r\n", 2);
    bool ua = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const weft_http_header *h = &req->headers[i];
        if (header_is(h->name, "Host") || header_is(h->name, "Content-Length")
            || header_is(h->name, "Transfer-Encoding"))
            continue;
        if (!rd->same_origin && (header_is(h->name, "Authorization")
                                 || header_is(h->name, "Cookie")))
            continue;
        ua = ua || header_is(h->name, "User-Agent");
        sb_str(b, h->name);
        sb_add(b, ": ", 2);
        sb_str(b, h->value);
        sb_add(b, "\r\n", 2);
    }
    if (!ua) {
        sb_str(b, "User-Agent: ");
        sb_str(b, s->opts.user_agent ? s->opts.user_agent : "weft/0.1");
        sb_add(b, "\r\n", 2);
    }
    if (rd->with_body) {
        char len[48];
        if (req->body_fn && req->body_fn_length < 0)
            sb_str(b, "Transfer-Encoding: chunked\r\n");
        else {
            snprintf(len, sizeof len, "Content-Length: %llu\r\n",
                     (unsigned long long)(req->body_fn ? (uint64_t)req->body_fn_length
                                                       : (uint64_t)req->body_len));
            sb_str(b, len);
        }
    } else if (strcmp(rd->method, "POST") == 0 || strcmp(rd->method, "PUT") == 0) {
        sb_str(b, "Content-Length: 0\r\n");
    }
    sb_add(b, "\r\n", 2);
    return b->oom ? weft_seterr(-ENOMEM, "HTTP: out of memory") : 0;
}

/* Send a producer's body, chunked or counted. */
static int send_stream_body(weft_stream *st, const weft_http_request *req, const limits *lim)
{
    char buf[16 * 1024];
    bool chunked = req->body_fn_length < 0;
    uint64_t sent = 0;
    for (;;) {
        ssize_t n = req->body_fn(req->body_arg, buf, sizeof buf);
        if (n < 0)
            return weft_seterr((int)n, "the request body producer failed: %s",
                               weft_strerror((int)n));
        if (!chunked && sent + (uint64_t)n > (uint64_t)req->body_fn_length)
            return weft_seterr(-EINVAL, "the body producer gave more than the %lld "
                               "bytes announced", (long long)req->body_fn_length);
        if (n == 0)
            break;
        sent += (uint64_t)n;
        char size[24];
        struct iovec iov[3] = { { size, 0 }, { buf, (size_t)n }, { (void *)"\r\n", 2 } };
        if (chunked)
            iov[0].iov_len = (size_t)snprintf(size, sizeof size, "%zx\r\n", (size_t)n);
        ssize_t w = chunked ? weft_stream_writev(st, iov, 3, until(lim->io_ms, lim->total_deadline))
                            : weft_stream_write_all(st, buf, (size_t)n,
                                                    until(lim->io_ms, lim->total_deadline));
        if (w < 0)
            return (int)w;
    }
    if (!chunked && sent != (uint64_t)req->body_fn_length)
        return weft_seterr(-EINVAL, "the body producer gave %llu of the %lld bytes "
                           "announced", (unsigned long long)sent, (long long)req->body_fn_length);
    if (chunked) {
        ssize_t w = weft_stream_write_all(st, "0\r\n\r\n", 5,
                                          until(lim->io_ms, lim->total_deadline));
        if (w < 0)
            return (int)w;
    }
    return 0;
}

/* ------------------------------------------------------------ responses */

static void resp_release(weft_http_response *r, weft__http_fate fate)
{
    if (r->conn) {
        weft__http_release(r->session, r->conn, fate);
        r->conn = NULL;
    }
}

/* The body is complete: pool the connection if the message allows it and
 * nothing follows it (we never pipeline, so extra bytes are a broken peer). */
static void resp_finish(weft_http_response *r)
{
    r->done = true;
    size_t extra = 0;
    if (r->conn)
        weft_stream_peek(r->conn->stream, &extra);
    resp_release(r, extra ? WEFT__HTTP_DISCARD : r->keep_alive ? WEFT__HTTP_POOL : WEFT__HTTP_END);
}

static int resp_fail(weft_http_response *r, int rc)
{
    r->failed = rc;
    resp_release(r, WEFT__HTTP_DISCARD);
    return rc;
}

/* Copy the parsed head into the response (the stream buffer moves on). */
static weft_http_response *resp_new(weft_http_session *s, const weft__http_head *h)
{
    size_t strings = h->reason_len + 1;
    for (size_t i = 0; i < h->nfields; i++)
        strings += h->fields[i].name_len + h->fields[i].value_len + 2;
    size_t ptrs = 2 * h->nfields * sizeof(char *);
    /* A small body of known length lives in the same allocation. */
    size_t inline_body = h->framing == WEFT__HTTP_BODY_LENGTH
                      && h->content_length <= INLINE_BODY_MAX ? (size_t)h->content_length + 1 : 0;
    weft_http_response *r = malloc(sizeof *r + ptrs + strings + inline_body);
    if (!r) {
        weft_seterr(-ENOMEM, "HTTP: out of memory");
        return NULL;
    }
    memset(r, 0, sizeof *r);
    r->session = s;
    r->status = h->status;
    r->version_minor = h->version_minor;
    r->nfields = h->nfields;
    r->names = (const char **)(r + 1);
    r->values = r->names + h->nfields;
    char *p = (char *)(r->values + h->nfields);
    memcpy(p, h->reason, h->reason_len);
    p[h->reason_len] = '\0';
    r->reason = p;
    p += h->reason_len + 1;
    for (size_t i = 0; i < h->nfields; i++) {
        const weft__http_field *f = &h->fields[i];
        memcpy(p, f->name, f->name_len);
        p[f->name_len] = '\0';
        r->names[i] = p;
        p += f->name_len + 1;
        memcpy(p, f->value, f->value_len);
        p[f->value_len] = '\0';
        r->values[i] = p;
        p += f->value_len + 1;
    }
    if (inline_body) {
        r->body = p;
        r->body_inline = true;
    }
    r->framing = h->framing;
    size_t cl_len;
    bool declared = h->framing == WEFT__HTTP_BODY_LENGTH
                 || weft__http_field_get(h, "Content-Length", &cl_len) != NULL; /* HEAD, 304 */
    r->content_length = declared ? (int64_t)h->content_length : -1;
    r->remaining = h->content_length;
    r->keep_alive = h->keep_alive && !h->upgrade && h->status != 101;
    return r;
}

/*
 * Read a response head into a new response.  *got_bytes tells whether any
 * byte of the answer arrived (a stale connection shows none).  Skips 1xx.
 */
static int read_head_into(weft_http_session *s, weft__http_conn *c, const char *method,
                          const weft__url *u, const limits *lim, weft_http_response **out,
                          bool *got_bytes, weft__http_field *fields)
{
    bool head = strcmp(method, "HEAD") == 0;
    for (;;) {
        weft__http_parser p;
        weft__http_parser_init(&p, s->opts.max_head, s->opts.max_fields);
        weft__http_head h = { .fields = fields };
        const char *why = NULL;
        int64_t n;
        for (;;) {
            size_t len;
            const char *buf = weft_stream_peek(c->stream, &len);
            if (len)
                *got_bytes = true;
            n = len ? weft__http_parse_response(&p, buf, len, head, &h, &why) : 0;
            if (n != 0)
                break;
            ssize_t f = weft_stream_fill(c->stream, s->opts.max_head,
                                         until(lim->io_ms, lim->total_deadline));
            if (f == 0) {
                if (!*got_bytes)
                    return weft_seterr(WEFT_EEOF, "HTTP %s: the server closed the connection "
                                       "without answering", u->authority);
                return weft_seterr(WEFT_EPROTO, "HTTP %s: the server closed the connection "
                                   "in the middle of the response head", u->authority);
            }
            if (f == -EMSGSIZE)
                return weft_seterr(WEFT_EPROTO, "HTTP %s: response head larger than %zu bytes",
                                   u->authority, s->opts.max_head);
            if (f == -ETIMEDOUT)
                return weft_seterr(f, "HTTP %s: timed out reading the response head",
                                   u->authority);
            if (f < 0)
                return (int)f;
        }
        if (n < 0)
            return weft_seterr(WEFT_EPROTO, "HTTP %s: bad response: %s", u->authority,
                               why ? why : "malformed");
        if (h.status >= 100 && h.status < 200 && h.status != 101) {
            weft_stream_consume(c->stream, (size_t)n); /* 100 Continue, 103 Early Hints */
            continue;
        }
        weft_http_response *r = resp_new(s, &h);
        weft_stream_consume(c->stream, (size_t)n);
        if (!r)
            return -ENOMEM;
        *out = r;
        return 0;
    }
}

static int read_head(weft_http_session *s, weft__http_conn *c, const char *method,
                     const weft__url *u, const limits *lim, weft_http_response **out,
                     bool *got_bytes)
{
    weft__http_field local[STACK_FIELDS];
    if (s->opts.max_fields <= STACK_FIELDS)
        return read_head_into(s, c, method, u, lim, out, got_bytes, local);
    weft__http_field *fields = malloc(s->opts.max_fields * sizeof *fields);
    if (!fields)
        return weft_seterr(-ENOMEM, "HTTP: out of memory");
    int rc = read_head_into(s, c, method, u, lim, out, got_bytes, fields);
    free(fields);
    return rc;
}

/* Make sure a failure's message names the server and the phase (socket and
 * TLS errors come up with the stream's own words). */
static int name_where(int rc, const char *where, const char *phase)
{
    const char *m = weft_errmsg();
    if (strncmp(m, "HTTP ", 5) == 0)
        return rc;
    char inner[200];
    snprintf(inner, sizeof inner, "%s", m[0] ? m : weft_strerror(rc));
    return weft_seterr(rc, "HTTP %s: %s: %s", where, phase, inner);
}

/* One round trip on one connection attempt.  Returns 0 with *out, or an
 * error; *retry is set when a pooled connection turned out stale and the
 * request may go again on a new one. */
static int round_trip(weft_http_session *s, const round *rd, const weft__url *u,
                      const limits *lim, bool fresh, weft_http_response **out, bool *retry)
{
    *retry = false;
    weft__http_host *h = weft__http_host_get(s, u);
    if (!h)
        return -ENOMEM;
    weft__http_conn *c;
    /* A request that may not be retried goes on an idle connection only
     * after the socket says the server has not closed it. */
    bool check = !idempotent(rd->method) || rd->req->body_fn;
    int rc = weft__http_acquire(s, h, fresh, check, until(lim->pool_ms, lim->total_deadline), &c);
    if (rc < 0)
        return rc;
    bool reused = c != NULL;
    if (!c) {
        rc = weft__http_conn_open(s, h, until(lim->connect_ms, lim->total_deadline), &c);
        if (rc < 0)
            return rc;
    } else {
        s->stats.reused++;
    }
    c->uses++;
    s->stats.requests++;

    strbuf b; /* not `= {...}`: that would clear the 1 KiB buffer on every request */
    b.p = b.local;
    b.len = 0;
    b.cap = sizeof b.local;
    b.oom = false;
    rc = build_head(s, rd, u, &b);
    if (rc == 0) {
        const weft_http_request *req = rd->req;
        ssize_t w;
        if (rd->with_body && !req->body_fn) {
            struct iovec iov[2] = { { b.p, b.len }, { (void *)req->body, req->body_len } };
            w = weft_stream_writev(c->stream, iov, 2, until(lim->io_ms, lim->total_deadline));
        } else {
            w = weft_stream_write_all(c->stream, b.p, b.len,
                                      until(lim->io_ms, lim->total_deadline));
            if (w >= 0 && rd->with_body)
                w = send_stream_body(c->stream, req, lim);
        }
        if (w < 0) {
            rc = (int)w;
            if (rc == -ETIMEDOUT)
                weft_seterr(rc, "HTTP %s: timed out sending the request", u->authority);
            else
                name_where(rc, u->authority, "sending the request");
        }
    }
    sb_free(&b);
    bool got = false;
    weft_http_response *r = NULL;
    if (rc == 0 && (rc = read_head(s, c, rd->method, u, lim, &r, &got)) < 0)
        name_where(rc, u->authority, "reading the response head");
    if (rc < 0) {
        weft__http_release(s, c, WEFT__HTTP_DISCARD);
        bool stale_sign = rc == -EPIPE || rc == -ECONNRESET || rc == WEFT_EEOF;
        *retry = reused && !got && stale_sign && idempotent(rd->method) && !rd->req->body_fn;
        return rc;
    }
    r->conn = c;
    r->io_ms = lim->io_ms;
    r->total_deadline = lim->total_deadline;
    if (r->framing == WEFT__HTTP_BODY_NONE
        || (r->framing == WEFT__HTTP_BODY_LENGTH && r->remaining == 0))
        resp_finish(r);
    *out = r;
    return 0;
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Read and drop a small remaining body so the connection can be reused.
 * A body that ends only with the connection is not worth waiting for. */
static void drain(weft_http_response *r)
{
    char buf[4096];
    size_t total = 0;
    if (r->framing == WEFT__HTTP_BODY_UNTIL_CLOSE)
        return;
    while (!r->done && !r->failed && total < DRAIN_MAX) {
        ssize_t n = weft_http_response_read(r, buf, sizeof buf);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

/* Refuse what could not be sent safely before the pool is touched. */
static int check_request(const weft_http_request *req, const char *method)
{
    if (!req->url)
        return weft_seterr(-EINVAL, "weft_http_send: NULL req.url");
    if (!weft__http_is_token(method))
        return weft_seterr(-EINVAL, "weft_http_send: bad req.method '%.40s'", method);
    if (req->nheaders && !req->headers)
        return weft_seterr(-EINVAL, "weft_http_send: req.headers is NULL with req.nheaders %zu",
                           req->nheaders);
    for (size_t i = 0; i < req->nheaders; i++) {
        const weft_http_header *h = &req->headers[i];
        if (!weft__http_is_token(h->name) || !h->value
            || !weft__http_is_field_value(h->value))
            return weft_seterr(-EINVAL, "weft_http_send: bad req.headers[%zu] '%.60s' (names "
                               "are tokens; values have no CR, LF or other control "
                               "characters)", i, h->name ? h->name : "(null)");
    }
    if (req->max_redirects < WEFT_HTTP_NO_REDIRECTS)
        return weft_seterr(-EINVAL, "weft_http_send: req.max_redirects %d is negative "
                           "(WEFT_HTTP_NO_REDIRECTS for none)", req->max_redirects);
    if (req->body_fn && req->body)
        return weft_seterr(-EINVAL, "weft_http_send: both a req.body buffer and a req.body_fn "
                           "producer");
    if (!req->body && req->body_len)
        return weft_seterr(-EINVAL, "weft_http_send: req.body is NULL with req.body_len %zu",
                           req->body_len);
    return 0;
}

static int send_request(weft_http_session *s, const weft_http_request *req,
                        weft_http_response **out)
{
    const char *method = req->method ? req->method : "GET";
    int rc = check_request(req, method);
    if (rc < 0)
        return rc;
    const weft_http_timeouts *t = &req->timeouts, *st = &s->opts.timeouts;
    limits lim = {
        .pool_ms = pick(t->pool_ms, st->pool_ms),
        .connect_ms = pick(t->connect_ms, st->connect_ms),
        .io_ms = pick(t->io_ms, st->io_ms),
        .total_deadline = weft_deadline_ms(pick(t->total_ms, st->total_ms)),
    };
    int max_redirects = req->max_redirects ? req->max_redirects : s->opts.max_redirects;
    if (max_redirects < 0)
        max_redirects = 0;

    weft__url u;
    rc = weft__url_parse(&u, req->url, NULL);
    if (rc < 0)
        return rc;
    weft__http_host *origin = weft__http_host_get(s, &u);
    round rd = {
        .method = method,
        .req = req,
        .with_body = req->body_fn != NULL || req->body != NULL,
        .same_origin = true,
    };
    for (int redirects = 0;; redirects++) {
        weft_http_response *r = NULL;
        bool retry;
        rc = round_trip(s, &rd, &u, &lim, false, &r, &retry);
        if (rc < 0 && retry) {
            s->stats.retries++;
            rc = round_trip(s, &rd, &u, &lim, true, &r, &retry);
        }
        if (rc < 0)
            break;
        const char *loc = is_redirect(r->status) ? weft_http_response_header(r, "Location")
                                                 : NULL;
        bool follow = is_redirect(r->status) && loc
                   && !((r->status == 307 || r->status == 308) && req->body_fn);
        if (!follow || max_redirects == 0) {
            r->max_body = req->max_body ? req->max_body : s->opts.max_body;
            r->where = u; /* the response owns the URL now */
            u.target = NULL;
            *out = r;
            break;
        }
        /* The response owns the URL that answered, final or not: a failure
         * while its body is drained names it. */
        r->where = u;
        u.target = NULL;
        if (redirects >= max_redirects) {
            drain(r); /* keep the connection */
            rc = weft_seterr(-ELOOP, "HTTP: more than %d redirects, the last to %.100s",
                             max_redirects, loc);
            weft_http_response_free(r);
            break;
        }
        weft__url next;
        rc = weft__url_parse(&next, loc, &r->where);
        if (rc < 0) {
            weft_http_response_free(r);
            break;
        }
        int status = r->status;
        drain(r);
        weft_http_response_free(r);
        u = next;
        if (status == 303 || ((status == 301 || status == 302)
                                 && strcmp(rd.method, "HEAD") != 0)) {
            /* 303 always, and 301/302 as browsers do: the next request is a GET. */
            rd.method = strcmp(rd.method, "HEAD") == 0 ? "HEAD" : "GET";
            rd.with_body = false;
        }
        weft__http_host *next_host = weft__http_host_get(s, &u);
        rd.same_origin = rd.same_origin && next_host && next_host == origin;
    }
    weft__url_free(&u);
    return rc;
}

int weft_http_send(weft_http_session *s, const weft_http_request *req, weft_http_response **out)
{
    if (out)
        *out = NULL;
    if (!s || !req || !out)
        return weft_seterr(-EINVAL, "weft_http_send: NULL %s",
                           !s ? "session" : !req ? "request" : "response pointer");
    /* Held across the round trips: a session freed meanwhile (by another
     * task) stays until this request is done with it. */
    weft__http_session_use(s);
    int rc = send_request(s, req, out);
    weft__http_session_unuse(s);
    return rc;
}

int weft_http_fetch(weft_http_session *s, const weft_http_request *req, weft_http_response **out)
{
    if (out)
        *out = NULL;
    if (!s || !req || !out)
        return weft_seterr(-EINVAL, "weft_http_fetch: NULL %s",
                           !s ? "session" : !req ? "request" : "response pointer");
    int rc = weft_http_send(s, req, out);
    if (rc < 0)
        return rc;
    const void *body;
    size_t len;
    rc = weft_http_response_body(*out, &body, &len);
    if (rc < 0) {
        weft_http_response_free(*out);
        *out = NULL;
    }
    return rc;
}

int weft_http_get(weft_http_session *s, const char *url, weft_http_response **out)
{
    if (out)
        *out = NULL;
    if (!s || !url || !out)
        return weft_seterr(-EINVAL, "weft_http_get: NULL %s",
                           !s ? "session" : !url ? "URL" : "response pointer");
    weft_http_request req = { .url = url };
    return weft_http_fetch(s, &req, out);
}

/* ------------------------------------------------------------ body */

static int body_error(weft_http_response *r, int rc, const char *what)
{
    if (rc == -ETIMEDOUT)
        weft_seterr(rc, "HTTP %s: timed out reading the body", weft_http_response_url(r));
    else if (what)
        weft_seterr(rc, "HTTP %s: %s", weft_http_response_url(r), what);
    else
        name_where(rc, weft_http_response_url(r), "reading the body");
    return resp_fail(r, rc);
}

static int64_t body_deadline(const weft_http_response *r)
{
    return until(r->io_ms, r->total_deadline);
}

ssize_t weft_http_response_read(weft_http_response *r, void *buf, size_t len)
{
    if (!r || (!buf && len))
        return weft_seterr(-EINVAL, "weft_http_response_read: NULL %s",
                           r ? "buffer" : "response");
    if (r->failed)
        return r->failed;
    if (r->done || len == 0)
        return 0;
    weft_stream *st = r->conn->stream;
    switch (r->framing) {
    case WEFT__HTTP_BODY_NONE:
        resp_finish(r);
        return 0;
    case WEFT__HTTP_BODY_LENGTH: {
        if (r->remaining == 0) {
            resp_finish(r);
            return 0;
        }
        size_t want = len < r->remaining ? len : (size_t)r->remaining;
        ssize_t n = weft_stream_read_some(st, buf, want, body_deadline(r));
        if (n == 0) {
            char what[96];
            snprintf(what, sizeof what, "body shorter than declared (%llu bytes missing)",
                     (unsigned long long)r->remaining);
            return body_error(r, WEFT_EPROTO, what);
        }
        if (n < 0)
            return body_error(r, (int)n, NULL);
        r->remaining -= (uint64_t)n;
        if (r->remaining == 0)
            resp_finish(r);
        return n;
    }
    case WEFT__HTTP_BODY_UNTIL_CLOSE: {
        ssize_t n = weft_stream_read_some(st, buf, len, body_deadline(r));
        if (n == 0)
            resp_finish(r); /* keep_alive is false: closes */
        else if (n < 0)
            return body_error(r, (int)n, NULL);
        return n;
    }
    case WEFT__HTTP_BODY_CHUNKED:
        for (;;) {
            size_t have;
            const char *in = weft_stream_peek(st, &have);
            if (have == 0) {
                ssize_t f = weft_stream_fill(st, 64 * 1024, body_deadline(r));
                if (f == 0)
                    return body_error(r, WEFT_EPROTO, "the connection closed inside the "
                                      "chunked body");
                if (f < 0)
                    return body_error(r, (int)f, NULL);
                continue;
            }
            size_t used = 0, dlen = 0;
            const char *data = NULL, *why = NULL;
            /* Never more input than `len`: the data span fits the caller's buffer. */
            int rc = weft__http_chunked_feed(&r->chunked, in, have < len ? have : len, &used,
                                             &data, &dlen, &why);
            if (rc < 0) {
                char what[96];
                snprintf(what, sizeof what, "bad chunked body: %s", why ? why : "malformed");
                return body_error(r, WEFT_EPROTO, what);
            }
            if (dlen)
                memcpy(buf, data, dlen);
            weft_stream_consume(st, used);
            if (rc == 1) {
                resp_finish(r);
                return (ssize_t)dlen;
            }
            if (dlen)
                return (ssize_t)dlen;
        }
    }
    return body_error(r, -EINVAL, "unknown framing");
}

int weft_http_response_body(weft_http_response *r, const void **body, size_t *len)
{
    if (!r)
        return weft_seterr(-EINVAL, "weft_http_response_body: NULL response");
    const void *body_unused;
    size_t len_unused;
    if (!body)
        body = &body_unused;
    if (!len)
        len = &len_unused;
    if (r->body_complete) {
        *body = r->body;
        *len = r->body_len;
        return 0;
    }
    if (r->failed)
        return r->failed;
    if (r->framing == WEFT__HTTP_BODY_NONE) {
        /* HEAD, 1xx, 204, 304: a Content-Length there describes another
         * answer's body, never one to read or make room for. */
        static char empty[1];
        if (!r->done)
            resp_finish(r);
        r->body_complete = true;
        r->body_len = 0;
        if (!r->body) {
            r->body = empty;
            r->body_inline = true; /* not ours to free */
        }
        *body = r->body;
        *len = 0;
        return 0;
    }
    size_t max = r->max_body ? r->max_body : r->session->opts.max_body;
    /* Only a body that follows the head has a length to check and make room for. */
    int64_t declared = r->framing == WEFT__HTTP_BODY_LENGTH ? r->content_length : -1;
    if (declared >= 0 && (uint64_t)declared > max) {
        char what[96];
        snprintf(what, sizeof what, "body of %lld bytes is larger than the limit of %zu",
                 (long long)declared, max);
        return body_error(r, -EMSGSIZE, what);
    }
    /* A declared length is a promise, not bytes: room for at most
     * PREALLOC_MAX of it up front, the rest as it arrives. */
    size_t cap = declared >= 0 ? ((uint64_t)declared < PREALLOC_MAX ? (size_t)declared + 1
                                                                     : PREALLOC_MAX)
               : max < 16 * 1024 ? max + 1 : 16 * 1024; /* the limit checks need cap <= max + 1 */
    if (!r->body) {
        r->body = malloc(cap);
        if (!r->body)
            return body_error(r, -ENOMEM, "out of memory");
    }
    while (!r->done) {
        if (r->body_len + 1 >= cap) {
            if (r->body_len >= max) {
                /* One byte more than the limit tells a body that is too large. */
                char one;
                ssize_t n = weft_http_response_read(r, &one, 1);
                if (n < 0)
                    return (int)n;
                if (n == 0)
                    break;
                char what[64];
                snprintf(what, sizeof what, "body larger than the limit of %zu bytes", max);
                return body_error(r, -EMSGSIZE, what);
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *p = r->body_inline ? malloc(cap) : realloc(r->body, cap);
            if (!p)
                return body_error(r, -ENOMEM, "out of memory");
            if (r->body_inline)
                memcpy(p, r->body, r->body_len);
            r->body = p;
            r->body_inline = false;
        }
        ssize_t n = weft_http_response_read(r, r->body + r->body_len, cap - 1 - r->body_len);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        r->body_len += (size_t)n;
    }
    r->body[r->body_len] = '\0';
    r->body_complete = true;
    *body = r->body;
    *len = r->body_len;
    return 0;
}

/* ------------------------------------------------------------ accessors */

int weft_http_response_status(const weft_http_response *r) { return r ? r->status : 0; }
const char *weft_http_response_reason(const weft_http_response *r)
{
    return r && r->reason ? r->reason : "";
}
int weft_http_response_version(const weft_http_response *r) { return r ? r->version_minor : -1; }
const char *weft_http_response_url(const weft_http_response *r)
{
    if (!r)
        return "";
    weft_http_response *w = (weft_http_response *)r; /* a cache, not a change */
    if (!w->url)
        w->url = weft__url_format(&w->where);
    return w->url ? w->url : "";
}
size_t weft_http_response_header_count(const weft_http_response *r) { return r ? r->nfields : 0; }
int64_t weft_http_response_content_length(const weft_http_response *r)
{
    return r ? r->content_length : -1;
}

const char *weft_http_response_header(const weft_http_response *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->nfields; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

bool weft_http_response_header_at(const weft_http_response *r, size_t i, const char **name,
                                  const char **value)
{
    if (!r || i >= r->nfields) {
        if (name)
            *name = NULL;
        if (value)
            *value = NULL;
        return false;
    }
    if (name)
        *name = r->names[i];
    if (value)
        *value = r->values[i];
    return true;
}

void weft_http_response_free(weft_http_response *r)
{
    if (!r)
        return;
    resp_release(r, WEFT__HTTP_DISCARD); /* body not read to its end: no reuse */
    if (!r->body_inline)
        free(r->body);
    free(r->url);
    weft__url_free(&r->where);
    free(r);
}
