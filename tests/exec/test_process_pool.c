/* SPDX-License-Identifier: MIT */
/* Executors: the process pool — jobs, crashes, deadlines, cancellation, limits, shutdown, cleanup. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

/*
 * Memory shared with every worker: mapped MAP_SHARED before any pool
 * exists, so each fork sees the same page.  Jobs report through it (that
 * they started, their pid, side effects) and the tests steer them with it.
 */
#define MAX_PIDS 64
typedef struct shared {
    atomic_int started;  /* jobs that reached their body */
    atomic_int release;  /* held jobs may return */
    atomic_int marker;   /* side effects that must NOT happen */
    atomic_int done;     /* side effects that must happen */
    atomic_int crash_pid;
    atomic_int pids[MAX_PIDS]; /* pid of the worker that ran started job k */
} shared;
static shared *sh;

static void shared_reset(void) { memset(sh, 0, sizeof *sh); }

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

/* Child processes of this process (by /proc/<pid>/stat's ppid); the
 * zombies among them in *zombies. */
static int count_children(int *zombies)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    pid_t me = getpid();
    int n = 0, z = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *p = strrchr(buf, ')');
        char state;
        int ppid;
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (ppid == me) {
            n++;
            if (state == 'Z')
                z++;
        }
    }
    closedir(d);
    if (zombies)
        *zombies = z;
    return n;
}

/* What a pool might leak: fds and child processes. */
typedef struct snap {
    int fds;
    int children;
} snap;

static snap snap_take(void)
{
    return (snap){count_entries("/proc/self/fd"), count_children(NULL)};
}

static weft_process_pool_stats stats_of(weft_process_pool *pool)
{
    weft_process_pool_stats s;
    memset(&s, 0xab, sizeof s);
    weft_process_pool_stats_get(pool, &s);
    return s;
}

/* Shut the pool down, free it, and check that it left no fd and no child
 * process (not even a zombie) behind. */
static void pool_finish(weft_process_pool *pool, const snap *before)
{
    assert_int_equal(weft_process_pool_shutdown(pool), 0);
    weft_process_pool_free(pool);
    snap after = snap_take();
    assert_int_equal(after.fds, before->fds);
    assert_int_equal(after.children, before->children);
    if (before->children == 0) {
        errno = 0;
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
    }
}

/* In a task: wait until *v >= target (at most 10 s). */
static void await_at_least(atomic_int *v, int target)
{
    int64_t give_up = clock_ns() + 10000 * MS;
    while (atomic_load(v) < target) {
        if (clock_ns() > give_up)
            fail_msg("waited 10 s for a counter to reach %d (it is %d)", target,
                     atomic_load(v));
        assert_int_equal(weft_sleep_ms(1), 0);
    }
}

/* In a task: whether process `pid` is gone (reaped: kill() says ESRCH)
 * within `ms` milliseconds. */
static bool pid_gone_within(pid_t pid, int ms)
{
    int64_t give_up = clock_ns() + ms * MS;
    for (;;) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        if (clock_ns() > give_up)
            return false;
        weft_sleep_ms(5);
    }
}

/* In a task: the pool's workers are `n` live children and no zombie lies
 * around (reaping may lag a little: allow 3 s). */
static void expect_live_workers(int n)
{
    int64_t give_up = clock_ns() + 3000 * MS;
    for (;;) {
        int z, c = count_children(&z);
        if (c - z == n && z == 0)
            return;
        if (clock_ns() > give_up)
            fail_msg("expected %d live workers and no zombie, found %d children, %d zombies", n,
                     c, z);
        weft_sleep_ms(5);
    }
}

/* Join with a generous limit, so a hang fails the test instead of the run. */
static int join_ok(weft_task *t)
{
    int st = INT_MIN;
    int rc = weft_join_until(t, &st, weft_deadline_ms(20000));
    if (rc != 0)
        fail_msg("join: %s (a pool call hangs?)", weft_strerror(rc));
    return st;
}

/* A byte pattern that is not periodic at any small power of two. */
static void *pattern_new(size_t len, unsigned seed)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    uint64_t x = seed;
    for (size_t i = 0; i < len; i += 8) {
        x += 0x9E3779B97F4A7C15ull; /* splitmix64 */
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        memcpy(p + i, &z, len - i < 8 ? len - i : 8);
        if (weft_current() && (i & ((8u << 20) - 1)) == 0)
            weft_yield(); /* a long fill: let the loop breathe */
    }
    return p;
}

/* ------------------------------------------------------------ jobs (run in workers: no asserts) */

static int record_start(void)
{
    int k = atomic_fetch_add(&sh->started, 1);
    if (k < MAX_PIDS)
        atomic_store(&sh->pids[k], (int)getpid());
    return k;
}

/* Wait (in a worker) until the test releases held jobs; at most cap_ms. */
static void wait_release(int cap_ms)
{
    int64_t give_up = clock_ns() + cap_ms * MS;
    while (!atomic_load(&sh->release) && clock_ns() < give_up)
        usleep(1000);
}

static int in_int(const void *in, size_t len, int dflt)
{
    int x = dflt;
    if (len >= sizeof x)
        memcpy(&x, in, sizeof x);
    return x;
}

/* x -> x + 1, as output and as status. */
static int job_inc(const void *in, size_t len, weft_bytes *out)
{
    if (len < sizeof(int))
        return -EINVAL;
    int x = in_int(in, len, 0) + 1;
    if (weft_bytes_append(out, &x, sizeof x) < 0)
        return -ENOMEM;
    return x;
}

static int job_echo(const void *in, size_t len, weft_bytes *out)
{
    if (weft_bytes_append(out, in, len) < 0)
        return -ENOMEM;
    return (int)(len & INT_MAX);
}

static int job_negative(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)len;
    weft_bytes_append(out, "abc", 3);
    return -1234;
}

static int job_len(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)out;
    return (int)len;
}

static int job_pid(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)len;
    pid_t p = getpid();
    weft_bytes_append(out, &p, sizeof p);
    return 0;
}

enum { CRASH_SEGV, CRASH_ABORT, CRASH_EXIT7 };

/* Input: {kind, wait_for, delay_ms}: wait until wait_for jobs have started,
 * then delay_ms more, then die. */
static int job_crash(const void *in, size_t len, weft_bytes *out)
{
    (void)out;
    int a[3] = {0, 0, 0};
    memcpy(a, in, len < sizeof a ? len : sizeof a);
    int64_t give_up = clock_ns() + 10000 * MS;
    while (atomic_load(&sh->started) < a[1] && clock_ns() < give_up)
        usleep(1000);
    if (a[2] > 0)
        usleep((useconds_t)a[2] * 1000);
    atomic_store(&sh->crash_pid, (int)getpid());
    switch (a[0]) {
    case CRASH_SEGV: {
        /* A real fault: a write to a page with no access rights. */
        volatile char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *p = 1;
        break;
    }
    case CRASH_ABORT:
        abort();
    case CRASH_EXIT7:
        _exit(7);
    }
    return -1;
}

/* Starts, then waits for the test's release; x -> x + 1. */
static int job_hold(const void *in, size_t len, weft_bytes *out)
{
    record_start();
    wait_release(15000);
    int x = in_int(in, len, 0) + 1;
    weft_bytes_append(out, &x, sizeof x);
    return x;
}

/* Starts, then never returns. */
static int job_forever(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)len;
    (void)out;
    record_start();
    for (;;)
        pause();
    return 0;
}

/* Starts, sleeps `ms` (input), then leaves a marker: the side effect that a
 * killed worker must never produce. */
static int job_sleep_mark(const void *in, size_t len, weft_bytes *out)
{
    (void)out;
    record_start();
    usleep((useconds_t)in_int(in, len, 500) * 1000);
    atomic_fetch_add(&sh->marker, 1);
    return 0;
}

/* Leaves a marker at once: the side effect of a job that must never run. */
static int job_mark(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)len;
    (void)out;
    atomic_fetch_add(&sh->marker, 1);
    return 0;
}

/* Sleeps 100 ms, counts itself done, status 7. */
static int job_sleep_done(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)len;
    (void)out;
    record_start();
    usleep(100 * 1000);
    atomic_fetch_add(&sh->done, 1);
    return 7;
}

/* x -> status x % 1000, output (u64)x * 3. */
static int job_tiny(const void *in, size_t len, weft_bytes *out)
{
    uint32_t x = 0;
    if (len != sizeof x)
        return -EINVAL;
    memcpy(&x, in, sizeof x);
    uint64_t y = (uint64_t)x * 3;
    weft_bytes_append(out, &y, sizeof y);
    return (int)(x % 1000);
}

/* Produces `n` (input, size_t) bytes of output. */
static int job_bytes(const void *in, size_t len, weft_bytes *out)
{
    size_t n = 0;
    if (len == sizeof n)
        memcpy(&n, in, sizeof n);
    char chunk[512];
    memset(chunk, 'z', sizeof chunk);
    while (n) {
        size_t k = n < sizeof chunk ? n : sizeof chunk;
        if (weft_bytes_append(out, chunk, k) < 0)
            return -ENOMEM;
        n -= k;
    }
    return 0;
}

/* Raises SIGINT at itself (workers ignore it), then returns 5. */
static int job_raise_sigint(const void *in, size_t len, weft_bytes *out)
{
    (void)in;
    (void)len;
    (void)out;
    raise(SIGINT);
    return 5;
}

/* What a worker looks like from inside. */
typedef struct worker_env {
    int sigint_ignored;
    int segv_default, abrt_default;
    int threads;
    int sockets, epolls;
    int wrote; /* bytes written to the inherited fd given as input */
} worker_env;

static void count_fd_kinds(int *sockets, int *epolls)
{
    *sockets = *epolls = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        char path[300], link[128];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n < 0)
            continue;
        link[n] = 0;
        if (!strncmp(link, "socket:", 7))
            (*sockets)++;
        if (strstr(link, "eventpoll"))
            (*epolls)++;
    }
    closedir(d);
}

static int count_own_threads(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
    }
    return n;
}

/* Threads a freshly forked process has: 1 on Linux; an emulator (qemu-user)
 * may add threads of its own. */
static int threads_after_fork(void)
{
    int p[2];
    if (pipe(p) < 0)
        return 1;
    pid_t c = fork();
    if (c == 0) {
        int n = count_own_threads();
        ssize_t w = write(p[1], &n, sizeof n);
        _exit(w == sizeof n ? 0 : 1);
    }
    int n = 1;
    if (c < 0 || read(p[0], &n, sizeof n) != sizeof n)
        n = 1;
    if (c > 0)
        waitpid(c, NULL, 0);
    close(p[0]);
    close(p[1]);
    return n;
}

static int job_env(const void *in, size_t len, weft_bytes *out)
{
    worker_env env = {0};
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    env.sigint_ignored = sa.sa_handler == SIG_IGN;
    sigaction(SIGSEGV, NULL, &sa);
    env.segv_default = sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO);
    sigaction(SIGABRT, NULL, &sa);
    env.abrt_default = sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO);
    env.threads = count_own_threads();
    count_fd_kinds(&env.sockets, &env.epolls);
    int fd = in_int(in, len, -1);
    env.wrote = fd >= 0 ? (int)write(fd, "hi", 2) : -1;
    weft_bytes_append(out, &env, sizeof env);
    return 0;
}

/* The storm's job: input {id, sleep_us, out_len, kind}. */
typedef struct storm_in {
    int id, sleep_us, out_len, kind;
} storm_in;
enum { STORM_PLAIN, STORM_CRASH, STORM_BIG, STORM_NEGATIVE };
#define STORM_MAX_OUTPUT 100000

static int job_storm(const void *in, size_t len, weft_bytes *out)
{
    storm_in a;
    if (len != sizeof a)
        return -EINVAL;
    memcpy(&a, in, sizeof a);
    if (a.sleep_us > 0)
        usleep((useconds_t)a.sleep_us);
    if (a.kind == STORM_CRASH)
        raise(SIGSEGV);
    if (a.kind == STORM_BIG)
        a.out_len = STORM_MAX_OUTPUT + 1;
    for (int i = 0; i < a.out_len; i++) {
        unsigned char b = (unsigned char)(a.id + i);
        if (weft_bytes_append(out, &b, 1) < 0)
            return -ENOMEM;
    }
    return a.kind == STORM_NEGATIVE ? -a.id : a.id;
}

/* ------------------------------------------------------------ a caller task */

/* One weft_process_pool_run from a task, with what came back. */
typedef struct pcall {
    weft_process_pool *pool;
    weft_process_fn fn;
    const void *in;
    size_t in_len;
    int arg[3];           /* input storage, used when in is NULL */
    int64_t deadline_ms;  /* > 0: opts.timeout_ms */
    int64_t scope_ms;     /* > 0: inside a deadline scope this long */
    bool drop_out;
    int rc, status;
    weft_bytes out;
    char msg[256];
    int scope_expired;
    int64_t start_ns, end_ns;
} pcall;

static int do_pcall(void *arg)
{
    pcall *c = arg;
    c->status = INT_MIN;
    weft_process_call_opts o = {0};
    if (c->deadline_ms > 0)
        o.timeout_ms = c->deadline_ms;
    weft_scope sc;
    if (c->scope_ms > 0)
        weft_scope_enter(&sc, weft_deadline_ms(c->scope_ms));
    const void *in = c->in ? c->in : c->arg;
    size_t len = c->in ? c->in_len : sizeof c->arg;
    c->start_ns = clock_ns();
    c->rc = weft_process_pool_run(c->pool, c->fn, in, len, c->drop_out ? NULL : &c->out,
                                  &c->status, c->deadline_ms > 0 ? &o : NULL);
    c->end_ns = clock_ns();
    snprintf(c->msg, sizeof c->msg, "%s", c->rc ? weft_errmsg() : "");
    if (c->scope_ms > 0)
        c->scope_expired = weft_scope_exit(&sc);
    return 0;
}

static weft_task *spawn_call(pcall *c)
{
    weft_task *t = weft_spawn(do_pcall, c, NULL);
    assert_non_null(t);
    return t;
}

static pcall call_of(weft_process_pool *pool, weft_process_fn fn, int x)
{
    pcall c;
    memset(&c, 0, sizeof c);
    c.pool = pool;
    c.fn = fn;
    c.arg[0] = x;
    return c;
}

static int out_int(const weft_bytes *b)
{
    int x;
    assert_int_equal(b->len, sizeof x);
    memcpy(&x, b->data, sizeof x);
    return x;
}

/* Run job_inc on x, in the calling task, and check the answer. */
static void inc_ok(weft_process_pool *pool, int x)
{
    weft_bytes out = {0};
    int st = INT_MIN;
    int rc = weft_process_pool_run(pool, job_inc, &x, sizeof x, &out, &st, NULL);
    if (rc != 0)
        fail_msg("job_inc(%d): %s: %s", x, weft_strerror(rc), weft_errmsg());
    assert_int_equal(st, x + 1);
    assert_int_equal(out_int(&out), x + 1);
    weft_bytes_free(&out);
}

/* n jobs from 4 tasks at once, each checked. */
typedef struct inc_batch {
    weft_process_pool *pool;
    int first, n;
} inc_batch;

static int inc_batch_task(void *arg)
{
    inc_batch *b = arg;
    for (int i = 0; i < b->n; i++)
        inc_ok(b->pool, b->first + i);
    return 0;
}

static void pool_still_works(weft_process_pool *pool, int n)
{
    inc_batch b[4];
    weft_task *t[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (inc_batch){pool, i * 1000, (n + 3) / 4};
        t[i] = weft_spawn(inc_batch_task, &b[i], NULL);
        assert_non_null(t[i]);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(join_ok(t[i]), 0);
}

static weft_process_pool *pool_new_ok(const weft_process_pool_opts *o)
{
    weft_process_pool *pool = weft_process_pool_new(o);
    if (!pool)
        fail_msg("weft_process_pool_new: %s", weft_errmsg());
    return pool;
}

/* ------------------------------------------------------------ basics */

static int basic_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 2});
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.workers, 2);
    assert_true(s.jobs == 0 && s.crashes == 0 && s.kills == 0 && s.recycles == 0);
    int jobs = 0;

    /* x -> x + 1 */
    inc_ok(pool, 41);
    jobs++;

    /* Output is appended to what *out holds already. */
    weft_bytes out = {0};
    assert_int_equal(weft_bytes_append(&out, "ab", 2), 0);
    int x = 9, st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_inc, &x, sizeof x, &out, &st, NULL), 0);
    jobs++;
    assert_int_equal(st, 10);
    assert_int_equal(out.len, 2 + sizeof(int));
    assert_memory_equal(out.data, "ab", 2);
    int got;
    memcpy(&got, (char *)out.data + 2, sizeof got);
    assert_int_equal(got, 10);
    weft_bytes_free(&out);
    assert_null(out.data);
    assert_int_equal(out.len, 0);

    /* An echo of 1 MiB, byte for byte. */
    size_t len = (size_t)1 << 20;
    unsigned char *in = pattern_new(len, 1);
    st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_echo, in, len, &out, &st, NULL), 0);
    jobs++;
    assert_int_equal(st, (int)len);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, in, len);
    weft_bytes_free(&out);
    free(in);

    /* A negative status is the job's answer, not an error. */
    st = 0;
    assert_int_equal(weft_process_pool_run(pool, job_negative, "q", 1, &out, &st, NULL), 0);
    jobs++;
    assert_int_equal(st, -1234);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "abc", 3);
    weft_bytes_free(&out);

    /* out == NULL drops the output; status == NULL drops the status. */
    x = 99;
    st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_inc, &x, sizeof x, NULL, &st, NULL), 0);
    jobs++;
    assert_int_equal(st, 100);
    assert_int_equal(weft_process_pool_run(pool, job_inc, &x, sizeof x, &out, NULL, NULL), 0);
    jobs++;
    assert_int_equal(out_int(&out), 100);
    weft_bytes_free(&out);
    assert_int_equal(weft_process_pool_run(pool, job_inc, &x, sizeof x, NULL, NULL, NULL), 0);
    jobs++;

    /* in_len 0, and a small length. */
    st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_len, "xyz", 0, &out, &st, NULL), 0);
    jobs++;
    assert_int_equal(st, 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(weft_process_pool_run(pool, job_len, "xyzzy", 5, &out, &st, NULL), 0);
    jobs++;
    assert_int_equal(st, 5);
    weft_bytes_free(&out);

    /* An empty echo gives empty output. */
    assert_int_equal(weft_process_pool_run(pool, job_echo, "", 0, &out, &st, NULL), 0);
    jobs++;
    assert_int_equal(st, 0);
    assert_int_equal(out.len, 0);
    weft_bytes_free(&out);

    s = stats_of(pool);
    assert_int_equal(s.workers, 2);
    assert_int_equal(s.jobs, (uint64_t)jobs);
    assert_true(s.crashes == 0 && s.kills == 0 && s.recycles == 0);
    expect_live_workers(2);
    pool_finish(pool, &before);
    return 0;
}

static void test_basic(void **state)
{
    (void)state;
    run_checked(basic_main, NULL);
}

static int other_process_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 2});
    weft_bytes out = {0};
    int st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_pid, NULL, 0, &out, &st, NULL), 0);
    assert_int_equal(st, 0);
    pid_t p;
    assert_int_equal(out.len, sizeof p);
    memcpy(&p, out.data, sizeof p);
    assert_true(p > 0);
    assert_int_not_equal(p, getpid());
    assert_int_equal(kill(p, 0), 0); /* a live worker */
    weft_bytes_free(&out);
    pool_finish(pool, &before);
    return 0;
}

static void test_other_process(void **state)
{
    (void)state;
    run_checked(other_process_main, NULL);
}

/* A worker killed while the pool is idle is reaped at once (no zombie left
 * until the next job) and replaced. */
static pid_t worker_pid_of_job(weft_process_pool *pool)
{
    weft_bytes out = {0};
    int st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_pid, NULL, 0, &out, &st, NULL), 0);
    pid_t p;
    assert_int_equal(out.len, sizeof p);
    memcpy(&p, out.data, sizeof p);
    weft_bytes_free(&out);
    return p;
}

static int idle_death_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    pid_t p = worker_pid_of_job(pool);
    assert_int_equal(kill(p, SIGKILL), 0);
    /* A zombie still answers kill(p, 0); a reaped process does not. */
    int64_t t0 = weft_now();
    while (kill(p, 0) == 0 && weft_now() - t0 < 10000 * MS)
        assert_int_equal(weft_sleep_ms(2), 0);
    assert_int_equal(kill(p, 0), -1);
    assert_int_equal(errno, ESRCH);
    /* and the replacement takes the next job */
    pid_t q = worker_pid_of_job(pool);
    assert_int_not_equal(q, p);
    assert_int_equal(kill(q, 0), 0);
    pool_finish(pool, &before);
    return 0;
}

static void test_idle_worker_death_reaped(void **state)
{
    (void)state;
    run_checked(idle_death_main, NULL);
}

/* What a worker sees: SIGINT ignored, crash signals default, one thread even
 * though the parent has two, the parent's other fds usable, weft's loop fd
 * and other workers' sockets closed. */
static atomic_int env_thread_stop;
static void *idle_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&env_thread_stop))
        usleep(1000);
    return NULL;
}

static int worker_env_main(void *arg)
{
    (void)arg;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    int parent_sockets, parent_epolls;
    count_fd_kinds(&parent_sockets, &parent_epolls);
    assert_true(parent_epolls >= 1); /* this loop's */
    pthread_t th;
    atomic_store(&env_thread_stop, 0);
    assert_int_equal(pthread_create(&th, NULL, idle_thread, NULL), 0);

    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 3});
    weft_bytes out = {0};
    int st = INT_MIN;
    int fd = pfd[1];
    assert_int_equal(weft_process_pool_run(pool, job_env, &fd, sizeof fd, &out, &st, NULL), 0);
    worker_env env;
    assert_int_equal(out.len, sizeof env);
    memcpy(&env, out.data, sizeof env);
    weft_bytes_free(&out);
    assert_true(env.sigint_ignored);
    assert_true(env.segv_default);
    assert_true(env.abrt_default);
    assert_int_equal(env.threads, threads_after_fork()); /* no thread survives the fork */
    assert_int_equal(env.wrote, 2);
    char buf[2];
    assert_int_equal(read(pfd[0], buf, 2), 2);
    assert_memory_equal(buf, "hi", 2);
    /* weft's own fds are closed: no loop epoll, and of sockets only the
     * parent's other ones plus the worker's own. */
    assert_int_equal(env.epolls, parent_epolls - 1);
    assert_int_equal(env.sockets, parent_sockets + 1);

    /* A SIGINT does not kill a worker. */
    st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_raise_sigint, NULL, 0, NULL, &st, NULL), 0);
    assert_int_equal(st, 5);
    assert_int_equal(stats_of(pool).crashes, 0);

    atomic_store(&env_thread_stop, 1);
    pthread_join(th, NULL);
    assert_int_equal(weft_process_pool_shutdown(pool), 0);
    weft_process_pool_free(pool);
    close(pfd[0]);
    close(pfd[1]);
    return 0;
}

static void test_worker_environment(void **state)
{
    (void)state;
    run_checked(worker_env_main, NULL);
}

/* ------------------------------------------------------------ crashes */

static int crash_main(void *arg)
{
    int kind = (int)(intptr_t)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 4});

    /* Three jobs hold their workers while the fourth crashes its own. */
    pcall hold[3];
    weft_task *ht[3];
    for (int i = 0; i < 3; i++) {
        hold[i] = call_of(pool, job_hold, 100 + i);
        ht[i] = spawn_call(&hold[i]);
    }
    pcall crash = call_of(pool, job_crash, kind);
    crash.arg[1] = 3; /* crash once the three others run */
    weft_task *ct = spawn_call(&crash);
    assert_int_equal(join_ok(ct), 0);
    assert_int_equal(crash.rc, WEFT_ECRASHED);
    print_message("crash message: %s\n", crash.msg);
    switch (kind) {
    case CRASH_SEGV:
        assert_true(strstr(crash.msg, "signal 11") || strstr(crash.msg, "Segmentation fault"));
        break;
    case CRASH_ABORT:
        assert_true(strstr(crash.msg, "signal 6") || strstr(crash.msg, "Aborted"));
        break;
    case CRASH_EXIT7:
        assert_non_null(strstr(crash.msg, "exited with status 7"));
        break;
    }
    assert_int_equal(crash.out.len, 0);
    weft_bytes_free(&crash.out);
    /* The crashed worker is reaped. */
    pid_t dead = atomic_load(&sh->crash_pid);
    assert_true(dead > 0);
    assert_true(pid_gone_within(dead, 3000));

    /* The others were running all along and finish fine. */
    assert_int_equal(atomic_load(&sh->started), 3);
    atomic_store(&sh->release, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(join_ok(ht[i]), 0);
        assert_int_equal(hold[i].rc, 0);
        assert_int_equal(hold[i].status, 101 + i);
        assert_int_equal(out_int(&hold[i].out), 101 + i);
        weft_bytes_free(&hold[i].out);
    }

    /* The pool is whole again. */
    pool_still_works(pool, 100);
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.workers, 4);
    assert_int_equal(s.crashes, 1);
    assert_int_equal(s.kills, 0);
    assert_int_equal(s.jobs, 103);
    expect_live_workers(4);
    pool_finish(pool, &before);
    return 0;
}

static void test_crash_segv(void **state)
{
    (void)state;
    run_checked(crash_main, (void *)(intptr_t)CRASH_SEGV);
}

static void test_crash_abort(void **state)
{
    (void)state;
    run_checked(crash_main, (void *)(intptr_t)CRASH_ABORT);
}

static void test_crash_exit(void **state)
{
    (void)state;
    run_checked(crash_main, (void *)(intptr_t)CRASH_EXIT7);
}

/* A job whose worker dies (crash, timeout, cancellation) while many other
 * jobs wait for a worker (the other one is busy): only that job fails,
 * whichever worker the others were given or queued to. */
enum { BEHIND_CRASH, BEHIND_TIMEOUT, BEHIND_CANCEL };

static int jobs_behind_main(void *arg)
{
    int mode = (int)(intptr_t)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 2});
    pcall hold = call_of(pool, job_hold, 0);
    weft_task *ht = spawn_call(&hold);
    await_at_least(&sh->started, 1); /* one worker busy until released */

    pcall bad;
    if (mode == BEHIND_CRASH) {
        bad = call_of(pool, job_crash, CRASH_SEGV);
        bad.arg[2] = 200; /* crash 200 ms in: the others wait by then */
    } else {
        bad = call_of(pool, job_forever, 0);
        if (mode == BEHIND_TIMEOUT)
            bad.deadline_ms = 300;
    }
    weft_task *bt = spawn_call(&bad);
    assert_int_equal(weft_sleep_ms(0), 0); /* bad goes first */
    enum { N = 40 };
    static pcall c[N];
    weft_task *t[N];
    for (int i = 0; i < N; i++) {
        c[i] = call_of(pool, job_inc, i);
        t[i] = spawn_call(&c[i]);
    }
    if (mode == BEHIND_CANCEL) {
        await_at_least(&sh->started, 2);
        assert_int_equal(weft_sleep_ms(100), 0);
        weft_cancel(bt);
    }
    assert_int_equal(join_ok(bt), 0);
    int want = mode == BEHIND_CRASH ? WEFT_ECRASHED
               : mode == BEHIND_TIMEOUT ? -ETIMEDOUT
                                        : -ECANCELED;
    assert_int_equal(bad.rc, want);
    atomic_store(&sh->release, 1);
    assert_int_equal(join_ok(ht), 0);
    assert_int_equal(hold.rc, 0);
    weft_bytes_free(&hold.out);
    for (int i = 0; i < N; i++) {
        assert_int_equal(join_ok(t[i]), 0);
        if (c[i].rc != 0)
            fail_msg("job %d behind the failing one: %s: %s", i, weft_strerror(c[i].rc),
                     c[i].msg);
        assert_int_equal(c[i].status, i + 1);
        assert_int_equal(out_int(&c[i].out), i + 1);
        weft_bytes_free(&c[i].out);
    }
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.crashes, mode == BEHIND_CRASH ? 1 : 0);
    assert_int_equal(s.kills, mode == BEHIND_CRASH ? 0 : 1);
    assert_int_equal(s.jobs, N + 1);
    pool_still_works(pool, 20);
    expect_live_workers(2);
    pool_finish(pool, &before);
    return 0;
}

static void test_crash_with_jobs_behind(void **state)
{
    (void)state;
    run_checked(jobs_behind_main, (void *)(intptr_t)BEHIND_CRASH);
}

static void test_timeout_with_jobs_behind(void **state)
{
    (void)state;
    run_checked(jobs_behind_main, (void *)(intptr_t)BEHIND_TIMEOUT);
}

static void test_cancel_with_jobs_behind(void **state)
{
    (void)state;
    run_checked(jobs_behind_main, (void *)(intptr_t)BEHIND_CANCEL);
}

/* ------------------------------------------------------------ deadlines */

static int deadline_main(void *arg)
{
    bool use_scope = arg != NULL;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 2});
    inc_ok(pool, 1);

    pcall c = call_of(pool, job_forever, 0);
    if (use_scope)
        c.scope_ms = 300;
    else
        c.deadline_ms = 300;
    do_pcall(&c);
    assert_int_equal(c.rc, -ETIMEDOUT);
    assert_true(c.end_ns - c.start_ns >= 250 * MS);
    assert_true(c.end_ns - c.start_ns < 10000 * MS);
    if (use_scope)
        assert_true(c.scope_expired);
    print_message("timeout message: %s\n", c.msg);
    assert_int_equal(atomic_load(&sh->started), 1);
    pid_t victim = atomic_load(&sh->pids[0]);
    assert_true(pid_gone_within(victim, 3000));

    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.kills, 1);
    assert_int_equal(s.crashes, 0);
    assert_int_equal(s.workers, 2);
    pool_still_works(pool, 20);
    expect_live_workers(2);
    pool_finish(pool, &before);
    return 0;
}

static void test_deadline_opts(void **state)
{
    (void)state;
    run_checked(deadline_main, NULL);
}

static void test_deadline_scope(void **state)
{
    (void)state;
    run_checked(deadline_main, (void *)1);
}

/* ------------------------------------------------------------ cancellation */

static int cancel_running_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 2});

    pcall c = call_of(pool, job_sleep_mark, 600); /* marks after 600 ms */
    weft_task *t = spawn_call(&c);
    await_at_least(&sh->started, 1);
    pid_t victim = atomic_load(&sh->pids[0]);
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(join_ok(t), 0);
    assert_int_equal(c.rc, -ECANCELED);
    print_message("cancel message: %s\n", c.msg);
    assert_true(pid_gone_within(victim, 3000));
    /* Long after the job would have left its marker: it never did. */
    assert_int_equal(weft_sleep_ms(900), 0);
    assert_int_equal(atomic_load(&sh->marker), 0);

    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.kills, 1);
    assert_int_equal(s.crashes, 0);
    pool_still_works(pool, 20);
    expect_live_workers(2);
    pool_finish(pool, &before);
    return 0;
}

static void test_cancel_running(void **state)
{
    (void)state;
    run_checked(cancel_running_main, NULL);
}

/* A quick job's status only: x -> x + 7, no output (its answer may wait in
 * the worker's buffer while the next job runs). */
static int job_status_only(const void *in, size_t len, weft_bytes *out)
{
    (void)out;
    return in_int(in, len, 0) + 7;
}

/*
 * A quick job, then a job that never ends, sent together to one worker:
 * the worker batches the quick job's answer and starts the second.  When
 * the second is cancelled (its worker killed), the quick one must still
 * succeed with its status, not be reported as crashed.
 */
static int buffered_answer_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    for (int round = 0; round < 5; round++) {
        pcall quick = call_of(pool, job_status_only, 100 + round);
        pcall stuck = call_of(pool, job_forever, 0);
        weft_task *tq = spawn_call(&quick);
        weft_task *ts = spawn_call(&stuck); /* staged in the same loop turn */
        await_at_least(&sh->started, round + 1);
        assert_int_equal(weft_cancel(ts), 0);
        assert_int_equal(join_ok(ts), 0);
        assert_int_equal(stuck.rc, -ECANCELED);
        assert_int_equal(join_ok(tq), 0);
        if (quick.rc != 0)
            fail_msg("quick job: %s: %s", weft_strerror(quick.rc), quick.msg);
        assert_int_equal(quick.status, 100 + round + 7);
    }
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.crashes, 0);
    assert_int_equal(s.kills, 5);
    pool_still_works(pool, 20);
    pool_finish(pool, &before);
    return 0;
}

static void test_buffered_answer_survives_kill(void **state)
{
    (void)state;
    run_checked(buffered_answer_main, NULL);
}

static int cancel_queued_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 2});

    /* Both workers busy until released. */
    pcall hold[2];
    weft_task *ht[2];
    for (int i = 0; i < 2; i++) {
        hold[i] = call_of(pool, job_hold, i);
        ht[i] = spawn_call(&hold[i]);
    }
    await_at_least(&sh->started, 2);

    /* A queued job, cancelled. */
    pcall q = call_of(pool, job_mark, 0);
    weft_task *qt = spawn_call(&q);
    assert_int_equal(weft_sleep_ms(50), 0); /* q waits for a worker now */
    assert_int_equal(weft_cancel(qt), 0);
    assert_int_equal(join_ok(qt), 0);
    assert_int_equal(q.rc, -ECANCELED);
    /* At once: the held jobs still hold both workers. */
    assert_int_equal(atomic_load(&sh->release), 0);

    /* A queued job whose deadline passes: the same, with -ETIMEDOUT. */
    pcall d = call_of(pool, job_mark, 0);
    d.deadline_ms = 100;
    weft_task *dt = spawn_call(&d);
    assert_int_equal(join_ok(dt), 0);
    assert_int_equal(d.rc, -ETIMEDOUT);
    assert_int_equal(atomic_load(&sh->release), 0);

    /* And one inside an expiring scope. */
    pcall e = call_of(pool, job_mark, 0);
    e.scope_ms = 100;
    weft_task *et = spawn_call(&e);
    assert_int_equal(join_ok(et), 0);
    assert_int_equal(e.rc, -ETIMEDOUT);

    atomic_store(&sh->release, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(join_ok(ht[i]), 0);
        assert_int_equal(hold[i].rc, 0);
        assert_int_equal(hold[i].status, i + 1);
        weft_bytes_free(&hold[i].out);
    }
    pool_still_works(pool, 20);
    assert_int_equal(weft_sleep_ms(100), 0);
    /* None of them ever ran, and no worker was killed for them. */
    assert_int_equal(atomic_load(&sh->marker), 0);
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.kills, 0);
    assert_int_equal(s.crashes, 0);
    expect_live_workers(2);
    pool_finish(pool, &before);
    return 0;
}

static void test_cancel_queued(void **state)
{
    (void)state;
    run_checked(cancel_queued_main, NULL);
}

/* A caller already cancelled, or whose deadline has already passed, gets
 * -ECANCELED / -ETIMEDOUT at once with an idle worker available: the job
 * never starts, and no worker is killed for it. */
static int expired_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    inc_ok(pool, 1); /* the worker is up and idle */

    pcall c = call_of(pool, job_mark, 0);
    weft_task *t = spawn_call(&c);
    assert_int_equal(weft_cancel(t), 0); /* before it even starts */
    assert_int_equal(join_ok(t), 0);
    assert_int_equal(c.rc, -ECANCELED);

    weft_process_call_opts o = {.timeout_ms = -1};
    int st = INT_MIN;
    int rc = weft_process_pool_run(pool, job_mark, NULL, 0, NULL, &st, &o);
    assert_int_equal(rc, -ETIMEDOUT);

    weft_scope sc;
    weft_scope_enter(&sc, weft_now() - 1);
    rc = weft_process_pool_run(pool, job_mark, NULL, 0, NULL, &st, NULL);
    weft_scope_exit(&sc);
    assert_int_equal(rc, -ETIMEDOUT);

    inc_ok(pool, 2);
    assert_int_equal(weft_sleep_ms(50), 0);
    assert_int_equal(atomic_load(&sh->marker), 0);
    weft_process_pool_stats s = stats_of(pool);
    print_message("kills after an expired deadline and an expired scope: %llu\n",
                  (unsigned long long)s.kills);
    assert_int_equal(s.kills, 0);
    pool_finish(pool, &before);
    return 0;
}

static void test_expired_before_call(void **state)
{
    (void)state;
    run_checked(expired_main, NULL);
}

/* A caller that gives up while its (large) input is still being written to
 * a busy worker: the job is withdrawn; the job the worker runs meanwhile is
 * not hurt, and the request stream stays in step for later jobs. */
static int release_later(void *arg)
{
    weft_sleep_ms((int64_t)(intptr_t)arg);
    atomic_store(&sh->release, 1);
    return 0;
}

static int give_up_mid_input_main(void *arg)
{
    bool by_deadline = arg != NULL;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    pcall hold = call_of(pool, job_hold, 41);
    weft_task *ht = spawn_call(&hold);
    await_at_least(&sh->started, 1); /* the worker is busy: it reads no input */

    size_t len = (size_t)16 << 20;
    pcall big = call_of(pool, job_mark, 0);
    big.in = pattern_new(len, 5);
    big.in_len = len;
    if (by_deadline)
        big.deadline_ms = 100;
    weft_task *bt = spawn_call(&big);
    /* Whatever the pool does with the half-written request, the hold job
     * ends 1.5 s from now. */
    weft_task *rt = weft_spawn(release_later, (void *)(intptr_t)1500, NULL);
    assert_non_null(rt);
    assert_int_equal(weft_sleep_ms(100), 0);
    if (!by_deadline)
        weft_cancel(bt);
    pcall next = call_of(pool, job_inc, 7); /* queued behind both */
    weft_task *nt = spawn_call(&next);

    assert_int_equal(join_ok(bt), 0);
    print_message("gave up mid-input after %.0f ms: %s\n",
                  (double)(big.end_ns - big.start_ns) / 1e6, big.msg);
    assert_int_equal(big.rc, by_deadline ? -ETIMEDOUT : -ECANCELED);
    free((void *)big.in);
    assert_int_equal(join_ok(rt), 0);
    assert_int_equal(join_ok(ht), 0);
    if (hold.rc != 0)
        fail_msg("the job running meanwhile failed: %s: %s (stats: %llu crashes, %llu kills)",
                 weft_strerror(hold.rc), hold.msg, (unsigned long long)stats_of(pool).crashes,
                 (unsigned long long)stats_of(pool).kills);
    assert_int_equal(hold.status, 42);
    weft_bytes_free(&hold.out);
    assert_int_equal(join_ok(nt), 0);
    assert_int_equal(next.rc, 0);
    assert_int_equal(next.status, 8);
    assert_int_equal(out_int(&next.out), 8);
    weft_bytes_free(&next.out);
    pool_still_works(pool, 20);
    /* Echo after: the stream is in step. */
    weft_bytes out = {0};
    unsigned char *in = pattern_new(100000, 9);
    assert_int_equal(weft_process_pool_run(pool, job_echo, in, 100000, &out, NULL, NULL), 0);
    assert_int_equal(out.len, 100000);
    assert_memory_equal(out.data, in, 100000);
    weft_bytes_free(&out);
    free(in);
    assert_int_equal(weft_sleep_ms(50), 0);
    assert_int_equal(atomic_load(&sh->marker), 0); /* the withdrawn job never ran */
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.crashes, 0);
    assert_int_equal(s.kills, 0);
    pool_finish(pool, &before);
    return 0;
}

static void test_cancel_mid_input(void **state)
{
    (void)state;
    run_checked(give_up_mid_input_main, NULL);
}

static void test_timeout_mid_input(void **state)
{
    (void)state;
    run_checked(give_up_mid_input_main, (void *)1);
}

/*
 * A storm: many tasks at once, each making calls of every kind — plain
 * jobs of varied length and output size, jobs with short deadlines, jobs
 * cancelled at random moments, crashes, oversized outputs, negative
 * statuses.  Every answer must be the caller's own (no mix-up between jobs
 * in flight on one worker), plain jobs must succeed whatever happens to
 * their neighbours, and the pool must end whole.
 */
enum { STORM_TASKS = 48, STORM_CALLS = 40 };

typedef struct storm_ctx {
    weft_process_pool *pool;
    int index;
    uint64_t rng;
    int crashes, timeouts, cancels, ok;
    char failure[300];
} storm_ctx;

static uint32_t storm_rand(storm_ctx *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return (uint32_t)(c->rng >> 11);
}

/* Whether a call's answer is right for its input; a message in c->failure if not. */
static bool storm_check(storm_ctx *c, const storm_in *a, const pcall *pc, const char *what)
{
    if (pc->rc != 0)
        return true; /* judged by the caller */
    int want_status = a->kind == STORM_NEGATIVE ? -a->id : a->id;
    bool good = pc->status == want_status && pc->out.len == (size_t)a->out_len;
    for (size_t i = 0; good && i < pc->out.len; i++)
        good = ((unsigned char *)pc->out.data)[i] == (unsigned char)(a->id + (int)i);
    if (!good)
        snprintf(c->failure, sizeof c->failure,
                 "%s job %d: status %d (want %d), %zu output bytes (want %d)%s", what, a->id,
                 pc->status, want_status, pc->out.len, a->out_len,
                 pc->status == want_status && pc->out.len == (size_t)a->out_len
                     ? ", wrong bytes"
                     : "");
    return good;
}

static int storm_task(void *arg)
{
    storm_ctx *c = arg;
    for (int k = 0; k < STORM_CALLS && !c->failure[0]; k++) {
        storm_in a = {.id = c->index * 1000 + k};
        uint32_t r = storm_rand(c) % 100;
        a.out_len = storm_rand(c) % 4 == 0 ? (int)(storm_rand(c) % 65536)
                                           : (int)(storm_rand(c) % 64);
        pcall pc;
        memset(&pc, 0, sizeof pc);
        pc.pool = c->pool;
        pc.fn = job_storm;
        pc.in = &a;
        pc.in_len = sizeof a;
        const char *what;
        int allowed = 0; /* besides 0 */
        if (r < 50) {
            what = "a plain";
            a.sleep_us = (int)(storm_rand(c) % 1500);
            do_pcall(&pc);
        } else if (r < 65) {
            what = "a deadline";
            a.sleep_us = (int)(storm_rand(c) % 5000);
            pc.deadline_ms = 1 + storm_rand(c) % 5;
            allowed = -ETIMEDOUT;
            do_pcall(&pc);
            c->timeouts += pc.rc == -ETIMEDOUT;
        } else if (r < 82) {
            what = "a cancelled";
            a.sleep_us = (int)(storm_rand(c) % 5000);
            allowed = -ECANCELED;
            weft_task *t = weft_spawn(do_pcall, &pc, NULL);
            if (!t) {
                snprintf(c->failure, sizeof c->failure, "spawn: %s", weft_errmsg());
                break;
            }
            weft_sleep_ms(storm_rand(c) % 4);
            weft_cancel(t);
            int st;
            if (weft_join_until(t, &st, weft_deadline_ms(20000)) != 0) {
                snprintf(c->failure, sizeof c->failure, "a cancelled call hangs");
                weft_detach(t);
                return 0;
            }
            c->cancels += pc.rc == -ECANCELED;
        } else if (r < 86) {
            what = "a crashing";
            a.kind = STORM_CRASH;
            a.sleep_us = (int)(storm_rand(c) % 1000);
            do_pcall(&pc);
            if (pc.rc != WEFT_ECRASHED)
                snprintf(c->failure, sizeof c->failure, "crashing job %d: %s: %s", a.id,
                         weft_strerror(pc.rc), pc.msg);
            c->crashes++;
            weft_bytes_free(&pc.out);
            continue;
        } else if (r < 90) {
            what = "an oversized";
            a.kind = STORM_BIG;
            do_pcall(&pc);
            if (pc.rc != -E2BIG)
                snprintf(c->failure, sizeof c->failure, "oversized job %d: %s: %s", a.id,
                         weft_strerror(pc.rc), pc.msg);
            weft_bytes_free(&pc.out);
            continue;
        } else {
            what = "a negative";
            a.kind = STORM_NEGATIVE;
            a.sleep_us = (int)(storm_rand(c) % 500);
            do_pcall(&pc);
        }
        if (pc.rc != 0 && (allowed == 0 || pc.rc != allowed))
            snprintf(c->failure, sizeof c->failure, "%s job %d: %s: %s", what, a.id,
                     weft_strerror(pc.rc), pc.msg);
        else
            storm_check(c, &a, &pc, what);
        c->ok += pc.rc == 0;
        weft_bytes_free(&pc.out);
    }
    return 0;
}

static int storm_main(void *arg)
{
    bool recycling = arg != NULL;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){
        .workers = recycling ? 3 : 2,
        .max_output = STORM_MAX_OUTPUT,
        .max_jobs_per_worker = recycling ? 7 : 0});
    static storm_ctx c[STORM_TASKS];
    weft_task *t[STORM_TASKS];
    int64_t t0 = clock_ns();
    for (int i = 0; i < STORM_TASKS; i++) {
        c[i] = (storm_ctx){.pool = pool, .index = i, .rng = 0x9E3779B97F4A7C15ull * (i + 1)};
        t[i] = weft_spawn(storm_task, &c[i], NULL);
        assert_non_null(t[i]);
    }
    int crashes = 0, timeouts = 0, cancels = 0, ok = 0;
    for (int i = 0; i < STORM_TASKS; i++) {
        int st = INT_MIN;
        assert_int_equal(weft_join_until(t[i], &st, weft_deadline_ms(60000)), 0);
        if (c[i].failure[0])
            fail_msg("storm task %d: %s", i, c[i].failure);
        crashes += c[i].crashes;
        timeouts += c[i].timeouts;
        cancels += c[i].cancels;
        ok += c[i].ok;
    }
    weft_process_pool_stats s = stats_of(pool);
    print_message("storm%s: %d calls in %.2f s: %d ok, %d crashed, %d timed out, %d "
                  "cancelled; stats: %llu jobs, %llu crashes, %llu kills, %llu recycles\n",
                  recycling ? " (recycling)" : "", STORM_TASKS * STORM_CALLS,
                  (double)(clock_ns() - t0) / 1e9, ok, crashes, timeouts, cancels,
                  (unsigned long long)s.jobs, (unsigned long long)s.crashes,
                  (unsigned long long)s.kills, (unsigned long long)s.recycles);
    assert_int_equal(s.crashes, (uint64_t)crashes);
    assert_true(s.kills <= (uint64_t)(timeouts + cancels));
    assert_int_equal(s.workers, recycling ? 3 : 2);
    pool_still_works(pool, 40);
    expect_live_workers(recycling ? 3 : 2);
    pool_finish(pool, &before);
    return 0;
}

static void test_storm(void **state)
{
    (void)state;
    run_checked(storm_main, NULL);
}

static void test_storm_recycling(void **state)
{
    (void)state;
    run_checked(storm_main, (void *)1);
}

/* ------------------------------------------------------------ many jobs */

enum { MANY_TASKS = 200, MANY_PER_TASK = 500 };

typedef struct many_ctx {
    weft_process_pool *pool;
    uint32_t first;
    int64_t status_sum;
    uint64_t out_sum;
    int errors;
} many_ctx;

static int many_task(void *arg)
{
    many_ctx *m = arg;
    weft_bytes out = {0};
    for (uint32_t j = 0; j < MANY_PER_TASK; j++) {
        uint32_t x = m->first + j;
        int st = INT_MIN;
        size_t base = out.len;
        int rc = weft_process_pool_run(m->pool, job_tiny, &x, sizeof x, &out, &st, NULL);
        if (rc != 0 || out.len != base + sizeof(uint64_t)) {
            m->errors++;
            continue;
        }
        uint64_t y;
        memcpy(&y, (char *)out.data + base, sizeof y);
        m->status_sum += st;
        m->out_sum += y;
    }
    weft_bytes_free(&out);
    return 0;
}

static int many_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(NULL); /* default: one worker per CPU */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(stats_of(pool).workers, (size_t)(cores > 0 ? cores : 1));
    static many_ctx m[MANY_TASKS];
    weft_task *t[MANY_TASKS];
    int64_t t0 = clock_ns();
    for (int i = 0; i < MANY_TASKS; i++) {
        m[i] = (many_ctx){.pool = pool, .first = (uint32_t)(i * MANY_PER_TASK)};
        t[i] = weft_spawn(many_task, &m[i], NULL);
        assert_non_null(t[i]);
    }
    int64_t status_sum = 0;
    uint64_t out_sum = 0;
    for (int i = 0; i < MANY_TASKS; i++) {
        int st = INT_MIN;
        assert_int_equal(weft_join_until(t[i], &st, weft_deadline_ms(60000)), 0);
        assert_int_equal(m[i].errors, 0);
        status_sum += m[i].status_sum;
        out_sum += m[i].out_sum;
    }
    int64_t took = clock_ns() - t0;
    const uint64_t n = (uint64_t)MANY_TASKS * MANY_PER_TASK;
    int64_t want_status = 0;
    for (uint64_t x = 0; x < n; x++)
        want_status += (int64_t)(x % 1000);
    assert_int_equal(status_sum, want_status);
    assert_int_equal(out_sum, 3 * (n * (n - 1) / 2));
    print_message("%llu jobs in %.2f s (%.1f us/job) on %zu workers\n", (unsigned long long)n,
                  (double)took / 1e9, (double)took / 1e3 / (double)n, stats_of(pool).workers);
    assert_int_equal(stats_of(pool).jobs, n);
    assert_true(took < 50000 * MS);
    pool_finish(pool, &before);
    return 0;
}

static void test_many_jobs(void **state)
{
    (void)state;
    run_checked(many_main, NULL);
}

/* ------------------------------------------------------------ limits */

static pid_t worker_pid(weft_process_pool *pool)
{
    weft_bytes out = {0};
    assert_int_equal(weft_process_pool_run(pool, job_pid, NULL, 0, &out, NULL, NULL), 0);
    pid_t p;
    assert_int_equal(out.len, sizeof p);
    memcpy(&p, out.data, sizeof p);
    weft_bytes_free(&out);
    return p;
}

static int limits_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(
        &(weft_process_pool_opts){.workers = 1, .max_input = 1000, .max_output = 1000});
    pid_t w0 = worker_pid(pool);

    /* Input above max_input: -E2BIG at once, the job never runs. */
    char *big = calloc(1, 1001);
    assert_non_null(big);
    int st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_mark, big, 1001, NULL, &st, NULL), -E2BIG);
    print_message("max_input message: %s\n", weft_errmsg());
    assert_true(strlen(weft_errmsg()) > 0);
    assert_int_equal(weft_process_pool_run(pool, job_len, big, 1000, NULL, &st, NULL), 0);
    assert_int_equal(st, 1000);
    free(big);

    /* Output above max_output: -E2BIG, and the worker is fine. */
    weft_bytes out = {0};
    size_t n = 1001;
    int rc = weft_process_pool_run(pool, job_bytes, &n, sizeof n, &out, &st, NULL);
    assert_int_equal(rc, -E2BIG);
    print_message("max_output message: %s\n", weft_errmsg());
    weft_bytes_free(&out);
    n = 1000;
    assert_int_equal(weft_process_pool_run(pool, job_bytes, &n, sizeof n, &out, &st, NULL), 0);
    assert_int_equal(out.len, 1000);
    assert_int_equal(((char *)out.data)[999], 'z');
    weft_bytes_free(&out);
    n = 1u << 20; /* far above: the same */
    assert_int_equal(weft_process_pool_run(pool, job_bytes, &n, sizeof n, &out, &st, NULL),
                     -E2BIG);
    weft_bytes_free(&out);
    inc_ok(pool, 5);
    assert_int_equal(worker_pid(pool), w0); /* the same worker throughout */

    assert_int_equal(atomic_load(&sh->marker), 0);
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.crashes, 0);
    assert_int_equal(s.kills, 0);
    assert_int_equal(s.recycles, 0);
    pool_finish(pool, &before);
    return 0;
}

static void test_limits(void **state)
{
    (void)state;
    run_checked(limits_main, NULL);
}

typedef struct pid_batch {
    weft_process_pool *pool;
    pid_t pids[10];
} pid_batch;

static int pid_batch_task(void *arg)
{
    pid_batch *b = arg;
    for (int i = 0; i < 10; i++)
        b->pids[i] = worker_pid(b->pool);
    return 0;
}

static int recycle_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool =
        pool_new_ok(&(weft_process_pool_opts){.workers = 2, .max_jobs_per_worker = 5});
    pid_batch b[5];
    weft_task *t[5];
    for (int i = 0; i < 5; i++) {
        b[i].pool = pool;
        t[i] = weft_spawn(pid_batch_task, &b[i], NULL);
        assert_non_null(t[i]);
    }
    for (int i = 0; i < 5; i++)
        assert_int_equal(join_ok(t[i]), 0);
    /* 50 jobs, at most 5 per worker: at least 10 workers. */
    pid_t seen[50];
    int count[50] = {0}, distinct = 0;
    for (int i = 0; i < 50; i++) {
        pid_t p = b[i / 10].pids[i % 10];
        assert_true(p > 0 && p != getpid());
        int k;
        for (k = 0; k < distinct && seen[k] != p; k++)
            ;
        if (k == distinct)
            seen[distinct++] = p;
        count[k]++;
    }
    for (int k = 0; k < distinct; k++)
        assert_true(count[k] <= 5);
    assert_true(distinct >= 10);
    weft_process_pool_stats s = stats_of(pool);
    print_message("%d distinct workers, %llu recycles\n", distinct,
                  (unsigned long long)s.recycles);
    assert_true(s.recycles >= 9);
    assert_int_equal(s.jobs, 50);
    assert_int_equal(s.crashes, 0);
    assert_int_equal(s.kills, 0);
    assert_int_equal(s.workers, 2);
    expect_live_workers(2);
    pool_finish(pool, &before);
    return 0;
}

static void test_recycle(void **state)
{
    (void)state;
    run_checked(recycle_main, NULL);
}

static int max_queue_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool =
        pool_new_ok(&(weft_process_pool_opts){.workers = 1, .max_queue = 2});
    pcall c[3];
    weft_task *t[3];
    c[0] = call_of(pool, job_hold, 0);
    t[0] = spawn_call(&c[0]);
    await_at_least(&sh->started, 1); /* the worker is busy */
    for (int i = 1; i < 3; i++) {
        c[i] = call_of(pool, job_hold, i);
        t[i] = spawn_call(&c[i]);
    }
    assert_int_equal(weft_sleep_ms(50), 0); /* two callers wait */
    int st = INT_MIN;
    assert_int_equal(weft_process_pool_run(pool, job_mark, NULL, 0, NULL, &st, NULL), -EAGAIN);
    print_message("max_queue message: %s\n", weft_errmsg());
    assert_int_equal(atomic_load(&sh->started), 1);
    atomic_store(&sh->release, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(join_ok(t[i]), 0);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].status, i + 1);
        weft_bytes_free(&c[i].out);
    }
    inc_ok(pool, 3);
    assert_int_equal(atomic_load(&sh->marker), 0);
    pool_finish(pool, &before);
    return 0;
}

static void test_max_queue(void **state)
{
    (void)state;
    run_checked(max_queue_main, NULL);
}

/* ------------------------------------------------------------ shutdown */

static int shutdown_drain_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 2});
    enum { N = 6 };
    pcall c[N];
    weft_task *t[N];
    for (int i = 0; i < N; i++) {
        c[i] = call_of(pool, job_sleep_done, i);
        t[i] = spawn_call(&c[i]);
    }
    await_at_least(&sh->started, 2); /* two run, four wait */
    assert_int_equal(weft_process_pool_shutdown(pool), 0);
    assert_int_equal(atomic_load(&sh->done), N); /* every job ran to its end */
    for (int i = 0; i < N; i++) {
        assert_int_equal(join_ok(t[i]), 0);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].status, 7);
    }
    /* The workers have exited. */
    int z, kids = count_children(&z);
    assert_int_equal(kids - z, 0);
    int st;
    assert_int_equal(weft_process_pool_run(pool, job_mark, NULL, 0, NULL, &st, NULL), -ESHUTDOWN);
    assert_int_equal(weft_process_pool_shutdown(pool), 0); /* again: harmless */
    assert_int_equal(atomic_load(&sh->marker), 0);
    assert_int_equal(stats_of(pool).jobs, N);
    weft_process_pool_free(pool);
    snap after = snap_take();
    assert_int_equal(after.fds, before.fds);
    assert_int_equal(after.children, before.children);
    return 0;
}

static void test_shutdown_drain(void **state)
{
    (void)state;
    run_checked(shutdown_drain_main, NULL);
}

static int shutdown_cancel_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(
        &(weft_process_pool_opts){.workers = 2, .on_shutdown = WEFT_POOL_CANCEL});
    enum { N = 6 };
    pcall c[N];
    weft_task *t[N];
    for (int i = 0; i < N; i++) {
        c[i] = call_of(pool, job_sleep_mark, 700);
        t[i] = spawn_call(&c[i]);
    }
    await_at_least(&sh->started, 2); /* two run, four wait */
    pid_t running[2] = {atomic_load(&sh->pids[0]), atomic_load(&sh->pids[1])};
    int64_t t0 = clock_ns();
    assert_int_equal(weft_process_pool_shutdown(pool), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(join_ok(t[i]), 0);
        assert_int_equal(c[i].rc, -ECANCELED);
    }
    print_message("shutdown (cancel) took %.0f ms; a caller saw: %s\n",
                  (double)(clock_ns() - t0) / 1e6, c[0].msg);
    for (int i = 0; i < 2; i++)
        assert_true(pid_gone_within(running[i], 3000));
    int z, kids = count_children(&z);
    assert_int_equal(kids - z, 0);
    /* The running jobs were killed before their side effect; the queued
     * ones never started. */
    assert_int_equal(weft_sleep_ms(1000), 0);
    assert_int_equal(atomic_load(&sh->marker), 0);
    assert_int_equal(atomic_load(&sh->started), 2);
    int st;
    assert_int_equal(weft_process_pool_run(pool, job_mark, NULL, 0, NULL, &st, NULL), -ESHUTDOWN);
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.kills, 2);
    assert_int_equal(s.crashes, 0);
    weft_process_pool_free(pool);
    snap after = snap_take();
    assert_int_equal(after.fds, before.fds);
    assert_int_equal(after.children, before.children);
    return 0;
}

static void test_shutdown_cancel(void **state)
{
    (void)state;
    run_checked(shutdown_cancel_main, NULL);
}

/* Shutdown with nothing running, and free without shutdown of a pool never
 * used, leave nothing. */
static int shutdown_idle_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 3});
    expect_live_workers(3);
    pool_finish(pool, &before);

    pool = pool_new_ok(&(weft_process_pool_opts){.workers = 3});
    expect_live_workers(3);
    weft_process_pool_free(pool); /* never used, no shutdown: free kills and reaps */
    snap after = snap_take();
    assert_int_equal(after.fds, before.fds);
    assert_int_equal(after.children, before.children);
    weft_process_pool_free(NULL);
    return 0;
}

static void test_shutdown_idle(void **state)
{
    (void)state;
    run_checked(shutdown_idle_main, NULL);
}

/* Shut down and free a pool right after a job whose worker is being
 * replaced — recycled (max_jobs_per_worker = 1), crashed, killed for a
 * timeout or a cancellation: the replacement, perhaps still under way, must
 * not outlive the pool (no use after free, no worker forked afterwards, no
 * child left behind). */
enum { AFTER_RECYCLE, AFTER_CRASH, AFTER_TIMEOUT, AFTER_CANCEL };
static const char *const after_name[] = {"a recycle", "a crash", "a timeout", "a cancellation"};

static int shutdown_right_after_main(void *arg)
{
    int kind = (int)(intptr_t)arg;
    shared_reset();
    snap before = snap_take();
    for (int round = 0; round < 10; round++) {
        weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){
            .workers = 1, .max_jobs_per_worker = kind == AFTER_RECYCLE ? 1 : 0});
        if (kind == AFTER_RECYCLE) {
            inc_ok(pool, round);
        } else if (kind == AFTER_CRASH) {
            pcall c = call_of(pool, job_crash, CRASH_SEGV);
            do_pcall(&c);
            assert_int_equal(c.rc, WEFT_ECRASHED);
        } else if (kind == AFTER_TIMEOUT) {
            pcall c = call_of(pool, job_forever, 0);
            c.deadline_ms = 30;
            do_pcall(&c);
            assert_int_equal(c.rc, -ETIMEDOUT);
        } else {
            int started = atomic_load(&sh->started);
            pcall c = call_of(pool, job_forever, 0);
            weft_task *t = spawn_call(&c);
            await_at_least(&sh->started, started + 1);
            weft_cancel(t);
            assert_int_equal(join_ok(t), 0);
            assert_int_equal(c.rc, -ECANCELED);
        }
        assert_int_equal(weft_process_pool_shutdown(pool), 0);
        /* "Stop the workers and wait until they have exited." */
        int z, kids = count_children(&z);
        if (kids - z != 0)
            fail_msg("after %s, shutdown returned with %d live worker(s)", after_name[kind],
                     kids - z);
        weft_process_pool_free(pool);
        /* Let anything the pool left behind run now, inside this test. */
        assert_int_equal(weft_sleep_ms(50), 0);
        snap after = snap_take();
        assert_int_equal(after.fds, before.fds);
        assert_int_equal(after.children, before.children);
    }
    return 0;
}

static void test_shutdown_right_after_recycle(void **state)
{
    (void)state;
    run_checked(shutdown_right_after_main, (void *)(intptr_t)AFTER_RECYCLE);
}

static void test_shutdown_right_after_crash(void **state)
{
    (void)state;
    run_checked(shutdown_right_after_main, (void *)(intptr_t)AFTER_CRASH);
}

static void test_shutdown_right_after_timeout(void **state)
{
    (void)state;
    run_checked(shutdown_right_after_main, (void *)(intptr_t)AFTER_TIMEOUT);
}

static void test_shutdown_right_after_cancel(void **state)
{
    (void)state;
    run_checked(shutdown_right_after_main, (void *)(intptr_t)AFTER_CANCEL);
}

/* ------------------------------------------------------------ leaks after trouble */

static int trouble_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){
        .workers = 2, .max_jobs_per_worker = 3, .max_output = 100});
    for (int round = 0; round < 3; round++) {
        /* a crash of each kind */
        for (int kind = CRASH_SEGV; kind <= CRASH_EXIT7; kind++) {
            pcall c = call_of(pool, job_crash, kind);
            do_pcall(&c);
            assert_int_equal(c.rc, WEFT_ECRASHED);
        }
        /* a timeout */
        pcall d = call_of(pool, job_forever, 0);
        d.deadline_ms = 50;
        do_pcall(&d);
        assert_int_equal(d.rc, -ETIMEDOUT);
        /* a cancellation */
        int started = atomic_load(&sh->started);
        pcall k = call_of(pool, job_forever, 0);
        weft_task *kt = spawn_call(&k);
        await_at_least(&sh->started, started + 1);
        weft_cancel(kt);
        assert_int_equal(join_ok(kt), 0);
        assert_int_equal(k.rc, -ECANCELED);
        /* too much output */
        size_t n = 101;
        pcall b = call_of(pool, job_bytes, 0);
        b.in = &n;
        b.in_len = sizeof n;
        do_pcall(&b);
        assert_int_equal(b.rc, -E2BIG);
        weft_bytes_free(&b.out);
        /* recycling */
        for (int i = 0; i < 7; i++)
            inc_ok(pool, i);
    }
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.crashes, 9);
    assert_int_equal(s.kills, 6);
    assert_true(s.recycles >= 3);
    expect_live_workers(2);
    pool_finish(pool, &before);
    return 0;
}

static void test_no_leaks_after_trouble(void **state)
{
    (void)state;
    run_checked(trouble_main, NULL);
}

/* ------------------------------------------------------------ workers die with the parent */

static int orphan_child_main(void *arg)
{
    (void)arg;
    weft_process_pool *pool = weft_process_pool_new(&(weft_process_pool_opts){.workers = 3});
    if (!pool)
        _exit(2);
    static pcall c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (pcall){.pool = pool, .fn = job_forever};
        weft_task *t = weft_spawn(do_pcall, &c[i], NULL);
        if (!t)
            _exit(3);
        weft_detach(t);
    }
    weft_sleep_ms(60000);
    _exit(4);
}

static void test_workers_die_with_parent(void **state)
{
    (void)state;
    shared_reset();
    /* As a subreaper, the orphaned workers become our children: we can
     * reap them and see what killed them. */
    bool reaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        setpgid(0, 0);
        weft_run(orphan_child_main, NULL);
        _exit(5);
    }
    int64_t give_up = clock_ns() + 10000 * MS;
    while (atomic_load(&sh->started) < 3 && clock_ns() < give_up)
        usleep(1000);
    assert_int_equal(atomic_load(&sh->started), 3);
    pid_t w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = atomic_load(&sh->pids[i]);
        assert_true(w[i] > 0 && w[i] != child);
    }
    assert_int_equal(kill(child, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* The busy workers would never return by themselves (pause loop):
     * only PR_SET_PDEATHSIG ends them. */
    bool gone[3] = {false, false, false};
    int sig[3] = {0, 0, 0};
    give_up = clock_ns() + 3000 * MS;
    for (;;) {
        bool all = true;
        for (int i = 0; i < 3; i++) {
            if (gone[i])
                continue;
            if (reaper) {
                int ws;
                if (waitpid(w[i], &ws, WNOHANG) == w[i]) {
                    gone[i] = true;
                    sig[i] = WIFSIGNALED(ws) ? WTERMSIG(ws) : -1;
                }
            } else if (kill(w[i], 0) < 0 && errno == ESRCH) {
                gone[i] = true;
            }
            all = all && gone[i];
        }
        if (all || clock_ns() > give_up)
            break;
        usleep(5000);
    }
    int64_t waited = clock_ns() - (give_up - 3000 * MS);
    for (int i = 0; i < 3; i++) {
        if (!gone[i]) { /* clean up before failing */
            kill(w[i], SIGKILL);
            if (reaper)
                waitpid(w[i], NULL, 0);
        }
    }
    if (reaper)
        prctl(PR_SET_CHILD_SUBREAPER, 0);
    print_message("workers gone %.0f ms after their parent\n", (double)waited / 1e6);
    for (int i = 0; i < 3; i++) {
        assert_true(gone[i]);
        if (reaper)
            assert_int_equal(sig[i], SIGKILL);
    }
}

/* ------------------------------------------------------------ a large payload */

static int large_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    size_t len = (size_t)64 << 20;
    unsigned char *in = pattern_new(len, 7);
    weft_bytes out = {0};
    int st = INT_MIN;
    int64_t t0 = clock_ns();
    assert_int_equal(weft_process_pool_run(pool, job_echo, in, len, &out, &st, NULL), 0);
    print_message("64 MiB echo in %.0f ms\n", (double)(clock_ns() - t0) / 1e6);
    assert_int_equal(st, (int)len);
    assert_int_equal(out.len, len);
    assert_true(memcmp(out.data, in, len) == 0);
    weft_bytes_free(&out);
    free(in);
    inc_ok(pool, 1);
    pool_finish(pool, &before);
    return 0;
}

static void test_large_payload(void **state)
{
    (void)state;
    run_checked(large_main, NULL);
}

/* ------------------------------------------------------------ misuse */

typedef struct posted {
    weft_process_pool *pool;
    int rc, shut_rc;
    weft_process_pool *made;
    atomic_int ran;
} posted;

static void posted_call(void *arg)
{
    posted *p = arg;
    int x = 1, st = INT_MIN;
    p->rc = weft_process_pool_run(p->pool, job_inc, &x, sizeof x, NULL, &st, NULL);
    /* A posted call runs on the loop: it may make a pool. */
    p->made = weft_process_pool_new(&(weft_process_pool_opts){.workers = 1});
    atomic_store(&p->ran, 1);
}

static int misuse_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    int x = 1, st = INT_MIN;
    weft_bytes out = {0};
    assert_int_equal(weft_process_pool_run(NULL, job_inc, &x, sizeof x, &out, &st, NULL),
                     -EINVAL);
    assert_int_equal(weft_process_pool_run(pool, NULL, &x, sizeof x, &out, &st, NULL), -EINVAL);
    assert_int_equal(weft_process_pool_run(pool, job_inc, NULL, 4, &out, &st, NULL), -EINVAL);
    assert_int_equal(st, INT_MIN);
    assert_int_equal(out.len, 0);

    /* Outside a task (a posted call on the loop): WEFT_ENOTASK. */
    posted p = {.pool = pool, .rc = 1};
    assert_int_equal(weft_loop_post(weft_loop_current(), posted_call, &p), 0);
    await_at_least(&p.ran, 1);
    assert_int_equal(p.rc, WEFT_ENOTASK);
    assert_non_null(p.made);
    inc_ok(p.made, 7);
    assert_int_equal(weft_process_pool_shutdown(p.made), 0);
    weft_process_pool_free(p.made);

    inc_ok(pool, 2); /* none of that hurt the pool */
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.jobs, 1);
    pool_finish(pool, &before);
    return 0;
}

static void test_misuse(void **state)
{
    (void)state;
    run_checked(misuse_main, NULL);
    /* No loop on this thread: no pool. */
    assert_null(weft_process_pool_new(NULL));
    print_message("outside a loop: %s\n", weft_errmsg());
    assert_non_null(strstr(weft_errmsg(), "loop"));
    assert_null(weft_process_pool_new(&(weft_process_pool_opts){.workers = 2}));
    assert_int_equal(count_children(NULL), 0);
}

/* A pool belongs to the loop that made it: a task of another thread's
 * loop gets -EINVAL (and the pool is untouched). */
typedef struct foreign {
    weft_process_pool *pool;
    int rc;
    char msg[256];
    atomic_int finished;
} foreign;

static int foreign_main(void *arg)
{
    foreign *f = arg;
    int x = 1, st = INT_MIN;
    f->rc = weft_process_pool_run(f->pool, job_inc, &x, sizeof x, NULL, &st, NULL);
    snprintf(f->msg, sizeof f->msg, "%s", weft_errmsg());
    return 0;
}

static void *foreign_thread(void *arg)
{
    foreign *f = arg;
    weft_run(foreign_main, f);
    atomic_store(&f->finished, 1);
    return NULL;
}

static int other_loop_main(void *arg)
{
    (void)arg;
    shared_reset();
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    foreign f = {.pool = pool, .rc = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, foreign_thread, &f), 0);
    await_at_least(&f.finished, 1);
    pthread_join(th, NULL);
    assert_int_equal(f.rc, -EINVAL);
    print_message("another loop: %s\n", f.msg);
    inc_ok(pool, 1);
    weft_process_pool_stats s = stats_of(pool);
    assert_int_equal(s.jobs, 1);
    pool_finish(pool, &before);
    return 0;
}

static void test_other_loop(void **state)
{
    (void)state;
    run_checked(other_loop_main, NULL);
}

/* ------------------------------------------------------------ workers killed from outside */

/*
 * A worker killed by someone else (the OOM killer, an operator) must not
 * take the program down: writing to its socket must not raise SIGPIPE
 * (main keeps the default SIGPIPE action, as most programs
 * do).
 */
static int inc_rc(weft_process_pool *pool, int x)
{
    int st = INT_MIN;
    int rc = weft_process_pool_run(pool, job_inc, &x, sizeof x, NULL, &st, NULL);
    if (rc == 0)
        assert_int_equal(st, x + 1);
    return rc;
}

/* Whether pid is dead (a zombie waiting for the pool, or reaped). */
static bool pid_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strrchr(buf, ')');
    return !p || p[1] == 0 || p[2] == 'Z' || p[2] == 'X';
}

/* The only worker is SIGKILLed while idle; then jobs are submitted. */
static int idle_killed_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    weft_bytes out = {0};
    assert_int_equal(weft_process_pool_run(pool, job_pid, NULL, 0, &out, NULL, NULL), 0);
    pid_t w;
    assert_int_equal(out.len, sizeof w);
    memcpy(&w, out.data, sizeof w);
    weft_bytes_free(&out);
    assert_int_equal(kill(w, SIGKILL), 0);
    for (int i = 0; i < 2000 && !pid_dead(w); i++)
        weft_sleep_ms(1);
    assert_true(pid_dead(w));
    /* That worker ran no job when it died: the next job may fail with
     * WEFT_ECRASHED or run on a replacement, but the program lives on. */
    int rc = inc_rc(pool, 1);
    print_message("the job after the idle worker's death: %s%s%s\n", weft_strerror(rc),
                  rc ? ": " : "", rc ? weft_errmsg() : "");
    assert_true(rc == 0 || rc == WEFT_ECRASHED);
    for (int i = 0; i < 10; i++)
        assert_int_equal(inc_rc(pool, i), 0);
    expect_live_workers(1);
    pool_finish(pool, &before);
    return 0;
}

/* The only worker is stopped, a job with a large input is sent (the
 * socket fills up), and the worker is killed mid-transfer.  The job never
 * started: it may fail with WEFT_ECRASHED or be run by the replacement. */
static int killed_mid_input_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    weft_process_pool *pool = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    weft_bytes out = {0};
    assert_int_equal(weft_process_pool_run(pool, job_pid, NULL, 0, &out, NULL, NULL), 0);
    pid_t w;
    assert_int_equal(out.len, sizeof w);
    memcpy(&w, out.data, sizeof w);
    weft_bytes_free(&out);
    assert_int_equal(kill(w, SIGSTOP), 0);
    size_t len = (size_t)8 << 20;
    static pcall c;
    c = (pcall){.pool = pool, .fn = job_echo, .in = pattern_new(len, 3), .in_len = len,
                .deadline_ms = 15000};
    weft_task *t = spawn_call(&c);
    assert_int_equal(weft_sleep_ms(100), 0); /* the caller is blocked writing the input */
    assert_int_equal(kill(w, SIGKILL), 0);
    assert_int_equal(join_ok(t), 0);
    print_message("the job whose worker was killed mid-input: %s%s%s\n", weft_strerror(c.rc),
                  c.rc ? ": " : "", c.msg);
    if (c.rc == 0) {
        assert_int_equal(c.status, (int)len);
        assert_int_equal(c.out.len, len);
        assert_true(memcmp(c.out.data, c.in, len) == 0);
    } else {
        assert_int_equal(c.rc, WEFT_ECRASHED);
        assert_true(strstr(c.msg, "signal 9") || strstr(c.msg, "Killed"));
    }
    free((void *)c.in);
    weft_bytes_free(&c.out);
    for (int i = 0; i < 10; i++)
        assert_int_equal(inc_rc(pool, i), 0);
    assert_int_equal(stats_of(pool).workers, 1);
    expect_live_workers(1);
    pool_finish(pool, &before);
    return 0;
}

static void test_idle_worker_killed(void **state)
{
    (void)state;
    run_checked(idle_killed_main, NULL);
}

static void test_worker_killed_mid_input(void **state)
{
    (void)state;
    run_checked(killed_mid_input_main, NULL);
}

/* ------------------------------------------------------------ two pools */

/* Two pools on one loop: the second pool's workers must not hold the first
 * pool's sockets ("weft's own fds are closed"), or the first pool's workers
 * never see their socket close, and its shutdown and recycling stall. */
static int two_pools_main(void *arg)
{
    (void)arg;
    snap before = snap_take();
    int parent_sockets, parent_epolls;
    count_fd_kinds(&parent_sockets, &parent_epolls);
    weft_process_pool *a = pool_new_ok(&(weft_process_pool_opts){.workers = 1});
    weft_process_pool *r =
        pool_new_ok(&(weft_process_pool_opts){.workers = 1, .max_jobs_per_worker = 1});
    weft_process_pool *b = pool_new_ok(&(weft_process_pool_opts){.workers = 1});

    weft_bytes out = {0};
    int fd = -1;
    assert_int_equal(weft_process_pool_run(b, job_env, &fd, sizeof fd, &out, NULL, NULL), 0);
    worker_env env;
    assert_int_equal(out.len, sizeof env);
    memcpy(&env, out.data, sizeof env);
    weft_bytes_free(&out);
    print_message("a worker of the last pool holds %d sockets (its own: 1; the parent's "
                  "others: %d)\n", env.sockets, parent_sockets);

    /* Pool r recycles its worker after every job. */
    int64_t t0 = clock_ns();
    inc_ok(r, 1);
    int64_t recycling = clock_ns() - t0;
    inc_ok(a, 1);
    t0 = clock_ns();
    assert_int_equal(weft_process_pool_shutdown(a), 0);
    int64_t shutdown = clock_ns() - t0;
    print_message("a recycling job took %.0f ms, shutting down the first pool %.0f ms\n",
                  (double)recycling / 1e6, (double)shutdown / 1e6);
    weft_process_pool_free(a);
    assert_int_equal(weft_process_pool_shutdown(r), 0);
    weft_process_pool_free(r);
    pool_finish(b, &before);

    assert_int_equal(env.sockets, parent_sockets + 1);
    assert_true(recycling < 4000 * MS);
    assert_true(shutdown < 4000 * MS);
    return 0;
}

static void test_two_pools(void **state)
{
    (void)state;
    run_checked(two_pools_main, NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* what most programs have */
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_other_process),
        cmocka_unit_test(test_idle_worker_death_reaped),
        cmocka_unit_test(test_worker_environment),
        cmocka_unit_test(test_crash_segv),
        cmocka_unit_test(test_crash_abort),
        cmocka_unit_test(test_crash_exit),
        cmocka_unit_test(test_crash_with_jobs_behind),
        cmocka_unit_test(test_timeout_with_jobs_behind),
        cmocka_unit_test(test_cancel_with_jobs_behind),
        cmocka_unit_test(test_deadline_opts),
        cmocka_unit_test(test_deadline_scope),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_buffered_answer_survives_kill),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_expired_before_call),
        cmocka_unit_test(test_cancel_mid_input),
        cmocka_unit_test(test_timeout_mid_input),
        cmocka_unit_test(test_storm),
        cmocka_unit_test(test_storm_recycling),
        cmocka_unit_test(test_many_jobs),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_recycle),
        cmocka_unit_test(test_max_queue),
        cmocka_unit_test(test_shutdown_drain),
        cmocka_unit_test(test_shutdown_cancel),
        cmocka_unit_test(test_shutdown_idle),
        cmocka_unit_test(test_shutdown_right_after_recycle),
        cmocka_unit_test(test_shutdown_right_after_crash),
        cmocka_unit_test(test_shutdown_right_after_timeout),
        cmocka_unit_test(test_shutdown_right_after_cancel),
        cmocka_unit_test(test_no_leaks_after_trouble),
        cmocka_unit_test(test_workers_die_with_parent),
        cmocka_unit_test(test_large_payload),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_other_loop),
        cmocka_unit_test(test_idle_worker_killed),
        cmocka_unit_test(test_worker_killed_mid_input),
        cmocka_unit_test(test_two_pools),
    };
    return run_cases(tests, NULL, NULL);
}
