/* SPDX-License-Identifier: MIT */
/* Partial writes over an iovec array. */
#ifndef WEFT_UTIL_IOV_H
#define WEFT_UTIL_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Step the array (*v, *cnt) past `n` bytes that were written: whole
 * entries are dropped, the first one left is trimmed in place. */
static inline void weft__iov_advance(struct iovec **v, int *cnt, size_t n)
{
    while (*cnt && n >= (*v)->iov_len) {
        n -= (*v)->iov_len;
        (*v)++;
        (*cnt)--;
    }
    if (*cnt) {
        (*v)->iov_base = (char *)(*v)->iov_base + n;
        (*v)->iov_len -= n;
    }
}

#endif
