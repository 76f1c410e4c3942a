/* SPDX-License-Identifier: MIT */
/*
 * The guide's "limit concurrency": 100 jobs, at most 10 at a time
 * (asyncio.Semaphore(10)).  Each job holds a permit while it "fetches"
 * (sleeps 20 ms); the peak concurrency printed at the end is 10, and the
 * whole run takes about 100 / 10 x 20 ms = 200 ms.
 * Also shows weft_map, which does the same bounded fan-out in one call.
 */
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

static weft_sem limit;
static int in_flight, peak;

static int fetch(void *arg)
{
    (void)arg;
    WEFT_SCOPED_PERMIT(permit, &limit); /* released on every way out */
    if (permit.rc < 0)
        return permit.rc;
    if (++in_flight > peak)
        peak = in_flight;
    int rc = weft_sleep_ms(20); /* the request */
    in_flight--;
    return rc;
}

static int app(void *arg)
{
    (void)arg;
    weft_sem_init(&limit, 10);
    weft_group *g = weft_group_new(NULL);
    int64_t t0 = weft_now();
    for (int i = 0; i < 100; i++)
        weft_group_spawn(g, fetch, NULL, NULL);
    int rc = weft_group_wait(g);
    weft_group_free(g);
    printf("semaphore: 100 jobs, peak concurrency %d, %.0f ms (status %d)\n", peak,
           (double)(weft_now() - t0) / 1e6, rc);

    /* The same with weft_map: 100 calls, at most 10 in flight. */
    void *args[100] = {0};
    peak = 0;
    t0 = weft_now();
    weft_sem_init(&limit, 100); /* no limit from the semaphore this time */
    rc = weft_map(fetch, args, 100, 10, NULL);
    printf("weft_map:  100 jobs, peak concurrency %d, %.0f ms (status %d)\n", peak,
           (double)(weft_now() - t0) / 1e6, rc);
    return peak == 10 ? 0 : 1;
}

int main(void) { return weft_run(app, NULL); }
