/* SPDX-License-Identifier: MIT */
/*
 * Networking, the buffered stream (plain sockets): read_some / read_exact /
 * read_until / fill / peek / consume, write_all / writev, shutdown and close,
 * with deadlines, cancellation, EOF and a peer that goes away (never
 * SIGPIPE: this program leaves SIGPIPE at its default, deadly action).
 * Runs over socketpair(AF_UNIX) and TCP on 127.0.0.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_helpers.h"
#include <weft.h>

/* ------------------------------------------------------------ helpers */


static unsigned char pattern(size_t i) { return (unsigned char)(i * 31 + (i >> 11)); }

static void fill_pattern(unsigned char *p, size_t len, size_t offset)
{
    for (size_t i = 0; i < len; i++)
        p[i] = pattern(offset + i);
}

/* The pair of the current test: S[0] goes into the stream, S[1] is the
 * peer's raw fd. */
static int S[2];

static void make_pair(void)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, S), 0);
}

/* A connected TCP pair on 127.0.0.1 into S. */
static void make_tcp_pair(void)
{
    int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
    assert_true(lfd >= 0);
    S[0] = weft_tcp_connect("127.0.0.1", (uint16_t)weft_local_port(lfd), NULL,
                            weft_deadline_ms(2000));
    assert_true(S[0] >= 0);
    S[1] = weft_accept(lfd, NULL, weft_deadline_ms(2000));
    assert_true(S[1] >= 0);
    assert_int_equal(weft_close(lfd), 0);
}

static weft_stream *new_stream(size_t read_buffer)
{
    weft_stream *s = weft_stream_new(S[0], read_buffer);
    assert_non_null(s);
    assert_int_equal(weft_stream_fd(s), S[0]);
    return s;
}

/* Write `str` to the peer's fd. */
static void peer_says(const char *str)
{
    size_t len = strlen(str);
    assert_int_equal(weft_write_all(S[1], str, len, weft_deadline_ms(2000)), (ssize_t)len);
}

/* Make the peer's fd unwritable-to for us: fill our send path until our
 * side would block (nobody reads S[1]). */
static void fill_send_path(int fd)
{
    static char junk[65536];
    for (;;) {
        ssize_t n = send(fd, junk, sizeof junk, MSG_NOSIGNAL);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            return;
        }
    }
}

/* A peer task writing pieces with a pause between them, then closing. */
struct pieces {
    const char *const *piece;
    size_t n;
    int close_after;
};

static int write_pieces(void *arg)
{
    struct pieces *p = arg;
    for (size_t i = 0; i < p->n; i++) {
        size_t len = strlen(p->piece[i]);
        if (weft_write_all(S[1], p->piece[i], len, weft_deadline_ms(2000)) != (ssize_t)len)
            return -1000;
        if (weft_sleep_ms(1) != 0)
            return -1001;
    }
    if (p->close_after)
        return weft_close(S[1]);
    return 0;
}

/* ------------------------------------------------------------ read_exact */

enum { SMALL_TOTAL = 20000 };

static int small_writer(void *arg)
{
    (void)arg;
    static unsigned char data[SMALL_TOTAL];
    fill_pattern(data, sizeof data, 0);
    size_t off = 0;
    for (size_t i = 0; off < sizeof data; i++) {
        size_t len = i % 7 + 1;
        if (len > sizeof data - off)
            len = sizeof data - off;
        if (weft_write_all(S[1], data + off, len, weft_deadline_ms(2000)) != (ssize_t)len)
            return -1000;
        off += len;
        if (i % 16 == 0 && weft_sleep_ms(0) != 0)
            return -1001;
    }
    return 0;
}

static int read_exact_main(void *arg)
{
    (void)arg;
    static const size_t bufsizes[] = {0, 16, 1, 4096};
    for (size_t b = 0; b < sizeof bufsizes / sizeof bufsizes[0]; b++) {
        make_pair();
        weft_stream *s = new_stream(bufsizes[b]);
        weft_task *t = spawn_named(small_writer, NULL, "writer");
        static unsigned char got[SMALL_TOTAL], want[SMALL_TOTAL];
        fill_pattern(want, sizeof want, 0);
        memset(got, 0, sizeof got);
        /* pieces of various sizes, some larger than the buffer */
        size_t off = 0, sizes[] = {1, 4096, 3, 10000, 5};
        for (size_t i = 0; off < SMALL_TOTAL; i++) {
            size_t len = sizes[i % 5];
            if (len > SMALL_TOTAL - off)
                len = SMALL_TOTAL - off;
            assert_int_equal(weft_stream_read_exact(s, got + off, len, weft_deadline_ms(3000)),
                             (ssize_t)len);
            off += len;
        }
        assert_memory_equal(got, want, sizeof want);
        assert_int_equal(join_status(t), 0);
        /* zero bytes: at once */
        assert_int_equal(weft_stream_read_exact(s, got, 0, weft_deadline_ms(-1)), 0);
        weft_stream_close(s);
        assert_int_equal(weft_close(S[1]), 0);
    }
    return 0;
}

static void test_read_exact_small_writes(void **state)
{
    (void)state;
    run_task(read_exact_main);
}

static int read_exact_eof_main(void *arg)
{
    (void)arg;
    make_pair();
    weft_stream *s = new_stream(0);
    peer_says("0123456789");
    assert_int_equal(weft_close(S[1]), 0);
    char buf[32];
    assert_int_equal(weft_stream_read_exact(s, buf, 20, weft_deadline_ms(2000)), WEFT_EEOF);
    printf("# read_exact at EOF: %s\n", weft_errmsg());
    assert_true(weft_errmsg()[0] != '\0');
    /* the bytes read stay consumed; the end stays the end */
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(2000)), 0);
    assert_int_equal(weft_stream_read_exact(s, buf, 1, weft_deadline_ms(2000)), WEFT_EEOF);
    weft_stream_close(s);
    return 0;
}

static void test_read_exact_eof(void **state)
{
    (void)state;
    run_task(read_exact_eof_main);
}

/* ------------------------------------------------------------ read_until */

static int read_until_split_main(void *arg)
{
    (void)arg;
    static const char *const piece[] = {
        "GET / HTTP/1.1\r", "\n", "Host: x\r", "\n\r", "\n", "line1\nline2\n", "a", "b", "c",
        "--bou", "ndary--", "tail",
    };
    struct pieces p = {piece, sizeof piece / sizeof piece[0], 1};
    make_pair();
    weft_stream *s = new_stream(0);
    weft_task *t = spawn_named(write_pieces, &p, "writer");
    char buf[128];
    int64_t dl = weft_deadline_ms(3000);
    ssize_t n = weft_stream_read_until(s, "\r\n", 2, buf, sizeof buf, dl);
    assert_int_equal(n, 16);
    assert_memory_equal(buf, "GET / HTTP/1.1\r\n", 16);
    n = weft_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof buf, dl);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "Host: x\r\n\r\n", 11);
    n = weft_stream_read_until(s, "\n", 1, buf, sizeof buf, dl);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "line1\n", 6);
    n = weft_stream_read_until(s, "\n", 1, buf, sizeof buf, dl);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "line2\n", 6);
    n = weft_stream_read_until(s, "bc", 2, buf, sizeof buf, dl);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "abc", 3);
    n = weft_stream_read_until(s, "--boundary--", 12, buf, sizeof buf, dl);
    assert_int_equal(n, 12);
    assert_memory_equal(buf, "--boundary--", 12);
    /* the end before the delimiter */
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, sizeof buf, dl), WEFT_EEOF);
    printf("# read_until at EOF: %s\n", weft_errmsg());
    assert_int_equal(join_status(t), 0);
    weft_stream_close(s);
    return 0;
}

static void test_read_until_split(void **state)
{
    (void)state;
    run_task(read_until_split_main);
}

static int read_until_max_main(void *arg)
{
    (void)arg;
    make_pair();
    weft_stream *s = new_stream(0);
    char buf[64];
    int64_t dl = weft_deadline_ms(3000);

    /* max bytes without the delimiter: -EMSGSIZE, nothing consumed */
    peer_says("0123456789abcdefghij");
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, 10, dl), -EMSGSIZE);
    size_t len = 0;
    weft_stream_peek(s, &len);
    assert_true(len >= 10);
    assert_int_equal(weft_stream_read_exact(s, buf, 20, dl), 20);
    assert_memory_equal(buf, "0123456789abcdefghij", 20);

    /* the delimiter is there but beyond max */
    peer_says("0123456789\n");
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, 5, dl), -EMSGSIZE);
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, 10, dl), -EMSGSIZE);
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, 11, dl), 11);
    assert_memory_equal(buf, "0123456789\n", 11);

    /* a two-byte delimiter whose last byte is at max + 1 */
    peer_says("abcd\r\n");
    assert_int_equal(weft_stream_read_until(s, "\r\n", 2, buf, 5, dl), -EMSGSIZE);
    assert_int_equal(weft_stream_read_until(s, "\r\n", 2, buf, 6, dl), 6);
    assert_memory_equal(buf, "abcd\r\n", 6);
    weft_stream_close(s);
    assert_int_equal(weft_close(S[1]), 0);
    return 0;
}

static void test_read_until_max(void **state)
{
    (void)state;
    run_task(read_until_max_main);
}

/* Long lines: the buffer grows as far as max asks, from any initial size. */
enum { LONG_LINE = 10000 };

static int long_line_writer(void *arg)
{
    (void)arg;
    static char line[LONG_LINE + 1];
    memset(line, 'x', LONG_LINE);
    line[LONG_LINE] = '\n';
    for (size_t off = 0; off < sizeof line; off += 1000) {
        size_t len = sizeof line - off < 1000 ? sizeof line - off : 1000;
        if (weft_write_all(S[1], line + off, len, weft_deadline_ms(2000)) != (ssize_t)len)
            return -1000;
        if (weft_sleep_ms(0) != 0)
            return -1001;
    }
    return 0;
}

static int read_until_grow_main(void *arg)
{
    (void)arg;
    static const size_t bufsizes[] = {1, 2, 16, 0};
    static char buf[2 * LONG_LINE];
    for (size_t b = 0; b < sizeof bufsizes / sizeof bufsizes[0]; b++) {
        make_pair();
        weft_stream *s = new_stream(bufsizes[b]);
        weft_task *t = spawn_named(long_line_writer, NULL, "writer");
        ssize_t n = weft_stream_read_until(s, "\n", 1, buf, sizeof buf, weft_deadline_ms(3000));
        if (n != LONG_LINE + 1)
            fprintf(stderr, "read_buffer %zu: read_until = %zd (%s)\n", bufsizes[b], n,
                    n < 0 ? weft_errmsg() : "");
        assert_int_equal(n, LONG_LINE + 1);
        assert_int_equal(buf[0], 'x');
        assert_int_equal(buf[LONG_LINE - 1], 'x');
        assert_int_equal(buf[LONG_LINE], '\n');
        assert_int_equal(join_status(t), 0);
        weft_stream_close(s);
        assert_int_equal(weft_close(S[1]), 0);
    }
    return 0;
}

/* A 1-byte buffer grows as far as `max` asks (it once stayed at 1 byte and
 * read 0 bytes, which looked like the end of the stream). */
static void test_read_until_grows_buffer(void **state)
{
    (void)state;
    run_task(read_until_grow_main);
}

static int read_until_eof_main(void *arg)
{
    (void)arg;
    make_pair();
    weft_stream *s = new_stream(0);
    peer_says("partial");
    assert_int_equal(weft_close(S[1]), 0);
    char buf[64];
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, sizeof buf, weft_deadline_ms(2000)),
                     WEFT_EEOF);
    weft_stream_close(s);

    /* an immediate end */
    make_pair();
    s = new_stream(0);
    assert_int_equal(weft_close(S[1]), 0);
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, sizeof buf, weft_deadline_ms(2000)),
                     WEFT_EEOF);
    weft_stream_close(s);
    return 0;
}

static void test_read_until_eof(void **state)
{
    (void)state;
    run_task(read_until_eof_main);
}

/* ------------------------------------------------------------ read_some */

static int read_some_main(void *arg)
{
    (void)arg;
    make_pair();
    weft_stream *s = new_stream(0);
    char buf[64];
    int64_t dl = weft_deadline_ms(2000);
    peer_says("hello world\n");
    assert_int_equal(weft_close(S[1]), 0);
    assert_int_equal(weft_stream_read_until(s, "o", 1, buf, sizeof buf, dl), 5);
    assert_memory_equal(buf, "hello", 5);
    /* buffered bytes first, however few are asked for */
    assert_int_equal(weft_stream_read_some(s, buf, 3, dl), 3);
    assert_memory_equal(buf, " wo", 3);
    /* the rest of the buffer (the end of stream is not reported with it) */
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, dl), 4);
    assert_memory_equal(buf, "rld\n", 4);
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, dl), 0);
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, dl), 0);
    weft_stream_close(s);

    /* buffered bytes come without suspending, even past the deadline */
    make_pair();
    s = new_stream(0);
    peer_says("abc");
    assert_int_equal(weft_stream_fill(s, 64, weft_deadline_ms(2000)), 3);
    assert_int_equal(weft_stream_read_some(s, buf, 1, weft_deadline_ms(-1)), 1);
    assert_int_equal(buf[0], 'a');
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(-1)), 2);
    assert_memory_equal(buf, "bc", 2);
    /* nothing buffered, deadline passed */
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(-1)), -ETIMEDOUT);
    /* a large read (straight from the socket) */
    static char big[100000], want[100000];
    memset(want, 'q', sizeof want);
    size_t got = 0;
    assert_int_equal(write(S[1], want, 5000), 5000);
    while (got < 5000) {
        ssize_t n = weft_stream_read_some(s, big + got, sizeof big - got, weft_deadline_ms(2000));
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, 5000);
    assert_memory_equal(big, want, 5000);
    weft_stream_close(s);
    assert_int_equal(weft_close(S[1]), 0);
    return 0;
}

static void test_read_some(void **state)
{
    (void)state;
    run_task(read_some_main);
}

/* ------------------------------------------------------------ fill / peek / consume */

static int fill_main(void *arg)
{
    (void)arg;
    make_pair();
    weft_stream *s = new_stream(16);
    size_t len = 99;
    const char *p = weft_stream_peek(s, &len);
    assert_int_equal(len, 0);
    peer_says("abcdef");
    assert_int_equal(weft_stream_fill(s, 1024, weft_deadline_ms(2000)), 6);
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "abcdef", 6);
    /* peek does not consume */
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 6);
    weft_stream_consume(s, 2);
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(p, "cdef", 4);
    /* max already buffered */
    assert_int_equal(weft_stream_fill(s, 4, weft_deadline_ms(2000)), -EMSGSIZE);
    assert_int_equal(weft_stream_fill(s, 3, weft_deadline_ms(2000)), -EMSGSIZE);
    /* room left but nothing comes */
    assert_int_equal(weft_stream_fill(s, 5, weft_deadline_ms(20)), -ETIMEDOUT);
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(p, "cdef", 4);
    peer_says("gh");
    assert_int_equal(weft_stream_fill(s, 1024, weft_deadline_ms(2000)), 2);
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "cdefgh", 6);
    weft_stream_consume(s, 6);
    weft_stream_peek(s, &len);
    assert_int_equal(len, 0);

    /* growth past the initial 16 bytes, up to max */
    static unsigned char data[100];
    fill_pattern(data, sizeof data, 0);
    assert_int_equal(weft_write_all(S[1], data, sizeof data, weft_deadline_ms(2000)), 100);
    for (int i = 0; i < 100; i++) {
        weft_stream_peek(s, &len);
        if (len == 100)
            break;
        ssize_t n = weft_stream_fill(s, 100, weft_deadline_ms(2000));
        assert_true(n > 0);
    }
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 100);
    assert_memory_equal(p, data, 100);
    assert_int_equal(weft_stream_fill(s, 100, weft_deadline_ms(2000)), -EMSGSIZE);
    assert_int_equal(weft_stream_fill(s, 50, weft_deadline_ms(2000)), -EMSGSIZE);
    weft_stream_consume(s, 30);
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 70);
    assert_memory_equal(p, data + 30, 70);
    /* fill never reads past max: 70 buffered, max 72 -> at most 2 more */
    assert_int_equal(weft_write_all(S[1], "0123456789", 10, weft_deadline_ms(2000)), 10);
    assert_int_equal(weft_stream_fill(s, 72, weft_deadline_ms(2000)), 2);
    p = weft_stream_peek(s, &len);
    assert_int_equal(len, 72);
    assert_memory_equal((const char *)p + 70, "01", 2);
    weft_stream_consume(s, 72);
    char buf[16];
    assert_int_equal(weft_stream_read_exact(s, buf, 8, weft_deadline_ms(2000)), 8);
    assert_memory_equal(buf, "23456789", 8);

    /* the end */
    assert_int_equal(weft_close(S[1]), 0);
    assert_int_equal(weft_stream_fill(s, 100, weft_deadline_ms(2000)), 0);
    weft_stream_peek(s, &len);
    assert_int_equal(len, 0);
    weft_stream_close(s);
    return 0;
}

static void test_fill_peek_consume(void **state)
{
    (void)state;
    run_task(fill_main);
}

/* ------------------------------------------------------------ deadlines */

/* Call `op` and check it fails with -ETIMEDOUT about 30 ms later. */
#define EXPECT_TIMEOUT(call)                                                                     \
    do {                                                                                         \
        int64_t t0_ = weft_now();                                                                \
        int64_t dl = t0_ + 30 * MS;                                                              \
        assert_int_equal((call), -ETIMEDOUT);                                                    \
        int64_t took_ = clock_ns() - t0_;                                                        \
        assert_true(took_ >= 25 * MS);                                                           \
        assert_true(took_ < 1000 * MS);                                                          \
    } while (0)

static int deadlines_main(void *arg)
{
    (void)arg;
    make_pair();
    weft_stream *s = new_stream(0);
    char buf[64];
    EXPECT_TIMEOUT(weft_stream_read_some(s, buf, sizeof buf, dl));
    EXPECT_TIMEOUT(weft_stream_read_exact(s, buf, 10, dl));
    EXPECT_TIMEOUT(weft_stream_read_until(s, "\n", 1, buf, sizeof buf, dl));
    EXPECT_TIMEOUT(weft_stream_fill(s, 64, dl));
    /* still usable */
    peer_says("ok\n");
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, sizeof buf, weft_deadline_ms(2000)),
                     3);
    assert_memory_equal(buf, "ok\n", 3);
    /* a timeout in the middle of a line loses nothing */
    peer_says("par");
    EXPECT_TIMEOUT(weft_stream_read_until(s, "\n", 1, buf, sizeof buf, dl));
    peer_says("tial\n");
    assert_int_equal(weft_stream_read_until(s, "\n", 1, buf, sizeof buf, weft_deadline_ms(2000)),
                     8);
    assert_memory_equal(buf, "partial\n", 8);

    /* writes: nobody reads the peer */
    fill_send_path(S[0]);
    static char big[1 << 20];
    EXPECT_TIMEOUT(weft_stream_write_all(s, big, sizeof big, dl));
    struct iovec iov[2] = {{big, 1000}, {big, 1000}};
    EXPECT_TIMEOUT(weft_stream_writev(s, iov, 2, dl));
    /* the stream still reads */
    peer_says("x");
    assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(2000)), 1);
    assert_int_equal(buf[0], 'x');
    weft_stream_close(s);
    assert_int_equal(weft_close(S[1]), 0);
    return 0;
}

static void test_deadlines(void **state)
{
    (void)state;
    run_task(deadlines_main);
}

/* ------------------------------------------------------------ cancellation */

enum { OP_READ_SOME, OP_READ_EXACT, OP_READ_UNTIL, OP_FILL, OP_WRITE_ALL, OP_WRITEV, OP_COUNT };
static weft_stream *cancel_stream;
static int cancel_started;

static int blocked_op(void *arg)
{
    int op = (int)(intptr_t)arg;
    static char buf[1 << 20];
    struct iovec iov[3] = {{buf, 100}, {buf, 0}, {buf, sizeof buf}};
    cancel_started = 1;
    switch (op) {
    case OP_READ_SOME:
        return (int)weft_stream_read_some(cancel_stream, buf, 64, WEFT_NO_DEADLINE);
    case OP_READ_EXACT:
        return (int)weft_stream_read_exact(cancel_stream, buf, 64, WEFT_NO_DEADLINE);
    case OP_READ_UNTIL:
        return (int)weft_stream_read_until(cancel_stream, "\n", 1, buf, 64, WEFT_NO_DEADLINE);
    case OP_FILL:
        return (int)weft_stream_fill(cancel_stream, 64, WEFT_NO_DEADLINE);
    case OP_WRITE_ALL:
        return (int)weft_stream_write_all(cancel_stream, buf, sizeof buf, WEFT_NO_DEADLINE);
    default:
        return (int)weft_stream_writev(cancel_stream, iov, 3, WEFT_NO_DEADLINE);
    }
}

static int cancel_main(void *arg)
{
    (void)arg;
    for (int op = 0; op < OP_COUNT; op++) {
        make_pair();
        cancel_stream = new_stream(0);
        if (op >= OP_WRITE_ALL)
            fill_send_path(S[0]);
        cancel_started = 0;
        weft_task *t = spawn_named(blocked_op, (void *)(intptr_t)op, "blocked");
        assert_int_equal(weft_sleep_ms(5), 0);
        assert_int_equal(cancel_started, 1);
        assert_int_equal(weft_cancel(t), 0);
        assert_int_equal(join_status(t), -ECANCELED);
        /* cancelled before it starts */
        t = spawn_named(blocked_op, (void *)(intptr_t)op, "blocked");
        assert_int_equal(weft_cancel(t), 0);
        assert_int_equal(join_status(t), -ECANCELED);
        weft_stream_close(cancel_stream);
        assert_int_equal(weft_close(S[1]), 0);
    }
    return 0;
}

static void test_cancel(void **state)
{
    (void)state;
    run_task(cancel_main);
}

/* ------------------------------------------------------------ writing */

enum { BIG = 8 * 1024 * 1024 };

static int slow_reader(void *arg)
{
    (void)arg;
    static unsigned char buf[4000];
    size_t total = 0;
    for (int i = 0;; i++) {
        ssize_t n = weft_read(S[1], buf, sizeof buf, weft_deadline_ms(5000));
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        for (ssize_t j = 0; j < n; j++)
            if (buf[j] != pattern(total + (size_t)j))
                return -1000;
        total += (size_t)n;
        if (i % 64 == 0 && weft_yield() != 0)
            return -1001;
    }
    return total == BIG ? 0 : -1002;
}

static int write_all_main(void *arg)
{
    (void)arg;
    make_tcp_pair();
    weft_stream *s = new_stream(0);
    unsigned char *data = malloc(BIG);
    assert_non_null(data);
    fill_pattern(data, BIG, 0);
    weft_task *t = spawn_named(slow_reader, NULL, "reader");
    assert_int_equal(weft_stream_write_all(s, data, BIG, weft_deadline_ms(8000)), BIG);
    assert_int_equal(weft_stream_shutdown(s, weft_deadline_ms(1000)), 0);
    assert_int_equal(join_status(t), 0);
    /* zero bytes */
    assert_int_equal(weft_stream_write_all(s, data, 0, weft_deadline_ms(-1)), 0);
    free(data);
    weft_stream_close(s);
    assert_int_equal(weft_close(S[1]), 0);
    return 0;
}

static void test_write_all_slow_reader(void **state)
{
    (void)state;
    run_task(write_all_main);
}

enum { NIOV = 3000 };
static size_t writev_total;

static int writev_reader(void *arg)
{
    (void)arg;
    static unsigned char buf[8192];
    size_t total = 0;
    for (;;) {
        ssize_t n = weft_read(S[1], buf, sizeof buf, weft_deadline_ms(5000));
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        for (ssize_t j = 0; j < n; j++)
            if (buf[j] != pattern(total + (size_t)j))
                return -1000;
        total += (size_t)n;
    }
    return total == writev_total ? 0 : -1001;
}

static int writev_main(void *arg)
{
    (void)arg;
    static const int tcp[] = {0, 1};
    for (size_t k = 0; k < 2; k++) {
        if (tcp[k])
            make_tcp_pair();
        else
            make_pair();
        weft_stream *s = new_stream(0);
        static struct iovec iov[NIOV];
        static unsigned char data[NIOV * 200];
        writev_total = 0;
        for (int i = 0; i < NIOV; i++) {
            size_t len = i % 5 == 0 ? 0 : (size_t)(i * 37) % 200;
            if (i == NIOV - 1)
                len = 0; /* ends with an empty one */
            fill_pattern(data + writev_total, len, writev_total);
            iov[i].iov_base = data + writev_total;
            iov[i].iov_len = len;
            writev_total += len;
        }
        weft_task *t = spawn_named(writev_reader, NULL, "reader");
        assert_int_equal(weft_stream_writev(s, iov, 0, weft_deadline_ms(1000)), 0);
        assert_int_equal(weft_stream_writev(s, iov, 1, weft_deadline_ms(1000)), 0); /* empty */
        assert_int_equal(weft_stream_writev(s, iov, NIOV, weft_deadline_ms(5000)),
                         (ssize_t)writev_total);
        assert_int_equal(weft_stream_shutdown(s, weft_deadline_ms(1000)), 0);
        assert_int_equal(join_status(t), 0);
        weft_stream_close(s);
        assert_int_equal(weft_close(S[1]), 0);
    }
    return 0;
}

static void test_writev(void **state)
{
    (void)state;
    run_task(writev_main);
}

static int peer_closed_main(void *arg)
{
    (void)arg;
    static char big[1 << 20];
    /* socketpair: EPIPE */
    make_pair();
    weft_stream *s = new_stream(0);
    assert_int_equal(weft_close(S[1]), 0);
    ssize_t n = weft_stream_write_all(s, big, sizeof big, weft_deadline_ms(2000));
    assert_true(n == -EPIPE || n == -ECONNRESET);
    struct iovec iov[2] = {{big, 10}, {big, 10}};
    n = weft_stream_writev(s, iov, 2, weft_deadline_ms(2000));
    assert_true(n == -EPIPE || n == -ECONNRESET);
    weft_stream_close(s);

    /* TCP: the peer closes with our bytes unread: a reset */
    make_tcp_pair();
    s = new_stream(0);
    assert_int_equal(weft_stream_write_all(s, "unread", 6, weft_deadline_ms(2000)), 6);
    assert_int_equal(weft_sleep_ms(5), 0);
    assert_int_equal(weft_close(S[1]), 0);
    assert_int_equal(weft_sleep_ms(5), 0);
    n = weft_stream_write_all(s, big, sizeof big, weft_deadline_ms(2000));
    assert_true(n == -EPIPE || n == -ECONNRESET);
    n = weft_stream_write_all(s, big, sizeof big, weft_deadline_ms(2000));
    assert_true(n == -EPIPE || n == -ECONNRESET);
    n = weft_stream_writev(s, iov, 2, weft_deadline_ms(2000));
    assert_true(n == -EPIPE || n == -ECONNRESET);
    char buf[16];
    n = weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(2000));
    assert_true(n == 0 || n == -ECONNRESET);
    weft_stream_close(s);
    return 0;
}

static void test_write_to_closed_peer(void **state)
{
    (void)state;
    run_task(peer_closed_main);
}

/* ------------------------------------------------------------ shutdown, close */

static int answering_peer(void *arg)
{
    (void)arg;
    char buf[64];
    size_t got = 0;
    for (;;) {
        ssize_t n = weft_read(S[1], buf + got, sizeof buf - got, weft_deadline_ms(2000));
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != 8 || memcmp(buf, "question", 8) != 0)
        return -1000;
    if (weft_write_all(S[1], "answer", 6, weft_deadline_ms(2000)) != 6)
        return -1001;
    return weft_close(S[1]);
}

static int shutdown_main(void *arg)
{
    (void)arg;
    for (int tcp = 0; tcp < 2; tcp++) {
        if (tcp)
            make_tcp_pair();
        else
            make_pair();
        weft_stream *s = new_stream(0);
        weft_task *t = spawn_named(answering_peer, NULL, "peer");
        assert_int_equal(weft_stream_write_all(s, "question", 8, weft_deadline_ms(2000)), 8);
        assert_int_equal(weft_stream_shutdown(s, weft_deadline_ms(2000)), 0);
        char buf[16];
        assert_int_equal(weft_stream_read_exact(s, buf, 6, weft_deadline_ms(2000)), 6);
        assert_memory_equal(buf, "answer", 6);
        assert_int_equal(weft_stream_read_some(s, buf, sizeof buf, weft_deadline_ms(2000)), 0);
        assert_int_equal(join_status(t), 0);
        /* writing after shutdown */
        ssize_t n = weft_stream_write_all(s, "late", 4, weft_deadline_ms(2000));
        assert_true(n == -EPIPE || n == -ECONNRESET);
        weft_stream_close(s);
    }
    return 0;
}

static void test_shutdown_half_close(void **state)
{
    (void)state;
    run_task(shutdown_main);
}

static int close_main(void *arg)
{
    (void)arg;
    weft_stream_close(NULL);
    make_pair();
    weft_stream *s = new_stream(0);
    assert_false(weft_stream_is_tls(s));
    assert_null(weft_stream_alpn(s));
    /* a read in progress elsewhere is not needed: close frees everything
     * and closes the fd */
    peer_says("left unread");
    assert_true(weft_stream_fill(s, 4, weft_deadline_ms(2000)) > 0);
    int fd = weft_stream_fd(s);
    weft_stream_close(s);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    /* the peer sees the end */
    char buf[16];
    ssize_t n = weft_read(S[1], buf, sizeof buf, weft_deadline_ms(2000));
    assert_true(n == 0 || n == -ECONNRESET);
    assert_int_equal(weft_close(S[1]), 0);
    return 0;
}

static void test_close(void **state)
{
    (void)state;
    run_task(close_main);
}

int main(void)
{
    /* SIGPIPE stays deadly: the stream must never raise it. */
    signal(SIGPIPE, SIG_DFL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_exact_small_writes),
        cmocka_unit_test(test_read_exact_eof),
        cmocka_unit_test(test_read_until_split),
        cmocka_unit_test(test_read_until_max),
        cmocka_unit_test(test_read_until_eof),
        cmocka_unit_test(test_read_some),
        cmocka_unit_test(test_fill_peek_consume),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_write_all_slow_reader),
        cmocka_unit_test(test_writev),
        cmocka_unit_test(test_write_to_closed_peer),
        cmocka_unit_test(test_shutdown_half_close),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_read_until_grows_buffer),
    };
    return run_cases(tests, NULL, NULL);
}
