/* SPDX-License-Identifier: MIT */
/* Tasks: cheap stackful coroutines run by the loop of their thread. */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_task weft_task;

/* A task's body.  Its return value is the task's status: 0 or a positive
 * count for success, a negative error code for failure (by convention). */
typedef int (*weft_task_fn)(void *arg);

/* Options for weft_spawn; zero-initialise, NULL means all defaults. */
typedef struct weft_task_opts {
    /* Name for logs, dumps and the slow-task detector.  Copied (at most
     * WEFT_TASK_NAME_MAX - 1 bytes).  Default: the function's name. */
    const char *name;
    /* Usable stack size in bytes; rounded up to whole pages.  0 = the
     * default, WEFT_STACK_DEFAULT (256 KiB), committed lazily. */
    size_t stack_size;
} weft_task_opts;

#define WEFT_TASK_NAME_MAX 32
#define WEFT_STACK_DEFAULT ((size_t)256 * 1024)
#define WEFT_STACK_MIN ((size_t)16 * 1024)

/*
 * Create a loop on the calling thread, run `main(arg)` as its first task
 * (named "main") and return when it and every task spawned since have
 * finished.  Returns main's status, or a negative error when the loop could
 * not start: -EBUSY if this thread already runs a loop, -ENOMEM.
 */
int weft_run(weft_task_fn main, void *arg);

/*
 * Start `fn(arg)` as a new task on the calling thread's loop.  The task
 * first runs when the caller next suspends (spawn never switches).  Returns
 * a handle to pass to weft_join (or weft_detach) exactly once; NULL on
 * failure with weft_errmsg() set (no loop on this thread, out of memory,
 * stack mapping failed).  Does not suspend.  May be called from a task or
 * from a function posted to the loop.
 *
 * The macro names the task after the function unless opts->name is set.
 * Its options argument may be a compound literal with several fields
 * (`weft_spawn(f, arg, &(weft_task_opts){.name = "x", .stack_size = n})`):
 * the macro is variadic so the literal's commas do not split it.
 */
weft_task *weft_spawn_named(weft_task_fn fn, void *arg, const weft_task_opts *opts,
                            const char *default_name);
#define weft_spawn(fn, arg, ...) weft_spawn_named((fn), (arg), (__VA_ARGS__), #fn)

/*
 * Wait for `task` to finish and store its status in *status (may be NULL).
 * On success the handle is consumed (freed).  Suspends.
 * Errors: -ECANCELED (the caller was cancelled), -ETIMEDOUT (the caller's
 * deadline passed), -EDEADLK (a task joining itself), -EINVAL (NULL task),
 * WEFT_ENOTASK.  On error the handle stays valid: join again or detach.
 */
int weft_join(weft_task *task, int *status);

/* As weft_join, failing with -ETIMEDOUT at the absolute monotonic time
 * `deadline` (nanoseconds, see weft_now; WEFT_NO_DEADLINE for none). */
int weft_join_until(weft_task *task, int *status, int64_t deadline);

/*
 * Give up the handle: the task runs on and frees itself when it finishes.
 * NULL is a no-op.  Does not suspend.
 */
void weft_detach(weft_task *task);

/*
 * Request cancellation of `task`.  Cancellation is level-triggered: from
 * now on every suspension point in the task (sleep, fd wait, join, ...)
 * returns -ECANCELED at once, until the task returns, except inside a
 * shield.  A task suspended right now is woken with -ECANCELED; a task that
 * has not started yet starts and sees -ECANCELED at its first suspension.
 * Cancelling a finished task is a no-op.  Returns 0, or -EINVAL for NULL
 * (with weft_errmsg set).
 * Does not suspend; the caller does not wait for the task to finish (join
 * does that).
 */
int weft_cancel(weft_task *task);

/* Why a task was cancelled (kept from the first cancellation; shown by
 * weft_dump_tasks). */
typedef enum weft_cancel_cause {
    WEFT_CANCEL_NONE = 0,
    WEFT_CANCEL_EXPLICIT,       /* weft_cancel */
    WEFT_CANCEL_DEADLINE,       /* weft_wait_for or a group wait timed out */
    WEFT_CANCEL_SIBLING_FAILED, /* a fail-fast group's sibling failed */
    WEFT_CANCEL_GROUP,          /* weft_group_cancel, or its group was freed */
    WEFT_CANCEL_PARENT,         /* the task waiting for it was cancelled */
} weft_cancel_cause;

/* The cause of `task`'s cancellation (WEFT_CANCEL_NONE if not cancelled,
 * or for NULL), and a name for it ("sibling failed", ...; "unknown" for a
 * value outside the enum). */
weft_cancel_cause weft_task_cancel_cause(const weft_task *task);
const char *weft_cancel_cause_name(weft_cancel_cause cause);

/* Whether the calling task has been cancelled (outside a shield).  Lets a
 * long computation that never suspends notice a cancellation. */
bool weft_cancelled(void);

/*
 * Let every other ready task run once, then continue.  (Above the start
 * limit, see weft_set_start_limit, tasks not started yet may wait longer.)
 * Returns 0;
 * -ECANCELED at once (without yielding) if the task is cancelled;
 * -ETIMEDOUT at once if its deadline (scope or shield) has passed;
 * WEFT_ENOTASK outside a task.  Suspends.
 */
int weft_yield(void);

/*
 * The start limit: while fewer than `n` tasks of a loop have started and
 * not finished, ready tasks run in one FIFO order, new ones included.
 * Beyond it, tasks already started go first and a new task starts when
 * none of them is ready, or after every 8 of them: a burst of spawns (say
 * 100,000 tasks behind a 10-permit semaphore) then holds about `n` stacks
 * instead of one per task, and runs on warm ones.  Nothing starves and no
 * wait can deadlock on it: a new task always starts eventually.  Default
 * WEFT_START_LIMIT_DEFAULT; 0 means no limit (strict FIFO at any scale).
 * Applies to loops started afterwards and to the caller's running loop.
 * Does not suspend.
 */
void weft_set_start_limit(size_t n);
#define WEFT_START_LIMIT_DEFAULT ((size_t)256)

/*
 * The cooperative budget: a task completes at most `n` operations in a row
 * that did not have to wait; after the n-th it yields once: it runs again
 * behind every task that was ready, and, when the loop has not polled for
 * a millisecond or so, behind the timers that came due and the I/O that
 * came ready meanwhile too.  Operations that count: fd reads and writes
 * and fd waits that did not wait (weft_read, weft_write, weft_wait_fd, and
 * the streams of weft/net.h, reads served from their buffer included),
 * queue gets and puts, semaphore and lock acquires, event and signal waits
 * that found what they wanted, and weft_coop_spend.  The budget starts
 * afresh whenever the task waits (weft_yield does not refill it), so a
 * task that waits now and then never meets it, and one that loops over an
 * fd, queue or semaphore that is always ready (a fast download, a
 * producer/consumer storm) lets the others run every `n` operations
 * instead of holding the loop until its loop ends.  It counts operations,
 * not time (a decrement per operation, no clock read).  Like Tokio's
 * budget.  Default WEFT_COOP_BUDGET_DEFAULT (128); 0 turns it off.
 * Applies to loops started afterwards and to the caller's running loop (to
 * the caller at once, to other tasks from their next wait).  Does not
 * suspend.
 */
void weft_set_coop_budget(unsigned n);
#define WEFT_COOP_BUDGET_DEFAULT 128u

/* The budget in force: the running loop's, else the one new loops get
 * (0 = off).  Does not suspend. */
unsigned weft_coop_budget(void);

/*
 * Count one operation against the calling task's cooperative budget (see
 * weft_set_coop_budget) and yield once when it was the budget's last: for
 * a source weft does not know (a ring buffer of your own, a long
 * computation in steps) that must not hold the loop (Tokio's
 * consume_budget).  Returns 0, WEFT_ENOTASK outside a task.  Suspends only
 * when the budget is spent; cancellation does not make it fail (check
 * weft_cancelled()).
 */
int weft_coop_spend(void);

/* The calling task, or NULL outside a task. */
weft_task *weft_current(void);

/* A task's name (never NULL; "" for NULL).  Valid while the handle is. */
const char *weft_task_name(const weft_task *task);

/*
 * Shield the calling task from cancellation for cleanup work.  Inside the
 * shield, cancellation and deadlines set outside it are not delivered; the
 * shield's own time limit (`timeout_ms` from the call; WEFT_NO_TIMEOUT for
 * none; <= 0 has expired at once) still makes suspension points fail with
 * -ETIMEDOUT, so cleanup stays bounded.  A cancellation that arrived
 * meanwhile is delivered after weft_shield_end.  Pairs nest.  A NULL
 * `shield` is a no-op (for both calls).  Does not
 * suspend.
 */
typedef struct weft_shield {
    int64_t saved_deadline;
    void *saved_scopes;
    int saved_depth;
} weft_shield;
void weft_shield_begin(weft_shield *shield, int64_t timeout_ms);
void weft_shield_end(weft_shield *shield);

#ifdef __cplusplus
}
#endif
#endif
