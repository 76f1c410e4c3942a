/* SPDX-License-Identifier: MIT */
/*
 * Waiting on file descriptors.  Each fd is registered with the backend the
 * first time a task waits on it, edge-triggered.  An edge that arrives while
 * nobody waits is remembered in `ready`, so the next wait returns at once
 * (and consumes it: a stale edge costs one extra try of the syscall, never
 * a spin).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core-internal.h"

static weft__fd *fd_record(weft_loop *loop, int fd)
{
    if (WEFT__LIKELY(fd < loop->nfds))
        return &loop->fds[fd];
    size_t grow = loop->nfds ? (size_t)loop->nfds : 64;
    while (grow <= (size_t)fd)
        grow *= 2;
    int n = grow > INT_MAX ? INT_MAX : (int)grow;
    weft__fd *f = malloc((size_t)n * sizeof *f);
    if (!f)
        return NULL;
    for (int i = 0; i < n; i++) {
        weft__list_init(&f[i].waiters);
        if (i < loop->nfds) {
            weft__fd *old = &loop->fds[i];
            f[i].registered = old->registered;
            f[i].ready = old->ready;
            f[i].unpollable = old->unpollable;
            f[i].closed = old->closed;
            f[i].watch = old->watch;
            f[i].watch_arg = old->watch_arg;
            /* Move the waiters over to the new list head. */
            while (!weft__list_empty(&old->waiters)) {
                weft__list *it = weft__list_pop_front(&old->waiters);
                weft__list_push_back(&f[i].waiters, it);
            }
        } else {
            f[i].registered = f[i].ready = f[i].unpollable = f[i].closed = 0;
            f[i].watch = NULL;
            f[i].watch_arg = NULL;
        }
    }
    free(loop->fds);
    loop->fds = f;
    loop->nfds = n;
    return &loop->fds[fd];
}

void weft__fds_free(weft_loop *loop)
{
    free(loop->fds);
    loop->fds = NULL;
    loop->nfds = 0;
}

static void wake_list(weft__list *l, int code)
{
    weft__list_foreach(it, l) {
        weft_task *t = weft__container_of(it, weft__task_run, wait_link)->task;
        weft__wake(t, code);
    }
}

void weft__fd_dispatch(weft_loop *loop, int fd, uint32_t events)
{
    if (fd < 0 || fd >= loop->nfds)
        return;
    weft__fd *f = &loop->fds[fd];
    if (!f->registered)
        return; /* forgotten since: a stale event */
    int ready = 0;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        ready |= WEFT_READABLE;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        ready |= WEFT_WRITABLE;
    if (events & (EPOLLHUP | EPOLLERR))
        ready |= WEFT_READABLE | WEFT_WRITABLE;
    /* A hang-up is a state, not an event: edge-triggered epoll reports it
     * once, possibly together with data a reader then takes in a read that
     * does not reach the end.  Remember it, so every later wait for reading
     * returns at once (and reads see EOF or the error). */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        f->closed |= (events & (EPOLLHUP | EPOLLERR)) ? WEFT_READABLE | WEFT_WRITABLE
                                                       : WEFT_READABLE;
    /* An edge nobody waits for is kept for the next wait.  A waiter that
     * was already woken (timeout, cancel) and has not run yet is leaving:
     * it does not take the edge. */
    int woken = 0;
    weft__list_foreach(it, &f->waiters) {
        weft_task *t = weft__container_of(it, weft__task_run, wait_link)->task;
        int want = weft__run(t)->wait_events;
        if ((want & ready) && t->state == WEFT__SUSPENDED) {
            weft__wake(t, want & ready);
            woken |= want & ready;
        }
    }
    f->ready |= (uint8_t)(ready & ~woken);
    if (f->watch && (ready & WEFT_READABLE))
        f->watch(f->watch_arg);
}

static const char *events_name(int events)
{
    return events == WEFT_READABLE   ? "readable"
         : events == WEFT_WRITABLE ? "writable"
                                   : "readable or writable";
}

/* Wait on fd; `fresh`: the caller just saw EAGAIN, so any remembered edge
 * for these events is stale. */
static int wait_fd(weft_task *t, int fd, int events, int64_t deadline, bool fresh)
{
    weft_loop *loop = t->loop;
    if (fd < 0)
        return weft__seterr(-EBADF, "weft_wait_fd: fd %d: %s", fd, weft_strerror(-EBADF));
    if (events <= 0 || (events & ~(WEFT_READABLE | WEFT_WRITABLE)))
        return weft__seterr(-EINVAL, "weft_wait_fd: fd %d: bad event mask %d", fd, events);
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_wait_fd: fd %d: %s", fd,
                            weft_strerror(-ECANCELED));
    /* Grow the table only for an open fd: a bogus number must not make it huge. */
    if (fd >= loop->nfds && fcntl(fd, F_GETFD) < 0)
        return weft__seterr(-EBADF, "weft_wait_fd: fd %d: %s", fd, weft_strerror(-EBADF));
    weft__fd *f = fd_record(loop, fd);
    if (!f)
        return weft__seterr(-ENOMEM, "weft_wait_fd: fd %d: out of memory", fd);
    if (!f->registered) {
        int rc = weft__backend_add(loop, fd);
        if (rc == -EPERM) {
            f->unpollable = 1; /* regular files and the like: always ready */
        } else if (rc < 0) {
            return weft__seterr(rc, "weft_wait_fd: fd %d: %s", fd, weft_strerror(rc));
        }
        f->registered = 1;
        f->ready = 0;
        f->closed = 0;
    }
    /* Ready at once: no wait, so it counts against the budget. */
    if (f->unpollable) {
        weft__coop_spend(t);
        return events;
    }
    if (fresh)
        f->ready &= (uint8_t)~events;
    if (f->closed & events) {
        weft__coop_spend(t);
        return f->closed & events;
    }
    if (f->ready & events) {
        int r = f->ready & events;
        f->ready &= (uint8_t)~r;
        weft__coop_spend(t);
        return r;
    }
    t->wait_kind = WEFT__WAIT_FD;
    weft__task_run *run = weft__run(t);
    run->wait_fd = fd;
    run->wait_events = events;
    weft__list_push_back(&f->waiters, &run->wait_link);
    loop->io_waiters++;
    int64_t started = weft__clock_ns();
    int rc = weft__wait(t, deadline, -ETIMEDOUT);
    loop->io_waiters--;
    weft__list_remove(&run->wait_link);
    if (rc < 0)
        return weft__wait_failed(rc, "weft_wait_fd", started, deadline, "fd %d to be %s", fd,
                                 events_name(events));
    return rc;
}

int weft__fd_watch(int fd, void (*fn)(void *arg), void *arg)
{
    weft_loop *loop = weft__loop();
    if (!loop)
        return WEFT_ENOLOOP;
    if (fd < 0 || (fd >= loop->nfds && fcntl(fd, F_GETFD) < 0))
        return -EBADF;
    weft__fd *f = fd_record(loop, fd);
    if (!f)
        return -ENOMEM;
    if (!f->registered) {
        int rc = weft__backend_add(loop, fd);
        if (rc < 0)
            return rc;
        f->registered = 1;
        f->ready = 0;
        f->closed = 0;
    }
    f->watch = fn;
    f->watch_arg = arg;
    return 0;
}

int weft__wait_fd(int fd, int events, int64_t deadline, bool fresh)
{
    weft_task *t = weft__require_task("weft_wait_fd");
    if (!t)
        return WEFT_ENOTASK;
    return wait_fd(t, fd, events, deadline, fresh);
}

void weft__fd_consumed(int fd, int events)
{
    weft_loop *loop = weft__loop();
    if (loop && fd >= 0 && fd < loop->nfds)
        loop->fds[fd].ready &= (uint8_t)~events;
}

int weft_fd_seen_ready(int fd)
{
    weft_loop *loop = weft__loop();
    if (!loop || fd < 0 || fd >= loop->nfds || !loop->fds[fd].registered)
        return 0;
    return loop->fds[fd].ready | loop->fds[fd].closed;
}

int weft_wait_fd(int fd, int events, int64_t deadline)
{
    weft_task *t = weft__require_task("weft_wait_fd");
    if (!t)
        return WEFT_ENOTASK;
    return wait_fd(t, fd, events, deadline, false);
}

/* read(2) or write(2) tried first; on EAGAIN wait for readiness and retry.
 * A timeout or cancellation names the caller's function, not the wait. */
static ssize_t try_then_wait(int fd, void *buf, size_t len, int64_t deadline, bool writing)
{
    const char *name = writing ? "weft_write" : "weft_read";
    weft_task *t = weft__require_task(name);
    if (!t)
        return WEFT_ENOTASK;
    if (!buf && len)
        return weft__seterr(-EINVAL, "%s: fd %d: NULL buffer", name, fd);
    int64_t started = 0;
    for (;;) {
        if (weft__cancel_visible(t))
            return weft__seterr(-ECANCELED, "%s: fd %d: %s", name, fd,
                                weft_strerror(-ECANCELED));
        ssize_t n = writing ? write(fd, buf, len) : read(fd, buf, len);
        if (n >= 0) {
            weft__coop_spend(t);
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return weft__seterr(-errno, "%s: fd %d: %s", name, fd, strerror(errno));
        if (!started)
            started = weft__clock_ns();
        int rc = wait_fd(t, fd, writing ? WEFT_WRITABLE : WEFT_READABLE, deadline, true);
        if (rc < 0)
            return weft__wait_failed(rc, name, started, deadline, "fd %d to be %s", fd,
                                     writing ? "writable" : "readable");
    }
}

ssize_t weft_read(int fd, void *buf, size_t len, int64_t deadline)
{
    return try_then_wait(fd, buf, len, deadline, false);
}

ssize_t weft_write(int fd, const void *buf, size_t len, int64_t deadline)
{
    return try_then_wait(fd, (void *)buf, len, deadline, true);
}

ssize_t weft_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    size_t done = 0;
    if (!buf && len)
        return weft__seterr(-EINVAL, "weft_write_all: fd %d: NULL buffer", fd);
    if (len > SSIZE_MAX)
        return weft__seterr(-EINVAL, "weft_write_all: fd %d: len %zu above SSIZE_MAX", fd, len);
    while (done < len) {
        ssize_t n = weft_write(fd, (const char *)buf + done, len - done, deadline);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

int weft_set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return weft__seterr(-errno, "weft_set_nonblocking: fd %d: %s", fd, strerror(errno));
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return weft__seterr(-errno, "weft_set_nonblocking: fd %d: %s", fd, strerror(errno));
    return 0;
}

void weft_fd_forget(int fd)
{
    weft_loop *loop = weft__loop();
    if (!loop || fd < 0 || fd >= loop->nfds)
        return;
    weft__fd *f = &loop->fds[fd];
    wake_list(&f->waiters, -EBADF);
    f->watch = NULL;
    f->watch_arg = NULL;
    f->registered = 0;
    f->ready = 0;
    f->unpollable = 0;
}

int weft_close(int fd)
{
    weft_fd_forget(fd);
    if (close(fd) < 0)
        return weft__seterr(-errno, "weft_close: fd %d: %s", fd, strerror(errno));
    return 0;
}
