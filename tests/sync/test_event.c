/* SPDX-License-Identifier: MIT */
/* Events: set wakes every waiter, set events do not block, clear, deadlines, cancellation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <weft.h>

#include "sync_helpers.h"

static weft_event ev;
static int woken;
static int waiting;

static int waiter(void *arg)
{
    (void)arg;
    waiting++;
    int rc = weft_event_wait(&ev);
    waiting--;
    if (rc == 0)
        woken++;
    return rc;
}

static int64_t shared_deadline;
static int deadline_waiter(void *arg)
{
    (void)arg;
    int rc = weft_event_wait_until(&ev, shared_deadline);
    if (rc == 0)
        woken++;
    return rc;
}

/* ------------------------------------------------------------ errors */

static void test_outside_task(void **state)
{
    (void)state;
    weft_event_init(&ev);
    assert_int_equal(weft_event_wait(&ev), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "weft_event_wait"));
    assert_int_equal(weft_event_wait_until(&ev, weft_deadline_ms(1)), WEFT_ENOTASK);
    /* setting and clearing need no task */
    assert_false(weft_event_is_set(&ev));
    weft_event_set(&ev);
    assert_true(weft_event_is_set(&ev));
    /* even on a set event a wait needs a task */
    assert_int_equal(weft_event_wait(&ev), WEFT_ENOTASK);
    weft_event_clear(&ev);
    assert_false(weft_event_is_set(&ev));
    assert_int_equal(weft_event_close(&ev), 0);
}

static int null_object(void *arg)
{
    (void)arg;
    assert_int_equal(weft_event_wait(NULL), -EINVAL);
    assert_int_equal(weft_event_wait_until(NULL, weft_deadline_ms(1)), -EINVAL);
    assert_int_equal(weft_event_close(NULL), -EINVAL);
    return 0;
}

static void test_null_object(void **state)
{
    (void)state;
    run_ok(null_object);
}

/* ------------------------------------------------------------ set, clear */

enum { N_WAITERS = 8 };

static int set_wakes_all(void *arg)
{
    (void)arg;
    woken = waiting = 0;
    weft_event_init(&ev);
    assert_false(weft_event_is_set(&ev));
    weft_task *t[N_WAITERS];
    for (int i = 0; i < N_WAITERS; i++)
        t[i] = spawn_named(waiter, NULL, "waiter");
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_yield(), 0);
    assert_int_equal(waiting, N_WAITERS);
    assert_int_equal(woken, 0);
    assert_int_equal(weft_event_close(&ev), -EBUSY);
    assert_non_null(strstr(weft_errmsg(), "wait"));
    weft_event_set(&ev);
    assert_true(weft_event_is_set(&ev));
    /* every waiter was woken: clearing now does not put them back */
    weft_event_clear(&ev);
    for (int i = 0; i < N_WAITERS; i++)
        assert_int_equal(join_status(t[i]), 0);
    assert_int_equal(woken, N_WAITERS);
    assert_int_equal(weft_event_close(&ev), 0);
    return 0;
}

static void test_set_wakes_all(void **state)
{
    (void)state;
    run_ok(set_wakes_all);
}

static int ran;
static int mark_ran(void *arg)
{
    (void)arg;
    ran = 1;
    return 0;
}

static int set_does_not_block(void *arg)
{
    (void)arg;
    ran = 0;
    weft_event_init(&ev);
    weft_event_set(&ev);
    weft_event_set(&ev); /* idempotent */
    weft_task *t = spawn_named(mark_ran, NULL, "mark_ran");
    /* returns at once, without suspending: the new task has not run */
    assert_int_equal(weft_event_wait_until(&ev, weft_now() - 1), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(weft_event_wait(&ev), 0);
    assert_int_equal(ran, 0);
    assert_true(weft_event_is_set(&ev)); /* nothing is consumed */
    assert_int_equal(join_status(t), 0);
    assert_int_equal(ran, 1);

    /* cleared: waits again */
    weft_event_clear(&ev);
    assert_false(weft_event_is_set(&ev));
    weft_event_clear(&ev);
    assert_int_equal(weft_event_wait_until(&ev, weft_now() - 1), -ETIMEDOUT);
    assert_int_equal(weft_event_wait_until(&ev, weft_deadline_ms(3)), -ETIMEDOUT);
    assert_non_null(strstr(weft_errmsg(), "weft_event_wait"));
    assert_false(weft_event_is_set(&ev));
    return 0;
}

static void test_set_event_returns_at_once(void **state)
{
    (void)state;
    run_ok(set_does_not_block);
}

/* Waiters that arrive after a set/clear pair wait for the next set. */
static int set_clear_cycles(void *arg)
{
    (void)arg;
    woken = waiting = 0;
    weft_event_init(&ev);
    for (int round = 1; round <= 3; round++) {
        weft_task *t[3];
        for (int i = 0; i < 3; i++)
            t[i] = spawn_named(waiter, NULL, "waiter");
        for (int i = 0; i < 3; i++)
            assert_int_equal(weft_yield(), 0);
        assert_int_equal(waiting, 3);
        weft_event_set(&ev);
        weft_event_clear(&ev);
        for (int i = 0; i < 3; i++)
            assert_int_equal(join_status(t[i]), 0);
        assert_int_equal(woken, 3 * round);
        assert_int_equal(waiting, 0);
    }
    return 0;
}

static void test_set_clear_cycles(void **state)
{
    (void)state;
    run_ok(set_clear_cycles);
}

/* A timer callback (not a task) sets the event. */
static void set_cb(weft_timer *tm)
{
    (void)tm;
    weft_event_set(&ev);
}

static int set_from_timer(void *arg)
{
    (void)arg;
    weft_event_init(&ev);
    weft_timer tm;
    weft_timer_init(&tm, set_cb, NULL);
    assert_int_equal(weft_timer_start(&tm, weft_deadline_ms(2)), 0);
    assert_int_equal(weft_event_wait_until(&ev, weft_deadline_ms(60000)), 0);
    assert_true(weft_event_is_set(&ev));
    return 0;
}

static void test_set_from_timer(void **state)
{
    (void)state;
    run_ok(set_from_timer);
}

/* ------------------------------------------------------------ failures */

static int timeout(void *arg)
{
    (void)arg;
    woken = 0;
    weft_event_init(&ev);
    shared_deadline = weft_deadline_ms(50); /* the waiter waits before it passes, even under TSan */
    weft_task *a = spawn_named(deadline_waiter, NULL, "short");
    weft_task *b = spawn_named(waiter, NULL, "forever");
    assert_int_equal(join_status(a), -ETIMEDOUT);
    assert_false(weft_event_is_set(&ev));
    assert_int_equal(weft_event_close(&ev), -EBUSY); /* b still waits */
    weft_event_set(&ev);
    assert_int_equal(join_status(b), 0);
    assert_int_equal(woken, 1);

    /* the deadline fires; the set comes in the same iteration, after */
    weft_event_clear(&ev);
    shared_deadline = weft_deadline_ms(50); /* the waiter waits before it passes, even under TSan */
    a = spawn_named(deadline_waiter, NULL, "short");
    assert_int_equal(weft_yield(), 0);
    weft_timer tm;
    weft_timer_init(&tm, set_cb, NULL);
    assert_int_equal(weft_timer_start(&tm, shared_deadline), 0);
    assert_int_equal(join_status(a), -ETIMEDOUT);
    assert_true(weft_event_is_set(&ev));
    assert_int_equal(woken, 1);
    assert_int_equal(weft_event_close(&ev), 0);
    return 0;
}

static void test_timeout(void **state)
{
    (void)state;
    run_ok(timeout);
}

static int cancel(void *arg)
{
    (void)arg;
    woken = waiting = 0;
    weft_event_init(&ev);
    weft_task *a = spawn_named(waiter, NULL, "a");
    weft_task *b = spawn_named(waiter, NULL, "b");
    weft_task *c = spawn_named(waiter, NULL, "c");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(waiting, 3);
    assert_int_equal(weft_cancel(b), 0);
    assert_int_equal(join_status(b), -ECANCELED);
    assert_false(weft_event_is_set(&ev));
    /* a cancelled waiter that has not run yet does not stop the others */
    assert_int_equal(weft_cancel(c), 0);
    weft_event_set(&ev);
    assert_int_equal(join_status(a), 0);
    assert_int_equal(join_status(c), -ECANCELED);
    assert_int_equal(woken, 1);

    /* a cancelled task fails even on a set event */
    weft_task *d = spawn_named(waiter, NULL, "d");
    assert_int_equal(weft_cancel(d), 0);
    assert_int_equal(join_status(d), -ECANCELED);
    assert_int_equal(woken, 1);
    assert_true(weft_event_is_set(&ev));
    assert_int_equal(weft_event_close(&ev), 0);
    return 0;
}

static void test_cancel(void **state)
{
    (void)state;
    run_ok(cancel);
}

/* Close right after a waiter was cancelled, before it ran: it no longer
 * waits, and must not touch the event's memory any more. */
static weft_event *heap_ev;
static int wait_heap(void *arg)
{
    (void)arg;
    return weft_event_wait(heap_ev);
}

static int close_after_cancel(void *arg)
{
    (void)arg;
    heap_ev = malloc(sizeof *heap_ev);
    assert_non_null(heap_ev);
    weft_event_init(heap_ev);
    weft_task *w = spawn_named(wait_heap, NULL, "waiter");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_event_close(heap_ev), -EBUSY);
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(weft_event_close(heap_ev), 0);
    memset(heap_ev, 0xA5, sizeof *heap_ev);
    assert_int_equal(join_status(w), -ECANCELED);
    for (size_t i = 0; i < sizeof *heap_ev; i++)
        assert_int_equal(((unsigned char *)heap_ev)[i], 0xA5);
    free(heap_ev);
    heap_ev = NULL;
    return 0;
}

static void test_close_after_cancel(void **state)
{
    (void)state;
    run_ok(close_after_cancel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outside_task),
        cmocka_unit_test(test_null_object),
        cmocka_unit_test(test_set_wakes_all),
        cmocka_unit_test(test_set_event_returns_at_once),
        cmocka_unit_test(test_set_clear_cycles),
        cmocka_unit_test(test_set_from_timer),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_close_after_cancel),
    };
    return run_cases(tests, NULL, NULL);
}
