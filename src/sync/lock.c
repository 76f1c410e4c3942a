/* SPDX-License-Identifier: MIT */
/* A task-owned lock with direct hand-off to the first waiter. */
#include <stdio.h>

#include "sync-internal.h"

static void describe(const weft_task *t, char *buf, size_t n)
{
    const weft_lock *lock = t->wait_obj;
    snprintf(buf, n, "lock %p held by '%s'", (const void *)lock,
             lock->owner ? lock->owner->name : "nobody");
}

void weft_lock_init(weft_lock *lock)
{
    if (!lock)
        return;
    lock->owner = NULL;
    weft__list_init(&lock->waiters);
}

int weft_lock_try_acquire(weft_lock *lock)
{
    weft_task *t = weft_current();
    if (!lock)
        return weft__seterr(-EINVAL, "weft_lock_try_acquire: NULL lock");
    if (!t) {
        weft__no_task("weft_lock_try_acquire");
        return WEFT_ENOTASK;
    }
    if (lock->owner)
        return lock->owner == t ? -EDEADLK : -EAGAIN;
    lock->owner = t;
    return 0;
}

int weft_lock_release(weft_lock *lock)
{
    weft_task *t = weft_current();
    if (!lock)
        return weft__seterr(-EINVAL, "weft_lock_release: NULL lock");
    if (!t || lock->owner != t)
        return weft__seterr(-EPERM, "weft_lock_release: the caller does not hold the lock "
                                    "(held by '%s')",
                            lock->owner ? lock->owner->name : "nobody");
    weft__waiter *w = weft__waitq_pop(&lock->waiters);
    if (!w) {
        lock->owner = NULL;
        return 0;
    }
    lock->owner = w->task;
    w->granted = true;
    weft__wake(w->task, 0);
    return 0;
}

int weft_lock_acquire_until(weft_lock *lock, int64_t deadline)
{
    int rc;
    weft_task *t = weft__sync_task(lock, "weft_lock_acquire", &rc);
    if (!t)
        return rc;
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_lock_acquire: %s", weft_strerror(-ECANCELED));
    if (!lock->owner) {
        lock->owner = t;
        weft__coop_spend(t);
        return 0;
    }
    if (lock->owner == t)
        return weft__seterr(-EDEADLK, "weft_lock_acquire: task '%s' holds the lock already",
                            t->name);
    weft__waiter w;
    int64_t started = weft__clock_ns();
    rc = weft__waitq_wait(&lock->waiters, &w, t, deadline, lock, describe);
    if (w.granted) {
        if (!weft__cancel_visible(t))
            return 0;
        weft_lock_release(lock); /* woken and cancelled at once: pass it on */
        rc = -ECANCELED;
    }
    /* Not lock->owner: a waiter that failed must not touch the lock, which
     * may have been closed and freed meanwhile (see weft__waitq_busy). */
    return weft__wait_failed(rc, "weft_lock_acquire", started, deadline, "lock %p",
                             (void *)lock);
}

int weft_lock_acquire(weft_lock *lock) { return weft_lock_acquire_until(lock, WEFT_NO_DEADLINE); }

weft_task *weft_lock_owner(const weft_lock *lock) { return lock ? lock->owner : NULL; }

int weft_lock_close(weft_lock *lock)
{
    if (!lock)
        return weft__seterr(-EINVAL, "weft_lock_close: NULL lock");
    if (weft__waitq_busy(&lock->waiters) || lock->owner)
        return weft__seterr(-EBUSY, "weft_lock_close: the lock is held or waited on");
    return 0;
}
