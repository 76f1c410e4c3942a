/* SPDX-License-Identifier: MIT */
/*
 * Synchronisation between tasks of one loop: semaphores, locks, events,
 * conditions and bounded queues — the guide's "limit concurrency".
 *
 * Shared rules:
 * - Objects live in caller memory: `init` them, `close` them when no task
 *   uses them any more.  They belong to one loop; they are not thread-safe.
 * - Waits are FIFO-fair: waiters are served in arrival order, and a
 *   newcomer never overtakes a waiter.
 * - Every wait takes a deadline (the `_until` variants; WEFT_NO_DEADLINE
 *   for none) and honours cancellation: it fails with -ETIMEDOUT or
 *   -ECANCELED, and then it has taken nothing — a cancelled or timed-out
 *   waiter never consumes a permit, the lock or an item.  A waiter that
 *   was handed a permit (or lock, or item) and was cancelled before it
 *   could run passes it on to the next waiter and reports -ECANCELED.
 * - Errors: also WEFT_ENOTASK outside a task, -EINVAL for a NULL object,
 *   each with weft_errmsg naming the function (a try_ call's -EAGAIN is an
 *   answer, not a failure: it sets no message).  On a NULL object the
 *   calls that return nothing (init of a lock, event or condition, set,
 *   clear, notify, shutdown) are no-ops, and the getters answer 0, false
 *   or NULL.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/private.h>
#include <weft/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ semaphore */

typedef struct weft_sem {
    long count;               /* private */
    long bound;               /* private: 0 = unbounded */
    struct weft__link waiters; /* private */
} weft_sem;

/* Initialise with `permits` (>= 0).  The bounded variant refuses a release
 * that would take the count above `permits` (a release without acquire is
 * a bug it catches).  Returns 0 or -EINVAL.  Does not suspend. */
int weft_sem_init(weft_sem *sem, long permits);
int weft_sem_init_bounded(weft_sem *sem, long permits);

/* Take a permit, waiting while none is free.  Returns 0, -ECANCELED,
 * -ETIMEDOUT.  Suspends (only when no permit is free). */
int weft_sem_acquire(weft_sem *sem);
int weft_sem_acquire_until(weft_sem *sem, int64_t deadline);

/* Take a permit if one is free now: 0 or -EAGAIN.  Does not suspend. */
int weft_sem_try_acquire(weft_sem *sem);

/* Give a permit back; the first waiter (if any) gets it directly.
 * Returns 0, or -EOVERFLOW for a bounded semaphore already at its bound
 * (or any semaphore at LONG_MAX).
 * Does not suspend; may be called from any task of the loop. */
int weft_sem_release(weft_sem *sem);

/* Free permits now. */
long weft_sem_value(const weft_sem *sem);

/* Finish with `sem`: -EBUSY while tasks wait on it, else 0. */
int weft_sem_close(weft_sem *sem);

/* ------------------------------------------------------------ lock */

typedef struct weft_lock {
    weft_task *owner;         /* private */
    struct weft__link waiters; /* private */
} weft_lock;

/* A mutual-exclusion lock owned by the task that holds it (not
 * recursive).  weft_dump_tasks shows the owner to tasks waiting for it. */
void weft_lock_init(weft_lock *lock);

/* Returns 0, -EDEADLK (the caller holds it already), -ECANCELED,
 * -ETIMEDOUT.  Suspends while another task holds it. */
int weft_lock_acquire(weft_lock *lock);
int weft_lock_acquire_until(weft_lock *lock, int64_t deadline);

/* 0; -EAGAIN when another task holds it; -EDEADLK when the caller does.
 * Does not suspend. */
int weft_lock_try_acquire(weft_lock *lock);

/* Release; the first waiter becomes the owner.  Returns 0, or -EPERM when
 * the caller is not the owner.  Does not suspend. */
int weft_lock_release(weft_lock *lock);

/* The owner, or NULL. */
weft_task *weft_lock_owner(const weft_lock *lock);

/* -EBUSY while held or waited on, else 0. */
int weft_lock_close(weft_lock *lock);

/* ------------------------------------------------------------ event */

typedef struct weft_event {
    bool is_set;              /* private */
    struct weft__link waiters; /* private */
} weft_event;

/* A flag tasks can wait for (asyncio.Event).  Starts clear. */
void weft_event_init(weft_event *ev);

/* Set the flag and wake every waiter; waits return at once until cleared.
 * Does not suspend. */
void weft_event_set(weft_event *ev);
void weft_event_clear(weft_event *ev);
bool weft_event_is_set(const weft_event *ev);

/* Wait until the flag is set: 0, -ECANCELED, -ETIMEDOUT.  Suspends unless
 * already set.  (An event hands nothing over, so a waiter woken by a set
 * and cancelled before it runs returns 0: the set happened first.) */
int weft_event_wait(weft_event *ev);
int weft_event_wait_until(weft_event *ev, int64_t deadline);

/* -EBUSY while waited on, else 0. */
int weft_event_close(weft_event *ev);

/* ------------------------------------------------------------ condition */

typedef struct weft_cond {
    struct weft__link waiters; /* private */
} weft_cond;

void weft_cond_init(weft_cond *cond);

/*
 * Release `lock` (which the caller must hold), wait for a notify, and take
 * the lock again before returning — on every path: also when cancelled or
 * timed out (the re-acquire is shielded from cancellation), so the caller
 * always holds the lock afterwards.  Returns 0, -ECANCELED, -ETIMEDOUT, or
 * -EPERM (lock not held: nothing happens).  Spurious wake-ups are possible
 * in principle: check the predicate in a loop.  Suspends.
 */
int weft_cond_wait(weft_cond *cond, weft_lock *lock);
int weft_cond_wait_until(weft_cond *cond, weft_lock *lock, int64_t deadline);

/* Wake up to `n` waiters / all of them.  Does not suspend. */
void weft_cond_notify(weft_cond *cond, int n);
void weft_cond_notify_all(weft_cond *cond);

int weft_cond_close(weft_cond *cond);

/* ------------------------------------------------------------ queue */

typedef struct weft_queue {
    void **ring;              /* private */
    size_t ring_cap, head, len;
    size_t capacity;
    size_t reserved_items;    /* items promised to woken getters */
    size_t reserved_slots;    /* slots promised to woken putters */
    bool shut;
    struct weft__link getters, putters;
} weft_queue;

/*
 * A bounded FIFO queue of pointers between tasks (asyncio.Queue with a
 * maxsize).  `capacity` >= 1.  Returns 0, -EINVAL, -ENOMEM.  Does not
 * suspend.  The queue does not own the items.
 */
int weft_queue_init(weft_queue *q, size_t capacity);

/* Append `item`, waiting while the queue is full.  Returns 0, WEFT_ECLOSED
 * (shut down: at once, also for waiting putters), -ECANCELED, -ETIMEDOUT.
 * Suspends only when full. */
int weft_queue_put(weft_queue *q, void *item);
int weft_queue_put_until(weft_queue *q, void *item, int64_t deadline);
int weft_queue_try_put(weft_queue *q, void *item); /* 0, -EAGAIN, WEFT_ECLOSED */

/* Take the oldest item into *item, waiting while the queue is empty.
 * After a shutdown the remaining items are still delivered, then
 * WEFT_ECLOSED.  Returns 0, WEFT_ECLOSED, -ECANCELED, -ETIMEDOUT.
 * Suspends only when empty. */
int weft_queue_get(weft_queue *q, void **item);
int weft_queue_get_until(weft_queue *q, void **item, int64_t deadline);
int weft_queue_try_get(weft_queue *q, void **item); /* 0, -EAGAIN, WEFT_ECLOSED */

/* Refuse further puts (waiting putters fail with WEFT_ECLOSED); getters
 * drain what is left, then get WEFT_ECLOSED.  Does not suspend. */
void weft_queue_shutdown(weft_queue *q);

/* Items in the queue. */
size_t weft_queue_len(const weft_queue *q);

/* Free the queue's memory: -EBUSY while tasks wait on it, else 0.  A closed
 * queue acts as shut down and empty (WEFT_ECLOSED) until initialised again. */
int weft_queue_close(weft_queue *q);

#ifdef __cplusplus
}
#endif
#endif
