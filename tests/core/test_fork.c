/* SPDX-License-Identifier: MIT */
/* fork() from a task: the child forgets the parent's loop and may start
 * its own; thread pools made before the fork do not hang it. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_helpers.h"

/* Fork, run `child` in the child (its return value is the exit status),
 * and return the child's exit status (or 128 + its signal). */
static int fork_and_wait(int (*child)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* a hang fails the test instead of blocking it */
        _exit(child());
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int child_main(void *arg)
{
    (void)arg;
    if (weft_sleep_ms(1) != 0)
        return 11;
    return 42;
}

static int child_runs_loop(void)
{
    int st = weft_run(child_main, NULL);
    return st == 42 ? 0 : 10;
}

static int fork_in_task(void *arg)
{
    (void)arg;
    assert_int_equal(fork_and_wait(child_runs_loop), 0);
    return 0;
}

/* The child of a fork in a task runs a loop of its own. */
static void test_child_runs_its_own_loop(void **state)
{
    (void)state;
    run_task(fork_in_task);
}

static int blocking_add(void *arg)
{
    return *(int *)arg + 1;
}

static int child_to_thread_main(void *arg)
{
    (void)arg;
    int x = 41, r = 0;
    int rc = weft_to_thread(blocking_add, &x, &r);
    if (rc != 0)
        return 20;
    return r == 42 ? 0 : 21;
}

static int child_uses_default_pool(void)
{
    return weft_run(child_to_thread_main, NULL);
}

static weft_thread_pool *pre_fork_pool;

static int child_pre_fork_pool_main(void *arg)
{
    (void)arg;
    int x = 1, r = 0;
    int rc = weft_thread_pool_run(pre_fork_pool, blocking_add, &x, &r, NULL);
    if (rc != -ESHUTDOWN)
        return 30;
    if (!strstr(weft_errmsg(), "fork"))
        return 31;
    weft_thread_pool_free(pre_fork_pool); /* memory only */
    return 0;
}

static int child_uses_pre_fork_pool(void)
{
    return weft_run(child_pre_fork_pool_main, NULL);
}

/* Every thread of `pool` runs one job at the same time (a barrier of all
 * of them), so all have started.  Under ASan this matters: its allocator
 * takes no lock across fork() (GCC 12's runtime), so a thread still
 * setting itself up at the fork can leave a lock held in the child, where
 * the child's own new threads then block forever.  glibc's malloc has no
 * such hazard; a program forking from a task needs no such care. */
static pthread_barrier_t all_started;

static int meet(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&all_started);
    return 0;
}

static int meet_task(void *arg)
{
    return weft_thread_pool_run(arg, meet, NULL, NULL, NULL);
}

static void start_every_thread(weft_thread_pool *pool)
{
    size_t n = weft_thread_pool_size(pool);
    assert_int_equal(pthread_barrier_init(&all_started, NULL, (unsigned)n), 0);
    weft_task *t[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++)
        t[i] = spawn_named(meet_task, pool, "meet");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(join_status(t[i]), 0);
    pthread_barrier_destroy(&all_started);
}

static int pools_then_fork(void *arg)
{
    (void)arg;
    /* The default pool has threads in the parent before the fork. */
    int x = 1, r = 0;
    assert_int_equal(weft_to_thread(blocking_add, &x, &r), 0);
    assert_int_equal(r, 2);
    pre_fork_pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 1});
    assert_non_null(pre_fork_pool);
    start_every_thread(weft_thread_pool_default());
    start_every_thread(pre_fork_pool);
    assert_int_equal(fork_and_wait(child_uses_default_pool), 0);
    assert_int_equal(fork_and_wait(child_uses_pre_fork_pool), 0);
    /* and the parent's pools still work */
    assert_int_equal(weft_to_thread(blocking_add, &x, &r), 0);
    assert_int_equal(weft_thread_pool_run(pre_fork_pool, blocking_add, &x, &r, NULL), 0);
    weft_thread_pool_free(pre_fork_pool);
    return 0;
}

/* The child gets a default pool of its own; a pool made before the fork
 * fails clearly there instead of waiting forever. */
static void test_child_thread_pools(void **state)
{
    (void)state;
    run_task(pools_then_fork);
}

/* A plain fork() outside any task, from a thread whose loop ended, and a
 * child that forks again: each level runs its loop. */
static int nested_child(void)
{
    if (weft_run(child_main, NULL) != 42)
        return 50;
    return fork_and_wait(child_runs_loop) == 0 ? 0 : 51;
}

static int fork_nested(void *arg)
{
    (void)arg;
    assert_int_equal(fork_and_wait(nested_child), 0);
    return 0;
}

static void test_nested_forks(void **state)
{
    (void)state;
    run_task(fork_nested);
}

/* A loop that waits for a signal blocks it on its thread (for its
 * signalfd); the child gets the program's signal mask back. */
static int child_mask_check(void)
{
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    return sigismember(&cur, SIGUSR2) ? 60 : 0;
}

static int fork_with_signal_watch(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    int rc = weft_signal_wait(&set, weft_deadline_ms(1));
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(fork_and_wait(child_mask_check), 0);
    return 0;
}

static void test_child_signal_mask(void **state)
{
    (void)state;
    run_task(fork_with_signal_watch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_runs_its_own_loop),
        cmocka_unit_test(test_child_thread_pools),
        cmocka_unit_test(test_nested_forks),
        cmocka_unit_test(test_child_signal_mask),
    };
    return run_cases(tests, NULL, NULL);
}
