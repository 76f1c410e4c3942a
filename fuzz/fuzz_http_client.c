/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the whole HTTP client: fuzzed response bytes are
 * served over loopback by a server task in the same loop, and the client
 * reads them through the public API only (weft_http_fetch, weft_http_send
 * with weft_http_response_read or weft_http_response_body, HEAD, redirects,
 * a second request on the pooled connection, a cancel in the middle).
 *
 * Input: two control bytes, then the server's answers, one per request it
 * reads, separated by SEP.  Control byte 0:
 *   bits 0-1  method: GET, HEAD, POST with a body, POST with a streamed body
 *   bits 2-3  how the body is read: fetch, read() in pieces of byte 1's
 *             size, send and free unread, send then weft_http_response_body
 *   bit 4     follow no redirects
 *   bit 5     a second request after the first (pool reuse, stale retry)
 *   bit 6     max_body 100
 *   bit 7     run the request in a task cancelled after byte 1 % 8 yields
 * Byte 1 bit 6 instead tears the session down under a waiter: limit 1, the
 * first response held unread, a second request waiting for the slot (and
 * cancelled when byte 0 bit 7 is set), then the session freed, then the
 * held response.
 * Each answer starts with an action byte: bit 0 close after it, bit 1 reset
 * (SO_LINGER 0) instead, bit 2 write it in two pieces with a pause between;
 * else the connection stays open for the next request.  When the answers
 * run out, the next request's connection is closed unanswered.
 *
 * Fails on any crash or sanitizer report, a leak, and on the pool's books
 * not balancing: opened == discarded + closed_idle + closed_done + open.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <weft.h>
#include <weft/http.h>

#define SEP "\xfe\xfe\xfe"
#define MAX_CONNS 32

static const uint8_t *in_data;
static size_t in_size, in_pos;
static uint8_t ctl0, ctl1;
static bool session_freed; /* the books can no longer be read */

struct server {
    int lfd, port;
    weft_task *acceptor;
    weft_task *handlers[MAX_CONNS];
    int nhandlers;
};

/* The next answer (action byte and bytes), or false when none is left. */
static bool next_answer(uint8_t *action, const uint8_t **p, size_t *len)
{
    if (in_pos >= in_size)
        return false;
    const uint8_t *start = in_data + in_pos;
    size_t left = in_size - in_pos;
    const uint8_t *sep = memmem(start, left, SEP, 3);
    size_t n = sep ? (size_t)(sep - start) : left;
    in_pos += n + (sep ? 3 : 0);
    *action = n ? start[0] : 0;
    *p = n ? start + 1 : start;
    *len = n ? n - 1 : 0;
    return true;
}

static void reset_close(weft_stream *st)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(weft_stream_fd(st), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static int handler(void *arg)
{
    weft_stream *st = arg;
    for (;;) {
        char head[8192];
        ssize_t n = weft_stream_read_until(st, "\r\n\r\n", 4, head, sizeof head - 1,
                                           weft_deadline_ms(2000));
        if (n < 0)
            break;
        head[n] = '\0';
        /* a request body: Content-Length, or chunked to its last chunk */
        char *cl = strcasestr(head, "\r\ncontent-length:");
        if (cl) {
            size_t len = strtoul(cl + 17, NULL, 10);
            char buf[4096];
            while (len) {
                ssize_t r = weft_stream_read_some(st, buf, len < sizeof buf ? len : sizeof buf,
                                                  weft_deadline_ms(2000));
                if (r <= 0)
                    goto out;
                len -= (size_t)r;
            }
        } else if (strcasestr(head, "\r\ntransfer-encoding: chunked")) {
            char buf[4096];
            if (weft_stream_read_until(st, "0\r\n\r\n", 5, buf, sizeof buf, weft_deadline_ms(2000))
                < 0)
                break;
        }
        uint8_t action;
        const uint8_t *p;
        size_t len;
        if (!next_answer(&action, &p, &len))
            break;
        size_t first = action & 4 ? len / 2 : len;
        if (weft_stream_write_all(st, p, first, weft_deadline_ms(2000)) < 0)
            break;
        if (first < len) {
            weft_sleep_ms(1);
            if (weft_stream_write_all(st, p + first, len - first, weft_deadline_ms(2000)) < 0)
                break;
        }
        if (action & 2) {
            reset_close(st);
            break;
        }
        if (action & 1)
            break;
    }
out:
    weft_stream_close(st);
    return 0;
}

static int acceptor(void *arg)
{
    struct server *sv = arg;
    while (sv->nhandlers < MAX_CONNS) {
        int fd = weft_accept(sv->lfd, NULL, WEFT_NO_DEADLINE);
        if (fd < 0)
            return 0;
        weft_stream *st = weft_stream_new(fd, 0);
        if (!st) {
            weft_close(fd);
            continue;
        }
        sv->handlers[sv->nhandlers++] = weft_spawn(handler, st, NULL);
    }
    return 0;
}

static void check_books(weft_http_session *s)
{
    if (session_freed)
        return;
    weft_http_stats st;
    weft_http_session_stats(s, &st);
    if (st.opened != st.discarded + st.closed_idle + st.closed_done + st.open
        || st.idle > st.open) {
        fprintf(stderr, "books do not balance: opened %llu discarded %llu closed_idle %llu "
                "closed_done %llu open %zu idle %zu\n", (unsigned long long)st.opened,
                (unsigned long long)st.discarded, (unsigned long long)st.closed_idle,
                (unsigned long long)st.closed_done, st.open, st.idle);
        abort();
    }
}

/* A streamed request body: "hello" once. */
static ssize_t body_fn(void *arg, void *buf, size_t len)
{
    int *done = arg;
    if (*done || len < 5)
        return 0;
    *done = 1;
    memcpy(buf, "hello", 5);
    return 5;
}

struct request {
    weft_http_session *s;
    char url[64];
    int rc;
    bool hold;                  /* keep the response in `held` */
    weft_http_response *held;
};


/* One request, its body read as control byte 0 says. */
static int request(void *arg)
{
    struct request *q = arg;
    static const char *const methods[] = {"GET", "HEAD", "POST", "POST"};
    int streamed = 0;
    weft_http_request req = {
        .method = methods[ctl0 & 3],
        .url = q->url,
        .timeouts = {.connect_ms = 100, .io_ms = 20, .total_ms = 400},
        .max_redirects = ctl0 & 16 ? WEFT_HTTP_NO_REDIRECTS : 3,
        .max_body = ctl0 & 64 ? 100 : 0,
    };
    if ((ctl0 & 3) == 2) {
        req.body = "a=1&b=2";
        req.body_len = 7;
    } else if ((ctl0 & 3) == 3) {
        req.body_fn = body_fn;
        req.body_arg = &streamed;
        req.body_fn_length = ctl1 & 1 ? -1 : 5;
    }
    weft_http_response *r = NULL;
    const void *body;
    size_t len;
    switch ((ctl0 >> 2) & 3) {
    case 0:
        q->rc = weft_http_fetch(q->s, &req, &r);
        if (q->rc == 0 && weft_http_response_body(r, &body, &len) != 0)
            abort(); /* fetch read it: the same buffer again, no error */
        break;
    case 1: {
        q->rc = weft_http_send(q->s, &req, &r);
        char buf[256];
        size_t piece = (size_t)(ctl1 % sizeof buf) + 1;
        ssize_t n = 1;
        while (q->rc == 0 && n > 0)
            n = weft_http_response_read(r, buf, piece);
        if (n < 0 && weft_http_response_read(r, buf, piece) != n)
            abort(); /* errors are sticky */
        break;
    }
    case 2:
        q->rc = weft_http_send(q->s, &req, &r);
        break;
    case 3:
        q->rc = weft_http_send(q->s, &req, &r);
        if (q->rc == 0 && weft_http_response_body(r, &body, &len) == 0) {
            if (weft_http_response_content_length(r) >= 0 && (ctl0 & 3) != 1
                && weft_http_response_status(r) != 304 && weft_http_response_status(r) != 204
                && weft_http_response_status(r) >= 200
                && (uint64_t)weft_http_response_content_length(r) != len)
                abort(); /* a body of declared length is that long */
            if (((const char *)body)[len] != '\0')
                abort();
        }
        break;
    }
    if (r) {
        /* the accessors on whatever came back */
        weft_http_response_status(r);
        (void)strlen(weft_http_response_url(r));
        (void)strlen(weft_http_response_reason(r));
        const char *name, *value;
        for (size_t i = 0; weft_http_response_header_at(r, i, &name, &value); i++)
            (void)(strlen(name) + strlen(value));
    }
    check_books(q->s);
    if (q->hold && q->rc == 0) {
        q->held = r;
        return 0;
    }
    weft_http_response_free(r);
    check_books(q->s);
    return 0;
}

/* The session freed while a response is held and a request waits. */
static void teardown(weft_http_session *s, int port)
{
    struct request q1 = {.s = s, .hold = true}, q2 = {.s = s};
    snprintf(q1.url, sizeof q1.url, "http://127.0.0.1:%d/", port);
    snprintf(q2.url, sizeof q2.url, "http://127.0.0.1:%d/again", port);
    request(&q1);
    weft_task *t = weft_spawn(request, &q2, NULL);
    /* at least once: q2 must be inside weft_http_send before the free (the
     * session may not be used after it) */
    for (int y = 0; y < 1 + (ctl1 & 7); y++)
        weft_yield();
    if (ctl0 & 128)
        weft_cancel(t);
    check_books(s);
    session_freed = true;
    weft_http_session_free(s);
    weft_http_response_free(q1.held);
    weft_join(t, NULL);
}

static int fuzz_main(void *arg)
{
    (void)arg;
    struct server sv = {0};
    sv.lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    if (sv.lfd < 0)
        abort();
    sv.port = weft_local_port(sv.lfd);
    sv.acceptor = weft_spawn(acceptor, &sv, NULL);
    bool tear = ctl1 & 64;
    weft_http_session *s =
        weft_http_session_new(&(weft_http_session_opts){.limit = tear ? 1 : 2});
    if (!s)
        abort();
    session_freed = false;
    int rounds = tear ? 0 : ctl0 & 32 ? 2 : 1;
    if (tear)
        teardown(s, sv.port);
    for (int i = 0; i < rounds; i++) {
        struct request q = {.s = s};
        snprintf(q.url, sizeof q.url, "http://127.0.0.1:%d/%s", sv.port, i ? "again" : "");
        if (ctl0 & 128) {
            weft_task *t = weft_spawn(request, &q, NULL);
            for (int y = 0; y < (ctl1 & 7); y++)
                weft_yield();
            weft_cancel(t);
            weft_join(t, NULL);
        } else {
            request(&q);
        }
        check_books(s);
    }
    if (!tear)
        weft_http_session_free(s);
    weft_cancel(sv.acceptor);
    weft_join(sv.acceptor, NULL);
    weft_close(sv.lfd);
    for (int i = 0; i < sv.nhandlers; i++) {
        weft_cancel(sv.handlers[i]);
        weft_join(sv.handlers[i], NULL);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    ctl0 = data[0];
    ctl1 = data[1];
    in_data = data + 2;
    in_size = size - 2;
    in_pos = 0;
    if (weft_run(fuzz_main, NULL) != 0)
        abort();
    return 0;
}
