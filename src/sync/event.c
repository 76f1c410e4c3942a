/* SPDX-License-Identifier: MIT */
/* An event flag: set wakes every waiter; nothing is consumed. */
#include <stdio.h>

#include "sync-internal.h"

static void describe(const weft_task *t, char *buf, size_t n)
{
    snprintf(buf, n, "event %p", t->wait_obj);
}

void weft_event_init(weft_event *ev)
{
    if (!ev)
        return;
    ev->is_set = false;
    weft__list_init(&ev->waiters);
}

void weft_event_set(weft_event *ev)
{
    if (!ev)
        return;
    ev->is_set = true;
    weft__waitq_wake_all(&ev->waiters, 0);
}

void weft_event_clear(weft_event *ev)
{
    if (ev)
        ev->is_set = false;
}

bool weft_event_is_set(const weft_event *ev) { return ev && ev->is_set; }

int weft_event_wait_until(weft_event *ev, int64_t deadline)
{
    int rc;
    weft_task *t = weft__sync_task(ev, "weft_event_wait", &rc);
    if (!t)
        return rc;
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_event_wait: %s", weft_strerror(-ECANCELED));
    if (ev->is_set) {
        weft__coop_spend(t);
        return 0;
    }
    weft__waiter w;
    int64_t started = weft__clock_ns();
    rc = weft__waitq_wait(&ev->waiters, &w, t, deadline, ev, describe);
    return rc == 0 ? 0
                   : weft__wait_failed(rc, "weft_event_wait", started, deadline, "event %p",
                                       (void *)ev);
}

int weft_event_wait(weft_event *ev) { return weft_event_wait_until(ev, WEFT_NO_DEADLINE); }

int weft_event_close(weft_event *ev)
{
    if (!ev)
        return weft__seterr(-EINVAL, "weft_event_close: NULL event");
    if (weft__waitq_busy(&ev->waiters))
        return weft__seterr(-EBUSY, "weft_event_close: tasks still wait on the event");
    return 0;
}
