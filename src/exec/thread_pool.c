/* SPDX-License-Identifier: MIT */
/*
 * The thread pool.  Jobs wait in one FIFO under the pool's mutex; idle
 * workers sleep on a condition variable.  A finished job reaches its loop
 * through the core's cross-thread entry with a node embedded in the job
 * (no allocation), and wakes its task there: no polling anywhere.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core-internal.h"
#include "weft/exec.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

typedef struct weft__job {
    weft__list link;        /* pool->queue while QUEUED */
    weft__post post;        /* completion, posted to the loop */
    weft_thread_pool *pool;
    weft_loop *loop;
    weft_task *task;
    weft_blocking_fn fn;
    void *arg;
    int result;
    int state;              /* enum job_state, under pool->lock */
    bool detached;          /* under pool->lock: nobody waits any more */
    bool dropped;           /* the pool shut down before it started */
    bool finished;          /* loop side: the completion has arrived */
    atomic_bool cancel;     /* the token weft_job_cancelled reads */
    void (*on_detached_done)(void *arg, int result);
} weft__job;

struct weft_thread_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    weft__list queue;
    weft__list running;      /* RUNNING jobs, for shutdown's cancel */
    pthread_t *threads;
    size_t nthreads;
    bool shutdown;
    unsigned forks;          /* fork_count when made: its threads are here */
    struct weft_thread_pool *forgotten_next; /* forgotten in a child of fork */
};

/* Bumped in the child of every fork: a pool made before has no threads
 * there (they stayed in the parent), and a call on it would wait forever. */
static unsigned fork_count;
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_thread_pool *default_pool;

/* The parents' default pools, forgotten in a child: kept reachable (they
 * are not the child's to free, and no leak either). */
static weft_thread_pool *volatile forgotten_pool;

static void fork_prepare(void) { pthread_mutex_lock(&default_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&default_lock); }
static void fork_child(void)
{
    fork_count++;
    /* The parent's default pool (its copy here has no threads and locks
     * that may be held) is left as it is; the child starts its own. */
    if (default_pool) {
        default_pool->forgotten_next = forgotten_pool;
        forgotten_pool = default_pool;
    }
    default_pool = NULL;
    pthread_mutex_unlock(&default_lock); /* taken by this thread before the fork */
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_register(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

static _Thread_local weft__job *current_job;

bool weft_job_cancelled(void)
{
    return current_job && atomic_load_explicit(&current_job->cancel, memory_order_relaxed);
}

/* Loop side: the job's completion arrived. */
static void job_complete(void *arg)
{
    weft__job *job = arg;
    job->finished = true;
    weft_task *t = job->task;
    if (t->state == WEFT__SUSPENDED && t->wait_obj == job)
        weft__wake(t, 0);
}

static void *worker_main(void *arg)
{
    weft_thread_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->shutdown && weft__list_empty(&pool->queue))
            pthread_cond_wait(&pool->cond, &pool->lock);
        if (weft__list_empty(&pool->queue))
            break; /* shutdown, and nothing left */
        weft__job *job = weft__container_of(weft__list_pop_front(&pool->queue), weft__job, link);
        job->state = JOB_RUNNING;
        weft__list_push_back(&pool->running, &job->link);
        pthread_mutex_unlock(&pool->lock);

        current_job = job;
        int result = job->fn(job->arg);
        current_job = NULL;

        pthread_mutex_lock(&pool->lock);
        weft__list_remove(&job->link);
        job->state = JOB_DONE;
        job->result = result;
        bool detached = job->detached;
        pthread_mutex_unlock(&pool->lock);
        if (detached) {
            if (job->on_detached_done)
                job->on_detached_done(job->arg, result);
            free(job);
        } else {
            /* The waiting task keeps its loop alive until this arrives. */
            weft__post_node(job->loop, &job->post);
        }
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* opts.threads above this is refused (as $WEFT_THREADS is). */
#define WEFT__MAX_THREADS 4096

static size_t default_threads(void)
{
    const char *e = getenv("WEFT_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (!*end && v > 0 && v <= 4096)
            return (size_t)v;
        weft__log("weft: ignoring WEFT_THREADS='%s' (want 1..4096)\n", e);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = (size_t)(cores > 0 ? cores : 1) + 4;
    return n < 32 ? n : 32;
}

weft_thread_pool *weft_thread_pool_new(const weft_thread_pool_opts *opts)
{
    pthread_once(&atfork_once, atfork_register);
    if (opts && opts->threads > WEFT__MAX_THREADS) {
        weft__seterr(-EINVAL, "weft_thread_pool_new: opts.threads %zu above %d", opts->threads,
                     WEFT__MAX_THREADS);
        return NULL;
    }
    size_t n = opts && opts->threads ? opts->threads : default_threads();
    weft_thread_pool *pool = calloc(1, sizeof *pool);
    if (pool)
        pool->threads = calloc(n, sizeof *pool->threads);
    if (!pool || !pool->threads) {
        free(pool);
        weft__seterr(-ENOMEM, "weft_thread_pool_new: out of memory");
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->forks = fork_count;
    weft__list_init(&pool->queue);
    weft__list_init(&pool->running);
    /* Workers take no signals: a process-directed signal that a task waits
     * for (weft_signal_wait) must reach the loop's thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        err = pthread_create(&pool->threads[i], NULL, worker_main, pool);
        if (!err) {
            pool->nthreads++;
            pthread_setname_np(pool->threads[i], "weft-pool");
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        weft_thread_pool_free(pool);
        weft__seterr(-err, "weft_thread_pool_new: cannot start %zu threads: %s", n,
                     strerror(err));
        return NULL;
    }
    return pool;
}

weft_thread_pool *weft_thread_pool_default(void)
{
    pthread_mutex_lock(&default_lock);
    if (!default_pool)
        default_pool = weft_thread_pool_new(NULL);
    weft_thread_pool *pool = default_pool;
    pthread_mutex_unlock(&default_lock);
    if (!pool) {
        int err = weft_errcode();
        weft__seterr(err, "weft_thread_pool_default: the default pool could not start: %s",
                     weft_strerror(err));
    }
    return pool;
}

size_t weft_thread_pool_size(const weft_thread_pool *pool) { return pool ? pool->nthreads : 0; }

void weft_thread_pool_free(weft_thread_pool *pool)
{
    if (!pool)
        return;
    if (pool->forks != fork_count) {
        /* Made before fork(): its threads, jobs and their loops are the
         * parent's; here there is only memory to give back. */
        free(pool->threads);
        free(pool);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->shutdown = true;
    /* Jobs not started fail; running ones are asked to stop. */
    weft__list *n;
    while ((n = weft__list_pop_front(&pool->queue))) {
        weft__job *job = weft__container_of(n, weft__job, link);
        job->state = JOB_DONE;
        job->dropped = true;
        if (job->detached) {
            free(job);
        } else {
            weft__post_node(job->loop, &job->post);
        }
    }
    weft__list_foreach(it, &pool->running) {
        weft__job *job = weft__container_of(it, weft__job, link);
        atomic_store(&job->cancel, true);
    }
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->cond);
    free(pool->threads);
    free(pool);
}

static void describe(const weft_task *t, char *buf, size_t n)
{
    const weft__job *job = t->wait_obj;
    snprintf(buf, n, "thread pool job %p", (const void *)job);
}

/* Suspend until the job's completion has arrived, a cancellation, or the
 * deadline (inside a shield: only the completion). */
static int wait_job(weft_task *t, weft__job *job, int64_t deadline)
{
    int rc = 0;
    while (!job->finished && rc == 0) {
        t->wait_kind = WEFT__WAIT_OTHER;
        t->wait_obj = job;
        t->wait_describe = describe;
        rc = weft__wait(t, deadline, -ETIMEDOUT);
    }
    return job->finished ? 0 : rc;
}

/* A call that fails before its job is queued: with on_detached_done, the
 * caller has handed `arg` over, so it is given back through it (exec.h). */
static int refuse(const weft_blocking_opts *opts, void *arg, int rc)
{
    if (opts && opts->on_detached_done)
        opts->on_detached_done(arg, -ECANCELED);
    return rc;
}

int weft_thread_pool_run(weft_thread_pool *pool, weft_blocking_fn fn, void *arg, int *result,
                         const weft_blocking_opts *opts)
{
    weft_task *t = weft__require_task("weft_thread_pool_run");
    if (!t)
        return refuse(opts, arg, WEFT_ENOTASK);
    if (!fn)
        return refuse(opts, arg, weft__seterr(-EINVAL, "weft_thread_pool_run: NULL function"));
    if (!pool && !(pool = weft_thread_pool_default()))
        return refuse(opts, arg, weft__seterr(-ENOMEM, "weft_thread_pool_run: no default "
                                              "pool: %s", weft_errmsg()));
    if (pool->forks != fork_count)
        return refuse(opts, arg, weft__seterr(-ESHUTDOWN, "weft_thread_pool_run: the pool was "
                                              "made before fork(); its threads are in the "
                                              "parent process"));
    if (weft__cancel_visible(t))
        return refuse(opts, arg, weft__seterr(-ECANCELED, "weft_thread_pool_run: %s",
                                              weft_strerror(-ECANCELED)));
    int64_t deadline;
    /* A deadline (its own, a scope's or a shield's) that has passed already
     * fails the call here: once queued, an idle worker could start the job
     * before the wait below notices, and the job would run after all. */
    if (weft__call_expired(t, opts ? opts->timeout_ms : 0, &deadline))
        return refuse(opts, arg, weft__seterr(-ETIMEDOUT, "weft_thread_pool_run: %s before "
                                              "the job started", weft_strerror(-ETIMEDOUT)));
    weft__job *job = calloc(1, sizeof *job);
    if (!job)
        return refuse(opts, arg, weft__seterr(-ENOMEM, "weft_thread_pool_run: out of memory"));
    job->pool = pool;
    job->loop = t->loop;
    job->task = t;
    job->fn = fn;
    job->arg = arg;
    job->post.fn = job_complete;
    job->post.arg = job;
    job->on_detached_done = opts ? opts->on_detached_done : NULL;

    pthread_mutex_lock(&pool->lock);
    if (pool->shutdown) {
        pthread_mutex_unlock(&pool->lock);
        free(job);
        return refuse(opts, arg, weft__seterr(-ESHUTDOWN, "weft_thread_pool_run: the pool is "
                                              "shutting down"));
    }
    weft__list_push_back(&pool->queue, &job->link);
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);

    int rc = wait_job(t, job, deadline);
    if (rc < 0) {
        pthread_mutex_lock(&pool->lock);
        if (job->state == JOB_QUEUED) {
            /* Not started: it never will. */
            weft__list_remove(&job->link);
            pthread_mutex_unlock(&pool->lock);
            free(job);
            return refuse(opts, arg, weft__seterr(rc, "weft_thread_pool_run: %s before the "
                                                  "job started", weft_strerror(rc)));
        }
        atomic_store(&job->cancel, true);
        if (job->state == JOB_RUNNING && job->on_detached_done) {
            job->detached = true; /* the worker frees it */
            pthread_mutex_unlock(&pool->lock);
            return weft__seterr(rc, "weft_thread_pool_run: %s; the running job was detached",
                                weft_strerror(rc));
        }
        bool finished = job->state == JOB_DONE;
        pthread_mutex_unlock(&pool->lock);
        /* Running (or its completion is on the way): wait for the end,
         * whatever cancellation or deadline say. */
        weft_shield sh;
        weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
        wait_job(t, job, WEFT_NO_DEADLINE);
        weft_shield_end(&sh);
        if (finished && !job->dropped)
            rc = 0; /* it had ended already: its result is not lost (the
                     * cancellation shows at the next suspension point) */
    }
    bool dropped = job->dropped;
    if (result && !dropped)
        *result = job->result;
    free(job);
    if (dropped) {
        if (opts && opts->on_detached_done)
            opts->on_detached_done(arg, -ECANCELED);
        return weft__seterr(-ECANCELED, "weft_thread_pool_run: the pool shut down before "
                                        "the job started");
    }
    if (rc < 0)
        return weft__seterr(rc, "weft_thread_pool_run: %s; the job was asked to stop and "
                                "has finished", weft_strerror(rc));
    return 0;
}

int weft_to_thread(weft_blocking_fn fn, void *arg, int *result)
{
    if (!fn)
        return weft__seterr(-EINVAL, "weft_to_thread: NULL function");
    return weft_thread_pool_run(NULL, fn, arg, result, NULL);
}
