/* SPDX-License-Identifier: MIT */
/* Helpers shared by the weft-http tests: sessions and their counters. */
#ifndef WEFT_TESTS_HTTP_HELPERS_H
#define WEFT_TESTS_HTTP_HELPERS_H

#include <stdbool.h>
#include <stdio.h>

#include <weft/http.h>

/* The bodies the test servers send (nginx's /1k and /64k too): the
 * printable bytes 0x21..0x7e, repeated. */
static inline unsigned char pattern(size_t i) { return (unsigned char)(0x21 + i % 94); }

static inline bool body_ok(const void *body, size_t len, size_t want)
{
    const unsigned char *b = body;
    if (len != want)
        return false;
    for (size_t i = 0; i < len; i++)
        if (b[i] != pattern(i))
            return false;
    return true;
}

static inline weft_http_stats stats_of(weft_http_session *s)
{
    weft_http_stats st;
    weft_http_session_stats(s, &st);
    return st;
}

static inline void print_stats(const char *what, weft_http_session *s)
{
    weft_http_stats st = stats_of(s);
    printf("# %s: requests %llu opened %llu reused %llu discarded %llu closed_idle %llu "
           "closed_done %llu slot_waits %llu retries %llu open %zu idle %zu\n",
           what, (unsigned long long)st.requests, (unsigned long long)st.opened,
           (unsigned long long)st.reused, (unsigned long long)st.discarded,
           (unsigned long long)st.closed_idle, (unsigned long long)st.closed_done,
           (unsigned long long)st.slot_waits, (unsigned long long)st.retries, st.open, st.idle);
}

/* The pool's books: every connection the session opened is open or was
 * closed and counted, and no more are idle than open. */
static inline bool books_balance(weft_http_session *s)
{
    weft_http_stats st = stats_of(s);
    return st.opened == st.discarded + st.closed_idle + st.closed_done + st.open &&
           st.idle <= st.open;
}

static inline void assert_books(weft_http_session *s)
{
    if (!books_balance(s)) {
        print_stats("books do not balance", s);
        fail();
    }
}

static inline weft_http_session *session(const weft_http_session_opts *o)
{
    weft_http_session *s = weft_http_session_new(o);
    if (!s)
        fprintf(stderr, "weft_http_session_new: %s\n", weft_errmsg());
    assert_non_null(s);
    return s;
}

#endif
