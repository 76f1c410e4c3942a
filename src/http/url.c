/* SPDX-License-Identifier: MIT */
/*
 * URLs for the client (RFC 3986, the http and https schemes only): strict
 * about what would be unsafe to put on the wire (controls, spaces), lenient
 * about what servers send in Location (relative references).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-internal.h"
#include "weft/error.h"

static int bad(const char *url, const char *why)
{
    return weft_seterr(-EINVAL, "bad URL '%.120s': %s", url, why);
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* Characters allowed in a request target: visible ASCII, no '#'. */
static bool target_char_ok(unsigned char c) { return c > 0x20 && c < 0x7f && c != '#'; }

static bool host_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
}

/* Set u->target from [p, end) (path and query; the fragment is cut). */
static int set_target(weft__url *u, const char *url, const char *p, size_t len)
{
    const char *hash = memchr(p, '#', len);
    if (hash)
        len = (size_t)(hash - p);
    for (size_t i = 0; i < len; i++)
        if (!target_char_ok((unsigned char)p[i]))
            return bad(url, "a space or control character in the path");
    bool slash = len == 0 || p[0] != '/';
    char *t = malloc(len + 2);
    if (!t)
        return weft_seterr(-ENOMEM, "URL: out of memory");
    size_t n = 0;
    if (slash)
        t[n++] = '/';
    memcpy(t + n, p, len);
    t[n + len] = '\0';
    free(u->target);
    u->target = t;
    return 0;
}

static int parse_absolute(weft__url *u, const char *url)
{
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0) {
        u->tls = false;
        p = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = true;
        p = url + 8;
    } else {
        return bad(url, strstr(url, "://") ? "only http:// and https:// are supported"
                                           : "no scheme (http:// or https://)");
    }
    size_t alen = strcspn(p, "/?#");
    const char *auth = p, *auth_end = p + alen;
    if (memchr(auth, '@', alen))
        return bad(url, "credentials in the URL are not supported (send an Authorization field)");
    const char *host = auth, *host_end, *port = NULL;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close)
            return bad(url, "unclosed '[' in the host");
        host = auth + 1;
        host_end = close;
        for (const char *c = host; c < host_end; c++)
            if (!(host_char_ok((unsigned char)*c) || *c == ':'))
                return bad(url, "bad character in the IPv6 address");
        if (close + 1 < auth_end) {
            if (close[1] != ':')
                return bad(url, "junk after ']'");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        host_end = colon ? colon : auth_end;
        port = colon ? colon + 1 : NULL;
        for (const char *c = host; c < host_end; c++)
            if (!host_char_ok((unsigned char)*c))
                return bad(url, "bad character in the host");
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0)
        return bad(url, "no host");
    if (hlen >= sizeof u->host)
        return bad(url, "host name too long");
    for (size_t i = 0; i < hlen; i++)
        u->host[i] = lower(host[i]);
    u->host[hlen] = '\0';
    unsigned long pnum = u->tls ? 443 : 80;
    if (port) {
        if (port == auth_end)
            return bad(url, "empty port");
        pnum = 0;
        for (const char *c = port; c < auth_end; c++) {
            if (*c < '0' || *c > '9')
                return bad(url, "the port is not a number");
            pnum = pnum * 10 + (unsigned long)(*c - '0');
            if (pnum > 65535)
                return bad(url, "port out of range");
        }
        if (pnum == 0)
            return bad(url, "port 0");
    }
    u->port = (uint16_t)pnum;
    /* The Host field: host[:port], brackets kept (no snprintf: every
     * request parses its URL). */
    bool v6 = *auth == '[';
    char *a = u->authority;
    if (v6)
        *a++ = '[';
    memcpy(a, u->host, hlen);
    a += hlen;
    if (v6)
        *a++ = ']';
    if (pnum != (u->tls ? 443u : 80u)) {
        char digits[6];
        int nd = 0;
        for (unsigned long v = pnum; v; v /= 10)
            digits[nd++] = (char)('0' + v % 10);
        *a++ = ':';
        while (nd)
            *a++ = digits[--nd];
    }
    *a = '\0';
    return set_target(u, url, auth_end, strlen(auth_end));
}

int weft__url_parse(weft__url *u, const char *url, const weft__url *base)
{
    weft__url tmp; /* every field is set below (no clearing of the 500-byte buffers) */
    tmp.tls = false;
    tmp.port = 0;
    tmp.host[0] = tmp.authority[0] = '\0';
    tmp.target = NULL;
    if (!url || !*url)
        return weft_seterr(-EINVAL, "bad URL: empty");
    int rc;
    bool has_scheme = false;
    for (const char *c = url; *c && *c != '/' && *c != '?' && *c != '#'; c++)
        if (*c == ':') {
            has_scheme = true;
            break;
        }
    if (!base || has_scheme) {
        rc = parse_absolute(&tmp, url);
    } else if (url[0] == '/' && url[1] == '/') {
        /* scheme-relative: //host/path */
        size_t n = strlen(url);
        char *abs = malloc(n + 8);
        if (!abs)
            return weft_seterr(-ENOMEM, "URL: out of memory");
        snprintf(abs, n + 8, "%s:%s", base->tls ? "https" : "http", url);
        rc = parse_absolute(&tmp, abs);
        free(abs);
    } else {
        /* Same origin; the path is absolute or relative to the base's
         * directory (dot segments are left to the server). */
        tmp.tls = base->tls;
        tmp.port = base->port;
        memcpy(tmp.host, base->host, sizeof tmp.host);
        memcpy(tmp.authority, base->authority, sizeof tmp.authority);
        if (url[0] == '/') {
            rc = set_target(&tmp, url, url, strlen(url));
        } else {
            const char *bt = base->target;
            size_t qpos = strcspn(bt, "?");
            size_t dir = qpos;
            while (dir > 0 && bt[dir - 1] != '/')
                dir--;
            if (url[0] == '?')
                dir = qpos;
            size_t n = strlen(url);
            char *joined = malloc(dir + n + 1);
            if (!joined)
                return weft_seterr(-ENOMEM, "URL: out of memory");
            memcpy(joined, bt, dir);
            memcpy(joined + dir, url, n + 1);
            rc = set_target(&tmp, url, joined, dir + n);
            free(joined);
        }
    }
    if (rc < 0) {
        free(tmp.target);
        return rc;
    }
    *u = tmp;
    return 0;
}

void weft__url_free(weft__url *u)
{
    free(u->target);
    u->target = NULL;
}

char *weft__url_format(const weft__url *u)
{
    if (!u->target)
        return NULL;
    size_t n = strlen(u->authority) + strlen(u->target) + 16;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s://%s%s", u->tls ? "https" : "http", u->authority, u->target);
    return s;
}
