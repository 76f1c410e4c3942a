/* SPDX-License-Identifier: MIT */
/* Deadline scopes (weft_scope_enter/exit/expired) and weft_wait_for. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

static int other_ran;
static int mark_ran(void *arg)
{
    (void)arg;
    other_ran = 1;
    return 0;
}

/* ------------------------------------------------------------ basic scope */

static int scope_sleep(void *arg)
{
    (void)arg;
    weft_scope sc;
    int64_t t0 = weft_now();
    int64_t dl = weft_deadline_ms(20);
    weft_scope_enter(&sc, dl);
    assert_false(weft_scope_expired(&sc));
    assert_int_equal(weft_sleep_ms(1000), -ETIMEDOUT);
    assert_true(weft_now() >= dl);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_true(weft_scope_expired(&sc));
    /* level-triggered: the next suspension fails too, at once (no other
     * task gets to run) */
    other_ran = 0;
    weft_task *other = weft_spawn(mark_ran, NULL, NULL);
    assert_int_equal(weft_sleep_ms(1), -ETIMEDOUT);
    assert_int_equal(other_ran, 0);
    assert_true(weft_scope_exit(&sc));
    assert_int_equal(weft_join(other, NULL), 0);
    /* outside the scope, sleeping works again */
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_false(weft_cancelled());
    return 0;
}

static void test_scope_bounds_sleep(void **state)
{
    (void)state;
    run_checked(scope_sleep, NULL);
}

static int scope_not_expired(void *arg)
{
    (void)arg;
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(1000));
    assert_int_equal(weft_sleep_ms(2), 0);
    assert_false(weft_scope_expired(&sc));
    assert_false(weft_scope_exit(&sc));
    /* no deadline at all */
    weft_scope_enter(&sc, WEFT_NO_DEADLINE);
    assert_int_equal(weft_sleep_ms(1), 0);
    assert_false(weft_scope_exit(&sc));
    return 0;
}

static void test_scope_not_expired(void **state)
{
    (void)state;
    run_checked(scope_not_expired, NULL);
    /* outside a task: no-ops, but expiry is still computed; nothing was
     * cut short, so the scope did not fire */
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(-1));
    assert_true(weft_scope_expired(&sc));
    assert_false(weft_scope_fired(&sc));
    assert_false(weft_scope_exit(&sc));
    weft_scope_enter(&sc, WEFT_NO_DEADLINE);
    assert_false(weft_scope_exit(&sc));
}

/* ------------------------------------------------------------ nesting */

static int nested_scopes(void *arg)
{
    (void)arg;
    weft_scope outer, inner;

    /* inner later than outer: the outer's deadline wins */
    int64_t t0 = weft_now();
    weft_scope_enter(&outer, weft_deadline_ms(20));
    weft_scope_enter(&inner, weft_deadline_ms(5000));
    assert_int_equal(weft_sleep_ms(2000), -ETIMEDOUT);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_false(weft_scope_expired(&inner));
    assert_true(weft_scope_expired(&outer));
    assert_false(weft_scope_fired(&inner));
    assert_true(weft_scope_fired(&outer));
    assert_false(weft_scope_exit(&inner));
    /* back in the (expired) outer scope: still failing */
    assert_int_equal(weft_sleep_ms(1), -ETIMEDOUT);
    assert_true(weft_scope_exit(&outer));
    assert_int_equal(weft_sleep_ms(1), 0);

    /* inner earlier than outer: the inner one expires, the outer not */
    t0 = weft_now();
    weft_scope_enter(&outer, weft_deadline_ms(5000));
    weft_scope_enter(&inner, weft_deadline_ms(20));
    assert_int_equal(weft_sleep_ms(2000), -ETIMEDOUT);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_true(weft_scope_expired(&inner));
    assert_false(weft_scope_expired(&outer));
    assert_true(weft_scope_fired(&inner));
    assert_false(weft_scope_fired(&outer));
    assert_true(weft_scope_exit(&inner));
    /* the outer deadline applies again, not the inner one */
    assert_int_equal(weft_sleep_ms(2), 0);
    assert_false(weft_scope_exit(&outer));

    /* equal deadlines fire together */
    int64_t dl = weft_deadline_ms(5);
    weft_scope_enter(&outer, dl);
    weft_scope_enter(&inner, dl);
    assert_int_equal(weft_sleep_ms(2000), -ETIMEDOUT);
    assert_true(weft_scope_exit(&inner));
    assert_true(weft_scope_exit(&outer));

    /* a deadline that passes while nothing waits does not fire */
    weft_scope_enter(&inner, weft_deadline_ms(1));
    int64_t end = weft_now() + 3 * MS;
    while (weft_now() < end) {
    }
    assert_true(weft_scope_expired(&inner));
    assert_false(weft_scope_exit(&inner));
    return 0;
}

/* The case: an outer 50 ms scope, an inner 200 ms one; the outer
 * fires, the inner code cleans up for longer than 200 ms under a shield,
 * and then asks which scope fired: not its own, although its deadline has
 * passed by then. */
static int nested_cleanup(void *arg)
{
    (void)arg;
    weft_scope outer, inner;
    weft_scope_enter(&outer, weft_deadline_ms(50));
    weft_scope_enter(&inner, weft_deadline_ms(200));
    assert_int_equal(weft_sleep_ms(5000), -ETIMEDOUT);
    /* long cleanup, shielded; a scope inside the shield fires on its own */
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    weft_scope in_shield;
    weft_scope_enter(&in_shield, weft_deadline_ms(10));
    assert_int_equal(weft_sleep_ms(5000), -ETIMEDOUT);
    assert_true(weft_scope_exit(&in_shield));
    assert_int_equal(weft_sleep_ms(250), 0);
    weft_shield_end(&sh);
    assert_true(weft_scope_expired(&inner)); /* by the clock, yes ... */
    assert_false(weft_scope_fired(&inner));  /* ... but it cut nothing short */
    assert_true(weft_scope_fired(&outer));
    /* still inside both: the next wait fails again, still the outer's */
    assert_int_equal(weft_yield(), -ETIMEDOUT);
    assert_int_equal(weft_sleep_ms(1), -ETIMEDOUT);
    assert_false(weft_scope_exit(&inner));
    assert_true(weft_scope_exit(&outer));
    assert_int_equal(weft_sleep_ms(1), 0);
    return 0;
}

static void test_nested_cleanup(void **state)
{
    (void)state;
    run_checked(nested_cleanup, NULL);
}

static void test_nested_scopes(void **state)
{
    (void)state;
    run_checked(nested_scopes, NULL);
}

/* ------------------------------------------------------------ other waits */

static int sleep_then(void *arg)
{
    int rc = weft_sleep_ms(50);
    return rc < 0 ? rc : (int)(intptr_t)arg;
}

static int scope_join(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(sleep_then, (void *)42, NULL);
    assert_non_null(t);
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(5));
    int st = 7;
    assert_int_equal(weft_join(t, &st), -ETIMEDOUT);
    assert_int_equal(st, 7);
    assert_true(weft_scope_exit(&sc));
    /* the handle is still valid and the child was not disturbed */
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, 42);
    return 0;
}

static void test_scope_bounds_join(void **state)
{
    (void)state;
    run_checked(scope_join, NULL);
}

static int scope_fd(void *arg)
{
    (void)arg;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(5));
    assert_int_equal(weft_wait_fd(p[0], WEFT_READABLE, WEFT_NO_DEADLINE), -ETIMEDOUT);
    char c = 0;
    assert_int_equal(weft_read(p[0], &c, 1, WEFT_NO_DEADLINE), -ETIMEDOUT);
    assert_true(weft_scope_exit(&sc));
    /* nothing consumed, the fd still works */
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(weft_wait_fd(p[0], WEFT_READABLE, weft_deadline_ms(1000)), WEFT_READABLE);
    assert_int_equal(weft_read(p[0], &c, 1, weft_deadline_ms(1000)), 1);
    assert_int_equal(c, 'x');
    assert_int_equal(weft_close(p[0]), 0);
    assert_int_equal(weft_close(p[1]), 0);
    return 0;
}

static void test_scope_bounds_wait_fd(void **state)
{
    (void)state;
    run_checked(scope_fd, NULL);
}

static int scope_sem(void *arg)
{
    (void)arg;
    weft_sem sem;
    assert_int_equal(weft_sem_init(&sem, 0), 0);
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(5));
    assert_int_equal(weft_sem_acquire(&sem), -ETIMEDOUT);
    assert_true(weft_scope_exit(&sc));
    /* the timed-out waiter took nothing, and is not handed a permit */
    assert_int_equal(weft_sem_value(&sem), 0);
    assert_int_equal(weft_sem_release(&sem), 0);
    assert_int_equal(weft_sem_value(&sem), 1);
    assert_int_equal(weft_sem_acquire(&sem), 0);
    assert_int_equal(weft_sem_value(&sem), 0);
    assert_int_equal(weft_sem_close(&sem), 0);
    return 0;
}

static void test_scope_bounds_sem(void **state)
{
    (void)state;
    run_checked(scope_sem, NULL);
}

static int scope_queue(void *arg)
{
    (void)arg;
    weft_queue q;
    assert_int_equal(weft_queue_init(&q, 2), 0);
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(5));
    void *item = (void *)1;
    assert_int_equal(weft_queue_get(&q, &item), -ETIMEDOUT);
    assert_ptr_equal(item, (void *)1);
    assert_true(weft_scope_exit(&sc));
    /* an item put afterwards stays in the queue for the next getter */
    int x;
    assert_int_equal(weft_queue_put(&q, &x), 0);
    assert_int_equal(weft_queue_len(&q), 1);
    assert_int_equal(weft_queue_get(&q, &item), 0);
    assert_ptr_equal(item, &x);
    /* a full queue: put is bounded too, and puts nothing */
    assert_int_equal(weft_queue_put(&q, &x), 0);
    assert_int_equal(weft_queue_put(&q, &x), 0);
    weft_scope_enter(&sc, weft_deadline_ms(5));
    assert_int_equal(weft_queue_put(&q, (void *)2), -ETIMEDOUT);
    assert_true(weft_scope_exit(&sc));
    assert_int_equal(weft_queue_len(&q), 2);
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_scope_bounds_queue(void **state)
{
    (void)state;
    run_checked(scope_queue, NULL);
}

/* A group wait in a scope times out like weft_group_wait_until. */
static weft_cancel_cause slow_cause;
static bool slow_cleaned;

static int slow_child(void *arg)
{
    (void)arg;
    int rc = weft_sleep_ms(1000);
    slow_cause = weft_task_cancel_cause(weft_current());
    slow_cleaned = true;
    return rc;
}

static int scope_group(void *arg)
{
    (void)arg;
    slow_cause = WEFT_CANCEL_NONE;
    slow_cleaned = false;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, slow_child, NULL, NULL), 0);
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(10));
    assert_int_equal(weft_group_wait(g), -ETIMEDOUT);
    assert_int_equal(weft_group_running(g), 0);
    assert_true(slow_cleaned);
    assert_int_equal(slow_cause, WEFT_CANCEL_DEADLINE);
    assert_true(weft_scope_exit(&sc));
    weft_group_free(g);
    return 0;
}

static void test_scope_bounds_group_wait(void **state)
{
    (void)state;
    run_checked(scope_group, NULL);
}

/* weft_map in a scope: the workers are cancelled (cause: deadline). */
static int map_started;
static weft_cancel_cause map_cause;

static int map_slow(void *arg)
{
    (void)arg;
    map_started++;
    int rc = weft_sleep_ms(1000);
    map_cause = weft_task_cancel_cause(weft_current());
    return rc;
}

static int scope_map(void *arg)
{
    (void)arg;
    map_started = 0;
    map_cause = WEFT_CANCEL_NONE;
    void *args[8] = {0};
    int st[8];
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(10));
    int64_t t0 = weft_now();
    assert_int_equal(weft_map(map_slow, args, 8, 2, st), -ETIMEDOUT);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_true(weft_scope_exit(&sc));
    assert_int_equal(map_started, 2);
    assert_int_equal(map_cause, WEFT_CANCEL_DEADLINE);
    for (int i = 0; i < 8; i++)
        assert_int_equal(st[i], -ECANCELED);
    return 0;
}

static void test_scope_bounds_map(void **state)
{
    (void)state;
    run_checked(scope_map, NULL);
}

/* ------------------------------------------------------------ shields */

static int shield_in_expired_scope(void *arg)
{
    (void)arg;
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(5));
    assert_int_equal(weft_sleep_ms(1000), -ETIMEDOUT);
    assert_true(weft_scope_expired(&sc));

    /* a shield without its own deadline: suspension works */
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_yield(), 0);
    weft_shield_end(&sh);
    assert_int_equal(weft_sleep_ms(1), -ETIMEDOUT); /* the scope again */

    /* a shield with its own deadline: that one applies, not the scope's */
    int64_t t0 = weft_now();
    weft_shield_begin(&sh, 100);
    assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(weft_sleep_ms(10000), -ETIMEDOUT);
    assert_true(weft_now() - t0 >= 100 * MS);
    assert_true(weft_now() - t0 < 5000 * MS);
    weft_shield_end(&sh);

    /* a shield's time limit <= 0 has expired at once (the time vocabulary:
     * WEFT_NO_TIMEOUT, not 0, is "none") */
    weft_shield_begin(&sh, 0);
    assert_int_equal(weft_sleep_ms(1), -ETIMEDOUT);
    weft_shield_end(&sh);
    weft_shield_begin(&sh, -5);
    assert_int_equal(weft_yield(), -ETIMEDOUT);
    weft_shield_end(&sh);

    /* a scope entered inside a shield bounds the shield's waits */
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    weft_scope in;
    weft_scope_enter(&in, weft_deadline_ms(5));
    assert_int_equal(weft_sleep_ms(1000), -ETIMEDOUT);
    assert_true(weft_scope_exit(&in));
    assert_int_equal(weft_sleep_ms(1), 0);
    weft_shield_end(&sh);

    assert_true(weft_scope_exit(&sc));
    assert_int_equal(weft_sleep_ms(1), 0);
    return 0;
}

static void test_shield_in_expired_scope(void **state)
{
    (void)state;
    run_checked(shield_in_expired_scope, NULL);
}

/* ------------------------------------------------------------ past deadline */


static int past_deadline(void *arg)
{
    (void)arg;
    other_ran = 0;
    weft_task *t = weft_spawn(mark_ran, NULL, NULL);
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(-1));
    assert_true(weft_scope_expired(&sc));
    assert_int_equal(weft_sleep_ms(1000), -ETIMEDOUT);
    /* at once: the loop did not even run an iteration (no other task ran) */
    assert_int_equal(other_ran, 0);
    assert_int_equal(weft_join(t, NULL), -ETIMEDOUT);
    assert_int_equal(other_ran, 0);
    assert_true(weft_scope_exit(&sc));
    assert_int_equal(weft_join(t, NULL), 0);
    assert_int_equal(other_ran, 1);
    /* an absolute deadline equal to now counts as passed too */
    weft_scope_enter(&sc, weft_now());
    assert_int_equal(weft_sleep_ms(1000), -ETIMEDOUT);
    assert_true(weft_scope_exit(&sc));
    return 0;
}

static void test_scope_already_passed(void **state)
{
    (void)state;
    run_checked(past_deadline, NULL);
}

/* ------------------------------------------------------------ weft_wait_for */

typedef struct wf_child {
    int sleep_ms;        /* work: sleep this long (ignored if until != 0) */
    int64_t until;       /* work: sleep until this absolute time */
    int ret;             /* returned when the work completed */
    int cleanup_ms;      /* after a failed sleep: shielded cleanup */
    /* results */
    int rc;
    weft_cancel_cause cause;
    bool cleaned;
} wf_child;

static int wf_fn(void *arg)
{
    wf_child *c = arg;
    int rc = c->until ? weft_sleep_until(c->until) : weft_sleep_ms(c->sleep_ms);
    c->rc = rc;
    if (rc < 0 && c->cleanup_ms) {
        weft_shield sh;
        weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
        assert_int_equal(weft_sleep_ms(c->cleanup_ms), 0);
        weft_shield_end(&sh);
    }
    c->cause = weft_task_cancel_cause(weft_current());
    c->cleaned = true;
    return rc < 0 ? (c->cleanup_ms ? c->ret : rc) : c->ret;
}

static int wait_for_fast(void *arg)
{
    (void)arg;
    wf_child c = {.sleep_ms = 1, .ret = 42};
    int st = 0;
    assert_int_equal(weft_wait_for(wf_fn, &c, 1000, &st), 0);
    assert_int_equal(st, 42);
    assert_true(c.cleaned);
    assert_int_equal(c.cause, WEFT_CANCEL_NONE);
    /* a failing child: the wait succeeds and reports the failure */
    wf_child f = {.sleep_ms = 0, .ret = -EIO};
    assert_int_equal(weft_wait_for(wf_fn, &f, 1000, &st), 0);
    assert_int_equal(st, -EIO);
    /* status may be NULL */
    wf_child n = {.sleep_ms = 0, .ret = 3};
    assert_int_equal(weft_wait_for(wf_fn, &n, 1000, NULL), 0);
    return 0;
}

static void test_wait_for_fast(void **state)
{
    (void)state;
    run_checked(wait_for_fast, NULL);
}

static int wait_for_slow(void *arg)
{
    (void)arg;
    wf_child c = {.sleep_ms = 1000, .ret = 1};
    int st = 0;
    int64_t t0 = weft_now();
    int64_t dl = weft_deadline_ms(20);
    assert_int_equal(weft_wait_for_until(wf_fn, &c, dl, &st), -ETIMEDOUT);
    assert_true(c.cleaned); /* it finished before wait_for returned */
    assert_int_equal(c.rc, -ECANCELED);
    assert_int_equal(c.cause, WEFT_CANCEL_DEADLINE);
    assert_int_equal(st, -ECANCELED);
    assert_true(weft_now() >= dl);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_non_null(strstr(weft_errmsg(), "weft_wait_for"));
    /* the caller is not cancelled */
    assert_false(weft_cancelled());
    assert_int_equal(weft_sleep_ms(1), 0);

    /* the relative form */
    wf_child d = {.sleep_ms = 1000, .ret = 1};
    assert_int_equal(weft_wait_for(wf_fn, &d, 10, &st), -ETIMEDOUT);
    assert_true(d.cleaned);
    assert_int_equal(d.cause, WEFT_CANCEL_DEADLINE);
    return 0;
}

static void test_wait_for_slow(void **state)
{
    (void)state;
    run_checked(wait_for_slow, NULL);
}

static int wait_for_stubborn(void *arg)
{
    (void)arg;
    /* the child ignores the cancellation for 20 ms of shielded cleanup */
    wf_child c = {.sleep_ms = 1000, .ret = 9, .cleanup_ms = 20};
    int st = 0;
    int64_t dl = weft_deadline_ms(10);
    assert_int_equal(weft_wait_for_until(wf_fn, &c, dl, &st), -ETIMEDOUT);
    assert_true(c.cleaned);
    assert_int_equal(st, 9);
    assert_int_equal(c.cause, WEFT_CANCEL_DEADLINE);
    /* the cleanup started after the deadline and took 20 ms */
    assert_true(weft_now() >= dl + 20 * MS);
    return 0;
}

static void test_wait_for_stubborn_child(void **state)
{
    (void)state;
    run_checked(wait_for_stubborn, NULL);
}

static int wait_for_photo_finish(void *arg)
{
    (void)arg;
    int st = 0;

    /* the work ends just before the deadline */
    int64_t dl = weft_deadline_ms(20);
    wf_child a = {.until = dl - 1 * MS, .ret = 17};
    assert_int_equal(weft_wait_for_until(wf_fn, &a, dl, &st), 0);
    assert_int_equal(st, 17);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.cause, WEFT_CANCEL_NONE);

    /* the work ends exactly at the deadline: the child finishes in the
     * loop iteration in which the deadline passes, so it counts as in
     * time and its result is not lost */
    dl = weft_deadline_ms(20);
    wf_child b = {.until = dl, .ret = 18};
    st = 0;
    int rc = weft_wait_for_until(wf_fn, &b, dl, &st);
    assert_int_equal(b.rc, 0);   /* the child's work completed ... */
    assert_int_equal(st, 18);    /* ... its result is returned ... */
    assert_int_equal(rc, 0);     /* ... and counts as in time */
    assert_int_equal(b.cause, WEFT_CANCEL_NONE);
    return 0;
}

static void test_wait_for_result_not_lost(void **state)
{
    (void)state;
    run_checked(wait_for_photo_finish, NULL);
}

typedef struct wf_caller {
    wf_child child;
    int rc, st;
    bool child_cleaned_at_return;
} wf_caller;

static int wf_caller_fn(void *arg)
{
    wf_caller *w = arg;
    w->rc = weft_wait_for(wf_fn, &w->child, 10000, &w->st);
    w->child_cleaned_at_return = w->child.cleaned;
    return w->rc;
}

static int wait_for_caller_cancelled(void *arg)
{
    (void)arg;
    static wf_caller w;
    memset(&w, 0, sizeof w);
    w.child = (wf_child){.sleep_ms = 5000, .ret = 1, .cleanup_ms = 5};
    weft_task *t = weft_spawn(wf_caller_fn, &w, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_false(w.child.cleaned);
    int64_t t0 = weft_now();
    weft_cancel(t);
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0);
    assert_true(weft_now() - t0 < 4000 * MS);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(w.rc, -ECANCELED);
    assert_true(w.child_cleaned_at_return);
    assert_int_equal(w.child.rc, -ECANCELED);
    assert_int_equal(w.child.cause, WEFT_CANCEL_PARENT);
    assert_int_equal(w.st, 1); /* what the child returned after its cleanup */

    /* a caller cancelled before it calls wait_for: the child still runs,
     * sees the cancellation at once and is waited for */
    memset(&w, 0, sizeof w);
    w.child = (wf_child){.sleep_ms = 5000, .ret = 1};
    t = weft_spawn(wf_caller_fn, &w, NULL);
    weft_cancel(t);
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(w.rc, -ECANCELED);
    assert_true(w.child_cleaned_at_return);
    assert_int_equal(w.child.cause, WEFT_CANCEL_PARENT);
    assert_int_equal(w.st, -ECANCELED);
    return 0;
}

static void test_wait_for_caller_cancelled(void **state)
{
    (void)state;
    run_checked(wait_for_caller_cancelled, NULL);
}

/* A scope around wait_for bounds it like its own timeout. */
static int wait_for_in_scope(void *arg)
{
    (void)arg;
    wf_child c = {.sleep_ms = 1000, .ret = 1};
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(10));
    int st = 0;
    int64_t t0 = weft_now();
    assert_int_equal(weft_wait_for(wf_fn, &c, 10000, &st), -ETIMEDOUT);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_true(c.cleaned);
    assert_int_equal(c.cause, WEFT_CANCEL_DEADLINE);
    assert_true(weft_scope_exit(&sc));
    return 0;
}

static void test_wait_for_in_scope(void **state)
{
    (void)state;
    run_checked(wait_for_in_scope, NULL);
}

static int wait_for_errors(void *arg)
{
    (void)arg;
    int st = 5;
    assert_int_equal(weft_wait_for(NULL, NULL, 10, &st), -EINVAL);
    assert_int_equal(weft_wait_for_until(NULL, NULL, WEFT_NO_DEADLINE, &st), -EINVAL);
    assert_int_equal(st, 5);
    return 0;
}

static void test_wait_for_errors(void **state)
{
    (void)state;
    run_checked(wait_for_errors, NULL);
    wf_child c = {.sleep_ms = 1, .ret = 1};
    int st = 5;
    assert_int_equal(weft_wait_for(wf_fn, &c, 10, &st), WEFT_ENOTASK);
    assert_int_equal(st, 5);
    assert_false(c.cleaned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_bounds_sleep),
        cmocka_unit_test(test_scope_not_expired),
        cmocka_unit_test(test_nested_scopes),
        cmocka_unit_test(test_nested_cleanup),
        cmocka_unit_test(test_scope_bounds_join),
        cmocka_unit_test(test_scope_bounds_wait_fd),
        cmocka_unit_test(test_scope_bounds_sem),
        cmocka_unit_test(test_scope_bounds_queue),
        cmocka_unit_test(test_scope_bounds_group_wait),
        cmocka_unit_test(test_scope_bounds_map),
        cmocka_unit_test(test_shield_in_expired_scope),
        cmocka_unit_test(test_scope_already_passed),
        cmocka_unit_test(test_wait_for_fast),
        cmocka_unit_test(test_wait_for_slow),
        cmocka_unit_test(test_wait_for_stubborn_child),
        cmocka_unit_test(test_wait_for_result_not_lost),
        cmocka_unit_test(test_wait_for_caller_cancelled),
        cmocka_unit_test(test_wait_for_in_scope),
        cmocka_unit_test(test_wait_for_errors),
    };
    return run_cases(tests, NULL, NULL);
}
