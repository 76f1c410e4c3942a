/* SPDX-License-Identifier: MIT */
/*
 * The session's connection pool.  Slots are counted, not connections: a
 * request holds a slot from the moment it is granted one (connecting counts),
 * so the limits hold while connections are being opened.  Waiters are served
 * in FIFO order, each by handing it a slot or an idle connection directly
 * (no barging: a newcomer cannot take what a waiter was promised).  Idle
 * connections are kept most-recently-used first per host and expire by a
 * timer; a stale one (the server closed it while idle) is caught by a peek
 * before reuse.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http-internal.h"
#include "weft/error.h"
#include "weft/io.h"
#include "weft/loop.h"
#include "weft/task.h"

#define DEFAULT_LIMIT 100
#define DEFAULT_IDLE_MS 15000
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_TOTAL_MS 300000
#define DEFAULT_REDIRECTS 10
#define DEFAULT_MAX_HEAD (64 * 1024)
#define DEFAULT_MAX_BODY (64 * 1024 * 1024)
#define DEFAULT_MAX_FIELDS 128

/* ------------------------------------------------------------ lists */

static void idle_unlink(weft_http_session *s, weft__http_conn *c)
{
    weft__http_host *h = c->host;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->idle = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else
        s->lru_head = c->lru_next;
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        s->lru_tail = c->lru_prev;
    c->prev = c->next = c->lru_prev = c->lru_next = NULL;
    s->idle--;
}

static void idle_push(weft_http_session *s, weft__http_conn *c)
{
    weft__http_host *h = c->host;
    c->prev = NULL;
    c->next = h->idle;
    if (h->idle)
        h->idle->prev = c;
    h->idle = c;
    c->lru_next = NULL;
    c->lru_prev = s->lru_tail;
    if (s->lru_tail)
        s->lru_tail->lru_next = c;
    else
        s->lru_head = c;
    s->lru_tail = c;
    s->idle++;
}

static void waiter_unlink(weft_http_session *s, weft__http_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        s->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        s->wait_tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
}

/* ------------------------------------------------------------ session */

static int64_t or_default(int64_t v, int64_t def) { return v == 0 ? def : v; }

/* How long a connection may stay idle, in ns; WEFT_NO_DEADLINE: forever. */
static int64_t idle_ttl_ns(const weft_http_session *s)
{
    int64_t ms = s->opts.idle_timeout_ms;
    if (ms <= 0)
        return 0;
    return ms > WEFT_NO_DEADLINE / 1000000 ? WEFT_NO_DEADLINE : ms * 1000000;
}

/* When a connection idle since `since` expires (saturating). */
static int64_t idle_end(const weft_http_session *s, int64_t since)
{
    int64_t ttl = idle_ttl_ns(s);
    return ttl > WEFT_NO_DEADLINE - since ? WEFT_NO_DEADLINE : since + ttl;
}

static void session_destroy(weft_http_session *s);

/* Close a connection (its slot is freed). */
static void conn_close(weft_http_session *s, weft__http_conn *c)
{
    weft_stream_close(c->stream);
    c->host->open--;
    s->open--;
    free(c);
}

static void kick(weft_http_session *s);

static void idle_expire(weft_timer *t)
{
    weft_http_session *s = t->data;
    int64_t now = weft_now();
    int64_t ttl = idle_ttl_ns(s);
    while (s->lru_head && now - s->lru_head->idle_since >= ttl) {
        weft__http_conn *c = s->lru_head;
        idle_unlink(s, c);
        conn_close(s, c);
        s->stats.closed_idle++;
    }
    if (s->lru_head)
        weft_timer_start(&s->idle_timer, idle_end(s, s->lru_head->idle_since));
    kick(s);
}

weft_http_session *weft_http_session_new(const weft_http_session_opts *opts)
{
    static const weft_http_session_opts none = { 0 };
    /* Its idle timer and its requests live on one loop: the caller's. */
    if (!weft_loop_current()) {
        weft_seterr(WEFT_ENOTASK, "weft_http_session_new: no loop runs on this thread "
                    "(create the session in a task)");
        return NULL;
    }
    if (!opts)
        opts = &none;
    weft_http_session *s = calloc(1, sizeof *s);
    if (!s) {
        weft_seterr(-ENOMEM, "weft_http_session_new: out of memory");
        return NULL;
    }
    s->opts = *opts;
    weft_http_session_opts *o = &s->opts;
    o->limit = o->limit ? o->limit : DEFAULT_LIMIT;
    o->max_idle = o->max_idle ? o->max_idle : o->limit;
    o->idle_timeout_ms = or_default(o->idle_timeout_ms, DEFAULT_IDLE_MS);
    o->timeouts.pool_ms = or_default(o->timeouts.pool_ms, DEFAULT_TIMEOUT_MS);
    o->timeouts.connect_ms = or_default(o->timeouts.connect_ms, DEFAULT_TIMEOUT_MS);
    o->timeouts.io_ms = or_default(o->timeouts.io_ms, DEFAULT_TIMEOUT_MS);
    o->timeouts.total_ms = or_default(o->timeouts.total_ms, DEFAULT_TOTAL_MS);
    o->max_redirects = o->max_redirects ? o->max_redirects : DEFAULT_REDIRECTS;
    o->max_head = o->max_head ? o->max_head : DEFAULT_MAX_HEAD;
    o->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    /* The default fits any max_head; a value asked for must fit it too. */
    o->max_fields = o->max_fields ? o->max_fields
                  : DEFAULT_MAX_FIELDS < o->max_head / 4 ? DEFAULT_MAX_FIELDS : o->max_head / 4;
    s->tls = o->tls;
    if (o->max_head < 256) {
        weft_seterr(-EINVAL, "weft_http_session_new: opts.max_head %zu below 256", o->max_head);
        free(s);
        return NULL;
    }
    if (o->max_redirects < WEFT_HTTP_NO_REDIRECTS) {
        weft_seterr(-EINVAL, "weft_http_session_new: opts.max_redirects %d is negative "
                    "(WEFT_HTTP_NO_REDIRECTS for none)", o->max_redirects);
        free(s);
        return NULL;
    }
    if (o->max_fields > o->max_head / 4) { /* "a:\r\n" is the shortest field */
        weft_seterr(-EINVAL, "weft_http_session_new: opts.max_fields %zu above max_head / 4 (%zu)",
                    o->max_fields, o->max_head / 4);
        free(s);
        return NULL;
    }
    weft_timer_init(&s->idle_timer, idle_expire, s);
    return s;
}

static void session_destroy(weft_http_session *s)
{
    weft_timer_stop(&s->idle_timer);
    while (s->hosts) {
        weft__http_host *h = s->hosts;
        s->hosts = h->next;
        free(h);
    }
    if (s->own_tls)
        weft_tls_ctx_free(s->tls);
    free(s);
}

/* A freed session goes once nothing holds it: no busy connection (a
 * response or a request in flight) and no request inside weft_http_send
 * (one waiting for a slot, or between two round trips). */
static void destroy_if_done(weft_http_session *s)
{
    if (s->closing && s->busy == 0 && s->users == 0)
        session_destroy(s);
}

void weft__http_session_use(weft_http_session *s) { s->users++; }

void weft__http_session_unuse(weft_http_session *s)
{
    s->users--;
    destroy_if_done(s);
}

void weft_http_session_free(weft_http_session *s)
{
    if (!s)
        return;
    s->closing = true;
    while (s->lru_head) {
        weft__http_conn *c = s->lru_head;
        idle_unlink(s, c);
        conn_close(s, c);
        s->stats.closed_idle++;
    }
    /* Waiters leave the queue now, so that nothing freed later is handed
     * to them, and wake with WEFT_ECLOSED (they own nothing yet). */
    while (s->wait_head) {
        weft__http_waiter *w = s->wait_head;
        waiter_unlink(s, w);
        weft_event_set(&w->granted);
    }
    destroy_if_done(s);
}

void weft_http_session_stats(const weft_http_session *s, weft_http_stats *st)
{
    if (!st)
        return;
    if (!s) {
        *st = (weft_http_stats){0};
        return;
    }
    *st = s->stats;
    st->open = s->open - s->slots; /* a slot being connected is not open yet */
    st->idle = s->idle;
}

weft__http_host *weft__http_host_get(weft_http_session *s, const weft__url *u)
{
    for (weft__http_host *h = s->hosts; h; h = h->next)
        if (h->port == u->port && h->tls == u->tls && strcmp(h->name, u->host) == 0)
            return h;
    weft__http_host *h = calloc(1, sizeof *h);
    if (!h) {
        weft_seterr(-ENOMEM, "HTTP: out of memory");
        return NULL;
    }
    h->tls = u->tls;
    h->port = u->port;
    memcpy(h->name, u->host, sizeof h->name);
    h->next = s->hosts;
    s->hosts = h;
    return h;
}

/* ------------------------------------------------------------ slots */

static bool can_open(const weft_http_session *s, const weft__http_host *h)
{
    return s->open < s->opts.limit
        && (s->opts.limit_per_host == 0 || h->open < s->opts.limit_per_host);
}

/* Make a slot free for `h` by closing an idle connection when a limit is
 * what stops it: the oldest idle one of another host (of any host, `h`'s own
 * too, when `fresh` asks for a new connection).  Returns true if `h` can open
 * a connection now. */
static bool make_room(weft_http_session *s, weft__http_host *h, bool fresh)
{
    if (can_open(s, h))
        return true;
    weft__http_conn *victim = NULL;
    if (s->opts.limit_per_host && h->open >= s->opts.limit_per_host) {
        if (!fresh || !h->idle)
            return false;
        for (victim = h->idle; victim->next; victim = victim->next) /* its oldest */
            ;
    } else {
        for (victim = s->lru_head; victim && victim->host == h && !fresh;)
            victim = victim->lru_next;
    }
    if (!victim)
        return false;
    idle_unlink(s, victim);
    conn_close(s, victim);
    s->stats.closed_idle++;
    return can_open(s, h);
}

static void reserve(weft_http_session *s, weft__http_host *h)
{
    s->open++;
    h->open++;
    s->busy++;
    s->slots++;
}

/* Whether an idle connection is still usable: not expired, nothing unread,
 * and the server has not closed it (a peek that would block).  `check`
 * always asks the socket (a request that may not be retried). */
static bool conn_alive(weft_http_session *s, weft__http_conn *c, bool check)
{
    int64_t ttl = idle_ttl_ns(s);
    if (ttl != WEFT_NO_DEADLINE && weft_now() - c->idle_since >= ttl)
        return false;
    size_t buffered;
    weft_stream_peek(c->stream, &buffered);
    if (buffered)
        return false;
    /* Nothing seen on the socket while idle: alive, as far as anyone can
     * tell without a system call (a close racing with this request is what
     * the retry of idempotent requests is for).  Something seen: a close or
     * stray bytes, or an old edge; a peek tells. */
    int fd = weft_stream_fd(c->stream);
    if (!check && !(weft_fd_seen_ready(fd) & WEFT_READABLE))
        return true;
    /* The loop may not have polled for a while (a task that computed
     * without yielding), so the socket is asked, not the loop's memory.  Any
     * byte counts against the connection, as does the end: we never
     * pipeline, so an idle HTTP/1.1 connection has nothing to say but its
     * close, and on TLS that close is a close_notify record. */
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Take the freshest live idle connection of `h`, closing dead ones. */
static weft__http_conn *take_idle(weft_http_session *s, weft__http_host *h, bool check)
{
    while (h->idle) {
        weft__http_conn *c = h->idle;
        idle_unlink(s, c);
        if (conn_alive(s, c, check)) {
            s->busy++;
            return c;
        }
        conn_close(s, c);
        s->stats.discarded++;
    }
    return NULL;
}

/* Serve waiters, oldest first, with whatever is free now. */
static void kick(weft_http_session *s)
{
    if (s->closing)
        return; /* its waiters were sent away */
    for (weft__http_waiter *w = s->wait_head, *next; w; w = next) {
        next = w->next;
        weft__http_conn *c = w->fresh ? NULL : take_idle(s, w->host, w->check);
        if (c) {
            w->conn = c;
        } else if (make_room(s, w->host, w->fresh)) {
            reserve(s, w->host);
            w->has_slot = true;
        } else {
            continue;
        }
        waiter_unlink(s, w);
        weft_event_set(&w->granted);
    }
}

int weft__http_acquire(weft_http_session *s, weft__http_host *h, bool fresh, bool check,
                       int64_t deadline, weft__http_conn **conn)
{
    *conn = NULL;
    if (s->closing)
        return weft_seterr(WEFT_ECLOSED, "HTTP: the session is closed");
    if (!s->wait_head) { /* nobody queued before us */
        if (!fresh && (*conn = take_idle(s, h, check)))
            return 0;
        if (make_room(s, h, fresh)) {
            reserve(s, h);
            return 0;
        }
    }
    weft__http_waiter w = { .host = h, .fresh = fresh, .check = check, .queued = true };
    weft_event_init(&w.granted);
    w.prev = s->wait_tail;
    if (s->wait_tail)
        s->wait_tail->next = &w;
    else
        s->wait_head = &w;
    s->wait_tail = &w;
    s->stats.slot_waits++;
    int rc = weft_event_wait_until(&w.granted, deadline);
    weft_event_close(&w.granted);
    /* The caller (weft_http_send) holds the session: giving back what was
     * granted cannot free `s` or `h` under the messages below. */
    if (w.queued)
        waiter_unlink(s, &w);
    if ((w.conn || w.has_slot) && rc >= 0 && !s->closing) {
        *conn = w.conn;
        return 0;
    }
    /* Granted just as the wait failed or the session closed: give it back. */
    if (w.conn)
        weft__http_release(s, w.conn, WEFT__HTTP_POOL);
    else if (w.has_slot)
        weft__http_slot_release(s, h);
    if (s->closing)
        return weft_seterr(WEFT_ECLOSED, "HTTP: the session was closed while waiting");
    if (rc == -ETIMEDOUT)
        return weft_seterr(rc, "HTTP %s:%u: timed out waiting for a connection slot "
                           "(%zu of %zu connections in use)", h->name, h->port, s->open,
                           s->opts.limit);
    return weft_seterr(rc, "HTTP %s:%u: %s while waiting for a connection slot", h->name,
                       h->port, weft_strerror(rc));
}

void weft__http_slot_release(weft_http_session *s, weft__http_host *h)
{
    h->open--;
    s->open--;
    s->busy--;
    s->slots--;
    kick(s);
    destroy_if_done(s);
}

/* Close every idle connection (to free file descriptors).  Returns how many. */
static size_t close_all_idle(weft_http_session *s)
{
    size_t n = 0;
    while (s->lru_head) {
        weft__http_conn *c = s->lru_head;
        idle_unlink(s, c);
        conn_close(s, c);
        s->stats.closed_idle++;
        n++;
    }
    return n;
}

int weft__http_conn_open(weft_http_session *s, weft__http_host *h, int64_t deadline,
                         weft__http_conn **out)
{
    weft__http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        weft__http_slot_release(s, h);
        return weft_seterr(-ENOMEM, "HTTP: out of memory");
    }
    int rc = weft_tcp_connect(h->name, h->port, NULL, deadline);
    /* Out of descriptors: idle connections give way, once. */
    if ((rc == -EMFILE || rc == -ENFILE) && close_all_idle(s))
        rc = weft_tcp_connect(h->name, h->port, NULL, deadline);
    if (rc >= 0) {
        c->stream = weft_stream_new(rc, 0);
        rc = c->stream ? 0 : -ENOMEM;
    }
    if (rc == 0 && h->tls) {
        if (!s->tls) {
            s->tls = weft_tls_client_new(&(weft_tls_opts){ .alpn = "http/1.1" });
            s->own_tls = s->tls != NULL;
        }
        rc = s->tls ? weft_stream_start_tls(c->stream, s->tls, h->name, deadline) : WEFT_ETLS;
    }
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", weft_errmsg());
        weft_stream_close(c->stream);
        free(c);
        if (rc == -ETIMEDOUT)
            weft_seterr(rc, "HTTP %s:%u: timed out connecting", h->name, h->port);
        else
            weft_seterr(rc, "HTTP %s:%u: %s", h->name, h->port, msg);
        weft__http_slot_release(s, h); /* last: it may free the session and `h` */
        return rc;
    }
    c->host = h;
    s->slots--;
    s->stats.opened++;
    *out = c;
    return 0;
}

void weft__http_release(weft_http_session *s, weft__http_conn *c, weft__http_fate fate)
{
    s->busy--;
    if (fate != WEFT__HTTP_POOL || s->closing) {
        conn_close(s, c);
        if (fate == WEFT__HTTP_DISCARD)
            s->stats.discarded++;
        else
            s->stats.closed_done++;
    } else {
        c->idle_since = weft_now();
        idle_push(s, c);
        while (s->idle > s->opts.max_idle) {
            weft__http_conn *old = s->lru_head;
            idle_unlink(s, old);
            conn_close(s, old);
            s->stats.closed_idle++;
        }
        if (idle_ttl_ns(s) != WEFT_NO_DEADLINE && !weft_timer_active(&s->idle_timer)
            && s->lru_head)
            weft_timer_start(&s->idle_timer, idle_end(s, s->lru_head->idle_since));
    }
    kick(s);
    destroy_if_done(s);
}
