/* SPDX-License-Identifier: MIT */
/* The epoll backend: every fd is added once, edge-triggered, for both
 * directions, and forgotten by the kernel when it is closed. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <stdatomic.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "../core-internal.h"
#include "backend.h"

#define WEFT__EVENTS_MAX 256

/* Shared by the loops of all threads: set once epoll_pwait2 turns out to
 * be missing (ENOSYS: kernels before 5.11; valgrind 3.19 does not know it
 * either, so it is not even tried there). */
static atomic_int no_pwait2;

int weft__backend_init(weft_loop *loop)
{
    if (RUNNING_ON_VALGRIND)
        atomic_store(&no_pwait2, 1);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = (uint64_t)loop->eventfd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->eventfd, &ev) < 0) {
        int err = -errno;
        close(loop->epfd);
        loop->epfd = -1;
        return err;
    }
    return 0;
}

void weft__backend_close(weft_loop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
}

int weft__backend_add(weft_loop *loop, int fd)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)fd,
    };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    /* Still watched (forgotten with weft_fd_forget, or a dup'd number the
     * loop forgot): re-arm it, so readiness that came meanwhile (an edge
     * the loop dropped) is reported again. */
    if (errno == EEXIST && epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    return -errno;
}

int weft__backend_poll(weft_loop *loop, int64_t timeout_ns)
{
    struct epoll_event events[WEFT__EVENTS_MAX];
    int n;
    if (timeout_ns > 0 && !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
        n = epoll_pwait2(loop->epfd, events, WEFT__EVENTS_MAX, &ts, NULL);
        if (n < 0 && errno == ENOSYS) {
            atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
            n = 0;
        }
    } else {
        /* Round up: waking before the deadline would only spin. */
        int ms = timeout_ns < 0 ? -1
                 : timeout_ns > (int64_t)1000000 * 86400000 ? 86400000
                                                          : (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(loop->epfd, events, WEFT__EVENTS_MAX, ms);
    }
    for (int i = 0; i < n; i++) {
        int fd = (int)events[i].data.u64;
        if (fd == loop->eventfd) {
            uint64_t v;
            ssize_t r = read(fd, &v, sizeof v); /* drain; posts are run by the loop */
            (void)r;
        } else if (fd == loop->sigfd) {
            weft__signals_dispatch(loop);
        } else {
            weft__fd_dispatch(loop, fd, events[i].events);
        }
    }
    return n < 0 ? 0 : n;
}
