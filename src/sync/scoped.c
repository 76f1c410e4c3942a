/* SPDX-License-Identifier: MIT */
/* Scoped resources: values that remember what they hold, and releases
 * that work on every exit path, cancellation included. */

#include "sync-internal.h"
#include "weft/scoped.h"

weft_permit weft_permit_acquire_until(weft_sem *sem, int64_t deadline)
{
    int rc = weft_sem_acquire_until(sem, deadline);
    return (weft_permit){.sem = rc == 0 ? sem : NULL, .rc = rc};
}

weft_permit weft_permit_acquire(weft_sem *sem)
{
    return weft_permit_acquire_until(sem, WEFT_NO_DEADLINE);
}

void weft_permit_release(weft_permit *permit)
{
    if (permit && permit->sem) {
        weft_sem_release(permit->sem);
        permit->sem = NULL;
    }
}

weft_lock_hold weft_lock_hold_acquire_until(weft_lock *lock, int64_t deadline)
{
    int rc = weft_lock_acquire_until(lock, deadline);
    return (weft_lock_hold){.lock = rc == 0 ? lock : NULL, .rc = rc};
}

weft_lock_hold weft_lock_hold_acquire(weft_lock *lock)
{
    return weft_lock_hold_acquire_until(lock, WEFT_NO_DEADLINE);
}

void weft_lock_hold_release(weft_lock_hold *hold)
{
    if (hold && hold->lock) {
        weft_lock_release(hold->lock);
        hold->lock = NULL;
    }
}

void weft_fd_release(int *fd)
{
    if (fd && *fd >= 0) {
        weft_close(*fd); /* forgets it in the loop, if any */
        *fd = -1;
    }
}

void weft_task_release(weft_task **task)
{
    if (!task || !*task)
        return;
    weft_cancel(*task);
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    if (weft_join(*task, NULL) < 0) /* outside a task: cannot wait */
        weft_detach(*task);
    weft_shield_end(&sh);
    *task = NULL;
}

void weft_group_release(weft_group **group)
{
    if (!group || !*group)
        return;
    weft_group_cancel(*group);
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    weft_group_wait(*group);
    weft_shield_end(&sh);
    weft_group_free(*group);
    *group = NULL;
}
