/* SPDX-License-Identifier: MIT */
/* Helpers shared by weft's benchmark programs: the clock, /proc, JSON
 * lines in the peers' format, $SCALE, the timers-1m PRNG. */
#ifndef WEFT_BENCH_UTIL_H
#define WEFT_BENCH_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* kB value of a field ("VmHWM", "VmRSS") of /proc/self/status, or -1. */
static inline long proc_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t fl = strlen(field);
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static inline unsigned xorshift32(unsigned *s)
{
    unsigned x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* n times $SCALE (at least 1); exits 2 on a bad SCALE. */
static inline long scaled_count(long n)
{
    const char *e = getenv("SCALE");
    if (!e || !*e)
        return n;
    char *end;
    double s = strtod(e, &end);
    if (end == e || *end || !(s > 0) || (double)n * s > 1e15) {
        fprintf(stderr, "SCALE must be a positive number (got '%s')\n", e);
        exit(2);
    }
    long v = (long)((double)n * s);
    return v < 1 ? 1 : v;
}

static inline void json_begin(const char *peer, const char *workload, long long ops,
                              double seconds, const char *unit)
{
    printf("{\"peer\": \"%s\", \"workload\": \"%s\", \"ops\": %lld, \"seconds\": %.6f, "
           "\"rate\": %.3f, \"unit\": \"%s\"",
           peer, workload, ops, seconds, seconds > 0 ? (double)ops / seconds : 0.0, unit);
}

static inline void json_end(void)
{
    printf("}\n");
    fflush(stdout);
}

#endif
