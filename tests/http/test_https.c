/* SPDX-License-Identifier: MIT */
/*
 * weft-http over TLS: https:// requests to a small HTTP/1.1 keep-alive
 * server written here as weft tasks (weft_tls_server_new, weft_accept,
 * weft_stream_start_tls) with throwaway certificates made by the `openssl`
 * command (tests/net/tls_certs.h): bodies, connection reuse over TLS, a
 * redirect from http:// to https://, certificate verification against the
 * system store (fails: WEFT_ETLS "certificate verify failed") and against a
 * self-signed server, a handshake that never comes (connect timeout), and
 * the pool's books after each failure.  Skipped (77) without openssl.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_helpers.h"
#include "http/http_helpers.h"
#include <weft.h>
#include <weft/http.h>

#include "net/tls_certs.h"

/* ------------------------------------------------------------ helpers */

static struct tls_certs C;

/* test_post_after_close_notify: the server thread and the client's. */
static struct {
    int port;
    int stop[2];          /* a pipe: the client's loop is done */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int handshakes, requests;
    int closed; /* close_notify sent (atomic: the client spins on it) */
} TC = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static weft_tls_ctx *client_ctx(const char *ca)
{
    weft_tls_ctx *ctx = weft_tls_client_new(&(weft_tls_opts){.ca_file = ca});
    if (!ctx)
        fprintf(stderr, "weft_tls_client_new: %s\n", weft_errmsg());
    assert_non_null(ctx);
    return ctx;
}

/* ------------------------------------------------------------ the server */

/*
 * A minimal HTTP/1.1 server (http_helpers.h's): TLS when sv->ctx is set,
 * keep-alive; the target "/<n>" answers n pattern bytes, "/redirect" a 302
 * to sv->redirect_to; sv->no_handshake accepts and never starts TLS.
 */
struct conn {
    SERVER_CONN_FIELDS;
};

static int serve(struct conn *c)
{
    struct server *sv = c->sv;
    if (sv->no_handshake) {
        char b[256];
        while (weft_stream_read_some(c->st, b, sizeof b, weft_deadline_ms(10000)) > 0)
            ;
        return 0;
    }
    if (sv->ctx) {
        int rc = weft_stream_start_tls(c->st, sv->ctx, NULL, weft_deadline_ms(5000));
        if (rc < 0)
            return 0; /* the client gave up (verification failure): fine */
        sv->handshakes++;
    } else {
        /* a TLS ClientHello to the plain server: answer 400 and close, as
         * HTTP servers do */
        size_t have = 0;
        weft_stream_fill(c->st, 16384, weft_deadline_ms(5000));
        const unsigned char *p = weft_stream_peek(c->st, &have);
        if (have && p[0] == 0x16) {
            static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n";
            weft_stream_write_all(c->st, bad, sizeof bad - 1, weft_deadline_ms(5000));
            return 0;
        }
    }
    for (;;) {
        char head[8192];
        ssize_t n = weft_stream_read_until(c->st, "\r\n\r\n", 4, head, sizeof head - 1,
                                           weft_deadline_ms(10000));
        if (n < 0)
            return 0; /* the client closed */
        head[n] = '\0';
        sv->requests++;
        char target[64] = "";
        sscanf(head, "%*s %63s", target);
        char out[256];
        if (strcmp(target, "/redirect") == 0) {
            snprintf(out, sizeof out,
                     "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n",
                     sv->redirect_to);
            if (weft_stream_write_all(c->st, out, strlen(out), weft_deadline_ms(5000)) < 0)
                return 0;
            continue;
        }
        size_t len = strtoul(target + 1, NULL, 10);
        snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        if (weft_stream_write_all(c->st, out, strlen(out), weft_deadline_ms(5000)) < 0)
            return 0;
        char *body = malloc(len + 1);
        assert_non_null(body);
        for (size_t i = 0; i < len; i++)
            body[i] = (char)pattern(i);
        ssize_t w = weft_stream_write_all(c->st, body, len, weft_deadline_ms(5000));
        free(body);
        if (w < 0)
            return 0;
        if (sv->close_after_ms) {
            /* close the idle connection the TLS way, the socket left open */
            weft_sleep_ms(sv->close_after_ms);
            weft_stream_shutdown(c->st, weft_deadline_ms(5000));
            __atomic_add_fetch(&TC.closed, 1, __ATOMIC_RELEASE);
            char b[256];
            while (weft_stream_read_some(c->st, b, sizeof b, weft_deadline_ms(10000)) > 0)
                ;
            return 0;
        }
    }
}

/* A connection's handler: whatever ends it is the client's doing. */
static int serve_conn(void *arg)
{
    serve(arg);
    return 0;
}

/* Start a server with `cert`/`key` (NULL cert: plain HTTP). */
static void server_start(struct server *sv, const char *cert, const char *key)
{
    server_open(sv, serve_conn, sizeof(struct conn));
    if (cert) {
        sv->ctx = weft_tls_server_new(&(weft_tls_opts){.cert_file = cert, .key_file = key});
        if (!sv->ctx)
            fprintf(stderr, "weft_tls_server_new: %s\n", weft_errmsg());
        assert_non_null(sv->ctx);
    }
    server_accept(sv);
}

static void server_stop(struct server *sv)
{
    server_close(sv);
    weft_tls_ctx_free(sv->ctx);
}

/* ------------------------------------------------------------ tests */

static int get_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, C.server_cert, C.server_key);
    weft_tls_ctx *tls = client_ctx(C.ca_cert);
    weft_http_session *s = weft_http_session_new(&(weft_http_session_opts){.tls = tls});
    assert_non_null(s);
    char u[96];
    snprintf(u, sizeof u, "https://localhost:%d/", sv.port);
    weft_http_response *r = NULL;
    int rc = weft_http_get(s, u, &r);
    if (rc)
        fprintf(stderr, "GET %s: %s\n", u, weft_errmsg());
    assert_int_equal(rc, 0);
    assert_int_equal(weft_http_response_status(r), 200);
    assert_string_equal(weft_http_response_url(r), u);
    const void *body;
    size_t len;
    assert_int_equal(weft_http_response_body(r, &body, &len), 0);
    assert_int_equal(len, 0);
    weft_http_response_free(r);

    /* 20 requests of various sizes: one connection, one handshake */
    for (int i = 0; i < 20; i++) {
        size_t n = i == 19 ? 1 << 20 : (size_t)i * 997;
        snprintf(u, sizeof u, "https://localhost:%d/%zu", sv.port, n);
        assert_int_equal(weft_http_get(s, u, &r), 0);
        assert_int_equal(weft_http_response_status(r), 200);
        assert_int_equal(weft_http_response_body(r, &body, &len), 0);
        assert_true(body_ok(body, len, n));
        weft_http_response_free(r);
    }
    weft_http_stats st = stats_of(s);
    print_stats("https x 21", s);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.requests, 21);
    assert_int_equal(st.reused, 20);
    assert_int_equal(st.discarded, 0);
    assert_int_equal(sv.handshakes, 1);
    assert_int_equal(sv.accepted, 1);

    /* by address: the certificate names 127.0.0.1 too */
    snprintf(u, sizeof u, "https://127.0.0.1:%d/100", sv.port);
    assert_int_equal(weft_http_get(s, u, &r), 0);
    assert_int_equal(weft_http_response_body(r, &body, &len), 0);
    assert_true(body_ok(body, len, 100));
    weft_http_response_free(r);
    /* a different origin: its own connection */
    assert_int_equal(stats_of(s).opened, 2);

    weft_http_session_free(s);
    weft_tls_ctx_free(tls);
    assert_true(server_live_is(&sv, 0, 2000));
    server_stop(&sv);
    return 0;
}

static void test_https_get_and_reuse(void **state)
{
    (void)state;
    run_task(get_main);
}

/* http:// answers 302 to https://: followed, over a new TLS connection. */
static int redirect_main(void *arg)
{
    (void)arg;
    struct server tls_sv, plain_sv;
    server_start(&tls_sv, C.server_cert, C.server_key);
    server_start(&plain_sv, NULL, NULL);
    snprintf(plain_sv.redirect_to, sizeof plain_sv.redirect_to, "https://localhost:%d/333",
             tls_sv.port);
    weft_tls_ctx *tls = client_ctx(C.ca_cert);
    weft_http_session *s = weft_http_session_new(&(weft_http_session_opts){.tls = tls});
    assert_non_null(s);
    char u[96];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/redirect", plain_sv.port);
    weft_http_response *r = NULL;
    assert_int_equal(weft_http_get(s, u, &r), 0);
    assert_int_equal(weft_http_response_status(r), 200);
    assert_string_equal(weft_http_response_url(r), plain_sv.redirect_to);
    const void *body;
    size_t len;
    assert_int_equal(weft_http_response_body(r, &body, &len), 0);
    assert_true(body_ok(body, len, 333));
    weft_http_response_free(r);
    weft_http_stats st = stats_of(s);
    print_stats("http -> https", s);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.idle, 2);
    weft_http_session_free(s);
    weft_tls_ctx_free(tls);
    server_stop(&plain_sv);
    server_stop(&tls_sv);
    return 0;
}

static void test_redirect_to_https(void **state)
{
    (void)state;
    run_task(redirect_main);
}

static int verify_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, C.server_cert, C.server_key);
    char u[96];
    snprintf(u, sizeof u, "https://localhost:%d/10", sv.port);
    /* the default context: the system store does not know our CA */
    weft_http_session *s = weft_http_session_new(NULL);
    assert_non_null(s);
    weft_http_response *r = NULL;
    int rc = weft_http_get(s, u, &r);
    printf("# system store: %d %s\n", rc, weft_errmsg());
    assert_int_equal(rc, WEFT_ETLS);
    assert_null(r);
    assert_contains(weft_errmsg(), "certificate verify failed");
    weft_http_stats st = stats_of(s);
    assert_int_equal(st.open, 0);
    assert_int_equal(st.opened, 0);
    /* not retried, and it keeps failing the same way */
    assert_int_equal(weft_http_get(s, u, &r), WEFT_ETLS);
    assert_int_equal(stats_of(s).retries, 0);
    weft_http_session_free(s);
    assert_int_equal(sv.handshakes, 0);
    server_stop(&sv);

    /* a self-signed server, with our CA trusted: fails too */
    server_start(&sv, C.self_cert, C.self_key);
    snprintf(u, sizeof u, "https://localhost:%d/10", sv.port);
    weft_tls_ctx *tls = client_ctx(C.ca_cert);
    s = weft_http_session_new(&(weft_http_session_opts){.tls = tls});
    assert_non_null(s);
    rc = weft_http_get(s, u, &r);
    printf("# self-signed: %d %s\n", rc, weft_errmsg());
    assert_int_equal(rc, WEFT_ETLS);
    assert_contains(weft_errmsg(), "certificate verify failed");
    assert_int_equal(stats_of(s).open, 0);
    weft_http_session_free(s);
    server_stop(&sv);

    /* https to a plain HTTP server: a TLS error, not a hang */
    server_start(&sv, NULL, NULL);
    snprintf(u, sizeof u, "https://localhost:%d/10", sv.port);
    s = weft_http_session_new(&(weft_http_session_opts){.tls = tls,
                                                        .timeouts = {.connect_ms = 2000}});
    assert_non_null(s);
    rc = weft_http_get(s, u, &r);
    printf("# https to plain HTTP: %d %s\n", rc, weft_errmsg());
    assert_true(rc == WEFT_ETLS || rc == WEFT_EEOF || rc == -ECONNRESET);
    assert_int_equal(stats_of(s).open, 0);
    weft_http_session_free(s);
    server_stop(&sv);
    weft_tls_ctx_free(tls);
    return 0;
}

static void test_verify_failures(void **state)
{
    (void)state;
    run_task(verify_main);
}

/* A server that accepts but never answers the ClientHello: the connect
 * limit covers the handshake. */
static int handshake_timeout_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, C.server_cert, C.server_key);
    sv.no_handshake = true;
    weft_tls_ctx *tls = client_ctx(C.ca_cert);
    weft_http_session *s = weft_http_session_new(&(weft_http_session_opts){.tls = tls});
    assert_non_null(s);
    char u[96];
    snprintf(u, sizeof u, "https://localhost:%d/10", sv.port);
    weft_http_request req = {.url = u, .timeouts = {.connect_ms = 150}};
    weft_http_response *r = NULL;
    int64_t t0 = (clock_ns() / MS);
    int rc = weft_http_fetch(s, &req, &r);
    int64_t took = (clock_ns() / MS) - t0;
    printf("# no handshake: %d after %lld ms: %s\n", rc, (long long)took, weft_errmsg());
    assert_int_equal(rc, -ETIMEDOUT);
    assert_contains(weft_errmsg(), "connecting");
    assert_true(took >= 140 && took < 1000);
    weft_http_stats st = stats_of(s);
    assert_int_equal(st.open, 0);
    assert_int_equal(st.opened, 0);
    assert_true(server_live_is(&sv, 0, 2000));
    /* the server learns to shake hands: the session works */
    sv.no_handshake = false;
    snprintf(u, sizeof u, "https://localhost:%d/10", sv.port);
    assert_int_equal(weft_http_get(s, u, &r), 0);
    weft_http_response_free(r);
    weft_http_session_free(s);
    weft_tls_ctx_free(tls);
    server_stop(&sv);
    return 0;
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    run_task(handshake_timeout_main);
}

/* ------------------------------------------------------------ close_notify on an idle connection */

/* The server runs its own loop on a thread, so that it closes the idle
 * connection (close_notify, 50 ms after its answer) while the client's loop
 * is busy computing and never polls. */

static int tls_closer_main(void *arg)
{
    (void)arg;
    struct server sv;
    server_start(&sv, C.server_cert, C.server_key);
    sv.close_after_ms = 50;
    pthread_mutex_lock(&TC.mu);
    TC.port = sv.port;
    pthread_cond_signal(&TC.cv);
    pthread_mutex_unlock(&TC.mu);
    weft_wait_fd(TC.stop[0], WEFT_READABLE, weft_deadline_ms(20000));
    TC.handshakes = sv.handshakes;
    TC.requests = sv.requests;
    server_stop(&sv);
    return 0;
}

static void *tls_closer_thread(void *arg)
{
    (void)arg;
    weft_run(tls_closer_main, NULL);
    return NULL;
}

static int post_after_close_notify_main(void *arg)
{
    (void)arg;
    weft_tls_ctx *tls = client_ctx(C.ca_cert);
    weft_http_session *s = weft_http_session_new(&(weft_http_session_opts){.tls = tls});
    assert_non_null(s);
    char u[96];
    snprintf(u, sizeof u, "https://localhost:%d/10", TC.port);
    weft_http_response *r = NULL;
    assert_int_equal(weft_http_get(s, u, &r), 0);
    weft_http_response_free(r);
    assert_int_equal(stats_of(s).idle, 1);
    /* compute for 200 ms without yielding, and until the server has sent
     * its alert (however loaded the machine): the loop never sees it */
    compute_until_set(&TC.closed, 200, 10000);
    assert_int_equal(__atomic_load_n(&TC.closed, __ATOMIC_ACQUIRE), 1);
    int rc = weft_http_fetch(s, &(weft_http_request){.method = "POST", .url = u, .body = "x",
                                                      .body_len = 1},
                             &r);
    printf("# POST after close_notify on the idle connection: %d %s\n", rc,
           rc ? weft_errmsg() : "");
    assert_int_equal(rc, 0);
    assert_int_equal(weft_http_response_status(r), 200);
    weft_http_response_free(r);
    weft_http_stats st = stats_of(s);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.discarded, 1); /* found closed by the peek */
    assert_books(s);
    weft_http_session_free(s);
    weft_tls_ctx_free(tls);
    return 0;
}

static void test_post_after_close_notify(void **state)
{
    (void)state;
    assert_int_equal(pipe(TC.stop), 0);
    TC.port = 0;
    TC.closed = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, tls_closer_thread, NULL), 0);
    pthread_mutex_lock(&TC.mu);
    while (!TC.port)
        pthread_cond_wait(&TC.cv, &TC.mu);
    pthread_mutex_unlock(&TC.mu);
    int st = weft_run(post_after_close_notify_main, NULL);
    assert_int_equal(write(TC.stop[1], "x", 1), 1);
    pthread_join(th, NULL);
    close(TC.stop[0]);
    close(TC.stop[1]);
    assert_int_equal(st, 0);
    assert_int_equal(TC.handshakes, 2);
    assert_int_equal(TC.requests, 2);
}

/* ------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    return tls_certs_make(&C);
}

static int teardown(void **state)
{
    (void)state;
    tls_certs_cleanup(&C);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    if (!tls_certs_have_openssl()) {
        printf("# the openssl command is missing: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_get_and_reuse),
        cmocka_unit_test(test_redirect_to_https),
        cmocka_unit_test(test_verify_failures),
        cmocka_unit_test(test_post_after_close_notify),
        cmocka_unit_test(test_handshake_timeout),
    };
    return run_cases(tests, setup, teardown);
}
