/* SPDX-License-Identifier: MIT */
/*
 * The buffered stream: one read buffer in front of a socket (plain or TLS),
 * and writes that go straight out.  Every call takes a deadline; every read
 * takes a maximum, so a peer can never make us buffer without bound.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-internal.h"
#include "weft/io.h"

#define DEFAULT_BUFFER (16 * 1024)
/* A larger initial read buffer is refused: a typo, not a plan. */
#define MAX_INITIAL_BUFFER ((size_t)1 << 30)

/* The error for a NULL stream (or buffer) given to `fn`. */
static int null_arg(const char *fn, const char *what)
{
    return weft__seterr(-EINVAL, "%s: NULL %s", fn, what);
}

weft_stream *weft_stream_new(int fd, size_t read_buffer)
{
    if (fd < 0) {
        weft__seterr(-EBADF, "weft_stream_new: fd %d", fd);
        return NULL;
    }
    if (read_buffer > MAX_INITIAL_BUFFER) {
        weft_close(fd);
        weft__seterr(-EINVAL, "weft_stream_new: read_buffer %zu above 1 GiB", read_buffer);
        return NULL;
    }
    weft_stream *s = calloc(1, sizeof *s);
    size_t cap = read_buffer ? read_buffer : DEFAULT_BUFFER;
    char *buf = s ? malloc(cap) : NULL;
    if (!buf) {
        free(s);
        weft_close(fd);
        weft__seterr(-ENOMEM, "weft_stream_new: out of memory");
        return NULL;
    }
    int type;
    socklen_t len = sizeof type;
    s->fd = fd;
    s->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
    s->buf = buf;
    s->cap = cap;
    return s;
}

void weft_stream_close(weft_stream *s)
{
    if (!s)
        return;
    weft__tls_free(s);
    weft_close(s->fd);
    free(s->buf);
    free(s);
}

int weft_stream_fd(const weft_stream *s) { return s ? s->fd : -EBADF; }
bool weft_stream_is_tls(const weft_stream *s) { return s && s->ssl != NULL; }

/* One read from the socket (TLS or not) into dst; suspends when nothing is
 * there.  Returns bytes, 0 at end of stream, or an error. */
static ssize_t raw_read(weft_stream *s, void *dst, size_t len, int64_t deadline)
{
    if (s->broken)
        return weft__seterr(WEFT_ETLS, "stream fd %d: unusable after a TLS failure", s->fd);
    if (s->ssl) {
        ssize_t n = weft__tls_read(s, dst, len, deadline);
        if (n >= 0)
            weft__coop_spend_here();
        return n;
    }
    /* The last read emptied the socket (request/response traffic): the next
     * bytes are most likely not there yet, so wait before trying instead of
     * spending a read on EAGAIN.  An edge seen meanwhile returns at once. */
    if (s->drained) {
        int rc = weft__wait_fd(s->fd, WEFT_READABLE, deadline, false);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        ssize_t n = s->is_socket ? recv(s->fd, dst, len, 0) : read(s->fd, dst, len);
        if (n >= 0) {
            /* A short read emptied the socket: edges remembered until now
             * are spent (sparing a read on EAGAIN, and the pool a peek). */
            s->drained = n > 0 && (size_t)n < len;
            if (s->drained)
                weft__fd_consumed(s->fd, WEFT_READABLE);
            /* Each read counts against the task's budget: a download that
             * never finds the socket empty must still let the others run. */
            weft__coop_spend_here();
            return n;
        }
        int err = errno;
        if (err == EINTR)
            continue;
        if (err != EAGAIN && err != EWOULDBLOCK)
            return weft__seterr(-err, "read fd %d: %s", s->fd, strerror(err));
        int rc = weft__wait_fd(s->fd, WEFT_READABLE, deadline, true);
        if (rc < 0)
            return rc;
    }
}

ssize_t weft_stream_fill(weft_stream *s, size_t max, int64_t deadline)
{
    if (!s)
        return null_arg("weft_stream_fill", "stream");
    size_t have = s->end - s->start;
    if (have >= max)
        return weft__seterr(-EMSGSIZE, "stream fd %d: %zu bytes buffered, limit %zu", s->fd,
                            have, max);
    if (have == 0)
        s->start = s->end = 0;
    size_t room = s->cap - s->end, want = max - have;
    if (room == 0 || (room < want && room < s->cap / 2)) {
        /* Make room: slide the buffered bytes to the front, then grow. */
        if (s->start > 0) {
            memmove(s->buf, s->buf + s->start, have);
            s->start = 0;
            s->end = have;
        }
        if (s->cap - s->end < want && s->cap < max) {
            size_t cap = s->cap < 2048 ? 4096 : s->cap * 2;
            if (cap > max)
                cap = max;
            char *buf = realloc(s->buf, cap);
            if (!buf)
                return weft__seterr(-ENOMEM, "stream fd %d: out of memory", s->fd);
            s->buf = buf;
            s->cap = cap;
        }
        room = s->cap - s->end;
    }
    if (room > max - have)
        room = max - have;
    ssize_t n = raw_read(s, s->buf + s->end, room, deadline);
    if (n > 0)
        s->end += (size_t)n;
    return n;
}

const void *weft_stream_peek(const weft_stream *s, size_t *len)
{
    if (len)
        *len = s ? s->end - s->start : 0;
    return s ? s->buf + s->start : NULL;
}

void weft_stream_consume(weft_stream *s, size_t n)
{
    if (!s)
        return;
    size_t have = s->end - s->start;
    s->start += n < have ? n : have;
}

/* Move up to `len` buffered bytes into dst. */
static size_t take(weft_stream *s, void *dst, size_t len)
{
    size_t have = s->end - s->start;
    if (len > have)
        len = have;
    memcpy(dst, s->buf + s->start, len);
    s->start += len;
    return len;
}

ssize_t weft_stream_read_some(weft_stream *s, void *buf, size_t max, int64_t deadline)
{
    if (!s || (!buf && max))
        return null_arg("weft_stream_read_some", s ? "buffer" : "stream");
    if (max == 0)
        return 0;
    if (s->end > s->start) {
        size_t n = take(s, buf, max);
        weft__coop_spend_here(); /* served from the buffer: still an operation */
        return (ssize_t)n;
    }
    if (max >= s->cap / 2) /* large reads skip the buffer */
        return raw_read(s, buf, max, deadline);
    ssize_t n = weft_stream_fill(s, s->cap, deadline);
    if (n <= 0)
        return n;
    return (ssize_t)take(s, buf, max);
}

ssize_t weft_stream_read_exact(weft_stream *s, void *buf, size_t len, int64_t deadline)
{
    if (!s || (!buf && len))
        return null_arg("weft_stream_read_exact", s ? "buffer" : "stream");
    if (len > SSIZE_MAX)
        return weft__seterr(-EINVAL, "weft_stream_read_exact: len %zu above SSIZE_MAX", len);
    size_t got = take(s, buf, len);
    if (got == len && len > 0)
        weft__coop_spend_here(); /* served from the buffer alone */
    while (got < len) {
        ssize_t n = weft_stream_read_some(s, (char *)buf + got, len - got, deadline);
        if (n == 0)
            return weft__seterr(WEFT_EEOF, "stream fd %d: end of stream after %zu of %zu bytes",
                                s->fd, got, len);
        if (n < 0)
            return n;
        got += (size_t)n;
    }
    return (ssize_t)len;
}

ssize_t weft_stream_read_until(weft_stream *s, const void *delim, size_t delim_len, void *buf,
                               size_t max, int64_t deadline)
{
    if (!s || (!buf && max))
        return null_arg("weft_stream_read_until", s ? "buffer" : "stream");
    if (!delim || delim_len == 0)
        return weft__seterr(-EINVAL, "weft_stream_read_until: empty delimiter");
    size_t searched = 0; /* bytes already known not to start the delimiter */
    for (;;) {
        size_t have = s->end - s->start;
        const char *base = s->buf + s->start;
        if (have >= delim_len) {
            const char *hit = memmem(base + searched, have - searched, delim, delim_len);
            if (hit) {
                size_t total = (size_t)(hit - base) + delim_len;
                if (total > max)
                    break;
                take(s, buf, total);
                weft__coop_spend_here(); /* a line may well be in the buffer already */
                return (ssize_t)total;
            }
            searched = have - delim_len + 1;
        }
        if (have >= max)
            break;
        ssize_t n = weft_stream_fill(s, max, deadline);
        if (n == 0)
            return weft__seterr(WEFT_EEOF, "stream fd %d: end of stream before the delimiter "
                                "(%zu bytes buffered)", s->fd, s->end - s->start);
        if (n < 0)
            return n;
    }
    return weft__seterr(-EMSGSIZE, "stream fd %d: no delimiter within %zu bytes", s->fd, max);
}

/* One write (TLS or not); suspends until something can be written. */
static ssize_t raw_write(weft_stream *s, const void *buf, size_t len, int64_t deadline)
{
    if (s->broken)
        return weft__seterr(WEFT_ETLS, "stream fd %d: unusable after a TLS failure", s->fd);
    if (s->ssl) {
        ssize_t n = weft__tls_write(s, buf, len, deadline);
        if (n >= 0)
            weft__coop_spend_here();
        return n;
    }
    for (;;) {
        ssize_t n = s->is_socket ? send(s->fd, buf, len, MSG_NOSIGNAL) : write(s->fd, buf, len);
        if (n >= 0) {
            weft__coop_spend_here();
            return n;
        }
        int err = errno;
        if (err == EINTR)
            continue;
        if (err != EAGAIN && err != EWOULDBLOCK)
            return weft__seterr(-err, "write fd %d: %s", s->fd, strerror(err));
        int rc = weft__wait_fd(s->fd, WEFT_WRITABLE, deadline, true);
        if (rc < 0)
            return rc;
    }
}

ssize_t weft_stream_write_all(weft_stream *s, const void *buf, size_t len, int64_t deadline)
{
    if (!s || (!buf && len))
        return null_arg("weft_stream_write_all", s ? "buffer" : "stream");
    if (len > SSIZE_MAX)
        return weft__seterr(-EINVAL, "weft_stream_write_all: len %zu above SSIZE_MAX", len);
    size_t done = 0;
    while (done < len) {
        ssize_t n = raw_write(s, (const char *)buf + done, len - done, deadline);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)len;
}

ssize_t weft_stream_writev(weft_stream *s, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    if (!s)
        return null_arg("weft_stream_writev", "stream");
    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return weft__seterr(-EINVAL, "weft_stream_writev: bad iovec");
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (s->ssl || !s->is_socket || s->broken) {
        /* TLS records are built per write: gather small pieces first. */
        for (int i = 0; i < iovcnt; i++) {
            ssize_t n = weft_stream_write_all(s, iov[i].iov_base, iov[i].iov_len, deadline);
            if (n < 0)
                return n;
        }
        return (ssize_t)total;
    }
    /* sendmsg over a private copy of the vector, advanced past what went. */
    struct iovec local[64];
    int i = 0;
    size_t skip = 0; /* bytes of iov[i] already sent */
    while (i < iovcnt) {
        int cnt = 0;
        for (int j = i; j < iovcnt && cnt < 64; j++) {
            local[cnt] = iov[j];
            if (j == i) {
                local[cnt].iov_base = (char *)iov[j].iov_base + skip;
                local[cnt].iov_len -= skip;
            }
            cnt++;
        }
        struct msghdr msg = { .msg_iov = local, .msg_iovlen = (size_t)cnt };
        ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            if (err != EAGAIN && err != EWOULDBLOCK)
                return weft__seterr(-err, "write fd %d: %s", s->fd, strerror(err));
            int rc = weft__wait_fd(s->fd, WEFT_WRITABLE, deadline, true);
            if (rc < 0)
                return rc;
            continue;
        }
        weft__coop_spend_here();
        size_t left = (size_t)n;
        while (i < iovcnt && left >= iov[i].iov_len - skip) {
            left -= iov[i].iov_len - skip;
            skip = 0;
            i++;
        }
        skip += left;
    }
    return (ssize_t)total;
}

int weft_stream_shutdown(weft_stream *s, int64_t deadline)
{
    if (!s)
        return null_arg("weft_stream_shutdown", "stream");
    if (s->ssl && !s->broken) {
        int rc = weft__tls_shutdown(s, deadline);
        if (rc < 0)
            return rc;
    }
    if (s->is_socket && shutdown(s->fd, SHUT_WR) < 0)
        return weft__seterr(-errno, "shutdown fd %d: %s", s->fd, strerror(errno));
    return 0;
}
