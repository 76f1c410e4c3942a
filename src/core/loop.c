/* SPDX-License-Identifier: MIT */
/*
 * The loop: one per thread, created by weft_run.  Each iteration is a list
 * of phases:
 *   1. run ready tasks (at most WEFT__POLL_EVERY, so I/O is never starved);
 *   2. read the clock (once per iteration) and fire due timers;
 *   3. poll I/O: without blocking when tasks are ready, otherwise blocking
 *      until the next timer, then read the clock and fire timers again;
 *   4. run calls posted from other threads.
 * weft_run returns when no task is left and no hold (weft_loop_hold) keeps
 * it: from then on posts are refused, the calls queued before run, and the
 * loop ends once the tasks they spawned have finished too.  The struct
 * itself lives on while a weft_loop_ref is held, so that late posters read
 * -ESHUTDOWN from it instead of freed memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core-internal.h"
#include "leftovers.h"
#include "sanitizer.h"

_Thread_local weft_loop *weft__tls_loop;

/* Stacks kept in the cache of an idle loop; more are unmapped bit by bit. */
#define WEFT__STACKS_KEEP_IDLE 1024
#define WEFT__STACKS_TRIM_STEP 64
/* Trim only when the loop would sleep at least this long anyway. */
#define WEFT__STACKS_TRIM_IDLE_NS ((int64_t)20 * 1000000)

pthread_mutex_t weft__loops_lock = PTHREAD_MUTEX_INITIALIZER;
weft__list weft__loops = {&weft__loops, &weft__loops};

static void loop_free(weft_loop *loop)
{
    weft__stack_cache_free(loop);
    weft__tasks_free_all(loop);
    weft__timers_free(loop);
    weft__fds_free(loop);
    weft__signals_close(loop);
    weft__backend_close(loop);
    /* Posters that hold a reference take post_lock and see `closed`: they
     * never write to the eventfd closed here.  (weft_run closed it already
     * unless the main task could not be spawned.) */
    pthread_mutex_lock(&loop->post_lock);
    loop->closed = true;
    weft__post *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    while (p) { /* only when main never ran: nothing to run them on */
        weft__post *next = p->next;
        if (p->heap)
            free(p);
        p = next;
    }
    if (loop->eventfd >= 0)
        close(loop->eventfd);
    weft_loop_unref(loop);
}

static weft_loop *loop_new(void)
{
    weft_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    weft__list_init(&loop->tasks);
    weft__list_init(&loop->finished);
    weft__list_init(&loop->sig_waiters);
    sigemptyset(&loop->sigmask);
    sigemptyset(&loop->sigpending);
    loop->epfd = loop->eventfd = loop->sigfd = -1;
    pthread_mutex_init(&loop->post_lock, NULL);
    atomic_init(&loop->refs, 1);
    loop->stacks.stack_size = WEFT_STACK_DEFAULT;
    loop->slow_ns = weft__slow_default_ns();
    loop->start_limit = weft__start_limit_default();
    loop->coop_refill = weft__coop_refill_default();
    loop->thread = pthread_self();
    loop->tid = gettid();
    loop->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->eventfd < 0 || weft__backend_init(loop) < 0) {
        loop_free(loop);
        return NULL;
    }
#ifdef WEFT__TSAN
    loop->tsan_fiber = __tsan_get_current_fiber();
#endif
    loop->now = weft__clock_ns();
    loop->run_start = weft__coarse_ns();
    return loop;
}

static void loop_iterate(weft_loop *loop)
{
    weft__run_ready(loop);
    loop->runs_since_poll = 0;
    /* The coarse time of the last switch to this context: about now. */
    loop->polled_at = loop->run_start;
    loop->now = weft__clock_ns();
    weft__timers_run(loop);
    if (weft__ready(loop) || loop->deferred) {
        if (loop->io_waiters)
            weft__backend_poll(loop, 0);
        weft__coop_requeue(loop);
    } else if (loop->nalive || atomic_load_explicit(&loop->holds, memory_order_relaxed)) {
        int64_t next = weft__timers_next(loop);
        int64_t timeout = next == WEFT_NO_DEADLINE ? -1 : next - loop->now;
        if (timeout < 0 && next != WEFT_NO_DEADLINE)
            timeout = 0;
        /* Cached stacks beyond what an idle loop keeps are given back only
         * once the loop has really been idle for a while: a loop that only
         * waits for I/O between bursts of tasks (a pool's callers) would
         * otherwise unmap and map stacks again on every burst. */
        bool trim = loop->stacks.count > WEFT__STACKS_KEEP_IDLE
                 && (timeout < 0 || timeout >= WEFT__STACKS_TRIM_IDLE_NS);
        if (trim)
            timeout = WEFT__STACKS_TRIM_IDLE_NS;
        if (atomic_load_explicit(&loop->post_pending, memory_order_relaxed))
            timeout = 0;
        int events = weft__backend_poll(loop, timeout);
        if (trim && events == 0 && timeout > 0)
            weft__stack_cache_trim(loop, WEFT__STACKS_KEEP_IDLE, WEFT__STACKS_TRIM_STEP);
        loop->now = weft__clock_ns();
        weft__timers_run(loop);
    }
    weft__posts_run(loop);
}

/* A child's copies of its parents' loops: kept reachable (no leak report). */
static weft_loop *volatile forgotten_loop;

void weft__loop_forget_after_fork(void)
{
    weft_loop *loop = weft__tls_loop;
    if (!loop)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->eventfd >= 0)
        close(loop->eventfd);
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    /* The signals the loop routed to its signalfd are the program's again. */
    if (loop->sigmask_changed)
        pthread_sigmask(SIG_SETMASK, &loop->saved_mask, NULL);
    loop->forgotten_next = forgotten_loop;
    forgotten_loop = loop;
    weft__tls_loop = NULL;
}

/* fork(): the child has only the forking thread.  Its copy of that
 * thread's loop shares the parent's epoll instance and cannot go on, so the
 * child forgets it (its memory is a copy: left as it is) and may start a
 * loop of its own with weft_run.  The loop list and the watchdog are locked
 * across the fork so that the child's copies are consistent. */
static void fork_prepare(void)
{
    weft__debug_fork_prepare();
    pthread_mutex_lock(&weft__loops_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&weft__loops_lock);
    weft__debug_fork_parent();
}

static void fork_child(void)
{
    /* The forking thread took the locks in fork_prepare: it is this
     * thread in the child, so it can release them. */
    weft__list_init(&weft__loops);
    pthread_mutex_unlock(&weft__loops_lock);
    weft__debug_fork_child();
    weft__loop_forget_after_fork();
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_register(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

/* What ended loops left behind (leftovers.h), for the tests. */
static atomic_uint_least64_t left_runs, left_timers, left_unjoined;

void weft__leftovers_get(weft__leftovers *out)
{
    out->runs = atomic_load(&left_runs);
    out->timers = atomic_load(&left_timers);
    out->unjoined = atomic_load(&left_unjoined);
}

static void count_leftovers(weft_loop *loop)
{
    uint64_t unjoined = 0;
    weft__list_foreach(it, &loop->finished) {
        if (weft__container_of(it, weft_task, all_link) != loop->main_task)
            unjoined++;
    }
    atomic_fetch_add(&left_runs, 1);
    atomic_fetch_add(&left_timers, loop->heap_len);
    atomic_fetch_add(&left_unjoined, unjoined);
}

static void report_unjoined(weft_loop *loop)
{
    weft__list_foreach(it, &loop->finished) {
        weft_task *t = weft__container_of(it, weft_task, all_link);
        if (t != loop->main_task)
            weft__log("weft: task '%s' finished with status %d but was never joined "
                      "(join or detach every task)\n", t->name, t->status);
    }
}

int weft_run(weft_task_fn main, void *arg)
{
    if (!main)
        return weft__seterr(-EINVAL, "weft_run: NULL main function");
    if (weft__tls_loop)
        return weft__seterr(-EBUSY, "weft_run: this thread already runs a weft loop");
    pthread_once(&atfork_once, atfork_register);
    weft_loop *loop = loop_new();
    if (!loop)
        return weft__seterr(-ENOMEM, "weft_run: cannot create the loop: %s", strerror(errno));
    weft__tls_loop = loop;
    weft__overflow_install(loop);
    pthread_mutex_lock(&weft__loops_lock);
    weft__list_push_back(&weft__loops, &loop->loops_link);
    pthread_mutex_unlock(&weft__loops_lock);
    if (weft__debug_default())
        loop->debug = true;
    if (loop->debug)
        weft__debug_loop_start(loop);

    int status;
    weft_task *m = weft_spawn_named(main, arg, &(weft_task_opts){.name = "main"}, "main");
    if (!m) {
        status = -ENOMEM;
    } else {
        loop->main_task = m;
        for (;;) {
            loop_iterate(loop);
            if (loop->nalive == 0 && weft__posts_close(loop)) {
                /* Closed: the calls queued before still run; if they spawn
                 * tasks, the loop goes on until those finish. */
                weft__posts_run(loop);
                if (loop->nalive == 0)
                    break;
            }
        }
        status = m->status;
    }
    weft__start_failures_flush(loop);
    count_leftovers(loop);
    if (loop->debug)
        report_unjoined(loop);

    if (loop->debug)
        weft__debug_loop_stop(loop);
    pthread_mutex_lock(&weft__loops_lock);
    weft__list_remove(&loop->loops_link);
    pthread_mutex_unlock(&weft__loops_lock);
    weft__overflow_uninstall(loop);
    weft__tls_loop = NULL;
    loop_free(loop);
    return status;
}
