/* SPDX-License-Identifier: MIT */
/*
 * Part C of the runtime peer benchmarks (../shared/peers/runtime/README.md)
 * on weft: executors.  One workload per process, JSON lines on stdout.
 *
 *   weft_exec pool-tiny            20,000 jobs x -> x + 1 through a thread
 *                                  pool of 2 (the peers' ThreadPool(2) row)
 *   weft_exec blocking-sleep-demo  100 tasks that wait 10 ms: blocking
 *                                  usleep in the task, weft_sleep_ms, and
 *                                  usleep through a thread pool of 100
 *
 * $SCALE multiplies the op counts (smoke tests only).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "bench_util.h"

static weft_thread_pool *pool;
static long n_jobs;

/* ------------------------------------------------------------ pool-tiny */

static int plus_one(void *arg) { return (int)(intptr_t)arg + 1; }

static int tiny_caller(void *arg)
{
    int r = 0;
    int rc = weft_thread_pool_run(pool, plus_one, arg, &r, NULL);
    return rc < 0 ? rc : r;
}

static int pool_tiny(void *arg)
{
    (void)arg;
    pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 2});
    if (!pool)
        die("pool: %s", weft_errmsg());
    weft_task **t = malloc(sizeof *t * (size_t)n_jobs);
    if (!t)
        die("out of memory");
    double t0 = now_s();
    for (long i = 0; i < n_jobs; i++)
        if (!(t[i] = weft_spawn(tiny_caller, (void *)(intptr_t)i, NULL)))
            die("spawn: %s", weft_errmsg());
    long long total = 0;
    for (long i = 0; i < n_jobs; i++) {
        int st = -1;
        weft_join(t[i], &st);
        total += st;
    }
    double dt = now_s() - t0;
    free(t);
    weft_thread_pool_free(pool);
    long long want = (long long)n_jobs * (n_jobs + 1) / 2;
    if (total != want)
        die("sum %lld, want %lld", total, want);
    json_begin("weft", "pool-tiny", n_jobs, dt, "tasks/s");
    printf(", \"variant\": \"ThreadPool(2)\"");
    json_end();
    return 0;
}

/* ------------------------------------------------------------ blocking-sleep-demo */

static int blocking_usleep(void *arg)
{
    (void)arg;
    usleep(10000); /* blocks the loop: the other tasks wait */
    return 0;
}

static int polite_sleep(void *arg)
{
    (void)arg;
    return weft_sleep_ms(10);
}

static int usleep_job(void *arg)
{
    (void)arg;
    usleep(10000);
    return 0;
}

static int pooled_usleep(void *arg)
{
    (void)arg;
    return weft_thread_pool_run(pool, usleep_job, NULL, NULL, NULL);
}

static double run_batch(weft_task_fn fn)
{
    weft_task *t[1000];
    long n = n_jobs < 1000 ? n_jobs : 1000;
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (!(t[i] = weft_spawn(fn, NULL, NULL)))
            die("spawn: %s", weft_errmsg());
    for (long i = 0; i < n; i++) {
        int st = -1;
        if (weft_join(t[i], &st) != 0 || st != 0)
            die("task %ld: status %d", i, st);
    }
    return now_s() - t0;
}

static int sleep_demo(void *arg)
{
    (void)arg;
    pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 100});
    if (!pool)
        die("pool: %s", weft_errmsg());
    long n = n_jobs < 1000 ? n_jobs : 1000;
    double blocking = run_batch(blocking_usleep);
    double polite = run_batch(polite_sleep);
    double pooled = run_batch(pooled_usleep);
    weft_thread_pool_free(pool);
    json_begin("weft", "blocking-sleep-demo", n, blocking, "tasks/s");
    printf(", \"variant\": \"usleep\"");
    json_end();
    json_begin("weft", "blocking-sleep-demo", n, polite, "tasks/s");
    printf(", \"variant\": \"weft_sleep_ms\"");
    json_end();
    json_begin("weft", "blocking-sleep-demo", n, pooled, "tasks/s");
    printf(", \"variant\": \"usleep in ThreadPool(100)\"");
    json_end();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s pool-tiny|blocking-sleep-demo\n", argv[0]);
        return 2;
    }
    weft_task_fn fn;
    if (!strcmp(argv[1], "pool-tiny")) {
        n_jobs = scaled_count(20000);
        fn = pool_tiny;
    } else if (!strcmp(argv[1], "blocking-sleep-demo")) {
        n_jobs = scaled_count(100);
        fn = sleep_demo;
    } else {
        fprintf(stderr, "unknown workload %s\n", argv[1]);
        return 2;
    }
    weft_set_slow_ms(0); /* the blocking variant blocks on purpose */
    return weft_run(fn, NULL) == 0 ? 0 : 1;
}
