/* SPDX-License-Identifier: MIT */
/* The loop of a thread, and how other threads reach it. */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_loop weft_loop;

/* The loop running on the calling thread, or NULL.  Valid until weft_run
 * returns on that thread; to keep the handle longer (a thread that posts to
 * the loop), take a reference with weft_loop_ref.  Does not suspend. */
weft_loop *weft_loop_current(void);

/*
 * References keep the loop's handle (not the loop) alive: after weft_run
 * has returned, a referenced handle stays valid memory on which
 * weft_loop_post and weft_loop_hold fail with -ESHUTDOWN.  weft_run holds
 * one reference of its own while it runs.  Take a reference on the loop's
 * thread (or while holding one already) and give it to the thread that
 * posts; that thread calls weft_loop_unref when it is done, from any thread,
 * and the last unref frees the handle.  weft_loop_ref returns `loop`, or
 * NULL with -EINVAL for NULL.  Thread-safe; neither suspends.
 */
weft_loop *weft_loop_ref(weft_loop *loop);
void weft_loop_unref(weft_loop *loop);

/*
 * From any thread: run `fn(arg)` on `loop`'s thread, between tasks, soon.
 * Calls run in the order posted.  `fn` must not suspend; it may spawn tasks.
 * The caller must hold a reference to `loop` (weft_loop_ref) unless it knows
 * weft_run has not returned.  A posted call runs only while the loop runs:
 * while a task is alive (one waiting for the result keeps it alive) or a
 * hold (weft_loop_hold) keeps the loop running without tasks.  From the
 * moment the loop has no task and no hold left, it closes: posts fail with
 * -ESHUTDOWN, the calls queued before still run, and weft_run returns once
 * the tasks they spawned have finished; a steady stream of posts cannot keep
 * a finished loop running.  Returns 0, -EINVAL (NULL `loop` or `fn`),
 * -ENOMEM, or -ESHUTDOWN.
 */
int weft_loop_post(weft_loop *loop, void (*fn)(void *arg), void *arg);

/*
 * Keep `loop` running while it has no task, so that calls posted from other
 * threads still run: weft_run does not return while a hold is held.
 * weft_loop_release gives one back (from any thread; the last one wakes
 * the loop so that it can finish).  Holds count: every hold needs one
 * release.  The caller holds a reference (or knows weft_run has not
 * returned).  weft_loop_hold returns 0, -EINVAL for NULL, or -ESHUTDOWN
 * when the loop has closed already; weft_loop_release returns 0, or -EINVAL
 * for NULL or a loop that is not held.  Thread-safe; neither suspends.
 */
int weft_loop_hold(weft_loop *loop);
int weft_loop_release(weft_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
