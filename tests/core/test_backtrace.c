/* SPDX-License-Identifier: MIT */
/* The watchdog's backtraces name functions of a program linked without
 * -rdynamic (this test program is: see tests/CMakeLists.txt), from the
 * symbol table of the executable, and give file+offset for addr2line. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <valgrind/valgrind.h>

#include "test_helpers.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char report[16384];
static atomic_int reported;

static void capture_log(const char *msg, void *data)
{
    (void)data;
    pthread_mutex_lock(&log_lock);
    if (strstr(msg, "is blocking the loop") && !atomic_load(&reported)) {
        snprintf(report, sizeof report, "%s", msg);
        atomic_store(&reported, 1);
    }
    pthread_mutex_unlock(&log_lock);
}

/* Static and not exported: only the executable's .symtab knows the names. */
__attribute__((noinline)) static int spin_in_static_function(void *arg)
{
    (void)arg;
    int64_t end = clock_ns() + 5000 * MS;
    while (!atomic_load(&reported) && clock_ns() < end)
        __asm__ volatile("" ::: "memory");
    return atomic_load(&reported) ? 0 : 1;
}

__attribute__((noinline)) static int nap_in_static_function(void *arg)
{
    (void)arg;
    int64_t end = clock_ns() + 5000 * MS;
    while (!atomic_load(&reported) && clock_ns() < end)
        usleep(200 * 1000);
    return atomic_load(&reported) ? 0 : 1;
}

static weft_task_fn stuck_fn;

static int stuck_main(void *arg)
{
    (void)arg;
    weft_task *t = spawn_named(stuck_fn, NULL, "stuck");
    return join_status(t);
}

static void check_report_names(weft_task_fn fn, const char *name)
{
    /* Under valgrind the watchdog's view of a thread (its signal, /proc)
     * is valgrind's, not the program's; the native runs check this. */
    if (RUNNING_ON_VALGRIND)
        skip();
    atomic_store(&reported, 0);
    weft_set_log(capture_log, NULL);
    weft_set_slow_ms(50);
    stuck_fn = fn;
    int rc = weft_run(stuck_main, NULL);
    weft_set_log(NULL, NULL);
    pthread_mutex_lock(&log_lock);
    char copy[sizeof report];
    memcpy(copy, report, sizeof copy);
    pthread_mutex_unlock(&log_lock);
    print_message("%s", copy);
    assert_int_equal(rc, 0);
    assert_contains(copy, "task 'stuck' is blocking the loop");
    assert_contains(copy, name);
    /* file+offset, for addr2line -e file offset */
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char want[600];
    snprintf(want, sizeof want, "(%s+0x", exe);
    assert_contains(copy, want);
}

/* Running code: the stack is taken with a signal. */
static void test_names_without_rdynamic_running(void **state)
{
    (void)state;
    check_report_names(spin_in_static_function, "spin_in_static_function");
}

/* Blocked in a system call: the stack is scanned from outside. */
static void test_names_without_rdynamic_blocked(void **state)
{
    (void)state;
    check_report_names(nap_in_static_function, "nap_in_static_function");
}

int main(void)
{
    weft_debug_enable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_without_rdynamic_running),
        cmocka_unit_test(test_names_without_rdynamic_blocked),
    };
    return run_cases(tests, NULL, NULL);
}
