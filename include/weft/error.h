/* SPDX-License-Identifier: MIT */
/* Errors: negative errno-style codes plus a task-local human message. */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <errno.h> /* results are compared with -ECANCELED, -ETIMEDOUT, ... */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every weft function that can fail returns an int: 0 (or a count) on
 * success, a negative errno value on failure (-ETIMEDOUT, -ECANCELED, ...).
 * weft's own codes live below WEFT_ERR_BASE so they never clash with errno.
 */
enum {
    WEFT_ERR_BASE = -10000,
    /* A PostgreSQL server error (reserved for weft-pg). */
    WEFT_EPGSERVER = WEFT_ERR_BASE - 1,
    /* A peer broke its protocol (bad HTTP, bad PostgreSQL message). */
    WEFT_EPROTO = WEFT_ERR_BASE - 2,
    /* The call needs a running weft loop on this thread and there is none. */
    WEFT_ENOLOOP = WEFT_ERR_BASE - 3,
    /* The call must run inside a task (it suspends) but runs outside one. */
    WEFT_ENOTASK = WEFT_ERR_BASE - 4,
    /* The queue (or other channel) was shut down. */
    WEFT_ECLOSED = WEFT_ERR_BASE - 5,
    /* A worker process died while running the job (weft_errmsg names the
     * signal or exit status). */
    WEFT_ECRASHED = WEFT_ERR_BASE - 6,
    /* A host name could not be resolved (weft_errmsg has the reason). */
    WEFT_ERESOLVE = WEFT_ERR_BASE - 7,
    /* TLS failed: handshake, certificate verification or a TLS alert
     * (weft_errmsg has OpenSSL's reason). */
    WEFT_ETLS = WEFT_ERR_BASE - 8,
    /* The peer closed the stream before the data the call needs arrived. */
    WEFT_EEOF = WEFT_ERR_BASE - 9,
};

/*
 * Name an error code: "Connection timed out" for -ETIMEDOUT, weft's own
 * text for weft codes, "Success" for 0.  Accepts positive errno values too.
 * Never returns NULL; the string is static.  Does not suspend; thread-safe.
 */
const char *weft_strerror(int code);

/*
 * The message of the last failure in the calling task (or thread, outside
 * a task): what failed and on what, e.g. "weft_wait_fd: fd 7: Bad file
 * descriptor".  Valid until the next failing weft call in the same task.
 * Returns "" when no failure has been recorded.  Does not suspend.
 */
const char *weft_errmsg(void);

/*
 * The code of the last failure in the calling task (or thread, outside a
 * task): the negative code that went with weft_errmsg()'s message, e.g.
 * -ENOMEM or WEFT_ENOLOOP.  Every constructor that returns NULL (weft_spawn,
 * weft_group_new, weft_thread_pool_new, weft_thread_pool_default,
 * weft_process_pool_new,
 * weft_tls_client_new, weft_tls_server_new, weft_stream_new,
 * weft_http_session_new) sets it, so the caller can branch on the reason
 * as on any int result.  0 when no failure has been recorded.  Like
 * weft_errmsg, a successful call does not clear it.  Does not suspend.
 */
int weft_errcode(void);

/*
 * Record a message for weft_errmsg in the calling task (or thread), printf
 * style, truncated to 255 bytes, and `code` for weft_errcode, and return
 * `code` unchanged: `return
 * weft_seterr(-EINVAL, "bad port %d", port);`.  A NULL `fmt` records "".
 * Does not suspend.
 */
int weft_seterr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
