/* SPDX-License-Identifier: MIT */
/* Conditions: notify one/all, the lock on every exit path, pass-on after cancel, producer/consumer. */
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

static weft_cond cond;
static weft_lock lock;
static int waiting;   /* tasks inside weft_cond_wait */
static int returned;  /* waits that returned 0 */
static int order[64];
static int norder;
static int64_t shared_deadline;

/* One wait (no predicate: the tests count wake-ups); checks the lock is
 * held on return, whatever the result. */
static int wait_once(void *arg)
{
    int id = (int)(intptr_t)arg;
    assert_int_equal(weft_lock_acquire(&lock), 0);
    waiting++;
    int rc = weft_cond_wait_until(&cond, &lock, shared_deadline);
    waiting--;
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    if (rc == 0) {
        returned++;
        order[norder++] = id;
    }
    assert_int_equal(weft_lock_release(&lock), 0);
    return rc;
}

/* ------------------------------------------------------------ errors */

static void test_outside_task(void **state)
{
    (void)state;
    weft_cond_init(&cond);
    weft_lock_init(&lock);
    assert_int_equal(weft_cond_wait(&cond, &lock), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "weft_cond_wait"));
    assert_int_equal(weft_cond_wait_until(&cond, &lock, weft_deadline_ms(1)), WEFT_ENOTASK);
    /* notifying needs no task, and nobody waits: a no-op */
    weft_cond_notify(&cond, 1);
    weft_cond_notify_all(&cond);
    assert_int_equal(weft_cond_close(&cond), 0);
}

static weft_task *lock_holder_task;
static int hold_lock_until_flag;
static int lock_holder(void *arg)
{
    (void)arg;
    assert_int_equal(weft_lock_acquire(&lock), 0);
    while (!hold_lock_until_flag)
        assert_int_equal(weft_yield(), 0);
    return weft_lock_release(&lock);
}

static int misuse(void *arg)
{
    (void)arg;
    weft_cond_init(&cond);
    weft_lock_init(&lock);
    assert_int_equal(weft_cond_wait(NULL, &lock), -EINVAL);
    assert_int_equal(weft_cond_wait_until(NULL, &lock, weft_deadline_ms(1)), -EINVAL);
    assert_int_equal(weft_cond_close(NULL), -EINVAL);
    assert_int_equal(weft_cond_wait(&cond, NULL), -EINVAL);
    /* the lock is free: -EPERM, nothing happens */
    assert_int_equal(weft_cond_wait(&cond, &lock), -EPERM);
    assert_non_null(strstr(weft_errmsg(), "must hold the lock"));
    assert_int_equal(weft_cond_wait_until(&cond, &lock, weft_deadline_ms(1)), -EPERM);
    assert_null(weft_lock_owner(&lock));
    /* held by another task: -EPERM, the owner keeps it */
    hold_lock_until_flag = 0;
    lock_holder_task = spawn_named(lock_holder, NULL, "holder");
    assert_int_equal(weft_yield(), 0);
    assert_ptr_equal(weft_lock_owner(&lock), lock_holder_task);
    assert_int_equal(weft_cond_wait(&cond, &lock), -EPERM);
    assert_ptr_equal(weft_lock_owner(&lock), lock_holder_task);
    hold_lock_until_flag = 1;
    assert_int_equal(join_status(lock_holder_task), 0);
    /* notify with n <= 0 and the NULL-safe no-ops */
    weft_cond_notify(&cond, 0);
    weft_cond_notify(&cond, -5);
    assert_int_equal(weft_cond_close(&cond), 0);
    return 0;
}

static void test_misuse(void **state)
{
    (void)state;
    run_ok(misuse);
}

/* ------------------------------------------------------------ notify */

enum { N = 5 };

static int notify_counts(void *arg)
{
    (void)arg;
    waiting = returned = norder = 0;
    shared_deadline = WEFT_NO_DEADLINE;
    weft_cond_init(&cond);
    weft_lock_init(&lock);
    weft_task *t[N];
    for (int i = 0; i < N; i++)
        t[i] = spawn_named(wait_once, (void *)(intptr_t)i, "waiter");
    yield_n(3);
    assert_int_equal(waiting, N);
    assert_null(weft_lock_owner(&lock)); /* every waiter released it */
    assert_int_equal(weft_cond_close(&cond), -EBUSY);

    /* nobody is woken by 0 or a negative count */
    weft_cond_notify(&cond, 0);
    weft_cond_notify(&cond, -1);
    yield_n(5);
    assert_int_equal(returned, 0);

    /* notify(1) wakes exactly one: the first */
    weft_cond_notify(&cond, 1);
    yield_n(5);
    assert_int_equal(returned, 1);
    assert_int_equal(waiting, N - 1);
    assert_int_equal(order[0], 0);

    /* notify(2) wakes exactly two, in arrival order */
    weft_cond_notify(&cond, 2);
    yield_n(5);
    assert_int_equal(returned, 3);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);

    /* notify with more than are waiting wakes those that wait */
    weft_cond_notify(&cond, 100);
    for (int i = 0; i < N; i++)
        assert_int_equal(join_status(t[i]), 0);
    assert_int_equal(returned, N);
    assert_int_equal(waiting, 0);

    /* notify_all wakes every waiter */
    returned = norder = 0;
    for (int i = 0; i < N; i++)
        t[i] = spawn_named(wait_once, (void *)(intptr_t)i, "waiter");
    yield_n(3);
    assert_int_equal(waiting, N);
    /* the notifier holds the lock: the woken wait for it */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    weft_cond_notify_all(&cond);
    yield_n(5);
    assert_int_equal(returned, 0); /* blocked on the lock, not the condition */
    assert_int_equal(weft_lock_release(&lock), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(join_status(t[i]), 0);
    assert_int_equal(returned, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(order[i], i);

    /* a notification with nobody waiting is not remembered */
    weft_cond_notify_all(&cond);
    weft_cond_notify(&cond, 1);
    shared_deadline = weft_deadline_ms(50); /* the waiter waits before it passes, even under TSan */
    weft_task *w = spawn_named(wait_once, NULL, "late");
    assert_int_equal(join_status(w), -ETIMEDOUT);
    assert_int_equal(weft_cond_close(&cond), 0);
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_notify_one_and_all(void **state)
{
    (void)state;
    run_ok(notify_counts);
}

/* ------------------------------------------------------------ failures */

/* After a cancelled or timed-out wait the caller holds the lock again --
 * even when another task holds it at that moment: then the wait returns
 * only once that task releases it. */
static int timeout_and_cancel_hold_lock(void *arg)
{
    (void)arg;
    waiting = returned = norder = 0;
    weft_cond_init(&cond);
    weft_lock_init(&lock);

    /* timeout, lock free */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    int64_t start = weft_now();
    assert_int_equal(weft_cond_wait_until(&cond, &lock, weft_deadline_ms(3)), -ETIMEDOUT);
    assert_true(weft_now() - start >= 3 * 1000000LL);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    /* expired deadline: fails, the lock is still (again) ours */
    assert_int_equal(weft_cond_wait_until(&cond, &lock, weft_now() - 1), -ETIMEDOUT);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    assert_int_equal(weft_lock_release(&lock), 0);

    /* timeout while main holds the lock (50 ms: the waiter must be waiting
     * before it passes, even on a slow, loaded machine under TSan) */
    shared_deadline = weft_deadline_ms(50);
    weft_task *w = spawn_named(wait_once, NULL, "waiter");
    yield_n(2);
    assert_int_equal(waiting, 1);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_int_equal(weft_sleep_until(shared_deadline + 10 * 1000000LL), 0); /* it passes meanwhile */
    assert_int_equal(waiting, 1);           /* still waiting: for the lock */
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_int_equal(join_status(w), -ETIMEDOUT);
    assert_int_equal(waiting, 0);
    assert_null(weft_lock_owner(&lock));

    /* cancel while main holds the lock: the re-acquire is shielded */
    shared_deadline = WEFT_NO_DEADLINE;
    w = spawn_named(wait_once, NULL, "waiter");
    yield_n(2);
    assert_int_equal(waiting, 1);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_int_equal(weft_cancel(w), 0);
    yield_n(5);
    assert_int_equal(waiting, 1); /* cancellation did not cut the re-acquire */
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_int_equal(join_status(w), -ECANCELED);
    assert_null(weft_lock_owner(&lock));

    /* cancel with the lock free */
    w = spawn_named(wait_once, NULL, "waiter");
    yield_n(2);
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(join_status(w), -ECANCELED);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(returned, 0);
    assert_int_equal(weft_cond_close(&cond), 0);
    return 0;
}

static void test_failed_wait_holds_lock(void **state)
{
    (void)state;
    run_ok(timeout_and_cancel_hold_lock);
}

/* A task cancelled while it holds the lock: cond_wait fails without
 * releasing it. */
static int cancelled_holder(void *arg)
{
    (void)arg;
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_int_equal(weft_cancel(weft_current()), 0);
    int rc = weft_cond_wait(&cond, &lock);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    assert_int_equal(weft_lock_release(&lock), 0);
    return rc;
}

static int cancelled_before_wait(void *arg)
{
    (void)arg;
    weft_cond_init(&cond);
    weft_lock_init(&lock);
    weft_task *w = spawn_named(cancelled_holder, NULL, "holder");
    assert_int_equal(join_status(w), -ECANCELED);
    assert_null(weft_lock_owner(&lock));
    return 0;
}

static void test_cancelled_before_wait(void **state)
{
    (void)state;
    run_ok(cancelled_before_wait);
}

/* A waiter notified and cancelled before it runs passes the notification
 * on to the next waiter. */
static int notified_then_cancelled(void *arg)
{
    (void)arg;
    waiting = returned = norder = 0;
    shared_deadline = WEFT_NO_DEADLINE;
    weft_cond_init(&cond);
    weft_lock_init(&lock);
    weft_task *a = spawn_named(wait_once, (void *)1, "a");
    weft_task *b = spawn_named(wait_once, (void *)2, "b");
    weft_task *c = spawn_named(wait_once, (void *)3, "c");
    yield_n(3);
    assert_int_equal(waiting, 3);
    weft_cond_notify(&cond, 1);
    assert_int_equal(weft_cancel(a), 0);
    assert_int_equal(join_status(a), -ECANCELED);
    assert_int_equal(join_status(b), 0); /* got a's notification */
    yield_n(5);
    assert_int_equal(returned, 1);
    assert_int_equal(order[0], 2);
    assert_int_equal(waiting, 1); /* only one was passed on */

    /* the notification is not passed to a waiter that was cancelled too */
    weft_task *d = spawn_named(wait_once, (void *)4, "d");
    yield_n(3);
    assert_int_equal(waiting, 2); /* c, d */
    weft_cond_notify(&cond, 1);   /* to c */
    assert_int_equal(weft_cancel(c), 0);
    assert_int_equal(join_status(c), -ECANCELED);
    assert_int_equal(join_status(d), 0);
    assert_int_equal(returned, 2);
    assert_int_equal(order[1], 4);

    /* nobody else waits: the notification is dropped */
    weft_task *e = spawn_named(wait_once, (void *)5, "e");
    yield_n(3);
    weft_cond_notify(&cond, 1);
    assert_int_equal(weft_cancel(e), 0);
    assert_int_equal(join_status(e), -ECANCELED);
    assert_int_equal(waiting, 0);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(weft_cond_close(&cond), 0);
    return 0;
}

static void test_notified_then_cancelled_passes_on(void **state)
{
    (void)state;
    run_ok(notified_then_cancelled);
}

/* A waiter cancelled (not notified) before it runs does not eat a
 * notification sent in the same iteration. */
static int cancelled_then_notified(void *arg)
{
    (void)arg;
    waiting = returned = norder = 0;
    shared_deadline = WEFT_NO_DEADLINE;
    weft_cond_init(&cond);
    weft_lock_init(&lock);
    weft_task *a = spawn_named(wait_once, (void *)1, "a");
    weft_task *b = spawn_named(wait_once, (void *)2, "b");
    yield_n(3);
    assert_int_equal(weft_cancel(a), 0);
    weft_cond_notify(&cond, 1);
    assert_int_equal(join_status(a), -ECANCELED);
    assert_int_equal(join_status(b), 0);
    assert_int_equal(returned, 1);
    assert_int_equal(order[0], 2);
    return 0;
}

static void test_cancelled_then_notified(void **state)
{
    (void)state;
    run_ok(cancelled_then_notified);
}

/* Close after a waiter was cancelled, before it ran: the condition's
 * memory is not touched any more. */
static weft_cond *heap_cond;
static int wait_heap(void *arg)
{
    (void)arg;
    assert_int_equal(weft_lock_acquire(&lock), 0);
    int rc = weft_cond_wait(heap_cond, &lock);
    assert_int_equal(weft_lock_release(&lock), 0);
    return rc;
}

static int close_after_cancel(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    heap_cond = malloc(sizeof *heap_cond);
    assert_non_null(heap_cond);
    weft_cond_init(heap_cond);
    weft_task *w = spawn_named(wait_heap, NULL, "waiter");
    yield_n(2);
    assert_int_equal(weft_cond_close(heap_cond), -EBUSY);
    assert_non_null(strstr(weft_errmsg(), "wait"));
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(weft_cond_close(heap_cond), 0);
    memset(heap_cond, 0xA5, sizeof *heap_cond);
    assert_int_equal(join_status(w), -ECANCELED);
    for (size_t i = 0; i < sizeof *heap_cond; i++)
        assert_int_equal(((unsigned char *)heap_cond)[i], 0xA5);

    /* notified, then cancelled, not run yet: it will pass the notification
     * on through the condition, which is therefore still in use */
    weft_cond_init(heap_cond);
    w = spawn_named(wait_heap, NULL, "waiter");
    yield_n(2);
    weft_cond_notify(heap_cond, 1);
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(weft_cond_close(heap_cond), -EBUSY);
    assert_int_equal(join_status(w), -ECANCELED);
    assert_int_equal(weft_cond_close(heap_cond), 0);
    free(heap_cond);
    heap_cond = NULL;
    return 0;
}

static void test_close_after_cancel(void **state)
{
    (void)state;
    run_ok(close_after_cancel);
}

/* ------------------------------------------------------------ producer/consumer */

/* A bounded buffer built from one lock and two conditions, with the
 * classic predicate loops. */
enum { BUF = 4, PRODUCERS = 4, CONSUMERS = 3, PER_PRODUCER = 2000 };
static weft_cond not_full, not_empty;
static long buf[BUF];
static int buf_len, buf_head;
static int producers_left;
static long consumed_sum, consumed_count;

static int producer(void *arg)
{
    long base = (long)(intptr_t)arg * PER_PRODUCER;
    for (long i = 1; i <= PER_PRODUCER; i++) {
        assert_int_equal(weft_lock_acquire(&lock), 0);
        while (buf_len == BUF)
            assert_int_equal(weft_cond_wait(&not_full, &lock), 0);
        buf[(buf_head + buf_len) % BUF] = base + i;
        buf_len++;
        weft_cond_notify(&not_empty, 1);
        assert_int_equal(weft_lock_release(&lock), 0);
        if (i % 7 == 0)
            assert_int_equal(weft_yield(), 0);
    }
    assert_int_equal(weft_lock_acquire(&lock), 0);
    producers_left--;
    weft_cond_notify_all(&not_empty); /* consumers re-check "done" */
    assert_int_equal(weft_lock_release(&lock), 0);
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    for (;;) {
        assert_int_equal(weft_lock_acquire(&lock), 0);
        while (buf_len == 0 && producers_left > 0)
            assert_int_equal(weft_cond_wait(&not_empty, &lock), 0);
        if (buf_len == 0) {
            assert_int_equal(weft_lock_release(&lock), 0);
            return 0;
        }
        long v = buf[buf_head];
        buf_head = (buf_head + 1) % BUF;
        buf_len--;
        consumed_sum += v;
        consumed_count++;
        weft_cond_notify(&not_full, 1);
        assert_int_equal(weft_lock_release(&lock), 0);
        if (v % 5 == 0)
            assert_int_equal(weft_yield(), 0);
    }
}

static int producer_consumer(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    weft_cond_init(&not_full);
    weft_cond_init(&not_empty);
    buf_len = buf_head = 0;
    producers_left = PRODUCERS;
    consumed_sum = consumed_count = 0;
    weft_task *c[CONSUMERS], *p[PRODUCERS];
    for (int i = 0; i < CONSUMERS; i++)
        c[i] = spawn_named(consumer, NULL, "consumer");
    for (int i = 0; i < PRODUCERS; i++)
        p[i] = spawn_named(producer, (void *)(intptr_t)i, "producer");
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(join_status(p[i]), 0);
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(join_status(c[i]), 0);
    long n = (long)PRODUCERS * PER_PRODUCER;
    assert_int_equal(consumed_count, n);
    assert_int_equal(consumed_sum, n * (n + 1) / 2);
    assert_int_equal(buf_len, 0);
    assert_int_equal(weft_cond_close(&not_full), 0);
    assert_int_equal(weft_cond_close(&not_empty), 0);
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_producer_consumer(void **state)
{
    (void)state;
    run_ok(producer_consumer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outside_task),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_notify_one_and_all),
        cmocka_unit_test(test_failed_wait_holds_lock),
        cmocka_unit_test(test_cancelled_before_wait),
        cmocka_unit_test(test_notified_then_cancelled_passes_on),
        cmocka_unit_test(test_cancelled_then_notified),
        cmocka_unit_test(test_close_after_cancel),
        cmocka_unit_test(test_producer_consumer),
    };
    return run_cases(tests, NULL, NULL);
}
