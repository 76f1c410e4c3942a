/* SPDX-License-Identifier: MIT */
/*
 * TLS through OpenSSL on a weft_stream.  OpenSSL talks to the socket through
 * a small BIO of ours (send with MSG_NOSIGNAL, so a gone peer is an error,
 * never SIGPIPE); when it wants to read or write and cannot, the task waits
 * for the fd and tries again.
 *
 * A peer that closes without close_notify reads as end of stream
 * (SSL_OP_IGNORE_UNEXPECTED_EOF): protocols with their own framing (HTTP,
 * PostgreSQL) detect truncation themselves, as aiohttp and libpq do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net-internal.h"
#include "weft/io.h"

/* A client's sessions kept for resumption, by server name and address. */
#define SESSIONS_MAX 64

typedef struct cached_session {
    char key[160];
    SSL_SESSION *session;
    uint64_t used;          /* for LRU replacement */
} cached_session;

struct weft_tls_ctx {
    SSL_CTX *ctx;
    atomic_int refs;
    bool server;
    bool insecure;
    unsigned char alpn[256]; /* wire format: length-prefixed names */
    unsigned alpn_len;
    pthread_mutex_t lock;    /* the session cache: contexts are shared across threads */
    cached_session sessions[SESSIONS_MAX];
    uint64_t clock;
};

/* ------------------------------------------------------------ resumption */

/*
 * Client sessions are kept per server name and address, so a new
 * connection to the same server resumes (an abbreviated handshake: one
 * round trip less, no certificate chain to verify).  A session is taken out
 * when used (TLS 1.3 tickets are for one use); the server sends fresh ones.
 */
static int stream_index = -1; /* SSL ex_data slot: the weft_stream */

static void session_put(weft_tls_ctx *t, const char *key, SSL_SESSION *sess)
{
    pthread_mutex_lock(&t->lock);
    cached_session *slot = &t->sessions[0];
    for (int i = 0; i < SESSIONS_MAX; i++) {
        cached_session *c = &t->sessions[i];
        if (!c->session || strcmp(c->key, key) == 0) {
            slot = c;
            break;
        }
        if (c->used < slot->used)
            slot = c;
    }
    if (slot->session)
        SSL_SESSION_free(slot->session);
    snprintf(slot->key, sizeof slot->key, "%s", key);
    slot->session = sess;
    slot->used = ++t->clock;
    pthread_mutex_unlock(&t->lock);
}

static SSL_SESSION *session_take(weft_tls_ctx *t, const char *key)
{
    SSL_SESSION *sess = NULL;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < SESSIONS_MAX; i++) {
        cached_session *c = &t->sessions[i];
        if (c->session && strcmp(c->key, key) == 0) {
            sess = c->session;
            c->session = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return sess;
}

/* OpenSSL hands us each new session (after the handshake, or when a TLS
 * 1.3 ticket arrives); returning 1 keeps its reference. */
static int session_new(SSL *ssl, SSL_SESSION *sess)
{
    weft_stream *s = SSL_get_ex_data(ssl, stream_index);
    if (!s || !s->tls || !s->tls_key[0] || !SSL_SESSION_is_resumable(sess))
        return 0;
    session_put(s->tls, s->tls_key, sess);
    return 1;
}

/* ------------------------------------------------------------ errors */

/* Describe the failure: the verification result if that is what failed,
 * else OpenSSL's error queue, else errno.  Clears the queue. */
static int tls_fail(weft_stream *s, const char *what, int ssl_err)
{
    char reason[160] = "";
    unsigned long e = ERR_get_error();
    long vr = s->ssl ? SSL_get_verify_result(s->ssl) : X509_V_OK;
    if (e && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK)
        snprintf(reason, sizeof reason, "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    else if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    int code = WEFT_ETLS;
    if (!reason[0]) {
        if (ssl_err == SSL_ERROR_SYSCALL && s->io_errno) {
            code = -s->io_errno;
            snprintf(reason, sizeof reason, "%s", strerror(s->io_errno));
        } else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN) {
            code = WEFT_EEOF;
            snprintf(reason, sizeof reason, "the peer closed the connection");
        } else {
            snprintf(reason, sizeof reason, "SSL error %d", ssl_err);
        }
    }
    s->broken = true;
    return weft__seterr(code, "TLS %s fd %d: %s", what, s->fd, reason);
}

static int ctx_fail(const char *what, const char *file)
{
    char reason[160] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    return weft__seterr(WEFT_ETLS, "%s%s%s: %s", what, file ? " " : "", file ? file : "", reason);
}

/* ------------------------------------------------------------ the BIO */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len)
{
    weft_stream *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do {
        n = send(s->fd, data, (size_t)len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    else
        s->io_errno = errno;
    return -1;
}

static int bio_read(BIO *b, char *data, int len)
{
    weft_stream *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do {
        n = recv(s->fd, data, (size_t)len, 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_read(b);
    else
        s->io_errno = errno;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft socket");
    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read)
        && BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        bio_method = m;
    stream_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ------------------------------------------------------------ contexts */

/* "h2,http/1.1" to the wire format. */
static int alpn_encode(weft_tls_ctx *t, const char *list)
{
    t->alpn_len = 0;
    while (list && *list) {
        const char *comma = strchr(list, ',');
        size_t n = comma ? (size_t)(comma - list) : strlen(list);
        if (n == 0 || n > 255 || t->alpn_len + 1 + n > sizeof t->alpn)
            return weft__seterr(-EINVAL, "TLS: bad opts.alpn list '%s'", list);
        t->alpn[t->alpn_len++] = (unsigned char)n;
        memcpy(t->alpn + t->alpn_len, list, n);
        t->alpn_len += (unsigned)n;
        list = comma ? comma + 1 : list + n;
    }
    return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    weft_tls_ctx *t = arg;
    unsigned char *sel;
    /* The server's order of preference wins. */
    if (SSL_select_next_proto(&sel, outlen, t->alpn, t->alpn_len, in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static weft_tls_ctx *ctx_new(const weft_tls_opts *opts, bool server)
{
    static const weft_tls_opts none = { 0 };
    if (!opts)
        opts = &none;
    pthread_once(&bio_once, bio_method_init);
    weft_tls_ctx *t = calloc(1, sizeof *t);
    if (!t || !bio_method) {
        free(t);
        weft__seterr(-ENOMEM, "TLS: out of memory");
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->server = server;
    t->insecure = opts->insecure_skip_verify;
    if (alpn_encode(t, opts->alpn) < 0) {
        free(t);
        return NULL;
    }
    t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!t->ctx) {
        ctx_fail("TLS: SSL_CTX_new", NULL);
        free(t);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                                 | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    pthread_mutex_init(&t->lock, NULL);
    if (!server) {
        SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT
                                                   | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(t->ctx, session_new);
    }
    int rc = 0;
    if (opts->cert_file && SSL_CTX_use_certificate_chain_file(t->ctx, opts->cert_file) != 1)
        rc = ctx_fail("TLS: cannot load certificate", opts->cert_file);
    else if (opts->key_file
             && SSL_CTX_use_PrivateKey_file(t->ctx, opts->key_file, SSL_FILETYPE_PEM) != 1)
        rc = ctx_fail("TLS: cannot load private key", opts->key_file);
    else if (opts->cert_file && opts->key_file && SSL_CTX_check_private_key(t->ctx) != 1)
        rc = ctx_fail("TLS: the key does not match the certificate", opts->key_file);
    else if (server && (!opts->cert_file || !opts->key_file))
        rc = weft__seterr(-EINVAL, "TLS server: opts.cert_file and opts.key_file are "
                                   "required");
    else if (!server && !t->insecure) {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
        if (opts->ca_file || opts->ca_path) {
            if (SSL_CTX_load_verify_locations(t->ctx, opts->ca_file, opts->ca_path) != 1)
                rc = ctx_fail("TLS: cannot load CA", opts->ca_file ? opts->ca_file
                                                                    : opts->ca_path);
        } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
            rc = ctx_fail("TLS: cannot load the system CA store", NULL);
        }
    }
    if (rc == 0 && t->alpn_len) {
        if (server)
            SSL_CTX_set_alpn_select_cb(t->ctx, alpn_select, t);
        else if (SSL_CTX_set_alpn_protos(t->ctx, t->alpn, t->alpn_len) != 0)
            rc = ctx_fail("TLS: ALPN", NULL);
    }
    if (rc < 0) {
        SSL_CTX_free(t->ctx);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
    }
    return t;
}

weft_tls_ctx *weft_tls_client_new(const weft_tls_opts *opts) { return ctx_new(opts, false); }
weft_tls_ctx *weft_tls_server_new(const weft_tls_opts *opts) { return ctx_new(opts, true); }

void weft_tls_ctx_free(weft_tls_ctx *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        for (int i = 0; i < SESSIONS_MAX; i++)
            if (t->sessions[i].session)
                SSL_SESSION_free(t->sessions[i].session);
        SSL_CTX_free(t->ctx);
        pthread_mutex_destroy(&t->lock);
        free(t);
    }
}

/* ------------------------------------------------------------ transfers */

/* Run one OpenSSL call to completion, waiting for the socket when it asks.
 * `op` returns > 0 on progress (bytes or success). */
typedef int (*tls_op)(weft_stream *s, void *buf, size_t len, size_t *done);

static int op_handshake(weft_stream *s, void *buf, size_t len, size_t *done)
{
    (void)buf, (void)len, (void)done;
    return SSL_do_handshake(s->ssl);
}

static int op_read(weft_stream *s, void *buf, size_t len, size_t *done)
{
    return SSL_read_ex(s->ssl, buf, len, done);
}

static int op_write(weft_stream *s, void *buf, size_t len, size_t *done)
{
    return SSL_write_ex(s->ssl, buf, len, done);
}

static int op_shutdown(weft_stream *s, void *buf, size_t len, size_t *done)
{
    (void)buf, (void)len, (void)done;
    int rc = SSL_shutdown(s->ssl);
    return rc >= 0 ? 1 : rc; /* 0 = our alert sent, the peer's not awaited */
}

static ssize_t tls_run(weft_stream *s, tls_op op, const char *what, void *buf, size_t len,
                       int64_t deadline)
{
    for (;;) {
        size_t done = 0;
        s->io_errno = 0;
        ERR_clear_error();
        int rc = op(s, buf, len, &done);
        if (rc > 0)
            return (ssize_t)done;
        int err = SSL_get_error(s->ssl, rc);
        int wait;
        if (err == SSL_ERROR_WANT_READ)
            wait = WEFT_READABLE;
        else if (err == SSL_ERROR_WANT_WRITE)
            wait = WEFT_WRITABLE;
        else if (err == SSL_ERROR_ZERO_RETURN && op == op_read)
            return 0; /* close_notify: the end of the stream */
        else if (err == SSL_ERROR_SYSCALL && op == op_read && !s->io_errno
                 && ERR_peek_error() == 0)
            return 0;
        else
            return tls_fail(s, what, err);
        int w = weft__wait_fd(s->fd, wait, deadline, true);
        if (w < 0)
            return w;
    }
}

ssize_t weft__tls_read(weft_stream *s, void *buf, size_t len, int64_t deadline)
{
    return tls_run(s, op_read, "read", buf, len, deadline);
}

ssize_t weft__tls_write(weft_stream *s, const void *buf, size_t len, int64_t deadline)
{
    return tls_run(s, op_write, "write", (void *)buf, len, deadline);
}

int weft__tls_shutdown(weft_stream *s, int64_t deadline)
{
    return (int)tls_run(s, op_shutdown, "shutdown", NULL, 0, deadline);
}

void weft__tls_free(weft_stream *s)
{
    if (s->ssl) {
        SSL_free(s->ssl); /* frees the BIO too */
        s->ssl = NULL;
    }
    weft_tls_ctx_free(s->tls);
    s->tls = NULL;
}

int weft_stream_start_tls(weft_stream *s, weft_tls_ctx *t, const char *server_name,
                          int64_t deadline)
{
    if (!s || !t || s->ssl || s->broken)
        return weft__seterr(-EINVAL, "weft_stream_start_tls: %s",
                            !s || !t ? "no stream or context" : "TLS already started");
    if (s->end > s->start)
        return weft__seterr(-EINVAL, "weft_stream_start_tls fd %d: %zu bytes arrived before "
                            "the handshake", s->fd, s->end - s->start);
    if (!t->server && !server_name && !t->insecure)
        return weft__seterr(-EINVAL, "weft_stream_start_tls: a server name is required to "
                            "verify the certificate");
    if (!s->is_socket)
        return weft__seterr(-EINVAL, "weft_stream_start_tls fd %d: not a socket", s->fd);
    SSL *ssl = SSL_new(t->ctx);
    BIO *bio = ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        return ctx_fail("TLS: SSL_new", NULL);
    }
    BIO_set_data(bio, s);
    SSL_set_bio(ssl, bio, bio);
    s->ssl = ssl;
    atomic_fetch_add(&t->refs, 1);
    s->tls = t;
    SSL_set_ex_data(ssl, stream_index, s);
    if (t->server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        /* The session cache key: the name the certificate was checked for,
         * and the server's address. */
        weft_addr peer;
        peer.len = sizeof peer.storage;
        char where[128] = "";
        if (getpeername(s->fd, (struct sockaddr *)&peer.storage, &peer.len) == 0)
            weft_addr_format(&peer, where, sizeof where);
        snprintf(s->tls_key, sizeof s->tls_key, "%s|%s", server_name ? server_name : "",
                 where);
        SSL_SESSION *sess = session_take(t, s->tls_key);
        if (sess) {
            SSL_set_session(ssl, sess);
            SSL_SESSION_free(sess); /* SSL_set_session took its own reference */
        }
        if (server_name) {
            unsigned char ip[16];
            bool is_ip = inet_pton(AF_INET, server_name, ip) == 1
                      || inet_pton(AF_INET6, server_name, ip) == 1;
            if (!is_ip) /* SNI carries names only (RFC 6066) */
                SSL_set_tlsext_host_name(ssl, server_name);
            if (!t->insecure) {
                X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name)
                               : X509_VERIFY_PARAM_set1_host(param, server_name, 0);
                if (ok != 1) {
                    s->broken = true;
                    return weft__seterr(-EINVAL, "TLS: bad server name '%s'", server_name);
                }
            }
        }
    }
    ssize_t rc = tls_run(s, op_handshake, "handshake", NULL, 0, deadline);
    if (rc < 0) {
        s->broken = true;
        return (int)rc;
    }
    const unsigned char *p = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &p, &len);
    if (p && len < sizeof s->alpn) {
        memcpy(s->alpn, p, len);
        s->alpn[len] = '\0';
    }
    return 0;
}

bool weft_stream_tls_resumed(const weft_stream *s)
{
    return s && s->ssl && SSL_session_reused(s->ssl);
}

const char *weft_stream_alpn(const weft_stream *s)
{
    return s && s->ssl && s->alpn[0] ? s->alpn : NULL;
}
