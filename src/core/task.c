/* SPDX-License-Identifier: MIT */
/*
 * Tasks and the scheduler's switching.
 *
 * A suspending task switches straight to the next ready task when there is
 * one and the loop is not due to poll; otherwise it switches to the loop's
 * own context (the stack weft_run was called on), which polls, fires timers
 * and starts new tasks.  New tasks always start from the loop context, and
 * a finishing task always ends by switching there: a task's stack is taken
 * from the cache only when it first runs and goes back right after it
 * finishes, so a stream of short tasks reuses one warm stack.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core-internal.h"
#include "sanitizer.h"

#define WEFT__TASK_SLAB 256

/* ------------------------------------------------------------ clocks */

int64_t weft__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ run queue */

/* Two queues: tasks that have started (woken, yielding) and tasks that
 * have not run yet, both FIFO, merged by queueing order: together one FIFO.
 * Above the loop's start limit (tasks started and not finished), started
 * tasks go first and a new task starts only when none is ready or after
 * WEFT__NEW_EVERY of them: a spawn burst cannot turn into a burst of
 * stacks (a new task is what costs a fresh stack page), finishing work
 * hands its warm stack on, and neither kind starves the other.  See
 * docs/design.md, "Start order". */
#define WEFT__NEW_EVERY 8

static inline void queue_push(weft_task **head, weft_task **tail, weft_task *t)
{
    t->next_ready = NULL;
    if (*tail)
        (*tail)->next_ready = t;
    else
        *head = t;
    *tail = t;
}

static inline void rq_push(weft_loop *loop, weft_task *t)
{
    t->ready_seq = loop->ready_seq++;
    if (t->state == WEFT__NEW)
        queue_push(&loop->nq_head, &loop->nq_tail, t);
    else
        queue_push(&loop->rq_head, &loop->rq_tail, t);
}

/* The task the next pick takes, or NULL. */
static inline weft_task *rq_peek(const weft_loop *loop)
{
    weft_task *started = loop->rq_head, *fresh = loop->nq_head;
    if (!fresh || !started)
        return fresh ? fresh : started;
    if (loop->start_limit && loop->nstarted >= loop->start_limit)
        return loop->started_picks < WEFT__NEW_EVERY ? started : fresh;
    return (int32_t)(fresh->ready_seq - started->ready_seq) < 0 ? fresh : started;
}

static inline weft_task *rq_pop(weft_loop *loop)
{
    weft_task *t = rq_peek(loop);
    if (t == loop->nq_head) {
        loop->nq_head = t->next_ready;
        if (!loop->nq_head)
            loop->nq_tail = NULL;
        loop->started_picks = 0;
    } else {
        loop->rq_head = t->next_ready;
        if (!loop->rq_head)
            loop->rq_tail = NULL;
        if (loop->nq_head)
            loop->started_picks++;
    }
    return t;
}

bool weft__ready(const weft_loop *loop)
{
    return loop->rq_head || loop->nq_head;
}

void weft__wake(weft_task *t, int code)
{
    if (t->state != WEFT__SUSPENDED)
        return;
    t->state = WEFT__READY;
    weft__run(t)->wake_code = code;
    rq_push(t->loop, t);
}

/* ------------------------------------------------------------ switching */

/* Bookkeeping when the running context gives up the CPU: the slow-task
 * detector's clock, the task's "last ran" time, the watchdog's counter. */
static inline void account_out(weft_loop *loop, weft_task *from)
{
    int64_t t = weft__coarse_ns();
    /* The loop reads the precise clock once per iteration; when tasks keep
     * it busy for longer (a task that blocked, a long chain of switches),
     * refresh it here too, so timers fire on time and the cache (which
     * waits compare absolute deadlines with) never lags by more than a few
     * ms at a switch.  The coarse clock makes the check nearly free. */
    if (WEFT__UNLIKELY(t - loop->now > WEFT__NOW_MAX_LAG_NS))
        loop->now = weft__clock_ns();
    if (from) {
        int64_t slow = atomic_load_explicit(&loop->slow_ns, memory_order_relaxed);
        if (WEFT__UNLIKELY(slow && t - loop->run_start > slow))
            weft__report_slow(loop, from, t - loop->run_start);
        from->stack->run.last_run = t;
    }
    loop->run_start = t;
    /* Only this thread writes the counter: a relaxed load + store, no lock. */
    atomic_store_explicit(&loop->switches,
                          atomic_load_explicit(&loop->switches, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void set_running(weft_loop *loop, weft_task *t)
{
    loop->current = t;
    atomic_store_explicit(&loop->running, t, memory_order_relaxed);
}

/* Switch from the context whose stack pointer is saved in *save to `to`
 * (NULL: the loop context).  `exiting`: the current context never resumes. */
static inline void context_switch(weft_loop *loop, void **save, weft_task *to, bool exiting)
{
    void *load = to ? to->sp : loop->sched_sp;
#ifdef WEFT__ASAN
    void *fake = NULL;
    const void *bottom = to ? (const void *)(to->stack->top - to->stack->usable)
                            : loop->asan_stack_bottom;
    size_t size = to ? to->stack->usable : loop->asan_stack_size;
    __sanitizer_start_switch_fiber(exiting ? NULL : &fake, bottom, size);
#else
    (void)exiting;
#endif
#ifdef WEFT__TSAN
    __tsan_switch_to_fiber(to ? to->stack->run.tsan_fiber : loop->tsan_fiber, 0);
#endif
    weft__switch(save, load);
#ifdef WEFT__ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* The current task gives up the CPU; it has already put itself in the run
 * queue (yield) or on a wait list (SUSPENDED).  Returns when it runs again. */
static void suspend_current(weft_loop *loop, weft_task *self)
{
    account_out(loop, self);
    weft_task *next = rq_peek(loop);
    if (next == self && loop->runs_since_poll < WEFT__POLL_EVERY) {
        /* A yield with nobody else ready: carry on, but still count it, so
         * that a task spinning on weft_yield lets the loop poll and fire
         * timers every WEFT__POLL_EVERY yields. */
        rq_pop(loop);
        loop->runs_since_poll++;
        self->state = WEFT__RUNNING;
        return;
    }
    if (next && next->state != WEFT__NEW && loop->runs_since_poll < WEFT__POLL_EVERY) {
        rq_pop(loop);
        loop->runs_since_poll++;
        next->state = WEFT__RUNNING;
        set_running(loop, next);
        context_switch(loop, &self->sp, next, false);
    } else {
        set_running(loop, NULL);
        context_switch(loop, &self->sp, NULL, false);
    }
}

void weft__coop_exhausted(weft_task *t)
{
    weft_loop *loop = t->loop;
    if (loop->coop_refill == 0)
        return; /* the budget is off: the counter wrapped, 2^32 operations to go */
    t->state = WEFT__READY;
    if (weft__coarse_ns() - loop->polled_at < WEFT__COOP_POLL_NS) {
        /* The loop polled a moment ago: behind the ready tasks, no more. */
        rq_push(loop, t);
    } else {
        /* Through the loop's poll and timers before it runs again, and
         * behind the tasks they wake (as Tokio defers such a task): a task
         * that is always ready must neither delay a timer until the next
         * WEFT__POLL_EVERY nor run once more before the task the timer
         * woke.  Only the running task can get here, and it goes to the
         * loop context at once, so one slot is enough. */
        loop->deferred = t;
        loop->runs_since_poll = WEFT__POLL_EVERY;
    }
    t->coop_left = loop->coop_refill;
    suspend_current(loop, t);
}

void weft__coop_requeue(weft_loop *loop)
{
    weft_task *t = loop->deferred;
    if (t) {
        loop->deferred = NULL;
        rq_push(loop, t);
    }
}

int weft__wait(weft_task *t, int64_t deadline, int timeout_code)
{
    weft_loop *loop = t->loop;
    weft__task_run *run = weft__run(t);
    if (weft__cancel_visible(t)) {
        t->wait_kind = WEFT__WAIT_NONE;
        return -ECANCELED;
    }
    int64_t eff = deadline;
    int code = timeout_code;
    bool own = false; /* the task's deadline (scope, shield, group) applies */
    if (t->deadline < eff) {
        eff = t->deadline;
        code = -ETIMEDOUT;
        own = true;
    }
    if (eff != WEFT_NO_DEADLINE) {
        if (eff <= loop->now) {
            t->wait_kind = WEFT__WAIT_NONE;
            if (own)
                weft__scopes_fired(t);
            return code;
        }
        run->timer_code = code;
        if (weft_timer_start(&run->timer, eff) < 0) {
            t->wait_kind = WEFT__WAIT_NONE;
            return -ENOMEM;
        }
    }
    t->state = WEFT__SUSPENDED;
    /* The budget counts operations done without waiting.  (Not refilled
     * by weft_yield: a plain switch, ping-pong's, stays two instructions
     * shorter, and a task that yields on its own gives way anyway.) */
    t->coop_left = loop->coop_refill;
    suspend_current(loop, t);
    if (run->timer.heap_index)
        weft_timer_stop(&run->timer);
    else if (WEFT__UNLIKELY(own && run->wake_code == -ETIMEDOUT))
        weft__scopes_fired(t); /* woken by its timer, for the task's deadline */
    t->wait_kind = WEFT__WAIT_NONE;
    return run->wake_code;
}

/* ------------------------------------------------------------ task memory */

static weft_task *task_alloc(weft_loop *loop)
{
    if (!loop->free_tasks) {
        if (loop->ntask_slabs == loop->task_slabs_cap) {
            size_t cap = loop->task_slabs_cap ? loop->task_slabs_cap * 2 : 16;
            void **s = realloc(loop->task_slabs, cap * sizeof *s);
            if (!s)
                return NULL;
            loop->task_slabs = s;
            loop->task_slabs_cap = cap;
        }
        weft_task *slab = calloc(WEFT__TASK_SLAB, sizeof(weft_task));
        if (!slab)
            return NULL;
        loop->task_slabs[loop->ntask_slabs++] = slab;
        for (size_t i = 0; i < WEFT__TASK_SLAB; i++) {
            slab[i].next_ready = loop->free_tasks;
            loop->free_tasks = &slab[i];
        }
    }
    weft_task *t = loop->free_tasks;
    loop->free_tasks = t->next_ready;
    return t;
}

static void task_free(weft_loop *loop, weft_task *t)
{
    char *msg = t->errmsg;
    t->state = WEFT__DONE;
    t->fn = NULL; /* marks a freed handle */
    t->errmsg = msg; /* the buffer is reused by the next task */
    t->next_ready = loop->free_tasks;
    loop->free_tasks = t;
}

void weft__tasks_free_all(weft_loop *loop)
{
    for (size_t i = 0; i < loop->ntask_slabs; i++) {
        weft_task *slab = loop->task_slabs[i];
        for (size_t j = 0; j < WEFT__TASK_SLAB; j++)
            free(slab[j].errmsg);
        free(slab);
    }
    free(loop->task_slabs);
    loop->task_slabs = NULL;
    loop->ntask_slabs = loop->task_slabs_cap = 0;
    loop->free_tasks = NULL;
}

/* ------------------------------------------------------------ lifecycle */

static void task_finish(weft_loop *loop, weft_task *t, int status)
{
    t->status = status;
    t->state = WEFT__DONE;
    loop->nalive--;
    if (t->stack)
        loop->nstarted--;
    weft__list_remove(&t->all_link);
    if (!t->detached)
        weft__list_push_back(&loop->finished, &t->all_link);
    if (t->joiner)
        weft__wake(t->joiner, 0);
    if (t->group)
        weft__group_child_done(t->group, t);
}

static void task_entry(void *arg)
{
    weft_task *t = arg;
    weft_loop *loop = t->loop;
#ifdef WEFT__ASAN
    /* Tasks start from the loop context: learn its stack for later switches. */
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(NULL, &bottom, &size);
    if (!loop->asan_stack_bottom) {
        loop->asan_stack_bottom = bottom;
        loop->asan_stack_size = size;
    }
#endif
    int status = t->fn(t->arg);
    task_finish(loop, t, status);
    loop->zombie = t;
    account_out(loop, t);
    set_running(loop, NULL);
    context_switch(loop, &t->sp, NULL, true);
    __builtin_unreachable();
}

/* Loop context: give the stack of the task that just finished back. */
static void release_zombie(weft_loop *loop)
{
    weft_task *t = loop->zombie;
    loop->zombie = NULL;
#ifdef WEFT__TSAN
    __tsan_destroy_fiber(t->stack->run.tsan_fiber);
    t->stack->run.tsan_fiber = NULL;
#endif
    weft__stack_put(loop, t->stack);
    t->stack = NULL;
    if (t->detached)
        task_free(loop, t);
}

/* A task could not start.  When stacks cannot be mapped, every new task
 * fails the same way (under `ulimit -v`, hundreds of thousands in a row):
 * the first is logged, the others are counted and summed up in one line
 * when a task starts again, when the loop ends, or every second meanwhile. */
#define WEFT__START_FAIL_SUMMARY_NS ((int64_t)1000000000)

void weft__start_failures_flush(weft_loop *loop)
{
    if (loop->start_fails)
        weft__log("weft: %zu more task(s) could not start: %s\n", loop->start_fails,
                  loop->start_fail_msg);
    loop->start_fails = 0;
    loop->start_fail_logged = loop->now;
}

static void log_start_failure(weft_loop *loop, weft_task *t)
{
    snprintf(loop->start_fail_msg, sizeof loop->start_fail_msg, "%s", weft_errmsg());
    if (!loop->start_failing) {
        loop->start_failing = true;
        loop->start_fail_logged = loop->now;
        weft__log("weft: task '%s' could not start: %s (more such failures are counted, "
                  "not logged one by one)\n", t->name, loop->start_fail_msg);
        return;
    }
    loop->start_fails++;
    if (loop->now - loop->start_fail_logged >= WEFT__START_FAIL_SUMMARY_NS)
        weft__start_failures_flush(loop);
}

/* Loop context: give a new task its stack and first frame.  A task whose
 * stack cannot be mapped finishes at once with the error as its status. */
static bool task_prepare(weft_loop *loop, weft_task *t)
{
    t->stack = weft__stack_get(loop, t->stack_size);
    if (!t->stack) {
        int err = -ENOMEM;
        log_start_failure(loop, t);
        task_finish(loop, t, err);
        if (t->detached)
            task_free(loop, t);
        return false;
    }
    if (WEFT__UNLIKELY(loop->start_failing)) {
        weft__start_failures_flush(loop);
        loop->start_failing = false;
    }
    loop->nstarted++;
    weft__task_run *run = &t->stack->run;
    *run = (weft__task_run){.task = t};
    weft_timer_init(&run->timer, NULL, t);
    run->timer.kind = WEFT__TIMER_TASK;
    weft__list_init(&run->wait_link);
    t->sp = weft__context_init(t->stack->top, t->stack->usable, task_entry, t);
#ifdef WEFT__TSAN
    run->tsan_fiber = __tsan_create_fiber(0);
#endif
    return true;
}

/* Loop context: run ready tasks until none is left or the poll is due. */
void weft__run_ready(weft_loop *loop)
{
    while (weft__ready(loop) && loop->runs_since_poll < WEFT__POLL_EVERY) {
        weft_task *t = rq_pop(loop);
        loop->runs_since_poll++;
        if (t->state == WEFT__NEW && !task_prepare(loop, t))
            continue;
        t->state = WEFT__RUNNING;
        account_out(loop, NULL);
        set_running(loop, t);
        context_switch(loop, &loop->sched_sp, t, false);
        if (loop->zombie)
            release_zombie(loop);
    }
}

/* ------------------------------------------------------------ public API */

weft_task *weft__no_task(const char *fn)
{
    weft__seterr(WEFT_ENOTASK, "%s: not called from a weft task", fn);
    return NULL;
}

int weft__task_opts_check(const weft_task_opts *opts)
{
    if (opts && opts->stack_size &&
        (opts->stack_size < WEFT_STACK_MIN || opts->stack_size > ((size_t)1 << 32)))
        return weft__seterr(-EINVAL, "weft_spawn: opts.stack_size: stack size %zu outside "
                            "[%zu, 4 GiB]", opts->stack_size, WEFT_STACK_MIN);
    return 0;
}

weft_task *weft_spawn_named(weft_task_fn fn, void *arg, const weft_task_opts *opts,
                            const char *default_name)
{
    weft_loop *loop = weft__loop();
    if (!loop) {
        weft__seterr(WEFT_ENOLOOP, "weft_spawn: no weft loop runs on this thread");
        return NULL;
    }
    if (!fn) {
        weft__seterr(-EINVAL, "weft_spawn: NULL function");
        return NULL;
    }
    if (weft__task_opts_check(opts) < 0)
        return NULL;
    size_t stack_size = loop->stacks.stack_size;
    const char *name = default_name ? default_name : "task";
    if (opts) {
        if (opts->stack_size)
            stack_size = opts->stack_size;
        if (opts->name)
            name = opts->name;
    }
    weft_task *t = task_alloc(loop);
    if (!t) {
        weft__seterr(-ENOMEM, "weft_spawn: out of memory");
        return NULL;
    }
    char *msg = t->errmsg;
    memset(t, 0, offsetof(weft_task, name));
    t->errmsg = msg;
    if (msg)
        msg[0] = '\0';
    size_t n = strlen(name);
    if (n >= WEFT_TASK_NAME_MAX)
        n = WEFT_TASK_NAME_MAX - 1;
    memcpy(t->name, name, n);
    t->name[n] = '\0';
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    t->stack_size = stack_size;
    t->deadline = WEFT_NO_DEADLINE;
    t->coop_left = loop->coop_refill;
    t->state = WEFT__NEW;
    weft__list_push_back(&loop->tasks, &t->all_link);
    loop->nalive++;
    rq_push(loop, t);
    return t;
}

static int join_done(weft_loop *loop, weft_task *task, int *status)
{
    if (status)
        *status = task->status;
    weft__list_remove(&task->all_link); /* off loop->finished */
    if (!task->stack)
        task_free(loop, task);
    else
        task->detached = true; /* still the zombie: freed on release */
    return 0;
}

int weft_join_until(weft_task *task, int *status, int64_t deadline)
{
    weft_task *self = weft__require_task("weft_join");
    if (!self)
        return WEFT_ENOTASK;
    if (!task || !task->fn)
        return weft__seterr(-EINVAL, "weft_join: %s", task ? "invalid task handle"
                                                           : "NULL task");
    if (task == self)
        return weft__seterr(-EDEADLK, "weft_join: task '%s' cannot join itself", self->name);
    if (task->detached)
        return weft__seterr(-EINVAL, "weft_join: task '%s' is detached", task->name);
    weft_loop *loop = self->loop;
    if (task->state == WEFT__DONE)
        return join_done(loop, task, status);
    if (task->joiner)
        return weft__seterr(-EBUSY, "weft_join: task '%s' is already being joined", task->name);
    task->joiner = self;
    self->wait_kind = WEFT__WAIT_JOIN;
    self->wait_obj = task;
    int64_t started = weft__clock_ns();
    int rc = weft__wait(self, deadline, -ETIMEDOUT);
    task->joiner = NULL;
    if (task->state == WEFT__DONE)
        return join_done(loop, task, status);
    if (rc == 0)
        rc = -EINTR; /* cannot happen: only the task's end wakes a joiner with 0 */
    return weft__wait_failed(rc, "weft_join", started, deadline, "task '%s'", task->name);
}

int weft_join(weft_task *task, int *status)
{
    return weft_join_until(task, status, WEFT_NO_DEADLINE);
}

void weft_detach(weft_task *task)
{
    if (!task || !task->fn || task->detached)
        return;
    if (task->state == WEFT__DONE) {
        weft__list_remove(&task->all_link);
        if (!task->stack)
            task_free(task->loop, task);
        else
            task->detached = true;
        return;
    }
    task->detached = true;
}

void weft__cancel(weft_task *task, weft_cancel_cause cause)
{
    if (task->state == WEFT__DONE)
        return;
    if (!task->cancelled)
        task->cancel_cause = (uint8_t)cause;
    task->cancelled = true;
    if (task->state == WEFT__SUSPENDED && task->shield_depth == 0)
        weft__wake(task, -ECANCELED);
}

int weft_cancel(weft_task *task)
{
    if (!task || !task->fn)
        return weft__seterr(-EINVAL, "weft_cancel: %s", task ? "invalid task handle"
                                                             : "NULL task");
    weft__cancel(task, WEFT_CANCEL_EXPLICIT);
    return 0;
}

weft_cancel_cause weft_task_cancel_cause(const weft_task *task)
{
    return task && task->cancelled ? (weft_cancel_cause)task->cancel_cause : WEFT_CANCEL_NONE;
}

const char *weft_cancel_cause_name(weft_cancel_cause cause)
{
    switch (cause) {
    case WEFT_CANCEL_NONE: return "not cancelled";
    case WEFT_CANCEL_EXPLICIT: return "cancelled";
    case WEFT_CANCEL_DEADLINE: return "deadline passed";
    case WEFT_CANCEL_SIBLING_FAILED: return "sibling failed";
    case WEFT_CANCEL_GROUP: return "group cancelled";
    case WEFT_CANCEL_PARENT: return "waiter cancelled";
    }
    return "unknown";
}

bool weft_cancelled(void)
{
    weft_loop *loop = weft__loop();
    weft_task *t = loop ? loop->current : NULL;
    return t && weft__cancel_visible(t);
}

int weft_yield(void)
{
    weft_task *t = weft__require_task("weft_yield");
    if (!t)
        return WEFT_ENOTASK;
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_yield: task '%s' is cancelled", t->name);
    if (t->deadline <= t->loop->now) { /* a deadline scope (or shield) has expired */
        weft__scopes_fired(t);
        return weft__seterr(-ETIMEDOUT, "weft_yield: an enclosing deadline passed %lld ms ago",
                            (long long)((t->loop->now - t->deadline) / 1000000));
    }
    t->state = WEFT__READY;
    rq_push(t->loop, t);
    suspend_current(t->loop, t);
    return 0;
}

static _Atomic uint32_t coop_refill_setting = WEFT_COOP_BUDGET_DEFAULT;

uint32_t weft__coop_refill_default(void)
{
    return atomic_load_explicit(&coop_refill_setting, memory_order_relaxed);
}

void weft_set_coop_budget(unsigned n)
{
    uint32_t refill = n;
    atomic_store_explicit(&coop_refill_setting, refill, memory_order_relaxed);
    weft_loop *loop = weft__loop();
    if (loop) {
        loop->coop_refill = refill;
        /* The caller's own budget changes now; other tasks' at their next
         * suspension. */
        weft_task *t = loop->current;
        if (t && (t->coop_left > refill || refill == 0))
            t->coop_left = refill;
    }
}

unsigned weft_coop_budget(void)
{
    uint32_t refill = atomic_load_explicit(&coop_refill_setting, memory_order_relaxed);
    weft_loop *loop = weft__loop();
    if (loop)
        refill = loop->coop_refill;
    return refill;
}

int weft_coop_spend(void)
{
    weft_task *t = weft__require_task("weft_coop_spend");
    if (!t)
        return WEFT_ENOTASK;
    weft__coop_spend(t);
    return 0;
}

static atomic_size_t start_limit_setting = WEFT_START_LIMIT_DEFAULT;

size_t weft__start_limit_default(void)
{
    return atomic_load_explicit(&start_limit_setting, memory_order_relaxed);
}

void weft_set_start_limit(size_t n)
{
    atomic_store_explicit(&start_limit_setting, n, memory_order_relaxed);
    weft_loop *loop = weft__loop();
    if (loop)
        loop->start_limit = n;
}

weft_task *weft_current(void)
{
    weft_loop *loop = weft__loop();
    return loop ? loop->current : NULL;
}

const char *weft_task_name(const weft_task *task)
{
    return task ? task->name : "";
}

void weft_shield_begin(weft_shield *shield, int64_t timeout_ms)
{
    weft_loop *loop = weft__loop();
    weft_task *t = loop ? loop->current : NULL;
    if (!shield)
        return;
    if (!t) {
        shield->saved_depth = -1;
        return;
    }
    shield->saved_deadline = t->deadline;
    shield->saved_depth = t->shield_depth;
    /* Outer scopes are hidden: a timeout inside is never theirs. */
    shield->saved_scopes = weft__run(t)->scopes;
    weft__run(t)->scopes = NULL;
    t->shield_depth++;
    t->deadline = weft_deadline_ms(timeout_ms);
}

void weft_shield_end(weft_shield *shield)
{
    weft_loop *loop = weft__loop();
    weft_task *t = loop ? loop->current : NULL;
    if (!t || !shield || shield->saved_depth < 0)
        return;
    t->shield_depth = shield->saved_depth;
    t->deadline = shield->saved_deadline;
    weft__run(t)->scopes = shield->saved_scopes;
}
