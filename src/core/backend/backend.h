/* SPDX-License-Identifier: MIT */
/* The interface every I/O backend implements (epoll now; io_uring later). */
#ifndef WEFT_CORE_BACKEND_H
#define WEFT_CORE_BACKEND_H

#include <stdint.h>

typedef struct weft_loop weft_loop;

/* Create the poller; the loop's eventfd is watched from the start. */
int weft__backend_init(weft_loop *loop);
void weft__backend_close(weft_loop *loop);

/* Watch `fd` for readability and writability, edge-triggered, until it is
 * closed.  Returns 0, -EPERM for fds that cannot be polled (regular files),
 * or another -errno (-EBADF for a closed fd). */
int weft__backend_add(weft_loop *loop, int fd);

/* Wait up to `timeout_ns` (-1: no limit, 0: do not block) and hand each
 * event to the loop: the eventfd, the signalfd, or weft__fd_dispatch.
 * Returns the number of events (0 when the wait timed out). */
int weft__backend_poll(weft_loop *loop, int64_t timeout_ns);

#endif
