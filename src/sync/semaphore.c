/* SPDX-License-Identifier: MIT */
/* Counting semaphore with direct hand-off: a release gives the permit to
 * the first waiter, so the count stays 0 while anyone waits and a
 * newcomer can never overtake a waiter. */
#include <limits.h>
#include <stdio.h>

#include "sync-internal.h"

static void describe(const weft_task *t, char *buf, size_t n)
{
    const weft_sem *sem = t->wait_obj;
    snprintf(buf, n, "semaphore %p (%ld free)", (const void *)sem, sem->count);
}

static int sem_init(weft_sem *sem, long permits, long bound, const char *fn)
{
    if (!sem || permits < 0)
        return weft__seterr(-EINVAL, "%s: %s", fn,
                            sem ? "negative permit count" : "NULL semaphore");
    sem->count = permits;
    sem->bound = bound;
    weft__list_init(&sem->waiters);
    return 0;
}

int weft_sem_init(weft_sem *sem, long permits)
{
    return sem_init(sem, permits, 0, "weft_sem_init");
}

int weft_sem_init_bounded(weft_sem *sem, long permits)
{
    /* A bound of 0 would mean "unbounded": a zero-permit bounded
     * semaphore can never be released anyway, so refuse it. */
    if (sem && permits == 0)
        return weft__seterr(-EINVAL, "weft_sem_init_bounded: a bounded semaphore needs "
                                     "at least one permit");
    return sem_init(sem, permits, permits, "weft_sem_init_bounded");
}

int weft_sem_try_acquire(weft_sem *sem)
{
    if (!sem)
        return weft__seterr(-EINVAL, "weft_sem_try_acquire: NULL semaphore");
    if (sem->count > 0) {
        sem->count--;
        return 0;
    }
    return -EAGAIN;
}

int weft_sem_release(weft_sem *sem)
{
    if (!sem)
        return weft__seterr(-EINVAL, "weft_sem_release: NULL semaphore");
    if (weft__waitq_grant_first(&sem->waiters))
        return 0;
    if (sem->bound && sem->count >= sem->bound)
        return weft__seterr(-EOVERFLOW, "weft_sem_release: released more often than "
                                        "acquired (bound %ld)", sem->bound);
    if (sem->count == LONG_MAX)
        return weft__seterr(-EOVERFLOW, "weft_sem_release: the count is at LONG_MAX");
    sem->count++;
    return 0;
}

int weft_sem_acquire_until(weft_sem *sem, int64_t deadline)
{
    int rc;
    weft_task *t = weft__sync_task(sem, "weft_sem_acquire", &rc);
    if (!t)
        return rc;
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_sem_acquire: %s", weft_strerror(-ECANCELED));
    if (sem->count > 0) {
        sem->count--;
        weft__coop_spend(t);
        return 0;
    }
    weft__waiter w;
    int64_t started = weft__clock_ns();
    rc = weft__waitq_wait(&sem->waiters, &w, t, deadline, sem, describe);
    if (w.granted) {
        if (!weft__cancel_visible(t))
            return 0;
        weft_sem_release(sem); /* woken and cancelled at once: pass it on */
        rc = -ECANCELED;
    }
    return weft__wait_failed(rc, "weft_sem_acquire", started, deadline,
                             "a permit of semaphore %p", (void *)sem);
}

int weft_sem_acquire(weft_sem *sem) { return weft_sem_acquire_until(sem, WEFT_NO_DEADLINE); }

long weft_sem_value(const weft_sem *sem) { return sem ? sem->count : 0; }

int weft_sem_close(weft_sem *sem)
{
    if (!sem)
        return weft__seterr(-EINVAL, "weft_sem_close: NULL semaphore");
    if (weft__waitq_busy(&sem->waiters) || weft__waitq_grant_pending(sem))
        return weft__seterr(-EBUSY, "weft_sem_close: tasks still wait on the semaphore");
    return 0;
}
