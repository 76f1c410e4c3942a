/* SPDX-License-Identifier: MIT */
/* Internal structures of the core: tasks, the loop, stacks, timers, fds. */
#ifndef WEFT_CORE_INTERNAL_H
#define WEFT_CORE_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "weft.h"
#include "../util/list.h"

#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The loop polls for I/O at least once every this many task runs, so a
 * storm of ready tasks cannot starve the network. */
#define WEFT__POLL_EVERY 64

/* A task that yields for its cooperative budget makes the loop poll I/O and
 * fire timers first when the loop last did so at least this long ago (by
 * the coarse clock, so: when it has ticked since); more often, an epoll_wait
 * per budget would cost more than the operations it interrupts. */
#define WEFT__COOP_POLL_NS ((int64_t)1000000)

/* The loop's cached time is refreshed at a switch when the coarse clock
 * is this far ahead of it (see account_out in task.c). */
#define WEFT__NOW_MAX_LAG_NS ((int64_t)2 * 1000000)

/* ------------------------------------------------------------ stacks */

/* What only a started task needs.  It lives in its stack's descriptor, so
 * a task that has not started (or has finished) costs only its handle
 * (184 bytes instead of 272). */
typedef struct weft__task_run {
    weft_task *task;         /* the task (wait lists link run states) */
    weft_timer timer;        /* the task's own timer, for timed waits */
    weft__list wait_link;    /* the fd / signal wait list it is on */
    int64_t last_run;        /* coarse monotonic ns of the last switch-out */
    int wake_code;           /* what the waker said */
    int timer_code;          /* what the task's timer says when it fires */
    int wait_fd;             /* for dumps: the fd / signal waited on */
    int wait_events;
    weft_scope *scopes;      /* innermost deadline scope (not hidden by a shield) */
    void *tsan_fiber;
} weft__task_run;

/* A task stack.  The descriptor lives in the top bytes of the mapping, in
 * the page every task touches anyway.  Layout, low to high:
 *   [guard region][usable stack ... [weft__stack]] */
typedef struct weft__stack {
    weft__task_run run;      /* the state of the task running on it */
    void *map;               /* start of the mapping (guard region) */
    size_t map_size;
    size_t usable;           /* bytes from the end of the guard to `top` */
    char *top;               /* initial stack pointer (16-byte aligned) */
    struct weft__stack *next; /* cache link */
    unsigned valgrind_id;
} weft__stack;

typedef struct weft__stack_cache {
    weft__stack *head;
    size_t count;
    size_t stack_size;       /* usable size of the cached stacks */
} weft__stack_cache;

weft__stack *weft__stack_get(weft_loop *loop, size_t usable);
void weft__stack_put(weft_loop *loop, weft__stack *stack);
void weft__stack_cache_trim(weft_loop *loop, size_t keep, size_t max_unmaps);
/* Unmap every cached stack (the loop ends). */
void weft__stack_cache_free(weft_loop *loop);
size_t weft__stack_guard_size(void);
const char *weft__stack_guard_kind(void);

/* ------------------------------------------------------------ tasks */

enum weft__task_state {
    WEFT__NEW,        /* spawned, never ran, no stack yet */
    WEFT__READY,      /* in the run queue */
    WEFT__RUNNING,
    WEFT__SUSPENDED,  /* waiting; woken by weft__wake */
    WEFT__DONE,
};

/* What a suspended task waits on, for dumps and the detector. */
enum weft__wait_kind {
    WEFT__WAIT_NONE,
    WEFT__WAIT_SLEEP,
    WEFT__WAIT_FD,
    WEFT__WAIT_JOIN,
    WEFT__WAIT_SIGNAL,
    WEFT__WAIT_OTHER,
};

enum weft__timer_kind {
    WEFT__TIMER_USER = 0,
    WEFT__TIMER_TASK = 1,   /* a task's own timer: wakes it with timer_code */
};

struct weft_task {
    void *sp;                   /* saved stack pointer while switched out */
    weft__stack *stack;         /* NULL until the task first runs */
    weft_loop *loop;
    weft_task_fn fn;
    void *arg;
    weft_task *next_ready;      /* run queue link */
    uint32_t ready_seq;         /* when it was queued: FIFO across both queues */
    uint8_t state;
    uint8_t wait_kind;
    bool cancelled;
    bool detached;
    uint8_t cancel_cause;       /* weft_cancel_cause of the first cancel */
    int shield_depth;
    int status;                 /* the return value, once DONE */
    /* Operations left in the cooperative budget (weft_set_coop_budget)
     * before one yields; refilled whenever the task waits (weft__wait) or
     * yields for the budget.  (In what was padding: the handle stays 184
     * bytes.) */
    uint32_t coop_left;
    const void *wait_obj;       /* for dumps: the task joined, ... */
    /* WEFT__WAIT_OTHER: describes wait_obj for dumps (sync primitives) */
    void (*wait_describe)(const weft_task *t, char *buf, size_t n);
    int64_t deadline;           /* from shields (later: deadline scopes) */
    size_t stack_size;          /* requested usable size */
    weft_task *joiner;
    struct weft_group *group;   /* the group owning this child, or NULL */
    size_t group_index;
    weft__list all_link;        /* loop->tasks while not DONE */
    char *errmsg;               /* lazily allocated message buffer */
    int errcode;                /* weft_errcode: the code that went with errmsg */
    char name[WEFT_TASK_NAME_MAX];
};

/* ------------------------------------------------------------ fds */

typedef struct weft__fd {
    uint8_t registered;   /* added to epoll */
    uint8_t ready;        /* edges seen while nobody waited (WEFT_READABLE|WRITABLE) */
    uint8_t unpollable;   /* regular file: always ready */
    uint8_t closed;       /* sticky: the peer hung up (READABLE) or an error (both) */
    weft__list waiters;   /* tasks (wait_link), each with its wait_events */
    void (*watch)(void *arg); /* weft__fd_watch: called when readable */
    void *watch_arg;
} weft__fd;

/* ------------------------------------------------------------ timers */

typedef struct weft__heap_entry {
    int64_t when;
    uint64_t seq;
    weft_timer *timer;
} weft__heap_entry;

/* ------------------------------------------------------------ posted calls */

typedef struct weft__post {
    struct weft__post *next;
    bool heap;          /* allocated by weft_loop_post: freed after the call */
    void (*fn)(void *);
    void *arg;
} weft__post;

/* ------------------------------------------------------------ the loop */

struct weft_loop {
    weft_task *current;            /* NULL while the loop itself runs */
    void *sched_sp;                /* the loop context's saved stack pointer */
    weft_task *rq_head, *rq_tail;  /* started tasks ready to run (FIFO) */
    weft_task *nq_head, *nq_tail;  /* spawned tasks not started yet (FIFO) */
    uint32_t ready_seq;            /* next weft_task.ready_seq (wraps) */
    size_t nstarted;               /* tasks with a stack, not finished */
    size_t start_limit;            /* above it, started tasks go first */
    unsigned started_picks;        /* started tasks taken ahead of new ones */
    unsigned runs_since_poll;
    /* What a task's coop_left is refilled to when it waits: the
     * cooperative budget, 0 when it is off (the counter then wraps and
     * meets 0 again only after 2^32 operations). */
    uint32_t coop_refill;
    weft_task *deferred;           /* yielded for its budget: queued after the poll */
    int64_t polled_at;             /* coarse ns of the last poll phase */
    int64_t now;                   /* cached CLOCK_MONOTONIC: every iteration, a
                                    * lagging switch, every weft_now() */
    size_t nalive;                 /* tasks not DONE */
    weft__list tasks;              /* tasks not DONE, in spawn order */
    weft__list finished;           /* DONE, not yet joined nor detached */
    weft_task *zombie;             /* finished task whose stack awaits release */
    weft_task *main_task;

    /* timers: a 4-ary min-heap on (when, seq) */
    weft__heap_entry *heap;
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* backend */
    int epfd;
    weft__fd *fds;
    int nfds;
    unsigned io_waiters;           /* tasks waiting on fds or signals */

    /* cross-thread calls */
    int eventfd;
    pthread_mutex_t post_lock;
    weft__post *post_head, *post_tail;
    atomic_int post_pending;
    bool closed;                   /* under post_lock: no more posts */
    atomic_int holds;              /* weft_loop_hold: keep running without tasks */
    atomic_int refs;               /* weft_run's own + weft_loop_ref's */

    /* signals */
    int sigfd;
    sigset_t sigmask;              /* signals routed to sigfd */
    sigset_t sigpending;           /* read from sigfd, not yet taken */
    sigset_t saved_mask;           /* thread mask before the first wait */
    bool sigmask_changed;
    weft__list sig_waiters;

    /* stacks and task memory */
    weft__stack_cache stacks;
    /* Tasks that could not start (no stack): the first is logged, the rest
     * counted and summed up (weft__start_failures_flush). */
    bool start_failing;
    size_t start_fails;            /* not logged yet */
    int64_t start_fail_logged;     /* loop->now of the last line */
    char start_fail_msg[128];
    weft_task *free_tasks;
    void **task_slabs;
    size_t ntask_slabs, task_slabs_cap;

    /* slow-task detector and watchdog */
    _Atomic int64_t slow_ns;       /* 0 = off; read by the watchdog too */
    int64_t run_start;             /* coarse ns when the current task started running */
    atomic_ulong switches;         /* bumped on every switch, read by the watchdog */
    _Atomic(weft_task *) running;  /* like current, readable by the watchdog */
    pthread_t thread;
    pid_t tid;                     /* the loop thread's, for the watchdog */
    atomic_bool debug;             /* read by the watchdog too */
    unsigned long wd_switches;     /* watchdog thread only */
    int64_t wd_since;
    bool wd_reported;
    weft__list loops_link;         /* in the global list, for the gdb script */
    struct weft_loop *forgotten_next; /* a parent's loop forgotten after fork */

    /* sanitizers: the loop context's own stack */
    const void *asan_stack_bottom;
    size_t asan_stack_size;
    void *tsan_fiber;

    /* SIGSEGV alternate stack for the overflow report */
    void *altstack;
    stack_t saved_altstack;
};

extern _Thread_local weft_loop *weft__tls_loop;
/* Every running loop (for the watchdog and tools/weft-gdb.py). */
extern weft__list weft__loops;
extern pthread_mutex_t weft__loops_lock;

static inline weft_loop *weft__loop(void) { return weft__tls_loop; }

/* ------------------------------------------------------------ scheduling */

/* Make a suspended task ready with `code` as the result of its wait.  Does
 * nothing unless the task is SUSPENDED (a second wake loses). */
void weft__wake(weft_task *task, int code);

/* Suspend the current task until woken, or until `deadline` (the task's own
 * deadline from shields applies too).  Returns the wake code, `timeout_code`
 * when `deadline` passes first, -ETIMEDOUT when the shield's deadline
 * passes, -ECANCELED on cancellation (checked before suspending too).  The
 * caller takes itself off whatever wait list it joined. */
int weft__wait(weft_task *task, int64_t deadline, int timeout_code);

/* Loop context: run ready tasks until none is left or the poll is due. */
void weft__run_ready(weft_loop *loop);
/* The running state of a started task (it has a stack). */
static inline weft__task_run *weft__run(weft_task *t)
{
    return &t->stack->run;
}

/* The running task's budget is spent: refill it and yield once (through
 * the loop's poll and timers when they are due).  Nothing when the budget
 * is off. */
void weft__coop_exhausted(weft_task *t);
/* Loop context, after the poll and the timers: queue the task that yielded
 * for its budget, behind the tasks they woke. */
void weft__coop_requeue(weft_loop *loop);

/* Count an operation that has just completed without waiting (an fd read
 * or write that did not meet EAGAIN, a queue get or put, a free permit,
 * ...) against the running task's budget, and yield when it was the
 * budget's last: a decrement and a branch, no clock read.  Call it with
 * the operation done and its result in hand, where the task could have
 * suspended anyway. */
static inline void weft__coop_spend(weft_task *t)
{
    if (WEFT__UNLIKELY(--t->coop_left == 0))
        weft__coop_exhausted(t);
}

/* As weft__coop_spend, for code that has no task at hand: a no-op outside
 * a task (in posted calls, or with no loop). */
static inline void weft__coop_spend_here(void)
{
    weft_loop *loop = weft__tls_loop;
    weft_task *t = loop ? loop->current : NULL;
    if (t && WEFT__UNLIKELY(--t->coop_left == 0))
        weft__coop_exhausted(t);
}
uint32_t weft__coop_refill_default(void);

/* Whether any task is ready to run (started or new). */
bool weft__ready(const weft_loop *loop);
size_t weft__start_limit_default(void);
void weft__tasks_free_all(weft_loop *loop);
/* Log how many tasks could not start since the last line, if any. */
void weft__start_failures_flush(weft_loop *loop);
/* In a child process after fork: close the inherited loop's own fds and
 * forget it (the child has no loop; its memory is the parent's copy).
 * Runs from weft's pthread_atfork child handler. */
void weft__loop_forget_after_fork(void);

/* Whether a cancellation is visible to `task` (not shielded). */
static inline bool weft__cancel_visible(const weft_task *t)
{
    return t->cancelled && t->shield_depth == 0;
}

/* 0, or -EINVAL (message set) for options weft_spawn would refuse. */
int weft__task_opts_check(const weft_task_opts *opts);

/* The task's own deadline (t->deadline) has just failed a suspension
 * point with -ETIMEDOUT: record it in the scopes whose deadline that is. */
void weft__scopes_fired(weft_task *t);
/* For a call that must not start once its time is up (the pools): sets
 * *deadline to `timeout_ms` from now (0: WEFT_NO_DEADLINE) and tells whether
 * it or the task's own deadline has passed by the clock (the loop's cached
 * time may lag), marking the fired scopes in the second case. */
bool weft__call_expired(weft_task *t, int64_t timeout_ms, int64_t *deadline);

/* Cancel `task` with `cause` (the first cause is kept). */
void weft__cancel(weft_task *task, weft_cancel_cause cause);

/* A child of a group has finished (called by the task's end). */
void weft__group_child_done(struct weft_group *g, weft_task *task);

/* The current task, or NULL with the error set to WEFT_ENOTASK. */
/* The calling task; outside a task NULL, with WEFT_ENOTASK and a message
 * naming `fn` set.  Inline: every suspension point starts with it. */
weft_task *weft__no_task(const char *fn);
static inline weft_task *weft__require_task(const char *fn)
{
    weft_loop *loop = weft__tls_loop;
    weft_task *t = loop ? loop->current : NULL;
    return WEFT__LIKELY(t != NULL) ? t : weft__no_task(fn);
}

int64_t weft__clock_ns(void);
/* The coarse clock costs a few nanoseconds (no TSC read) and ticks every
 * few milliseconds: enough to time task runs against a 100 ms threshold. */
static inline int64_t weft__coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ errors */

/* Record `code` and a formatted message for weft_errmsg; returns code. */
int weft__seterr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the message for a wait that failed with `rc` and return rc: what
 * waited and for what, and for a timeout how long it waited (since
 * `started`, weft__clock_ns) and whether an enclosing deadline (a scope,
 * a shield) was the one that passed rather than the call's own `deadline`:
 * "weft_sem_acquire: timed out after 50 ms waiting for a permit of
 * semaphore 0x...".  Not "Connection timed out". */
int weft__wait_failed(int rc, const char *fn, int64_t started, int64_t deadline,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------------------ subsystems */

void weft__fds_free(weft_loop *loop);
void weft__timers_run(weft_loop *loop);
int64_t weft__timers_next(const weft_loop *loop);
void weft__timers_free(weft_loop *loop);

/* weft_wait_fd; `fresh`: the caller just saw EAGAIN, so a remembered edge
 * for these events is stale and is dropped. */
int weft__wait_fd(int fd, int events, int64_t deadline, bool fresh);

/* A read just emptied (or a write filled) the socket: every edge remembered
 * for `events` so far is spent.  Does not touch the sticky hang-up. */
void weft__fd_consumed(int fd, int events);

/* Call fn(arg) on the loop (between tasks; it must not suspend) whenever
 * `fd` becomes readable, with no task waiting; a watch does not keep the
 * loop running.  weft_fd_forget / weft_close end it.  0 or -errno. */
int weft__fd_watch(int fd, void (*fn)(void *arg), void *arg);

/* Readiness of `fd` reported by the backend: wake its waiters. */
void weft__fd_dispatch(weft_loop *loop, int fd, uint32_t events);

void weft__posts_run(weft_loop *loop);
/* weft_loop_post with caller-owned storage: no allocation.  The node must
 * stay valid until node->fn runs (which may free it).  From any thread. */
int weft__post_node(weft_loop *loop, weft__post *node);
/* No task is left: refuse posts from now on unless a hold keeps the loop
 * running.  Returns whether the loop is closed. */
bool weft__posts_close(weft_loop *loop);
int weft__signals_watch_quit(weft_loop *loop);
void weft__signals_dispatch(weft_loop *loop);
void weft__signals_close(weft_loop *loop);

/* Backtraces read from another thread (backtrace.c).  The system call the
 * thread `tid` is blocked in (its number, with its stack pointer and the
 * instruction after the call), -1 when it is not in one (running), -2 when
 * that cannot be read. */
int weft__thread_syscall(pid_t tid, uintptr_t *sp, uintptr_t *pc);
/* Copy `n` bytes at `src` with a system call (process_vm_readv): false
 * instead of a crash when the memory is gone, and no sanitizer sees the
 * read of memory another thread owns. */
bool weft__read_mem(void *dst, uintptr_t src, size_t n);
/* The return addresses found on a stack between `sp` and `top` (a scan: a
 * stale one may show up between live frames). */
int weft__scan_stack(uintptr_t sp, uintptr_t top, void **frames, int max);
/* "function+0xoff (file+0xoff)" for a code address, from the ELF symbol
 * tables of the loaded files (no -rdynamic needed); the file offset is what
 * addr2line -e file takes.  The symbolizer keeps the files it opened mapped
 * until freed. */
typedef struct weft__symbolizer weft__symbolizer;
weft__symbolizer *weft__symbolizer_new(void);
void weft__symbolizer_free(weft__symbolizer *s);
void weft__symbolize(weft__symbolizer *s, void *addr, char *buf, size_t n);

/* Memory another thread owns is read without the sanitizers' checks. */
#if defined(__clang__) || defined(__GNUC__)
#define WEFT__NO_SANITIZE __attribute__((no_sanitize("address", "thread", "undefined")))
#else
#define WEFT__NO_SANITIZE
#endif

void weft__debug_loop_start(weft_loop *loop);
/* fork handlers: the watchdog's state across a fork (the child has none). */
void weft__debug_fork_prepare(void);
void weft__debug_fork_parent(void);
void weft__debug_fork_child(void);
void weft__debug_loop_stop(weft_loop *loop);
void weft__report_slow(weft_loop *loop, weft_task *task, int64_t ran_ns);
void weft__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t weft__slow_default_ns(void);
bool weft__debug_default(void);

int weft__overflow_install(weft_loop *loop);
void weft__overflow_uninstall(weft_loop *loop);

/* the context switch (switch_*.S / switch_ucontext.c) */
void weft__switch(void **save_sp, void *load_sp);
void *weft__context_init(char *top, size_t usable, void (*entry)(void *), void *arg);

#endif
