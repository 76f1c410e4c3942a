/* SPDX-License-Identifier: MIT */
/* The loop's clock, deadlines and sleeping. */
#include <errno.h>

#include "core-internal.h"

/* Every call reads the clock, so a span counts from the call even after a
 * task computed for a while without suspending (the loop's cached time
 * lags by that long).  The read also brings the cache up to date. */
int64_t weft_now(void)
{
    int64_t now = weft__clock_ns();
    weft_loop *loop = weft__loop();
    if (loop && now > loop->now)
        loop->now = now;
    return now;
}

int64_t weft_deadline_ns(int64_t ns)
{
    int64_t now = weft_now();
    if (ns > 0 && now > WEFT_NO_DEADLINE - ns)
        return WEFT_NO_DEADLINE;
    return now + ns;
}

int64_t weft_deadline_ms(int64_t ms)
{
    if (ms > WEFT_NO_DEADLINE / 1000000)
        return WEFT_NO_DEADLINE;
    if (ms < -(WEFT_NO_DEADLINE / 1000000))
        ms = -(WEFT_NO_DEADLINE / 1000000);
    return weft_deadline_ns(ms * 1000000);
}

int weft_sleep_until(int64_t deadline)
{
    weft_task *t = weft__require_task("weft_sleep");
    if (!t)
        return WEFT_ENOTASK;
    if (deadline <= t->loop->now) {
        /* Already due: still give the others a turn, as sleep(0) does. */
        int rc = weft_yield();
        return rc;
    }
    t->wait_kind = WEFT__WAIT_SLEEP;
    int64_t started = weft__clock_ns();
    int rc = weft__wait(t, deadline, 0);
    if (rc < 0)
        weft__wait_failed(rc, "weft_sleep", started, deadline, "its wake-up time");
    return rc;
}

int weft_sleep_ns(int64_t ns)
{
    return weft_sleep_until(weft_deadline_ns(ns));
}

int weft_sleep_ms(int64_t ms)
{
    return weft_sleep_until(weft_deadline_ms(ms));
}
