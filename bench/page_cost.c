/* SPDX-License-Identifier: MIT */
/*
 * page_cost: what the kernel charges for the memory a new stackful task
 * needs, on this machine.  It is the floor under sleepers-100k: every
 * sleeping task must touch one fresh stack page and have a guard below
 * its stack, and no scheduling can share either between tasks.
 *
 *   page_cost [count]      (default 100,000 stacks)
 *
 * Prints, per stack laid out as weft lays out default stacks (a 64 KiB
 * guard below 256 KiB, in mappings of 16):
 *   - the first touch of its top page (a page fault: allocate, zero, map);
 *   - the same pages populated ahead with MADV_POPULATE_WRITE, 16 per call
 *     (no fault, the same allocation and zeroing);
 *   - the guard, installed with MADV_GUARD_INSTALL, 16 per process_madvise
 *     call (what weft does), with a 64 KiB and with a 4 KiB guard;
 *   - for scale, the first touch of contiguous pages.
 * Each measurement maps fresh memory; nothing here uses weft.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench_util.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PIDFD_SELF_ (-10000)
#define KIB ((size_t)1024)
#define BATCH 16

static size_t count;
static const size_t stride = 320 * KIB; /* 64 KiB guard + 256 KiB stack */

static char *map_stacks(void)
{
    char *m = mmap(NULL, count * stride, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    return m;
}

/* One process_madvise call per BATCH stacks over [offset, offset + len) of
 * each; false when the kernel does not take the advice this way. */
static bool advise_batches(char *m, size_t offset, size_t len, int advice)
{
#ifdef SYS_process_madvise
    struct iovec iov[BATCH];
    for (size_t i = 0; i < count; i += BATCH) {
        size_t n = count - i < BATCH ? count - i : BATCH;
        for (size_t j = 0; j < n; j++)
            iov[j] = (struct iovec){m + (i + j) * stride + offset, len};
        if (syscall(SYS_process_madvise, PIDFD_SELF_, iov, n, advice, 0) < 0)
            return false;
    }
    return true;
#else
    (void)m, (void)offset, (void)len, (void)advice;
    return false;
#endif
}

static double touch_tops(char *m)
{
    double t0 = now_s();
    for (size_t i = 0; i < count; i++)
        m[(i + 1) * stride - 64] = 1;
    return now_s() - t0;
}

static void report(const char *what, double seconds, const char *per)
{
    printf("  %-58s %6.2f us per %s\n", what, seconds / (double)count * 1e6, per);
}

int main(int argc, char **argv)
{
    count = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    if (count == 0)
        die("usage: page_cost [count > 0]");
    printf("page_cost: %zu stacks of 256 KiB under a 64 KiB guard\n", count);

    char *m = map_stacks();
    report("first touch of the top page (page fault)", touch_tops(m), "stack");
    munmap(m, count * stride);

    m = map_stacks();
    double t0 = now_s();
    bool ok = advise_batches(m, stride - 4 * KIB, 4 * KIB, MADV_POPULATE_WRITE);
    double t1 = now_s();
    if (ok)
        report("top page populated ahead (MADV_POPULATE_WRITE, 16 per call)", t1 - t0, "stack");
    else
        printf("  MADV_POPULATE_WRITE through process_madvise: not on this kernel\n");
    munmap(m, count * stride);

    for (size_t guard = 64 * KIB; guard >= 4 * KIB; guard /= 16) {
        m = map_stacks();
        t0 = now_s();
        ok = advise_batches(m, 0, guard, MADV_GUARD_INSTALL);
        t1 = now_s();
        char what[80];
        snprintf(what, sizeof what, "%zu KiB guard (MADV_GUARD_INSTALL, 16 per call)",
                 guard / KIB);
        if (ok)
            report(what, t1 - t0, "stack");
        else
            printf("  MADV_GUARD_INSTALL through process_madvise: not on this kernel\n");
        munmap(m, count * stride);
    }

    size_t bytes = count * 4 * KIB;
    char *c = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    t0 = now_s();
    for (size_t off = 0; off < bytes; off += 4 * KIB)
        c[off] = 1;
    report("(for scale) first touch of contiguous 4 KiB pages", now_s() - t0, "page");
    munmap(c, bytes);
    return 0;
}
