/* SPDX-License-Identifier: MIT */
/* Intrusive circular doubly linked list. */
#ifndef WEFT_UTIL_LIST_H
#define WEFT_UTIL_LIST_H

#include <stddef.h>

#include <weft/private.h>

/* The same link public structs embed (include/weft/private.h). */
typedef struct weft__link weft__list;

#define weft__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void weft__list_init(weft__list *l) { l->prev = l->next = l; }
static inline int weft__list_empty(const weft__list *l) { return l->next == l; }
/* A node that was removed with weft__list_remove (or never inserted after
 * weft__list_init) is "unlinked". */
static inline int weft__list_linked(const weft__list *n) { return n->next != n; }

static inline void weft__list_push_back(weft__list *head, weft__list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void weft__list_remove(weft__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static inline weft__list *weft__list_pop_front(weft__list *head)
{
    if (weft__list_empty(head))
        return NULL;
    weft__list *n = head->next;
    weft__list_remove(n);
    return n;
}

#define weft__list_foreach(it, head) \
    for (weft__list *it = (head)->next, *it##_next = it->next; it != (head); \
         it = it##_next, it##_next = it->next)

#endif
