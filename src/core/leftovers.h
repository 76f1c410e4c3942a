/* SPDX-License-Identifier: MIT */
/*
 * What finished loops left behind, summed over the process since it
 * started: for weft's own tests, which pass only when their loops ended
 * clean (as libuv's fail on a handle left open).  Internal, not API: the
 * tests link the static library and read the totals before and after a
 * test case.
 */
#ifndef WEFT_CORE_LEFTOVERS_H
#define WEFT_CORE_LEFTOVERS_H

#include <stdint.h>

typedef struct weft__leftovers {
    uint64_t runs;     /* loops that ran and ended (any thread) */
    uint64_t timers;   /* timers still armed when their loop ended */
    uint64_t unjoined; /* tasks that finished but were never joined nor detached
                        * (the main task is weft_run's to collect: not counted) */
} weft__leftovers;

/* The totals so far.  Thread-safe; does not suspend. */
void weft__leftovers_get(weft__leftovers *out);

#endif
