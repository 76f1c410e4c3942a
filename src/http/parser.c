/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 message parser (RFC 9112): response and request heads, the
 * framing they imply, and the chunked body decoder.  Strict: whatever a
 * lenient parser would have to guess at (bare LF, obs-fold, whitespace
 * before a colon, conflicting lengths) is refused, because two parsers that
 * guess differently are how requests get smuggled.  libc only.
 */
#include "parser.h"

#include <string.h>

#include <weft/error.h>

/* ------------------------------------------------------------ characters */

enum {
    C_TOKEN = 1, /* tchar (RFC 9110 section 5.6.2) */
    C_VALUE = 2, /* field-vchar / SP / HTAB: VCHAR, obs-text, SP, HTAB */
    C_TARGET = 4, /* request-target: VCHAR only (no whitespace, CTL, obs-text) */
};

/* Built by hand so the hot loops do one table load per byte and no locale. */
#define T_ (C_TOKEN | C_VALUE | C_TARGET)
#define V_ (C_VALUE | C_TARGET)
static const unsigned char ctype[256] = {
    ['\t'] = C_VALUE, [' '] = C_VALUE,
    ['!'] = T_, ['"'] = V_, ['#'] = T_, ['$'] = T_, ['%'] = T_, ['&'] = T_,
    ['\''] = T_, ['('] = V_, [')'] = V_, ['*'] = T_, ['+'] = T_, [','] = V_,
    ['-'] = T_, ['.'] = T_, ['/'] = V_,
    ['0'] = T_, ['1'] = T_, ['2'] = T_, ['3'] = T_, ['4'] = T_, ['5'] = T_,
    ['6'] = T_, ['7'] = T_, ['8'] = T_, ['9'] = T_,
    [':'] = V_, [';'] = V_, ['<'] = V_, ['='] = V_, ['>'] = V_, ['?'] = V_, ['@'] = V_,
    ['A'] = T_, ['B'] = T_, ['C'] = T_, ['D'] = T_, ['E'] = T_, ['F'] = T_, ['G'] = T_,
    ['H'] = T_, ['I'] = T_, ['J'] = T_, ['K'] = T_, ['L'] = T_, ['M'] = T_, ['N'] = T_,
    ['O'] = T_, ['P'] = T_, ['Q'] = T_, ['R'] = T_, ['S'] = T_, ['T'] = T_, ['U'] = T_,
    ['V'] = T_, ['W'] = T_, ['X'] = T_, ['Y'] = T_, ['Z'] = T_,
    ['['] = V_, ['\\'] = V_, [']'] = V_, ['^'] = T_, ['_'] = T_, ['`'] = T_,
    ['a'] = T_, ['b'] = T_, ['c'] = T_, ['d'] = T_, ['e'] = T_, ['f'] = T_, ['g'] = T_,
    ['h'] = T_, ['i'] = T_, ['j'] = T_, ['k'] = T_, ['l'] = T_, ['m'] = T_, ['n'] = T_,
    ['o'] = T_, ['p'] = T_, ['q'] = T_, ['r'] = T_, ['s'] = T_, ['t'] = T_, ['u'] = T_,
    ['v'] = T_, ['w'] = T_, ['x'] = T_, ['y'] = T_, ['z'] = T_,
    ['{'] = V_, ['|'] = T_, ['}'] = V_, ['~'] = T_,
    /* obs-text: allowed in values (and reason phrases), not in tokens or targets */
    [0x80 ... 0xff] = C_VALUE,
};
#undef T_
#undef V_

bool weft__http_is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!(ctype[(unsigned char)*s] & C_TOKEN))
            return false;
    return true;
}

bool weft__http_is_field_value(const char *s)
{
    for (; *s; s++)
        if (!(ctype[(unsigned char)*s] & C_VALUE))
            return false;
    return true;
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* a[0..n) equals the lowercase literal `lit` (of length n), ignoring case. */
static bool eq_nocase(const char *a, size_t n, const char *lit, size_t litn)
{
    if (n != litn)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != (unsigned char)lit[i])
            return false;
    return true;
}
#define EQ_LIT(s, n, lit) eq_nocase((s), (n), lit, sizeof(lit) - 1)

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim OWS on both sides of s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    size_t a = 0, b = *n;
    while (a < b && is_ows(s[a]))
        a++;
    while (b > a && is_ows(s[b - 1]))
        b--;
    *n = b - a;
    return s + a;
}

/* Iterate over the elements of a comma-separated list (RFC 9110 section
 * 5.6.1), OWS trimmed; empty elements are returned too (callers decide). */
typedef struct {
    const char *s, *end;
} list_iter;

static bool list_next(list_iter *it, const char **elt, size_t *n)
{
    if (!it->s)
        return false;
    const char *comma = memchr(it->s, ',', (size_t)(it->end - it->s));
    const char *stop = comma ? comma : it->end;
    *n = (size_t)(stop - it->s);
    *elt = trim(it->s, n);
    it->s = comma ? comma + 1 : NULL;
    return true;
}

/* ------------------------------------------------------------ heads */

void weft__http_parser_init(weft__http_parser *p, size_t max_head, size_t max_fields)
{
    p->scanned = 0;
    p->max_head = max_head;
    p->max_fields = max_fields;
}

#define ERR(msg) (*why = (msg), (int64_t)WEFT_EPROTO)

/*
 * Look for the CRLF CRLF that ends the head in the bytes not searched yet.
 * Every LF is checked to follow a CR, so bare LF is caught as soon as it
 * arrives.  Looking backwards from each new LF (rather than resuming a
 * forward match) handles a terminator straddling the previous boundary: the
 * three bytes before it were appended earlier and are still in buf.
 * `start` skips an ignored leading CRLF (requests only).  Returns the head's
 * length, 0 if not found yet, or an error.
 */
static int64_t find_end(weft__http_parser *p, const char *buf, size_t len, size_t start,
                        const char **why)
{
    size_t max = p->max_head ? p->max_head : 64 * 1024;
    size_t lim = len < max ? len : max;
    size_t i = p->scanned;
    while (i < lim) {
        const char *lf = memchr(buf + i, '\n', lim - i);
        if (!lf)
            break;
        i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r')
            return ERR("bare LF line ending");
        if (i >= start + 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            p->scanned = i + 1;
            return (int64_t)(i + 1);
        }
        i++;
    }
    p->scanned = lim;
    if (len >= max)
        return ERR("header too large");
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT at s (at least 8 bytes available): the minor
 * version (0 or 1), -1 when malformed, -2 when well-formed but not 1.0/1.1. */
static int parse_version(const char *s)
{
    if (memcmp(s, "HTTP/", 5) != 0 || s[6] != '.')
        return -1;
    if (s[5] < '0' || s[5] > '9' || s[7] < '0' || s[7] > '9')
        return -1;
    if (s[5] != '1' || s[7] > '1')
        return -2;
    return s[7] - '0';
}

/* Parse the field lines of head[pos..end) (end includes the final CRLF
 * CRLF) into head->fields. */
static int64_t parse_fields(const weft__http_parser *p, const char *buf, size_t pos, size_t end,
                            weft__http_head *head, const char **why)
{
    head->nfields = 0;
    while (pos < end - 2) { /* the final CRLF is the empty line */
        const char *line = buf + pos;
        const char *lf = memchr(line, '\n', end - pos);
        size_t n = (size_t)(lf - line) - 1; /* find_end checked the CR */
        pos += n + 2;
        /* Whitespace at the start of a line is obs-fold (or, after the start
         * line, a smuggling vector): RFC 9112 sections 2.2 and 5.2. */
        if (is_ows(line[0]))
            return ERR("obsolete line folding");
        size_t k = 0;
        while (k < n && (ctype[(unsigned char)line[k]] & C_TOKEN))
            k++;
        /* Whitespace before the colon MUST be rejected (section 5.1). */
        if (k == 0 || k == n || line[k] != ':')
            return ERR("bad header field");
        for (size_t j = k + 1; j < n; j++)
            if (!(ctype[(unsigned char)line[j]] & C_VALUE))
                return ERR("bad header field");
        if (head->nfields == p->max_fields)
            return ERR("too many header fields");
        weft__http_field *f = &head->fields[head->nfields++];
        f->name = line;
        f->name_len = k;
        f->value_len = n - k - 1;
        f->value = trim(line + k + 1, &f->value_len);
    }
    return 0;
}

/* Digits only, identical values in a list or repeated fields allowed
 * (RFC 9110 section 8.6); < 2^63 so that callers may use signed sizes. */
static bool parse_content_length(const char *v, size_t n, bool *seen, uint64_t *out)
{
    list_iter it = {v, v + n};
    const char *e;
    size_t en;
    while (list_next(&it, &e, &en)) {
        if (en == 0)
            return false;
        uint64_t x = 0;
        for (size_t i = 0; i < en; i++) {
            unsigned d = (unsigned char)e[i] - '0';
            if (d > 9 || x > (UINT64_C(0x7fffffffffffffff) - d) / 10)
                return false;
            x = x * 10 + d;
        }
        if (*seen && x != *out)
            return false;
        *seen = true;
        *out = x;
    }
    return true;
}

/*
 * Walk the fields for framing, persistence, upgrade and 100-continue.
 * `status` is 0 for requests.  RFC 9112 section 6.3, in its order.
 */
static int64_t derive(weft__http_head *h, int status, bool head_req, const char **why)
{
    bool have_cl = false, have_te = false, chunked = false, close = false, ka = false;
    int te_chunked_count = 0;
    h->content_length = 0;
    h->upgrade = status == 101;
    h->expect_continue = false;
    for (size_t i = 0; i < h->nfields; i++) {
        const weft__http_field *f = &h->fields[i];
        const char *e;
        size_t en;
        switch (lower((unsigned char)f->name[0])) {
        case 'c':
            if (EQ_LIT(f->name, f->name_len, "content-length")) {
                if (!parse_content_length(f->value, f->value_len, &have_cl, &h->content_length))
                    return ERR("bad Content-Length");
            } else if (EQ_LIT(f->name, f->name_len, "connection")) {
                list_iter it = {f->value, f->value + f->value_len};
                while (list_next(&it, &e, &en)) {
                    if (EQ_LIT(e, en, "close"))
                        close = true;
                    else if (EQ_LIT(e, en, "keep-alive"))
                        ka = true;
                    else if (EQ_LIT(e, en, "upgrade"))
                        h->upgrade = true;
                }
            }
            break;
        case 't':
            if (EQ_LIT(f->name, f->name_len, "transfer-encoding")) {
                /* The codings of all Transfer-Encoding fields form one list;
                 * only whether the last one is chunked matters. */
                list_iter it = {f->value, f->value + f->value_len};
                while (list_next(&it, &e, &en)) {
                    if (en == 0)
                        continue;
                    /* coding = token *( OWS ";" OWS parameter ) */
                    size_t k = 0, j;
                    while (k < en && (ctype[(unsigned char)e[k]] & C_TOKEN))
                        k++;
                    for (j = k; j < en && is_ows(e[j]); j++) {
                    }
                    if (k == 0 || (j < en && e[j] != ';'))
                        return ERR("bad Transfer-Encoding");
                    chunked = k == en && EQ_LIT(e, k, "chunked");
                    te_chunked_count += chunked;
                    have_te = true;
                }
                if (!have_te)
                    return ERR("bad Transfer-Encoding");
            }
            break;
        case 'e':
            if (status == 0 && h->version_minor == 1 && EQ_LIT(f->name, f->name_len, "expect") &&
                EQ_LIT(f->value, f->value_len, "100-continue"))
                h->expect_continue = true;
            break;
        }
    }
    /* Both present is the classic smuggling setup: refused outright, even
     * where section 6.3 would let Transfer-Encoding win. */
    if (have_te && have_cl)
        return ERR("conflicting Content-Length and Transfer-Encoding");
    if (have_te && h->version_minor == 0)
        return ERR("Transfer-Encoding in HTTP/1.0 message");
    if (te_chunked_count > 1) /* chunked applied twice (RFC 9112 section 6.1) */
        return ERR("bad Transfer-Encoding");
    h->keep_alive = h->version_minor == 1 ? !close : ka && !close;
    if (status != 0 && (head_req || status < 200 || status == 204 || status == 304))
        h->framing = WEFT__HTTP_BODY_NONE;
    else if (have_te && chunked)
        h->framing = WEFT__HTTP_BODY_CHUNKED;
    else if (have_te && status == 0) /* a request body's end must be known */
        return ERR("bad Transfer-Encoding");
    else if (have_cl)
        h->framing = WEFT__HTTP_BODY_LENGTH;
    else if (status == 0)
        h->framing = WEFT__HTTP_BODY_NONE;
    else
        h->framing = WEFT__HTTP_BODY_UNTIL_CLOSE;
    if (h->framing == WEFT__HTTP_BODY_UNTIL_CLOSE)
        h->keep_alive = false;
    return 0;
}

int64_t weft__http_parse_response(weft__http_parser *p, const char *buf, size_t len,
                                  bool request_method_head, weft__http_head *head,
                                  const char **why)
{
    /* A peer that is not speaking HTTP fails at once rather than after
     * max_head bytes or a timeout. */
    if (len == 0)
        return 0;
    if (p->scanned < 5 && memcmp(buf, "HTTP/", len < 5 ? len : 5) != 0)
        return ERR("bad status line");
    int64_t end = find_end(p, buf, len, 0, why);
    if (end <= 0)
        return end;
    /* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF; a
     * missing SP before an empty reason is accepted like most clients do. */
    const char *lf = memchr(buf, '\n', (size_t)end);
    size_t n = (size_t)(lf - buf) - 1;
    if (n < 12 || buf[8] != ' ')
        return ERR("bad status line");
    int minor = parse_version(buf);
    if (minor == -2)
        return ERR("unsupported HTTP version");
    if (minor < 0)
        return ERR("bad status line");
    const char *s = buf + 9;
    for (int i = 0; i < 3; i++)
        if (s[i] < '0' || s[i] > '9')
            return ERR("bad status line");
    int status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (status < 100 || status > 599 || (n > 12 && buf[12] != ' '))
        return ERR("bad status line");
    for (size_t i = 13; i < n; i++)
        if (!(ctype[(unsigned char)buf[i]] & C_VALUE))
            return ERR("bad status line");
    head->version_minor = minor;
    head->status = status;
    head->reason = buf + (n > 12 ? 13 : 12);
    head->reason_len = n > 12 ? n - 13 : 0;
    head->method = head->target = NULL;
    head->method_len = head->target_len = 0;
    int64_t rc = parse_fields(p, buf, n + 2, (size_t)end, head, why);
    if (rc == 0)
        rc = derive(head, status, request_method_head, why);
    return rc < 0 ? rc : end;
}

int64_t weft__http_parse_request(weft__http_parser *p, const char *buf, size_t len,
                                 weft__http_head *head, const char **why)
{
    /* One empty line before the request line is ignored (RFC 9112 section
     * 2.2: clients used to send a CRLF after a POST body); more is an error. */
    size_t start = len >= 2 && buf[0] == '\r' && buf[1] == '\n' ? 2 : 0;
    int64_t end = find_end(p, buf, len, start, why);
    if (end <= 0)
        return end;
    const char *line = buf + start;
    const char *lf = memchr(line, '\n', (size_t)end - start);
    size_t n = (size_t)(lf - line) - 1;
    /* request-line = method SP request-target SP HTTP-version */
    size_t m = 0;
    while (m < n && (ctype[(unsigned char)line[m]] & C_TOKEN))
        m++;
    if (m == 0 || m == n || line[m] != ' ')
        return ERR("bad request line");
    size_t t = m + 1;
    while (t < n && (ctype[(unsigned char)line[t]] & C_TARGET))
        t++;
    if (t == m + 1 || n - t != 9 || line[t] != ' ')
        return ERR("bad request line");
    int minor = parse_version(line + t + 1);
    if (minor == -2)
        return ERR("unsupported HTTP version");
    if (minor < 0)
        return ERR("bad request line");
    head->version_minor = minor;
    head->status = 0;
    head->reason = NULL;
    head->reason_len = 0;
    head->method = line;
    head->method_len = m;
    head->target = line + m + 1;
    head->target_len = t - m - 1;
    int64_t rc = parse_fields(p, buf, start + n + 2, (size_t)end, head, why);
    if (rc == 0)
        rc = derive(head, 0, false, why);
    return rc < 0 ? rc : end;
}

const char *weft__http_field_get(const weft__http_head *head, const char *name,
                                 size_t *value_len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < head->nfields; i++) {
        const weft__http_field *f = &head->fields[i];
        if (f->name_len != n)
            continue;
        size_t j = 0;
        while (j < n && lower((unsigned char)f->name[j]) == lower((unsigned char)name[j]))
            j++;
        if (j == n) {
            if (value_len)
                *value_len = f->value_len;
            return f->value;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ chunked */

enum {
    CH_SIZE0 = 0,    /* first hex digit of a chunk-size */
    CH_SIZE,         /* more hex digits */
    CH_SIZE_BWS,     /* whitespace after the size: only more of it, ';' or CR */
    CH_EXT,          /* chunk extensions, ignored up to CR */
    CH_SIZE_LF,      /* LF ending the size line */
    CH_DATA,         /* `remaining` bytes of data */
    CH_DATA_CR,      /* CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER0,     /* start of a trailer line, or CR of the final CRLF */
    CH_TRAILER,      /* inside a trailer line */
    CH_TRAILER_LF,   /* LF ending a trailer line */
    CH_END_LF,       /* LF of the final CRLF */
    CH_DONE,
};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int weft__http_chunked_feed(weft__http_chunked *c, const char *in, size_t len, size_t *used,
                            const char **data, size_t *data_len, const char **why)
{
    size_t max_line = c->max_line ? c->max_line : 8 * 1024;
    size_t i = 0;
    *data = in;
    *data_len = 0;
    while (i < len && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CH_SIZE0:
        case CH_SIZE: {
            int d = hexval(ch);
            /* The line's length without its CRLF; bounds leading zeros too. */
            if (ch != '\r' && ++c->line_len > max_line)
                goto line_long;
            if (d >= 0) {
                /* The size must stay below 2^63 (callers use signed sizes). */
                if (c->remaining >> 59)
                    goto too_large;
                c->remaining = c->remaining << 4 | (unsigned)d;
                c->state = CH_SIZE;
            } else if (c->state == CH_SIZE0) {
                goto bad_size;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (is_ows((char)ch)) {
                c->state = CH_SIZE_BWS;
            } else {
                goto bad_size;
            }
            break;
        }
        case CH_SIZE_BWS:
            if (ch != '\r' && ++c->line_len > max_line)
                goto line_long;
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (!is_ows((char)ch))
                goto bad_size;
            break;
        case CH_EXT: {
            /* Extensions are ignored: the run up to CR is only checked for
             * control bytes and bounded. */
            size_t j = i;
            while (j < len && (ctype[(unsigned char)in[j]] & C_VALUE))
                j++;
            c->line_len += j - i;
            if (c->line_len > max_line)
                goto line_long;
            i = j;
            if (i == len)
                continue;
            if (in[i] != '\r')
                goto bad_size;
            c->state = CH_SIZE_LF;
            break;
        }
        case CH_SIZE_LF:
            if (ch != '\n')
                goto bad_size;
            c->line_len = 0;
            c->state = c->remaining ? CH_DATA : CH_TRAILER0;
            break;
        case CH_DATA: {
            if (*data_len) { /* one span per call: stop before the next one */
                *used = i;
                return 0;
            }
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data = in + i;
            *data_len = n;
            c->remaining -= n;
            i += n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (ch != (c->state == CH_DATA_CR ? '\r' : '\n'))
                goto bad_end;
            c->state = c->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE0;
            break;
        case CH_TRAILER0:
            if (ch == '\r') {
                c->state = CH_END_LF;
                break;
            }
            c->state = CH_TRAILER;
            /* fall through */
        case CH_TRAILER: {
            /* Trailers are dropped: checked for control bytes and counted
             * (CRLFs included) against max_line, nothing more. */
            size_t j = i;
            while (j < len && (ctype[(unsigned char)in[j]] & C_VALUE))
                j++;
            c->line_len += j - i;
            if (c->line_len + 2 > max_line)
                goto trailer_long;
            i = j;
            if (i == len)
                continue;
            if (in[i] != '\r')
                goto bad_trailer;
            c->line_len += 2;
            c->state = CH_TRAILER_LF;
            break;
        }
        case CH_TRAILER_LF:
        case CH_END_LF:
            if (ch != '\n')
                goto bad_trailer;
            c->state = c->state == CH_END_LF ? CH_DONE : CH_TRAILER0;
            break;
        }
        i++;
    }
    *used = i;
    return c->state == CH_DONE;

bad_size:
    *why = "bad chunk size";
    goto fail;
too_large:
    *why = "chunk size too large";
    goto fail;
line_long:
    *why = "chunk line too long";
    goto fail;
bad_end:
    *why = "bad chunk end";
    goto fail;
trailer_long:
    *why = "trailer too large";
    goto fail;
bad_trailer:
    *why = "bad trailer field";
fail:
    *used = i;
    *data = in;
    *data_len = 0;
    return WEFT_EPROTO;
}
