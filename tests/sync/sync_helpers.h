/* SPDX-License-Identifier: MIT */
/* Helpers shared by the tests of the synchronisation primitives.  Every
 * wait is bounded: a broken primitive fails a test instead of hanging it. */
#ifndef WEFT_TESTS_SYNC_HELPERS_H
#define WEFT_TESTS_SYNC_HELPERS_H

#include <weft.h>

#include "test_helpers.h"

static inline void run_ok(weft_task_fn fn) { run_checked(fn, NULL); }

/* Yield until `*flag` reaches `want` (at most 100,000 times). */
static inline void yield_until(const int *flag, int want)
{
    for (int i = 0; i < 100000 && *flag < want; i++)
        assert_int_equal(weft_yield(), 0);
    assert_int_equal(*flag, want);
}

static inline void yield_n(int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(weft_yield(), 0);
}

#endif
