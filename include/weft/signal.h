/* SPDX-License-Identifier: MIT */
/* Signals as events a task can wait for (SIGINT, SIGTERM, ...). */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#include <signal.h>
#include <stdint.h>
/* sigset_t: <signal.h> declares it only for POSIX builds (not under a plain
 * -std=c11), while POSIX has <sys/select.h> define it in every mode. */
#include <sys/select.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Suspend until one of the signals in `set` arrives, and return its number.
 * The first wait blocks those signals in the loop's thread (they are then
 * read through a signalfd; the mask is restored when weft_run returns), so
 * a signal that arrives while no task waits stays pending and the next wait
 * returns it.  Block the signals in other threads too (or wait before
 * starting threads, which inherit the mask) so the kernel cannot deliver
 * them elsewhere.  When several tasks wait for the same signal the one that
 * waited first gets it.  `deadline` is absolute (weft_deadline_ms(...);
 * WEFT_NO_DEADLINE for none); one at or before now takes a pending signal
 * and never waits.  Errors: -EINVAL (NULL or empty set, or SIGKILL/SIGSTOP),
 * -ETIMEDOUT, -ECANCELED, WEFT_ENOTASK.  Suspends.
 */
int weft_signal_wait(const sigset_t *set, int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
