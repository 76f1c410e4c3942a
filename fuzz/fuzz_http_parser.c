/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the HTTP/1.1 parser (src/http/parser.c): the input
 * goes to the response parser, the request parser and the chunked decoder,
 * whole and split, and every result is checked for staying inside its input
 * and for not depending on how the input was split.  Built by fuzz/run.sh.
 *
 * Input layout: byte 0 options (bit 0 HEAD request, bit 1 small max_head,
 * bit 2 small max_fields, bit 3 small max_line), bytes 1 and 2 choose the
 * split points, the rest is the message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <weft/error.h>

#include "../src/http/parser.h"

#define CHECK(c)                                                                              \
    do {                                                                                      \
        if (!(c)) {                                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);         \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

#define MAXF 32

typedef struct {
    int64_t rc;
    const char *why;
    const char *base;
    weft__http_head h;
    weft__http_field f[MAXF];
} parsed;

typedef struct {
    bool req, head_req;
    size_t max_head, max_fields, max_line;
} options;

static bool in_span(const char *s, size_t n, const char *base, size_t len)
{
    return s >= base && n <= len && (size_t)(s - base) <= len - n;
}

static bool is_tchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static void check_head(const options *o, const parsed *r, size_t len)
{
    if (r->rc < 0) {
        CHECK(r->rc == WEFT_EPROTO && r->why && r->why[0]);
        return;
    }
    CHECK((size_t)r->rc <= len);
    if (r->rc == 0)
        return;
    size_t n = (size_t)r->rc, max_head = o->max_head ? o->max_head : 64 * 1024;
    const weft__http_head *h = &r->h;
    CHECK(n <= max_head && n >= 4 && memcmp(r->base + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(h->version_minor == 0 || h->version_minor == 1);
    CHECK(h->nfields <= o->max_fields);
    if (o->req) {
        CHECK(h->status == 0 && in_span(h->method, h->method_len, r->base, n));
        CHECK(in_span(h->target, h->target_len, r->base, n) && h->target_len > 0);
        CHECK(h->framing != WEFT__HTTP_BODY_UNTIL_CLOSE);
    } else {
        CHECK(h->status >= 100 && h->status <= 599);
        CHECK(in_span(h->reason, h->reason_len, r->base, n));
        CHECK(!h->expect_continue);
        if (o->head_req || h->status < 200 || h->status == 204 || h->status == 304)
            CHECK(h->framing == WEFT__HTTP_BODY_NONE);
    }
    if (h->framing == WEFT__HTTP_BODY_UNTIL_CLOSE)
        CHECK(!h->keep_alive);
    for (size_t i = 0; i < h->nfields; i++) {
        const weft__http_field *f = &h->fields[i];
        CHECK(in_span(f->name, f->name_len, r->base, n) && f->name_len > 0);
        CHECK(in_span(f->value, f->value_len, r->base, n));
        for (size_t j = 0; j < f->name_len; j++)
            CHECK(is_tchar((unsigned char)f->name[j]));
        for (size_t j = 0; j < f->value_len; j++)
            CHECK(f->value[j] != '\r' && f->value[j] != '\n' && f->value[j] != '\0');
        if (f->value_len) {
            CHECK(f->value[0] != ' ' && f->value[0] != '\t');
            CHECK(f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t');
        }
        /* Lookup by this name finds the first field of that name. */
        char name[256];
        if (f->name_len < sizeof name) {
            memcpy(name, f->name, f->name_len);
            name[f->name_len] = '\0';
            size_t vl = SIZE_MAX, j = 0;
            const char *v = weft__http_field_get(h, name, &vl);
            while (h->fields[j].name_len != f->name_len ||
                   strncasecmp(h->fields[j].name, name, f->name_len) != 0)
                j++;
            CHECK(j <= i && v == h->fields[j].value && vl == h->fields[j].value_len);
        }
    }
}

static void parse(const options *o, weft__http_parser *p, const char *buf, size_t len, parsed *r)
{
    size_t before = p->scanned;
    r->h.fields = r->f;
    r->why = NULL;
    r->base = buf;
    r->rc = o->req ? weft__http_parse_request(p, buf, len, &r->h, &r->why)
                   : weft__http_parse_response(p, buf, len, o->head_req, &r->h, &r->why);
    CHECK(p->scanned >= before && p->scanned <= len); /* consumption monotone */
    check_head(o, r, len);
}

static void same_span(const parsed *a, const char *sa, size_t la, const parsed *b, const char *sb,
                      size_t lb)
{
    CHECK(la == lb && (sa == NULL) == (sb == NULL));
    CHECK(!sa || sa - a->base == sb - b->base);
}

static void same_head(const parsed *a, const parsed *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc < 0)
        CHECK(a->why == b->why);
    if (a->rc <= 0)
        return;
    const weft__http_head *x = &a->h, *y = &b->h;
    CHECK(x->status == y->status && x->version_minor == y->version_minor);
    same_span(a, x->reason, x->reason_len, b, y->reason, y->reason_len);
    same_span(a, x->method, x->method_len, b, y->method, y->method_len);
    same_span(a, x->target, x->target_len, b, y->target, y->target_len);
    CHECK(x->nfields == y->nfields);
    for (size_t i = 0; i < x->nfields; i++) {
        same_span(a, x->fields[i].name, x->fields[i].name_len, b, y->fields[i].name,
                  y->fields[i].name_len);
        same_span(a, x->fields[i].value, x->fields[i].value_len, b, y->fields[i].value,
                  y->fields[i].value_len);
    }
    CHECK(x->framing == y->framing && x->content_length == y->content_length);
    CHECK(x->keep_alive == y->keep_alive && x->upgrade == y->upgrade);
    CHECK(x->expect_continue == y->expect_continue);
}

/* Whole buffer, then the prefixes cut1 <= cut2 <= len each in an exactly
 * sized copy, then (short inputs) one byte at a time. */
static int64_t fuzz_head(const options *o, const char *msg, size_t len, size_t cut1, size_t cut2)
{
    static parsed whole, part;
    weft__http_parser p;
    weft__http_parser_init(&p, o->max_head, o->max_fields);
    parse(o, &p, msg, len, &whole);

    weft__http_parser_init(&p, o->max_head, o->max_fields);
    size_t ends[3] = {cut1, cut2, len};
    for (int k = 0; k < 3; k++) {
        char *b = malloc(ends[k] + 1);
        CHECK(b);
        memcpy(b, msg, ends[k]);
        parse(o, &p, b, ends[k], &part);
        free(b);
        if (part.rc != 0 || k == 2) {
            same_head(&whole, &part);
            break;
        }
    }
    if (len <= 1024) {
        weft__http_parser_init(&p, o->max_head, o->max_fields);
        for (size_t i = 0; i <= len; i++) {
            parse(o, &p, msg, i, &part);
            if (part.rc != 0 || i == len) {
                same_head(&whole, &part);
                break;
            }
        }
    }
    return whole.rc;
}

typedef struct {
    int rc;
    const char *why;
    size_t used;
    uint64_t sum;   /* a hash of the decoded bytes, in order */
    size_t outlen;
} decoded;

/* Decode in[0..len) delivered as [0, cuts[0]), [cuts[0], cuts[1]), ...; each
 * piece in a buffer of its own exact size. */
static void decode(const options *o, const char *in, const size_t *cuts, size_t ncuts, decoded *d)
{
    weft__http_chunked c = {.max_line = o->max_line};
    *d = (decoded){0};
    size_t from = 0;
    for (size_t k = 0; k < ncuts && d->rc == 0; k++) {
        size_t plen = cuts[k] - from, off = 0;
        char *b = malloc(plen + 1);
        CHECK(b);
        memcpy(b, in + from, plen);
        do {
            size_t used = SIZE_MAX, dlen = SIZE_MAX;
            const char *data = NULL;
            d->rc = weft__http_chunked_feed(&c, b + off, plen - off, &used, &data, &dlen, &d->why);
            CHECK(d->rc == 0 || d->rc == 1 || d->rc == WEFT_EPROTO);
            CHECK(used <= plen - off && dlen <= used);
            if (d->rc < 0) {
                CHECK(d->why && dlen == 0);
                break;
            }
            if (dlen)
                CHECK(data >= b + off && data + dlen <= b + off + used);
            for (size_t i = 0; i < dlen; i++)
                d->sum = (d->sum ^ (unsigned char)data[i]) * 0x100000001b3ULL;
            d->outlen += dlen;
            CHECK(d->rc == 1 || off == plen || used > 0); /* progress */
            off += used;
        } while (d->rc == 0 && off < plen);
        d->used += off;
        from = cuts[k];
        free(b);
    }
}

static void same_decoded(const decoded *a, const decoded *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc < 0)
        CHECK(a->why == b->why);
    else
        CHECK(a->used == b->used && a->outlen == b->outlen && a->sum == b->sum);
}

static void fuzz_chunked(const options *o, const char *msg, size_t len, size_t cut1, size_t cut2)
{
    decoded whole, part;
    decode(o, msg, &len, 1, &whole);
    CHECK(whole.used <= len && whole.outlen <= len);
    size_t three[3] = {cut1, cut2, len};
    decode(o, msg, three, 3, &part);
    same_decoded(&whole, &part);
    if (len <= 4096) {
        size_t *cuts = malloc((len + 1) * sizeof *cuts);
        CHECK(cuts);
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        decode(o, msg, cuts, len, &part);
        same_decoded(&whole, &part);
        free(cuts);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const char *msg = (const char *)data + 3;
    size_t len = size - 3;
    options o = {
        .head_req = data[0] & 1,
        .max_head = (data[0] & 2) ? 16 + data[2] : 0,
        .max_fields = (data[0] & 4) ? (size_t)(data[0] >> 4) : MAXF,
        .max_line = (data[0] & 8) ? 4 + data[1] % 64 : 0,
    };
    size_t cut1 = len * data[1] / 255, cut2 = cut1 + (len - cut1) * data[2] / 255;

    o.req = false;
    int64_t n = fuzz_head(&o, msg, len, cut1, cut2);
    o.req = true;
    fuzz_head(&o, msg, len, cut1, cut2);
    fuzz_chunked(&o, msg, len, cut1, cut2);
    /* A chunked response's body, as the client would decode it. */
    if (n > 0) {
        static parsed r;
        weft__http_parser p;
        o.req = false;
        weft__http_parser_init(&p, o.max_head, o.max_fields);
        parse(&o, &p, msg, len, &r);
        if (r.h.framing == WEFT__HTTP_BODY_CHUNKED) {
            size_t rest = len - (size_t)n;
            fuzz_chunked(&o, msg + n, rest, rest * data[1] / 255,
                         rest * data[1] / 255 + (rest - rest * data[1] / 255) * data[2] / 255);
        }
    }
    return 0;
}
