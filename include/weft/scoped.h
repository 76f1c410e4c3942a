/* SPDX-License-Identifier: MIT */
/*
 * Scoped resources — the guide's "async context managers": a resource
 * taken in a task is released on every way out of the scope: normal
 * return, error, cancellation, timeout.
 *
 * Two forms:
 *
 * 1. GCC/Clang: WEFT_SCOPED_* declare a variable whose cleanup runs when
 *    it goes out of scope (`__attribute__((cleanup))`: return, break,
 *    goto; not longjmp):
 *
 *        WEFT_SCOPED_PERMIT(permit, &sem);   // acquires, may fail
 *        if (permit.rc < 0)
 *            return permit.rc;               // nothing held, nothing released
 *        return fetch(url);                  // released after fetch, on any path
 *
 * 2. Portable C: the same value types and functions, called explicitly
 *    with one exit label:
 *
 *        weft_permit permit = weft_permit_acquire(&sem);
 *        if (permit.rc < 0)
 *            return permit.rc;
 *        int rc = fetch(url);
 *        weft_permit_release(&permit);
 *        return rc;
 *
 * Every release here works while the task is being cancelled: releasing
 * a permit or a lock never suspends, and cleanups that must wait (joining
 * a task, a group) run under a shield, so cancellation cannot cut them
 * short.  The release functions are idempotent, and accept NULL (a no-op);
 * an acquire of a NULL object returns rc -EINVAL.
 */
#ifndef WEFT_SCOPED_H
#define WEFT_SCOPED_H

#include <stdint.h>

#include <weft/group.h>
#include <weft/sync.h>
#include <weft/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A semaphore permit held by a scope.  rc: 0 when held, else the error of
 * the acquire (nothing is held then). */
typedef struct weft_permit {
    weft_sem *sem; /* NULL when not held */
    int rc;
} weft_permit;

/* Acquire a permit of `sem` into a weft_permit value.  Suspends. */
weft_permit weft_permit_acquire(weft_sem *sem);
weft_permit weft_permit_acquire_until(weft_sem *sem, int64_t deadline);
/* Release it if held.  Does not suspend. */
void weft_permit_release(weft_permit *permit);

/* A lock held by a scope; rc as for weft_permit. */
typedef struct weft_lock_hold {
    weft_lock *lock; /* NULL when not held */
    int rc;
} weft_lock_hold;

weft_lock_hold weft_lock_hold_acquire(weft_lock *lock);
weft_lock_hold weft_lock_hold_acquire_until(weft_lock *lock, int64_t deadline);
void weft_lock_hold_release(weft_lock_hold *hold);

/* Close *fd with weft_close when >= 0, then set it to -1. */
void weft_fd_release(int *fd);

/* Cancel *task, join it (shielded: the task really finishes), set NULL.
 * For a child task that must not outlive the scope. */
void weft_task_release(weft_task **task);

/* Cancel every running child of *group, wait for them (shielded), free
 * the group, set NULL. */
void weft_group_release(weft_group **group);

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_SCOPED_PERMIT(var, sem) \
    __attribute__((cleanup(weft_permit_release))) weft_permit var = weft_permit_acquire(sem)
#define WEFT_SCOPED_LOCK(var, lock) \
    __attribute__((cleanup(weft_lock_hold_release))) weft_lock_hold var = \
        weft_lock_hold_acquire(lock)
/* `WEFT_SCOPED_FD(fd) = socket(...);` closed at scope exit. */
#define WEFT_SCOPED_FD(var) __attribute__((cleanup(weft_fd_release))) int var
/* `WEFT_SCOPED_TASK(t) = weft_spawn(...);` cancelled and joined at exit. */
#define WEFT_SCOPED_TASK(var) __attribute__((cleanup(weft_task_release))) weft_task *var
/* `WEFT_SCOPED_GROUP(g) = weft_group_new(NULL);` drained and freed at exit. */
#define WEFT_SCOPED_GROUP(var) __attribute__((cleanup(weft_group_release))) weft_group *var
/* Any type: `WEFT_CLEANUP(my_free) struct thing *p = ...;` calls my_free(&p). */
#define WEFT_CLEANUP(fn) __attribute__((cleanup(fn)))
#endif

#ifdef __cplusplus
}
#endif
#endif
