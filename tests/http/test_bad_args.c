/* SPDX-License-Identifier: MIT */
/*
 * Every public function of libweft-http called with NULL and out-of-range
 * arguments: a clear error (a negative code, the same code in weft_errcode,
 * a message naming the function or the option field) or the neutral answer
 * its header documents, never a crash.  tests/check_bad_args.sh fails when
 * a function declared in weft/http.h is not called here.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <weft.h>
#include <weft/http.h>

#include "bad_args.h"
#include "test_helpers.h"

/* One response on one connection: 200, two fields, a 5-byte body. */
static int serve_one(void *arg)
{
    int lfd = *(int *)arg;
    int fd = weft_accept(lfd, NULL, weft_deadline_ms(10000));
    if (fd < 0)
        return fd;
    weft_stream *s = weft_stream_new(fd, 0);
    char head[4096];
    ssize_t n = weft_stream_read_until(s, "\r\n\r\n", 4, head, sizeof head,
                                       weft_deadline_ms(10000));
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
    if (n > 0)
        n = weft_stream_write_all(s, resp, sizeof resp - 1, weft_deadline_ms(10000));
    weft_stream_close(s);
    return n < 0 ? (int)n : 0;
}

static int http_main(void *arg)
{
    (void)arg;
    /* Options: each bad field is named.  (A negative time limit is not bad:
     * it has expired, as everywhere in weft.) */
    RETURNS_NULL(-EINVAL, "max_fields",
                 weft_http_session_new(&(weft_http_session_opts){.max_head = 1024,
                                                                 .max_fields = 300}));
    RETURNS_NULL(-EINVAL, "max_redirects",
                 weft_http_session_new(&(weft_http_session_opts){.max_redirects = -7}));
    RETURNS_NULL(-EINVAL, "max_head",
                 weft_http_session_new(&(weft_http_session_opts){.max_head = 10}));
    QUIET(weft_http_session_free(NULL));
    weft_http_stats st;
    memset(&st, 0xff, sizeof st);
    QUIET(weft_http_session_stats(NULL, &st));
    assert_int_equal(st.requests, 0);
    assert_int_equal(st.open, 0);

    weft_http_session *s = weft_http_session_new(NULL);
    assert_non_null(s);
    QUIET(weft_http_session_stats(s, NULL));
    weft_http_response *r = (weft_http_response *)&st; /* must be overwritten with NULL */
    const char *url = "http://127.0.0.1:9/";
    weft_http_request req = {.url = url};

    FAILS(-EINVAL, "weft_http_get", weft_http_get(NULL, url, &r));
    assert_null(r);
    FAILS(-EINVAL, "weft_http_get", weft_http_get(s, NULL, &r));
    FAILS(-EINVAL, "weft_http_get", weft_http_get(s, url, NULL));
    FAILS(-EINVAL, "weft_http_send", weft_http_send(NULL, &req, &r));
    FAILS(-EINVAL, "weft_http_send", weft_http_send(s, NULL, &r));
    FAILS(-EINVAL, "weft_http_send", weft_http_send(s, &req, NULL));
    FAILS(-EINVAL, "weft_http_send", weft_http_send(s, &(weft_http_request){0}, &r));
    FAILS(-EINVAL, "weft_http_fetch", weft_http_fetch(NULL, &req, &r));
    FAILS(-EINVAL, "weft_http_fetch", weft_http_fetch(s, NULL, &r));
    FAILS(-EINVAL, "weft_http_fetch", weft_http_fetch(s, &req, NULL));
    FAILS(-EINVAL, "URL", weft_http_get(s, "ftp://x/", &r));
    FAILS(-EINVAL, "headers",
          weft_http_send(s, &(weft_http_request){.url = url, .nheaders = 2}, &r));
    FAILS(-EINVAL, "headers",
          weft_http_send(s, &(weft_http_request){
                                .url = url, .nheaders = 1,
                                .headers = &(weft_http_header){.name = NULL, .value = "x"}},
                         &r));
    FAILS(-EINVAL, "body",
          weft_http_send(s, &(weft_http_request){.url = url, .body_len = 3}, &r));
    FAILS(-EINVAL, "max_redirects",
          weft_http_send(s, &(weft_http_request){.url = url, .max_redirects = -9}, &r));
    assert_null(r);

    /* Responses: NULL gets the documented neutral answers. */
    const void *body;
    size_t len;
    char buf[8];
    const char *name = "x", *value = "y";
    QUIET(assert_int_equal(weft_http_response_status(NULL), 0));
    QUIET(assert_string_equal(weft_http_response_reason(NULL), ""));
    QUIET(assert_int_equal(weft_http_response_version(NULL), -1));
    QUIET(assert_string_equal(weft_http_response_url(NULL), ""));
    QUIET(assert_null(weft_http_response_header(NULL, "X-A")));
    QUIET(assert_int_equal(weft_http_response_header_count(NULL), 0));
    QUIET(assert_false(weft_http_response_header_at(NULL, 0, &name, &value)));
    assert_null(name);
    assert_null(value);
    QUIET(assert_int_equal(weft_http_response_content_length(NULL), -1));
    FAILS(-EINVAL, "weft_http_response_body", weft_http_response_body(NULL, &body, &len));
    FAILS(-EINVAL, "weft_http_response_read", weft_http_response_read(NULL, buf, sizeof buf));
    QUIET(weft_http_response_free(NULL));

    /* A real response, and out-of-range arguments on it. */
    int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    char real[64];
    snprintf(real, sizeof real, "http://127.0.0.1:%d/", weft_local_port(lfd));
    weft_task *server = spawn_named(serve_one, &lfd, "server");
    assert_int_equal(weft_http_send(s, &(weft_http_request){.url = real}, &r), 0);
    assert_int_equal(weft_http_response_status(r), 200);
    QUIET(assert_null(weft_http_response_header(r, NULL)));
    name = value = "x";
    QUIET(assert_false(weft_http_response_header_at(r, SIZE_MAX, &name, &value)));
    assert_null(name);
    assert_null(value);
    assert_true(weft_http_response_header_at(r, 0, NULL, NULL)); /* outputs optional */
    FAILS(-EINVAL, "weft_http_response_read", weft_http_response_read(r, NULL, 4));
    assert_int_equal(weft_http_response_read(r, buf, 0), 0);
    assert_int_equal(weft_http_response_body(r, NULL, NULL), 0); /* outputs optional */
    assert_int_equal(weft_http_response_body(r, &body, &len), 0);
    assert_int_equal(len, 5);
    weft_http_response_free(r);
    assert_int_equal(join_status(server), 0);
    weft_close(lfd);
    weft_http_session_free(s);
    return 0;
}

static void test_http(void **state)
{
    (void)state;
    run_task(http_main);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http),
    };
    return run_cases(tests, NULL, NULL);
}
