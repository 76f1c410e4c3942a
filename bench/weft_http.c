/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client workloads of the peers' runtime suite, with weft-http:
 *
 *   http-pooled      20,000 x GET /1k,  10 in flight, one session (limit 10)
 *   http-fresh       20,000 x GET /1k,  10 in flight, a new session (so a new
 *                    TCP connection) per request, created inside the clock
 *   http-64k-pooled   5,000 x GET /64k, 10 in flight, one session (limit 10)
 *
 * "10 in flight" = 10 tasks taking the next request number from a shared
 * counter.  Every response must be 200 with the exact body length.  nginx on
 * 127.0.0.1:$NGINX_PORT (default 18080).  Prints one JSON line; bench/run
 * adds the process's CPU time (bench/cpu_time), as it does for libcurl.
 *
 * usage: weft_http {http-pooled|http-fresh|http-64k-pooled}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft/http.h>

#include "bench_util.h"

#define INFLIGHT 10

static struct {
    char url[128];
    long n, issued, errors;
    size_t size;
    bool fresh;
    unsigned long long bytes;
    weft_http_session *session;
} B;

static void one(weft_http_session *s)
{
    weft_http_response *r;
    const void *body;
    size_t len = 0;
    if (weft_http_get(s, B.url, &r) < 0) {
        fprintf(stderr, "weft_http: %s\n", weft_errmsg());
        B.errors++;
        return;
    }
    weft_http_response_body(r, &body, &len);
    if (weft_http_response_status(r) != 200 || len != B.size)
        B.errors++;
    B.bytes += len;
    weft_http_response_free(r);
}

static int worker(void *arg)
{
    (void)arg;
    while (B.issued < B.n) {
        B.issued++;
        if (B.fresh) {
            weft_http_session *s = weft_http_session_new(NULL);
            if (!s) {
                B.errors++;
                continue;
            }
            one(s);
            weft_http_session_free(s);
        } else {
            one(B.session);
        }
    }
    return 0;
}

static int bench(void *arg)
{
    const char *workload = arg;
    if (!B.fresh)
        B.session = weft_http_session_new(&(weft_http_session_opts){ .limit = INFLIGHT });
    double t0 = now_s();
    weft_task *t[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++)
        t[i] = weft_spawn(worker, NULL, NULL);
    for (int i = 0; i < INFLIGHT; i++)
        weft_join(t[i], NULL);
    double dt = now_s() - t0;
    weft_http_session_free(B.session);
    json_begin("weft", workload, B.n, dt, "req/s");
    printf(", \"mb_per_s\": %.3f, \"errors\": %ld", (double)B.bytes / 1e6 / dt, B.errors);
    json_end();
    return B.errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *w = argc > 1 ? argv[1] : "";
    const char *port = getenv("NGINX_PORT") ? getenv("NGINX_PORT") : "18080";
    const char *path;
    if (strcmp(w, "http-pooled") == 0 || strcmp(w, "http-fresh") == 0) {
        path = "/1k";
        B.n = scaled_count(20000);
        B.size = 1024;
        B.fresh = strcmp(w, "http-fresh") == 0;
    } else if (strcmp(w, "http-64k-pooled") == 0) {
        path = "/64k";
        B.n = scaled_count(5000);
        B.size = 65536;
    } else {
        fprintf(stderr, "usage: weft_http {http-pooled|http-fresh|http-64k-pooled}\n");
        return 2;
    }
    snprintf(B.url, sizeof B.url, "http://127.0.0.1:%s%s", port, path);
    int status = 0;
    int rc = weft_run(bench, (void *)w);
    if (rc < 0)
        fprintf(stderr, "weft_http: %s\n", weft_strerror(rc));
    status = rc < 0 ? 1 : B.errors ? 1 : 0;
    return status;
}
