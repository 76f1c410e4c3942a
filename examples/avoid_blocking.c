/* SPDX-License-Identifier: MIT */
/*
 * The guide's first two practices side by side: 50 tasks each need to
 * "wait 20 ms".
 *   1. blocking usleep in the task: the loop stalls, the waits add up (~1 s);
 *   2. the same blocking call sent to a thread pool: the loop stays free,
 *      the waits overlap (~20 ms with enough threads);
 *   3. weft_sleep_ms, the non-blocking wait: ~20 ms, no threads at all.
 * A ticker task counts how often it got to run meanwhile: the loop's
 * responsiveness, in ticks.
 */
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include <weft.h>

enum { N = 50 };

static weft_thread_pool *pool;
static int ticks;
static bool ticking;

static int ticker(void *arg)
{
    (void)arg;
    while (ticking) {
        ticks++;
        if (weft_sleep_ms(1) < 0)
            break;
    }
    return 0;
}

static int blocking_call(void *arg)
{
    (void)arg;
    usleep(20000); /* stands for any blocking library call */
    return 0;
}

static int in_task(void *arg) { return blocking_call(arg); }

static int via_pool(void *arg)
{
    (void)arg;
    int result;
    int rc = weft_thread_pool_run(pool, blocking_call, NULL, &result, NULL);
    return rc < 0 ? rc : result;
}

static int non_blocking(void *arg)
{
    (void)arg;
    return weft_sleep_ms(20);
}

static void measure(const char *what, weft_task_fn fn)
{
    ticks = 0;
    ticking = true;
    weft_task *tick = weft_spawn(ticker, NULL, NULL);
    weft_task *t[N];
    int64_t t0 = weft_now();
    for (int i = 0; i < N; i++)
        t[i] = weft_spawn_named(fn, NULL, NULL, what);
    for (int i = 0; i < N; i++)
        weft_join(t[i], NULL);
    double ms = (double)(weft_now() - t0) / 1e6;
    ticking = false;
    weft_join(tick, NULL);
    printf("%-34s %7.1f ms, ticker ran %3d times\n", what, ms, ticks);
}

static int app(void *arg)
{
    (void)arg;
    weft_set_slow_ms(0); /* variant 1 blocks on purpose */
    pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = N});
    if (!pool)
        return 1;
    measure("blocking usleep in the task", in_task);
    measure("usleep through a thread pool (50)", via_pool);
    measure("weft_sleep_ms (non-blocking)", non_blocking);
    weft_thread_pool_free(pool);
    return 0;
}

int main(void) { return weft_run(app, NULL); }
