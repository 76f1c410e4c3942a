/* SPDX-License-Identifier: MIT */
/*
 * The guide's "collect every task's error": 8 jobs, some fail.  A collect
 * group (asyncio.gather(..., return_exceptions=True)) lets every job run
 * and keeps every status and message; a fail-fast group (TaskGroup) stops
 * the rest at the first failure — and still reports every child.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

static int job(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (weft_sleep_ms(5 * i) < 0)
        return weft_cancelled() ? -ECANCELED : -ETIMEDOUT;
    if (i % 3 == 1)
        return weft_wait_fd(-1, WEFT_READABLE, WEFT_NO_DEADLINE); /* fails: bad fd */
    if (i == 5)
        return -ECONNRESET;
    return (int)i * 10; /* a result */
}

static void run(weft_group_policy policy, const char *title)
{
    weft_group *g = weft_group_new(&(weft_group_opts){.policy = policy});
    for (intptr_t i = 0; i < 8; i++)
        weft_group_spawn(g, job, (void *)i, NULL);
    int rc = weft_group_wait(g);
    printf("%s: wait returned %d (%s)\n", title, rc, weft_strerror(rc));
    for (size_t i = 0; i < weft_group_size(g); i++) {
        int st;
        const char *msg;
        weft_group_status(g, i, &st, &msg);
        printf("  job %zu: %4d %-28s %s\n", i, st, st < 0 ? weft_strerror(st) : "ok", msg);
    }
    weft_group_free(g);
}

static int app(void *arg)
{
    (void)arg;
    run(WEFT_GROUP_COLLECT, "collect (every job runs)");
    run(WEFT_GROUP_FAIL_FAST, "fail-fast (first failure cancels the rest)");
    return 0;
}

int main(void) { return weft_run(app, NULL); }
