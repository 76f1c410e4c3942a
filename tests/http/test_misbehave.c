/* SPDX-License-Identifier: MIT */
/*
 * weft-http against servers that misbehave: a scripted HTTP server written
 * here as weft tasks in the test's own loop (weft_tcp_listen on 127.0.0.1:0,
 * one handler task per accepted connection, raw bytes through weft_stream),
 * which per case cuts a body short, sends garbage, stalls before or inside
 * the answer, resets the connection, sends conflicting framing, an oversized
 * head or a bad chunk, dribbles a valid chunked body one byte at a time,
 * answers HTTP/1.0 until close, says Connection: close, or drops a kept-alive
 * connection as the next request arrives (the stale-connection retry).  Also:
 * the pool-wait timeout apart from the others, cancellation in each phase
 * of a request (waiting for a slot, connecting, writing, reading the head,
 * reading the body) with the pool's books checked against the connections
 * the server really has open, and a 10,000-request stress run with random
 * cancellations ending with every connection accounted for.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_helpers.h"
#include "http/http_helpers.h"
#include <weft.h>
#include <weft/http.h>

/* ------------------------------------------------------------ helpers */

/* A small xorshift PRNG: the same choices on every run. */
static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rnd(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/* ------------------------------------------------------------ the server */

enum mode {
    M_OK,          /* keep-alive, Content-Length, `body_len` pattern bytes */
    M_SHORT_BODY,  /* Content-Length 100, 50 bytes, close */
    M_GARBAGE,     /* not a status line */
    M_STALL_HEAD,  /* read the request, never answer */
    M_STALL_BODY,  /* Content-Length 100, 50 bytes, then nothing */
    M_RESET,       /* read the request, then RST (SO_LINGER 0) */
    M_CONFLICT,    /* Content-Length and Transfer-Encoding */
    M_BIG_HEAD,    /* a 70 KB head */
    M_BAD_CHUNK,   /* chunk size "zz" */
    M_CHUNKED_1B,  /* valid chunked, extensions and trailers, 1-byte writes */
    M_HTTP10,      /* HTTP/1.0, no length, body until close */
    M_CONN_CLOSE,  /* Connection: close (but the server keeps the socket open) */
    M_DROP_SECOND, /* answer the first request; close on the second, unanswered */
    M_NO_READ,     /* read the head only, sleep 300 ms, then drain */
    M_STRESS,      /* keep-alive, random sizes and small random delays */
    M_REDIR_SHORT, /* "/": 302 to /next, Content-Length 10, "abc", close; "/next": 200 */
    M_REDIR_CHUNK, /* "/": 302 to /next, chunk size "zz"; "/next": 200 */
    M_REDIR_NOLEN, /* "/": 301 to /next, no length, kept open; "/next": 200 */
    M_REDIR_STALL, /* "/": 302 to /next, chunked, half a chunk, kept open; "/next": 200 */
    M_BODILESS,    /* HEAD, 304 (If-None-Match), /204, /1xx: Content-Length 4700000000 */
    M_FIELDS,      /* "/fields/N": a 200 with N header fields in all */
    M_SLOW_REDIR,  /* "/": 50 ms, then 302 to /next, Content-Length 0; "/next": 200 */
};

/* The server is http_helpers.h's; its `mode` is the mode of connections
 * accepted from now on, `body_len` the body of M_OK. */
struct conn {
    SERVER_CONN_FIELDS;
    enum mode mode;
    bool got_bytes;
    char path[128];       /* of the last request */
    bool conditional;     /* it had If-None-Match */
};

/* Read a request head (and its Content-Length body unless `skip_body`):
 * returns 1, 0 at a clean end of stream, or < 0. */
static int read_request(struct conn *c, bool skip_body, char *method, size_t mlen)
{
    char head[8192];
    ssize_t n = weft_stream_read_until(c->st, "\r\n\r\n", 4, head, sizeof head - 1,
                                       weft_deadline_ms(10000));
    if (n == WEFT_EEOF) {
        size_t left;
        weft_stream_peek(c->st, &left);
        c->got_bytes = c->got_bytes || left;
        return left == 0 ? 0 : -1;
    }
    if (n < 0)
        return (int)n;
    c->got_bytes = true;
    head[n] = '\0';
    c->sv->requests++;
    snprintf(method, mlen, "%.*s", (int)strcspn(head, " "), head);
    const char *path = head + strcspn(head, " ") + (head[strcspn(head, " ")] != '\0');
    snprintf(c->path, sizeof c->path, "%.*s", (int)strcspn(path, " "), path);
    c->conditional = strcasestr(head, "\r\nif-none-match:") != NULL;
    const char *cl = strcasestr(head, "\r\ncontent-length:");
    if (cl && !skip_body) {
        size_t len = strtoul(cl + 17, NULL, 10);
        char buf[16384];
        while (len) {
            size_t want = len < sizeof buf ? len : sizeof buf;
            ssize_t r = weft_stream_read_exact(c->st, buf, want, weft_deadline_ms(10000));
            if (r < 0)
                return (int)r;
            len -= (size_t)r;
        }
    }
    return 1;
}

static int write_str(struct conn *c, const char *s)
{
    ssize_t n = weft_stream_write_all(c->st, s, strlen(s), weft_deadline_ms(5000));
    return n < 0 ? (int)n : 0;
}

static int write_pattern(struct conn *c, size_t len)
{
    char buf[4096];
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < sizeof buf ? len - off : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)pattern(off + i);
        ssize_t w = weft_stream_write_all(c->st, buf, n, weft_deadline_ms(5000));
        if (w < 0)
            return (int)w;
        off += n;
    }
    return 0;
}

/* Wait for the client to close (or 10 s). */
static void until_eof(struct conn *c)
{
    char buf[16384];
    ssize_t n;
    do
        n = weft_stream_read_some(c->st, buf, sizeof buf, weft_deadline_ms(10000));
    while (n > 0);
}

static int respond_ok(struct conn *c, size_t len, const char *extra)
{
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s\r\n", len,
             extra ? extra : "");
    int rc = write_str(c, head);
    return rc ? rc : write_pattern(c, len);
}

static int serve(struct conn *c)
{
    char method[16];
    int rc = 0, nreq = 0;
    for (;;) {
        rc = read_request(c, c->mode == M_NO_READ, method, sizeof method);
        if (rc <= 0)
            return rc;
        rc = 0;
        nreq++;
        switch (c->mode) {
        case M_OK:
            rc = respond_ok(c, c->sv->body_len, NULL);
            break;
        case M_SHORT_BODY:
            rc = write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
            if (!rc)
                rc = write_pattern(c, 50);
            return rc;
        case M_GARBAGE:
            return write_str(c, "garbage, not HTTP\r\n\r\n");
        case M_STALL_HEAD:
            until_eof(c);
            return 0;
        case M_STALL_BODY:
            rc = write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
            if (!rc)
                rc = write_pattern(c, 50);
            until_eof(c);
            return rc;
        case M_RESET: {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(weft_stream_fd(c->st), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            return 0; /* the close resets */
        }
        case M_CONFLICT:
            return write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        case M_BIG_HEAD: {
            rc = write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
            char line[1024 + 32];
            char pad[1025];
            memset(pad, 'x', 1024);
            pad[1024] = '\0';
            for (int i = 0; !rc && i < 70; i++) {
                snprintf(line, sizeof line, "X-Pad-%d: %s\r\n", i, pad);
                rc = write_str(c, line);
            }
            if (!rc)
                rc = write_str(c, "\r\n");
            until_eof(c);
            return 0; /* the client may close while we write */
        }
        case M_BAD_CHUNK:
            return write_str(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "zz\r\nhello\r\n0\r\n\r\n");
        case M_CHUNKED_1B: {
            static const char msg[] =
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: dribble\r\n\r\n"
                "6;foo=bar\r\nhello \r\n"
                "5 ; name=\"quoted;value\"\r\nworld\r\n"
                "1\r\n!\r\n"
                "0;last\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n";
            for (size_t i = 0; !rc && i < sizeof msg - 1; i++) {
                ssize_t w = weft_stream_write_all(c->st, msg + i, 1, weft_deadline_ms(5000));
                rc = w < 0 ? (int)w : weft_sleep_ms(1);
            }
            break;
        }
        case M_HTTP10:
            rc = write_str(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n");
            if (!rc)
                rc = write_pattern(c, 3000);
            return rc;
        case M_CONN_CLOSE:
            rc = respond_ok(c, 5, "Connection: close\r\n");
            break; /* and go on serving: the client must not come back */
        case M_DROP_SECOND:
            if (nreq >= 2)
                return 0; /* closed unanswered */
            rc = respond_ok(c, 5, NULL);
            break;
        case M_NO_READ:
            weft_sleep_ms(300);
            until_eof(c);
            return 0;
        case M_STRESS: {
            size_t len = rnd() % 2000;
            if (rnd() % 4 == 0 && (rc = weft_sleep_ms(rnd() % 3)) != 0)
                break;
            char head[128];
            snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
            rc = write_str(c, head);
            if (!rc && rnd() % 4 == 0)
                rc = weft_sleep_ms(rnd() % 2);
            if (!rc)
                rc = write_pattern(c, len);
            break;
        }
        default: /* served by serve_paths */
            return -EINVAL;
        }
        if (rc < 0)
            return rc;
    }
}

/* The modes that answer by path (redirects, bodiless answers, many fields):
 * kept apart from serve() to keep that one readable. */
static int serve_paths(struct conn *c)
{
    char method[16];
    for (;;) {
        int rc = read_request(c, false, method, sizeof method);
        if (rc <= 0)
            return rc;
        if (c->mode != M_BODILESS && c->mode != M_FIELDS && strcmp(c->path, "/next") == 0) {
            rc = write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        } else if (c->mode == M_SLOW_REDIR) {
            weft_sleep_ms(50);
            rc = write_str(c, "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n");
        } else if (c->mode == M_REDIR_SHORT) {
            write_str(c, "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 10\r\n"
                         "\r\nabc");
            return 0;
        } else if (c->mode == M_REDIR_CHUNK) {
            write_str(c, "HTTP/1.1 302 Found\r\nLocation: /next\r\n"
                         "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
            until_eof(c);
            return 0;
        } else if (c->mode == M_REDIR_NOLEN) {
            write_str(c, "HTTP/1.1 301 Moved Permanently\r\nLocation: /next\r\n\r\nmoved");
            until_eof(c);
            return 0;
        } else if (c->mode == M_REDIR_STALL) {
            write_str(c, "HTTP/1.1 302 Found\r\nLocation: /next\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n5\r\nab");
            until_eof(c);
            return 0;
        } else if (c->mode == M_BODILESS) {
            static const char cl[] = "Content-Length: 4700000000\r\n";
            char head[512];
            if (strcmp(method, "HEAD") == 0)
                snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%s\r\n", cl);
            else if (c->conditional)
                snprintf(head, sizeof head, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n%s\r\n",
                         cl);
            else if (strcmp(c->path, "/204") == 0)
                snprintf(head, sizeof head, "HTTP/1.1 204 No Content\r\n%s\r\n", cl);
            else /* an informational head before a 204, both with the length */
                snprintf(head, sizeof head, "HTTP/1.1 103 Early Hints\r\n%s\r\n"
                         "HTTP/1.1 204 No Content\r\n%s\r\n", cl, cl);
            rc = write_str(c, head);
        } else if (c->mode == M_FIELDS) {
            int n = atoi(c->path + strlen("/fields/"));
            rc = write_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
            for (int i = 1; !rc && i < n; i++) {
                char line[64];
                snprintf(line, sizeof line, "X-F%d: %d\r\n", i, i);
                rc = write_str(c, line);
            }
            if (!rc)
                rc = write_str(c, "\r\nok");
        }
        if (rc < 0)
            return rc;
    }
}

/* A connection's handler: the client's doings (closing, resetting,
 * cancelling, giving up) are not the server's errors. */
static int serve_conn(void *arg)
{
    struct conn *c = arg;
    int rc = c->mode >= M_REDIR_SHORT ? serve_paths(c) : serve(c);
    if (getenv("WEFT_TEST_DEBUG_SERVER"))
        fprintf(stderr, "server: handler mode %d: %d %s\n", c->mode, rc,
                rc ? weft_errmsg() : "");
    if (!c->got_bytes)
        c->sv->silent++;
    if (rc == -ECONNRESET || rc == -EPIPE || rc == WEFT_EEOF || rc == -ECANCELED
        || rc == -ETIMEDOUT)
        return 0;
    return rc;
}

static void on_accept(void *arg)
{
    struct conn *c = arg;
    c->mode = c->sv->mode;
}

static void server_start(struct server *sv, enum mode mode)
{
    server_open(sv, serve_conn, sizeof(struct conn));
    sv->on_accept = on_accept;
    /* a small receive buffer (inherited by accepted sockets): a server that
     * does not read stops a large request body soon */
    int rcvbuf = 64 * 1024;
    assert_int_equal(setsockopt(sv->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    sv->mode = mode;
    sv->body_len = 1000;
    server_accept(sv);
}

/* server_close, and no handler failed.  Returns how many had to be cancelled. */
static int server_stop(struct server *sv)
{
    int stuck = server_close(sv);
    assert_int_equal(sv->errors, 0);
    return stuck;
}

/* One GET of / on `sv`; returns its result and leaves the message in msg. */
static int get_rc(weft_http_session *s, const struct server *sv, const weft_http_timeouts *t,
                  char *msg, size_t msglen)
{
    char u[64];
    url_of(sv, u, sizeof u, "/");
    weft_http_request req = {.url = u};
    if (t)
        req.timeouts = *t;
    weft_http_response *r = NULL;
    int rc = weft_http_fetch(s, &req, &r);
    snprintf(msg, msglen, "%s", rc < 0 ? weft_errmsg() : "");
    if (rc == 0)
        assert_non_null(r);
    else
        assert_null(r);
    weft_http_response_free(r);
    return rc;
}

/* ------------------------------------------------------------ broken answers */

struct broken_case {
    enum mode mode;
    int64_t io_ms;      /* timeouts.io_ms, 0 = default */
    int want;           /* the error */
    int want2;          /* or this one (0 = none) */
    const char *msg;    /* in weft_errmsg (NULL = anything) */
    int64_t max_ms;     /* must fail within this */
};

static const struct broken_case broken_cases[] = {
    {M_SHORT_BODY, 0, WEFT_EPROTO, 0, "body shorter", 2000},
    {M_GARBAGE, 0, WEFT_EPROTO, 0, "bad response", 2000},
    {M_STALL_HEAD, 100, -ETIMEDOUT, 0, "response head", 1000},
    {M_STALL_BODY, 100, -ETIMEDOUT, 0, "body", 1000},
    {M_RESET, 0, -ECONNRESET, WEFT_EEOF, NULL, 2000},
    {M_CONFLICT, 0, WEFT_EPROTO, 0, "Content-Length", 2000},
    {M_BIG_HEAD, 0, WEFT_EPROTO, 0, NULL, 2000},
    {M_BAD_CHUNK, 0, WEFT_EPROTO, 0, "chunk", 2000},
};

static int broken_main(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof broken_cases / sizeof broken_cases[0]; i++) {
        const struct broken_case *bc = &broken_cases[i];
        struct server sv;
        server_start(&sv, bc->mode);
        weft_http_session *s = session(NULL);
        char msg[256];
        int64_t t0 = (clock_ns() / MS);
        int rc = get_rc(s, &sv, &(weft_http_timeouts){.io_ms = bc->io_ms}, msg, sizeof msg);
        int64_t took = (clock_ns() / MS) - t0;
        printf("# mode %d: %d (%s) in %lld ms: %s\n", bc->mode, rc, weft_strerror(rc),
               (long long)took, msg);
        if (rc != bc->want && !(bc->want2 && rc == bc->want2))
            fail_msg("mode %d: got %d, want %d", bc->mode, rc, bc->want);
        if (bc->msg)
            assert_contains(msg, bc->msg);
        assert_true(took < bc->max_ms);
        /* the connection was thrown away, not pooled */
        weft_http_stats st = stats_of(s);
        assert_int_equal(st.opened, 1);
        assert_int_equal(st.discarded, 1);
        assert_int_equal(st.open, 0);
        assert_int_equal(st.idle, 0);
        assert_int_equal(st.retries, 0);
        assert_true(server_live_is(&sv, 0, 2000));
        weft_http_session_free(s);
        assert_int_equal(server_stop(&sv), 0);
    }
    return 0;
}

static void test_broken_answers(void **state)
{
    (void)state;
    run_task(broken_main);
}

/* The total limit applies too, and a stalled body read through
 * weft_http_response_read times out on its own. */
static int stall_read_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_STALL_BODY);
    weft_http_session *s = session(&(weft_http_session_opts){.timeouts = {.io_ms = 150}});
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    weft_http_request req = {.url = u};
    weft_http_response *r = NULL;
    assert_int_equal(weft_http_send(s, &req, &r), 0);
    assert_int_equal(weft_http_response_content_length(r), 100);
    char buf[200];
    size_t got = 0;
    ssize_t n;
    int64_t t0 = (clock_ns() / MS);
    while ((n = weft_http_response_read(r, buf, sizeof buf)) > 0)
        got += (size_t)n;
    assert_int_equal(got, 50);
    assert_int_equal(n, -ETIMEDOUT);
    assert_contains(weft_errmsg(), "timed out reading the body");
    assert_true((clock_ns() / MS) - t0 < 1000);
    /* sticky */
    assert_int_equal(weft_http_response_read(r, buf, sizeof buf), -ETIMEDOUT);
    const void *body;
    size_t len;
    assert_int_equal(weft_http_response_body(r, &body, &len), -ETIMEDOUT);
    assert_int_equal(stats_of(s).open, 0); /* closed at the error, before the free */
    weft_http_response_free(r);

    /* total: 300 ms for the whole request, io would allow more */
    req.timeouts = (weft_http_timeouts){.io_ms = 5000, .total_ms = 300};
    t0 = (clock_ns() / MS);
    assert_int_equal(weft_http_fetch(s, &req, &r), -ETIMEDOUT);
    int64_t took = (clock_ns() / MS) - t0;
    printf("# total 300 ms: failed after %lld ms: %s\n", (long long)took, weft_errmsg());
    assert_true(took >= 250 && took < 1500);
    weft_http_stats st = stats_of(s);
    assert_int_equal(st.open, 0);
    assert_int_equal(st.discarded, 2);
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_stalled_body_read(void **state)
{
    (void)state;
    run_task(stall_read_main);
}

/* ------------------------------------------------------------ good but odd */

static int odd_main(void *arg)
{
    (void)arg;
    /* chunked with extensions and trailers, one byte per write */
    struct server sv;
    server_start(&sv, M_CHUNKED_1B);
    weft_http_session *s = session(NULL);
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    for (int i = 0; i < 2; i++) {
        weft_http_response *r = NULL;
        int rc = weft_http_get(s, u, &r);
        if (rc)
            fprintf(stderr, "GET %d: %s\n", i, weft_errmsg());
        assert_int_equal(rc, 0);
        assert_int_equal(weft_http_response_status(r), 200);
        assert_string_equal(weft_http_response_header(r, "x-kind"), "dribble");
        assert_int_equal(weft_http_response_content_length(r), -1);
        const void *body;
        size_t len;
        assert_int_equal(weft_http_response_body(r, &body, &len), 0);
        assert_int_equal(len, 12);
        assert_memory_equal(body, "hello world!", 12);
        /* trailers are not fields */
        assert_null(weft_http_response_header(r, "X-Trailer"));
        weft_http_response_free(r);
    }
    weft_http_stats st = stats_of(s);
    print_stats("chunked 1-byte", s);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.reused, 1);
    assert_int_equal(st.idle, 1);
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);

    /* the same, streamed through weft_http_response_read in 1-byte reads */
    server_start(&sv, M_CHUNKED_1B);
    s = session(NULL);
    url_of(&sv, u, sizeof u, "/");
    weft_http_response *r = NULL;
    assert_int_equal(weft_http_send(s, &(weft_http_request){.url = u}, &r), 0);
    char got[32];
    size_t len = 0;
    ssize_t n;
    while ((n = weft_http_response_read(r, got + len, 1)) == 1)
        len++;
    assert_int_equal(n, 0);
    assert_int_equal(len, 12);
    assert_memory_equal(got, "hello world!", 12);
    weft_http_response_free(r);
    assert_int_equal(stats_of(s).idle, 1);
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);

    /* HTTP/1.0 without a length: until close, never reused */
    server_start(&sv, M_HTTP10);
    s = session(NULL);
    url_of(&sv, u, sizeof u, "/");
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(weft_http_get(s, u, &r), 0);
        assert_int_equal(weft_http_response_version(r), 0);
        assert_int_equal(weft_http_response_content_length(r), -1);
        const void *body;
        size_t blen;
        assert_int_equal(weft_http_response_body(r, &body, &blen), 0);
        assert_true(body_ok(body, blen, 3000));
        weft_http_response_free(r);
        st = stats_of(s);
        assert_int_equal(st.opened, (uint64_t)i);
        assert_int_equal(st.open, 0);
        assert_int_equal(st.reused, 0);
    }
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);

    /* Connection: close is honoured even though the server keeps it open */
    server_start(&sv, M_CONN_CLOSE);
    s = session(NULL);
    url_of(&sv, u, sizeof u, "/");
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(weft_http_get(s, u, &r), 0);
        assert_string_equal(weft_http_response_header(r, "connection"), "close");
        weft_http_response_free(r);
        st = stats_of(s);
        assert_int_equal(st.opened, (uint64_t)i);
        assert_int_equal(st.reused, 0);
        assert_int_equal(st.open, 0);
    }
    assert_true(server_live_is(&sv, 0, 2000));
    assert_int_equal(sv.accepted, 3);
    assert_int_equal(sv.requests, 3);
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_odd_but_valid(void **state)
{
    (void)state;
    run_task(odd_main);
}

/* ------------------------------------------------------------ stale retry */

static int stale_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_DROP_SECOND);
    weft_http_session *s = session(NULL);
    char msg[256];
    assert_int_equal(get_rc(s, &sv, NULL, msg, sizeof msg), 0);
    assert_int_equal(stats_of(s).idle, 1);
    /* the server closes the pooled connection as the GET arrives: retried */
    assert_int_equal(get_rc(s, &sv, NULL, msg, sizeof msg), 0);
    weft_http_stats st = stats_of(s);
    print_stats("stale GET", s);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.reused, 1);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(st.idle, 1);

    /* the same for a POST: not idempotent, not retried */
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    weft_http_request req = {.method = "POST", .url = u, .body = "x=1", .body_len = 3};
    weft_http_response *r = NULL;
    int rc = weft_http_fetch(s, &req, &r);
    printf("# stale POST: %d %s\n", rc, weft_errmsg());
    assert_int_equal(rc, WEFT_EEOF);
    assert_null(r);
    st = stats_of(s);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.open, 0);
    assert_int_equal(st.discarded, 2);

    /* an idle connection the server closed while idle is seen before use:
     * discarded, no retry needed, the request goes on a new one */
    assert_int_equal(get_rc(s, &sv, NULL, msg, sizeof msg), 0); /* opened 3 */
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_stale_retry(void **state)
{
    (void)state;
    run_task(stale_main);
}

/* A pooled connection the server closed while it sat idle is caught by the
 * peek before reuse (no request is sent on it). */
static int idle_closed_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_OK);
    weft_http_session *s = session(NULL);
    char msg[256];
    assert_int_equal(get_rc(s, &sv, NULL, msg, sizeof msg), 0);
    assert_int_equal(stats_of(s).idle, 1);
    /* the server drops it (cancel the handler: it closes its end) */
    weft_cancel(sv.handlers[0]);
    assert_true(server_live_is(&sv, 0, 2000));
    weft_sleep_ms(10);
    assert_int_equal(get_rc(s, &sv, NULL, msg, sizeof msg), 0);
    weft_http_stats st = stats_of(s);
    print_stats("closed while idle", s);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(st.reused, 0);
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_closed_while_idle(void **state)
{
    (void)state;
    run_task(idle_closed_main);
}

/* ------------------------------------------------------------ pool wait */

struct holder {
    weft_http_session *s;
    const char *url;
    int64_t hold_ms;
    int rc;
};

/* Take a response, keep its body unread for hold_ms, free it. */
static int holder_task(void *arg)
{
    struct holder *h = arg;
    weft_http_response *r = NULL;
    h->rc = weft_http_send(h->s, &(weft_http_request){.url = h->url}, &r);
    if (h->rc == 0) {
        weft_sleep_ms(h->hold_ms);
        weft_http_response_free(r);
    }
    return 0;
}

struct waiter {
    weft_http_session *s;
    const char *url;
    int64_t pool_ms;
    int rc;
    char msg[256];
    int64_t took_ms;
};

static int waiter_task(void *arg)
{
    struct waiter *w = arg;
    weft_http_response *r = NULL;
    weft_http_request req = {.url = w->url, .timeouts = {.pool_ms = w->pool_ms, .io_ms = 100}};
    int64_t t0 = (clock_ns() / MS);
    w->rc = weft_http_fetch(w->s, &req, &r);
    w->took_ms = (clock_ns() / MS) - t0;
    snprintf(w->msg, sizeof w->msg, "%s", w->rc ? weft_errmsg() : "");
    if (w->rc == 0) {
        const void *body;
        size_t len;
        if (weft_http_response_body(r, &body, &len) != 0 || !body_ok(body, len, 1000))
            w->rc = -1000;
    }
    weft_http_response_free(r);
    return 0;
}

static int pool_wait_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_OK);
    weft_http_session *s = session(&(weft_http_session_opts){.limit = 1});
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    struct holder h = {.s = s, .url = u, .hold_ms = 500, .rc = 1};
    weft_task *th = spawn_named(holder_task, &h, "holder");
    weft_sleep_ms(50); /* the holder has its response */
    assert_int_equal(h.rc, 0);
    assert_int_equal(stats_of(s).open, 1);
    /* pool = 100 ms: fails while the slot is held, although io (100 ms) and
     * connect would have been fine */
    struct waiter w1 = {.s = s, .url = u, .pool_ms = 100, .rc = 1};
    struct waiter w2 = {.s = s, .url = u, .pool_ms = 2000, .rc = 1};
    weft_task *t1 = spawn_named(waiter_task, &w1, "short");
    weft_task *t2 = spawn_named(waiter_task, &w2, "long");
    assert_int_equal(join_status(t1), 0);
    printf("# pool 100 ms: %d after %lld ms: %s\n", w1.rc, (long long)w1.took_ms, w1.msg);
    assert_int_equal(w1.rc, -ETIMEDOUT);
    assert_contains(w1.msg, "slot");
    assert_true(w1.took_ms >= 90 && w1.took_ms < 400);
    assert_int_equal(join_status(t2), 0);
    printf("# pool 2000 ms: %d after %lld ms\n", w2.rc, (long long)w2.took_ms);
    assert_int_equal(w2.rc, 0);
    assert_true(w2.took_ms >= 350); /* it waited for the holder */
    assert_int_equal(join_status(th), 0);
    weft_http_stats st = stats_of(s);
    print_stats("pool wait", s);
    assert_int_equal(st.slot_waits, 2);
    assert_int_equal(st.discarded, 1); /* the holder's unread body */
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.open, 1);
    assert_int_equal(st.idle, 1);
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_pool_wait_timeout(void **state)
{
    (void)state;
    run_task(pool_wait_main);
}

/* Freeing the session wakes its slot waiters with WEFT_ECLOSED. */
static int free_waiters_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_OK);
    weft_http_session *s = session(&(weft_http_session_opts){.limit = 1});
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    struct holder h = {.s = s, .url = u, .hold_ms = 200, .rc = 1};
    weft_task *th = spawn_named(holder_task, &h, "holder");
    weft_sleep_ms(30);
    struct waiter w = {.s = s, .url = u, .pool_ms = 5000, .rc = 1};
    weft_task *tw = spawn_named(waiter_task, &w, "waiter");
    weft_sleep_ms(30);
    weft_http_session_free(s);
    assert_int_equal(join_status(tw), 0);
    printf("# waiter after free: %d %s\n", w.rc, w.msg);
    assert_int_equal(w.rc, WEFT_ECLOSED);
    assert_int_equal(join_status(th), 0); /* its free closes the last connection */
    assert_true(server_live_is(&sv, 0, 2000));
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_free_wakes_waiters(void **state)
{
    (void)state;
    run_task(free_waiters_main);
}

/* ------------------------------------------------------------ cancellation */

struct req_task {
    weft_http_session *s;
    char url[64];
    const char *method;
    const void *body;
    size_t body_len;
    bool send_only_then_body; /* weft_http_send, then weft_http_response_body */
    int rc;
    char msg[256];
};

static int req_task(void *arg)
{
    struct req_task *q = arg;
    weft_http_request req = {
        .method = q->method, .url = q->url, .body = q->body, .body_len = q->body_len};
    weft_http_response *r = NULL;
    if (q->send_only_then_body) {
        q->rc = weft_http_send(q->s, &req, &r);
        if (q->rc == 0) {
            const void *b;
            size_t len;
            q->rc = weft_http_response_body(r, &b, &len);
        }
    } else {
        q->rc = weft_http_fetch(q->s, &req, &r);
    }
    snprintf(q->msg, sizeof q->msg, "%s", weft_errmsg());
    weft_http_response_free(r);
    return 0;
}

/* After a cancel: the books balance, the pool has no busy connection left
 * behind, its open count matches what the server has open, and a request
 * works. */
static void after_cancel(weft_http_session *s, struct server *sv, const char *what,
                         size_t still_busy)
{
    assert_books(s);
    weft_http_stats st = stats_of(s);
    print_stats(what, s);
    assert_int_equal(st.open - st.idle, still_busy);
    if (!server_live_is(sv, (int)st.open, 2000)) {
        fprintf(stderr, "%s: the server has %d connections open, the pool %zu\n", what,
                sv->live, st.open);
        fail();
    }
    enum mode saved = sv->mode;
    sv->mode = M_OK;
    char msg[256];
    weft_http_timeouts t = {.pool_ms = 3000};
    if (still_busy == 0)
        assert_int_equal(get_rc(s, sv, &t, msg, sizeof msg), 0);
    sv->mode = saved;
}

static void cancel_after(weft_task *t, int64_t ms)
{
    assert_int_equal(weft_sleep_ms(ms), 0);
    assert_int_equal(weft_cancel(t), 0);
}

/* Open a listening socket with backlog 0 and fill its queue so that the
 * next connect hangs.  Returns the port, or 0 when it could not be done;
 * the fds to close are in fds[0..*nfds). */
static int hanging_port(int *fds, int *nfds)
{
    *nfds = 0;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    fds[(*nfds)++] = l;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 0) != 0
        || getsockname(l, (struct sockaddr *)&a, &alen) != 0)
        return 0;
    for (int i = 0; i < 6; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        fds[(*nfds)++] = c;
        if (connect(c, (struct sockaddr *)&a, sizeof a) == 0)
            continue;
        if (errno != EINPROGRESS)
            return 0;
        struct pollfd p = {.fd = c, .events = POLLOUT};
        if (poll(&p, 1, 50) == 0)
            return ntohs(a.sin_port); /* this one hangs: so will the next */
    }
    return 0;
}

static int cancel_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_OK);
    /* 1. waiting for a slot */
    weft_http_session *s = session(&(weft_http_session_opts){.limit = 1});
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    struct holder h = {.s = s, .url = u, .hold_ms = 300, .rc = 1};
    weft_task *th = spawn_named(holder_task, &h, "holder");
    weft_sleep_ms(30);
    struct req_task q = {.s = s, .rc = 1};
    snprintf(q.url, sizeof q.url, "%s", u);
    weft_task *t = spawn_named(req_task, &q, "slot-waiter");
    cancel_after(t, 50);
    assert_int_equal(join_status(t), 0);
    printf("# cancelled waiting for a slot: %d %s\n", q.rc, q.msg);
    assert_int_equal(q.rc, -ECANCELED);
    assert_int_equal(stats_of(s).slot_waits, 1);
    after_cancel(s, &sv, "cancel: slot wait", 1);
    assert_int_equal(join_status(th), 0);
    after_cancel(s, &sv, "cancel: slot wait, holder done", 0);
    weft_http_session_free(s);

    /* 2. connecting */
    int fds[8], nfds;
    int hport = hanging_port(fds, &nfds);
    if (hport) {
        s = session(NULL);
        q = (struct req_task){.s = s, .rc = 1};
        snprintf(q.url, sizeof q.url, "http://127.0.0.1:%d/", hport);
        t = spawn_named(req_task, &q, "connecting");
        weft_sleep_ms(50);
        /* a slot being connected is not an open connection: the books balance */
        assert_int_equal(stats_of(s).open, 0);
        assert_books(s);
        cancel_after(t, 50);
        assert_int_equal(join_status(t), 0);
        printf("# cancelled connecting: %d %s\n", q.rc, q.msg);
        assert_int_equal(q.rc, -ECANCELED);
        weft_http_stats st = stats_of(s);
        assert_int_equal(st.opened, 0);
        assert_int_equal(st.open, 0);
        /* and the connect timeout, on its own */
        weft_http_request req = {.url = q.url, .timeouts = {.connect_ms = 100}};
        weft_http_response *r = NULL;
        int64_t t0 = (clock_ns() / MS);
        assert_int_equal(weft_http_fetch(s, &req, &r), -ETIMEDOUT);
        printf("# connect timeout: %s\n", weft_errmsg());
        assert_contains(weft_errmsg(), "connecting");
        assert_true((clock_ns() / MS) - t0 < 1000);
        after_cancel(s, &sv, "cancel: connecting", 0);
        weft_http_session_free(s);
    } else {
        printf("# could not make a connect that hangs on loopback: phase skipped\n");
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);

    /* 3. writing: the server reads nothing, an 8 MB body fills the socket */
    s = session(NULL);
    sv.mode = M_NO_READ;
    size_t big_len = 8 << 20;
    char *big = calloc(1, big_len);
    assert_non_null(big);
    q = (struct req_task){.s = s, .method = "PUT", .body = big, .body_len = big_len, .rc = 1};
    url_of(&sv, q.url, sizeof q.url, "/");
    t = spawn_named(req_task, &q, "writer");
    cancel_after(t, 100);
    assert_int_equal(join_status(t), 0);
    printf("# cancelled writing: %d %s\n", q.rc, q.msg);
    assert_int_equal(q.rc, -ECANCELED);
    after_cancel(s, &sv, "cancel: writing", 0);
    free(big);
    weft_http_session_free(s);

    /* 4. reading the head: the server stalls */
    s = session(NULL);
    sv.mode = M_STALL_HEAD;
    q = (struct req_task){.s = s, .rc = 1};
    url_of(&sv, q.url, sizeof q.url, "/");
    t = spawn_named(req_task, &q, "head-reader");
    cancel_after(t, 100);
    assert_int_equal(join_status(t), 0);
    printf("# cancelled reading the head: %d %s\n", q.rc, q.msg);
    assert_int_equal(q.rc, -ECANCELED);
    after_cancel(s, &sv, "cancel: reading the head", 0);
    weft_http_session_free(s);

    /* 5. reading the body: the server stalls mid-body */
    s = session(NULL);
    sv.mode = M_STALL_BODY;
    q = (struct req_task){.s = s, .send_only_then_body = true, .rc = 1};
    url_of(&sv, q.url, sizeof q.url, "/");
    t = spawn_named(req_task, &q, "body-reader");
    cancel_after(t, 100);
    assert_int_equal(join_status(t), 0);
    printf("# cancelled reading the body: %d %s\n", q.rc, q.msg);
    assert_int_equal(q.rc, -ECANCELED);
    after_cancel(s, &sv, "cancel: reading the body (response_body)", 0);
    weft_http_stats st = stats_of(s);
    assert_int_equal(st.discarded, 1);
    weft_http_session_free(s);
    /* the same through weft_http_fetch (a new session: nothing pooled) */
    s = session(NULL);
    q = (struct req_task){.s = s, .rc = 1};
    url_of(&sv, q.url, sizeof q.url, "/");
    t = spawn_named(req_task, &q, "fetcher");
    cancel_after(t, 100);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(q.rc, -ECANCELED);
    after_cancel(s, &sv, "cancel: reading the body (fetch)", 0);
    st = stats_of(s);
    assert_int_equal(st.discarded, 1);
    weft_http_session_free(s);

    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_cancel_each_phase(void **state)
{
    (void)state;
    run_task(cancel_main);
}

/* ------------------------------------------------------------ stress */

#define STRESS_REQUESTS 10000
#define STRESS_BATCH 200

struct stress_req {
    weft_http_session *s;
    const char *url;
    int rc;
};

static int stress_task(void *arg)
{
    struct stress_req *q = arg;
    weft_http_response *r = NULL;
    q->rc = weft_http_get(q->s, q->url, &r);
    if (q->rc == 0) {
        const void *body;
        size_t len;
        int64_t cl = weft_http_response_content_length(r);
        if (weft_http_response_status(r) != 200 || weft_http_response_body(r, &body, &len) != 0
            || cl < 0 || !body_ok(body, len, (size_t)cl))
            q->rc = -1000;
    } else if (q->rc != -ECANCELED) {
        fprintf(stderr, "stress: %d %s\n", q->rc, weft_errmsg());
    }
    weft_http_response_free(r);
    return 0;
}

static int stress_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_STRESS);
    weft_http_session *s = session(&(weft_http_session_opts){.limit = 16});
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    static struct stress_req q[STRESS_BATCH];
    static weft_task *t[STRESS_BATCH];
    int ok = 0, cancelled = 0, cancels = 0;
    int64_t t0 = (clock_ns() / MS);
    for (int done = 0; done < STRESS_REQUESTS; done += STRESS_BATCH) {
        for (int i = 0; i < STRESS_BATCH; i++) {
            q[i] = (struct stress_req){.s = s, .url = u, .rc = 1};
            t[i] = spawn_named(stress_task, &q[i], "stress");
        }
        /* cancel about one in eight, at random moments */
        for (int k = 0; k < STRESS_BATCH / 8; k++) {
            if (rnd() % 3 == 0)
                weft_sleep_ms(rnd() % 3);
            else
                weft_yield();
            weft_cancel(t[rnd() % STRESS_BATCH]);
            cancels++;
        }
        for (int i = 0; i < STRESS_BATCH; i++) {
            assert_int_equal(join_status(t[i]), 0);
            if (q[i].rc == 0)
                ok++;
            else if (q[i].rc == -ECANCELED)
                cancelled++;
            else
                fail_msg("request %d: %d", done + i, q[i].rc);
        }
        assert_books(s);
    }
    int64_t took = (clock_ns() / MS) - t0;
    weft_sleep_ms(50); /* let the server accept what is queued */
    weft_http_stats st = stats_of(s);
    print_stats("stress", s);
    printf("# %d requests in %lld ms: %d ok, %d cancelled (%d cancels); server: %d accepted "
           "(%d closed before a byte came), %d open, %d requests\n",
           STRESS_REQUESTS, (long long)took, ok, cancelled, cancels, sv.accepted, sv.silent,
           sv.live, sv.requests);
    assert_int_equal(ok + cancelled, STRESS_REQUESTS);
    assert_true(ok > STRESS_REQUESTS / 2);
    assert_true(cancelled > 0);
    assert_int_equal(st.open, st.idle);
    assert_int_equal(st.opened, st.discarded + st.closed_idle + st.idle);
    /*
     * Every connection the server accepted is one the session counted in
     * `opened`, except those whose connect was cancelled after the kernel
     * had finished the handshake (weft_tcp_connect returned -ECANCELED and
     * closed the socket, so the pool never had it): the server sees those
     * close before a byte arrives.  Every connection the session opened
     * carried a request.
     */
    assert_int_equal((uint64_t)(sv.accepted - sv.silent), st.opened);
    assert_true(st.open <= 16);
    assert_true(server_live_is(&sv, (int)st.open, 2000));
    weft_http_session_free(s);
    assert_true(server_live_is(&sv, 0, 2000));
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_stress_with_cancels(void **state)
{
    (void)state;
    run_task(stress_main);
}

/* ------------------------------------------------------------ messages */

/*
 * Every failure names the server and the phase (http.h: "weft_errmsg saying
 * what and where"), also when it comes from the socket: a reset while
 * waiting for the head, a cancel.  The task records; the checks run after
 * weft_run.
 */
static struct {
    int port;
    int reset_rc, cancel_rc;
    char reset_msg[256], cancel_msg[256];
} msgs;

static int messages_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_RESET);
    msgs.port = sv.port;
    weft_http_session *s = session(NULL);
    msgs.reset_rc = get_rc(s, &sv, NULL, msgs.reset_msg, sizeof msgs.reset_msg);
    sv.mode = M_STALL_HEAD;
    struct req_task q = {.s = s, .rc = 1};
    url_of(&sv, q.url, sizeof q.url, "/");
    weft_task *t = spawn_named(req_task, &q, "head-reader");
    weft_sleep_ms(50);
    weft_cancel(t);
    weft_join(t, NULL);
    msgs.cancel_rc = q.rc;
    snprintf(msgs.cancel_msg, sizeof msgs.cancel_msg, "%s", q.msg);
    weft_http_session_free(s);
    server_stop(&sv);
    return 0;
}

static void test_error_messages_name_the_server(void **state)
{
    (void)state;
    run_task(messages_main);
    printf("# reset: %d %s\n# cancel: %d %s\n", msgs.reset_rc, msgs.reset_msg, msgs.cancel_rc,
           msgs.cancel_msg);
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%d", msgs.port);
    assert_true(msgs.reset_rc == -ECONNRESET || msgs.reset_rc == WEFT_EEOF);
    assert_int_equal(msgs.cancel_rc, -ECANCELED);
    assert_contains(msgs.reset_msg, where);
    assert_contains(msgs.cancel_msg, where);
}

/* ------------------------------------------------------------ redirects whose body fails */

/* A 3xx whose body cannot be read to its end (short, a bad chunk, a body
 * that ends only with the connection, a stall) is dropped with its
 * connection and the redirect is followed on a new one.  Before, the
 * failure's message formatted the 3xx response's URL, never set: SIGSEGV. */
static const struct {
    enum mode mode;
    int64_t io_ms;
    int64_t min_ms, max_ms; /* bounds of the whole fetch */
} redir_cases[] = {
    {M_REDIR_SHORT, 5000, 0, 4000},
    {M_REDIR_CHUNK, 5000, 0, 4000},
    {M_REDIR_NOLEN, 5000, 0, 4000}, /* not drained: no wait for the io limit */
    {M_REDIR_STALL, 100, 90, 4000}, /* the drain times out */
};

static int redirect_fail_main(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof redir_cases / sizeof redir_cases[0]; i++) {
        struct server sv;
        server_start(&sv, redir_cases[i].mode);
        weft_http_session *s = session(NULL);
        char u[64];
        url_of(&sv, u, sizeof u, "/");
        weft_http_response *r = NULL;
        int64_t t0 = clock_ns() / MS;
        int rc = weft_http_fetch(s, &(weft_http_request){.url = u,
                                                          .timeouts = {.io_ms = redir_cases[i].io_ms}},
                                 &r);
        int64_t took = clock_ns() / MS - t0;
        printf("# redirect mode %d: %d in %lld ms %s\n", redir_cases[i].mode, rc,
               (long long)took, rc ? weft_errmsg() : "");
        assert_int_equal(rc, 0);
        assert_int_equal(weft_http_response_status(r), 200);
        const void *body;
        size_t len;
        assert_int_equal(weft_http_response_body(r, &body, &len), 0);
        assert_int_equal(len, 2);
        assert_memory_equal(body, "ok", 2);
        char want[80];
        url_of(&sv, want, sizeof want, "/next");
        assert_string_equal(weft_http_response_url(r), want);
        assert_true(took >= redir_cases[i].min_ms && took < redir_cases[i].max_ms);
        weft_http_response_free(r);
        weft_http_stats st = stats_of(s);
        assert_int_equal(st.opened, 2);
        assert_int_equal(st.discarded, 1); /* the 3xx's connection */
        assert_int_equal(st.idle, 1);
        assert_books(s);
        weft_http_session_free(s);
        assert_int_equal(server_stop(&sv), 0);
    }
    return 0;
}

static void test_redirect_body_fails(void **state)
{
    (void)state;
    run_task(redirect_fail_main);
}

/* ------------------------------------------------------------ bodiless answers */

/* HEAD, 304, 204 and 1xx answers that declare a length larger than any
 * max_body succeed with an empty body, and keep their connection. */
static int bodiless_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_BODILESS);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 1: a max_body below the declared length, but above 0 */
        weft_http_session *s = session(&(weft_http_session_opts){.max_body = pass ? 100 : 0});
        static const weft_http_header inm[] = {{"If-None-Match", "\"x\""}};
        const struct {
            const char *method, *path;
            const weft_http_header *h;
            int status;
        } cases[] = {
            {"HEAD", "/", NULL, 200},
            {"GET", "/", inm, 304},
            {"GET", "/204", NULL, 204},
            {"GET", "/1xx", NULL, 204},
            {"HEAD", "/", NULL, 200}, /* on the pooled connection again */
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char u[64];
            url_of(&sv, u, sizeof u, cases[i].path);
            weft_http_request req = {.method = cases[i].method, .url = u, .headers = cases[i].h,
                                     .nheaders = cases[i].h ? 1 : 0};
            weft_http_response *r = NULL;
            int rc = weft_http_fetch(s, &req, &r);
            if (rc)
                fail_msg("%s %s: %d %s", cases[i].method, cases[i].path, rc, weft_errmsg());
            assert_int_equal(weft_http_response_status(r), cases[i].status);
            assert_int_equal(weft_http_response_content_length(r), 4700000000LL);
            const void *body = NULL;
            size_t len = 99;
            assert_int_equal(weft_http_response_body(r, &body, &len), 0);
            assert_int_equal(len, 0);
            assert_non_null(body);
            char buf[8];
            assert_int_equal(weft_http_response_read(r, buf, sizeof buf), 0);
            weft_http_response_free(r);
        }
        weft_http_stats st = stats_of(s);
        assert_int_equal(st.opened, 1); /* one kept-alive connection for all */
        assert_int_equal(st.discarded, 0);
        assert_int_equal(st.idle, 1);
        assert_books(s);
        weft_http_session_free(s);
    }
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_bodiless_huge_length(void **state)
{
    (void)state;
    run_task(bodiless_main);
}

/* ------------------------------------------------------------ max_fields */

static int fields_rc(weft_http_session *s, const struct server *sv, int n)
{
    char path[32], u[64];
    snprintf(path, sizeof path, "/fields/%d", n);
    url_of(sv, u, sizeof u, path);
    weft_http_response *r = NULL;
    int rc = weft_http_fetch(s, &(weft_http_request){.url = u}, &r);
    if (rc == 0) {
        assert_int_equal(weft_http_response_header_count(r), (size_t)n);
        weft_http_response_free(r);
    } else {
        printf("# %d fields: %s\n", n, weft_errmsg());
        assert_contains(weft_errmsg(), "too many header fields");
    }
    return rc;
}

static int max_fields_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_FIELDS);
    const struct {
        size_t opt;
        int limit;
    } cases[] = {{0, 128}, {300, 300}, {1, 1}, {16, 16}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        weft_http_session *s = session(&(weft_http_session_opts){.max_fields = cases[i].opt});
        assert_int_equal(fields_rc(s, &sv, cases[i].limit), 0);
        assert_int_equal(fields_rc(s, &sv, cases[i].limit + 1), WEFT_EPROTO);
        assert_books(s);
        weft_http_session_free(s);
    }
    /* more fields than max_head could hold: refused */
    assert_null(weft_http_session_new(&(weft_http_session_opts){.max_head = 1024,
                                                                .max_fields = 257}));
    assert_contains(weft_errmsg(), "max_fields");
    weft_http_session *s = session(&(weft_http_session_opts){.max_head = 1024, .max_fields = 256});
    weft_http_session_free(s);
    /* the default gives way to a small max_head */
    s = session(&(weft_http_session_opts){.max_head = 256});
    weft_http_session_free(s);
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_max_fields(void **state)
{
    (void)state;
    run_task(max_fields_main);
}

/* ------------------------------------------------------------ session teardown */

/* Limit 1: the main task holds the only connection with its body unread,
 * a waiter queues for a slot; then, in one run without yielding, the
 * waiter is cancelled (or not), the session freed, the held response
 * freed.  The waiter must fail (WEFT_ECLOSED, or -ECANCELED), never be
 * handed the freed slot and connect again, and nothing may touch freed
 * memory (run under ASan). */
static int teardown_main(void *arg)
{
    (void)arg;
    for (int cancel = 0; cancel < 2; cancel++) {
        struct server sv;
        server_start(&sv, M_OK);
        weft_http_session *s = session(&(weft_http_session_opts){.limit = 1});
        char u[64];
        url_of(&sv, u, sizeof u, "/");
        weft_http_response *held = NULL;
        assert_int_equal(weft_http_send(s, &(weft_http_request){.url = u}, &held), 0);
        struct waiter w = {.s = s, .url = u, .pool_ms = 5000, .rc = 1};
        weft_task *tw = spawn_named(waiter_task, &w, "waiter");
        weft_sleep_ms(30);
        assert_int_equal(stats_of(s).slot_waits, 1);
        assert_books(s);
        if (cancel)
            weft_cancel(tw);
        weft_http_session_free(s);
        weft_http_response_free(held);
        assert_int_equal(join_status(tw), 0);
        printf("# waiter (cancel %d): %d %s\n", cancel, w.rc, w.msg);
        if (cancel)
            assert_true(w.rc == -ECANCELED || w.rc == WEFT_ECLOSED);
        else
            assert_int_equal(w.rc, WEFT_ECLOSED);
        assert_true(server_live_is(&sv, 0, 2000));
        assert_int_equal(sv.accepted, 1); /* the waiter never connected */
        assert_int_equal(server_stop(&sv), 0);
    }
    return 0;
}

static void test_teardown_with_waiter(void **state)
{
    (void)state;
    run_task(teardown_main);
}

/* The session is freed while a request waits for a 302: the request holds
 * the session until it is done, and its redirect fails with WEFT_ECLOSED
 * instead of opening a connection on a freed session. */
static int free_mid_redirect_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, M_SLOW_REDIR);
    weft_http_session *s = session(NULL);
    struct waiter w = {.s = s, .pool_ms = 5000, .rc = 1};
    char u[64];
    url_of(&sv, u, sizeof u, "/");
    w.url = u;
    weft_task *t = spawn_named(waiter_task, &w, "redirected");
    weft_sleep_ms(20);
    weft_http_session_free(s);
    assert_int_equal(join_status(t), 0);
    printf("# redirect after the free: %d %s\n", w.rc, w.msg);
    assert_int_equal(w.rc, WEFT_ECLOSED);
    assert_true(server_live_is(&sv, 0, 2000));
    assert_int_equal(sv.accepted, 1);
    assert_int_equal(server_stop(&sv), 0);
    return 0;
}

static void test_free_mid_redirect(void **state)
{
    (void)state;
    run_task(free_mid_redirect_main);
}

/* A session belongs to a loop: outside one there is none to make. */
static void test_session_outside_loop(void **state)
{
    (void)state;
    assert_null(weft_http_session_new(NULL));
    assert_contains(weft_errmsg(), "loop");
}

/* ------------------------------------------------------------ idle peek */

/* A plain blocking server on its own thread: it answers one request per
 * connection and closes 50 ms later (while the client's loop is busy),
 * for `conns` connections. */
struct closer {
    int lfd, port, conns, served;
    char methods[4][8];
    int closed; /* connections closed so far (atomic: the client spins on it) */
};

static void *closer_thread(void *arg)
{
    struct closer *c = arg;
    for (int i = 0; i < c->conns; i++) {
        struct pollfd p = {.fd = c->lfd, .events = POLLIN};
        if (poll(&p, 1, 10000) != 1)
            break;
        int fd = accept(c->lfd, NULL, NULL);
        if (fd < 0)
            break;
        char buf[4096];
        size_t got = 0;
        while (got < sizeof buf - 1) { /* the head, and a small body if any */
            ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            if (end && (!cl || got >= (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10)))
                break;
        }
        snprintf(c->methods[i % 4], sizeof c->methods[0], "%.*s", (int)strcspn(buf, " "), buf);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if (send(fd, ok, sizeof ok - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof ok - 1))
            c->served++;
        usleep(50 * 1000);
        close(fd);
        __atomic_add_fetch(&c->closed, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static int idle_peek_main(void *arg)
{
    struct closer *c = arg;
    weft_http_session *s = session(NULL);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", c->port);
    weft_http_response *r = NULL;
    assert_int_equal(weft_http_get(s, u, &r), 0);
    weft_http_response_free(r);
    assert_int_equal(stats_of(s).idle, 1);
    /* compute for 200 ms without yielding, and until the server has closed
     * (however loaded the machine): the loop never sees the close */
    compute_until_set(&c->closed, 200, 10000);
    assert_int_equal(__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE), 1);
    int rc = weft_http_fetch(s, &(weft_http_request){.method = "POST", .url = u, .body = "x",
                                                      .body_len = 1},
                             &r);
    printf("# POST after the server closed the idle connection: %d %s\n", rc,
           rc ? weft_errmsg() : "");
    assert_int_equal(rc, 0);
    assert_int_equal(weft_http_response_status(r), 200);
    weft_http_response_free(r);
    weft_http_stats st = stats_of(s);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.discarded, 1); /* the stale one, found by the peek */
    assert_int_equal(st.retries, 0);
    assert_books(s);
    weft_http_session_free(s);
    return 0;
}

static void test_post_after_idle_close(void **state)
{
    (void)state;
    struct closer c = {.conns = 2};
    c.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c.lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(c.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(c.lfd, 8), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(c.lfd, (struct sockaddr *)&a, &alen), 0);
    c.port = ntohs(a.sin_port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, closer_thread, &c), 0);
    int st = weft_run(idle_peek_main, &c);
    pthread_join(th, NULL);
    close(c.lfd);
    assert_int_equal(st, 0);
    assert_int_equal(c.served, 2);
    assert_string_equal(c.methods[1], "POST");
}

/* ------------------------------------------------------------ EMFILE */

/* The highest descriptor open now. */
static int highest_fd(void)
{
    int top = 2;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (atoi(e->d_name) > top)
            top = atoi(e->d_name);
    closedir(d);
    return top;
}

/* Out of file descriptors, a new connection is made by closing the idle
 * ones; with none idle the error comes through. */
static int emfile_main(void *arg)
{
    (void)arg;
    struct server a, b;
    server_start(&a, M_OK);
    server_start(&b, M_OK);
    weft_http_session *s = session(NULL);
    char ua[64], ub[64];
    url_of(&a, ua, sizeof ua, "/");
    url_of(&b, ub, sizeof ub, "/");
    /* three idle connections to a */
    weft_http_response *r[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_http_send(s, &(weft_http_request){.url = ua}, &r[i]), 0);
    for (int i = 0; i < 3; i++) {
        const void *body;
        size_t len;
        assert_int_equal(weft_http_response_body(r[i], &body, &len), 0);
        weft_http_response_free(r[i]);
    }
    assert_int_equal(stats_of(s).idle, 3);
    weft_sleep_ms(20); /* the servers' handlers are waiting, their fds in place */

    /* use up every descriptor under a lowered limit */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int top = highest_fd();
    low = old;
    low.rlim_cur = (rlim_t)top + 32;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    size_t cap = (size_t)low.rlim_cur;
    int *spare = calloc(cap, sizeof *spare), nspare = 0;
    assert_non_null(spare);
    for (;;) {
        int fd = dup(0);
        if (fd < 0)
            break;
        assert_true((size_t)nspare < cap);
        spare[nspare++] = fd;
    }
    assert_int_equal(errno, EMFILE);
    weft_http_response *rb = NULL;
    int rc = weft_http_fetch(s, &(weft_http_request){.url = ub}, &rb);
    printf("# under EMFILE with 3 idle: %d %s\n", rc, rc ? weft_errmsg() : "");
    int rc_none = 1;
    char msg_none[256] = "";
    if (rc == 0) {
        weft_http_response_free(rb);
        /* now nothing is idle that could give way (b's own connection is
         * idle; hold it busy with a response, and take the fd it freed) */
        weft_http_response *hold = NULL;
        assert_int_equal(weft_http_send(s, &(weft_http_request){.url = ub}, &hold), 0);
        while ((size_t)nspare < cap && (spare[nspare] = dup(0)) >= 0)
            nspare++;
        rc_none = weft_http_fetch(s, &(weft_http_request){.url = ua}, &rb);
        snprintf(msg_none, sizeof msg_none, "%s", weft_errmsg());
        weft_http_response_free(hold);
    }
    for (int i = 0; i < nspare; i++)
        close(spare[i]);
    free(spare);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, 0);
    printf("# under EMFILE with none idle: %d %s\n", rc_none, msg_none);
    assert_int_equal(rc_none, -EMFILE);
    weft_http_stats st = stats_of(s);
    assert_int_equal(st.closed_idle, 3);
    assert_books(s);
    weft_http_session_free(s);
    assert_int_equal(server_stop(&a), 0);
    assert_int_equal(server_stop(&b), 0);
    return 0;
}

static void test_idle_give_way_under_emfile(void **state)
{
    (void)state;
    run_task(emfile_main);
}

/* ------------------------------------------------------------ main */

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broken_answers),
        cmocka_unit_test(test_stalled_body_read),
        cmocka_unit_test(test_odd_but_valid),
        cmocka_unit_test(test_stale_retry),
        cmocka_unit_test(test_closed_while_idle),
        cmocka_unit_test(test_pool_wait_timeout),
        cmocka_unit_test(test_free_wakes_waiters),
        cmocka_unit_test(test_cancel_each_phase),
        cmocka_unit_test(test_stress_with_cancels),
        cmocka_unit_test(test_error_messages_name_the_server),
        cmocka_unit_test(test_redirect_body_fails),
        cmocka_unit_test(test_bodiless_huge_length),
        cmocka_unit_test(test_max_fields),
        cmocka_unit_test(test_teardown_with_waiter),
        cmocka_unit_test(test_free_mid_redirect),
        cmocka_unit_test(test_session_outside_loop),
        cmocka_unit_test(test_post_after_idle_close),
        cmocka_unit_test(test_idle_give_way_under_emfile),
    };
    return run_cases(tests, NULL, NULL);
}
