/* SPDX-License-Identifier: MIT */
/* Executors: the thread pool, weft_to_thread, cancellation, deadlines, detached jobs, shutdown. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#else
#define TSAN_BUILD 0
#endif

/* In a task: sleep a millisecond at a time until *flag is non-zero
 * (at most 10 s). */
static void await_flag(atomic_int *flag)
{
    int64_t give_up = clock_ns() + 10000 * MS;
    while (!atomic_load(flag)) {
        assert_true(clock_ns() < give_up);
        assert_int_equal(weft_sleep_ms(1), 0);
    }
}

/* Entries of a /proc directory (open fds, threads). */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int count_threads(void) { return count_entries("/proc/self/task"); }

/* Outside a loop: the thread count once it stops moving (threads that were
 * just joined may linger in /proc for a moment). */
static int settled_threads(void)
{
    int prev = count_threads();
    for (int i = 0; i < 200; i++) {
        usleep(10000);
        int now = count_threads();
        if (now == prev)
            return now;
        prev = now;
    }
    return prev;
}

static size_t default_size(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = (size_t)(cores > 0 ? cores : 1) + 4;
    return n < 32 ? n : 32;
}

/* ------------------------------------------------------------ jobs (worker threads: no asserts) */

static int job_plus_one(void *arg) { return (int)(intptr_t)arg + 1; }

/* The most sleep jobs seen running at once. */
static atomic_int in_flight, max_in_flight;

static int job_sleep_ms(void *arg)
{
    int now = atomic_fetch_add(&in_flight, 1) + 1;
    int max = atomic_load(&max_in_flight);
    while (now > max && !atomic_compare_exchange_weak(&max_in_flight, &max, now))
        ;
    usleep((useconds_t)(intptr_t)arg * 1000);
    atomic_fetch_sub(&in_flight, 1);
    return 0;
}

static int job_fail(void *arg)
{
    (void)arg;
    return -EIO;
}

/* Sets its flag: proof that it ran. */
static int job_set_flag(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return 7;
}

typedef struct where {
    pthread_t thread;
    bool cancelled;
} where;

static int job_where(void *arg)
{
    where *w = arg;
    w->thread = pthread_self();
    w->cancelled = weft_job_cancelled();
    return 42;
}

/* A job the test controls.  It runs until `release` is set, or, with
 * stop_on_cancel, until weft_job_cancelled() turns true (noting that in
 * saw_cancel either way); then it lingers, writes its payload (the
 * caller's memory must still be valid) and marks itself finished. */
typedef struct gate {
    atomic_int started;
    atomic_int saw_cancel;
    atomic_int release;
    atomic_int finished;
    atomic_int gave_up;
    int stop_on_cancel;
    int linger_ms;
    int ret;
    int payload[64];
} gate;

static int job_gate(void *arg)
{
    gate *g = arg;
    atomic_store(&g->started, 1);
    int64_t give_up = clock_ns() + 10000 * MS;
    for (;;) {
        if (weft_job_cancelled()) {
            atomic_store(&g->saw_cancel, 1);
            if (g->stop_on_cancel)
                break;
        }
        if (atomic_load(&g->release))
            break;
        if (clock_ns() > give_up) {
            atomic_store(&g->gave_up, 1);
            break;
        }
        usleep(1000);
    }
    if (g->linger_ms)
        usleep((useconds_t)g->linger_ms * 1000);
    for (int i = 0; i < 64; i++)
        g->payload[i] = i + 1;
    int ret = g->ret;
    atomic_store(&g->finished, 1);
    return ret;
}

static bool payload_ok(const gate *g)
{
    for (int i = 0; i < 64; i++)
        if (g->payload[i] != i + 1)
            return false;
    return true;
}

/* ------------------------------------------------------------ a caller task */

/* One weft_thread_pool_run from a task, with what came back. */
typedef struct call {
    weft_thread_pool *pool;
    weft_blocking_fn fn;
    void *arg;
    weft_blocking_opts opts;
    bool to_thread;       /* weft_to_thread instead of weft_thread_pool_run */
    int64_t scope_ms;     /* > 0: inside a deadline scope of this length */
    gate *watch;          /* snapshot watch->finished when the call returns */
    int rc;
    int result;
    int scope_expired;
    int finished_at_return;
    int64_t returned_ns;
} call;

static int do_call(void *arg)
{
    call *c = arg;
    c->result = INT_MIN;
    weft_scope sc;
    if (c->scope_ms > 0)
        weft_scope_enter(&sc, weft_deadline_ms(c->scope_ms));
    if (c->to_thread)
        c->rc = weft_to_thread(c->fn, c->arg, &c->result);
    else
        c->rc = weft_thread_pool_run(c->pool, c->fn, c->arg, &c->result, &c->opts);
    c->returned_ns = clock_ns();
    if (c->watch)
        c->finished_at_return = atomic_load(&c->watch->finished);
    if (c->scope_ms > 0)
        c->scope_expired = weft_scope_exit(&sc);
    return 0;
}

static weft_task *spawn_call(call *c)
{
    weft_task *t = weft_spawn(do_call, c, NULL);
    assert_non_null(t);
    return t;
}

static void join0(weft_task *t)
{
    int st = -1;
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, 0);
}

/* ------------------------------------------------------------ basics */

static int basic_main(void *arg)
{
    (void)arg;
    where w = {.thread = pthread_self(), .cancelled = true};
    int result = 0;
    assert_int_equal(weft_to_thread(job_where, &w, &result), 0);
    assert_int_equal(result, 42);
    assert_false(pthread_equal(w.thread, pthread_self()));
    assert_false(w.cancelled); /* a job nobody cancelled */

    /* result may be NULL; a negative result is the job's, not an error */
    assert_int_equal(weft_to_thread(job_where, &w, NULL), 0);
    assert_int_equal(weft_to_thread(job_fail, NULL, &result), 0);
    assert_int_equal(result, -EIO);
    /* the default pool by NULL, with and without options */
    assert_int_equal(weft_thread_pool_run(NULL, job_plus_one, (void *)41, &result, NULL), 0);
    assert_int_equal(result, 42);
    weft_blocking_opts none = {0};
    assert_int_equal(weft_thread_pool_run(NULL, job_plus_one, (void *)1, &result, &none), 0);
    assert_int_equal(result, 2);
    /* an opts.timeout_ms far away changes nothing */
    weft_blocking_opts far = {.timeout_ms = 60000};
    assert_int_equal(weft_thread_pool_run(NULL, job_plus_one, (void *)2, &result, &far), 0);
    assert_int_equal(result, 3);
    return 0;
}

static void test_to_thread_basics(void **state)
{
    (void)state;
    run_checked(basic_main, NULL);
    weft_thread_pool *def = weft_thread_pool_default();
    assert_non_null(def);
    assert_ptr_equal(weft_thread_pool_default(), def);
    if (!getenv("WEFT_THREADS"))
        assert_int_equal(weft_thread_pool_size(def), default_size());
}

/* The loop keeps running while jobs block their threads. */
static int ticks;
static bool ticker_stop;

static int ticker(void *arg)
{
    (void)arg;
    while (!ticker_stop) {
        if (weft_sleep_ms(2) != 0)
            return -1;
        ticks++;
    }
    return 0;
}

static int loop_runs_main(void *arg)
{
    (void)arg;
    ticks = 0;
    ticker_stop = false;
    weft_task *tk = weft_spawn(ticker, NULL, NULL);
    assert_non_null(tk);
    assert_int_equal(weft_sleep_ms(1), 0);
    call c[5];
    weft_task *t[5];
    int64_t t0 = clock_ns();
    int before = ticks;
    for (int i = 0; i < 5; i++) {
        c[i] = (call){.fn = job_sleep_ms, .arg = (void *)50, .to_thread = true};
        t[i] = spawn_call(&c[i]);
    }
    for (int i = 0; i < 5; i++) {
        join0(t[i]);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].result, 0);
    }
    int during = ticks - before;
    int64_t elapsed = clock_ns() - t0;
    ticker_stop = true;
    join0(tk);
    print_message("5 x 50 ms jobs: %lld ms, %d ticks meanwhile\n", (long long)(elapsed / MS),
                  during);
    assert_true(elapsed >= 50 * MS);
    assert_true(during >= 5); /* ~25 when the loop is free; 0 if the jobs blocked it */
    return 0;
}

static void test_loop_keeps_running(void **state)
{
    (void)state;
    run_checked(loop_runs_main, NULL);
}

/* 100 x 10 ms through 100 threads vs through 1 thread. */
static int64_t hundred_sleeps(weft_thread_pool *pool)
{
    enum { N = 100 };
    static call c[N];
    static weft_task *t[N];
    int64_t t0 = clock_ns();
    for (int i = 0; i < N; i++) {
        c[i] = (call){.pool = pool, .fn = job_sleep_ms, .arg = (void *)10};
        t[i] = spawn_call(&c[i]);
    }
    for (int i = 0; i < N; i++) {
        join0(t[i]);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].result, 0);
    }
    return clock_ns() - t0;
}

static int parallel_main(void *arg)
{
    (void)arg;
    weft_thread_pool *wide = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 100});
    assert_non_null(wide);
    assert_int_equal(weft_thread_pool_size(wide), 100);
    atomic_store(&max_in_flight, 0);
    int64_t fast = hundred_sleeps(wide);
    int wide_overlap = atomic_load(&max_in_flight);
    weft_thread_pool_free(wide);

    weft_thread_pool *narrow = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 1});
    assert_non_null(narrow);
    assert_int_equal(weft_thread_pool_size(narrow), 1);
    atomic_store(&max_in_flight, 0);
    int64_t slow = hundred_sleeps(narrow);
    int narrow_overlap = atomic_load(&max_in_flight);
    weft_thread_pool_free(narrow);

    print_message("100 x 10 ms: %lld ms on 100 threads (up to %d at once), "
                  "%lld ms on 1 thread\n",
                  (long long)(fast / MS), wide_overlap, (long long)(slow / MS));
    assert_true(fast >= 10 * MS);
    /* ThreadSanitizer makes each of the 100 threads' synchronisation far
     * dearer: on a busy machine its CPU time alone can pass 500 ms.  The
     * overlap count is the load-independent evidence. */
    assert_true(fast < (TSAN_BUILD ? 2000 : 500) * MS);
    assert_true(wide_overlap >= 3); /* 1 if the jobs ran one by one */
    assert_true(slow >= 1000 * MS);
    assert_int_equal(narrow_overlap, 1);
    return 0;
}

static void test_parallel_threads(void **state)
{
    (void)state;
    run_checked(parallel_main, NULL);
}

/* Jobs may post to their caller's loop; posts and completions keep their order. */
typedef struct poster {
    weft_loop *loop;
    int ran;
    pthread_t ran_on;
} poster;

static void posted_from_job(void *arg)
{
    poster *p = arg;
    p->ran++;
    p->ran_on = pthread_self();
}

static int job_posts(void *arg)
{
    poster *p = arg;
    return weft_loop_post(p->loop, posted_from_job, p);
}

static int job_post_main(void *arg)
{
    (void)arg;
    poster p = {.loop = weft_loop_current()};
    int result = -1;
    assert_int_equal(weft_to_thread(job_posts, &p, &result), 0);
    assert_int_equal(result, 0);
    assert_int_equal(p.ran, 1); /* posted before the job's completion: ran first */
    assert_true(pthread_equal(p.ran_on, pthread_self()));
    return 0;
}

static void test_job_posts_to_loop(void **state)
{
    (void)state;
    run_checked(job_post_main, NULL);
}

/* ------------------------------------------------------------ queued jobs */

/* A pool of one thread kept busy by `busy`; returns the busy caller. */
static weft_task *occupy(weft_thread_pool *pool, gate *busy, call *bc)
{
    *bc = (call){.pool = pool, .fn = job_gate, .arg = busy};
    weft_task *t = spawn_call(bc);
    await_flag(&busy->started);
    return t;
}

/* Release the busy job, check it, then prove (FIFO) that nothing queued
 * before now is left: a last job runs after any. */
static void drain(weft_thread_pool *pool, gate *busy, call *bc, weft_task *bt)
{
    atomic_store(&busy->release, 1);
    join0(bt);
    assert_int_equal(bc->rc, 0);
    assert_int_equal(bc->result, busy->ret);
    assert_false(atomic_load(&busy->gave_up));
    int result = 0;
    assert_int_equal(weft_thread_pool_run(pool, job_plus_one, (void *)9, &result, NULL), 0);
    assert_int_equal(result, 10);
}

enum queued_how { Q_CANCEL, Q_OPTS_DEADLINE, Q_SCOPE };

static int queued_main(void *arg)
{
    enum queued_how how = (enum queued_how)(intptr_t)arg;
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 1});
    assert_non_null(pool);
    gate busy = {.ret = 5};
    call bc;
    weft_task *bt = occupy(pool, &busy, &bc);

    atomic_int ran = 0;
    call q = {.pool = pool, .fn = job_set_flag, .arg = &ran, .watch = &busy};
    if (how == Q_OPTS_DEADLINE)
        q.opts.timeout_ms = 30;
    if (how == Q_SCOPE)
        q.scope_ms = 30;
    int64_t t0 = clock_ns();
    weft_task *qt = spawn_call(&q);
    assert_int_equal(weft_sleep_ms(5), 0); /* q waits, its job queued */
    int64_t t_cancel = clock_ns();
    if (how == Q_CANCEL)
        assert_int_equal(weft_cancel(qt), 0);
    join0(qt);
    if (how == Q_CANCEL) {
        assert_int_equal(q.rc, -ECANCELED);
        assert_true(q.returned_ns - t_cancel < 1000 * MS); /* at once, not after the busy job */
    } else {
        assert_int_equal(q.rc, -ETIMEDOUT);
        assert_true(q.returned_ns - t0 >= 20 * MS);
    }
    if (how == Q_SCOPE)
        assert_int_equal(q.scope_expired, 1);
    assert_int_equal(q.finished_at_return, 0); /* the busy job was still running */
    assert_false(atomic_load(&busy.finished));

    drain(pool, &busy, &bc, bt);
    assert_int_equal(atomic_load(&ran), 0); /* never ran */
    weft_thread_pool_free(pool);
    assert_int_equal(atomic_load(&ran), 0);
    return 0;
}

static void test_cancel_queued(void **state)
{
    (void)state;
    run_checked(queued_main, (void *)(intptr_t)Q_CANCEL);
}

static void test_timeout_queued(void **state)
{
    (void)state;
    run_checked(queued_main, (void *)(intptr_t)Q_OPTS_DEADLINE);
}

static void test_scope_queued(void **state)
{
    (void)state;
    run_checked(queued_main, (void *)(intptr_t)Q_SCOPE);
}

/* A deadline that has passed already, with idle workers ready to grab the
 * job: -ETIMEDOUT and the job never runs, every time. */
static int expired_main(void *arg)
{
    (void)arg;
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 4});
    assert_non_null(pool);
    atomic_int ran = 0;
    int result;
    for (int i = 0; i < 200; i++) {
        weft_blocking_opts past = {.timeout_ms = -1};
        assert_int_equal(weft_thread_pool_run(pool, job_set_flag, &ran, &result, &past),
                         -ETIMEDOUT);
        weft_scope sc;
        weft_scope_enter(&sc, weft_deadline_ms(-1));
        assert_int_equal(weft_thread_pool_run(pool, job_set_flag, &ran, &result, NULL),
                         -ETIMEDOUT);
        assert_int_equal(weft_scope_exit(&sc), 1);
        if (i % 20 == 0)
            assert_int_equal(weft_sleep_ms(0), 0); /* let the clock move */
    }
    /* Inside a shield an expired outer scope does not count. */
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(-1));
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    atomic_int shielded_ran = 0;
    assert_int_equal(weft_thread_pool_run(pool, job_set_flag, &shielded_ran, &result, NULL), 0);
    assert_int_equal(result, 7);
    assert_int_equal(atomic_load(&shielded_ran), 1);
    weft_shield_end(&sh);
    weft_scope_exit(&sc);
    weft_thread_pool_free(pool); /* joins the workers: any job that ran is done */
    assert_int_equal(atomic_load(&ran), 0);
    return 0;
}

static void test_expired_deadline_never_runs(void **state)
{
    (void)state;
    run_checked(expired_main, NULL);
}

/* ------------------------------------------------------------ running jobs */

/* The caller's gate lives on the caller's own stack. */
typedef struct stack_call {
    call c;
    gate *g;            /* valid while the caller runs */
    int saw_cancel;
    int payload_ok;
    int cancelled_after; /* the cancellation is still visible after the call */
} stack_call;

static int call_with_stack_gate(void *arg)
{
    stack_call *s = arg;
    gate g = {.stop_on_cancel = 1, .linger_ms = 20, .ret = -ECANCELED};
    s->c.fn = job_gate;
    s->c.arg = &g;
    s->c.watch = &g;
    s->g = &g;
    do_call(&s->c);
    s->saw_cancel = atomic_load(&g.saw_cancel);
    s->payload_ok = payload_ok(&g);
    s->g = NULL;
    s->c.watch = NULL;
    s->cancelled_after = weft_sleep_ms(1) == -ECANCELED;
    return 0;
}

enum running_how { R_CANCEL, R_OPTS_DEADLINE, R_SCOPE_TO_THREAD };

static int running_main(void *arg)
{
    enum running_how how = (enum running_how)(intptr_t)arg;
    stack_call s = {.c = {.pool = NULL}};
    /* The default pool starts its threads on first use, slowly under the
     * sanitizers: start it before the 30 ms deadline is taken (a case runs
     * in a fresh process, with no pool left by an earlier case). */
    assert_int_equal(weft_to_thread(job_plus_one, NULL, NULL), 0);
    if (how == R_OPTS_DEADLINE)
        s.c.opts.timeout_ms = 30;
    if (how == R_SCOPE_TO_THREAD) {
        s.c.scope_ms = 30;
        s.c.to_thread = true;
    }
    int64_t t0 = clock_ns();
    weft_task *t = weft_spawn(call_with_stack_gate, &s, NULL);
    assert_non_null(t);
    while (!s.g)
        assert_int_equal(weft_sleep_ms(1), 0);
    await_flag(&s.g->started);
    if (how == R_CANCEL) {
        assert_int_equal(weft_sleep_ms(5), 0);
        assert_int_equal(weft_cancel(t), 0);
        assert_int_equal(weft_sleep_ms(2), 0);
        assert_int_equal(weft_cancel(t), 0); /* again, during the wait for the job */
    }
    join0(t);
    int want = how == R_CANCEL ? -ECANCELED : -ETIMEDOUT;
    assert_int_equal(s.c.rc, want);
    assert_int_equal(s.c.result, -ECANCELED); /* the job's own return value */
    assert_int_equal(s.saw_cancel, 1);        /* weft_job_cancelled() turned true */
    assert_int_equal(s.c.finished_at_return, 1); /* returned after the job's end */
    assert_int_equal(s.payload_ok, 1);
    if (how == R_CANCEL)
        assert_int_equal(s.cancelled_after, 1);
    else
        assert_true(s.c.returned_ns - t0 >= 20 * MS);
    if (how == R_SCOPE_TO_THREAD)
        assert_int_equal(s.c.scope_expired, 1);
    return 0;
}

static void test_cancel_running(void **state)
{
    (void)state;
    run_checked(running_main, (void *)(intptr_t)R_CANCEL);
}

static void test_timeout_running(void **state)
{
    (void)state;
    run_checked(running_main, (void *)(intptr_t)R_OPTS_DEADLINE);
}

static void test_scope_running(void **state)
{
    (void)state;
    run_checked(running_main, (void *)(intptr_t)R_SCOPE_TO_THREAD);
}

/* A cancellation that arrives while the completion is on its way: the
 * result is not lost. */
static int late_cancel_main(void *arg)
{
    (void)arg;
    gate g = {.ret = 99};
    call c = {.fn = job_gate, .arg = &g, .watch = &g};
    weft_task *t = spawn_call(&c);
    await_flag(&g.started);
    atomic_store(&g.release, 1);
    /* Block the loop until the job has finished and posted its completion. */
    int64_t give_up = clock_ns() + 10000 * MS;
    while (!atomic_load(&g.finished) && clock_ns() < give_up)
        usleep(1000);
    usleep(20000);
    assert_int_equal(weft_cancel(t), 0);
    join0(t);
    assert_true(c.rc == 0 || c.rc == -ECANCELED);
    assert_int_equal(c.result, 99);
    assert_int_equal(c.finished_at_return, 1);
    return 0;
}

static void test_cancel_with_completion_in_flight(void **state)
{
    (void)state;
    run_checked(late_cancel_main, NULL);
}

/* ------------------------------------------------------------ detached jobs */

static atomic_int detached_calls;
static atomic_int detached_result;
static atomic_int detached_finished; /* the job had finished when called */
static atomic_int detached_on_loop;  /* called on the loop's thread (wrong) */
static pthread_t detached_loop_thread;
static int detached_pipe[2] = {-1, -1};

static void on_detached(void *arg, int result)
{
    gate *g = arg;
    atomic_store(&detached_result, result);
    atomic_store(&detached_finished, atomic_load(&g->finished));
    if (pthread_equal(pthread_self(), detached_loop_thread))
        atomic_store(&detached_on_loop, 1);
    if (weft_job_cancelled()) /* not a job any more */
        atomic_store(&detached_on_loop, 2);
    free(g);
    atomic_fetch_add(&detached_calls, 1);
    ssize_t w = write(detached_pipe[1], "x", 1);
    (void)w;
}

static void detached_reset(void)
{
    atomic_store(&detached_calls, 0);
    atomic_store(&detached_result, 0);
    atomic_store(&detached_finished, 0);
    atomic_store(&detached_on_loop, 0);
    detached_loop_thread = pthread_self();
}

static int detached_main(void *arg)
{
    bool by_deadline = arg != NULL;
    detached_reset();
    assert_int_equal(pipe(detached_pipe), 0);
    assert_int_equal(weft_set_nonblocking(detached_pipe[0]), 0);

    /* The default pool starts its threads on first use, slowly under the
     * sanitizers: start it before the 30 ms deadline is taken (a case runs
     * in a fresh process, with no pool left by an earlier case). */
    assert_int_equal(weft_to_thread(job_plus_one, NULL, NULL), 0);
    gate *g = calloc(1, sizeof *g); /* freed by on_detached */
    assert_non_null(g);
    g->ret = 123;
    g->linger_ms = 5;
    call c = {.fn = job_gate, .arg = g, .opts = {.on_detached_done = on_detached}};
    if (by_deadline)
        c.opts.timeout_ms = 30;
    weft_task *t = spawn_call(&c);
    await_flag(&g->started);
    if (!by_deadline)
        assert_int_equal(weft_cancel(t), 0);
    join0(t);
    assert_int_equal(c.rc, by_deadline ? -ETIMEDOUT : -ECANCELED);
    /* Returned while the job runs on (it holds until released). */
    assert_false(atomic_load(&g->finished));
    assert_int_equal(atomic_load(&detached_calls), 0);
    await_flag(&g->saw_cancel); /* the job was asked to stop */
    atomic_store(&g->release, 1); /* g belongs to the job now: not touched again */
    g = NULL;

    char b;
    assert_int_equal(weft_read(detached_pipe[0], &b, 1, weft_deadline_ms(10000)), 1);
    assert_int_equal(atomic_load(&detached_calls), 1);
    assert_int_equal(atomic_load(&detached_result), 123);
    assert_int_equal(atomic_load(&detached_finished), 1);
    assert_int_equal(atomic_load(&detached_on_loop), 0);

    /* Not cancelled: an ordinary call, on_detached_done unused; the caller
     * keeps (and frees) the argument. */
    gate *g2 = calloc(1, sizeof *g2);
    assert_non_null(g2);
    g2->ret = 8;
    atomic_store(&g2->release, 1);
    call c2 = {.fn = job_gate, .arg = g2, .opts = {.on_detached_done = on_detached}};
    join0(spawn_call(&c2));
    assert_int_equal(c2.rc, 0);
    assert_int_equal(c2.result, 8);
    free(g2);
    assert_int_equal(atomic_load(&detached_calls), 1);

    weft_close(detached_pipe[0]);
    close(detached_pipe[1]);
    detached_pipe[0] = detached_pipe[1] = -1;
    return 0;
}

static void test_detached_cancel(void **state)
{
    (void)state;
    run_checked(detached_main, NULL);
}

static void test_detached_timeout(void **state)
{
    (void)state;
    run_checked(detached_main, (void *)1);
}

/* A detached-mode job cancelled while still queued never runs, and
 * on_detached_done is called once, before the call returns, with
 * -ECANCELED: on failure it owns the argument (here: frees it). */
static int detached_queued_main(void *arg)
{
    (void)arg;
    detached_reset();
    assert_int_equal(pipe(detached_pipe), 0);
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 1});
    assert_non_null(pool);
    gate busy = {.ret = 1};
    call bc;
    weft_task *bt = occupy(pool, &busy, &bc);

    gate *g = calloc(1, sizeof *g);
    assert_non_null(g);
    atomic_store(&g->release, 1);
    call q = {.pool = pool, .fn = job_gate, .arg = g, .opts = {.on_detached_done = on_detached}};
    weft_task *qt = spawn_call(&q);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_cancel(qt), 0);
    join0(qt);
    assert_int_equal(q.rc, -ECANCELED);
    assert_int_equal(atomic_load(&detached_calls), 1); /* called before returning */
    assert_int_equal(atomic_load(&detached_result), -ECANCELED);
    assert_int_equal(atomic_load(&detached_on_loop), 1); /* on the caller's thread */
    g = NULL; /* freed by on_detached */
    drain(pool, &busy, &bc, bt);
    weft_thread_pool_free(pool);
    assert_int_equal(atomic_load(&detached_calls), 1);
    close(detached_pipe[0]);
    close(detached_pipe[1]);
    detached_pipe[0] = detached_pipe[1] = -1;
    return 0;
}

static void test_detached_queued(void **state)
{
    (void)state;
    run_checked(detached_queued_main, NULL);
}

/* ------------------------------------------------------------ weft_job_cancelled, errors */

static int cancelled_in_posted = -1;
static int posted_rc;

static void posted_checks(void *arg)
{
    (void)arg;
    cancelled_in_posted = weft_job_cancelled();
    atomic_int flag = 0;
    posted_rc = weft_to_thread(job_set_flag, &flag, NULL);
    if (atomic_load(&flag))
        posted_rc = 12345;
}

static int errors_main(void *arg)
{
    (void)arg;
    assert_false(weft_job_cancelled()); /* in a task */
    int result = 0;
    assert_int_equal(weft_thread_pool_run(NULL, NULL, NULL, &result, NULL), -EINVAL);
    assert_int_equal(weft_to_thread(NULL, NULL, &result), -EINVAL);
    assert_non_null(strstr(weft_errmsg(), "NULL"));

    /* in a posted call: not a task */
    posted_rc = 0;
    assert_int_equal(weft_loop_post(weft_loop_current(), posted_checks, NULL), 0);
    assert_int_equal(weft_sleep_ms(1), 0);
    assert_int_equal(cancelled_in_posted, 0);
    assert_int_equal(posted_rc, WEFT_ENOTASK);

    /* an already-cancelled caller: -ECANCELED, the job never runs */
    atomic_int flag = 0;
    assert_int_equal(weft_cancel(weft_current()), 0);
    assert_int_equal(weft_to_thread(job_set_flag, &flag, &result), -ECANCELED);
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 2});
    assert_non_null(pool);
    assert_int_equal(weft_thread_pool_run(pool, job_set_flag, &flag, &result, NULL), -ECANCELED);
    /* ... but inside a shield the call goes through */
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    result = 0;
    assert_int_equal(weft_thread_pool_run(pool, job_set_flag, &flag, &result, NULL), 0);
    assert_int_equal(result, 7);
    weft_shield_end(&sh);
    weft_thread_pool_free(pool);
    assert_int_equal(atomic_load(&flag), 1); /* only the shielded call ran */
    return 0;
}

static void test_errors(void **state)
{
    (void)state;
    assert_false(weft_job_cancelled()); /* outside any loop */
    atomic_int flag = 0;
    int result = -1;
    assert_int_equal(weft_to_thread(job_set_flag, &flag, &result), WEFT_ENOTASK);
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 1});
    assert_non_null(pool);
    assert_int_equal(weft_thread_pool_run(pool, job_set_flag, &flag, &result, NULL),
                     WEFT_ENOTASK);
    assert_int_equal(weft_thread_pool_run(pool, NULL, NULL, NULL, NULL), WEFT_ENOTASK);
    weft_thread_pool_free(pool);
    assert_int_equal(atomic_load(&flag), 0);
    assert_int_equal(result, -1);

    assert_int_equal(weft_thread_pool_size(NULL), 0);
    weft_thread_pool_free(NULL);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* (the sanitizers' allocators abort on such a request instead of failing) */
    assert_null(weft_thread_pool_new(&(weft_thread_pool_opts){.threads = SIZE_MAX / 4}));
    assert_non_null(strstr(weft_errmsg(), "weft_thread_pool_new"));
#endif

    run_checked(errors_main, NULL);
}

/* ------------------------------------------------------------ pool size */

static char log_text[4096];

static void capture_log(const char *msg, void *data)
{
    (void)data;
    strncat(log_text, msg, sizeof log_text - strlen(log_text) - 1);
}

static size_t pool_size_with_env(const char *value, const weft_thread_pool_opts *opts)
{
    if (value)
        assert_int_equal(setenv("WEFT_THREADS", value, 1), 0);
    else
        assert_int_equal(unsetenv("WEFT_THREADS"), 0);
    weft_thread_pool *pool = weft_thread_pool_new(opts);
    assert_non_null(pool);
    size_t n = weft_thread_pool_size(pool);
    weft_thread_pool_free(pool);
    return n;
}

static void test_pool_size(void **state)
{
    (void)state;
    weft_thread_pool_default(); /* created before WEFT_THREADS changes */
    const char *saved = getenv("WEFT_THREADS");
    char *saved_copy = saved ? strdup(saved) : NULL;

    int before = settled_threads();
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 3});
    assert_non_null(pool);
    assert_int_equal(weft_thread_pool_size(pool), 3);
    assert_int_equal(count_threads(), before + 3);
    weft_thread_pool_free(pool);

    weft_thread_pool_opts zero = {0};
    assert_int_equal(pool_size_with_env("5", NULL), 5);
    assert_int_equal(pool_size_with_env("7", &zero), 7);
    assert_int_equal(pool_size_with_env("5", &(weft_thread_pool_opts){.threads = 2}), 2);
    assert_int_equal(pool_size_with_env(NULL, NULL), default_size());
    assert_int_equal(pool_size_with_env("", NULL), default_size());

    /* Bad values are ignored, with a message. */
    const char *bad[] = {"abc", "0", "-3", "5000", "4x"};
    weft_set_log(capture_log, NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log_text[0] = '\0';
        assert_int_equal(pool_size_with_env(bad[i], NULL), default_size());
        assert_non_null(strstr(log_text, "WEFT_THREADS"));
        assert_non_null(strstr(log_text, bad[i]));
    }
    weft_set_log(NULL, NULL);

    if (saved_copy)
        setenv("WEFT_THREADS", saved_copy, 1);
    else
        unsetenv("WEFT_THREADS");
    free(saved_copy);
}

/* ------------------------------------------------------------ freeing a busy pool */

static atomic_int pool_freed;

static void *free_pool_thread(void *arg)
{
    weft_thread_pool_free(arg);
    atomic_store(&pool_freed, 1);
    return NULL;
}

static int free_busy_main(void *arg)
{
    (void)arg;
    atomic_store(&pool_freed, 0);
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 2});
    assert_non_null(pool);

    /* Two running jobs: one holds on until released (so the pool cannot
     * finish freeing meanwhile), one stops when asked. */
    gate hold = {.ret = 55};
    gate quits = {.stop_on_cancel = 1, .ret = -ECANCELED};
    call r1 = {.pool = pool, .fn = job_gate, .arg = &hold};
    call r2 = {.pool = pool, .fn = job_gate, .arg = &quits};
    weft_task *t1 = spawn_call(&r1), *t2 = spawn_call(&r2);
    await_flag(&hold.started);
    await_flag(&quits.started);

    /* Three queued ones. */
    enum { NQ = 3 };
    atomic_int ran = 0;
    call q[NQ];
    weft_task *qt[NQ];
    for (int i = 0; i < NQ; i++) {
        q[i] = (call){.pool = pool, .fn = job_set_flag, .arg = &ran, .watch = &hold};
        qt[i] = spawn_call(&q[i]);
    }
    assert_int_equal(weft_sleep_ms(5), 0);

    /* Free it from another thread: that blocks there, not here, until the
     * running jobs end; this loop goes on receiving completions. */
    pthread_t ft;
    assert_int_equal(pthread_create(&ft, NULL, free_pool_thread, pool), 0);
    await_flag(&hold.saw_cancel); /* the shutdown has begun */

    for (int i = 0; i < NQ; i++) {
        join0(qt[i]);
        assert_int_equal(q[i].rc, -ECANCELED);
        assert_int_equal(q[i].finished_at_return, 0); /* before the running job ended */
    }
    await_flag(&quits.finished);

    /* A call racing with the shutdown (the pool is not freed yet: the
     * held job still runs) is refused. */
    atomic_int racer_ran = 0;
    int result = 0;
    int rc = weft_thread_pool_run(pool, job_set_flag, &racer_ran, &result, NULL);
    assert_true(rc == -ESHUTDOWN || rc == -ECANCELED);
    assert_false(atomic_load(&pool_freed));

    atomic_store(&hold.release, 1);
    join0(t1);
    join0(t2);
    assert_int_equal(r1.rc, 0); /* finished: its result as usual */
    assert_int_equal(r1.result, 55);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(r2.result, -ECANCELED);
    assert_int_equal(atomic_load(&quits.saw_cancel), 1);

    await_flag(&pool_freed);
    assert_int_equal(pthread_join(ft, NULL), 0);
    assert_int_equal(atomic_load(&ran), 0);
    assert_int_equal(atomic_load(&racer_ran), 0);
    return 0;
}

static void test_free_with_jobs_in_flight(void **state)
{
    (void)state;
    run_checked(free_busy_main, NULL);
}

/* Tasks hammering a pool while it shuts down: every call either succeeds
 * with the right result or fails with -ESHUTDOWN / -ECANCELED. */
typedef struct spammer {
    weft_thread_pool *pool;
    atomic_int *done;
    int last_rc;
    int bad;
} spammer;

static int spam(void *arg)
{
    spammer *s = arg;
    for (intptr_t i = 0;; i++) {
        int result = 0;
        int rc = weft_thread_pool_run(s->pool, job_plus_one, (void *)i, &result, NULL);
        if (rc != 0) {
            s->last_rc = rc;
            return 0;
        }
        if (result != i + 1)
            s->bad++;
        atomic_fetch_add(s->done, 1);
    }
}

static int race_free_main(void *arg)
{
    (void)arg;
    atomic_store(&pool_freed, 0);
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 3});
    assert_non_null(pool);
    gate hold = {.ret = 0};
    call hc = {.pool = pool, .fn = job_gate, .arg = &hold};
    weft_task *ht = spawn_call(&hc);
    await_flag(&hold.started);

    enum { NS = 8 };
    atomic_int done = 0;
    spammer s[NS];
    weft_task *st[NS];
    for (int i = 0; i < NS; i++) {
        s[i] = (spammer){.pool = pool, .done = &done};
        st[i] = weft_spawn(spam, &s[i], NULL);
        assert_non_null(st[i]);
    }
    int64_t give_up = clock_ns() + 10000 * MS;
    while (atomic_load(&done) < 500 && clock_ns() < give_up)
        assert_int_equal(weft_sleep_ms(1), 0);

    pthread_t ft;
    assert_int_equal(pthread_create(&ft, NULL, free_pool_thread, pool), 0);
    for (int i = 0; i < NS; i++) {
        join0(st[i]);
        assert_true(s[i].last_rc == -ESHUTDOWN || s[i].last_rc == -ECANCELED);
        assert_int_equal(s[i].bad, 0);
    }
    assert_false(atomic_load(&pool_freed)); /* the held job keeps it alive */
    atomic_store(&hold.release, 1);
    join0(ht);
    assert_int_equal(hc.rc, 0);
    await_flag(&pool_freed);
    assert_int_equal(pthread_join(ft, NULL), 0);
    print_message("%d jobs before the shutdown\n", atomic_load(&done));
    return 0;
}

static void test_run_racing_shutdown(void **state)
{
    (void)state;
    run_checked(race_free_main, NULL);
}

/* ------------------------------------------------------------ many jobs */

enum { MANY_TASKS = 100, MANY_PER_TASK = 1000 };

static int many_caller(void *arg)
{
    long *sum = arg;
    weft_thread_pool *pool = weft_thread_pool_default();
    for (intptr_t i = 0; i < MANY_PER_TASK; i++) {
        int result = 0;
        int rc = weft_thread_pool_run(pool, job_plus_one, (void *)i, &result, NULL);
        if (rc != 0)
            return rc;
        *sum += result;
    }
    return 0;
}

static int many_main(void *arg)
{
    (void)arg;
    static long sums[MANY_TASKS];
    static weft_task *t[MANY_TASKS];
    int64_t t0 = clock_ns();
    for (int i = 0; i < MANY_TASKS; i++) {
        sums[i] = 0;
        t[i] = weft_spawn(many_caller, &sums[i], NULL);
        assert_non_null(t[i]);
    }
    long total = 0;
    for (int i = 0; i < MANY_TASKS; i++) {
        join0(t[i]);
        total += sums[i];
    }
    int64_t elapsed = clock_ns() - t0;
    print_message("%d jobs: %lld ms\n", MANY_TASKS * MANY_PER_TASK, (long long)(elapsed / MS));
    assert_int_equal(total, (long)MANY_TASKS * MANY_PER_TASK * (MANY_PER_TASK + 1) / 2);
    assert_true(elapsed < 30000 * MS);
    return 0;
}

static void test_100k_jobs(void **state)
{
    (void)state;
    run_checked(many_main, NULL);
}

/* ------------------------------------------------------------ two loops, one pool */

typedef struct loop_ctx {
    weft_thread_pool *pool;
    int id;
    weft_loop *loop;
    pthread_t thread;
    int status;
    atomic_int errors;
    atomic_long sum;
} loop_ctx;

enum { LOOP_TASKS = 20, LOOP_JOBS = 500 };

static int loop_caller(void *arg)
{
    loop_ctx *ctx = arg;
    for (int i = 0; i < LOOP_JOBS; i++) {
        int x = ctx->id * 1000000 + i;
        int result = 0;
        int rc = weft_thread_pool_run(ctx->pool, job_plus_one, (void *)(intptr_t)x, &result,
                                      NULL);
        if (rc != 0 || result != x + 1 || weft_loop_current() != ctx->loop ||
            !pthread_equal(pthread_self(), ctx->thread))
            atomic_fetch_add(&ctx->errors, 1);
        atomic_fetch_add(&ctx->sum, result);
    }
    return 0;
}

static int loop_main(void *arg)
{
    loop_ctx *ctx = arg;
    ctx->loop = weft_loop_current();
    ctx->thread = pthread_self();
    weft_task *t[LOOP_TASKS];
    for (int i = 0; i < LOOP_TASKS; i++)
        if (!(t[i] = weft_spawn(loop_caller, ctx, NULL)))
            atomic_fetch_add(&ctx->errors, 1);
    for (int i = 0; i < LOOP_TASKS; i++)
        if (t[i])
            weft_join(t[i], NULL);
    return 0;
}

static void *loop_thread(void *arg)
{
    loop_ctx *ctx = arg;
    ctx->status = weft_run(loop_main, ctx);
    return NULL;
}

static void test_two_loops_share_pool(void **state)
{
    (void)state;
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 3});
    assert_non_null(pool);
    loop_ctx ctx[2] = {{.pool = pool, .id = 1}, {.pool = pool, .id = 2}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, loop_thread, &ctx[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    weft_thread_pool_free(pool);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ctx[i].status, 0);
        assert_int_equal(atomic_load(&ctx[i].errors), 0);
        long n = LOOP_JOBS;
        long want = LOOP_TASKS * (n * (ctx[i].id * 1000000L + 1) + n * (n - 1) / 2);
        assert_int_equal(atomic_load(&ctx[i].sum), want);
    }
}

/* ------------------------------------------------------------ resources */

static int resources_main(void *arg)
{
    int *threads_before = arg;
    int fds = count_fds();
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 8});
    assert_non_null(pool);
    assert_int_equal(count_threads(), *threads_before + 8);
    /* some work, a cancelled running job and a detached one included */
    int result = 0;
    for (intptr_t i = 0; i < 100; i++) {
        assert_int_equal(weft_thread_pool_run(pool, job_plus_one, (void *)i, &result, NULL), 0);
        assert_int_equal(result, i + 1);
    }
    gate g = {.stop_on_cancel = 1, .ret = 3};
    call c = {.pool = pool, .fn = job_gate, .arg = &g, .opts.timeout_ms = 10};
    join0(spawn_call(&c));
    assert_int_equal(c.rc, -ETIMEDOUT);
    weft_thread_pool_free(pool);
    assert_int_equal(count_fds(), fds);
    return 0;
}

static void test_no_leaks(void **state)
{
    (void)state;
    weft_thread_pool_default();
    int fds = count_fds();
    int threads = settled_threads();
    assert_int_equal(weft_run(resources_main, &threads), 0);
    assert_int_equal(count_fds(), fds);
    assert_int_equal(settled_threads(), threads);
}

/* ------------------------------------------------------------ dumps */

/* The line of the dump that names `name`. */
static bool dump_line(const char *dump, const char *name, char *line, size_t n)
{
    for (const char *p = dump; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)len, p);
        char *s = buf;
        while (*s == ' ')
            s++;
        if (strncmp(s, name, strlen(name)) == 0 && s[strlen(name)] == ' ') {
            snprintf(line, n, "%s", buf);
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

static int dump_main(void *arg)
{
    (void)arg;
    gate g1 = {.ret = 0}, g2 = {.ret = 0};
    call c1 = {.fn = job_gate, .arg = &g1};
    call c2 = {.fn = job_gate, .arg = &g2, .opts.timeout_ms = 60000};
    weft_task *t1 = weft_spawn(do_call, &c1, &(weft_task_opts){.name = "pool-waiter"});
    weft_task *t2 = weft_spawn(do_call, &c2, &(weft_task_opts){.name = "pool-deadline"});
    assert_non_null(t1);
    assert_non_null(t2);
    await_flag(&g1.started);
    await_flag(&g2.started);

    char *dump = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&dump, &size);
    assert_non_null(f);
    weft_dump_tasks(f);
    fclose(f);
    print_message("%s", dump);
    char line[512];
    assert_true(dump_line(dump, "pool-waiter", line, sizeof line));
    assert_non_null(strstr(line, "waiting"));
    assert_non_null(strstr(line, "thread pool job"));
    assert_true(dump_line(dump, "pool-deadline", line, sizeof line));
    assert_non_null(strstr(line, "thread pool job"));
    assert_non_null(strstr(line, "deadline in"));
    free(dump);

    atomic_store(&g1.release, 1);
    atomic_store(&g2.release, 1);
    join0(t1);
    join0(t2);
    assert_int_equal(c1.rc, 0);
    assert_int_equal(c2.rc, 0);
    return 0;
}

static void test_dump_shows_job(void **state)
{
    (void)state;
    run_checked(dump_main, NULL);
}

/* ------------------------------------------------------------ signals */

static int sig_waiter(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    return weft_signal_wait(&s, weft_deadline_ms(10000));
}

static int sig_killer(void *arg)
{
    (void)arg;
    if (weft_sleep_ms(5) != 0)
        return -1;
    return kill(getpid(), SIGUSR2);
}

static int signal_main(void *arg)
{
    (void)arg;
    weft_thread_pool *pool = weft_thread_pool_new(&(weft_thread_pool_opts){.threads = 8});
    assert_non_null(pool);
    gate g = {.ret = 0};
    call c = {.pool = pool, .fn = job_gate, .arg = &g};
    weft_task *ct = spawn_call(&c);
    await_flag(&g.started); /* a worker busy in a job, seven idle */

    weft_task *w = weft_spawn(sig_waiter, NULL, NULL);
    weft_task *k = weft_spawn(sig_killer, NULL, NULL);
    assert_non_null(w);
    assert_non_null(k);
    int st = -1;
    assert_int_equal(weft_join(w, &st), 0);
    assert_int_equal(st, SIGUSR2);
    join0(k);

    atomic_store(&g.release, 1);
    join0(ct);
    weft_thread_pool_free(pool);
    return 0;
}

static void test_signal_reaches_loop(void **state)
{
    (void)state;
    weft_thread_pool_default(); /* its workers exist too */
    run_checked(signal_main, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_thread_basics),
        cmocka_unit_test(test_loop_keeps_running),
        cmocka_unit_test(test_parallel_threads),
        cmocka_unit_test(test_job_posts_to_loop),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_timeout_queued),
        cmocka_unit_test(test_scope_queued),
        cmocka_unit_test(test_expired_deadline_never_runs),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_timeout_running),
        cmocka_unit_test(test_scope_running),
        cmocka_unit_test(test_cancel_with_completion_in_flight),
        cmocka_unit_test(test_detached_cancel),
        cmocka_unit_test(test_detached_timeout),
        cmocka_unit_test(test_detached_queued),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pool_size),
        cmocka_unit_test(test_free_with_jobs_in_flight),
        cmocka_unit_test(test_run_racing_shutdown),
        cmocka_unit_test(test_100k_jobs),
        cmocka_unit_test(test_two_loops_share_pool),
        cmocka_unit_test(test_no_leaks),
        cmocka_unit_test(test_dump_shows_job),
        cmocka_unit_test(test_signal_reaches_loop),
    };
    return run_cases(tests, NULL, NULL);
}
