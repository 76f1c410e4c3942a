/* SPDX-License-Identifier: MIT */
/*
 * TCP and Unix sockets: connect (every address, Happy Eyeballs staggering),
 * listen and accept.  Every fd is non-blocking and close-on-exec.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net-internal.h"
#include "weft/io.h"
#include "weft/sync.h"
#include "weft/task.h"
#include "weft/time.h"

#define ADDRS_MAX 16
#define STAGGER_DEFAULT_MS 250

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Connect one socket; returns the fd or -errno.  Leaves the message to the
 * caller. */
static int connect_one(const weft_addr *addr, bool nodelay, int64_t deadline)
{
    int family = addr->storage.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc;
    do {
        rc = connect(fd, (const struct sockaddr *)&addr->storage, addr->len);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS && errno != EAGAIN) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (rc < 0) {
        rc = weft_wait_fd(fd, WEFT_WRITABLE, deadline);
        if (rc >= 0) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            rc = err ? -err : 0;
        }
        if (rc < 0) {
            weft_close(fd);
            return rc;
        }
    }
    if (nodelay && family != AF_UNIX)
        set_nodelay(fd);
    return fd;
}

int weft_connect_addr(const weft_addr *addr, int64_t deadline)
{
    if (!addr || addr->len == 0)
        return weft__seterr(-EINVAL, "weft_connect_addr: no address");
    int rc = connect_one(addr, true, deadline);
    if (rc < 0) {
        char name[128];
        weft__seterr(rc, "connect %s: %s", weft_addr_format(addr, name, sizeof name),
                     weft_strerror(rc));
    }
    return rc;
}

/* ------------------------------------------------------------ the race */

typedef struct race {
    const weft_addr *addrs;
    size_t n;
    bool nodelay;
    int64_t deadline;
    weft_event changed;     /* an attempt ended */
    int winner;             /* fd, or -1 */
    int pending;            /* attempts started and not ended */
    int failures;           /* attempts that failed */
    int last_err;
    char why[200];          /* "addr: reason; addr: reason" */
} race;

typedef struct attempt {
    race *r;
    size_t index;
} attempt;

static int attempt_run(void *arg)
{
    attempt *a = arg;
    race *r = a->r;
    int fd = connect_one(&r->addrs[a->index], r->nodelay, r->deadline);
    if (fd >= 0) {
        if (r->winner < 0)
            r->winner = fd;
        else
            weft_close(fd); /* lost the race by a hair */
    } else {
        if (fd != -ECANCELED) {
            char name[128];
            size_t used = strlen(r->why);
            snprintf(r->why + used, sizeof r->why - used, "%s%s: %s", used ? "; " : "",
                     weft_addr_format(&r->addrs[a->index], name, sizeof name),
                     weft_strerror(fd));
            r->last_err = fd;
        }
        r->failures++;
    }
    r->pending--;
    weft_event_set(&r->changed);
    return 0;
}

static int connect_race(race *r, int64_t stagger_ns)
{
    weft_task *tasks[ADDRS_MAX] = { 0 };
    attempt attempts[ADDRS_MAX];
    size_t started = 0;
    int rc = 0;
    while (r->winner < 0) {
        if (started < r->n) {
            attempts[started] = (attempt){ r, started };
            weft_task_opts o = { .name = "weft_tcp_connect attempt" };
            tasks[started] = weft_spawn(attempt_run, &attempts[started], &o);
            if (!tasks[started]) {
                rc = -ENOMEM;
                break;
            }
            r->pending++;
            started++;
        } else if (r->pending == 0) {
            break; /* every attempt failed */
        }
        /* Wait for a change; start the next attempt after the stagger delay
         * or as soon as every pending attempt has failed. */
        int64_t until = r->deadline;
        if (started < r->n && stagger_ns >= 0) {
            int64_t next = weft_now() + stagger_ns;
            if (until == WEFT_NO_DEADLINE || next < until)
                until = next;
        }
        int failures = r->failures;
        while (r->winner < 0) {
            weft_event_clear(&r->changed);
            if (started < r->n && r->failures > failures)
                break; /* an attempt failed: the next one starts now (RFC 8305) */
            if (started == r->n && r->pending == 0)
                break;
            int w = weft_event_wait_until(&r->changed, until);
            if (w == -ETIMEDOUT && until != r->deadline)
                break; /* stagger delay over */
            if (w < 0) {
                rc = w;
                break;
            }
        }
        if (rc < 0)
            break;
    }
    /* Stop the losers and wait for them: their frames live on this stack. */
    weft_shield shield;
    weft_shield_begin(&shield, WEFT_NO_TIMEOUT);
    for (size_t i = 0; i < started; i++)
        weft_cancel(tasks[i]);
    for (size_t i = 0; i < started; i++)
        weft_join(tasks[i], NULL);
    weft_shield_end(&shield);
    if (r->winner >= 0)
        return r->winner;
    if (rc == 0)
        rc = r->last_err ? r->last_err : -ECONNREFUSED;
    return rc;
}

/* Connect to addrs[0..n) (n >= 1); messages name `host` and `port`, or
 * the count of addresses when host is NULL. */
static int connect_any(const weft_addr *addrs, size_t n, const weft_connect_opts *opts,
                       int64_t deadline, const char *host, uint16_t port)
{
    if (n == 1) { /* the common case: no race, no extra task */
        int fd = connect_one(&addrs[0], !opts->nagle, deadline);
        if (fd < 0) {
            char name[128];
            weft__seterr(fd, "connect %s: %s", weft_addr_format(&addrs[0], name, sizeof name),
                         weft_strerror(fd));
        }
        return fd;
    }
    race r = {
        .addrs = addrs, .n = n, .nodelay = !opts->nagle, .deadline = deadline, .winner = -1,
    };
    weft_event_init(&r.changed);
    int64_t stagger = opts->stagger_ms == 0 ? STAGGER_DEFAULT_MS * 1000000LL
                    : opts->stagger_ms < 0 ? -1 : opts->stagger_ms * 1000000LL;
    int rc = connect_race(&r, stagger);
    weft_event_close(&r.changed);
    if (rc < 0 && host)
        weft__seterr(rc, "connect %s port %u: %s", host, port,
                     r.why[0] ? r.why : weft_strerror(rc));
    else if (rc < 0)
        weft__seterr(rc, "connect %zu addresses: %s", n, r.why[0] ? r.why : weft_strerror(rc));
    return rc;
}

int weft_connect_addrs(const weft_addr *addrs, size_t n, const weft_connect_opts *opts,
                       int64_t deadline)
{
    static const weft_connect_opts defaults = { 0 };
    if (!addrs || n == 0 || n > ADDRS_MAX)
        return weft__seterr(-EINVAL, "weft_connect_addrs: 1 to %d addresses, not %zu",
                            ADDRS_MAX, addrs ? n : 0);
    return connect_any(addrs, n, opts ? opts : &defaults, deadline, NULL, 0);
}

int weft_tcp_connect(const char *host, uint16_t port, const weft_connect_opts *opts,
                     int64_t deadline)
{
    static const weft_connect_opts defaults = { 0 };
    if (!opts)
        opts = &defaults;
    if (!host || !*host || port == 0)
        return weft__seterr(-EINVAL, "weft_tcp_connect: %s", !host || !*host ? "no host"
                                                                              : "port 0");
    if (opts->family != AF_UNSPEC && opts->family != AF_INET && opts->family != AF_INET6)
        return weft__seterr(-EINVAL, "weft_tcp_connect: opts.family %d is not AF_UNSPEC, "
                            "AF_INET or AF_INET6", opts->family);
    weft_addr addrs[ADDRS_MAX];
    int n = weft_resolve(host, port, opts->family, addrs, ADDRS_MAX, deadline);
    if (n < 0)
        return n;
    return connect_any(addrs, (size_t)n, opts, deadline, host, port);
}

/* ------------------------------------------------------------ listening */

static int listen_addr(const weft_addr *a, int backlog)
{
    int fd = socket(a->storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    if (a->storage.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->storage.ss_family == AF_INET6) /* "::" takes IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (const struct sockaddr *)&a->storage, a->len) < 0
        || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int weft_tcp_listen(const char *host, uint16_t port, int backlog)
{
    weft_addr a;
    if (!host || !*host)
        host = "0.0.0.0";
    else if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (!weft__addr_numeric(host, port, &a))
        return weft__seterr(-EINVAL, "weft_tcp_listen: '%s' is not a numeric address", host);
    int fd = listen_addr(&a, backlog);
    if (fd < 0) {
        char name[128];
        weft__seterr(fd, "weft_tcp_listen %s: %s", weft_addr_format(&a, name, sizeof name),
                     weft_strerror(fd));
    }
    return fd;
}

static int unix_addr(const char *path, weft_addr *a, const char *fn)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_un *un = (struct sockaddr_un *)&a->storage;
    if (!path || !*path)
        return weft__seterr(-EINVAL, "%s: %s socket path", fn, path ? "empty" : "NULL");
    if (strlen(path) >= sizeof un->sun_path)
        return weft__seterr(-ENAMETOOLONG, "%s: socket path '%.40s...' longer than %zu bytes",
                            fn, path, sizeof un->sun_path - 1);
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, path);
    a->len = sizeof *un;
    return 0;
}

int weft_unix_listen(const char *path, int backlog)
{
    weft_addr a;
    int rc = unix_addr(path, &a, "weft_unix_listen");
    if (rc < 0)
        return rc;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket from an earlier run */
    int fd = listen_addr(&a, backlog);
    if (fd < 0)
        weft__seterr(fd, "weft_unix_listen %s: %s", path, weft_strerror(fd));
    return fd;
}

int weft_unix_connect(const char *path, int64_t deadline)
{
    weft_addr a;
    int rc = unix_addr(path, &a, "weft_unix_connect");
    if (rc < 0)
        return rc;
    int fd = connect_one(&a, false, deadline);
    if (fd < 0)
        weft__seterr(fd, "weft_unix_connect %s: %s", path, weft_strerror(fd));
    return fd;
}

int weft_accept(int listen_fd, weft_addr *peer, int64_t deadline)
{
    for (;;) {
        weft_addr a;
        a.len = sizeof a.storage;
        int fd = accept4(listen_fd, (struct sockaddr *)&a.storage, &a.len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (a.storage.ss_family == AF_INET || a.storage.ss_family == AF_INET6)
                set_nodelay(fd);
            if (peer)
                *peer = a;
            return fd;
        }
        int err = errno;
        if (err == EINTR || err == ECONNABORTED)
            continue;
        if (err != EAGAIN && err != EWOULDBLOCK)
            return weft__seterr(-err, "weft_accept fd %d: %s", listen_fd, strerror(err));
        int rc = weft_wait_fd(listen_fd, WEFT_READABLE, deadline);
        if (rc < 0)
            return weft__seterr(rc, "weft_accept fd %d: %s", listen_fd, weft_strerror(rc));
    }
}

int weft_local_port(int fd)
{
    weft_addr a;
    a.len = sizeof a.storage;
    if (getsockname(fd, (struct sockaddr *)&a.storage, &a.len) < 0)
        return weft__seterr(-errno, "weft_local_port: fd %d: %s", fd, strerror(errno));
    if (a.storage.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&a.storage)->sin_port);
    if (a.storage.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&a.storage)->sin6_port);
    return weft__seterr(-EAFNOSUPPORT, "weft_local_port: fd %d is not an IP socket", fd);
}
