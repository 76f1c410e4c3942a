/* SPDX-License-Identifier: MIT */
/* Checks for the bad-argument sweeps (tests/core/test_bad_args.c,
 * tests/http/test_bad_args.c): a failing call returns its code, records
 * the same code for weft_errcode and a message naming the function.  Each
 * check first plants a stale message, so a call that sets none is caught.
 * Include after cmocka.h and test_helpers.h. */
#ifndef WEFT_TESTS_BAD_ARGS_H
#define WEFT_TESTS_BAD_ARGS_H

#include <stdio.h>
#include <string.h>

#include <weft.h>

#define STALE "stale message from an earlier call"

static inline void plant_stale(void)
{
    weft_seterr(-EXDEV, "%s", STALE);
}

static inline void check_failure(long rc, int code, const char *fn, const char *call, int line)
{
    if (rc != code || weft_errcode() != code || !strstr(weft_errmsg(), fn)) {
        fprintf(stderr, "line %d: %s\n  returned %ld (want %d %s), weft_errcode %d,\n"
                        "  weft_errmsg \"%s\" (should name %s)\n",
                line, call, rc, code, weft_strerror(code), weft_errcode(), weft_errmsg(), fn);
        fail();
    }
}

/* `call` fails with `code`, and weft_errcode/weft_errmsg say so, naming `fn`. */
#define FAILS(code, fn, call)                                                  \
    do {                                                                       \
        plant_stale();                                                         \
        long rc_ = (long)(call);                                               \
        check_failure(rc_, (code), (fn), #call, __LINE__);                     \
    } while (0)

/* A constructor `call` returns NULL, with weft_errcode `code` and a message
 * naming `fn`. */
#define RETURNS_NULL(code, fn, call)                                           \
    do {                                                                       \
        plant_stale();                                                         \
        const void *p_ = (const void *)(call);                                 \
        assert_null(p_);                                                       \
        check_failure((code), (code), (fn), #call, __LINE__);                  \
    } while (0)

/* `call` (a void call or a getter with a neutral answer) leaves the stale
 * message alone: nothing failed. */
#define QUIET(call)                                                            \
    do {                                                                       \
        plant_stale();                                                         \
        call;                                                                  \
        assert_string_equal(weft_errmsg(), STALE);                             \
    } while (0)

#endif
