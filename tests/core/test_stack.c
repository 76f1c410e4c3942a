/* SPDX-License-Identifier: MIT */
/* Task stacks: overflow report, sizes, mapping count, recycling, saved registers. */
#include <errno.h>
#include <fenv.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include <cmocka.h>

#include "guard_probe.h"
#include <weft.h>

#include "test_helpers.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif


/* ------------------------------------------------------------ helpers */

/* Keep the compiler from optimising a buffer away. */
static void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    long lines = 0;
    int c;
    while ((c = getc(f)) != EOF)
        if (c == '\n')
            lines++;
    fclose(f);
    return lines;
}

/* VmSize from /proc/self/status, in KiB. */
static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

/* Run fn(arg) in a forked child whose stderr goes to a pipe; collect that
 * output (NUL-terminated) and the wait status. */
typedef void (*child_fn)(void *arg);

static void run_child(child_fn fn, void *arg, char *out, size_t outsz, int *wstatus)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        /* cmocka's SIGSEGV handler would longjmp back into the test runner
         * in this child: die the ordinary way instead. */
        signal(SIGSEGV, SIG_DFL);
        alarm(30); /* a hung child dies of SIGALRM and fails the test */
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(p[0], out + len, outsz - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == outsz - 1) { /* full: drain the rest */
            char sink[256];
            while (read(p[0], sink, sizeof sink) > 0)
                ;
            break;
        }
    }
    out[len] = '\0';
    close(p[0]);
    assert_int_equal(waitpid(pid, wstatus, 0), pid);
}

/* ------------------------------------------------------------ overflow */

static volatile int recursion_limit = 1 << 30;

__attribute__((noinline)) static int recurse(int depth)
{
    char buf[1024];
    memset(buf, depth & 0x7f, sizeof buf);
    escape(buf);
    if (depth >= recursion_limit)
        return buf[0];
    /* Not a tail call: the frame stays live below the next one. */
    return recurse(depth + 1) + buf[depth % (int)sizeof buf];
}

static int deep_recursion(void *arg)
{
    (void)arg;
    return recurse(0);
}

static int nap(void *arg)
{
    (void)arg;
    return weft_sleep_ms(10000);
}

static int overflow_main(void *arg)
{
    /* With arg: 40 other tasks hold stacks first, so the overflowing one
     * runs on a stack of a later batch, whose guards were installed
     * together (process_madvise) rather than one by one. */
    for (int i = 0; arg && i < 40; i++)
        if (!weft_spawn(nap, NULL, NULL))
            return -1;
    if (arg)
        weft_yield();
    weft_task *t = weft_spawn(deep_recursion, NULL, NULL);
    if (!t)
        return -1;
    return weft_join(t, NULL);
}

static void overflow_child(void *arg)
{
    weft_run(overflow_main, arg);
    fprintf(stderr, "child: survived the overflow\n");
    _exit(3);
}

static void check_overflow(void *later_batch)
{
    if (RUNNING_ON_VALGRIND) {
        print_message("skipped: valgrind handles the guard-page fault itself\n");
        skip();
    }
    char out[8192];
    int ws;
    run_child(overflow_child, later_batch, out, sizeof out, &ws);
    bool ours = strstr(out, "stack overflow in task 'deep_recursion'") != NULL;
    bool asan = TEST_ASAN && strstr(out, "AddressSanitizer") && strstr(out, "stack-overflow");
    if (!ours && !asan)
        print_message("child stderr:\n%s\n", out);
    assert_true(ours || asan);
    if (ours) {
        assert_non_null(strstr(out, "(stack size 256 KiB)"));
        /* Our handler lets the fault kill the process with SIGSEGV. */
        assert_true(WIFSIGNALED(ws));
        assert_int_equal(WTERMSIG(ws), SIGSEGV);
    } else {
        /* ASan reports and exits with its error code. */
        assert_true(WIFSIGNALED(ws) || (WIFEXITED(ws) && WEXITSTATUS(ws) != 0));
    }
}

static void test_overflow_reported(void **state)
{
    (void)state;
    check_overflow(NULL);
}

static void test_overflow_reported_later_batch(void **state)
{
    (void)state;
    check_overflow((void *)1);
}

/* A fault that is not an overflow is not reported as one, and still kills.
 * The target is a PROT_NONE page, which neither sanitizer flags itself. */
static int wild_write(void *arg)
{
    (void)arg;
    volatile int *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)p == MAP_FAILED)
        return -1;
    *p = 1;
    return 0;
}

static int wild_main(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(wild_write, NULL, NULL);
    return t ? weft_join(t, NULL) : -1;
}

static void wild_child(void *arg)
{
    (void)arg;
    weft_run(wild_main, NULL);
    fprintf(stderr, "child: survived the fault\n");
    _exit(3);
}

static void test_other_fault_not_overflow(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND)
        skip();
    char out[8192];
    int ws;
    run_child(wild_child, NULL, out, sizeof out, &ws);
    if (strstr(out, "stack overflow") || strstr(out, "survived") || !WIFSIGNALED(ws))
        print_message("child stderr:\n%s\n", out);
    assert_null(strstr(out, "stack overflow"));
    assert_null(strstr(out, "survived"));
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(WTERMSIG(ws), SIGSEGV);
}

/* ------------------------------------------------------------ stack size */

#define BIG_ARRAY ((size_t)600 * 1024)

static int big_frame(void *arg)
{
    (void)arg;
    char buf[BIG_ARRAY];
    memset(buf, 0x5a, sizeof buf);
    escape(buf);
    long sum = 0;
    for (size_t i = 0; i < sizeof buf; i += 4096)
        sum += buf[i];
    return sum == 0x5a * (long)(BIG_ARRAY / 4096) ? 0 : -1;
}

static int big_stack_main(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(big_frame, NULL, &(weft_task_opts){.stack_size = 1024 * 1024});
    assert_non_null(t);
    int st = -2;
    assert_int_equal(weft_join(t, &st), 0);
    assert_int_equal(st, 0);
    return 0;
}

static void test_stack_size_option(void **state)
{
    (void)state;
    assert_int_equal(weft_run(big_stack_main, NULL), 0);
}

/* ------------------------------------------------------------ many stacks */

enum { MANY = 100000, MANY_FALLBACK = 20000 };
static int many_started;

static int long_sleeper(void *arg)
{
    (void)arg;
    many_started++;
    return weft_sleep_ms(600000); /* until cancelled */
}

static int many_main(void *arg)
{
    int n = *(int *)arg;
    weft_task **t = calloc((size_t)n, sizeof *t);
    assert_non_null(t);
    long maps0 = count_maps();
    many_started = 0;
    for (int i = 0; i < n; i++) {
        t[i] = weft_spawn(long_sleeper, NULL, NULL);
        assert_non_null(t[i]);
    }
    /* Stacks are mapped when a task first runs: wait until all sleep. */
    for (int i = 0; i < 6000 && many_started < n; i++)
        weft_sleep_ms(10);
    assert_int_equal(many_started, n);
    long maps = count_maps();
    print_message("%d sleeping tasks: %ld lines in /proc/self/maps\n", n, maps);
    if (guard_regions_supported()) {
        assert_true(maps < 5000);
    } else {
        /* The mprotect fallback splits each stack into two mappings (guard
         * and stack), no more: about vm.max_map_count / 2 stacks fit. */
        print_message("MADV_GUARD_INSTALL unavailable (kernel < 6.13?): %d tasks only, "
                      "%ld mappings more than before (at most 2 a stack)\n", n, maps - maps0);
        assert_true(maps - maps0 >= n);
        assert_true(maps - maps0 <= 2L * n + 200);
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(weft_cancel(t[i]), 0);
    for (int i = 0; i < n; i++) {
        int st = 0;
        assert_int_equal(weft_join(t[i], &st), 0);
        assert_int_equal(st, -ECANCELED);
    }
    free(t);
    return 0;
}

static void test_100k_default_stacks(void **state)
{
    (void)state;
    int n = guard_regions_supported() ? MANY : MANY_FALLBACK;
    assert_int_equal(weft_run(many_main, &n), 0);
}

/* ------------------------------------------------------------ recycling */

static uintptr_t short_frames[16];
static int nshort_frames;

static int short_task(void *arg)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    int i;
    for (i = 0; i < nshort_frames; i++)
        if (short_frames[i] == fp)
            break;
    if (i == nshort_frames && nshort_frames < 16)
        short_frames[nshort_frames++] = fp;
    return (int)(intptr_t)arg;
}

static int recycle_main(void *arg)
{
    (void)arg;
    enum { WARMUP = 100, N = 10000 };
    nshort_frames = 0;
    for (int i = 0; i < WARMUP; i++) {
        int st = -1;
        assert_int_equal(weft_join(weft_spawn(short_task, (void *)(intptr_t)i, NULL), &st), 0);
        assert_int_equal(st, i);
    }
    long maps0 = count_maps(), vm0 = vm_size_kib();
    for (int i = 0; i < N; i++) {
        weft_task *t = weft_spawn(short_task, (void *)(intptr_t)i, NULL);
        assert_non_null(t);
        int st = -1;
        assert_int_equal(weft_join(t, &st), 0);
        assert_int_equal(st, i);
    }
    long maps1 = count_maps(), vm1 = vm_size_kib();
    print_message("10000 tasks: maps %ld -> %ld lines, VmSize %ld -> %ld KiB, %d stack(s)\n",
                  maps0, maps1, vm0, vm1, nshort_frames);
    assert_true(maps1 <= maps0 + 2);
    /* 10,000 leaked 320 KiB stacks would add 3 GiB. */
    assert_true(vm1 - vm0 < 64 * 1024);
    /* One task at a time: a few stacks serve them all. */
    assert_true(nshort_frames <= 4);
    return 0;
}

static void test_stacks_recycled(void **state)
{
    (void)state;
    assert_int_equal(weft_run(recycle_main, NULL), 0);
}

/* ------------------------------------------------------------ FP control */

static int fp_phase;

static int fp_upward(void *arg)
{
    (void)arg;
    assert_int_equal(fesetround(FE_UPWARD), 0);
    assert_int_equal(fegetround(), FE_UPWARD);
    fp_phase = 1;
    for (int i = 0; i < 5; i++) {
        weft_yield();
        assert_int_equal(fegetround(), FE_UPWARD);
    }
    weft_sleep_ms(1); /* through the loop context too */
    assert_int_equal(fegetround(), FE_UPWARD);
    /* Upward rounding is in effect: 1 + tiny rounds up.  (Valgrind keeps
     * the mode but always rounds SSE arithmetic to nearest.) */
    volatile double one = 1.0, tiny = 1e-30;
    if (!RUNNING_ON_VALGRIND)
        assert_true(one + tiny > 1.0);
    fp_phase = 2;
    return 0;
}

static int fp_default(void *arg)
{
    (void)arg;
    while (fp_phase == 0)
        weft_yield();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fegetround(), FE_TONEAREST);
        volatile double one = 1.0, tiny = 1e-30;
        assert_true(one + tiny == 1.0);
        weft_yield();
    }
    return 0;
}

static int fp_main(void *arg)
{
    (void)arg;
    fp_phase = 0;
    weft_task *a = weft_spawn(fp_upward, NULL, NULL);
    weft_task *b = weft_spawn(fp_default, NULL, NULL);
    assert_int_equal(weft_join(a, NULL), 0);
    assert_int_equal(fegetround(), FE_TONEAREST);
    assert_int_equal(weft_join(b, NULL), 0);
    assert_int_equal(fp_phase, 2);
    assert_int_equal(fegetround(), FE_TONEAREST);
    return 0;
}

static void test_fp_control_per_task(void **state)
{
    (void)state;
    assert_int_equal(fegetround(), FE_TONEAREST);
    assert_int_equal(weft_run(fp_main, NULL), 0);
    /* The thread that ran the loop gets its own state back. */
    assert_int_equal(fegetround(), FE_TONEAREST);
}

/* ------------------------------------------------------------ registers */

typedef struct calc {
    uint64_t seed;
    int (*yield)(void);
    double dres;
    uint64_t ires;
} calc;

static int no_yield(void) { return 0; }

/* Many live integer and floating-point values across every call to yield:
 * the compiler keeps them in callee-saved registers (and spills the rest). */
__attribute__((noinline)) static void compute(calc *c)
{
    uint64_t x0 = c->seed, x1 = c->seed * 3 + 1, x2 = c->seed ^ 0x9e3779b97f4a7c15ull,
             x3 = 7, x4 = c->seed << 7, x5 = 0;
    double d0 = (double)(c->seed & 0xffff) * 0.25, d1 = 1.5, d2 = -2.25, d3 = 0.0, d4 = 1e-3;
    for (int i = 0; i < 2000; i++) {
        x0 = x0 * 6364136223846793005ull + 1442695040888963407ull;
        x1 ^= x0 >> 17;
        x2 += x1 * 31 + (uint64_t)i;
        x3 = (x3 << 1) | (x2 >> 63);
        x4 -= x3 ^ x0;
        x5 += x4 >> 3;
        d0 = d0 * 0.999 + (double)(x0 & 0xff);
        d1 += d0 * 0.5 - d2;
        d2 = d2 * 0.75 + d1 * 1e-3;
        d3 += d1 - d2 * 0.125;
        d4 = d4 * 1.0001 + d3 * 1e-9;
        c->yield();
    }
    c->dres = d0 + d1 * 2 + d2 * 3 + d3 * 4 + d4 * 5;
    c->ires = x0 ^ (x1 * 3) ^ (x2 * 5) ^ (x3 * 7) ^ (x4 * 11) ^ (x5 * 13);
}

static int compute_task(void *arg)
{
    compute(arg);
    return 0;
}

static int regs_main(void *arg)
{
    calc *cs = arg;
    weft_task *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = weft_spawn(compute_task, &cs[i], NULL);
        assert_non_null(t[i]);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_join(t[i], NULL), 0);
    return 0;
}

static void test_registers_survive_switches(void **state)
{
    (void)state;
    calc want[3], got[3];
    for (int i = 0; i < 3; i++) {
        want[i] = (calc){.seed = 12345 + (uint64_t)i * 1000003, .yield = no_yield};
        compute(&want[i]);
        got[i] = (calc){.seed = want[i].seed, .yield = weft_yield};
    }
    assert_int_equal(weft_run(regs_main, got), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(got[i].ires, want[i].ires);
        assert_memory_equal(&got[i].dres, &want[i].dres, sizeof(double));
    }
    /* The three computations really differ. */
    assert_true(want[0].ires != want[1].ires && want[1].ires != want[2].ires);
}

/* ------------------------------------------------------------ start failures */

/* When stacks cannot be mapped (address space limit), every task fails to
 * start: the log gets the first failure and then summary lines, not one
 * line per task. */
#define MANY_FAILS 3000

static int nap_short(void *arg)
{
    (void)arg;
    return weft_sleep_ms(20);
}

static int start_fail_main(void *arg)
{
    (void)arg;
    static weft_task *t[MANY_FAILS];
    for (int i = 0; i < MANY_FAILS; i++) {
        t[i] = weft_spawn(nap_short, NULL, NULL);
        if (!t[i])
            return -1;
    }
    /* Spawned, not started: their stacks come when they first run. */
    struct rlimit rl = {.rlim_cur = (rlim_t)(vm_size_kib() + 8 * 1024) * 1024,
                        .rlim_max = RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return -2;
    /* An emulator (qemu-user) may not apply the limit to the program's
     * mappings: then there is nothing to test. */
    void *probe = mmap(NULL, (size_t)64 << 20, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe != MAP_FAILED) {
        munmap(probe, (size_t)64 << 20);
        fprintf(stderr, "limit not enforced\n");
        rl.rlim_cur = RLIM_INFINITY;
        setrlimit(RLIMIT_AS, &rl);
        for (int i = 0; i < MANY_FAILS; i++)
            weft_join(t[i], NULL);
        return 0;
    }
    int failed = 0;
    for (int i = 0; i < MANY_FAILS; i++) {
        int st = 0;
        if (weft_join(t[i], &st) != 0)
            return -3;
        failed += st == -ENOMEM;
    }
    rl.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_AS, &rl);
    fprintf(stderr, "failed=%d\n", failed);
    return 0;
}

static void start_fail_child(void *arg)
{
    (void)arg;
    int rc = weft_run(start_fail_main, NULL);
    fprintf(stderr, "rc=%d\n", rc);
    _exit(rc == 0 ? 0 : 1);
}

static void test_start_failures_rate_limited(void **state)
{
    (void)state;
    if (TEST_ASAN || RUNNING_ON_VALGRIND) {
        print_message("skipped: the sanitizer's or valgrind's own mappings need the address "
                      "space limit\n");
        skip();
    }
    static char out[1 << 20];
    int ws;
    run_child(start_fail_child, NULL, out, sizeof out, &ws);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        print_message("child stderr:\n%.4000s\n", out);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    if (strstr(out, "limit not enforced")) {
        print_message("skipped: RLIMIT_AS is not enforced here (an emulator?)\n");
        skip();
    }
    const char *f = strstr(out, "failed=");
    assert_non_null(f);
    long failed = strtol(f + 7, NULL, 10);
    assert_true(failed >= MANY_FAILS / 2); /* the limit did bite */
    long first_lines = 0, summed = 0, lines = 0;
    for (const char *p = out; (p = strstr(p, "could not start")); p++) {
        first_lines++;
    }
    for (const char *p = out; (p = strstr(p, "weft: ")); p++) {
        lines++;
        long n;
        if (sscanf(p, "weft: %ld more task(s) could not start", &n) == 1)
            summed += n;
    }
    print_message("%ld tasks failed to start; %ld log lines\n", failed, lines);
    /* one line for the first, the rest counted in a few summaries */
    assert_true(lines <= 10);
    assert_true(first_lines >= 1 && first_lines <= 10);
    assert_int_equal(summed + 1, failed);
}

/* ------------------------------------------------------------ a frame larger than the stack */

/* A 200 KiB local array on a 64 KiB stack: the frame reaches far below the
 * stack.  This file is built without -fstack-clash-protection, so nothing
 * probes the frame page by page: the first write lands ~136 KiB below the
 * usable stack.  It must land in the task's own guard (weft's handler names
 * the task, the process dies of SIGSEGV), not in the stack mapped below,
 * where it would silently overwrite another task's frames. */
#define BIG_FRAME (200 * 1024)

static volatile uintptr_t big_at, neighbour_at;
/* Pages of the big frame written before the fault, in memory shared with
 * the parent: 0 means the very first write (the one furthest from the
 * stack) faulted, so nothing outside the task's own stack was touched. */
static volatile size_t *pages_written;

__attribute__((noinline)) static int jump_frame(int x)
{
    char buf[BIG_FRAME];
    volatile char *p = buf;
    big_at = (uintptr_t)buf;
    /* Lowest address first: the write furthest from the stack comes first. */
    for (size_t i = 0; i < sizeof buf; i += 4096) {
        p[i] = (char)x;
        *pages_written = i / 4096 + 1;
    }
    escape(buf);
    return buf[x & 0xff];
}

static int big_frame_task(void *arg)
{
    (void)arg;
    weft_sleep_ms(20); /* the neighbour has its canary in place */
    return jump_frame(7);
}

/* The neighbour: a canary over most of its stack, checked after the big
 * frame ran. */
static int neighbour_task(void *arg)
{
    (void)arg;
    static const size_t n = 400 * 1024;
    char *canary = __builtin_alloca(n);
    neighbour_at = (uintptr_t)canary;
    memset(canary, 0x5a, n);
    escape(canary);
    weft_sleep_ms(200);
    for (size_t i = 0; i < n; i++)
        if (canary[i] != 0x5a) {
            fprintf(stderr, "child: the neighbour's stack was overwritten at %zu\n", i);
            return 1;
        }
    return 0;
}

static int big_frame_main(void *arg)
{
    (void)arg;
    weft_task_opts ao = {.name = "big_frame", .stack_size = 64 * 1024};
    weft_task_opts bo = {.name = "neighbour", .stack_size = 512 * 1024};
    weft_task *a = weft_spawn(big_frame_task, NULL, &ao);
    weft_task *b = weft_spawn(neighbour_task, NULL, &bo);
    if (!a || !b)
        return -1;
    int sa = 0, sb = 0;
    weft_join(a, &sa);
    weft_join(b, &sb);
    return sb;
}

static void big_frame_child(void *arg)
{
    (void)arg;
    int rc = weft_run(big_frame_main, NULL);
    fprintf(stderr, "child: survived the big frame (status %d); frame at %#lx, neighbour's "
                    "canary at %#lx\n", rc, (unsigned long)big_at, (unsigned long)neighbour_at);
    _exit(3);
}

static void test_big_frame_hits_guard(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND) {
        print_message("skipped: valgrind handles the guard-page fault itself\n");
        skip();
    }
    pages_written = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(pages_written != MAP_FAILED);
    *pages_written = 0;
    char out[8192];
    int ws;
    run_child(big_frame_child, NULL, out, sizeof out, &ws);
    size_t written = *pages_written;
    munmap((void *)pages_written, 4096);
    bool ours = strstr(out, "stack overflow in task 'big_frame'") != NULL;
    bool asan = TEST_ASAN && strstr(out, "AddressSanitizer");
    if (!ours && !asan)
        print_message("child %s %d, stderr:\n%s\n", WIFEXITED(ws) ? "exited" : "killed by signal",
                      WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), out);
    assert_true(ours || asan);
    if (ours) {
        assert_true(WIFSIGNALED(ws));
        assert_int_equal(WTERMSIG(ws), SIGSEGV);
        if (written)
            print_message("%zu pages of the frame were written below the guard (into the "
                          "mapping below) before the fault\n", written);
        assert_int_equal(written, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_failures_rate_limited),
        cmocka_unit_test(test_overflow_reported),
        cmocka_unit_test(test_overflow_reported_later_batch),
        cmocka_unit_test(test_big_frame_hits_guard),
        cmocka_unit_test(test_other_fault_not_overflow),
        cmocka_unit_test(test_stack_size_option),
        cmocka_unit_test(test_100k_default_stacks),
        cmocka_unit_test(test_stacks_recycled),
        cmocka_unit_test(test_fp_control_per_task),
        cmocka_unit_test(test_registers_survive_switches),
    };
    return run_cases(tests, NULL, NULL);
}
