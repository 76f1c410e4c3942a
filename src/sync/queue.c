/* SPDX-License-Identifier: MIT */
/*
 * A bounded FIFO queue.  Items and slots are promised, not handed over: a
 * put that finds a getter waiting stores the item and reserves it for that
 * getter, which dequeues it when it runs (a get does the same with a free
 * slot for a waiting putter).  A newcomer only sees unreserved items and
 * slots, so waiters are served first, and a woken waiter that was
 * cancelled before it ran simply passes its reservation to the next one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sync-internal.h"

static void describe_get(const weft_task *t, char *buf, size_t n)
{
    const weft_queue *q = t->wait_obj;
    snprintf(buf, n, "queue %p get (%zu/%zu items)", (const void *)q, q->len, q->capacity);
}

static void describe_put(const weft_task *t, char *buf, size_t n)
{
    const weft_queue *q = t->wait_obj;
    snprintf(buf, n, "queue %p put (%zu/%zu items)", (const void *)q, q->len, q->capacity);
}

static size_t free_items(const weft_queue *q) { return q->len - q->reserved_items; }
static size_t free_slots(const weft_queue *q)
{
    return q->capacity - q->len - q->reserved_slots;
}

/* Promise unreserved items to waiting getters, free slots to waiting
 * putters. */
static void promise_items(weft_queue *q)
{
    while (free_items(q) > 0 && weft__waitq_grant_first(&q->getters))
        q->reserved_items++;
}

static void promise_slots(weft_queue *q)
{
    while (!q->shut && free_slots(q) > 0 && weft__waitq_grant_first(&q->putters))
        q->reserved_slots++;
}

/* Shut down and drained: nothing will ever come to the getters still
 * waiting.  (While items remain, each is reserved for a woken getter --
 * else a waiting getter would have been promised it -- and a waiting
 * getter may still receive one that its getter, cancelled, passes on.) */
static void close_getters_if_drained(weft_queue *q)
{
    if (q->shut && q->len == 0)
        weft__waitq_wake_all(&q->getters, WEFT_ECLOSED);
}

static int push(weft_queue *q, void *item)
{
    if (q->len == q->ring_cap) {
        size_t cap = q->ring_cap * 2;
        if (cap > q->capacity)
            cap = q->capacity;
        void **r = malloc(cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        for (size_t i = 0; i < q->len; i++)
            r[i] = q->ring[(q->head + i) % q->ring_cap];
        free(q->ring);
        q->ring = r;
        q->ring_cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->len) % q->ring_cap] = item;
    q->len++;
    return 0;
}

static void *pop(weft_queue *q)
{
    void *item = q->ring[q->head];
    q->head = (q->head + 1) % q->ring_cap;
    q->len--;
    return item;
}

int weft_queue_init(weft_queue *q, size_t capacity)
{
    if (!q || capacity == 0 || capacity > SIZE_MAX / sizeof(void *) / 2)
        return weft__seterr(-EINVAL, "weft_queue_init: %s",
                            !q ? "NULL queue" : capacity == 0 ? "capacity must be at least 1"
                                                              : "capacity too large");
    q->ring_cap = capacity < 16 ? capacity : 16; /* grows up to capacity */
    q->ring = malloc(q->ring_cap * sizeof *q->ring);
    if (!q->ring)
        return weft__seterr(-ENOMEM, "weft_queue_init: out of memory");
    q->head = q->len = 0;
    q->capacity = capacity;
    q->reserved_items = q->reserved_slots = 0;
    q->shut = false;
    weft__list_init(&q->getters);
    weft__list_init(&q->putters);
    return 0;
}

/* Store `item` in a slot the caller may use; then serve waiting getters. */
static int put_now(weft_queue *q, void *item)
{
    int rc = push(q, item);
    if (rc < 0)
        return weft__seterr(rc, "weft_queue_put: out of memory");
    promise_items(q);
    return 0;
}

int weft_queue_try_put(weft_queue *q, void *item)
{
    if (!q)
        return weft__seterr(-EINVAL, "weft_queue_try_put: NULL queue");
    if (q->shut)
        return weft__seterr(WEFT_ECLOSED, "weft_queue_try_put: the queue is shut down");
    if (free_slots(q) == 0)
        return -EAGAIN;
    return put_now(q, item);
}

int weft_queue_put_until(weft_queue *q, void *item, int64_t deadline)
{
    int rc;
    weft_task *t = weft__sync_task(q, "weft_queue_put", &rc);
    if (!t)
        return rc;
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_queue_put: %s", weft_strerror(-ECANCELED));
    if (q->shut)
        return weft__seterr(WEFT_ECLOSED, "weft_queue_put: the queue is shut down");
    if (free_slots(q) > 0) {
        rc = put_now(q, item);
        if (rc == 0)
            weft__coop_spend(t);
        return rc;
    }
    weft__waiter w;
    int64_t started = weft__clock_ns();
    rc = weft__waitq_wait(&q->putters, &w, t, deadline, q, describe_put);
    if (!w.granted)
        return rc == WEFT_ECLOSED
                   ? weft__seterr(rc, "weft_queue_put: the queue is shut down")
                   : weft__wait_failed(rc, "weft_queue_put", started, deadline,
                                       "room in queue %p", (void *)q);
    q->reserved_slots--;
    if (q->shut)
        return weft__seterr(WEFT_ECLOSED, "weft_queue_put: the queue is shut down");
    if (weft__cancel_visible(t)) {
        promise_slots(q); /* woken and cancelled at once: pass the slot on */
        return weft__seterr(-ECANCELED, "weft_queue_put: %s", weft_strerror(-ECANCELED));
    }
    rc = put_now(q, item);
    if (rc < 0)
        promise_slots(q); /* out of memory: the slot is free again */
    return rc;
}

int weft_queue_put(weft_queue *q, void *item)
{
    return weft_queue_put_until(q, item, WEFT_NO_DEADLINE);
}

/* Take the oldest item from a queue with an item the caller may take;
 * then serve waiting putters. */
static void *get_now(weft_queue *q)
{
    void *item = pop(q);
    promise_slots(q);
    close_getters_if_drained(q);
    return item;
}

int weft_queue_try_get(weft_queue *q, void **item)
{
    if (!q || !item)
        return weft__seterr(-EINVAL, "weft_queue_try_get: NULL %s", q ? "item pointer" : "queue");
    if (free_items(q) > 0) {
        *item = get_now(q);
        return 0;
    }
    if (q->shut && q->len == 0)
        return weft__seterr(WEFT_ECLOSED, "weft_queue_try_get: the queue is shut down and empty");
    return -EAGAIN;
}

int weft_queue_get_until(weft_queue *q, void **item, int64_t deadline)
{
    int rc;
    weft_task *t = weft__sync_task(q, "weft_queue_get", &rc);
    if (!t)
        return rc;
    if (!item)
        return weft__seterr(-EINVAL, "weft_queue_get: NULL item pointer");
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_queue_get: %s", weft_strerror(-ECANCELED));
    if (free_items(q) > 0) {
        *item = get_now(q);
        weft__coop_spend(t);
        return 0;
    }
    if (q->shut && q->len == 0)
        return weft__seterr(WEFT_ECLOSED, "weft_queue_get: the queue is shut down and empty");
    weft__waiter w;
    int64_t started = weft__clock_ns();
    rc = weft__waitq_wait(&q->getters, &w, t, deadline, q, describe_get);
    if (!w.granted)
        return rc == WEFT_ECLOSED
                   ? weft__seterr(rc, "weft_queue_get: the queue is shut down and empty")
                   : weft__wait_failed(rc, "weft_queue_get", started, deadline,
                                       "an item of queue %p", (void *)q);
    q->reserved_items--;
    if (weft__cancel_visible(t)) {
        promise_items(q); /* woken and cancelled at once: pass the item on */
        return weft__seterr(-ECANCELED, "weft_queue_get: %s", weft_strerror(-ECANCELED));
    }
    *item = get_now(q);
    return 0;
}

int weft_queue_get(weft_queue *q, void **item)
{
    return weft_queue_get_until(q, item, WEFT_NO_DEADLINE);
}

void weft_queue_shutdown(weft_queue *q)
{
    if (!q || q->shut)
        return;
    q->shut = true;
    weft__waitq_wake_all(&q->putters, WEFT_ECLOSED);
    /* Getters wait only while every item is reserved for a woken getter:
     * on an empty queue they fail now, else when the last item is taken. */
    close_getters_if_drained(q);
}

size_t weft_queue_len(const weft_queue *q) { return q ? q->len : 0; }

int weft_queue_close(weft_queue *q)
{
    if (!q)
        return weft__seterr(-EINVAL, "weft_queue_close: NULL queue");
    /* Woken getters and putters that have not run yet hold reservations:
     * they still take their item or use their slot (the ring). */
    bool getters = weft__waitq_busy(&q->getters), putters = weft__waitq_busy(&q->putters);
    if (getters || putters || q->reserved_items || q->reserved_slots)
        return weft__seterr(-EBUSY, "weft_queue_close: tasks still wait on the queue");
    free(q->ring);
    q->ring = NULL;
    q->len = q->ring_cap = 0;
    q->shut = true; /* a call after close fails with WEFT_ECLOSED, no ring is touched */
    return 0;
}
