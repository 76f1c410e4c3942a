/* SPDX-License-Identifier: MIT */
/*
 * Backtraces for the watchdog, read from another thread: where a blocked
 * thread sits in a system call (/proc/self/task/<tid>/syscall) and the
 * return addresses on its stack, and names for addresses that need no
 * -rdynamic (the ELF symbol tables of the loaded files).
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core-internal.h"

/* ------------------------------------------------------------ syscall state */

int weft__thread_syscall(pid_t tid, uintptr_t *sp, uintptr_t *pc)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -2;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -2;
    buf[n] = '\0';
    if (strncmp(buf, "running", 7) == 0)
        return -1;
    /* "nr arg1 ... arg6 sp pc" in a system call, "-1 sp pc" blocked
     * outside one (a page fault, a stop). */
    char *p = buf, *end;
    long nr = strtol(p, &end, 10);
    if (end == p)
        return -2;
    unsigned long long v[8];
    int k = 0;
    for (p = end; k < 8; k++, p = end) {
        v[k] = strtoull(p, &end, 16);
        if (end == p)
            break;
    }
    if (nr < 0 || k < 2)
        return -1;
    *sp = (uintptr_t)v[k - 2];
    *pc = (uintptr_t)v[k - 1];
    return (int)nr;
}

/* ------------------------------------------------------------ text segments */

struct text_find {
    uintptr_t addr;
    uintptr_t lo, hi;     /* the executable segment holding addr */
    uintptr_t bias;
    const char *name;
    bool found;
};

static int find_text(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct text_find *f = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (f->addr >= lo && f->addr < hi) {
            f->lo = lo;
            f->hi = hi;
            f->bias = info->dlpi_addr;
            f->name = info->dlpi_name;
            f->found = true;
            return 1;
        }
    }
    return 0;
}

static bool text_of(uintptr_t addr, struct text_find *f)
{
    memset(f, 0, sizeof *f);
    f->addr = addr;
    dl_iterate_phdr(find_text, f);
    return f->found;
}

/* Whether the instruction before `ra` is a call: then `ra` is a return
 * address.  Reads code bytes only inside the segment. */
WEFT__NO_SANITIZE
static bool after_call(uintptr_t ra, const struct text_find *f)
{
#if defined(__x86_64__)
    if (ra < f->lo + 7)
        return false;
    const unsigned char *b = (const unsigned char *)ra;
    if (b[-5] == 0xe8) /* call rel32 */
        return true;
    for (int k = 2; k <= 7; k++) /* call r/m64: ff /2 */
        if (b[-k] == 0xff && (b[-k + 1] & 0x38) == 0x10)
            return true;
    return false;
#elif defined(__aarch64__)
    if (ra < f->lo + 4 || (ra & 3))
        return false;
    uint32_t insn = *(const uint32_t *)(ra - 4);
    return (insn & 0xfc000000u) == 0x94000000u     /* bl */
        || (insn & 0xfffffc1fu) == 0xd63f0000u;    /* blr */
#else
    (void)ra;
    (void)f;
    return false;
#endif
}

bool weft__read_mem(void *dst, uintptr_t src, size_t n)
{
    struct iovec local = {dst, n}, remote = {(void *)src, n};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

int weft__scan_stack(uintptr_t sp, uintptr_t top, void **frames, int max)
{
    sp &= ~(uintptr_t)(sizeof(void *) - 1);
    /* 128 KiB of stack at most: the frames near the top of a deep stack
     * are the least useful anyway. */
    if (top > sp + 128 * 1024)
        top = sp + 128 * 1024;
    if (top <= sp)
        return 0;
    size_t len = (top - sp) & ~(sizeof(void *) - 1);
    uintptr_t *words = malloc(len);
    /* A copy taken with a system call: the stack is another thread's, and
     * it may be unmapped meanwhile (the task ended): EFAULT, no crash. */
    if (!words || !weft__read_mem(words, sp, len)) {
        free(words);
        return 0;
    }
    int n = 0;
    for (size_t i = 0; i < len / sizeof(void *) && n < max; i++) {
        uintptr_t v = words[i];
        struct text_find f;
        if (v > 4096 && text_of(v, &f) && after_call(v, &f))
            frames[n++] = (void *)v;
    }
    free(words);
    return n;
}

/* ------------------------------------------------------------ symbols */

/* An ELF file mapped for its symbol table. */
typedef struct elf_file {
    char path[256];
    const unsigned char *map;
    size_t size;
} elf_file;

#define WEFT__ELF_CACHE 8
struct weft__symbolizer {
    elf_file files[WEFT__ELF_CACHE];
    int n;
};

weft__symbolizer *weft__symbolizer_new(void) { return calloc(1, sizeof(weft__symbolizer)); }

void weft__symbolizer_free(weft__symbolizer *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        if (s->files[i].map)
            munmap((void *)s->files[i].map, s->files[i].size);
    free(s);
}

static const elf_file *elf_open(weft__symbolizer *s, const char *path)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->files[i].path, path) == 0)
            return s->files[i].map ? &s->files[i] : NULL;
    if (s->n == WEFT__ELF_CACHE)
        return NULL;
    elf_file *e = &s->files[s->n++];
    snprintf(e->path, sizeof e->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(ElfW(Ehdr))) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            e->map = m;
            e->size = (size_t)st.st_size;
        }
    }
    close(fd);
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)e->map;
    if (e->map && (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0
                   || eh->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
                   || eh->e_shoff == 0 || eh->e_shentsize != sizeof(ElfW(Shdr))
                   || eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > e->size)) {
        munmap((void *)e->map, e->size);
        e->map = NULL;
    }
    return e->map ? e : NULL;
}

/* The function symbol of `e` holding address `vaddr` (as linked). */
static const char *elf_lookup(const elf_file *e, uintptr_t vaddr, uintptr_t *start)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)e->map;
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(e->map + eh->e_shoff);
    /* .symtab has every function (static ones too); .dynsym only exported. */
    for (int pass = 0; pass < 2; pass++) {
        unsigned want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (unsigned i = 0; i < eh->e_shnum; i++) {
            if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum
                || sh[i].sh_entsize != sizeof(ElfW(Sym)))
                continue;
            const ElfW(Shdr) *strs = &sh[sh[i].sh_link];
            if (sh[i].sh_offset + sh[i].sh_size > e->size
                || strs->sh_offset + strs->sh_size > e->size)
                continue;
            const ElfW(Sym) *sym = (const ElfW(Sym) *)(e->map + sh[i].sh_offset);
            size_t nsym = sh[i].sh_size / sizeof *sym;
            const char *str = (const char *)e->map + strs->sh_offset;
            for (size_t k = 0; k < nsym; k++) {
                unsigned type = ELF64_ST_TYPE(sym[k].st_info);
                if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym[k].st_shndx == SHN_UNDEF
                    || sym[k].st_name >= strs->sh_size)
                    continue;
                uintptr_t lo = sym[k].st_value, sz = sym[k].st_size ? sym[k].st_size : 1;
                if (vaddr >= lo && vaddr - lo < sz) {
                    *start = lo;
                    return str + sym[k].st_name;
                }
            }
        }
    }
    return NULL;
}

void weft__symbolize(weft__symbolizer *s, void *addr, char *buf, size_t n)
{
    uintptr_t a = (uintptr_t)addr;
    struct text_find f;
    if (!text_of(a, &f)) {
        snprintf(buf, n, "%p", addr);
        return;
    }
    /* The main program has an empty name: its file is /proc/self/exe. */
    char exe[256];
    const char *path = f.name && f.name[0] ? f.name : NULL;
    if (!path) {
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[k > 0 ? k : 0] = '\0';
        path = k > 0 ? exe : "/proc/self/exe";
    }
    /* Relative to the load bias: what `addr2line -e <file>` takes (the
     * address itself for a program that is not position-independent). */
    uintptr_t off = a - f.bias;
    const char *name = NULL;
    uintptr_t start = 0;
    const elf_file *e = s ? elf_open(s, f.name && f.name[0] ? f.name : "/proc/self/exe") : NULL;
    if (e)
        name = elf_lookup(e, off, &start);
    Dl_info di;
    if (!name && dladdr(addr, &di) && di.dli_sname && di.dli_saddr) {
        name = di.dli_sname;
        start = (uintptr_t)di.dli_saddr - f.bias;
    }
    if (name)
        snprintf(buf, n, "%s+0x%lx (%s+0x%lx)", name, (unsigned long)(off - start), path,
                 (unsigned long)off);
    else
        snprintf(buf, n, "?? (%s+0x%lx)", path, (unsigned long)off);
}
