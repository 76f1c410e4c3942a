/* SPDX-License-Identifier: MIT */
/*
 * Networking, sockets: weft_resolve and its TTL cache, weft_addr_format,
 * weft_tcp_listen / weft_tcp_connect (errors, deadlines, Happy Eyeballs),
 * weft_accept, Unix sockets, cancellation of blocked accept / connect and
 * fd leaks.  Binds to 127.0.0.1 / ::1 only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_helpers.h"
#include <weft.h>

/* ------------------------------------------------------------ helpers */


static void assert_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_true(fl & O_NONBLOCK);
    int fdfl = fcntl(fd, F_GETFD);
    assert_true(fdfl >= 0);
    assert_true(fdfl & FD_CLOEXEC);
}

static int nodelay(int fd)
{
    int v = -1;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    return v;
}

static void assert_errmsg_contains(const char *what)
{
    const char *msg = weft_errmsg();
    assert_non_null(msg);
    if (!strstr(msg, what)) {
        fprintf(stderr, "weft_errmsg() = \"%s\", expected it to contain \"%s\"\n", msg, what);
        fail();
    }
}

/* A port on 127.0.0.1 where nothing listens (probably: it was free a moment
 * ago). */
static int closed_port(void)
{
    int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int port = weft_local_port(lfd);
    assert_true(port > 0);
    assert_int_equal(weft_close(lfd), 0);
    return port;
}

/* Exchange "ping" / "pong" over two connected fds, `a` speaking first. */
static void ping_pong(int a, int b)
{
    char buf[8];
    assert_int_equal(weft_write_all(a, "ping", 4, weft_deadline_ms(2000)), 4);
    assert_int_equal(weft_read(b, buf, sizeof buf, weft_deadline_ms(2000)), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(weft_write_all(b, "pong", 4, weft_deadline_ms(2000)), 4);
    assert_int_equal(weft_read(a, buf, sizeof buf, weft_deadline_ms(2000)), 4);
    assert_memory_equal(buf, "pong", 4);
}

/*
 * A "blackhole": a listening socket whose accept queue is full (backlog 1,
 * filled by connections nobody accepts), so the kernel drops further SYNs
 * and a connect to it hangs.  Portable on Linux without any route tricks.
 */
struct blackhole {
    int lfd;
    int port;
    int fillers[32];
    int nfill;
};

static void blackhole_close(struct blackhole *b)
{
    for (int i = 0; i < b->nfill; i++)
        close(b->fillers[i]);
    b->nfill = 0;
    if (b->lfd >= 0)
        weft_close(b->lfd);
    b->lfd = -1;
}

/* Returns 0, or -1 when no connect to it stays pending (then the caller
 * skips). */
static int blackhole_open(struct blackhole *b, const char *host, uint16_t port)
{
    memset(b, 0, sizeof *b);
    b->lfd = weft_tcp_listen(host, port, 1);
    if (b->lfd < 0)
        return -1;
    b->port = weft_local_port(b->lfd);
    assert_true(b->port > 0);
    weft_addr addr;
    assert_int_equal(weft_resolve(host, (uint16_t)b->port, AF_UNSPEC, &addr, 1,
                                  weft_deadline_ms(2000)),
                     1);
    while (b->nfill < 32) {
        int fd = socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        b->fillers[b->nfill++] = fd;
        int rc = connect(fd, (const struct sockaddr *)&addr.storage, addr.len);
        assert_true(rc == 0 || errno == EINPROGRESS);
        if (rc == 0)
            continue;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 50) == 0)
            return 0; /* this one hangs: so will the next */
    }
    blackhole_close(b);
    return -1;
}

/* Which families "localhost" resolves to. */
static void localhost_families(int *v4, int *v6)
{
    weft_addr a[16];
    int n = weft_resolve("localhost", 80, AF_UNSPEC, a, 16, weft_deadline_ms(5000));
    assert_true(n >= 1);
    *v4 = *v6 = 0;
    for (int i = 0; i < n; i++) {
        if (a[i].storage.ss_family == AF_INET)
            *v4 = 1;
        else if (a[i].storage.ss_family == AF_INET6)
            *v6 = 1;
    }
}

/* A server task: accept one connection on `lfd`, then run ping_pong's
 * second half. */
struct server {
    int lfd;
    weft_addr peer;
    int fd;
};

static int accept_and_answer(void *arg)
{
    struct server *sv = arg;
    sv->fd = weft_accept(sv->lfd, &sv->peer, weft_deadline_ms(3000));
    if (sv->fd < 0)
        return sv->fd;
    char buf[8];
    ssize_t n = weft_read(sv->fd, buf, sizeof buf, weft_deadline_ms(3000));
    if (n != 4 || memcmp(buf, "ping", 4) != 0)
        return -1000;
    if (weft_write_all(sv->fd, "pong", 4, weft_deadline_ms(3000)) != 4)
        return -1001;
    return 0;
}

/* The client half: `fd` connected, talk to accept_and_answer. */
static void client_ping(int fd)
{
    char buf[8];
    assert_int_equal(weft_write_all(fd, "ping", 4, weft_deadline_ms(3000)), 4);
    assert_int_equal(weft_read(fd, buf, sizeof buf, weft_deadline_ms(3000)), 4);
    assert_memory_equal(buf, "pong", 4);
}

/* ------------------------------------------------------------ addresses */

static void test_addr_format(void **state)
{
    (void)state;
    char buf[128];
    weft_addr a;

    memset(&a, 0, sizeof a);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a.storage;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(80);
    assert_int_equal(inet_pton(AF_INET, "1.2.3.4", &v4->sin_addr), 1);
    a.len = sizeof *v4;
    assert_ptr_equal(weft_addr_format(&a, buf, sizeof buf), buf);
    assert_string_equal(buf, "1.2.3.4:80");

    memset(&a, 0, sizeof a);
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a.storage;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(443);
    assert_int_equal(inet_pton(AF_INET6, "::1", &v6->sin6_addr), 1);
    a.len = sizeof *v6;
    assert_string_equal(weft_addr_format(&a, buf, sizeof buf), "[::1]:443");
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::42", &v6->sin6_addr), 1);
    v6->sin6_port = htons(65535);
    assert_string_equal(weft_addr_format(&a, buf, sizeof buf), "[2001:db8::42]:65535");

    memset(&a, 0, sizeof a);
    struct sockaddr_un *un = (struct sockaddr_un *)&a.storage;
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, "/tmp/weft.sock");
    a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(un->sun_path) + 1);
    assert_string_equal(weft_addr_format(&a, buf, sizeof buf), "/tmp/weft.sock");

    /* a short buffer: truncated and terminated */
    memset(&a, 0, sizeof a);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(8080);
    assert_int_equal(inet_pton(AF_INET, "192.168.100.200", &v4->sin_addr), 1);
    a.len = sizeof *v4;
    memset(buf, 'X', sizeof buf);
    assert_ptr_equal(weft_addr_format(&a, buf, 6), buf);
    assert_true(strlen(buf) <= 5);
    assert_int_equal(buf[6], 'X');
}

static int resolve_numeric_main(void *arg)
{
    (void)arg;
    weft_addr a[4];
    char buf[64];
    assert_int_equal(weft_resolve("127.0.0.1", 80, AF_UNSPEC, a, 4, weft_deadline_ms(1000)), 1);
    assert_int_equal(a[0].storage.ss_family, AF_INET);
    assert_int_equal(a[0].len, sizeof(struct sockaddr_in));
    assert_string_equal(weft_addr_format(&a[0], buf, sizeof buf), "127.0.0.1:80");

    assert_int_equal(weft_resolve("::1", 8443, AF_UNSPEC, a, 4, weft_deadline_ms(1000)), 1);
    assert_int_equal(a[0].storage.ss_family, AF_INET6);
    assert_string_equal(weft_addr_format(&a[0], buf, sizeof buf), "[::1]:8443");

    assert_int_equal(weft_resolve("10.1.2.3", 1, AF_INET, a, 1, weft_deadline_ms(1000)), 1);
    assert_string_equal(weft_addr_format(&a[0], buf, sizeof buf), "10.1.2.3:1");
    return 0;
}

static void test_resolve_numeric(void **state)
{
    (void)state;
    run_task(resolve_numeric_main);
}

static int resolve_localhost_main(void *arg)
{
    (void)arg;
    weft_addr a[16];
    char buf[64];
    int n = weft_resolve("localhost", 8080, AF_UNSPEC, a, 16, weft_deadline_ms(5000));
    assert_true(n >= 1 && n <= 16);
    for (int i = 0; i < n; i++) {
        int fam = a[i].storage.ss_family;
        assert_true(fam == AF_INET || fam == AF_INET6);
        weft_addr_format(&a[i], buf, sizeof buf);
        if (fam == AF_INET)
            assert_string_equal(buf, "127.0.0.1:8080");
        else
            assert_string_equal(buf, "[::1]:8080");
    }
    /* family filter and max */
    n = weft_resolve("localhost", 80, AF_INET, a, 16, weft_deadline_ms(5000));
    assert_true(n >= 1);
    for (int i = 0; i < n; i++)
        assert_int_equal(a[i].storage.ss_family, AF_INET);
    assert_int_equal(weft_resolve("localhost", 80, AF_UNSPEC, a, 1, weft_deadline_ms(5000)), 1);

    /* the port of a cached answer is the one asked for */
    assert_true(weft_resolve("localhost", 80, AF_INET, a, 16, weft_deadline_ms(5000)) >= 1);
    assert_true(weft_resolve("localhost", 443, AF_INET, a, 16, weft_deadline_ms(5000)) >= 1);
    assert_string_equal(weft_addr_format(&a[0], buf, sizeof buf), "127.0.0.1:443");
    return 0;
}

static void test_resolve_localhost(void **state)
{
    (void)state;
    run_task(resolve_localhost_main);
}

/* Whether weft_resolve(host) suspends: a task spawned just before only
 * runs if it does (spawn never switches). */
static int ran_flag;
static int set_ran_flag(void *arg)
{
    (void)arg;
    ran_flag = 1;
    return 0;
}

static int resolve_suspends(const char *host)
{
    ran_flag = 0;
    weft_task *t = spawn_named(set_ran_flag, NULL, "flag");
    weft_addr a[8];
    int n = weft_resolve(host, 80, AF_UNSPEC, a, 8, weft_deadline_ms(5000));
    assert_true(n >= 1);
    int suspended = ran_flag;
    assert_int_equal(join_status(t), 0);
    return suspended;
}

static int resolve_cache_main(void *arg)
{
    (void)arg;
    weft_resolve_cache_ttl_ms(10000);
    weft_resolve_cache_clear();
    assert_true(resolve_suspends("localhost"));  /* miss: thread pool */
    assert_false(resolve_suspends("localhost")); /* hit */
    assert_false(resolve_suspends("localhost"));
    /* numeric hosts are answered at once */
    assert_false(resolve_suspends("127.0.0.1"));
    assert_false(resolve_suspends("::1"));
    /* clear */
    weft_resolve_cache_clear();
    assert_true(resolve_suspends("localhost"));
    assert_false(resolve_suspends("localhost"));
    /* ttl 0: no caching; the entry cached above expires by the new TTL */
    weft_resolve_cache_ttl_ms(0);
    assert_true(resolve_suspends("localhost"));
    assert_true(resolve_suspends("localhost"));
    /* a short TTL expires (the entry from before the TTL of 0 would count
     * again under a TTL it is younger than: clear it) */
    weft_resolve_cache_clear();
    weft_resolve_cache_ttl_ms(300);
    assert_true(resolve_suspends("localhost"));
    assert_false(resolve_suspends("localhost"));
    assert_int_equal(weft_sleep_ms(350), 0);
    assert_true(resolve_suspends("localhost"));
    weft_resolve_cache_ttl_ms(10000);
    return 0;
}

static void test_resolve_cache(void **state)
{
    (void)state;
    run_task(resolve_cache_main);
}

static int resolve_one(void *arg)
{
    weft_addr a;
    return weft_resolve(arg, 80, AF_UNSPEC, &a, 1, weft_deadline_ms(5000));
}

static int resolve_errors_main(void *arg)
{
    (void)arg;
    weft_addr a[4];
    int rc = weft_resolve("nonexistent.invalid", 80, AF_UNSPEC, a, 4, weft_deadline_ms(5000));
    assert_int_equal(rc, WEFT_ERESOLVE);
    printf("# resolve nonexistent.invalid: %s\n", weft_errmsg());
    assert_errmsg_contains("nonexistent.invalid");

    rc = weft_tcp_connect("nonexistent.invalid", 80, NULL, weft_deadline_ms(5000));
    assert_int_equal(rc, WEFT_ERESOLVE);
    assert_errmsg_contains("nonexistent.invalid");

    /* a numeric IPv4 address asked for as IPv6 (and vice versa) */
    assert_int_equal(weft_resolve("127.0.0.1", 80, AF_INET6, a, 4, weft_deadline_ms(5000)),
                     WEFT_ERESOLVE);
    assert_int_equal(weft_resolve("::1", 80, AF_INET, a, 4, weft_deadline_ms(5000)),
                     WEFT_ERESOLVE);

    /* a deadline already passed, for a name not cached */
    weft_resolve_cache_clear();
    assert_int_equal(weft_resolve("localhost", 80, AF_UNSPEC, a, 4, weft_deadline_ms(-1)),
                     -ETIMEDOUT);

    /* cancelled while the lookup runs on the thread pool: a task cancelled
     * before it starts sees -ECANCELED at its first suspension */
    weft_resolve_cache_clear();
    weft_task *t = spawn_named(resolve_one, "localhost", "resolver");
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(join_status(t), -ECANCELED);
    /* the abandoned lookup does not break the next one */
    assert_true(weft_resolve("localhost", 80, AF_UNSPEC, a, 4, weft_deadline_ms(5000)) >= 1);
    return 0;
}

/* Under ASan this also checks that a lookup refused before it was queued
 * (cancelled, deadline passed, outside a task) is freed: the thread pool
 * hands it back through on_detached_done. */
static void test_resolve_errors(void **state)
{
    (void)state;
    run_task(resolve_errors_main);
    /* outside a task, a name that is not cached needs one */
    weft_addr a;
    weft_resolve_cache_clear();
    assert_int_equal(weft_resolve("localhost", 80, AF_UNSPEC, &a, 1, WEFT_NO_DEADLINE),
                     WEFT_ENOTASK);
}

static int bad_args_main(void *arg)
{
    (void)arg;
    weft_addr a[2];
    int64_t dl = weft_deadline_ms(1000);
    assert_int_equal(weft_resolve(NULL, 80, AF_UNSPEC, a, 2, dl), -EINVAL);
    assert_int_equal(weft_resolve("127.0.0.1", 80, AF_UNSPEC, NULL, 2, dl), -EINVAL);
    assert_int_equal(weft_resolve("127.0.0.1", 80, AF_UNSPEC, a, 0, dl), -EINVAL);
    assert_int_equal(weft_resolve("127.0.0.1", 80, AF_UNIX, a, 2, dl), -EINVAL);
    assert_int_equal(weft_resolve("127.0.0.1", 80, 12345, a, 2, dl), -EINVAL);

    assert_int_equal(weft_tcp_connect(NULL, 80, NULL, dl), -EINVAL);
    weft_connect_opts bad_family = {.family = 12345};
    assert_int_equal(weft_tcp_connect("127.0.0.1", 80, &bad_family, dl), -EINVAL);
    assert_int_equal(weft_connect_addr(NULL, dl), -EINVAL);

    assert_true(weft_tcp_listen("not an address", 0, 0) < 0);
    assert_true(weft_tcp_listen("256.1.1.1", 0, 0) < 0);
    assert_int_equal(weft_unix_listen(NULL, 0), -EINVAL);
    assert_int_equal(weft_unix_connect(NULL, dl), -EINVAL);
    char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    int rc = weft_unix_listen(longpath, 0);
    assert_true(rc == -ENAMETOOLONG || rc == -EINVAL);
    rc = weft_unix_connect(longpath, dl);
    assert_true(rc == -ENAMETOOLONG || rc == -EINVAL);

    assert_int_equal(weft_local_port(-1), -EBADF);
    assert_true(weft_accept(-1, NULL, dl) < 0);
    return 0;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    run_task(bad_args_main);
}

/* ------------------------------------------------------------ TCP */

static int listen_main(void *arg)
{
    (void)arg;
    int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    assert_nonblock_cloexec(lfd);
    int port = weft_local_port(lfd);
    assert_true(port > 0 && port < 65536);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    assert_int_equal(sin.sin_family, AF_INET);
    assert_int_equal(ntohs(sin.sin_port), port);
    assert_int_equal(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
    int reuse = 0;
    len = sizeof reuse;
    assert_int_equal(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &reuse, &len), 0);
    assert_true(reuse != 0);

    /* the same port again: in use */
    int again = weft_tcp_listen("127.0.0.1", (uint16_t)port, 0);
    assert_int_equal(again, -EADDRINUSE);
    char want[32];
    snprintf(want, sizeof want, "%d", port);
    assert_errmsg_contains(want);
    assert_int_equal(weft_close(lfd), 0);

    /* "localhost" is accepted too */
    lfd = weft_tcp_listen("localhost", 0, 16);
    assert_true(lfd >= 0);
    assert_true(weft_local_port(lfd) > 0);
    assert_int_equal(weft_close(lfd), 0);
    return 0;
}

static void test_listen(void **state)
{
    (void)state;
    run_task(listen_main);
}

static int exchange_main(void *arg)
{
    (void)arg;
    struct server sv = {.lfd = weft_tcp_listen("127.0.0.1", 0, 0), .fd = -1};
    assert_true(sv.lfd >= 0);
    int port = weft_local_port(sv.lfd);
    weft_task *t = spawn_named(accept_and_answer, &sv, "server");

    int fd = weft_tcp_connect("127.0.0.1", (uint16_t)port, NULL, weft_deadline_ms(3000));
    assert_true(fd >= 0);
    assert_nonblock_cloexec(fd);
    assert_true(nodelay(fd) != 0);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);

    /* the accepted fd and the peer address */
    assert_nonblock_cloexec(sv.fd);
    assert_true(nodelay(sv.fd) != 0);
    assert_int_equal(sv.peer.storage.ss_family, AF_INET);
    char buf[64], want[64];
    struct sockaddr_in local;
    socklen_t len = sizeof local;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&local, &len), 0);
    snprintf(want, sizeof want, "127.0.0.1:%d", ntohs(local.sin_port));
    assert_string_equal(weft_addr_format(&sv.peer, buf, sizeof buf), want);

    /* both ways, plain fds */
    ping_pong(fd, sv.fd);
    ping_pong(sv.fd, fd);
    /* EOF reaches the other side */
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_read(sv.fd, buf, sizeof buf, weft_deadline_ms(2000)), 0);
    assert_int_equal(weft_close(sv.fd), 0);

    /* Nagle left on when asked; "localhost" as the host; strictly one
     * address after another */
    weft_connect_opts opts = {.nagle = true, .stagger_ms = -1, .family = AF_INET};
    sv.fd = -1;
    t = spawn_named(accept_and_answer, &sv, "server");
    fd = weft_tcp_connect("localhost", (uint16_t)port, &opts, weft_deadline_ms(3000));
    assert_true(fd >= 0);
    assert_int_equal(nodelay(fd), 0);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(sv.fd), 0);

    /* weft_connect_addr */
    weft_addr a;
    assert_int_equal(weft_resolve("127.0.0.1", (uint16_t)port, AF_INET, &a, 1,
                                  weft_deadline_ms(1000)),
                     1);
    t = spawn_named(accept_and_answer, &sv, "server");
    fd = weft_connect_addr(&a, weft_deadline_ms(3000));
    assert_true(fd >= 0);
    assert_nonblock_cloexec(fd);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(sv.fd), 0);

    assert_int_equal(weft_close(sv.lfd), 0);
    return 0;
}

static void test_connect_accept_exchange(void **state)
{
    (void)state;
    run_task(exchange_main);
}

/* Many clients at once, one acceptor. */
enum { NCLIENTS = 20 };
static int many_port;

static int many_client(void *arg)
{
    int i = (int)(intptr_t)arg;
    int fd = weft_tcp_connect("127.0.0.1", (uint16_t)many_port, NULL, weft_deadline_ms(3000));
    if (fd < 0)
        return fd;
    unsigned char c = (unsigned char)i, back = 0;
    if (weft_write_all(fd, &c, 1, weft_deadline_ms(3000)) != 1 ||
        weft_read(fd, &back, 1, weft_deadline_ms(3000)) != 1 || back != (unsigned char)(c + 1)) {
        weft_close(fd);
        return -1000;
    }
    return weft_close(fd);
}

static int many_echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char c;
    if (weft_read(fd, &c, 1, weft_deadline_ms(3000)) != 1)
        return -1;
    c++;
    int rc = weft_write_all(fd, &c, 1, weft_deadline_ms(3000)) == 1 ? 0 : -2;
    weft_close(fd);
    return rc;
}

static int many_main(void *arg)
{
    (void)arg;
    int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    many_port = weft_local_port(lfd);
    weft_task *c[NCLIENTS], *e[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        c[i] = spawn_named(many_client, (void *)(intptr_t)i, "client");
    for (int i = 0; i < NCLIENTS; i++) {
        int fd = weft_accept(lfd, NULL, weft_deadline_ms(3000));
        assert_true(fd >= 0);
        e[i] = spawn_named(many_echo, (void *)(intptr_t)fd, "echo");
    }
    for (int i = 0; i < NCLIENTS; i++) {
        assert_int_equal(join_status(c[i]), 0);
        assert_int_equal(join_status(e[i]), 0);
    }
    assert_int_equal(weft_close(lfd), 0);
    return 0;
}

static void test_many_clients(void **state)
{
    (void)state;
    run_task(many_main);
}

static int refused_main(void *arg)
{
    (void)arg;
    int port = closed_port();
    int before = count_fds();
    int rc = weft_tcp_connect("127.0.0.1", (uint16_t)port, NULL, weft_deadline_ms(3000));
    assert_int_equal(rc, -ECONNREFUSED);
    printf("# refused: %s\n", weft_errmsg());
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_errmsg_contains(want);

    weft_addr a;
    assert_int_equal(weft_resolve("127.0.0.1", (uint16_t)port, AF_INET, &a, 1,
                                  weft_deadline_ms(1000)),
                     1);
    assert_int_equal(weft_connect_addr(&a, weft_deadline_ms(3000)), -ECONNREFUSED);
    assert_errmsg_contains(want);
    assert_int_equal(count_fds(), before);
    return 0;
}

static void test_connect_refused(void **state)
{
    (void)state;
    run_task(refused_main);
}

static int connect_deadline_main(void *arg)
{
    (void)arg;
    struct blackhole b;
    if (blackhole_open(&b, "127.0.0.1", 0) != 0) {
        printf("# no blackhole: connects to a full backlog complete at once\n");
        return SKIP_STATUS;
    }
    int before = count_fds();
    int64_t t0 = weft_now(); /* the deadlines count from the call */
    int rc = weft_tcp_connect("127.0.0.1", (uint16_t)b.port, NULL, weft_deadline_ms(100));
    int64_t took = clock_ns() - t0;
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(took >= 100 * MS);
    assert_true(took < 1000 * MS);

    weft_addr a;
    assert_int_equal(weft_resolve("127.0.0.1", (uint16_t)b.port, AF_INET, &a, 1,
                                  weft_deadline_ms(1000)),
                     1);
    t0 = weft_now(); /* the deadlines count from the call */
    assert_int_equal(weft_connect_addr(&a, weft_deadline_ms(50)), -ETIMEDOUT);
    took = clock_ns() - t0;
    assert_true(took >= 50 * MS && took < 1000 * MS);
    /* a deadline already passed */
    assert_int_equal(weft_connect_addr(&a, weft_deadline_ms(-1)), -ETIMEDOUT);
    assert_int_equal(count_fds(), before);
    blackhole_close(&b);
    return 0;
}

static void test_connect_deadline(void **state)
{
    (void)state;
    run_task(connect_deadline_main);
}

static int unroutable_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_now(); /* the deadlines count from the call */
    int rc = weft_tcp_connect("10.255.255.1", 9, NULL, weft_deadline_ms(100));
    int64_t took = clock_ns() - t0;
    printf("# connect 10.255.255.1:9: %d (%s) after %lld ms\n", rc,
           rc < 0 ? weft_errmsg() : "connected", (long long)(took / MS));
    /* a sandbox may proxy every outgoing connection: accept success too */
    if (rc >= 0)
        assert_int_equal(weft_close(rc), 0);
    else
        assert_true(rc == -ETIMEDOUT || rc == -ENETUNREACH || rc == -EHOSTUNREACH ||
                    rc == -ECONNREFUSED);
    assert_true(took < 1000 * MS);
    return 0;
}

static void test_connect_unroutable(void **state)
{
    (void)state;
    run_task(unroutable_main);
}

/* Happy Eyeballs: a server on ::1 only, the client asks for "localhost". */
static int v6_only_main(void *arg)
{
    (void)arg;
    struct server sv = {.lfd = weft_tcp_listen("::1", 0, 0), .fd = -1};
    if (sv.lfd < 0) {
        printf("# no IPv6 loopback: %s\n", weft_errmsg());
        return SKIP_STATUS;
    }
    int v4, v6;
    localhost_families(&v4, &v6);
    if (!v6) {
        printf("# localhost does not resolve to ::1 here\n");
        weft_close(sv.lfd);
        return SKIP_STATUS;
    }
    int port = weft_local_port(sv.lfd);
    weft_task *t = spawn_named(accept_and_answer, &sv, "server");
    int fd = weft_tcp_connect("localhost", (uint16_t)port, NULL, weft_deadline_ms(3000));
    assert_true(fd >= 0);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(sv.peer.storage.ss_family, AF_INET6);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(sv.fd), 0);
    assert_int_equal(weft_close(sv.lfd), 0);
    return 0;
}

static void test_happy_eyeballs_v6_only(void **state)
{
    (void)state;
    run_task(v6_only_main);
}

/* A server on 127.0.0.1 only, the client asks for "localhost": if the
 * resolver gives ::1 first, that attempt is refused and IPv4 wins. */
static int v4_only_main(void *arg)
{
    (void)arg;
    struct server sv = {.lfd = weft_tcp_listen("127.0.0.1", 0, 0), .fd = -1};
    assert_true(sv.lfd >= 0);
    int port = weft_local_port(sv.lfd);
    int before = count_fds();
    const int64_t staggers[] = {0, 10, -1};
    for (size_t i = 0; i < sizeof staggers / sizeof staggers[0]; i++) {
        weft_connect_opts opts = {.stagger_ms = staggers[i]};
        weft_task *t = spawn_named(accept_and_answer, &sv, "server");
        int fd = weft_tcp_connect("localhost", (uint16_t)port, &opts, weft_deadline_ms(3000));
        assert_true(fd >= 0);
        client_ping(fd);
        assert_int_equal(join_status(t), 0);
        assert_int_equal(sv.peer.storage.ss_family, AF_INET);
        assert_int_equal(weft_close(fd), 0);
        assert_int_equal(weft_close(sv.fd), 0);
    }
    assert_int_equal(count_fds(), before); /* the losing attempts are closed */
    /* family = AF_INET6 only: refused (or nothing to try) */
    weft_connect_opts v6 = {.family = AF_INET6};
    int rc = weft_tcp_connect("localhost", (uint16_t)port, &v6, weft_deadline_ms(3000));
    assert_true(rc < 0);
    assert_true(rc == -ECONNREFUSED || rc == WEFT_ERESOLVE || rc == -EADDRNOTAVAIL ||
                rc == -ENETUNREACH);
    assert_int_equal(count_fds(), before);
    assert_int_equal(weft_close(sv.lfd), 0);
    return 0;
}

static void test_happy_eyeballs_v4_only(void **state)
{
    (void)state;
    run_task(v4_only_main);
}

/*
 * Staggering: one family's address hangs (a blackhole on the same port),
 * the other's works.  Whatever order the resolver gives, the connection
 * succeeds well before the deadline: after the stagger delay the second
 * address is tried while the first is still pending.  Needs "localhost" to
 * resolve to both ::1 and 127.0.0.1.
 */
static int stagger_case(const char *hang_host, const char *ok_host)
{
    struct blackhole b;
    if (blackhole_open(&b, hang_host, 0) != 0)
        return SKIP_STATUS;
    struct server sv = {.lfd = weft_tcp_listen(ok_host, (uint16_t)b.port, 0), .fd = -1};
    if (sv.lfd < 0) {
        blackhole_close(&b);
        return SKIP_STATUS; /* port taken on the other family */
    }
    int before = count_fds();
    weft_task *t = spawn_named(accept_and_answer, &sv, "server");
    weft_connect_opts opts = {.stagger_ms = 50};
    assert_int_equal(weft_sleep_ms(0), 0); /* a loop turn */
    int64_t t0 = clock_ns();
    int fd = weft_tcp_connect("localhost", (uint16_t)b.port, &opts, weft_deadline_ms(3000));
    int64_t took = clock_ns() - t0;
    assert_true(fd >= 0);
    printf("# stagger: %s hangs, %s answers: connected after %lld ms\n", hang_host, ok_host,
           (long long)(took / MS));
    assert_true(took < 1500 * MS);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(sv.fd), 0);
    assert_int_equal(count_fds(), before); /* the pending attempt was closed */
    assert_int_equal(weft_close(sv.lfd), 0);
    blackhole_close(&b);
    return 0;
}

static int stagger_main(void *arg)
{
    (void)arg;
    int v4, v6;
    localhost_families(&v4, &v6);
    if (!v4 || !v6) {
        printf("# localhost resolves to one family only: no staggering to test\n");
        return SKIP_STATUS;
    }
    int a = stagger_case("127.0.0.1", "::1");
    int b = stagger_case("::1", "127.0.0.1");
    return a == SKIP_STATUS && b == SKIP_STATUS ? SKIP_STATUS : 0;
}

static void test_happy_eyeballs_stagger(void **state)
{
    (void)state;
    run_task(stagger_main);
}

/*
 * The race itself, on addresses given directly (weft_connect_addrs), so it
 * runs whatever the resolver says about "localhost": a hanging address, a
 * refusing one, a working one.
 */
static weft_addr addr_of(const char *ip, int port)
{
    weft_addr a;
    assert_int_equal(weft_resolve(ip, (uint16_t)port, AF_UNSPEC, &a, 1, WEFT_NO_DEADLINE), 1);
    return a;
}

static int64_t race_once(const weft_addr *addrs, size_t n, int64_t stagger_ms,
                         struct server *sv, int64_t deadline_ms, int *rc)
{
    weft_task *t = sv ? spawn_named(accept_and_answer, sv, "server") : NULL;
    weft_connect_opts opts = {.stagger_ms = stagger_ms};
    assert_int_equal(weft_sleep_ms(0), 0); /* a loop turn */
    int64_t t0 = clock_ns();
    int fd = weft_connect_addrs(addrs, n, &opts, weft_deadline_ms(deadline_ms));
    int64_t took = (clock_ns() - t0) / MS;
    *rc = fd;
    if (fd >= 0) {
        client_ping(fd);
        assert_int_equal(join_status(t), 0);
        assert_int_equal(weft_close(fd), 0);
        assert_int_equal(weft_close(sv->fd), 0);
    } else if (t) {
        weft_cancel(t);
        join_status(t);
    }
    return took;
}

static int race_main(void *arg)
{
    (void)arg;
    struct blackhole b;
    if (blackhole_open(&b, "127.0.0.1", 0) != 0) {
        printf("# no blackhole: connects to a full backlog complete at once\n");
        return SKIP_STATUS;
    }
    struct server sv = {.lfd = weft_tcp_listen("127.0.0.1", 0, 0), .fd = -1};
    assert_true(sv.lfd >= 0);
    int closed = weft_tcp_listen("127.0.0.1", 0, 0); /* a port nobody listens on */
    int closed_port = weft_local_port(closed);
    weft_close(closed);
    weft_addr hang = addr_of("127.0.0.1", b.port), ok = addr_of("127.0.0.1", weft_local_port(sv.lfd));
    weft_addr refused = addr_of("127.0.0.1", closed_port);
    int before = count_fds(), rc;

    /* hang, ok: the second starts after the stagger delay */
    int64_t took = race_once((weft_addr[]){hang, ok}, 2, 100, &sv, 3000, &rc);
    printf("# hang, ok (stagger 100 ms): %lld ms\n", (long long)took);
    assert_true(rc >= 0);
    assert_true(took >= 90 && took < 1000);

    /* hang, refused, ok: the refusal starts the third at once (RFC 8305) */
    took = race_once((weft_addr[]){hang, refused, ok}, 3, 100, &sv, 3000, &rc);
    printf("# hang, refused, ok (stagger 100 ms): %lld ms\n", (long long)took);
    assert_true(rc >= 0);
    assert_true(took >= 90 && took < 180);

    /* refused, ok: no waiting for the stagger after a failure */
    took = race_once((weft_addr[]){refused, ok}, 2, 1000, &sv, 3000, &rc);
    assert_true(rc >= 0);
    assert_true(took < 500);

    /* every address fails: the last error, each address named */
    took = race_once((weft_addr[]){refused, refused}, 2, 50, NULL, 3000, &rc);
    assert_int_equal(rc, -ECONNREFUSED);
    printf("# all refused: %s\n", weft_errmsg());
    assert_non_null(strstr(weft_errmsg(), "; "));

    /* strictly one after another: the hanging one holds until the deadline */
    took = race_once((weft_addr[]){hang, ok}, 2, -1, &sv, 200, &rc);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(took >= 150 && took < 1000);

    assert_int_equal(weft_connect_addrs(&ok, 0, NULL, WEFT_NO_DEADLINE), -EINVAL);
    assert_int_equal(count_fds(), before); /* every losing attempt closed */
    assert_int_equal(weft_close(sv.lfd), 0);
    blackhole_close(&b);
    return 0;
}

static void test_connect_race(void **state)
{
    (void)state;
    run_task(race_main);
}

/* ------------------------------------------------------------ shared lookups */

struct lookup_call {
    int rc;
    weft_addr addr;
};

static int resolve_localhost(void *arg)
{
    struct lookup_call *c = arg;
    c->rc = weft_resolve("localhost", 80, AF_UNSPEC, &c->addr, 1, weft_deadline_ms(5000));
    return 0;
}

static int shared_lookup_main(void *arg)
{
    (void)arg;
    weft_resolve_cache_ttl_ms(0); /* every answer from the system resolver */
    enum { N = 20 };
    struct lookup_call calls[N];
    weft_task *t[N];
    weft_resolve_stats a, b;
    weft_resolve_stats_get(&a);
    for (int i = 0; i < N; i++)
        t[i] = spawn_named(resolve_localhost, &calls[i], "lookup");
    for (int i = 0; i < N; i++) {
        assert_int_equal(join_status(t[i]), 0);
        assert_int_equal(calls[i].rc, 1);
    }
    weft_resolve_stats_get(&b);
    printf("# %d concurrent lookups of localhost: %llu getaddrinfo, %llu joined\n", N,
           (unsigned long long)(b.lookups - a.lookups),
           (unsigned long long)(b.joined - a.joined));
    assert_int_equal(b.lookups - a.lookups, 1);
    assert_int_equal(b.joined - a.joined, N - 1);

    /* The task that resolves is cancelled while another waits for it: the
     * waiter resolves by itself. */
    struct lookup_call first, second;
    weft_resolve_stats_get(&a);
    weft_task *ta = spawn_named(resolve_localhost, &first, "first");
    weft_task *tb = spawn_named(resolve_localhost, &second, "second");
    assert_int_equal(weft_yield(), 0); /* both asked */
    weft_cancel(ta);
    assert_int_equal(join_status(ta), 0);
    assert_int_equal(join_status(tb), 0);
    weft_resolve_stats_get(&b);
    printf("# first: %d, second: %d; %llu getaddrinfo\n", first.rc, second.rc,
           (unsigned long long)(b.lookups - a.lookups));
    assert_int_equal(second.rc, 1);
    assert_true(first.rc == 1 || first.rc == -ECANCELED);
    assert_int_equal(b.joined - a.joined, 1);
    assert_int_equal(b.lookups - a.lookups, first.rc == 1 ? 1 : 2);

    weft_resolve_cache_ttl_ms(10000);
    return 0;
}

static void test_shared_lookups(void **state)
{
    (void)state;
    run_task(shared_lookup_main);
}

/* ------------------------------------------------------------ accept */

static int accept_deadline_main(void *arg)
{
    (void)arg;
    int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int64_t t0 = weft_now(); /* the deadlines count from the call */
    weft_addr peer;
    assert_int_equal(weft_accept(lfd, &peer, weft_deadline_ms(50)), -ETIMEDOUT);
    int64_t took = clock_ns() - t0;
    assert_true(took >= 50 * MS && took < 1000 * MS);
    assert_int_equal(weft_accept(lfd, NULL, weft_deadline_ms(-1)), -ETIMEDOUT);

    /* a connection already waiting is accepted even with a past deadline */
    int c = weft_tcp_connect("127.0.0.1", (uint16_t)weft_local_port(lfd), NULL,
                             weft_deadline_ms(1000));
    assert_true(c >= 0);
    int fd = weft_accept(lfd, NULL, weft_deadline_ms(-1));
    assert_true(fd >= 0);
    ping_pong(c, fd);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(c), 0);
    assert_int_equal(weft_close(lfd), 0);
    return 0;
}

static void test_accept_deadline(void **state)
{
    (void)state;
    run_task(accept_deadline_main);
}

static int blocked_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    int fd = weft_accept(lfd, NULL, WEFT_NO_DEADLINE);
    if (fd >= 0)
        weft_close(fd);
    return fd;
}

static int blocked_connect_port;
static int blocked_connect(void *arg)
{
    const char *host = arg;
    int fd = weft_tcp_connect(host, (uint16_t)blocked_connect_port, NULL, WEFT_NO_DEADLINE);
    if (fd >= 0)
        weft_close(fd);
    return fd;
}

static int cancel_accept_main(void *arg)
{
    (void)arg;
    int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    int before = count_fds();
    weft_task *t = spawn_named(blocked_accept, (void *)(intptr_t)lfd, "acceptor");
    assert_int_equal(weft_sleep_ms(10), 0);
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(join_status(t), -ECANCELED);
    assert_int_equal(count_fds(), before);
    /* cancelled before it even started */
    t = spawn_named(blocked_accept, (void *)(intptr_t)lfd, "acceptor");
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(join_status(t), -ECANCELED);
    /* the listener still works */
    int c = weft_tcp_connect("127.0.0.1", (uint16_t)weft_local_port(lfd), NULL,
                             weft_deadline_ms(1000));
    assert_true(c >= 0);
    int fd = weft_accept(lfd, NULL, weft_deadline_ms(1000));
    assert_true(fd >= 0);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(c), 0);
    assert_int_equal(weft_close(lfd), 0);
    return 0;
}

static void test_cancel_accept(void **state)
{
    (void)state;
    run_task(cancel_accept_main);
}

static int cancel_connect_main(void *arg)
{
    (void)arg;
    struct blackhole b;
    if (blackhole_open(&b, "127.0.0.1", 0) != 0) {
        printf("# no blackhole: connects to a full backlog complete at once\n");
        return SKIP_STATUS;
    }
    blocked_connect_port = b.port;
    weft_addr a;
    assert_true(weft_resolve("localhost", 80, AF_UNSPEC, &a, 1, weft_deadline_ms(5000)) >= 1);
    int before = count_fds();
    weft_task *t = spawn_named(blocked_connect, "127.0.0.1", "connector");
    assert_int_equal(weft_sleep_ms(20), 0);
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(join_status(t), -ECANCELED);
    assert_int_equal(count_fds(), before);
    /* through the name: resolve + staggered attempts (a ::1 attempt, if
     * any, is refused; the 127.0.0.1 one hangs) */
    t = spawn_named(blocked_connect, "localhost", "connector");
    assert_int_equal(weft_sleep_ms(20), 0);
    assert_int_equal(weft_cancel(t), 0);
    assert_int_equal(join_status(t), -ECANCELED);
    assert_int_equal(count_fds(), before);
    blackhole_close(&b);
    return 0;
}

static void test_cancel_connect(void **state)
{
    (void)state;
    run_task(cancel_connect_main);
}

/* ------------------------------------------------------------ Unix */

static int unix_main(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/weft-unix-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96], file[96];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(file, sizeof file, "%s/regular", dir);

    /* nothing there yet */
    assert_int_equal(weft_unix_connect(path, weft_deadline_ms(1000)), -ENOENT);

    struct server sv = {.lfd = weft_unix_listen(path, 0), .fd = -1};
    assert_true(sv.lfd >= 0);
    assert_nonblock_cloexec(sv.lfd);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));

    weft_task *t = spawn_named(accept_and_answer, &sv, "server");
    int fd = weft_unix_connect(path, weft_deadline_ms(1000));
    assert_true(fd >= 0);
    assert_nonblock_cloexec(fd);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(sv.peer.storage.ss_family, AF_UNIX);
    ping_pong(sv.fd, fd);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(sv.fd), 0);

    /* weft_connect_addr with a Unix address */
    weft_addr ua;
    memset(&ua, 0, sizeof ua);
    struct sockaddr_un *un = (struct sockaddr_un *)&ua.storage;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s", path);
    ua.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    char buf[128];
    assert_string_equal(weft_addr_format(&ua, buf, sizeof buf), path);
    t = spawn_named(accept_and_answer, &sv, "server");
    fd = weft_connect_addr(&ua, weft_deadline_ms(1000));
    assert_true(fd >= 0);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(sv.fd), 0);

    /* the listener is gone, its file stays: connect is refused, and a new
     * listener replaces the stale file */
    assert_int_equal(weft_close(sv.lfd), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(weft_unix_connect(path, weft_deadline_ms(1000)), -ECONNREFUSED);
    sv.lfd = weft_unix_listen(path, 0);
    assert_true(sv.lfd >= 0);
    t = spawn_named(accept_and_answer, &sv, "server");
    fd = weft_unix_connect(path, weft_deadline_ms(1000));
    assert_true(fd >= 0);
    client_ping(fd);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(weft_close(fd), 0);
    assert_int_equal(weft_close(sv.fd), 0);

    /* accept with a deadline on a Unix listener */
    assert_int_equal(weft_accept(sv.lfd, NULL, weft_deadline_ms(20)), -ETIMEDOUT);
    assert_int_equal(weft_close(sv.lfd), 0);

    /* a regular file is not a socket file: not replaced */
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("keep me\n", f);
    fclose(f);
    int rc = weft_unix_listen(file, 0);
    if (rc >= 0)
        weft_close(rc);
    assert_true(rc < 0);
    assert_int_equal(stat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    unlink(file);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    return 0;
}

static void test_unix_sockets(void **state)
{
    (void)state;
    run_task(unix_main);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_format),
        cmocka_unit_test(test_resolve_numeric),
        cmocka_unit_test(test_resolve_localhost),
        cmocka_unit_test(test_resolve_cache),
        cmocka_unit_test(test_resolve_errors),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_connect_accept_exchange),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_deadline),
        cmocka_unit_test(test_connect_unroutable),
        cmocka_unit_test(test_happy_eyeballs_v6_only),
        cmocka_unit_test(test_happy_eyeballs_v4_only),
        cmocka_unit_test(test_happy_eyeballs_stagger),
        cmocka_unit_test(test_connect_race),
        cmocka_unit_test(test_shared_lookups),
        cmocka_unit_test(test_accept_deadline),
        cmocka_unit_test(test_cancel_accept),
        cmocka_unit_test(test_cancel_connect),
        cmocka_unit_test(test_unix_sockets),
    };
    return run_cases(tests, NULL, NULL);
}
