/* SPDX-License-Identifier: MIT */
/* The first frame of a new task, matching the switch of each architecture. */
#include <stdint.h>
#include <string.h>

#include "core-internal.h"

#if defined(__x86_64__) || defined(__aarch64__)

void weft__trampoline(void);

void *weft__context_init(char *top, size_t usable, void (*entry)(void *), void *arg)
{
    (void)usable;
    uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* After the switch's ret pops the trampoline's address the stack
     * pointer must be 16-byte aligned, so that the trampoline's call gives
     * entry the alignment the ABI promises at a function's first
     * instruction. */
    uint64_t *f = (uint64_t *)(t - 8 * 8);
    f[0] = 0x1F80ull | (0x037Full << 32); /* MXCSR and x87 control word defaults */
    f[1] = 0;                             /* r15 */
    f[2] = 0;                             /* r14 */
    f[3] = (uint64_t)(uintptr_t)entry;    /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;      /* r12 */
    f[5] = 0;                             /* rbx */
    f[6] = 0;                             /* rbp: ends frame-pointer walks */
    f[7] = (uint64_t)(uintptr_t)weft__trampoline;
    return f;
#else
    uint64_t *f = (uint64_t *)(t - 176);
    memset(f, 0, 176);
    f[0] = (uint64_t)(uintptr_t)arg;      /* x19 */
    f[1] = (uint64_t)(uintptr_t)entry;    /* x20 */
    f[10] = 0;                            /* x29 */
    f[11] = (uint64_t)(uintptr_t)weft__trampoline; /* x30 */
    f[20] = 0;                            /* FPCR: round to nearest, no traps */
    return f;
#endif
}

#else /* other architectures: ucontext, slower but portable */

#include <ucontext.h>

typedef struct weft__uc_start {
    ucontext_t uc;
    void (*entry)(void *);
    void *arg;
} weft__uc_start;

static void weft__uc_trampoline(unsigned hi, unsigned lo)
{
    weft__uc_start *s = (weft__uc_start *)(uintptr_t)(((uint64_t)hi << 32) | lo);
    s->entry(s->arg);
}

void *weft__context_init(char *top, size_t usable, void (*entry)(void *), void *arg)
{
    uintptr_t t = ((uintptr_t)top - sizeof(weft__uc_start)) & ~(uintptr_t)63;
    weft__uc_start *s = (weft__uc_start *)t;
    s->entry = entry;
    s->arg = arg;
    getcontext(&s->uc);
    s->uc.uc_stack.ss_sp = top - usable;
    s->uc.uc_stack.ss_size = (size_t)((char *)t - (top - usable));
    s->uc.uc_link = NULL;
    uint64_t p = (uint64_t)(uintptr_t)s;
    makecontext(&s->uc, (void (*)(void))weft__uc_trampoline, 2, (unsigned)(p >> 32),
                (unsigned)p);
    return &s->uc;
}

/* The saved "stack pointer" of a switched-out context is the address of a
 * ucontext_t in the frame of its weft__switch call, alive while it waits. */
void weft__switch(void **save_sp, void *load_sp)
{
    ucontext_t self;
    *save_sp = &self;
    swapcontext(&self, (ucontext_t *)load_sp);
}

#endif
