/* SPDX-License-Identifier: MIT */
/*
 * The guide's second practice: CPU-heavy work goes to a process pool, so
 * the loop stays responsive.  Eight "heavy computations" (counting primes
 * by trial division) run in a pool of 2 worker processes while a ticker
 * task keeps ticking every 10 ms; then the same work on the loop itself,
 * where the ticker stalls until it is done.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

enum { JOBS = 8 };

static long count_primes(long lo, long hi)
{
    long n = 0;
    for (long x = lo; x < hi; x++) {
        bool prime = x > 1;
        for (long d = 2; d * d <= x && prime; d++)
            prime = x % d != 0;
        n += prime;
    }
    return n;
}

/* Runs in a worker process: input = the range, output = the count. */
static int primes_job(const void *in, size_t len, weft_bytes *out)
{
    long range[2];
    if (len != sizeof range)
        return -1;
    memcpy(range, in, sizeof range);
    long n = count_primes(range[0], range[1]);
    return weft_bytes_append(out, &n, sizeof n);
}

static weft_process_pool *pool;
static long total;
static int ticks;
static bool ticking;

static int ticker(void *arg)
{
    (void)arg;
    while (ticking && weft_sleep_ms(10) == 0)
        ticks++;
    return 0;
}

static int job_caller(void *arg)
{
    long i = (long)(intptr_t)arg;
    long range[2] = {i * 250000, (i + 1) * 250000};
    weft_bytes out = {0};
    int status = -1;
    int rc = weft_process_pool_run(pool, primes_job, range, sizeof range, &out, &status, NULL);
    if (rc == 0 && status == 0 && out.len == sizeof(long)) {
        long n;
        memcpy(&n, out.data, sizeof n);
        total += n;
    }
    weft_bytes_free(&out);
    return rc < 0 ? rc : status;
}

static int on_loop(void *arg)
{
    (void)arg;
    for (long i = 0; i < JOBS; i++)
        total += count_primes(i * 250000, (i + 1) * 250000); /* blocks the loop */
    return 0;
}

static void run(const char *title, bool use_pool)
{
    total = 0;
    ticks = 0;
    ticking = true;
    weft_task *tick = weft_spawn(ticker, NULL, NULL);
    int64_t t0 = weft_now();
    weft_group *g = weft_group_new(NULL);
    if (use_pool)
        for (long i = 0; i < JOBS; i++)
            weft_group_spawn(g, job_caller, (void *)(intptr_t)i, NULL);
    else
        weft_group_spawn(g, on_loop, NULL, NULL);
    int rc = weft_group_wait(g);
    weft_group_free(g);
    double ms = (double)(weft_now() - t0) / 1e6;
    ticking = false;
    weft_join(tick, NULL);
    printf("%-26s %ld primes below 2,000,000 in %6.0f ms (status %d); ticker ran %d times\n",
           title, total, ms, rc, ticks);
}

static int app(void *arg)
{
    (void)arg;
    weft_set_slow_ms(0); /* the second run blocks the loop on purpose */
    pool = weft_process_pool_new(&(weft_process_pool_opts){.workers = 2});
    if (!pool) {
        fprintf(stderr, "pool: %s\n", weft_errmsg());
        return 1;
    }
    run("in a process pool of 2:", true);
    run("on the loop (blocking):", false);
    weft_process_pool_shutdown(pool);
    weft_process_pool_free(pool);
    return 0;
}

int main(void) { return weft_run(app, NULL); }
