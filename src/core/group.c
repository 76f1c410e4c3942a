/* SPDX-License-Identifier: MIT */
/* Task groups (collect / fail-fast), bounded fan-out, wait_for and
 * deadline scopes: structured concurrency over tasks. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core-internal.h"

#define NO_CHILD SIZE_MAX

typedef struct weft__child {
    weft_task *task; /* NULL once finished */
    int status;
    char *message;   /* the child's weft_errmsg at its end, or NULL */
    size_t done_next; /* the next in the finished, unreaped FIFO */
} weft__child;

struct weft_group {
    weft_loop *loop;
    weft_group_policy policy;
    int64_t deadline;
    weft__child *children;
    size_t nchildren, cap;
    size_t running;
    bool cancelled;      /* weft_group_cancel, or failed fast */
    bool failed;         /* first_error is set */
    int first_error;
    size_t first_error_index;                 /* the child that failed first */
    char first_error_name[WEFT_TASK_NAME_MAX]; /* and its name */
    weft_task *waiter;   /* the task in weft_group_wait or weft_group_next */
    bool waiter_next;    /* it is in weft_group_next: wake it at every end */
    /* Children that have finished and weft_group_next has not returned
     * yet, in the order they finished (linked by done_next). */
    size_t done_head, done_tail;
};

weft_group *weft_group_new(const weft_group_opts *opts)
{
    weft_loop *loop = weft__loop();
    if (!loop) {
        weft__seterr(WEFT_ENOLOOP, "weft_group_new: no weft loop runs on this thread");
        return NULL;
    }
    weft_group *g = calloc(1, sizeof *g);
    if (!g) {
        weft__seterr(-ENOMEM, "weft_group_new: out of memory");
        return NULL;
    }
    g->loop = loop;
    g->deadline = WEFT_NO_DEADLINE;
    g->done_head = g->done_tail = NO_CHILD;
    if (opts && opts->policy != WEFT_GROUP_COLLECT && opts->policy != WEFT_GROUP_FAIL_FAST) {
        free(g);
        weft__seterr(-EINVAL, "weft_group_new: opts.policy %d is neither WEFT_GROUP_COLLECT "
                              "nor WEFT_GROUP_FAIL_FAST", (int)opts->policy);
        return NULL;
    }
    if (opts) {
        g->policy = opts->policy;
        if (opts->timeout_ms)
            g->deadline = weft_deadline_ms(opts->timeout_ms);
    }
    return g;
}

static void cancel_running(weft_group *g, weft_cancel_cause cause)
{
    for (size_t i = 0; i < g->nchildren; i++)
        if (g->children[i].task)
            weft__cancel(g->children[i].task, cause);
}

void weft__group_child_done(weft_group *g, weft_task *t)
{
    weft__child *c = &g->children[t->group_index];
    c->task = NULL;
    c->status = t->status;
    if (t->errmsg && t->errmsg[0])
        c->message = strdup(t->errmsg);
    t->group = NULL;
    g->running--;
    size_t i = t->group_index;
    c->done_next = NO_CHILD;
    if (g->done_tail == NO_CHILD)
        g->done_head = i;
    else
        g->children[g->done_tail].done_next = i;
    g->done_tail = i;
    if (t->status < 0 && !g->failed) {
        g->failed = true;
        g->first_error = t->status;
        g->first_error_index = t->group_index;
        memcpy(g->first_error_name, t->name, sizeof g->first_error_name);
        if (g->policy == WEFT_GROUP_FAIL_FAST) {
            g->cancelled = true;
            cancel_running(g, WEFT_CANCEL_SIBLING_FAILED);
        }
    }
    if (g->waiter && (g->running == 0 || g->waiter_next))
        weft__wake(g->waiter, 0);
}

int weft_group_spawn_named(weft_group *g, weft_task_fn fn, void *arg,
                           const weft_task_opts *opts, const char *default_name)
{
    if (!g || !fn)
        return weft__seterr(-EINVAL, "weft_group_spawn: NULL %s", g ? "function" : "group");
    if (weft__loop() != g->loop)
        return weft__seterr(-EINVAL, "weft_group_spawn: the group belongs to another "
                                     "thread's loop");
    if (g->cancelled)
        return weft__seterr(-ECANCELED, "weft_group_spawn: the group is %s",
                            g->failed ? "failing fast" : "cancelled");
    if (g->nchildren == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        weft__child *c = realloc(g->children, cap * sizeof *c);
        if (!c)
            return weft__seterr(-ENOMEM, "weft_group_spawn: out of memory");
        g->children = c;
        g->cap = cap;
    }
    int rc = weft__task_opts_check(opts);
    if (rc < 0)
        return rc;
    weft_task *t = weft_spawn_named(fn, arg, opts, default_name);
    if (!t) {
        char why[256]; /* weft_errmsg's buffer is the one written */
        snprintf(why, sizeof why, "%s", weft_errmsg());
        return weft__seterr(weft_errcode(), "weft_group_spawn: %s", why);
    }
    size_t i = g->nchildren++;
    g->children[i] = (weft__child){.task = t};
    t->group = g;
    t->group_index = i;
    t->detached = true; /* the group keeps the status, the task frees itself */
    if (g->deadline < t->deadline)
        t->deadline = g->deadline;
    g->running++;
    return (int)i;
}

/* Wait, shielded, until no child runs. */
static void wait_all_shielded(weft_group *g, weft_task *self)
{
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    while (g->running) {
        g->waiter = self;
        self->wait_kind = WEFT__WAIT_OTHER;
        self->wait_obj = g;
        self->wait_describe = NULL;
        weft__wait(self, WEFT_NO_DEADLINE, 0);
        g->waiter = NULL;
    }
    weft_shield_end(&sh);
}

int weft_group_wait_until(weft_group *g, int64_t deadline)
{
    weft_task *self = weft__require_task("weft_group_wait");
    if (!self)
        return WEFT_ENOTASK;
    if (!g)
        return weft__seterr(-EINVAL, "weft_group_wait: NULL group");
    if (g->waiter)
        return weft__seterr(-EBUSY, "weft_group_wait: another task waits on this group");
    if (self->group == g)
        /* It would wait for itself: forever, and even a cancellation
         * could not end it (the children are waited for shielded). */
        return weft__seterr(-EDEADLK, "weft_group_wait: task '%s' cannot wait for its own "
                                      "group", self->name);
    int rc = 0;
    int64_t started = weft__clock_ns();
    while (g->running) {
        g->waiter = self;
        self->wait_kind = WEFT__WAIT_OTHER;
        self->wait_obj = g;
        self->wait_describe = NULL;
        rc = weft__wait(self, deadline, -ETIMEDOUT);
        g->waiter = NULL;
        if (rc < 0)
            break;
    }
    if (rc < 0 && g->running) {
        /* The caller gives up: no child may outlive the wait. */
        size_t running = g->running;
        g->cancelled = true;
        cancel_running(g, rc == -ETIMEDOUT ? WEFT_CANCEL_DEADLINE : WEFT_CANCEL_PARENT);
        wait_all_shielded(g, self);
        return weft__wait_failed(rc, "weft_group_wait", started, deadline,
                                 "%zu running child%s (cancelled; all have finished now)",
                                 running, running == 1 ? "" : "ren");
    }
    /* The first failure, in order of finishing, among the children that
     * weft_group_next has not returned: those it returned were handed to
     * the caller with their status.  Its name is known when it is the
     * group's first failure (handles are gone once children finish). */
    for (size_t i = g->done_head; i != NO_CHILD; i = g->children[i].done_next) {
        const weft__child *c = &g->children[i];
        if (c->status >= 0)
            continue;
        bool named = g->failed && i == g->first_error_index;
        return weft__seterr(c->status, "weft_group_wait: child %zu%s%s%s failed first: %s%s%.150s",
                            i, named ? " '" : "", named ? g->first_error_name : "",
                            named ? "'" : "", weft_strerror(c->status),
                            c->message ? ": " : "", c->message ? c->message : "");
    }
    return 0;
}

int weft_group_wait(weft_group *g) { return weft_group_wait_until(g, WEFT_NO_DEADLINE); }

static void describe_next(const weft_task *t, char *buf, size_t n)
{
    const weft_group *g = t->wait_obj;
    snprintf(buf, n, "group %p: the next of %zu running children", (const void *)g, g->running);
}

int weft_group_next_until(weft_group *g, int *status, const char **message, int64_t deadline)
{
    weft_task *self = weft__require_task("weft_group_next");
    if (!self)
        return WEFT_ENOTASK;
    if (!g)
        return weft__seterr(-EINVAL, "weft_group_next: NULL group");
    if (g->loop != self->loop)
        return weft__seterr(-EINVAL, "weft_group_next: the group belongs to another "
                                     "thread's loop");
    if (self->group == g)
        return weft__seterr(-EDEADLK, "weft_group_next: task '%s' cannot wait for its own "
                                      "group", self->name);
    if (g->waiter)
        return weft__seterr(-EBUSY, "weft_group_next: another task waits on this group");
    int rc = 0;
    while (g->done_head == NO_CHILD && g->running) {
        g->waiter = self;
        g->waiter_next = true;
        self->wait_kind = WEFT__WAIT_OTHER;
        self->wait_obj = g;
        self->wait_describe = describe_next;
        rc = weft__wait(self, deadline, -ETIMEDOUT);
        g->waiter = NULL;
        g->waiter_next = false;
        if (rc < 0)
            break;
    }
    /* A child that finished wins over a cancellation or a deadline that
     * came in the same loop iteration: its result is never lost. */
    size_t i = g->done_head;
    if (i != NO_CHILD) {
        weft__child *c = &g->children[i];
        g->done_head = c->done_next;
        if (g->done_head == NO_CHILD)
            g->done_tail = NO_CHILD;
        if (status)
            *status = c->status;
        if (message)
            *message = c->message ? c->message : "";
        return (int)i;
    }
    if (rc < 0)
        return weft__seterr(rc, "weft_group_next: %s; children still running: %zu",
                            weft_strerror(rc), g->running);
    return weft__seterr(-ECHILD, "weft_group_next: no child left (%zu spawned, all returned)",
                        g->nchildren);
}

int weft_group_next(weft_group *g, int *status, const char **message)
{
    return weft_group_next_until(g, status, message, WEFT_NO_DEADLINE);
}

void weft_group_cancel(weft_group *g)
{
    if (!g)
        return;
    g->cancelled = true;
    cancel_running(g, WEFT_CANCEL_GROUP);
}

size_t weft_group_size(const weft_group *g) { return g ? g->nchildren : 0; }
size_t weft_group_running(const weft_group *g) { return g ? g->running : 0; }

int weft_group_status(const weft_group *g, size_t index, int *status, const char **message)
{
    if (!g)
        return weft__seterr(-EINVAL, "weft_group_status: NULL group");
    if (index >= g->nchildren)
        return weft__seterr(-EINVAL, "weft_group_status: no child %zu (the group has %zu)",
                            index, g->nchildren);
    const weft__child *c = &g->children[index];
    if (c->task)
        return -EBUSY;
    if (status)
        *status = c->status;
    if (message)
        *message = c->message ? c->message : "";
    return 0;
}

void weft_group_free(weft_group *g)
{
    if (!g)
        return;
    if (g->running) {
        if (g->loop->debug)
            weft__log("weft: group freed with %zu running children: cancelled and detached "
                      "(wait for a group before freeing it)\n", g->running);
        for (size_t i = 0; i < g->nchildren; i++) {
            weft_task *t = g->children[i].task;
            if (t) {
                t->group = NULL;
                weft__cancel(t, WEFT_CANCEL_GROUP);
            }
        }
    }
    for (size_t i = 0; i < g->nchildren; i++)
        free(g->children[i].message);
    free(g->children);
    free(g);
}

/* ------------------------------------------------------------ weft_map */

typedef struct map_state {
    weft_task_fn fn;
    void *const *args;
    size_t n, next;
    int *statuses;
    int first_error;
    size_t first_error_index;
} map_state;

static int map_worker(void *arg)
{
    map_state *m = arg;
    while (m->next < m->n && !weft_cancelled()) {
        size_t i = m->next++;
        int st = m->fn(m->args[i]);
        if (m->statuses)
            m->statuses[i] = st;
        if (st < 0 && (m->first_error == 0 || i < m->first_error_index)) {
            m->first_error = st;
            m->first_error_index = i;
        }
    }
    return 0;
}

int weft_map(weft_task_fn fn, void *const *args, size_t n, size_t limit, int *statuses)
{
    weft_task *self = weft__require_task("weft_map");
    if (!self)
        return WEFT_ENOTASK;
    if (!fn || (n && !args))
        return weft__seterr(-EINVAL, "weft_map: NULL %s", fn ? "argument array" : "function");
    if (limit == 0)
        limit = 10;
    if (limit > n)
        limit = n;
    map_state m = {.fn = fn, .args = args, .n = n, .statuses = statuses};
    if (statuses)
        for (size_t i = 0; i < n; i++)
            statuses[i] = -ECANCELED; /* what a call that never starts reports */
    weft_group *g = weft_group_new(NULL);
    if (!g)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < limit && rc >= 0; i++)
        rc = weft_group_spawn_named(g, map_worker, &m, NULL, "weft_map");
    if (rc < 0) {
        weft_group_cancel(g);
        wait_all_shielded(g, self);
    } else {
        rc = weft_group_wait(g);
    }
    weft_group_free(g);
    if (rc < 0)
        return rc == -ECANCELED || rc == -ETIMEDOUT || rc == -ENOMEM
                   ? weft__seterr(rc, "weft_map: %s", weft_strerror(rc))
                   : rc;
    return m.first_error;
}

/* ------------------------------------------------------------ wait_for */

int weft_wait_for_until(weft_task_fn fn, void *arg, int64_t deadline, int *status)
{
    weft_task *self = weft__require_task("weft_wait_for");
    if (!self)
        return WEFT_ENOTASK;
    if (!fn)
        return weft__seterr(-EINVAL, "weft_wait_for: NULL function");
    weft_task *child = weft_spawn_named(fn, arg, NULL, "weft_wait_for");
    if (!child) {
        char why[256]; /* weft_errmsg's buffer is the one written */
        snprintf(why, sizeof why, "%s", weft_errmsg());
        return weft__seterr(weft_errcode(), "weft_wait_for: %s", why);
    }
    int rc = weft_join_until(child, status, deadline);
    if (rc == 0)
        return 0;
    if (rc == -ETIMEDOUT && (child->state == WEFT__READY || child->state == WEFT__NEW)) {
        /* Photo finish: the child was woken (or is yet to start) in the
         * loop iteration in which the deadline passed, but the caller's
         * timer put the caller first in the run queue.  Let the tasks
         * already queued run once (the child is ahead of us): if it
         * finishes now, it finished in time.  A cancelled caller does not
         * yield (weft_yield fails at once). */
        weft_yield();
        if (child->state == WEFT__DONE)
            return weft_join(child, status); /* done: does not suspend */
    }
    /* Timed out or cancelled: stop the child and wait until it has
     * really finished, whatever the caller's own cancellation says. */
    weft__cancel(child, rc == -ETIMEDOUT ? WEFT_CANCEL_DEADLINE : WEFT_CANCEL_PARENT);
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    weft_join(child, status);
    weft_shield_end(&sh);
    return weft__seterr(rc, "weft_wait_for: %s", rc == -ETIMEDOUT
                                                     ? "timed out; the task was cancelled"
                                                     : weft_strerror(rc));
}

int weft_wait_for(weft_task_fn fn, void *arg, int64_t timeout_ms, int *status)
{
    return weft_wait_for_until(fn, arg, weft_deadline_ms(timeout_ms), status);
}

/* ------------------------------------------------------------ scopes */

void weft_scope_enter(weft_scope *scope, int64_t deadline)
{
    weft_task *t = weft_current();
    if (!scope)
        return;
    scope->deadline = deadline;
    scope->active = t != NULL;
    scope->fired = 0;
    scope->outer = NULL;
    if (!t)
        return;
    scope->saved = t->deadline;
    if (deadline < t->deadline)
        t->deadline = deadline;
    weft__task_run *run = weft__run(t);
    scope->outer = run->scopes;
    run->scopes = scope;
}

int weft_scope_exit(weft_scope *scope)
{
    if (!scope)
        return 0;
    weft_task *t = weft_current();
    if (t && scope->active) {
        t->deadline = scope->saved;
        weft__run(t)->scopes = scope->outer;
        scope->active = 0;
    }
    return scope->fired;
}

void weft__scopes_fired(weft_task *t)
{
    /* t->deadline is the earliest of the visible scopes' deadlines (and of
     * a shield's or group's): the scopes that have exactly that one fired.
     * An inner scope with a later deadline did not, even if its deadline
     * has passed by the time anyone asks. */
    for (weft_scope *sc = weft__run(t)->scopes; sc; sc = sc->outer)
        if (sc->deadline <= t->deadline)
            sc->fired = 1;
}

bool weft__call_expired(weft_task *t, int64_t timeout_ms, int64_t *deadline)
{
    *deadline = timeout_ms ? weft_deadline_ms(timeout_ms) : WEFT_NO_DEADLINE;
    int64_t now = weft_now(); /* fresh: the loop's cached time may lag */
    if (t->deadline <= now)
        weft__scopes_fired(t);
    return *deadline <= now || t->deadline <= now;
}

int weft_scope_fired(const weft_scope *scope)
{
    return scope && scope->fired;
}

int weft_scope_expired(const weft_scope *scope)
{
    return scope && scope->deadline != WEFT_NO_DEADLINE && weft_now() >= scope->deadline;
}
