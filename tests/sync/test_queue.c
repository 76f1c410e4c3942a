/* SPDX-License-Identifier: MIT */
/* Bounded queues: FIFO items and waiters, blocking, deadlines, cancellation, shutdown, close. */
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

#define ITEM(v) ((void *)(intptr_t)(v))
#define VAL(p) ((long)(intptr_t)(p))

static weft_queue q;
static int64_t shared_deadline;
static long got[64];   /* got[id]: the item getter `id` received */
static int order[64];  /* completion order of waiters */
static int norder;
static int arrived;

/* Get one item (deadline shared_deadline); record it under the id. */
static int getter(void *arg)
{
    int id = (int)(intptr_t)arg;
    void *item = ITEM(-1);
    arrived++;
    int rc = weft_queue_get_until(&q, &item, shared_deadline);
    if (rc == 0) {
        got[id] = VAL(item);
        order[norder++] = id;
    } else {
        assert_ptr_equal(item, ITEM(-1)); /* untouched on failure */
    }
    return rc;
}

/* Put the item `id` (deadline shared_deadline). */
static int putter(void *arg)
{
    int id = (int)(intptr_t)arg;
    arrived++;
    int rc = weft_queue_put_until(&q, ITEM(id), shared_deadline);
    if (rc == 0)
        order[norder++] = id;
    return rc;
}

static void reset(void)
{
    memset(got, 0, sizeof got);
    norder = arrived = 0;
    shared_deadline = WEFT_NO_DEADLINE;
}

static void expect_get(long want)
{
    void *item = NULL;
    assert_int_equal(weft_queue_try_get(&q, &item), 0);
    assert_int_equal(VAL(item), want);
}

/* ------------------------------------------------------------ errors */

static void test_init_errors(void **state)
{
    (void)state;
    assert_int_equal(weft_queue_init(NULL, 1), -EINVAL);
    assert_int_equal(weft_queue_init(&q, 0), -EINVAL);
    assert_int_equal(weft_queue_init(&q, SIZE_MAX), -EINVAL);
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_close(&q), 0);
    assert_int_equal(weft_queue_close(NULL), -EINVAL);
    assert_int_equal(weft_queue_len(NULL), 0);
    weft_queue_shutdown(NULL); /* no-op */
}

static void test_outside_task(void **state)
{
    (void)state;
    void *item = ITEM(-1);
    assert_int_equal(weft_queue_init(&q, 2), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(1)), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "weft_queue_put"));
    assert_int_equal(weft_queue_put_until(&q, ITEM(1), weft_deadline_ms(1)), WEFT_ENOTASK);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_get(&q, &item), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "weft_queue_get"));
    assert_int_equal(weft_queue_get_until(&q, &item, weft_deadline_ms(1)), WEFT_ENOTASK);
    assert_ptr_equal(item, ITEM(-1));
    /* the non-suspending calls need no task */
    assert_int_equal(weft_queue_try_put(&q, ITEM(7)), 0);
    assert_int_equal(weft_queue_len(&q), 1);
    assert_int_equal(weft_queue_get(&q, &item), WEFT_ENOTASK); /* took nothing */
    assert_int_equal(weft_queue_len(&q), 1);
    assert_int_equal(weft_queue_try_get(&q, &item), 0);
    assert_int_equal(VAL(item), 7);
    weft_queue_shutdown(&q);
    assert_int_equal(weft_queue_try_put(&q, ITEM(8)), WEFT_ECLOSED);
    assert_int_equal(weft_queue_try_get(&q, &item), WEFT_ECLOSED);
    assert_int_equal(weft_queue_close(&q), 0);
}

static int null_object(void *arg)
{
    (void)arg;
    void *item;
    assert_int_equal(weft_queue_put(NULL, ITEM(1)), -EINVAL);
    assert_int_equal(weft_queue_put_until(NULL, ITEM(1), weft_deadline_ms(1)), -EINVAL);
    assert_int_equal(weft_queue_try_put(NULL, ITEM(1)), -EINVAL);
    assert_int_equal(weft_queue_get(NULL, &item), -EINVAL);
    assert_int_equal(weft_queue_get_until(NULL, &item, weft_deadline_ms(1)), -EINVAL);
    assert_int_equal(weft_queue_try_get(NULL, &item), -EINVAL);
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_queue_get(&q, NULL), -EINVAL);
    assert_int_equal(weft_queue_try_get(&q, NULL), -EINVAL);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_null_object(void **state)
{
    (void)state;
    run_ok(null_object);
}

/* ------------------------------------------------------------ FIFO, blocking */

static int fifo_items(void *arg)
{
    (void)arg;
    void *item;
    assert_int_equal(weft_queue_init(&q, 8), 0);
    for (long i = 1; i <= 8; i++)
        assert_int_equal(i % 2 ? weft_queue_put(&q, ITEM(i)) : weft_queue_try_put(&q, ITEM(i)), 0);
    assert_int_equal(weft_queue_len(&q), 8);
    assert_int_equal(weft_queue_try_put(&q, ITEM(9)), -EAGAIN);
    assert_int_equal(weft_queue_put_until(&q, ITEM(9), weft_now() - 1), -ETIMEDOUT);
    assert_int_equal(weft_queue_len(&q), 8);
    for (long i = 1; i <= 8; i++) {
        assert_int_equal(i % 2 ? weft_queue_get(&q, &item) : weft_queue_try_get(&q, &item), 0);
        assert_int_equal(VAL(item), i);
    }
    assert_int_equal(weft_queue_try_get(&q, &item), -EAGAIN);
    assert_int_equal(weft_queue_get_until(&q, &item, weft_now() - 1), -ETIMEDOUT);
    /* NULL is an item like any other */
    assert_int_equal(weft_queue_put(&q, NULL), 0);
    item = ITEM(5);
    assert_int_equal(weft_queue_get(&q, &item), 0);
    assert_null(item);
    assert_int_equal(weft_queue_close(&q), 0);

    /* the ring wraps around and grows while wrapped */
    assert_int_equal(weft_queue_init(&q, 100), 0);
    long next_in = 1, next_out = 1;
    for (int round = 0; round < 20; round++) {
        for (int k = 0; k < 9 && weft_queue_try_put(&q, ITEM(next_in)) == 0; k++)
            next_in++;
        for (int k = 0; k < 4; k++) {
            assert_int_equal(weft_queue_try_get(&q, &item), 0);
            assert_int_equal(VAL(item), next_out++);
        }
    }
    assert_int_equal(weft_queue_len(&q), (size_t)(next_in - next_out));
    while (weft_queue_try_get(&q, &item) == 0)
        assert_int_equal(VAL(item), next_out++);
    assert_int_equal(next_out, next_in);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_fifo_items(void **state)
{
    (void)state;
    run_ok(fifo_items);
}

static int put_blocks(void *arg)
{
    (void)arg;
    reset();
    assert_int_equal(weft_queue_init(&q, 2), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(1)), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(2)), 0);
    weft_task *p = spawn_named(putter, (void *)3, "putter");
    yield_n(5);
    assert_int_equal(arrived, 1);
    assert_int_equal(norder, 0); /* blocked: the queue is full */
    assert_int_equal(weft_queue_len(&q), 2);
    expect_get(1);
    /* the freed slot is the waiting putter's: a newcomer cannot take it */
    assert_int_equal(weft_queue_try_put(&q, ITEM(99)), -EAGAIN);
    assert_int_equal(weft_queue_put_until(&q, ITEM(99), weft_now() - 1), -ETIMEDOUT);
    assert_int_equal(weft_queue_len(&q), 1);
    assert_int_equal(join_status(p), 0);
    assert_int_equal(weft_queue_len(&q), 2);
    expect_get(2);
    expect_get(3);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_put_blocks_when_full(void **state)
{
    (void)state;
    run_ok(put_blocks);
}

static int get_blocks(void *arg)
{
    (void)arg;
    reset();
    void *item;
    assert_int_equal(weft_queue_init(&q, 4), 0);
    weft_task *g = spawn_named(getter, (void *)1, "getter");
    yield_n(5);
    assert_int_equal(arrived, 1);
    assert_int_equal(norder, 0); /* blocked: the queue is empty */
    assert_int_equal(weft_queue_put(&q, ITEM(42)), 0);
    /* the item is the waiting getter's: a newcomer cannot take it */
    assert_int_equal(weft_queue_len(&q), 1);
    assert_int_equal(weft_queue_try_get(&q, &item), -EAGAIN);
    assert_int_equal(weft_queue_get_until(&q, &item, weft_now() - 1), -ETIMEDOUT);
    /* a second item is free for anyone */
    assert_int_equal(weft_queue_put(&q, ITEM(43)), 0);
    assert_int_equal(join_status(g), 0);
    assert_int_equal(got[1], 42);
    expect_get(43);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_get_blocks_when_empty(void **state)
{
    (void)state;
    run_ok(get_blocks);
}

/* Waiters arrive in the reverse of spawn order; they are served in arrival
 * order, getters and putters alike. */
enum { FIFO_N = 6 };
static int late_getter(void *arg)
{
    for (int k = 0; k < FIFO_N - (int)(intptr_t)arg; k++)
        assert_int_equal(weft_yield(), 0);
    return getter(arg);
}
static int late_putter(void *arg)
{
    for (int k = 0; k < FIFO_N - (int)(intptr_t)arg; k++)
        assert_int_equal(weft_yield(), 0);
    return putter(arg);
}

static int fifo_waiters(void *arg)
{
    (void)arg;
    reset();
    assert_int_equal(weft_queue_init(&q, 3), 0);
    weft_task *t[FIFO_N];
    for (int i = 0; i < FIFO_N; i++)
        t[i] = spawn_named(late_getter, (void *)(intptr_t)i, "late_getter");
    yield_n(FIFO_N + 2);
    assert_int_equal(arrived, FIFO_N);
    for (long v = 100; v < 100 + FIFO_N; v++) {
        if (weft_queue_try_put(&q, ITEM(v)) == -EAGAIN)
            assert_int_equal(weft_queue_put(&q, ITEM(v)), 0);
    }
    for (int i = 0; i < FIFO_N; i++)
        assert_int_equal(join_status(t[i]), 0);
    for (int i = 0; i < FIFO_N; i++)
        assert_int_equal(got[i], 100 + (FIFO_N - 1 - i)); /* the last to spawn came first */

    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_close(&q), 0);

    /* putters on a full queue */
    reset();
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(-7)), 0);
    for (int i = 0; i < FIFO_N; i++)
        t[i] = spawn_named(late_putter, (void *)(intptr_t)i, "late_putter");
    yield_n(FIFO_N + 2);
    assert_int_equal(arrived, FIFO_N);
    expect_get(-7);
    for (int k = 0; k < FIFO_N; k++) {
        void *item;
        assert_int_equal(weft_queue_get(&q, &item), 0);
        assert_int_equal(VAL(item), FIFO_N - 1 - k);
    }
    for (int i = 0; i < FIFO_N; i++)
        assert_int_equal(join_status(t[i]), 0);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_fifo_waiters(void **state)
{
    (void)state;
    run_ok(fifo_waiters);
}

/* ------------------------------------------------------------ deadlines */

static void try_put_cb(weft_timer *tm)
{
    (void)tm;
    assert_int_equal(weft_queue_try_put(&q, ITEM(77)), 0);
}

static void try_get_cb(weft_timer *tm)
{
    (void)tm;
    void *item;
    assert_int_equal(weft_queue_try_get(&q, &item), 0);
    assert_int_equal(VAL(item), 1);
}

static int deadlines(void *arg)
{
    (void)arg;
    reset();
    void *item = ITEM(-1);
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_queue_get_until(&q, &item, weft_deadline_ms(3)), -ETIMEDOUT);
    assert_ptr_equal(item, ITEM(-1));
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(1)), 0);
    assert_int_equal(weft_queue_put_until(&q, ITEM(2), weft_deadline_ms(3)), -ETIMEDOUT);
    assert_non_null(strstr(weft_errmsg(), "weft_queue_put"));
    assert_int_equal(weft_queue_len(&q), 1); /* the item was not added */
    expect_get(1);

    /* a getter whose deadline fired, before it runs, an item arrives (from
     * a timer callback): it stays in the queue */
    shared_deadline = weft_deadline_ms(50); /* the waiter waits before it passes, even under TSan */
    weft_task *g = spawn_named(getter, (void *)1, "getter");
    yield_n(1);
    weft_timer tm;
    weft_timer_init(&tm, try_put_cb, NULL);
    assert_int_equal(weft_timer_start(&tm, shared_deadline), 0);
    assert_int_equal(join_status(g), -ETIMEDOUT);
    assert_int_equal(weft_queue_len(&q), 1);
    expect_get(77);

    /* a putter whose deadline fired, before it runs, a slot frees up: the
     * slot is free for anyone */
    assert_int_equal(weft_queue_put(&q, ITEM(1)), 0);
    shared_deadline = weft_deadline_ms(50); /* the waiter waits before it passes, even under TSan */
    weft_task *p = spawn_named(putter, (void *)2, "putter");
    yield_n(1);
    weft_timer_init(&tm, try_get_cb, NULL);
    assert_int_equal(weft_timer_start(&tm, shared_deadline), 0);
    assert_int_equal(join_status(p), -ETIMEDOUT);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_try_put(&q, ITEM(3)), 0);
    expect_get(3);
    assert_int_equal(norder, 0);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_deadlines(void **state)
{
    (void)state;
    run_ok(deadlines);
}

/* ------------------------------------------------------------ cancellation */

static int cancel_getters(void *arg)
{
    (void)arg;
    reset();
    void *item;
    assert_int_equal(weft_queue_init(&q, 4), 0);

    /* cancelled while waiting: takes nothing */
    weft_task *g = spawn_named(getter, (void *)1, "getter");
    yield_n(1);
    assert_int_equal(weft_cancel(g), 0);
    assert_int_equal(join_status(g), -ECANCELED);
    assert_int_equal(weft_queue_put(&q, ITEM(10)), 0);
    assert_int_equal(weft_queue_len(&q), 1);

    /* cancelled before it starts: does not take even a free item */
    g = spawn_named(getter, (void *)1, "getter");
    assert_int_equal(weft_cancel(g), 0);
    assert_int_equal(join_status(g), -ECANCELED);
    expect_get(10);

    /* cancelled, then an item arrives in the same iteration: not its */
    g = spawn_named(getter, (void *)1, "getter");
    yield_n(1);
    assert_int_equal(weft_cancel(g), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(11)), 0);
    assert_int_equal(weft_queue_try_get(&q, &item), 0); /* free, not reserved */
    assert_int_equal(VAL(item), 11);
    assert_int_equal(join_status(g), -ECANCELED);

    /* granted, then cancelled before it runs: the item goes to the next */
    weft_task *g1 = spawn_named(getter, (void *)1, "first");
    weft_task *g2 = spawn_named(getter, (void *)2, "second");
    yield_n(1);
    assert_int_equal(weft_queue_put(&q, ITEM(12)), 0);
    assert_int_equal(weft_cancel(g1), 0);
    assert_int_equal(weft_queue_try_get(&q, &item), -EAGAIN);
    assert_int_equal(join_status(g1), -ECANCELED);
    assert_int_equal(join_status(g2), 0);
    assert_int_equal(got[2], 12);
    assert_int_equal(got[1], 0);
    assert_int_equal(weft_queue_len(&q), 0);

    /* ... or back to the queue when nobody else waits */
    g = spawn_named(getter, (void *)3, "alone");
    yield_n(1);
    assert_int_equal(weft_queue_put(&q, ITEM(13)), 0);
    assert_int_equal(weft_cancel(g), 0);
    assert_int_equal(join_status(g), -ECANCELED);
    assert_int_equal(weft_queue_len(&q), 1);
    expect_get(13);
    assert_int_equal(got[3], 0);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_cancel_getters(void **state)
{
    (void)state;
    run_ok(cancel_getters);
}

static int cancel_putters(void *arg)
{
    (void)arg;
    reset();
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(1)), 0);

    /* cancelled while waiting: adds nothing */
    weft_task *p = spawn_named(putter, (void *)2, "putter");
    yield_n(1);
    assert_int_equal(weft_cancel(p), 0);
    assert_int_equal(join_status(p), -ECANCELED);
    assert_int_equal(weft_queue_len(&q), 1);

    /* granted a slot, then cancelled: the slot goes to the next putter */
    weft_task *p1 = spawn_named(putter, (void *)3, "first");
    weft_task *p2 = spawn_named(putter, (void *)4, "second");
    yield_n(1);
    expect_get(1);
    assert_int_equal(weft_cancel(p1), 0);
    assert_int_equal(weft_queue_try_put(&q, ITEM(99)), -EAGAIN);
    assert_int_equal(join_status(p1), -ECANCELED);
    assert_int_equal(join_status(p2), 0);
    assert_int_equal(weft_queue_len(&q), 1);
    expect_get(4);

    /* ... or becomes free when nobody else waits */
    assert_int_equal(weft_queue_put(&q, ITEM(5)), 0);
    p = spawn_named(putter, (void *)6, "alone");
    yield_n(1);
    expect_get(5);
    assert_int_equal(weft_cancel(p), 0);
    assert_int_equal(join_status(p), -ECANCELED);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_try_put(&q, ITEM(7)), 0);
    expect_get(7);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_cancel_putters(void **state)
{
    (void)state;
    run_ok(cancel_putters);
}

/* ------------------------------------------------------------ shutdown */

static int shutdown_basic(void *arg)
{
    (void)arg;
    reset();
    void *item;
    assert_int_equal(weft_queue_init(&q, 3), 0);
    for (long i = 1; i <= 3; i++)
        assert_int_equal(weft_queue_put(&q, ITEM(i)), 0);
    weft_task *p1 = spawn_named(putter, (void *)4, "putter1");
    weft_task *p2 = spawn_named(putter, (void *)5, "putter2");
    yield_n(2);
    assert_int_equal(arrived, 2);
    weft_queue_shutdown(&q);
    weft_queue_shutdown(&q); /* idempotent */
    /* new putters fail at once */
    assert_int_equal(weft_queue_put(&q, ITEM(6)), WEFT_ECLOSED);
    assert_non_null(strstr(weft_errmsg(), "shut down"));
    assert_int_equal(weft_queue_try_put(&q, ITEM(6)), WEFT_ECLOSED);
    assert_int_equal(weft_queue_put_until(&q, ITEM(6), weft_deadline_ms(1)), WEFT_ECLOSED);
    /* waiting putters too, at once */
    assert_int_equal(join_status(p1), WEFT_ECLOSED);
    assert_int_equal(join_status(p2), WEFT_ECLOSED);
    assert_int_equal(weft_queue_len(&q), 3);
    /* getters drain, then fail */
    for (long i = 1; i <= 3; i++) {
        assert_int_equal(i == 2 ? weft_queue_try_get(&q, &item) : weft_queue_get(&q, &item), 0);
        assert_int_equal(VAL(item), i);
    }
    assert_int_equal(weft_queue_get(&q, &item), WEFT_ECLOSED);
    assert_non_null(strstr(weft_errmsg(), "shut down"));
    assert_int_equal(weft_queue_get_until(&q, &item, weft_deadline_ms(60000)), WEFT_ECLOSED);
    assert_int_equal(weft_queue_try_get(&q, &item), WEFT_ECLOSED);
    assert_int_equal(weft_queue_close(&q), 0);

    /* waiting getters on an empty queue fail at once */
    reset();
    assert_int_equal(weft_queue_init(&q, 3), 0);
    weft_task *g1 = spawn_named(getter, (void *)1, "getter1");
    weft_task *g2 = spawn_named(getter, (void *)2, "getter2");
    yield_n(2);
    weft_queue_shutdown(&q);
    assert_int_equal(join_status(g1), WEFT_ECLOSED);
    assert_int_equal(join_status(g2), WEFT_ECLOSED);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_shutdown(void **state)
{
    (void)state;
    run_ok(shutdown_basic);
}

/* Shutdown while a getter was granted an item and has not run yet. */
static int shutdown_with_granted_getter(void *arg)
{
    (void)arg;
    reset();
    void *item = ITEM(-1);
    assert_int_equal(weft_queue_init(&q, 3), 0);
    weft_task *g1 = spawn_named(getter, (void *)1, "granted");
    yield_n(1);
    assert_int_equal(weft_queue_put(&q, ITEM(10)), 0); /* reserved for g1 */
    weft_queue_shutdown(&q);
    /* a newcomer (main) waits: the only item is g1's.  Once g1 has taken
     * it, nothing more can come: the newcomer must get WEFT_ECLOSED, not
     * hang (the deadline only turns a hang into a failure) */
    assert_int_equal(weft_queue_try_get(&q, &item), -EAGAIN);
    assert_int_equal(weft_queue_get_until(&q, &item, weft_deadline_ms(2000)), WEFT_ECLOSED);
    assert_ptr_equal(item, ITEM(-1));
    assert_int_equal(join_status(g1), 0);
    assert_int_equal(got[1], 10);
    assert_int_equal(weft_queue_close(&q), 0);

    /* two getters wait, one item comes (to g1), then the shutdown: when g1
     * is cancelled before it runs, the remaining item goes to g2 */
    reset();
    assert_int_equal(weft_queue_init(&q, 3), 0);
    g1 = spawn_named(getter, (void *)1, "granted");
    weft_task *g2 = spawn_named(getter, (void *)2, "second");
    yield_n(1);
    assert_int_equal(weft_queue_put(&q, ITEM(20)), 0);
    weft_queue_shutdown(&q);
    assert_int_equal(weft_cancel(g1), 0);
    assert_int_equal(join_status(g1), -ECANCELED);
    assert_int_equal(join_status(g2), 0);
    assert_int_equal(got[2], 20);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_get(&q, &item), WEFT_ECLOSED);
    assert_int_equal(weft_queue_close(&q), 0);

    /* ... and when g1 takes it, g2 learns that the queue is closed */
    reset();
    assert_int_equal(weft_queue_init(&q, 3), 0);
    g1 = spawn_named(getter, (void *)1, "granted");
    shared_deadline = weft_deadline_ms(2000);
    g2 = spawn_named(getter, (void *)2, "second");
    yield_n(1);
    assert_int_equal(weft_queue_put(&q, ITEM(25)), 0);
    weft_queue_shutdown(&q);
    assert_int_equal(join_status(g1), 0);
    assert_int_equal(got[1], 25);
    assert_int_equal(join_status(g2), WEFT_ECLOSED);
    assert_int_equal(weft_queue_close(&q), 0);

    /* the granted getter is cancelled and nobody waits: the item stays
     * for a later getter, then the queue reports closed */
    reset();
    assert_int_equal(weft_queue_init(&q, 3), 0);
    g1 = spawn_named(getter, (void *)1, "granted");
    yield_n(1);
    assert_int_equal(weft_queue_put(&q, ITEM(30)), 0);
    weft_queue_shutdown(&q);
    assert_int_equal(weft_cancel(g1), 0);
    assert_int_equal(join_status(g1), -ECANCELED);
    assert_int_equal(weft_queue_len(&q), 1);
    assert_int_equal(weft_queue_get(&q, &item), 0);
    assert_int_equal(VAL(item), 30);
    assert_int_equal(weft_queue_get(&q, &item), WEFT_ECLOSED);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_shutdown_with_granted_getter(void **state)
{
    (void)state;
    run_ok(shutdown_with_granted_getter);
}

/* Shutdown while a putter was granted a slot and has not run yet. */
static int shutdown_with_granted_putter(void *arg)
{
    (void)arg;
    reset();
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_queue_put(&q, ITEM(1)), 0);
    weft_task *p = spawn_named(putter, (void *)2, "putter");
    yield_n(1);
    expect_get(1); /* slot reserved for p */
    weft_queue_shutdown(&q);
    assert_int_equal(join_status(p), WEFT_ECLOSED);
    assert_int_equal(weft_queue_len(&q), 0);
    void *item;
    assert_int_equal(weft_queue_try_get(&q, &item), WEFT_ECLOSED);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_shutdown_with_granted_putter(void **state)
{
    (void)state;
    run_ok(shutdown_with_granted_putter);
}

/* ------------------------------------------------------------ close */

static int close_busy(void *arg)
{
    (void)arg;
    reset();
    assert_int_equal(weft_queue_init(&q, 1), 0);
    weft_task *g = spawn_named(getter, (void *)1, "getter");
    yield_n(1);
    assert_int_equal(weft_queue_close(&q), -EBUSY);
    assert_non_null(strstr(weft_errmsg(), "wait"));
    /* granted but not yet run: it still has to take its item */
    assert_int_equal(weft_queue_put(&q, ITEM(5)), 0);
    assert_int_equal(weft_queue_close(&q), -EBUSY);
    assert_int_equal(join_status(g), 0);
    assert_int_equal(got[1], 5);

    /* a waiting putter, then one granted a slot */
    assert_int_equal(weft_queue_put(&q, ITEM(6)), 0);
    weft_task *p = spawn_named(putter, (void *)7, "putter");
    yield_n(1);
    assert_int_equal(weft_queue_close(&q), -EBUSY);
    expect_get(6);
    assert_int_equal(weft_queue_close(&q), -EBUSY);
    assert_int_equal(join_status(p), 0);
    expect_get(7);

    /* a waiter cancelled (not yet run) does not wait any more: close works,
     * and the waiter does not touch the queue afterwards */
    g = spawn_named(getter, (void *)2, "getter");
    yield_n(1);
    assert_int_equal(weft_cancel(g), 0);
    assert_int_equal(weft_queue_close(&q), 0);
    memset(&q, 0xA5, sizeof q);
    assert_int_equal(join_status(g), -ECANCELED);
    for (size_t i = 0; i < sizeof q; i++)
        assert_int_equal(((unsigned char *)&q)[i], 0xA5);
    return 0;
}

static void test_close(void **state)
{
    (void)state;
    run_ok(close_busy);
}

/* ------------------------------------------------------------ scale */

static int big_capacity(void *arg)
{
    (void)arg;
    enum { BIG = 1000000 };
    void *item;
    assert_int_equal(weft_queue_init(&q, BIG), 0);
    for (long i = 0; i < BIG; i++)
        assert_int_equal(i % 2 ? weft_queue_try_put(&q, ITEM(i)) : weft_queue_put(&q, ITEM(i)), 0);
    assert_int_equal(weft_queue_len(&q), BIG);
    assert_int_equal(weft_queue_try_put(&q, ITEM(-1)), -EAGAIN);
    assert_int_equal(weft_queue_put_until(&q, ITEM(-1), weft_now() - 1), -ETIMEDOUT);
    for (long i = 0; i < BIG; i++) {
        assert_int_equal(weft_queue_try_get(&q, &item), 0);
        if (VAL(item) != i)
            assert_int_equal(VAL(item), i);
    }
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_try_get(&q, &item), -EAGAIN);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_big_capacity(void **state)
{
    (void)state;
    run_ok(big_capacity);
}

enum { PRODUCERS = 8, CONSUMERS = 8, ITEMS = 100000 };
static unsigned char *seen;
static long total_got, sum_got, dup_items;

static int mp_producer(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long v = id + 1; v <= ITEMS; v += PRODUCERS) {
        int rc = (v % 3 == 0) ? weft_queue_try_put(&q, ITEM(v)) : -EAGAIN;
        if (rc == -EAGAIN)
            rc = weft_queue_put(&q, ITEM(v));
        if (rc != 0)
            return rc;
        if (v % 11 == 0 && weft_yield() != 0)
            return -1;
    }
    return 0;
}

static int mp_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        void *item;
        int rc = weft_queue_get(&q, &item);
        if (rc == WEFT_ECLOSED)
            return 0;
        if (rc != 0)
            return rc;
        long v = VAL(item);
        if (v < 1 || v > ITEMS || seen[v]++)
            dup_items++;
        total_got++;
        sum_got += v;
        if (v % 13 == 0 && weft_yield() != 0)
            return -1;
    }
}

static int many(void *arg)
{
    (void)arg;
    seen = calloc(ITEMS + 1, 1);
    assert_non_null(seen);
    total_got = sum_got = dup_items = 0;
    assert_int_equal(weft_queue_init(&q, 16), 0);
    weft_task *c[CONSUMERS], *p[PRODUCERS];
    for (int i = 0; i < CONSUMERS; i++)
        c[i] = spawn_named(mp_consumer, NULL, "consumer");
    for (int i = 0; i < PRODUCERS; i++)
        p[i] = spawn_named(mp_producer, (void *)(intptr_t)i, "producer");
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(join_status(p[i]), 0);
    weft_queue_shutdown(&q);
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(join_status(c[i]), 0);
    assert_int_equal(dup_items, 0);
    assert_int_equal(total_got, ITEMS);
    assert_int_equal(sum_got, (long)ITEMS * (ITEMS + 1) / 2);
    for (long v = 1; v <= ITEMS; v++)
        if (seen[v] != 1)
            assert_int_equal(seen[v], 1);
    assert_int_equal(weft_queue_len(&q), 0);
    assert_int_equal(weft_queue_close(&q), 0);
    free(seen);
    seen = NULL;
    return 0;
}

static void test_many_producers_consumers(void **state)
{
    (void)state;
    run_ok(many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_outside_task),
        cmocka_unit_test(test_null_object),
        cmocka_unit_test(test_fifo_items),
        cmocka_unit_test(test_put_blocks_when_full),
        cmocka_unit_test(test_get_blocks_when_empty),
        cmocka_unit_test(test_fifo_waiters),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_cancel_getters),
        cmocka_unit_test(test_cancel_putters),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_shutdown_with_granted_getter),
        cmocka_unit_test(test_shutdown_with_granted_putter),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_many_producers_consumers),
        cmocka_unit_test(test_big_capacity),
    };
    return run_cases(tests, NULL, NULL);
}
