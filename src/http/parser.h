/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 message parser (RFC 9112), strict and incremental, shared by
 * the client (responses) and the server (requests).  It never copies: the
 * parsed head points into the caller's buffer, which must stay unchanged
 * while the head is used.  Only weft's public API and libc are used.
 *
 * Strict means refused with WEFT_EPROTO, never guessed at:
 *  - lines must end in CRLF: a bare LF is an error ("bare LF line ending"),
 *    a CR not followed by LF is a control byte inside the line;
 *  - NUL and other control bytes (HTAB excepted) anywhere in the head;
 *  - obs-fold, i.e. a line starting with SP/HTAB, including whitespace
 *    between the start line and the first field ("obsolete line folding");
 *  - an empty field name, whitespace before the colon ("bad header field");
 *  - both Transfer-Encoding and Content-Length, whatever the status;
 *  - Transfer-Encoding in an HTTP/1.0 message; chunked applied twice;
 *  - Content-Length other than 1*DIGIT < 2^63; differing values (repeated
 *    identical values, as fields or as "5, 5", are accepted);
 *  - a request target with whitespace, controls or non-ASCII bytes; more
 *    than one SP between the parts of the start line.
 * Latitude taken: "HTTP/1.1 200\r\n" (no SP before an empty reason) is
 * accepted like most clients do; one empty line before a request line is
 * skipped (RFC 9112 section 2.2) and counted in the head's length.
 */
#ifndef WEFT_HTTP_PARSER_H
#define WEFT_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A header field as it appears on the wire (name without the colon, value
 * without leading/trailing whitespace). */
typedef struct weft__http_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} weft__http_field;

/* How the message body is delimited (RFC 9112 section 6.3). */
typedef enum weft__http_framing {
    WEFT__HTTP_BODY_NONE = 0,     /* no body (1xx/204/304, HEAD, request without length) */
    WEFT__HTTP_BODY_LENGTH,       /* Content-Length bytes */
    WEFT__HTTP_BODY_CHUNKED,      /* Transfer-Encoding: chunked */
    WEFT__HTTP_BODY_UNTIL_CLOSE,  /* response read until the server closes */
} weft__http_framing;

typedef struct weft__http_head {
    /* Response: status and reason.  Request: method and target. */
    int status;
    const char *reason;
    size_t reason_len;
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int version_minor;            /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    weft__http_field *fields;     /* caller's array */
    size_t nfields;
    /* Derived from the fields: */
    weft__http_framing framing;
    uint64_t content_length;      /* when framing == LENGTH */
    bool keep_alive;              /* persistent after this message (version + Connection) */
    bool upgrade;                 /* Connection: upgrade / 101 */
    bool expect_continue;         /* request: Expect: 100-continue */
} weft__http_head;

/* Incremental head parser state.  weft__http_parser_init before each message
 * (or set `scanned` back to 0): a zeroed parser has room for no fields. */
typedef struct weft__http_parser {
    size_t scanned;               /* bytes already searched for the end of the head */
    size_t max_head;              /* limit on the head's size in bytes (0 = 64 KiB) */
    size_t max_fields;            /* capacity of the caller's field array */
} weft__http_parser;

void weft__http_parser_init(weft__http_parser *p, size_t max_head, size_t max_fields);

/*
 * Parse a response head from buf[0..len), where `len` grows between calls
 * with the same buffer contents before it (more bytes appended; the buffer
 * itself may move, only indices are kept).  Only the
 * new bytes are scanned for the end of the head, so feeding one byte at a
 * time costs O(total).  `request_method_head` tells that the request was
 * HEAD (no body follows whatever the fields say).
 * Returns the head's length in bytes (> 0) when the head is complete and
 * valid (and fills *head, whose `fields` must point to an array of
 * p->max_fields entries), 0 when more bytes are needed, or < 0 on a bad
 * head: WEFT_EPROTO with *why set to a static message ("bad status line",
 * "conflicting Content-Length and Transfer-Encoding", "header too large",
 * "too many header fields", "bad header field", "bad Content-Length",
 * "bad Transfer-Encoding", "unsupported HTTP version", "bare LF line
 * ending", "obsolete line folding", "Transfer-Encoding in HTTP/1.0
 * message").  A buffer not starting with "HTTP/" fails at once.  A head
 * longer than max_head fails even if its end is in buf.
 * 1xx responses other than 101 parse as heads with framing NONE; the caller
 * skips them.  content_length is the Content-Length value whenever the field
 * is present (also for HEAD/204/304, framing NONE), else 0.  After a return
 * other than 0, re-initialise the parser for the next message.
 */
int64_t weft__http_parse_response(weft__http_parser *p, const char *buf, size_t len,
                                  bool request_method_head, weft__http_head *head,
                                  const char **why);

/* The same for a request head (method SP target SP HTTP/1.x), "bad request
 * line" instead of "bad status line".  Framing: chunked when
 * Transfer-Encoding ends in chunked (any other final coding is an error),
 * LENGTH with Content-Length, else NONE.  expect_continue only for HTTP/1.1
 * (RFC 9110 section 10.1.1: ignored in 1.0 requests). */
int64_t weft__http_parse_request(weft__http_parser *p, const char *buf, size_t len,
                                 weft__http_head *head, const char **why);

/* Whether the NUL-terminated `s` is a token (a method, a field name: RFC
 * 9110 section 5.6.2), or a valid field value (VCHAR, obs-text, SP, HTAB:
 * no CR, LF or other control characters).  The parser's own tables. */
bool weft__http_is_token(const char *s);
bool weft__http_is_field_value(const char *s);

/* Case-insensitive lookup of the first field called `name`; NULL if none.
 * *value_len receives its length. */
const char *weft__http_field_get(const weft__http_head *head, const char *name,
                                 size_t *value_len);

/* Incremental chunked-body decoder (RFC 9112 section 7.1), trailers parsed
 * and dropped.  Zero-initialise before each body (max_line may be set). */
typedef struct weft__http_chunked {
    int state;                    /* private to parser.c; 0 = expecting a chunk size */
    uint64_t remaining;           /* bytes left in the current chunk (its size while read) */
    size_t line_len;              /* size line so far, or the whole trailer section */
    size_t max_line;              /* limit for chunk-size lines and trailers (0 = 8 KiB) */
} weft__http_chunked;

/*
 * Feed in[0..len).  Decoded body bytes are a span of the input: on return
 * (*data, *data_len) is the next span (possibly empty, at most one per call)
 * and *used how many input bytes were consumed (framing plus data; framing
 * after the span is consumed too).  Deliver the span, then call again with
 * the rest of the input while *used < len.  Returns 1 when the last chunk
 * and the trailers are complete -- the span may be non-empty then too, and
 * in[*used..len) is the next message -- 0 when more input is needed or
 * there is more to decode, or WEFT_EPROTO with *why set ("bad chunk size",
 * "chunk size too large" (>= 2^63), "chunk line too long" (size line and
 * extensions over max_line), "bad chunk end", "trailer too large" (trailer
 * section over max_line), "bad trailer field") and no span; *used is then
 * meaningless.  Extensions (BWS ";" ...) are skipped, whitespace after the
 * size is accepted even without one; no whitespace before the size; only
 * CRLF line endings.
 */
int weft__http_chunked_feed(weft__http_chunked *c, const char *in, size_t len, size_t *used,
                            const char **data, size_t *data_len, const char **why);

#endif
