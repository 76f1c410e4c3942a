/* SPDX-License-Identifier: MIT */
/* Task groups: collect / fail-fast, group deadlines, cancellation, weft_map. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

/*
 * A configurable child.  It optionally calls a failing weft function first
 * (so its message is set), then suspends once (sleep, or yield), and after
 * a failed suspension optionally does shielded cleanup.  It records what
 * it saw, and bumps `finished` as the very last thing before returning.
 */
typedef struct kid {
    int sleep_ms;        /* > 0: sleep this long; < 0: yield; 0: do not suspend */
    int64_t until;       /* instead of sleep_ms: sleep until this deadline */
    int ret;             /* returned when the suspension succeeded */
    bool bad_fd;         /* call weft_wait_fd(-1, ...) first */
    int cleanup_ms;      /* after a failed suspension: shielded sleep this long */
    weft_group *group;   /* for children that spawn siblings */
    /* results */
    int sleep_rc;
    weft_cancel_cause cause;
    bool cleanup_done;
    bool finished;
} kid;

static int finished;  /* kids finished so far */

static int kid_fn(void *arg)
{
    kid *k = arg;
    if (k->bad_fd)
        assert_int_equal(weft_wait_fd(-1, WEFT_READABLE, WEFT_NO_DEADLINE), -EBADF);
    int rc = 0;
    if (k->until)
        rc = weft_sleep_until(k->until);
    else if (k->sleep_ms > 0)
        rc = weft_sleep_ms(k->sleep_ms);
    else if (k->sleep_ms < 0)
        rc = weft_yield();
    k->sleep_rc = rc;
    if (rc < 0 && k->cleanup_ms > 0) {
        weft_shield sh;
        weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
        assert_false(weft_cancelled());
        assert_int_equal(weft_sleep_ms(k->cleanup_ms), 0);
        k->cleanup_done = true;
        weft_shield_end(&sh);
    }
    k->cause = weft_task_cancel_cause(weft_current());
    k->finished = true;
    finished++;
    return rc < 0 ? rc : k->ret;
}

static void check_status(weft_group *g, size_t i, int want_status, const char *want_msg_part)
{
    int st = 12345;
    const char *msg = NULL;
    assert_int_equal(weft_group_status(g, i, &st, &msg), 0);
    assert_int_equal(st, want_status);
    assert_non_null(msg);
    if (want_msg_part)
        assert_non_null(strstr(msg, want_msg_part));
    else
        assert_string_equal(msg, "");
}

/* ------------------------------------------------------------ collect */

static int collect_mixed(void *arg)
{
    (void)arg;
    finished = 0;
    static kid k[5];
    memset(k, 0, sizeof k);
    k[0] = (kid){.sleep_ms = 5, .ret = 0};
    k[1] = (kid){.sleep_ms = 30, .ret = 7};
    k[2] = (kid){.sleep_ms = 20, .ret = -EIO, .bad_fd = true}; /* fails second */
    k[3] = (kid){.sleep_ms = 10, .ret = -ENOENT};              /* fails first */
    k[4] = (kid){.sleep_ms = 1, .ret = 3};
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), i);
    assert_int_equal(weft_group_size(g), 5);
    assert_int_equal(weft_group_running(g), 5);

    /* Running (not even started) children: -EBUSY; bad index: -EINVAL. */
    int st = 99;
    assert_int_equal(weft_group_status(g, 1, &st, NULL), -EBUSY);
    assert_int_equal(st, 99);
    assert_int_equal(weft_group_status(g, 5, &st, NULL), -EINVAL);
    assert_int_equal(weft_group_status(g, (size_t)-1, &st, NULL), -EINVAL);
    assert_int_equal(weft_group_status(NULL, 0, &st, NULL), -EINVAL);

    /* the first failure in finishing order, not in index order */
    assert_int_equal(weft_group_wait(g), -ENOENT);
    assert_int_equal(finished, 5);
    assert_int_equal(weft_group_running(g), 0);
    for (int i = 0; i < 5; i++) {
        assert_true(k[i].finished);
        assert_int_equal(k[i].cause, WEFT_CANCEL_NONE); /* collect: nobody cancelled */
    }
    check_status(g, 0, 0, NULL);
    check_status(g, 1, 7, NULL);
    check_status(g, 2, -EIO, "weft_wait_fd: fd -1");
    check_status(g, 3, -ENOENT, NULL);
    check_status(g, 4, 3, NULL);
    /* status and message pointers may be NULL */
    assert_int_equal(weft_group_status(g, 2, NULL, NULL), 0);
    /* a finished group accepts more children (collect, not cancelled) */
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[0], NULL), 5);
    assert_int_equal(weft_group_wait(g), -ENOENT); /* the first failure stays */
    weft_group_free(g);
    return 0;
}

static void test_collect_mixed(void **state)
{
    (void)state;
    run_checked(collect_mixed, NULL);
}

static int collect_all_ok(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = WEFT_GROUP_COLLECT});
    assert_non_null(g);
    /* an empty group: wait returns at once */
    assert_int_equal(weft_group_wait(g), 0);
    static kid k[3];
    memset(k, 0, sizeof k);
    for (int i = 0; i < 3; i++) {
        k[i] = (kid){.sleep_ms = i + 1, .ret = i * 10};
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), i);
    }
    assert_int_equal(weft_group_wait(g), 0);
    for (int i = 0; i < 3; i++)
        check_status(g, (size_t)i, i * 10, NULL);
    weft_group_free(g);
    return 0;
}

static void test_collect_all_ok(void **state)
{
    (void)state;
    run_checked(collect_all_ok, NULL);
}

/* ------------------------------------------------------------ fail-fast */

static int fail_fast(void *arg)
{
    (void)arg;
    finished = 0;
    static kid k[5];
    memset(k, 0, sizeof k);
    k[0] = (kid){.sleep_ms = 1, .ret = 5};                 /* succeeds before the failure */
    k[1] = (kid){.sleep_ms = 10, .ret = -EIO};             /* the failure */
    k[2] = (kid){.sleep_ms = 1000, .ret = 1};              /* cancelled */
    k[3] = (kid){.sleep_ms = 1000, .ret = 1, .cleanup_ms = 5}; /* cancelled, slow cleanup */
    k[4] = (kid){.sleep_ms = 2000, .ret = 1};              /* cancelled */
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = WEFT_GROUP_FAIL_FAST});
    assert_non_null(g);
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), i);
    int64_t t0 = weft_now();
    assert_int_equal(weft_group_wait(g), -EIO);
    /* only now that every sibling has finished */
    assert_int_equal(finished, 5);
    assert_int_equal(weft_group_running(g), 0);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_true(k[3].cleanup_done);

    check_status(g, 0, 5, NULL);
    check_status(g, 1, -EIO, NULL);
    for (int i = 2; i < 5; i++) {
        int st = 0;
        assert_int_equal(weft_group_status(g, (size_t)i, &st, NULL), 0);
        assert_int_equal(st, -ECANCELED);
        assert_int_equal(k[i].sleep_rc, -ECANCELED);
        assert_int_equal(k[i].cause, WEFT_CANCEL_SIBLING_FAILED);
    }
    assert_int_equal(k[0].cause, WEFT_CANCEL_NONE);
    assert_int_equal(k[1].cause, WEFT_CANCEL_NONE);

    /* a group that failed fast takes no more children */
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[0], NULL), -ECANCELED);
    assert_non_null(strstr(weft_errmsg(), "fail"));
    assert_int_equal(weft_group_size(g), 5);
    weft_group_free(g);
    return 0;
}

static void test_fail_fast(void **state)
{
    (void)state;
    run_checked(fail_fast, NULL);
}

/* A child spawned but not started yet when a sibling fails fast: it
 * starts, and its first suspension fails. */
static int fail_fast_unstarted(void *arg)
{
    (void)arg;
    finished = 0;
    static kid k[2];
    memset(k, 0, sizeof k);
    k[0] = (kid){.sleep_ms = 0, .ret = -EPIPE}; /* fails without suspending */
    k[1] = (kid){.sleep_ms = 1000, .ret = 1};
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = WEFT_GROUP_FAIL_FAST});
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[0], NULL), 0);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[1], NULL), 1);
    assert_int_equal(weft_group_wait(g), -EPIPE);
    assert_int_equal(finished, 2);
    assert_int_equal(k[1].sleep_rc, -ECANCELED);
    assert_int_equal(k[1].cause, WEFT_CANCEL_SIBLING_FAILED);
    weft_group_free(g);
    return 0;
}

static void test_fail_fast_unstarted_sibling(void **state)
{
    (void)state;
    run_checked(fail_fast_unstarted, NULL);
}

/* ------------------------------------------------------------ no error dropped */

static int simultaneous_failures(void *arg)
{
    weft_group_policy policy = (weft_group_policy)(intptr_t)arg;
    finished = 0;
    static kid k[3];
    memset(k, 0, sizeof k);
    /* One deadline for the three, so they wake in the same loop iteration
     * (10 ms each, counted from each start, would be a few µs apart); far
     * enough that all three sleep before it, even slowed down by TSan (one
     * that started after it would fail at once and cancel the others). */
    int64_t at = weft_deadline_ms(200);
    k[0] = (kid){.until = at, .ret = -EIO};
    k[1] = (kid){.until = at, .ret = -ENOENT};
    k[2] = (kid){.until = at, .ret = -EPERM};
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = policy});
    assert_non_null(g);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), i);
    int rc = weft_group_wait(g);
    assert_true(rc == -EIO || rc == -ENOENT || rc == -EPERM);
    assert_int_equal(finished, 3);
    /* every failure is still readable: none was dropped */
    check_status(g, 0, -EIO, NULL);
    check_status(g, 1, -ENOENT, NULL);
    check_status(g, 2, -EPERM, NULL);
    weft_group_free(g);
    return 0;
}

static void test_no_error_dropped(void **state)
{
    (void)state;
    run_checked(simultaneous_failures, (void *)(intptr_t)WEFT_GROUP_COLLECT);
    run_checked(simultaneous_failures, (void *)(intptr_t)WEFT_GROUP_FAIL_FAST);
}

/* ------------------------------------------------------------ deadlines */

static int group_deadline(void *arg)
{
    (void)arg;
    finished = 0;
    static kid k[4];
    memset(k, 0, sizeof k);
    k[0] = (kid){.sleep_ms = 1000, .ret = 1};
    k[1] = (kid){.sleep_ms = -1, .ret = 4};  /* yields: no deadline involved */
    k[2] = (kid){.sleep_ms = 1000, .ret = 1};
    k[3] = (kid){.sleep_ms = 0, .ret = 0};
    int64_t t0 = weft_now();
    int64_t dl = weft_deadline_ms(200);
    weft_group *g = weft_group_new(&(weft_group_opts){.timeout_ms = 200});
    assert_non_null(g);
    for (int i = 0; i < 4; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), i);
    assert_int_equal(weft_group_wait(g), -ETIMEDOUT);
    assert_true(weft_now() >= dl);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_int_equal(finished, 4);
    check_status(g, 0, -ETIMEDOUT, "weft_sleep: timed out after ");
    check_status(g, 1, 4, NULL);
    check_status(g, 2, -ETIMEDOUT, "weft_sleep: timed out after ");
    check_status(g, 3, 0, NULL);
    /* a deadline is not a cancellation */
    assert_int_equal(k[0].cause, WEFT_CANCEL_NONE);
    /* the waiter itself is not bound by the children's deadline */
    assert_int_equal(weft_sleep_ms(1), 0);
    weft_group_free(g);
    /* a negative time limit has expired already: a child that waits fails */
    g = weft_group_new(&(weft_group_opts){.timeout_ms = -1});
    assert_non_null(g);
    k[0] = (kid){.sleep_ms = 1000, .ret = 1};
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[0], NULL), 0);
    assert_int_equal(weft_group_wait(g), -ETIMEDOUT);
    weft_group_free(g);
    return 0;
}

static void test_group_deadline(void **state)
{
    (void)state;
    run_checked(group_deadline, NULL);
}

static int wait_until_deadline(void *arg)
{
    (void)arg;
    finished = 0;
    static kid k[4];
    memset(k, 0, sizeof k);
    k[0] = (kid){.sleep_ms = 1000, .ret = 1};
    k[1] = (kid){.sleep_ms = 1000, .ret = 1, .cleanup_ms = 5};
    k[2] = (kid){.sleep_ms = 2, .ret = 2};     /* finishes in time */
    k[3] = (kid){.sleep_ms = 5000, .ret = 1};
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    for (int i = 0; i < 4; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), i);
    int64_t t0 = weft_now();
    /* 200 ms: k[2]'s 2 ms sleep ends well before, even under TSan */
    int64_t dl = weft_deadline_ms(200);
    assert_int_equal(weft_group_wait_until(g, dl), -ETIMEDOUT);
    assert_int_equal(weft_group_running(g), 0);
    assert_int_equal(finished, 4);
    assert_true(weft_now() >= dl);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_true(k[1].cleanup_done);
    for (int i = 0; i < 4; i++) {
        if (i == 2)
            continue;
        assert_int_equal(k[i].sleep_rc, -ECANCELED);
        assert_int_equal(k[i].cause, WEFT_CANCEL_DEADLINE);
        check_status(g, (size_t)i, -ECANCELED, "weft_sleep");
    }
    check_status(g, 2, 2, NULL);
    assert_int_equal(k[2].cause, WEFT_CANCEL_NONE);
    /* the waiter is not cancelled itself */
    assert_false(weft_cancelled());
    assert_int_equal(weft_sleep_ms(1), 0);
    weft_group_free(g);
    return 0;
}

static void test_wait_until_deadline(void **state)
{
    (void)state;
    run_checked(wait_until_deadline, NULL);
}

/* ------------------------------------------------------------ cancellation */

typedef struct waiter_result {
    int rc;
    size_t running_at_return;
    int finished_at_return;
} waiter_result;

static kid cancel_kids[3];

static int group_waiter(void *arg)
{
    waiter_result *r = arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    memset(cancel_kids, 0, sizeof cancel_kids);
    cancel_kids[0] = (kid){.sleep_ms = 1000, .ret = 1};
    cancel_kids[1] = (kid){.sleep_ms = 1000, .ret = 1, .cleanup_ms = 5};
    cancel_kids[2] = (kid){.sleep_ms = 3000, .ret = 1};
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &cancel_kids[i], NULL), i);
    r->rc = weft_group_wait(g);
    r->running_at_return = weft_group_running(g);
    r->finished_at_return = finished;
    for (int i = 0; i < 3; i++)
        check_status(g, (size_t)i, -ECANCELED, "weft_sleep");
    weft_group_free(g);
    /* still cancelled: level-triggered */
    assert_true(weft_cancelled());
    return r->rc;
}

static int cancel_group_waiter(void *arg)
{
    (void)arg;
    finished = 0;
    waiter_result r = {.rc = 1};
    weft_task *w = weft_spawn(group_waiter, &r, NULL);
    assert_non_null(w);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(finished, 0);
    assert_int_equal(weft_cancel(w), 0);
    int st = 0;
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(r.rc, -ECANCELED);
    assert_int_equal(r.running_at_return, 0);
    assert_int_equal(r.finished_at_return, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cancel_kids[i].sleep_rc, -ECANCELED);
        assert_int_equal(cancel_kids[i].cause, WEFT_CANCEL_PARENT);
    }
    assert_true(cancel_kids[1].cleanup_done);
    return 0;
}

static void test_cancel_waiter(void **state)
{
    (void)state;
    run_checked(cancel_group_waiter, NULL);
}

static int group_cancel(void *arg)
{
    (void)arg;
    finished = 0;
    static kid k[3];
    memset(k, 0, sizeof k);
    k[0] = (kid){.sleep_ms = 0, .ret = 8}; /* finishes before the cancel */
    k[1] = (kid){.sleep_ms = 1000, .ret = 1};
    k[2] = (kid){.sleep_ms = 1000, .ret = 1};
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &k[i], NULL), i);
    assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(finished, 1);
    weft_group_cancel(g); /* does not suspend */
    assert_int_equal(finished, 1);
    assert_int_equal(weft_group_running(g), 2);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[0], NULL), -ECANCELED);
    assert_non_null(strstr(weft_errmsg(), "cancelled"));
    assert_int_equal(weft_group_size(g), 3);
    assert_int_equal(weft_group_wait(g), -ECANCELED);
    assert_int_equal(finished, 3);
    check_status(g, 0, 8, NULL);
    check_status(g, 1, -ECANCELED, "weft_sleep");
    check_status(g, 2, -ECANCELED, "weft_sleep");
    assert_int_equal(k[0].cause, WEFT_CANCEL_NONE);
    assert_int_equal(k[1].cause, WEFT_CANCEL_GROUP);
    assert_int_equal(k[2].cause, WEFT_CANCEL_GROUP);
    weft_group_cancel(g); /* again: harmless */
    weft_group_cancel(NULL);
    weft_group_free(g);
    return 0;
}

static void test_group_cancel(void **state)
{
    (void)state;
    run_checked(group_cancel, NULL);
}

/* ------------------------------------------------------------ nested groups */

static kid grand[2];
static int inner_rc;
static size_t inner_running_at_return;

/* A child that runs a group of its own and waits for it. */
static int inner_parent(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    for (int i = 0; i < 2; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &grand[i], NULL), i);
    inner_rc = weft_group_wait(g);
    inner_running_at_return = weft_group_running(g);
    weft_group_free(g);
    return inner_rc;
}

static int nested_groups(void *arg)
{
    (void)arg;
    finished = 0;
    inner_rc = 1;
    inner_running_at_return = 99;
    memset(grand, 0, sizeof grand);
    grand[0] = (kid){.sleep_ms = 1000, .ret = 1};
    grand[1] = (kid){.sleep_ms = 1000, .ret = 1, .cleanup_ms = 5};
    static kid failer;
    memset(&failer, 0, sizeof failer);
    failer = (kid){.sleep_ms = 5, .ret = -EIO};
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = WEFT_GROUP_FAIL_FAST});
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, inner_parent, NULL, NULL), 0);
    assert_int_equal(weft_group_spawn(g, kid_fn, &failer, NULL), 1);
    assert_int_equal(weft_group_wait(g), -EIO);
    /* the cancellation reached the grandchildren, and all of them ended
     * before the outer wait returned */
    assert_int_equal(finished, 3);
    assert_int_equal(inner_rc, -ECANCELED);
    assert_int_equal(inner_running_at_return, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(grand[i].sleep_rc, -ECANCELED);
        assert_int_equal(grand[i].cause, WEFT_CANCEL_PARENT);
    }
    assert_true(grand[1].cleanup_done);
    check_status(g, 0, -ECANCELED, "weft_group_wait");
    weft_group_free(g);
    return 0;
}

static void test_nested_groups(void **state)
{
    (void)state;
    run_checked(nested_groups, NULL);
}

/* ------------------------------------------------------------ spawn during wait */

static kid chain[8];

/* Sleeps a little, then spawns the next link into the same group. */
static int chain_link(void *arg)
{
    kid *k = arg;
    int rc = weft_sleep_ms(2);
    if (rc < 0)
        return rc;
    size_t i = (size_t)(k - chain);
    if (i + 1 < sizeof chain / sizeof chain[0]) {
        chain[i + 1].group = k->group;
        int idx = weft_group_spawn(k->group, chain_link, &chain[i + 1], NULL);
        assert_true(idx > 0);
    }
    k->finished = true;
    finished++;
    return (int)i;
}

static int spawn_during_wait(void *arg)
{
    (void)arg;
    finished = 0;
    memset(chain, 0, sizeof chain);
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    chain[0].group = g;
    assert_int_equal(weft_group_spawn(g, chain_link, &chain[0], NULL), 0);
    assert_int_equal(weft_group_wait(g), 0);
    assert_int_equal(finished, 8);
    assert_int_equal(weft_group_size(g), 8);
    assert_int_equal(weft_group_running(g), 0);
    for (size_t i = 0; i < 8; i++)
        check_status(g, i, (int)i, NULL);
    weft_group_free(g);
    return 0;
}

static void test_spawn_during_wait(void **state)
{
    (void)state;
    run_checked(spawn_during_wait, NULL);
}

/* ------------------------------------------------------------ shielded cleanup */

static int shielded_cleanup(void *arg)
{
    (void)arg;
    finished = 0;
    static kid k[2];
    memset(k, 0, sizeof k);
    k[0] = (kid){.sleep_ms = 3, .ret = -EIO};
    k[1] = (kid){.sleep_ms = 1000, .ret = 1, .cleanup_ms = 5};
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = WEFT_GROUP_FAIL_FAST});
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[0], NULL), 0);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k[1], NULL), 1);
    assert_int_equal(weft_group_wait(g), -EIO);
    assert_true(k[1].cleanup_done); /* right after wait: cleanup completed */
    assert_int_equal(finished, 2);
    assert_int_equal(k[1].cause, WEFT_CANCEL_SIBLING_FAILED);
    check_status(g, 1, -ECANCELED, "weft_sleep");
    weft_group_free(g);
    return 0;
}

static void test_shielded_cleanup(void **state)
{
    (void)state;
    run_checked(shielded_cleanup, NULL);
}

/* ------------------------------------------------------------ free without wait */

static kid freed_kids[4];

static int free_running(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_group_spawn(g, kid_fn, &freed_kids[i], NULL), i);
    assert_int_equal(weft_yield(), 0); /* kids 0..2 start (kid 3 goes to g2 below) */
    assert_int_equal(finished, 1);     /* kid 0 does not suspend */
    weft_group_free(g);                /* no wait: cancelled and detached */
    weft_group_free(NULL);
    /* a group freed before its (only) child ever ran */
    weft_group *g2 = weft_group_new(NULL);
    assert_non_null(g2);
    assert_int_equal(weft_group_spawn(g2, kid_fn, &freed_kids[3], NULL), 0);
    weft_group_free(g2);
    return 0;
}

static void test_free_with_running_children(void **state)
{
    (void)state;
    finished = 0;
    memset(freed_kids, 0, sizeof freed_kids);
    freed_kids[0] = (kid){.sleep_ms = 0, .ret = 0};
    freed_kids[1] = (kid){.sleep_ms = 1000, .ret = 1};
    freed_kids[2] = (kid){.sleep_ms = 1000, .ret = 1, .cleanup_ms = 5};
    freed_kids[3] = (kid){.sleep_ms = 1000, .ret = 1};
    run_checked(free_running, NULL);
    /* weft_run waited for the detached children */
    assert_int_equal(finished, 4);
    for (int i = 1; i < 4; i++) {
        assert_true(freed_kids[i].finished);
        assert_int_equal(freed_kids[i].sleep_rc, -ECANCELED);
        assert_int_equal(freed_kids[i].cause, WEFT_CANCEL_GROUP);
    }
    assert_true(freed_kids[2].cleanup_done);
}

/* ------------------------------------------------------------ many children */

/* ThreadSanitizer allows 8,128 fibers (tasks) at once. */
#if defined(__SANITIZE_THREAD__)
enum { MANY = 4000 };
#else
enum { MANY = 10000 };
#endif

static int many_child(void *arg)
{
    int i = (int)(intptr_t)arg;
    int rc = i % 2 ? weft_yield() : weft_sleep_ms(1);
    return rc < 0 ? rc : i;
}

static int many_children(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    weft_task_opts o = {.stack_size = 64 * 1024};
    for (int i = 0; i < MANY; i++)
        assert_int_equal(weft_group_spawn(g, many_child, (void *)(intptr_t)i, &o), i);
    assert_int_equal(weft_group_running(g), MANY);
    assert_int_equal(weft_group_wait(g), 0);
    assert_int_equal(weft_group_size(g), MANY);
    assert_int_equal(weft_group_running(g), 0);
    for (int i = 0; i < MANY; i++) {
        int st = -1;
        const char *msg = NULL;
        assert_int_equal(weft_group_status(g, (size_t)i, &st, &msg), 0);
        assert_int_equal(st, i);
        assert_string_equal(msg, "");
    }
    weft_group_free(g);
    return 0;
}

static void test_10k_children(void **state)
{
    (void)state;
    run_checked(many_children, NULL);
}

/* ------------------------------------------------------------ argument errors */

static int group_errors(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    assert_int_equal(weft_group_spawn_named(g, NULL, NULL, NULL, "x"), -EINVAL);
    assert_int_equal(weft_group_spawn_named(NULL, kid_fn, NULL, NULL, "x"), -EINVAL);
    /* a bad option is the caller's error, not an out-of-memory */
    static kid k;
    memset(&k, 0, sizeof k);
    assert_int_equal(weft_group_spawn(g, kid_fn, &k, &(weft_task_opts){.stack_size = 100}),
                     -EINVAL);
    assert_int_equal(weft_group_size(g), 0);
    assert_int_equal(weft_group_wait(NULL), -EINVAL);
    assert_int_equal(weft_group_size(NULL), 0);
    assert_int_equal(weft_group_running(NULL), 0);
    /* names: the function's, or opts->name */
    assert_int_equal(weft_group_spawn(g, kid_fn, &k, &(weft_task_opts){.name = "named"}), 0);
    assert_int_equal(weft_group_wait(g), 0);
    weft_group_free(g);
    return 0;
}

static void test_group_errors(void **state)
{
    (void)state;
    run_checked(group_errors, NULL);
    /* outside a loop / a task */
    assert_null(weft_group_new(NULL));
    assert_non_null(strstr(weft_errmsg(), "no weft loop"));
}

/* A group belongs to its loop: spawning into it from another thread is
 * refused (it would start the child on the wrong loop, or on none). */
typedef struct foreign_spawn {
    weft_group *g;
    int rc;
} foreign_spawn;

static void *spawn_from_thread(void *arg)
{
    foreign_spawn *f = arg;
    static kid k;
    f->rc = weft_group_spawn(f->g, kid_fn, &k, NULL);
    return NULL;
}

static int foreign_thread(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    foreign_spawn f = {.g = g, .rc = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, spawn_from_thread, &f), 0);
    assert_int_equal(pthread_join(th, NULL), 0); /* brief: blocks the loop */
    assert_int_equal(f.rc, -EINVAL);
    assert_int_equal(weft_group_size(g), 0);
    weft_group_free(g);
    return 0;
}

static void test_spawn_from_other_thread(void **state)
{
    (void)state;
    run_checked(foreign_thread, NULL);
}

/* A second task waiting on the same group is refused. */
static int second_waiter(void *arg)
{
    return weft_group_wait((weft_group *)arg);
}

static int two_waiters(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    static kid k;
    memset(&k, 0, sizeof k);
    k = (kid){.sleep_ms = 20, .ret = 0};
    assert_int_equal(weft_group_spawn(g, kid_fn, &k, NULL), 0);
    weft_task *w = weft_spawn(second_waiter, g, NULL);
    assert_int_equal(weft_sleep_ms(1), 0); /* w now waits */
    assert_int_equal(weft_group_wait(g), -EBUSY);
    int st = 1;
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, 0);
    weft_group_free(g);
    return 0;
}

static void test_two_waiters(void **state)
{
    (void)state;
    run_checked(two_waiters, NULL);
}

/* A child waiting for its own group would wait for itself forever (and,
 * once cancelled, shielded): refused. */
static int own_group_waiter(void *arg)
{
    return weft_group_wait((weft_group *)arg);
}

static int wait_own_group(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    assert_int_equal(weft_group_spawn(g, own_group_waiter, g, NULL), 0);
    assert_int_equal(weft_yield(), 0); /* the child calls wait first */
    assert_int_equal(weft_group_wait_until(g, weft_deadline_ms(2000)), -EDEADLK);
    check_status(g, 0, -EDEADLK, "own group");
    weft_group_free(g);
    return 0;
}

static void test_wait_own_group(void **state)
{
    (void)state;
    run_checked(wait_own_group, NULL);
}

/* ------------------------------------------------------------ weft_map */

static int in_flight, max_in_flight, map_calls;

static void map_reset(void)
{
    in_flight = max_in_flight = map_calls = 0;
}

/* arg: intptr_t i; sleeps 1 ms and returns i, with a few failures. */
static int map_item(void *arg)
{
    int i = (int)(intptr_t)arg;
    in_flight++;
    map_calls++;
    if (in_flight > max_in_flight)
        max_in_flight = in_flight;
    int rc = weft_sleep_ms(1);
    in_flight--;
    return rc < 0 ? rc : i;
}

static int map_limit(void *arg)
{
    (void)arg;
    enum { N = 1000 };
    static void *args[N];
    static int st[N];
    for (int i = 0; i < N; i++)
        args[i] = (void *)(intptr_t)i;
    map_reset();
    assert_int_equal(weft_map(map_item, args, N, 10, st), 0);
    assert_int_equal(map_calls, N);
    assert_int_equal(max_in_flight, 10);
    assert_int_equal(in_flight, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(st[i], i);

    /* limit 0 means 10 */
    map_reset();
    assert_int_equal(weft_map(map_item, args, 100, 0, st), 0);
    assert_int_equal(map_calls, 100);
    assert_int_equal(max_in_flight, 10);

    /* limit above n: n in flight */
    map_reset();
    assert_int_equal(weft_map(map_item, args, 3, 50, st), 0);
    assert_int_equal(max_in_flight, 3);

    /* limit 1: one at a time, in order */
    map_reset();
    assert_int_equal(weft_map(map_item, args, 20, 1, NULL), 0);
    assert_int_equal(max_in_flight, 1);
    assert_int_equal(map_calls, 20);

    /* n = 0: nothing to do (args may be NULL) */
    map_reset();
    assert_int_equal(weft_map(map_item, NULL, 0, 4, NULL), 0);
    assert_int_equal(map_calls, 0);

    /* bad arguments */
    assert_int_equal(weft_map(NULL, args, 4, 2, st), -EINVAL);
    assert_int_equal(weft_map(map_item, NULL, 4, 2, st), -EINVAL);
    assert_int_equal(map_calls, 0);
    return 0;
}

static void test_map_limit(void **state)
{
    (void)state;
    run_checked(map_limit, NULL);
    assert_int_equal(weft_map(map_item, NULL, 0, 1, NULL), WEFT_ENOTASK);
}

/* Items: {sleep ms, status}. */
typedef struct map_spec {
    int sleep_ms;
    int ret;
} map_spec;

static int map_spec_fn(void *arg)
{
    const map_spec *s = arg;
    int rc = s->sleep_ms ? weft_sleep_ms(s->sleep_ms) : 0;
    return rc < 0 ? rc : s->ret;
}

static int map_statuses(void *arg)
{
    (void)arg;
    enum { N = 20 };
    static map_spec spec[N];
    static void *args[N];
    int st[N];
    for (int i = 0; i < N; i++) {
        spec[i] = (map_spec){.sleep_ms = i % 3, .ret = i};
        args[i] = &spec[i];
    }
    /* item 3 fails last in time, item 13 fails first: the lowest index wins */
    spec[3] = (map_spec){.sleep_ms = 30, .ret = -EPERM};
    spec[7] = (map_spec){.sleep_ms = 2, .ret = -ENOENT};
    spec[13] = (map_spec){.sleep_ms = 0, .ret = -EIO};
    assert_int_equal(weft_map(map_spec_fn, args, N, 4, st), -EPERM);
    for (int i = 0; i < N; i++)
        assert_int_equal(st[i], spec[i].ret); /* every call ran (collect) */

    /* without a statuses array */
    assert_int_equal(weft_map(map_spec_fn, args, N, 4, NULL), -EPERM);
    /* positive counts are successes */
    assert_int_equal(weft_map(map_spec_fn, args + 14, 6, 2, st), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(st[i], 14 + i);
    return 0;
}

static void test_map_statuses(void **state)
{
    (void)state;
    run_checked(map_statuses, NULL);
}

static int map_started;
static weft_cancel_cause map_item_cause;

/* Distinguishes a started-then-cancelled call (-EINTR) from one that
 * never started (-ECANCELED, set by weft_map). */
static int map_slow_item(void *arg)
{
    (void)arg;
    map_started++;
    int rc = weft_sleep_ms(1000);
    map_item_cause = weft_task_cancel_cause(weft_current());
    return rc == -ECANCELED ? -EINTR : rc;
}

typedef struct map_caller_result {
    int rc;
    int st[100];
} map_caller_result;

static int map_caller(void *arg)
{
    map_caller_result *r = arg;
    static void *args[100];
    for (int i = 0; i < 100; i++)
        r->st[i] = 12345;
    r->rc = weft_map(map_slow_item, args, 100, 5, r->st);
    return r->rc;
}

static int map_cancelled(void *arg)
{
    (void)arg;
    map_started = 0;
    map_item_cause = WEFT_CANCEL_NONE;
    static map_caller_result r;
    weft_task *t = weft_spawn(map_caller, &r, NULL);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(map_started, 5);
    int64_t t0 = weft_now();
    weft_cancel(t);
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0);
    assert_true(weft_now() - t0 < 900 * MS);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(r.rc, -ECANCELED);
    assert_int_equal(map_started, 5);
    assert_int_equal(map_item_cause, WEFT_CANCEL_PARENT);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r.st[i], -EINTR);      /* started, then cancelled */
    for (int i = 5; i < 100; i++)
        assert_int_equal(r.st[i], -ECANCELED);  /* never started */
    return 0;
}

static void test_map_cancelled(void **state)
{
    (void)state;
    run_checked(map_cancelled, NULL);
}

/* ------------------------------------------------------------ dumps */

static weft_event victim_in_cleanup;
static weft_event dump_done;
static char *dump_text;

static int victim(void *arg)
{
    (void)arg;
    int rc = weft_sleep_ms(1000);
    assert_int_equal(rc, -ECANCELED);
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    weft_event_set(&victim_in_cleanup);
    /* still running (cleaning up) while the observer dumps */
    assert_int_equal(weft_event_wait(&dump_done), 0);
    weft_shield_end(&sh);
    return rc;
}

static int observer(void *arg)
{
    (void)arg;
    assert_int_equal(weft_event_wait(&victim_in_cleanup), 0);
    size_t size = 0;
    FILE *f = open_memstream(&dump_text, &size);
    assert_non_null(f);
    weft_dump_tasks(f);
    fclose(f);
    weft_event_set(&dump_done);
    return 0;
}

static int dump_cancelled_child(void *arg)
{
    (void)arg;
    weft_event_init(&victim_in_cleanup);
    weft_event_init(&dump_done);
    dump_text = NULL;
    weft_task *obs = weft_spawn(observer, NULL, NULL);
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = WEFT_GROUP_FAIL_FAST});
    assert_non_null(g);
    static kid failer;
    memset(&failer, 0, sizeof failer);
    failer = (kid){.sleep_ms = 2, .ret = -EIO};
    assert_int_equal(weft_group_spawn(g, victim, NULL, &(weft_task_opts){.name = "victim"}), 0);
    assert_int_equal(weft_group_spawn(g, kid_fn, &failer, NULL), 1);
    assert_int_equal(weft_group_wait(g), -EIO);
    assert_int_equal(weft_join(obs, NULL), 0);
    weft_group_free(g);

    assert_non_null(dump_text);
    const char *line = strstr(dump_text, "victim");
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    assert_non_null(eol);
    char buf[512];
    size_t n = (size_t)(eol - line);
    assert_true(n < sizeof buf);
    memcpy(buf, line, n);
    buf[n] = '\0';
    char want[64];
    snprintf(want, sizeof want, "cancelled: %s",
             weft_cancel_cause_name(WEFT_CANCEL_SIBLING_FAILED));
    assert_string_equal(weft_cancel_cause_name(WEFT_CANCEL_SIBLING_FAILED), "sibling failed");
    assert_non_null(strstr(buf, want));
    /* the group waiter shows its wait, and the main task is not cancelled */
    const char *mainline = strstr(dump_text, "main");
    assert_non_null(mainline);
    const char *mainend = strchr(mainline, '\n');
    assert_non_null(mainend);
    assert_null(memmem(mainline, (size_t)(mainend - mainline), "cancelled", 9));
    free(dump_text);
    dump_text = NULL;
    assert_int_equal(weft_event_close(&victim_in_cleanup), 0);
    assert_int_equal(weft_event_close(&dump_done), 0);
    return 0;
}

static void test_dump_shows_cause(void **state)
{
    (void)state;
    run_checked(dump_cancelled_child, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect_mixed),
        cmocka_unit_test(test_collect_all_ok),
        cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_fail_fast_unstarted_sibling),
        cmocka_unit_test(test_no_error_dropped),
        cmocka_unit_test(test_group_deadline),
        cmocka_unit_test(test_wait_until_deadline),
        cmocka_unit_test(test_cancel_waiter),
        cmocka_unit_test(test_group_cancel),
        cmocka_unit_test(test_nested_groups),
        cmocka_unit_test(test_spawn_during_wait),
        cmocka_unit_test(test_shielded_cleanup),
        cmocka_unit_test(test_free_with_running_children),
        cmocka_unit_test(test_10k_children),
        cmocka_unit_test(test_group_errors),
        cmocka_unit_test(test_spawn_from_other_thread),
        cmocka_unit_test(test_two_waiters),
        cmocka_unit_test(test_wait_own_group),
        cmocka_unit_test(test_map_limit),
        cmocka_unit_test(test_map_statuses),
        cmocka_unit_test(test_map_cancelled),
        cmocka_unit_test(test_dump_shows_cause),
    };
    return run_cases(tests, NULL, NULL);
}
