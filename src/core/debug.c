/* SPDX-License-Identifier: MIT */
/*
 * Never block the loop: the slow-task detector (after the fact, always on),
 * the watchdog (while it happens, debug mode) and task dumps.
 */
#include <errno.h>
#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core-internal.h"

/* ------------------------------------------------------------ logging */

static weft_log_fn log_fn;
static void *log_data;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void weft_set_log(weft_log_fn fn, void *data)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_data = data;
    pthread_mutex_unlock(&log_lock);
}

void weft__log(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    weft_log_fn fn = log_fn;
    void *data = log_data;
    pthread_mutex_unlock(&log_lock);
    if (fn)
        fn(buf, data);
    else
        fputs(buf, stderr);
}

/* ------------------------------------------------------------ settings */

static atomic_llong slow_ms_setting = -1; /* -1: not set, read $WEFT_SLOW_MS */
static atomic_int debug_setting;           /* 1: weft_debug_enable was called */

static int64_t env_slow_ms(void)
{
    const char *e = getenv("WEFT_SLOW_MS");
    if (!e || !*e)
        return 100;
    char *end;
    long long v = strtoll(e, &end, 10);
    if (*end || v < 0) {
        weft__log("weft: ignoring WEFT_SLOW_MS='%s' (want a count of milliseconds)\n", e);
        return 100;
    }
    return v;
}

int64_t weft_slow_ms(void)
{
    long long v = atomic_load(&slow_ms_setting);
    return v >= 0 ? v : env_slow_ms();
}

int64_t weft__slow_default_ns(void)
{
    int64_t ms = weft_slow_ms();
    return ms > INT64_MAX / 1000000 ? INT64_MAX : ms * 1000000; /* saturate: never */
}

void weft_set_slow_ms(int64_t ms)
{
    atomic_store(&slow_ms_setting, ms < 0 ? -1 : ms);
    weft_loop *loop = weft__loop();
    if (loop)
        atomic_store_explicit(&loop->slow_ns, weft__slow_default_ns(), memory_order_relaxed);
}

bool weft__debug_default(void)
{
    if (atomic_load(&debug_setting))
        return true;
    const char *e = getenv("WEFT_DEBUG");
    return e && *e && strcmp(e, "0") != 0;
}

void weft__report_slow(weft_loop *loop, weft_task *task, int64_t ran_ns)
{
    weft__log("weft: task '%s' ran %lld ms without suspending (slow-task threshold %lld ms): "
              "it blocked the loop\n",
              task->name, (long long)(ran_ns / 1000000),
              (long long)(atomic_load_explicit(&loop->slow_ns, memory_order_relaxed) / 1000000));
}

/* ------------------------------------------------------------ the watchdog */

#define WEFT__BT_MAX 48

/* Filled by the SIGURG handler on the stuck thread, read by the watchdog. */
static struct {
    atomic_int state; /* 0 idle, 1 requested, 2 captured */
    pid_t tid;        /* the thread asked */
    void *frames[WEFT__BT_MAX];
    int nframes;
    void *pc; /* the interrupted instruction, or NULL */
    char name[WEFT_TASK_NAME_MAX];
} capture;

static pthread_t watchdog_thread;
static int watchdog_users; /* loops in debug mode */
static atomic_int watchdog_stop;
static pthread_mutex_t watchdog_lock = PTHREAD_MUTEX_INITIALIZER;
/* The program's own SIGURG action: signals that are not the watchdog's go
 * to it, and it is put back when the last loop in debug mode ends. */
static struct sigaction prev_urg;

static void *interrupted_pc(void *uctx)
{
#if defined(__x86_64__)
    return (void *)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)((ucontext_t *)uctx)->uc_mcontext.pc;
#else
    (void)uctx;
    return NULL;
#endif
}

static void on_sigurg(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;
    /* The watchdog's: sent with tgkill by this process to this thread
     * while a capture is asked for.  Anything else is the program's. */
    bool ours = si && si->si_code == SI_TKILL && si->si_pid == getpid()
             && atomic_load(&capture.state) == 1 && capture.tid == gettid();
    if (!ours) {
        errno = saved;
        if (prev_urg.sa_flags & SA_SIGINFO) {
            if (prev_urg.sa_sigaction)
                prev_urg.sa_sigaction(sig, si, uctx);
        } else if (prev_urg.sa_handler != SIG_DFL && prev_urg.sa_handler != SIG_IGN) {
            prev_urg.sa_handler(sig);
        } /* SIGURG's default action is to ignore it */
        return;
    }
    weft_loop *loop = weft__tls_loop;
    weft_task *t = loop ? loop->current : NULL;
    const char *n = t ? t->name : "(loop callback)";
    size_t len = strlen(n);
    if (len >= sizeof capture.name)
        len = sizeof capture.name - 1;
    memcpy(capture.name, n, len);
    capture.name[len] = '\0';
    capture.nframes = backtrace(capture.frames, WEFT__BT_MAX);
    capture.pc = interrupted_pc(uctx);
    atomic_store(&capture.state, 2);
    errno = saved;
}

/* The top of the stack that holds `sp` on the stuck loop's thread: the
 * running task's stack, else the thread's own; 0 if neither.  The task's
 * fields are copied with weft__read_mem: it runs on another thread, and if
 * it ends meanwhile its stack may be gone. */
static uintptr_t stack_top_for(weft_loop *loop, weft_task *t, uintptr_t sp)
{
    weft__stack *st = NULL;
    weft__stack d;
    if (t && weft__read_mem(&st, (uintptr_t)&t->stack, sizeof st) && st
        && weft__read_mem(&d, (uintptr_t)st, sizeof d)) {
        uintptr_t top = (uintptr_t)d.top, lo = top - d.usable;
        if (sp >= lo && sp < top)
            return top;
    }
    pthread_attr_t attr;
    uintptr_t top = 0;
    if (pthread_getattr_np(loop->thread, &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0 && sp >= (uintptr_t)addr
            && sp < (uintptr_t)addr + size)
            top = (uintptr_t)addr + size;
        pthread_attr_destroy(&attr);
    }
    return top;
}

/* Blocked in a system call: read where from outside, without a signal (a
 * signal would cut short a sleep, poll, select or a recv with a timeout). */
static bool capture_blocked(weft_loop *loop)
{
    uintptr_t sp, pc;
    if (weft__thread_syscall(loop->tid, &sp, &pc) < 0)
        return false;
    weft_task *t = atomic_load_explicit(&loop->running, memory_order_relaxed);
    /* The state must be the thread's own: under an emulator (qemu-user) the
     * file describes the emulator's host thread, whose stack pointer lies
     * in no stack of ours.  Then fall back to the signal. */
    uintptr_t top = stack_top_for(loop, t, sp);
    if (!top)
        return false;
    char name[WEFT_TASK_NAME_MAX] = "(loop callback)";
    if (t && !weft__read_mem(name, (uintptr_t)t->name, sizeof name))
        snprintf(name, sizeof name, "?");
    name[sizeof name - 1] = '\0';
    memcpy(capture.name, name, sizeof capture.name);
    capture.pc = (void *)pc;
    capture.frames[0] = (void *)pc;
    capture.nframes = 1 + weft__scan_stack(sp, top, capture.frames + 1, WEFT__BT_MAX - 1);
    return true;
}

static void report_stuck(weft_loop *loop, int64_t stuck_ms)
{
    bool blocked = capture_blocked(loop);
    if (!blocked) {
        /* Running (or its state cannot be read): a signal interrupts no
         * system call then.  Only if the thread enters one between that
         * check and the signal does the call see EINTR (debug.h). */
        capture.tid = loop->tid;
        atomic_store(&capture.state, 1);
        pthread_kill(loop->thread, SIGURG);
        for (int i = 0; i < 200 && atomic_load(&capture.state) != 2; i++)
            usleep(1000);
        if (atomic_load(&capture.state) != 2) {
            atomic_store(&capture.state, 0);
            weft__log("weft: the loop has been stuck for %lld ms (no backtrace: the thread did "
                      "not answer)\n", (long long)stuck_ms);
            return;
        }
    }
    weft__symbolizer *sym = weft__symbolizer_new();
    size_t cap = 512 + (size_t)capture.nframes * 400, off = 0;
    char *msg = malloc(cap);
    if (msg) {
        off += (size_t)snprintf(msg + off, cap - off,
                                "weft: task '%s' is blocking the loop: running for %lld ms "
                                "without suspending; it is now %s:\n",
                                capture.name, (long long)stuck_ms,
                                blocked ? "in a system call (frames after #0 scanned from "
                                          "its stack)"
                                        : "at");
        /* Start at the interrupted instruction: before it come the
         * handler, the signal trampoline and, under sanitizers, their
         * backtrace interceptor.  Without it, skip handler + trampoline. */
        int first = blocked ? 0 : 2;
        for (int i = 0; !blocked && i < capture.nframes; i++)
            if (capture.pc && capture.frames[i] == capture.pc) {
                first = i;
                break;
            }
        for (int i = first; i < capture.nframes && off < cap; i++) {
            char line[320];
            /* A return address points after its call: name the call. */
            void *a = capture.frames[i];
            weft__symbolize(sym, i > first ? (char *)a - 1 : a, line, sizeof line);
            off += (size_t)snprintf(msg + off, cap - off, "    #%d %s\n", i - first, line);
        }
        weft__log("%s", msg);
        free(msg);
    }
    weft__symbolizer_free(sym);
    atomic_store(&capture.state, 0);
}

/* How often the watchdog looks at the loops. */
#define WEFT__WATCHDOG_PERIOD_MS 10

static void *watchdog_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&watchdog_stop)) {
        usleep(WEFT__WATCHDOG_PERIOD_MS * 1000);
        pthread_mutex_lock(&weft__loops_lock);
        weft__list_foreach(it, &weft__loops) {
            weft_loop *loop = weft__container_of(it, weft_loop, loops_link);
            int64_t slow_ns = atomic_load_explicit(&loop->slow_ns, memory_order_relaxed);
            if (!atomic_load(&loop->debug) || slow_ns <= 0)
                continue;
            /* The loop is stuck when it has not switched since the last
             * look and a task (or a loop callback) is running. */
            unsigned long sw = atomic_load_explicit(&loop->switches, memory_order_relaxed);
            weft_task *running = atomic_load_explicit(&loop->running, memory_order_relaxed);
            int64_t now = weft__clock_ns();
            if (sw != loop->wd_switches || !running) {
                loop->wd_switches = sw;
                loop->wd_since = now;
                loop->wd_reported = false;
            } else if (!loop->wd_reported && now - loop->wd_since >= slow_ns) {
                report_stuck(loop, (now - loop->wd_since) / 1000000 + WEFT__WATCHDOG_PERIOD_MS / 2);
                loop->wd_reported = true;
            }
        }
        pthread_mutex_unlock(&weft__loops_lock);
    }
    return NULL;
}

int weft_debug_enable(void)
{
    atomic_store(&debug_setting, 1);
    weft_loop *loop = weft__loop();
    if (loop && !atomic_load(&loop->debug)) {
        atomic_store(&loop->debug, true);
        weft__debug_loop_start(loop);
    }
    return 0;
}

void weft__debug_loop_start(weft_loop *loop)
{
    void *warm[2];
    backtrace(warm, 2); /* loads libgcc's unwinder now, not in the handler */
    weft__signals_watch_quit(loop);
    pthread_mutex_lock(&watchdog_lock);
    if (watchdog_users++ == 0) {
        struct sigaction sa, prev;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigurg;
        sa.sa_flags = SA_RESTART | SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGURG, NULL, &prev);
        /* (Ours already in a forked child whose parent had it installed.) */
        if (!((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction == on_sigurg))
            prev_urg = prev;
        sigaction(SIGURG, &sa, NULL);
        atomic_store(&watchdog_stop, 0);
        /* The watchdog takes no signals: a process-directed signal that a
         * loop routes to its signalfd (blocked there) would otherwise be
         * delivered to this thread and run its default action. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&watchdog_thread, NULL, watchdog_main, NULL) != 0)
            watchdog_users = 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&watchdog_lock);
}

void weft__debug_loop_stop(weft_loop *loop)
{
    (void)loop;
    /* Stop and join under the lock, so that a loop starting meanwhile on
     * another thread cannot reset the stop flag or replace the thread
     * handle before the old watchdog has been joined.  The watchdog never
     * takes this lock. */
    pthread_mutex_lock(&watchdog_lock);
    if (watchdog_users > 0 && --watchdog_users == 0) {
        atomic_store(&watchdog_stop, 1);
        pthread_join(watchdog_thread, NULL);
        /* Give the program its SIGURG action back, unless it has set
         * another one meanwhile. */
        struct sigaction cur;
        sigaction(SIGURG, NULL, &cur);
        if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigurg)
            sigaction(SIGURG, &prev_urg, NULL);
    }
    pthread_mutex_unlock(&watchdog_lock);
}

void weft__debug_fork_prepare(void) { pthread_mutex_lock(&watchdog_lock); }
void weft__debug_fork_parent(void) { pthread_mutex_unlock(&watchdog_lock); }

void weft__debug_fork_child(void)
{
    /* The watchdog thread stayed in the parent: a loop in debug mode in the
     * child starts its own. */
    watchdog_users = 0;
    atomic_store(&capture.state, 0);
    pthread_mutex_unlock(&watchdog_lock); /* taken by this thread before the fork */
}

/* ------------------------------------------------------------ dumps */

static const char *state_name(const weft_task *t)
{
    switch (t->state) {
    case WEFT__NEW: return "new";
    case WEFT__READY: return "ready";
    case WEFT__RUNNING: return "running";
    case WEFT__SUSPENDED: return "waiting";
    default: return "done";
    }
}

static void describe_wait(const weft_loop *loop, const weft_task *t, char *buf, size_t n)
{
    buf[0] = '\0';
    if (t->state != WEFT__SUSPENDED)
        return;
    const weft__task_run *r = &t->stack->run; /* suspended: it has started */
    int64_t left = r->timer.heap_index ? (r->timer.deadline - loop->now) / 1000000 : -1;
    char dl[48] = "";
    if (left >= 0)
        snprintf(dl, sizeof dl, ", deadline in %lld ms", (long long)left);
    switch (t->wait_kind) {
    case WEFT__WAIT_SLEEP:
        snprintf(buf, n, "sleep (%lld ms left)", (long long)left);
        break;
    case WEFT__WAIT_FD:
        snprintf(buf, n, "fd %d %s%s%s", r->wait_fd,
                 (r->wait_events & WEFT_READABLE) ? "readable" : "",
                 (r->wait_events == (WEFT_READABLE | WEFT_WRITABLE)) ? "|" : "",
                 (r->wait_events & WEFT_WRITABLE) ? "writable" : "");
        strncat(buf, dl, n - strlen(buf) - 1);
        break;
    case WEFT__WAIT_JOIN:
        snprintf(buf, n, "join task '%s'%s", ((const weft_task *)t->wait_obj)->name, dl);
        break;
    case WEFT__WAIT_SIGNAL:
        snprintf(buf, n, "signal%s", dl);
        break;
    default:
        if (t->wait_describe) {
            t->wait_describe(t, buf, n);
            strncat(buf, dl, n - strlen(buf) - 1);
        } else {
            snprintf(buf, n, "group %p%s", t->wait_obj, dl);
        }
        break;
    }
}

void weft_dump_tasks(FILE *out)
{
    weft_loop *loop = weft__loop();
    if (!loop || !out)
        return;
    int64_t now = weft__coarse_ns();
    fprintf(out, "weft: %zu live task(s) on this loop:\n", loop->nalive);
    weft__list_foreach(it, &loop->tasks) {
        weft_task *t = weft__container_of(it, weft_task, all_link);
        char wait[128];
        describe_wait(loop, t, wait, sizeof wait);
        char ago[48];
        if (t == loop->current)
            snprintf(ago, sizeof ago, "running now");
        else if (t->stack && t->stack->run.last_run)
            snprintf(ago, sizeof ago, "last ran %lld ms ago",
                     (long long)((now - t->stack->run.last_run) / 1000000));
        else
            snprintf(ago, sizeof ago, "never ran");
        fprintf(out, "  %-24s %-8s %s%s%s%s%s\n", t->name, state_name(t), ago,
                wait[0] ? ", waits on " : "", wait, t->cancelled ? ", cancelled: " : "",
                t->cancelled ? weft_cancel_cause_name(weft_task_cancel_cause(t)) : "");
    }
    fflush(out);
}
