/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the test programs: the runner that gives every test case
 * a process of its own, running a test's main task, spawn and join with
 * bounded waits, time, fds, messages.  Include after cmocka.h.
 *
 * The runner (run_cases, below) replaces cmocka_run_group_tests in every
 * test program's main:
 *   - each test case runs in a forked child, so a failed check (which
 *     aborts the child) or a crash ends that case only, and the next case
 *     starts from a clean process (no loop left behind by a check that
 *     failed inside a task);
 *   - a case passes only if it also ended clean: its loops left no timer
 *     armed and no finished task unjoined, and it closed every fd it opened;
 *   - a case has 300 s (WEFT_TEST_TIMEOUT seconds; ten times that under
 *     valgrind), then its process group is killed and the case fails (under
 *     CTest the program's own, shorter TIMEOUT usually comes first: the
 *     last "[ RUN      ]" line names the case that hung);
 *   - the program exits 0 when every case passed, 77 (skipped) when every
 *     case that ran skipped, 1 otherwise.
 * Environment: WEFT_TEST_FILTER=<glob> runs the cases whose name matches;
 * WEFT_TEST_NOFORK=1 runs cmocka's own runner in one process instead
 * (for a debugger; no isolation and no end-of-case checks).
 */
#ifndef WEFT_TESTS_HELPERS_H
#define WEFT_TESTS_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include <weft.h>

#include "../src/core/leftovers.h"

#define MS 1000000LL
/* A main task's status meaning "skip this test" (cmocka's skip() must run
 * outside the task). */
#define SKIP_STATUS 77

/* ------------------------------------------------------------ time */

static inline int64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Burn CPU (without suspending) for `ns` / `ms` of real time. */
static inline void busy_ns(int64_t ns)
{
    int64_t end = clock_ns() + ns;
    while (clock_ns() < end) {
    }
}

static inline void busy_ms(int64_t ms) { busy_ns(ms * MS); }

/* ------------------------------------------------------------ the runner */

/* True in a test case's own process (see run_cases). */
static bool case_forked_;

/* skip() from anywhere, even inside a task: in a case's own process it ends
 * the process with 77, which the runner reports as skipped. */
static inline void case_skip_(const char *file, int line)
{
    if (case_forked_) {
        fflush(stdout);
        fflush(stderr);
        _exit(SKIP_STATUS);
    }
    _skip(file, line);
}
#undef skip
#define skip() case_skip_(__FILE__, __LINE__)

/* What a case may leave behind on purpose, named in the table given to
 * run_cases_except. */
enum {
    CASE_LEAVES_TIMERS = 1u << 0, /* a timer armed when its loop ends */
    CASE_LEAVES_TASKS = 1u << 1,  /* a finished task never joined */
    CASE_LEAVES_FDS = 1u << 2,    /* an fd open when the case ends */
};

typedef struct case_exception {
    CMUnitTestFunction test;
    unsigned leaves;
} case_exception;

/* The fds open now, as a bitmap of the first CASE_MAX_FD numbers. */
#define CASE_MAX_FD 4096
typedef struct case_fds {
    unsigned char open[CASE_MAX_FD / 8];
} case_fds;

static inline void case_fds_take(case_fds *s)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd < 0 || fd >= CASE_MAX_FD || fd == dirfd(d))
            continue;
        s->open[fd / 8] |= (unsigned char)(1u << (fd % 8));
    }
    closedir(d);
}

/* Print the fds open in `after` and not in `before`; returns their count. */
static inline int case_fds_report(const case_fds *before, const case_fds *after)
{
    int n = 0;
    for (int fd = 0; fd < CASE_MAX_FD; fd++) {
        unsigned char bit = (unsigned char)(1u << (fd % 8));
        if (!(after->open[fd / 8] & bit) || (before->open[fd / 8] & bit))
            continue;
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, target, sizeof target - 1);
        target[len > 0 ? len : 0] = '\0';
        fprintf(stderr, "the test case left fd %d open (%s)\n", fd, target);
        n++;
    }
    return n;
}

/* In the case's own process: run it, check that it ended clean, exit. */
static inline void case_child_(const struct CMUnitTest *t, void *state, unsigned leaves,
                               pid_t runner)
{
    case_forked_ = true;
    /* Its own process group (a stray kill(0, ...) stays in the case; a
     * timeout kills the group), and gone if the runner dies. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != runner)
        _exit(1);
    /* A failed check prints cmocka's message and aborts the process. */
    setenv("CMOCKA_TEST_ABORT", "1", 1);
    setvbuf(stdout, NULL, _IOLBF, 0);

    case_fds fds0, fds1;
    case_fds_take(&fds0);
    weft__leftovers left0, left1;
    weft__leftovers_get(&left0);

    if (t->setup_func && t->setup_func(&state) != 0) {
        fprintf(stderr, "the test case's setup failed\n");
        exit(1);
    }
    t->test_func(&state);
    if (t->teardown_func && t->teardown_func(&state) != 0) {
        fprintf(stderr, "the test case's teardown failed\n");
        exit(1);
    }

    int bad = 0;
    weft__leftovers_get(&left1);
    uint64_t timers = left1.timers - left0.timers, tasks = left1.unjoined - left0.unjoined;
    if (timers && !(leaves & CASE_LEAVES_TIMERS)) {
        fprintf(stderr, "the test case's loops ended with %llu timer(s) still armed\n",
                (unsigned long long)timers);
        bad = 1;
    }
    if (tasks && !(leaves & CASE_LEAVES_TASKS)) {
        fprintf(stderr, "the test case's loops ended with %llu finished task(s) never joined "
                "nor detached (WEFT_DEBUG=1 names them)\n", (unsigned long long)tasks);
        bad = 1;
    }
    if (!(leaves & CASE_LEAVES_FDS)) {
        case_fds_take(&fds1);
        if (case_fds_report(&fds0, &fds1))
            bad = 1;
    }
    fflush(stdout);
    /* exit, not _exit: LeakSanitizer and valgrind check this case's leaks. */
    exit(bad);
}

enum { CASE_OK, CASE_SKIPPED, CASE_FAILED };

static inline int case_timeout_s_(void)
{
    const char *e = getenv("WEFT_TEST_TIMEOUT");
    int s = e && atoi(e) > 0 ? atoi(e) : 300;
    return RUNNING_ON_VALGRIND ? 10 * s : s;
}

/* Run one case in a child and wait for it (SIGCHLD is blocked). */
static inline int case_run_(const struct CMUnitTest *t, void *state, unsigned leaves,
                            const sigset_t *old_mask, char *why, size_t why_len)
{
    fflush(stdout);
    fflush(stderr);
    pid_t runner = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        return CASE_FAILED;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, old_mask, NULL);
        case_child_(t, state, leaves, runner);
    }
    setpgid(pid, pid); /* either side may win the race: both set it */

    int timeout_s = case_timeout_s_();
    int64_t give_up = clock_ns() + (int64_t)timeout_s * 1000 * MS;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    bool timed_out = false;
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
            break;
        int64_t left = give_up - clock_ns();
        if (left <= 0) {
            timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        if (left > 100 * MS)
            left = 100 * MS; /* a lost SIGCHLD costs at most this */
        struct timespec ts = {0, (long)left};
        sigtimedwait(&chld, NULL, &ts);
    }
    /* The case is over (a zombie keeps its pid): whatever it left running
     * in its process group goes with it. */
    kill(-pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        snprintf(why, why_len, "still running after %d s: killed", timeout_s);
        return CASE_FAILED;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return CASE_OK;
    if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP_STATUS)
        return CASE_SKIPPED;
    if (WIFEXITED(st)) {
        snprintf(why, why_len, "exited with status %d", WEXITSTATUS(st));
    } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT) {
        fputc('\n', stderr); /* cmocka's message ends without one */
        snprintf(why, why_len, "a check failed (or the process aborted), see above");
    } else if (WIFSIGNALED(st)) {
        snprintf(why, why_len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    }
    return CASE_FAILED;
}

static inline int run_cases_(const char *group, const struct CMUnitTest *tests, size_t n,
                             CMFixtureFunction setup, CMFixtureFunction teardown,
                             const case_exception *exceptions, size_t nexceptions)
{
    const char *filter = getenv("WEFT_TEST_FILTER");
    const char *nofork = getenv("WEFT_TEST_NOFORK");
    if (nofork && *nofork && strcmp(nofork, "0") != 0) {
        if (filter)
            cmocka_set_test_filter(filter);
        return _cmocka_run_group_tests(group, tests, n, setup, teardown);
    }

    size_t nrun = 0;
    for (size_t i = 0; i < n; i++)
        if (tests[i].test_func && (!filter || fnmatch(filter, tests[i].name, 0) == 0))
            nrun++;
    printf("[==========] Running %zu test(s), each in a process of its own.\n", nrun);
    fflush(stdout);
    void *group_state = NULL;
    if (setup && setup(&group_state) != 0) {
        printf("[  FAILED  ] group setup\n");
        return 1;
    }

    const char **failed = calloc(n ? n : 1, sizeof *failed);
    const char **skipped = calloc(n ? n : 1, sizeof *skipped);
    if (!failed || !skipped) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    size_t npassed = 0, nfailed = 0, nskipped = 0;
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    for (size_t i = 0; i < n; i++) {
        const struct CMUnitTest *t = &tests[i];
        if (!t->test_func || (filter && fnmatch(filter, t->name, 0) != 0))
            continue;
        unsigned leaves = 0;
        for (size_t k = 0; k < nexceptions; k++)
            if (exceptions[k].test == t->test_func)
                leaves |= exceptions[k].leaves;
        printf("[ RUN      ] %s\n", t->name);
        char why[256] = "";
        int64_t t0 = clock_ns();
        int r = case_run_(t, group_state ? group_state : (void *)t->initial_state, leaves,
                          &old_mask, why, sizeof why);
        double secs = (double)(clock_ns() - t0) / 1e9;
        if (r == CASE_OK) {
            printf("[       OK ] %s (%.2f s)\n", t->name, secs);
            npassed++;
        } else if (r == CASE_SKIPPED) {
            printf("[  SKIPPED ] %s\n", t->name);
            skipped[nskipped++] = t->name;
        } else {
            printf("[  FAILED  ] %s: %s\n", t->name, why);
            failed[nfailed++] = t->name;
        }
        fflush(stdout);
    }
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (teardown && teardown(&group_state) != 0) {
        printf("[  FAILED  ] group teardown\n");
        failed[nfailed++] = "(group teardown)";
    }

    printf("[==========] %zu test(s) run.\n", npassed + nfailed + nskipped);
    printf("[  PASSED  ] %zu test(s).\n", npassed);
    if (nskipped) {
        printf("[  SKIPPED ] %zu test(s), listed below:\n", nskipped);
        for (size_t i = 0; i < nskipped; i++)
            printf("[  SKIPPED ] %s\n", skipped[i]);
    }
    if (nfailed) {
        printf("[  FAILED  ] %zu test(s), listed below:\n", nfailed);
        for (size_t i = 0; i < nfailed; i++)
            printf("[  FAILED  ] %s\n", failed[i]);
        printf("\n %zu FAILED TEST(S)\n", nfailed);
    }
    fflush(stdout);
    free(failed);
    free(skipped);
    if (nfailed)
        return 1;
    return nskipped && !npassed ? SKIP_STATUS : 0;
}

/* Run every case of `tests` (a CMUnitTest array) as described at the top,
 * with cmocka's group setup and teardown (NULL: none) run in the runner's
 * own process.  Returns main's exit status. */
#define run_cases(tests, setup, teardown)                                                   \
    run_cases_(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown, NULL, 0)

/* The same, with a table of the cases that leave something behind on
 * purpose (a case_exception array). */
#define run_cases_except(tests, setup, teardown, exceptions)                                \
    run_cases_(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown,          \
               exceptions, sizeof(exceptions) / sizeof((exceptions)[0]))

/* ------------------------------------------------------------ loops and tasks */

/* Run fn(arg) as the main task of a loop; it must return 0, and the thread
 * must have no loop afterwards. */
static inline void run_checked(weft_task_fn fn, void *arg)
{
    assert_int_equal(weft_run(fn, arg), 0);
    assert_null(weft_loop_current());
}

/* Run `fn` as the main task of a loop; it must return 0 (or SKIP_STATUS:
 * the test is skipped). */
static inline void run_task(weft_task_fn fn)
{
    int st = weft_run(fn, NULL);
    if (st == SKIP_STATUS)
        skip();
    assert_int_equal(st, 0);
}

static inline weft_task *spawn_named(weft_task_fn fn, void *arg, const char *name)
{
    weft_task *t = weft_spawn(fn, arg, &(weft_task_opts){.name = name});
    assert_non_null(t);
    return t;
}

/* Join `t` (within 15 s: a broken library fails the test instead of hanging
 * it) and return its status. */
static inline int join_status(weft_task *t)
{
    int st = 12345;
    assert_int_equal(weft_join_until(t, &st, weft_deadline_ms(15000)), 0);
    return st;
}

static inline void assert_contains(const char *msg, const char *what)
{
    assert_non_null(msg);
    if (!strstr(msg, what)) {
        fprintf(stderr, "message \"%s\" should contain \"%s\"\n", msg, what);
        fail();
    }
}

/* Number of open fds of the process. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

#endif
