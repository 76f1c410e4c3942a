/* SPDX-License-Identifier: MIT */
/*
 * Part A of the runtime peer benchmarks (../shared/peers/runtime/README.md)
 * on weft: one workload per process, one JSON line on stdout.
 *
 *   weft_tasks spawn-join | ping-pong | ping-pong-event | sleepers-100k | sleepers-1m
 *              | timers-1m | sem-fanout
 *
 * sleepers-1m is sleepers-100k with 1,000,000 tasks (weft only: it shows a
 * million concurrent tasks working, and their memory).  Starting them takes
 * longer than their 1 s sleep, so it turns the start limit off: every task
 * starts before the first one that woke finishes and hands its stack on,
 * and all million really sleep at once.  The slow-task
 * detector is off: spawning a million tasks without suspending is the
 * point here, not a bug.
 *
 * $SCALE multiplies the op counts (smoke tests only).  Exits non-zero when
 * the result check fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#include "bench_util.h"

/* ------------------------------------------------------------ spawn-join */

static long n_spawn;

static int leaf(void *arg) { return (int)(intptr_t)arg; }

static int spawn_join(void *arg)
{
    (void)arg;
    enum { BATCH = 10000 };
    static weft_task *batch[BATCH];
    long long total = 0;
    double t0 = now_s();
    for (long base = 0; base < n_spawn; base += BATCH) {
        long n = n_spawn - base < BATCH ? n_spawn - base : BATCH;
        for (long i = 0; i < n; i++) {
            batch[i] = weft_spawn(leaf, (void *)(intptr_t)(base + i), NULL);
            if (!batch[i])
                die("spawn failed: %s", weft_errmsg());
        }
        for (long i = 0; i < n; i++) {
            int st;
            if (weft_join(batch[i], &st) != 0)
                die("join failed: %s", weft_errmsg());
            total += st;
        }
    }
    double dt = now_s() - t0;
    long long want = (long long)n_spawn * (n_spawn - 1) / 2;
    if (total != want)
        die("sum %lld, want %lld", total, want);
    json_begin("weft", "spawn-join", n_spawn, dt, "tasks/s");
    printf(", \"rss_kb\": %ld", proc_status_kb("VmHWM"));
    json_end();
    return 0;
}

/* ------------------------------------------------------------ ping-pong */

static long n_switch;
static long pp_count;

static int pinger(void *arg)
{
    (void)arg;
    long n = n_switch / 2;
    for (long i = 0; i < n; i++) {
        if (weft_yield() != 0)
            return -1;
        pp_count++;
    }
    return 0;
}

static int ping_pong(void *arg)
{
    (void)arg;
    double t0 = now_s();
    weft_task *a = weft_spawn(pinger, NULL, NULL);
    weft_task *b = weft_spawn(pinger, NULL, NULL);
    int sa = -1, sb = -1;
    weft_join(a, &sa);
    weft_join(b, &sb);
    double dt = now_s() - t0;
    if (sa || sb || pp_count != (n_switch / 2) * 2)
        die("ping-pong: %ld yields counted", pp_count);
    json_begin("weft", "ping-pong", pp_count, dt, "switches/s");
    printf(", \"variant\": \"yield\", \"ns_per_switch\": %.2f, \"rss_kb\": %ld",
           dt * 1e9 / (double)pp_count, proc_status_kb("VmHWM"));
    json_end();
    return 0;
}

/* ------------------------------------------------------------ ping-pong-event */

static weft_event ev_a, ev_b;

static int handoff(void *arg)
{
    int mine = arg != NULL;
    weft_event *me = mine ? &ev_b : &ev_a, *other = mine ? &ev_a : &ev_b;
    long n = n_switch / 2;
    for (long i = 0; i < n; i++) {
        if (weft_event_wait(me) != 0)
            return -1;
        weft_event_clear(me);
        pp_count++;
        weft_event_set(other);
    }
    return 0;
}

static int ping_pong_event(void *arg)
{
    (void)arg;
    weft_event_init(&ev_a);
    weft_event_init(&ev_b);
    double t0 = now_s();
    weft_task *a = weft_spawn(handoff, NULL, NULL);
    weft_task *b = weft_spawn(handoff, (void *)1, NULL);
    weft_event_set(&ev_a);
    int sa = -1, sb = -1;
    weft_join(a, &sa);
    weft_join(b, &sb);
    double dt = now_s() - t0;
    if (sa || sb || pp_count != (n_switch / 2) * 2)
        die("ping-pong-event: %ld handoffs counted", pp_count);
    json_begin("weft", "ping-pong-event", pp_count, dt, "switches/s");
    printf(", \"variant\": \"event\", \"ns_per_switch\": %.2f, \"rss_kb\": %ld",
           dt * 1e9 / (double)pp_count, proc_status_kb("VmHWM"));
    json_end();
    return 0;
}

/* ------------------------------------------------------------ sem-fanout */

static long n_fanout;
static weft_sem fan_sem;

static int fan_worker(void *arg)
{
    (void)arg;
    if (weft_sem_acquire(&fan_sem) != 0)
        return -1;
    int rc = weft_yield();
    weft_sem_release(&fan_sem);
    return rc;
}

static int sem_fanout(void *arg)
{
    (void)arg;
    weft_sem_init(&fan_sem, 10);
    weft_task **t = malloc(sizeof *t * (size_t)n_fanout);
    if (!t)
        die("out of memory");
    double t0 = now_s();
    for (long i = 0; i < n_fanout; i++)
        if (!(t[i] = weft_spawn(fan_worker, NULL, NULL)))
            die("spawn: %s", weft_errmsg());
    long ok = 0;
    for (long i = 0; i < n_fanout; i++) {
        int st = -1;
        if (weft_join(t[i], &st) == 0 && st == 0)
            ok++;
    }
    double dt = now_s() - t0;
    free(t);
    if (ok != n_fanout || weft_sem_value(&fan_sem) != 10)
        die("sem-fanout: %ld of %ld ok, semaphore at %ld", ok, n_fanout,
            weft_sem_value(&fan_sem));
    json_begin("weft", "sem-fanout", n_fanout, dt, "tasks/s");
    printf(", \"rss_kb\": %ld", proc_status_kb("VmHWM"));
    json_end();
    return 0;
}

/* ------------------------------------------------------------ sleepers */

static long n_sleepers;
static const char *sleepers_name;

static int sleeper(void *arg)
{
    (void)arg;
    return weft_sleep_ms(1000);
}

static int sleepers(void *arg)
{
    (void)arg;
    weft_task **t = malloc(sizeof *t * (size_t)n_sleepers);
    if (!t)
        die("out of memory");
    long base = proc_status_kb("VmRSS");
    double t0 = now_s();
    for (long i = 0; i < n_sleepers; i++) {
        t[i] = weft_spawn(sleeper, NULL, NULL);
        if (!t[i])
            die("spawn %ld failed: %s", i, weft_errmsg());
    }
    long done = 0;
    for (long i = 0; i < n_sleepers; i++) {
        int st = -1;
        if (weft_join(t[i], &st) != 0 || st != 0)
            die("sleeper %ld: status %d", i, st);
        done++;
    }
    double dt = now_s() - t0;
    long peak = proc_status_kb("VmHWM");
    free(t);
    if (done != n_sleepers)
        die("finished %ld of %ld", done, n_sleepers);
    json_begin("weft", sleepers_name, n_sleepers, dt, "tasks/s");
    printf(", \"rss_kb\": %ld, \"rss_base_kb\": %ld, \"bytes_per_task\": %.1f", peak, base,
           (double)(peak - base) * 1024.0 / (double)n_sleepers);
    json_end();
    return 0;
}

/* ------------------------------------------------------------ timers-1m */

static long n_timers;
static long fired;

static void on_timer(weft_timer *t)
{
    (void)t;
    fired++;
}

static int timers(void *arg)
{
    (void)arg;
    unsigned *delay = malloc(sizeof *delay * (size_t)n_timers);
    if (!delay)
        die("out of memory");
    unsigned s = 2463534242u;
    long long sum = 0;
    for (long i = 0; i < n_timers; i++) {
        delay[i] = xorshift32(&s) % 101u;
        sum += delay[i];
    }
    if (n_timers == 1000000 && sum != 50042567)
        die("delay sum %lld", sum);
    double t0 = now_s();
    weft_timer *tm = malloc(sizeof *tm * (size_t)n_timers);
    if (!tm)
        die("out of memory");
    int64_t now = weft_now();
    for (long i = 0; i < n_timers; i++) {
        weft_timer_init(&tm[i], on_timer, NULL);
        if (weft_timer_start(&tm[i], now + (int64_t)delay[i] * 1000000) != 0)
            die("timer_start: %s", weft_errmsg());
    }
    /* The main task sleeps past the last deadline; timers fire meanwhile. */
    while (fired < n_timers)
        weft_sleep_ms(1);
    double dt = now_s() - t0;
    json_begin("weft", "timers-1m", n_timers, dt, "timers/s");
    printf(", \"rss_kb\": %ld", proc_status_kb("VmHWM"));
    json_end();
    free(tm);
    free(delay);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s spawn-join|ping-pong|ping-pong-event|sleepers-100k|"
                        "sleepers-1m|timers-1m|sem-fanout\n",
                argv[0]);
        return 2;
    }
    const char *w = argv[1];
    weft_task_fn fn;
    if (!strcmp(w, "spawn-join")) {
        n_spawn = scaled_count(1000000);
        fn = spawn_join;
    } else if (!strcmp(w, "ping-pong")) {
        n_switch = scaled_count(1000000);
        fn = ping_pong;
    } else if (!strcmp(w, "ping-pong-event")) {
        n_switch = scaled_count(1000000);
        fn = ping_pong_event;
    } else if (!strcmp(w, "sem-fanout")) {
        n_fanout = scaled_count(100000);
        fn = sem_fanout;
    } else if (!strcmp(w, "sleepers-100k") || !strcmp(w, "sleepers-1m")) {
        bool million = w[9] == '1' && w[10] == 'm';
        n_sleepers = scaled_count(million ? 1000000 : 100000);
        if (million)
            weft_set_start_limit(0);
        sleepers_name = w;
        fn = sleepers;
    } else if (!strcmp(w, "timers-1m")) {
        n_timers = scaled_count(1000000);
        fn = timers;
    } else {
        fprintf(stderr, "unknown workload %s\n", w);
        return 2;
    }
    weft_set_slow_ms(0);
    return weft_run(fn, NULL) == 0 ? 0 : 1;
}
