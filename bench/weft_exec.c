/* SPDX-License-Identifier: MIT */
/*
 * Part C of the runtime peer benchmarks (../shared/peers/runtime/README.md)
 * on weft: executors.  One workload per process, JSON lines on stdout.
 *
 *   weft_exec pool-tiny            20,000 jobs x -> x + 1 through a process
 *                                  pool of 2, and through a thread pool of 2
 *   weft_exec pool-cpu             16 jobs of 32 x SHA-256 over 1 MiB: serial
 *                                  in this process, and in a process pool of 2
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

#include <openssl/sha.h>
#include <weft.h>

#include "bench_util.h"

static weft_thread_pool *pool;
static long n_jobs;

/* ------------------------------------------------------------ pool-tiny */

static int plus_one(void *arg) { return (int)(intptr_t)arg + 1; }

static int pool_tiny_threads(void *arg);

static int tiny_caller(void *arg)
{
    int r = 0;
    int rc = weft_thread_pool_run(pool, plus_one, arg, &r, NULL);
    return rc < 0 ? rc : r;
}

static weft_process_pool *ppool;

static int plus_one_in_worker(const void *in, size_t len, weft_bytes *out)
{
    (void)out;
    int x;
    if (len != sizeof x)
        return -1;
    memcpy(&x, in, sizeof x);
    return x + 1;
}

static int tiny_process_caller(void *arg)
{
    int x = (int)(intptr_t)arg, status = 0;
    int rc = weft_process_pool_run(ppool, plus_one_in_worker, &x, sizeof x, NULL, &status, NULL);
    return rc < 0 ? rc : status;
}

static double spawn_join_sum(weft_task_fn fn, long n, long long *total)
{
    weft_task **t = malloc(sizeof *t * (size_t)n);
    if (!t)
        die("out of memory");
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (!(t[i] = weft_spawn(fn, (void *)(intptr_t)i, NULL)))
            die("spawn: %s", weft_errmsg());
    *total = 0;
    for (long i = 0; i < n; i++) {
        int st = -1;
        weft_join(t[i], &st);
        if (st < 0)
            die("job %ld failed: %d (%s)", i, st, weft_strerror(st));
        *total += st;
    }
    double dt = now_s() - t0;
    free(t);
    return dt;
}

static int pool_tiny(void *arg)
{
    (void)arg;
    long long want = (long long)n_jobs * (n_jobs + 1) / 2, total;
    ppool = weft_process_pool_new(&(weft_process_pool_opts){.workers = 2});
    if (!ppool)
        die("process pool: %s", weft_errmsg());
    double dt = spawn_join_sum(tiny_process_caller, n_jobs, &total);
    weft_process_pool_shutdown(ppool);
    weft_process_pool_free(ppool);
    if (total != want)
        die("sum %lld, want %lld", total, want);
    json_begin("weft", "pool-tiny", n_jobs, dt, "tasks/s");
    printf(", \"variant\": \"ProcessPool(2)\"");
    json_end();
    return pool_tiny_threads(arg);
}

/* ------------------------------------------------------------ pool-cpu */

#define CPU_BUF ((size_t)1 << 20)
static unsigned char *cpu_buf; /* BUF[i] = i mod 256, made before the pool forks */

static void cpu_job(unsigned char h[32])
{
    memset(h, 0, 32);
    for (int r = 0; r < 32; r++) {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, cpu_buf, CPU_BUF);
        SHA256_Update(&c, h, 32);
        SHA256_Final(h, &c);
    }
}

static int cpu_job_in_worker(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)len;
    unsigned char h[32];
    cpu_job(h);
    return weft_bytes_append(out, h, sizeof h);
}

static const char *hex(const unsigned char h[32], char s[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(s + 2 * i, 3, "%02x", h[i]);
    return s;
}

static const char *cpu_digest_want =
    "a48161cf266286aea4e91edfd3ffaa3e3da665862e3ec75eca239191c20a2812";

static int cpu_caller(void *arg)
{
    (void)arg;
    weft_bytes out = {0};
    int status = -1;
    int rc = weft_process_pool_run(ppool, cpu_job_in_worker, NULL, 0, &out, &status, NULL);
    char s[65];
    int ok = rc == 0 && status == 0 && out.len == 32 &&
             !strcmp(hex(out.data, s), cpu_digest_want);
    weft_bytes_free(&out);
    return ok ? 1 : (rc < 0 ? rc : -1);
}

static int pool_cpu(void *arg)
{
    (void)arg;
    cpu_buf = malloc(CPU_BUF);
    if (!cpu_buf)
        die("out of memory");
    for (size_t i = 0; i < CPU_BUF; i++)
        cpu_buf[i] = (unsigned char)i;
    ppool = weft_process_pool_new(&(weft_process_pool_opts){.workers = 2});
    if (!ppool)
        die("process pool: %s", weft_errmsg());
    /* serial reference, in this process */
    double t0 = now_s();
    for (long i = 0; i < n_jobs; i++) {
        unsigned char h[32];
        char s[65];
        cpu_job(h);
        if (strcmp(hex(h, s), cpu_digest_want))
            die("digest %s", s);
    }
    double serial = now_s() - t0;
    long long ok;
    double dt = spawn_join_sum(cpu_caller, n_jobs, &ok);
    weft_process_pool_shutdown(ppool);
    weft_process_pool_free(ppool);
    if (ok != n_jobs)
        die("%lld of %ld jobs gave the right digest", ok, n_jobs);
    json_begin("weft-serial", "pool-cpu", n_jobs, serial, "jobs/s");
    printf(", \"digest\": \"%.16s\"", cpu_digest_want);
    json_end();
    json_begin("weft", "pool-cpu", n_jobs, dt, "jobs/s");
    printf(", \"variant\": \"ProcessPool(2)\", \"speedup\": %.3f", serial / dt);
    json_end();
    return 0;
}

static int pool_tiny_threads(void *arg)
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
        fprintf(stderr, "usage: %s pool-tiny|pool-cpu|blocking-sleep-demo\n", argv[0]);
        return 2;
    }
    weft_task_fn fn;
    if (!strcmp(argv[1], "pool-tiny")) {
        n_jobs = scaled_count(20000);
        fn = pool_tiny;
    } else if (!strcmp(argv[1], "pool-cpu")) {
        n_jobs = scaled_count(16);
        fn = pool_cpu;
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
