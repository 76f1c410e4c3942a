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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "net-internal.h"
#include "weft/exec.h"
#include "weft/net.h"

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
    cache_ttl_ns = ttl_ms < 0 ? 0 : ttl_ms * 1000000;
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
        if (now - e->stored >= cache_ttl_ns) /* the TTL in force now counts */
            break;
        for (; n < e->n && n < max; n++) {
            out[n] = e->addrs[n];
            set_port(&out[n], port);
        }
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

int weft_resolve(const char *host, uint16_t port, int family, weft_addr *out, size_t max,
                 int64_t deadline)
{
    if (!host || !*host || !out || max == 0
        || (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
        return weft__seterr(-EINVAL, "weft_resolve: bad arguments");
    if (weft__addr_numeric(host, port, out)) {
        if (family != AF_UNSPEC && out->storage.ss_family != family)
            return weft__seterr(WEFT_ERESOLVE, "weft_resolve: %s: not an address of the "
                                "requested family", host);
        return 1;
    }
    size_t n = cache_get(host, family, port, out, max);
    if (n)
        return (int)n;

    lookup *l = calloc(1, sizeof *l);
    cache_entry *e = calloc(1, sizeof *e);
    char *h = strdup(host);
    if (!l || !e || !h) {
        free(l);
        free(e);
        free(h);
        return weft__seterr(-ENOMEM, "weft_resolve: out of memory");
    }
    e->host = h;
    e->family = family;
    l->entry = e;
    weft_blocking_opts opts = { .deadline = deadline, .on_detached_done = lookup_free };
    int rc = weft_thread_pool_run(NULL, lookup_run, l, NULL, &opts);
    if (rc < 0) /* l is the worker's now, or freed already */
        return weft__seterr(rc, "weft_resolve: %s: %s", host, weft_strerror(rc));
    if (l->gai != 0) {
        const char *why = l->gai == EAI_SYSTEM ? strerror(l->gai_errno) : gai_strerror(l->gai);
        weft__seterr(WEFT_ERESOLVE, "weft_resolve: %s: %s", host, why);
        lookup_free(l, 0);
        return WEFT_ERESOLVE;
    }
    if (e->n == 0) {
        lookup_free(l, 0);
        return weft__seterr(WEFT_ERESOLVE, "weft_resolve: %s: no IPv4 or IPv6 address", host);
    }
    for (n = 0; n < e->n && n < max; n++) {
        out[n] = e->addrs[n];
        set_port(&out[n], port);
    }
    l->entry = NULL;
    cache_put(e);
    lookup_free(l, 0);
    return (int)n;
}

char *weft_addr_format(const weft_addr *addr, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
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
