/* SPDX-License-Identifier: MIT */
/*
 * Task groups: structured concurrency.  A group owns the tasks spawned into
 * it, and waiting for the group returns only when every child has finished,
 * so no child outlives the code that started it.  Two policies:
 *
 * - WEFT_GROUP_COLLECT: every child runs to its end; each child's status
 *   and message are kept (asyncio.gather(..., return_exceptions=True)).
 * - WEFT_GROUP_FAIL_FAST: the first child that fails (negative status)
 *   cancels its siblings; wait returns that first error once all have
 *   finished, and every child's status stays readable — no error is ever
 *   dropped (asyncio.TaskGroup).
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include <weft/task.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_group weft_group;

typedef enum weft_group_policy {
    WEFT_GROUP_COLLECT = 0,
    WEFT_GROUP_FAIL_FAST = 1,
} weft_group_policy;

/* Options for weft_group_new; zero-initialise, NULL means all defaults. */
typedef struct weft_group_opts {
    weft_group_policy policy;
    /* A time limit for every child, in milliseconds from weft_group_new:
     * their suspension points fail with -ETIMEDOUT once it passes.
     * 0 (default) or WEFT_NO_TIMEOUT = none; < 0 has expired already. */
    int64_t timeout_ms;
} weft_group_opts;

/* Create an empty group on the calling thread's loop.  NULL on failure
 * (WEFT_ENOLOOP, -EINVAL for an unknown opts->policy, -ENOMEM) with
 * weft_errcode() and weft_errmsg() set.  Does not suspend. */
weft_group *weft_group_new(const weft_group_opts *opts);

/*
 * Start `fn(arg)` as a child of `g` (named after the function unless
 * opts->name is set; the macro is variadic, as weft_spawn, so `opts` may be
 * a compound literal with several fields).  Returns the child's index (0, 1, ... in spawn order)
 * for weft_group_status, or a negative error (-EINVAL for bad arguments or
 * a group of another thread's loop, -ENOMEM, -ECANCELED when the group
 * has been cancelled or has failed fast).
 * Does not suspend.
 */
int weft_group_spawn_named(weft_group *g, weft_task_fn fn, void *arg,
                           const weft_task_opts *opts, const char *default_name);
#define weft_group_spawn(g, fn, arg, ...) \
    weft_group_spawn_named((g), (fn), (arg), (__VA_ARGS__), #fn)

/*
 * Wait until every child has finished (children spawned meanwhile too).
 * Returns 0 when all succeeded; otherwise the status of the first child
 * to fail (in order of finishing), leaving out the children that
 * weft_group_next has returned (the caller has had their status).  When
 * the caller is cancelled, or
 * `deadline` passes, the children are cancelled, waited for (shielded), and
 * the call returns -ECANCELED / -ETIMEDOUT.  Other errors: -EINVAL (NULL),
 * -EBUSY (another task waits on it), -EDEADLK (a child of `g` waiting for
 * its own group), WEFT_ENOTASK.  Suspends.
 */
int weft_group_wait(weft_group *g);
int weft_group_wait_until(weft_group *g, int64_t deadline);

/*
 * The next child to finish (asyncio.wait(FIRST_COMPLETED), as_completed,
 * Tokio's JoinSet::join_next): returns the index of a child that has
 * finished (as weft_group_spawn returned it), its status in *status and its
 * message in *message (either may be NULL; the message as for
 * weft_group_status, valid until the group is freed).  Children come in the
 * order they finished, each once: a child returned here is never returned
 * again.  Returns at once when a child has finished and was not returned
 * yet, else suspends until one finishes.  Works with both policies (under
 * fail-fast, the siblings cancelled by a failure come next, each with its
 * -ECANCELED).
 *
 * Errors: -ECHILD when no child is left (every child spawned so far was
 * returned, none runs): the end of the loop.  -ECANCELED (the caller was
 * cancelled) or -ETIMEDOUT (`deadline` passed; absolute, WEFT_NO_DEADLINE
 * for none; an expired one still returns a child that has finished) while
 * children still run: unlike weft_group_wait, these leave the children
 * running (wait for a hedge, then spawn one); call weft_group_wait
 * before freeing the group, which cancels and waits for them if the
 * caller is cancelled.  -EINVAL (NULL, or a group of another thread's
 * loop), -EBUSY (another task waits on the group), -EDEADLK (a child of
 * `g`), WEFT_ENOTASK.  A child that finished in the loop iteration in which
 * the wait was cancelled or timed out is returned, not lost.
 *
 * Race two mirrors, keep the first success, cancel the rest:
 *
 *     int i, st, winner = -1;
 *     while ((i = weft_group_next(g, &st, NULL)) >= 0)
 *         if (st >= 0 && winner < 0) {
 *             winner = i;
 *             weft_group_cancel(g);    // the losers come next, -ECANCELED
 *         }
 *     rc = weft_group_wait(g);         // 0: every child was returned above
 *
 * Suspends (unless a finished child is waiting to be returned).
 */
int weft_group_next(weft_group *g, int *status, const char **message);
int weft_group_next_until(weft_group *g, int *status, const char **message,
                          int64_t deadline);

/* Cancel every running child (cause: group cancelled); later spawns fail
 * with -ECANCELED.  NULL is a no-op.  Does not suspend: wait to see them
 * finish. */
void weft_group_cancel(weft_group *g);

/* Children spawned so far / still running (0 for NULL). */
size_t weft_group_size(const weft_group *g);
size_t weft_group_running(const weft_group *g);

/*
 * The status of child `index` in *status: returns 0 when it has finished,
 * -EBUSY while it runs, -EINVAL for a NULL group or an index not below
 * weft_group_size (with weft_errmsg set).  `message` (may be NULL)
 * receives the child's last weft_errmsg() at its end ("" if none), valid
 * until the group is freed.  Does not suspend.
 */
int weft_group_status(const weft_group *g, size_t index, int *status, const char **message);

/*
 * Free the group.  Waiting first is the rule; children still running are
 * cancelled and detached (reported in debug mode).  NULL is a no-op.  Does
 * not suspend.
 */
void weft_group_free(weft_group *g);

/*
 * Bounded fan-out: run fn(args[i]) for i < n with at most `limit` calls in
 * flight (limit 0 = 10), each call in a worker task of the caller, and
 * store each status in statuses[i] (may be NULL).  Every call runs even
 * when some fail (collect).  Returns 0 when all succeeded, else the status
 * of the lowest-index failure; -ECANCELED if the caller is cancelled (the
 * workers are cancelled and waited for; calls not started get
 * -ECANCELED).  Suspends.
 */
int weft_map(weft_task_fn fn, void *const *args, size_t n, size_t limit, int *statuses);

#ifdef __cplusplus
}
#endif
#endif
