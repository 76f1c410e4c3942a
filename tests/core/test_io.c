/* SPDX-License-Identifier: MIT */
/* File descriptors: weft_wait_fd, weft_read/write, weft_close, with pipes and sockets. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void make_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* Write into `fd` (non-blocking) until it would block; returns the count. */
static size_t fill(int fd)
{
    static char junk[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = write(fd, junk, sizeof junk);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            return total;
        }
        total += (size_t)n;
    }
}

/* Read from `fd` (non-blocking) until it would block; returns the count. */
static size_t drain(int fd)
{
    static char junk[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, junk, sizeof junk);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            return total;
        }
        if (n == 0)
            return total;
        total += (size_t)n;
    }
}

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

/* A shared pipe / socket pair for the tasks of one test. */
static int P[2];

/* ------------------------------------------------------------ read / write */

static int wrote_flag;
static int reading_flag;

static int pipe_reader(void *arg)
{
    (void)arg;
    char buf[16] = {0};
    reading_flag = 1;
    ssize_t n = weft_read(P[0], buf, sizeof buf, WEFT_NO_DEADLINE);
    if (!wrote_flag)
        return -1000; /* returned before anything was written */
    if (n != 5 || memcmp(buf, "hello", 5) != 0)
        return n < 0 ? (int)n : -1001;
    return (int)n;
}

static int pipe_writer(void *arg)
{
    (void)arg;
    if (weft_sleep_ms(5) != 0)
        return -1;
    if (!reading_flag)
        return -2;
    wrote_flag = 1;
    return (int)weft_write(P[1], "hello", 5, WEFT_NO_DEADLINE);
}

static int read_waits(void *arg)
{
    (void)arg;
    make_pipe(P);
    wrote_flag = reading_flag = 0;
    weft_task *r = weft_spawn(pipe_reader, NULL, NULL);
    weft_task *w = weft_spawn(pipe_writer, NULL, NULL);
    int st = -1;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, 5);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, 5);
    /* zero-length calls */
    char c;
    assert_int_equal(weft_write(P[1], &c, 0, WEFT_NO_DEADLINE), 0);
    assert_int_equal(weft_write_all(P[1], &c, 0, WEFT_NO_DEADLINE), 0);
    assert_int_equal(weft_read(P[0], &c, 0, WEFT_NO_DEADLINE), 0);
    /* data already there: no wait */
    assert_int_equal(weft_write(P[1], "xy", 2, WEFT_NO_DEADLINE), 2);
    char buf[4];
    assert_int_equal(weft_read(P[0], buf, sizeof buf, weft_deadline_ms(-1)), 2);
    assert_memory_equal(buf, "xy", 2);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_read_waits_for_writer(void **state)
{
    (void)state;
    run_checked(read_waits, NULL);
}

static int write_done;
static int blocked_writer(void *arg)
{
    (void)arg;
    static char buf[1000];
    memset(buf, 'w', sizeof buf);
    ssize_t n = weft_write(P[1], buf, sizeof buf, WEFT_NO_DEADLINE);
    write_done = 1;
    return (int)n;
}

static int write_blocks(void *arg)
{
    (void)arg;
    make_pipe(P);
    size_t filled = fill(P[1]);
    assert_true(filled > 0);
    write_done = 0;
    weft_task *w = weft_spawn(blocked_writer, NULL, NULL);
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_int_equal(write_done, 0); /* still blocked on the full pipe */
    assert_int_equal(drain(P[0]), filled);
    int st = -1;
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(write_done, 1);
    assert_true(st > 0 && st <= 1000);
    char buf[1000];
    assert_int_equal(read(P[0], buf, sizeof buf), st);
    assert_int_equal(buf[0], 'w');
    assert_int_equal(buf[st - 1], 'w');
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_write_blocks_on_full_pipe(void **state)
{
    (void)state;
    run_checked(write_blocks, NULL);
}

/* 4 MiB through a pipe, with a concurrent reader checking every byte. */
enum { BIG = 4 * 1024 * 1024 };

static unsigned char pattern(size_t i) { return (unsigned char)(i * 31 + (i >> 12)); }

static int big_reader(void *arg)
{
    (void)arg;
    static unsigned char buf[70000];
    size_t got = 0;
    for (;;) {
        ssize_t n = weft_read(P[0], buf, sizeof buf, weft_deadline_ms(10000));
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        for (ssize_t k = 0; k < n; k++)
            if (buf[k] != pattern(got + (size_t)k))
                return -1000;
        got += (size_t)n;
    }
    return got == BIG ? 0 : -1001;
}

static int write_all_big(void *arg)
{
    (void)arg;
    make_pipe(P);
    unsigned char *data = malloc(BIG);
    assert_non_null(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = pattern(i);
    weft_task *r = weft_spawn(big_reader, NULL, NULL);
    assert_int_equal(weft_write_all(P[1], data, BIG, weft_deadline_ms(10000)), BIG);
    assert_int_equal(weft_close(P[1]), 0); /* EOF for the reader */
    int st = -1;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_close(P[0]), 0);
    free(data);
    return 0;
}

static void test_write_all_large(void **state)
{
    (void)state;
    run_checked(write_all_big, NULL);
}

/* ------------------------------------------------------------ wait masks */

static int write_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    if (weft_sleep_ms(2) != 0)
        return -1;
    return (int)weft_write(fd, "z", 1, WEFT_NO_DEADLINE);
}

static int wait_masks(void *arg)
{
    (void)arg;
    int p[2], sv[2];
    make_pipe(p);
    make_socketpair(sv);
    /* a fresh pipe's write end is writable, its read end is not readable */
    assert_int_equal(weft_wait_fd(p[1], WEFT_WRITABLE, weft_deadline_ms(5000)), WEFT_WRITABLE);
    weft_task *w = weft_spawn(write_later, (void *)(intptr_t)p[1], NULL);
    assert_int_equal(weft_wait_fd(p[0], WEFT_READABLE, weft_deadline_ms(5000)), WEFT_READABLE);
    int st;
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, 1);
    char c;
    assert_int_equal(weft_read(p[0], &c, 1, WEFT_NO_DEADLINE), 1);
    assert_int_equal(c, 'z');

    /* both asked, only one ready: the mask says which */
    assert_int_equal(weft_wait_fd(sv[0], WEFT_READABLE | WEFT_WRITABLE, weft_deadline_ms(5000)),
                     WEFT_WRITABLE);
    w = weft_spawn(write_later, (void *)(intptr_t)sv[1], NULL);
    int m = weft_wait_fd(sv[0], WEFT_READABLE | WEFT_WRITABLE, weft_deadline_ms(5000));
    assert_true(m > 0);
    assert_true(m & WEFT_READABLE);
    assert_int_equal(m & ~(WEFT_READABLE | WEFT_WRITABLE), 0);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(weft_read(sv[0], &c, 1, WEFT_NO_DEADLINE), 1);

    assert_int_equal(weft_close(p[0]), 0);
    assert_int_equal(weft_close(p[1]), 0);
    assert_int_equal(weft_close(sv[0]), 0);
    assert_int_equal(weft_close(sv[1]), 0);
    return 0;
}

static void test_wait_fd_masks(void **state)
{
    (void)state;
    run_checked(wait_masks, NULL);
}

/* ------------------------------------------------------------ deadlines */

static int timeouts(void *arg)
{
    (void)arg;
    make_pipe(P);
    char buf[8];
    int64_t d = weft_deadline_ms(10);
    assert_int_equal(weft_wait_fd(P[0], WEFT_READABLE, d), -ETIMEDOUT);
    assert_true(weft_now() >= d);
    assert_non_null(strstr(weft_errmsg(), "timed out"));

    d = weft_deadline_ms(5);
    assert_int_equal(weft_read(P[0], buf, sizeof buf, d), -ETIMEDOUT);
    assert_true(weft_now() >= d);

    /* a deadline already past fails at once */
    int64_t c0 = clock_ns();
    assert_int_equal(weft_wait_fd(P[0], WEFT_READABLE, weft_deadline_ms(-1)), -ETIMEDOUT);
    assert_int_equal(weft_read(P[0], buf, sizeof buf, 0), -ETIMEDOUT);
    assert_true(clock_ns() - c0 < 2000 * MS);

    /* a write that would block times out too, having written nothing */
    size_t filled = fill(P[1]);
    d = weft_deadline_ms(5);
    assert_int_equal(weft_write(P[1], "a", 1, d), -ETIMEDOUT);
    assert_true(weft_now() >= d);
    assert_int_equal(weft_write_all(P[1], "abc", 3, weft_deadline_ms(5)), -ETIMEDOUT);
    assert_int_equal(drain(P[0]), filled);

    /* the fd still works afterwards */
    assert_int_equal(weft_write(P[1], "ok", 2, weft_deadline_ms(1000)), 2);
    assert_int_equal(weft_read(P[0], buf, sizeof buf, weft_deadline_ms(1000)), 2);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_deadline_timeout(void **state)
{
    (void)state;
    run_checked(timeouts, NULL);
}

/* ------------------------------------------------------------ cancellation */

static int cancelled_reader(void *arg)
{
    (void)arg;
    char buf[8];
    ssize_t n = weft_read(P[0], buf, sizeof buf, WEFT_NO_DEADLINE);
    if (n != -ECANCELED)
        return n < 0 ? -1000 : -1001;
    if (!strstr(weft_errmsg(), "canceled") && !strstr(weft_errmsg(), "cancelled"))
        return -1002;
    return (int)n;
}

static int cancelled_waiter(void *arg)
{
    int fd = (int)(intptr_t)arg / 4, events = (int)(intptr_t)arg % 4;
    int rc = weft_wait_fd(fd, events, WEFT_NO_DEADLINE);
    if (rc != -ECANCELED)
        return rc < 0 ? -1000 : -1001;
    /* level-triggered */
    if (weft_wait_fd(fd, events, WEFT_NO_DEADLINE) != -ECANCELED)
        return -1003;
    return rc;
}

#define FD_EVENTS(fd, ev) ((void *)(intptr_t)((fd) * 4 + (ev)))

static int cancel_io(void *arg)
{
    (void)arg;
    int q[2];
    make_pipe(P);
    make_pipe(q);
    size_t filled = fill(q[1]);
    weft_task *r = weft_spawn(cancelled_reader, NULL, NULL);
    weft_task *wr = weft_spawn(cancelled_waiter, FD_EVENTS(P[0], WEFT_READABLE), NULL);
    weft_task *ww = weft_spawn(cancelled_waiter, FD_EVENTS(q[1], WEFT_WRITABLE), NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_cancel(r), 0);
    assert_int_equal(weft_cancel(wr), 0);
    assert_int_equal(weft_cancel(ww), 0);
    int st = 0;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(weft_join(wr, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(weft_join(ww, &st), 0);
    assert_int_equal(st, -ECANCELED);

    /* the fds work afterwards, in both directions */
    weft_task *w = weft_spawn(write_later, (void *)(intptr_t)P[1], NULL);
    char c;
    assert_int_equal(weft_read(P[0], &c, 1, weft_deadline_ms(5000)), 1);
    assert_int_equal(c, 'z');
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, 1);
    assert_int_equal(weft_write(P[1], "q", 1, weft_deadline_ms(5000)), 1);
    assert_int_equal(weft_wait_fd(P[0], WEFT_READABLE, weft_deadline_ms(5000)), WEFT_READABLE);
    assert_int_equal(drain(q[0]), filled);
    assert_int_equal(weft_wait_fd(q[1], WEFT_WRITABLE, weft_deadline_ms(5000)), WEFT_WRITABLE);
    assert_int_equal(weft_write(q[1], "q", 1, weft_deadline_ms(5000)), 1);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    assert_int_equal(weft_close(q[0]), 0);
    assert_int_equal(weft_close(q[1]), 0);
    return 0;
}

static void test_cancel_while_waiting(void **state)
{
    (void)state;
    run_checked(cancel_io, NULL);
}

/* A task cancelled before it starts does not even try the read. */
static int cancel_before_read(void *arg)
{
    (void)arg;
    make_pipe(P);
    assert_int_equal(write(P[1], "abc", 3), 3);
    weft_task *r = weft_spawn(cancelled_reader, NULL, NULL);
    weft_cancel(r);
    int st = 0;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, -ECANCELED);
    char buf[8];
    assert_int_equal(weft_read(P[0], buf, sizeof buf, weft_deadline_ms(1000)), 3);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_cancel_before_read(void **state)
{
    (void)state;
    run_checked(cancel_before_read, NULL);
}

/*
 * A waiter that has already been woken (by its timeout or by a cancel) but
 * has not run yet must not swallow a readiness edge that arrives in the
 * same loop iteration: the next wait on the fd must still see it.
 */
static int short_waiter(void *arg)
{
    int64_t ms = (int64_t)(intptr_t)arg;
    return weft_wait_fd(P[0], WEFT_READABLE, ms ? weft_deadline_ms(ms) : WEFT_NO_DEADLINE);
}

static int write_then_stall(void *arg)
{
    (void)arg;
    if (write(P[1], "e", 1) != 1)
        return -1;
    busy_ns(40 * MS); /* past the waiter's deadline, without suspending */
    return 0;
}

static weft_task *cancel_victim;
static void cancel_cb(weft_timer *tm)
{
    (void)tm;
    weft_cancel(cancel_victim);
}

static int write_then_cancel(void *arg)
{
    weft_timer *tm = arg;
    if (write(P[1], "e", 1) != 1)
        return -1;
    /* due at once: fires in the same iteration that polls the edge */
    return weft_timer_start(tm, weft_now());
}

static int edge_not_lost(void *arg)
{
    (void)arg;
    make_pipe(P);
    int st = 0;
    char c;

    /* timeout + edge in the same iteration */
    weft_task *a = weft_spawn(short_waiter, (void *)(intptr_t)20, NULL);
    weft_task *w = weft_spawn(write_then_stall, NULL, NULL);
    assert_int_equal(weft_join(a, &st), 0);
    assert_int_equal(st, -ETIMEDOUT);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_wait_fd(P[0], WEFT_READABLE, weft_deadline_ms(2000)), WEFT_READABLE);
    assert_int_equal(read(P[0], &c, 1), 1);

    /* cancel + edge in the same iteration */
    weft_timer tm;
    weft_timer_init(&tm, cancel_cb, NULL);
    a = weft_spawn(short_waiter, (void *)(intptr_t)0, NULL);
    cancel_victim = a;
    w = weft_spawn(write_then_cancel, &tm, NULL);
    assert_int_equal(weft_join(a, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_wait_fd(P[0], WEFT_READABLE, weft_deadline_ms(2000)), WEFT_READABLE);
    assert_int_equal(read(P[0], &c, 1), 1);

    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_edge_not_lost_by_woken_waiter(void **state)
{
    (void)state;
    run_checked(edge_not_lost, NULL);
}

/* ------------------------------------------------------------ EOF, hang-up */

static int eof_reader(void *arg)
{
    (void)arg;
    char buf[8];
    ssize_t n = weft_read(P[0], buf, sizeof buf, weft_deadline_ms(5000));
    if (n != 0)
        return n < 0 ? (int)n : -1000;
    /* and again: EOF stays EOF */
    n = weft_read(P[0], buf, sizeof buf, weft_deadline_ms(5000));
    return n == 0 ? 0 : -1001;
}

static int eof(void *arg)
{
    (void)arg;
    make_pipe(P);
    weft_task *r = weft_spawn(eof_reader, NULL, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_close(P[1]), 0);
    int st = -1;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_close(P[0]), 0);
    return 0;
}

static void test_eof(void **state)
{
    (void)state;
    run_checked(eof, NULL);
}

static int hup_waiter(void *arg)
{
    int events = (int)(intptr_t)arg;
    return weft_wait_fd(P[0], events, weft_deadline_ms(5000));
}

static int blocked_pipe_writer(void *arg)
{
    (void)arg;
    return (int)weft_write(P[1], "x", 1, weft_deadline_ms(5000));
}

static int hangup(void *arg)
{
    (void)arg;
    /* socket: the peer closes, a reader and a writer-side waiter wake */
    make_socketpair(P);
    weft_task *r = weft_spawn(hup_waiter, (void *)(intptr_t)WEFT_READABLE, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_close(P[1]), 0);
    int st = 0;
    assert_int_equal(weft_join(r, &st), 0);
    assert_true(st > 0);
    assert_true(st & WEFT_READABLE);
    char buf[4];
    assert_int_equal(weft_read(P[0], buf, sizeof buf, weft_deadline_ms(1000)), 0);
    assert_int_equal(weft_write(P[0], "x", 1, weft_deadline_ms(1000)), -EPIPE);
    assert_non_null(strstr(weft_errmsg(), "weft_write"));
    assert_int_equal(weft_close(P[0]), 0);

    /* pipe: a writer blocked on a full pipe wakes when the reader goes */
    make_pipe(P);
    fill(P[1]);
    weft_task *w = weft_spawn(blocked_pipe_writer, NULL, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, -EPIPE);
    assert_int_equal(weft_write_all(P[1], "abc", 3, weft_deadline_ms(1000)), -EPIPE);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_peer_hangup(void **state)
{
    (void)state;
    run_checked(hangup, NULL);
}

/* ------------------------------------------------------------ bad fds */

static int bad_fds(void *arg)
{
    (void)arg;
    char buf[4];
    assert_int_equal(weft_wait_fd(-1, WEFT_READABLE, WEFT_NO_DEADLINE), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "fd -1"));
    assert_non_null(strstr(weft_errmsg(), "Bad file descriptor"));
    assert_false(fd_is_open(9999));
    assert_int_equal(weft_wait_fd(9999, WEFT_READABLE, WEFT_NO_DEADLINE), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "fd 9999"));
    assert_non_null(strstr(weft_errmsg(), "Bad file descriptor"));
    assert_int_equal(weft_wait_fd(9999, WEFT_WRITABLE, weft_deadline_ms(10)), -EBADF);
    /* huge numbers: no table growth to match, no hang, no overflow */
    assert_int_equal(weft_wait_fd(INT_MAX, WEFT_READABLE, weft_deadline_ms(10)), -EBADF);
    assert_int_equal(weft_wait_fd(1 << 30, WEFT_READABLE, weft_deadline_ms(10)), -EBADF);
    assert_int_equal(weft_wait_fd(INT_MIN, WEFT_READABLE, weft_deadline_ms(10)), -EBADF);

    assert_int_equal(weft_read(-1, buf, sizeof buf, WEFT_NO_DEADLINE), -EBADF);
    assert_int_equal(weft_read(9999, buf, sizeof buf, WEFT_NO_DEADLINE), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "weft_read: fd 9999"));
    assert_int_equal(weft_write(9999, "x", 1, WEFT_NO_DEADLINE), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "weft_write: fd 9999"));
    assert_int_equal(weft_write_all(9999, "x", 1, WEFT_NO_DEADLINE), -EBADF);

    /* a number that was open once, closed with plain close, never waited on */
    int p[2];
    make_pipe(p);
    close(p[0]);
    close(p[1]);
    assert_int_equal(weft_wait_fd(p[0], WEFT_READABLE, weft_deadline_ms(10)), -EBADF);
    assert_int_equal(weft_read(p[0], buf, sizeof buf, weft_deadline_ms(10)), -EBADF);

    /* weft_close of a bad fd */
    assert_int_equal(weft_close(-1), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "weft_close"));
    assert_int_equal(weft_close(9999), -EBADF);
    weft_fd_forget(-1);
    weft_fd_forget(9999);
    weft_fd_forget(INT_MAX);

    /* the loop still works after all that */
    make_pipe(p);
    assert_int_equal(weft_write(p[1], "ok", 2, weft_deadline_ms(1000)), 2);
    assert_int_equal(weft_wait_fd(p[0], WEFT_READABLE, weft_deadline_ms(1000)), WEFT_READABLE);
    assert_int_equal(weft_read(p[0], buf, sizeof buf, weft_deadline_ms(1000)), 2);
    assert_int_equal(weft_close(p[0]), 0);
    assert_int_equal(weft_close(p[1]), 0);
    return 0;
}

static void test_bad_fd(void **state)
{
    (void)state;
    run_checked(bad_fds, NULL);
}

static int bad_masks(void *arg)
{
    (void)arg;
    int p[2];
    make_pipe(p);
    static const int masks[] = {0, -1, 4, 8, WEFT_READABLE | 4, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        assert_int_equal(weft_wait_fd(p[0], masks[i], weft_deadline_ms(1000)), -EINVAL);
        assert_non_null(strstr(weft_errmsg(), "bad event mask"));
    }
    /* the fd is unharmed */
    assert_int_equal(weft_wait_fd(p[1], WEFT_WRITABLE, weft_deadline_ms(1000)), WEFT_WRITABLE);
    assert_int_equal(weft_close(p[0]), 0);
    assert_int_equal(weft_close(p[1]), 0);
    return 0;
}

static void test_bad_event_mask(void **state)
{
    (void)state;
    run_checked(bad_masks, NULL);
}

static void test_io_outside_task(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    char c;
    assert_int_equal(weft_wait_fd(p[0], WEFT_READABLE, WEFT_NO_DEADLINE), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "weft_wait_fd"));
    assert_int_equal(weft_read(p[0], &c, 1, WEFT_NO_DEADLINE), WEFT_ENOTASK);
    assert_int_equal(weft_write(p[1], "x", 1, WEFT_NO_DEADLINE), WEFT_ENOTASK);
    assert_int_equal(weft_write_all(p[1], "x", 1, WEFT_NO_DEADLINE), WEFT_ENOTASK);
    assert_int_equal(read(p[0], &c, 1), -1); /* nothing was written */
    /* weft_close and weft_set_nonblocking work without a loop */
    assert_int_equal(weft_set_nonblocking(p[0]), 0);
    assert_int_equal(weft_close(p[0]), 0);
    assert_int_equal(weft_close(p[1]), 0);
    assert_false(fd_is_open(p[0]));
    assert_int_equal(weft_close(p[0]), -EBADF);
}

/* ------------------------------------------------------------ weft_close */

static int close_waiter(void *arg)
{
    int events = (int)(intptr_t)arg;
    int rc = weft_wait_fd(P[0], events, weft_deadline_ms(5000));
    if (rc == -EBADF && !strstr(weft_errmsg(), "Bad file descriptor"))
        return -1000;
    return rc;
}

static int close_wakes(void *arg)
{
    (void)arg;
    /* P[0]: a full send buffer and nothing to read, so nothing but the
     * close can wake its waiters */
    make_socketpair(P);
    fill(P[0]);
    weft_task *r1 = weft_spawn(close_waiter, (void *)(intptr_t)WEFT_READABLE, NULL);
    weft_task *r2 = weft_spawn(close_waiter, (void *)(intptr_t)WEFT_READABLE, NULL);
    weft_task *w = weft_spawn(close_waiter, (void *)(intptr_t)WEFT_WRITABLE, NULL);
    weft_task *rw = weft_spawn(close_waiter, (void *)(intptr_t)(WEFT_READABLE | WEFT_WRITABLE),
                               NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    int st = 0;
    int64_t c0 = clock_ns();
    assert_int_equal(weft_close(P[0]), 0);
    assert_false(fd_is_open(P[0]));
    assert_int_equal(weft_join(r1, &st), 0);
    assert_int_equal(st, -EBADF);
    assert_int_equal(weft_join(r2, &st), 0);
    assert_int_equal(st, -EBADF);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, -EBADF);
    assert_int_equal(weft_join(rw, &st), 0);
    assert_int_equal(st, -EBADF);
    assert_true(clock_ns() - c0 < 4000 * MS);
    assert_int_equal(weft_close(P[1]), 0);

    /* weft_fd_forget: waiters wake with -EBADF, the fd stays open */
    make_pipe(P);
    r1 = weft_spawn(close_waiter, (void *)(intptr_t)WEFT_READABLE, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    weft_fd_forget(P[0]);
    assert_int_equal(weft_join(r1, &st), 0);
    assert_int_equal(st, -EBADF);
    assert_true(fd_is_open(P[0]));
    weft_fd_forget(P[0]); /* twice: harmless */
    /* and waiting on it again works, even for an edge that came meanwhile */
    assert_int_equal(write(P[1], "f", 1), 1);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_wait_fd(P[0], WEFT_READABLE, weft_deadline_ms(2000)), WEFT_READABLE);
    char c;
    assert_int_equal(weft_read(P[0], &c, 1, weft_deadline_ms(1000)), 1);
    weft_task *wl = weft_spawn(write_later, (void *)(intptr_t)P[1], NULL);
    assert_int_equal(weft_read(P[0], &c, 1, weft_deadline_ms(2000)), 1);
    assert_int_equal(c, 'z');
    assert_int_equal(weft_join(wl, &st), 0);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_close_wakes_waiters(void **state)
{
    (void)state;
    run_checked(close_wakes, NULL);
}

static int reuse(void *arg)
{
    (void)arg;
    int a[2], b[2];
    char c;
    make_pipe(a);
    /* use it, so the loop knows the numbers */
    assert_int_equal(weft_write(a[1], "1", 1, weft_deadline_ms(1000)), 1);
    assert_int_equal(weft_wait_fd(a[0], WEFT_READABLE, weft_deadline_ms(1000)), WEFT_READABLE);
    assert_int_equal(weft_read(a[0], &c, 1, weft_deadline_ms(1000)), 1);
    assert_int_equal(weft_close(a[0]), 0);
    assert_int_equal(weft_close(a[1]), 0);

    make_pipe(b);
    assert_int_equal(b[0], a[0]); /* the same numbers, a different pipe */
    assert_int_equal(b[1], a[1]);
    /* nothing to read: the old pipe's state must not leak into the new one */
    assert_int_equal(weft_wait_fd(b[0], WEFT_READABLE, weft_deadline_ms(10)), -ETIMEDOUT);
    weft_task *w = weft_spawn(write_later, (void *)(intptr_t)b[1], NULL);
    assert_int_equal(weft_wait_fd(b[0], WEFT_READABLE, weft_deadline_ms(2000)), WEFT_READABLE);
    assert_int_equal(weft_read(b[0], &c, 1, weft_deadline_ms(1000)), 1);
    assert_int_equal(c, 'z');
    int st;
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, 1);
    assert_int_equal(weft_close(b[0]), 0);
    assert_int_equal(weft_close(b[1]), 0);
    return 0;
}

static void test_fd_number_reuse(void **state)
{
    (void)state;
    run_checked(reuse, NULL);
}

/* ------------------------------------------------------------ regular files */

static int regular_file(void *arg)
{
    (void)arg;
    char path[] = "/tmp/weft-test-io-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(weft_set_nonblocking(fd), 0);
    int64_t c0 = clock_ns();
    assert_int_equal(weft_wait_fd(fd, WEFT_READABLE, WEFT_NO_DEADLINE), WEFT_READABLE);
    assert_int_equal(weft_wait_fd(fd, WEFT_WRITABLE, WEFT_NO_DEADLINE), WEFT_WRITABLE);
    assert_int_equal(weft_wait_fd(fd, WEFT_READABLE | WEFT_WRITABLE, WEFT_NO_DEADLINE),
                     WEFT_READABLE | WEFT_WRITABLE);
    assert_int_equal(weft_write_all(fd, "regular", 7, WEFT_NO_DEADLINE), 7);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    char buf[16];
    assert_int_equal(weft_read(fd, buf, sizeof buf, WEFT_NO_DEADLINE), 7);
    assert_memory_equal(buf, "regular", 7);
    assert_int_equal(weft_read(fd, buf, sizeof buf, WEFT_NO_DEADLINE), 0); /* EOF */
    assert_true(clock_ns() - c0 < 2000 * MS);
    /* bad masks are still refused */
    assert_int_equal(weft_wait_fd(fd, 0, WEFT_NO_DEADLINE), -EINVAL);
    int num = fd;
    assert_int_equal(weft_close(fd), 0);

    /* the number, reused by a pipe, is pollable again (not "always ready") */
    int p[2];
    make_pipe(p);
    if (p[0] != num) {
        assert_int_equal(dup3(p[0], num, O_CLOEXEC), num);
        close(p[0]);
        p[0] = num;
    }
    assert_int_equal(weft_wait_fd(p[0], WEFT_READABLE, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_int_equal(weft_close(p[0]), 0);
    assert_int_equal(weft_close(p[1]), 0);
    return 0;
}

static void test_regular_file_always_ready(void **state)
{
    (void)state;
    run_checked(regular_file, NULL);
}

/* A cancelled task gets -ECANCELED even on an always-ready file. */
static int cancelled_file_wait(void *arg)
{
    int fd = (int)(intptr_t)arg;
    weft_cancel(weft_current());
    return weft_wait_fd(fd, WEFT_READABLE, WEFT_NO_DEADLINE);
}

static int regular_file_cancel(void *arg)
{
    (void)arg;
    char path[] = "/tmp/weft-test-io-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    weft_task *t = weft_spawn(cancelled_file_wait, (void *)(intptr_t)fd, NULL);
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(weft_close(fd), 0);
    return 0;
}

static void test_regular_file_cancelled(void **state)
{
    (void)state;
    run_checked(regular_file_cancel, NULL);
}

/* ------------------------------------------------------------ nonblocking */

static void test_set_nonblocking(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    assert_int_equal(weft_set_nonblocking(p[0]), 0);
    assert_int_not_equal(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    assert_int_equal(weft_set_nonblocking(p[0]), 0); /* idempotent */
    assert_int_not_equal(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    char c;
    assert_int_equal(read(p[0], &c, 1), -1);
    assert_int_equal(errno, EAGAIN);

    assert_int_equal(weft_set_nonblocking(-1), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "weft_set_nonblocking: fd -1"));
    assert_int_equal(weft_set_nonblocking(9999), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "fd 9999"));
    close(p[0]);
    close(p[1]);
    assert_int_equal(weft_set_nonblocking(p[0]), -EBADF);
}

/* and inside a task, where the message is the task's own */
static int nonblocking_in_task(void *arg)
{
    (void)arg;
    assert_string_equal(weft_errmsg(), "");
    assert_int_equal(weft_set_nonblocking(9999), -EBADF);
    assert_non_null(strstr(weft_errmsg(), "fd 9999"));
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_set_nonblocking(p[0]), 0);
    assert_int_equal(weft_set_nonblocking(p[1]), 0);
    weft_task *w = weft_spawn(write_later, (void *)(intptr_t)p[1], NULL);
    char c;
    assert_int_equal(weft_read(p[0], &c, 1, weft_deadline_ms(2000)), 1);
    int st;
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(weft_close(p[0]), 0);
    assert_int_equal(weft_close(p[1]), 0);
    return 0;
}

static void test_set_nonblocking_in_task(void **state)
{
    (void)state;
    run_checked(nonblocking_in_task, NULL);
}

/* ------------------------------------------------------------ shared fds */

static int rw_woken_r, rw_woken_w;
static int sock_waiter(void *arg)
{
    int events = (int)(intptr_t)arg;
    int rc = weft_wait_fd(P[0], events, weft_deadline_ms(5000));
    if (events == WEFT_READABLE)
        rw_woken_r = 1;
    else
        rw_woken_w = 1;
    return rc;
}

static int two_waiters(void *arg)
{
    (void)arg;
    make_socketpair(P);
    size_t filled = fill(P[0]); /* P[0] is not writable, and has nothing to read */
    assert_true(filled > 0);
    rw_woken_r = rw_woken_w = 0;
    weft_task *r = weft_spawn(sock_waiter, (void *)(intptr_t)WEFT_READABLE, NULL);
    weft_task *w = weft_spawn(sock_waiter, (void *)(intptr_t)WEFT_WRITABLE, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(rw_woken_r + rw_woken_w, 0);

    /* data for P[0]: only the reader wakes */
    assert_int_equal(write(P[1], "r", 1), 1);
    int st = 0;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, WEFT_READABLE);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(rw_woken_w, 0);
    char c;
    assert_int_equal(weft_read(P[0], &c, 1, weft_deadline_ms(1000)), 1);
    assert_int_equal(c, 'r');

    /* room in P[0]'s send buffer: the writer wakes */
    assert_int_equal(drain(P[1]), filled);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, WEFT_WRITABLE);
    assert_int_equal(rw_woken_w, 1);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_two_waiters_same_fd(void **state)
{
    (void)state;
    run_checked(two_waiters, NULL);
}

/* A high fd number grows the loop's fd table while a task waits on a low one. */
static int grow_table(void *arg)
{
    (void)arg;
    make_pipe(P);
    weft_task *r = weft_spawn(hup_waiter, (void *)(intptr_t)WEFT_READABLE, NULL);
    assert_int_equal(weft_sleep_ms(2), 0);
    int high = fcntl(P[1], F_DUPFD_CLOEXEC, 700);
    if (high < 0) {
        high = fcntl(P[1], F_DUPFD_CLOEXEC, 200);
        assert_true(high >= 0);
    }
    assert_int_equal(weft_wait_fd(high, WEFT_WRITABLE, weft_deadline_ms(1000)), WEFT_WRITABLE);
    assert_int_equal(weft_write(high, "g", 1, weft_deadline_ms(1000)), 1);
    int st = 0;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, WEFT_READABLE);
    assert_int_equal(weft_close(high), 0);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_fd_table_growth(void **state)
{
    (void)state;
    run_checked(grow_table, NULL);
}

/* Many tasks ping-pong a token through a ring of pipes. */
enum { RING = 64, LAPS = 50 };
static int ring[RING][2];

static int ring_member(void *arg)
{
    int i = (int)(intptr_t)arg;
    int in = ring[i][0], out = ring[(i + 1) % RING][1];
    for (int lap = 0; lap < LAPS; lap++) {
        unsigned char tok;
        ssize_t n = weft_read(in, &tok, 1, weft_deadline_ms(10000));
        if (n != 1)
            return n < 0 ? (int)n : -1000;
        if (tok != (unsigned char)(lap * RING + i))
            return -1001;
        tok++;
        if (weft_write(out, &tok, 1, weft_deadline_ms(10000)) != 1)
            return -1002;
    }
    return 0;
}

static int token_ring(void *arg)
{
    (void)arg;
    weft_task *t[RING];
    for (int i = 0; i < RING; i++)
        make_pipe(ring[i]);
    for (int i = 0; i < RING; i++)
        t[i] = weft_spawn(ring_member, (void *)(intptr_t)i, NULL);
    assert_int_equal(weft_sleep_ms(1), 0);
    unsigned char tok = 0;
    assert_int_equal(weft_write(ring[0][1], &tok, 1, WEFT_NO_DEADLINE), 1);
    for (int i = 0; i < RING; i++) {
        int st = -1;
        assert_int_equal(weft_join(t[i], &st), 0);
        assert_int_equal(st, 0);
    }
    assert_int_equal(weft_read(ring[0][0], &tok, 1, weft_deadline_ms(1000)), 1);
    assert_int_equal(tok, (unsigned char)(LAPS * RING));
    for (int i = 0; i < RING; i++) {
        assert_int_equal(weft_close(ring[i][0]), 0);
        assert_int_equal(weft_close(ring[i][1]), 0);
    }
    return 0;
}

static void test_token_ring(void **state)
{
    (void)state;
    run_checked(token_ring, NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_waits_for_writer),
        cmocka_unit_test(test_write_blocks_on_full_pipe),
        cmocka_unit_test(test_write_all_large),
        cmocka_unit_test(test_wait_fd_masks),
        cmocka_unit_test(test_deadline_timeout),
        cmocka_unit_test(test_cancel_while_waiting),
        cmocka_unit_test(test_cancel_before_read),
        cmocka_unit_test(test_edge_not_lost_by_woken_waiter),
        cmocka_unit_test(test_eof),
        cmocka_unit_test(test_peer_hangup),
        cmocka_unit_test(test_bad_fd),
        cmocka_unit_test(test_bad_event_mask),
        cmocka_unit_test(test_io_outside_task),
        cmocka_unit_test(test_close_wakes_waiters),
        cmocka_unit_test(test_fd_number_reuse),
        cmocka_unit_test(test_regular_file_always_ready),
        cmocka_unit_test(test_regular_file_cancelled),
        cmocka_unit_test(test_set_nonblocking),
        cmocka_unit_test(test_set_nonblocking_in_task),
        cmocka_unit_test(test_two_waiters_same_fd),
        cmocka_unit_test(test_fd_table_growth),
        cmocka_unit_test(test_token_ring),
    };
    return run_cases(tests, NULL, NULL);
}
