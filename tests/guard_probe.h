/* SPDX-License-Identifier: MIT */
/* Tests' view of the stack guards: whether MADV_GUARD_INSTALL really works
 * here (Linux 6.13+), the same probe weft makes (src/core/stack.c). */
#ifndef WEFT_TESTS_GUARD_PROBE_H
#define WEFT_TESTS_GUARD_PROBE_H

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

/* True when guard regions need no extra mapping, so 100,000 stacks fit
 * under vm.max_map_count.  An emulator may accept the advice and ignore
 * it: the guard page must also refuse to be read (EFAULT). */
static inline bool guard_regions_supported(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)ps * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return false;
    bool ok = madvise(p, (size_t)ps, 102 /* MADV_GUARD_INSTALL */) == 0;
    if (ok) {
        int fds[2];
        if (pipe(fds) == 0) {
            ok = write(fds[1], p, 1) < 0 && errno == EFAULT;
            close(fds[0]);
            close(fds[1]);
        }
    }
    munmap(p, (size_t)ps * 4);
    return ok;
}

#endif
