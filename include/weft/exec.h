/* SPDX-License-Identifier: MIT */
/*
 * Executors: run blocking calls on a pool of threads and await them from a
 * task (asyncio.to_thread / run_in_executor), so the loop keeps running.
 *
 * Cancellation, honestly (threads cannot be stopped from outside):
 * - A job that has not started yet is taken off the queue: the call returns
 *   -ECANCELED (or -ETIMEDOUT) at once and the function never runs.
 * - A job that is running is asked to stop: weft_job_cancelled() turns true
 *   inside it, for code that can poll.  The caller then waits for the job
 *   to finish (shielded: its arguments stay valid), and returns -ECANCELED
 *   (or -ETIMEDOUT) with the job's result in *result.
 * - Or, by choice (opts.on_detached_done), the caller does not wait: the
 *   call returns at once and the job runs on; when it ends,
 *   on_detached_done(arg, result) runs on the worker thread, to free what
 *   the job used.
 */
#ifndef WEFT_EXEC_H
#define WEFT_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_thread_pool weft_thread_pool;

/* A blocking function run on a worker thread.  It must not call weft
 * functions that need a loop or a task (the worker has neither); it may
 * call weft_job_cancelled() and weft_loop_post(). */
typedef int (*weft_blocking_fn)(void *arg);

typedef struct weft_thread_pool_opts {
    /* Worker threads; 0: $WEFT_THREADS, else min(32, cores + 4) (as
     * Python's default executor). */
    size_t threads;
} weft_thread_pool_opts;

/* Start a pool of worker threads.  NULL on failure with weft_errmsg() set.
 * Callable from any thread; the pool serves tasks of every loop. */
weft_thread_pool *weft_thread_pool_new(const weft_thread_pool_opts *opts);

/* The process-wide default pool, created on first use (NULL if threads
 * cannot be created).  Never freed. */
weft_thread_pool *weft_thread_pool_default(void);

/* Worker threads of `pool`. */
size_t weft_thread_pool_size(const weft_thread_pool *pool);

/*
 * Stop the pool: jobs not started fail (their callers get -ECANCELED),
 * running jobs are asked to stop (weft_job_cancelled) and waited for, the
 * threads are joined, and the memory freed.  Blocks the calling thread
 * until the running jobs end: call it when no task needs the pool.
 */
void weft_thread_pool_free(weft_thread_pool *pool);

typedef struct weft_blocking_opts {
    /* Absolute deadline (weft_deadline_ms(...)); 0: none (the task's
     * deadline scopes apply in any case). */
    int64_t deadline;
    /* If set, a cancelled or timed-out *running* job is detached instead
     * of waited for; this is called on the worker thread when it ends. */
    void (*on_detached_done)(void *arg, int result);
} weft_blocking_opts;

/*
 * Run fn(arg) on a worker of `pool` (NULL: the default pool) and suspend
 * the calling task until it returns; its return value goes to *result
 * (may be NULL).  Returns 0, -ECANCELED, -ETIMEDOUT (see the top of this
 * header for what happens to the job), -ENOMEM, -ESHUTDOWN (the pool is
 * being freed), -EINVAL, WEFT_ENOTASK.  Suspends.
 */
int weft_thread_pool_run(weft_thread_pool *pool, weft_blocking_fn fn, void *arg, int *result,
                         const weft_blocking_opts *opts);

/* weft_thread_pool_run on the default pool, without options. */
int weft_to_thread(weft_blocking_fn fn, void *arg, int *result);

/* Inside a blocking function: whether its caller has asked it to stop.
 * False elsewhere.  Thread-safe. */
bool weft_job_cancelled(void);

#ifdef __cplusplus
}
#endif
#endif
