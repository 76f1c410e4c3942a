/* SPDX-License-Identifier: MIT */
/* Calls posted to a loop from other threads: a locked list, and the
 * loop's eventfd written only when the list goes from empty to non-empty. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core-internal.h"

weft_loop *weft_loop_current(void) { return weft__loop(); }

int weft__post_node(weft_loop *loop, weft__post *p)
{
    p->next = NULL;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->closed) {
        pthread_mutex_unlock(&loop->post_lock);
        return -ESHUTDOWN;
    }
    bool was_empty = loop->post_head == NULL;
    if (loop->post_tail)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    atomic_store_explicit(&loop->post_pending, 1, memory_order_release);
    if (was_empty) {
        uint64_t one = 1;
        /* Under the lock: the loop cannot close the eventfd meanwhile. */
        ssize_t r = write(loop->eventfd, &one, sizeof one);
        (void)r; /* EAGAIN means the counter is already non-zero: awake anyway */
    }
    pthread_mutex_unlock(&loop->post_lock);
    return 0;
}

int weft_loop_post(weft_loop *loop, void (*fn)(void *arg), void *arg)
{
    if (!loop || !fn)
        return weft__seterr(-EINVAL, "weft_loop_post: NULL %s", loop ? "function" : "loop");
    weft__post *p = malloc(sizeof *p);
    if (!p)
        return weft__seterr(-ENOMEM, "weft_loop_post: out of memory");
    p->fn = fn;
    p->arg = arg;
    p->heap = true;
    int rc = weft__post_node(loop, p);
    if (rc < 0)
        free(p);
    return rc;
}

void weft__posts_run(weft_loop *loop)
{
    if (!atomic_load_explicit(&loop->post_pending, memory_order_acquire))
        return;
    pthread_mutex_lock(&loop->post_lock);
    weft__post *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    atomic_store_explicit(&loop->post_pending, 0, memory_order_relaxed);
    pthread_mutex_unlock(&loop->post_lock);
    while (p) {
        weft__post *next = p->next;
        bool heap = p->heap;
        p->fn(p->arg); /* may free a caller-owned node: not touched after */
        if (heap)
            free(p);
        p = next;
    }
}

bool weft__posts_close(weft_loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    if (!loop->closed && atomic_load_explicit(&loop->holds, memory_order_relaxed) == 0)
        loop->closed = true;
    bool closed = loop->closed;
    pthread_mutex_unlock(&loop->post_lock);
    return closed;
}

weft_loop *weft_loop_ref(weft_loop *loop)
{
    if (!loop) {
        weft__seterr(-EINVAL, "weft_loop_ref: NULL loop");
        return NULL;
    }
    atomic_fetch_add_explicit(&loop->refs, 1, memory_order_relaxed);
    return loop;
}

void weft_loop_unref(weft_loop *loop)
{
    if (!loop)
        return;
    /* The last reference frees what weft_run left: the lock and the struct
     * (weft_run drops its own reference after closing everything else). */
    if (atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_acq_rel) == 1) {
        pthread_mutex_destroy(&loop->post_lock);
        free(loop);
    }
}

int weft_loop_hold(weft_loop *loop)
{
    if (!loop)
        return weft__seterr(-EINVAL, "weft_loop_hold: NULL loop");
    pthread_mutex_lock(&loop->post_lock);
    bool closed = loop->closed;
    if (!closed)
        atomic_fetch_add_explicit(&loop->holds, 1, memory_order_relaxed);
    pthread_mutex_unlock(&loop->post_lock);
    if (closed)
        return weft__seterr(-ESHUTDOWN, "weft_loop_hold: the loop has finished");
    return 0;
}

int weft_loop_release(weft_loop *loop)
{
    if (!loop)
        return weft__seterr(-EINVAL, "weft_loop_release: NULL loop");
    pthread_mutex_lock(&loop->post_lock);
    int holds = atomic_load_explicit(&loop->holds, memory_order_relaxed);
    if (holds > 0) {
        atomic_store_explicit(&loop->holds, holds - 1, memory_order_relaxed);
        if (holds == 1 && !loop->closed) {
            /* The loop may sleep with no task left: wake it to finish.  Under
             * the lock: it cannot close the eventfd meanwhile. */
            uint64_t one = 1;
            ssize_t r = write(loop->eventfd, &one, sizeof one);
            (void)r;
        }
    }
    pthread_mutex_unlock(&loop->post_lock);
    if (holds <= 0)
        return weft__seterr(-EINVAL, "weft_loop_release: the loop is not held");
    return 0;
}
