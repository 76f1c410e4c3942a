/* SPDX-License-Identifier: MIT */
/* Time: the loop's monotonic clock, sleeping, deadlines and timers. */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <stdint.h>

#include <weft/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The time vocabulary (docs/design.md, "Time vocabulary"):
 * - an absolute deadline is a parameter or field named `deadline`: int64
 *   nanoseconds on CLOCK_MONOTONIC (weft_now's clock); WEFT_NO_DEADLINE is
 *   none; a deadline at or before now has expired (the call tries once and
 *   never waits).  Functions taking one end in _until when a relative
 *   variant exists.
 * - a relative timeout is an int64 named `..._ms`: milliseconds counted
 *   from the moment of the call; WEFT_NO_TIMEOUT is none; <= 0 has
 *   expired at once.  In an options struct a zero field means the
 *   documented default (so zeroed structs work) and WEFT_NO_TIMEOUT says
 *   "none" explicitly.
 */
#define WEFT_NO_DEADLINE INT64_MAX
#define WEFT_NO_TIMEOUT INT64_MAX

/*
 * The current time: CLOCK_MONOTONIC in nanoseconds, read at every call
 * (about 20-50 ns through the vDSO), in a task or anywhere else.  So
 * `weft_now() + span` and every relative timeout count from the moment of
 * the call, even when the task has computed for a while without
 * suspending.  (The loop keeps a cached copy for firing timers; it is not
 * what this returns.)  Does not suspend.
 */
int64_t weft_now(void);

/* weft_now() + ms milliseconds (or ns nanoseconds): the clock is read by
 * the call, so the span counts from it.  Saturates at WEFT_NO_DEADLINE (so
 * WEFT_NO_TIMEOUT gives WEFT_NO_DEADLINE); a negative span gives a
 * deadline in the past. */
int64_t weft_deadline_ms(int64_t ms);
int64_t weft_deadline_ns(int64_t ns);

/*
 * Suspend the calling task for `ms` milliseconds / `ns` nanoseconds from
 * the call (<= 0: just yield to the loop's timers; WEFT_NO_TIMEOUT: until
 * cancelled or a scope's deadline passes), or until the absolute
 * `deadline`.  Other tasks run meanwhile.  Returns 0 when the time has
 * passed; -ECANCELED if the task is cancelled; -ETIMEDOUT if an enclosing
 * deadline (deadline scope, shield) expires first; WEFT_ENOTASK outside a
 * task.  Suspends.
 */
int weft_sleep_ms(int64_t ms);
int weft_sleep_ns(int64_t ns);
int weft_sleep_until(int64_t deadline);

/*
 * Deadline scopes: every suspension point between weft_scope_enter and
 * weft_scope_exit fails with -ETIMEDOUT once `deadline` (absolute, see
 * weft_deadline_ms) has passed, and a task suspended at that moment is
 * woken.  Scopes nest (exit in reverse order); the earliest deadline wins.
 * Inside a shield only the shield's own deadline (and scopes entered
 * inside it) count.  The scope lives in caller memory.  Outside a task
 * these are no-ops.  A NULL `scope` is a no-op too (exit, expired and
 * fired return 0).  Do not suspend.
 */
typedef struct weft_scope {
    int64_t deadline;
    int64_t saved;             /* private */
    struct weft_scope *outer;  /* private */
    int active;                /* private */
    int fired;                 /* private */
} weft_scope;
void weft_scope_enter(weft_scope *scope, int64_t deadline);
/* Leave the scope; returns weft_scope_fired(scope). */
int weft_scope_exit(weft_scope *scope);
/*
 * Whether this scope cut something short: a suspension point inside it
 * failed with -ETIMEDOUT because of *this* scope's deadline (Trio's
 * cancelled_caught).  A timeout caused by an outer scope (or a shield's
 * or group's limit) with an earlier deadline is not this scope's, even
 * when this one's deadline has passed too by the time anyone asks.
 * Scopes with the same deadline fire together.
 */
int weft_scope_fired(const weft_scope *scope);
/* Whether the scope's deadline has passed by the clock (whether or not
 * anything noticed; use weft_scope_fired to learn which scope fired). */
int weft_scope_expired(const weft_scope *scope);

/*
 * Run `fn(arg)` as a child task with a time limit (asyncio.wait_for):
 * `timeout_ms` from the call (WEFT_NO_TIMEOUT: none; <= 0: the child gets
 * one turn to finish), or the absolute `deadline` for weft_wait_for_until.
 * When it finishes in time: returns 0 and its status in *status.  When the
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
int weft_wait_for_until(weft_task_fn fn, void *arg, int64_t deadline, int *status);

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
