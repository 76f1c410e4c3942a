/* SPDX-License-Identifier: MIT */
/* A program for test_gdb.sh: reaches gdb_target_break() while several tasks are suspended. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

static volatile int naps;
static bool dump_core; /* argv[1] == "abort": die with a core dump at the breakpoint */

/* The breakpoint: every other task is suspended when main calls this. */
__attribute__((noinline)) void gdb_target_break(void);
__attribute__((noinline)) void gdb_target_break(void)
{
    __asm__ volatile("" ::: "memory");
}

/* A frame of its own on the sleeper's stack, for `weft bt` to find. */
__attribute__((noinline)) static int gdb_target_nap(int ms)
{
    int rc = weft_sleep_ms(ms);
    naps++; /* not a tail call: this frame stays on the stack */
    return rc;
}

static int sleeper(void *arg)
{
    (void)arg;
    int rc = gdb_target_nap(60000);
    return rc == -ECANCELED ? 0 : rc;
}

static int reader(void *arg)
{
    int fd = *(int *)arg;
    int rc = weft_wait_fd(fd, WEFT_READABLE, WEFT_NO_DEADLINE);
    return rc < 0 ? rc : 0;
}

static int joiner(void *arg)
{
    int st = -1;
    int rc = weft_join(arg, &st);
    return rc < 0 ? rc : st;
}

static int main_task(void *arg)
{
    (void)arg;
    int p[2];
    if (pipe(p) < 0 || weft_set_nonblocking(p[0]) < 0)
        return 1;
    weft_task *s = weft_spawn(sleeper, NULL, &(weft_task_opts){.name = "gdb_sleeper"});
    weft_task *r = weft_spawn(reader, &p[0], &(weft_task_opts){.name = "gdb_reader"});
    weft_task *j = weft_spawn(joiner, s, &(weft_task_opts){.name = "gdb_joiner"});
    if (!s || !r || !j)
        return 1;
    weft_sleep_ms(10); /* let them all reach their waits */
    gdb_target_break();
    if (dump_core)
        abort();
    if (write(p[1], "x", 1) != 1)
        return 1;
    weft_cancel(s);
    int st1 = -1, st2 = -1;
    if (weft_join(r, &st1) < 0 || weft_join(j, &st2) < 0)
        return 1;
    weft_close(p[0]);
    close(p[1]);
    printf("gdb_target: done (%d, %d)\n", st1, st2);
    return st1 == 0 && st2 == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    dump_core = argc > 1 && strcmp(argv[1], "abort") == 0;
    return weft_run(main_task, NULL);
}
