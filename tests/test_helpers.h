/* SPDX-License-Identifier: MIT */
/* Helpers shared by the test programs: run a test's main task, spawn and
 * join with bounded waits, time, fds, messages.  Include after cmocka.h. */
#ifndef WEFT_TESTS_HELPERS_H
#define WEFT_TESTS_HELPERS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define MS 1000000LL
/* A main task's status meaning "skip this test" (cmocka's skip() must run
 * outside the task). */
#define SKIP_STATUS 77

static inline int64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Run `fn` as the main task of a loop; it must return 0 (or SKIP_STATUS). */
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
