/* SPDX-License-Identifier: MIT */
/* The test runner itself (tests/test_helpers.h): a case that fails inside a
 * task fails alone, skips, leftovers (timers, unjoined tasks, fds), crashes
 * and hangs are reported per case, and the exit status says it all. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <weft.h>

#include "test_helpers.h"

/* ------------------------------------------------------------ inner cases */

static int fails_inside(void *arg)
{
    (void)arg;
    assert_int_equal(weft_sleep_ms(1), 0);
    assert_int_equal(1, 2); /* aborts the case's process, inside a task */
    return 0;
}

static void case_fails_in_task(void **state)
{
    (void)state;
    run_checked(fails_inside, NULL);
}

static int sleeps_a_bit(void *arg)
{
    (void)arg;
    return weft_sleep_ms(1);
}

/* Runs a loop after the failure above: no -EBUSY from a loop left behind. */
static void case_runs_after(void **state)
{
    (void)state;
    run_checked(sleeps_a_bit, NULL);
}

static void case_skips(void **state)
{
    (void)state;
    skip();
}

static int skips_inside(void *arg)
{
    (void)arg;
    return SKIP_STATUS;
}

static void case_skips_from_task(void **state)
{
    (void)state;
    run_task(skips_inside);
}

static void case_passes(void **state)
{
    (void)state;
}

static weft_timer left_timer;
static void never(weft_timer *tm) { (void)tm; }
static int leaves_timer(void *arg)
{
    (void)arg;
    weft_timer_init(&left_timer, never, NULL);
    return weft_timer_start(&left_timer, weft_deadline_ms(3600 * 1000));
}

static void case_leaves_timer(void **state)
{
    (void)state;
    run_checked(leaves_timer, NULL);
}

static int ret0(void *arg) { (void)arg; return 0; }
static int leaves_task(void *arg)
{
    (void)arg;
    assert_non_null(weft_spawn(ret0, NULL, NULL));
    return 0;
}

static void case_leaves_task(void **state)
{
    (void)state;
    run_checked(leaves_task, NULL);
}

static void case_leaves_fd(void **state)
{
    (void)state;
    assert_true(open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0);
}

static void case_crashes(void **state)
{
    (void)state;
    raise(SIGSEGV);
}

static void case_hangs(void **state)
{
    (void)state;
    sleep(30);
}

/* The inner program: one of the tables below under the runner, its output
 * to `out`; returns its exit status. */
static int inner(int which, const char *out, const char *timeout)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(100);
        case_forked_ = false;
        unsetenv("CMOCKA_TEST_ABORT");
        unsetenv("WEFT_TEST_FILTER");
        unsetenv("WEFT_TEST_NOFORK");
        if (timeout)
            setenv("WEFT_TEST_TIMEOUT", timeout, 1);
        const struct CMUnitTest isolation[] = {
            cmocka_unit_test(case_fails_in_task),
            cmocka_unit_test(case_runs_after),
            cmocka_unit_test(case_skips),
        };
        const struct CMUnitTest skipping[] = {
            cmocka_unit_test(case_skips),
            cmocka_unit_test(case_skips_from_task),
        };
        const struct CMUnitTest some_skip[] = {
            cmocka_unit_test(case_skips),
            cmocka_unit_test(case_passes),
        };
        const struct CMUnitTest leftovers[] = {
            cmocka_unit_test(case_leaves_timer),
            cmocka_unit_test(case_leaves_task),
            cmocka_unit_test(case_leaves_fd),
            cmocka_unit_test(case_crashes),
            cmocka_unit_test(case_passes),
        };
        const struct CMUnitTest excused[] = {
            cmocka_unit_test(case_leaves_timer),
            cmocka_unit_test(case_leaves_task),
            cmocka_unit_test(case_leaves_fd),
        };
        static const case_exception leaves[] = {
            {case_leaves_timer, CASE_LEAVES_TIMERS},
            {case_leaves_task, CASE_LEAVES_TASKS},
            {case_leaves_fd, CASE_LEAVES_FDS},
        };
        const struct CMUnitTest hanging[] = {
            cmocka_unit_test(case_hangs),
            cmocka_unit_test(case_passes),
        };
        int rc = 100;
        switch (which) {
        case 0: rc = run_cases(isolation, NULL, NULL); break;
        case 1: rc = run_cases(skipping, NULL, NULL); break;
        case 2: rc = run_cases(some_skip, NULL, NULL); break;
        case 3: rc = run_cases(leftovers, NULL, NULL); break;
        case 4: rc = run_cases_except(excused, NULL, NULL, leaves); break;
        case 5: rc = run_cases(hanging, NULL, NULL); break;
        }
        fflush(stdout);
        _exit(rc);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static char out_path[64];

static int run_inner(int which, const char *timeout, char **out)
{
    snprintf(out_path, sizeof out_path, "/tmp/weft-runner-%d.out", (int)getpid());
    int rc = inner(which, out_path, timeout);
    *out = slurp(out_path);
    unlink(out_path);
    printf("# inner program %d exited %d:\n%s", which, rc, *out);
    return rc;
}

/* ------------------------------------------------------------ the tests */

static void test_failure_stays_in_its_case(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_inner(0, NULL, &out), 1);
    assert_contains(out, "[  FAILED  ] case_fails_in_task: a check failed");
    assert_contains(out, "test_runner.c"); /* cmocka's message: where */
    assert_contains(out, "[       OK ] case_runs_after");
    assert_contains(out, "[  SKIPPED ] case_skips");
    assert_contains(out, "[  PASSED  ] 1 test(s).");
    assert_contains(out, "[  FAILED  ] 1 test(s), listed below:");
}

static void test_all_skipped_is_77(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_inner(1, NULL, &out), SKIP_STATUS);
    assert_contains(out, "[  SKIPPED ] case_skips_from_task");
    assert_int_equal(run_inner(2, NULL, &out), 0);
}

static void test_leftovers_fail(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_inner(3, NULL, &out), 1);
    assert_contains(out, "1 timer(s) still armed");
    assert_contains(out, "[  FAILED  ] case_leaves_timer");
    assert_contains(out, "1 finished task(s) never joined");
    assert_contains(out, "[  FAILED  ] case_leaves_task");
    assert_contains(out, "left fd");
    assert_contains(out, "(/dev/null)");
    assert_contains(out, "[  FAILED  ] case_leaves_fd");
    assert_contains(out, "[  FAILED  ] case_crashes");
    assert_contains(out, "[       OK ] case_passes");
    assert_contains(out, "[  FAILED  ] 4 test(s), listed below:");
    /* the same cases, excused */
    assert_int_equal(run_inner(4, NULL, &out), 0);
    assert_contains(out, "[  PASSED  ] 3 test(s).");
}

static void test_hang_times_out(void **state)
{
    (void)state;
    char *out;
    int64_t t0 = clock_ns();
    assert_int_equal(run_inner(5, "1", &out), 1);
    assert_true(clock_ns() - t0 < 20000 * MS);
    assert_contains(out, "[  FAILED  ] case_hangs: still running after");
    assert_contains(out, "[       OK ] case_passes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_stays_in_its_case),
        cmocka_unit_test(test_all_skipped_is_77),
        cmocka_unit_test(test_leftovers_fail),
        cmocka_unit_test(test_hang_times_out),
    };
    return run_cases(tests, NULL, NULL);
}
