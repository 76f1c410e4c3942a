/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 parser (src/http/parser.c): response and request heads, the
 * framing derived from them, the chunked decoder.  Every message parsed
 * here is also fed one byte at a time and at every 2-way split, each prefix
 * in a buffer of exactly its size (so ASan sees any read past `len`), and
 * must give the same result as the whole buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_helpers.h"
#include <weft/error.h>

#include "../../src/http/parser.h"

/* ------------------------------------------------------------ heads */

#define MAXF 64

typedef struct {
    int64_t rc;
    const char *why;
    const char *base; /* the buffer parsed, to compare spans as offsets */
    weft__http_head h;
    weft__http_field f[MAXF];
} parsed;

static parsed R; /* the whole-buffer result of the last parse */

static void run(bool req, bool head_req, weft__http_parser *p, const char *buf, size_t len,
                parsed *out)
{
    memset(&out->h, 0x5a, sizeof out->h); /* nothing stale passes for a result */
    out->h.fields = out->f;
    out->why = NULL;
    out->base = buf;
    out->rc = req ? weft__http_parse_request(p, buf, len, &out->h, &out->why)
                  : weft__http_parse_response(p, buf, len, head_req, &out->h, &out->why);
    assert_true(p->scanned <= len);
    if (out->rc < 0) {
        assert_int_equal(out->rc, WEFT_EPROTO);
        assert_non_null(out->why);
    } else {
        assert_true((size_t)out->rc <= len);
    }
}

static void same_span(const parsed *a, const char *sa, size_t la, const parsed *b,
                      const char *sb, size_t lb)
{
    assert_int_equal(la, lb);
    assert_int_equal(sa == NULL, sb == NULL);
    if (sa)
        assert_int_equal(sa - a->base, sb - b->base);
}

static void same(const parsed *a, const parsed *b)
{
    assert_int_equal(a->rc, b->rc);
    if (a->rc < 0) {
        assert_ptr_equal(a->why, b->why); /* static strings */
        return;
    }
    if (a->rc == 0)
        return;
    const weft__http_head *x = &a->h, *y = &b->h;
    assert_int_equal(x->status, y->status);
    assert_int_equal(x->version_minor, y->version_minor);
    same_span(a, x->reason, x->reason_len, b, y->reason, y->reason_len);
    same_span(a, x->method, x->method_len, b, y->method, y->method_len);
    same_span(a, x->target, x->target_len, b, y->target, y->target_len);
    assert_int_equal(x->nfields, y->nfields);
    for (size_t i = 0; i < x->nfields; i++) {
        same_span(a, x->fields[i].name, x->fields[i].name_len, b, y->fields[i].name,
                  y->fields[i].name_len);
        same_span(a, x->fields[i].value, x->fields[i].value_len, b, y->fields[i].value,
                  y->fields[i].value_len);
    }
    assert_int_equal(x->framing, y->framing);
    assert_int_equal(x->content_length, y->content_length);
    assert_int_equal(x->keep_alive, y->keep_alive);
    assert_int_equal(x->upgrade, y->upgrade);
    assert_int_equal(x->expect_continue, y->expect_continue);
}

/* Feed msg[0..len) as the prefixes ends[0] < ends[1] < ... (the last one
 * being len), each in a fresh buffer of exactly that size, stopping at the
 * first non-zero result. */
static void feed_prefixes(bool req, bool head_req, const char *msg, const size_t *ends, size_t n,
                          size_t max_head, size_t max_fields, parsed *out)
{
    weft__http_parser p;
    weft__http_parser_init(&p, max_head, max_fields);
    size_t last_scanned = 0;
    for (size_t k = 0; k < n; k++) {
        char *b = malloc(ends[k] ? ends[k] : 1);
        assert_non_null(b);
        memcpy(b, msg, ends[k]);
        run(req, head_req, &p, b, ends[k], out);
        assert_true(p.scanned >= last_scanned); /* monotone */
        last_scanned = p.scanned;
        /* Keep the offsets, drop the buffer: spans are compared relatively. */
        out->base = b;
        free(b);
        if (out->rc != 0)
            return;
    }
}

static int64_t parse_ex(bool req, bool head_req, const char *msg, size_t len, size_t max_head,
                        size_t max_fields, bool splits)
{
    weft__http_parser p;
    weft__http_parser_init(&p, max_head, max_fields);
    run(req, head_req, &p, msg, len, &R);
    if (!splits)
        return R.rc;
    parsed *q = malloc(sizeof *q);
    size_t *ends = malloc((len + 1) * sizeof *ends);
    assert_non_null(q);
    assert_non_null(ends);
    for (size_t i = 0; i <= len; i++)
        ends[i] = i;
    feed_prefixes(req, head_req, msg, ends, len + 1, max_head, max_fields, q);
    same(&R, q);
    for (size_t k = 0; k <= len; k++) {
        size_t two[2] = {k, len};
        feed_prefixes(req, head_req, msg, two, 2, max_head, max_fields, q);
        same(&R, q);
    }
    free(ends);
    free(q);
    return R.rc;
}

#define RESP(s) parse_ex(false, false, s, sizeof(s) - 1, 0, MAXF, true)
#define RESP_HEAD(s) parse_ex(false, true, s, sizeof(s) - 1, 0, MAXF, true)
#define REQ(s) parse_ex(true, false, s, sizeof(s) - 1, 0, MAXF, true)

#define RESP_ERR(s, w)                                                                        \
    do {                                                                                      \
        assert_int_equal(RESP(s), WEFT_EPROTO);                                               \
        assert_string_equal(R.why, w);                                                        \
    } while (0)
#define REQ_ERR(s, w)                                                                         \
    do {                                                                                      \
        assert_int_equal(REQ(s), WEFT_EPROTO);                                                \
        assert_string_equal(R.why, w);                                                        \
    } while (0)

static void assert_span(const char *s, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
}

static void assert_field(size_t i, const char *name, const char *value)
{
    assert_true(i < R.h.nfields);
    assert_span(R.h.fields[i].name, R.h.fields[i].name_len, name);
    assert_span(R.h.fields[i].value, R.h.fields[i].value_len, value);
}

/* ------------------------------------------------------------ responses */

static void test_response_basic(void **state)
{
    (void)state;
    static const char m[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Length: 5\r\n"
                            "Content-Type: text/plain\r\n"
                            "\r\n"
                            "hello";
    assert_int_equal(RESP(m), sizeof m - 1 - 5); /* the body is left alone */
    assert_int_equal(R.h.status, 200);
    assert_int_equal(R.h.version_minor, 1);
    assert_span(R.h.reason, R.h.reason_len, "OK");
    assert_null(R.h.method);
    assert_null(R.h.target);
    assert_int_equal(R.h.nfields, 2);
    assert_field(0, "Content-Length", "5");
    assert_field(1, "Content-Type", "text/plain");
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_LENGTH);
    assert_int_equal(R.h.content_length, 5);
    assert_true(R.h.keep_alive);
    assert_false(R.h.upgrade);
    assert_false(R.h.expect_continue);
}

static void test_response_reason(void **state)
{
    (void)state;
    /* No SP and no reason: accepted, like most clients. */
    assert_int_equal(RESP("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), 35);
    assert_int_equal(R.h.status, 200);
    assert_int_equal(R.h.reason_len, 0);
    assert_int_equal(RESP("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), 36);
    assert_int_equal(R.h.status, 404);
    assert_int_equal(R.h.reason_len, 0);
    /* HTAB, SP and obs-text are allowed in a reason phrase. */
    assert_true(RESP("HTTP/1.0 500 Internal\tServer \xc3\xa9rror \r\n\r\n") > 0);
    assert_int_equal(R.h.version_minor, 0);
    assert_span(R.h.reason, R.h.reason_len, "Internal\tServer \xc3\xa9rror ");
    assert_true(RESP("HTTP/1.1 100 Continue\r\n\r\n") > 0);
    assert_int_equal(R.h.status, 100);
    assert_true(RESP("HTTP/1.1 599 X\r\n\r\n") > 0);
    assert_int_equal(R.h.status, 599);
}

static void test_response_fields(void **state)
{
    (void)state;
    assert_true(RESP("HTTP/1.1 200 OK\r\n"
                     "A:  spaced value \t \r\n"
                     "B:\r\n"
                     "C: \t \r\n"
                     "x-!#$%&'*+-.^_`|~: \"quoted\" (comment) \xff\r\n"
                     "D:a:b\r\n"
                     "Content-Length: 0\r\n\r\n") > 0);
    assert_int_equal(R.h.nfields, 6);
    assert_field(0, "A", "spaced value");
    assert_field(1, "B", "");
    assert_field(2, "C", "");
    assert_field(3, "x-!#$%&'*+-.^_`|~", "\"quoted\" (comment) \xff");
    assert_field(4, "D", "a:b");
}

static void test_field_get(void **state)
{
    (void)state;
    assert_true(RESP("HTTP/1.1 200 OK\r\n"
                     "Set-Cookie: a=1\r\n"
                     "content-TYPE: text/html\r\n"
                     "set-cookie: b=2\r\n"
                     "X-^: odd\r\n"
                     "Content-Length: 0\r\n\r\n") > 0);
    size_t n = 99;
    const char *v = weft__http_field_get(&R.h, "Content-Type", &n);
    assert_non_null(v);
    assert_span(v, n, "text/html");
    v = weft__http_field_get(&R.h, "SET-COOKIE", &n); /* the first one */
    assert_span(v, n, "a=1");
    assert_non_null(weft__http_field_get(&R.h, "content-length", NULL));
    assert_null(weft__http_field_get(&R.h, "Content", &n));
    assert_null(weft__http_field_get(&R.h, "Content-Types", &n));
    assert_null(weft__http_field_get(&R.h, "Host", &n));
    /* '^' | 0x20 is '~': only letters are folded. */
    assert_null(weft__http_field_get(&R.h, "x-~", &n));
    assert_non_null(weft__http_field_get(&R.h, "x-^", &n));
}

static void test_response_framing(void **state)
{
    (void)state;
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_CHUNKED);
    assert_true(R.h.keep_alive);
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_CHUNKED);
    /* Codings from several fields form one list. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_CHUNKED);
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,, chunked ,\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_CHUNKED);
    /* chunked not last: the body runs until the server closes. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_UNTIL_CLOSE);
    assert_false(R.h.keep_alive);
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_UNTIL_CLOSE);
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: x ; a=b, gzip;q=1\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_UNTIL_CLOSE);
    /* chunked takes no parameters: "chunked;x" is some other coding. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_UNTIL_CLOSE);
    /* Neither: until close, not persistent. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_UNTIL_CLOSE);
    assert_false(R.h.keep_alive);
    /* Content-Length: identical repeats, leading zeros, the largest value. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nContent-Length: 5, 5,5\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_LENGTH);
    assert_int_equal(R.h.content_length, 5);
    assert_true(RESP("HTTP/1.1 200 OK\r\nContent-Length: 42\r\ncontent-length: 0042\r\n\r\n") > 0);
    assert_int_equal(R.h.content_length, 42);
    assert_true(RESP("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_LENGTH);
    assert_int_equal(R.h.content_length, 0);
    assert_true(RESP("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n") > 0);
    assert_int_equal(R.h.content_length, INT64_MAX);
}

static void test_response_no_body(void **state)
{
    (void)state;
    /* HEAD: no body whatever the fields say; the length is still reported. */
    assert_true(RESP_HEAD("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_int_equal(R.h.content_length, 1234);
    assert_true(R.h.keep_alive);
    assert_true(RESP_HEAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_true(RESP_HEAD("HTTP/1.1 200 OK\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_true(R.h.keep_alive);
    /* 204 and 304 with Content-Length. */
    assert_true(RESP("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_true(R.h.keep_alive);
    assert_true(RESP("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_true(RESP("HTTP/1.1 304 Not Modified\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_true(R.h.keep_alive);
    /* 1xx: no body; 101 is an upgrade. */
    assert_true(RESP("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_false(R.h.upgrade);
    assert_true(RESP("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_true(R.h.upgrade);
}

static void test_response_interim_then_final(void **state)
{
    (void)state;
    static const char m[] = "HTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    int64_t n = RESP(m);
    assert_int_equal(n, 25);
    assert_int_equal(R.h.status, 100);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    weft__http_parser p;
    weft__http_parser_init(&p, 0, MAXF);
    run(false, false, &p, m + n, sizeof m - 1 - (size_t)n, &R);
    assert_int_equal(R.rc, sizeof m - 1 - (size_t)n - 2);
    assert_int_equal(R.h.status, 200);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_LENGTH);
    assert_int_equal(R.h.content_length, 2);
}

static void test_keep_alive(void **state)
{
    (void)state;
    assert_true(RESP("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_false(R.h.keep_alive);
    assert_true(RESP("HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\n"
                     "Content-Length: 0\r\n\r\n") > 0);
    assert_false(R.h.keep_alive);
    assert_true(RESP("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: x,close\r\n"
                     "Content-Length: 0\r\n\r\n") > 0);
    assert_false(R.h.keep_alive);
    /* Same length and initial as "connection", another field. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nCookie-Abc: close\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_true(R.h.keep_alive);
    /* "closed" is not "close". */
    assert_true(RESP("HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_true(R.h.keep_alive);
    /* HTTP/1.0: persistent only when asked for. */
    assert_true(RESP("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_LENGTH);
    assert_false(R.h.keep_alive);
    assert_true(RESP("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\n") > 0);
    assert_true(R.h.keep_alive);
    assert_true(RESP("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n"
                     "Content-Length: 3\r\n\r\n") > 0);
    assert_false(R.h.keep_alive);
    /* Until close is never persistent. */
    assert_true(RESP("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_UNTIL_CLOSE);
    assert_false(R.h.keep_alive);
    /* Connection: upgrade. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nConnection: UpGrade\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_true(R.h.upgrade);
}

static void test_response_errors(void **state)
{
    (void)state;
    RESP_ERR("HTTP/1.1 20 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 2000 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1  200 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 200OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 2a0 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 099 Low\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 600 High\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 000 Zero\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 \r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.x 200 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/11 200 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.10 200 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1,1 200 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 200 O\x01K\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 200 O\rK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 200 O\x7fK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1 200 O\0K\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/1.1\t200 OK\r\n\r\n", "bad status line");
    /* Not HTTP at all: refused from the first bytes, not after max_head. */
    RESP_ERR("http/1.1 200 OK\r\n\r\n", "bad status line");
    RESP_ERR("SSH-2.0-OpenSSH_9.2\r\n", "bad status line");
    RESP_ERR(" HTTP/1.1 200 OK\r\n\r\n", "bad status line");
    RESP_ERR("\r\nHTTP/1.1 200 OK\r\n\r\n", "bad status line");
    RESP_ERR("HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version");
    RESP_ERR("HTTP/1.2 200 OK\r\n\r\n", "unsupported HTTP version");
    RESP_ERR("HTTP/0.9 200 OK\r\n\r\n", "unsupported HTTP version");
    RESP_ERR("HTTP/9.9 200 OK\r\n\r\n", "unsupported HTTP version");
}

static void test_field_errors(void **state)
{
    (void)state;
    RESP_ERR("HTTP/1.1 200 OK\r\nName : v\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nName\t: v\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\n: v\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nNocolon\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nNa me: v\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nNa\0me: v\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nN\xc3\xa9: v\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nN(x): v\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nName: a\0b\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nName: a\x01\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nName: a\x7f\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nName: a\rb\r\n\r\n", "bad header field");
    RESP_ERR("HTTP/1.1 200 OK\r\nName: a\x1b[0m\r\n\r\n", "bad header field");
    /* obs-fold, and whitespace before the first field. */
    RESP_ERR("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "obsolete line folding");
    RESP_ERR("HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", "obsolete line folding");
    RESP_ERR("HTTP/1.1 200 OK\r\n Host: x\r\n\r\n", "obsolete line folding");
    /* Bare LF: anywhere, and noticed before the end of the head. */
    RESP_ERR("HTTP/1.1 200 OK\n\n", "bare LF line ending");
    RESP_ERR("HTTP/1.1 200 OK\r\nA: b\n\r\n", "bare LF line ending");
    RESP_ERR("HTTP/1.1 200 OK\r\nA: b\r\n\n", "bare LF line ending");
    RESP_ERR("HTTP/1.1 200 OK\r\nA: b\n", "bare LF line ending");
    RESP_ERR("HTTP/1.1 200 OK\r\r\n\r\n", "bad status line");
}

static void test_framing_errors(void **state)
{
    (void)state;
    RESP_ERR("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
             "conflicting Content-Length and Transfer-Encoding");
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
             "conflicting Content-Length and Transfer-Encoding");
    /* Even where neither would be used. */
    RESP_ERR("HTTP/1.1 204 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
             "conflicting Content-Length and Transfer-Encoding");
    static const char *bad_cl[] = {
        "abc", "5, 6", "", " ", "5,", ",5", "5,,5", "-1", "+5", "5 5", "0x10", "1.0", "5;",
        "18446744073709551616", "9223372036854775808", "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad_cl / sizeof *bad_cl; i++) {
        char m[256];
        int n = snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n", bad_cl[i]);
        assert_int_equal(parse_ex(false, false, m, (size_t)n, 0, MAXF, true), WEFT_EPROTO);
        assert_string_equal(R.why, "bad Content-Length");
        /* Checked even when no body follows. */
        n = snprintf(m, sizeof m, "HTTP/1.1 304 OK\r\nContent-Length: %s\r\n\r\n", bad_cl[i]);
        assert_int_equal(parse_ex(false, true, m, (size_t)n, 0, MAXF, false), WEFT_EPROTO);
        assert_string_equal(R.why, "bad Content-Length");
    }
    RESP_ERR("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
             "bad Content-Length");
    RESP_ERR("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             "Transfer-Encoding in HTTP/1.0 message");
    RESP_ERR("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
             "conflicting Content-Length and Transfer-Encoding");
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
             "bad Transfer-Encoding");
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
             "bad Transfer-Encoding");
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", "bad Transfer-Encoding");
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n", "bad Transfer-Encoding");
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip chunked\r\n\r\n",
             "bad Transfer-Encoding");
    RESP_ERR("HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
             "bad Transfer-Encoding");
}

/* A head of exactly `len` bytes with the status line and one big field. */
static char *big_head(size_t len)
{
    static const char pre[] = "HTTP/1.1 200 OK\r\nX: ", post[] = "\r\n\r\n";
    char *m = malloc(len + 16);
    assert_non_null(m);
    size_t v = len - (sizeof pre - 1) - (sizeof post - 1);
    memcpy(m, pre, sizeof pre - 1);
    memset(m + sizeof pre - 1, 'v', v);
    memcpy(m + sizeof pre - 1 + v, post, sizeof post - 1);
    memcpy(m + len, "trailing bytes", 14);
    return m;
}

static void test_header_too_large(void **state)
{
    (void)state;
    /* Default limit 64 KiB: a head of exactly that size passes. */
    char *m = big_head(64 * 1024);
    assert_int_equal(parse_ex(false, false, m, 64 * 1024 + 14, 0, MAXF, false), 64 * 1024);
    free(m);
    m = big_head(64 * 1024 + 1);
    assert_int_equal(parse_ex(false, false, m, 64 * 1024 + 15, 0, MAXF, false), WEFT_EPROTO);
    assert_string_equal(R.why, "header too large");
    /* Not complete yet, but already too long. */
    assert_int_equal(parse_ex(false, false, m, 64 * 1024, 0, MAXF, false), WEFT_EPROTO);
    assert_string_equal(R.why, "header too large");
    assert_int_equal(parse_ex(false, false, m, 64 * 1024 - 1, 0, MAXF, false), 0);
    free(m);
    /* Byte at a time against a small limit, at every split. */
    m = big_head(100);
    assert_int_equal(parse_ex(false, false, m, 114, 100, MAXF, true), 100);
    assert_int_equal(parse_ex(false, false, m, 114, 99, MAXF, true), WEFT_EPROTO);
    assert_string_equal(R.why, "header too large");
    free(m);
    /* Byte at a time through 64 KiB stays linear (this would take minutes
     * if each call rescanned the buffer). */
    m = big_head(60000);
    weft__http_parser p;
    weft__http_parser_init(&p, 0, MAXF);
    for (size_t i = 1; i < 60000; i++) {
        run(false, false, &p, m, i, &R);
        assert_int_equal(R.rc, 0);
    }
    run(false, false, &p, m, 60000, &R);
    assert_int_equal(R.rc, 60000);
    assert_int_equal(R.h.fields[0].value_len, 60000 - 24);
    free(m);
}

static void test_many_fields(void **state)
{
    (void)state;
    char m[4096];
    size_t n = (size_t)sprintf(m, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(m + n, "X-Field-%d: %d\r\n", i, i);
    n += (size_t)sprintf(m + n, "\r\n");
    assert_int_equal(parse_ex(false, false, m, n, 0, 40, false), n);
    assert_int_equal(R.h.nfields, 40);
    assert_field(39, "X-Field-39", "39");
    assert_int_equal(parse_ex(false, false, m, n, 0, 39, true), WEFT_EPROTO);
    assert_string_equal(R.why, "too many header fields");
    assert_int_equal(parse_ex(false, false, m, n, 0, 0, false), WEFT_EPROTO);
    assert_string_equal(R.why, "too many header fields");
    /* No fields at all needs no room. */
    assert_int_equal(parse_ex(false, false, "HTTP/1.1 200 OK\r\n\r\n", 19, 0, 0, false), 19);
}

static void test_incomplete(void **state)
{
    (void)state;
    assert_int_equal(parse_ex(false, false, "", 0, 0, MAXF, false), 0);
    assert_int_equal(parse_ex(false, false, "HTTP/1.1 200 OK\r\n\r", 18, 0, MAXF, false), 0);
    assert_int_equal(parse_ex(true, false, "", 0, 0, MAXF, false), 0);
    assert_int_equal(parse_ex(true, false, "GET / HTTP/1.1\r\n", 16, 0, MAXF, false), 0);
}

/* ------------------------------------------------------------ requests */

static void test_request_basic(void **state)
{
    (void)state;
    static const char m[] = "GET /index.html?q=1&r=%20 HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "\r\n"
                            "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n";
    int64_t n = REQ(m);
    assert_int_equal(n, 57);
    assert_span(R.h.method, R.h.method_len, "GET");
    assert_span(R.h.target, R.h.target_len, "/index.html?q=1&r=%20");
    assert_int_equal(R.h.status, 0);
    assert_null(R.h.reason);
    assert_int_equal(R.h.version_minor, 1);
    assert_field(0, "Host", "example.com");
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_NONE);
    assert_true(R.h.keep_alive);
    assert_false(R.h.expect_continue);
    /* Pipelined: the next request starts right after. */
    weft__http_parser p;
    weft__http_parser_init(&p, 0, MAXF);
    run(true, false, &p, m + n, sizeof m - 1 - (size_t)n, &R);
    assert_int_equal(R.rc, sizeof m - 1 - (size_t)n);
    assert_span(R.h.target, R.h.target_len, "/next");

    assert_true(REQ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n") > 0);
    assert_span(R.h.target, R.h.target_len, "*");
    assert_true(REQ("CONNECT example.com:443 HTTP/1.1\r\n\r\n") > 0);
    assert_span(R.h.target, R.h.target_len, "example.com:443");
    assert_true(REQ("M-SEARCH http://a/b?c#d HTTP/1.0\r\n\r\n") > 0);
    assert_span(R.h.method, R.h.method_len, "M-SEARCH");
    assert_int_equal(R.h.version_minor, 0);
    assert_false(R.h.keep_alive);
    assert_true(REQ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") > 0);
    assert_true(R.h.keep_alive);
    assert_true(REQ("GET / HTTP/1.1\r\nConnection: close\r\n\r\n") > 0);
    assert_false(R.h.keep_alive);
    assert_true(REQ("GET /chat HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n") > 0);
    assert_true(R.h.upgrade);
}

static void test_request_leading_crlf(void **state)
{
    (void)state;
    static const char m[] = "\r\nGET / HTTP/1.1\r\n\r\n";
    assert_int_equal(REQ(m), sizeof m - 1);
    assert_span(R.h.method, R.h.method_len, "GET");
    assert_int_equal(R.h.method - m, 2);
    REQ_ERR("\r\n\r\nGET / HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("\r\n\r\n\r\n", "bad request line");
    REQ_ERR("\n\r\nGET / HTTP/1.1\r\n\r\n", "bare LF line ending");
}

static void test_request_body(void **state)
{
    (void)state;
    assert_true(REQ("POST /f HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_LENGTH);
    assert_int_equal(R.h.content_length, 11);
    assert_true(REQ("POST /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_CHUNKED);
    assert_true(REQ("POST /f HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") > 0);
    assert_int_equal(R.h.framing, WEFT__HTTP_BODY_CHUNKED);
    REQ_ERR("POST /f HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "bad Transfer-Encoding");
    REQ_ERR("POST /f HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "bad Transfer-Encoding");
    REQ_ERR("POST /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "conflicting Content-Length and Transfer-Encoding");
    REQ_ERR("POST /f HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "Transfer-Encoding in HTTP/1.0 message");
    REQ_ERR("POST /f HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", "bad Content-Length");
}

static void test_request_expect(void **state)
{
    (void)state;
    assert_true(REQ("PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n") > 0);
    assert_true(R.h.expect_continue);
    assert_true(REQ("PUT /f HTTP/1.1\r\nexpect:  100-Continue \r\nContent-Length: 1\r\n\r\n") > 0);
    assert_true(R.h.expect_continue);
    assert_true(REQ("PUT /f HTTP/1.1\r\nExpect: 100-continued\r\n\r\n") > 0);
    assert_false(R.h.expect_continue);
    /* Ignored in HTTP/1.0 requests (RFC 9110 section 10.1.1). */
    assert_true(REQ("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\n\r\n") > 0);
    assert_false(R.h.expect_continue);
    /* Not a response's business. */
    assert_true(RESP("HTTP/1.1 200 OK\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_false(R.h.expect_continue);
}

static void test_request_errors(void **state)
{
    (void)state;
    REQ_ERR("GET  / HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET / HTTP/1.1 \r\n\r\n", "bad request line");
    REQ_ERR("GET /  HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET /\r\n\r\n", "bad request line");
    REQ_ERR("GET / \r\n\r\n", "bad request line");
    REQ_ERR("GET\r\n\r\n", "bad request line");
    REQ_ERR(" / HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("G(T / HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET\t/ HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET /a\tb HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET /a\0b HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET /\x7f HTTP/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET / http/1.1\r\n\r\n", "bad request line");
    REQ_ERR("GET / HTTP/1.1x\r\n\r\n", "bad request line");
    REQ_ERR("GET / HTTP/1\r\n\r\n", "bad request line");
    REQ_ERR("GET / HTTP/2.0\r\n\r\n", "unsupported HTTP version");
    REQ_ERR("GET / HTTP/1.2\r\n\r\n", "unsupported HTTP version");
    REQ_ERR("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "bad header field");
    REQ_ERR("GET / HTTP/1.1\r\n Host: x\r\n\r\n", "obsolete line folding");
    REQ_ERR("GET / HTTP/1.1\n\n", "bare LF line ending");
    REQ_ERR("GET / HTTP/1.1\r\nHost: x\n\r\n", "bare LF line ending");
}

/* ------------------------------------------------------------ chunked */

typedef struct {
    int rc;
    const char *why;
    size_t used; /* input consumed in all */
    char out[8192];
    size_t outlen;
} decoded;

static decoded D;

/* Decode in[0..len) delivered as the pieces [cuts[k-1], cuts[k]), each in
 * a buffer of its own exact size. */
static void decode_pieces(const char *in, const size_t *cuts, size_t ncuts, size_t max_line,
                          decoded *d)
{
    weft__http_chunked c = {.max_line = max_line};
    d->rc = 0;
    d->why = NULL;
    d->used = 0;
    d->outlen = 0;
    size_t from = 0;
    for (size_t k = 0; k < ncuts && d->rc == 0; k++) {
        size_t plen = cuts[k] - from;
        char *b = malloc(plen ? plen : 1);
        assert_non_null(b);
        memcpy(b, in + from, plen);
        size_t off = 0;
        do {
            size_t used = 99999;
            const char *data = NULL;
            size_t dlen = 99999;
            d->rc = weft__http_chunked_feed(&c, b + off, plen - off, &used, &data, &dlen, &d->why);
            assert_true(used <= plen - off);
            assert_true(dlen <= used);
            if (dlen) {
                assert_true(data >= b + off && data + dlen <= b + off + used);
                assert_true(d->outlen + dlen <= sizeof d->out);
                memcpy(d->out + d->outlen, data, dlen);
                d->outlen += dlen;
            }
            /* Progress: a call that neither finishes nor fails eats input. */
            if (d->rc == 0 && off < plen)
                assert_true(used > 0);
            off += used;
        } while (d->rc == 0 && off < plen);
        d->used += off;
        from = cuts[k];
        free(b);
    }
    if (d->rc < 0) {
        assert_int_equal(d->rc, WEFT_EPROTO);
        assert_non_null(d->why);
    }
}

static void same_decoded(const decoded *a, const decoded *b)
{
    assert_int_equal(a->rc, b->rc);
    if (a->rc < 0) {
        assert_ptr_equal(a->why, b->why); /* *used means nothing after an error */
    } else {
        assert_int_equal(a->used, b->used);
        assert_int_equal(a->outlen, b->outlen);
        assert_memory_equal(a->out, b->out, a->outlen);
    }
}

static int dechunk_ex(const char *in, size_t len, size_t max_line)
{
    decode_pieces(in, &len, 1, max_line, &D);
    decoded *q = malloc(sizeof *q);
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    assert_non_null(q);
    assert_non_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    decode_pieces(in, cuts, len, max_line, q);
    same_decoded(&D, q);
    for (size_t k = 0; k <= len; k++) {
        size_t two[2] = {k, len};
        decode_pieces(in, two, 2, max_line, q);
        same_decoded(&D, q);
    }
    /* And every 3-way split for the short ones. */
    for (size_t i = 1; len <= 64 && i < len; i++) {
        for (size_t j = i; j < len; j++) {
            size_t three[3] = {i, j, len};
            decode_pieces(in, three, 3, max_line, q);
            same_decoded(&D, q);
        }
    }
    free(cuts);
    free(q);
    return D.rc;
}

#define DECHUNK(s) dechunk_ex(s, sizeof(s) - 1, 0)
#define CHUNK_ERR(s, w)                                                                       \
    do {                                                                                      \
        assert_int_equal(DECHUNK(s), WEFT_EPROTO);                                            \
        assert_string_equal(D.why, w);                                                        \
    } while (0)

static void assert_out(const char *want)
{
    assert_int_equal(D.outlen, strlen(want));
    assert_memory_equal(D.out, want, D.outlen);
}

static void test_chunked_basic(void **state)
{
    (void)state;
    assert_int_equal(DECHUNK("5\r\nhello\r\n0\r\n\r\n"), 1);
    assert_out("hello");
    assert_int_equal(D.used, 15);
    assert_int_equal(DECHUNK("0\r\n\r\n"), 1);
    assert_out("");
    assert_int_equal(DECHUNK("5\r\nhello\r\n1\r\n,\r\nA\r\n0123456789\r\n"
                             "000a\r\nabcdefghij\r\n0000\r\n\r\n"),
                     1);
    assert_out("hello,0123456789abcdefghij");
    /* The next message is not touched. */
    static const char m[] = "3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert_int_equal(DECHUNK(m), 1);
    assert_out("abc");
    assert_int_equal(D.used, 13);
    /* Incomplete. */
    assert_int_equal(DECHUNK("5\r\nhel"), 0);
    assert_out("hel");
    assert_int_equal(DECHUNK("5\r\nhello\r\n0\r\n\r"), 0);
    assert_int_equal(D.used, 14);
}

static void test_chunked_spans(void **state)
{
    (void)state;
    /* One span per call; the framing after it is eaten with it. */
    static const char m[] = "2\r\nab\r\n3;x=y\r\ncde\r\n0\r\n\r\nNEXT";
    weft__http_chunked c = {0};
    size_t used;
    const char *data, *why = NULL;
    size_t n;
    assert_int_equal(weft__http_chunked_feed(&c, m, sizeof m - 1, &used, &data, &n, &why), 0);
    assert_ptr_equal(data, m + 3);
    assert_int_equal(n, 2);
    assert_int_equal(used, 14); /* up to "cde" */
    size_t off = used;
    assert_int_equal(weft__http_chunked_feed(&c, m + off, sizeof m - 1 - off, &used, &data, &n,
                                             &why),
                     1);
    assert_ptr_equal(data, m + 14);
    assert_int_equal(n, 3);
    off += used;
    assert_string_equal(m + off, "NEXT");
    /* Done stays done and eats nothing. */
    assert_int_equal(weft__http_chunked_feed(&c, m + off, 4, &used, &data, &n, &why), 1);
    assert_int_equal(used, 0);
    assert_int_equal(n, 0);
    assert_int_equal(weft__http_chunked_feed(&c, m + off, 0, &used, &data, &n, &why), 1);
    assert_null(why);
}

static void test_chunked_ext_trailers(void **state)
{
    (void)state;
    assert_int_equal(DECHUNK("5;name=value\r\nhello\r\n"
                             "6 ; a ; b=\"q;\\\" \" \t\r\n world\r\n"
                             "1\t;\r\n!\r\n"
                             "0;last\r\n"
                             "Trailer-One: 1\r\n"
                             "X: \xff y\r\n"
                             "\r\nNEXT"),
                     1);
    assert_out("hello world!");
    assert_int_equal(D.used, sizeof "5;name=value\r\nhello\r\n"
                                    "6 ; a ; b=\"q;\\\" \" \t\r\n world\r\n"
                                    "1\t;\r\n!\r\n"
                                    "0;last\r\n"
                                    "Trailer-One: 1\r\n"
                                    "X: \xff y\r\n"
                                    "\r\n" - 1);
    /* BWS with nothing after it, uppercase hex. */
    assert_int_equal(DECHUNK("B  \r\nhello world\r\n0\r\nT: x\r\n\r\n"), 1);
    assert_out("hello world");
}

static void test_chunked_errors(void **state)
{
    (void)state;
    CHUNK_ERR("\r\n", "bad chunk size");
    CHUNK_ERR(";x\r\n", "bad chunk size");
    CHUNK_ERR("g\r\n", "bad chunk size");
    CHUNK_ERR(" 5\r\nhello\r\n", "bad chunk size");
    CHUNK_ERR("-5\r\n", "bad chunk size");
    CHUNK_ERR("0x5\r\n", "bad chunk size");
    CHUNK_ERR("5 x\r\n", "bad chunk size");
    CHUNK_ERR("5\n", "bad chunk size");
    CHUNK_ERR("5\rx", "bad chunk size");
    CHUNK_ERR("5;x\n", "bad chunk size");
    CHUNK_ERR("5;a\0b\r\n", "bad chunk size");
    CHUNK_ERR("5\r\nhello\r\n\r\n", "bad chunk size");
    CHUNK_ERR("8000000000000000\r\n", "chunk size too large");
    CHUNK_ERR("ffffffffffffffffff\r\n", "chunk size too large");
    /* 2^63 - 1 is fine (and waits for its data). */
    assert_int_equal(DECHUNK("7fffffffffffffff\r\nabc"), 0);
    assert_out("abc");
    assert_int_equal(DECHUNK("07fffffffffffffff\r\n"), 0);
    CHUNK_ERR("5\r\nhelloX\r\n", "bad chunk end");
    CHUNK_ERR("5\r\nhello\n0\r\n\r\n", "bad chunk end");
    CHUNK_ERR("5\r\nhello\rX", "bad chunk end");
    CHUNK_ERR("0\r\nX: 1\n\r\n", "bad trailer field");
    CHUNK_ERR("0\r\nX: a\0b\r\n\r\n", "bad trailer field");
    CHUNK_ERR("0\r\nX: 1\rY\r\n\r\n", "bad trailer field");
    CHUNK_ERR("0\r\n\rX", "bad trailer field");
    CHUNK_ERR("0\r\n\n", "bad trailer field");
}

static void test_chunked_limits(void **state)
{
    (void)state;
    /* Size line: digits, whitespace and extensions count, up to max_line. */
    assert_int_equal(dechunk_ex("1;abcdef\r\nx\r\n0\r\n\r\n", 18, 8), 1);
    assert_int_equal(dechunk_ex("1;abcdefg\r\nx\r\n0\r\n\r\n", 19, 8), WEFT_EPROTO);
    assert_string_equal(D.why, "chunk line too long");
    assert_int_equal(dechunk_ex("00000001\r\nx\r\n0\r\n\r\n", 18, 8), 1);
    assert_int_equal(dechunk_ex("000000001\r\nx\r\n0\r\n\r\n", 19, 8), WEFT_EPROTO);
    assert_string_equal(D.why, "chunk line too long");
    assert_int_equal(dechunk_ex("1  \t    \r\nx\r\n0\r\n\r\n", 18, 8), 1);
    assert_int_equal(dechunk_ex("1  \t     \r\nx\r\n0\r\n\r\n", 19, 8), WEFT_EPROTO);
    assert_string_equal(D.why, "chunk line too long");
    /* Trailer section (lines with their CRLFs) up to max_line. */
    assert_int_equal(dechunk_ex("0\r\nA: 1\r\nB: 2\r\n\r\n", 17, 12), 1);
    assert_int_equal(dechunk_ex("0\r\nA: 1\r\nB: 22\r\n\r\n", 18, 12), WEFT_EPROTO);
    assert_string_equal(D.why, "trailer too large");
    /* Default 8 KiB: an extension of 9000 bytes is refused. */
    char *m = malloc(9100);
    assert_non_null(m);
    m[0] = '1';
    m[1] = ';';
    memset(m + 2, 'e', 9000);
    memcpy(m + 9002, "\r\nx\r\n0\r\n\r\n", 10);
    decode_pieces(m, (size_t[]){9012}, 1, 0, &D);
    assert_int_equal(D.rc, WEFT_EPROTO);
    assert_string_equal(D.why, "chunk line too long");
    /* 8000 is fine; so is a trailer section of 8000. */
    memcpy(m + 8002, "\r\nx\r\n0\r\n\r\n", 10);
    decode_pieces(m, (size_t[]){8012}, 1, 0, &D);
    assert_int_equal(D.rc, 1);
    memcpy(m, "0\r\nT: ", 6);
    memset(m + 6, 't', 8000);
    memcpy(m + 8006, "\r\n\r\n", 4);
    decode_pieces(m, (size_t[]){8010}, 1, 0, &D);
    assert_int_equal(D.rc, 1);
    memset(m + 6, 't', 9000);
    memcpy(m + 9006, "\r\n\r\n", 4);
    decode_pieces(m, (size_t[]){9010}, 1, 0, &D);
    assert_int_equal(D.rc, WEFT_EPROTO);
    assert_string_equal(D.why, "trailer too large");
    free(m);
}

static void test_chunked_big(void **state)
{
    (void)state;
    /* Many chunks of every size 1..100, byte at a time and whole. */
    static char m[16384], want[8192];
    size_t n = 0, w = 0;
    for (int k = 1; k <= 100; k++) {
        n += (size_t)sprintf(m + n, "%x%s\r\n", k, k % 7 ? "" : ";e=1");
        for (int j = 0; j < k; j++)
            want[w++] = m[n++] = (char)('a' + (k + j) % 26);
        m[n++] = '\r';
        m[n++] = '\n';
        if (w > 4000)
            break;
    }
    n += (size_t)sprintf(m + n, "0\r\nT: 1\r\n\r\n");
    decode_pieces(m, &n, 1, 0, &D);
    assert_int_equal(D.rc, 1);
    assert_int_equal(D.used, n);
    assert_int_equal(D.outlen, w);
    assert_memory_equal(D.out, want, w);
    size_t *cuts = malloc(n * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    decoded *q = malloc(sizeof *q);
    assert_non_null(q);
    decode_pieces(m, cuts, n, 0, q);
    same_decoded(&D, q);
    free(q);
    free(cuts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_basic),
        cmocka_unit_test(test_response_reason),
        cmocka_unit_test(test_response_fields),
        cmocka_unit_test(test_field_get),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_response_no_body),
        cmocka_unit_test(test_response_interim_then_final),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_request_basic),
        cmocka_unit_test(test_request_leading_crlf),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_request_expect),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_chunked_basic),
        cmocka_unit_test(test_chunked_spans),
        cmocka_unit_test(test_chunked_ext_trailers),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_chunked_big),
    };
    return run_cases(tests, NULL, NULL);
}
