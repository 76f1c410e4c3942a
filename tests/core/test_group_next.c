/* SPDX-License-Identifier: MIT */
/*
 * weft_group_next: the next child to finish (as_completed / JoinSet's
 * join_next).  Children finish when the test says so (each waits on its own
 * event), so every order below is deterministic; only the deadline tests
 * use time, and they check lower bounds.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* A child that waits for its `go` event (or sleeps `sleep_ms` when > 0),
 * then returns `ret`, leaving `msg` as its message when set. */
typedef struct kid {
    weft_event go;
    int sleep_ms;
    int ret;
    const char *msg;
    int wait_rc;                /* what its wait returned */
    weft_cancel_cause cause;    /* its cancellation's cause at its end */
    bool ended;
} kid;

static int kid_fn(void *arg)
{
    kid *k = arg;
    k->wait_rc = k->sleep_ms > 0 ? weft_sleep_ms(k->sleep_ms) : weft_event_wait(&k->go);
    k->cause = weft_task_cancel_cause(weft_current());
    k->ended = true;
    if (k->wait_rc < 0)
        return k->wait_rc;
    if (k->msg)
        return weft_seterr(k->ret, "%s", k->msg);
    return k->ret;
}

static void kids_init(kid *k, size_t n)
{
    memset(k, 0, n * sizeof *k);
    for (size_t i = 0; i < n; i++)
        weft_event_init(&k[i].go);
}

static weft_group *spawn_kids(weft_group_policy policy, kid *k, size_t n)
{
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = policy});
    assert_non_null(g);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), (int)i);
    return g;
}

/* The next child, which must be `want` with status `want_status`. */
static void expect_next(weft_group *g, int want, int want_status)
{
    int st = 12345;
    const char *msg = NULL;
    int i = weft_group_next_until(g, &st, &msg, weft_deadline_ms(15000));
    if (i != want)
        fprintf(stderr, "weft_group_next: %d (%s), want %d\n", i, weft_errmsg(), want);
    assert_int_equal(i, want);
    assert_int_equal(st, want_status);
    assert_non_null(msg);
}

static void expect_none(weft_group *g)
{
    int st = 12345;
    assert_int_equal(weft_group_next(g, &st, NULL), -ECHILD);
    assert_int_equal(st, 12345); /* untouched */
    assert_contains(weft_errmsg(), "weft_group_next");
}

/* ------------------------------------------------------------ results as they come */

static int main_as_they_come(void *arg)
{
    (void)arg;
    kid k[3];
    kids_init(k, 3);
    k[0].ret = 10;
    k[1].ret = 11;
    k[2].ret = 12;
    k[2].msg = "kid 2 says hello";
    weft_group *g = spawn_kids(WEFT_GROUP_COLLECT, k, 3);
    assert_int_equal(weft_yield(), 0); /* all three wait now */

    weft_event_set(&k[1].go);
    expect_next(g, 1, 11);
    assert_int_equal(weft_group_running(g), 2);
    /* Two finish in the same iteration: they come in the order they ended. */
    weft_event_set(&k[2].go);
    weft_event_set(&k[0].go);
    int st;
    const char *msg;
    assert_int_equal(weft_group_next(g, &st, &msg), 2);
    assert_int_equal(st, 12);
    assert_string_equal(msg, "kid 2 says hello");
    /* Already finished: no suspension needed, and NULL outputs are fine. */
    assert_int_equal(weft_group_next(g, NULL, NULL), 0);
    expect_none(g);
    expect_none(g); /* each child once */
    assert_int_equal(weft_group_wait(g), 0);
    /* Statuses stay readable. */
    assert_int_equal(weft_group_status(g, 2, &st, &msg), 0);
    assert_int_equal(st, 12);

    /* A child spawned after the end comes next. */
    kid late[1];
    kids_init(late, 1);
    late[0].ret = 5;
    weft_event_set(&late[0].go);
    assert_int_equal(weft_group_spawn(g, kid_fn, &late[0], NULL), 3);
    expect_next(g, 3, 5);
    expect_none(g);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);

    /* An empty group has nothing to give. */
    g = weft_group_new(NULL);
    assert_non_null(g);
    expect_none(g);
    weft_group_free(g);
    return 0;
}

static void test_results_as_they_come(void **state)
{
    (void)state;
    run_task(main_as_they_come);
}

/* ------------------------------------------------------------ both policies */

static int main_policies(void *arg)
{
    (void)arg;
    /* Fail-fast: the failure comes first, then the siblings it cancelled. */
    kid k[3];
    kids_init(k, 3);
    k[1].ret = -EIO;
    k[1].msg = "kid 1 broke";
    weft_group *g = spawn_kids(WEFT_GROUP_FAIL_FAST, k, 3);
    assert_int_equal(weft_yield(), 0);
    weft_event_set(&k[1].go);
    int st;
    const char *msg;
    assert_int_equal(weft_group_next(g, &st, &msg), 1);
    assert_int_equal(st, -EIO);
    assert_string_equal(msg, "kid 1 broke");
    expect_next(g, 0, -ECANCELED);
    expect_next(g, 2, -ECANCELED);
    assert_int_equal(k[0].cause, WEFT_CANCEL_SIBLING_FAILED);
    expect_none(g);
    /* Every child was returned: wait has no failure left to report. */
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);

    /* Collect: wait reports the first failure among the children next did
     * not return. */
    kids_init(k, 3);
    k[0].ret = -EIO;
    k[2].ret = -EPIPE;
    g = spawn_kids(WEFT_GROUP_COLLECT, k, 3);
    assert_int_equal(weft_yield(), 0);
    weft_event_set(&k[0].go);
    expect_next(g, 0, -EIO);
    weft_event_set(&k[1].go);
    weft_event_set(&k[2].go);
    assert_int_equal(weft_group_wait(g), -EPIPE);
    assert_false(k[1].cause); /* collect: nobody was cancelled */
    /* After wait, the children it saw end are still to be returned. */
    expect_next(g, 1, 0);
    expect_next(g, 2, -EPIPE);
    expect_none(g);
    weft_group_free(g);
    return 0;
}

static void test_both_policies(void **state)
{
    (void)state;
    run_task(main_policies);
}

/* ------------------------------------------------------------ race two mirrors */

static int main_race(void *arg)
{
    (void)arg;
    /* Mirror 0 refuses at once, mirror 1 answers when told, mirror 2 would
     * take 10 s. */
    kid k[3];
    kids_init(k, 3);
    k[0].ret = -ECONNREFUSED;
    weft_event_set(&k[0].go);
    k[1].ret = 200;
    k[2].sleep_ms = 10000;
    int64_t t0 = clock_ns();
    weft_group *g = spawn_kids(WEFT_GROUP_COLLECT, k, 3);
    int i, st, winner = -1, failures = 0, cancelled = 0;
    while ((i = weft_group_next(g, &st, NULL)) >= 0) {
        if (st >= 0 && winner < 0) {
            winner = i;
            weft_group_cancel(g); /* the losers come next */
        } else if (st == -ECANCELED) {
            cancelled++;
        } else if (st < 0) {
            failures++;
            weft_event_set(&k[1].go); /* mirror 1 answers once 0 has failed */
        }
    }
    assert_int_equal(i, -ECHILD);
    assert_int_equal(winner, 1);
    assert_int_equal(failures, 1);
    assert_int_equal(cancelled, 1);
    assert_int_equal(k[2].wait_rc, -ECANCELED);
    assert_int_equal(k[2].cause, WEFT_CANCEL_GROUP);
    assert_int_equal(weft_group_wait(g), 0); /* every child was returned */
    weft_group_free(g);
    assert_true(clock_ns() - t0 < 5000 * MS); /* nobody waited for mirror 2 */
    return 0;
}

static void test_race_two_mirrors(void **state)
{
    (void)state;
    run_task(main_race);
}

/* ------------------------------------------------------------ hedged request */

static int main_hedge(void *arg)
{
    (void)arg;
    kid k[2];
    kids_init(k, 2);
    k[0].ret = 1; /* the primary: slow (waits for an event never set) */
    k[1].ret = 2; /* the hedge: quick */
    weft_event_set(&k[1].go);
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[0], NULL), 0);

    /* No answer within 30 ms: the primary keeps running, send a hedge. */
    int64_t t0 = clock_ns();
    int st = 12345;
    assert_int_equal(weft_group_next_until(g, &st, NULL, weft_deadline_ms(30)), -ETIMEDOUT);
    assert_true(clock_ns() - t0 >= 30 * MS - 2 * MS); /* a lower bound (clock granularity) */
    assert_contains(weft_errmsg(), "children still running: 1");
    assert_int_equal(st, 12345);
    assert_int_equal(weft_group_running(g), 1);
    assert_false(k[0].ended);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[1], NULL), 1);

    expect_next(g, 1, 2); /* the hedge answered first */
    weft_group_cancel(g);
    expect_next(g, 0, -ECANCELED);
    expect_none(g);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);
    return 0;
}

static void test_hedged_request(void **state)
{
    (void)state;
    run_task(main_hedge);
}

/* ------------------------------------------------------------ deadlines */

static int main_deadline(void *arg)
{
    (void)arg;
    kid k[2];
    kids_init(k, 2);
    k[1].sleep_ms = 20;
    k[1].ret = 3;
    int64_t t0 = clock_ns();
    weft_group *g = spawn_kids(WEFT_GROUP_COLLECT, k, 2);
    assert_int_equal(weft_yield(), 0);

    /* An expired deadline: -ETIMEDOUT while nothing has finished (a wait
     * would have returned kid 1 after its 20 ms). */
    assert_int_equal(weft_group_next_until(g, NULL, NULL, weft_now() - 1), -ETIMEDOUT);
    assert_int_equal(weft_group_next_until(g, NULL, NULL, 0), -ETIMEDOUT);
    assert_int_equal(weft_group_running(g), 2);

    /* A deadline later than the child's end: the child, once it has ended
     * (a lower bound; weft_now() may lag the clock by up to 2 ms). */
    expect_next(g, 1, 3);
    assert_true(clock_ns() - t0 >= 18 * MS);

    /* An expired deadline still returns a child that has finished. */
    weft_event_set(&k[0].go);
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_yield(), 0);
    assert_true(k[0].ended);
    int st = 12345;
    assert_int_equal(weft_group_next_until(g, &st, NULL, weft_now() - 1), 0);
    assert_int_equal(st, 0);
    expect_none(g);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);

    /* A deadline scope applies too, and leaves the child running. */
    kids_init(k, 1);
    g = spawn_kids(WEFT_GROUP_COLLECT, k, 1);
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(20));
    assert_int_equal(weft_group_next(g, NULL, NULL), -ETIMEDOUT);
    assert_true(weft_scope_exit(&sc));
    assert_false(k[0].ended);
    weft_event_set(&k[0].go);
    expect_next(g, 0, 0);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);
    return 0;
}

static void test_deadline(void **state)
{
    (void)state;
    run_task(main_deadline);
}

/* ------------------------------------------------------------ cancellation of the waiter */

typedef struct next_call {
    weft_group *g;
    int rc, status;
} next_call;

static int next_in_task(void *arg)
{
    next_call *c = arg;
    c->status = 12345;
    c->rc = weft_group_next(c->g, &c->status, NULL);
    return 0;
}

static int main_cancel_waiter(void *arg)
{
    (void)arg;
    kid k[2];
    kids_init(k, 2);
    k[0].ret = 4;
    weft_group *g = spawn_kids(WEFT_GROUP_COLLECT, k, 2);
    next_call c = {.g = g};
    weft_task *w = spawn_named(next_in_task, &c, "next_waiter");
    assert_int_equal(weft_yield(), 0);
    assert_int_equal(weft_yield(), 0); /* the waiter waits in weft_group_next */

    /* Meanwhile the group is busy for others. */
    assert_int_equal(weft_group_next(g, NULL, NULL), -EBUSY);
    assert_contains(weft_errmsg(), "another task waits");
    assert_int_equal(weft_group_wait(g), -EBUSY);

    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(join_status(w), 0);
    assert_int_equal(c.rc, -ECANCELED);
    assert_int_equal(c.status, 12345);
    /* The children were left running, not cancelled. */
    assert_false(k[0].ended);
    assert_int_equal(weft_group_running(g), 2);
    weft_event_set(&k[0].go);
    expect_next(g, 0, 4);
    assert_int_equal(k[0].cause, WEFT_CANCEL_NONE);

    /* A child that finished wins over a cancellation that comes before the
     * woken waiter runs: the waiter gets the child. */
    c = (next_call){.g = g};
    w = spawn_named(next_in_task, &c, "next_waiter");
    assert_int_equal(weft_yield(), 0);
    weft_event_set(&k[1].go);
    assert_int_equal(weft_yield(), 0); /* kid 1 ends: the waiter is woken */
    assert_int_equal(weft_cancel(w), 0);
    assert_int_equal(join_status(w), 0);
    assert_int_equal(c.rc, 1);
    assert_int_equal(c.status, 0);
    expect_none(g);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);
    return 0;
}

/* A cancelled caller: a finished child is still handed over; with none,
 * -ECANCELED at once; its weft_group_wait then cancels the children. */
static int cancelled_caller(void *arg)
{
    kid *k = arg;
    weft_group *g = spawn_kids(WEFT_GROUP_COLLECT, k, 2);
    weft_event_set(&k[0].go);
    assert_int_equal(weft_sleep_ms(1), 0);
    assert_true(k[0].ended);
    weft_cancel(weft_current());
    int st;
    assert_int_equal(weft_group_next(g, &st, NULL), 0);
    assert_int_equal(weft_group_next(g, &st, NULL), -ECANCELED);
    assert_false(k[1].ended);
    assert_int_equal(weft_group_wait(g), -ECANCELED);
    assert_true(k[1].ended);
    assert_int_equal(k[1].cause, WEFT_CANCEL_PARENT);
    expect_next(g, 1, -ECANCELED); /* finished: handed over even now */
    weft_group_free(g);
    return 0;
}

static int main_cancelled_caller(void *arg)
{
    (void)arg;
    kid k[2];
    kids_init(k, 2);
    weft_task *t = spawn_named(cancelled_caller, k, "cancelled_caller");
    assert_int_equal(join_status(t), 0);
    return 0;
}

static void test_cancel_waiter(void **state)
{
    (void)state;
    run_task(main_cancel_waiter);
    run_task(main_cancelled_caller);
}

/* ------------------------------------------------------------ bad input */

static int own_group_child(void *arg)
{
    weft_group **g = arg;
    assert_int_equal(weft_group_next(*g, NULL, NULL), -EDEADLK);
    assert_contains(weft_errmsg(), "its own group");
    return 0;
}

static struct {
    atomic_int state; /* 1: the other loop's group is there; 2: the test is done with it */
    weft_group *g;
} other;

static int other_loop_main(void *arg)
{
    (void)arg;
    other.g = weft_group_new(NULL);
    assert_non_null(other.g);
    atomic_store(&other.state, 1);
    while (atomic_load(&other.state) != 2)
        weft_sleep_ms(1);
    weft_group_free(other.g);
    return 0;
}

static void *other_thread(void *arg)
{
    (void)arg;
    weft_run(other_loop_main, NULL);
    return NULL;
}

static int main_bad_input(void *arg)
{
    (void)arg;
    assert_int_equal(weft_group_next(NULL, NULL, NULL), -EINVAL);
    assert_contains(weft_errmsg(), "NULL group");
    assert_int_equal(weft_group_next_until(NULL, NULL, NULL, WEFT_NO_DEADLINE), -EINVAL);

    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, own_group_child, &g, NULL), 0);
    expect_next(g, 0, 0);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);

    /* A group of another thread's loop. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, NULL), 0);
    while (atomic_load(&other.state) != 1)
        weft_sleep_ms(1);
    assert_int_equal(weft_group_next(other.g, NULL, NULL), -EINVAL);
    assert_contains(weft_errmsg(), "another thread's loop");
    atomic_store(&other.state, 2);
    pthread_join(th, NULL);
    return 0;
}

static void test_bad_input(void **state)
{
    (void)state;
    /* Outside a task. */
    assert_int_equal(weft_group_next(NULL, NULL, NULL), WEFT_ENOTASK);
    assert_contains(weft_errmsg(), "weft_group_next");
    run_task(main_bad_input);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_as_they_come),
        cmocka_unit_test(test_both_policies),
        cmocka_unit_test(test_race_two_mirrors),
        cmocka_unit_test(test_hedged_request),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_cancel_waiter),
        cmocka_unit_test(test_bad_input),
    };
    return run_cases(tests, NULL, NULL);
}
