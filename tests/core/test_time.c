/* SPDX-License-Identifier: MIT */
/* Time: weft_now, deadlines, sleeping and callback timers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

/* xorshift64*: deterministic pseudo-random numbers for the heap tests. */
static uint64_t prng_state;
static uint64_t prng(void)
{
    uint64_t x = prng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    prng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ------------------------------------------------------------ weft_now */

static void test_now_outside_loop(void **state)
{
    (void)state;
    int64_t a = weft_now();
    int64_t c0 = clock_ns();
    busy_ns(1 * MS);
    int64_t b = weft_now();
    assert_true(a > 0);
    assert_true(a <= c0);          /* the real monotonic clock ... */
    assert_true(b >= a + 1 * MS);  /* ... read at every call */
}

static int due_fired;
static void due_fire(weft_timer *tm)
{
    (void)tm;
    due_fired++;
}

static int now_cached(void *arg)
{
    (void)arg;
    int64_t a = weft_now();
    assert_true(a > 0);
    assert_true(a <= clock_ns());
    /* It reads the clock at every call, even while the task computes
     * without suspending (the loop's cached time does not move then). */
    busy_ns(3 * MS);
    int64_t b = weft_now();
    assert_true(b >= a + 3 * MS);
    assert_true(b <= clock_ns());
    /* Yielding with nobody else ready does not start a new iteration: a
     * timer already due does not fire (the next iteration fires it). */
    weft_timer due;
    weft_timer_init(&due, due_fire, NULL);
    due_fired = 0;
    assert_int_equal(weft_timer_start(&due, a), 0);
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(due_fired, 0);
    /* A sleep goes through the loop: the time moves, monotonically. */
    int64_t prev = weft_now();
    assert_true(prev >= b);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(weft_sleep_ms(1), 0);
        int64_t n = weft_now();
        assert_true(n >= prev + 1 * MS);
        assert_int_equal(due_fired, 1);
        prev = n;
    }
    assert_true(prev >= a + 20 * MS);
    assert_true(prev <= clock_ns());
    return 0;
}

static void test_now_cached_in_loop(void **state)
{
    (void)state;
    run_checked(now_cached, NULL);
}

/* ------------------------------------------------------------ deadlines */

/* `expr` is weft_now() + `span` with the clock read during the call. */
#define ASSERT_SPAN(expr, span)                                                                 \
    do {                                                                                       \
        int64_t lo_ = weft_now();                                                              \
        int64_t d_ = (expr);                                                                   \
        int64_t hi_ = weft_now();                                                              \
        assert_true(d_ >= lo_ + (span));                                                       \
        assert_true(d_ <= hi_ + (span));                                                       \
    } while (0)

static int deadlines(void *arg)
{
    (void)arg;
    ASSERT_SPAN(weft_deadline_ms(0), 0);
    ASSERT_SPAN(weft_deadline_ns(0), 0);
    ASSERT_SPAN(weft_deadline_ms(1), 1 * MS);
    ASSERT_SPAN(weft_deadline_ms(1500), 1500 * MS);
    ASSERT_SPAN(weft_deadline_ns(1), 1);
    ASSERT_SPAN(weft_deadline_ns(123456789), 123456789);
    /* negative spans: deadlines in the past */
    ASSERT_SPAN(weft_deadline_ms(-5), -5 * MS);
    ASSERT_SPAN(weft_deadline_ns(-7), -7);
    int64_t now = weft_now();
    assert_true(weft_deadline_ms(INT64_MIN) < now);
    assert_true(weft_deadline_ms(-(INT64_MAX / MS)) < now);
    assert_true(weft_deadline_ns(INT64_MIN) < now);
    assert_true(weft_deadline_ns(INT64_MIN + 1) < now);
    /* saturation at WEFT_NO_DEADLINE, never an overflow */
    assert_true(weft_deadline_ms(INT64_MAX) == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ms(WEFT_NO_TIMEOUT) == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ms(INT64_MAX / MS) == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ms(INT64_MAX / MS + 1) == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ns(INT64_MAX) == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ns(INT64_MAX - now) == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ns(INT64_MAX - now + 1) == WEFT_NO_DEADLINE);
    /* just below saturation (the clock moved by less than a second) */
    int64_t d = weft_deadline_ns(INT64_MAX - now - 1000 * MS);
    assert_true(d < WEFT_NO_DEADLINE && d >= WEFT_NO_DEADLINE - 1000 * MS);
    /* a large but representable span is exact */
    int64_t year_ms = 365LL * 24 * 3600 * 1000;
    ASSERT_SPAN(weft_deadline_ms(year_ms), year_ms * MS);
    return 0;
}

static void test_deadlines(void **state)
{
    (void)state;
    run_checked(deadlines, NULL);
}

static void test_deadlines_outside_loop(void **state)
{
    (void)state;
    int64_t before = clock_ns();
    int64_t d = weft_deadline_ms(10);
    int64_t after = clock_ns();
    assert_true(d >= before + 10 * MS);
    assert_true(d <= after + 10 * MS);
    assert_true(weft_deadline_ms(INT64_MAX) == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ns(INT64_MAX) == WEFT_NO_DEADLINE);
    int64_t past = weft_deadline_ms(-10);
    assert_true(past <= clock_ns() - 10 * MS);
}

/* ------------------------------------------------------------ sleeping */

static int sleeps(void *arg)
{
    (void)arg;
    int64_t d = weft_deadline_ms(20);
    assert_int_equal(weft_sleep_ms(20), 0);
    assert_true(weft_now() >= d);
    assert_true(clock_ns() >= d);

    d = weft_deadline_ns(3 * MS);
    assert_int_equal(weft_sleep_ns(3 * MS), 0);
    assert_true(weft_now() >= d);

    d = weft_deadline_ms(7);
    assert_int_equal(weft_sleep_until(d), 0);
    assert_true(weft_now() >= d);
    assert_true(clock_ns() >= d);

    /* tiny sleeps return 0 and move the clock forward */
    int64_t before = weft_now();
    assert_int_equal(weft_sleep_ns(1), 0);
    assert_true(weft_now() > before);

    /* generous upper bound: a 10 ms sleep takes far less than 5 s */
    int64_t c0 = clock_ns();
    assert_int_equal(weft_sleep_ms(10), 0);
    int64_t took = clock_ns() - c0;
    assert_true(took < 5000 * MS);
    return 0;
}

static void test_sleep_at_least(void **state)
{
    (void)state;
    run_checked(sleeps, NULL);
}

/* Sleeps of different lengths in parallel wake in deadline order. */
static int wake_order[8];
static int nwoke;

static int sleep_for(void *arg)
{
    int ms = (int)(intptr_t)arg;
    int64_t d = weft_deadline_ms(ms);
    int rc = weft_sleep_ms(ms);
    if (rc == 0 && weft_now() < d)
        return -1;
    wake_order[nwoke++] = ms;
    return rc;
}

static int parallel_sleeps(void *arg)
{
    (void)arg;
    static const int ms[] = {40, 10, 30, 1, 20};
    weft_task *t[5];
    nwoke = 0;
    int64_t start = weft_now(); /* the sleeps count from the loop's time */
    for (int i = 0; i < 5; i++)
        t[i] = weft_spawn(sleep_for, (void *)(intptr_t)ms[i], NULL);
    for (int i = 0; i < 5; i++) {
        int st = -1;
        assert_int_equal(weft_join(t[i], &st), 0);
        assert_int_equal(st, 0);
    }
    assert_int_equal(nwoke, 5);
    assert_int_equal(wake_order[0], 1);
    assert_int_equal(wake_order[1], 10);
    assert_int_equal(wake_order[2], 20);
    assert_int_equal(wake_order[3], 30);
    assert_int_equal(wake_order[4], 40);
    /* they slept concurrently: well under the 101 ms sum, with big slack */
    int64_t took = clock_ns() - start;
    assert_true(took >= 40 * MS);
    assert_true(took < 5000 * MS);
    return 0;
}

static void test_sleeps_run_concurrently(void **state)
{
    (void)state;
    run_checked(parallel_sleeps, NULL);
}

/* sleep(0), a negative sleep and a past deadline yield to the others. */
static char trace[64];
static int ntrace;

static int zero_sleeper(void *arg)
{
    int kind = (int)(intptr_t)arg;
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = (char)('a' + kind);
        int rc;
        switch (kind) {
        case 0: rc = weft_sleep_ms(0); break;
        case 1: rc = weft_sleep_ns(-5); break;
        default: rc = weft_sleep_until(weft_now() - 1000); break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int zero_sleeps(void *arg)
{
    (void)arg;
    ntrace = 0;
    weft_task *t[3];
    for (int k = 0; k < 3; k++)
        t[k] = weft_spawn(zero_sleeper, (void *)(intptr_t)k, NULL);
    for (int k = 0; k < 3; k++) {
        int st = -1;
        assert_int_equal(weft_join(t[k], &st), 0);
        assert_int_equal(st, 0);
    }
    trace[ntrace] = 0;
    assert_string_equal(trace, "abcabcabc");
    /* alone, with a deadline long gone */
    assert_int_equal(weft_sleep_until(0), 0);
    assert_int_equal(weft_sleep_until(INT64_MIN), 0);
    assert_int_equal(weft_sleep_ms(INT64_MIN), 0);
    return 0;
}

static void test_sleep_zero_yields(void **state)
{
    (void)state;
    run_checked(zero_sleeps, NULL);
}

/* sleep(0) yields "to the loop's timers": a due timer fires meanwhile, so a
 * task polling a flag with sleep(0) cannot spin forever. */
static int zero_fired;
static void set_zero_fired(weft_timer *tm)
{
    (void)tm;
    zero_fired = 1;
}

static int sleep_zero_timers(void *arg)
{
    (void)arg;
    weft_timer tm;
    zero_fired = 0;
    weft_timer_init(&tm, set_zero_fired, NULL);
    assert_int_equal(weft_timer_start(&tm, weft_now()), 0); /* due now */
    int spins = 0;
    while (!zero_fired && spins < 1000) {
        assert_int_equal(weft_sleep_ms(0), 0);
        spins++;
    }
    assert_int_equal(zero_fired, 1);
    assert_false(weft_timer_active(&tm));

    /* and the loop's clock moves on meanwhile */
    int64_t until = weft_now() + 2 * MS;
    spins = 0;
    while (weft_now() < until && spins < 10000000) {
        assert_int_equal(weft_sleep_ns(0), 0);
        spins++;
    }
    assert_true(weft_now() >= until);
    return 0;
}

static void test_sleep_zero_runs_timers(void **state)
{
    (void)state;
    run_checked(sleep_zero_timers, NULL);
}

/* cancellation */
static int long_sleeper(void *arg)
{
    int64_t how = (int64_t)(intptr_t)arg;
    int rc;
    if (how == 0)
        rc = weft_sleep_ms(100000);
    else if (how == 1)
        rc = weft_sleep_until(WEFT_NO_DEADLINE);
    else
        rc = weft_sleep_ns(INT64_MAX);
    if (rc != -ECANCELED)
        return rc == 0 ? -1000 : rc;
    if (!strstr(weft_errmsg(), "weft_sleep"))
        return -1001;
    /* level-triggered: every later sleep fails at once, sleep(0) too */
    if (weft_sleep_ms(1) != -ECANCELED || weft_sleep_ms(0) != -ECANCELED ||
        weft_sleep_until(0) != -ECANCELED)
        return -1002;
    return rc;
}

static int cancel_sleepers(void *arg)
{
    (void)arg;
    weft_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = weft_spawn(long_sleeper, (void *)(intptr_t)i, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    int64_t c0 = clock_ns();
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_cancel(t[i]), 0);
    for (int i = 0; i < 3; i++) {
        int st = 0;
        assert_int_equal(weft_join(t[i], &st), 0);
        assert_int_equal(st, -ECANCELED);
    }
    assert_true(clock_ns() - c0 < 5000 * MS);
    return 0;
}

static void test_sleep_cancelled(void **state)
{
    (void)state;
    run_checked(cancel_sleepers, NULL);
}

static int cancelled_before_sleep(void *arg)
{
    (void)arg;
    int rc = weft_sleep_ms(10000);
    if (rc != -ECANCELED)
        return -1;
    return weft_sleep_ms(0);
}

static int cancel_before_sleep(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(cancelled_before_sleep, NULL, NULL);
    assert_int_equal(weft_cancel(t), 0); /* before it even started */
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, -ECANCELED);
    return 0;
}

static void test_sleep_cancelled_before(void **state)
{
    (void)state;
    run_checked(cancel_before_sleep, NULL);
}

/* a shield's own deadline makes a long sleep fail with -ETIMEDOUT */
static int shield_sleep(void *arg)
{
    (void)arg;
    weft_shield sh;
    weft_shield_begin(&sh, 5);
    int64_t d = weft_deadline_ms(5);
    assert_int_equal(weft_sleep_ms(10000), -ETIMEDOUT);
    assert_true(weft_now() >= d);
    assert_non_null(strstr(weft_errmsg(), "weft_sleep"));
    /* the deadline has passed: later sleeps, sleep(0) too, fail at once */
    assert_int_equal(weft_sleep_ms(10000), -ETIMEDOUT);
    weft_shield_end(&sh);
    assert_int_equal(weft_sleep_ms(1), 0);
    return 0;
}

static void test_sleep_shield_deadline(void **state)
{
    (void)state;
    run_checked(shield_sleep, NULL);
}

static void notask_cb(weft_timer *tm)
{
    int *out = tm->data;
    out[0] = weft_sleep_ms(1);
    out[1] = weft_sleep_until(0);
}

static int sleep_in_callback(void *arg)
{
    (void)arg;
    int out[2] = {1, 1};
    weft_timer tm;
    weft_timer_init(&tm, notask_cb, out);
    assert_int_equal(weft_timer_start(&tm, weft_deadline_ms(1)), 0);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(out[0], WEFT_ENOTASK);
    assert_int_equal(out[1], WEFT_ENOTASK);
    return 0;
}

static void test_sleep_outside_task(void **state)
{
    (void)state;
    assert_int_equal(weft_sleep_ms(1), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "not called from a weft task"));
    assert_int_equal(weft_sleep_ns(1), WEFT_ENOTASK);
    assert_int_equal(weft_sleep_until(0), WEFT_ENOTASK);
    assert_int_equal(weft_sleep_ms(0), WEFT_ENOTASK);
    /* nor from a timer callback, which runs on the loop between tasks */
    run_checked(sleep_in_callback, NULL);
}

/* ------------------------------------------------------------ timers */

static int order_log[2048];
static int norder;

static void log_fire(weft_timer *tm)
{
    order_log[norder++] = (int)(intptr_t)tm->data;
}

static int timers_basic(void *arg)
{
    (void)arg;
    weft_timer tm;
    weft_timer_init(&tm, log_fire, (void *)7);
    assert_false(weft_timer_active(&tm));
    assert_true(tm.deadline == WEFT_NO_DEADLINE);
    assert_ptr_equal(tm.fn, log_fire);
    assert_ptr_equal(tm.data, (void *)7);
    norder = 0;
    int64_t d = weft_deadline_ms(5);
    assert_int_equal(weft_timer_start(&tm, d), 0);
    assert_true(weft_timer_active(&tm));
    assert_true(tm.deadline == d);
    assert_int_equal(norder, 0); /* start never fires at once */
    assert_int_equal(weft_sleep_ms(1), 0);
    assert_int_equal(norder, 0);
    assert_true(weft_timer_active(&tm));
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_int_equal(norder, 1);
    assert_int_equal(order_log[0], 7);
    assert_false(weft_timer_active(&tm));
    /* one-shot: it does not fire again */
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_int_equal(norder, 1);
    /* a timer can be started again after it fired */
    assert_int_equal(weft_timer_start(&tm, weft_deadline_ms(1)), 0);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(norder, 2);
    return 0;
}

static void test_timer_fires_once(void **state)
{
    (void)state;
    run_checked(timers_basic, NULL);
}

/* The callback sees the loop's time at or after the deadline. */
static int64_t fired_at[4];
static void record_time(weft_timer *tm)
{
    int i = (int)(intptr_t)tm->data;
    fired_at[i] = weft_now();
    assert_null(weft_current());            /* runs between tasks ... */
    assert_non_null(weft_loop_current());   /* ... on the loop */
}

static int timers_deadline_order(void *arg)
{
    (void)arg;
    weft_timer tm[4];
    static const int ms[4] = {30, 5, 20, 10};
    int64_t d[4];
    for (int i = 0; i < 4; i++) {
        weft_timer_init(&tm[i], record_time, (void *)(intptr_t)i);
        fired_at[i] = 0;
        d[i] = weft_deadline_ms(ms[i]);
        assert_int_equal(weft_timer_start(&tm[i], d[i]), 0);
    }
    assert_int_equal(weft_sleep_ms(60), 0);
    for (int i = 0; i < 4; i++) {
        assert_true(fired_at[i] >= d[i]);
        assert_false(weft_timer_active(&tm[i]));
    }
    assert_true(fired_at[1] <= fired_at[3]);
    assert_true(fired_at[3] <= fired_at[2]);
    assert_true(fired_at[2] <= fired_at[0]);
    return 0;
}

static void test_timer_deadline_order(void **state)
{
    (void)state;
    run_checked(timers_deadline_order, NULL);
}

/* Equal deadlines fire in the order armed. */
static int timers_fifo(void *arg)
{
    (void)arg;
    enum { N = 1000 };
    static weft_timer tm[N];
    norder = 0;
    int64_t d = weft_deadline_ms(3);
    /* arm in an order that is neither ascending nor descending in memory */
    for (int i = 0; i < N; i++) {
        int k = (i * 617) % N;
        weft_timer_init(&tm[k], log_fire, (void *)(intptr_t)i);
        assert_int_equal(weft_timer_start(&tm[k], d), 0);
    }
    while (norder < N)
        assert_int_equal(weft_sleep_ms(2), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(order_log[i], i);

    /* equal deadlines in the past fire in order too, before later ones */
    norder = 0;
    weft_timer late;
    weft_timer_init(&late, log_fire, (void *)(intptr_t)9999);
    assert_int_equal(weft_timer_start(&late, weft_deadline_ms(1)), 0);
    int64_t past = weft_now() - 5 * MS;
    for (int i = 0; i < 100; i++) {
        weft_timer_init(&tm[i], log_fire, (void *)(intptr_t)i);
        assert_int_equal(weft_timer_start(&tm[i], past), 0);
    }
    while (norder < 101)
        assert_int_equal(weft_sleep_ms(2), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(order_log[i], i);
    assert_int_equal(order_log[100], 9999);
    return 0;
}

static void test_timer_equal_deadlines_fifo(void **state)
{
    (void)state;
    run_checked(timers_fifo, NULL);
}

/* Stopping: an armed timer never fires; an inactive one is a no-op. */
static int timers_stop(void *arg)
{
    (void)arg;
    enum { N = 10 };
    weft_timer tm[N];
    norder = 0;
    for (int i = 0; i < N; i++) {
        weft_timer_init(&tm[i], log_fire, (void *)(intptr_t)i);
        assert_int_equal(weft_timer_start(&tm[i], weft_deadline_ms(1 + i % 3)), 0);
    }
    for (int i = 1; i < N; i += 2) {
        weft_timer_stop(&tm[i]);
        assert_false(weft_timer_active(&tm[i]));
        weft_timer_stop(&tm[i]); /* twice: no-op */
    }
    for (int i = 0; i < N; i += 2)
        assert_true(weft_timer_active(&tm[i]));
    assert_int_equal(weft_sleep_ms(20), 0);
    assert_int_equal(norder, N / 2);
    int seen = 0;
    for (int k = 0; k < norder; k++) {
        assert_int_equal(order_log[k] % 2, 0);
        seen |= 1 << order_log[k];
    }
    assert_int_equal(seen, 0x155);
    /* never started, and already fired: no-ops */
    weft_timer idle;
    weft_timer_init(&idle, log_fire, NULL);
    weft_timer_stop(&idle);
    assert_false(weft_timer_active(&idle));
    weft_timer_stop(&tm[0]);
    assert_false(weft_timer_active(&tm[0]));
    /* the only armed timer, stopped: the loop does not wait for it */
    assert_int_equal(weft_timer_start(&idle, weft_deadline_ms(1)), 0);
    weft_timer_stop(&idle);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(norder, N / 2);
    return 0;
}

static void test_timer_stop(void **state)
{
    (void)state;
    run_checked(timers_stop, NULL);
}

static void test_timer_stop_outside_loop(void **state)
{
    (void)state;
    weft_timer tm;
    weft_timer_init(&tm, log_fire, NULL);
    weft_timer_stop(&tm); /* no loop, never armed: a no-op */
    assert_false(weft_timer_active(&tm));
}

/* A callback stops another timer due in the same batch. */
static weft_timer *victim;
static void stop_victim(weft_timer *tm)
{
    log_fire(tm);
    weft_timer_stop(victim);
}

static int timers_stop_from_callback(void *arg)
{
    (void)arg;
    weft_timer a, b, c;
    norder = 0;
    weft_timer_init(&a, stop_victim, (void *)1);
    weft_timer_init(&b, log_fire, (void *)2);
    weft_timer_init(&c, log_fire, (void *)3);
    victim = &b;
    int64_t d = weft_deadline_ms(2);
    assert_int_equal(weft_timer_start(&a, d), 0);
    assert_int_equal(weft_timer_start(&b, d), 0);
    assert_int_equal(weft_timer_start(&c, d), 0);
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_int_equal(norder, 2);
    assert_int_equal(order_log[0], 1);
    assert_int_equal(order_log[1], 3);
    assert_false(weft_timer_active(&b));
    return 0;
}

static void test_timer_stop_from_callback(void **state)
{
    (void)state;
    run_checked(timers_stop_from_callback, NULL);
}

/* Re-arming an armed timer moves it (later, earlier, and to the back of
 * its equal-deadline group). */
static int timers_rearm(void *arg)
{
    (void)arg;
    weft_timer a, b, c;
    norder = 0;
    weft_timer_init(&a, log_fire, (void *)1);
    weft_timer_init(&b, log_fire, (void *)2);
    weft_timer_init(&c, log_fire, (void *)3);
    int64_t d = weft_deadline_ms(3);
    assert_int_equal(weft_timer_start(&a, d), 0);
    assert_int_equal(weft_timer_start(&b, d), 0);
    assert_int_equal(weft_timer_start(&c, d), 0);
    assert_int_equal(weft_timer_start(&a, d), 0); /* same deadline: to the back */
    assert_true(weft_timer_active(&a));
    while (norder < 3)
        assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(order_log[0], 2);
    assert_int_equal(order_log[1], 3);
    assert_int_equal(order_log[2], 1);

    /* later: a does not fire at its first deadline */
    norder = 0;
    int64_t d1 = weft_deadline_ms(2);
    int64_t d2 = weft_deadline_ms(40);
    assert_int_equal(weft_timer_start(&a, d1), 0);
    assert_int_equal(weft_timer_start(&b, weft_deadline_ms(10)), 0);
    assert_int_equal(weft_timer_start(&a, d2), 0);
    assert_true(a.deadline == d2);
    assert_int_equal(weft_sleep_ms(20), 0);
    assert_int_equal(norder, 1);
    assert_int_equal(order_log[0], 2);
    assert_true(weft_timer_active(&a));
    /* earlier: a fires before c although c was due first when armed */
    assert_int_equal(weft_timer_start(&c, weft_deadline_ms(10)), 0);
    assert_int_equal(weft_timer_start(&a, weft_deadline_ms(1)), 0);
    while (norder < 3)
        assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(order_log[1], 1);
    assert_int_equal(order_log[2], 3);
    assert_int_equal(weft_sleep_ms(45), 0);
    assert_int_equal(norder, 3); /* a's old deadline is gone */
    return 0;
}

static void test_timer_rearm_moves(void **state)
{
    (void)state;
    run_checked(timers_rearm, NULL);
}

/* A callback re-arms its own timer. */
static int self_count;
static int64_t self_last;
static void rearm_self(weft_timer *tm)
{
    self_count++;
    if (weft_now() < tm->deadline || weft_now() < self_last + 1 * MS)
        self_count = -1000; /* fired early */
    self_last = weft_now();
    if (self_count < 5)
        assert_int_equal(weft_timer_start(tm, weft_deadline_ms(1)), 0);
}

static int burst_count;
static void rearm_due(weft_timer *tm)
{
    /* re-armed with a deadline already due: fires again, in the same pass */
    if (++burst_count < 3)
        assert_int_equal(weft_timer_start(tm, weft_now()), 0);
}

static int timers_self(void *arg)
{
    (void)arg;
    weft_timer tm;
    self_count = 0;
    self_last = 0;
    weft_timer_init(&tm, rearm_self, NULL);
    assert_int_equal(weft_timer_start(&tm, weft_deadline_ms(1)), 0);
    for (int i = 0; i < 1000 && self_count < 5; i++)
        assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(self_count, 5);
    assert_false(weft_timer_active(&tm));
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(self_count, 5);

    burst_count = 0;
    weft_timer_init(&tm, rearm_due, NULL);
    assert_int_equal(weft_timer_start(&tm, weft_now()), 0);
    assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(burst_count, 3);
    assert_false(weft_timer_active(&tm));
    return 0;
}

static void test_timer_rearms_itself(void **state)
{
    (void)state;
    run_checked(timers_self, NULL);
}

/* A callback may spawn a task. */
static int spawned_ran;
static int spawned_body(void *arg)
{
    (void)arg;
    spawned_ran++;
    return weft_sleep_ms(1);
}
static void spawn_cb(weft_timer *tm)
{
    weft_task *t = weft_spawn(spawned_body, NULL, NULL);
    if (!t)
        return;
    weft_detach(t);
    tm->data = t;
}

static int timer_spawns_main(void *arg)
{
    (void)arg;
    weft_timer tm;
    spawned_ran = 0;
    weft_timer_init(&tm, spawn_cb, NULL);
    assert_int_equal(weft_timer_start(&tm, weft_deadline_ms(1)), 0);
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_non_null(tm.data);
    assert_int_equal(spawned_ran, 1);
    return 0;
}

static void test_timer_callback_spawns(void **state)
{
    (void)state;
    run_checked(timer_spawns_main, NULL);
}

/* Errors: no callback, no loop. */
static int timer_errors(void *arg)
{
    (void)arg;
    weft_timer tm;
    weft_timer_init(&tm, NULL, NULL);
    assert_int_equal(weft_timer_start(&tm, weft_deadline_ms(1)), -EINVAL);
    assert_non_null(strstr(weft_errmsg(), "no callback"));
    assert_false(weft_timer_active(&tm));
    return 0;
}

static void test_timer_errors(void **state)
{
    (void)state;
    run_checked(timer_errors, NULL);
    weft_timer tm;
    weft_timer_init(&tm, log_fire, NULL);
    assert_int_equal(weft_timer_start(&tm, 0), WEFT_ENOLOOP);
    assert_non_null(strstr(weft_errmsg(), "no weft loop"));
    assert_false(weft_timer_active(&tm));
}

/* Timers do not keep the loop alive; still armed ones are left inactive. */
static weft_timer leftover;
static int leftover_fired;
static void leftover_cb(weft_timer *tm)
{
    (void)tm;
    leftover_fired = 1;
}
static int arm_and_leave(void *arg)
{
    (void)arg;
    weft_timer_init(&leftover, leftover_cb, NULL);
    assert_int_equal(weft_timer_start(&leftover, weft_deadline_ms(3600 * 1000)), 0);
    return 0;
}

static void test_timer_left_armed(void **state)
{
    (void)state;
    leftover_fired = 0;
    int64_t c0 = clock_ns();
    run_checked(arm_and_leave, NULL);
    assert_true(clock_ns() - c0 < 5000 * MS);
    assert_false(weft_timer_active(&leftover));
    assert_int_equal(leftover_fired, 0);
}

/* ------------------------------------------------------------ many timers */

enum { NRAND = 100000 };
static weft_timer rtm[NRAND];
static int64_t rdeadline[NRAND];
static int rfired[NRAND];
static int nrfired;
static int rbad;

static void rand_fire(weft_timer *tm)
{
    int i = (int)(tm - rtm);
    if (weft_now() < tm->deadline || tm->deadline != rdeadline[i])
        rbad++;
    rfired[nrfired++] = i;
}

/* Check the firing log: deadlines ascending, equal ones in arm order
 * (arm order is the index order here). */
static void check_sorted(int expected)
{
    assert_int_equal(rbad, 0);
    assert_int_equal(nrfired, expected);
    for (int k = 1; k < nrfired; k++) {
        int a = rfired[k - 1], b = rfired[k];
        assert_true(rdeadline[a] <= rdeadline[b]);
        if (rdeadline[a] == rdeadline[b])
            assert_true(a < b);
    }
}

static int many_timers(void *arg)
{
    int stop_some = (int)(intptr_t)arg;
    prng_state = 0x9E3779B97F4A7C15ULL + (uint64_t)stop_some;
    nrfired = 0;
    rbad = 0;
    int64_t base = weft_now();
    for (int i = 0; i < NRAND; i++) {
        weft_timer_init(&rtm[i], rand_fire, NULL);
        /* 0..60 ms in steps of 0.5 ms: many equal deadlines; some past */
        rdeadline[i] = base + (int64_t)(prng() % 121) * (MS / 2) - 2 * MS;
        assert_int_equal(weft_timer_start(&rtm[i], rdeadline[i]), 0);
    }
    int expected = NRAND;
    if (stop_some) {
        /* stop a third of them, from everywhere in the heap */
        for (int i = 0; i < NRAND; i++)
            if (prng() % 3 == 0) {
                weft_timer_stop(&rtm[i]);
                expected--;
            }
        /* and some more, to shrink the heap from many places */
        for (int i = 0; i < NRAND; i += 7)
            if (weft_timer_active(&rtm[i])) {
                weft_timer_stop(&rtm[i]);
                expected--;
            }
    }
    int64_t limit = clock_ns() + 15000 * MS;
    while (nrfired < expected && clock_ns() < limit)
        assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_sleep_ms(5), 0); /* nothing else may fire */
    check_sorted(expected);
    for (int i = 0; i < NRAND; i++)
        assert_false(weft_timer_active(&rtm[i]));
    return 0;
}

static void test_many_random_timers(void **state)
{
    (void)state;
    run_checked(many_timers, (void *)0);
}

static void test_many_random_timers_with_stops(void **state)
{
    (void)state;
    run_checked(many_timers, (void *)1);
}

/* Random re-arms of armed timers: the final deadlines decide the order. */
static int many_rearms(void *arg)
{
    (void)arg;
    enum { N = 20000 };
    prng_state = 12345;
    nrfired = 0;
    rbad = 0;
    int64_t base = weft_now() + 1 * MS;
    for (int i = 0; i < N; i++) {
        weft_timer_init(&rtm[i], rand_fire, NULL);
        rdeadline[i] = base + (int64_t)(prng() % 41) * (MS / 2);
        assert_int_equal(weft_timer_start(&rtm[i], rdeadline[i]), 0);
    }
    /* re-arm each once, in index order: the arm order stays the index order */
    for (int i = 0; i < N; i++) {
        rdeadline[i] = base + (int64_t)(prng() % 41) * (MS / 2);
        assert_int_equal(weft_timer_start(&rtm[i], rdeadline[i]), 0);
    }
    int64_t limit = clock_ns() + 15000 * MS;
    while (nrfired < N && clock_ns() < limit)
        assert_int_equal(weft_sleep_ms(5), 0);
    check_sorted(N);
    return 0;
}

static void test_many_rearms(void **state)
{
    (void)state;
    run_checked(many_rearms, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_now_outside_loop),
        cmocka_unit_test(test_now_cached_in_loop),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_deadlines_outside_loop),
        cmocka_unit_test(test_sleep_at_least),
        cmocka_unit_test(test_sleeps_run_concurrently),
        cmocka_unit_test(test_sleep_zero_yields),
        cmocka_unit_test(test_sleep_zero_runs_timers),
        cmocka_unit_test(test_sleep_cancelled),
        cmocka_unit_test(test_sleep_cancelled_before),
        cmocka_unit_test(test_sleep_shield_deadline),
        cmocka_unit_test(test_sleep_outside_task),
        cmocka_unit_test(test_timer_fires_once),
        cmocka_unit_test(test_timer_deadline_order),
        cmocka_unit_test(test_timer_equal_deadlines_fifo),
        cmocka_unit_test(test_timer_stop),
        cmocka_unit_test(test_timer_stop_outside_loop),
        cmocka_unit_test(test_timer_stop_from_callback),
        cmocka_unit_test(test_timer_rearm_moves),
        cmocka_unit_test(test_timer_rearms_itself),
        cmocka_unit_test(test_timer_callback_spawns),
        cmocka_unit_test(test_timer_errors),
        cmocka_unit_test(test_timer_left_armed),
        cmocka_unit_test(test_many_random_timers),
        cmocka_unit_test(test_many_random_timers_with_stops),
        cmocka_unit_test(test_many_rearms),
    };
    /* It leaves a timer armed on purpose: the loop must not wait for it. */
    static const case_exception leaves[] = {
        {test_timer_left_armed, CASE_LEAVES_TIMERS},
    };
    return run_cases_except(tests, NULL, NULL, leaves);
}
