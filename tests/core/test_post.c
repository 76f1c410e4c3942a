/* SPDX-License-Identifier: MIT */
/* Cross-thread calls: weft_loop_post and weft_loop_current. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <valgrind/valgrind.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void noop(void *arg) { (void)arg; }

/* ------------------------------------------------------------ weft_loop_current */

static weft_loop *seen_in_post, *seen_in_timer;
static weft_task *task_in_post;
static int post_ran;

static void record_post(void *arg)
{
    (void)arg;
    seen_in_post = weft_loop_current();
    task_in_post = weft_current();
    post_ran++;
}

static void record_timer(weft_timer *tm)
{
    (void)tm;
    seen_in_timer = weft_loop_current();
}

static int current_loop(void *arg)
{
    weft_loop **out = arg;
    weft_loop *loop = weft_loop_current();
    assert_non_null(loop);
    *out = loop;
    weft_timer tm;
    weft_timer_init(&tm, record_timer, NULL);
    assert_int_equal(weft_timer_start(&tm, weft_now()), 0);
    post_ran = 0;
    task_in_post = weft_current(); /* overwritten by the posted call */
    assert_int_equal(weft_loop_post(loop, record_post, NULL), 0);
    while (!post_ran)
        assert_int_equal(weft_sleep_ms(1), 0);
    assert_ptr_equal(seen_in_post, loop);
    assert_null(task_in_post); /* posted calls run between tasks */
    assert_ptr_equal(seen_in_timer, loop);
    return 0;
}

static void test_loop_current(void **state)
{
    (void)state;
    assert_null(weft_loop_current());
    weft_loop *first = NULL, *second = NULL;
    run_checked(current_loop, &first);
    assert_null(weft_loop_current());
    run_checked(current_loop, &second);
    assert_null(weft_loop_current());
    assert_non_null(first);
    assert_non_null(second);
}

/* Another thread sees its own loop, or none. */
static void *loop_of_thread(void *arg)
{
    weft_loop **out = arg;
    *out = weft_loop_current();
    return NULL;
}

static int loop_other_thread(void *arg)
{
    (void)arg;
    weft_loop *other = (weft_loop *)1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, loop_of_thread, &other), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_null(other);
    assert_non_null(weft_loop_current());
    return 0;
}

static void test_loop_current_per_thread(void **state)
{
    (void)state;
    run_checked(loop_other_thread, NULL);
}

/* ------------------------------------------------------------ errors */

static int post_errors(void *arg)
{
    (void)arg;
    weft_loop *loop = weft_loop_current();
    assert_int_equal(weft_loop_post(NULL, noop, NULL), -EINVAL);
    assert_int_equal(weft_loop_post(loop, NULL, NULL), -EINVAL);
    assert_int_equal(weft_loop_post(NULL, NULL, NULL), -EINVAL);
    return 0;
}

static void test_post_invalid(void **state)
{
    (void)state;
    assert_int_equal(weft_loop_post(NULL, noop, NULL), -EINVAL);
    assert_int_equal(weft_loop_post(NULL, NULL, NULL), -EINVAL);
    run_checked(post_errors, NULL);
}

/* A posted call runs on the loop, not in a task: it cannot suspend. */
static int notask_rc;
static pthread_t post_thread;
static int post_thread_ok;
static void try_suspend(void *arg)
{
    (void)arg;
    notask_rc = weft_sleep_ms(1);
    post_thread_ok = pthread_equal(pthread_self(), post_thread);
    post_ran++;
}

static int post_notask(void *arg)
{
    (void)arg;
    post_ran = 0;
    notask_rc = 1;
    post_thread = pthread_self();
    post_thread_ok = 0;
    assert_int_equal(weft_loop_post(weft_loop_current(), try_suspend, NULL), 0);
    while (!post_ran)
        assert_int_equal(weft_sleep_ms(1), 0);
    assert_int_equal(notask_rc, WEFT_ENOTASK);
    assert_int_equal(post_thread_ok, 1);
    return 0;
}

static void test_posted_call_cannot_suspend(void **state)
{
    (void)state;
    run_checked(post_notask, NULL);
}

/* ------------------------------------------------------------ waking a task */

struct waker {
    weft_loop *loop;
    weft_task *task;
    int delay_ms;
    int rc;
};

static void cancel_task(void *arg)
{
    weft_cancel(arg);
}

static void *post_cancel_later(void *arg)
{
    struct waker *w = arg;
    nap_ms(w->delay_ms);
    w->rc = weft_loop_post(w->loop, cancel_task, w->task);
    return NULL;
}

/* The loop blocks in the poll with nothing to wake it (no timer, no fd):
 * only the post can. */
static int woken_by_post(void *arg)
{
    (void)arg;
    struct waker w = {weft_loop_current(), weft_current(), 20, 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_cancel_later, &w), 0);
    int64_t c0 = clock_ns();
    int rc = weft_sleep_until(WEFT_NO_DEADLINE);
    int64_t took = clock_ns() - c0;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_int_equal(rc, -ECANCELED);
    assert_true(took < 10000 * MS);
    return 0;
}

static void test_post_wakes_blocked_loop(void **state)
{
    (void)state;
    run_checked(woken_by_post, NULL);
}

/* Same, from a task that is not main, while main waits for it. */
static int sleeper_task(void *arg)
{
    (void)arg;
    return weft_sleep_ms(60000);
}

static int wake_other_task(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(sleeper_task, NULL, NULL);
    struct waker w = {weft_loop_current(), t, 10, 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_cancel_later, &w), 0);
    int st = 0;
    int64_t c0 = clock_ns();
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_true(clock_ns() - c0 < 10000 * MS);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, 0);
    return 0;
}

static void test_post_wakes_sleeping_task(void **state)
{
    (void)state;
    run_checked(wake_other_task, NULL);
}

/* The posted call spawns a task; main waits for what it writes to a pipe. */
static int P[2];
static weft_task *spawned;
static int spawned_in_loop;

static int pipe_writer(void *arg)
{
    (void)arg;
    spawned_in_loop = weft_loop_current() != NULL && weft_current() != NULL;
    return (int)weft_write(P[1], "p", 1, weft_deadline_ms(5000));
}

static void spawn_writer(void *arg)
{
    (void)arg;
    spawned = weft_spawn(pipe_writer, NULL, NULL);
}

static void *post_spawn_later(void *arg)
{
    struct waker *w = arg;
    nap_ms(w->delay_ms);
    w->rc = weft_loop_post(w->loop, spawn_writer, NULL);
    return NULL;
}

static int spawn_from_post(void *arg)
{
    (void)arg;
    assert_int_equal(pipe2(P, O_NONBLOCK | O_CLOEXEC), 0);
    spawned = NULL;
    spawned_in_loop = 0;
    struct waker w = {weft_loop_current(), NULL, 10, 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_spawn_later, &w), 0);
    char c;
    assert_int_equal(weft_read(P[0], &c, 1, weft_deadline_ms(10000)), 1);
    assert_int_equal(c, 'p');
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_non_null(spawned);
    int st = -1;
    assert_int_equal(weft_join(spawned, &st), 0);
    assert_int_equal(st, 1);
    assert_int_equal(spawned_in_loop, 1);
    assert_int_equal(weft_close(P[0]), 0);
    assert_int_equal(weft_close(P[1]), 0);
    return 0;
}

static void test_post_spawns_task(void **state)
{
    (void)state;
    run_checked(spawn_from_post, NULL);
}

/* ------------------------------------------------------------ many posts */

enum { NTHREADS = 4, PER_THREAD = 25000 };

static atomic_int go;
static weft_loop *many_loop;
static int next_seq[NTHREADS];
static int ncalls, order_errors, thread_errors;
static int post_errors_seen;
static pthread_t loop_thread;

static void count_post(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int th = (int)(v >> 20), seq = (int)(v & 0xFFFFF);
    if (th < 0 || th >= NTHREADS || seq != next_seq[th])
        order_errors++;
    else
        next_seq[th]++;
    if (!pthread_equal(pthread_self(), loop_thread))
        thread_errors++;
    ncalls++;
}

static void *poster(void *arg)
{
    uintptr_t th = (uintptr_t)arg;
    while (!atomic_load(&go)) {
    }
    for (uintptr_t i = 0; i < PER_THREAD; i++) {
        int rc = weft_loop_post(many_loop, count_post, (void *)((th << 20) | i));
        if (rc != 0)
            __atomic_add_fetch(&post_errors_seen, 1, __ATOMIC_RELAXED);
        if (i % 4096 == 0)
            sched_yield();
    }
    return NULL;
}

static int many_posts(void *arg)
{
    (void)arg;
    many_loop = weft_loop_current();
    loop_thread = pthread_self();
    memset(next_seq, 0, sizeof next_seq);
    ncalls = order_errors = thread_errors = post_errors_seen = 0;
    atomic_store(&go, 0);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, poster, (void *)(uintptr_t)i), 0);
    atomic_store(&go, 1);
    /* keep the loop alive (suspended) until every call has run */
    int64_t limit = clock_ns() + 20000 * MS;
    while (ncalls < NTHREADS * PER_THREAD && clock_ns() < limit)
        assert_int_equal(weft_sleep_ms(1), 0);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(weft_sleep_ms(5), 0); /* no extra calls */
    assert_int_equal(__atomic_load_n(&post_errors_seen, __ATOMIC_RELAXED), 0);
    assert_int_equal(order_errors, 0);
    assert_int_equal(thread_errors, 0);
    assert_int_equal(ncalls, NTHREADS * PER_THREAD);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(next_seq[i], PER_THREAD);
    return 0;
}

static void test_many_posts_once_in_order(void **state)
{
    (void)state;
    run_checked(many_posts, NULL);
}

/* Posts from the loop's own thread: in order, and a posted call may post. */
static char trace[16];
static int ntrace;

static void trace_post(void *arg)
{
    trace[ntrace++] = (char)(intptr_t)arg;
}

static void post_again(void *arg)
{
    trace_post(arg);
    /* posted while the loop runs its queue: runs in a later round */
    if (weft_loop_post(weft_loop_current(), trace_post, (void *)'z') != 0)
        trace[ntrace++] = '!';
}

static int self_posts(void *arg)
{
    (void)arg;
    weft_loop *loop = weft_loop_current();
    ntrace = 0;
    memset(trace, 0, sizeof trace);
    assert_int_equal(weft_loop_post(loop, trace_post, (void *)'a'), 0);
    assert_int_equal(weft_loop_post(loop, post_again, (void *)'b'), 0);
    assert_int_equal(weft_loop_post(loop, trace_post, (void *)'c'), 0);
    assert_int_equal(ntrace, 0); /* never run inside the post */
    for (int i = 0; i < 1000 && ntrace < 4; i++)
        assert_int_equal(weft_sleep_ms(1), 0);
    assert_string_equal(trace, "abcz");
    return 0;
}

static void test_post_from_loop_thread(void **state)
{
    (void)state;
    run_checked(self_posts, NULL);
}

/* Two loops on two threads post to each other, back and forth. */
enum { PINGS = 20000 };
static weft_loop *loop_a, *loop_b;
static _Atomic(weft_loop *) loop_b_published;
static int pings_a, pings_b, b_stop;
static atomic_int pong_errors; /* bumped on both threads */
static weft_task *b_main;

static void on_b(void *arg);
static void on_a(void *arg)
{
    (void)arg;
    if (weft_loop_current() != loop_a)
        pong_errors++;
    pings_a++;
    if (pings_a < PINGS) {
        if (weft_loop_post(loop_b, on_b, NULL) != 0)
            pong_errors++;
    }
}

static void on_b(void *arg)
{
    (void)arg;
    if (weft_loop_current() != loop_b)
        pong_errors++;
    pings_b++;
    if (weft_loop_post(loop_a, on_a, NULL) != 0)
        pong_errors++;
}

static void stop_b(void *arg)
{
    (void)arg;
    b_stop = 1;
    weft_cancel(b_main);
}

static int b_main_fn(void *arg)
{
    (void)arg;
    b_main = weft_current();
    atomic_store(&loop_b_published, weft_loop_current());
    int rc = weft_sleep_until(WEFT_NO_DEADLINE); /* until stop_b */
    return rc == -ECANCELED && b_stop ? 0 : -1;
}

static void *b_thread(void *arg)
{
    int *status = arg;
    *status = weft_run(b_main_fn, NULL);
    return NULL;
}

static int ping_pong(void *arg)
{
    (void)arg;
    loop_a = weft_loop_current();
    atomic_store(&loop_b_published, NULL);
    pings_a = pings_b = b_stop = 0;
    atomic_store(&pong_errors, 0);
    int b_status = -100;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, b_thread, &b_status), 0);
    int64_t limit = clock_ns() + 10000 * MS;
    while (!(loop_b = atomic_load(&loop_b_published)) && clock_ns() < limit)
        assert_int_equal(weft_sleep_ms(1), 0);
    assert_non_null(loop_b);
    assert_int_equal(weft_loop_post(loop_b, on_b, NULL), 0);
    while (pings_a < PINGS && clock_ns() < limit)
        assert_int_equal(weft_sleep_ms(1), 0);
    /* loop b is alive until it runs stop_b */
    assert_int_equal(weft_loop_post(loop_b, stop_b, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b_status, 0);
    assert_int_equal(atomic_load(&pong_errors), 0);
    assert_int_equal(pings_a, PINGS);
    assert_int_equal(pings_b, PINGS);
    return 0;
}

static void test_two_loops_ping_pong(void **state)
{
    (void)state;
    run_checked(ping_pong, NULL);
}

/* ------------------------------------------------------------ before return */

static int late_ran, late_task_ran, late_many;
static int late_task(void *arg)
{
    (void)arg;
    if (weft_sleep_ms(1) == 0)
        late_task_ran++;
    return 0;
}

static void late_post(void *arg)
{
    (void)arg;
    late_ran++;
    weft_detach(weft_spawn(late_task, NULL, NULL)); /* keeps the loop going */
}

static void late_count(void *arg)
{
    (void)arg;
    late_many++;
}

static void *post_then_exit(void *arg)
{
    weft_loop *loop = arg;
    if (weft_loop_post(loop, late_post, NULL) != 0)
        return (void *)1;
    for (int i = 0; i < 1000; i++)
        if (weft_loop_post(loop, late_count, NULL) != 0)
            return (void *)1;
    return NULL;
}

static int main_ends_early(void *arg)
{
    (void)arg;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_then_exit, weft_loop_current()), 0);
    void *ret = (void *)2;
    /* blocks the loop's thread: the posts are surely queued, not yet run */
    assert_int_equal(pthread_join(th, &ret), 0);
    assert_null(ret);
    assert_int_equal(late_ran, 0);
    /* and one from the loop's own thread */
    assert_int_equal(weft_loop_post(weft_loop_current(), late_count, NULL), 0);
    return 0; /* main ends with the calls still queued */
}

static void test_queued_posts_run_before_return(void **state)
{
    (void)state;
    late_ran = late_task_ran = late_many = 0;
    run_checked(main_ends_early, NULL);
    assert_int_equal(late_ran, 1);
    assert_int_equal(late_task_ran, 1);
    assert_int_equal(late_many, 1001);
}


/* ------------------------------------------------------------ lifetime */

/* Threads post as fast as they can while the loop ends, then after it
 * ended, and finally drop their references: under ASan a post into a freed
 * loop is a use-after-free, under TSan a race. */
#define HARD_POSTERS 4

static atomic_int hard_stop, hard_refused;
static atomic_long hard_ran;

static void hard_count(void *arg)
{
    (void)arg;
    atomic_fetch_add(&hard_ran, 1);
}

static void *hard_poster(void *arg)
{
    weft_loop *loop = arg;
    long ok = 0;
    int rc;
    while ((rc = weft_loop_post(loop, hard_count, NULL)) == 0) {
        /* valgrind runs one thread at a time: without a yield the loop
         * thread hardly runs, and the queue grows until the OOM killer */
        if (RUNNING_ON_VALGRIND && (++ok & 63) == 0)
            sched_yield();
        else if (!RUNNING_ON_VALGRIND)
            ok++;
    }
    if (rc != -ESHUTDOWN)
        return (void *)1;
    atomic_fetch_add(&hard_refused, 1);
    /* refused for good: the loop has closed */
    for (int i = 0; i < 1000; i++)
        if (weft_loop_post(loop, hard_count, NULL) != -ESHUTDOWN)
            return (void *)2;
    while (!atomic_load(&hard_stop))
        sched_yield();
    /* after weft_run returned: still a clear error, never freed memory */
    if (weft_loop_post(loop, hard_count, NULL) != -ESHUTDOWN)
        return (void *)3;
    if (weft_loop_hold(loop) != -ESHUTDOWN)
        return (void *)4;
    weft_loop_unref(loop);
    return (void *)(ok >= 0 ? NULL : (void *)5);
}

static pthread_t hard_threads[HARD_POSTERS];

static int start_hard_posters(void *arg)
{
    (void)arg;
    for (int i = 0; i < HARD_POSTERS; i++)
        assert_int_equal(pthread_create(&hard_threads[i], NULL, hard_poster,
                                        weft_loop_ref(weft_loop_current())), 0);
    assert_int_equal(weft_sleep_ms(20), 0);
    return 0; /* the posters go on posting while the loop ends */
}

static void test_post_hard_while_loop_ends(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        atomic_store(&hard_stop, 0);
        atomic_store(&hard_refused, 0);
        int64_t t0 = clock_ns();
        run_checked(start_hard_posters, NULL);
        /* a steady stream of posts does not keep the finished loop going */
        assert_true(clock_ns() - t0 < 10000 * MS);
        atomic_store(&hard_stop, 1);
        for (int i = 0; i < HARD_POSTERS; i++) {
            void *ret = (void *)9;
            assert_int_equal(pthread_join(hard_threads[i], &ret), 0);
            assert_null(ret);
        }
        assert_int_equal(atomic_load(&hard_refused), HARD_POSTERS);
    }
}

/* A reference taken and dropped on the loop's thread, and bad input. */
static int ref_on_loop(void *arg)
{
    (void)arg;
    weft_loop *loop = weft_loop_current();
    assert_ptr_equal(weft_loop_ref(loop), loop);
    weft_loop_unref(loop);
    assert_null(weft_loop_ref(NULL));
    weft_loop_unref(NULL); /* nothing */
    assert_int_equal(weft_loop_hold(NULL), -EINVAL);
    assert_int_equal(weft_loop_release(NULL), -EINVAL);
    assert_int_equal(weft_loop_release(loop), -EINVAL); /* not held */
    assert_contains(weft_errmsg(), "not held");
    return 0;
}

static void test_ref_basics(void **state)
{
    (void)state;
    run_checked(ref_on_loop, NULL);
}

/* A hold keeps a loop without tasks running for posts from another thread;
 * the release from that thread lets it end. */
static atomic_int held_ran;
static weft_loop *held_loop;

static void held_call(void *arg)
{
    (void)arg;
    atomic_fetch_add(&held_ran, 1);
}

static void *held_poster(void *arg)
{
    weft_loop *loop = arg;
    nap_ms(50); /* the main task has surely ended */
    for (int i = 0; i < 10; i++) {
        if (weft_loop_post(loop, held_call, NULL) != 0)
            return (void *)1;
        nap_ms(5);
    }
    while (atomic_load(&held_ran) < 10)
        nap_ms(1);
    if (weft_loop_release(loop) != 0)
        return (void *)2;
    return NULL;
}

static pthread_t held_thread;

static int hold_then_return(void *arg)
{
    (void)arg;
    held_loop = weft_loop_ref(weft_loop_current());
    assert_int_equal(weft_loop_hold(held_loop), 0);
    assert_int_equal(pthread_create(&held_thread, NULL, held_poster, held_loop), 0);
    return 0; /* no task left: only the hold keeps the loop */
}

static void test_hold_keeps_loop_for_posts(void **state)
{
    (void)state;
    atomic_store(&held_ran, 0);
    int64_t t0 = clock_ns();
    run_checked(hold_then_return, NULL);
    assert_true(clock_ns() - t0 >= 50 * MS);
    assert_int_equal(atomic_load(&held_ran), 10);
    void *ret = (void *)9;
    assert_int_equal(pthread_join(held_thread, &ret), 0);
    assert_null(ret);
    assert_int_equal(weft_loop_post(held_loop, held_call, NULL), -ESHUTDOWN);
    assert_int_equal(weft_loop_hold(held_loop), -ESHUTDOWN);
    weft_loop_unref(held_loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_current),
        cmocka_unit_test(test_loop_current_per_thread),
        cmocka_unit_test(test_post_invalid),
        cmocka_unit_test(test_posted_call_cannot_suspend),
        cmocka_unit_test(test_post_wakes_blocked_loop),
        cmocka_unit_test(test_post_wakes_sleeping_task),
        cmocka_unit_test(test_post_spawns_task),
        cmocka_unit_test(test_many_posts_once_in_order),
        cmocka_unit_test(test_post_from_loop_thread),
        cmocka_unit_test(test_two_loops_ping_pong),
        cmocka_unit_test(test_queued_posts_run_before_return),
        cmocka_unit_test(test_post_hard_while_loop_ends),
        cmocka_unit_test(test_ref_basics),
        cmocka_unit_test(test_hold_keeps_loop_for_posts),
    };
    return run_cases(tests, NULL, NULL);
}
