/* SPDX-License-Identifier: MIT */
/* Debugging: the slow-task detector, the stuck-loop watchdog, task dumps. */
#ifndef WEFT_DEBUG_H
#define WEFT_DEBUG_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Receives every report of the detector and the watchdog: one complete,
 * newline-terminated message.  The default writes it to stderr.  Called on
 * the loop's thread for slow tasks, on the watchdog thread for stuck loops.
 * A NULL `fn` restores the default.
 */
typedef void (*weft_log_fn)(const char *message, void *data);
void weft_set_log(weft_log_fn fn, void *data);

/*
 * The slow-task threshold in milliseconds: a task that runs longer than
 * this without suspending is reported (name and duration) when it
 * suspends.  Default 100, or $WEFT_SLOW_MS; 0 turns reports off; a
 * negative value goes back to the default ($WEFT_SLOW_MS or 100).  Applies
 * to loops started afterwards and to the running loop of the caller.  The
 * watchdog uses the same threshold.
 */
void weft_set_slow_ms(int64_t ms);
int64_t weft_slow_ms(void);

/*
 * The watchdog: a thread that notices a loop stuck *now* in one task for
 * longer than the slow-task threshold and reports, while it is still stuck,
 * the task's name and its current backtrace (the blocking call's line).
 * Off by default; on for loops started with $WEFT_DEBUG=1 or after this
 * call.  Debug mode also dumps every task on SIGQUIT.  Returns 0 or -errno.
 *
 * Looking does not change what the task's calls do.  A thread blocked in a
 * system call (sleep, usleep, nanosleep, poll, select, epoll_wait, read,
 * recv with or without SO_RCVTIMEO, ...) is read from outside: the call
 * from /proc/self/task/<tid>/syscall, the frames above it by scanning its
 * stack for return addresses (a stale one may show up among them); it is
 * not interrupted.  A thread that is computing is interrupted once with
 * SIGURG (SA_RESTART) to take its backtrace, which no system call sees.
 * What remains: a call entered in the microseconds between the watchdog's
 * look and the signal's arrival, or any blocked call where /proc cannot be
 * read, sees the signal like any other: nanosleep, usleep, poll, select,
 * epoll_wait and a recv with SO_RCVTIMEO then fail with EINTR and sleep()
 * returns the seconds left; read, recv without a timeout and the like
 * restart.  A SIGURG handler of the program's own still gets every SIGURG
 * that is not the watchdog's, and gets its place back when the last loop
 * in debug mode ends (unless the program set another one meanwhile).
 *
 * Frames are named from the ELF symbol tables of the program and its
 * libraries, so no -rdynamic is needed (static functions too); each frame
 * also shows "file+0xoffset", which `addr2line -f -e file 0xoffset` turns
 * into a line.  A stripped program shows only the exported names and the
 * offsets.
 */
int weft_debug_enable(void);

/*
 * Print every live task of the calling thread's loop: name, state, what it
 * waits on (fd, timer, task, signal) and how long ago it last ran.  Does
 * not suspend.  Outside a loop, or with a NULL `out`, prints nothing.
 */
void weft_dump_tasks(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
