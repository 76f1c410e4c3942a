/* SPDX-License-Identifier: MIT */
/*
 * Every public function of libweft (core, sync, exec, net) called with NULL
 * and out-of-range arguments: a clear error (a negative code, the same code
 * in weft_errcode, a message naming the function) or the neutral answer
 * its header documents, never a crash.  tests/check_bad_args.sh fails when
 * a function declared in the headers is not called here.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "bad_args.h"
#include "test_helpers.h"

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

static int noop_blocking(void *arg)
{
    (void)arg;
    return 0;
}

static int noop_process(const void *in, size_t in_len, weft_bytes *out)
{
    (void)in, (void)in_len, (void)out;
    return 0;
}

static void noop_post(void *arg) { (void)arg; }
static void noop_timer(weft_timer *t) { (void)t; }
static void noop_log(const char *msg, void *data) { (void)msg, (void)data; }

/* A format string the compiler cannot see is NULL. */
static const char *volatile null_fmt = NULL;

/* ------------------------------------------------------------ errors, outside a loop */

static void test_errors_and_run(void **state)
{
    (void)state;
    /* weft_seterr records the code with the message; NULL fmt is "". */
    assert_int_equal(weft_seterr(-ENOENT, "x %d", 1), -ENOENT);
    assert_int_equal(weft_errcode(), -ENOENT);
    assert_string_equal(weft_errmsg(), "x 1");
    assert_int_equal(weft_seterr(-EIO, null_fmt), -EIO);
    assert_int_equal(weft_errcode(), -EIO);
    assert_string_equal(weft_errmsg(), "");
    assert_string_equal(weft_strerror(0), "Success");
    assert_non_null(weft_strerror(-123456));
    assert_non_null(weft_strerror(123456));
    assert_non_null(weft_strerror(INT32_MIN));

    FAILS(-EINVAL, "weft_run", weft_run(NULL, NULL));
    /* Outside a loop: constructors that need one say so. */
    RETURNS_NULL(WEFT_ENOLOOP, "weft_spawn", weft_spawn_named(noop, NULL, NULL, "x"));
    RETURNS_NULL(WEFT_ENOLOOP, "weft_group_new", weft_group_new(NULL));
    RETURNS_NULL(WEFT_ENOLOOP, "weft_process_pool_new", weft_process_pool_new(NULL));
    FAILS(WEFT_ENOLOOP, "weft_timer_start", weft_timer_start(&(weft_timer){0}, 0));
    FAILS(-EINVAL, "weft_loop_post", weft_loop_post(NULL, noop_post, NULL));
    QUIET(assert_null(weft_loop_current()));
    QUIET(assert_null(weft_current()));
    QUIET(weft_dump_tasks(stderr));
    QUIET(assert_false(weft_job_cancelled()));
}

/* ------------------------------------------------------------ tasks and time */

static int tasks_main(void *arg)
{
    (void)arg;
    RETURNS_NULL(-EINVAL, "weft_spawn", weft_spawn_named(NULL, NULL, NULL, "x"));
    RETURNS_NULL(-EINVAL, "stack_size",
                 weft_spawn_named(noop, NULL, &(weft_task_opts){.stack_size = 1}, "x"));
    /* A NULL default name and a NULL opts->name are fine. */
    weft_task *t = weft_spawn_named(noop, NULL, &(weft_task_opts){0}, NULL);
    assert_non_null(t);
    assert_string_equal(weft_task_name(t), "task");
    assert_int_equal(join_status(t), 0);

    FAILS(-EINVAL, "weft_join", weft_join(NULL, NULL));
    FAILS(-EINVAL, "weft_join", weft_join_until(NULL, NULL, WEFT_NO_DEADLINE));
    FAILS(-EDEADLK, "weft_join", weft_join(weft_current(), NULL));
    FAILS(-EINVAL, "weft_cancel", weft_cancel(NULL));
    QUIET(weft_detach(NULL));
    QUIET(assert_int_equal(weft_task_cancel_cause(NULL), WEFT_CANCEL_NONE));
    QUIET(assert_string_equal(weft_cancel_cause_name((weft_cancel_cause)99), "unknown"));
    QUIET(assert_string_equal(weft_task_name(NULL), ""));
    QUIET(assert_false(weft_cancelled()));
    QUIET(weft_set_start_limit(0));
    weft_set_start_limit(WEFT_START_LIMIT_DEFAULT);
    QUIET(assert_int_equal(weft_yield(), 0));
    /* The cooperative budget: any count is valid (0 turns it off). */
    QUIET(weft_set_coop_budget(UINT_MAX));
    QUIET(assert_int_equal(weft_coop_budget(), UINT_MAX));
    weft_set_coop_budget(WEFT_COOP_BUDGET_DEFAULT);
    QUIET(assert_int_equal(weft_coop_spend(), 0));
    /* The version has no arguments to get wrong; it answers quietly. */
    QUIET(assert_int_equal(weft_version(), WEFT_VERSION_HEX));
    QUIET(assert_string_equal(weft_version_string(), WEFT_VERSION));
    QUIET(weft_shield_begin(NULL, 5));
    QUIET(weft_shield_end(NULL));

    /* Time: out-of-range spans saturate, negative ones are in the past. */
    assert_int_equal(weft_deadline_ms(INT64_MAX), WEFT_NO_DEADLINE);
    assert_int_equal(weft_deadline_ns(INT64_MAX), WEFT_NO_DEADLINE);
    assert_true(weft_deadline_ms(INT64_MIN) < weft_now());
    assert_true(weft_deadline_ns(INT64_MIN) < weft_now());
    assert_int_equal(weft_sleep_ms(INT64_MIN), 0);
    assert_int_equal(weft_sleep_ns(-1), 0);
    assert_int_equal(weft_sleep_until(INT64_MIN), 0);
    QUIET(weft_scope_enter(NULL, 0));
    QUIET(assert_int_equal(weft_scope_exit(NULL), 0));
    QUIET(assert_int_equal(weft_scope_expired(NULL), 0));
    QUIET(assert_int_equal(weft_scope_fired(NULL), 0));
    FAILS(-EINVAL, "weft_wait_for", weft_wait_for(NULL, NULL, 10, NULL));
    FAILS(-EINVAL, "weft_wait_for", weft_wait_for_until(NULL, NULL, 0, NULL));
    assert_int_equal(weft_wait_for(noop, NULL, INT64_MAX, NULL), 0);

    /* Timers. */
    QUIET(weft_timer_init(NULL, noop_timer, NULL));
    FAILS(-EINVAL, "weft_timer_start", weft_timer_start(NULL, 0));
    weft_timer tm;
    weft_timer_init(&tm, NULL, NULL);
    FAILS(-EINVAL, "weft_timer_start", weft_timer_start(&tm, 0));
    QUIET(weft_timer_stop(NULL));
    QUIET(assert_int_equal(weft_timer_active(NULL), 0));

    /* Signals. */
    FAILS(-EINVAL, "weft_signal_wait", weft_signal_wait(NULL, WEFT_NO_DEADLINE));
    sigset_t empty;
    sigemptyset(&empty);
    FAILS(-EINVAL, "weft_signal_wait", weft_signal_wait(&empty, WEFT_NO_DEADLINE));
    sigset_t kill;
    sigemptyset(&kill);
    sigaddset(&kill, SIGKILL);
    FAILS(-EINVAL, "weft_signal_wait", weft_signal_wait(&kill, WEFT_NO_DEADLINE));

    /* The loop, posts and debugging. */
    FAILS(-EINVAL, "weft_loop_post", weft_loop_post(weft_loop_current(), NULL, NULL));
    FAILS(-EINVAL, "weft_loop_post", weft_loop_post(NULL, noop_post, NULL));
    RETURNS_NULL(-EINVAL, "weft_loop_ref", weft_loop_ref(NULL));
    QUIET(weft_loop_unref(NULL));
    FAILS(-EINVAL, "weft_loop_hold", weft_loop_hold(NULL));
    FAILS(-EINVAL, "weft_loop_release", weft_loop_release(NULL));
    FAILS(-EINVAL, "weft_loop_release", weft_loop_release(weft_loop_current()));
    FAILS(-EBUSY, "weft_run", weft_run(noop, NULL));
    QUIET(weft_set_log(NULL, NULL));
    QUIET(weft_set_log(noop_log, NULL));
    weft_set_log(NULL, NULL);
    int64_t slow = weft_slow_ms();
    weft_set_slow_ms(-1);
    int64_t def = weft_slow_ms();
    QUIET(weft_set_slow_ms(INT64_MIN));
    assert_int_equal(weft_slow_ms(), def); /* back to the default */
    QUIET(weft_set_slow_ms(INT64_MAX));    /* never: no overflow */
    assert_int_equal(weft_slow_ms(), INT64_MAX);
    weft_set_slow_ms(slow);
    QUIET(weft_dump_tasks(NULL));
    /* Not called here: weft_debug_enable() takes no argument to get wrong
     * and starts a watchdog thread (tests/core/test_debug.c calls it). */
    return 0;
}

static void test_tasks_and_time(void **state)
{
    (void)state;
    run_task(tasks_main);
}

/* ------------------------------------------------------------ fds */

static int io_main(void *arg)
{
    (void)arg;
    char b[4];
    FAILS(-EBADF, "weft_wait_fd", weft_wait_fd(-1, WEFT_READABLE, WEFT_NO_DEADLINE));
    FAILS(-EBADF, "weft_wait_fd", weft_wait_fd(INT32_MAX, WEFT_READABLE, WEFT_NO_DEADLINE));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    FAILS(-EINVAL, "weft_wait_fd", weft_wait_fd(sv[0], 0, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_wait_fd", weft_wait_fd(sv[0], 0x70, WEFT_NO_DEADLINE));
    QUIET(assert_int_equal(weft_fd_seen_ready(-1), 0));
    QUIET(assert_int_equal(weft_fd_seen_ready(INT32_MAX), 0));
    FAILS(-EBADF, "weft_read", weft_read(-1, b, sizeof b, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_read", weft_read(sv[0], NULL, 4, WEFT_NO_DEADLINE));
    FAILS(-EBADF, "weft_write", weft_write(-1, b, sizeof b, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_write", weft_write(sv[0], NULL, 4, WEFT_NO_DEADLINE));
    FAILS(-EBADF, "weft_write", weft_write_all(-1, b, sizeof b, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_write", weft_write_all(sv[0], NULL, 4, WEFT_NO_DEADLINE));
    assert_int_equal(weft_write_all(sv[0], NULL, 0, WEFT_NO_DEADLINE), 0);
    FAILS(-EINVAL, "weft_write_all", weft_write_all(sv[0], b, SIZE_MAX, WEFT_NO_DEADLINE));
    FAILS(-EBADF, "weft_set_nonblocking", weft_set_nonblocking(-1));
    FAILS(-EBADF, "weft_close", weft_close(-1));
    QUIET(weft_fd_forget(-1));
    QUIET(weft_fd_forget(INT32_MAX));
    QUIET(weft_fd_release(NULL));
    int minus = -1;
    QUIET(weft_fd_release(&minus));
    weft_close(sv[0]);
    weft_close(sv[1]);
    return 0;
}

static void test_io(void **state)
{
    (void)state;
    run_task(io_main);
}

/* ------------------------------------------------------------ groups */

static int groups_main(void *arg)
{
    (void)arg;
    RETURNS_NULL(-EINVAL, "policy",
                 weft_group_new(&(weft_group_opts){.policy = (weft_group_policy)7}));
    FAILS(-EINVAL, "weft_group_spawn", weft_group_spawn_named(NULL, noop, NULL, NULL, "x"));
    weft_group *g = weft_group_new(NULL);
    assert_non_null(g);
    FAILS(-EINVAL, "weft_group_spawn", weft_group_spawn_named(g, NULL, NULL, NULL, "x"));
    FAILS(-EINVAL, "stack_size",
          weft_group_spawn_named(g, noop, NULL, &(weft_task_opts){.stack_size = 1}, "x"));
    FAILS(-EINVAL, "weft_group_next", weft_group_next(NULL, NULL, NULL));
    FAILS(-EINVAL, "weft_group_next", weft_group_next_until(NULL, NULL, NULL, 0));
    FAILS(-EINVAL, "weft_group_wait", weft_group_wait(NULL));
    FAILS(-EINVAL, "weft_group_wait", weft_group_wait_until(NULL, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_group_status", weft_group_status(NULL, 0, NULL, NULL));
    FAILS(-EINVAL, "weft_group_status", weft_group_status(g, 0, NULL, NULL));
    FAILS(-EINVAL, "weft_group_status", weft_group_status(g, SIZE_MAX, NULL, NULL));
    QUIET(weft_group_cancel(NULL));
    QUIET(assert_int_equal(weft_group_size(NULL), 0));
    QUIET(assert_int_equal(weft_group_running(NULL), 0));
    QUIET(weft_group_free(NULL));
    QUIET(weft_group_release(NULL));
    weft_group *none = NULL;
    QUIET(weft_group_release(&none));
    weft_group_free(g);

    FAILS(-EINVAL, "weft_map", weft_map(NULL, NULL, 0, 0, NULL));
    FAILS(-EINVAL, "weft_map", weft_map(noop, NULL, 3, 0, NULL));
    assert_int_equal(weft_map(noop, NULL, 0, SIZE_MAX, NULL), 0);

    QUIET(weft_task_release(NULL));
    weft_task *tnone = NULL;
    QUIET(weft_task_release(&tnone));
    return 0;
}

static void test_groups(void **state)
{
    (void)state;
    run_task(groups_main);
}

/* ------------------------------------------------------------ sync */

static int sync_main(void *arg)
{
    (void)arg;
    weft_sem sem;
    FAILS(-EINVAL, "weft_sem_init", weft_sem_init(NULL, 1));
    FAILS(-EINVAL, "weft_sem_init", weft_sem_init(&sem, -1));
    FAILS(-EINVAL, "weft_sem_init_bounded", weft_sem_init_bounded(NULL, 1));
    FAILS(-EINVAL, "weft_sem_init_bounded", weft_sem_init_bounded(&sem, 0));
    FAILS(-EINVAL, "weft_sem_acquire", weft_sem_acquire(NULL));
    FAILS(-EINVAL, "weft_sem_acquire", weft_sem_acquire_until(NULL, 0));
    FAILS(-EINVAL, "weft_sem_try_acquire", weft_sem_try_acquire(NULL));
    FAILS(-EINVAL, "weft_sem_release", weft_sem_release(NULL));
    FAILS(-EINVAL, "weft_sem_close", weft_sem_close(NULL));
    assert_int_equal(weft_sem_init(&sem, LONG_MAX), 0);
    FAILS(-EOVERFLOW, "weft_sem_release", weft_sem_release(&sem));
    QUIET(assert_int_equal(weft_sem_value(NULL), 0));
    weft_permit p = weft_permit_acquire(NULL);
    assert_int_equal(p.rc, -EINVAL);
    assert_null(p.sem);
    p = weft_permit_acquire_until(NULL, 0);
    assert_int_equal(p.rc, -EINVAL);
    QUIET(weft_permit_release(&p));
    QUIET(weft_permit_release(NULL));

    QUIET(weft_lock_init(NULL));
    FAILS(-EINVAL, "weft_lock_acquire", weft_lock_acquire(NULL));
    FAILS(-EINVAL, "weft_lock_acquire", weft_lock_acquire_until(NULL, 0));
    FAILS(-EINVAL, "weft_lock_try_acquire", weft_lock_try_acquire(NULL));
    FAILS(-EINVAL, "weft_lock_release", weft_lock_release(NULL));
    FAILS(-EINVAL, "weft_lock_close", weft_lock_close(NULL));
    QUIET(assert_null(weft_lock_owner(NULL)));
    weft_lock lock;
    weft_lock_init(&lock);
    FAILS(-EPERM, "weft_lock_release", weft_lock_release(&lock));
    weft_lock_hold h = weft_lock_hold_acquire(NULL);
    assert_int_equal(h.rc, -EINVAL);
    assert_null(h.lock);
    h = weft_lock_hold_acquire_until(NULL, 0);
    assert_int_equal(h.rc, -EINVAL);
    QUIET(weft_lock_hold_release(&h));
    QUIET(weft_lock_hold_release(NULL));

    QUIET(weft_event_init(NULL));
    QUIET(weft_event_set(NULL));
    QUIET(weft_event_clear(NULL));
    QUIET(assert_false(weft_event_is_set(NULL)));
    FAILS(-EINVAL, "weft_event_wait", weft_event_wait(NULL));
    FAILS(-EINVAL, "weft_event_wait", weft_event_wait_until(NULL, 0));
    FAILS(-EINVAL, "weft_event_close", weft_event_close(NULL));

    weft_cond cond;
    weft_cond_init(&cond);
    QUIET(weft_cond_init(NULL));
    FAILS(-EINVAL, "weft_cond_wait", weft_cond_wait(NULL, &lock));
    FAILS(-EINVAL, "weft_cond_wait", weft_cond_wait(&cond, NULL));
    FAILS(-EINVAL, "weft_cond_wait", weft_cond_wait_until(NULL, &lock, 0));
    FAILS(-EPERM, "weft_cond_wait", weft_cond_wait(&cond, &lock));
    QUIET(weft_cond_notify(NULL, 1));
    QUIET(weft_cond_notify(&cond, -5));
    QUIET(weft_cond_notify(&cond, INT32_MAX));
    QUIET(weft_cond_notify_all(NULL));
    FAILS(-EINVAL, "weft_cond_close", weft_cond_close(NULL));

    weft_queue q;
    void *item;
    FAILS(-EINVAL, "weft_queue_init", weft_queue_init(NULL, 1));
    FAILS(-EINVAL, "weft_queue_init", weft_queue_init(&q, 0));
    FAILS(-EINVAL, "weft_queue_init", weft_queue_init(&q, SIZE_MAX));
    FAILS(-EINVAL, "weft_queue_put", weft_queue_put(NULL, NULL));
    FAILS(-EINVAL, "weft_queue_put", weft_queue_put_until(NULL, NULL, 0));
    FAILS(-EINVAL, "weft_queue_try_put", weft_queue_try_put(NULL, NULL));
    FAILS(-EINVAL, "weft_queue_get", weft_queue_get(NULL, &item));
    FAILS(-EINVAL, "weft_queue_get", weft_queue_get_until(NULL, &item, 0));
    FAILS(-EINVAL, "weft_queue_try_get", weft_queue_try_get(NULL, &item));
    assert_int_equal(weft_queue_init(&q, 2), 0);
    FAILS(-EINVAL, "weft_queue_get", weft_queue_get(&q, NULL));
    FAILS(-EINVAL, "weft_queue_try_get", weft_queue_try_get(&q, NULL));
    QUIET(weft_queue_shutdown(NULL));
    QUIET(assert_int_equal(weft_queue_len(NULL), 0));
    FAILS(-EINVAL, "weft_queue_close", weft_queue_close(NULL));
    weft_queue_shutdown(&q);
    FAILS(WEFT_ECLOSED, "weft_queue_try_put", weft_queue_try_put(&q, NULL));
    FAILS(WEFT_ECLOSED, "weft_queue_try_get", weft_queue_try_get(&q, &item));
    assert_int_equal(weft_queue_close(&q), 0);
    /* Used after close: shut down and empty, never the freed ring. */
    FAILS(WEFT_ECLOSED, "weft_queue_put", weft_queue_put(&q, NULL));
    FAILS(WEFT_ECLOSED, "weft_queue_try_put", weft_queue_try_put(&q, NULL));
    FAILS(WEFT_ECLOSED, "weft_queue_get", weft_queue_get(&q, &item));
    assert_int_equal(weft_queue_close(&q), 0);
    return 0;
}

static void test_sync(void **state)
{
    (void)state;
    run_task(sync_main);
}

/* ------------------------------------------------------------ executors */

static int exec_main(void *arg)
{
    (void)arg;
    RETURNS_NULL(-EINVAL, "threads",
                 weft_thread_pool_new(&(weft_thread_pool_opts){.threads = SIZE_MAX}));
    QUIET(assert_int_equal(weft_thread_pool_size(NULL), 0));
    QUIET(weft_thread_pool_free(NULL));
    assert_non_null(weft_thread_pool_default());
    FAILS(-EINVAL, "weft_thread_pool_run", weft_thread_pool_run(NULL, NULL, NULL, NULL, NULL));
    FAILS(-EINVAL, "weft_to_thread", weft_to_thread(NULL, NULL, NULL));
    int result = -1;
    assert_int_equal(weft_to_thread(noop_blocking, NULL, &result), 0);
    assert_int_equal(result, 0);

    FAILS(-EINVAL, "weft_bytes_append", weft_bytes_append(NULL, "x", 1));
    weft_bytes b = {0};
    FAILS(-EINVAL, "weft_bytes_append", weft_bytes_append(&b, NULL, 1));
    assert_int_equal(weft_bytes_append(&b, NULL, 0), 0);
    FAILS(-ENOMEM, "weft_bytes_append", weft_bytes_append(&b, "x", SIZE_MAX));
    QUIET(weft_bytes_free(NULL));
    weft_bytes_free(&b);

    RETURNS_NULL(-EINVAL, "workers",
                 weft_process_pool_new(&(weft_process_pool_opts){.workers = SIZE_MAX}));
    RETURNS_NULL(-EINVAL, "on_shutdown",
                 weft_process_pool_new(&(weft_process_pool_opts){
                     .workers = 1, .on_shutdown = (weft_pool_shutdown)9}));
    FAILS(-EINVAL, "weft_process_pool_run",
          weft_process_pool_run(NULL, noop_process, NULL, 0, NULL, NULL, NULL));
    FAILS(-EINVAL, "weft_process_pool_shutdown", weft_process_pool_shutdown(NULL));
    weft_process_pool_stats st;
    memset(&st, 0xff, sizeof st);
    QUIET(weft_process_pool_stats_get(NULL, &st));
    assert_int_equal(st.workers, 0);
    assert_int_equal(st.jobs, 0);
    QUIET(weft_process_pool_free(NULL));
    weft_process_pool *pool = weft_process_pool_new(&(weft_process_pool_opts){.workers = 1});
    assert_non_null(pool);
    FAILS(-EINVAL, "weft_process_pool_run",
          weft_process_pool_run(pool, NULL, NULL, 0, NULL, NULL, NULL));
    FAILS(-EINVAL, "weft_process_pool_run",
          weft_process_pool_run(pool, noop_process, NULL, 5, NULL, NULL, NULL));
    QUIET(weft_process_pool_stats_get(pool, NULL));
    assert_int_equal(weft_process_pool_shutdown(pool), 0);
    weft_process_pool_free(pool);
    return 0;
}

static void test_exec(void **state)
{
    (void)state;
    run_task(exec_main);
}

/* ------------------------------------------------------------ net */

static int net_main(void *arg)
{
    (void)arg;
    weft_addr a;
    char buf[64];
    FAILS(-EINVAL, "weft_resolve", weft_resolve(NULL, 80, AF_UNSPEC, &a, 1, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_resolve",
          weft_resolve("127.0.0.1", 80, AF_UNSPEC, NULL, 1, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_resolve",
          weft_resolve("127.0.0.1", 80, AF_UNSPEC, &a, 0, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "family", weft_resolve("127.0.0.1", 80, 12345, &a, 1, WEFT_NO_DEADLINE));
    QUIET(weft_resolve_cache_ttl_ms(-5));
    weft_resolve_cache_ttl_ms(10000);
    QUIET(weft_resolve_cache_clear());
    QUIET(weft_resolve_stats_get(NULL));
    QUIET(assert_string_equal(weft_addr_format(NULL, buf, sizeof buf), ""));
    assert_int_equal(weft_resolve("127.0.0.1", 80, AF_UNSPEC, &a, 1, WEFT_NO_DEADLINE), 1);
    QUIET(assert_null(weft_addr_format(&a, NULL, 10)));
    buf[0] = 'x';
    QUIET(weft_addr_format(&a, buf, 0));
    assert_int_equal(buf[0], 'x');
    QUIET(weft_addr_format(&a, buf, 3));
    assert_int_equal(strlen(buf), 2);

    FAILS(-EINVAL, "weft_connect_addr", weft_connect_addr(NULL, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_connect_addrs", weft_connect_addrs(NULL, 1, NULL, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_connect_addrs", weft_connect_addrs(&a, 0, NULL, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_connect_addrs", weft_connect_addrs(&a, 17, NULL, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_tcp_connect", weft_tcp_connect(NULL, 80, NULL, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "family",
          weft_tcp_connect("127.0.0.1", 80, &(weft_connect_opts){.family = 999},
                           WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_tcp_listen", weft_tcp_listen("not-an-address", 0, 0));
    FAILS(-EINVAL, "weft_unix_listen", weft_unix_listen(NULL, 0));
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    FAILS(-ENAMETOOLONG, "weft_unix_listen", weft_unix_listen(longpath, 0));
    FAILS(-EINVAL, "weft_unix_connect", weft_unix_connect(NULL, WEFT_NO_DEADLINE));
    FAILS(-ENAMETOOLONG, "weft_unix_connect", weft_unix_connect(longpath, WEFT_NO_DEADLINE));
    FAILS(-EBADF, "weft_accept", weft_accept(-1, NULL, WEFT_NO_DEADLINE));
    FAILS(-EBADF, "weft_local_port", weft_local_port(-1));

    RETURNS_NULL(-EINVAL, "alpn", weft_tls_client_new(&(weft_tls_opts){.alpn = ",,"}));
    RETURNS_NULL(-EINVAL, "cert_file", weft_tls_server_new(NULL));
    QUIET(weft_tls_ctx_free(NULL));

    RETURNS_NULL(-EBADF, "weft_stream_new", weft_stream_new(-1, 0));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    RETURNS_NULL(-EINVAL, "read_buffer", weft_stream_new(sv[0], SIZE_MAX));
    /* sv[0] is closed now: the stream owned it. */
    weft_close(sv[1]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    weft_stream *s = weft_stream_new(sv[0], 0);
    assert_non_null(s);
    size_t len = 99;
    FAILS(-EINVAL, "weft_stream_start_tls",
          weft_stream_start_tls(NULL, NULL, NULL, WEFT_NO_DEADLINE));
    FAILS(-EINVAL, "weft_stream_start_tls",
          weft_stream_start_tls(s, NULL, "x", WEFT_NO_DEADLINE));
    QUIET(assert_null(weft_stream_alpn(NULL)));
    QUIET(assert_false(weft_stream_is_tls(NULL)));
    QUIET(assert_false(weft_stream_tls_resumed(NULL)));
    QUIET(assert_int_equal(weft_stream_fd(NULL), -EBADF));
    FAILS(-EINVAL, "weft_stream_read_some", weft_stream_read_some(NULL, buf, 1, 0));
    FAILS(-EINVAL, "weft_stream_read_some", weft_stream_read_some(s, NULL, 1, 0));
    FAILS(-EINVAL, "weft_stream_read_exact", weft_stream_read_exact(NULL, buf, 1, 0));
    FAILS(-EINVAL, "weft_stream_read_exact", weft_stream_read_exact(s, NULL, 1, 0));
    FAILS(-EINVAL, "weft_stream_read_until",
          weft_stream_read_until(NULL, "\n", 1, buf, sizeof buf, 0));
    FAILS(-EINVAL, "weft_stream_read_until",
          weft_stream_read_until(s, NULL, 1, buf, sizeof buf, 0));
    FAILS(-EINVAL, "weft_stream_read_until",
          weft_stream_read_until(s, "\n", 0, buf, sizeof buf, 0));
    FAILS(-EINVAL, "weft_stream_read_until",
          weft_stream_read_until(s, "\n", 1, NULL, sizeof buf, 0));
    FAILS(-EINVAL, "weft_stream_fill", weft_stream_fill(NULL, 10, 0));
    QUIET(assert_null(weft_stream_peek(NULL, &len)));
    assert_int_equal(len, 0);
    QUIET(weft_stream_peek(s, NULL));
    QUIET(weft_stream_consume(NULL, 5));
    QUIET(weft_stream_consume(s, SIZE_MAX)); /* more than buffered: all of it */
    weft_stream_peek(s, &len);
    assert_int_equal(len, 0);
    FAILS(-EINVAL, "weft_stream_write_all", weft_stream_write_all(NULL, "x", 1, 0));
    FAILS(-EINVAL, "weft_stream_write_all", weft_stream_write_all(s, NULL, 1, 0));
    FAILS(-EINVAL, "weft_stream_write_all", weft_stream_write_all(s, buf, SIZE_MAX, 0));
    FAILS(-EINVAL, "weft_stream_read_exact", weft_stream_read_exact(s, buf, SIZE_MAX, 0));
    FAILS(-EINVAL, "weft_stream_writev", weft_stream_writev(NULL, NULL, 0, 0));
    FAILS(-EINVAL, "weft_stream_writev", weft_stream_writev(s, NULL, 1, 0));
    FAILS(-EINVAL, "weft_stream_writev",
          weft_stream_writev(s, &(struct iovec){.iov_base = buf, .iov_len = 1}, -1, 0));
    FAILS(-EINVAL, "weft_stream_shutdown", weft_stream_shutdown(NULL, 0));
    QUIET(weft_stream_close(NULL));
    weft_stream_close(s);
    weft_close(sv[1]);
    return 0;
}

static void test_net(void **state)
{
    (void)state;
    run_task(net_main);
}

/* ------------------------------------------------------------ messages */

/* `msg` says what timed out, not "Connection timed out". */
static void assert_timeout_message(const char *fn, const char *what)
{
    char want[128];
    snprintf(want, sizeof want, "%s: timed out after ", fn);
    assert_contains(weft_errmsg(), want);
    assert_contains(weft_errmsg(), what);
    assert_null(strstr(weft_errmsg(), "Connection timed out"));
    assert_int_equal(weft_errcode(), -ETIMEDOUT);
}

static int failer(void *arg)
{
    (void)arg;
    return weft_seterr(-EIO, "disk full on /data");
}

static int sleeper(void *arg)
{
    (void)arg;
    return weft_sleep_ms(10000);
}

static int yield_cancelled(void *arg)
{
    (void)arg;
    weft_cancel(weft_current());
    int rc = weft_yield();
    return rc == -ECANCELED && strstr(weft_errmsg(), "weft_yield: task 'yc' is cancelled") ? 0
                                                                                         : -1;
}

static int messages_main(void *arg)
{
    (void)arg;
    assert_int_equal(join_status(spawn_named(yield_cancelled, NULL, "yc")), 0);
    weft_scope past;
    weft_scope_enter(&past, weft_deadline_ms(-5));
    FAILS(-ETIMEDOUT, "weft_yield: an enclosing deadline passed", weft_yield());
    weft_scope_exit(&past);
    weft_sem sem;
    weft_sem_init(&sem, 0);
    assert_int_equal(weft_sem_acquire_until(&sem, weft_deadline_ms(20)), -ETIMEDOUT);
    assert_timeout_message("weft_sem_acquire", "a permit of semaphore");
    assert_null(strstr(weft_errmsg(), "enclosing"));
    /* A scope's deadline, not the call's own, is said to be the one. */
    weft_scope sc;
    weft_scope_enter(&sc, weft_deadline_ms(20));
    assert_int_equal(weft_sem_acquire_until(&sem, weft_deadline_ms(60000)), -ETIMEDOUT);
    weft_scope_exit(&sc);
    assert_timeout_message("weft_sem_acquire", "(an enclosing deadline passed)");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    assert_int_equal(weft_signal_wait(&set, weft_deadline_ms(20)), -ETIMEDOUT);
    assert_timeout_message("weft_signal_wait", "USR2");

    weft_lock lock;
    weft_lock_init(&lock);
    weft_event ev;
    weft_event_init(&ev);
    weft_cond cond;
    weft_cond_init(&cond);
    weft_queue q;
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_event_wait_until(&ev, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_event_wait", "event");
    assert_int_equal(weft_lock_acquire(&lock), 0);
    assert_int_equal(weft_cond_wait_until(&cond, &lock, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_cond_wait", "condition");
    assert_int_equal(weft_lock_release(&lock), 0);
    void *item;
    assert_int_equal(weft_queue_get_until(&q, &item, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_queue_get", "an item of queue");
    assert_int_equal(weft_queue_put(&q, NULL), 0);
    assert_int_equal(weft_queue_put_until(&q, NULL, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_queue_put", "room in queue");
    weft_task *t = spawn_named(sleeper, NULL, "sleeper");
    assert_int_equal(weft_join_until(t, NULL, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_join", "task 'sleeper'");
    weft_cancel(t);
    join_status(t);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    char b;
    assert_int_equal(weft_read(sv[0], &b, 1, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_read", "to be readable");
    assert_int_equal(weft_wait_fd(sv[0], WEFT_READABLE, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_wait_fd", "to be readable");
    weft_close(sv[0]);
    weft_close(sv[1]);
    assert_int_equal(weft_queue_close(&q), 0);

    /* A failed group wait names the child that failed first, and its message. */
    weft_group *g = weft_group_new(NULL);
    assert_true(weft_group_spawn(g, noop, NULL, &(weft_task_opts){.name = "ok"}) == 0);
    assert_true(weft_group_spawn(g, failer, NULL, NULL) == 1);
    assert_int_equal(weft_group_wait(g), -EIO);
    assert_contains(weft_errmsg(), "weft_group_wait: child 1 'failer' failed first");
    assert_contains(weft_errmsg(), "disk full on /data");
    assert_int_equal(weft_errcode(), -EIO);
    weft_group_free(g);
    g = weft_group_new(NULL);
    weft_group_spawn(g, sleeper, NULL, NULL);
    assert_int_equal(weft_group_wait_until(g, weft_deadline_ms(10)), -ETIMEDOUT);
    assert_timeout_message("weft_group_wait", "1 running child");
    weft_group_free(g);

    /* The messages of the NULL cases that borrowed another function's. */
    FAILS(-EINVAL, "weft_cancel: NULL task", weft_cancel(NULL));
    FAILS(-EINVAL, "weft_sem_release: NULL semaphore", weft_sem_release(NULL));
    FAILS(-EINVAL, "weft_sem_close: NULL semaphore", weft_sem_close(NULL));
    g = weft_group_new(NULL);
    FAILS(-EINVAL, "weft_group_status: no child 3 (the group has 0)",
          weft_group_status(g, 3, NULL, NULL));
    weft_group_free(g);
    return 0;
}

static void test_messages(void **state)
{
    (void)state;
    run_task(messages_main);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_and_run),
        cmocka_unit_test(test_tasks_and_time),
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_sync),
        cmocka_unit_test(test_exec),
        cmocka_unit_test(test_net),
        cmocka_unit_test(test_messages),
    };
    return run_cases(tests, NULL, NULL);
}
