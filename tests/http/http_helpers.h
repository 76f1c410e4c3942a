/* SPDX-License-Identifier: MIT */
/* Helpers shared by the weft-http tests: sessions and their counters, and
 * the in-process HTTP servers.  Include after cmocka.h and test_helpers.h. */
#ifndef WEFT_TESTS_HTTP_HELPERS_H
#define WEFT_TESTS_HTTP_HELPERS_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft/http.h>

/* The bodies the test servers send (nginx's /1k and /64k too): the
 * printable bytes 0x21..0x7e, repeated. */
static inline unsigned char pattern(size_t i) { return (unsigned char)(0x21 + i % 94); }

static inline bool body_ok(const void *body, size_t len, size_t want)
{
    const unsigned char *b = body;
    if (len != want)
        return false;
    for (size_t i = 0; i < len; i++)
        if (b[i] != pattern(i))
            return false;
    return true;
}

static inline weft_http_stats stats_of(weft_http_session *s)
{
    weft_http_stats st;
    weft_http_session_stats(s, &st);
    return st;
}

static inline void print_stats(const char *what, weft_http_session *s)
{
    weft_http_stats st = stats_of(s);
    printf("# %s: requests %llu opened %llu reused %llu discarded %llu closed_idle %llu "
           "closed_done %llu slot_waits %llu retries %llu open %zu idle %zu\n",
           what, (unsigned long long)st.requests, (unsigned long long)st.opened,
           (unsigned long long)st.reused, (unsigned long long)st.discarded,
           (unsigned long long)st.closed_idle, (unsigned long long)st.closed_done,
           (unsigned long long)st.slot_waits, (unsigned long long)st.retries, st.open, st.idle);
}

/* The pool's books: every connection the session opened is open or was
 * closed and counted, and no more are idle than open. */
static inline bool books_balance(weft_http_session *s)
{
    weft_http_stats st = stats_of(s);
    return st.opened == st.discarded + st.closed_idle + st.closed_done + st.open &&
           st.idle <= st.open;
}

static inline void assert_books(weft_http_session *s)
{
    if (!books_balance(s)) {
        print_stats("books do not balance", s);
        fail();
    }
}

static inline weft_http_session *session(const weft_http_session_opts *o)
{
    weft_http_session *s = weft_http_session_new(o);
    if (!s)
        fprintf(stderr, "weft_http_session_new: %s\n", weft_errmsg());
    assert_non_null(s);
    return s;
}

/* ------------------------------------------------------------ in-process servers */

/*
 * The skeleton of the scripted HTTP servers the tests run as weft tasks in
 * their own loop: weft_tcp_listen on 127.0.0.1:0, one handler task per
 * accepted connection.  A test program says how one connection is served
 * (`serve`, given its own connection record, which begins with
 * SERVER_CONN_FIELDS) and keeps its knobs in the fields below that it needs.
 * Needs test_helpers.h (spawn_named, join_status) included first.
 */
#define SERVER_MAX_CONNS 4096

struct server;
#define SERVER_CONN_FIELDS \
    struct server *sv;     \
    weft_stream *st
struct server_conn {
    SERVER_CONN_FIELDS;
};

struct server {
    int lfd;
    int port;
    weft_task *acceptor;
    weft_task **handlers;   /* SERVER_MAX_CONNS */
    int accepted;           /* connections accepted */
    int live;               /* connections the server still has open */
    int requests;           /* requests read */
    int errors;             /* handler failures that are not the client's doing */
    /* Serve one connection: 0, or an error that is the server's fault
     * (counted in `errors`; the client's doings are the program's to
     * filter out). */
    int (*serve)(void *conn);
    void (*on_accept)(void *conn); /* optional: set up a new record */
    size_t conn_size;
    /* the programs' own knobs */
    int mode;               /* test_misbehave: how new connections are answered */
    size_t body_len;        /* test_misbehave: the body of M_OK */
    int silent;             /* test_misbehave: closed by the client before a byte came */
    weft_tls_ctx *ctx;      /* test_https: TLS, or NULL for plain HTTP */
    bool no_handshake;      /* test_https: accept and never start TLS */
    char redirect_to[128];  /* test_https: Location of /redirect */
    int handshakes;         /* test_https: completed */
    int64_t close_after_ms; /* test_https: after an answer, wait, send close_notify */
};

static inline int server_handler_task(void *arg)
{
    struct server_conn *c = arg;
    struct server *sv = c->sv;
    int rc = sv->serve(c);
    if (rc < 0) {
        fprintf(stderr, "server: handler: %s (%s)\n", weft_strerror(rc), weft_errmsg());
        sv->errors++;
    }
    weft_stream_close(c->st);
    sv->live--;
    free(c);
    return 0;
}

static inline int server_acceptor_task(void *arg)
{
    struct server *sv = arg;
    for (;;) {
        int fd = weft_accept(sv->lfd, NULL, WEFT_NO_DEADLINE);
        if (fd < 0)
            return fd == -ECANCELED ? 0 : fd;
        struct server_conn *c = calloc(1, sv->conn_size);
        assert_non_null(c);
        c->sv = sv;
        c->st = weft_stream_new(fd, 0);
        assert_non_null(c->st);
        assert_true(sv->accepted < SERVER_MAX_CONNS);
        if (sv->on_accept)
            sv->on_accept(c);
        sv->live++;
        sv->handlers[sv->accepted++] = spawn_named(server_handler_task, c, "handler");
    }
}

/* Zero `sv`, listen, and accept in a task from now on; each connection gets
 * a record of `conn_size` bytes (zeroed, sv and st set) and is served by
 * `serve` in its own task.  The program sets its knobs after this call. */
static inline void server_open(struct server *sv, int (*serve)(void *conn), size_t conn_size)
{
    memset(sv, 0, sizeof *sv);
    sv->serve = serve;
    sv->conn_size = conn_size;
    sv->handlers = calloc(SERVER_MAX_CONNS, sizeof *sv->handlers);
    assert_non_null(sv->handlers);
    sv->lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(sv->lfd >= 0);
    sv->port = weft_local_port(sv->lfd);
    assert_true(sv->port > 0);
}

/* Start accepting (after the program's settings on the listening socket). */
static inline void server_accept(struct server *sv)
{
    sv->acceptor = spawn_named(server_acceptor_task, sv, "acceptor");
}

/* Wait up to `ms` for the server's open connections to number `want`. */
static inline bool server_live_is(struct server *sv, int want, int64_t ms)
{
    int64_t end = weft_deadline_ms(ms);
    while (sv->live != want && weft_now() < end)
        weft_sleep_ms(2);
    return sv->live == want;
}

/* Stop accepting, give the handlers 2 s to see their clients go, cancel the
 * rest.  Returns how many had to be cancelled; every handler has ended. */
static inline int server_close(struct server *sv)
{
    weft_cancel(sv->acceptor);
    assert_int_equal(join_status(sv->acceptor), 0);
    assert_int_equal(weft_close(sv->lfd), 0);
    server_live_is(sv, 0, 2000);
    int stuck = sv->live;
    for (int i = 0; i < sv->accepted; i++) {
        weft_cancel(sv->handlers[i]);
        assert_int_equal(join_status(sv->handlers[i]), 0);
    }
    assert_int_equal(sv->live, 0);
    free(sv->handlers);
    sv->handlers = NULL;
    return stuck;
}

static inline void url_of(const struct server *sv, char *buf, size_t len, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", sv->port, path);
}

/* Compute without yielding for at least `min_ms`, and on until `*flag`
 * (set by another thread) is nonzero, at most `max_ms`: the loop sees
 * nothing meanwhile, however loaded the machine. */
static inline void compute_until_set(const int *flag, int64_t min_ms, int64_t max_ms)
{
    int64_t t0 = clock_ns();
    while (clock_ns() - t0 < min_ms * MS
           || (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && clock_ns() - t0 < max_ms * MS))
        ;
}

#endif
