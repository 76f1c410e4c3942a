/* SPDX-License-Identifier: MIT */
/*
 * Timers: a 4-ary min-heap of (deadline, sequence) in one array.  The
 * sequence number makes equal deadlines fire in the order they were armed.
 * A 4-ary heap is half as deep as a binary one and its four children share
 * one or two cache lines, which matters at a million timers.  Each timer
 * knows its slot, so stopping one is O(log n).
 */
#include <errno.h>
#include <stdlib.h>

#include "core-internal.h"

static inline bool entry_less(const weft__heap_entry *a, const weft__heap_entry *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void place(weft_loop *loop, uint32_t i, weft__heap_entry e)
{
    loop->heap[i] = e;
    e.timer->heap_index = i + 1;
}

static void sift_up(weft_loop *loop, uint32_t i, weft__heap_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!entry_less(&e, &loop->heap[parent]))
            break;
        place(loop, i, loop->heap[parent]);
        i = parent;
    }
    place(loop, i, e);
}

static void sift_down(weft_loop *loop, uint32_t i, weft__heap_entry e)
{
    uint32_t n = loop->heap_len;
    for (;;) {
        uint32_t c = 4 * i + 1;
        if (c >= n)
            break;
        uint32_t best = c;
        uint32_t end = c + 4 < n ? c + 4 : n;
        for (uint32_t k = c + 1; k < end; k++)
            if (entry_less(&loop->heap[k], &loop->heap[best]))
                best = k;
        if (!entry_less(&loop->heap[best], &e))
            break;
        place(loop, i, loop->heap[best]);
        i = best;
    }
    place(loop, i, e);
}

static void heap_remove_at(weft_loop *loop, uint32_t i)
{
    loop->heap[i].timer->heap_index = 0;
    uint32_t last = --loop->heap_len;
    if (i == last)
        return;
    weft__heap_entry e = loop->heap[last];
    if (i > 0 && entry_less(&e, &loop->heap[(i - 1) / 4]))
        sift_up(loop, i, e);
    else
        sift_down(loop, i, e);
}

void weft_timer_init(weft_timer *timer, weft_timer_fn fn, void *data)
{
    if (!timer)
        return;
    timer->deadline = WEFT_NO_DEADLINE;
    timer->fn = fn;
    timer->data = data;
    timer->heap_index = 0;
    timer->kind = WEFT__TIMER_USER;
}

int weft_timer_start(weft_timer *timer, int64_t deadline)
{
    weft_loop *loop = weft__loop();
    if (!loop)
        return weft__seterr(WEFT_ENOLOOP, "weft_timer_start: no weft loop runs on this thread");
    if (!timer)
        return weft__seterr(-EINVAL, "weft_timer_start: NULL timer");
    if (timer->kind == WEFT__TIMER_USER && !timer->fn)
        return weft__seterr(-EINVAL, "weft_timer_start: timer has no callback");
    if (timer->heap_index)
        heap_remove_at(loop, timer->heap_index - 1);
    if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 1024;
        if (cap <= loop->heap_cap)
            return weft__seterr(-ENOMEM, "weft_timer_start: too many timers");
        weft__heap_entry *h = realloc(loop->heap, (size_t)cap * sizeof *h);
        if (!h)
            return weft__seterr(-ENOMEM, "weft_timer_start: out of memory");
        loop->heap = h;
        loop->heap_cap = cap;
    }
    timer->deadline = deadline;
    weft__heap_entry e = {deadline, loop->timer_seq++, timer};
    sift_up(loop, loop->heap_len++, e);
    return 0;
}

void weft_timer_stop(weft_timer *timer)
{
    weft_loop *loop = weft__loop();
    if (!loop || !timer || !timer->heap_index)
        return;
    heap_remove_at(loop, timer->heap_index - 1);
}

int weft_timer_active(const weft_timer *timer)
{
    return timer && timer->heap_index != 0;
}

/* Fire every timer whose deadline is not after the loop's `now`. */
void weft__timers_run(weft_loop *loop)
{
    while (loop->heap_len && loop->heap[0].when <= loop->now) {
        weft_timer *t = loop->heap[0].timer;
        t->heap_index = 0;
        uint32_t last = --loop->heap_len;
        if (last)
            sift_down(loop, 0, loop->heap[last]);
        if (t->kind == WEFT__TIMER_TASK) {
            weft_task *task = t->data;
            weft__wake(task, weft__run(task)->timer_code);
        } else {
            t->fn(t);
        }
    }
}

/* The earliest deadline, or WEFT_NO_DEADLINE. */
int64_t weft__timers_next(const weft_loop *loop)
{
    return loop->heap_len ? loop->heap[0].when : WEFT_NO_DEADLINE;
}

void weft__timers_free(weft_loop *loop)
{
    for (uint32_t i = 0; i < loop->heap_len; i++)
        loop->heap[i].timer->heap_index = 0;
    free(loop->heap);
    loop->heap = NULL;
    loop->heap_len = loop->heap_cap = 0;
}
