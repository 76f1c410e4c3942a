/* SPDX-License-Identifier: MIT */
/* File descriptors: wait for readiness, read and write without blocking the loop. */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    WEFT_READABLE = 1,
    WEFT_WRITABLE = 2,
};

/*
 * Suspend until `fd` is readable and/or writable (`events`, a mask of
 * WEFT_READABLE / WEFT_WRITABLE), or until `deadline` (WEFT_NO_DEADLINE for
 * none).  The fd should be non-blocking.  The first wait registers it with
 * the loop's epoll (once, edge-triggered); close it with weft_close so the
 * loop forgets it.  Returns the mask of ready events (> 0); an error or
 * hang-up on the fd counts as ready for both.  Errors: -EBADF (not an open
 * fd, or closed with weft_close while waiting), -EINVAL (bad events),
 * -ETIMEDOUT, -ECANCELED, WEFT_ENOTASK.  Regular files are always ready.
 * Suspends.
 */
int weft_wait_fd(int fd, int events, int64_t deadline);

/*
 * The readiness the loop has seen on `fd` that no waiter has taken yet: a
 * mask of WEFT_READABLE / WEFT_WRITABLE (error and hang-up count as both),
 * 0 when none was seen, weft never waited on the fd, or `fd` is out of
 * range.  A hint, not a
 * promise: the bytes behind it may have been read since, so confirm with a
 * non-blocking call.  Costs no system call — e.g. a connection pool can
 * tell that an idle connection was closed by its peer.  Does not suspend.
 */
int weft_fd_seen_ready(int fd);

/*
 * read(2)/write(2) that never block the loop: try the call first, and only
 * when it would block (EAGAIN) wait for readiness and try again.  `fd` must
 * be non-blocking (see weft_set_nonblocking).  Return the byte count (0 at
 * end of file for read; write may be partial) or a negative errno, also
 * -ETIMEDOUT at `deadline` and -ECANCELED; -EINVAL for a NULL `buf` with
 * `len` > 0.  Suspends.
 */
ssize_t weft_read(int fd, void *buf, size_t len, int64_t deadline);
ssize_t weft_write(int fd, const void *buf, size_t len, int64_t deadline);

/* Write all `len` bytes (looping over partial writes).  Returns len or a
 * negative error (-EINVAL for `len` above SSIZE_MAX); on error some bytes
 * may have been written.  Suspends. */
ssize_t weft_write_all(int fd, const void *buf, size_t len, int64_t deadline);

/* Put `fd` in non-blocking mode.  Returns 0 or -errno.  Does not suspend. */
int weft_set_nonblocking(int fd);

/*
 * Forget `fd` in the loop (tasks waiting on it wake with -EBADF), then
 * close(2) it.  Use this instead of close for every fd weft has waited on:
 * epoll keeps no record weft could check when the number is reused.
 * Outside a loop it is a plain close.  Returns 0 or -errno from close.
 * Does not suspend.
 */
int weft_close(int fd);

/* Forget `fd` without closing it (waiters wake with -EBADF), e.g. before
 * handing it to other code.  A negative or unknown fd is a no-op.  Does not
 * suspend. */
void weft_fd_forget(int fd);

#ifdef __cplusplus
}
#endif
#endif
