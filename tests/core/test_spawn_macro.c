/* SPDX-License-Identifier: MIT */
/* weft_spawn and weft_group_spawn take their options as a compound literal
 * with several fields: the macros are variadic, so the literal's commas do
 * not split the argument.  The options must arrive: the name is the one
 * given, and the stack is the size asked for (the task uses more than the
 * default stack holds).  test_spawn_cxx.cpp does the same from C++. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <weft.h>

#include "test_helpers.h"

/* More than WEFT_STACK_DEFAULT (256 KiB), less than the 1 MiB asked for. */
#define DEEP_BYTES (384 * 1024)

static int deep(void *arg)
{
    const char *want = arg;
    volatile char buf[DEEP_BYTES];
    for (size_t i = 0; i < sizeof buf; i += 4096)
        buf[i] = (char)i;
    buf[sizeof buf - 1] = 1;
    return strcmp(weft_task_name(weft_current()), want) == 0 ? 0 : -1;
}

static int spawn_main(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(deep, "big", &(weft_task_opts){.name = "big", .stack_size = 1024 * 1024});
    if (!t)
        return -100;
    int st = -200;
    if (weft_join(t, &st) != 0)
        return -300;
    /* No options: named after the function. */
    t = weft_spawn(deep, "deep", &(weft_task_opts){.stack_size = 1024 * 1024});
    if (!t || weft_join(t, &st) != 0)
        return -400;
    return st;
}

static void test_spawn_compound_literal(void **state)
{
    (void)state;
    assert_int_equal(weft_run(spawn_main, NULL), 0);
}

static int group_main(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new(NULL);
    if (!g)
        return -100;
    int i = weft_group_spawn(g, deep, "gbig", &(weft_task_opts){.name = "gbig", .stack_size = 1024 * 1024});
    if (i != 0)
        return -200;
    int rc = weft_group_wait(g);
    weft_group_free(g);
    return rc;
}

static void test_group_spawn_compound_literal(void **state)
{
    (void)state;
    assert_int_equal(weft_run(group_main, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_compound_literal),
        cmocka_unit_test(test_group_spawn_compound_literal),
    };
    return run_cases(tests, NULL, NULL);
}
