/* SPDX-License-Identifier: MIT */
/* Tasks: spawn, join, cancel, yield, names, shields, weft_run. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "guard_probe.h"
#include <valgrind/valgrind.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }

/* ------------------------------------------------------------ weft_run */

static int main_returns_42(void *arg) { (void)arg; return 42; }

static void test_run_returns_main_status(void **state)
{
    (void)state;
    assert_int_equal(weft_run(main_returns_42, NULL), 42);
    assert_int_equal(weft_run(NULL, NULL), -EINVAL);
    assert_null(weft_current());
}

static int nested_run(void *arg)
{
    (void)arg;
    assert_int_equal(weft_run(main_returns_42, NULL), -EBUSY);
    assert_non_null(strstr(weft_errmsg(), "already runs"));
    return 0;
}

static void test_run_nested_fails(void **state)
{
    (void)state;
    run_checked(nested_run, NULL);
}

/* weft_run waits for every task, joined or not. */
static int detached_counter;
static int detached_child(void *arg)
{
    (void)arg;
    weft_sleep_ms(5);
    detached_counter++;
    return 0;
}
static int spawn_detached(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        weft_detach(weft_spawn(detached_child, NULL, NULL));
    return 0;
}

static void test_run_waits_for_all(void **state)
{
    (void)state;
    detached_counter = 0;
    run_checked(spawn_detached, NULL);
    assert_int_equal(detached_counter, 10);
}

/* ------------------------------------------------------------ spawn/join */

static int spawn_join_many(void *arg)
{
    (void)arg;
    enum { N = 1000 };
    static weft_task *t[N];
    long sum = 0;
    for (int i = 0; i < N; i++) {
        t[i] = weft_spawn(ret_arg, (void *)(intptr_t)i, NULL);
        assert_non_null(t[i]);
    }
    for (int i = 0; i < N; i++) {
        int st = -1;
        assert_int_equal(weft_join(t[i], &st), 0);
        sum += st;
    }
    assert_int_equal(sum, (long)N * (N - 1) / 2);
    return 0;
}

static void test_spawn_join(void **state)
{
    (void)state;
    run_checked(spawn_join_many, NULL);
}

static int failing(void *arg) { (void)arg; return -EIO; }

static int join_failed(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(failing, NULL, NULL);
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0); /* the join succeeds ... */
    assert_int_equal(st, -EIO);             /* ... and reports the failure */
    return 0;
}

static void test_join_failed_task(void **state)
{
    (void)state;
    run_checked(join_failed, NULL);
}

static int join_bad(void *arg)
{
    (void)arg;
    assert_int_equal(weft_join(NULL, NULL), -EINVAL);
    assert_int_equal(weft_join(weft_current(), NULL), -EDEADLK);
    assert_non_null(strstr(weft_errmsg(), "cannot join itself"));
    /* a second joiner of the same task is refused */
    weft_task *t = weft_spawn(detached_child, NULL, NULL);
    weft_task *j = weft_spawn(ret_arg, NULL, NULL);
    (void)j;
    weft_join(j, NULL);
    assert_int_equal(weft_join(t, NULL), 0);
    return 0;
}

static void test_join_errors(void **state)
{
    (void)state;
    run_checked(join_bad, NULL);
}

static void test_spawn_outside_loop(void **state)
{
    (void)state;
    assert_null(weft_spawn(ret_arg, NULL, NULL));
    assert_non_null(strstr(weft_errmsg(), "no weft loop"));
    assert_int_equal(weft_yield(), WEFT_ENOTASK);
    assert_int_equal(weft_sleep_ms(1), WEFT_ENOTASK);
}

static int bad_opts(void *arg)
{
    (void)arg;
    assert_null(weft_spawn(ret_arg, NULL, &(weft_task_opts){.stack_size = 100}));
    assert_non_null(strstr(weft_errmsg(), "stack size"));
    assert_null(weft_spawn_named(NULL, NULL, NULL, "x"));
    return 0;
}

static void test_spawn_bad_options(void **state)
{
    (void)state;
    run_checked(bad_opts, NULL);
}

/* ------------------------------------------------------------ names */

static int check_name(void *arg)
{
    assert_string_equal(weft_task_name(weft_current()), (const char *)arg);
    return 0;
}

static int names(void *arg)
{
    (void)arg;
    assert_string_equal(weft_task_name(weft_current()), "main");
    weft_task *a = weft_spawn(check_name, "check_name", NULL);
    weft_task *b = weft_spawn(check_name, "custom", &(weft_task_opts){.name = "custom"});
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[99] = 0;
    weft_task *c = weft_spawn(ret_arg, NULL, &(weft_task_opts){.name = longname});
    assert_int_equal(strlen(weft_task_name(c)), WEFT_TASK_NAME_MAX - 1);
    int st;
    assert_int_equal(weft_join(a, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_join(b, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_join(c, &st), 0);
    assert_string_equal(weft_task_name(NULL), "");
    return 0;
}

static void test_names(void **state)
{
    (void)state;
    run_checked(names, NULL);
}

/* ------------------------------------------------------------ yield order */

static char trace[64];
static int ntrace;

static int yielder(void *arg)
{
    char c = *(const char *)arg;
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = c;
        assert_int_equal(weft_yield(), 0);
    }
    return 0;
}

static int yield_order(void *arg)
{
    (void)arg;
    ntrace = 0;
    weft_task *a = weft_spawn(yielder, "a", NULL);
    weft_task *b = weft_spawn(yielder, "b", NULL);
    weft_join(a, NULL);
    weft_join(b, NULL);
    trace[ntrace] = 0;
    assert_string_equal(trace, "ababab");
    /* alone: yield returns at once */
    assert_int_equal(weft_yield(), 0);
    return 0;
}

static void test_yield_alternates(void **state)
{
    (void)state;
    run_checked(yield_order, NULL);
}

/* ------------------------------------------------------------ start limit */

static int in_body, max_in_body;

static int enter_yield_leave(void *arg)
{
    (void)arg;
    if (++in_body > max_in_body)
        max_in_body = in_body;
    assert_int_equal(weft_yield(), 0);
    in_body--;
    return 0;
}

/* Spawn 2,000 tasks that each yield once and count how many were inside
 * their bodies at once. */
static int burst(void *arg)
{
    size_t limit = (size_t)(uintptr_t)arg;
    weft_set_start_limit(limit);
    enum { N = 2000 };
    static weft_task *t[N];
    in_body = max_in_body = 0;
    for (int i = 0; i < N; i++)
        assert_non_null(t[i] = weft_spawn(enter_yield_leave, NULL, NULL));
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_join(t[i], NULL), 0);
    weft_set_start_limit(WEFT_START_LIMIT_DEFAULT);
    return 0;
}

/* Below the limit every spawned task starts before a yielder resumes
 * (one FIFO); beyond it, started tasks finish first and the burst holds
 * about `limit` stacks. */
static void test_start_limit_bounds_started_tasks(void **state)
{
    (void)state;
    run_checked(burst, (void *)(uintptr_t)0);
    assert_int_equal(max_in_body, 2000);
    run_checked(burst, (void *)(uintptr_t)4096);
    assert_int_equal(max_in_body, 2000);
    run_checked(burst, (void *)(uintptr_t)16);
    assert_true(max_in_body >= 15);
    assert_true(max_in_body <= 32);
}

/* Beyond the limit a started task spinning on weft_yield cannot keep a new
 * task from starting: the spinner waits for what the new task does. */
static int spin_flag;

static int spin_until_flag(void *arg)
{
    (void)arg;
    while (!spin_flag)
        assert_int_equal(weft_yield(), 0);
    return 0;
}

static int set_flag(void *arg)
{
    (void)arg;
    spin_flag = 1;
    return 0;
}

static int joins_task_in_slot(void *arg) { return weft_join(*(weft_task **)arg, NULL); }

static int start_limit_progress(void *arg)
{
    (void)arg;
    weft_set_start_limit(2); /* main and one more */
    spin_flag = 0;
    weft_task *spinner = weft_spawn(spin_until_flag, NULL, NULL);
    weft_task *setter = weft_spawn(set_flag, NULL, NULL);
    assert_int_equal(weft_join(spinner, NULL), 0);
    assert_int_equal(weft_join(setter, NULL), 0);
    /* a started task waiting for a task not started yet */
    weft_task *slot = NULL;
    weft_task *waiter = weft_spawn(joins_task_in_slot, &slot, NULL);
    slot = weft_spawn(ret_arg, (void *)7, NULL);
    int st = -1;
    assert_int_equal(weft_join(waiter, &st), 0);
    assert_int_equal(st, 0);
    weft_set_start_limit(WEFT_START_LIMIT_DEFAULT);
    return 0;
}

static void test_start_limit_starves_nobody(void **state)
{
    (void)state;
    run_checked(start_limit_progress, NULL);
}

/* A task alone spinning on weft_yield still lets timers fire. */
static int timer_fired;
static void on_timer(weft_timer *t)
{
    (void)t;
    timer_fired = 1;
}

static int spin_on_yield(void *arg)
{
    (void)arg;
    weft_timer tm;
    weft_timer_init(&tm, on_timer, NULL);
    timer_fired = 0;
    assert_int_equal(weft_timer_start(&tm, weft_deadline_ms(2)), 0);
    long spins = 0;
    while (!timer_fired && spins < 100000000L) {
        weft_yield();
        spins++;
    }
    assert_int_equal(timer_fired, 1);
    return 0;
}

static void test_yield_spin_lets_timers_fire(void **state)
{
    (void)state;
    run_checked(spin_on_yield, NULL);
}

/* ------------------------------------------------------------ cancellation */

static int sleeper_forever(void *arg)
{
    (void)arg;
    int rc = weft_sleep_ms(1000000);
    /* level-triggered: every later suspension point fails too */
    assert_int_equal(weft_sleep_ms(1), -ECANCELED);
    assert_int_equal(weft_yield(), -ECANCELED);
    assert_true(weft_cancelled());
    return rc;
}

static int cancel_sleeping(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(sleeper_forever, NULL, NULL);
    weft_sleep_ms(1);
    assert_int_equal(weft_cancel(t), 0);
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(weft_cancel(NULL), -EINVAL);
    return 0;
}

static void test_cancel_sleeping(void **state)
{
    (void)state;
    run_checked(cancel_sleeping, NULL);
}

static int ran_flag;
static int first_suspension(void *arg)
{
    (void)arg;
    ran_flag = 1;
    return weft_yield();
}

static int cancel_before_start(void *arg)
{
    (void)arg;
    ran_flag = 0;
    weft_task *t = weft_spawn(first_suspension, NULL, NULL);
    weft_cancel(t);
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(ran_flag, 1);  /* it ran ... */
    assert_int_equal(st, -ECANCELED); /* ... and its first suspension failed */
    return 0;
}

static void test_cancel_before_start(void **state)
{
    (void)state;
    run_checked(cancel_before_start, NULL);
}

static int joiner_of(void *arg)
{
    return weft_join((weft_task *)arg, NULL);
}

static int cancel_joiner(void *arg)
{
    (void)arg;
    weft_task *slow = weft_spawn(detached_child, NULL, NULL);
    weft_task *j = weft_spawn(joiner_of, slow, NULL);
    weft_yield();
    weft_cancel(j);
    int st = 0;
    assert_int_equal(weft_join(j, &st), 0);
    assert_int_equal(st, -ECANCELED);
    /* the handle survived the failed join */
    assert_int_equal(weft_join(slow, &st), 0);
    assert_int_equal(st, 0);
    return 0;
}

static void test_cancel_in_join(void **state)
{
    (void)state;
    run_checked(cancel_joiner, NULL);
}

static int cancel_finished(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(ret_arg, (void *)7, NULL);
    weft_yield();
    assert_int_equal(weft_cancel(t), 0); /* already done: no-op */
    int st = 0;
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, 7);
    return 0;
}

static void test_cancel_finished(void **state)
{
    (void)state;
    run_checked(cancel_finished, NULL);
}

static int join_timeout(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(sleeper_forever, NULL, NULL);
    assert_int_equal(weft_join_until(t, NULL, weft_deadline_ms(5)), -ETIMEDOUT);
    weft_cancel(t);
    assert_int_equal(weft_join(t, NULL), 0);
    return 0;
}

static void test_join_timeout(void **state)
{
    (void)state;
    run_checked(join_timeout, NULL);
}

/* ------------------------------------------------------------ shields */

static int cleanup_steps;
static int shielded_cleanup(void *arg)
{
    (void)arg;
    int rc = weft_sleep_ms(1000000);
    assert_int_equal(rc, -ECANCELED);
    weft_shield sh;
    weft_shield_begin(&sh, 50);
    assert_false(weft_cancelled());
    assert_int_equal(weft_sleep_ms(2), 0); /* cleanup can still wait */
    cleanup_steps++;
    /* ... but not beyond the shield's own deadline */
    assert_int_equal(weft_sleep_ms(10000), -ETIMEDOUT);
    cleanup_steps++;
    weft_shield_end(&sh);
    assert_true(weft_cancelled());
    return weft_sleep_ms(1);
}

static int shield_main(void *arg)
{
    (void)arg;
    cleanup_steps = 0;
    weft_task *t = weft_spawn(shielded_cleanup, NULL, NULL);
    weft_yield();
    weft_cancel(t);
    int st = 0;
    weft_join(t, &st);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(cleanup_steps, 2);
    return 0;
}

static void test_shield(void **state)
{
    (void)state;
    run_checked(shield_main, NULL);
}

/* cancel arriving while shielded is delivered after the shield */
static int shielded_then_cancelled(void *arg)
{
    (void)arg;
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    assert_int_equal(weft_sleep_ms(5), 0);
    weft_shield_end(&sh);
    return weft_sleep_ms(1000);
}

static int shield_late_cancel(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(shielded_then_cancelled, NULL, NULL);
    weft_yield();
    weft_cancel(t);
    int st = 0;
    weft_join(t, &st);
    assert_int_equal(st, -ECANCELED);
    return 0;
}

static void test_shield_defers_cancel(void **state)
{
    (void)state;
    run_checked(shield_late_cancel, NULL);
}

/* ------------------------------------------------------------ many tasks */

/* ThreadSanitizer counts each task as a fiber and allows 8,128 at once. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#else
#define TSAN_BUILD 0
#endif

static int tiny_sleeper(void *arg)
{
    (void)arg;
    return weft_sleep_ms(20);
}

static int many_sleepers(void *arg)
{
    (void)arg;
    enum { MAX = 100000 };
    static weft_task *t[MAX];
    /* valgrind runs the same test with fewer tasks: it is 50x slower.
     * Without MADV_GUARD_INSTALL (old kernels, qemu-user) every guard splits
     * a mapping and vm.max_map_count allows about 32,000 stacks. */
    int N = RUNNING_ON_VALGRIND || TSAN_BUILD ? 5000 : guard_regions_supported() ? MAX : 20000;
    for (int i = 0; i < N; i++) {
        t[i] = weft_spawn(tiny_sleeper, NULL, &(weft_task_opts){.stack_size = 64 * 1024});
        assert_non_null(t[i]);
    }
    for (int i = 0; i < N; i++) {
        int st = -1;
        assert_int_equal(weft_join(t[i], &st), 0);
        assert_int_equal(st, 0);
    }
    return 0;
}

static void test_100k_sleepers(void **state)
{
    (void)state;
    run_checked(many_sleepers, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_returns_main_status),
        cmocka_unit_test(test_run_nested_fails),
        cmocka_unit_test(test_run_waits_for_all),
        cmocka_unit_test(test_spawn_join),
        cmocka_unit_test(test_join_failed_task),
        cmocka_unit_test(test_join_errors),
        cmocka_unit_test(test_spawn_outside_loop),
        cmocka_unit_test(test_spawn_bad_options),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_yield_alternates),
        cmocka_unit_test(test_yield_spin_lets_timers_fire),
        cmocka_unit_test(test_cancel_sleeping),
        cmocka_unit_test(test_cancel_before_start),
        cmocka_unit_test(test_cancel_in_join),
        cmocka_unit_test(test_cancel_finished),
        cmocka_unit_test(test_join_timeout),
        cmocka_unit_test(test_shield),
        cmocka_unit_test(test_shield_defers_cancel),
        cmocka_unit_test(test_100k_sleepers),
        cmocka_unit_test(test_start_limit_bounds_started_tasks),
        cmocka_unit_test(test_start_limit_starves_nobody),
    };
    return run_cases(tests, NULL, NULL);
}
