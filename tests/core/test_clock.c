/* SPDX-License-Identifier: MIT */
/*
 * Relative time counts from the call.  A task that computes for 20 ms
 * without suspending, then asks for a 10 ms limit, must get at least 10 ms
 * from the call: sleeps, deadlines built with weft_deadline_ms, wait_for,
 * deadline scopes, shields, group and pool limits, fd and stream reads,
 * and HTTP's io limit.  (The loop's cached time lags by those 20 ms; a
 * limit counted from it would already have passed.)  Only lower bounds
 * are asserted, plus generous upper bounds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>
#include <weft/http.h>

#include "test_helpers.h"

#define WORK_MS 20
#define LIMIT_MS 10

/* Burn CPU without suspending, on the real clock. */
static void compute(void)
{
    int64_t end = clock_ns() + WORK_MS * MS;
    while (clock_ns() < end) {
    }
}

/* The time since `t0` must be at least the limit (and not absurdly more). */
static void assert_waited(int64_t t0)
{
    int64_t took = clock_ns() - t0;
    if (took < LIMIT_MS * MS)
        fail_msg("returned after %.3f ms, before the %d ms limit", (double)took / 1e6,
                 LIMIT_MS);
    assert_true(took < 5000 * MS);
}

static int sleep_long(void *arg)
{
    (void)arg;
    return weft_sleep_ms(5000);
}

/* ------------------------------------------------------------ core waits */

static int sleep_main(void *arg)
{
    (void)arg;
    compute();
    int64_t t0 = clock_ns();
    assert_int_equal(weft_sleep_ms(LIMIT_MS), 0);
    assert_waited(t0);

    compute();
    t0 = clock_ns();
    assert_int_equal(weft_sleep_ns(LIMIT_MS * MS), 0);
    assert_waited(t0);

    /* weft_now() + span is counted from the call too */
    compute();
    t0 = clock_ns();
    assert_int_equal(weft_sleep_until(weft_now() + LIMIT_MS * MS), 0);
    assert_waited(t0);

    /* and a short sleep after a little work is not cut short either */
    int64_t end = clock_ns() + 3 * MS / 2;
    while (clock_ns() < end) {
    }
    t0 = clock_ns();
    assert_int_equal(weft_sleep_ms(1), 0);
    assert_true(clock_ns() - t0 >= 1 * MS);
    return 0;
}

static void test_compute_then_sleep(void **state)
{
    (void)state;
    run_task(sleep_main);
}

static int wait_for_main(void *arg)
{
    (void)arg;
    compute();
    int64_t t0 = clock_ns();
    int st = 0;
    assert_int_equal(weft_wait_for(sleep_long, NULL, LIMIT_MS, &st), -ETIMEDOUT);
    assert_waited(t0);
    assert_int_equal(st, -ECANCELED);
    return 0;
}

static void test_compute_then_wait_for(void **state)
{
    (void)state;
    run_task(wait_for_main);
}

static int scope_main(void *arg)
{
    (void)arg;
    compute();
    int64_t t0 = clock_ns();
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(LIMIT_MS));
    assert_int_equal(weft_sleep_ms(5000), -ETIMEDOUT);
    assert_waited(t0);
    assert_true(weft_scope_exit(&sc));

    /* a shield's own limit */
    compute();
    t0 = clock_ns();
    weft_shield sh;
    weft_shield_begin(&sh, LIMIT_MS);
    assert_int_equal(weft_sleep_ms(5000), -ETIMEDOUT);
    assert_waited(t0);
    weft_shield_end(&sh);

    /* a group's limit counts from weft_group_new */
    compute();
    t0 = clock_ns();
    weft_group *g = weft_group_new(&(weft_group_opts){.timeout_ms = LIMIT_MS});
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, sleep_long, NULL, NULL), 0);
    assert_int_equal(weft_group_wait(g), -ETIMEDOUT);
    assert_waited(t0);
    weft_group_free(g);
    return 0;
}

static void test_compute_then_scope(void **state)
{
    (void)state;
    run_task(scope_main);
}

static int blocking_sleep(void *arg)
{
    (void)arg;
    for (int i = 0; i < 500 && !weft_job_cancelled(); i++)
        usleep(1000);
    return 0;
}

static int pool_main(void *arg)
{
    (void)arg;
    compute();
    int64_t t0 = clock_ns();
    int result;
    assert_int_equal(weft_thread_pool_run(NULL, blocking_sleep, NULL, &result,
                                          &(weft_blocking_opts){.timeout_ms = LIMIT_MS}),
                     -ETIMEDOUT);
    assert_waited(t0);
    return 0;
}

static void test_compute_then_thread_pool(void **state)
{
    (void)state;
    run_task(pool_main);
}

/* ------------------------------------------------------------ reads */

static int read_main(void *arg)
{
    (void)arg;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    char buf[16];

    compute();
    int64_t t0 = clock_ns();
    assert_int_equal(weft_read(sv[0], buf, sizeof buf, weft_deadline_ms(LIMIT_MS)), -ETIMEDOUT);
    assert_waited(t0);

    weft_stream *s = weft_stream_new(sv[0], 0);
    assert_non_null(s);
    compute();
    t0 = clock_ns();
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(LIMIT_MS)),
                     -ETIMEDOUT);
    assert_waited(t0);
    weft_stream_close(s);
    close(sv[1]);
    return 0;
}

static void test_compute_then_read(void **state)
{
    (void)state;
    run_task(read_main);
}

/* An HTTP server that answers a head announcing 100 bytes, then stalls. */
static int stall_server(void *arg)
{
    int lfd = *(int *)arg;
    int fd = weft_accept(lfd, NULL, weft_deadline_ms(5000));
    if (fd < 0)
        return fd;
    char req[2048];
    ssize_t n = weft_read(fd, req, sizeof req, weft_deadline_ms(5000));
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    if (n > 0)
        weft_write_all(fd, head, sizeof head - 1, weft_deadline_ms(5000));
    /* hold the connection until the client has given up */
    weft_read(fd, req, sizeof req, weft_deadline_ms(5000));
    weft_close(fd);
    return 0;
}

static int http_main(void *arg)
{
    (void)arg;
    int lfd = weft_tcp_listen("127.0.0.1", 0, 16);
    assert_true(lfd >= 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", weft_local_port(lfd));
    weft_task *server = spawn_named(stall_server, &lfd, "stall_server");
    weft_http_session *s =
        weft_http_session_new(&(weft_http_session_opts){.timeouts = {.io_ms = LIMIT_MS}});
    assert_non_null(s);
    weft_http_response *r = NULL;
    assert_int_equal(weft_http_send(s, &(weft_http_request){.url = url}, &r), 0);
    compute();
    int64_t t0 = clock_ns();
    char buf[200];
    assert_int_equal(weft_http_response_read(r, buf, sizeof buf), -ETIMEDOUT);
    assert_waited(t0);
    weft_http_response_free(r);
    weft_http_session_free(s);
    assert_int_equal(join_status(server), 0);
    weft_close(lfd);
    return 0;
}

static void test_compute_then_http_read(void **state)
{
    (void)state;
    run_task(http_main);
}

/* ------------------------------------------------------------ vocabulary */

static int quick(void *arg)
{
    (void)arg;
    return weft_sleep_ms(2) == 0 ? 7 : -1;
}

/* WEFT_NO_TIMEOUT is "none" wherever a relative time limit is taken;
 * <= 0 has expired. */
static int no_timeout_main(void *arg)
{
    (void)arg;
    assert_true(weft_deadline_ms(WEFT_NO_TIMEOUT) == WEFT_NO_DEADLINE);
    int st = 0;
    assert_int_equal(weft_wait_for(quick, NULL, WEFT_NO_TIMEOUT, &st), 0);
    assert_int_equal(st, 7);
    assert_int_equal(weft_wait_for(sleep_long, NULL, 0, &st), -ETIMEDOUT);
    assert_int_equal(weft_wait_for(sleep_long, NULL, -5, &st), -ETIMEDOUT);
    /* a sleep with no limit ends only by cancellation or a scope */
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(5));
    assert_int_equal(weft_sleep_ms(WEFT_NO_TIMEOUT), -ETIMEDOUT);
    assert_true(weft_scope_exit(&sc));
    weft_group *g = weft_group_new(&(weft_group_opts){.timeout_ms = WEFT_NO_TIMEOUT});
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, quick, NULL, NULL), 0);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);
    int result = 0;
    assert_int_equal(weft_thread_pool_run(NULL, blocking_sleep, NULL, &result,
                                          &(weft_blocking_opts){.timeout_ms = -1}),
                     -ETIMEDOUT);
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    assert_int_equal(weft_sleep_ms(1), 0);
    weft_shield_end(&sh);
    return 0;
}

static void test_no_timeout(void **state)
{
    (void)state;
    run_task(no_timeout_main);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compute_then_sleep),
        cmocka_unit_test(test_compute_then_wait_for),
        cmocka_unit_test(test_compute_then_scope),
        cmocka_unit_test(test_compute_then_thread_pool),
        cmocka_unit_test(test_compute_then_read),
        cmocka_unit_test(test_compute_then_http_read),
        cmocka_unit_test(test_no_timeout),
    };
    return run_cases(tests, NULL, NULL);
}
