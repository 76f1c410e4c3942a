/* SPDX-License-Identifier: MIT */
/* Signals: weft_signal_wait, pending signals, waiter order, errors, the thread mask. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

static int blocked(int sig)
{
    sigset_t cur;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, sig) == 1;
}

static sigset_t set_of(int a, int b)
{
    sigset_t s;
    sigemptyset(&s);
    if (a)
        sigaddset(&s, a);
    if (b)
        sigaddset(&s, b);
    return s;
}

/* Block `sig` in the loop (a wait that times out at once routes it). */
static void route(int sig)
{
    sigset_t s = set_of(sig, 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(-1)), -ETIMEDOUT);
    assert_true(blocked(sig));
}

static int waiter(void *arg)
{
    int sig = (int)(intptr_t)arg;
    sigset_t s = set_of(sig, 0);
    return weft_signal_wait(&s, weft_deadline_ms(5000));
}

static int raiser(void *arg)
{
    int sig = (int)(intptr_t)arg;
    if (weft_sleep_ms(2) != 0)
        return -1;
    return raise(sig);
}

static int killer(void *arg)
{
    int sig = (int)(intptr_t)arg;
    if (weft_sleep_ms(2) != 0)
        return -1;
    return kill(getpid(), sig);
}

/* ------------------------------------------------------------ delivery */

static int from_task(void *arg)
{
    (void)arg;
    int st = 0;
    weft_task *w = weft_spawn(waiter, (void *)(intptr_t)SIGUSR1, NULL);
    weft_task *r = weft_spawn(raiser, (void *)(intptr_t)SIGUSR1, NULL);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, SIGUSR1);
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, 0);

    /* process-directed, with kill */
    w = weft_spawn(waiter, (void *)(intptr_t)SIGUSR2, NULL);
    r = weft_spawn(killer, (void *)(intptr_t)SIGUSR2, NULL);
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, SIGUSR2);
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, 0);

    /* the set may hold several: the one that came is returned */
    sigset_t s = set_of(SIGUSR1, SIGUSR2);
    r = weft_spawn(raiser, (void *)(intptr_t)SIGUSR2, NULL);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR2);
    assert_int_equal(weft_join(r, &st), 0);
    r = weft_spawn(raiser, (void *)(intptr_t)SIGUSR1, NULL);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR1);
    assert_int_equal(weft_join(r, &st), 0);
    return 0;
}

static void test_signal_from_task(void **state)
{
    (void)state;
    run_checked(from_task, NULL);
}

/* Repeated waits, each answered by one signal. */
static int repeated(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    for (int i = 0; i < 200; i++) {
        weft_task *r = weft_spawn(raiser, (void *)(intptr_t)SIGUSR1, NULL);
        assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR1);
        int st = -1;
        assert_int_equal(weft_join(r, &st), 0);
        assert_int_equal(st, 0);
    }
    return 0;
}

static void test_signal_repeated(void **state)
{
    (void)state;
    run_checked(repeated, NULL);
}

/* From another thread: it inherits the mask the loop set up. */
static void *thread_kill(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 5 * MS};
    nanosleep(&ts, NULL);
    kill(getpid(), SIGUSR1);
    return NULL;
}

static int from_thread(void *arg)
{
    (void)arg;
    route(SIGUSR1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_kill, NULL), 0);
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR1);
    assert_int_equal(pthread_join(th, NULL), 0);
    return 0;
}

static void test_signal_from_thread(void **state)
{
    (void)state;
    run_checked(from_thread, NULL);
}

/* ------------------------------------------------------------ pending */

static int kept(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    route(SIGUSR1);

    /* raised while nobody waits, not yet read by the loop */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR1);

    /* raised while nobody waits, read by the loop meanwhile: the next
     * wait returns it at once, even with a deadline already past */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(-1)), SIGUSR1);
    /* ... exactly once */
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5)), -ETIMEDOUT);

    /* a signal outside a waiter's set does not wake it, and is kept */
    sigset_t s2 = set_of(SIGUSR2, 0);
    weft_task *r = weft_spawn(raiser, (void *)(intptr_t)SIGUSR1, NULL);
    assert_int_equal(weft_signal_wait(&s2, weft_deadline_ms(30)), -ETIMEDOUT);
    int st = -1;
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR1);
    return 0;
}

static void test_signal_kept_while_nobody_waits(void **state)
{
    (void)state;
    run_checked(kept, NULL);
}

/* ------------------------------------------------------------ waiter order */

static int order[4];
static int norder;

static int ordered_waiter(void *arg)
{
    int id = (int)(intptr_t)arg;
    sigset_t s = set_of(SIGUSR1, SIGUSR2);
    int rc = weft_signal_wait(&s, weft_deadline_ms(5000));
    order[norder++] = id;
    return rc;
}

static int two_waiters(void *arg)
{
    (void)arg;
    norder = 0;
    weft_task *a = weft_spawn(ordered_waiter, (void *)1, NULL);
    weft_task *b = weft_spawn(ordered_waiter, (void *)2, NULL);
    assert_int_equal(weft_sleep_ms(2), 0); /* both wait, a first */
    assert_int_equal(raise(SIGUSR2), 0);
    int st = 0;
    assert_int_equal(weft_join(a, &st), 0);
    assert_int_equal(st, SIGUSR2);
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_int_equal(norder, 1); /* one signal, one waiter woken */
    assert_int_equal(order[0], 1);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(weft_join(b, &st), 0);
    assert_int_equal(st, SIGUSR1);
    assert_int_equal(norder, 2);
    assert_int_equal(order[1], 2);
    return 0;
}

static void test_signal_first_waiter_wins(void **state)
{
    (void)state;
    run_checked(two_waiters, NULL);
}

/* A waiter that timed out does not take a later signal; the next one does. */
static int timed_waiter(void *arg)
{
    sigset_t s = set_of(SIGUSR1, 0);
    return weft_signal_wait(&s, weft_deadline_ms((int64_t)(intptr_t)arg));
}

static int skip_timed_out(void *arg)
{
    (void)arg;
    int st = 0;
    weft_task *a = weft_spawn(timed_waiter, (void *)(intptr_t)5, NULL);
    weft_task *b = weft_spawn(timed_waiter, (void *)(intptr_t)5000, NULL);
    assert_int_equal(weft_join(a, &st), 0);
    assert_int_equal(st, -ETIMEDOUT);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(weft_join(b, &st), 0);
    assert_int_equal(st, SIGUSR1);
    return 0;
}

static void test_signal_after_timeout(void **state)
{
    (void)state;
    run_checked(skip_timed_out, NULL);
}

/* A waiter cancelled in the same loop iteration as the signal arrives does
 * not swallow it: it stays pending for the next wait. */
static weft_task *cancel_victim;
static void cancel_cb(weft_timer *tm)
{
    (void)tm;
    weft_cancel(cancel_victim);
}

static int raise_then_cancel(void *arg)
{
    weft_timer *tm = arg;
    if (raise(SIGUSR1) != 0)
        return -1;
    return weft_timer_start(tm, weft_now()); /* fires before the next poll */
}

static int cancel_races_signal(void *arg)
{
    (void)arg;
    int st = 0;
    weft_timer tm;
    weft_timer_init(&tm, cancel_cb, NULL);
    weft_task *a = weft_spawn(timed_waiter, (void *)(intptr_t)5000, NULL);
    cancel_victim = a;
    weft_task *r = weft_spawn(raise_then_cancel, &tm, NULL);
    assert_int_equal(weft_join(a, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(weft_join(r, &st), 0);
    assert_int_equal(st, 0);
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(2000)), SIGUSR1);
    return 0;
}

static void test_signal_not_lost_by_cancelled_waiter(void **state)
{
    (void)state;
    run_checked(cancel_races_signal, NULL);
}

/* ------------------------------------------------------------ failures */

static int timeout(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    int64_t d = weft_deadline_ms(10);
    assert_int_equal(weft_signal_wait(&s, d), -ETIMEDOUT);
    assert_true(weft_now() >= d);
    assert_non_null(strstr(weft_errmsg(), "weft_signal_wait"));
    assert_non_null(strstr(weft_errmsg(), "timed out"));
    assert_int_equal(weft_signal_wait(&s, 0), -ETIMEDOUT);
    return 0;
}

static void test_signal_timeout(void **state)
{
    (void)state;
    run_checked(timeout, NULL);
}

static int cancelled_waiter(void *arg)
{
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    int rc = weft_signal_wait(&s, WEFT_NO_DEADLINE);
    if (rc != -ECANCELED)
        return rc < 0 ? -1000 : -1001;
    if (!strstr(weft_errmsg(), "weft_signal_wait"))
        return -1002;
    if (weft_signal_wait(&s, WEFT_NO_DEADLINE) != -ECANCELED)
        return -1003;
    return rc;
}

static int cancel(void *arg)
{
    (void)arg;
    int st = 0;
    weft_task *t = weft_spawn(cancelled_waiter, NULL, NULL);
    assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, -ECANCELED);
    /* cancelled before it even started */
    t = weft_spawn(cancelled_waiter, NULL, NULL);
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, -ECANCELED);
    /* a signal after the cancel goes to the next waiter */
    assert_int_equal(raise(SIGUSR1), 0);
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR1);
    return 0;
}

static void test_signal_cancel(void **state)
{
    (void)state;
    run_checked(cancel, NULL);
}

static int invalid(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    assert_int_equal(weft_signal_wait(&s, WEFT_NO_DEADLINE), -EINVAL);
    assert_non_null(strstr(weft_errmsg(), "empty"));
    assert_int_equal(weft_signal_wait(NULL, WEFT_NO_DEADLINE), -EINVAL);
    s = set_of(SIGKILL, 0);
    assert_int_equal(weft_signal_wait(&s, WEFT_NO_DEADLINE), -EINVAL);
    assert_non_null(strstr(weft_errmsg(), "SIGKILL"));
    s = set_of(SIGSTOP, 0);
    assert_int_equal(weft_signal_wait(&s, WEFT_NO_DEADLINE), -EINVAL);
    s = set_of(SIGUSR1, SIGKILL);
    assert_int_equal(weft_signal_wait(&s, WEFT_NO_DEADLINE), -EINVAL);
    /* nothing was blocked by the refused calls */
    assert_false(blocked(SIGUSR1));
    return 0;
}

static void test_signal_invalid_set(void **state)
{
    (void)state;
    run_checked(invalid, NULL);
}

static void wait_in_cb(weft_timer *tm)
{
    sigset_t s = set_of(SIGUSR1, 0);
    *(int *)tm->data = weft_signal_wait(&s, 0);
}

static int callback_notask(void *arg)
{
    (void)arg;
    int out = 1;
    weft_timer tm;
    weft_timer_init(&tm, wait_in_cb, &out);
    assert_int_equal(weft_timer_start(&tm, weft_now()), 0);
    assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(out, WEFT_ENOTASK);
    return 0;
}

static void test_signal_outside_task(void **state)
{
    (void)state;
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(weft_signal_wait(&s, WEFT_NO_DEADLINE), WEFT_ENOTASK);
    assert_non_null(strstr(weft_errmsg(), "weft_signal_wait"));
    assert_false(blocked(SIGUSR1));
    run_checked(callback_notask, NULL);
}

/* ------------------------------------------------------------ the mask */

static int mask_inside(void *arg)
{
    (void)arg;
    assert_false(blocked(SIGUSR1)); /* nothing blocked before the first wait */
    route(SIGUSR1);
    assert_true(blocked(SIGUSR1));
    assert_true(blocked(SIGUSR2)); /* blocked by the test before weft_run */
    route(SIGUSR2);
    assert_true(blocked(SIGUSR2));
    /* a signal delivered here would kill the process: it is routed instead */
    assert_int_equal(raise(SIGUSR1), 0);
    sigset_t s = set_of(SIGUSR1, 0);
    assert_int_equal(weft_signal_wait(&s, weft_deadline_ms(5000)), SIGUSR1);
    return 0;
}

static int no_wait(void *arg)
{
    (void)arg;
    assert_false(blocked(SIGUSR1));
    return 0;
}

static void test_signal_mask_restored(void **state)
{
    (void)state;
    sigset_t usr2 = set_of(SIGUSR2, 0), before, after;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr2, &before), 0);
    assert_false(blocked(SIGUSR1));
    assert_true(blocked(SIGUSR2));
    run_checked(mask_inside, NULL);
    assert_false(blocked(SIGUSR1));
    assert_true(blocked(SIGUSR2)); /* the mask before weft_run, exactly */
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    for (int sig = 1; sig < NSIG; sig++)
        assert_int_equal(sigismember(&after, sig) == 1,
                         sig == SIGUSR2 || sigismember(&before, sig) == 1);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &before, NULL), 0);
    assert_false(blocked(SIGUSR2));

    /* a loop that never waited leaves the mask alone */
    run_checked(no_wait, NULL);
    assert_false(blocked(SIGUSR1));

    /* and a second loop routes signals again */
    run_checked(from_task, NULL);
    assert_false(blocked(SIGUSR1));
    assert_false(blocked(SIGUSR2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_from_task),
        cmocka_unit_test(test_signal_repeated),
        cmocka_unit_test(test_signal_from_thread),
        cmocka_unit_test(test_signal_kept_while_nobody_waits),
        cmocka_unit_test(test_signal_first_waiter_wins),
        cmocka_unit_test(test_signal_after_timeout),
        cmocka_unit_test(test_signal_not_lost_by_cancelled_waiter),
        cmocka_unit_test(test_signal_timeout),
        cmocka_unit_test(test_signal_cancel),
        cmocka_unit_test(test_signal_invalid_set),
        cmocka_unit_test(test_signal_outside_task),
        cmocka_unit_test(test_signal_mask_restored),
    };
    return run_cases(tests, NULL, NULL);
}
