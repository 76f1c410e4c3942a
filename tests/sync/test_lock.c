/* SPDX-License-Identifier: MIT */
/* Locks: ownership, hand-off to the first waiter, deadlines, cancellation, dumps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <weft.h>

#include "sync_helpers.h"

static weft_lock lock;
static int order[64];
static int norder;
static int arrived;
static int got_lock;

/* Acquire, record, keep the lock (the test releases for it or checks the
 * owner). */
static int acquire_and_keep(void *arg)
{
    (void)arg;
    int rc = weft_lock_acquire(&lock);
    if (rc == 0)
        got_lock++;
    return rc;
}

/* Acquire, record the arrival index, hold across a yield, release. */
static int acquire_record_release(void *arg)
{
    int id = (int)(intptr_t)arg;
    arrived++;
    int rc = weft_lock_acquire(&lock);
    if (rc < 0)
        return rc;
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    order[norder++] = id;
    assert_int_equal(weft_yield(), 0);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    return weft_lock_release(&lock);
}

/* ------------------------------------------------------------ errors */

static void test_outside_task(void **state)
{
    (void)state;
    weft_lock_init(&lock);
    assert_int_equal(weft_lock_acquire(&lock), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "weft_lock_acquire"));
    assert_int_equal(weft_lock_acquire_until(&lock, weft_deadline_ms(1)), WEFT_ENOTASK);
    assert_int_equal(weft_lock_try_acquire(&lock), WEFT_ENOTASK);
    assert_null(weft_lock_owner(&lock));
    /* nobody (and no task) owns it: releasing is a caller bug */
    assert_int_equal(weft_lock_release(&lock), -EPERM);
    assert_int_equal(weft_lock_close(&lock), 0);
}

static int null_object(void *arg)
{
    (void)arg;
    assert_int_equal(weft_lock_acquire(NULL), -EINVAL);
    assert_int_equal(weft_lock_acquire_until(NULL, weft_deadline_ms(1)), -EINVAL);
    assert_int_equal(weft_lock_try_acquire(NULL), -EINVAL);
    assert_int_equal(weft_lock_release(NULL), -EINVAL);
    assert_int_equal(weft_lock_close(NULL), -EINVAL);
    assert_null(weft_lock_owner(NULL));
    return 0;
}

static void test_null_object(void **state)
{
    (void)state;
    run_ok(null_object);
}

static int hold_until_released;
static int holder(void *arg)
{
    (void)arg;
    assert_int_equal(weft_lock_acquire(&lock), 0);
    yield_until(&hold_until_released, 1);
    return weft_lock_release(&lock);
}

static int misuse(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    assert_null(weft_lock_owner(&lock));
    /* release of a free lock */
    assert_int_equal(weft_lock_release(&lock), -EPERM);
    assert_non_null(strstr(weft_errmsg(), "does not hold"));
    /* acquire twice by the owner */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    assert_int_equal(weft_lock_acquire(&lock), -EDEADLK);
    assert_non_null(strstr(weft_errmsg(), "holds the lock already"));
    assert_int_equal(weft_lock_acquire_until(&lock, weft_deadline_ms(1000)), -EDEADLK);
    /* the owner's try_acquire fails (the lock is not recursive) */
    int rc = weft_lock_try_acquire(&lock);
    assert_true(rc == -EAGAIN || rc == -EDEADLK);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    assert_int_equal(weft_lock_close(&lock), -EBUSY); /* held */
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(weft_lock_release(&lock), -EPERM); /* twice */

    /* held by another task: try -> -EAGAIN, release -> -EPERM */
    hold_until_released = 0;
    weft_task *h = spawn_named(holder, NULL, "holder");
    assert_int_equal(weft_yield(), 0);
    assert_ptr_equal(weft_lock_owner(&lock), h);
    assert_int_equal(weft_lock_try_acquire(&lock), -EAGAIN);
    assert_int_equal(weft_lock_release(&lock), -EPERM);
    assert_non_null(strstr(weft_errmsg(), "'holder'"));
    assert_ptr_equal(weft_lock_owner(&lock), h); /* unchanged */
    assert_int_equal(weft_lock_close(&lock), -EBUSY);
    hold_until_released = 1;
    assert_int_equal(join_status(h), 0);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(weft_lock_try_acquire(&lock), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_misuse(void **state)
{
    (void)state;
    run_ok(misuse);
}

/* ------------------------------------------------------------ hand-off, FIFO */

static int handoff(void *arg)
{
    (void)arg;
    norder = arrived = 0;
    weft_lock_init(&lock);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    weft_task *w1 = spawn_named(acquire_record_release, (void *)1, "first");
    weft_task *w2 = spawn_named(acquire_record_release, (void *)2, "second");
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_yield(), 0);
    assert_int_equal(arrived, 2);
    assert_int_equal(norder, 0);
    assert_int_equal(weft_lock_close(&lock), -EBUSY);
    assert_int_equal(weft_lock_release(&lock), 0);
    /* the first waiter owns it before it even runs */
    assert_ptr_equal(weft_lock_owner(&lock), w1);
    assert_int_equal(norder, 0);
    /* a newcomer cannot take it */
    assert_int_equal(weft_lock_try_acquire(&lock), -EAGAIN);
    assert_int_equal(weft_lock_acquire_until(&lock, weft_now() - 1), -ETIMEDOUT);
    assert_ptr_equal(weft_lock_owner(&lock), w1);
    /* ... and a blocking newcomer queues behind the second waiter */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(join_status(w1), 0);
    assert_int_equal(join_status(w2), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_owner_handed_to_first_waiter(void **state)
{
    (void)state;
    run_ok(handoff);
}

enum { FIFO_N = 6 };
static int late_locker(void *arg)
{
    int i = (int)(intptr_t)arg;
    for (int k = 0; k < FIFO_N - i; k++)
        assert_int_equal(weft_yield(), 0);
    return acquire_record_release(arg);
}

static int fifo(void *arg)
{
    (void)arg;
    norder = arrived = 0;
    weft_lock_init(&lock);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    weft_task *t[FIFO_N];
    for (int i = 0; i < FIFO_N; i++)
        t[i] = spawn_named(late_locker, (void *)(intptr_t)i, "late_locker");
    yield_until(&arrived, FIFO_N);
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    /* main queues again, behind all of them */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_int_equal(norder, FIFO_N);
    for (int k = 0; k < FIFO_N; k++)
        assert_int_equal(order[k], FIFO_N - 1 - k);
    for (int i = 0; i < FIFO_N; i++)
        assert_int_equal(join_status(t[i]), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_fifo_order(void **state)
{
    (void)state;
    run_ok(fifo);
}

/* Mutual exclusion under contention: a read-modify-write across a yield. */
static long shared_counter;
static int incrementer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        int rc = weft_lock_acquire(&lock);
        if (rc < 0)
            return rc;
        long v = shared_counter;
        assert_int_equal(weft_yield(), 0);
        shared_counter = v + 1;
        rc = weft_lock_release(&lock);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int exclusion(void *arg)
{
    (void)arg;
    shared_counter = 0;
    weft_lock_init(&lock);
    weft_task *t[10];
    for (int i = 0; i < 10; i++)
        t[i] = spawn_named(incrementer, NULL, "incrementer");
    for (int i = 0; i < 10; i++)
        assert_int_equal(join_status(t[i]), 0);
    assert_int_equal(shared_counter, 2000);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_mutual_exclusion(void **state)
{
    (void)state;
    run_ok(exclusion);
}

/* ------------------------------------------------------------ deadlines */

static int64_t shared_deadline;
static int acquire_by_deadline(void *arg)
{
    (void)arg;
    int rc = weft_lock_acquire_until(&lock, shared_deadline);
    if (rc == 0)
        got_lock++;
    return rc;
}

static int deadlines(void *arg)
{
    (void)arg;
    got_lock = 0;
    weft_lock_init(&lock);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_int_equal(weft_lock_acquire_until(&lock, weft_now() - 1), -EDEADLK);
    shared_deadline = weft_deadline_ms(50); /* the waiter waits before it passes, even under TSan */
    weft_task *w = spawn_named(acquire_by_deadline, NULL, "deadline_waiter");
    assert_int_equal(join_status(w), -ETIMEDOUT);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    assert_int_equal(got_lock, 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_null(weft_lock_owner(&lock)); /* the timed-out waiter did not get it */

    /* The waiter's deadline fires and, in the same iteration, before the
     * waiter runs, the owner releases: the lock must become free.  Main
     * sleeps to the same deadline and arms its timer first, so it runs
     * first. */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    shared_deadline = weft_deadline_ms(50); /* the waiter waits before it passes, even under TSan */
    w = spawn_named(acquire_by_deadline, NULL, "deadline_waiter");
    assert_int_equal(weft_sleep_until(shared_deadline), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(join_status(w), -ETIMEDOUT);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(got_lock, 0);

    /* a waiter with a far deadline gets it */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    shared_deadline = weft_deadline_ms(60000);
    w = spawn_named(acquire_by_deadline, NULL, "deadline_waiter");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_ptr_equal(weft_lock_owner(&lock), w);
    assert_int_equal(join_status(w), 0);
    assert_int_equal(got_lock, 1);
    return 0;
}

static void test_deadlines(void **state)
{
    (void)state;
    run_ok(deadlines);
}

/* ------------------------------------------------------------ cancellation */

static int cancel_waiting(void *arg)
{
    (void)arg;
    got_lock = 0;
    weft_lock_init(&lock);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    weft_task *w = spawn_named(acquire_and_keep, NULL, "waiter");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(join_status(w), -ECANCELED);
    assert_ptr_equal(weft_lock_owner(&lock), weft_current());
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_null(weft_lock_owner(&lock));

    /* cancelled, then released in the same iteration: not handed over */
    assert_int_equal(weft_lock_acquire(&lock), 0);
    w = spawn_named(acquire_and_keep, NULL, "waiter");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(join_status(w), -ECANCELED);
    assert_null(weft_lock_owner(&lock));

    /* cancelled before its first acquire: does not take even a free lock */
    w = spawn_named(acquire_and_keep, NULL, "waiter");
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(join_status(w), -ECANCELED);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(got_lock, 0);
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_cancel_waiting(void **state)
{
    (void)state;
    run_ok(cancel_waiting);
}

static int granted_then_cancelled(void *arg)
{
    (void)arg;
    got_lock = 0;
    weft_lock_init(&lock);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    weft_task *w1 = spawn_named(acquire_and_keep, NULL, "first");
    weft_task *w2 = spawn_named(acquire_and_keep, NULL, "second");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_ptr_equal(weft_lock_owner(&lock), w1);
    assert_int_equal(weft_cancel(w1), 0); /* before it runs */
    assert_int_equal(join_status(w1), -ECANCELED);
    /* the lock went on to the next waiter */
    assert_int_equal(join_status(w2), 0);
    assert_int_equal(got_lock, 1);
    assert_ptr_equal(weft_lock_owner(&lock), w2);

    /* nobody else waits: the lock becomes free */
    weft_lock_init(&lock);
    assert_int_equal(weft_lock_acquire(&lock), 0);
    weft_task *w = spawn_named(acquire_and_keep, NULL, "alone");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_ptr_equal(weft_lock_owner(&lock), w);
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(join_status(w), -ECANCELED);
    assert_null(weft_lock_owner(&lock));
    assert_int_equal(got_lock, 1);
    assert_int_equal(weft_lock_close(&lock), 0);
    return 0;
}

static void test_granted_then_cancelled_passes_on(void **state)
{
    (void)state;
    run_ok(granted_then_cancelled);
}

/* ------------------------------------------------------------ close */

static weft_lock *heap_lock;
static int acquire_heap_lock(void *arg)
{
    (void)arg;
    return weft_lock_acquire(heap_lock);
}

static int close_busy(void *arg)
{
    (void)arg;
    /* waited on but not held (a waiter timed out/cancelled is not waiting) */
    heap_lock = malloc(sizeof *heap_lock);
    assert_non_null(heap_lock);
    weft_lock_init(heap_lock);
    assert_int_equal(weft_lock_acquire(heap_lock), 0);
    weft_task *w = spawn_named(acquire_heap_lock, NULL, "waiter");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_lock_close(heap_lock), -EBUSY);
    assert_non_null(strstr(weft_errmsg(), "held or waited on"));
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(weft_lock_release(heap_lock), 0);
    assert_int_equal(weft_lock_close(heap_lock), 0);
    memset(heap_lock, 0xA5, sizeof *heap_lock);
    assert_int_equal(join_status(w), -ECANCELED);
    for (size_t i = 0; i < sizeof *heap_lock; i++)
        assert_int_equal(((unsigned char *)heap_lock)[i], 0xA5);
    free(heap_lock);
    heap_lock = NULL;
    return 0;
}

static void test_close(void **state)
{
    (void)state;
    run_ok(close_busy);
}

/* ------------------------------------------------------------ dumps */

static int release_now;
static int named_owner(void *arg)
{
    (void)arg;
    assert_int_equal(weft_lock_acquire(&lock), 0);
    while (!release_now)
        assert_int_equal(weft_sleep_ms(1), 0);
    return weft_lock_release(&lock);
}

/* The line of `name` in `dump`. */
static bool dump_line(const char *dump, const char *name, char *line, size_t n)
{
    for (const char *p = dump; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *s = p;
        while (*s == ' ')
            s++;
        if (strncmp(s, name, strlen(name)) == 0 && s[strlen(name)] == ' ') {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len >= n)
                len = n - 1;
            memcpy(line, p, len);
            line[len] = '\0';
            return true;
        }
    }
    return false;
}

static int dump(void *arg)
{
    (void)arg;
    release_now = 0;
    got_lock = 0;
    weft_lock_init(&lock);
    weft_task *o = spawn_named(named_owner, NULL, "ownername");
    assert_int_equal(weft_yield(), 0);
    weft_task *w = spawn_named(acquire_and_keep, NULL, "lockwaiter");
    assert_int_equal(weft_yield(), 0);
    assert_ptr_equal(weft_lock_owner(&lock), o);

    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    assert_non_null(f);
    weft_dump_tasks(f);
    fclose(f);
    char line[512];
    bool found = dump_line(buf, "lockwaiter", line, sizeof line);
    if (!found || !strstr(line, "held by 'ownername'"))
        print_message("%s", buf);
    assert_true(found);
    assert_non_null(strstr(line, "waiting"));
    assert_non_null(strstr(line, "lock"));
    assert_non_null(strstr(line, "held by 'ownername'"));
    free(buf);

    release_now = 1;
    assert_int_equal(join_status(o), 0);
    assert_int_equal(join_status(w), 0);
    assert_ptr_equal(weft_lock_owner(&lock), w);
    return 0;
}

static void test_dump_shows_owner(void **state)
{
    (void)state;
    run_ok(dump);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outside_task),
        cmocka_unit_test(test_null_object),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_owner_handed_to_first_waiter),
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_mutual_exclusion),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_cancel_waiting),
        cmocka_unit_test(test_granted_then_cancelled_passes_on),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_dump_shows_owner),
    };
    return run_cases(tests, NULL, NULL);
}
