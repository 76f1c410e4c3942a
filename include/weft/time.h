/* SPDX-License-Identifier: MIT */
/* Time: the loop's monotonic clock, sleeping, deadlines and timers. */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deadlines are absolute CLOCK_MONOTONIC times in nanoseconds. */
#define WEFT_NO_DEADLINE INT64_MAX

/*
 * The loop's current time (CLOCK_MONOTONIC, ns).  Read once per loop
 * iteration, and again at a task switch when it lags by more than a few
 * milliseconds, so it does not move while a task runs and is never far
 * behind; outside a loop it reads the clock.  Does not suspend.
 */
int64_t weft_now(void);

/* weft_now() + ms milliseconds (or ns nanoseconds), saturating at
 * WEFT_NO_DEADLINE; a negative span gives a deadline in the past. */
int64_t weft_deadline_ms(int64_t ms);
int64_t weft_deadline_ns(int64_t ns);

/*
 * Suspend the calling task for `ms` milliseconds / `ns` nanoseconds
 * (<= 0: just yield to the loop's timers), or until the absolute
 * `deadline`.  Other tasks run meanwhile.  Returns 0 when the time has
 * passed; -ECANCELED if the task is cancelled; -ETIMEDOUT if an enclosing
 * deadline (shield, later: deadline scope) expires first; WEFT_ENOTASK
 * outside a task.  Suspends.
 */
int weft_sleep_ms(int64_t ms);
int weft_sleep_ns(int64_t ns);
int weft_sleep_until(int64_t deadline);

/*
 * Deadline scopes: every suspension point between weft_scope_enter and
 * weft_scope_exit fails with -ETIMEDOUT once `deadline` (absolute, see
 * weft_deadline_ms) has passed, and a task suspended at that moment is
 * woken.  Scopes nest (exit in reverse order); the earliest deadline wins.
 * After a -ETIMEDOUT, weft_scope_expired tells whether *this* scope's
 * deadline passed or an outer one's.  Inside a shield only the shield's
 * own deadline counts.  The scope lives in caller memory.  Outside a task
 * these are no-ops.  A NULL `scope` is a no-op too (exit and expired
 * return 0).  Do not suspend.
 */
typedef struct weft_scope {
    int64_t deadline;
    int64_t saved;  /* private */
    int active;     /* private */
} weft_scope;
void weft_scope_enter(weft_scope *scope, int64_t deadline);
/* Leave the scope; returns weft_scope_expired(scope). */
int weft_scope_exit(weft_scope *scope);
/* Whether the scope's own deadline has passed. */
int weft_scope_expired(const weft_scope *scope);

/*
 * Run `fn(arg)` as a child task with a time limit (asyncio.wait_for).  When
 * it finishes in time: returns 0 and its status in *status.  When the
 * limit passes first: the child is cancelled (cause: deadline), and the
 * call returns -ETIMEDOUT only after the child has really finished, with
 * whatever it returned in *status.  A child that finishes in the same loop
 * iteration as the deadline counts as finished in time: its result is
 * never lost.  When the caller is cancelled: the child is cancelled and
 * waited for too, and the call returns -ECANCELED.  (asyncio's wait_for
 * could return before the cancelled inner task finished, lose a result that
 * arrived with the timeout, and swallow the caller's cancellation; weft's
 * does none of these.)  Suspends.
 */
int weft_wait_for(weft_task_fn fn, void *arg, int64_t timeout_ms, int *status);
int weft_wait_for_deadline(weft_task_fn fn, void *arg, int64_t deadline, int *status);

/*
 * A one-shot callback timer in caller memory, the counterpart of asyncio's
 * loop.call_later.  The callback runs on the loop between tasks (it must
 * not suspend; it may spawn tasks or restart its timer).  The caller owns
 * the memory and keeps it valid while the timer is active.
 */
typedef struct weft_timer weft_timer;
typedef void (*weft_timer_fn)(weft_timer *timer);
struct weft_timer {
    int64_t deadline;   /* read-only for users */
    weft_timer_fn fn;
    void *data;         /* free for the user */
    uint32_t heap_index; /* private: position in the loop's heap, 0 = inactive */
    uint32_t kind;       /* private */
};

/* Prepare `timer` to call `fn`.  NULL is a no-op.  Does not suspend. */
void weft_timer_init(weft_timer *timer, weft_timer_fn fn, void *data);

/*
 * Arm (or re-arm) `timer` to fire at `deadline` on the calling thread's
 * loop.  Timers with equal deadlines fire in the order they were armed.
 * Returns 0, WEFT_ENOLOOP without a loop, -EINVAL (NULL timer, or no
 * callback), -ENOMEM.  Does not suspend.
 */
int weft_timer_start(weft_timer *timer, int64_t deadline);

/* Disarm `timer`; a no-op if it is not armed (or NULL).  O(log n). */
void weft_timer_stop(weft_timer *timer);

/* Whether `timer` is armed (0 for NULL). */
int weft_timer_active(const weft_timer *timer);

#ifdef __cplusplus
}
#endif
#endif
