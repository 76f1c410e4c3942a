/* SPDX-License-Identifier: MIT */
/* Debugging: the slow-task detector, the watchdog, task dumps, SIGQUIT. */
#include <errno.h>
#include <fcntl.h>
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
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ helpers */

/* The log callback may run on the watchdog thread: everything under a lock. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[65536];
static size_t log_len;
static char watchdog_msg[8192];
static atomic_int blocker_done;
static atomic_int watchdog_seen;
static int watchdog_reports;
static bool watchdog_while_blocked;

static void capture_log(const char *msg, void *data)
{
    (void)data;
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(msg);
    if (n > sizeof log_buf - 1 - log_len)
        n = sizeof log_buf - 1 - log_len;
    memcpy(log_buf + log_len, msg, n);
    log_len += n;
    log_buf[log_len] = '\0';
    if (strstr(msg, "is blocking the loop")) {
        atomic_store(&watchdog_seen, 1);
        if (watchdog_reports++ == 0) {
            watchdog_while_blocked = !atomic_load(&blocker_done);
            snprintf(watchdog_msg, sizeof watchdog_msg, "%s", msg);
        }
    }
    pthread_mutex_unlock(&log_lock);
}

static void log_start(void)
{
    pthread_mutex_lock(&log_lock);
    log_len = 0;
    log_buf[0] = '\0';
    watchdog_msg[0] = '\0';
    watchdog_reports = 0;
    watchdog_while_blocked = false;
    pthread_mutex_unlock(&log_lock);
    atomic_store(&blocker_done, 0);
    atomic_store(&watchdog_seen, 0);
    weft_set_log(capture_log, NULL);
}

/* Stop capturing; returns a copy of the log (static buffer). */
static const char *log_stop(void)
{
    static char copy[sizeof log_buf];
    weft_set_log(NULL, NULL);
    pthread_mutex_lock(&log_lock);
    memcpy(copy, log_buf, log_len + 1);
    pthread_mutex_unlock(&log_lock);
    return copy;
}

/* The duration in "task '<name>' ran N ms", or -1. */
static long slow_report_ms(const char *log, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "task '%s' ran ", name);
    const char *p = strstr(log, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static int busy_task(void *arg)
{
    busy_ms((int64_t)(intptr_t)arg);
    return 0;
}

static int quick_task(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        weft_yield();
    return 0;
}

/* Spawn a task with `name` running fn(arg) and join it. */
static int spawn_join(weft_task_fn fn, void *arg, const char *name)
{
    weft_task *t = weft_spawn(fn, arg, &(weft_task_opts){.name = name});
    assert_non_null(t);
    int st = -1;
    assert_int_equal(weft_join(t, &st), 0);
    return st;
}

static int busy_main(void *arg)
{
    (void)arg;
    assert_int_equal(spawn_join(busy_task, (void *)(intptr_t)120, "busy"), 0);
    return 0;
}

/* Run fn(arg) in a forked child whose stderr goes to a pipe; collect that
 * output (NUL-terminated) and the wait status. */
static void run_child(void (*fn)(void *), void *arg, char *out, size_t outsz, int *wstatus)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        alarm(30);
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(p[0], out + len, outsz - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (len += (size_t)n) == outsz - 1)
            break;
    }
    out[len] = '\0';
    close(p[0]);
    assert_int_equal(waitpid(pid, wstatus, 0), pid);
}

/* ------------------------------------------------------------ slow tasks */

/*
 * $WEFT_SLOW_MS counts only while weft_set_slow_ms has never been called in
 * the process (a negative value sets 0, "off", not "back to the
 * environment"), so this test runs first.
 */
static void test_slow_env(void **state)
{
    (void)state;
    setenv("WEFT_SLOW_MS", "50", 1);
    assert_int_equal(weft_slow_ms(), 50);
    log_start();
    assert_int_equal(weft_run(busy_main, NULL), 0);
    const char *log = log_stop();
    assert_true(slow_report_ms(log, "busy") >= 100);
    assert_non_null(strstr(log, "threshold 50 ms"));

    setenv("WEFT_SLOW_MS", "0", 1);
    assert_int_equal(weft_slow_ms(), 0);
    log_start();
    assert_int_equal(weft_run(busy_main, NULL), 0);
    log = log_stop();
    assert_null(strstr(log, "'busy'"));

    /* A malformed value is reported and the default applies. */
    setenv("WEFT_SLOW_MS", "fast", 1);
    log_start();
    assert_int_equal(weft_slow_ms(), 100);
    log = log_stop();
    assert_non_null(strstr(log, "WEFT_SLOW_MS='fast'"));

    unsetenv("WEFT_SLOW_MS");
    assert_int_equal(weft_slow_ms(), 100);
}

static void test_slow_task_reported(void **state)
{
    (void)state;
    weft_set_slow_ms(50);
    assert_int_equal(weft_slow_ms(), 50);
    log_start();
    assert_int_equal(weft_run(busy_main, NULL), 0);
    const char *log = log_stop();
    long ms = slow_report_ms(log, "busy");
    if (ms < 0)
        print_message("log:\n%s\n", log);
    assert_true(ms >= 100);
    assert_true(ms < 60000);
    assert_non_null(strstr(log, "threshold 50 ms"));
}

static int quick_main(void *arg)
{
    (void)arg;
    assert_int_equal(spawn_join(quick_task, NULL, "quick"), 0);
    return 0;
}

static void test_quick_task_not_reported(void **state)
{
    (void)state;
    weft_set_slow_ms(50);
    log_start();
    assert_int_equal(weft_run(quick_main, NULL), 0);
    const char *log = log_stop();
    assert_null(strstr(log, "'quick'"));
}

static void test_slow_off(void **state)
{
    (void)state;
    weft_set_slow_ms(0);
    assert_int_equal(weft_slow_ms(), 0);
    log_start();
    assert_int_equal(weft_run(busy_main, NULL), 0);
    const char *log = log_stop();
    assert_null(strstr(log, "'busy'"));
}

/* weft_set_slow_ms applies to the caller's running loop at once. */
static int set_in_loop_main(void *arg)
{
    (void)arg;
    assert_int_equal(spawn_join(busy_task, (void *)(intptr_t)120, "busy_off"), 0);
    weft_set_slow_ms(50);
    assert_int_equal(spawn_join(busy_task, (void *)(intptr_t)120, "busy_on"), 0);
    return 0;
}

static void test_slow_set_in_loop(void **state)
{
    (void)state;
    weft_set_slow_ms(0);
    log_start();
    assert_int_equal(weft_run(set_in_loop_main, NULL), 0);
    const char *log = log_stop();
    assert_null(strstr(log, "'busy_off'"));
    assert_true(slow_report_ms(log, "busy_on") >= 100);
}

/* ------------------------------------------------------------ watchdog */

/* Not static: -rdynamic then names it in backtraces. */
int weft_test_blocker(void *arg);
int weft_test_blocker(void *arg)
{
    (void)arg;
    /* Where the watchdog falls back to its signal (valgrind, qemu-user),
     * usleep is cut short: block for the full 300 ms all the same, and on a
     * slow machine on until the report has come (at most 5 s). */
    int64_t start = clock_ns();
    for (;;) {
        int64_t ran = clock_ns() - start;
        if (ran >= 5000 * 1000000LL || (ran >= 300 * 1000000LL && atomic_load(&watchdog_seen)))
            break;
        usleep(ran < 300 * 1000000LL ? (useconds_t)((300 * 1000000LL - ran) / 1000 + 1) : 10000);
    }
    atomic_store(&blocker_done, 1);
    return 0;
}

static int watchdog_main(void *arg)
{
    (void)arg;
    assert_int_equal(spawn_join(weft_test_blocker, NULL, "blocker"), 0);
    return 0;
}

static void test_watchdog(void **state)
{
    (void)state;
    weft_set_slow_ms(50);
    setenv("WEFT_DEBUG", "1", 1);
    log_start();
    int rc = weft_run(watchdog_main, NULL);
    unsetenv("WEFT_DEBUG");
    const char *log = log_stop();
    assert_int_equal(rc, 0);
    pthread_mutex_lock(&log_lock);
    char msg[sizeof watchdog_msg];
    memcpy(msg, watchdog_msg, sizeof msg);
    int reports = watchdog_reports;
    bool while_blocked = watchdog_while_blocked;
    pthread_mutex_unlock(&log_lock);
    if (reports == 0)
        print_message("log:\n%s\n", log);
    assert_int_equal(reports, 1); /* once per stuck episode */
    assert_true(while_blocked);
    assert_non_null(strstr(msg, "task 'blocker' is blocking the loop"));
    const char *bt = strstr(msg, "\n    #");
    assert_non_null(bt);
    if (getenv("WEFT_TEST_SHOW") || !strstr(bt, "usleep") || !strstr(bt, "weft_test_blocker"))
        print_message("watchdog report:\n%s\n", msg);
    assert_non_null(strstr(bt, "usleep"));
    assert_non_null(strstr(bt, "weft_test_blocker"));
    /* The first frame is the interrupted call itself (a *sleep function),
     * not the signal handler or its trampoline. */
    const char *f0 = strstr(msg, "    #0 ");
    assert_non_null(f0);
    const char *f0_end = strchr(f0, '\n');
    assert_non_null(f0_end);
    char first[256];
    snprintf(first, sizeof first, "%.*s", (int)(f0_end - f0), f0);
    if (!strstr(first, "sleep"))
        print_message("watchdog report:\n%s\n", msg);
    assert_non_null(strstr(first, "sleep"));
    /* The detector reports the same task after the fact. */
    assert_true(slow_report_ms(log, "blocker") >= 250);
}

/* ------------------------------------------------------------ dumps */

static int sleep_long(void *arg)
{
    (void)arg;
    return weft_sleep_ms(60000);
}

static int read_pipe(void *arg)
{
    int fd = *(int *)arg;
    int rc = weft_wait_fd(fd, WEFT_READABLE, WEFT_NO_DEADLINE);
    if (rc < 0)
        return rc;
    char c;
    return read(fd, &c, 1) == 1 && c == 'x' ? 0 : -EIO;
}

static int join_arg(void *arg)
{
    int st = 0;
    int rc = weft_join(arg, &st);
    return rc < 0 ? rc : st;
}

/* The dump line of the task named `name`, copied into `line`. */
static bool dump_line(const char *dump, const char *name, char *line, size_t n)
{
    for (const char *p = dump; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p;
        while (*q == ' ')
            q++;
        size_t nl = strlen(name);
        if (strncmp(q, name, nl) == 0 && q[nl] == ' ') {
            snprintf(line, n, "%.*s", (int)len, p);
            return true;
        }
        p += len + (eol ? 1 : 0);
    }
    return false;
}

static int dump_main(void *arg)
{
    (void)arg;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_set_nonblocking(p[0]), 0);
    weft_task *sleeper = weft_spawn(sleep_long, NULL, &(weft_task_opts){.name = "sleeper"});
    weft_task *reader = weft_spawn(read_pipe, &p[0], &(weft_task_opts){.name = "reader"});
    weft_task *x = weft_spawn(sleep_long, NULL, &(weft_task_opts){.name = "x"});
    weft_task *joiner = weft_spawn(join_arg, x, &(weft_task_opts){.name = "joiner"});
    assert_non_null(sleeper);
    assert_non_null(reader);
    assert_non_null(x);
    assert_non_null(joiner);
    assert_int_equal(weft_sleep_ms(5), 0); /* every task runs up to its wait */
    weft_task *fresh = weft_spawn(sleep_long, NULL, &(weft_task_opts){.name = "fresh"});
    assert_non_null(fresh);

    char *dump = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&dump, &size);
    assert_non_null(f);
    weft_dump_tasks(f);
    fclose(f);
    print_message("%s", dump);

    char line[256], want[64];
    assert_non_null(strstr(dump, "6 live task(s)"));
    assert_true(dump_line(dump, "main", line, sizeof line));
    assert_non_null(strstr(line, "running now"));
    assert_true(dump_line(dump, "sleeper", line, sizeof line));
    assert_non_null(strstr(line, "waiting"));
    const char *s = strstr(line, "waits on sleep (");
    assert_non_null(s);
    long left = strtol(s + strlen("waits on sleep ("), NULL, 10);
    assert_true(left > 30000 && left <= 60000);
    assert_true(dump_line(dump, "reader", line, sizeof line));
    snprintf(want, sizeof want, "waits on fd %d readable", p[0]);
    assert_non_null(strstr(line, want));
    assert_true(dump_line(dump, "joiner", line, sizeof line));
    assert_non_null(strstr(line, "waits on join task 'x'"));
    assert_true(dump_line(dump, "x", line, sizeof line));
    assert_non_null(strstr(line, "waits on sleep"));
    assert_true(dump_line(dump, "fresh", line, sizeof line));
    assert_non_null(strstr(line, "never ran"));
    assert_null(strstr(line, "waits on"));
    free(dump);

    /* Wake everybody and collect them. */
    assert_int_equal(write(p[1], "x", 1), 1);
    weft_cancel(sleeper);
    weft_cancel(x);
    weft_cancel(fresh);
    int st = 1;
    assert_int_equal(weft_join(reader, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_join(sleeper, &st), 0);
    assert_int_equal(st, -ECANCELED);
    assert_int_equal(weft_join(joiner, &st), 0);
    assert_int_equal(st, -ECANCELED); /* x's status */
    assert_int_equal(weft_join(fresh, &st), 0);
    assert_int_equal(st, -ECANCELED);
    weft_close(p[0]);
    close(p[1]);
    return 0;
}

static void test_dump_tasks(void **state)
{
    (void)state;
    assert_int_equal(weft_run(dump_main, NULL), 0);

    /* Outside a loop: nothing. */
    char *dump = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&dump, &size);
    assert_non_null(f);
    weft_dump_tasks(f);
    fclose(f);
    assert_int_equal(size, 0);
    free(dump);
}

/* ------------------------------------------------------------ unjoined tasks */

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }

static int unjoined_main(void *arg)
{
    (void)arg;
    assert_non_null(weft_spawn(ret_arg, (void *)7, &(weft_task_opts){.name = "orphan"}));
    weft_detach(weft_spawn(ret_arg, (void *)8, &(weft_task_opts){.name = "loner"}));
    assert_int_equal(spawn_join(ret_arg, (void *)9, "joined"), 9);
    return 0;
}

static void test_unjoined_reported(void **state)
{
    (void)state;
    setenv("WEFT_DEBUG", "1", 1);
    log_start();
    int rc = weft_run(unjoined_main, NULL);
    unsetenv("WEFT_DEBUG");
    const char *log = log_stop();
    assert_int_equal(rc, 0);
    if (!strstr(log, "task 'orphan' finished with status 7 but was never joined"))
        print_message("log:\n%s\n", log);
    assert_non_null(strstr(log, "task 'orphan' finished with status 7 but was never joined"));
    assert_null(strstr(log, "'loner'"));
    assert_null(strstr(log, "'joined'"));
    assert_null(strstr(log, "'main'"));
}

/* ------------------------------------------------------------ SIGQUIT */

static int quit_main(void *arg)
{
    if (*(int *)arg) /* debug mode switched on inside the running loop */
        weft_debug_enable();
    weft_task *t = weft_spawn(sleep_long, NULL, &(weft_task_opts){.name = "snoozer"});
    if (!t)
        return -1;
    raise(SIGQUIT);
    weft_sleep_ms(100); /* the loop reads the signal meanwhile and dumps */
    weft_cancel(t);
    weft_join(t, NULL);
    return 0;
}

static void quit_child(void *arg)
{
    if (!*(int *)arg)
        weft_debug_enable();
    int rc = weft_run(quit_main, arg);
    fprintf(stderr, "child: weft_run returned %d\n", rc);
    _exit(rc == 0 ? 0 : 1);
}

static void check_quit_dump(int inside)
{
    char out[8192];
    int ws;
    run_child(quit_child, &inside, out, sizeof out, &ws);
    if (!WIFEXITED(ws) || !strstr(out, "live task(s)"))
        print_message("child stderr:\n%s\n", out);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    const char *d = strstr(out, "2 live task(s)");
    assert_non_null(d);
    char line[256];
    assert_true(dump_line(d, "snoozer", line, sizeof line));
    assert_non_null(strstr(line, "waits on sleep"));
    assert_true(dump_line(d, "main", line, sizeof line));
    assert_non_null(strstr(line, "waits on sleep"));
}

static void test_sigquit_dump(void **state)
{
    (void)state;
    check_quit_dump(0);
}

static void test_sigquit_dump_enabled_in_loop(void **state)
{
    (void)state;
    check_quit_dump(1);
}

/* ------------------------------------------------------------ signals */

/* The watchdog thread must not take signals the loop routes to its
 * signalfd: a process-directed signal would kill the process instead. */
static int sig_waiter(void *arg)
{
    return weft_signal_wait(arg, weft_deadline_ms(10000));
}

static int sig_main(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    weft_task *t = weft_spawn(sig_waiter, &set, NULL);
    if (!t)
        return -1;
    weft_sleep_ms(20); /* the waiter blocks SIGUSR1 in the loop thread */
    kill(getpid(), SIGUSR1);
    int st = 0;
    if (weft_join(t, &st) < 0)
        return -2;
    return st == SIGUSR1 ? 0 : -3;
}

static void sig_child(void *arg)
{
    (void)arg;
    weft_debug_enable();
    int rc = weft_run(sig_main, NULL);
    fprintf(stderr, "child: weft_run returned %d\n", rc);
    _exit(rc == 0 ? 0 : 1);
}

static void test_debug_mode_keeps_signals(void **state)
{
    (void)state;
    char out[8192];
    int ws;
    run_child(sig_child, NULL, out, sizeof out, &ws);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        print_message("child %s %d, stderr:\n%s\n", WIFEXITED(ws) ? "exited" : "killed by signal",
                      WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), out);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
}

/* ------------------------------------------------------------ watchdog: blocked calls */

/* The watchdog reads a thread blocked in a system call from outside: the
 * call goes on as if nobody had looked.  Each call blocks ~300 ms, the
 * threshold is 50 ms, and the test checks that the report came while the
 * call was blocked (so the watchdog did look) and that the call returned
 * what it returns undisturbed, no earlier than its timeout. */
#define BLOCK_MS 300

static int call_usleep(void)
{
    return usleep(BLOCK_MS * 1000) == 0 ? 0 : errno;
}

static int call_nanosleep(void)
{
    struct timespec ts = {0, BLOCK_MS * 1000000L}, rem;
    return nanosleep(&ts, &rem) == 0 ? 0 : errno;
}

static int call_sleep(void)
{
    return (int)sleep(1); /* the seconds left: 0 unless cut short */
}

static int call_poll(void)
{
    int r = poll(NULL, 0, BLOCK_MS);
    return r == 0 ? 0 : r < 0 ? errno : 1000 + r;
}

static int call_select(void)
{
    struct timeval tv = {0, BLOCK_MS * 1000};
    int r = select(0, NULL, NULL, NULL, &tv);
    return r == 0 ? 0 : r < 0 ? errno : 1000 + r;
}

static int call_recv_timeout(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    struct timeval tv = {0, BLOCK_MS * 1000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    ssize_t r = recv(sv[0], &c, 1, 0);
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    /* undisturbed: the timeout, EAGAIN; a signal would give EINTR */
    return r < 0 && (err == EAGAIN || err == EWOULDBLOCK) ? 0 : r < 0 ? err : 1000;
}

static void *write_later(void *arg)
{
    usleep(BLOCK_MS * 1000);
    (void)!write(*(int *)arg, "x", 1);
    return NULL;
}

static int call_read_pipe(void)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pthread_t th;
    pthread_create(&th, NULL, write_later, &p[1]);
    char c = 0;
    ssize_t r = read(p[0], &c, 1);
    int err = errno;
    pthread_join(th, NULL);
    close(p[0]);
    close(p[1]);
    return r == 1 && c == 'x' ? 0 : r < 0 ? err : 1000;
}

static int (*blocking_call)(void);

static int blocked_call_task(void *arg)
{
    (void)arg;
    int r = blocking_call();
    atomic_store(&blocker_done, 1);
    return r;
}

static int blocked_call_main(void *arg)
{
    (void)arg;
    return spawn_join(blocked_call_task, NULL, "blocked");
}

/* Whether /proc/self/task/<tid>/syscall describes our own threads: not
 * under valgrind or qemu-user, which run the program on threads of their
 * own (the watchdog then falls back to the signal, see debug.h). */
static void *nap_thread(void *arg)
{
    atomic_store((atomic_int *)arg, (int)gettid());
    usleep(200 * 1000);
    return NULL;
}

static bool outside_view_works(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    static atomic_int tid;
    atomic_store(&tid, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, nap_thread, &tid), 0);
    usleep(50 * 1000);
    known = 0;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", atomic_load(&tid));
    FILE *f = fopen(path, "r");
    pthread_attr_t attr;
    if (f && fgets(buf, sizeof buf, f) && pthread_getattr_np(th, &attr) == 0) {
        void *addr;
        size_t size;
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
        /* the second last field: the stack pointer */
        char *fields[10];
        int n = 0;
        for (char *tok = strtok(buf, " \n"); tok && n < 10; tok = strtok(NULL, " \n"))
            fields[n++] = tok;
        if (n >= 3) {
            uintptr_t sp = (uintptr_t)strtoull(fields[n - 2], NULL, 16);
            known = sp >= (uintptr_t)addr && sp < (uintptr_t)addr + size;
        }
    }
    if (f)
        fclose(f);
    pthread_join(th, NULL);
    return known;
}

static void check_call_unchanged(int (*call)(void), const char *name, int64_t min_ms)
{
    if (!outside_view_works()) {
        print_message("skipped: /proc/self/task/<tid>/syscall does not describe this "
                      "program's threads here (valgrind, qemu-user)\n");
        skip();
    }
    weft_set_slow_ms(50);
    setenv("WEFT_DEBUG", "1", 1);
    log_start();
    blocking_call = call;
    int64_t t0 = clock_ns();
    int rc = weft_run(blocked_call_main, NULL);
    int64_t took = clock_ns() - t0;
    unsetenv("WEFT_DEBUG");
    const char *log = log_stop();
    pthread_mutex_lock(&log_lock);
    int reports = watchdog_reports;
    bool while_blocked = watchdog_while_blocked;
    pthread_mutex_unlock(&log_lock);
    if (rc != 0 || reports != 1 || !while_blocked)
        print_message("%s: returned %d after %lld ms; log:\n%s\n", name, rc,
                      (long long)(took / 1000000), log);
    assert_int_equal(reports, 1);
    assert_true(while_blocked);
    assert_int_equal(rc, 0);
    assert_true(took >= min_ms * 1000000);
}

static void test_watchdog_usleep(void **state)
{
    (void)state;
    check_call_unchanged(call_usleep, "usleep", BLOCK_MS);
}

static void test_watchdog_nanosleep(void **state)
{
    (void)state;
    check_call_unchanged(call_nanosleep, "nanosleep", BLOCK_MS);
}

static void test_watchdog_sleep(void **state)
{
    (void)state;
    check_call_unchanged(call_sleep, "sleep", 1000);
}

static void test_watchdog_poll(void **state)
{
    (void)state;
    check_call_unchanged(call_poll, "poll", BLOCK_MS - 10);
}

static void test_watchdog_select(void **state)
{
    (void)state;
    check_call_unchanged(call_select, "select", BLOCK_MS - 10);
}

static void test_watchdog_recv_timeout(void **state)
{
    (void)state;
    check_call_unchanged(call_recv_timeout, "recv with SO_RCVTIMEO", BLOCK_MS - 10);
}

static void test_watchdog_read(void **state)
{
    (void)state;
    check_call_unchanged(call_read_pipe, "read", BLOCK_MS - 10);
}

/* ------------------------------------------------------------ the program's SIGURG */

static atomic_int own_urg;

static void own_urg_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&own_urg, 1);
}

static int urg_main(void *arg)
{
    (void)arg;
    pthread_kill(pthread_self(), SIGURG); /* thread-directed, like the watchdog's */
    kill(getpid(), SIGURG);
    return atomic_load(&own_urg) == 2 ? 0 : 10 + atomic_load(&own_urg);
}

static void urg_child(void *arg)
{
    (void)arg;
    struct sigaction sa, cur;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_urg_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
    weft_debug_enable();
    int rc = weft_run(urg_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "child: weft_run returned %d\n", rc);
        _exit(1);
    }
    /* the loop ended: the program's handler is in place again */
    sigaction(SIGURG, NULL, &cur);
    if (cur.sa_handler != own_urg_handler || (cur.sa_flags & SA_SIGINFO))
        _exit(2);
    raise(SIGURG);
    _exit(atomic_load(&own_urg) == 3 ? 0 : 3);
}

static void test_debug_keeps_program_sigurg(void **state)
{
    (void)state;
    char out[8192];
    int ws;
    run_child(urg_child, NULL, out, sizeof out, &ws);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        print_message("child %s %d, stderr:\n%s\n", WIFEXITED(ws) ? "exited" : "killed by signal",
                      WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), out);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_env), /* first: see there */
        cmocka_unit_test(test_slow_task_reported),
        cmocka_unit_test(test_quick_task_not_reported),
        cmocka_unit_test(test_slow_off),
        cmocka_unit_test(test_slow_set_in_loop),
        cmocka_unit_test(test_watchdog),
        cmocka_unit_test(test_watchdog_usleep),
        cmocka_unit_test(test_watchdog_nanosleep),
        cmocka_unit_test(test_watchdog_sleep),
        cmocka_unit_test(test_watchdog_poll),
        cmocka_unit_test(test_watchdog_select),
        cmocka_unit_test(test_watchdog_recv_timeout),
        cmocka_unit_test(test_watchdog_read),
        cmocka_unit_test(test_dump_tasks),
        cmocka_unit_test(test_unjoined_reported),
        cmocka_unit_test(test_sigquit_dump),
        cmocka_unit_test(test_sigquit_dump_enabled_in_loop),
        cmocka_unit_test(test_debug_mode_keeps_signals),
        cmocka_unit_test(test_debug_keeps_program_sigurg),
    };
    /* It leaves a task unjoined on purpose, to see it reported. */
    static const case_exception leaves[] = {
        {test_unjoined_reported, CASE_LEAVES_TASKS},
    };
    return run_cases_except(tests, NULL, NULL, leaves);
}
