/* SPDX-License-Identifier: MIT */
/*
 * Reuse connections: one HTTP session for every request, not one per request
 * (the guide's "one aiohttp.ClientSession" practice).
 *
 *   ❌ a new session per request: every request pays a TCP handshake (and a
 *      TLS one for https), and the server sees one connection per request;
 *   ✅ one shared session: its pool keeps connections open and reuses them.
 *
 * The example serves itself: a tiny keep-alive HTTP server runs as tasks in
 * the same loop and counts the connections it accepts.  Pass a URL to fetch
 * from another server instead: ./conn_pool http://127.0.0.1:8080/
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft/http.h>

#define REQUESTS 400
#define IN_FLIGHT 10

static char url[256];
static long accepted; /* connections the local server accepted */

/* ------------------------------------------------------------ the server */

static int serve_connection(void *arg)
{
    weft_stream *s = weft_stream_new((int)(intptr_t)arg, 0);
    char head[8192];
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";
    /* Requests without a body: a head ends with an empty line. */
    while (s && weft_stream_read_until(s, "\r\n\r\n", 4, head, sizeof head,
                                       weft_deadline_ms(30000)) > 0)
        if (weft_stream_write_all(s, reply, sizeof reply - 1, weft_deadline_ms(30000)) < 0)
            break;
    weft_stream_close(s);
    return 0;
}

static int server(void *arg)
{
    int listener = (int)(intptr_t)arg;
    for (;;) {
        int fd = weft_accept(listener, NULL, WEFT_NO_DEADLINE);
        if (fd < 0)
            return 0; /* cancelled: the example is over */
        accepted++;
        weft_task *t = weft_spawn(serve_connection, (void *)(intptr_t)fd, NULL);
        if (t)
            weft_detach(t);
        else
            weft_close(fd);
    }
}

/* ------------------------------------------------------------ the clients */

static int fetch(weft_http_session *http)
{
    weft_http_response *r;
    if (weft_http_get(http, url, &r) < 0) {
        fprintf(stderr, "GET %s: %s\n", url, weft_errmsg());
        return -1;
    }
    int ok = weft_http_response_status(r) == 200 ? 0 : -1;
    weft_http_response_free(r);
    return ok;
}

static int next_request;

/* ❌ a session (so a connection) per request */
static int worker_fresh(void *arg)
{
    (void)arg;
    while (next_request < REQUESTS) {
        next_request++;
        weft_http_session *http = weft_http_session_new(NULL);
        int rc = http ? fetch(http) : -1;
        weft_http_session_free(http);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ✅ one session shared by all workers */
static int worker_shared(void *arg)
{
    weft_http_session *http = arg;
    while (next_request < REQUESTS) {
        next_request++;
        if (fetch(http) < 0)
            return -1;
    }
    return 0;
}

static int run_workers(weft_task_fn fn, void *arg)
{
    next_request = 0;
    weft_task *t[IN_FLIGHT];
    int failed = 0;
    for (int i = 0; i < IN_FLIGHT; i++)
        t[i] = weft_spawn(fn, arg, NULL);
    for (int i = 0; i < IN_FLIGHT; i++) {
        int status = -1;
        if (!t[i] || weft_join(t[i], &status) < 0 || status != 0)
            failed = 1;
    }
    return failed ? -1 : 0;
}

static int example(void *arg)
{
    (void)arg;
    weft_task *srv = NULL;
    if (!url[0]) {
        int listener = weft_tcp_listen("127.0.0.1", 0, 0);
        if (listener < 0) {
            fprintf(stderr, "listen: %s\n", weft_errmsg());
            return 1;
        }
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", weft_local_port(listener));
        srv = weft_spawn(server, (void *)(intptr_t)listener, NULL);
    }
    printf("%d GET %s, %d in flight\n", REQUESTS, url, IN_FLIGHT);

    long before = accepted;
    int64_t t0 = weft_now();
    int rc = run_workers(worker_fresh, NULL);
    double fresh_ms = (double)(weft_now() - t0) / 1e6;
    if (rc == 0)
        printf("  ❌ a session per request: %7.1f ms, %d connections opened\n", fresh_ms,
               REQUESTS);
    if (rc == 0 && srv)
        printf("     (the server accepted %ld)\n", accepted - before);

    weft_http_session *http = weft_http_session_new(&(weft_http_session_opts){
        .limit = IN_FLIGHT,
    });
    before = accepted;
    t0 = weft_now();
    if (rc == 0)
        rc = run_workers(worker_shared, http);
    double shared_ms = (double)(weft_now() - t0) / 1e6;
    weft_http_stats st;
    weft_http_session_stats(http, &st);
    if (rc == 0)
        printf("  ✅ one shared session:    %7.1f ms, %llu connections opened, %llu reuses\n",
               shared_ms, (unsigned long long)st.opened, (unsigned long long)st.reused);
    if (rc == 0 && srv)
        printf("     (the server accepted %ld)\n", accepted - before);
    weft_http_session_free(http);

    if (srv) {
        weft_cancel(srv);
        weft_join(srv, NULL);
    }
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        snprintf(url, sizeof url, "%s", argv[1]);
    int rc = weft_run(example, NULL);
    return rc == 0 ? 0 : 1;
}
