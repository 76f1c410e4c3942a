/* SPDX-License-Identifier: MIT */
/* What every primitive of src/sync shares: FIFO wait queues of waiters
 * that live on the waiting task's stack. */
#ifndef WEFT_SYNC_INTERNAL_H
#define WEFT_SYNC_INTERNAL_H

#include <errno.h>

#include "../core/core-internal.h"

typedef struct weft__waiter {
    weft__list link;
    weft_task *task;
    bool granted; /* handed what it waited for (permit, lock, slot, item) */
} weft__waiter;

typedef void (*weft__describe_fn)(const weft_task *t, char *buf, size_t n);

/* Queue the current task `t` on `q` and suspend until woken, `deadline`,
 * or cancellation.  Returns the wake code; `w->granted` tells whether a
 * waker handed it what it waited for.  The waiter is off `q` afterwards. */
static inline int weft__waitq_wait(weft__list *q, weft__waiter *w, weft_task *t,
                                   int64_t deadline, const void *obj, weft__describe_fn describe)
{
    w->task = t;
    w->granted = false;
    weft__list_push_back(q, &w->link);
    t->wait_kind = WEFT__WAIT_OTHER;
    t->wait_obj = obj;
    t->wait_describe = describe;
    int rc = weft__wait(t, deadline, -ETIMEDOUT);
    weft__list_remove(&w->link);
    return rc;
}

/* Pop the first waiter that is still suspended (waiters already woken by
 * their deadline or a cancellation are dropped: they take nothing). */
static inline weft__waiter *weft__waitq_pop(weft__list *q)
{
    weft__list *n;
    while ((n = weft__list_pop_front(q))) {
        weft__waiter *w = weft__container_of(n, weft__waiter, link);
        if (w->task->state == WEFT__SUSPENDED)
            return w;
    }
    return NULL;
}

/* For close: whether a task still waits on `q`.  Waiters that no longer
 * wait -- woken by their deadline or a cancellation, not run yet -- are
 * unlinked on the way: they take nothing, and once unlinked they never
 * touch the object again, so its memory may be reused as soon as close
 * succeeds.  (Left linked, each would write to the list head in the
 * object when it runs.) */
static inline bool weft__waitq_busy(weft__list *q)
{
    bool busy = false;
    weft__list_foreach(it, q) {
        if (weft__container_of(it, weft__waiter, link)->task->state == WEFT__SUSPENDED)
            busy = true;
        else
            weft__list_remove(it);
    }
    return busy;
}

/* For close: whether a waiter on `obj` was granted what it waited for and
 * has not run yet.  Such a waiter is off the wait queue but still inside
 * the wait call, and if it turns out to be cancelled it passes the grant
 * on through `obj` (semaphores, conditions).  It sits in the run queue,
 * woken with code 0 while its wait on `obj` is still recorded. */
static inline bool weft__waitq_grant_pending(const void *obj)
{
    weft_loop *loop = weft__loop();
    for (weft_task *t = loop ? loop->rq_head : NULL; t; t = t->next_ready)
        if (t->state == WEFT__READY && t->wait_kind == WEFT__WAIT_OTHER && t->wait_obj == obj &&
            weft__run(t)->wake_code == 0)
            return true;
    return false;
}

/* Wake every suspended waiter of `q` with `code` (not granted). */
static inline void weft__waitq_wake_all(weft__list *q, int code)
{
    weft__waiter *w;
    while ((w = weft__waitq_pop(q)))
        weft__wake(w->task, code);
}

/* Hand the first suspended waiter what it waits for and wake it; false
 * when nobody waits. */
static inline bool weft__waitq_grant_first(weft__list *q)
{
    weft__waiter *w = weft__waitq_pop(q);
    if (!w)
        return false;
    w->granted = true;
    weft__wake(w->task, 0);
    return true;
}

/* The calling task, or NULL with the error set; also checks `obj`. */
static inline weft_task *weft__sync_task(const void *obj, const char *fn, int *rc)
{
    weft_task *t = weft__require_task(fn);
    if (!t) {
        *rc = WEFT_ENOTASK;
        return NULL;
    }
    if (!obj) {
        *rc = weft__seterr(-EINVAL, "%s: NULL object", fn);
        return NULL;
    }
    return t;
}

#endif
