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
 * - A job that had already finished when the cancellation or deadline
 *   came counts as done: the call returns 0 with its result (the
 *   cancellation shows at the task's next suspension point).
 *
 * Ownership of `arg` with on_detached_done: when the call returns 0 the
 * caller owns it; when it fails, on_detached_done(arg, ...) is called
 * exactly once — on the worker when a detached job ends, or before the
 * call returns, with -ECANCELED, when the job never ran.  *result is set
 * only when the job ran and was waited for.
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
     * Python's default executor).  Above 4096: -EINVAL. */
    size_t threads;
} weft_thread_pool_opts;

/* Start a pool of worker threads.  NULL on failure with weft_errcode() and
 * weft_errmsg() set (-EINVAL naming the option, -ENOMEM, thread errors).
 * Callable from any thread; the pool serves tasks of every loop. */
weft_thread_pool *weft_thread_pool_new(const weft_thread_pool_opts *opts);

/* The process-wide default pool, created on first use (NULL if threads
 * cannot be created, with weft_errcode and weft_errmsg set at every call).
 * Never freed.  In the child of a fork() the parent's default pool is
 * forgotten (its threads stayed in the parent): the child's first use
 * starts a pool of its own. */
weft_thread_pool *weft_thread_pool_default(void);

/* Worker threads of `pool` (0 for NULL). */
size_t weft_thread_pool_size(const weft_thread_pool *pool);

/*
 * Stop the pool: jobs not started fail (their callers get -ECANCELED),
 * running jobs are asked to stop (weft_job_cancelled) and waited for, the
 * threads are joined, and the memory freed.  Blocks the calling thread
 * until the running jobs end: call it when no task needs the pool.  In the
 * child of a fork(), a pool made before the fork only has its memory freed.
 * NULL is a no-op.
 */
void weft_thread_pool_free(weft_thread_pool *pool);

typedef struct weft_blocking_opts {
    /* Time limit in milliseconds from the call; 0 (default) or
     * WEFT_NO_TIMEOUT: none; < 0: expired already (the job never starts).
     * The task's deadline scopes apply in any case. */
    int64_t timeout_ms;
    /* If set, a cancelled or timed-out *running* job is detached instead
     * of waited for; this is called on the worker thread when it ends. */
    void (*on_detached_done)(void *arg, int result);
} weft_blocking_opts;

/*
 * Run fn(arg) on a worker of `pool` (NULL: the default pool) and suspend
 * the calling task until it returns; its return value goes to *result
 * (may be NULL).  Returns 0, -ECANCELED, -ETIMEDOUT (see the top of this
 * header for what happens to the job), -ENOMEM, -ESHUTDOWN (the pool is
 * being freed, or was made before a fork() in this child process), -EINVAL,
 * WEFT_ENOTASK.  Suspends.
 */
int weft_thread_pool_run(weft_thread_pool *pool, weft_blocking_fn fn, void *arg, int *result,
                         const weft_blocking_opts *opts);

/* weft_thread_pool_run on the default pool, without options. */
int weft_to_thread(weft_blocking_fn fn, void *arg, int *result);

/* Inside a blocking function: whether its caller has asked it to stop.
 * False elsewhere.  Thread-safe. */
bool weft_job_cancelled(void);

/* ------------------------------------------------------------ process pool */

/*
 * A process pool: N worker processes forked from the program, for CPU-heavy
 * work that must not run on the loop (ProcessPoolExecutor).  A call sends a
 * function and input bytes to an idle worker, the task suspends, and gets
 * the function's status and output bytes back.
 *
 * What is safe in a worker: the workers are forks of the program made when
 * the pool starts (and when a worker is replaced), so function pointers and
 * everything in memory at that moment are valid there.  A worker has no
 * weft loop and no threads (other threads do not survive fork): the
 * function must not call weft's task, loop or thread-pool functions, and
 * should not rely on locks another thread might have held at the fork
 * (create pools early, before starting threads).  It may allocate memory,
 * use files and compute; a child process it starts must exec (or exit)
 * before the job ends, since a forked copy of the worker would hold its
 * socket open and delay the detection of a crash until it exits.  Workers
 * ignore SIGINT (a Ctrl-C is the parent's
 * to handle), die with the parent (PR_SET_PDEATHSIG), and keep the
 * parent's other file descriptors open (weft's own are closed).
 *
 * Each worker has a few jobs in flight (queued in its socket), so a stream
 * of small jobs never waits for a worker to wake up.
 *
 * Failure isolation: a worker that crashes (segfault, abort, exit) fails
 * only the job it was running, with WEFT_ECRASHED and a message naming the
 * signal, and is replaced; the jobs queued behind it are sent to the
 * replacement.  A worker that dies while it has no job (killed from
 * outside) is reaped and replaced at once, not when it is next given one.
 * A job that is cancelled or times out while running has its
 * worker killed (SIGKILL) and replaced: the work really stops.  A job not
 * started yet is withdrawn (the worker skips it): nothing is killed.
 *
 * A pool belongs to the loop of the thread that made it.
 */

typedef struct weft_process_pool weft_process_pool;

/* Output bytes of a job; the caller frees them with weft_bytes_free. */
typedef struct weft_bytes {
    void *data;
    size_t len;
    size_t cap; /* private */
} weft_bytes;

/* Append to `b` (in a worker: the job's output).  0, -EINVAL (NULL `b`, or
 * NULL `data` with `len` > 0), or -ENOMEM.  weft_bytes_free(NULL) is a
 * no-op. */
int weft_bytes_append(weft_bytes *b, const void *data, size_t len);
void weft_bytes_free(weft_bytes *b);

/* The function a worker runs: `in` is a copy of the caller's input; what it
 * appends to `out` goes back to the caller.  Its return value is the job's
 * status (a negative value is passed on as is, not treated as a crash). */
typedef int (*weft_process_fn)(const void *in, size_t in_len, weft_bytes *out);

typedef enum weft_pool_shutdown {
    WEFT_POOL_DRAIN = 0,  /* shutdown waits for queued and running jobs */
    WEFT_POOL_CANCEL = 1, /* queued callers get -ECANCELED, running jobs are killed */
} weft_pool_shutdown;

typedef struct weft_process_pool_opts {
    size_t workers;              /* 0: the number of online CPUs; above 4096: -EINVAL */
    size_t max_jobs_per_worker;  /* recycle a worker after this many; 0: never */
    size_t max_input;            /* bytes; 0: 1 GiB */
    size_t max_output;           /* bytes; 0: 1 GiB */
    /* Callers allowed to wait for a worker at once; beyond it a call fails
     * with -EAGAIN at once (load shedding).  0: no limit — each waiting
     * caller is a suspended task, which throttles producers by itself. */
    size_t max_queue;
    weft_pool_shutdown on_shutdown;
} weft_process_pool_opts;

/* Fork the workers.  NULL on failure (WEFT_ENOLOOP, -EINVAL naming the
 * option, -ENOMEM, fork errors) with weft_errcode() and weft_errmsg() set.
 * Must be called on a thread running a weft loop (from a task or a posted
 * call).  Does not suspend. */
weft_process_pool *weft_process_pool_new(const weft_process_pool_opts *opts);

typedef struct weft_process_call_opts {
    /* Time limit in milliseconds from the call; 0 (default) or
     * WEFT_NO_TIMEOUT: none; < 0: expired already (the job is not sent).
     * The task's deadline scopes apply in any case. */
    int64_t timeout_ms;
} weft_process_call_opts;

/*
 * Run fn(in, in_len, out) in a worker.  Returns 0 when the function ran:
 * its return value in *status (may be NULL) and its output appended to
 * *out (may be NULL to drop it).  Errors: -E2BIG (input above max_input,
 * or output above max_output), WEFT_ECRASHED, -ECANCELED, -ETIMEDOUT,
 * -EAGAIN (max_queue reached), -ESHUTDOWN, -EINVAL, -ENOMEM,
 * WEFT_ENOTASK.  Suspends.
 */
int weft_process_pool_run(weft_process_pool *pool, weft_process_fn fn, const void *in,
                          size_t in_len, weft_bytes *out, int *status,
                          const weft_process_call_opts *opts);

/* Workers of `pool`, and counters: jobs run, workers that crashed, were
 * killed (cancel / timeout) and recycled.  A NULL pool gives all zeros; a
 * NULL `stats` is ignored. */
typedef struct weft_process_pool_stats {
    size_t workers;
    uint64_t jobs, crashes, kills, recycles;
} weft_process_pool_stats;
void weft_process_pool_stats_get(const weft_process_pool *pool, weft_process_pool_stats *stats);

/*
 * Stop taking jobs and finish as opts.on_shutdown says (drain: wait for
 * queued and running jobs; cancel: fail the queued, kill the running),
 * then stop the workers and wait until they have exited.  Later calls get
 * -ESHUTDOWN.  Returns 0.  Suspends.
 */
int weft_process_pool_shutdown(weft_process_pool *pool);

/* Kill any worker left (SIGKILL), reap it, free the pool.  Call it after
 * weft_process_pool_shutdown (or on a pool never used); on a pool still in
 * use it only kills the workers and leaves the memory to the tasks that
 * still need it.  NULL is a no-op.  Does not suspend (waits for the kernel
 * to reap). */
void weft_process_pool_free(weft_process_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
