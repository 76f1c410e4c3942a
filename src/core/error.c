/* SPDX-License-Identifier: MIT */
/* Error codes and the task-local failure message. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core-internal.h"

#define WEFT__ERRMSG_MAX 256

static _Thread_local char thread_errmsg[WEFT__ERRMSG_MAX];
static _Thread_local int thread_errcode;

const char *weft_strerror(int code)
{
    switch (code) {
    case 0: return "Success";
    case WEFT_EPGSERVER: return "PostgreSQL server error";
    case WEFT_EPROTO: return "Protocol violation by the peer";
    case WEFT_ENOLOOP: return "No weft loop runs on this thread";
    case WEFT_ENOTASK: return "Not called from a weft task";
    case WEFT_ECLOSED: return "Closed";
    case WEFT_ECRASHED: return "Worker process crashed";
    case WEFT_ERESOLVE: return "Name resolution failed";
    case WEFT_ETLS: return "TLS failure";
    case WEFT_EEOF: return "Unexpected end of stream";
    default: break;
    }
    if (code == INT_MIN)
        return "Unknown error";
    if (code < 0)
        code = -code;
    /* strerror() may use a static buffer for unknown codes; strerrordesc_np
     * (glibc 2.32+) is thread-safe and static. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *s = strerrordesc_np(code);
    return s ? s : "Unknown error";
#else
    return strerror(code);
#endif
}

static void vseterr(int code, const char *fmt, va_list ap)
{
    weft_loop *loop = weft__loop();
    weft_task *t = loop ? loop->current : NULL;
    char *buf = thread_errmsg;
    if (t)
        t->errcode = code;
    else
        thread_errcode = code;
    if (t) {
        if (!t->errmsg)
            t->errmsg = malloc(WEFT__ERRMSG_MAX);
        if (t->errmsg)
            buf = t->errmsg;
    }
    if (fmt)
        vsnprintf(buf, WEFT__ERRMSG_MAX, fmt, ap);
    else
        buf[0] = '\0';
}

int weft__seterr(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vseterr(code, fmt, ap);
    va_end(ap);
    return code;
}

int weft_seterr(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vseterr(code, fmt, ap);
    va_end(ap);
    return code;
}

int weft__wait_failed(int rc, const char *fn, int64_t started, int64_t deadline,
                      const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == -ETIMEDOUT) {
        weft_loop *loop = weft__loop();
        weft_task *t = loop ? loop->current : NULL;
        int64_t waited = weft__clock_ns() - started;
        bool outer = t && t->deadline < deadline;
        return weft__seterr(rc, "%s: timed out after %lld.%lld ms waiting for %s%s", fn,
                            (long long)(waited / 1000000), (long long)(waited / 100000 % 10),
                            what, outer ? " (an enclosing deadline passed)" : "");
    }
    if (rc == -ECANCELED)
        return weft__seterr(rc, "%s: cancelled while waiting for %s", fn, what);
    return weft__seterr(rc, "%s: %s while waiting for %s", fn, weft_strerror(rc), what);
}

const char *weft_errmsg(void)
{
    weft_loop *loop = weft__loop();
    weft_task *t = loop ? loop->current : NULL;
    if (t)
        return t->errmsg ? t->errmsg : "";
    return thread_errmsg;
}

int weft_errcode(void)
{
    weft_loop *loop = weft__loop();
    weft_task *t = loop ? loop->current : NULL;
    return t ? t->errcode : thread_errcode;
}
