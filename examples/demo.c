/* SPDX-License-Identifier: MIT */
/*
 * The guide's first practice: never block the loop.
 *
 *   1. 100 tasks each call weft_sleep_ms(10): they sleep together, ~10 ms.
 *   2. 100 tasks each call the blocking usleep(10000): the loop can run
 *      nothing else meanwhile, so they take turns, ~1 s, and the slow-task
 *      detector names them (threshold lowered to 5 ms for the demo).
 *   3. One task blocks for 300 ms with the watchdog on (WEFT_DEBUG=1 does
 *      the same): it reports the task and the line it is stuck on, while it
 *      is still stuck.
 *
 * (Until the tour of every practice lands, `make demo` runs this.)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

enum { N = 100 };

static int reports;
static volatile int watchdog_spoke;

static void count_reports(const char *msg, void *data)
{
    (void)data;
    /* Show the first reports and the watchdog's; count the rest. */
    if (strstr(msg, "is blocking the loop"))
        watchdog_spoke = 1;
    if (++reports <= 3 || strstr(msg, "is blocking the loop"))
        printf("    | %s", msg);
    fflush(stdout);
}

static int polite(void *arg)
{
    (void)arg;
    return weft_sleep_ms(10);
}

static int rude(void *arg)
{
    (void)arg;
    usleep(10000); /* blocks the whole thread, and so every task */
    return 0;
}

static double run_batch(weft_task_fn fn, const char *name)
{
    weft_task *t[N];
    int64_t t0 = weft_now();
    for (int i = 0; i < N; i++)
        t[i] = weft_spawn_named(fn, NULL, NULL, name);
    for (int i = 0; i < N; i++)
        weft_join(t[i], NULL);
    return (double)(weft_now() - t0) / 1e6;
}

/* Not static, so that the backtrace can name it (the demo links with -rdynamic). */
int stuck_in_usleep(void *arg);
int stuck_in_usleep(void *arg)
{
    (void)arg;
    usleep(300000);
    return 0;
}

static int tour(void *arg)
{
    (void)arg;
    weft_set_log(count_reports, NULL);
    weft_set_slow_ms(5);

    printf("1. %d tasks x weft_sleep_ms(10) (non-blocking):\n", N);
    reports = 0;
    double good = run_batch(polite, "polite_sleeper");
    printf("   took %7.1f ms, slow-task reports: %d\n\n", good, reports);

    printf("2. %d tasks x usleep(10000) (blocks the loop):\n", N);
    reports = 0;
    double bad = run_batch(rude, "blocking_sleeper");
    printf("   took %7.1f ms, slow-task reports: %d (%.0fx slower)\n\n", bad, reports,
           bad / (good > 0 ? good : 1));

    printf("3. the watchdog catches a task stuck for 300 ms, while it is stuck:\n");
    weft_set_slow_ms(100);
    weft_debug_enable();
    reports = 0;
    weft_task *t = weft_spawn(stuck_in_usleep, NULL, NULL);
    weft_join(t, NULL);
    /* The watchdog thread may still be writing its report. */
    for (int i = 0; i < 100 && !watchdog_spoke; i++)
        weft_sleep_ms(10);
    printf("   (the watchdog interrupts the blocked call once to read its stack: usleep\n"
           "    returned early with EINTR, which is why it did not last 300 ms)\n");
    printf("   watchdog and detector reports: %d\n", reports);
    weft_set_log(NULL, NULL);
    return 0;
}

int main(void)
{
    return weft_run(tour, NULL);
}
