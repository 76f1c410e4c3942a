/* SPDX-License-Identifier: MIT */
/* Condition variables over weft_lock. */
#include <stdio.h>

#include "sync-internal.h"

static void describe(const weft_task *t, char *buf, size_t n)
{
    snprintf(buf, n, "condition %p", t->wait_obj);
}

void weft_cond_init(weft_cond *cond)
{
    if (cond)
        weft__list_init(&cond->waiters);
}

void weft_cond_notify(weft_cond *cond, int n)
{
    while (cond && n-- > 0 && weft__waitq_grant_first(&cond->waiters))
        ;
}

void weft_cond_notify_all(weft_cond *cond)
{
    while (cond && weft__waitq_grant_first(&cond->waiters))
        ;
}

int weft_cond_wait_until(weft_cond *cond, weft_lock *lock, int64_t deadline)
{
    int rc;
    weft_task *t = weft__sync_task(cond, "weft_cond_wait", &rc);
    if (!t)
        return rc;
    if (!lock)
        return weft__seterr(-EINVAL, "weft_cond_wait: NULL lock");
    if (lock->owner != t)
        return weft__seterr(-EPERM, "weft_cond_wait: the caller must hold the lock");
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_cond_wait: %s", weft_strerror(-ECANCELED));
    weft_lock_release(lock);
    weft__waiter w;
    int64_t started = weft__clock_ns();
    rc = weft__waitq_wait(&cond->waiters, &w, t, deadline, cond, describe);
    if (w.granted && weft__cancel_visible(t)) {
        weft_cond_notify(cond, 1); /* notified and cancelled at once: pass it on */
        rc = -ECANCELED;
    }
    /* Take the lock back on every path, whatever the cancellation or the
     * deadline say: the caller's code after the wait owns the lock. */
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    int lrc = weft_lock_acquire(lock);
    weft_shield_end(&sh);
    if (lrc < 0) /* cannot happen: shielded, no deadline, the lock is not ours */
        return weft__seterr(lrc, "weft_cond_wait: re-acquiring the lock: %s",
                            weft_strerror(lrc));
    return rc == 0 ? 0
                   : weft__wait_failed(rc, "weft_cond_wait", started, deadline,
                                       "a notify of condition %p", (void *)cond);
}

int weft_cond_wait(weft_cond *cond, weft_lock *lock)
{
    return weft_cond_wait_until(cond, lock, WEFT_NO_DEADLINE);
}

int weft_cond_close(weft_cond *cond)
{
    if (!cond)
        return weft__seterr(-EINVAL, "weft_cond_close: NULL condition");
    if (weft__waitq_busy(&cond->waiters) || weft__waitq_grant_pending(cond))
        return weft__seterr(-EBUSY, "weft_cond_close: tasks still wait on the condition");
    return 0;
}
