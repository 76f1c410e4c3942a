/* SPDX-License-Identifier: MIT */
/*
 * Task stacks: mmap'd, committed lazily by the kernel page by page, with a
 * guard region below, and recycled through a per-loop cache so that
 * steady-state spawning makes no system call.
 *
 * Guard regions: on Linux 6.13+ MADV_GUARD_INSTALL turns the bottom of the
 * mapping into a guard without splitting it, so neighbouring stacks merge
 * into few VMAs and 1,000,000 stacks stay far below vm.max_map_count.
 * Elsewhere (older kernels, valgrind, qemu-user) mprotect(PROT_NONE) is the
 * fallback; it splits each stack into two VMAs, so about
 * vm.max_map_count / 2 (32,765 by default) stacks can exist at once.
 * Where process_madvise takes PIDFD_SELF (6.18 does), a batch's guards go in
 * with one system call.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "core-internal.h"
#include "sanitizer.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* Guard size: 256 KiB, so that a frame with a large local array (up to
 * about 256 KiB) that jumps past the end of its stack still lands in the
 * guard, not in the stack mapped below (another task's).  Code built with
 * -fstack-clash-protection (weft's own is) touches every page of a large
 * frame and always faults in the first guard page.  The guard costs no
 * memory, but address space, and page tables for the span: 100,000 tasks
 * with 256 KiB stacks take VmPTE 101 MB with this guard, 63 MB with a
 * 64 KiB one (tests/core/test_stack.c, test_big_frame_hits_guard). */
#ifndef WEFT__GUARD_KIB
#define WEFT__GUARD_KIB 256
#endif
#define WEFT__GUARD_SIZE ((size_t)WEFT__GUARD_KIB * 1024)

/* Default-size stacks are mapped this many at a time. */
#define WEFT__STACK_BATCH 16

/* 0 = not probed, 1 = MADV_GUARD_INSTALL works, 2 = mprotect fallback */
static atomic_int guard_mode;

size_t weft__stack_guard_size(void) { return WEFT__GUARD_SIZE; }

const char *weft__stack_guard_kind(void)
{
    return atomic_load(&guard_mode) == 1 ? "MADV_GUARD_INSTALL" : "mprotect";
}

/* Loops on several threads may ask first at the same time: relaxed atomics
 * (they all store the same value). */
static size_t page_size(void)
{
    static _Atomic size_t ps;
    size_t v = atomic_load_explicit(&ps, memory_order_relaxed);
    if (!v) {
        v = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&ps, v, memory_order_relaxed);
    }
    return v;
}

/* The mapping for a stack of `usable` bytes: the guard, then the usable
 * bytes plus room for the descriptor at the top, in whole pages, so the
 * task gets at least what it asked for. */
static size_t map_size_for(size_t usable)
{
    size_t ps = page_size();
    return ((usable + sizeof(weft__stack) + 64 + ps - 1) & ~(ps - 1)) + WEFT__GUARD_SIZE;
}

/* Whether the kernel really refuses access to a page marked a guard.  An
 * emulator (qemu-user 7.2) may accept MADV_GUARD_INSTALL and ignore it:
 * writing from the page into a pipe must then fail with EFAULT. */
static bool guard_effective(const char *guard)
{
    int p[2];
    if (pipe(p) < 0)
        return true; /* cannot tell: trust the kernel */
    ssize_t n = write(p[1], guard, 1);
    int err = errno;
    close(p[0]);
    close(p[1]);
    return n < 0 && err == EFAULT;
}

static int install_guard(void *lo, size_t len)
{
    int mode = atomic_load_explicit(&guard_mode, memory_order_relaxed);
    if (mode != 2) {
        if (madvise(lo, len, MADV_GUARD_INSTALL) == 0) {
            if (mode == 1)
                return 0;
            if (guard_effective(lo)) {
                atomic_store(&guard_mode, 1);
                return 0;
            }
            errno = ENOSYS; /* accepted but ignored: use the fallback */
        }
        if (errno != EINVAL && errno != ENOSYS)
            return -errno;
        atomic_store(&guard_mode, 2);
    }
    return mprotect(lo, len, PROT_NONE) == 0 ? 0 : -errno;
}

/* The guards of a whole batch with one process_madvise(2) on ourselves
 * (PIDFD_SELF, where the kernel takes it): one call instead of WEFT__STACK_BATCH.
 * Only once MADV_GUARD_INSTALL is known to work.  Returns true when every
 * guard is in place; otherwise stack_init installs them one by one (again
 * for any this call did: installing a guard twice is harmless). */
#define WEFT__PIDFD_SELF (-10000)
static atomic_int batch_guards; /* 0 = untried, 1 = works, 2 = not here */

static bool install_guards_batch(char *map, size_t map_size, size_t count)
{
#ifdef SYS_process_madvise
    if (count < 2 || count > WEFT__STACK_BATCH || atomic_load(&guard_mode) != 1 ||
        atomic_load_explicit(&batch_guards, memory_order_relaxed) == 2 ||
        RUNNING_ON_VALGRIND) /* it does not know process_madvise, and says so */
        return false;
    struct iovec iov[WEFT__STACK_BATCH];
    for (size_t i = 0; i < count; i++)
        iov[i] = (struct iovec){map + i * map_size, WEFT__GUARD_SIZE};
    long n = syscall(SYS_process_madvise, WEFT__PIDFD_SELF, iov, count, MADV_GUARD_INSTALL, 0);
    if (n == (long)(count * WEFT__GUARD_SIZE)) {
        atomic_store_explicit(&batch_guards, 1, memory_order_relaxed);
        return true;
    }
    if (n < 0)
        atomic_store_explicit(&batch_guards, 2, memory_order_relaxed);
#else
    (void)map, (void)map_size, (void)count;
#endif
    return false;
}

/* Carve a stack out of `map_size` bytes at `map`: guard below (unless
 * `guarded` already), the descriptor in the top bytes. */
static weft__stack *stack_init(char *map, size_t map_size, bool guarded)
{
    int rc = guarded ? 0 : install_guard(map, WEFT__GUARD_SIZE);
    if (rc < 0) {
        weft__seterr(rc, "stack: guard region failed: %s%s", strerror(-rc),
                     rc == -ENOMEM ? " (too many mappings: raise vm.max_map_count)" : "");
        return NULL;
    }
    weft__stack *s = (weft__stack *)(void *)((uintptr_t)(map + map_size - sizeof(weft__stack)) &
                                             ~(uintptr_t)63);
    s->map = map;
    s->map_size = map_size;
    s->top = (char *)((uintptr_t)s & ~(uintptr_t)15);
    s->usable = (size_t)(s->top - (map + WEFT__GUARD_SIZE));
    s->next = NULL;
    s->valgrind_id = VALGRIND_STACK_REGISTER(map + WEFT__GUARD_SIZE, map + map_size);
    return s;
}

/* Map `count` stacks with one mmap (a burst of spawns then costs one system
 * call per batch instead of one per task).  The first is returned, the rest
 * go to the cache.  Each stack is unmapped on its own later. */
static weft__stack *stack_map(weft_loop *loop, size_t usable, size_t count)
{
    size_t map_size = map_size_for(usable);
    char *map = mmap(NULL, map_size * count, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        weft__seterr(-errno, "stack: mmap of %zu bytes failed: %s", map_size * count,
                     strerror(errno));
        return NULL;
    }
    bool guarded = install_guards_batch(map, map_size, count);
    weft__stack *first = stack_init(map, map_size, guarded);
    if (!first) {
        munmap(map, map_size * count);
        return NULL;
    }
    for (size_t i = 1; i < count; i++) {
        char *m = map + i * map_size;
        weft__stack *s = stack_init(m, map_size, guarded);
        if (!s) {
            munmap(m, map_size * (count - i));
            break;
        }
        s->next = loop->stacks.head;
        loop->stacks.head = s;
        loop->stacks.count++;
    }
    return first;
}

/* Before a stack's memory goes back: the tools forget it. */
static void stack_forget(weft__stack *s)
{
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
    weft__asan_unpoison(s->map, s->map_size);
}

static void stack_unmap(weft__stack *s)
{
    stack_forget(s);
    munmap(s->map, s->map_size);
}

weft__stack *weft__stack_get(weft_loop *loop, size_t usable)
{
    weft__stack_cache *c = &loop->stacks;
    if (WEFT__LIKELY(usable == c->stack_size && c->head)) {
        weft__stack *s = c->head;
        c->head = s->next;
        c->count--;
        return s;
    }
    if (usable == c->stack_size)
        return stack_map(loop, usable, WEFT__STACK_BATCH);
    return stack_map(loop, usable, 1);
}

void weft__stack_put(weft_loop *loop, weft__stack *s)
{
    weft__stack_cache *c = &loop->stacks;
    if (s->map_size != map_size_for(c->stack_size)) {
        stack_unmap(s);
        return;
    }
    /* A finished task leaves ASan's poisoning of its frames behind. */
    weft__asan_unpoison(s->top - s->usable, s->usable);
    s->next = c->head;
    c->head = s;
    c->count++;
}

/* Unmap cached stacks beyond `keep`, at most `max_unmaps` of them (so an
 * idle loop gives memory back in bounded slices). */
void weft__stack_cache_trim(weft_loop *loop, size_t keep, size_t max_unmaps)
{
    weft__stack_cache *c = &loop->stacks;
    while (c->count > keep && max_unmaps-- > 0) {
        weft__stack *s = c->head;
        c->head = s->next;
        c->count--;
        stack_unmap(s);
    }
}

/* Whole mappings to give back, in address order. */
typedef struct {
    char *map;
    size_t size;
} weft__span;

static int span_cmp(const void *a, const void *b)
{
    const char *x = ((const weft__span *)a)->map, *y = ((const weft__span *)b)->map;
    return x < y ? -1 : x > y;
}

/* Unmap every cached stack.  Stacks mapped in one batch sit side by side:
 * sorted by address, each run of neighbours goes back in one munmap (a
 * loop that ran 100,000 tasks at once otherwise spends about 0.4 s
 * splitting and unmapping them one by one when it ends). */
void weft__stack_cache_free(weft_loop *loop)
{
    weft__stack_cache *c = &loop->stacks;
    weft__span *spans = c->count ? malloc(c->count * sizeof *spans) : NULL;
    if (!spans) {
        weft__stack_cache_trim(loop, 0, SIZE_MAX);
        return;
    }
    size_t n = 0;
    for (weft__stack *s = c->head; s; s = s->next) {
        stack_forget(s);
        spans[n++] = (weft__span){s->map, s->map_size};
    }
    c->head = NULL;
    c->count = 0;
    qsort(spans, n, sizeof *spans, span_cmp);
    for (size_t i = 0; i < n;) {
        char *start = spans[i].map;
        size_t len = spans[i].size;
        while (++i < n && spans[i].map == start + len)
            len += spans[i].size;
        munmap(start, len);
    }
    free(spans);
}
