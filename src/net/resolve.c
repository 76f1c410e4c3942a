/* SPDX-License-Identifier: MIT */
/*
 * Name resolution.  Numeric addresses are parsed in place; names go through
 * getaddrinfo(3) on the default thread pool (it blocks), and the answers are
 * cached process-wide for a TTL, like aiohttp's ttl_dns_cache.  A lookup that
 * times out or is cancelled is detached: its thread finishes on its own and
 * frees the job.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "net-internal.h"
#include "weft/exec.h"
#include "weft/net.h"
#include "weft/sync.h"

#define CACHE_MAX 256       /* entries; the oldest goes when full */
#define ADDRS_MAX 16        /* addresses kept per name */

typedef struct cache_entry {
    char *host;
    int family;
    int64_t stored;         /* CLOCK_MONOTONIC ns */
    size_t n;
    weft_addr addrs[ADDRS_MAX]; /* port 0 */
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache[CACHE_MAX];
static size_t cache_len;
static int64_t cache_ttl_ns = 10 * 1000000000LL;

static void set_port(weft_addr *a, uint16_t port)
{
    if (a->storage.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->storage)->sin_port = htons(port);
    else if (a->storage.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->storage)->sin6_port = htons(port);
}

/* Numeric IPv4 or IPv6 (brackets allowed) into *a; false if not numeric. */
bool weft__addr_numeric(const char *host, uint16_t port, weft_addr *a)
{
    memset(a, 0, sizeof *a);
    char buf[INET6_ADDRSTRLEN + 8];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof buf) {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&a->storage;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->storage;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        a->len = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        a->len = sizeof *in6;
    } else {
        return false;
    }
    set_port(a, port);
    return true;
}

void weft_resolve_cache_ttl_ms(int64_t ttl_ms)
{
    pthread_mutex_lock(&cache_lock);
    cache_ttl_ns = ttl_ms < 0                    ? 0
                   : ttl_ms > INT64_MAX / 1000000 ? INT64_MAX /* saturate: forever */
                                                  : ttl_ms * 1000000;
    pthread_mutex_unlock(&cache_lock);
}

static void entry_free(cache_entry *e)
{
    if (e) {
        free(e->host);
        free(e);
    }
}

void weft_resolve_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < cache_len; i++)
        entry_free(cache[i]);
    cache_len = 0;
    pthread_mutex_unlock(&cache_lock);
}

/* Copy an answer (port 0) into out[] with `port`. */
static int answer(const weft_addr *addrs, size_t n, uint16_t port, weft_addr *out, size_t max)
{
    size_t i;
    for (i = 0; i < n && i < max; i++) {
        out[i] = addrs[i];
        set_port(&out[i], port);
    }
    return (int)i;
}

/* Copy a live entry's addresses; returns the count or 0. */
static size_t cache_get(const char *host, int family, uint16_t port, weft_addr *out, size_t max)
{
    size_t n = 0;
    int64_t now = weft__clock_ns();
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < cache_len; i++) {
        cache_entry *e = cache[i];
        if (e->family != family || strcmp(e->host, host) != 0)
            continue;
        if (now - e->stored < cache_ttl_ns) /* the TTL in force now counts */
            n = (size_t)answer(e->addrs, e->n, port, out, max);
        break;
    }
    pthread_mutex_unlock(&cache_lock);
    return n;
}

static void cache_put(cache_entry *e)
{
    pthread_mutex_lock(&cache_lock);
    if (cache_ttl_ns == 0) {
        pthread_mutex_unlock(&cache_lock);
        entry_free(e);
        return;
    }
    e->stored = weft__clock_ns();
    for (size_t i = 0; i < cache_len; i++) {
        if (cache[i]->family == e->family && strcmp(cache[i]->host, e->host) == 0) {
            entry_free(cache[i]);
            memmove(&cache[i], &cache[i + 1], (cache_len - i - 1) * sizeof cache[0]);
            cache_len--;
            break;
        }
    }
    if (cache_len == CACHE_MAX) {
        entry_free(cache[0]);
        memmove(&cache[0], &cache[1], (CACHE_MAX - 1) * sizeof cache[0]);
        cache_len--;
    }
    cache[cache_len++] = e;
    pthread_mutex_unlock(&cache_lock);
}

/* A lookup handed to a worker thread. */
typedef struct lookup {
    cache_entry *entry;     /* host, family in; addrs out */
    int gai;                /* getaddrinfo's result */
    int gai_errno;          /* errno for EAI_SYSTEM */
} lookup;

static int lookup_run(void *arg)
{
    lookup *l = arg;
    cache_entry *e = l->entry;
    struct addrinfo hints = {
        .ai_family = e->family,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_ADDRCONFIG,
    };
    struct addrinfo *res = NULL;
    l->gai = getaddrinfo(e->host, NULL, &hints, &res);
    l->gai_errno = errno;
    if (l->gai != 0)
        return 0;
    /* Interleave the families (RFC 8305 section 4), keeping each family's
     * order: first family first. */
    weft_addr v6[ADDRS_MAX], v4[ADDRS_MAX];
    size_t n6 = 0, n4 = 0;
    int first = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        weft_addr *dst;
        if (ai->ai_family == AF_INET6 && n6 < ADDRS_MAX)
            dst = &v6[n6++];
        else if (ai->ai_family == AF_INET && n4 < ADDRS_MAX)
            dst = &v4[n4++];
        else
            continue;
        if (!first)
            first = ai->ai_family;
        memset(dst, 0, sizeof *dst);
        memcpy(&dst->storage, ai->ai_addr, ai->ai_addrlen);
        dst->len = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    weft_addr *a = first == AF_INET ? v4 : v6, *b = first == AF_INET ? v6 : v4;
    size_t na = first == AF_INET ? n4 : n6, nb = first == AF_INET ? n6 : n4;
    size_t ia = 0, ib = 0;
    e->n = 0;
    while ((ia < na || ib < nb) && e->n < ADDRS_MAX) {
        if (ia < na)
            e->addrs[e->n++] = a[ia++];
        if (ib < nb && e->n < ADDRS_MAX)
            e->addrs[e->n++] = b[ib++];
    }
    return 0;
}

static void lookup_free(void *arg, int result)
{
    (void)result;
    lookup *l = arg;
    entry_free(l->entry);
    free(l);
}

/* Lookups in progress on this thread's loop.  A task that asks for a name
 * another task is already resolving waits for that answer (aiohttp's DNS
 * throttling) rather than start a second getaddrinfo.  Freed by whoever
 * leaves it last: the task that resolved it, or the last waiter. */
typedef struct inflight {
    struct inflight *next;
    char *host;
    int family;
    bool finished;
    int rc;                     /* 0, WEFT_ERESOLVE, or the resolver's own failure */
    int waiters;
    char why[160];
    size_t n;
    weft_addr addrs[ADDRS_MAX]; /* port 0 */
    weft_event done;
} inflight;

static _Thread_local inflight *inflights;
static _Atomic uint64_t stat_lookups, stat_hits, stat_joined;

void weft_resolve_stats_get(weft_resolve_stats *st)
{
    if (!st)
        return;
    st->lookups = atomic_load(&stat_lookups);
    st->cache_hits = atomic_load(&stat_hits);
    st->joined = atomic_load(&stat_joined);
}

static void inflight_free(inflight *f)
{
    weft_event_close(&f->done);
    free(f->host);
    free(f);
}

/* getaddrinfo on the thread pool; fills f (addrs, n, rc, why). */
static void system_lookup(inflight *f, int64_t deadline)
{
    atomic_fetch_add(&stat_lookups, 1);
    lookup *l = calloc(1, sizeof *l);
    cache_entry *e = calloc(1, sizeof *e);
    char *h = strdup(f->host);
    if (!l || !e || !h) {
        free(l);
        free(e);
        free(h);
        f->rc = -ENOMEM;
        snprintf(f->why, sizeof f->why, "out of memory");
        return;
    }
    e->host = h;
    e->family = f->family;
    l->entry = e;
    weft_blocking_opts opts = { .on_detached_done = lookup_free };
    /* The caller's absolute deadline bounds the call as a scope: the pool's
     * own limit is relative, and the lookup must not outlast the deadline. */
    weft_scope scope;
    weft_scope_enter(&scope, deadline);
    int rc = weft_thread_pool_run(NULL, lookup_run, l, NULL, &opts);
    weft_scope_exit(&scope);
    if (rc < 0) { /* l is the worker's now, or freed already */
        f->rc = rc;
        snprintf(f->why, sizeof f->why, "%s", weft_strerror(rc));
        return;
    }
    if (l->gai != 0 || e->n == 0) {
        f->rc = WEFT_ERESOLVE;
        snprintf(f->why, sizeof f->why, "%s",
                 l->gai == 0 ? "no IPv4 or IPv6 address"
                 : l->gai == EAI_SYSTEM ? strerror(l->gai_errno) : gai_strerror(l->gai));
        lookup_free(l, 0);
        return;
    }
    f->n = e->n;
    memcpy(f->addrs, e->addrs, e->n * sizeof e->addrs[0]);
    l->entry = NULL;
    cache_put(e);
    lookup_free(l, 0);
}

int weft_resolve(const char *host, uint16_t port, int family, weft_addr *out, size_t max,
                 int64_t deadline)
{
    if (!host || !*host)
        return weft__seterr(-EINVAL, "weft_resolve: %s host", host ? "empty" : "NULL");
    if (!out || max == 0)
        return weft__seterr(-EINVAL, "weft_resolve: %s: no room for an address (out %s, max "
                            "%zu)", host, out ? "set" : "NULL", max);
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return weft__seterr(-EINVAL, "weft_resolve: %s: family %d is not AF_UNSPEC, AF_INET "
                            "or AF_INET6", host, family);
    if (weft__addr_numeric(host, port, out)) {
        if (family != AF_UNSPEC && out->storage.ss_family != family)
            return weft__seterr(WEFT_ERESOLVE, "weft_resolve: %s: not an address of the "
                                "requested family", host);
        return 1;
    }
    for (;;) {
        size_t n = cache_get(host, family, port, out, max);
        if (n) {
            atomic_fetch_add(&stat_hits, 1);
            return (int)n;
        }
        inflight *f = inflights;
        while (f && (f->family != family || strcmp(f->host, host) != 0))
            f = f->next;
        if (f) { /* another task resolves it: wait for its answer */
            atomic_fetch_add(&stat_joined, 1);
            f->waiters++;
            int w = weft_event_wait_until(&f->done, deadline);
            f->waiters--;
            int rc = f->rc;
            int got = w == 0 && rc == 0 ? answer(f->addrs, f->n, port, out, max) : 0;
            char why[sizeof f->why];
            snprintf(why, sizeof why, "%s", f->why);
            bool finished = f->finished;
            if (finished && f->waiters == 0)
                inflight_free(f);
            if (w < 0)
                return weft__seterr(w, "weft_resolve: %s: %s", host, weft_strerror(w));
            if (rc == 0)
                return got;
            if (rc == WEFT_ERESOLVE)
                return weft__seterr(rc, "weft_resolve: %s: %s", host, why);
            continue; /* the other task gave up (its deadline, a cancel): try ourselves */
        }
        f = calloc(1, sizeof *f);
        if (!f || !(f->host = strdup(host))) {
            free(f);
            return weft__seterr(-ENOMEM, "weft_resolve: out of memory");
        }
        f->family = family;
        weft_event_init(&f->done);
        f->next = inflights;
        inflights = f;
        system_lookup(f, deadline);
        for (inflight **pp = &inflights; *pp; pp = &(*pp)->next)
            if (*pp == f) {
                *pp = f->next;
                break;
            }
        f->finished = true;
        weft_event_set(&f->done);
        int rc = f->rc;
        int got = rc == 0 ? answer(f->addrs, f->n, port, out, max) : 0;
        if (rc < 0)
            weft__seterr(rc, "weft_resolve: %s: %s", host, f->why);
        if (f->waiters == 0)
            inflight_free(f);
        return rc < 0 ? rc : got;
    }
}

char *weft_addr_format(const weft_addr *addr, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (!addr) {
        buf[0] = '\0';
        return buf;
    }
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&addr->storage;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        snprintf(buf, len, "%.*s", (int)sizeof un->sun_path, un->sun_path);
    } else {
        snprintf(buf, len, "(address family %d)", sa->sa_family);
    }
    return buf;
}
