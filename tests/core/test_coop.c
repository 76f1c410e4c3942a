/* SPDX-License-Identifier: MIT */
/*
 * The cooperative budget: a task whose operations never have to wait (an fd
 * that is always readable, a queue never empty, a semaphore never contended)
 * still lets the others run every `budget` operations.
 *
 * The checks count rather than time: a "spinner" task yields in a loop and,
 * each time it runs, zeroes every worker's streak (operations done since the
 * spinner last ran).  Ready tasks run in FIFO order, so a worker that yields
 * lets the spinner run before it runs again: with the budget, no streak can
 * exceed the budget, whatever the machine's load; without it, a worker that
 * never waits has one streak as long as its whole loop.  A 1 ms timer
 * ticker runs beside them; its tick count and worst lateness are printed,
 * and it must have ticked during each storm.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>
#include <weft/net.h>

#include "test_helpers.h"

#define NWORKERS 2

static struct {
    bool stop;                 /* the storm is over: spinner and ticker end */
    long runs;                 /* spinner runs */
    long streak[NWORKERS];     /* operations of worker k since the spinner ran */
    long max_streak[NWORKERS];
    long ticks;                /* timer ticks while the storm ran */
    int64_t worst_gap;         /* ns between two ticks, at worst */
} S;

static void reset_state(void)
{
    memset(&S, 0, sizeof S);
}

static inline void note_op(int k)
{
    if (++S.streak[k] > S.max_streak[k])
        S.max_streak[k] = S.streak[k];
}

static int spinner(void *arg)
{
    (void)arg;
    while (!S.stop) {
        S.runs++;
        for (int k = 0; k < NWORKERS; k++)
            S.streak[k] = 0;
        if (weft_yield() < 0)
            break;
    }
    return 0;
}

static int ticker(void *arg)
{
    (void)arg;
    int64_t last = clock_ns();
    while (!S.stop) {
        if (weft_sleep_ms(1) < 0)
            break;
        int64_t now = clock_ns();
        if (S.stop)
            break;
        if (now - last > S.worst_gap)
            S.worst_gap = now - last;
        S.ticks++;
        last = now;
    }
    return 0;
}

/* Run `worker0` (and `worker1` if not NULL) beside the spinner and the
 * ticker; stop those when the workers are done. */
static void storm(const char *what, weft_task_fn worker0, weft_task_fn worker1, void *arg)
{
    reset_state();
    weft_task *sp = spawn_named(spinner, NULL, "spinner");
    weft_task *tk = spawn_named(ticker, NULL, "ticker");
    weft_task *w0 = spawn_named(worker0, arg, "worker0");
    weft_task *w1 = worker1 ? spawn_named(worker1, arg, "worker1") : NULL;
    int64_t t0 = clock_ns();
    assert_int_equal(join_status(w0), 0);
    if (w1)
        assert_int_equal(join_status(w1), 0);
    int64_t dt = clock_ns() - t0;
    S.stop = true;
    assert_int_equal(join_status(sp), 0);
    assert_int_equal(join_status(tk), 0);
    printf("# %s: %.1f ms, budget %u: longest streaks %ld / %ld, spinner ran %ld times, "
           "1 ms ticker ticked %ld times, worst gap %.2f ms\n",
           what, (double)dt / 1e6, weft_coop_budget(), S.max_streak[0], S.max_streak[1], S.runs,
           S.ticks, (double)S.worst_gap / 1e6);
}

/* At most `budget` operations that did not wait, plus the one before them
 * that did (its wait let the spinner run, and it completes after). */
static void assert_fair(void)
{
    long budget = (long)weft_coop_budget();
    for (int k = 0; k < NWORKERS; k++)
        assert_in_range(S.max_streak[k], 0, budget + 1);
    assert_true(S.ticks >= 1); /* the timer fired while the storm ran */
}

/* ------------------------------------------------------------ an fd always readable */

#define PIECE (64 * 1024)
#define TOTAL ((size_t)64 * 1024 * 1024)

static volatile unsigned sink; /* keeps the checksums from being optimised away */

static void checksum(const unsigned char *p, size_t n)
{
    unsigned h = 2166136261u; /* work on each piece, as a reader that hashes */
    for (size_t i = 0; i < n; i += 4)
        h = (h ^ p[i]) * 16777619u;
    sink = h;
}

static int devzero_reader(void *arg)
{
    (void)arg;
    int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    static unsigned char buf[PIECE];
    for (size_t got = 0; got < TOTAL;) {
        ssize_t n = weft_read(fd, buf, sizeof buf, WEFT_NO_DEADLINE);
        assert_true(n > 0);
        checksum(buf, (size_t)n);
        got += (size_t)n;
        note_op(0);
    }
    close(fd);
    return 0;
}

static int main_devzero(void *arg)
{
    (void)arg;
    storm("64 MiB from /dev/zero in 64 KiB reads", devzero_reader, NULL, NULL);
    assert_fair();
    assert_true(S.runs >= (long)(TOTAL / PIECE) / ((long)weft_coop_budget() + 1) - 1);
    return 0;
}

static void test_always_readable_fd(void **state)
{
    (void)state;
    run_task(main_devzero);
}

/* With the budget off, the same reader holds the loop from start to end. */
static int main_devzero_off(void *arg)
{
    (void)arg;
    weft_set_coop_budget(0);
    assert_int_equal(weft_coop_budget(), 0);
    int64_t slow = weft_slow_ms();
    weft_set_slow_ms(0); /* it does hold the loop: no report */
    storm("the same with the budget off", devzero_reader, NULL, NULL);
    weft_set_slow_ms(slow);
    assert_int_equal(S.max_streak[0], (long)(TOTAL / PIECE));
    weft_set_coop_budget(WEFT_COOP_BUDGET_DEFAULT);
    return 0;
}

static void test_budget_off(void **state)
{
    (void)state;
    run_task(main_devzero_off);
    assert_int_equal(weft_coop_budget(), WEFT_COOP_BUDGET_DEFAULT);
}

/* ------------------------------------------------------------ a 64 MiB download over loopback */

static void *writer_thread(void *arg)
{
    int fd = *(int *)arg;
    static char chunk[256 * 1024];
    memset(chunk, 'x', sizeof chunk);
    for (size_t sent = 0; sent < TOTAL;) {
        ssize_t n = write(fd, chunk, sizeof chunk < TOTAL - sent ? sizeof chunk : TOTAL - sent);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    close(fd);
    return NULL;
}

/* A connected TCP pair over 127.0.0.1: *a blocking (for the thread), *b
 * non-blocking (for weft). */
static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*a >= 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof sa), 0);
    *b = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    assert_true(*b >= 0);
    close(l);
}

static int download_reader(void *arg)
{
    weft_stream *s = arg;
    static unsigned char buf[PIECE];
    size_t got = 0;
    for (;;) {
        ssize_t n = weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(30000));
        assert_true(n >= 0);
        if (n == 0)
            break;
        checksum(buf, (size_t)n);
        got += (size_t)n;
        note_op(0);
    }
    assert_true(got == TOTAL);
    return 0;
}

static int main_download(void *arg)
{
    (void)arg;
    int a, b;
    tcp_pair(&a, &b);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_thread, &a), 0);
    weft_stream *s = weft_stream_new(b, 0);
    assert_non_null(s);
    storm("64 MiB over loopback TCP, read in 64 KiB pieces", download_reader, NULL, s);
    weft_stream_close(s);
    pthread_join(th, NULL);
    assert_fair();
    return 0;
}

static void test_loopback_download(void **state)
{
    (void)state;
    run_task(main_download);
}

/* ------------------------------------------------------------ a queue storm */

#define QITEMS 1000000

static weft_queue storm_q;

static int producer(void *arg)
{
    (void)arg;
    for (long i = 0; i < QITEMS; i++) {
        assert_int_equal(weft_queue_put(&storm_q, (void *)(intptr_t)(i + 1)), 0);
        note_op(0);
    }
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    for (long i = 0; i < QITEMS; i++) {
        void *item;
        assert_int_equal(weft_queue_get(&storm_q, &item), 0);
        assert_int_equal((intptr_t)item, i + 1);
        note_op(1);
    }
    return 0;
}

static int main_queue(void *arg)
{
    (void)arg;
    /* Room for every item: the producer never has to wait. */
    assert_int_equal(weft_queue_init(&storm_q, QITEMS), 0);
    storm("queue producer/consumer storm", producer, consumer, NULL);
    assert_int_equal(weft_queue_close(&storm_q), 0);
    assert_fair();
    /* Each side yields at least every `budget` operations (+ one that waited). */
    assert_true(S.runs >= QITEMS / ((long)weft_coop_budget() + 1) / 2);
    return 0;
}

static void test_queue_storm(void **state)
{
    (void)state;
    run_task(main_queue);
}

/* ------------------------------------------------------------ a semaphore never contended */

#define SEM_LOOPS 2000000

static int sem_loop(void *arg)
{
    weft_sem *sem = arg;
    for (long i = 0; i < SEM_LOOPS; i++) {
        assert_int_equal(weft_sem_acquire(sem), 0);
        note_op(0);
        assert_int_equal(weft_sem_release(sem), 0);
    }
    return 0;
}

static int main_sem(void *arg)
{
    (void)arg;
    weft_sem sem;
    assert_int_equal(weft_sem_init(&sem, 1), 0);
    storm("a semaphore never contended", sem_loop, NULL, &sem);
    assert_int_equal(weft_sem_close(&sem), 0);
    assert_fair();
    assert_true(S.runs >= SEM_LOOPS / ((long)weft_coop_budget() + 1) / 2);
    return 0;
}

static void test_uncontended_semaphore(void **state)
{
    (void)state;
    run_task(main_sem);
}

/* ------------------------------------------------------------ each operation counts, once */

#define SMALL 8

/* After a real suspension the budget is full: `SMALL` - 1 operations run
 * without yielding, the next one yields once when done (the spinner runs). */
typedef void (*op_fn)(void *ctx);

static void check_op(const char *name, op_fn op, void *ctx)
{
    assert_int_equal(weft_sleep_ms(1), 0); /* a wait: a fresh budget */
    long before = S.runs;
    for (int i = 0; i < SMALL - 1; i++)
        op(ctx);
    if (S.runs != before) {
        fprintf(stderr, "%s: yielded within the budget\n", name);
        fail();
    }
    op(ctx);
    if (S.runs != before + 1) {
        fprintf(stderr, "%s: %ld yields after `budget` operations, want 1\n", name,
                S.runs - before);
        fail();
    }
}

static void op_sem(void *ctx) { assert_int_equal(weft_sem_acquire(ctx), 0); weft_sem_release(ctx); }
static void op_lock(void *ctx)
{
    assert_int_equal(weft_lock_acquire(ctx), 0);
    assert_int_equal(weft_lock_release(ctx), 0);
}
static void op_event(void *ctx) { assert_int_equal(weft_event_wait(ctx), 0); }
static void op_put(void *ctx) { assert_int_equal(weft_queue_put(ctx, ctx), 0); }
static void op_get(void *ctx)
{
    void *item;
    assert_int_equal(weft_queue_get(ctx, &item), 0);
}
static void op_read(void *ctx)
{
    char c[16];
    assert_int_equal(weft_read(*(int *)ctx, c, sizeof c, WEFT_NO_DEADLINE), sizeof c);
}
static void op_write(void *ctx)
{
    assert_int_equal(weft_write(*(int *)ctx, "x", 1, WEFT_NO_DEADLINE), 1);
}
static void op_wait_fd(void *ctx)
{
    assert_int_equal(weft_wait_fd(*(int *)ctx, WEFT_READABLE, WEFT_NO_DEADLINE), WEFT_READABLE);
}
static void op_stream(void *ctx)
{
    char c;
    assert_int_equal(weft_stream_read_some(ctx, &c, 1, WEFT_NO_DEADLINE), 1);
}
static void op_stream_exact(void *ctx)
{
    char c[2];
    assert_int_equal(weft_stream_read_exact(ctx, c, 2, WEFT_NO_DEADLINE), 2);
}
static void op_stream_line(void *ctx)
{
    char line[8];
    assert_int_equal(weft_stream_read_until(ctx, "\n", 1, line, sizeof line, WEFT_NO_DEADLINE),
                     2);
}
static void op_stream_write(void *ctx)
{
    assert_int_equal(weft_stream_write_all(ctx, "x", 1, WEFT_NO_DEADLINE), 1);
}
static void op_spend(void *ctx)
{
    (void)ctx;
    assert_int_equal(weft_coop_spend(), 0);
}

static int every_op(void *arg)
{
    (void)arg;
    weft_sem sem;
    weft_lock lock;
    weft_event ev;
    weft_queue q;
    weft_sem_init(&sem, 1);
    weft_lock_init(&lock);
    weft_event_init(&ev);
    weft_event_set(&ev);
    assert_int_equal(weft_queue_init(&q, 100), 0);
    check_op("weft_sem_acquire", op_sem, &sem);
    check_op("weft_lock_acquire", op_lock, &lock);
    check_op("weft_event_wait", op_event, &ev);
    check_op("weft_queue_put", op_put, &q);
    check_op("weft_queue_get", op_get, &q);
    check_op("weft_coop_spend", op_spend, NULL);

    int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(zero >= 0 && null >= 0);
    check_op("weft_read", op_read, &zero);
    check_op("weft_write", op_write, &null);
    check_op("weft_wait_fd", op_wait_fd, &zero);
    weft_close(zero);
    weft_close(null);

    /* Stream reads served from the buffer count too: fill it once first. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    char data[300];
    for (size_t i = 0; i < sizeof data; i += 2)
        memcpy(data + i, "a\n", 2);
    assert_int_equal(write(sv[0], data, sizeof data), sizeof data);
    weft_stream *s = weft_stream_new(sv[1], 0), *w = weft_stream_new(sv[0], 0);
    assert_non_null(s);
    assert_non_null(w);
    assert_true(weft_stream_fill(s, 4096, WEFT_NO_DEADLINE) == (ssize_t)sizeof data);
    check_op("weft_stream_read_some", op_stream, s);
    check_op("weft_stream_read_exact", op_stream_exact, s);
    char rest[4]; /* back to the start of a line */
    assert_true(weft_stream_read_until(s, "\n", 1, rest, sizeof rest, WEFT_NO_DEADLINE) > 0);
    check_op("weft_stream_read_until", op_stream_line, s);
    check_op("weft_stream_write_all", op_stream_write, w);
    weft_stream_close(s);
    weft_stream_close(w);

    weft_sem_close(&sem);
    weft_lock_close(&lock);
    weft_event_close(&ev);
    weft_queue_close(&q);
    return 0;
}

/* The budget starts afresh whenever the task waits: a task that does a
 * few operations between waits never yields for the budget. */
static int suspends_now_and_then(void *arg)
{
    weft_sem *sem = arg;
    for (int round = 0; round < 30; round++) {
        long before = S.runs;
        for (int i = 0; i < SMALL - 1; i++) {
            assert_int_equal(weft_sem_acquire(sem), 0);
            weft_sem_release(sem);
        }
        assert_int_equal(S.runs, before);
        assert_int_equal(weft_sleep_ms(1), 0); /* a wait: a fresh budget */
    }
    return 0;
}

static int main_each_op(void *arg)
{
    (void)arg;
    weft_set_coop_budget(SMALL);
    assert_int_equal(weft_coop_budget(), SMALL);
    reset_state();
    weft_task *sp = spawn_named(spinner, NULL, "spinner");
    weft_task *t = spawn_named(every_op, NULL, "every_op");
    assert_int_equal(join_status(t), 0);
    weft_sem sem;
    weft_sem_init(&sem, 1);
    t = spawn_named(suspends_now_and_then, &sem, "suspends");
    assert_int_equal(join_status(t), 0);
    S.stop = true;
    assert_int_equal(join_status(sp), 0);
    weft_sem_close(&sem);
    weft_set_coop_budget(WEFT_COOP_BUDGET_DEFAULT);
    return 0;
}

static void test_each_operation_counts(void **state)
{
    (void)state;
    run_task(main_each_op);
}

/* ------------------------------------------------------------ the knob */

static int main_knob(void *arg)
{
    (void)arg;
    assert_int_equal(weft_coop_budget(), WEFT_COOP_BUDGET_DEFAULT);
    weft_set_coop_budget(1);
    assert_int_equal(weft_coop_budget(), 1);
    weft_set_coop_budget(WEFT_COOP_BUDGET_DEFAULT);
    return 0;
}

static void test_knob(void **state)
{
    (void)state;
    assert_int_equal(weft_coop_budget(), WEFT_COOP_BUDGET_DEFAULT);
    assert_int_equal(weft_coop_spend(), WEFT_ENOTASK); /* outside a task */
    run_task(main_knob);
    /* Set outside a loop: the default of loops started afterwards. */
    weft_set_coop_budget(3);
    assert_int_equal(weft_coop_budget(), 3);
    weft_set_coop_budget(WEFT_COOP_BUDGET_DEFAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_knob),
        cmocka_unit_test(test_each_operation_counts),
        cmocka_unit_test(test_always_readable_fd),
        cmocka_unit_test(test_budget_off),
        cmocka_unit_test(test_loopback_download),
        cmocka_unit_test(test_queue_storm),
        cmocka_unit_test(test_uncontended_semaphore),
    };
    return run_cases(tests, NULL, NULL);
}
