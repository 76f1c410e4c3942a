/* SPDX-License-Identifier: MIT */
/* The loop of a thread, and how other threads reach it. */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_loop weft_loop;

/* The loop running on the calling thread, or NULL.  Valid until weft_run
 * returns on that thread.  Does not suspend. */
weft_loop *weft_loop_current(void);

/*
 * From any thread: run `fn(arg)` on `loop`'s thread, between tasks, soon.
 * Calls run in the order posted.  `fn` must not suspend; it may spawn tasks.
 * This is the only weft call that is safe from another thread.  The caller
 * keeps `loop` alive: a loop waits for posted calls only while one of its
 * tasks is suspended waiting for the result (that keeps weft_run running).
 * Returns 0, -EINVAL (NULL loop or fn), -ENOMEM, or -ESHUTDOWN if the loop
 * has finished.
 */
int weft_loop_post(weft_loop *loop, void (*fn)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
